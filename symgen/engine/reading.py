"""Reading a candidate formula, in SymPy or NumPy syntax, as an exact SymPy expression.

``symgen check NAME EXPR`` and ``symgen.check`` take a formula as its author writes it, in
the derivation's argument names; :func:`read_expression` makes it the SymPy expression the
judges evaluate at 50 digits. It reads

* SymPy syntax, as ``sympify`` does (``x^2`` is a power too): SymPy's functions and
  constants, the special functions by name (``sigmoid``, ``softplus``, ``log1pmx``, ...),
  ``log1p`` and ``expm1``, and for a matrix derivation :data:`MATRIX_FUNCTIONS`
  (``trace``, ``inv``, ``det``, ``logdet``, ``quad(v, A)``, ``sqrtm``, ``diagpart``)
  with ``A.T`` and ``A*B``;
* NumPy syntax, as code writes it: a name under a module path (``np.``, ``numpy.``,
  ``math.``, ``torch.``, ``jnp.``, ``jax.numpy.``, ``scipy.special.``, ``scipy.linalg.``,
  ``linalg.``, ``np.linalg.``, ``torch.nn.functional.``) is the function or constant
  :data:`NUMPY_NAMES` gives, whichever the module (``np.log1p`` and ``torch.log1p`` are
  ``log1p``, ``np.maximum`` is ``Max``, ``math.pi`` is ``pi``, ``scipy.linalg.sqrtm`` is
  ``sqrtm``); ``sp.`` and ``sympy.`` are SymPy's names. ``a @ b`` (``np.dot``,
  ``np.matmul``) multiplies as NumPy does: a vector on the left is a row where the column
  would not multiply, and a 1x1 product is a number, so ``v @ w`` and ``v.T @ A @ v`` add
  to scalars, as ``np.sum(v**2)`` and ``np.linalg.norm(v)`` do. NumPy's array methods
  ``a.dot(b)``, ``a.sum()``, ``a.trace()`` and ``a.real`` are read too.

Numbers are read as written: 0.008 is 1/125 and 1e-5 is 1/100000, not the doubles nearest
to them, and x**0.5 is sqrt(x). A candidate is judged at 50 digits, where a double is a
different formula from its author's. ``1/2`` is one half, as in SymPy.

What cannot be read (an unknown name above all: ``np.foo``, ``torch.bar``, a misspelt
argument) is a ValueError of one line naming it and the derivation's arguments.
"""
from __future__ import annotations

import ast
import builtins
import functools
import tokenize
import types

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import (convert_xor, eval_expr, rationalize, standard_transformations,
                                        stringify_expr)

from .functions import SPECIAL_FUNCTIONS
from .matrices import DiagonalPart, MatrixSqrt
from .primitives import log_normal_cdf, logaddexp, normal_cdf, sigmoid, softplus

#: Names a matrix derivation's candidate may use in SymPy syntax.
MATRIX_FUNCTIONS = {
    "trace": sp.Trace, "tr": sp.Trace, "inv": sp.Inverse, "det": sp.Determinant,
    "logdet": lambda matrix: sp.log(sp.Determinant(matrix)),
    "quad": lambda vector, matrix: sp.Trace(vector.T * matrix * vector),
    "transpose": sp.Transpose, "sqrtm": MatrixSqrt, "diagpart": DiagonalPart,
}

MATRIX_HINT = " (write a quadratic form v^T A v as quad(v, A), trace(v.T*A*v) or v.T @ A @ v)"

# sympify's reading of a string, with decimals read as the exact numbers written.
TRANSFORMATIONS = standard_transformations + (rationalize, convert_xor)


class UnknownName(AttributeError):
    """A name under a module path that is not read (an AttributeError, so that SymPy's own
    probing of an object, hasattr(np, "_sympy_"), sees a missing attribute)."""


class NotRead(ValueError):
    """A NumPy spelling whose meaning would be a guess (np.sum of a matrix power)."""


# --- NumPy's products, sums and norms, for column vectors --------------------------------


