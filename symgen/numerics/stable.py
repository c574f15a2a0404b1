"""Cancellation-free primitives that the derivations' stable rewrites print to.

Each is declared in SymPy (``symgen.engine.primitives``) with its textbook meaning, so a
derivation proves the rewrite equal to the textbook form; here it is evaluated without
the catastrophic cancellation of that form near 0. Accuracy against 50-digit mpmath is
tested in ``tests/test_numerics_stable.py``.

Speed: the textbook form is accurate away from 0, so each primitive evaluates it
everywhere (a couple of ufunc passes, as fast as the naive code) and recomputes only
the entries near 0 with a short series. :func:`refine` does the same for the
branches of a derivation's piecewise stable form.
"""
from __future__ import annotations

import contextlib
import math
import sys
import threading
from typing import NamedTuple

import numpy as np

from .backends import NUMPY

# Below these magnitudes the textbook forms, evaluated with the fast exp and log
# (not expm1 and log1p, which cost three times as much), lose too many digits: their
# rounding error is about ulp * max(1, |x|) against a result of about x^2/2. At the
# float64 thresholds the textbook forms are within ~8 ulps (log1pmx) and ~30 ulps
# (expm1mx, whose series would cost more per entry than log1pmx's, so it covers less):
# ~1e-14 relative, well inside the 1e-12 the catalogue promises. In float32 an ulp is
# 2^29 times larger and the promise is a few ulps, so the series cover more: a scan of
# 2 million float32 points puts the textbook forms within 4.2 ulps (log1pmx, beyond
# u = -0.6) and 5.2 ulps (expm1mx, beyond x = 1.2) of the float64 values.
_LOG1PMX_SERIES_BELOW = {"float64": 0.5, "float32": 0.6}
_EXPM1MX_SERIES_BELOW = {"float64": 0.2, "float32": 1.2}
# The same thresholds as values of the results, on the side where the result is larger
# in magnitude for the same |x| (the primitives test the result, not |x|).
_LOG1PMX_AT_MINUS_BELOW = {precision: math.log(1 - below) + below
                           for precision, below in _LOG1PMX_SERIES_BELOW.items()}
_EXPM1MX_AT_PLUS_BELOW = {precision: math.expm1(below) - below
                          for precision, below in _EXPM1MX_SERIES_BELOW.items()}

# log1p(u) - u through t = u / (2 + u), where log1p(u) = 2 atanh(t) and u = 2t / (1 - t):
#     log1p(u) - u = -2 t^2 / (1 - t) + 2 (t^3/3 + t^5/5 + ...),
# a sum without cancellation. For |u| < 0.5, t^2 < 1/9 and 16 odd terms leave a
# tail below 1e-17 of the result (float32's u = -0.6: t^2 < 0.19, a tail below 1e-12).
_LOG1PMX_TERMS = 16

# expm1(x) - x = x^2 (1/2! + x/3! + x^2/4! + ...); for |x| < 0.2, terms up to
# x^14/14! leave a tail below 1e-18 of the result (float32's x from -1.98, where the result
# equals expm1mx(1.2), to 1.2: below 2e-8, a sixth of an ulp).
_EXPM1MX_TERMS = 13
_INVERSE_FACTORIALS = [1.0]
for _k in range(1, 2 + _EXPM1MX_TERMS):
    _INVERSE_FACTORIALS.append(_INVERSE_FACTORIALS[-1] / _k)


# Dekker's splitting constant 2^27 + 1: a float64 splits into two halves of 26 bits whose
# pairwise products are exact (Dekker 1971, "A floating-point technique for extending the
# available precision", Numer. Math. 18, Sec. 5, mul12).
_SPLITTER = 134217729.0


def _split_halves(a):
    scaled = _SPLITTER * a
    high = scaled - (scaled - a)
    return high, a - high


