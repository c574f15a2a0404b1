"""The built catalogue: a plain record of every derivation, read without the engine.

``symgen build`` writes ``symgen/index/``: ``catalogue.json`` (every derivation's name,
title, kind, parameters, outputs and sections, and the digest of each derivation
module it was built from) and one ``<name>.json`` per derivation (its steps as text and
LaTeX, with reasons and how each was proved, its checks, slips and references). The
command line lists and shows derivations from these files with the standard library
alone, in the time Python takes to start; the engine, SymPy and the derivation modules
load only for work that needs them.

A record is used only while it matches the sources: if a derivation module has
changed since the build (a checkout being edited), :func:`current_catalogue` says so
and the caller derives afresh.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

INDEX = Path(__file__).resolve().parent / "index"
CATALOGUE_FILE = "catalogue.json"
#: Bumped when the record format changes, so an index in an older format counts as stale.
FORMAT = 2


def derivations_directory() -> Path | None:
    """The built-in derivations: ``symgen/derivations`` once installed (the wheel maps the
    repository's ``derivations/`` there), or ``derivations/`` beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "derivations", package.parent / "derivations"):
        if candidate.is_dir():
            return candidate
    return None


def source_digest(path: Path) -> str:
    """sha256 of a file's bytes (computed again only when the file changes)."""
    status = path.stat()
    return _digest(str(path), status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=None)
def _digest(path: str, modified: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def topic_digests(directory: Path | None = None) -> dict[str, str]:
    """sha256 of every derivation module, by topic (the module's file name)."""
    directory = directory or derivations_directory()
    if directory is None:
        return {}
    return {path.stem: source_digest(path) for path in sorted(directory.glob("*.py"))
            if not path.name.startswith("_")}


def load_catalogue() -> dict | None:
    """The catalogue summary as built, or None when there is none (or in another format)."""
    try:
        status = (INDEX / CATALOGUE_FILE).stat()
    except OSError:
        return None
    return _load_catalogue(status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=4)
def _load_catalogue(modified: int, size: int) -> dict | None:
    try:
        catalogue = json.loads((INDEX / CATALOGUE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return catalogue if catalogue.get("format") == FORMAT else None


def current_catalogue() -> dict | None:
    """The catalogue summary if it matches the derivation modules on disk, else None."""
    catalogue = load_catalogue()
    if catalogue is None or catalogue.get("topics") != topic_digests():
        return None
    return catalogue


def load_record(name: str) -> dict | None:
    """The record of one derivation as built, or None."""
    try:
        return json.loads((INDEX / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def close_matches(name: str, known) -> list[str]:
    """Names a mistyped ``name`` may have meant (for "did you mean")."""
    import difflib

    known = list(known)
    matches = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    # A prefix or a part of the name ("kl", "posterior") also counts.
    matches += [other for other in known if other not in matches and len(name) >= 2 and name in other][:3]
    return matches[:4]


def unknown_name_message(name: str, known) -> str:
    """The error for a derivation name that is not in the catalogue."""
    matches = close_matches(name, known)
    hint = f"; did you mean {', '.join(matches)}?" if matches else "; `symgen list` shows the catalogue"
    return f"no derivation named {name!r}{hint}"
