"""The generated torch functions (symgen.torch) against torch.distributions where it has
the same quantity, and against the naive torch expression of the textbook closed form
otherwise (CPU, float64, torch's default number of threads).

    python benchmarks/torch_backend.py [--size 1000000] [--repeat 7] [--points domain|accuracy] [NAME ...]

Every scalar function of the catalogue is called on ``--size`` float64 elements per
argument, drawn inside its declared domain by the derivation's own sampler (which
respects ``requires``, e.g. alpha_bar_prev >= alpha_bar_t): 2000 distinct points tiled
to the batch size. ``--points accuracy`` draws them as the accuracy tests do instead
(``symgen.engine.accuracy.accuracy_points``: every other point has its ``near`` pairs
nearly equal), which sends about half the entries of such functions through their
stable branches: a worst case for ``refine``, not a typical batch.

"naive torch" is the derivation's textbook ``closed_form`` (all of its outputs) printed
by SymPy's torch printer (``sympy.lambdify(..., modules="torch")``), constant
subexpressions such as log(2 pi) folded to floats: what one writes by hand, with no
hand-written baseline per function. torch.distributions is built with
validate_args=False. Where a function has a torch.distributions baseline, the table has
a second row against the naive expression as well.

Times in ms; contenders take turns in each of ``--repeat`` rounds and the best round
counts, each timed call following an untimed call of the same function
(benchmarks/_timing.py). "ratio" is symgen / baseline of the best rounds; "paired
median" the median over rounds of the same ratio within a round, which other work on the
machine disturbs differently: rows where the two disagree by more than 25% are listed
after the table, and so is the share of the cores other processes took during the run.
The target (issue): symgen with validate=False within 1.5x of torch.distributions where
it has the quantity, else of the naive expression.

kl_mvn and score_mvn (batch 10^4 x d = 8, against MultivariateNormal's KL and the
autograd gradient of its log_prob) are timed only once symgen/numerics/array_linalg.py
exists; until then the torch topic modules that import it (gaussian_kl, scores) import
with a placeholder in its place, so their scalar functions can still be timed.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

try:
    import resource
except ImportError:      # not on Windows: no page-fault counts
    resource = None

import numpy as np
import sympy as sp
import torch
import torch.distributions as td

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import table  # noqa: E402

import symgen  # noqa: E402
from symgen.engine.accuracy import accuracy_points  # noqa: E402

TARGET = 1.5
DISTINCT = 2000     # distinct domain points, tiled to the batch size


# --- the placeholder for a missing array_linalg -------------------------------------------

def array_linalg_available() -> bool:
    return importlib.util.find_spec("symgen.numerics.array_linalg") is not None


def install_placeholder():
    """Let ``from symgen.numerics import array_linalg`` succeed while the module is not
    written yet: the scalar functions of the same topic modules never touch it."""
    import symgen.numerics

    placeholder = types.ModuleType("symgen.numerics.array_linalg")

    def missing(name):
        raise NotImplementedError("symgen/numerics/array_linalg.py does not exist yet")

    placeholder.__getattr__ = missing
    sys.modules["symgen.numerics.array_linalg"] = placeholder
    symgen.numerics.array_linalg = placeholder


# --- inputs and baselines ------------------------------------------------------------------

def scalar_inputs(found, size, rng, points="domain"):
    """``size`` float64 points of the derivation's domain as tensors, by argument name."""
    if points == "accuracy":
        drawn = accuracy_points(found, DISTINCT, seed=int(rng.integers(2**31)))
    else:
        drawn = [found.sample_point(rng) for _ in range(DISTINCT)]
    return {name: torch.from_numpy(np.resize(np.array([p[name] for p in drawn], dtype=np.float64), size))
            for name in found.param_names}


def _fold_constants(expression):
    """log(2 pi), sin(125 pi / 252), ... as floats: torch's functions take tensors only."""
    return expression.replace(lambda e: isinstance(e, sp.Function) and not e.free_symbols,
                              lambda e: sp.Float(e.evalf(20), 17))


