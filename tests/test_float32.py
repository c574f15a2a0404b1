"""Float32 accuracy: every scalar function of the catalogue, in NumPy, torch and JAX, and the
stable primitives they call, against a 50-digit mpmath reference.

The bound. At a point x whose arguments are float32 numbers, a float32 value v of f(x) passes
when

    |v - f(x)| <= C (ulp32(f(x)) + eps32 S(x) + U),      S(x) = sum_i |x_i df/dx_i|,

where ulp32(f) is the spacing of float32 at |f| (2^-149 below the smallest normal), eps32 = 2^-23
and S the sensitivity of the textbook closed form (symgen.engine.evaluate.sensitivity). Since
eps32 |f| is one to two ulps, this is C ulps times (1 + kappa), kappa = S/|f| the condition
number (the kappa term up to a factor 2); at a zero of f it is absolute, C eps32 S, as
symgen.engine.accuracy.accuracy_bound is for float64. U is 0 for NumPy and torch, which
underflow gradually; for JAX it is the smallest normal float32 (1.2e-38): XLA on CPU flushes
subnormal values to zero, so a result or an intermediate below 1.2e-38 is lost absolutely
(log1pmx(2e-19) = -2e-38 comes out 0, its t^2 = 1e-38 flushed).

C = 8 ulps for every output in every backend (the largest error found, over the points here and
over 2000 random domain points per function, is 2.1 ulps/(1 + kappa)), except (CEILINGS):

* diffusion_cosine_schedule, beta and snr: C = 256 and 128. sin(c (2T - 2t + 1)) and
  sin(c (2T - t)), c = (pi/2)/(1 + s)/T, are taken at arguments within pi s/(1 + s) = 0.025 of
  pi: the argument, rounded to float32 (c, then the product), is off by up to ~1.5 ulps of pi,
  3.6e-7, so the sine is off by up to 1.4e-5 relative (~120 eps32), though f itself is
  well-conditioned in t and T. Worst found: beta 81, snr 47 ulps/(1 + kappa), at t = 1
  (torch; NumPy and JAX 61 and 34). A rewrite sin(pi - y) = sin(y) in the derivation (y = pi s/
  (1 + s) + c (2t - 1), no rounding near pi) would bring both to a few ulps.
* discretized_gaussian_logpmf: C = 512. The bin's ends (x - loc -+ 1/255)/scale are rounded
  to float32 before log_normal_mass takes the difference of the normal CDF at them: a bin of
  width w = 2/(255 scale) at m = (x - loc)/scale standard deviations moves by up to ~eps32 |m|,
  an error of ~eps32 |m|/w = 128 eps32 |x - loc| in log P, up to ~500 eps32 absolute, while f
  (about -7 there) is well-conditioned in x, loc and scale (kappa ~ 0.15). torch and JAX add
  the float32 difference of erf values near the bin. Worst found: NumPy 84, torch 209, JAX 192
  ulps/(1 + kappa) (|x - loc| ~ 3, scale 2 to 6). Passing the bin's centre and half-width
  (not its ends) to the primitive would remove it.

The points: symgen.engine.accuracy.accuracy_points, runner.edge_points and
runner.near_zero_points, each argument rounded to float32 (the reference is taken at the rounded
arguments); an argument that rounds onto an open end of its interval (alpha_bar = 1 - 1e-12)
moves one float32 step inside; points with an argument outside float32's normal range (a
probability of 1e-300), or whose rounding breaks a requirement, are left out. A reference beyond
float32's range must come out as an infinity of its sign.
"""
import functools
import importlib
import math

import mpmath
import numpy as np
import pytest
import sympy as sp

import symgen
from symgen.engine.accuracy import accuracy_points
from symgen.engine.evaluate import limit_value, reference_value, sensitivity, value_or_limit
from symgen.engine.runner import edge_points, near_zero_points
from symgen.numerics import stable

FLOAT32 = np.finfo(np.float32)
EPS32 = float(FLOAT32.eps)
TINY32 = float(FLOAT32.tiny)

