"""symgen.torch and symgen.jax: every scalar function of the catalogue, in both libraries,
held to the NumPy functions' contract and conventions.

The functions of ``symgen/torch/`` and ``symgen/jax/`` are printed from the same closed forms
as ``symgen/formulas/`` and call the same stable primitives through a backend adapter
(``symgen/numerics/backends.py``). Here, for every scalar derivation of the catalogue (the
matrix ones, ``kl_mvn``, ``score_mvn`` and ``frechet_distance``, are tested with their own
implementation in tests/test_backend_linalg.py):

1. values in float64 within the contract tests/test_accuracy.py holds NumPy to (1e-12
   relative, or 8 ulps of the sensitivity where the function is ill-conditioned) against the
   50-digit reference, at the engine's accuracy, edge and near-zero points, plus the stable
   branches those points do not reach (:data:`EXTRA_POINTS`);
2. the gradient of every output with respect to every argument (torch autograd, JAX's VJP,
   i.e. ``jax.grad`` of each output) finite at those points, and within
   :data:`GRADIENT_RTOL` of SymPy's derivative of the closed form at 30+ digits, or a few
   ulps of the derivative's condition where float64 cannot do better (:data:`GRADIENT_RTOL`);
   where a stable branch runs, 1e-10 relative with no allowance for cancelling terms
   (:data:`STABLE_BRANCHES`);
3. the array conventions (dtype, Python numbers and 0-d arrays, broadcasting, device,
   integers, tensors that require grad);
4. validation: the NumPy function's ``ValueError`` message, word for word; ``validate=False``
   skips it, with no host synchronisation;
5. ``torch.compile`` and ``jax.jit`` of every function, validation skipped under tracing.

Known bugs of the code under test are listed in :data:`KNOWN_BUGS`, each with the region
of inputs it affects and a reproducer that runs as a strict xfail
(:func:`test_known_bug_reproducers`): the catalogue-wide tests leave only that region out,
so they still guard the rest of each function. Python floats are validated as given (torch
takes them as float64, like NumPy), and jax.grad in eager mode validates like torch autograd.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

import symgen
import symgen.torch
from symgen.engine.accuracy import BOUND, accuracy_bound, accuracy_points, relative_error
from symgen.engine.domains import OneOf
from symgen.engine.evaluate import EPS64, ULPS_PER_CONDITION, _derivative, reference_value
from symgen.engine.runner import base_point, edge_points, near_zero_points
from symgen.numerics import validate as numpy_validation
from symgen.numerics import backends
from symgen.numerics.backends import TORCH as TORCH_BACKEND

#: Every scalar function of the catalogue (the matrix ones have their own implementation).
SCALAR = [name for name in symgen.derivations()
          if not (symgen.derivation(name).is_matrix or symgen.derivation(name).implementation)]

#: Domain points per function besides the edge and near-zero points (half of them with the
#: ``near`` pairs nearly equal, symgen.engine.accuracy.accuracy_points).
ACCURACY_POINTS = 12

#: JAX compiles each primitive once per shape in eager mode: every batch is padded (with
#: copies of its first point) to a multiple of this, so the compiled primitives are shared
#: between functions, which makes the JAX tests five times faster.
BATCH_MULTIPLE = 64

#: Stable branches the catalogue's own points do not reach, at legal inputs: softplus above
#: 33.3 (the linear branch; exp would overflow beyond 709 in the untaken direct branch), the
#: planar flow on its invertibility boundary u^T w = -1 (the branch log((1 + u^T w) sech^2 +
#: tanh^2), where 1 + u^T w sech^2 cancels; the activations of tests/test_accuracy.py) and
#: just inside it, KL divergences at exactly equal arguments (value and gradient 0).
EXTRA_POINTS = {
    "gan_losses_logits": [dict(logit_real=real, logit_fake=fake) for real, fake in
                          ((40.0, -40.0), (-40.0, 40.0), (800.0, -800.0), (-800.0, 800.0),
                           (33.4, 33.2), (-1e-12, 1e-12))],
    "gan_losses_bce": [dict(logit_real=real, logit_fake=fake) for real, fake in
                       ((40.0, -40.0), (-40.0, 40.0), (800.0, -800.0), (-800.0, 800.0), (33.4, 33.2))],
    "planar_flow_logdet_2d": [dict(z1=activation, z2=0.0, u1=-1.0, u2=0.0, w1=1.0, w2=0.0, bias=0.0)
                           for activation in (1e-9, -3e-5, 1e-20, 0.25, -2.0, 30.0)]
                          + [dict(z1=0.1, z2=-0.2, u1=-0.999999, u2=0.0, w1=1.0, w2=0.0, bias=0.05),
                             dict(z1=0.0, z2=0.0, u1=-0.5, u2=-0.5, w1=1.0, w2=0.999, bias=1e-7)],
    "kl_normal": [dict(loc_p=0.3, scale_p=2.0, loc_q=0.3, scale_q=2.0),
                  dict(loc_p=0.3, scale_p=2.0, loc_q=0.3, scale_q=2.0 * (1 + 2.0**-52)),
                  dict(loc_p=-4.0, scale_p=1e-2, loc_q=-4.0 + 1e-13, scale_q=1e-2 * (1 - 1e-9))],
    "kl_std_normal": [dict(loc=0.0, logvar=0.0), dict(loc=1e-30, logvar=-1e-15),
                      dict(loc=0.0, logvar=0.19), dict(loc=0.0, logvar=-0.21)],
}


def derivation(name):
    return symgen.derivation(name)


@functools.cache
def points(name) -> tuple:
    found = derivation(name)
    return tuple(accuracy_points(found, ACCURACY_POINTS) + edge_points(found) + near_zero_points(found)
                 + [dict(point) for point in EXTRA_POINTS.get(name, [])])


@functools.cache
def _batch(name) -> dict:
    chosen = points(name)
    padded = -(-len(chosen) // BATCH_MULTIPLE) * BATCH_MULTIPLE
    rows = list(chosen) + [chosen[0]] * (padded - len(chosen))
    return {param.name: np.array([float(point[param.name]) for point in rows])
            for param in derivation(name).params}


def batch(name) -> dict:
    """{parameter: float64 array} of every point of :func:`points` (padded)."""
    return {key: value.copy() for key, value in _batch(name).items()}


@functools.cache
def reference(name, index, output):
    found = derivation(name)
    return reference_value(found, found.outputs[output].closed_form, points(name)[index])


@functools.cache
def exact_derivative(name, index, output, parameter):
    """d output / d parameter of the closed form at the point, as check_gradient evaluates it
    (symgen/engine/gradients.py): SymPy's derivative at 30 digits and more, until it stops
    moving."""
    found = derivation(name)
    symbol = next(param.symbol for param in found.params if param.name == parameter)
    derivative = _derivative(found.outputs[output].closed_form, symbol)
    try:
        return reference_value(found, derivative, points(name)[index], digits=30, agree=1e-20), derivative
    except ZeroDivisionError:       # the closed form is log 0 there (the planar flow at u.w = -1
        return None, derivative     # with a zero activation): no derivative to compare with


def describe(point) -> str:
    return ", ".join(f"{key}={float(value)!r}" for key, value in point.items())


# --- known bugs of the code under test ------------------------------------------------


def _bin_distance(point) -> float:
    """How many standard deviations loc lies outside the 8-bit bin of x (0 inside it): the
    z at which log_normal_mass takes log Q(z) = log_ndtr(-z) for the discretized Gaussian."""
    x, loc, scale = float(point["x"]), float(point["loc"]), float(point["scale"])
    lower = -math.inf if x < -254 / 255 else x - 1 / 255
    upper = math.inf if x > 254 / 255 else x + 1 / 255
    return max(lower - loc, loc - upper, 0.0) / scale


@dataclass(frozen=True)
class KnownBug:
    function: str
    libraries: tuple
    kind: str                   # "value" or "gradient"
    where: Callable             # point -> bool: the inputs it affects (left out elsewhere)
    reproducer: dict
    reason: str
    parameters: tuple = field(default=())   # a gradient bug: w.r.t. these only (all if empty)

    def covers(self, library, name, kind, point, parameter=None) -> bool:
        return (self.function == name and library in self.libraries and self.kind == kind
                and (not self.parameters or parameter in self.parameters) and self.where(point))


_GRID_X = 2 * 128 / 255 - 1         # the bin (0, 2/255] of the 8-bit grid

KNOWN_BUGS = [
    KnownBug(
        "expected_modes_covered", ("torch", "jax"), "gradient",
        where=lambda point: (1 - 1 / float(point["modes"])) ** float(point["draws"]) < 1e-5,
        reproducer=dict(modes=2.0, draws=109.0),
        parameters=("draws",),
        reason="d/ddraws of -modes expm1(draws log1p(-1/modes)) goes through the VJP of expm1, "
               "(expm1(y) + 1) * cotangent, which loses exp(y) = (1 - 1/modes)^draws to rounding "
               "once it is small: 0.0 instead of 2.136e-33 at modes = 2, draws = 109"),
]


def known(library, name, kind, point, parameter=None) -> bool:
    return any(bug.covers(library, name, kind, point, parameter) for bug in KNOWN_BUGS)


# --- the two libraries ----------------------------------------------------------------


def _load_jax():
    jax = pytest.importorskip("jax", reason="JAX is an optional extra: pip install 'symgen[jax]'")
    jax.config.update("jax_enable_x64", True)
    return jax


def _outputs(found, result) -> tuple:
    return tuple(result) if len(found.outputs) > 1 else (result,)


class Torch:
    name = "torch"
    backend = TORCH_BACKEND

    def function(self, name):
        return getattr(symgen.torch, name)

    def array(self, values, dtype=torch.float64, requires_grad=False):
        return torch.tensor(np.asarray(values).tolist(), dtype=dtype, requires_grad=requires_grad)

    def numpy(self, array):
        return array.detach().cpu().numpy()

    def values(self, name, arrays, compiled=None, **options) -> dict:
        function = compiled or self.function(name)
        result = function(**{key: self.array(value) for key, value in arrays.items()}, **options)
        return dict(zip(derivation(name).outputs, (self.numpy(r) for r in _outputs(derivation(name), result))))

    def gradients(self, name, arrays) -> dict:
        """{output: {parameter: d output / d parameter at each point}} by autograd."""
        return self.values_and_gradients(name, arrays)[1]

    def values_and_gradients(self, name, arrays, compiled=None):
        found = derivation(name)
        leaves = {key: self.array(value, requires_grad=True) for key, value in arrays.items()}
        results = _outputs(found, (compiled or self.function(name))(**leaves))
        gradients = {}
        for output, result in zip(found.outputs, results):
            grads = torch.autograd.grad(result.sum(), list(leaves.values()), retain_graph=True, allow_unused=True)
            gradients[output] = {key: np.zeros(len(leaf)) if grad is None else grad.numpy()
                                 for (key, leaf), grad in zip(leaves.items(), grads)}
        return dict(zip(found.outputs, (self.numpy(result) for result in results))), gradients


class Jax:
    name = "jax"

    def __init__(self):
        self.jax = _load_jax()           # skips the test, with the reason, without JAX
        self.jnp = self.jax.numpy
        self.backend = backends.JAX

    def function(self, name):
        import symgen.jax

        return getattr(symgen.jax, name)

    def array(self, values, dtype=None, requires_grad=False):
        return self.jnp.asarray(np.asarray(values), dtype=dtype or self.jnp.float64)

    def numpy(self, array):
        return np.asarray(array)

    def values(self, name, arrays, compiled=None, **options) -> dict:
        function = compiled or self.function(name)
        result = function(**{key: self.array(value) for key, value in arrays.items()}, **options)
        return dict(zip(derivation(name).outputs, (self.numpy(r) for r in _outputs(derivation(name), result))))

    def gradients(self, name, arrays, jit=False) -> dict:
        """As Torch.gradients, by JAX's VJP: a cotangent of ones on one output at a time is
        jax.grad of that output's sum, the forward pass shared between the outputs."""
        found, jax, jnp = derivation(name), self.jax, self.jnp
        names, function = list(arrays), self.function(name)

        def forward(*values):
            return _outputs(found, function(**dict(zip(names, values))))

        def all_gradients(*values):
            results, pullback = jax.vjp(forward, *values)
            return [pullback(tuple(jnp.ones_like(r) if k == i else jnp.zeros_like(r) for k, r in enumerate(results)))
                    for i in range(len(results))]

        compute = jax.jit(all_gradients) if jit else all_gradients
        grads = compute(*(self.array(arrays[key]) for key in names))
        return {output: {key: np.asarray(g) for key, g in zip(names, per_output)}
                for output, per_output in zip(found.outputs, grads)}


