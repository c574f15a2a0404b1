"""symgen's pytest plugin: keep a codebase's formulas under test.

Registered under the ``pytest11`` entry point as ``symgen``, so installing symgen makes it
available in every pytest session. It provides the fixture ``symgen_check``::

    def test_my_kl(symgen_check):
        symgen_check("kl_std_normal", my_kl, args={"mu": "loc", "log_var": "logvar"})

which judges the candidate with :func:`symgen.check` and fails the test with the verdict
and the counterexample when it is refuted (it returns the result otherwise), and the
option ``--symgen-seed N``, the seed of the checks' random points (default: derandomized,
the same points every run). Nothing is imported from SymPy, SciPy or hypothesis until the
fixture is used: a session that does not use it pays nothing.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("symgen", "symgen: formulas checked against their derivations")
    group.addoption("--symgen-seed", type=int, default=None, metavar="N",
                    help="seed of the random points symgen_check judges at (default: derandomized)")


@pytest.fixture
def symgen_check(request):
    """``symgen_check(name, candidate, **options)``: :func:`symgen.check` that fails the
    test when the candidate is refuted (options: args, rtol, grad, seed)."""
    seed = request.config.getoption("--symgen-seed")

    def check(name, candidate, **options):
        import symgen

        options.setdefault("seed", seed)
        result = symgen.check(name, candidate, **options)
        if not result.verified:
            pytest.fail(str(result), pytrace=False)
        return result

    return check
