"""EDM preconditioning (derivations/preconditioning.py): Karras et al.'s Table 1, the limits of
the scalings, their defining properties on simulated data, and values far outside EDM's range.

Accuracy over the declared domain, the empirical checks' power (every usual slip and mutant
refuted) and the backends are covered catalogue-wide (tests/test_accuracy.py,
tests/test_mutations.py, tests/test_proofs.py, tests/test_float32.py, tests/test_backends.py).
"""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp

import symgen
from symgen import edm_preconditioning

FOUND = symgen.derivation("edm_preconditioning")
MODULE = FOUND.module
SIGMA, SIGMA_DATA = MODULE.sigma, MODULE.sigma_data


def table_1(sigma, sigma_data):
    """Karras et al. (2022), Table 1, EDM column ("Network and preconditioning"), as printed there."""
    return dict(c_skip=sigma_data**2 / (sigma**2 + sigma_data**2),
                c_out=sigma * sigma_data / np.sqrt(sigma_data**2 + sigma**2),
                c_in=1 / np.sqrt(sigma_data**2 + sigma**2),
                c_noise=np.log(sigma) / 4)


def test_outputs_are_named():
    assert edm_preconditioning(1.0, 0.5)._fields == ("c_skip", "c_out", "c_in", "c_noise")  # Table 1's order


@pytest.mark.parametrize("sigma_data", [0.5, 1.0, 0.05, 3.0])
def test_the_scalings_are_table_1(sigma_data):
    # EDM's training and sampling range of noise levels, sigma in [0.002, 80], and beyond.
    sigma = np.geomspace(2e-3, 80, 200)
    result = edm_preconditioning(sigma, sigma_data)
    for name, expected in table_1(sigma, sigma_data).items():
        np.testing.assert_allclose(getattr(result, name), expected, rtol=4e-16 * 8, atol=0, err_msg=name)


def test_the_closed_forms_are_table_1_symbolically():
    paper = {"c_skip": SIGMA_DATA**2 / (SIGMA**2 + SIGMA_DATA**2),
             "c_out": SIGMA * SIGMA_DATA / sp.sqrt(SIGMA_DATA**2 + SIGMA**2),
             "c_in": 1 / sp.sqrt(SIGMA_DATA**2 + SIGMA**2),
             "c_noise": sp.log(SIGMA) / 4}
    for name, expected in paper.items():
        assert sp.simplify(FOUND.output(name).closed_form - expected) == 0, name


def test_the_limits_in_sigma():
    """sigma -> 0: D passes x through (c_skip -> 1, c_out -> 0); sigma -> infinity: D relies on F
    (c_skip -> 0, c_out -> sigma_data); c_in -> 1/sigma_data and ~1/sigma. By SymPy, and numerically."""
    closed = {name: output.closed_form for name, output in FOUND.outputs.items()}
    assert sp.limit(closed["c_skip"], SIGMA, 0) == 1
    assert sp.limit(closed["c_out"], SIGMA, 0) == 0
    assert sp.limit(closed["c_in"], SIGMA, 0) == 1 / SIGMA_DATA
    assert sp.limit(closed["c_skip"], SIGMA, sp.oo) == 0
    assert sp.limit(closed["c_out"], SIGMA, sp.oo) == SIGMA_DATA
    assert sp.limit(closed["c_in"] * SIGMA, SIGMA, sp.oo) == 1
    small, large = (edm_preconditioning(sigma, 0.5) for sigma in (0.5e-9, 0.5e9))
    assert small.c_skip == pytest.approx(1.0, abs=1e-15) and large.c_skip == pytest.approx(0.0, abs=1e-15)
    assert small.c_out == pytest.approx(0.5e-9, rel=1e-15) and large.c_out == pytest.approx(0.5, rel=1e-15)
    assert small.c_in == pytest.approx(2.0, rel=1e-15) and large.c_in * 0.5e9 == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("sigma, sigma_data", [(1e-200, 0.5), (1e200, 0.5), (1e-160, 1e-160), (1e160, 1e155),
                                               (3e-300, 2e-3), (0.5, 1e300)])