TORCH = Torch()


def library(name):
    return TORCH if name == "torch" else _jax_library()


@functools.cache
def _jax_library():
    return Jax()


LIBRARIES = ("torch", "jax")


def cases():
    """(library, function) for every scalar function in both libraries."""
    return [pytest.param(lib, name, id=f"{lib}-{name}") for lib in LIBRARIES for name in SCALAR]


# --- 1. values in float64: the NumPy contract ----------------------------------------


def contract_failures(lib, name, computed) -> list:
    """Every (point, output) where ``computed`` breaks the accuracy contract, as
    tests/test_accuracy.py's assert_within_contract states it (engine's bound)."""
    found, failures = derivation(name), []
    for index, point in enumerate(points(name)):
        if known(lib, name, "value", point):
            continue
        for output in found.outputs:
            value = computed[output][index]
            exact = reference(name, index, output)
            error = relative_error(value, exact)
            if not error <= BOUND:          # NaN included
                bound = accuracy_bound(found, output, point, BOUND, exact)
                if not error <= bound:
                    failures.append(f"{output} at {describe(point)}: {value!r} vs {mpmath.nstr(exact, 17)} "
                                    f"(relative error {error:.3g}, bound {bound:.3g})")
    return failures


@pytest.mark.parametrize("lib, name", cases())
def test_float64_values_meet_the_numpy_contract(lib, name):
    computed = library(lib).values(name, batch(name))
    failures = contract_failures(lib, name, computed)
    assert not failures, f"{len(failures)} values beyond the contract:\n" + "\n".join(failures[:12])


