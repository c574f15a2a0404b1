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

Then the batched matrix formulas, batch 10^4 at d = 8 and d = 64: ``kl_mvn`` and
``score_mvn`` of NumPy split along the batch across the threads (``blocked.over_batch``),
the same function in one call (``.unblocked``), symgen.torch's, and torch's own
(``kl_divergence`` of two ``MultivariateNormal(covariance_matrix=...)``; the score as the
autograd of ``MultivariateNormal.log_prob``). Target: <= 1.0x torch.
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
from formulas import TORCH_BASELINES, naive_numpy, random_covariances, scalar_inputs, td, torch  # noqa: E402

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


def matrix_rows(d, batch, rng, repeat):
    """kl_mvn and score_mvn at batch x d: NumPy split across threads, unsplit, symgen.torch,
    torch; times in ms, ratios against torch."""
    from symgen.numerics import gaussian, scores
    loc_p, loc_q = rng.normal(size=(batch, d)), rng.normal(size=(batch, d))
    cov_p, cov_q = random_covariances(rng, batch, d), random_covariances(rng, batch, d)
    arrays = {"kl_mvn": (loc_p, cov_p, loc_q, cov_q), "score_mvn": (loc_p, loc_q, cov_q)}
    numpy_functions = {"kl_mvn": gaussian.kl_mvn, "score_mvn": scores.score_mvn}
    rows = []
    for name, arguments in arrays.items():
        function = numpy_functions[name]
        calls = [lambda: function(*arguments, validate=False), lambda: function(*arguments),
                 lambda: function.unblocked(*arguments, validate=False)]
        if torch is not None:
            import symgen.torch as symgen_torch
            tensors = [torch.from_numpy(array) for array in arguments]
            calls += [lambda: getattr(symgen_torch, name)(*tensors, validate=False),
                      lambda: TORCH_MATRIX[name](*tensors)]
        fast, checked, whole, *torch_times = best_times(calls, repeat=repeat)
        ms = lambda seconds: f"{seconds * 1e3:.1f}"  # noqa: E731
        ours_torch, theirs = torch_times or (float("nan"), float("nan"))
        rows.append((name, f"{batch:.0e} x {d}", ms(fast), ms(checked), ms(whole), ms(ours_torch),
                     ms(theirs), f"{fast / theirs:.2f}", f"{ours_torch / theirs:.2f}",
                     f"{checked / fast:.2f}"))
    return rows


def torch_score_mvn(x, loc, cov):
    x = x.detach().requires_grad_(True)
    td.MultivariateNormal(loc, covariance_matrix=cov).log_prob(x).sum().backward()
    return x.grad


TORCH_MATRIX = {
    "kl_mvn": lambda loc_p, cov_p, loc_q, cov_q: td.kl_divergence(
        td.MultivariateNormal(loc_p, covariance_matrix=cov_p), td.MultivariateNormal(loc_q, covariance_matrix=cov_q)),
    "score_mvn": torch_score_mvn,
}
MATRIX_HEADER = ("formula", "batch x d", "numpy", "+validate", "numpy unsplit", "symgen.torch", "torch",
                 "numpy/torch", "symgen.torch/torch", "validate/plain")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="these formulas only")
    parser.add_argument("--dimensions", type=int, nargs="*", default=[8, 64],
                        help="d of the kl_mvn / score_mvn rows (none: skip them)")
    parser.add_argument("--batch", type=int, default=10_000)
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
    if rows:
        print(table(rows, HEADER))
    matrix = [row for d in arguments.dimensions
              for row in matrix_rows(d, arguments.batch, rng, max(3, arguments.repeat // 2))]
    if matrix:
        print(table(matrix, MATRIX_HEADER))


HEADER = ("formula", "size", "floor", "naive", "unblocked", "symgen", "+validate", "torch",
          "/floor", "/naive", "/torch", "validate/plain")

if __name__ == "__main__":
    main()
