"""Time to derive (prove every step of) every derivation from scratch, slowest steps first.

    python benchmarks/derive.py [NAME ...]

Each derivation is loaded fresh and proved; the table lists the steps that took longest
and what proving them involved (SymPy integration, explicit matrices, quadrature).
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import table  # noqa: E402

import symgen  # noqa: E402


def main(names):
    start_all = time.perf_counter()
    totals, steps = [], []
    for name in names or symgen.derivations():
        found = symgen.derivation(name)
        start = time.perf_counter()
        found.prove()
        totals.append((name, f"{time.perf_counter() - start:.2f}"))
        for output in found.outputs.values():
            for step in output.steps[1:]:
                steps.append((step.seconds, name, output.name, step.reason[:60], step.proof[:70]))
    print(table(totals, ("derivation", "seconds to prove")))
    print(f"\nall derivations: {time.perf_counter() - start_all:.1f} s\n\nslowest steps:")
    slowest = sorted(steps, reverse=True)[:10]
    print(table([(f"{s:.2f}", n, o, r, p) for s, n, o, r, p in slowest],
                ("seconds", "derivation", "output", "step", "proof")))


if __name__ == "__main__":
    main(sys.argv[1:])