# --- 2. gradients --------------------------------------------------------------------

#: A partial derivative d = df/dx_i is compared with SymPy's derivative of the closed form
#: within this relative error, or, where that is out of float64's reach, within
#:
#:     GRADIENT_RTOL |d| + ULPS_PER_CONDITION eps (T(d) + S(d))        (eps = 2^-52, 8 ulps)
#:
#: S(d) = sum_j |x_j dd/dx_j| is the value contract's sensitivity, of the derivative: where d
#: is ill-conditioned in the inputs (the Langevin variance's gradient at eta = 2 scale^2 (1 -
#: 1e-12), condition number 1e12), rounding the inputs alone moves it that far
#: (:func:`input_sensitivity`). T(d) is the size of d's terms (:func:`terms_size`): autodiff
#: forms a gradient as a sum over the paths through the computation, so where those terms
#: cancel (d KL/d scale_p = scale_p/scale_q^2 - 1/scale_p at scale_p ~ scale_q; the posterior
#: variance s^2/(s^2 + w^2), whose d/ds = 2 s w^2/(s^2 + w^2)^2 at w = 1e-12 comes out of
#: terms of size 1/s; sinh(a) = (e^a - e^-a)/2 in the planar flow's backward at a ~ 1e-12), a
#: few ulps of their size is what float64 autodiff can promise (T(d)/|d| is the condition
#: number of that sum). Where d is a product or one term, T(d) = |d| and the bound stays
#: relative: the log normal tail's derivative, the ratio phi(z)/Phi(-z) of two factors that
#: are each ill-conditioned in z, is held to 1e-10 (symgen.engine.judge.magnitude, which
#: symgen.check(grad=True) uses, would also add the rounding of each factor's argument and
#: allow 2e-4 relative there). Both T and S are evaluated only where 1e-10 is exceeded.
#: T is taken from the textbook derivative, whose cancellation a stable branch avoids: where
#: one runs, test_gradients_in_the_stable_branches_are_relative leaves T out.
GRADIENT_RTOL = 1e-10


def terms_size(found, derivative, point) -> float:
    """T(d): the size of the derivative's terms at ``point``: a sum's is the sum of its terms'
    sizes, a product's the product of its factors', anything else its |value|
    (symgen.engine.judge's magnitude without the rounding of function arguments, which S(d)
    accounts for from the inputs), in the branch of each Piecewise that holds at the point
    (magnitude sees a Piecewise as one function: the discretized Gaussian's d/dloc at loc = x,
    (phi(a) - phi(b)) / (scale P) from terms of size 30 that cancel to 1e-8, would get |d|)."""
    values = {param.symbol: sp.Rational(float(point[param.name])) for param in found.params}

    def taken(piecewise):
        for piece, condition in piecewise.args:
            if condition.subs(values) == sp.true:
                return piece
        return piecewise

    def size(expression):
        if expression.is_Add:
            return sum(size(term) for term in expression.args)
        if expression.is_Mul:
            return math.prod(size(factor) for factor in expression.args)
        if expression.is_Pow and expression.exp.is_Integer and expression.exp > 0:
            return size(expression.base) ** int(expression.exp)
        if expression.is_Number:
            return abs(float(expression))
        try:
            return abs(float(reference_value(found, expression, point, digits=30, agree=1e-10)))
        except (ArithmeticError, ValueError, TypeError):
            return 0.0

    return size(derivative.replace(lambda e: isinstance(e, sp.Piecewise), taken))


def input_sensitivity(found, derivative, point) -> float:
    """S(d) = sum_j |x_j dd/dx_j| at ``point``: symgen.engine.evaluate.sensitivity, of the
    derivative (SymPy's second derivatives at 30 digits)."""
    total = 0.0
    for param in found.params:
        if point[param.name] == 0:
            continue
        try:
            slope = reference_value(found, _derivative(derivative, param.symbol), point, digits=30, agree=1e-10)
        except (ArithmeticError, ValueError, TypeError):
            continue
        total += abs(float(point[param.name]) * float(slope))
    return total