#: Ulps (times 1 + kappa) allowed: the bound of the module docstring.
ULPS = 8
#: The outputs that need more, and why (the module docstring): (function, output) -> C.
CEILINGS = {
    ("diffusion_cosine_schedule", "beta"): 256,
    ("diffusion_cosine_schedule", "snr"): 128,
    ("discretized_gaussian_logpmf", "discretized_gaussian_logpmf"): 512,
}
#: What a backend may lose absolutely to underflow (JAX flushes subnormals to zero).
UNDERFLOW = {"numpy": 0.0, "torch": 0.0, "jax": TINY32}
ACCURACY_POINTS = 100

SCALAR = [name for name in symgen.derivations()
          if not (symgen.derivation(name).is_matrix or symgen.derivation(name).implementation)]
BACKENDS = ["numpy", "torch", "jax"]


# --- the backends -----------------------------------------------------------------------


def _enable_x64(jax):
    """JAX with 64-bit types enabled (as a user with float64 references would run it), so a
    float32 result is float32 because the code keeps it so, not because JAX has no float64."""
    state = getattr(jax, "enable_x64", None)
    if state is not None:
        return state(True)
    from jax.experimental import enable_x64

    return enable_x64()


def backend_library(backend):
    """(the generated package, array from float32 NumPy, back to NumPy, a context to run in,
    the stable primitives' backend object)."""
    from symgen.numerics import backends

    if backend == "numpy":
        import contextlib

        return "symgen.formulas", (lambda a: a), np.asarray, contextlib.nullcontext, backends.NUMPY
    if backend == "torch":
        torch = pytest.importorskip("torch")
        return "symgen.torch", torch.from_numpy, (lambda t: t.detach().numpy()), torch.no_grad, backends.TORCH
    jax = pytest.importorskip("jax", reason="JAX is an optional extra (pip install 'symgen[jax]')")
    return "symgen.jax", jax.numpy.asarray, np.asarray, lambda: _enable_x64(jax), backends.JAX


# --- the bound --------------------------------------------------------------------------


def ulp32(value: float) -> float:
    return float(np.spacing(np.float32(abs(value))))


def excess(value, reference, sensitivity_sum, underflow=0.0) -> float:
    """|value - reference| in units of ulp32(f) + eps32 S + U: at most C to pass (inf for a
    NaN, or a finite value where the reference is infinite or beyond float32's range)."""
    value = float(value)
    with np.errstate(over="ignore"):
        beyond = math.isinf(np.float32(float(reference)))     # rounds to an infinity in float32
    if beyond:
        return 0.0 if value == math.copysign(math.inf, reference) else math.inf
    if not math.isfinite(value):
        return math.inf
    error = float(abs(mpmath.mpf(value) - reference))
    return error / (ulp32(float(reference)) + EPS32 * sensitivity_sum + underflow)


# --- the catalogue's functions ------------------------------------------------------------


def float32_point(derivation, point):
    """``point`` with every argument rounded to float32, or None (module docstring)."""
    domains = {param.name: param.domain for param in derivation.params}
    rounded = {}
    for name, value in point.items():
        single = np.float32(value)
        if not np.isfinite(single) or (value != 0 and abs(single) < TINY32):
            return None
        contains = getattr(domains[name], "contains", None)
        if contains is not None and not contains(float(single)):
            single = np.nextafter(single, np.float32(value))      # onto an open end: one step in
            if not contains(float(single)):
                return None
        rounded[name] = float(single)
    return rounded if derivation.satisfies_requirements(rounded) else None


@functools.cache
def _derivative(expression, symbol):
    return sp.diff(expression, symbol)


def reference(derivation, expression, point):
    """The 50-digit value; where the closed form has none (a removable 0/0), its limit."""
    try:
        value = reference_value(derivation, expression, point)
        if not mpmath.isnan(value):
            return value
    except ArithmeticError:
        pass
    return limit_value(derivation, expression, point)[0]


