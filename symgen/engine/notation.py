"""Notation: how a derivation's symbols are written for a reader.

The code names its arguments for programmers (``loc_p``, ``scale_q``, ``alpha_bar_prev``); a
lecturer writes mu_p, sigma_q and alpha-bar_{t-1}, as the papers do. Each derivation's
notation is declared once, here by convention and in ``Derivation(notation=...)`` where it
differs, and every view uses it: ``symgen show --format latex`` and ``markdown``, the docs
pages, the notebook and the docstrings (the generated code keeps the code names).

The notation maps

* a symbol (or a parameter's name) to its LaTeX (``loc_p`` -> ``\\mu_{p}``);
* an output's name to the LaTeX of the quantity (``kl_normal`` -> ``\\mathrm{KL}(p \\,\\|\\, q)``);
* an expression to a name (the textbook KL -> ``\\mathrm{KL}``), so that a stable branch's
  condition reads as it was derived, "KL < 0.01", rather than as the formula it tests;
* any other string to its definition, listed with the notation (``f(u)`` -> ``\\cos^{2}(...)``).

The printer also writes sums as a person does, a positive term first (``x - \\mu`` rather than
SymPy's ``- \\mu + x``), and the bounds of conditions as decimals (0.01 rather than 1/100).
"""
from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

# Whole names with a conventional symbol (Ho et al. 2020 for the diffusion quantities,
# Kingma & Welling 2014 for the VAE's, Goodfellow et al. 2014 for the GAN's).
NAMES = {
    "logvar": r"\log \sigma^{2}",
    "alpha_bar": r"\bar{\alpha}",
    "alpha_bar_t": r"\bar{\alpha}_{t}",
    "alpha_bar_prev": r"\bar{\alpha}_{t-1}",
    "alpha_bar_first": r"\bar{\alpha}_{1}",
    "alpha_bar_last": r"\bar{\alpha}_{T}",
    "xt": r"x_{t}",
    "x_prev": r"x_{t-1}",
    "eps": r"\varepsilon",
    "noise": r"\varepsilon",
    "beta_start": r"\beta_{1}",
    "beta_end": r"\beta_{T}",
    "beta_min": r"\beta_{\min}",
    "beta_max": r"\beta_{\max}",
    "sigma_data": r"\sigma_{\mathrm{data}}",
    "p_data": r"p_{\mathrm{data}}",
    "d_real": r"D(x)",
    "d_fake": r"D(G(z))",
    "nll_nats": r"\mathrm{NLL}",
    "snr": r"\mathrm{SNR}",
    "time": r"t",
    "dims": r"D",
    "tokens": r"N",
    "bias": r"b",
}
# The first part of a name (before its subscripts): the symbol it stands for.
BASES = {"loc": r"\mu", "scale": r"\sigma", "cov": r"\Sigma", "logit": r"\ell"}
# Outputs of several-output derivations with a conventional symbol; others print upright.
OUTPUTS = {"alpha_bar": r"\bar{\alpha}", "beta": r"\beta", "snr": r"\mathrm{SNR}", "x0": r"\hat{x}_{0}",
           "eps": r"\hat{\varepsilon}", "v": r"\hat{v}", "c_skip": r"c_{\mathrm{skip}}", "c_out": r"c_{\mathrm{out}}",
           "c_in": r"c_{\mathrm{in}}", "c_noise": r"c_{\mathrm{noise}}"}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
         "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
         "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def _part(word: str) -> str:
    """One part of a name: a Greek letter, a letter, digits, or an upright word."""
    if word in GREEK:
        return "\\" + word
    if len(word) == 1 or word.isdigit():
        return word
    return rf"\mathrm{{{word}}}"


def conventional(name: str) -> str:
    """The LaTeX a paper would use for a parameter called ``name``: ``loc_p`` -> ``\\mu_{p}``,
    ``scale1`` -> ``\\sigma_{1}``, ``w12`` -> ``w_{12}``, ``dims`` -> ``\\mathrm{dims}``."""
    if name in NAMES:
        return NAMES[name]
    base, *subscripts = name.split("_")
    digits = re.fullmatch(r"([A-Za-z]+?)(\d+)", base)
    if digits:
        base, subscripts = digits.group(1), [digits.group(2)] + subscripts
    symbol = BASES.get(base) or _part(base)
    if not subscripts:
        return symbol
    subscript = ",".join(_part(word) for word in subscripts)
    # A base with its own superscript (sigma^2) takes the subscript inside braces first.
    return f"{{{symbol}}}_{{{subscript}}}" if "^" in symbol else f"{symbol}_{{{subscript}}}"


