"""Modules loaded on first use, so importing a derivation module stays cheap.

A derivation module's checks use SciPy (``stats.norm``, ``integrate.quad``), but only
when they run; importing ``scipy.stats`` costs more than a second, which every command
that merely lists, shows or exports a derivation would pay. ``stats =
lazy_module("scipy.stats")`` at the top of the module reads like an import and loads
the module when an attribute is first used (the standard library's
``importlib.util.LazyLoader``).
"""
from __future__ import annotations

import importlib.util
import sys


def lazy_module(name: str):
    """The module ``name``, loaded when one of its attributes is first used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