def matmul(left, right):
    """left @ right as NumPy multiplies: a vector (a column here) on the left is a row
    where the column would not multiply, and a 1x1 product is a number."""
    if not (isinstance(left, sp.MatrixExpr) and isinstance(right, sp.MatrixExpr)):
        return left * right
    if left.shape[1] == 1 and left.shape[1] != right.shape[0]:
        left = left.T
    product = left * right
    return sp.Trace(product) if product.shape == (1, 1) else product


def outer(left, right):
    return left * right.T if isinstance(right, sp.MatrixExpr) else left * right


def total(value):
    """np.sum of a number, or of v**2 for a vector v (NumPy squares entry by entry): ||v||^2."""
    if not isinstance(value, sp.MatrixExpr):
        return value
    if isinstance(value, sp.MatPow) and value.exp == 2 and value.base.shape[1] == 1:
        return sp.Trace(value.base.T * value.base)
    # A**2 of a matrix is its square in SymPy and its entries' squares in NumPy: not guessed.
    raise NotRead("np.sum is read for a number or for v**2 of a vector v (write trace(...) or quad(v, A))")


def norm(value):
    """np.linalg.norm: |x|, the Euclidean norm of a vector, the Frobenius norm of a matrix."""
    return sp.sqrt(sp.Trace(value.T * value)) if isinstance(value, sp.MatrixExpr) else sp.Abs(value)


def real(value):
    # The matrices a candidate forms from the arguments are real (the square root of a
    # product of covariances too, up to rounding that MatrixSqrt drops): FID code's
    # np.real(sqrtm(cov1 @ cov2)) is the root itself.
    return value if isinstance(value, sp.MatrixExpr) else sp.re(value)


def clip(value, low=None, high=None, **bounds):
    """np.clip(x, low, high), torch.clamp(x, min=low, max=high): Min(Max(x, low), high)."""
    low = bounds.pop("min", bounds.pop("a_min", low))
    high = bounds.pop("max", bounds.pop("a_max", high))
    if bounds:
        raise TypeError(f"clip takes min and max, not {', '.join(bounds)}")
    value = value if low is None else sp.Max(value, low)
    return value if high is None else sp.Min(value, high)


#: What a name under a module path means, whichever the module (np, math, torch, scipy.special, ...).
NUMPY_NAMES = {
    # constants
    "pi": sp.pi, "e": sp.E, "inf": sp.oo, "tau": 2 * sp.pi, "euler_gamma": sp.EulerGamma,
    # powers, exponentials, logarithms
    "sqrt": sp.sqrt, "square": lambda x: x**2, "power": sp.Pow, "pow": sp.Pow, "float_power": sp.Pow,
    "reciprocal": lambda x: 1 / x, "rsqrt": lambda x: 1 / sp.sqrt(x), "hypot": lambda x, y: sp.sqrt(x**2 + y**2),
    "exp": sp.exp, "exp2": lambda x: 2**x, "expm1": expm1,
    "log": sp.log, "log2": lambda x: sp.log(x, 2), "log10": lambda x: sp.log(x, 10), "log1p": log1p,
    "logaddexp": logaddexp, "xlogy": lambda x, y: x * sp.log(y), "xlog1py": lambda x, y: x * log1p(y),
    # signs, bounds, rounding
    "abs": sp.Abs, "absolute": sp.Abs, "fabs": sp.Abs, "sign": sp.sign, "real": real,
    "maximum": sp.Max, "fmax": sp.Max, "minimum": sp.Min, "fmin": sp.Min, "clip": clip, "clamp": clip,
    "floor": sp.floor, "ceil": sp.ceiling,
    # trigonometric and hyperbolic
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh,
    "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan, "arctan2": sp.atan2,
    "asin": sp.asin, "acos": sp.acos, "atan": sp.atan, "atan2": sp.atan2,
    "arcsinh": sp.asinh, "arccosh": sp.acosh, "arctanh": sp.atanh,
    "asinh": sp.asinh, "acosh": sp.acosh, "atanh": sp.atanh,
    # special functions (scipy.special, torch.special, torch.nn.functional, jax.nn)
    "erf": sp.erf, "erfc": sp.erfc, "erfinv": sp.erfinv, "gamma": sp.gamma, "lgamma": sp.loggamma,
    "gammaln": sp.loggamma, "digamma": sp.digamma, "psi": sp.digamma, "polygamma": sp.polygamma,
    "expit": sigmoid, "sigmoid": sigmoid, "logit": lambda p: sp.log(p / (1 - p)), "softplus": softplus,
    "log_expit": lambda x: -softplus(-x), "logsigmoid": lambda x: -softplus(-x),
    "log_sigmoid": lambda x: -softplus(-x), "ndtr": normal_cdf, "log_ndtr": log_normal_cdf,
    # vectors and matrices
    "dot": matmul, "matmul": matmul, "mm": matmul, "inner": matmul, "vdot": matmul, "outer": outer,
    "sum": total, "trace": sp.Trace, "transpose": sp.transpose, "eye": sp.Identity, "identity": sp.Identity,
    "inv": sp.Inverse, "inverse": sp.Inverse, "det": sp.Determinant, "logdet": MATRIX_FUNCTIONS["logdet"],
    "sqrtm": MatrixSqrt, "norm": norm, "matrix_power": sp.MatPow, "solve": lambda a, b: sp.Inverse(a) * b,
}