def minus_reciprocal(a, c):
    """a - 1/c, for a near 1/c as well: (a c - 1)/c with a c - 1 formed exactly.

    1/c rounds to within half an ulp, which is all of a - 1/c's digits once a is within an
    ulp of 1/c and 1e-7 of them at a distance of 1e-9. Here the product a c is split into its
    rounded value and its exact rounding error (Dekker's mul12), and a c - 1 = (round(a c) - 1)
    + error, where the first difference is exact near 1 (Sterbenz), so the result carries
    about an ulp of relative error everywhere. Entries whose product overflows fall back to
    a - 1/c."""
    a, c = np.asarray(a, dtype=np.float64), np.asarray(c, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        product = a * c
        a_high, a_low = _split_halves(a)
        c_high, c_low = _split_halves(c)
        error = ((a_high * c_high - product) + a_high * c_low + a_low * c_high) + a_low * c_low
        result = ((product - 1.0) + error) / c
    return np.where(np.isfinite(result), result, a - 1.0 / c)


def refine(mask, default, function, *arguments, in_place=False, output=None):
    """``default`` with the entries where ``mask`` holds replaced by ``function`` applied
    to those entries of ``arguments``: the accurate branch is paid for only where needed.

    The mask comes first because Python evaluates arguments in order: a mask computed
    from the same temporary as ``default`` is then done reading it by the time
    ``default`` is formed, so the generated code can form ``default`` in that
    temporary's memory (symgen/engine/reuse.py).

    The entries are found once (``flatnonzero``), so the cost beyond one scan of the
    mask is proportional to the number of entries refined, not to the array size.
    ``in_place`` lets ``default`` be overwritten when it is an array of its own (the
    generated code says so only when ``default`` is a freshly computed expression,
    never an argument).

    ``output`` (the generated code gives it where this refine is the whole of the
    function's output number ``output``, nothing computed from it): inside a block of
    ``symgen.numerics.blocked`` the refinement is then left to the caller (see
    :func:`deferring`), which makes it once for the entries of all blocks.
    """
    mask = np.asarray(mask)
    if not mask.any():
        return default
    shape = np.broadcast_shapes(np.shape(default), mask.shape, *(np.shape(a) for a in arguments))
    if in_place and isinstance(default, np.ndarray) and default.shape == shape and default.flags.owndata:
        result = default      # a temporary of the generated code: no copy needed
    else:
        result = np.array(np.broadcast_to(default, shape))
    index = np.flatnonzero(np.broadcast_to(mask, shape))
    subset = [_entries(argument, shape, index) for argument in arguments]
    if output is not None:
        collecting = getattr(_deferred, "collecting", None)
        # Only a refine in the body of the function being blocked (not in a function it calls).
        if collecting is not None and sys._getframe(1).f_code is collecting[0]:
            collecting[1].append(Refinement(output, index, function, subset))
            return result[()]
    result.reshape(-1)[index] = function(*subset)
    return result[()]


class Refinement(NamedTuple):
    """A refinement left to the caller: ``function(*subset)`` goes to the entries ``index``
    (flat, within the call's arrays) of output number ``output``."""
    output: int
    index: np.ndarray
    function: object
    subset: list


_deferred = threading.local()


@contextlib.contextmanager
def deferring(function):
    """Within: the refinements of a whole output made by the body of ``function`` (a
    generated formula) are collected in the list yielded instead of made (this thread only)."""
    outer = getattr(_deferred, "collecting", None)
    collected = []
    _deferred.collecting = (function.__code__, collected)
    try:
        yield collected
    finally:
        _deferred.collecting = outer


def make_refinements(refinements, outputs):
    """Make the ``refinements``, (refinement, offset) pairs collected in blocks starting at
    flat ``offset`` of the ``outputs``: one call per branch for the entries of all blocks. A
    branch is a function printed once (one code object, no closure); each entry gets the same
    operations as in its own block, so the values are the same."""
    groups = {}
    for refinement, offset in refinements:
        code = refinement.function.__code__
        key = (refinement.output, code) if not code.co_freevars else (refinement.output, id(refinement))
        groups.setdefault(key, []).append((refinement, offset))
    for members in groups.values():
        first = members[0][0]
        index = np.concatenate([refinement.index + offset for refinement, offset in members])
        subset = [np.concatenate(parts) for parts in zip(*(refinement.subset for refinement, _ in members))]
        outputs[first.output][index] = first.function(*subset)


def _entries(array, shape, index):
    array = np.asarray(array)
    if array.shape == shape and array.flags.c_contiguous:
        return array.reshape(-1)[index]
    return np.broadcast_to(array, shape).reshape(-1)[index] if array.ndim else np.full(index.size, array)


def _precision(backend, array) -> str:
    return "float32" if backend.is_float32(array) else "float64"


def log1pmx(u, backend=NUMPY):
    """``log(1 + u) - u``, accurate to a few ulps relative, including at tiny ``u``.

    ``backend`` (symgen/numerics/backends.py) says which array library ``u`` belongs to;
    the generated torch and JAX code passes theirs, NumPy's is the default."""
    u = backend.asarray(u)
    with backend.quiet():
        # For u <= -1/2, 1 + u is exact (Sterbenz), so log(1 + u) is as good as log1p.
        direct = backend.fresh(backend.xp.log, 1 + u) - u
    # log1pmx falls monotonically with |u| on either side of 0, faster for u < 0, so
    # direct > log1pmx(-1/2) holds for every |u| < 1/2 (and for u up to 0.756, where the
    # series is as good): a test of the result itself, with no |u| array to make.
    below = _LOG1PMX_AT_MINUS_BELOW[_precision(backend, direct)]
    return backend.refine(direct > below, direct, _log1pmx_series, u, in_place=True)


def _log1pmx_series(u):
    t = u / (2 + u)
    t2 = t * t
    odd_sum = 1.0 / (2 * _LOG1PMX_TERMS + 1)
    for k in range(_LOG1PMX_TERMS - 1, 0, -1):
        odd_sum = 1.0 / (2 * k + 1) + t2 * odd_sum
    return 2 * t2 * (t * odd_sum - 1 / (1 - t))


def expm1mx(x, backend=NUMPY):
    """``exp(x) - 1 - x``, accurate to a few ulps relative, including at tiny ``x``."""
    x = backend.asarray(x)
    with backend.quiet():
        direct = (backend.xp.exp(x) - 1) - x
    # expm1mx grows monotonically with |x| on either side of 0, faster for x > 0, so
    # direct < expm1mx(0.2) holds for every |x| < 0.2 (and for x down to -0.214, where
    # the series is as good): a test of the result itself, with no |x| array to make.
    below = _EXPM1MX_AT_PLUS_BELOW[_precision(backend, direct)]
    return backend.refine(direct < below, direct, _expm1mx_series, x, in_place=True)


def _expm1mx_series(x):
    total = _INVERSE_FACTORIALS[_EXPM1MX_TERMS + 1]
    for k in range(_EXPM1MX_TERMS, 1, -1):
        total = _INVERSE_FACTORIALS[k] + x * total
    return x * x * total


# --- log(Phi(b) - Phi(a)): the log mass of a standard normal interval ----------------------

_SQRT_HALF = 0.7071067811865476
_LOG_HALF = -0.6931471805599453
# Once the interval, reflected to the upper side, starts above this many standard
# deviations, its mass Q(a) - Q(b) (Q the upper tail) is formed in log space,
# log Q(a) + log(1 - Q(b) / Q(a)): Q(a) itself underflows beyond a = 38, and from
# a = 1 on log Q carries no more relative error than Q does.
_LOG_SPACE_FROM = 1.0


def log_normal_mass(lower, upper, backend=NUMPY):
    """``log(Phi(upper) - Phi(lower))``: the log probability that a standard normal variable
    falls in (lower, upper], for lower <= upper; ``lower = -inf`` and ``upper = inf`` are
    allowed (then it is ``log Phi(upper)`` or ``log(1 - Phi(lower))``).

    The difference of two CDFs cancels wherever both are close to 1 (or to 0, through
    rounding of values near 1): an interval 40 standard deviations above the mean has
    mass about 1e-350, while both CDFs round to 1. Here no such difference is formed:

    * an interval below the mean is reflected, Phi(b) - Phi(a) = Phi(-a) - Phi(-b), so
      only intervals centred at or above 0 remain;
    * one that contains 0 has mass (erf(b/sqrt 2) + erf(-a/sqrt 2)) / 2, a sum of two
      non-negative terms; when that is above 1/2 the log is taken as log1p of minus the
      mass outside, Q(b) + Q(-a) (Q = 1 - Phi, the upper tail), again a sum;
    * one in the upper tail starting below 1 takes whichever difference, of erfs or of
      erfcs, has the smaller operands (cancellation bounded by about b / (b - a));
    * one starting at or above 1 is log Q(a) + log1mexp(log Q(b) - log Q(a)), with
      log Q(z) = log(erfcx(z / sqrt 2) / 2) - z^2 / 2 exact to a few ulps for any z >= 0.

    Relative error a few ulps times 1 + kappa, kappa = (|a| phi(a) + |b| phi(b)) / (P |log P|)
    the condition number of log P in its arguments (large only for intervals narrow
    against their distance from 0); for the discretized Gaussian's bins below 1e-13
    (tests/test_numerics_stable.py).

    SciPy is imported here, not at module level: NumPy has no erf, erfc or erfcx, and
    ``import symgen`` (every generated formula module) must stay NumPy-only; only a
    call to this function pays for the import, once. torch and JAX take the same cases
    with their own special functions (:func:`_log_normal_mass_differentiable`).
    """
    if backend.differentiable:
        return _log_normal_mass_differentiable(backend.asarray(lower), backend.asarray(upper), backend)
    from scipy import special

    lower, upper = np.asarray(lower), np.asarray(upper)
    dtype = np.result_type(lower, upper, np.float32)
    a, b = np.broadcast_arrays(lower.astype(np.float64), upper.astype(np.float64))
    # Reflect intervals centred below 0 (b < -a); (-inf, inf) is not reflected.
    flip = b < -a
    a, b = np.where(flip, -b, a), np.where(flip, -a, b)
    result = np.full(a.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        straddle = np.flatnonzero(a <= 0)
        if straddle.size:
            ai, bi = a.flat[straddle], b.flat[straddle]
            mass = (special.erf(bi * _SQRT_HALF) + special.erf(-ai * _SQRT_HALF)) / 2
            complement = _normal_tail(bi, special) + _normal_tail(-ai, special)
            result.flat[straddle] = np.where(mass <= 0.5, np.log(mass), np.log1p(-complement))
        near = np.flatnonzero((a > 0) & (a < _LOG_SPACE_FROM))
        if near.size:
            ai, bi = a.flat[near], b.flat[near]
            erf_b, erfc_a = special.erf(bi * _SQRT_HALF), special.erfc(ai * _SQRT_HALF)
            mass = np.where(erfc_a < erf_b, erfc_a - special.erfc(bi * _SQRT_HALF),
                            erf_b - special.erf(ai * _SQRT_HALF)) / 2
            result.flat[near] = np.log(mass)
        tail = np.flatnonzero(a >= _LOG_SPACE_FROM)
        if tail.size:
            log_tail_a = _log_normal_tail(a.flat[tail], special)
            log_tail_b = _log_normal_tail(b.flat[tail], special)
            result.flat[tail] = log_tail_a + _log1mexp(log_tail_b - log_tail_a)
    return result.astype(dtype, copy=False)[()]


# Below these values of w (1 + max |a|, |b|), w = b - a, an interval's mass comes from the
# midpoint rule with its error term (torch and JAX; see _log_normal_mass_differentiable).
_NARROW_BELOW = {"float64": 1e-3, "float32": 1e-2}
_LOG_SQRT_2PI = 0.9189385332046727


def _log_normal_mass_differentiable(a, b, backend):
    """The cases of :func:`log_normal_mass` for a library with gradients: each case is a
    refined branch, evaluated (or, under tracing, given safe arguments) only where it is
    taken, and an infinite bound enters no special function, so no case can put 0 x inf
    into a gradient. The upper tail is log Q(z) = log(erfcx(z / sqrt 2) / 2) - z^2 / 2, as
    in NumPy: its value and derivative are exact to a few ulps for any z >= 1, where JAX's
    log_ndtr errs by 2e-11 (20 < z < 40) and both libraries' derivative of log_ndtr cancels
    (1e-8 relative at z = 16000)."""
    xp, special = backend.xp, backend.special
    # Reflect intervals centred below 0 (b < -a); (-inf, inf) is not reflected.
    flip = b < -a
    a, b = xp.where(flip, -b, a), xp.where(flip, -a, b)
    shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    a, b = xp.broadcast_to(a, shape), xp.broadcast_to(b, shape)   # one shape, for the masks

    def straddling(a, b):                 # a <= 0 <= b
        mass = (special.erf(b * _SQRT_HALF) + special.erf(-a * _SQRT_HALF)) / 2
        outside = (special.erfc(b * _SQRT_HALF) + special.erfc(-a * _SQRT_HALF)) / 2
        return xp.where(mass <= 0.5, xp.log(xp.where(mass <= 0.5, mass, 0.5)),
                        xp.log1p(-xp.where(mass <= 0.5, 0.25, outside)))

    def near(a, b):                       # 0 < a < 1, upper tail masses of moderate size
        erf_b, erfc_a = special.erf(b * _SQRT_HALF), special.erfc(a * _SQRT_HALF)
        return xp.log(xp.where(erfc_a < erf_b, erfc_a - special.erfc(b * _SQRT_HALF),
                               erf_b - special.erf(a * _SQRT_HALF)) / 2)

    def log_upper_tail(z):                # log Q(z) for z >= 1, as in _log_normal_tail
        return xp.log(backend.erfcx(z * _SQRT_HALF)) + _LOG_HALF - z * z / 2

    def tail(a, b):                       # 1 <= a: log Q(a) + log(1 - Q(b)/Q(a))
        finite = xp.isfinite(b)
        log_tail_a = log_upper_tail(a)
        log_tail_b = log_upper_tail(xp.where(finite, b, a + 1))
        d = xp.where(finite, log_tail_b - log_tail_a, -1.0)
        log1mexp = xp.where(d > _LOG_HALF, xp.log(-xp.expm1(xp.where(d > _LOG_HALF, d, -1.0))),
                            # d below -50 changes nothing added to log Q(a) <= -1.84, and
                            # an exp that underflows is 10-150x slower in torch
                            xp.log1p(-xp.exp(xp.where(d > _LOG_HALF, -1.0, xp.where(d > -50.0, d, -50.0)))))
        return log_tail_a + xp.where(finite, log1mexp, 0.0)

    def narrow(a, b):                     # w = b - a tiny against the scale of phi there
        w, m = b - a, a / 2 + b / 2
        return xp.log(w) - m * m / 2 - _LOG_SQRT_2PI + xp.log1p((m * m - 1) * (w * w) / 24)

    # An interval a few ulps wide is a difference of two nearly equal CDFs (or tails), all
    # cancellation: in float32 one or two steps wide it rounds to 0 (log -inf). There the
    # mass is w phi(m) (1 + (m^2 - 1) w^2 / 24 + O(m^4 w^4)), the midpoint rule with its
    # error term, which cancels nothing; the neglected term is below (w max(1, |m|))^4 / 1920
    # relative: 5e-16 at float64's threshold, 5e-12 at float32's.
    finite = xp.isfinite(a) & xp.isfinite(b)
    scale = xp.where(finite, (b - a) * xp.maximum(xp.abs(a), xp.abs(b)) + (b - a), 1.0)
    is_narrow = finite & (scale < _NARROW_BELOW["float32" if backend.is_float32(a) else "float64"])

    result = xp.zeros_like(a)
    for mask, case in ((a <= 0, straddling), ((a > 0) & (a < _LOG_SPACE_FROM), near),
                       (a >= _LOG_SPACE_FROM, tail), (is_narrow, narrow)):
        result = backend.refine(mask, result, case, a, b)
    return result


def _normal_tail(z, special):
    """Q(z) = 1 - Phi(z) for z >= 0, to a few ulps relative (inf gives 0).

    Q(z) = erfcx(z / sqrt 2) exp(-z^2 / 2) / 2. SciPy's erfc would lose up to 2e-13 here
    (and all relative accuracy where it is subnormal), and exp(-z^2 / 2) with z^2 rounded
    loses z^2 / 2 ulps; z^2 is therefore split exactly (Veltkamp), z = high + low with
    high^2 exact, so the large part of the exponent carries no rounding error.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = z * 134217729.0                      # 2^27 + 1: Veltkamp's split
        high = np.where(np.isfinite(scaled), scaled - (scaled - z), z)
        low = z - high
        gauss = np.exp(-(high * high) / 2) * np.exp(-(high * low + low * low / 2))
    return np.where(np.isfinite(z), special.erfcx(z * _SQRT_HALF) * gauss / 2, 0.0)


def _log_normal_tail(z, special):
    """log Q(z) = log(1 - Phi(z)) for z >= 0 (inf gives -inf), without underflow."""
    return np.log(special.erfcx(z * _SQRT_HALF)) + _LOG_HALF - z * z / 2


def _log1mexp(d):
    """log(1 - exp(d)) for d <= 0: expm1 near 0, log1p far from it (Maechler 2012)."""
    return np.where(d > _LOG_HALF, np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


# Above this, log1p(exp(x)) = x + log1p(exp(-x)) rounds to x (exp(-x) < ulp(x)/2 for
# float64 and float32 alike), and exp(x) may overflow.
_SOFTPLUS_LINEAR_ABOVE = 33.3


def softplus(x, backend=NUMPY):
    """``log(1 + exp(x))`` without overflow, to a few ulps relative.

    NumPy's ``logaddexp(0, x)`` computes the same but costs about twenty times a plain
    ``exp``; here ``log1p(exp(x))`` (two fast passes, exact to a few ulps wherever exp
    does not overflow) is evaluated everywhere and only the entries above 33.3, where the
    result is x itself, are replaced. Where gradients flow, the exp sees x clipped at
    33.3, so the replaced entries' overflow cannot make them NaN (0 x inf)."""
    x = backend.asarray(x)
    with backend.quiet():
        direct = backend.fresh(backend.xp.log1p, backend.xp.exp(backend.safe_input(x, _SOFTPLUS_LINEAR_ABOVE)))
    return backend.refine(x > _SOFTPLUS_LINEAR_ABOVE, direct, _identity, x, in_place=True)


def _identity(x):
    return x


def logaddexp(x, y, backend=NUMPY):
    """``log(exp(x) + exp(y))`` without overflow: max(x, y) + log1p(exp(-|x - y|)), in
    passes that NumPy vectorizes (``numpy.logaddexp`` does not, and is ~5x slower)."""
    # No asarray for NumPy: a Python number stays weakly typed, so float32 arrays stay
    # float32. Each pass after x - y writes into the array the previous one made.
    xp = backend.xp
    if backend.differentiable:
        x, y = backend.asarray(x), backend.asarray(y)
    # -|x - y| as min(x - y, y - x): the same passes, and at a tie the gradient of min is
    # split evenly, where JAX's abs has slope 1 at 0 (which made the gradient (1, 0), not
    # (1/2, 1/2)).
    gap = xp.minimum(x - y, y - x)
    return xp.maximum(x, y) + backend.fresh(xp.log1p, backend.fresh(xp.exp, gap))
