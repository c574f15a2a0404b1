"""The stable primitives against 50-digit mpmath, including where the textbook forms cancel."""
import mpmath
import numpy as np
from hypothesis import given, settings, strategies as st

from symgen.numerics.stable import expm1mx, log1pmx, minus_reciprocal

# The primitives switch to their textbook forms where those round to at most ~30 ulps.
ULP = np.finfo(np.float64).eps


def relative(value, exact):
    with mpmath.workdps(50):
        return abs((mpmath.mpf(float(value)) - exact) / exact)


def exact_log1pmx(u):
    # 400 digits: at |u| = 1e-150, log1p(u) - u is 150 digits below u.
    with mpmath.workdps(400):
        return mpmath.log1p(mpmath.mpf(u)) - u


def exact_expm1mx(x):
    with mpmath.workdps(400):
        return mpmath.expm1(mpmath.mpf(x)) - x


# Below |v| = 1e-150 the exact results underflow float64 (v^2/2 < 1e-300).
tiny_or_moderate = st.one_of(
    st.floats(-0.999999, 50.0),
    st.floats(1e-150, 1e-2).flatmap(lambda v: st.sampled_from([v, -v])),
).filter(lambda v: abs(v) >= 1e-150)


@settings(max_examples=500)
@given(u=tiny_or_moderate)
def test_log1pmx_is_accurate_to_a_few_ulps(u):
    assert relative(log1pmx(u), exact_log1pmx(u)) <= 40 * ULP


@settings(max_examples=500)
@given(x=st.one_of(st.floats(-700.0, 700.0), st.floats(1e-150, 1e-2).flatmap(
    lambda v: st.sampled_from([v, -v]))).filter(lambda v: abs(v) >= 1e-150))
def test_expm1mx_is_accurate_to_a_few_ulps(x):
    assert relative(expm1mx(x), exact_expm1mx(x)) <= 40 * ULP


def test_textbook_forms_cancel_where_the_primitives_do_not():
    u = 1e-9
    assert relative(np.log1p(u) - u, exact_log1pmx(u)) > 1e-8   # the naive form lost 8 digits
    assert relative(log1pmx(u), exact_log1pmx(u)) <= 40 * ULP


def test_arrays_mixing_both_branches_and_dtypes():
    u = np.array([-0.9, -0.3, 1e-12, 0.7, 5.0, 1e6])
    exact = [exact_log1pmx(v) for v in u]
    assert all(relative(got, want) <= 40 * ULP for got, want in zip(log1pmx(u), exact))
    assert log1pmx(np.float32(1e-3)).dtype == np.float32
    assert expm1mx(np.array([1e-3, 3.0], dtype=np.float32)).dtype == np.float32
    assert log1pmx(-1.0) == -np.inf


# --- log_normal_mass: log(Phi(b) - Phi(a)) ----------------------------------------------------

from symgen.engine.primitives import log_normal_mass_mpmath
from symgen.numerics.stable import log_normal_mass

# Below the smallest normal float64 only absolute accuracy is possible (as in symgen.engine.accuracy).
SMALLEST_NORMAL = mpmath.mpf(np.finfo(np.float64).tiny)


def exact_log_normal_mass(a, b):
    """The value at 60 digits, and the relative condition number of log P in (a, b),
    kappa = (|a| phi(a) + |b| phi(b)) / (P |log P|): how much the exact value moves for a
    relative change of one ulp in the arguments."""
    with mpmath.workdps(60):
        value = log_normal_mass_mpmath(a, b)
        sensitivity = mpmath.fsum(abs(mpmath.mpf(v)) * mpmath.npdf(v) for v in (a, b) if mpmath.isfinite(v))
        kappa = sensitivity / (mpmath.exp(value) * abs(value)) if value != 0 else 0
        return value, float(kappa)


def relative_with_floor(value, exact):
    return float(abs(mpmath.mpf(float(value)) - exact) / max(abs(exact), SMALLEST_NORMAL))


ends = st.one_of(st.floats(-60.0, 60.0), st.floats(-3.0, 3.0))
widths = st.floats(-12.0, 2.0).map(lambda e: 10.0**e)


@settings(max_examples=400)
@given(a=ends, width=widths, edge=st.sampled_from(["none", "lower", "upper"]))
def test_log_normal_mass_is_accurate_to_a_few_ulps_times_its_condition(a, width, edge):
    # Measured worst over 30000 random intervals: 4.3 ulps x (1 + kappa).
    b = a + width
    if edge == "lower":
        a = -np.inf
    elif edge == "upper":
        b = np.inf
    exact, kappa = exact_log_normal_mass(a, b)
    assert relative_with_floor(log_normal_mass(a, b), exact) <= 16 * ULP * (1 + kappa)


