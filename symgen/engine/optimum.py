"""An optimum kept unevaluated: argmax over a variable, solved by SymPy when asked."""
from __future__ import annotations

import sympy as sp


class ArgMax(sp.Expr):
    """argmax over ``variable`` of ``objective``, kept unevaluated; ``doit`` solves the
    stationarity condition with SymPy and requires a unique stationary point with a
    negative second derivative (a strict maximum of a concave objective)."""

    def __new__(cls, objective, variable):
        return sp.Expr.__new__(cls, sp.sympify(objective), variable)

    objective = property(lambda self: self.args[0])
    variable = property(lambda self: self.args[1])

    @property
    def free_symbols(self):
        return self.objective.free_symbols - {self.variable}

    def doit(self, **hints):
        # Numbers (from a numeric spot check) are solved for as symbols and put back after,
        # so the solution keeps their full precision instead of SymPy's float solver's.
        numbers = {value: sp.Dummy(positive=bool(value > 0), real=True)
                   for value in self.objective.atoms(sp.Float)}
        objective = self.objective.doit(**hints).xreplace(numbers)
        stationary = sp.solve(sp.diff(objective, self.variable), self.variable)
        if len(stationary) != 1:
            raise ValueError(f"expected one stationary point of {objective}, found {stationary}")
        point = sp.simplify(stationary[0])
        curvature = sp.simplify(sp.diff(objective, self.variable, 2).subs(self.variable, point))
        if curvature.is_negative is not True:
            raise ValueError(f"the stationary point {point} is not shown to be a maximum ({curvature})")
        return point.xreplace({symbol: value for value, symbol in numbers.items()})

    def _latex(self, printer):
        return (rf"\operatorname*{{arg\,max}}_{{{printer._print(self.variable)}}}"
                rf"\left[{printer._print(self.objective)}\right]")

    def _sympystr(self, printer):
        return f"argmax_{printer._print(self.variable)}[{printer._print(self.objective)}]"
