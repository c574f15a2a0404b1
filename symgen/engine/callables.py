"""A user's Python function as a candidate formula.

A research codebase holds its formulas as functions: a VAE's KL term in PyTorch, a
posterior variance in a diffusion sampler, an FID function that takes one pair of mean
vectors and covariance matrices. To judge one against a derivation it has to be called
with the derivation's parameters, whatever the function calls them and whatever it
accepts:

* parameters are matched by an explicit ``args`` mapping ({its name: the derivation's}),
  else by name, else by position;
* it is called on NumPy float64 arrays, all points at once, where that gives one value
  per point (checked against single-point calls, so a function that reduces over its
  input is not mistaken for one that broadcasts); else one point at a time; and with
  torch tensors instead where NumPy inputs fail or a tensor comes back;
* for a derivation with several outputs it may return the tuple of all of them.

Nothing here imports torch unless the function needs it.
"""
from __future__ import annotations

import functools
import inspect
import operator
from dataclasses import dataclass, field

import mpmath
import numpy as np

from .domains import Count

#: The points compared between an all-at-once call and single-point calls before the
#: function is taken to broadcast.
BROADCAST_PROBES = 3


class CandidateError(ValueError):
    """The candidate cannot be called as the derivation's function (its parameters do not
    match, or it fails on every kind of input)."""


def match_parameters(function, derivation, args: dict | None = None) -> tuple[list, dict]:
    """How to pass the derivation's parameters to ``function``: (positional derivation
    names, {keyword: derivation name}). ``args`` maps the function's parameter names to
    the derivation's; without it, the function's required parameters are matched by
    name if they are all among the derivation's, else by position."""
    names = derivation.param_names
    taken = ", ".join(names)
    unknown = sorted(value for value in (args or {}).values() if value not in names)
    if unknown:
        raise CandidateError(f"args maps to {unknown}, which are not parameters of "
                             f"{derivation.name} ({taken})")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):           # a builtin or a C function: by position
        if args:
            raise CandidateError(f"args cannot name the parameters of {function!r}, which has no "
                                 f"signature; it is called with {derivation.name}'s ({taken}) in order") from None
        return list(names), {}
    parameters = list(signature.parameters.values())
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    takes_keywords = any(p.kind is p.VAR_KEYWORD for p in parameters)
    named = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [p.name for p in named if p.default is p.empty]
    own = ", ".join(p.name for p in named) or "*args"
    if args:
        missing = [name for name in args if name not in {p.name for p in named} and not takes_keywords]
        if missing:
            raise CandidateError(f"args names {missing}, which the candidate ({own}) does not take")
        unmapped = [name for name in required if name not in args]
        if unmapped:
            raise CandidateError(f"the candidate's parameters {unmapped} are not in args, and "
                                 f"{derivation.name} takes {taken}")
        positional_only = [p.name for p in named if p.kind is p.POSITIONAL_ONLY]
        positional = [args[name] for name in positional_only if name in args]
        return positional, {name: value for name, value in args.items() if name not in positional_only}
    if required and all(name in names for name in required):
        keywords = {p.name: p.name for p in named if p.name in names}
        positional_only = [p.name for p in named if p.kind is p.POSITIONAL_ONLY]
        return positional_only, {k: v for k, v in keywords.items() if k not in positional_only}
    positional = [p for p in named if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) == len(names) and len(positional) >= len(names) or (variadic and not required):
        return list(names), {}
    raise CandidateError(f"cannot match the candidate's parameters ({own}) to {derivation.name}'s "
                         f"({taken}): name them so, or pass args={{'{required[0] if required else 'x'}': "
                         f"'{names[0]}', ...}}")


