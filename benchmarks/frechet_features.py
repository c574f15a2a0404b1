"""FID from features: frechet_distance_from_features against the routes that form covariances.

    python benchmarks/frechet_features.py [--sizes 128 512 2048 4096] [--dim 2048] [--threads 1]

For n = m images of d = 2048 features (ReLU of correlated Gaussians, non-negative like
Inception's pool features) it times, in one table:

- ours: symgen.numerics.frechet_features.frechet_distance_from_features(x, y) (the n x m
  nuclear-norm route for few images, the covariance route above n ~ 1.3 d; the route column
  says which);
- the pytorch-fid route: np.mean, np.cov(rowvar=False), scipy.linalg.sqrtm(cov1 @ cov2), its
  real part, ||mu1 - mu2||^2 + tr cov1 + tr cov2 - 2 tr covmean;
- np.cov + symgen's frechet_distance on the same moments;

with the speed-ups (their time over ours) and the relative differences of the values
(|theirs - ours| / ours). For n <= d the covariances are singular and the difference to the
sqrtm route is mostly that route's own error (square roots of rounded zero eigenvalues).

Threads: OPENBLAS_NUM_THREADS (and OMP/MKL) are set to --threads before NumPy loads, 1 by
default: the machine the figures come from has 2 cores shared with other jobs, and the
route switch's weights were measured with one thread. sqrtm takes seconds at d = 2048, so
it is timed once (no warm-up: it has nothing to warm up); the others are the best of
--repeat rounds (benchmarks/_timing.best_times).
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048, 4096])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args(argv)
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(arguments.threads)

    import numpy as np  # after the thread settings

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _timing import best_times, table

    from symgen.numerics import frechet_features
    from symgen.numerics.frechet import frechet_distance

    rng = np.random.default_rng(0)
    d = arguments.dim
    mixing = rng.standard_normal((d, d)) / math.sqrt(d)
    rows = []
    for n in arguments.sizes:
        x = np.maximum(rng.standard_normal((n, d)) @ mixing, 0.0)
        y = np.maximum(rng.standard_normal((n, d)) @ mixing + 0.05, 0.0)
        def ours_call(x=x, y=y):
            return frechet_features.frechet_distance_from_features(x, y)

        def moments_call(x=x, y=y):
            return covariance_route(np, frechet_distance, x, y)

        ours_time, moments_time = best_times([ours_call, moments_call], repeat=arguments.repeat)
        ours, moments = float(ours_call()), float(moments_call())
        start = time.perf_counter()
        theirs = sqrtm_route(np, x, y)
        sqrtm_time = time.perf_counter() - start
        route = "features" if frechet_features._features_route_cheaper(n, n, d) else "covariance"
        rows.append((n, route, f"{ours_time:.3f}", f"{sqrtm_time:.3f}", f"{sqrtm_time / ours_time:.1f}x",
                     f"{moments_time:.3f}", f"{moments_time / ours_time:.1f}x",
                     f"{abs(theirs - ours) / ours:.1e}", f"{abs(moments - ours) / ours:.1e}"))
        print(f"n = m = {n} done", file=sys.stderr, flush=True)
    print(f"d = {d}, n = m images, {arguments.threads} BLAS thread(s); times in seconds")
    print(table(rows, ("n", "our route", "ours", "sqrtm route", "speed-up", "np.cov + frechet_distance",
                       "speed-up", "rel. diff sqrtm", "rel. diff np.cov + f_d")))


def sqrtm_route(np, x, y):
    """pytorch-fid's calculate_frechet_distance on np.mean / np.cov."""
    import warnings

    from scipy import linalg

    mu1, mu2 = np.mean(x, axis=0), np.mean(y, axis=0)
    cov1, cov2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov1 @ cov2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def covariance_route(np, frechet_distance, x, y):
    return frechet_distance(np.mean(x, axis=0), np.cov(x, rowvar=False),
                            np.mean(y, axis=0), np.cov(y, rowvar=False))


if __name__ == "__main__":
    main()
