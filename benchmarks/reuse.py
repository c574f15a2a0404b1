"""What array reuse buys: every generated scalar formula with and without the
reuse pass (symgen/engine/reuse.py), against the naive NumPy expression.

    python benchmarks/reuse.py [--size 1000000] [NAME ...]

Both symgen columns are validate=False; "plain" is the same generated code before the
pass (operations allocate every result), built in memory by the code generator.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_times, table  # noqa: E402
from formulas import naive_numpy, scalar_inputs  # noqa: E402

import symgen  # noqa: E402
from symgen.engine.runner import formula_function, generated_function  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="formulas to time (default: every scalar one)")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    arguments = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for name in arguments.names or symgen.derivations():
        found = symgen.derivation(name)
        if found.is_matrix or found.implementation:
            continue
        inputs = scalar_inputs(found, arguments.size, rng)
        by_hand, before, after = naive_numpy(found), generated_function(found, reuse=False), formula_function(found)
        with np.errstate(all="ignore"):
            naive, plain, reused = best_times([lambda: by_hand(**inputs),
                                               lambda: before(**inputs, validate=False),
                                               lambda: after(**inputs, validate=False)], repeat=arguments.repeat)
        rows.append((name, f"{naive * 1e3:.2f}", f"{plain * 1e3:.2f}", f"{reused * 1e3:.2f}",
                     f"{plain / naive:.2f}", f"{reused / naive:.2f}"))
        print(table(rows[-1:], ("",) * 6), flush=True, file=sys.stderr)
    print(f"# {arguments.size:,} elements per call (times in ms; ratios against naive NumPy)")
    print(table(rows, ("formula", "naive", "plain", "with reuse", "plain ratio", "reuse ratio")))


if __name__ == "__main__":
    main()