@dataclass
class CallableCandidate:
    """``function`` set up to be called with the derivation's parameters (see the module
    docstring). ``outputs`` are the derivation's outputs it returns, in order: one, or
    all of them as a tuple."""

    function: object
    derivation: object
    outputs: tuple
    positional: list
    keywords: dict
    #: "numpy" or "torch", and whether one call takes many points; found on first use.
    backend: str | None = None
    broadcasts: bool | None = None
    #: The machine epsilon of what it returns (float32 code is judged by float32 rounding).
    epsilon: float = float(np.finfo(np.float64).eps)
    notes: list = field(default_factory=list)

    @property
    def description(self) -> str:
        name = getattr(self.function, "__qualname__", None) or type(self.function).__name__
        module = getattr(self.function, "__module__", None)
        return f"{module}.{name}" if module and module not in ("__main__", "builtins") else name

    # --- calling ----------------------------------------------------------------------

    def at_points(self, points: list[dict]) -> dict[str, list]:
        """The candidate's value of each output at each point: {output: [value, ...]}, a
        value being a float (or a 1-d array for a vector output), NaN where the call failed."""
        if self.backend is None:
            self._choose(points)
        if self.broadcasts:
            stacked = {name: np.array([point[name] for point in points], dtype=np.float64)
                       for name in self.derivation.param_names}
            values = self._call(stacked, self.backend)
            return {name: list(np.broadcast_to(value, (len(points),) + np.shape(value)[1:]))
                    for name, value in values.items()}
        each = [self._call_safely(point) for point in points]
        return {name: [values[name] for values in each] for name in self.outputs}

    def on_arrays(self, output: str):
        """A function of arrays of the derivation's parameters (keywords) giving arrays of
        ``output``: what the checks that apply the formula to samples call."""
        def apply(**arrays):
            if self.backend is None:
                self._choose([{name: np.asarray(value).flat[0] for name, value in arrays.items()}])
            if self.broadcasts:
                return self._call(arrays, self.backend)[output]
            shape = np.broadcast_shapes(*(np.shape(value) for value in arrays.values()))
            flat = {name: np.broadcast_to(value, shape).ravel() for name, value in arrays.items()}
            points = [{name: flat[name][index] for name in flat} for index in range(int(np.prod(shape)))]
            return np.array([self._call_safely(point)[output] for point in points]).reshape(shape)
        return apply

    def in_other_precision(self, point: dict):
        """The candidate's outputs at ``point`` computed in another precision than float64,
        with its name; None where that cannot be done. NumPy code runs at
        :data:`PRECISE_DIGITS` digits where it can (its inputs are :class:`Precise` numbers,
        which NumPy's ufuncs evaluate by their methods), else in extended precision
        (np.longdouble); torch code in float32. Whether a difference from the closed form
        shrinks or grows with the precision tells rounding in the candidate's arithmetic
        from a different formula."""
        if self.backend == "torch":
            import torch

            attempts = [("float32", lambda value: torch.as_tensor(np.asarray(value, dtype=np.float32)))]
        else:
            attempts = [(f"{PRECISE_DIGITS} digits", _precise)]
            if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps:
                attempts.append(("longdouble", lambda value: np.asarray(value, dtype=np.longdouble)[()]))
        for name, convert in attempts:
            outputs = self._outputs_in(point, convert, name)
            if outputs is not None:
                return outputs, name
        return None

    def _outputs_in(self, point: dict, convert, precision: str):
        try:
            with np.errstate(all="ignore"), mpmath.workdps(PRECISE_DIGITS):
                result = self.function(*[self._argument(point, n, convert) for n in self.positional],
                                       **{own: self._argument(point, n, convert)
                                          for own, n in self.keywords.items()})
            values = result if len(self.outputs) > 1 else (result,)
            if isinstance(result, (tuple, list)) and len(self.outputs) == 1 and len(result) == 1:
                values = result
            outputs = {}
            for output, value in zip(self.outputs, values):
                if type(value).__module__.startswith("torch"):
                    value = value.detach().cpu().numpy()
                array = np.asarray(value)
                if precision == "longdouble" and array.dtype != np.longdouble:
                    return None       # math.* or a cast: the precision did not reach the result
                if precision.endswith("digits"):
                    if not all(isinstance(entry, Precise) for entry in array.reshape(-1)):
                        return None   # something left the precise numbers (float(), math.*)
                    array = np.array([entry.value for entry in array.reshape(-1)],
                                     dtype=object).reshape(array.shape)
                outputs[output] = array
            return outputs
        except Exception:
            return None

    def _call_safely(self, point: dict) -> dict:
        try:
            return self._call(point, self.backend)
        except Exception as error:      # a user's function may raise anything at a point
            self._remember(error)
            return {name: np.nan for name in self.outputs}

    def _remember(self, error: Exception) -> None:
        note = f"the candidate raised {type(error).__name__}: {error}".strip().rstrip(":")
        if note not in self.notes:
            self.notes.append(note)

    def _argument(self, arguments: dict, name: str, convert):
        """The value of parameter ``name`` as the candidate gets it: converted for its
        backend, and an integer where the parameter takes integer values only (a count of
        draws, a binary variable), so ``range(draws)`` works."""
        if name in self._integers:
            value = np.asarray(arguments[name])
            if np.all(value == np.round(value)):
                value = value.astype(np.int64)
                return convert(value, integer=True) if convert is _to_torch else value[()]
        return convert(arguments[name])

    @functools.cached_property
    def _integers(self) -> set:
        return {param.name for param in self.derivation.params
                if all(float(value).is_integer() for value in getattr(param.domain, "values", None) or [0.5])
                or isinstance(param.domain, Count)}

    def _call(self, arguments: dict, backend: str) -> dict:
        convert = _to_torch if backend == "torch" else _to_numpy
        positional = [self._argument(arguments, name, convert) for name in self.positional]
        keywords = {own: self._argument(arguments, name, convert) for own, name in self.keywords.items()}
        result = self.function(*positional, **keywords)
        return self._outputs_of(result)

    def _outputs_of(self, result) -> dict:
        if len(self.outputs) > 1:
            if isinstance(result, dict):
                result = [result[name] for name in self.outputs]
            if not isinstance(result, (tuple, list)) or len(result) != len(self.outputs):
                raise CandidateError(f"{self.derivation.name} has outputs {', '.join(self.outputs)}: "
                                     f"the candidate must return all {len(self.outputs)} as a tuple "
                                     f"(or check NAME.OUTPUT)")
            return {name: self._array(value) for name, value in zip(self.outputs, result)}
        if isinstance(result, (tuple, list)) and len(result) == 1:
            result = result[0]
        return {self.outputs[0]: self._array(result)}

    def _array(self, value) -> np.ndarray:
        if type(value).__module__.startswith("torch"):
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
        if np.iscomplexobj(array):
            # sqrtm of a product returns complex with rounding-level imaginary parts; the
            # user's code takes the real part (pytorch-fid does), so that is the value.
            array = array.real
        if array.dtype.kind == "f" and array.dtype.itemsize < 8:
            self.epsilon = max(self.epsilon, float(np.finfo(array.dtype).eps))
        return array.astype(np.float64) if array.dtype.kind in "fiub" else array

    # --- finding how it is called -------------------------------------------------------

    def _choose(self, points: list[dict]) -> None:
        """Find the backend and whether the function broadcasts, from the first points:
        all points at once (NumPy, then torch), else one point at a time (NumPy scalars,
        then torch)."""
        probes = points[:BROADCAST_PROBES]
        failures = []
        for backend in ("numpy", "torch"):
            if backend == "torch" and not _torch_available():
                continue
            try:
                singles = [self._call(point, backend) for point in probes]
            except CandidateError:
                raise
            except Exception as error:
                failures.append(f"{backend}: {type(error).__name__}: {error}")
                continue
            if backend == "numpy" and self._returned_tensor(probes[0]):
                continue              # torch code that happens to accept NumPy scalars
            self.backend = backend
            self.broadcasts = not self.derivation.is_matrix and self._broadcasts(points, singles)
            if not self.broadcasts:
                self.notes.append("the candidate does not broadcast: called once per point")
            return
        raise CandidateError(f"the candidate fails at {_format(probes[0])}: " + "; ".join(failures))

    def _returned_tensor(self, point) -> bool:
        positional = [self._argument(point, name, _to_numpy) for name in self.positional]
        keywords = {own: self._argument(point, name, _to_numpy) for own, name in self.keywords.items()}
        try:
            result = self.function(*positional, **keywords)
        except Exception:
            return False
        first = result[0] if isinstance(result, (tuple, list)) and result else result
        return type(first).__module__.startswith("torch")

    def _broadcasts(self, points, singles) -> bool:
        if len(points) < 2:
            return False
        stacked = {name: np.array([point[name] for point in points], dtype=np.float64)
                   for name in self.derivation.param_names}
        try:
            with np.errstate(all="ignore"):
                values = self._call(stacked, self.backend)
        except Exception:
            return False
        for name, value in values.items():
            if np.shape(value) != (len(points),):
                return False
            probe = np.array([single[name] for single in singles], dtype=np.float64).reshape(-1)
            if not np.allclose(value[:len(probe)], probe, rtol=1e-12, atol=0, equal_nan=True):
                return False
        return True