def gradient_allowance(found, derivative, point, exact) -> float:
    """What a partial derivative may be off by (see GRADIENT_RTOL)."""
    return (GRADIENT_RTOL * abs(exact)
            + ULPS_PER_CONDITION * EPS64 * (terms_size(found, derivative, point)
                                            + input_sensitivity(found, derivative, point)))


@functools.cache
def _allowance(name, index, output, parameter) -> float:
    exact, derivative = exact_derivative(name, index, output, parameter)
    return gradient_allowance(derivation(name), derivative, points(name)[index], float(exact))


def gradient_failures(lib, name, gradients) -> list:
    found, failures = derivation(name), []
    discrete = {param.name for param in found.params if isinstance(param.domain, OneOf)}
    for index, point in enumerate(points(name)):
        for output in found.outputs:
            for param in found.params:
                if known(lib, name, "gradient", point, param.name):
                    continue
                value = float(gradients[output][param.name][index])
                exact, _ = exact_derivative(name, index, output, param.name)
                if exact is None:
                    continue
                where = f"d{output}/d{param.name} at {describe(point)}"
                if not mpmath.isfinite(exact):
                    if value != float(exact):
                        failures.append(f"{where}: {value!r}, SymPy's derivative is {exact}")
                    continue
                if not math.isfinite(value):
                    failures.append(f"{where}: not finite ({value!r}), SymPy's derivative is {mpmath.nstr(exact, 17)}")
                    continue
                if param.name in discrete:
                    # A parameter with finitely many values (a category, a grid point) has no
                    # derivative to compare: the closed form and the code may interpolate
                    # differently between its values. Finite is all that is asked.
                    continue
                error = abs(value - float(exact))
                allowance = GRADIENT_RTOL * abs(float(exact))
                if error > allowance:
                    allowance = _allowance(name, index, output, param.name)
                if not error <= allowance:
                    failures.append(f"{where}: {value!r} vs {mpmath.nstr(exact, 17)} (error {error:.3g}, "
                                    f"allowed {allowance:.3g})")
    return failures


@pytest.mark.parametrize("lib, name", cases())
def test_gradients_are_finite_and_match_sympy(lib, name):
    gradients = library(lib).gradients(name, batch(name))
    failures = gradient_failures(lib, name, gradients)
    assert not failures, f"{len(failures)} partial derivatives wrong:\n" + "\n".join(failures[:12])


def test_the_points_take_the_stable_branches(monkeypatch):
    """The points above reach the branches the brief names (near-equal scales, logvar near 0,
    alpha_bar near 1, softplus beyond its linear threshold, u^T w near -1), and every refine
    of a function's code takes its branch at some of them."""
    def any_point(name, holds):
        return any(holds(point) for point in points(name))

    assert any_point("kl_normal", lambda p: 0 < abs(p["scale_p"] / p["scale_q"] - 1) < 1e-9)
    assert any_point("kl_std_normal", lambda p: 0 < abs(p["logvar"]) < 1e-9)
    assert any_point("diffusion_posterior", lambda p: p["alpha_bar_prev"] >= 1 - 1e-12)
    assert any_point("score_diffusion", lambda p: p["alpha_bar"] >= 1 - 1e-12)
    assert any_point("tweedie_normal", lambda p: p["alpha_bar"] >= 1 - 1e-12)
    assert any_point("gan_losses_logits", lambda p: max(abs(p["logit_real"]), abs(p["logit_fake"])) > 709)
    assert any_point("planar_flow_logdet_2d", lambda p: -1 <= p["u1"] * p["w1"] + p["u2"] * p["w2"] < -0.99)

    taken = {}          # branch -> whether its mask held anywhere, at some call
    refine_eager = TORCH_BACKEND.refine_eager

    def recording(mask, default, branch, arguments, *rest):
        taken[branch.__qualname__] = taken.get(branch.__qualname__, False) or bool(mask.any())
        return refine_eager(mask, default, branch, arguments, *rest)

    monkeypatch.setattr(TORCH_BACKEND, "refine_eager", recording)
    for name in SCALAR:
        taken.clear()
        getattr(symgen.torch, name)(**{key: torch.tensor(value) for key, value in batch(name).items()})
        assert all(taken.values()), (name, taken)       # (empty: no stable branch in its code)


def _activation(point):
    return point["bias"] + point["w1"] * point["z1"] + point["w2"] * point["z2"]


#: Where the generated code takes a stable branch (its refine masks, restated): there the
#: code differentiates its own cancellation-free form, so its gradient is held to 1e-10
#: relative, with no allowance for the textbook derivative's cancelling terms (T(d)); only
#: the inputs' conditioning S(d) remains.
STABLE_BRANCHES = {
    "kl_normal": lambda point: float(symgen.kl_normal(**point)) < 0.01,
    "kl_std_normal": lambda point: abs(point["logvar"]) < 0.2,                # expm1mx's series
    "gan_losses_logits": lambda point: max(abs(point["logit_real"]), abs(point["logit_fake"])) > 33.3,
    "gan_losses_bce": lambda point: max(abs(point["logit_real"]), abs(point["logit_fake"])) > 33.3,
    "planar_flow_logdet_2d": lambda point: (point["u1"] * point["w1"] + point["u2"] * point["w2"])
    / math.cosh(_activation(point)) ** 2 < -0.5,
    "gan_optimal_discriminator": lambda point: point["p_g"] >= 2 * abs(point["p_data"] - point["p_g"]),
}


