"""What the generated code and the stable primitives need from an array library.

The formulas of ``symgen/formulas/`` (NumPy), ``symgen/torch/`` and ``symgen/jax/`` are
printed from the same closed forms, and call the same stable primitives
(``symgen/numerics/stable.py``). What differs between the libraries is gathered here, in
one object per library:

* ``xp``: the array module (``numpy``, ``torch``, ``jax.numpy``), whose elementwise names
  the primitives use (``where``, ``log1p``, ``exp``, ``abs``, ``maximum``, ...);
* ``prepare`` and ``require``: arguments converted to one floating dtype (on one device)
  and validated with the messages of ``symgen/numerics/validate.py``; the checks are
  reductions in the library itself, and only a failing check moves data to NumPy to
  name the culprit, so a message reads the same in every backend. Under tracing
  (``torch.compile``, ``jax.jit``) values are unknown and validation is skipped;
* ``refine(mask, default, branch, *arguments)``: ``default`` with the entries where
  ``mask`` holds replaced by ``branch`` at those entries. NumPy and eager torch evaluate
  the branch on those entries only (cheap, and a gradient flows through the branch
  only where it is taken). Under tracing, where shapes must not depend on values, the
  branch runs everywhere on *safe* arguments: outside the mask each argument is replaced
  by its (gradient-free) value at an entry where the mask holds, so a branch that would
  give inf or NaN away from its region cannot turn the gradient of ``where`` into NaN
  (0 x inf). This is the "double where" of autodiff practice;
* ``safe_input(x, high)``: an input clipped where an untaken branch would overflow
  (libraries with gradients only; for NumPy it is ``x`` itself, at no cost);
* ``fresh(ufunc, operand)``: a one-argument operation on an array the caller made
  itself (NumPy writes the result into it; elsewhere it is the plain call);
* ``quiet()``: floating-point warnings off while a branch that will be replaced runs.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, NamedTuple

import numpy as np

from symgen.numerics import inplace, validate


class Lazy(NamedTuple):
    """A branch and its arguments, evaluated where it is taken (:meth:`_TracingBackend.lazy`)."""

    function: Callable
    arguments: tuple


class NumPyBackend:
    name = "numpy"
    xp = np
    differentiable = False

    @property
    def special(self):
        from scipy import special      # loaded on first use: NumPy has no erf

        return special

    def asarray(self, value):
        return np.asarray(value)

    def prepare(self, function, check, **arguments):
        return validate.prepare(function, check, **arguments)

    def require(self, function, holds, message):
        validate.require(function, holds, message)

    def refine(self, mask, default, branch, *arguments, in_place=False):
        from symgen.numerics.stable import refine

        return refine(mask, default, branch, *arguments, in_place=in_place)

    def safe_input(self, x, high):
        return x

    def fresh(self, ufunc, operand):
        return inplace.into_only(ufunc, operand)

    def quiet(self):
        return np.errstate(all="ignore")

    def is_float32(self, array) -> bool:
        return np.result_type(array) == np.float32


class _TracingBackend:
    """What torch and JAX share: gradients, tracing, device-resident arrays."""

    differentiable = True

    def safe_input(self, x, high):
        return self.xp.minimum(x, self.xp.asarray(high, dtype=x.dtype) if self.name == "jax" else
                               self.xp.tensor(high, dtype=x.dtype, device=x.device))

    def fresh(self, ufunc, operand):
        return ufunc(operand)

    def quiet(self):
        return contextlib.nullcontext()

    # --- validation ----------------------------------------------------------------

    def prepare(self, function, check, **arguments):
        """The arguments as arrays of one floating dtype (float32 stays float32; integers
        and Python numbers alone are float64, as in NumPy, where the library has it),
        checked unless ``check`` is False or a value is being traced."""
        converted = self.convert([value for value, _ in arguments.values()])
        if check and not self.tracing(converted):
            shapes = {name: tuple(array.shape) for name, array in zip(arguments, converted)}
            validate.broadcast_shape(function, shapes)
            for (name, (_, constraint)), array in zip(arguments.items(), converted):
                if not self._holds(array, constraint):
                    # The message (and the culprit) come from the NumPy check, so they read
                    # the same in every backend; it may also clear a false alarm (a sum of
                    # huge finite values that overflowed).
                    validate.prepare(function, True, **{name: (self.to_numpy(array), constraint)})
        return converted

    def _holds(self, array, constraint) -> bool:
        if array.numel() == 0 if self.name == "torch" else array.size == 0:
            return True
        xp = self.xp
        if constraint == "real":
            return bool(xp.isfinite(xp.sum(array)))
        low, high = xp.aminmax(array) if self.name == "torch" else (xp.min(array), xp.max(array))
        if constraint == "positive":
            return bool((low > 0) & xp.isfinite(high))
        _, lower, upper, low_closed, high_closed = constraint
        above = low >= lower if low_closed else low > lower
        below = high <= upper if high_closed else high < upper
        return bool(above & below & xp.isfinite(low) & xp.isfinite(high))

    def require(self, function, holds, message):
        if not self.tracing([holds]) and not bool(self.xp.all(holds)):
            raise ValueError(f"{function}: {message}")

    # --- branches --------------------------------------------------------------------

    def lazy(self, function, *arguments):
        """A default branch to evaluate only where it is taken (``refine``): the generated
        code passes one when the default is a computation, which may be infinite where the
        other branch is taken (log1p(-1), say) and would put 0 x inf into a gradient."""
        return Lazy(function, arguments)

    def refine(self, mask, default, branch, *arguments, in_place=False):
        inputs = [mask, *arguments, *(default.arguments if isinstance(default, Lazy) else [default])]
        if self.tracing(inputs):
            return self.refine_everywhere(mask, default, branch, arguments)
        return self.refine_eager(mask, default, branch, arguments, in_place)

    def _shape(self, mask, default, arguments):
        defaults = default.arguments if isinstance(default, Lazy) else (default,)
        return tuple(np.broadcast_shapes(*(tuple(self.xp.asarray(a).shape) if self.name == "jax"
                                           else tuple(a.shape) for a in (mask, *arguments, *defaults))))

    def refine_everywhere(self, mask, default, branch, arguments):
        """Both branches on every entry, each at safe arguments where it is not taken (see
        the module's docstring); the shapes do not depend on the values, so this traces."""
        xp = self.xp
        shape = self._shape(mask, default, arguments)

        def safe(arguments, where):
            flat = xp.reshape(xp.broadcast_to(where, shape), (-1,))
            reference = xp.argmax(flat.to(xp.int8) if self.name == "torch" else flat)
            # take, not [reference]: indexing with a 0-d tensor reads it (a graph break)
            return [xp.where(where, argument, self.stop_gradient(
                xp.take(xp.reshape(xp.broadcast_to(argument, shape), (-1,)), reference))) for argument in arguments]

        if isinstance(default, Lazy):
            default = default.function(*safe(default.arguments, ~mask))
        return xp.where(mask, branch(*safe(arguments, mask)), default)


class TorchBackend(_TracingBackend):
    name = "torch"

    def __init__(self):
        import torch

        # A plain attribute: a property read for the first time under torch.compile breaks
        # the graph.
        self.xp = torch

    @property
    def special(self):
        return self.xp.special

    def asarray(self, value):
        return value if isinstance(value, self.xp.Tensor) else self.xp.as_tensor(value)

    def erfcx(self, x):
        return self.xp.special.erfcx(x)

    def convert(self, values):
        """``values`` as tensors of one floating dtype, on the first tensor's device."""
        torch = self.xp
        tensors = [v if isinstance(v, torch.Tensor) else torch.as_tensor(v) for v in values
                   if isinstance(v, (torch.Tensor, np.ndarray, np.generic))]
        # Python numbers alone are float64, as in NumPy (and validated as given); with
        # tensors they take the tensors' dtype, as in torch.
        dtype = torch.float64
        device = None
        if tensors:
            dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
            device = tensors[0].device
            if not dtype.is_floating_point:
                dtype = torch.get_default_dtype()
            elif dtype in (torch.float16, torch.bfloat16):
                dtype = torch.float32
        return [torch.as_tensor(v, dtype=dtype, device=device) for v in values]

    def tracing(self, arrays) -> bool:
        torch = self.xp
        return bool(torch.compiler.is_compiling() or torch.jit.is_tracing())

    def stop_gradient(self, array):
        return array.detach()

    def to_numpy(self, array):
        return array.detach().cpu().numpy()

    def is_float32(self, array) -> bool:
        return array.dtype == self.xp.float32

    def refine_eager(self, mask, default, branch, arguments, in_place=False):
        torch = self.xp
        lazy = isinstance(default, Lazy)
        shape = self._shape(mask, default, arguments)
        if not shape:                      # one entry
            if bool(mask):
                return branch(*arguments)
            return default.function(*default.arguments) if lazy else default
        mask = torch.broadcast_to(mask, shape)
        taken = mask.nonzero(as_tuple=True)            # one scan, and no sync beyond it
        if taken[0].numel() == 0:
            return default.function(*default.arguments) if lazy else default
        values = branch(*(torch.broadcast_to(a, shape)[taken] for a in arguments))
        gradients = torch.is_grad_enabled()
        if lazy:
            # Few entries take the branch: the default everywhere, then overwritten, costs less
            # than gathering the many others; without gradients, a default that is infinite
            # where the branch is taken does no harm.
            few = taken[0].numel() <= mask.numel() // 4
            if few and not (gradients and any(a.requires_grad for a in default.arguments)):
                default, in_place = default.function(*default.arguments), True
        if isinstance(default, Lazy):
            untaken = (~mask).nonzero(as_tuple=True)
            others = default.function(*(torch.broadcast_to(a, shape)[untaken] for a in default.arguments))
            result = torch.empty(shape, dtype=others.dtype, device=others.device)
            result.index_put_(untaken, others)
            return result.index_put_(taken, values.to(others.dtype))
        values = values.to(default.dtype)
        if in_place and tuple(default.shape) == shape and not (gradients and default.requires_grad):
            return default.index_put_(taken, values)       # a temporary of the caller's own
        return torch.broadcast_to(default, shape).index_put(taken, values)


class JaxBackend(_TracingBackend):
    name = "jax"

    def __init__(self):
        import jax.numpy

        self.xp = jax.numpy

    @property
    def special(self):
        import jax.scipy.special

        return jax.scipy.special

    def asarray(self, value):
        return self.xp.asarray(value)

    def convert(self, values):
        """``values`` as arrays of one floating dtype (float64 only under jax_enable_x64)."""
        jnp = self.xp
        arrays = [jnp.asarray(v) for v in values if not isinstance(v, (int, float))]
        dtype = jnp.result_type(*arrays, float) if arrays else jnp.result_type(float)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.result_type(float)
        elif dtype in (jnp.float16, jnp.bfloat16):
            dtype = jnp.float32
        return [jnp.asarray(v, dtype=dtype) for v in values]

    def tracing(self, arrays) -> bool:
        """Whether values are unknown (``jax.jit``, ``vmap``): a tracer whose value cannot be
        read. Under ``jax.grad`` in eager mode they can, and validation runs as without it."""
        import jax

        tracers = [a for a in arrays if isinstance(a, jax.core.Tracer)]
        try:
            for tracer in tracers:
                bool(self.xp.any(tracer != tracer))
        except jax.errors.ConcretizationTypeError:
            return True
        return False

    def stop_gradient(self, array):
        import jax

        return jax.lax.stop_gradient(array)

    def erfcx(self, x):
        """exp(x^2) erfc(x). jax.scipy.special.erfcx returns 0 on [9.195, 9.419] in float32
        and on [26.54, 26.64] in float64 (JAX 0.10): above 9 the asymptotic series
        (1 - 1/(2x^2) + 3/(2x^2)^2 - ...)/(x sqrt pi) is taken instead, whose 15th term is
        below 5e-18 there."""
        xp = self.xp
        large = x > 9.0
        at = xp.where(large, x, 9.0)          # finite where the series is not taken
        step = 1 / (2 * at * at)
        term = total = xp.ones_like(at)
        for n in range(1, 16):
            term = -term * (2 * n - 1) * step
            total = total + term
        return xp.where(large, total / (at * 1.7724538509055159), self.special.erfcx(xp.where(large, 1.0, x)))

    def to_numpy(self, array):
        import jax

        return np.asarray(jax.lax.stop_gradient(array))   # also the value under jax.grad

    def is_float32(self, array) -> bool:
        return array.dtype == self.xp.float32

    def refine_eager(self, mask, default, branch, arguments, in_place=False):
        # JAX arrays are immutable: an update of a subset copies the whole array anyway, so
        # the traced route (the branch everywhere, on safe arguments) is also the eager one.
        if not bool(self.xp.any(mask)):
            return default.function(*default.arguments) if isinstance(default, Lazy) else default
        return self.refine_everywhere(mask, default, branch, arguments)


NUMPY = NumPyBackend()
# TORCH and JAX are made on first use (PEP 562), which imports their library: NumPy code
# that imports this module does not load torch or JAX.
_LIBRARIES = {"TORCH": TorchBackend, "JAX": JaxBackend}


def __getattr__(name):
    if name not in _LIBRARIES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    backend = _LIBRARIES[name]()
    globals()[name] = backend
    return backend