def test_no_square_overflows_or_underflows(sigma, sigma_data):
    """Far outside the domain (and EDM's range), where sigma^2 or sigma_data^2 leave float64: the
    hypot forms stay within a few ulps of 50-digit mpmath (every value here is representable)."""
    result = edm_preconditioning(sigma, sigma_data)
    with mpmath.workdps(50):
        s, d = mpmath.mpf(sigma), mpmath.mpf(sigma_data)
        exact = dict(c_skip=d**2 / (s**2 + d**2), c_out=s * d / mpmath.sqrt(s**2 + d**2),
                     c_in=1 / mpmath.sqrt(s**2 + d**2), c_noise=mpmath.log(s) / 4)
    for name, value in exact.items():
        if abs(value) < 1e-300:        # underflows in float64 as it should (c_skip at sigma/sigma_data = 1e200)
            assert abs(getattr(result, name)) < 1e-300, name
            continue
        assert float(abs(getattr(result, name) - value) / abs(value)) < 1e-15, (name, sigma, sigma_data)


def test_textbook_squares_overflow_where_hypot_does_not():
    sigma, sigma_data = 1e200, 0.5
    with np.errstate(over="ignore"):
        textbook = table_1(np.float64(sigma), sigma_data)
    assert textbook["c_out"] == 0 or not np.isfinite(textbook["c_out"])
    assert edm_preconditioning(sigma, sigma_data).c_out == pytest.approx(0.5, rel=1e-15)


@pytest.mark.parametrize("law", ["uniform", "two-point", "laplace"])
def test_unit_variances_on_simulated_non_gaussian_data(law):
    """The three requirements of App. B.6 on samples: Var[c_in x] = 1, Var[(y - c_skip x)/c_out] = 1,
    and c_skip is the least-squares slope of y on x (so c_out is least), whatever the law of y."""
    rng = np.random.default_rng(7)
    sigma_data, count = 0.5, 2_000_000
    draws = {"uniform": lambda: math.sqrt(3) * sigma_data * rng.uniform(-1, 1, count),
             "two-point": lambda: sigma_data * rng.choice([-1.0, 1.0], count),
             "laplace": lambda: rng.laplace(0.0, sigma_data / math.sqrt(2), count)}[law]
    for sigma in (0.02, 0.5, 3.0):
        y = draws()
        x = y + sigma * rng.standard_normal(count)
        scalings = edm_preconditioning(sigma, sigma_data)
        target = (y - scalings.c_skip * x) / scalings.c_out
        # Standard errors here are below 0.002 (fourth moments of these laws are at most 6 sigma^4).
        assert np.var(scalings.c_in * x) == pytest.approx(1.0, abs=0.01)
        assert np.var(target) == pytest.approx(1.0, abs=0.01)
        slope = np.dot(x, y) / np.dot(x, x)
        assert slope == pytest.approx(scalings.c_skip, abs=0.01)


def test_c_skip_minimises_the_target_scale_numerically():
    from scipy import optimize

    for sigma, sigma_data in [(0.002, 0.5), (0.5, 0.5), (80.0, 0.5), (1.3, 0.07)]:
        def scale(c, sigma=sigma, sigma_data=sigma_data):
            return (1 - c) ** 2 * sigma_data**2 + c**2 * sigma**2

        found = optimize.minimize_scalar(scale, bounds=(0, 1), method="bounded", options={"xatol": 1e-12})
        result = edm_preconditioning(sigma, sigma_data)
        assert found.x == pytest.approx(result.c_skip, rel=1e-6, abs=1e-10)
        assert math.sqrt(found.fun) == pytest.approx(result.c_out, rel=1e-9)


def test_the_backends_agree():
    torch = pytest.importorskip("torch")
    from symgen.torch import edm_preconditioning as torch_preconditioning

    sigma = np.geomspace(2e-3, 80, 50)
    expected = edm_preconditioning(sigma, 0.5)
    found = torch_preconditioning(torch.from_numpy(sigma), torch.tensor(0.5, dtype=torch.float64))
    for name in expected._fields:
        np.testing.assert_allclose(getattr(found, name).numpy(), getattr(expected, name), rtol=1e-15)