@pytest.mark.parametrize("lib", LIBRARIES)
@pytest.mark.parametrize("name", list(STABLE_BRANCHES))
def test_gradients_in_the_stable_branches_are_relative(lib, name):
    found, gradients = derivation(name), library(lib).gradients(name, batch(name))
    compared, failures = 0, []
    for index, point in enumerate(points(name)):
        if not STABLE_BRANCHES[name](point):
            continue
        for output in found.outputs:
            for param in found.params:
                if known(lib, name, "gradient", point, param.name):
                    continue
                value = float(gradients[output][param.name][index])
                exact, derivative = exact_derivative(name, index, output, param.name)
                if exact is None:
                    continue
                compared += 1
                error = abs(value - float(exact)) if math.isfinite(value) else math.inf
                allowed = GRADIENT_RTOL * abs(float(exact))
                if not error <= allowed:
                    allowed += ULPS_PER_CONDITION * EPS64 * input_sensitivity(found, derivative, point)
                if not error <= allowed:
                    failures.append(f"d{output}/d{param.name} at {describe(point)}: {value!r} vs "
                                    f"{mpmath.nstr(exact, 17)} (error {error:.3g}, allowed {allowed:.3g})")
    assert compared >= 20, compared
    assert not failures, "\n".join(failures[:12])


# --- the known bugs, each at its reproducer ---------------------------------------------


def _at(name, point) -> dict:
    """The point alone, repeated to the batch length (the shapes JAX has compiled already)."""
    return {param.name: np.full(BATCH_MULTIPLE, float(point[param.name])) for param in derivation(name).params}


def _single_point_failures(lib, bug):
    """The contract (value) or SymPy's derivative (gradient) at the reproducer alone."""
    name, point = bug.function, bug.reproducer
    found = derivation(name)
    failures = []
    if bug.kind == "value":
        computed = library(lib).values(name, _at(name, point))
        for output in found.outputs:
            exact = reference_value(found, found.outputs[output].closed_form, point)
            error = relative_error(computed[output][0], exact)
            if not error <= max(BOUND, accuracy_bound(found, output, point, BOUND, exact)):
                failures.append((output, float(computed[output][0]), float(exact), error))
        return failures
    gradients = library(lib).gradients(name, _at(name, point))
    for output in found.outputs:
        for param in found.params:
            if bug.parameters and param.name not in bug.parameters:
                continue
            derivative = _derivative(found.outputs[output].closed_form, param.symbol)
            exact = float(reference_value(found, derivative, point, digits=30, agree=1e-20))
            value = float(gradients[output][param.name][0])
            error = abs(value - exact) if math.isfinite(value) else math.inf
            allowance = gradient_allowance(found, derivative, point, exact)
            if not error <= allowance:
                failures.append((f"d{output}/d{param.name}", value, exact, error))
    return failures


@pytest.mark.parametrize("lib, bug", [
    pytest.param(lib, bug, id=f"{lib}-{bug.function}-{bug.kind}-{index}",
                 marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=bug.reason))
    for index, bug in enumerate(KNOWN_BUGS) for lib in bug.libraries])
def test_known_bug_reproducers(lib, bug):
    assert not _single_point_failures(lib, bug)


def test_the_known_bug_regions_are_narrow():
    """Each region the tests above leave out holds its reproducer, and leaves most of its
    function's points in."""
    for bug in KNOWN_BUGS:
        assert bug.where(bug.reproducer), bug.function
        inside = sum(bool(bug.where(point)) for point in points(bug.function))
        assert inside <= len(points(bug.function)) // 4, (bug.function, inside)


# --- 3. conventions ------------------------------------------------------------------


def _base(name) -> dict:
    return {key: float(value) for key, value in base_point(derivation(name)).items()}


def numpy_shapes(name, shapes: dict) -> list:
    """The shape of each output of the NumPy function for arguments of these shapes (at the
    base point): the shapes torch and JAX must give. An output that does not depend on an
    argument is not broadcast against it, in NumPy as here (diffusion_marginal's var = 1 -
    alpha_bar has alpha_bar's shape)."""
    base = _base(name)
    result = getattr(symgen, name)(**{key: np.full(shapes.get(key, ()), value) for key, value in base.items()})
    return [np.shape(r) for r in _outputs(derivation(name), result)]


def assert_same_values(lib, got, expected):
    """torch runs the same kernels elementwise whatever the shapes: equal bit for bit. XLA's
    CPU kernels for a scalar and for a vector may round differently in the last bit, which
    the function's conditioning amplifies (exp(159) in perplexity: 30 ulps): within the
    contract's 1e-12 of each other."""
    if lib == "torch":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=BOUND, atol=0)


@pytest.mark.parametrize("lib, name", cases())
def test_float32_in_float32_out(lib, name):
    use = library(lib)
    float32 = torch.float32 if lib == "torch" else use.jnp.float32
    arguments = {key: use.array([value] * 4, dtype=float32) for key, value in _base(name).items()}
    results = _outputs(derivation(name), use.function(name)(**arguments))
    for result, shape in zip(results, numpy_shapes(name, {key: (4,) for key in arguments})):
        assert result.dtype == float32
        assert tuple(result.shape) == shape


@pytest.mark.parametrize("lib, name", cases())
def test_python_floats_and_0d_arrays_mix_with_arrays(lib, name):
    use, base, found = library(lib), _base(name), derivation(name)
    first, *rest = base
    # The first argument an array of shape (4,); the others Python floats and 0-d arrays by turns.
    mixed = {first: use.array([base[first]] * 4)}
    mixed.update({key: (base[key] if index % 2 else use.array(base[key])) for index, key in enumerate(rest)})
    arrays = {first: use.array([base[first]] * 4), **{key: use.array(base[key]) for key in rest}}
    shapes = numpy_shapes(name, {first: (4,)})
    for got, expected, shape in zip(_outputs(found, use.function(name)(**mixed)),
                                    _outputs(found, use.function(name)(**arrays)), shapes):
        assert got.dtype == expected.dtype == (torch.float64 if lib == "torch" else use.jnp.float64)
        assert tuple(got.shape) == shape
        assert_same_values(lib, use.numpy(got), use.numpy(expected))
    # float32 arrays stay float32 beside Python floats (weakly typed, as in torch and JAX).
    float32 = torch.float32 if lib == "torch" else use.jnp.float32
    mixed32 = {first: use.array([base[first]] * 4, dtype=float32), **{key: base[key] for key in rest}}
    for got in _outputs(found, use.function(name)(**mixed32)):
        assert got.dtype == float32


