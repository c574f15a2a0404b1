"""Special functions and lemmas: the names a derivation writes, each declared once.

A *special function* is a named function whose meaning SymPy knows but which is
evaluated its own way. ``log1pmx(u)`` means ``log(1 + u) - u``, yet the generated code
calls ``symgen.numerics.stable.log1pmx``, which does not cancel at small ``u``; the
cosine schedule's level ``f(t)/f(0)`` means a ratio of sines (a lemma proves it), yet a
spot check evaluates the paper's cosines. :func:`special_function` declares one, with

* ``meaning``: the SymPy expression the proofs use (``doit`` gives it for symbolic
  arguments, after proving the ``lemmas`` it rests on);
* ``mpmath``: how to evaluate it to high precision at numbers (spot checks, 50-digit
  reference values); by default its meaning is evaluated;
* ``numeric``: optionally, a SymPy-level route taken by ``doit`` when the arguments
  (other than the bound ``variables``) are numbers, so a spot check compares two
  computations that share nothing;
* ``numpy``: how generated code evaluates it: the name of a function
  (``"stable.log1pmx"``, ``"numpy.minimum"``), a template with ``{0}``, ``{1}`` for the
  printed arguments (``{0:p}``: in parentheses unless a symbol or a number), or a function
  returning a SymPy expression, printed in parentheses; ``torch`` and ``jax`` likewise,
  where they differ. A stable primitive (``"stable.<name>"``) is one function for every
  library: the torch and JAX code pass it their backend object
  (``stable.log1pmx(u, backend)``, symgen/numerics/backends.py);
* ``latex`` and ``text``: templates for reading it.

Every printer and evaluator in the engine reads these declarations (the registry
:data:`SPECIAL_FUNCTIONS`), so a special function is defined in one place. A derivation
module declares its own the same way the engine declares the stable primitives
(``symgen/engine/primitives.py``).

A :class:`Lemma` is an identity between SymPy expressions, written down when a module
is imported and proved by SymPy the first time something rests on it.
"""
from __future__ import annotations

import functools
import types
from typing import Callable

import mpmath
import sympy as sp

#: Every declared special function, by name (the engine's printers and evaluators read it).
SPECIAL_FUNCTIONS: dict[str, type] = {}

# Declared classes are attributes of this namespace, so pickle (the cache of derived
# expressions) finds them by name.
registered = types.SimpleNamespace()


class LemmaError(Exception):
    """A lemma that SymPy could not prove."""


class Lemma:
    """An identity ``left = right`` (one or several pairs), proved by SymPy on first use.

    The expressions may contain unevaluated integrals, sums or expectations: the proof
    evaluates them (``doit``) and simplifies the difference to 0."""

    def __init__(self, statement: str, *equalities: tuple):
        self.statement = statement
        self.equalities = equalities

    def __repr__(self):
        return f"<Lemma {self.statement}>"

    @functools.cache
    def prove(self) -> str:
        for left, right in self.equalities:
            difference = sp.sympify(left).doit() - sp.sympify(right).doit()
            # The last attempt decides identities between clips (Min, Max) case by case.
            attempts = (sp.expand, sp.simplify, lambda e: sp.simplify(sp.expand_log(sp.expand(e), force=True)),
                        lambda e: sp.simplify(sp.piecewise_fold(e.rewrite(sp.Piecewise))))
            if not any(attempt(difference) == 0 for attempt in attempts):
                raise LemmaError(f"lemma not proved: {self.statement} (residual {sp.simplify(difference)})")
        return f"lemma proved by SymPy: {self.statement}"


