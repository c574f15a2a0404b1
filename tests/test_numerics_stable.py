"""The stable primitives against 50-digit mpmath, including where the textbook forms cancel."""
import mpmath
import numpy as np
from hypothesis import given, settings, strategies as st

from symgen.numerics.stable import expm1mx, log1pmx

# The primitives switch to their textbook forms where those round to at most ~30 ulps.
ULP = np.finfo(np.float64).eps


def relative(value, exact):
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
