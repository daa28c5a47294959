"""The on-disk compile cache.

A compiled kernel is stored under a key that covers everything its bytes
depend on (:func:`cache_key`): the canonical ``.lbir`` text, the options and
the target the caller passes, a hash of lowbit's own source files (an edited
compiler never serves a stale kernel), and the versions of LLVM (llvmlite)
and ptxas.

Entries are single files ``<root>/<key[:2]>/<key>.lbc``::

    b"LBC1" | sha256(payload) (32 bytes) | payload

where the payload is a length-prefixed JSON manifest followed by the artifact
blobs.  Writes go to a temporary file in the same directory and are
``os.replace``-d into place, so a reader sees a whole entry or none.  A
truncated or corrupt entry fails the checksum, is deleted and is rebuilt.
:meth:`CompileCache.get_or_build` takes a per-key ``flock`` so that processes
racing on one key build it once; the others wait and read it.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from lowbit import config

MAGIC = b"LBC1"
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


def _encode(artifacts: Mapping[str, bytes]) -> bytes:
    names = sorted(artifacts)
    manifest = json.dumps([[name, len(artifacts[name])] for name in names]).encode()
    payload = struct.pack("<I", len(manifest)) + manifest + b"".join(artifacts[n] for n in names)
    return MAGIC + hashlib.sha256(payload).digest() + payload


def _decode(data: bytes) -> dict[str, bytes] | None:
    if len(data) < 40 or data[:4] != MAGIC:
        return None
    payload = data[36:]
    if hashlib.sha256(payload).digest() != data[4:36]:
        return None
    try:
        (mlen,) = struct.unpack("<I", payload[:4])
        manifest = json.loads(payload[4 : 4 + mlen])
        out, pos = {}, 4 + mlen
        for name, size in manifest:
            out[name] = payload[pos : pos + size]
            pos += size
    except (ValueError, struct.error):
        return None
    return out if pos == len(payload) else None


class CompileCache:
    """A directory of compiled artifacts keyed by :func:`cache_key`."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else config.cache_dir() / "kernels"

    def _path(self, key: str) -> Path:
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"cache keys are hex digests, got {key!r}")
        return self.root / key[:2] / f"{key}.lbc"

    def get(self, key: str) -> dict[str, bytes] | None:
        """The artifacts stored under ``key``, or None (a corrupt entry is removed)."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        out = _decode(data)
        if out is None:
            path.unlink(missing_ok=True)
        return out

    def put(self, key: str, artifacts: Mapping[str, bytes]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_encode(artifacts))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_or_build(self, key: str, build: Callable[[], Mapping[str, bytes]]) -> dict[str, bytes]:
        """Return the entry for ``key``, building and storing it (once across processes) if absent."""
        found = self.get(key)
        if found is not None:
            return found
        lock_path = self._path(key).with_suffix(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                found = self.get(key)  # another process may have built it while we waited
                if found is not None:
                    return found
                artifacts = dict(build())
                self.put(key, artifacts)
                return artifacts
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
