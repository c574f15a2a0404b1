"""A torch (or JAX) candidate's gradient against SymPy's derivative of the closed form.

A training loop uses a loss through its gradient, and a function can be right in value
and wrong in gradient (a ``detach`` in the wrong place, a clamp that zeroes it, a custom
backward). With ``symgen.check(..., grad=True)`` each derivative df/dx_i the candidate's
autograd gives, in float64, is compared with SymPy's derivative of the closed form
evaluated at 50 digits, at :data:`GRADIENT_POINTS` of the judged points, within

    rtol |df/dx_i| + 8 eps M(df/dx_i)

(M: the size of the derivative's terms, symgen/engine/judge.py's ``magnitude``), the
same rule as for values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .evaluate import EPS64, ULPS_PER_CONDITION, _derivative, reference_value

#: Judged points at which the gradient is compared (the first ones: domain points, half
#: of them near-equal; the edge points come last).
GRADIENT_POINTS = 40


def check_gradient(derivation, outputs, wrapped, rtol: float):
    """Compare the gradient: (notes, a :class:`GradientFailure` or None)."""
    from .judge import format_value, judge_points, magnitude

    if wrapped is None:
        return ["grad=True applies to a torch or JAX callable; a formula has no autograd"], None
    if derivation.is_matrix:
        return ["grad=True: gradients of matrix derivations are not compared yet"], None
    backend = _backend(wrapped)
    if backend is None:
        return ["grad=True: the candidate is neither torch nor JAX code, so it has no gradient to check"], None
    worst, compared = None, 0
    for point in judge_points(derivation)[:GRADIENT_POINTS]:
        try:
            gradients = _gradient(wrapped, backend, point)
        except Exception as error:     # the user's code may raise anything
            return [f"grad=True: no gradient at {point} ({type(error).__name__}: {error})"], None
        for output in outputs:
            for param in derivation.params:
                derivative = _derivative(derivation.outputs[output].closed_form, param.symbol)
                exact = reference_value(derivation, derivative, point, digits=30, agree=1e-20)
                value = gradients[output][param.name]
                error = abs(value - float(exact)) if math.isfinite(value) else math.inf
                allowance = rtol * abs(float(exact))
                if error > allowance:
                    allowance += ULPS_PER_CONDITION * EPS64 * float(magnitude(derivation, derivative, point))
                compared += 1
                ratio = error / allowance if allowance > 0 else (0.0 if error == 0 else math.inf)
                if worst is None or ratio > worst[0]:
                    worst = (ratio, point, output, param.name, float(exact), value)
    ratio, point, output, name, exact, value = worst
    where = ", ".join(f"{k}={format_value(v)}" for k, v in point.items())
    if ratio <= 1:
        return [f"gradient: agrees with SymPy's derivative of the closed form ({compared} partial "
                f"derivatives at {GRADIENT_POINTS} points, {backend} autograd)"], None
    text = (f"gradient: d{output}/d{name} at {where} is {exact:.10g} (SymPy's derivative of the "
            f"closed form), the candidate's {backend} autograd gives {value:.10g}")
    return [text], GradientFailure(point, output, name, exact, value)


@dataclass
class GradientFailure:
    """Where the candidate's gradient differs from the closed form's derivative."""

    point: dict
    output: str
    parameter: str
    derivative: float
    candidate: float


def _backend(wrapped) -> str | None:
    if wrapped.backend == "torch":
        return "torch"
    module = getattr(wrapped.function, "__module__", "") or ""
    if module.startswith("jax") or _looks_like_jax(wrapped):
        return "jax"
    return None


def _looks_like_jax(wrapped) -> bool:
    import sys

    if "jax" not in sys.modules:
        return False
    point = {name: 0.5 for name in wrapped.derivation.param_names}
    try:
        import jax.numpy as jnp

        value = wrapped.function(*[jnp.asarray(point[n]) for n in wrapped.positional],
                                 **{own: jnp.asarray(point[n]) for own, n in wrapped.keywords.items()})
    except Exception:
        return False
    first = value[0] if isinstance(value, (tuple, list)) else value
    return type(first).__module__.startswith("jax")


def _gradient(wrapped, backend: str, point: dict) -> dict:
    """{output: {parameter: d output / d parameter}} at ``point`` by the candidate's autograd."""
    names = wrapped.derivation.param_names
    if backend == "torch":
        import torch

        leaves = {name: torch.tensor(float(point[name]), dtype=torch.float64, requires_grad=True)
                  for name in names}
        result = wrapped.function(*[leaves[n] for n in wrapped.positional],
                                  **{own: leaves[n] for own, n in wrapped.keywords.items()})
        values = result if len(wrapped.outputs) > 1 else (result,)
        gradients = {}
        for output, value in zip(wrapped.outputs, values):
            grads = torch.autograd.grad(value.sum(), [leaves[n] for n in names], allow_unused=True,
                                        retain_graph=True)
            gradients[output] = {n: (0.0 if g is None else float(g)) for n, g in zip(names, grads)}
        return gradients
    import jax

    jax.config.update("jax_enable_x64", True)
    arguments = [np.float64(point[name]) for name in names]

    def output_of(index, *values):
        by_name = dict(zip(names, values))
        result = wrapped.function(*[by_name[n] for n in wrapped.positional],
                                  **{own: by_name[n] for own, n in wrapped.keywords.items()})
        return (result[index] if len(wrapped.outputs) > 1 else result).sum()

    gradients = {}
    for index, output in enumerate(wrapped.outputs):
        grads = jax.grad(lambda *v: output_of(index, *v), argnums=tuple(range(len(names))))(*arguments)
        gradients[output] = {n: float(g) for n, g in zip(names, grads)}
    return gradients