@pytest.mark.parametrize("lib, name", cases())
def test_python_floats_alone_are_float64(lib, name):
    # As in NumPy (and validated as given); JAX: float64 under jax_enable_x64.
    use = library(lib)
    expected = torch.float64 if lib == "torch" else use.jnp.float64
    for result in _outputs(derivation(name), use.function(name)(**_base(name))):
        assert result.dtype == expected and tuple(result.shape) == ()


def _broadcast_arguments(name):
    """The first two arguments of shapes (3, 1) and (4,), from different domain points, the
    rest from the base point, where every combination satisfies the requirements."""
    found, base = derivation(name), _base(name)
    first, second = [param.name for param in found.params[:2]]
    others = [{key: float(value) for key, value in point.items()} for point in accuracy_points(found, 8, seed=3)]
    firsts = [base[first]] + [point[first] for point in others[:2]]
    seconds = [base[second]] + [point[second] for point in others[2:5]]
    if not all(found.satisfies_requirements({**base, first: a, second: b}) for a in firsts for b in seconds):
        seconds = [base[second]] * 4
    if not all(found.satisfies_requirements({**base, first: a, second: b}) for a in firsts for b in seconds):
        firsts = [base[first]] * 3
    return first, second, np.array(firsts).reshape(3, 1), np.array(seconds), base


@pytest.mark.parametrize("lib, name", cases())
def test_broadcasting(lib, name):
    use, found = library(lib), derivation(name)
    first, second, firsts, seconds, base = _broadcast_arguments(name)
    rest = {key: value for key, value in base.items() if key not in (first, second)}
    broadcast = use.function(name)(**{first: use.array(firsts), second: use.array(seconds)}, **rest)
    shapes = numpy_shapes(name, {first: (3, 1), second: (4,)})
    assert (3, 4) in shapes                  # an output depends on both, at least
    # Against the same function on the arguments broadcast beforehand.
    expected = use.function(name)(**{first: use.array(np.broadcast_to(firsts, (3, 4))),
                                     second: use.array(np.broadcast_to(seconds, (3, 4))),
                                     **{key: use.array(np.full((3, 4), value)) for key, value in rest.items()}})
    expected = [use.numpy(r) for r in _outputs(found, expected)]
    for got, wanted, shape in zip(_outputs(found, broadcast), expected, shapes):
        assert tuple(got.shape) == shape
        assert_same_values(lib, np.broadcast_to(use.numpy(got), (3, 4)), np.broadcast_to(wanted, (3, 4)))


@pytest.mark.parametrize("name", SCALAR)
def test_torch_keeps_the_device(name):
    arguments = {key: torch.tensor([value], dtype=torch.float64, device="cpu") for key, value in _base(name).items()}
    for result in _outputs(derivation(name), getattr(symgen.torch, name)(**arguments)):
        assert result.device == torch.device("cpu")


def _has_branches(function) -> bool:
    source = inspect.getsource(function)
    return "refine(" in source or "stable." in source


@pytest.mark.parametrize("name", SCALAR)
def test_torch_meta_tensors_give_shapes_without_data(name):
    function = getattr(symgen.torch, name)
    first, *rest = _base(name)
    arguments = {first: torch.empty(4, dtype=torch.float64, device="meta"),
                 **{key: torch.empty(5, 1, dtype=torch.float64, device="meta") for key in rest}}
    try:
        results = _outputs(derivation(name), function(**arguments, validate=False))
    except RuntimeError as error:
        if "meta" in str(error) and _has_branches(function):
            pytest.skip("a stable branch is taken where its mask holds (nonzero in "
                        "refine_eager): a meta tensor has no values to decide it")
        raise
    shapes = numpy_shapes(name, {first: (4,), **{key: (5, 1) for key in rest}})
    for result, shape in zip(results, shapes):
        assert result.device.type == "meta" and tuple(result.shape) == shape


INTEGER_EXAMPLES = [          # (arrays of 4, the shape the other convention tests use)
    ("expected_modes_covered", dict(modes=[10, 3, 2, 40], draws=[5, 7, 1, 120])),
    ("bits_per_dim", dict(nll_nats=[1000, 0, 7, 3072], dims=[3072, 1, 2, 3])),
    ("perplexity", dict(nll_nats=[100, 3, 0, 5000], tokens=[50, 10, 1, 100000])),
    ("kl_normal", dict(loc_p=[0, 1, -3, 5], scale_p=[1, 2, 3, 4], loc_q=[2, 0, -3, 1], scale_q=[3, 2, 3, 1])),
    ("autoregressive_binary_logpmf", dict(x1=[0, 1, 1, 0], x2=[1, 1, 0, 0], x3=[1, 0, 1, 0], p1=0.25, q0=0.5,
                                          q1=0.125, r00=0.5, r01=0.75, r10=0.25, r11=0.5)),
]


@pytest.mark.parametrize("lib", LIBRARIES)
@pytest.mark.parametrize("name, arguments", INTEGER_EXAMPLES, ids=[name for name, _ in INTEGER_EXAMPLES])
def test_integer_arrays_become_float(lib, name, arguments):
    use = library(lib)
    integer = torch.int64 if lib == "torch" else use.jnp.int64
    as_integers = {key: (use.array(value, dtype=integer) if isinstance(value, list) else value)
                   for key, value in arguments.items()}
    # Integers (and Python numbers) alone take the library's default float; float64 here.
    as_floats = {key: (use.array(np.asarray(value, dtype=np.float64)) if isinstance(value, list) else value)
                 for key, value in arguments.items()}
    default = torch.get_default_dtype() if lib == "torch" else use.jnp.float64
    found = derivation(name)
    for got, expected in zip(_outputs(found, use.function(name)(**as_integers)),
                             _outputs(found, use.function(name)(**as_floats))):
        assert got.dtype == default
        np.testing.assert_allclose(use.numpy(got).astype(np.float64), use.numpy(expected),
                                   rtol=10 * float(np.finfo(use.numpy(got).dtype).eps))


@pytest.mark.parametrize("name", SCALAR)
def test_torch_tensors_that_require_grad_work_directly(name):
    # The original bug: validation called .numpy() on them ("Can't call numpy() on Tensor that
    # requires grad").
    leaves = {key: torch.tensor([value, value], dtype=torch.float64, requires_grad=True)
              for key, value in _base(name).items()}
    results = _outputs(derivation(name), getattr(symgen.torch, name)(**leaves))
    assert any(result.requires_grad for result in results)
    assert all(torch.isfinite(result).all() for result in results)


