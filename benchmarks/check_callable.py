"""CPU time of symgen.check on user callables, from the corpus of tests/test_user_candidates.py.

    python benchmarks/check_callable.py [--repeat 1] [ID ...]

Judging a callable means calling it at 200 and more points (once per point when it cannot
take arrays), comparing with the proved closed form at 50 digits, and running the
derivation's Monte Carlo checks. Eight representative callables: scalar NumPy functions
that broadcast, functions that take one point at a time (math., SciPy's sqrtm on (d, d)
matrices), a function returning a tuple of outputs, torch functions (if torch is
installed), and a wrong one (the refutation and the shrinking of its counterexample).

Each check runs ``--repeat`` times in this process (the fastest run counts) after one
warm-up that imports the engine, SciPy and torch, so the figures are the cost of judging,
not of first imports; the derivation's own first load is part of its first run, as for a
user. Target: median <= 5 s CPU (time.process_time; wall time printed beside it: on a
machine shared with other work, wall time is the noisier of the two).
"""
from __future__ import annotations

import os

# One BLAS thread, as `symgen check` sets for itself (symgen/cli.py): the checks' small
# least-squares fits are slower with two threads competing for two cores.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import table  # noqa: E402

TARGET_MEDIAN_CPU = 5.0
REPRESENTATIVE = [
    "kl_normal/positional-only-lambda",                       # scalar NumPy, broadcasts (cancels near p = q)
    "diffusion_posterior/improved-diffusion-tuple",           # broadcasts, returns (mean, var)
    "tweedie_normal.mean/kalman-gain",                        # broadcasts, own names via args=
    "diffusion_cosine_schedule.alpha_bar/math-per-point",     # one point at a time (math.cos)
    "vae_linear_gaussian_elbo/math-per-point",                # one point at a time, six parameters
    "frechet_distance/pytorch-fid-sqrtm",                     # one point at a time, (d,) and (d, d), sqrtm
    "kl_normal/improved-diffusion-torch",                     # torch
    "kl_normal/1%-off-when-both-scales-below-0.1",            # wrong in a corner: refuted, shrunk
]


def load_corpus():
    """The candidates of tests/test_user_candidates.py, by id (the module needs pytest)."""
    path = ROOT / "tests" / "test_user_candidates.py"
    spec = importlib.util.spec_from_file_location("user_candidates", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return {candidate.id: candidate for candidate in module.CORPUS}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def warm_up(with_torch: bool):
    """Import what every check uses, once, outside the timings."""
    import scipy.linalg  # noqa: F401

    import symgen
    from symgen.engine import api  # noqa: F401

    symgen.derivations()
    if with_torch:
        import torch  # noqa: F401


def time_check(candidate, repeat: int):
    """(cpu seconds, wall seconds, verdict) of the fastest of ``repeat`` runs."""
    import symgen

    best = None
    for _ in range(repeat):
        built = candidate.build()
        cpu, wall = time.process_time(), time.perf_counter()
        result = symgen.check(candidate.name, built, args=candidate.args)
        run = (time.process_time() - cpu, time.perf_counter() - wall, result)
        if best is None or run[0] < best[0]:
            best = run
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="candidate ids from the corpus (default: the representative eight)")
    parser.add_argument("--repeat", type=int, default=1)
    arguments = parser.parse_args(argv)
    corpus = load_corpus()
    with_torch = torch_available()
    warm_up(with_torch)
    rows, cpu_times = [], []
    for identifier in arguments.ids or REPRESENTATIVE:
        candidate = corpus[identifier]
        if candidate.torch and not with_torch:
            rows.append((identifier, candidate.kind, "", "", "skipped: torch is not installed"))
            continue
        cpu, wall, result = time_check(candidate, arguments.repeat)
        cpu_times.append(cpu)
        verdict = "verified" if result.verified else "refuted"
        expected = "verified" if candidate.correct else "refuted"
        outcome = verdict if verdict == expected else f"{verdict} (expected {expected})"
        rows.append((identifier, candidate.kind, f"{cpu:.2f}", f"{wall:.2f}", outcome))
        print(f"  {identifier}: {cpu:.2f} s CPU, {wall:.2f} s wall, {outcome}", file=sys.stderr, flush=True)
    print(table(rows, ("candidate", "kind", "CPU s", "wall s", "verdict")))
    if cpu_times:
        median = statistics.median(cpu_times)
        status = "meets" if median <= TARGET_MEDIAN_CPU else "MISSES"
        print(f"\nmedian CPU time of symgen.check over {len(cpu_times)} callables: {median:.2f} s "
              f"({status} the target median <= {TARGET_MEDIAN_CPU:.0f} s CPU)")


if __name__ == "__main__":
    main()