def sensitivity_sum(derivation, output, point) -> float:
    """sum_i |x_i df/dx_i|; where a derivative has no value at the point (at alpha_bar = 1), its
    limit (a removable 0/0) or inf."""
    try:
        return sensitivity(derivation, output, point)
    except ArithmeticError:
        pass
    closed_form, total = derivation.outputs[output].closed_form, mpmath.mpf(0)
    for param in derivation.params:
        if point[param.name] != 0:
            try:
                slope = value_or_limit(derivation, _derivative(closed_form, param.symbol), point)[0]
            except ArithmeticError:
                return math.inf
            total += abs(mpmath.mpf(point[param.name]) * slope)
    return float(total)


@functools.cache
def cases(name):
    """The float32 points of ``name``, and per output the references and sensitivities there
    (computed once for the three backends)."""
    found = symgen.derivation(name)
    raw = accuracy_points(found, ACCURACY_POINTS) + edge_points(found) + near_zero_points(found)
    points, seen = [], set()
    for point in raw:
        rounded = float32_point(found, point)
        if rounded is not None and tuple(rounded.values()) not in seen:
            seen.add(tuple(rounded.values()))
            points.append(rounded)
    expected = {}
    for output, spec in found.outputs.items():
        references = [reference(found, spec.closed_form, point) for point in points]
        sensitivities = [sensitivity_sum(found, output, point) if mpmath.isfinite(value) else 0.0
                         for point, value in zip(points, references)]
        expected[output] = (references, sensitivities)
    return points, expected


def test_the_points_cover_every_function():
    for name in SCALAR:
        points, _ = cases(name)
        assert len(points) >= ACCURACY_POINTS, (name, len(points))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SCALAR)
def test_every_function_is_accurate_in_float32(name, backend):
    package, to_array, to_numpy, context, _ = backend_library(backend)
    found = symgen.derivation(name)
    points, expected = cases(name)
    arguments = {param.name: np.array([point[param.name] for point in points], dtype=np.float32)
                 for param in found.params}
    function = getattr(importlib.import_module(package), name)
    with context(), np.errstate(all="ignore"):
        if backend == "jax":     # float64 available, so float32 is kept by the code itself
            assert to_array(np.zeros(1)).dtype == np.float64
        result = function(**{key: to_array(value) for key, value in arguments.items()})
        results = result if len(found.outputs) > 1 else (result,)
        values = {output: to_numpy(value) for output, value in zip(found.outputs, results)}
    failures = []
    for output, value in values.items():
        assert value.dtype == np.float32, (name, output, backend, value.dtype)
        assert value.shape == (len(points),), (name, output, backend, value.shape)
        allowed = CEILINGS.get((name, output), ULPS)
        references, sensitivities = expected[output]
        for point, got, want, slope in zip(points, value, references, sensitivities):
            ulps = excess(got, want, slope, UNDERFLOW[backend])
            if not ulps <= allowed:
                failures.append((output, point, float(got), float(want), ulps))
    assert not failures, (f"{len(failures)} values beyond the bound; the worst: "
                          f"{max(failures, key=lambda failure: failure[-1])}")


def test_the_bound_rejects_the_textbook_kl_term_in_float32():
    # The motivating bug: (exp(logvar) - 1 - logvar)/2 in float32 loses ~47 ulps at logvar ~ 0.2
    # and everything near 0, where f is well-conditioned (kappa ~ 2); the shipped function
    # (expm1mx, its float32 series up to logvar = 1.2) passes at the same points.
    found = symgen.derivation("kl_std_normal")
    logvar = np.array([0.2, 0.21, 0.25, 1e-3, -1e-4], dtype=np.float32)
    loc = np.zeros_like(logvar)
    textbook = 0.5 * (loc ** 2 + np.exp(logvar) - 1 - logvar)
    shipped = symgen.kl_std_normal(loc, logvar)
    assert textbook.dtype == shipped.dtype == np.float32
    worst_textbook = 0.0
    for index in range(logvar.size):
        point = {"loc": 0.0, "logvar": float(logvar[index])}
        want = reference(found, found.output().closed_form, point)
        slope = sensitivity_sum(found, "kl_std_normal", point)
        assert excess(shipped[index], want, slope) <= ULPS
        worst_textbook = max(worst_textbook, excess(textbook[index], want, slope))
    assert worst_textbook > 4 * ULPS