#: The working precision of :class:`Precise` numbers.
PRECISE_DIGITS = 60


class Precise:
    """A real number at :data:`PRECISE_DIGITS` digits (an mpmath mpf) that NumPy code can
    compute with: arithmetic and comparisons as numbers do, and the methods NumPy's ufuncs
    call on objects (``np.exp(x)`` calls ``x.exp()``), so a NumPy function given these
    instead of floats evaluates its own formula at high precision."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value.value if isinstance(value, Precise) else mpmath.mpf(value)

    def __float__(self):
        return float(self.value)

    def __repr__(self):
        return f"Precise({mpmath.nstr(self.value, 20)})"

    def __bool__(self):
        return bool(self.value)


def _operand(value):
    if isinstance(value, Precise):
        return value.value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return mpmath.mpf(float(value)) if isinstance(value, (float, np.floating)) else mpmath.mpf(int(value))
    raise TypeError(f"not a real number: {type(value).__name__}")


def _binary(operation, swapped=False):
    def method(self, other):
        try:
            other = _operand(other)
        except TypeError:
            return NotImplemented
        return Precise(operation(other, self.value) if swapped else operation(self.value, other))
    return method


def _compare(operation):
    def method(self, other):
        try:
            return operation(self.value, _operand(other))
        except TypeError:
            return NotImplemented
    return method


for _name, _operation in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                          ("truediv", operator.truediv), ("pow", operator.pow)]:
    setattr(Precise, f"__{_name}__", _binary(_operation))
    setattr(Precise, f"__r{_name}__", _binary(_operation, swapped=True))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(Precise, f"__{_name}__", _compare(getattr(operator, _name)))
Precise.__hash__ = lambda self: hash(self.value)
Precise.__neg__ = lambda self: Precise(-self.value)
Precise.__pos__ = lambda self: self
Precise.__abs__ = lambda self: Precise(abs(self.value))
# The methods NumPy's ufuncs call on object arrays, by the ufunc's name.
for _name, _function in [("exp", mpmath.exp), ("expm1", mpmath.expm1), ("log", mpmath.log),
                         ("log1p", mpmath.log1p), ("log2", lambda x: mpmath.log(x, 2)),
                         ("log10", mpmath.log10), ("sqrt", mpmath.sqrt), ("square", lambda x: x * x),
                         ("sin", mpmath.sin), ("cos", mpmath.cos), ("tan", mpmath.tan),
                         ("arcsin", mpmath.asin), ("arccos", mpmath.acos), ("arctan", mpmath.atan),
                         ("sinh", mpmath.sinh), ("cosh", mpmath.cosh), ("tanh", mpmath.tanh),
                         ("arcsinh", mpmath.asinh), ("arccosh", mpmath.acosh), ("arctanh", mpmath.atanh),
                         ("absolute", abs), ("fabs", abs), ("sign", mpmath.sign),
                         ("reciprocal", lambda x: 1 / x), ("conjugate", lambda x: x)]:
    setattr(Precise, _name, (lambda function: lambda self: Precise(function(self.value)))(_function))


def _precise(value):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return Precise(float(array))
    return np.array([Precise(float(entry)) for entry in array.reshape(-1)], dtype=object).reshape(array.shape)


def _to_numpy(value):
    array = np.asarray(value, dtype=np.float64)
    return array[()] if array.ndim == 0 else array    # a NumPy scalar: math.* accepts it


def _to_torch(value, integer: bool = False):
    import torch

    return torch.as_tensor(np.asarray(value, dtype=np.int64 if integer else np.float64))


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _format(point: dict) -> str:
    return ", ".join(f"{name}={np.asarray(value).tolist()!r}" for name, value in point.items())


def callable_candidate(function, derivation, outputs: tuple, args: dict | None = None) -> CallableCandidate:
    """``function`` as a candidate for ``outputs`` of ``derivation`` (see the module docstring)."""
    positional, keywords = match_parameters(function, derivation, args)
    return CallableCandidate(function, derivation, tuple(outputs), positional, keywords)