@pytest.mark.parametrize("lib, name", cases())
def test_0d_arrays_give_the_batched_values(lib, name):
    """Each point alone, every argument a 0-d float64 array, gives the value the batch gave
    (torch: the same arithmetic, so the same float64 value; a stable branch on a 0-d array
    once raised IndexError in refine_eager)."""
    use, found = library(lib), derivation(name)
    batched = use.values(name, batch(name))
    alone = {output: [] for output in found.outputs}
    for point in points(name):
        results = _outputs(found, use.function(name)(**{key: use.array(float(point[key])) for key in batch(name)}))
        for output, result in zip(found.outputs, results):
            assert tuple(result.shape) == ()
            alone[output].append(use.numpy(result))
    for output in found.outputs:
        assert_same_values(lib, np.array(alone[output]), batched[output][:len(points(name))])


# --- 4. validation -------------------------------------------------------------------

#: Values that break a constraint or a requirement of some argument (one at a time, the
#: others at the base point); only those the NumPy function rejects are used. Exactly
#: representable in float32 too.
BAD_VALUES = (math.nan, math.inf, -math.inf, -1.0, 0.0, 0.5, 1.5, 2.5, 1e6, -1e6, 2.0**-20)


def _numpy_message(name, arguments):
    try:
        with np.errstate(all="ignore"):      # a value it accepts may overflow (perplexity at 1e6)
            getattr(symgen, name)(**arguments)
    except ValueError as error:
        return str(error)
    return None


@functools.cache
def bad_inputs(name) -> tuple:
    """(arguments as float64 arrays of shape (1,), the NumPy function's message) for every
    single-argument change of the base point the NumPy function rejects, and for arguments
    that do not broadcast together."""
    base, found = _base(name), derivation(name)
    rejected = []
    for param in found.params:
        for bad in BAD_VALUES:
            arguments = {key: np.array([bad if key == param.name else value]) for key, value in base.items()}
            message = _numpy_message(name, arguments)
            if message is not None:
                rejected.append((arguments, message))
    first, second = [param.name for param in found.params[:2]]
    shapes = {key: np.full(3 if key == first else 2 if key == second else 1, value) for key, value in base.items()}
    rejected.append((shapes, _numpy_message(name, shapes)))
    return tuple(rejected)


def bad_batch(name, which=0) -> dict:
    """The batch of :func:`batch` with its first entry replaced by a bad input: shapes a
    compiled function has been traced for already."""
    arguments, _ = bad_inputs(name)[which]
    rows = batch(name)
    for key, value in arguments.items():
        rows[key][0] = value[0]
    return rows


def _raised(call):
    try:
        call()
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.parametrize("lib, name", cases())
def test_bad_input_raises_the_numpy_message(lib, name):
    use = library(lib)
    cases_seen = bad_inputs(name)
    assert len(cases_seen) >= 2 and all(message for _, message in cases_seen)
    for arguments, message in cases_seen:
        variants = [{key: use.array(value) for key, value in arguments.items()}]
        if lib == "torch":      # tensors that require grad: the failing check reads their values
            variants.append({key: use.array(value, requires_grad=True) for key, value in arguments.items()})
        elif all(value.shape == (1,) for value in arguments.values()):
            # Python floats (float64 in JAX, as in NumPy; torch's float32 is
            # test_torch_python_float_messages_match_numpy's).
            variants.append({key: float(value[0]) for key, value in arguments.items()})
        for inputs in variants:
            assert _raised(lambda inputs=inputs: use.function(name)(**inputs)) == message


@pytest.mark.parametrize("lib, name", cases())
def test_validate_false_skips_the_checks(lib, name, monkeypatch):
    use = library(lib)
    checks = {}                     # one bad value per check (NumPy's messages, found before patching)
    for index, (_, message) in enumerate(bad_inputs(name)[:-1]):      # (the last: bad shapes)
        checks.setdefault(message.split(", got")[0], bad_batch(name, index))

    def forbidden(*args, **kwargs):
        raise AssertionError("validation ran with validate=False")

    # One valid call first, so every module the function loads is imported before the patches (a
    # module imported under them would keep `forbidden` for good, by `from ... import prepare`).
    use.function(name)(**{key: use.array([value]) for key, value in _base(name).items()})
    monkeypatch.setattr(use.backend, "_holds", forbidden)
    monkeypatch.setattr(use.backend, "require", forbidden)
    monkeypatch.setattr(numpy_validation, "broadcast_shape", forbidden)
    monkeypatch.setattr(numpy_validation, "prepare", forbidden)
    for rows in checks.values():    # in the batch's shape: compiled already
        results = _outputs(derivation(name), use.function(name)(**{k: use.array(v) for k, v in rows.items()},
                                                                validate=False))
        assert all(tuple(result.shape) == rows[next(iter(rows))].shape for result in results)
    with pytest.raises(AssertionError, match="validation ran"):       # and these are what validates
        use.function(name)(**{key: use.array([value]) for key, value in _base(name).items()})