# --- the stable primitives -------------------------------------------------------------------


def _threshold_crossing(function, value, guess):
    """Where ``function`` (an mpmath function) equals ``value`` near ``guess``: the other side
    of a series threshold, which the primitives test by the result, not the argument."""
    with mpmath.workdps(30):
        return float(mpmath.findroot(lambda x: function(x) - value, guess))


def _log1pmx(u):
    return mpmath.log1p(u) - u


def _expm1mx(x):
    return mpmath.expm1(x) - x


def _softplus(x):
    return mpmath.log1p(mpmath.exp(x))


def _logaddexp(x, y):
    return max(x, y) + mpmath.log1p(mpmath.exp(-abs(x - y)))


def _log_normal_mass(a, b):
    if b < -a:                           # reflected to the upper side, as the primitive does
        a, b = -b, -a
    root_half = mpmath.sqrt(mpmath.mpf(1) / 2)
    if a >= 0:
        return mpmath.log((mpmath.erfc(a * root_half) - mpmath.erfc(b * root_half)) / 2)
    return mpmath.log((mpmath.erf(b * root_half) - mpmath.erf(a * root_half)) / 2)


def _log_normal_mass_sensitivity(a, b):
    mass = mpmath.exp(_log_normal_mass(a, b))
    return sum(abs(z) * mpmath.npdf(z) / mass for z in (a, b) if mpmath.isfinite(z) and z != 0)


def _grid(*pieces):
    return np.unique(np.concatenate(pieces).astype(np.float32))


def _primitive_grids():
    below = stable._LOG1PMX_SERIES_BELOW["float32"]
    log1pmx_above = _threshold_crossing(_log1pmx, stable._LOG1PMX_AT_MINUS_BELOW["float32"], 1.0)
    above = stable._EXPM1MX_SERIES_BELOW["float32"]
    expm1mx_below = _threshold_crossing(_expm1mx, stable._EXPM1MX_AT_PLUS_BELOW["float32"], -2.0)
    tiny = np.logspace(-30, -0.5, 200)
    linear = stable._SOFTPLUS_LINEAR_ABOVE
    return {
        # u = -0.6 and its mirror u = 1.019 (same result): where the series hands over.
        "log1pmx": _grid(np.linspace(-0.999, 4, 1500), -tiny, tiny,
                         np.linspace(-below - 0.02, -below + 0.02, 201),
                         np.linspace(log1pmx_above - 0.03, log1pmx_above + 0.03, 201)),
        # x = 1.2 and its mirror x = -1.98.
        "expm1mx": _grid(np.linspace(-40, 40, 1500), -tiny * 10, tiny * 10,
                         np.linspace(above - 0.03, above + 0.03, 201),
                         np.linspace(expm1mx_below - 0.03, expm1mx_below + 0.03, 201)),
        "softplus": _grid(np.linspace(-100, 100, 1500), -tiny * 100, tiny * 100,
                          np.linspace(linear - 1, linear + 1, 201)),
    }


@functools.cache
def primitive_cases():
    """name -> (float32 arguments, references, sensitivities)."""
    meanings = {"log1pmx": (_log1pmx, lambda u: abs(u * (1 / (1 + u) - 1))),
                "expm1mx": (_expm1mx, lambda x: abs(x * mpmath.expm1(x))),
                "softplus": (_softplus, lambda x: abs(x) / (1 + mpmath.exp(-x)))}
    found = {}
    with mpmath.workdps(50):
        for name, grid in _primitive_grids().items():
            meaning, slope = meanings[name]
            exact = [mpmath.mpf(float(x)) for x in grid]
            found[name] = ((grid,), [meaning(x) for x in exact],
                           [float(slope(x)) if x > -1 else 0.0 for x in exact])
        rng = np.random.default_rng(20260501)
        x = rng.uniform(-100, 100, 1500)
        y = np.concatenate([x[:500] * (1 + rng.normal(0, 1e-4, 500)),   # near-equal: log 2 + x
                            x[500:1000] + rng.normal(0, 20, 500),         # the gap where exp matters
                            rng.uniform(-100, 100, 500)])
        x, y = x.astype(np.float32), y.astype(np.float32)
        pairs = [(mpmath.mpf(float(a)), mpmath.mpf(float(b))) for a, b in zip(x, y)]
        found["logaddexp"] = ((x, y), [_logaddexp(a, b) for a, b in pairs],
                              [float((abs(a) * mpmath.exp(a) + abs(b) * mpmath.exp(b))
                                     / (mpmath.exp(a) + mpmath.exp(b))) for a, b in pairs])
        found["log_normal_mass"] = _log_normal_mass_cases(rng)
    return found


