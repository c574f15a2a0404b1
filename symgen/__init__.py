"""symgen: derived, verified, numerically stable closed forms for generative models.

    >>> from symgen import kl_normal
    >>> float(kl_normal(0.0, 1.0, 1.0, 2.0))
    0.4431471805599453

The formulas (``symgen.formulas``) need NumPy only. The engine (derivations, proofs,
empirical checks, code generation) loads SymPy, SciPy and hypothesis, so it is
imported only when one of its functions is first used.
"""
from symgen import formulas as _formulas

__version__ = "0.1.0"

_ENGINE_FUNCTIONS = ("check", "derivation", "derivations", "verify")

__all__ = [*_formulas.__all__, *_ENGINE_FUNCTIONS]


def __getattr__(name):
    # A formula loads its own topic module only (symgen.formulas is lazy too); an engine
    # function loads the engine.
    if name in _formulas.TOPIC:
        value = getattr(_formulas, name)
        globals()[name] = value
        return value
    if name in _ENGINE_FUNCTIONS:
        from symgen.engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'symgen' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
