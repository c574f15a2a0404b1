"""Derived expressions and proofs, kept on disk by content.

Solving an ODE, integrating, proving a step: SymPy takes seconds where a lookup takes
microseconds. A derivation's results are stored under a key made of everything they
depend on: the text of the derivation's module, the name of the derivation, the SymPy
and mpmath versions, and the engine's own source. Change any of them and the key
changes, so a stale entry is never read; nothing needs invalidating by hand.

The directory is ``$SYMGEN_CACHE_DIR`` if set (``off`` turns the cache off), else
``$XDG_CACHE_HOME/symgen``, else ``~/.cache/symgen``. Entries are written atomically
(a temporary file renamed into place), so processes running side by side (``symgen
verify --jobs``, pytest's workers) can share the directory. A directory that cannot be
written, or an entry that cannot be read, only costs the work again.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import tempfile
from pathlib import Path

ENVIRONMENT_VARIABLE = "SYMGEN_CACHE_DIR"
_disabled = 0


def directory() -> Path | None:
    """Where entries live, or None when the cache is off."""
    setting = os.environ.get(ENVIRONMENT_VARIABLE)
    if _disabled or setting == "off":
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symgen"


@contextlib.contextmanager
def disabled():
    """Within this block nothing is read from or written to the cache (for a proof from
    scratch)."""
    global _disabled
    _disabled += 1
    try:
        yield
    finally:
        _disabled -= 1


@functools.lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """A hash of the engine's source: a change to how steps are proved or evaluated
    makes every entry unreachable."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def key(derivation) -> str | None:
    """The content key of a derivation's results; None for one defined outside a file
    (it has no source to hash, so it is never cached)."""
    source = getattr(derivation, "source", None)
    if source is None or not Path(source).is_file():
        return None
    import mpmath
    import sympy

    digest = hashlib.sha256()
    for part in (engine_fingerprint(), sympy.__version__, mpmath.__version__, _file_digest(str(source)),
                 derivation.name):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def _path(entry_key: str, name: str) -> Path | None:
    root = directory()
    return None if root is None else root / f"{name}-{entry_key}.pickle"


def load(entry_key: str | None, name: str) -> dict | None:
    """The stored entry, or None (no cache, no entry, or an unreadable one)."""
    path = _path(entry_key, name) if entry_key else None
    if path is None or not path.is_file():
        return None
    from sympy.core.parameters import evaluate

    try:
        # Unpickling rebuilds each expression through its constructor; with evaluation on,
        # some constructors rewrite what they are given (Abs of a symbolic determinant
        # becomes sqrt(conjugate(D) D)), so the stored tree is rebuilt as it was, unevaluated.
        with path.open("rb") as stream, evaluate(False):
            return pickle.load(stream)
    except Exception:   # a truncated or foreign file is a miss, not an error
        return None


#: Entries kept per derivation name: older ones (from sources since edited) are removed.
KEEP_PER_NAME = 4


def _prune(root: Path, name: str) -> None:
    entries = sorted(root.glob(f"{name}-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[KEEP_PER_NAME:]:
        with contextlib.suppress(OSError):
            stale.unlink()


def store(entry_key: str | None, name: str, entry: dict) -> None:
    """Write an entry atomically; do nothing if it cannot be written."""
    path = _path(entry_key, name) if entry_key else None
    if path is None:
        return
    temporary = None
    try:
        payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
        _prune(path.parent, name)
    except Exception:   # read-only home, an expression pickle cannot take: work again next time
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