def _log_normal_mass_cases(rng):
    """Intervals anywhere in [-40, 40] (the tails, log-space from a = 1), around the case
    switches (a = 0, a = 1, b = -a), half-infinite ones, widths from 1e-5 to 30."""
    lower = np.concatenate([rng.uniform(-40, 40, 600), rng.uniform(-3, 3, 600),
                            1 + rng.normal(0, 1e-3, 100), rng.normal(0, 1e-3, 100)])
    upper = lower + 10 ** rng.uniform(-5, 1.5, lower.size)
    straddle = rng.uniform(0, 5, 100)
    lower = np.concatenate([lower, -straddle, rng.uniform(-40, 40, 200), np.full(100, -np.inf)])
    upper = np.concatenate([upper, straddle * (1 + rng.normal(0, 1e-3, 100)),
                            np.full(200, np.inf), rng.uniform(-40, 40, 100)])
    lower, upper = lower.astype(np.float32), upper.astype(np.float32)
    keep = upper > lower
    lower, upper = lower[keep], upper[keep]
    pairs = [(mpmath.mpf(float(a)), mpmath.mpf(float(b))) for a, b in zip(lower, upper)]
    return ((lower, upper), [_log_normal_mass(a, b) for a, b in pairs],
            [float(_log_normal_mass_sensitivity(a, b)) for a, b in pairs])


PRIMITIVES = ["log1pmx", "expm1mx", "softplus", "logaddexp", "log_normal_mass"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", PRIMITIVES)
def test_every_primitive_is_accurate_in_float32(name, backend):
    _, to_array, to_numpy, context, library = backend_library(backend)
    arguments, references, sensitivities = primitive_cases()[name]
    with context(), np.errstate(all="ignore"):
        value = to_numpy(getattr(stable, name)(*(to_array(a) for a in arguments), backend=library))
    assert value.dtype == np.float32, (name, backend, value.dtype)
    ulps = [excess(got, want, slope, UNDERFLOW[backend])
            for got, want, slope in zip(value, references, sensitivities)]
    worst = int(np.argmax(ulps))
    assert ulps[worst] <= ULPS, (name, backend, [float(a[worst]) for a in arguments],
                                 float(value[worst]), float(references[worst]), ulps[worst])


# An interval one or two float32 steps wide: a difference of erfc values (or of log tails)
# rounds to 0 there, and log gives -inf where the mass is, say, 1e-8 (log -18.4). NumPy
# evaluates in float64; torch and JAX take the midpoint rule with its error term for narrow
# intervals (stable._log_normal_mass_differentiable).
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_log_normal_mass_of_an_interval_a_few_float32_steps_wide(backend):
    _, to_array, to_numpy, context, library = backend_library(backend)
    rng = np.random.default_rng(7)
    lower = np.concatenate([rng.uniform(-30, 30, 100), rng.uniform(-2, 2, 100)]).astype(np.float32)
    upper = lower.copy()
    for _ in range(2):
        upper = np.nextafter(upper, np.float32(np.inf))
    with context(), np.errstate(all="ignore"):
        value = to_numpy(stable.log_normal_mass(to_array(lower), to_array(upper), backend=library))
    with mpmath.workdps(50):
        for a, b, got in zip(lower, upper, value):
            a, b = mpmath.mpf(float(a)), mpmath.mpf(float(b))
            want = _log_normal_mass(a, b)
            assert excess(got, want, float(_log_normal_mass_sensitivity(a, b)), UNDERFLOW[backend]) <= ULPS, (
                float(a), float(b), float(got), float(want))
