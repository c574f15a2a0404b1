"""Test configuration.

Hypothesis is derandomized under CI, so the suite is never flaky; locally (no CI
variable) it draws fresh examples each run, to hunt for failures.

The tests share the derivation cache with the command line (symgen/engine/cache.py): an
entry is keyed by the exact text of the derivation module, the engine's source and the
SymPy and mpmath versions, and only a proof that succeeded is ever stored, so a cached
proof is the proof of exactly these sources. (CI runs `symgen verify` first, which
proves every step.) SYMGEN_CACHE_DIR=off proves everything from scratch.
"""
import os

# One BLAS thread per test worker (pytest-xdist runs two): the checks' small least-squares
# fits are many times slower with threads competing for the same cores (see symgen/cli.py).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
