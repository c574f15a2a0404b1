"""Finding derivations: the built-in catalogue and a user's own files.

Like pytest collecting test files, the engine imports every ``*.py`` module in a
directory (or a single file) and collects the ``Derivation`` objects defined at its
top level. It never names a topic, so a user's derivation works exactly like a
built-in one: ``symgen verify --path my_derivation.py``.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

from .derivation import Derivation


def builtin_directory() -> Path:
    """The built-in derivations: ``symgen/derivations`` once installed (the wheel maps the
    repository's ``derivations/`` there), or ``derivations/`` beside the package in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "derivations", package.parent / "derivations"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("symgen: the built-in derivations directory is missing from this installation")


def _module_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))


@functools.lru_cache(maxsize=None)
def load_module(path: Path):
    """Import a derivation module from its file (cached per path)."""
    name = f"symgen_derivations_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    for value in vars(module).values():
        if isinstance(value, Derivation):
            value.module = module
            value.source = path
    return module


def collect(paths=None) -> dict[str, Derivation]:
    """All derivations under ``paths`` (default: the built-in catalogue), by name."""
    found: dict[str, Derivation] = {}
    for root in (paths or [builtin_directory()]):
        for file in _module_files(Path(root).resolve()):
            module = load_module(file)
            for value in vars(module).values():
                if isinstance(value, Derivation) and getattr(value, "source", None) == file:
                    if value.name in found and found[value.name] is not value:
                        raise ValueError(f"two derivations are named {value.name!r}: "
                                         f"{found[value.name].source} and {file}")
                    found[value.name] = value
    return found


_extra_paths: list[Path] = []


def add_path(path) -> None:
    """Make the derivations in ``path`` (a file or directory) known to the engine."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"symgen: no such derivation file or directory: {path}")
    if path not in _extra_paths:
        _extra_paths.append(path)


def catalogue() -> dict[str, Derivation]:
    """The built-in derivations plus any added with :func:`add_path`."""
    return collect([builtin_directory(), *_extra_paths])


def topic_of(derivation: Derivation) -> str:
    return Path(derivation.source).stem
