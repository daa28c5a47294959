"""The specialisation index: a compiled kernel found by *what* it is, not by the tools that built it.

A compile-cache key (:func:`~lowbit.compiler.cache.cache_key`) covers the
LLVM and ptxas versions, which a GPU machine does not share (it has another
llvmlite and no lark).  So every compilation also records, under its
**specialisation id** -- sha256 of the canonical ``.lbir`` text (constexprs,
facts and num_warps included), the options, the target and lowbit's own
source hash, all computable without a compiler -- the key it was stored
under::

    <cache root>/specs/<id[:2]>/<id>.json   {"key": ..., "kernel": ..., "arch": ..., "built_with": {...}}

A machine that cannot compile (:func:`compiler_status`) looks the id up and
loads the entry by the stored key; a machine that can compiles as usual (its
full key decides, so an edited compiler never serves a stale kernel).  Writes
are atomic (temporary file + ``os.replace``), so concurrent processes see a
whole record or none.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from lowbit.compiler.cache import source_hash, warn_unusable

__all__ = ["LLVMLITE_SERIES", "SpecIndex", "compiler_status", "spec_id"]

#: The llvmlite series the project pins (pyproject.toml: ``llvmlite==0.50.*``); PTX depends on it.
LLVMLITE_SERIES = "0.50."


def spec_id(program_text: str, options: Mapping[str, object], arch: str) -> str:
    """The toolchain-independent identity of one compilation (hex sha256)."""
    record = {
        "program": program_text,
        "options": {k: repr(options[k]) for k in sorted(options)},
        "arch": arch,
        "lowbit": source_hash(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def compiler_status() -> tuple[bool, str]:
    """(whether this process can compile, why not): lark and the pinned llvmlite series must be present."""
    for name in ("lark", "llvmlite"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return False, f"{name} is not installed"
    try:
        from importlib.metadata import version

        v = version("llvmlite")
    except Exception as exc:  # noqa: BLE001 - missing or broken metadata is "cannot compile", not a crash
        return False, f"llvmlite's version is unreadable ({type(exc).__name__})"
    if not v.startswith(LLVMLITE_SERIES):
        return False, f"llvmlite {v} is not the pinned {LLVMLITE_SERIES}* series"
    return True, ""


class SpecIndex:
    """``specs/`` under a compile-cache root: specialisation id -> the key its entry was stored under."""

    def __init__(self, cache_root: str | os.PathLike) -> None:
        self.root = Path(cache_root) / "specs"

    def _path(self, sid: str) -> Path:
        if len(sid) != 64 or not all(c in "0123456789abcdef" for c in sid):
            raise ValueError(f"specialisation ids are sha256 hex digests, got {sid!r}")
        return self.root / sid[:2] / f"{sid}.json"

    def record(self, sid: str, key: str, info: Mapping[str, object]) -> bool:
        """Record that ``sid`` is stored under ``key`` (the record names its own ``spec`` id); False when the
        directory is unusable (one :class:`~lowbit.errors.CacheWarning`, never an exception)."""
        path = self._path(sid)
        body = json.dumps({"key": key, "spec": sid, **info}, sort_keys=True)
        try:
            if path.read_text() == body:
                return True
        except (OSError, UnicodeDecodeError):
            pass
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sid[:8]}-", suffix=".tmp")
        except OSError as exc:
            warn_unusable(self.root.parent, exc)
            return False
        try:
            with os.fdopen(fd, "w") as f:
                f.write(body)
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            warn_unusable(self.root.parent, exc)
            return False
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def lookup(self, sid: str) -> dict[str, object] | None:
        """The record for ``sid`` (with its ``key``), or None when absent, unreadable or another id's record."""
        try:
            rec = json.loads(self._path(sid).read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str) or rec.get("spec", sid) != sid:
            return None
        return rec
