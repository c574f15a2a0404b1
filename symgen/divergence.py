"""``symgen.kl(P, Q)``: KL(P || Q) between two of torch.distributions' families.

For two family names this reads the table that ``symgen build`` generates
(symgen/kl_pairs/) and imports the pair's NumPy function: no SymPy, nothing derived. The
derivation (``show``, ``derivation``, ``verify``) and a user's own densities
(``symgen.engine.kl.Density``) load the engine, which derives, proves and generates the
same way when asked (symgen/engine/kl.py).
"""
from __future__ import annotations

import importlib


class KL:
    """KL(P || Q) for two families named as torch.distributions names them (Normal, Laplace,
    Gumbel, Cauchy, LogNormal, HalfNormal, Exponential, Gamma, Beta, Uniform, Pareto, Weibull).

    Call it with P's parameters then Q's, in torch's order (``symgen.kl("Gamma", "Laplace")(
    concentration_p, rate_p, loc_q, scale_q)``) or by keyword; arrays broadcast; bad input raises
    ``ValueError`` naming the argument. ``status``: "closed form", "infinite" (Q's support does
    not cover P's, or a moment that log q needs diverges: ``reason`` says which) or "no closed
    form" (``reason`` names the expectation without an identity here; calling evaluates the
    integral by scipy quadrature, ``kind == "quadrature"``). A closed form is +oo at the
    parameters where it diverges. ``show()`` prints the derivation, every step with its proof;
    ``verify()`` proves it and runs its checks (50-digit mpmath, Monte Carlo, quadrature)."""

    def __init__(self, p: str, q: str, status: str, reason: str, parameters: tuple, module: str | None, name: str):
        self.p, self.q, self.status, self.reason = p, q, status, reason
        self.parameters, self.name, self._module = list(parameters), name, module
        self.kind = {"closed form": "closed form", "no closed form": "quadrature", "infinite": "infinite"}[status]
        self._function = None

    def __repr__(self):
        detail = f": {self.reason}" if self.reason else ""
        return f"<KL {self.p} || {self.q}, {self.status}{detail}>"

    @property
    def function(self):
        if self._function is None:
            if self._module is not None:
                module = importlib.import_module(f"symgen.kl_pairs.{self._module}")
                self._function = getattr(module, self.name)
            else:
                self._function = self._engine().function
        return self._function

    def __call__(self, *arguments, **keywords):
        return self.function(*arguments, **keywords)

    def _engine(self):
        from symgen.engine.kl import kl as derive

        return derive(self.p, self.q)

    @property
    def derivation(self):
        return self._engine().derivation

    def show(self) -> str:
        return self._engine().show()

    def verify(self, examples: int = 10):
        return self._engine().verify(examples=examples)


def kl(p, q):
    """KL(P || Q): two family names (see :class:`KL`), or two ``symgen.engine.kl.Density``
    objects, a user's own densities, derived, checked and generated when asked."""
    if not (isinstance(p, str) and isinstance(q, str)):
        from symgen.engine.kl import kl as derive

        return derive(p, q)
    from symgen.kl_pairs import PAIRS

    names = {name.lower(): name for name, _ in PAIRS}
    try:
        p_name, q_name = names[p.lower()], names[q.lower()]
    except KeyError:
        unknown = p if p.lower() not in names else q
        raise ValueError(f"unknown family {unknown!r}; the families: {', '.join(dict.fromkeys(names.values()))}") \
            from None
    return _answer(p_name, q_name)


_ANSWERS: dict = {}


def _answer(p_name: str, q_name: str) -> KL:
    from symgen.kl_pairs import PAIRS

    key = (p_name, q_name)
    if key not in _ANSWERS:
        _ANSWERS[key] = KL(p_name, q_name, *PAIRS[key])
    return _ANSWERS[key]
