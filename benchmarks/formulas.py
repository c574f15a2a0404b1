"""Every public formula against a hand-written NumPy version of the same closed form and,
where torch.distributions has the same quantity, against torch (CPU, float64).

    python benchmarks/formulas.py [--size 1000000]

Prints one row per (formula, baseline) with times and the ratio symgen / baseline, for
symgen with validate=False and with validation on. The targets (issue 7): with
validate=False within 1.5x of the naive NumPy expression and no slower than torch; with
validation within 2x of naive NumPy. torch rows are skipped, with a note, when torch is
not installed.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_times, table  # noqa: E402

import symgen  # noqa: E402
from symgen.engine.runner import formula_function  # noqa: E402

try:
    import torch
    import torch.distributions as td
    # The baselines as fast as torch.distributions goes: without its argument checks (by
    # default it checks them, e.g. a Cholesky to prove a covariance positive definite).
    td.Distribution.set_default_validate_args(False)
except ImportError:  # torch is an optional reference
    torch = None


def naive_numpy(found):
    """The textbook closed form printed by SymPy's NumPy printer: what one writes by hand."""
    symbols = [param.symbol for param in found.params]
    outputs = [output.closed_form for output in found.outputs.values()]
    return sp.lambdify(symbols, outputs[0] if len(outputs) == 1 else outputs, "numpy")


def scalar_inputs(found, size, rng, distinct=2000):
    """``size`` points of the derivation's declared domain (``distinct`` points drawn by
    its own sampler, which respects ``requires``, tiled to the batch size)."""
    points = [found.sample_point(rng) for _ in range(distinct)]
    return {name: np.resize(np.array([point[name] for point in points], dtype=np.float64), size)
            for name in found.param_names}


def naive_kl_mvn(loc_p, cov_p, loc_q, cov_q):
    inverse_q = np.linalg.inv(cov_q)
    difference = loc_q - loc_p
    return 0.5 * (np.einsum("...ij,...ji->...", inverse_q, cov_p)
                  + np.einsum("...i,...ij,...j->...", difference, inverse_q, difference)
                  - loc_p.shape[-1] + np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1])


def random_covariances(rng, batch, d):
    factor = rng.standard_normal((batch, d, d)) / np.sqrt(d)
    return factor @ np.swapaxes(factor, -1, -2) + 0.5 * np.eye(d)


TORCH_BASELINES = {
    "kl_normal": lambda a: td.kl_divergence(td.Normal(a["loc_p"], a["scale_p"]), td.Normal(a["loc_q"], a["scale_q"])),
    "kl_std_normal": lambda a: td.kl_divergence(td.Normal(a["loc"], torch.exp(a["logvar"] / 2)),
                                                td.Normal(torch.zeros(()), torch.ones(()))),
    "kl_mvn": lambda a: td.kl_divergence(td.MultivariateNormal(a["loc_p"], covariance_matrix=a["cov_p"]),
                                         td.MultivariateNormal(a["loc_q"], covariance_matrix=a["cov_q"])),
    # Gaussian log densities: the affine flow's pushforward is N(b, a^2), the linear-Gaussian
    # evidence is N(b, w^2 + s^2).
    "affine_flow_logpdf": lambda a: td.Normal(a["b"], torch.abs(a["a"])).log_prob(a["x"]),
    "vae_linear_gaussian_evidence": lambda a: td.Normal(a["b"], torch.sqrt(a["w"] ** 2 + a["s"] ** 2)).log_prob(a["x"]),
    # A score as torch users get one: autograd of the log density.
    "score_normal": lambda a: torch_score(a["x"], a["loc"], a["scale"]),
}


def torch_score(x, loc, scale):
    x = x.detach().requires_grad_(True)
    td.Normal(loc, scale).log_prob(x).sum().backward()
    return x.grad


def rows_for(name, inputs, naive, repeat):
    function = formula_function(symgen.derivation(name))
    calls = [lambda: function(**inputs, validate=False), lambda: function(**inputs), lambda: naive(**inputs)]
    if name in TORCH_BASELINES and torch is not None:
        tensors = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in inputs.items()}
        calls.append(lambda: TORCH_BASELINES[name](tensors))
    fast, checked, base, *torch_time = best_times(calls, repeat=repeat)
    rows = [(name, "naive NumPy", f"{fast * 1e3:.2f}", f"{checked * 1e3:.2f}", f"{base * 1e3:.2f}",
             f"{fast / base:.2f}", f"{checked / base:.2f}")]
    if name in TORCH_BASELINES:
        if torch is None:
            rows.append((name, "torch (not installed: skipped)", "", "", "", "", ""))
        else:
            base = torch_time[0]
            rows.append((name, f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
                         f"{fast * 1e3:.2f}", f"{checked * 1e3:.2f}", f"{base * 1e3:.2f}",
                         f"{fast / base:.2f}", f"{checked / base:.2f}"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    arguments = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for name in symgen.derivations():
        found = symgen.derivation(name)
        if found.is_matrix or found.implementation:
            continue   # matrix formulas are timed below on their own batches
        rows += rows_for(name, scalar_inputs(found, arguments.size, rng), naive_numpy(found), arguments.repeat)
    for batch, d in ((10_000, 8), (10_000, 64)):
        inputs = dict(loc_p=rng.standard_normal((batch, d)), cov_p=random_covariances(rng, batch, d),
                      loc_q=rng.standard_normal((batch, d)), cov_q=random_covariances(rng, batch, d))
        for row in rows_for("kl_mvn", inputs, naive_kl_mvn, max(3, arguments.repeat // 2)):
            rows.append((f"{row[0]} {batch}x{d}",) + row[1:])
    print(f"# {platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"numpy {np.__version__}, {arguments.size:,} elements per scalar call (times in ms)")
    print(table(rows, ("formula", "baseline", "symgen", "symgen+validate", "baseline",
                       "ratio", "ratio+validate")))


if __name__ == "__main__":
    main()
