"""symgen: derived, verified, numerically stable closed forms for generative models.

    >>> from symgen import kl_normal
    >>> float(kl_normal(0.0, 1.0, 1.0, 2.0))
    0.4431471805599453

The formulas (``symgen.formulas``) need NumPy only. The engine (derivations, proofs,
empirical checks, code generation) loads SymPy, SciPy and hypothesis, so it is
imported only when one of its functions is first used.
"""
from symgen.formulas import *  # noqa: F401,F403
from symgen.formulas import __all__ as _formula_names

__version__ = "0.1.0"

_ENGINE_FUNCTIONS = ("check", "derivation", "derivations", "verify")

__all__ = [*_formula_names, *_ENGINE_FUNCTIONS]


def __getattr__(name):
    if name in _ENGINE_FUNCTIONS:
        from symgen.engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'symgen' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ENGINE_FUNCTIONS))
