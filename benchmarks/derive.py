"""What the catalogue costs: importing it, deriving and proving it from scratch, and the
same from the cache; the slowest steps.

    python benchmarks/derive.py [NAME ...]

Importing a derivation module only writes expressions down; deriving runs the steps
SymPy computes (dsolve, solve, integrate); proving proves every step. The first two
columns are measured with the cache off (symgen/engine/cache.py), the last with the
cache filled by that run, in a fresh interpreter as a second command would be.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import table  # noqa: E402

CACHED = """
import json, sys, time
start = time.perf_counter()
import symgen
from symgen.engine import catalogue
found = catalogue.collect()
loaded = time.perf_counter()
for name in sys.argv[1:] or sorted(found):
    found[name].prove()
print(json.dumps({"import": loaded - start, "prove": time.perf_counter() - loaded}))
"""


def main(names):
    from symgen.engine import cache, catalogue

    start = time.perf_counter()
    found = catalogue.collect()
    imported = time.perf_counter() - start
    rows, steps = [], []
    with cache.disabled():
        for name in names or sorted(found):
            derivation = found[name]
            start = time.perf_counter()
            derivation.derive()
            derived = time.perf_counter() - start
            derivation.prove()
            proved = time.perf_counter() - start - derived
            rows.append((name, f"{derived:.2f}", f"{proved:.2f}"))
            for output in derivation.outputs.values():
                for step in output.steps[1:]:
                    steps.append((step.seconds, name, output.name, step.reason[:60], step.proof[:70]))
    # Store what was just proved, so the second run reads it (the cache was off above).
    for name in names or sorted(found):
        found[name]._store({output: [(step.proof, step.seconds) for step in found[name].outputs[output].written[1:]]
                            for output in found[name].outputs})
    result = subprocess.run([sys.executable, "-c", CACHED, *names], capture_output=True, text=True, check=True)
    cached = json.loads(result.stdout)
    print(table(rows, ("derivation", "derive (s)", "prove (s)")))
    total_derive = sum(float(row[1]) for row in rows)
    total_prove = sum(float(row[2]) for row in rows)
    print(f"\nimport every derivation module: {imported * 1e3:.0f} ms (SymPy already loaded)")
    print(f"from scratch: derive {total_derive:.1f} s, prove {total_prove:.1f} s")
    print(f"from the cache, in a new interpreter: import {cached['import'] * 1e3:.0f} ms (with SymPy and the "
          f"engine), prove {cached['prove'] * 1e3:.0f} ms")
    print("\nslowest steps:")
    slowest = sorted(steps, reverse=True)[:10]
    print(table([(f"{s:.2f}", n, o, r, p) for s, n, o, r, p in slowest],
                ("seconds", "derivation", "output", "step", "proof")))


if __name__ == "__main__":
    main(sys.argv[1:])
