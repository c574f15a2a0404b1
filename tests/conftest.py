"""Test configuration: hypothesis is derandomized under CI, so the suite is never flaky.

Locally (no CI variable) hypothesis draws fresh examples each run, to hunt for failures.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