@pytest.mark.parametrize("name", SCALAR)
def test_torch_validate_false_needs_no_host_sync(name, monkeypatch):
    """validate=False reads no value back to the host: the only syncs left
    (aten._local_scalar_dense, what bool() and .item() dispatch to, and aten.nonzero, whose
    result size depends on values) are the stable branches' finding of the entries that take
    them (one nonzero, or two where a lazy default is gathered)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class CountSyncs(TorchDispatchMode):
        syncs = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default):
                CountSyncs.syncs += 1
            return func(*args, **(kwargs or {}))

    branches = []
    refine_eager = TORCH_BACKEND.refine_eager
    monkeypatch.setattr(TORCH_BACKEND, "refine_eager", lambda *a: branches.append(1) or refine_eager(*a))
    arguments = {key: torch.tensor(value) for key, value in batch(name).items()}
    counts = {}
    for check in (True, False):
        CountSyncs.syncs, branches[:] = 0, []
        with CountSyncs():
            getattr(symgen.torch, name)(**arguments, validate=check)
        counts[check] = (CountSyncs.syncs, len(branches))
    assert counts[False][1] <= counts[False][0] <= 2 * counts[False][1]
    assert counts[True][0] >= counts[False][0] + len(arguments)        # one check per argument at least


def test_torch_python_float_messages_match_numpy():
    # Python numbers alone are float64 in torch as in NumPy, so a message gives the value as given.
    for arguments in ((0.0, -0.1, 0.0, 1.0), (0.0, 1e-46, 0.0, 1.0)):
        expected = _raised(lambda arguments=arguments: symgen.kl_normal(*arguments))
        assert _raised(lambda arguments=arguments: symgen.torch.kl_normal(*arguments)) == expected


def test_jax_grad_validates_like_torch_autograd():
    use = library("jax")
    arguments = batch("kl_normal")            # the batch's shapes: compiled already
    arguments["scale_p"][0] = -1.0
    expected = _raised(lambda: symgen.kl_normal(**arguments))
    assert "must be positive, got -1.0" in expected
    loc_p, scale_p, loc_q, scale_q = (use.array(arguments[key]) for key in ("loc_p", "scale_p", "loc_q", "scale_q"))
    assert _raised(lambda: use.function("kl_normal")(loc_p, scale_p, loc_q, scale_q)) == expected      # eager
    gradient = use.jax.grad(lambda scale: use.function("kl_normal")(loc_p, scale, loc_q, scale_q).sum())
    assert _raised(lambda: gradient(scale_p)) == expected


# --- 5. torch.compile and jax.jit ----------------------------------------------------


def _same(got, expected) -> bool:
    return np.array_equal(got, expected, equal_nan=True)


@pytest.mark.parametrize("name", SCALAR)
def test_torch_compile_matches_eager(name):
    # backend="aot_eager": traced by dynamo and by AOT autograd (the joint forward and backward
    # graph, functionalized), then run by eager aten kernels, without inductor's C++ code
    # generation. The same kernels: values equal to eager's bit for bit. Under tracing every
    # stable branch runs everywhere on safe arguments (refine_everywhere, the double where),
    # so the compiled gradient is checked against SymPy on its own.
    torch._dynamo.reset()
    compiled = torch.compile(getattr(symgen.torch, name), backend="aot_eager")
    eager = TORCH.values(name, batch(name))
    branches = _has_branches(getattr(symgen.torch, name))
    if branches:        # the joint graph, and the gradient of the branches taken everywhere
        traced, gradients = TORCH.values_and_gradients(name, batch(name), compiled=compiled)
        failures = gradient_failures("torch", name, gradients)
        assert not failures, "compiled gradients:\n" + "\n".join(failures[:12])
    else:               # elsewhere autograd's graph is eager's: the values (a cheaper trace)
        traced = TORCH.values(name, batch(name), compiled=compiled)
    for output in derivation(name).outputs:
        assert _same(traced[output], eager[output]), output
    # Validation is skipped while tracing: a bad input goes through without ValueError.
    bad = {key: torch.tensor(value, requires_grad=branches) for key, value in bad_batch(name).items()}
    with pytest.raises(ValueError):            # (in eager it raises)
        getattr(symgen.torch, name)(**bad)
    result = compiled(**bad)                   # the shapes traced already: no recompilation
    assert all(tuple(r.shape) == tuple(bad[next(iter(bad))].shape) for r in _outputs(derivation(name), result))


def _cxx_compiler():
    candidates = [os.environ.get("CXX"), "g++", "c++", "clang++"]
    return next((shutil.which(name) for name in candidates if name and shutil.which(name)), None)


@pytest.mark.skipif(_cxx_compiler() is None, reason="torch.compile's default backend (inductor) needs a C++ compiler")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # inductor's own
def test_torch_compile_inductor_kl_normal():
    # Inductor generates C++ (its own vectorized exp and log): not bit for bit eager's
    # values, so the compiled values are held to the contract itself, at every point.
    torch._dynamo.reset()
    compiled = torch.compile(symgen.torch.kl_normal)
    computed = TORCH.values("kl_normal", batch("kl_normal"), compiled=compiled)
    failures = contract_failures("torch", "kl_normal", computed)
    assert not failures, "\n".join(failures[:12])
    torch._dynamo.reset()


@pytest.mark.parametrize("name", SCALAR)
def test_jax_jit_matches_eager(name):
    use = library("jax")
    jitted = use.jax.jit(use.function(name))
    eager = use.values(name, batch(name))
    traced = use.values(name, batch(name), compiled=jitted)
    # XLA fuses and reorders the arithmetic under jit, so values may differ from eager in the
    # last bits: both are held to the contract, and to each other within it.
    failures = contract_failures("jax", name, traced)
    assert not failures, "\n".join(failures[:12])
    found = derivation(name)
    for index, point in enumerate(points(name)):
        for output in found.outputs:
            a, b = traced[output][index], eager[output][index]
            if not (a == b or (np.isnan(a) and np.isnan(b))):
                scale = max(abs(float(reference(name, index, output))), float(np.finfo(np.float64).tiny))
                bound = max(BOUND, accuracy_bound(found, output, point, BOUND, reference(name, index, output)))
                assert abs(a - b) <= 2 * bound * scale, (output, describe(point), a, b)
    bad = bad_batch(name)          # validation is skipped while tracing
    with pytest.raises(ValueError):
        use.function(name)(**{key: use.array(value) for key, value in bad.items()})
    assert all(r.shape == bad[next(iter(bad))].shape
               for r in _outputs(found, jitted(**{key: use.array(value) for key, value in bad.items()})))


@pytest.mark.parametrize("name", ["kl_normal", "kl_std_normal", "gan_losses_logits", "planar_flow_logdet_2d",
                                  "diffusion_posterior"])
def test_jax_gradients_under_jit(name):
    use = library("jax")
    failures = gradient_failures("jax", name, use.gradients(name, batch(name), jit=True))
    assert not failures, "\n".join(failures[:12])