class SpecialFunction(sp.Function):
    """Base of every declared special function; see :func:`special_function`."""

    _declaration: dict = {}

    @classmethod
    def eval(cls, *arguments):
        return None          # kept unevaluated: its meaning is used only when asked

    # --- meaning, for proofs ---------------------------------------------------------

    def meaning(self):
        """The SymPy expression this function stands for, at its arguments."""
        declaration = self._declaration
        for lemma in declaration["lemmas"]:
            lemma.prove()
        return declaration["meaning"](*self.args)

    def doit(self, deep=True, **hints):
        arguments = [argument.doit(deep=deep, **hints) for argument in self.args] if deep else list(self.args)
        declaration = self._declaration
        parameters = [a for index, a in enumerate(arguments) if index not in declaration["variables"]]
        if all(parameter.is_number for parameter in parameters):
            if declaration["numeric"] is not None:
                return declaration["numeric"](*arguments)
            return self.func(*arguments)           # numbers: evaluated by evalf (mpmath)
        if declaration["opaque"]:
            return self.func(*arguments)
        return self.func(*arguments).meaning()

    def fdiff(self, argindex=1):
        derivative = self._declaration["derivative"]
        if derivative is not None:
            return derivative(*self.args)[argindex - 1] if len(self.args) > 1 else derivative(*self.args)
        dummies = [sp.Dummy(f"a{index}") for index in range(len(self.args))]
        meaning = self.func(*dummies).meaning()
        return meaning.diff(dummies[argindex - 1]).xreplace(dict(zip(dummies, self.args)))

    def _eval_is_real(self):
        if self._declaration["real"]:
            return all(argument.is_real for argument in self.args) or None
        return None

    # --- numbers --------------------------------------------------------------------

    def _eval_evalf(self, prec):
        if not all(argument.is_number for argument in self.args):
            return None
        declaration = self._declaration
        digits = mpmath.libmp.prec_to_dps(prec)
        if declaration["mpmath"] is None:
            return self.meaning().evalf(digits)
        with mpmath.workprec(prec + 20):
            arguments = [argument._to_mpmath(prec + 20) for argument in self.args]
            value = declaration["mpmath"](*arguments)
        if isinstance(value, mpmath.mpc):
            return sp.Float(value.real, digits) + sp.I * sp.Float(value.imag, digits)
        return sp.Float(value, digits)

    # --- printing -------------------------------------------------------------------

    def _print_code(self, printer, backend: str):
        hook = getattr(printer, "print_special_function", None)     # a printer's own choice
        if hook is not None:
            printed = hook(self)
            if printed is not None:
                return printed
        declaration = self._declaration
        code = declaration.get(backend) or declaration["numpy"]
        if code is None:
            raise ValueError(f"{self.func.__name__} has no code for {backend}")
        if callable(code):
            return f"({printer._print(code(*self.args))})"
        if "{" in code:
            return code.format(*(_Printed(printer, argument) for argument in self.args))
        arguments = [printer._print(argument) for argument in self.args]
        if code.startswith("stable.") and backend != "numpy":
            arguments.append("backend")              # the primitive serves every library
        elif "." in code and hasattr(printer, "_module_format"):
            code = printer._module_format(code)      # registers the module for lambdify
        return f"{code}({', '.join(arguments)})"

    def _numpycode(self, printer, **kwargs):
        return self._print_code(printer, "numpy")

    def _torchcode(self, printer, **kwargs):
        return self._print_code(printer, "torch")

    def _jaxcode(self, printer, **kwargs):
        return self._print_code(printer, "jax")

    def _latex(self, printer, exp=None):
        template = self._declaration["latex"]
        arguments = [printer._print(argument) for argument in self.args]
        if template is None:
            name = self.func.__name__.replace("_", r"\_")
            body = rf"\operatorname{{{name}}}\left({', '.join(arguments)}\right)"
        else:
            body = template.format(*arguments)
        return body if exp is None else rf"\left({body}\right)^{{{exp}}}"

    def _sympystr(self, printer):
        template = self._declaration["text"]
        arguments = [printer._print(argument) for argument in self.args]
        if template is None:
            return f"{self.func.__name__}({', '.join(arguments)})"
        return template.format(*arguments)


class _Printed:
    """An argument as a template field: ``{0}`` is its printed form, ``{0:p}`` the same in
    parentheses unless it is a symbol or a number (an operand of / or -, say)."""

    def __init__(self, printer, argument):
        self.printer, self.argument = printer, argument

    def __format__(self, spec: str) -> str:
        printed = self.printer._print(self.argument)
        if spec == "p" and not self.argument.is_Atom:
            return f"({printed})"
        if spec not in ("", "p"):
            raise ValueError(f"unknown template field format {spec!r} (use {{0}} or {{0:p}})")
        return printed


def special_function(name: str, arguments: int, *, meaning: Callable, mpmath: Callable | None = None,
                     numeric: Callable | None = None, numpy=None, torch=None, jax=None,
                     latex: str | None = None, text: str | None = None, lemmas=(), variables=(),
                     derivative: Callable | None = None, real: bool = False,
                     opaque: bool = False, doc: str = "") -> type:
    """Declare a special function (see the module docstring) and return its SymPy class.

    ``variables`` are the indices of arguments that may stay symbolic while ``numeric``
    applies (the argument u of a cumulant generating function K(u), say). ``opaque``
    keeps the function in proofs (its arguments are still evaluated): for a clip
    min(value, ceiling), whose proofs compare the values inside without deciding
    inequalities. ``derivative`` gives the partial derivatives (a tuple, or one
    expression for a function of one argument) when differentiating the meaning is not
    wanted."""
    declaration = dict(meaning=meaning, mpmath=mpmath, numeric=numeric, numpy=numpy, torch=torch, jax=jax,
                       latex=latex, text=text, lemmas=tuple(lemmas), variables=frozenset(variables),
                       derivative=derivative, real=real, opaque=opaque)
    cls = type(name, (SpecialFunction,), {"nargs": arguments, "_declaration": declaration,
                                           "__doc__": doc or f"The special function {name}."})
    cls.__module__ = __name__
    cls.__qualname__ = f"registered.{name}"
    setattr(registered, name, cls)
    SPECIAL_FUNCTIONS[name] = cls
    return cls


def textbook(expression, keep_opaque: bool = False):
    """``expression`` with every special function replaced by its meaning, recursively
    (opaque ones too, unless ``keep_opaque``: proofs keep a clip as it is)."""
    def is_special(node):
        return isinstance(node, SpecialFunction) and not (keep_opaque and node._declaration["opaque"])

    previous = None
    while previous != expression:
        previous = expression
        expression = expression.replace(is_special, lambda node: node.meaning())
    return expression


def mpmath_namespace() -> dict:
    """Names to give ``lambdify(..., "mpmath")``: each special function's mpmath route."""
    namespace = {}
    for name, cls in SPECIAL_FUNCTIONS.items():
        route = cls._declaration["mpmath"]
        namespace[name] = route if route is not None else functools.partial(_by_sympy, cls)
    return namespace


def _by_sympy(cls, *arguments):
    """A special function without an mpmath route, at mpmath numbers: through SymPy."""
    digits = mpmath.mp.dps
    value = sp.N(cls(*(sp.Float(argument, digits) for argument in arguments)).doit(), digits)
    return mpmath.mpmathify(value._to_mpmath(mpmath.mp.prec))