def naive_torch(found):
    """The textbook closed form (every output) printed by SymPy's torch printer."""
    symbols = [param.symbol for param in found.params]
    outputs = [_fold_constants(output.closed_form) for output in found.outputs.values()]
    return sp.lambdify(symbols, outputs[0] if len(outputs) == 1 else outputs, modules="torch")


def _score_by_autograd(x, make_distribution):
    x = x.detach().requires_grad_(True)
    make_distribution().log_prob(x).sum().backward()
    return x.grad


# torch.distributions computes the same quantity: (label, call on the inputs).
TORCH_DISTRIBUTIONS = {
    "kl_normal": ("td.kl_divergence(Normal, Normal)", lambda a: td.kl_divergence(
        td.Normal(a["loc_p"], a["scale_p"], validate_args=False),
        td.Normal(a["loc_q"], a["scale_q"], validate_args=False))),
    "kl_std_normal": ("td.kl_divergence(Normal(loc, exp(logvar/2)), Normal(0, 1))", lambda a: td.kl_divergence(
        td.Normal(a["loc"], torch.exp(a["logvar"] / 2), validate_args=False),
        td.Normal(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64),
                  validate_args=False))),
    "score_normal": ("autograd of td.Normal.log_prob", lambda a: _score_by_autograd(
        a["x"], lambda: td.Normal(a["loc"], a["scale"], validate_args=False))),
    # Gaussian log densities: the affine flow's pushforward is N(b, a^2), the
    # linear-Gaussian evidence is N(b, w^2 + s^2).
    "affine_flow_logpdf": ("td.Normal(b, |a|).log_prob", lambda a: td.Normal(
        a["b"], torch.abs(a["a"]), validate_args=False).log_prob(a["x"])),
    "vae_linear_gaussian_evidence": ("td.Normal(b, sqrt(w^2 + s^2)).log_prob", lambda a: td.Normal(
        a["b"], torch.sqrt(a["w"] ** 2 + a["s"] ** 2), validate_args=False).log_prob(a["x"])),
}


def random_covariances(generator, batch, d):
    factor = torch.randn((batch, d, d), generator=generator, dtype=torch.float64) / d ** 0.5
    return factor @ factor.transpose(-1, -2) + 0.5 * torch.eye(d, dtype=torch.float64)


def matrix_cases(batch, d):
    """(name, inputs, baseline label, baseline call) for the matrix functions."""
    generator = torch.Generator().manual_seed(0)

    def vector():
        return torch.randn((batch, d), generator=generator, dtype=torch.float64)

    kl_inputs = dict(loc_p=vector(), cov_p=random_covariances(generator, batch, d),
                     loc_q=vector(), cov_q=random_covariances(generator, batch, d))
    score_inputs = dict(x=vector(), loc=vector(), cov=random_covariances(generator, batch, d))

    def mvn(loc, cov):
        return td.MultivariateNormal(loc, covariance_matrix=cov, validate_args=False)

    return [
        ("kl_mvn", kl_inputs, "td.kl_divergence(MultivariateNormal, MultivariateNormal)",
         lambda a: td.kl_divergence(mvn(a["loc_p"], a["cov_p"]), mvn(a["loc_q"], a["cov_q"]))),
        ("score_mvn", score_inputs, "autograd of td.MultivariateNormal.log_prob",
         lambda a: _score_by_autograd(a["x"], lambda: mvn(a["loc"], a["cov"]))),
    ]


# --- timing ----------------------------------------------------------------------------------

