"""Blocked, multi-threaded evaluation (symgen/numerics/blocked.py) against the floor, naive
NumPy, the same formula unblocked, and torch.distributions.

    python benchmarks/blocked.py [--sizes 1000000 10000000] [--repeat 5] [--only kl_normal ...]

For every elementwise formula of the catalogue, one row per size, times in ms, the
contenders taking turns in each round (best round counts):

* floor: streaming the same bytes at symgen's thread count: for each input array one
  ``numpy.add(input, 0.0, out=output)`` pass, the threads taking slices side by side; what
  any formula must at least spend reading its inputs and writing one output;
* naive: the textbook closed form printed by SymPy's NumPy printer;
* unblocked: the generated function as one call over the whole arrays (``.unblocked``);
* symgen: the generated function, blocked across threads, validate=False; + validate: on;
* torch: torch.distributions (validate_args=False, its default threads) where it has the
  quantity.

Targets (issue 18): symgen within 2x the floor, <= 0.6x naive, <= 0.8x torch; validation
<= 1.15x the same call without.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_times, table  # noqa: E402
from formulas import TORCH_BASELINES, naive_numpy, scalar_inputs, torch  # noqa: E402

import symgen  # noqa: E402
from symgen.engine.printer import elementwise  # noqa: E402
from symgen.engine.runner import formula_function  # noqa: E402
from symgen.numerics import blocked  # noqa: E402


def stream_floor(inputs: list, size: int):
    """One add(..., out=) pass per input over symgen's threads: read every input once, write
    the output once per input (the output stays the same memory)."""
    output = np.empty(size)
    count = blocked.threads()
    step = -(-size // count)
    flat = [np.ascontiguousarray(array).reshape(-1) for array in inputs]

    def part(index):
        window = slice(index * step, min(size, (index + 1) * step))
        for array in flat:
            np.add(array[window], 0.0, out=output[window])

    if count == 1:
        return lambda: part(0)
    pool = blocked._executor(count)
    return lambda: list(pool.map(part, range(count)))


def rows_for(name, size, rng, repeat):
    found = symgen.derivation(name)
    inputs = scalar_inputs(found, size, rng)
    function = formula_function(found)
    naive = naive_numpy(found)
    calls = [stream_floor(list(inputs.values()), size), lambda: naive(**inputs),
             lambda: function.unblocked(**inputs, validate=False),
             lambda: function(**inputs, validate=False), lambda: function(**inputs)]
    has_torch = name in TORCH_BASELINES and torch is not None
    if has_torch:
        tensors = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in inputs.items()}
        calls.append(lambda: TORCH_BASELINES[name](tensors))
    floor, base, unblocked, fast, checked, *torch_time = best_times(calls, repeat=repeat)
    ms = lambda seconds: f"{seconds * 1e3:.2f}"  # noqa: E731
    return [(name, f"{size:.0e}", ms(floor), ms(base), ms(unblocked), ms(fast), ms(checked),
             ms(torch_time[0]) if has_torch else "", f"{fast / floor:.2f}", f"{fast / base:.2f}",
             f"{fast / torch_time[0]:.2f}" if has_torch else "", f"{checked / fast:.2f}")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="these formulas only")
    arguments = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    names = [name for name in symgen.derivations() if elementwise(symgen.derivation(name))
             and (arguments.only is None or name in arguments.only)]
    rows = []
    for name in names:
        for size in arguments.sizes:
            rows += rows_for(name, size, rng, arguments.repeat)
            print(table(rows[-1:], HEADER).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}, symgen threads {blocked.threads()} "
          f"(block {blocked.BLOCK}, from {blocked.PARALLEL_FROM} entries), "
          + (f"torch {torch.__version__} with {torch.get_num_threads()} threads" if torch else "no torch")
          + "; times in ms")
    print(table(rows, HEADER))


HEADER = ("formula", "size", "floor", "naive", "unblocked", "symgen", "+validate", "torch",
          "/floor", "/naive", "/torch", "validate/plain")

if __name__ == "__main__":
    main()
