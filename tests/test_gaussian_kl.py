"""The Gaussian KL family: relations, accuracy, dtypes, errors (the proofs and the empirical
checks are tested catalogue-wide: tests/test_proofs.py, tests/test_checks.py)."""
import math

import numpy as np
import pytest

import symgen
from symgen import kl_mvn, kl_normal, kl_std_normal
from symgen.engine import MeanCheck
from symgen.engine.accuracy import relative_error
from symgen.engine.api import parse_candidate
from symgen.engine.evaluate import reference_value
from symgen.engine.runner import expression_values, run_check


def closed_form_reference(name, point):
    found = symgen.derivation(name)
    return reference_value(found, found.output().closed_form, point)


# --- relations ------------------------------------------------------------------------


def test_kl_std_normal_is_kl_normal_at_the_standard_normal():
    loc = np.linspace(-3, 3, 7)
    logvar = np.linspace(-4, 4, 7)
    np.testing.assert_allclose(kl_std_normal(loc, logvar), kl_normal(loc, np.exp(logvar / 2), 0.0, 1.0),
                               rtol=1e-13)


# --- the Monte Carlo checks' power: candidates 0.1% off ---------------------------------

TEXTBOOK = {
    "kl_normal": "log(scale_q/scale_p) + (scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2) - 1/2",
    "kl_std_normal": "(exp(logvar) - 1 - logvar + loc**2)/2",
    "kl_mvn": "(trace(cov_p*inv(cov_q)) + quad(loc_p - loc_q, inv(cov_q)) - d + log(det(cov_q)/det(cov_p)))/2",
}


def mean_check_alone(name, candidate, examples):
    """The derivation's Monte Carlo check by itself (no quadrature identity to help)."""
    found = symgen.derivation(name)
    check = next(check for check in found.checks if isinstance(check, MeanCheck))
    values = expression_values(found, name, parse_candidate(found, candidate))
    return run_check(found, check, values, examples=examples, shrink=False)


@pytest.mark.parametrize("name", TEXTBOOK)
def test_the_monte_carlo_check_alone_refutes_a_kl_a_tenth_of_a_percent_off(name):
    # The log-ratios are quadratics in the normals the draws are built from: with Hermite
    # control variates the estimate is exact to rounding (resolution ~1e-12; before, 0.06%
    # for kl_mvn from 400_000 draws).
    assert not mean_check_alone(name, f"({TEXTBOOK[name]})*1.001", examples=3).passed
    right = mean_check_alone(name, TEXTBOOK[name], examples=1)
    assert right.passed, right.failure
    assert right.resolution <= 1e-11


# --- accuracy against 50-digit mpmath -------------------------------------------------


def textbook_kl_normal(loc_p, scale_p, loc_q, scale_q):
    return math.log(scale_q / scale_p) + (scale_p**2 + (loc_p - loc_q) ** 2) / (2 * scale_q**2) - 0.5


@pytest.mark.parametrize("scale", [1e-2, 0.3, 1.0, 7.0, 1e2])
@pytest.mark.parametrize("relative", [1e-9, -1e-9, 1e-6, 3e-12])
def test_kl_normal_near_equal_scales(scale, relative):
    point = dict(loc_p=0.5, scale_p=scale * (1 + relative), loc_q=0.5, scale_q=scale)
    reference = closed_form_reference("kl_normal", point)
    assert relative_error(kl_normal(**point), reference) <= 1e-12
    # The textbook formula loses at least half its digits here (all of them at 1e-9):
    # this is the case that matters.
    assert relative_error(textbook_kl_normal(**point), reference) > 1e-6


def test_kl_normal_tiny_loc_difference():
    point = dict(loc_p=1.0, scale_p=2.0, loc_q=1.0 + 1e-10, scale_q=2.0)
    reference = closed_form_reference("kl_normal", point)
    assert relative_error(kl_normal(**point), reference) <= 1e-12
    assert relative_error(textbook_kl_normal(**point), reference) > 1e-3


@pytest.mark.parametrize("logvar", [1e-12, -1e-9, 1e-6, -3e-4, 0.5, -1.5])
def test_kl_std_normal_logvar_near_zero(logvar):
    point = dict(loc=0.0, logvar=logvar)
    reference = closed_form_reference("kl_std_normal", point)
    assert relative_error(kl_std_normal(**point), reference) <= 1e-12
    if abs(logvar) <= 1e-5:  # the notebook's formula (section 3) loses most digits here
        textbook = 0.5 * (math.exp(logvar) + 0.0 - 1 - logvar)
        assert relative_error(textbook, reference) > 1e-6