def ms(seconds):
    return f"{seconds * 1e3:.2f}"


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def round_times(calls, repeat):
    """Every round's (time in seconds, minor page faults) of each zero-argument call: the
    protocol of ``_timing.best_times`` (the calls take turns within each round, and each
    timed run directly follows an untimed run of the same call), keeping all rounds."""
    rounds = [[] for _ in calls]
    for _ in range(repeat):
        for index, call in enumerate(calls):
            call()
            faults = _minor_faults()
            start = time.perf_counter()
            call()
            elapsed = time.perf_counter() - start
            rounds[index].append((elapsed, _minor_faults() - faults))
    return rounds


def time_function(label, function, inputs, baselines, repeat):
    """Rows (label, symgen, symgen+validate, baseline, baseline ms, ratio, paired median
    ratio, ratio+validate, page faults) and, against the first baseline (the one the
    target is about), the ratio of the best rounds with and without validation and the
    paired median.

    The ratio is that of the best rounds (as in the other scripts). The paired median is
    the median over rounds of symgen's time / the baseline's time in the same round: when
    the two disagree by much, other work disturbed the rounds and the row is unreliable.
    The page faults (thousands, in the best round of symgen and of the baseline) are the
    fresh memory each call touched: at 10^6 elements a call whose temporaries come from
    the system rather than from memory malloc kept pays ~2 us per 4 KiB page, as much as
    the arithmetic (see the note printed after the table)."""
    calls = [lambda: function(**inputs, validate=False), lambda: function(**inputs, validate=True)]
    calls += [lambda call=call: call(inputs) for _, call in baselines]
    fast, checked, *base = round_times(calls, repeat)
    best_fast, best_checked = min(fast), min(checked)
    rows = []
    for (name, _), rounds in zip(baselines, base):
        best = min(rounds)
        paired = statistics.median(f / b for (f, _), (b, _) in zip(fast, rounds))
        rows.append((label, ms(best_fast[0]), ms(best_checked[0]), name, ms(best[0]),
                     f"{best_fast[0] / best[0]:.2f}", f"{paired:.2f}", f"{best_checked[0] / best[0]:.2f}",
                     f"{best_fast[1] / 1e3:.0f} / {best[1] / 1e3:.0f}"))
    paired = statistics.median(f / b for (f, _), (b, _) in zip(fast, base[0]))
    best = min(base[0])
    return rows, (best_fast[0] / best[0], best_checked[0] / best[0], paired)


def load_average() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else ""


