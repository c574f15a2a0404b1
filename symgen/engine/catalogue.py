"""Finding derivations: the built-in catalogue and a user's own files.

Like pytest collecting test files, the engine imports ``*.py`` modules from a directory
(or a single file) and collects the ``Derivation`` objects defined at their top level.
It never names a topic, so a user's derivation works exactly like a built-in one:
``symgen verify --path my_derivation.py``.

Looking one derivation up by name imports only its own module when the built index
(symgen/records.py) is current: it says which module defines which name. Otherwise, and
for names it does not know, every module is imported.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path

from symgen import records

from .derivation import Derivation


def builtin_directory() -> Path:
    """The built-in derivations (``symgen/derivations`` installed, ``derivations/`` in a checkout)."""
    directory = records.derivations_directory()
    if directory is None:
        raise FileNotFoundError("symgen: the built-in derivations directory is missing from this installation")
    return directory


def _module_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))


@functools.lru_cache(maxsize=None)
def load_module(path: Path):
    """Import a derivation module from its file (once per path)."""
    name = f"symgen_derivations_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    for value in _derivations_of(module):
        value.module = module
        value.source = path
    return module


def _derivations_of(module) -> list[Derivation]:
    # Modules are skipped before the isinstance test: testing a module held by
    # lazy_module would read its __class__ and so load it (SciPy, at import).
    return [value for value in vars(module).values()
            if not isinstance(value, types.ModuleType) and isinstance(value, Derivation)]


def _derivations_in(file: Path) -> dict[str, Derivation]:
    module = load_module(file)
    return {value.name: value for value in _derivations_of(module) if getattr(value, "source", None) == file}


def collect(paths=None) -> dict[str, Derivation]:
    """All derivations under ``paths`` (default: the built-in catalogue), by name."""
    found: dict[str, Derivation] = {}
    for root in (paths or [builtin_directory()]):
        for file in _module_files(Path(root).resolve()):
            for name, value in _derivations_in(file).items():
                if name in found and found[name] is not value:
                    raise ValueError(f"two derivations are named {name!r}: {found[name].source} and {file}")
                found[name] = value
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


def _indexed_topic(name: str) -> str | None:
    summary = records.current_catalogue()
    if summary is None:
        return None
    return next((entry["topic"] for entry in summary["derivations"] if entry["name"] == name), None)


def names() -> list[str]:
    """The names of every known derivation (from the index when it is current)."""
    summary = records.current_catalogue()
    if summary is not None and not _extra_paths:
        return sorted(entry["name"] for entry in summary["derivations"])
    return sorted(catalogue())


def find(name: str) -> Derivation:
    """The derivation called ``name``, importing as little as possible; KeyError (with
    the names it may have meant) when there is none."""
    for path in _extra_paths:
        users = collect([path])
        if name in users:
            return users[name]
    topic = _indexed_topic(name)
    if topic is not None:
        found = _derivations_in((builtin_directory() / f"{topic}.py").resolve())
        if name in found:
            return found[name]
    known = catalogue()
    if name not in known:
        raise KeyError(records.unknown_name_message(name, known))
    return known[name]