# Sub-modules read like their module: np.linalg.inv, torch.nn.functional.softplus, jax.numpy.exp.
SUBMODULES = frozenset({"linalg", "special", "nn", "functional", "numpy", "scipy"})


class Module:
    """A module path in a candidate (np, scipy.linalg): its names are read from ``names``;
    the path names what cannot be read."""

    def __init__(self, path: str, names, submodules=SUBMODULES):
        self._path, self._names, self._submodules = path, names, submodules

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)             # Python's and SymPy's own probing
        if name in self._submodules:
            return Module(f"{self._path}.{name}", self._names, self._submodules)
        if name not in self._names:
            raise UnknownName(f"{self._path}.{name}")
        return self._names[name]

    def __repr__(self):
        return f"the module {self._path}"


MODULES = {path: Module(path, NUMPY_NAMES) for path in ("np", "numpy", "math", "torch", "jnp", "jax", "scipy",
                                                         "linalg", "special")}
MODULES.update({path: Module(path, vars(sp), frozenset()) for path in ("sp", "sympy")})


#: NumPy's methods and attributes of an array, for an expression (FID code's sigma1.dot(sigma2)).
NUMPY_METHODS = {
    "dot": lambda value: functools.partial(matmul, value),
    "sum": lambda value: lambda: total(value),
    "trace": lambda value: lambda: sp.Trace(value),
    "real": real,
}


def attribute(value, name: str):
    """value.name: the object's own attribute, else NumPy's method of that name."""
    try:
        return getattr(value, name)
    except AttributeError:
        if isinstance(value, Module) or name not in NUMPY_METHODS:
            raise
        return NUMPY_METHODS[name](value)


# --- reading -----------------------------------------------------------------------------


def read_expression(found, candidate) -> sp.Basic:
    """``candidate`` (a string in SymPy or NumPy syntax, a number, or a SymPy expression)
    as a SymPy expression in the arguments of the derivation ``found``; a ValueError of
    one line when it cannot be read or uses names that are not arguments."""
    if isinstance(candidate, sp.Basic):
        expression = candidate
    elif isinstance(candidate, (str, int, float)) and not isinstance(candidate, bool):
        expression = _read(found, str(candidate))
    else:
        raise ValueError(f"cannot read a candidate of type {type(candidate).__name__}: give a string "
                         f"or a SymPy expression; {_takes(found)}")
    _check_names(found, expression)
    return expression


