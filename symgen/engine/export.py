"""A closed form as source code for another array library (``symgen export``).

The derivation's implemented expression (its stable rewrite where it has one) is
printed by SymPy's printer for the backend (NumPy, PyTorch, JAX), after the same
common-subexpression elimination and constant folding as the generated NumPy code.
The stable primitives come along as small functions written in the backend's own
operations. Exported functions do not validate their arguments.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import JaxPrinter, NumPyPrinter
from sympy.printing.pytorch import TorchPrinter

from .primitives import log_normal_mass
from .printer import PlainNumbers, fold_constants

MODULES = {"numpy": "numpy", "torch": "torch", "jax": "jax.numpy"}
# Where each backend keeps the normal CDF and its logarithm (NumPy has neither).
SPECIAL = {"numpy": "scipy.special", "torch": "torch.special", "jax": "jax.scipy.special"}

PRELUDE = '''

def log1pmx(u):
    """log(1 + u) - u; a series in t = u / (2 + u) near 0, where the difference cancels."""
    t = u / (2 + u)
    t2 = t * t
    odd_sum = 1.0 / 33
    for k in range(15, 0, -1):
        odd_sum = 1.0 / (2 * k + 1) + t2 * odd_sum
    series = 2 * t2 * (t * odd_sum - 1 / (1 - t))
    return {module}.where({module}.abs(u) < 0.5, series, {module}.log1p(u) - u)


def expm1mx(x):
    """exp(x) - 1 - x; its Taylor series near 0, where the difference cancels."""
    total = 0.0
    factorial = 1.0
    for k in range(2, 19):
        factorial *= k
    for k in range(18, 1, -1):
        total = total * x + 1.0 / factorial
        factorial /= k
    series = x * x * total
    return {module}.where({module}.abs(x) < 0.5, series, {module}.expm1(x) - x)


def softplus(x):
    """log(1 + exp(x)), without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return {module}.maximum(x, 0 * x) + {module}.log1p({module}.exp(-{module}.abs(x)))
'''


# Only for closed forms that use it: it needs the backend's special functions.
NORMAL_MASS_PRELUDE = '''

def log_normal_mass(a, b):
    """log(Phi(b) - Phi(a)) without cancellation: intervals below 0 are reflected; one
    containing 0 is 1 minus two tails; one in the upper tail is a tail times
    (1 - a ratio of tails), the ratio's complement formed by expm1 or log1p."""
    flip = (a + b) < 0
    low, high = {module}.where(flip, -b, a), {module}.where(flip, -a, b)
    # Phi(x) as erfc(-x / sqrt 2) / 2: full relative precision in the lower tail (some
    # backends' ndtr is 1 + erf, which rounds tail masses below 1e-16 to 0).
    inner = {module}.log1p(-({special}.erfc(-low * 0.7071067811865476)
                             + {special}.erfc(high * 0.7071067811865476)) / 2)
    upper = {special}.log_ndtr(-low)
    ratio = {special}.log_ndtr(-high) - upper
    complement = {module}.where(ratio > -0.6931471805599453, {module}.log(-{module}.expm1(ratio)),
                                {module}.log1p(-{module}.exp(ratio)))
    return {module}.where(low <= 0, inner, upper + complement)
'''


def _printer_class(base, module):
    class BackendPrinter(PlainNumbers, base):
        # Special functions print themselves from their declarations (torch=, jax=); the
        # prelude above defines the ones that print as a plain call (log1pmx(...)). For
        # NumPy the declaration names symgen's own helpers (stable.log1pmx), which an
        # exported module does not have: it calls the prelude's, or NumPy's logaddexp.

        def print_special_function(self, expression):
            code = expression._declaration["numpy"]
            if module != "numpy" or not (isinstance(code, str) and code.startswith("stable.")):
                return None
            name = code.removeprefix("stable.")
            if name == "logaddexp":
                name = "numpy.logaddexp"
            return f"{name}({', '.join(self._print(argument) for argument in expression.args)})"

        def _print_log1p(self, expression):
            return f"{module}.log1p({self._print(expression.args[0])})"

        def _print_expm1(self, expression):
            return f"{module}.expm1({self._print(expression.args[0])})"

        def _print_Piecewise(self, expression):
            *branches, (otherwise, _) = expression.args
            printed = self._print(otherwise)
            for value, condition in reversed(branches):
                printed = f"{module}.where({self._print(condition)}, {self._print(value)}, {printed})"
            return printed

    return BackendPrinter


PRINTERS = {"numpy": NumPyPrinter, "torch": TorchPrinter, "jax": JaxPrinter}


def export(found, backend: str) -> str:
    """Source of a module defining ``found.name`` for ``backend`` (numpy, torch or jax)."""
    if backend not in MODULES:
        raise ValueError(f"backend must be one of {sorted(MODULES)}, got {backend!r}")
    if found.is_matrix or found.implementation:
        raise ValueError(f"{found.name} is implemented by hand in NumPy (matrix arithmetic); "
                         f"it has no printed closed form to export")
    module = MODULES[backend]
    printer = _printer_class(PRINTERS[backend], module)({"fully_qualified_modules": True})
    expressions = [fold_constants(output.implementation) for output in found.outputs.values()]
    temporaries, reduced = sp.cse(expressions, symbols=sp.numbered_symbols("_t"), optimizations="basic")
    names = ", ".join(found.param_names)
    lines = [f'"""{found.title}, exported by `symgen export {found.name} --backend {backend}`.', "",
             f"Derived and verified in symgen (`symgen show {found.name}`); no argument validation here.",
             '"""', f"import {module}"]
    uses_normal_mass = any(expression.atoms(log_normal_mass) for expression in expressions)
    if uses_normal_mass and SPECIAL[backend] != module:
        lines.append(f"import {SPECIAL[backend]}")
    lines += [PRELUDE.format(module=module)
              + (NORMAL_MASS_PRELUDE.format(module=module, special=SPECIAL[backend]) if uses_normal_mass else ""),
              "",
              f"def {found.name}({names}):"]
    for output in found.outputs.values():
        lines.append(f"    # {output.name} = {sp.sstr(output.closed_form)}")
    for symbol, value in temporaries:
        lines.append(f"    {symbol} = {printer.doprint(value)}")
    printed = [printer.doprint(expression) for expression in reduced]
    lines.append(f"    return {printed[0] if len(printed) == 1 else '(' + ', '.join(printed) + ')'}")
    return "\n".join(lines) + "\n"
