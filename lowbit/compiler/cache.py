"""The on-disk compile cache.

A compiled kernel is stored under a key that covers everything its bytes
depend on (:func:`cache_key`): the canonical ``.lbir`` text, the options and
the target the caller passes, a hash of lowbit's own source files (an edited
compiler never serves a stale kernel), and the versions of LLVM (llvmlite)
and ptxas.

Entries are single files ``<root>/<key[:2]>/<key>.lbc``::

    b"LBC2" | sha256(payload) (32 bytes) | payload

where the payload is a length-prefixed JSON manifest -- the entry's **full
key**, what it **holds** (the kernel's name and target) and the artifact
list -- followed by the artifact blobs.  Writes go to a temporary file in the
same directory and are ``os.replace``-d into place, so a reader sees a whole
entry or none.  An entry is served only when it verifies: checksum, the key
it records equal to the key asked for, and (when the caller says) what it
holds equal to what is expected; anything else -- truncated, corrupt, an
older format, or another key's entry copied into place -- is a miss, removed
and rebuilt.  :meth:`CompileCache.get_or_build` takes a per-key ``flock`` so
that processes racing on one key build it once; the others wait and read it.

A cache directory that cannot be used (unwritable, a file where the
directory should be, a parent that cannot be created) never fails a
compile: the first failure issues one :class:`~lowbit.errors.CacheWarning`
naming the directory and the reason, and that cache then compiles without
storing or reading anything.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import struct
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

from lowbit import config
from lowbit.errors import CacheWarning

MAGIC = b"LBC2"
#: cache roots already reported unusable in this process (one warning each)
_WARNED: set[str] = set()


def warn_unusable(root: Path, exc: BaseException) -> None:
    """Say once per process and directory that a cache cannot be used, and why."""
    if str(root) in _WARNED:
        return
    _WARNED.add(str(root))
    why = getattr(exc, "strerror", None) or str(exc)
    warnings.warn(f"the compile cache {root} cannot be used ({type(exc).__name__}: {why}); compiling without a "
                  "cache (set LOWBIT_CACHE_DIR to a writable directory)", CacheWarning, stacklevel=4)
_LOWBIT_ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=4)
def source_hash(root: Path = _LOWBIT_ROOT) -> str:
    """sha256 over lowbit's own source (``*.py`` and ``*.lark`` under ``root``), path-sorted."""
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".lark") and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def toolchain_versions() -> tuple[str, str]:
    """(llvmlite version with its LLVM version, ptxas version or "none")."""
    try:
        import llvmlite
        import llvmlite.binding as llvm

        llvm_v = f"llvmlite {llvmlite.__version__} / LLVM {'.'.join(map(str, llvm.llvm_version_info))}"
    except ImportError:
        llvm_v = "none"
    from lowbit.toolchain import tool_info

    return llvm_v, tool_info("ptxas").version or "none"


def cache_key(program_text: str, options: Mapping[str, object], arch: str, *, lowbit_source: str | None = None) -> str:
    """The key for one compilation (hex sha256)."""
    llvm_v, ptxas_v = toolchain_versions()
    record = {
        "program": program_text,
        "options": {k: repr(options[k]) for k in sorted(options)},
        "arch": arch,
        "lowbit": lowbit_source if lowbit_source is not None else source_hash(),
        "llvm": llvm_v,
        "ptxas": ptxas_v,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _encode(key: str, artifacts: Mapping[str, bytes], holds: Mapping[str, str] | None = None) -> bytes:
    names = sorted(artifacts)
    manifest = json.dumps({"key": key, "holds": dict(holds or {}),
                           "artifacts": [[name, len(artifacts[name])] for name in names]}).encode()  # fmt: skip
    payload = struct.pack("<I", len(manifest)) + manifest + b"".join(artifacts[n] for n in names)
    return MAGIC + hashlib.sha256(payload).digest() + payload


def _decode(data: bytes) -> tuple[str, dict[str, str], dict[str, bytes]] | None:
    """(recorded key, what it holds, artifacts) of an entry, or None when it is not a whole, valid entry."""
    if len(data) < 40 or data[:4] != MAGIC:
        return None
    payload = data[36:]
    if hashlib.sha256(payload).digest() != data[4:36]:
        return None
    try:
        (mlen,) = struct.unpack("<I", payload[:4])
        manifest = json.loads(payload[4 : 4 + mlen])
        key, holds = manifest["key"], manifest["holds"]
        out, pos = {}, 4 + mlen
        for name, size in manifest["artifacts"]:
            out[name] = payload[pos : pos + size]
            pos += size
    except (ValueError, struct.error, KeyError, TypeError):
        return None
    if not isinstance(key, str) or not isinstance(holds, dict):
        return None
    return (key, holds, out) if pos == len(payload) else None


class CompileCache:
    """A directory of compiled artifacts keyed by :func:`cache_key`."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else config.cache_dir() / "kernels"
        #: set when the directory proved unusable: the cache then neither reads nor writes
        self.disabled = False
        #: entries refused because they recorded another key or held something else (for tests and `info`)
        self.mismatches = 0

    def _path(self, key: str) -> Path:
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"cache keys are hex digests, got {key!r}")
        return self.root / key[:2] / f"{key}.lbc"

    def _unusable(self, exc: OSError) -> None:
        self.disabled = True
        warn_unusable(self.root, exc)

    def get(self, key: str, holds: Mapping[str, str] | None = None) -> dict[str, bytes] | None:
        """The artifacts stored under ``key``, or None.

        An entry is served only if it records exactly ``key`` and, when ``holds`` is given, holds what it
        says; a corrupt, foreign or mismatched entry is removed (a miss: the caller rebuilds it).
        """
        if self.disabled:
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # NotADirectoryError, PermissionError, IsADirectoryError, EIO...
            self._unusable(exc)
            return None
        got = _decode(data)
        ok = got is not None and got[0] == key and all(got[1].get(k) == v for k, v in (holds or {}).items())
        if not ok:
            if got is not None:
                self.mismatches += 1
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
            return None
        return got[2]  # type: ignore[index]

    def put(self, key: str, artifacts: Mapping[str, bytes], holds: Mapping[str, str] | None = None) -> bool:
        """Store ``artifacts`` under ``key`` (recording the key and ``holds``); False when the cache is unusable."""
        if self.disabled:
            return False
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        except OSError as exc:
            self._unusable(exc)
            return False
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_encode(key, artifacts, holds))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            self._unusable(exc)
            return False
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def get_or_build(self, key: str, build: Callable[[], Mapping[str, bytes]],
                     holds: Mapping[str, str] | None = None) -> dict[str, bytes]:  # fmt: skip
        """Return the entry for ``key``, building and storing it (once across processes) if absent."""
        found = self.get(key, holds)
        if found is not None:
            return found
        if self.disabled:
            return dict(build())
        lock_path = self._path(key).with_suffix(".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(lock_path, "a+b")  # noqa: SIM115 - closed below
        except OSError as exc:
            self._unusable(exc)
            return dict(build())
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                found = self.get(key, holds)  # another process may have built it while we waited
                if found is not None:
                    return found
                artifacts = dict(build())
                self.put(key, artifacts, holds)
                return artifacts
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