def _read(found, text: str) -> sp.Basic:
    names = _names(found)
    try:
        code = stringify_expr(text.replace("\n", " "), names, _sympy_names(), TRANSFORMATIONS)
        tree = ast.fix_missing_locations(_NumpySyntax().visit(ast.parse(code, mode="eval")))
        value = eval_expr(compile(tree, "<candidate>", "eval"), names, _sympy_names())
    except UnknownName as error:
        raise _unreadable(found, text, f"unknown name {error}") from None
    except AttributeError as error:
        reason = f"unknown attribute .{error.name}" if error.name else _reason(error)
        raise _unreadable(found, text, reason) from None
    except NotRead as error:
        raise _unreadable(found, text, str(error)) from None
    except Exception as error:            # anything else SymPy or Python says about the text
        raise _unreadable(found, text, _reason(error), hint=True) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return sp.sympify(value)
    if not isinstance(value, sp.Basic):
        what = f"the function {text.strip()}" if callable(value) else repr(value)
        raise _unreadable(found, text, f"it is {what}, not a formula (call a function with its arguments)")
    return value


def _names(found) -> dict:
    """The names a candidate reads, beyond SymPy's: the derivation's arguments win."""
    names = {"log1p": log1p, "expm1": expm1, **SPECIAL_FUNCTIONS, **MODULES}
    if found.is_matrix:
        names.update(MATRIX_FUNCTIONS)
    names.update(found.symbols())
    names.update({_NumpySyntax.MATMUL: matmul, _NumpySyntax.ATTRIBUTE: attribute})
    return names


@functools.cache
def _sympy_namespace() -> dict:
    # As parse_expr builds it: SymPy's names, Python's built-in functions, max and min as Max and Min.
    namespace: dict = {}
    exec("from sympy import *", namespace)
    namespace.update({name: value for name, value in vars(builtins).items()
                      if isinstance(value, types.BuiltinFunctionType)})
    namespace.update(max=sp.Max, min=sp.Min)
    return namespace


def _sympy_names() -> dict:
    return dict(_sympy_namespace())        # a copy: eval may add to its globals


class _NumpySyntax(ast.NodeTransformer):
    """a @ b as matmul(a, b) (SymPy's @ multiplies the columns as written), and a.name as
    attribute(a, "name"), which reads NumPy's methods where SymPy has none."""

    MATMUL, ATTRIBUTE = "_numpy_matmul", "_numpy_attribute"

    def visit_BinOp(self, node):
        node = self.generic_visit(node)
        if isinstance(node.op, ast.MatMult):
            return ast.Call(ast.Name(self.MATMUL, ast.Load()), [node.left, node.right], [])
        return node

    def visit_Attribute(self, node):
        node = self.generic_visit(node)
        return ast.Call(ast.Name(self.ATTRIBUTE, ast.Load()), [node.value, ast.Constant(node.attr)], [])


def _check_names(found, expression):
    allowed = set(found.symbols().values())
    unknown = sorted(str(symbol) for symbol in expression.free_symbols if symbol not in allowed)
    unknown += sorted({f"{call.func.__name__}()" for call in expression.atoms(AppliedUndef)})
    if unknown:
        raise ValueError(f"the candidate uses {', '.join(unknown)}, which "
                         f"{'is not an argument' if len(unknown) == 1 else 'are not arguments'} or a "
                         f"function symgen reads; {_takes(found)}")


def _reason(error: Exception) -> str:
    if isinstance(error, tokenize.TokenError):
        return "unbalanced brackets" if "multi-line" in str(error.args[0]) else str(error.args[0])
    if isinstance(error, SyntaxError):
        return error.msg
    return " ".join(str(error).split()) or type(error).__name__      # one line, however worded


def _unreadable(found, text: str, reason: str, hint: bool = False) -> ValueError:
    hint_text = MATRIX_HINT if hint and found.is_matrix else ""
    return ValueError(f"cannot read the candidate {text!r}: {reason}{hint_text}; {_takes(found)}")


def _takes(found) -> str:
    return f"{found.name} takes {', '.join(found.param_names)}"