def busy_seconds():
    """(CPU seconds all processes spent busy, CPU seconds this process spent), from
    /proc/stat; None where there is no /proc (not Linux)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)          # idle + iowait
    times = os.times()
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), times.user + times.system


def machine():
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"# {model}, {os.cpu_count()} cores, {load_average()} at the start\n"
            f"# Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads, the default), NumPy {np.__version__}, SymPy {sp.__version__}"
            + (f"\n# GLIBC_TUNABLES={os.environ['GLIBC_TUNABLES']}" if os.environ.get("GLIBC_TUNABLES") else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="functions to time (default: every one)")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--points", choices=("domain", "accuracy"), default="domain")
    parser.add_argument("--batch", type=int, default=10_000, help="matrix functions: batch size")
    parser.add_argument("--dimension", type=int, default=8, help="matrix functions: d")
    arguments = parser.parse_args(argv)
    has_linalg = array_linalg_available()
    if not has_linalg:
        install_placeholder()
    import symgen.torch as generated

    print(machine())
    started, busy_at_start = time.perf_counter(), busy_seconds()
    print(f"# {arguments.size:,} float64 elements per argument ({arguments.points} points), "
          f"best of {arguments.repeat} rounds, ms")
    rng = np.random.default_rng(0)
    rows, ratios, skipped = [], {}, []
    names = arguments.names or symgen.derivations()
    for name in names:
        found = symgen.derivation(name)
        if found.is_matrix or found.implementation:
            continue
        try:
            function = getattr(generated, name)
        except (AttributeError, ImportError) as error:
            skipped.append(f"{name} ({error})")
            continue
        inputs = scalar_inputs(found, arguments.size, rng, arguments.points)
        naive = naive_torch(found)
        baselines = [("naive torch", lambda a, naive=naive: naive(**a))]
        if name in TORCH_DISTRIBUTIONS:
            baselines.insert(0, TORCH_DISTRIBUTIONS[name])
        try:
            function(**inputs)          # warm up: imports, the first allocations
        except Exception as error:      # a function that fails is reported, not timed
            skipped.append(f"{name} (fails: {type(error).__name__}: {error})")
            continue
        new_rows, ratios[name] = time_function(name, function, inputs, baselines, arguments.repeat)
        rows += new_rows

    matrix_names = [n for n in ("kl_mvn", "score_mvn") if not arguments.names or n in arguments.names]
    if matrix_names and has_linalg:
        for name, inputs, label, call in matrix_cases(arguments.batch, arguments.dimension):
            if name not in matrix_names:
                continue
            function = getattr(generated, name)
            try:
                function(**inputs)
            except Exception as error:
                skipped.append(f"{name} (fails: {type(error).__name__}: {error})")
                continue
            label_row = f"{name} {arguments.batch}x{arguments.dimension}"
            new_rows, ratios[label_row] = time_function(label_row, function, inputs, [(label, call)],
                                                        max(3, arguments.repeat))
            rows += new_rows
    elif matrix_names:
        skipped.append("kl_mvn, score_mvn (symgen/numerics/array_linalg.py does not exist yet)")

    print(table(rows, ("function", "symgen", "symgen+validate", "baseline", "baseline ms",
                       "ratio", "paired median", "ratio+validate", "page faults (k)")))
    if skipped:
        print("not timed: " + "; ".join(skipped))
    print("# page faults (k): thousands of minor page faults in the best call of symgen / of the "
          "baseline. torch's CPU allocator\n# takes each temporary (8 MB at 10^6 float64) from malloc, and glibc's "
          "malloc may hand it back to the system at free\n# (mmap threshold, heap trimming), so a "
          "call can fault in every temporary afresh; which calls do depends on\n# the heap state "
          "earlier calls left. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:"
          "glibc.malloc.trim_threshold=1073741824\n# keeps freed memory in the process: rerun with it "
          "to see the arithmetic alone.")
    busy_at_end = busy_seconds()
    if busy_at_start and busy_at_end:
        # CPU time other processes took during the run, as a share of the machine: above a
        # few percent, they competed with the timed calls for the cores.
        others = (busy_at_end[0] - busy_at_start[0]) - (busy_at_end[1] - busy_at_start[1])
        share = max(others, 0.0) / ((time.perf_counter() - started) * (os.cpu_count() or 1))
        print(f"# other processes used {share:.0%} of the {os.cpu_count()} cores during the run; "
              f"{load_average()} at the end"
              + ("; the figures are preliminary (rerun on an idle machine)" if share > 0.05 else ""))
    if ratios:
        within = [n for n, (fast, _, _) in ratios.items() if fast <= TARGET]
        worst = max(ratios, key=lambda n: ratios[n][0])
        worst_checked = max(ratios, key=lambda n: ratios[n][1])
        print(f"summary: {len(within)} of {len(ratios)} functions within {TARGET}x of their baseline "
              f"(validate=False); worst {ratios[worst][0]:.2f}x ({worst}); with validation the worst "
              f"is {ratios[worst_checked][1]:.2f}x ({worst_checked})")
        outside = [f"{n} {ratios[n][0]:.2f}x" for n in ratios if ratios[n][0] > TARGET]
        if outside:
            print("outside the target: " + ", ".join(outside))
        disturbed = [n for n, (fast, _, paired) in ratios.items() if abs(paired / fast - 1) > 0.25]
        if disturbed:
            print("best-of and paired median ratios differ by more than 25% (disturbed rounds) for: "
                  + ", ".join(disturbed))


if __name__ == "__main__":
    main()
