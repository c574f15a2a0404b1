"""frechet_distance against the scipy.linalg.sqrtm route that FID tools use.

    python benchmarks/frechet.py [--dims 512 1024 2048]

The sqrtm route (as in the FID reference code): sqrtm(cov1 @ cov2), its real part, then
||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr(covmean). Prints times, the speed-up and
the relative difference of the two results (target: >= 5x at d = 2048, <= 1e-10).

A second table does the same for singular covariances, estimated from d/2 samples each
(few images): there the relative difference is mostly the sqrtm route's own error, the
square roots of rounded zero eigenvalues (~1e-8; see tests/test_frechet_singular.py).
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import linalg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_time, table  # noqa: E402

import symgen  # noqa: E402


def sqrtm_route(loc1, cov1, loc2, cov2):
    covmean = linalg.sqrtm(cov1 @ cov2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    difference = loc1 - loc2
    return difference @ difference + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean)


def feature_covariance(rng, d, samples):
    # Like Inception features: a covariance estimated from a few thousand samples.
    features = rng.standard_normal((samples, d)) @ (rng.standard_normal((d, d)) / np.sqrt(d))
    return np.cov(features, rowvar=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args(argv)
    if "frechet_distance" not in symgen.derivations():
        print("frechet_distance is not in this catalogue yet: nothing to measure")
        return
    rng = np.random.default_rng(0)
    print(compare(rng, arguments.dims, 4, arguments.repeat))
    print("\nsingular covariances (d/2 samples each):")
    print(compare(rng, arguments.dims, 0.5, arguments.repeat))


def compare(rng, dims, samples_per_dimension, repeat):
    """The table of times and relative differences for covariances of `samples_per_dimension` x d
    samples each."""
    rows = []
    for d in dims:
        loc1, loc2 = rng.standard_normal(d), rng.standard_normal(d)
        samples = int(samples_per_dimension * d)
        cov1, cov2 = feature_covariance(rng, d, samples), feature_covariance(rng, d, samples)
        ours = best_time(symgen.frechet_distance, loc1, cov1, loc2, cov2, repeat=repeat)
        value = float(symgen.frechet_distance(loc1, cov1, loc2, cov2))
        # The sqrtm route takes seconds at d = 2048 (minutes with older SciPy): timed without a warm-up call (it has
        # nothing to warm up), its result kept from the timed runs.
        theirs, reference = math.inf, None
        for _ in range(repeat if d < 2048 else 1):
            start = time.perf_counter()
            reference = float(sqrtm_route(loc1, cov1, loc2, cov2))
            theirs = min(theirs, time.perf_counter() - start)
        rows.append((d, f"{ours:.3f}", f"{theirs:.3f}", f"{theirs / ours:.1f}x",
                     f"{abs(value - reference) / abs(reference):.1e}"))
    return table(rows, ("d", "symgen s", "sqrtm route s", "speed-up", "relative difference"))


if __name__ == "__main__":
    main()