def test_log_normal_mass_in_the_tails_where_the_textbook_difference_is_log_zero():
    from scipy import special

    a, b = 38.0, 38.0 + 2 / 255 / 0.01           # a bin 38 standard deviations above the mean
    exact, _ = exact_log_normal_mass(a, b)
    with np.errstate(divide="ignore"):
        assert np.log(special.ndtr(b) - special.ndtr(a)) == -np.inf      # both CDFs round to 1
    assert relative_with_floor(log_normal_mass(a, b), exact) <= 8 * ULP
    assert relative_with_floor(log_normal_mass(-b, -a), exact) <= 8 * ULP  # the mirror image
    # A bin containing the mean with mass 1 - 2e-29: log P = -2e-29, from log1p of the tails.
    exact, _ = exact_log_normal_mass(-11.0, 11.0)
    assert relative_with_floor(log_normal_mass(-11.0, 11.0), exact) <= 8 * ULP
    assert np.log(special.ndtr(11.0) - special.ndtr(-11.0)) == 0.0


def test_log_normal_mass_edges_arrays_and_dtypes():
    lower = np.array([-np.inf, -np.inf, 0.5, -3.0, 1.0])
    upper = np.array([np.inf, 0.0, np.inf, 40.0, 1.0])
    values = log_normal_mass(lower, upper)
    assert values[0] == 0.0 and values[4] == -np.inf               # the whole line; an empty interval
    assert relative_with_floor(values[1], mpmath.log(mpmath.mpf(0.5))) <= 2 * ULP
    for got, a, b in zip(values[2:4], lower[2:4], upper[2:4]):
        assert relative_with_floor(got, exact_log_normal_mass(a, b)[0]) <= 8 * ULP
    assert log_normal_mass(np.float32(0.1), np.float32(0.2)).dtype == np.float32
    assert log_normal_mass(np.zeros((2, 1)), np.ones(3)).shape == (2, 3)
    assert np.isnan(log_normal_mass(np.nan, 1.0))


# --- softplus and logaddexp: fast forms, no overflow ------------------------------------------


def exact_softplus(x):
    with mpmath.workdps(50):
        return mpmath.log1p(mpmath.exp(mpmath.mpf(x)))


@settings(max_examples=300)
@given(x=st.floats(-740.0, 1e6))
def test_softplus_is_accurate_and_never_overflows(x):
    from symgen.numerics.stable import softplus

    with np.errstate(over="raise", invalid="raise", divide="raise"):   # none even at x = 1e6
        value = softplus(np.array([x]))[0]
    exact = exact_softplus(x)
    # Below x = -708 the value is subnormal: an absolute floor of the smallest normal float.
    assert abs(mpmath.mpf(float(value)) - exact) <= 8 * ULP * abs(exact) + np.finfo(np.float64).tiny


@settings(max_examples=300)
@given(x=st.floats(-700.0, 700.0), y=st.floats(-700.0, 700.0))
def test_logaddexp_is_accurate_for_large_arguments(x, y):
    from symgen.numerics.stable import logaddexp

    with mpmath.workdps(50):
        exact = mpmath.log(mpmath.exp(mpmath.mpf(x)) + mpmath.exp(mpmath.mpf(y)))
    value = float(logaddexp(np.float64(x), np.float64(y)))
    # The sum max + log1p(...) can cancel when max < 0 < max + log1p: a few ulps of max.
    assert abs(mpmath.mpf(value) - exact) <= 4 * ULP * (abs(exact) + max(abs(x), abs(y)) + 1)


def test_softplus_and_logaddexp_keep_float32():
    from symgen.numerics.stable import logaddexp, softplus

    assert softplus(np.array([1.0, 50.0], dtype=np.float32)).dtype == np.float32
    assert logaddexp(np.array([1.0], dtype=np.float32), 0).dtype == np.float32


def exact_minus_reciprocal(a, c):
    with mpmath.workdps(50):
        return +(mpmath.mpf(float(a)) - 1 / mpmath.mpf(float(c)))


@settings(max_examples=500)
@given(c=st.floats(1e-3, 1e3), offset=st.one_of(st.floats(-1e-3, 1e-3), st.sampled_from([0.0, 1e-16, -1e-12])))
def test_minus_reciprocal_is_accurate_to_an_ulp_next_to_the_reciprocal(c, offset):
    # a within 1e-3 relative of 1/c (and exactly at it): where a - 1/c keeps only the digits 1/c's
    # rounding did not take, ~1e-7 relative at a distance of 1e-9.
    a = (1.0 / c) * (1.0 + offset)
    exact = exact_minus_reciprocal(a, c)
    value = minus_reciprocal(a, c)
    if exact == 0:
        assert value == 0
    else:
        assert relative(value, exact) <= 2 * ULP


def test_minus_reciprocal_textbook_form_loses_what_it_keeps():
    c = 3.0
    a = np.nextafter(1.0 / c, 1.0)          # one ulp above 1/3's float
    exact = exact_minus_reciprocal(a, c)
    assert relative(a - 1.0 / c, exact) > 0.1
    assert relative(minus_reciprocal(a, c), exact) <= ULP
    # Broadcasting, and an overflowing product falls back to the plain difference.
    assert minus_reciprocal(np.array([[2.0], [4.0]]), np.array([0.5, 0.25])).shape == (2, 2)
    assert minus_reciprocal(1e308, 10.0) == 1e308 - 0.1