def test_identical_distributions_give_exactly_zero():
    assert kl_normal(0.3, 1.7, 0.3, 1.7) == 0.0
    assert kl_std_normal(0.0, 0.0) == 0.0
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    assert kl_mvn(np.ones(2), cov, np.ones(2), cov) == 0.0


# --- dtypes and broadcasting ----------------------------------------------------------


def test_float32_in_float32_out():
    f32 = np.float32
    assert kl_normal(f32(0.1), f32(1.2), f32(-0.3), f32(0.9)).dtype == np.float32
    assert kl_normal(np.zeros(3, f32), np.ones(3, f32), f32(1), f32(2)).dtype == np.float32
    assert kl_std_normal(np.zeros(3, f32), np.full(3, 0.1, f32)).dtype == np.float32
    cov = np.eye(2, dtype=f32)
    assert kl_mvn(np.zeros(2, f32), cov, np.ones(2, f32), 2 * cov).dtype == np.float32


def test_ints_and_mixed_precision_give_float64():
    assert kl_normal(0, 1, 1, 2).dtype == np.float64
    assert kl_normal(np.float32(0), 1.0, 1.0, 2.0).dtype == np.float64


def test_broadcasting_follows_numpy():
    loc_p = np.linspace(-1, 1, 4)[:, None]
    scale_q = np.array([0.5, 1.0, 2.0])
    result = kl_normal(loc_p, 1.0, 0.0, scale_q)
    assert result.shape == (4, 3)
    assert result[2, 1] == pytest.approx(textbook_kl_normal(float(loc_p[2, 0]), 1.0, 0.0, 1.0), rel=1e-14)


def test_batched_kl_mvn_matches_loop():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 3, 3))
    cov_p = a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)
    cov_q = np.eye(3) * 2.0
    loc_p = rng.standard_normal((5, 3))
    batch = kl_mvn(loc_p, cov_p, np.zeros(3), cov_q)
    assert batch.shape == (5,)
    for i in range(5):
        assert batch[i] == pytest.approx(float(kl_mvn(loc_p[i], cov_p[i], np.zeros(3), cov_q)), rel=1e-13)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("arguments, named", [
    ((0.0, -1.0, 0.0, 1.0), "scale_p"),
    ((0.0, 1.0, 0.0, 0.0), "scale_q"),
    ((np.nan, 1.0, 0.0, 1.0), "loc_p"),
    ((0.0, 1.0, np.inf, 1.0), "loc_q"),
    ((0.0, np.nan, 0.0, 1.0), "scale_p"),
])
def test_kl_normal_rejects_bad_arguments(arguments, named):
    with pytest.raises(ValueError, match=rf"kl_normal: argument '{named}'"):
        kl_normal(*arguments)


def test_kl_normal_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match="kl_normal: arguments do not broadcast"):
        kl_normal(np.zeros(2), np.ones(3), 0.0, 1.0)


def test_kl_std_normal_rejects_nan():
    with pytest.raises(ValueError, match="kl_std_normal: argument 'logvar'"):
        kl_std_normal(0.0, np.array([0.0, np.nan]))


def test_validate_false_skips_the_checks():
    with pytest.raises(ValueError):
        kl_normal(0.0, -1.0, 0.0, 1.0)
    with np.errstate(all="ignore"):
        kl_normal(0.0, -1.0, 0.0, 1.0, validate=False)       # no check, no error
        kl_std_normal(np.nan, 0.0, validate=False)


@pytest.mark.parametrize("change, named", [
    (dict(cov_p=np.array([[1.0, 0.5], [0.0, 1.0]])), "cov_p"),           # not symmetric
    (dict(cov_q=np.array([[1.0, 2.0], [2.0, 1.0]])), "cov_q"),           # indefinite
    (dict(cov_q=np.zeros((2, 2))), "cov_q"),                             # singular
    (dict(loc_p=np.zeros(3)), "loc_p"),                                  # dimension mismatch
    (dict(cov_p=np.full((2, 2), np.nan)), "cov_p"),
])
def test_kl_mvn_rejects_bad_arguments(change, named):
    arguments = dict(loc_p=np.zeros(2), cov_p=np.eye(2), loc_q=np.ones(2), cov_q=2 * np.eye(2))
    arguments.update(change)
    with pytest.raises(ValueError, match=rf"kl_mvn: .*{named}"):
        kl_mvn(**arguments)
