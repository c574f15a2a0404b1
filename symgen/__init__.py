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

_ENGINE_FUNCTIONS = ("check", "derivation", "derivations", "kl", "verify")

# Written by hand, for arrays of any size, each tested against the proved small case of its
# derivation (tests/test_general_layers.py, tests/test_frechet_features.py) and against 50-digit
# references: name -> the module that defines it (NumPy only).
_ARRAY_FUNCTIONS = {
    "autoregressive_categorical_logpmf": "symgen.numerics.sequences",
    "affine_coupling_logpdf": "symgen.numerics.flow_layers",
    "elementwise_affine_logpdf": "symgen.numerics.flow_layers",
    "linear_flow_logpdf": "symgen.numerics.flow_layers",
    "planar_flow_logdet": "symgen.numerics.flow_layers",
    "frechet_distance_from_features": "symgen.numerics.frechet_features",
    "diffusion_schedule_table": "symgen.numerics.schedule_table",
}

# How many threads the elementwise formulas use on large arrays ($SYMGEN_NUM_THREADS, else the
# cores available): symgen.threads(), symgen.set_threads(n).
_SETTINGS = {"threads": "symgen.numerics.blocked", "set_threads": "symgen.numerics.blocked"}

__all__ = [*_formulas.__all__, *_ARRAY_FUNCTIONS, *_ENGINE_FUNCTIONS, *_SETTINGS]


def __getattr__(name):
    # A formula loads its own topic module only (symgen.formulas is lazy too); an engine
    # function loads the engine.
    if name in _formulas.TOPIC:
        value = getattr(_formulas, name)
        globals()[name] = value
        return value
    if name in _ARRAY_FUNCTIONS or name in _SETTINGS:
        import importlib

        value = getattr(importlib.import_module({**_ARRAY_FUNCTIONS, **_SETTINGS}[name]), name)
        globals()[name] = value
        return value
    if name == "kl":
        from symgen.divergence import kl

        return kl
    if name in _ENGINE_FUNCTIONS:
        from symgen.engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'symgen' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