def _decimal(number: sp.Rational) -> str | None:
    """A rational with a terminating decimal expansion, as that decimal (1/100 -> 0.01)."""
    denominator = int(number.q)
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return None
    return format(sp.Float(number, 30), "f").rstrip("0").rstrip(".")


class ConventionalLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with a derivation's notation, sums led by a positive term, and
    conditions' bounds as decimals."""

    def __init__(self, notation: "Notation"):
        super().__init__()
        self._symbols = notation.symbols
        self._names = notation.expressions

    def _print_Symbol(self, expr, style="plain"):
        # Bound variables (the x of an expectation) follow the conventions too.
        return self._symbols.get(expr) or conventional(expr.name)

    def _print_Add(self, expr, order=None):
        terms = list(self._as_ordered_terms(expr, order=order))
        if terms[0].could_extract_minus_sign():
            positive = next((term for term in terms if not term.could_extract_minus_sign()), None)
            if positive is not None:
                terms.remove(positive)
                terms.insert(0, positive)
        tex = ""
        for index, term in enumerate(terms):
            if index:
                if term.could_extract_minus_sign():
                    tex += " - "
                    term = -term
                else:
                    tex += " + "
            term_tex = self._print(term)
            if self._needs_add_brackets(term):
                term_tex = rf"\left({term_tex}\right)"
            tex += term_tex
        return tex

    def _print_Pow(self, expr):
        # SymPy prints a power of a kept-whole base (UnevaluatedExpr) without brackets:
        # e^{-x}^{-1/N}, a double superscript LaTeX rejects.
        if isinstance(expr.base, sp.UnevaluatedExpr):
            return rf"\left({self._print(expr.base)}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_UnevaluatedExpr(self, expr):
        name = self._names.get(expr.args[0])
        return name if name is not None else self._print(expr.args[0])

    def _print_Relational(self, expr):
        operators = {"==": "=", ">": ">", "<": "<", ">=": r"\geq", "<=": r"\leq", "!=": r"\neq"}
        sides = []
        for side in (expr.lhs, expr.rhs):
            decimal = _decimal(side) if isinstance(side, sp.Rational) and not side.is_Integer else None
            sides.append(decimal if decimal is not None else self._print(side))
        return f"{sides[0]} {operators[expr.rel_op]} {sides[1]}"


class Notation:
    """A derivation's notation: its symbols, its outputs and its named expressions, each as LaTeX."""

    def __init__(self, derivation):
        declared = derivation.notation
        self.symbols: dict[sp.Symbol, str] = {}
        self.outputs: dict[str, str] = {}
        self.expressions: dict[sp.Basic, str] = {}
        params = {param.name: param.symbol for param in derivation.params}
        for param in derivation.params:
            self.symbols[param.symbol] = conventional(param.name)
        # What the derivation's formulas use and the notation defines (f(u) = cos^2(...)).
        self.definitions: dict[str, str] = {}
        for key, latex in declared.items():
            if isinstance(key, str) and key in derivation.outputs:
                self.outputs[key] = latex
            elif isinstance(key, str) and key in params:
                self.symbols[params[key]] = latex
            elif isinstance(key, str):
                self.definitions[key] = latex
            elif isinstance(key, sp.Symbol):
                self.symbols[key] = latex
            else:
                self.expressions[sp.sympify(key)] = latex
        for name in derivation.outputs:
            if name not in self.outputs:
                self.outputs[name] = OUTPUTS.get(name) or rf"\mathrm{{{name}}}".replace("_", r"\_")
        self._printer = ConventionalLatexPrinter(self)

    def symbol(self, symbol: sp.Symbol) -> str:
        return self.symbols.get(symbol) or conventional(symbol.name)

    def latex(self, expression) -> str:
        """``expression`` in LaTeX, in this notation."""
        return self._printer.doprint(expression)

