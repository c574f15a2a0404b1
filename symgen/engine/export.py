"""A closed form as source code for an array library (``symgen export``).

The source is the function ``symgen build`` generates for that library (NumPy, torch or
JAX: symgen/formulas/, symgen/torch/, symgen/jax/), with the imports it needs: the
derivation's implemented expression (its stable rewrite where it has one) after common-
subexpression elimination and constant folding, its argument validation, and calls to
the stable primitives of symgen/numerics/stable.py, which serve every library.
"""
from __future__ import annotations

from .printer import module_source

BACKENDS = ("numpy", "torch", "jax")


def export(found, backend: str) -> str:
    """Source of a module defining ``found.name`` for ``backend`` (numpy, torch or jax)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    source = module_source(found.topic, [found], reuse=False, backend=backend)
    header = (f"# {found.title}: `symgen export {found.name} --backend {backend}`; derived and\n"
              f"# verified in symgen (`symgen show {found.name}`). Needs symgen installed.\n")
    return header + source.split("\n", 3)[3]
