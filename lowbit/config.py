"""Every environment variable lowbit reads, read here and nowhere else.

| variable | meaning |
|---|---|
| ``LOWBIT_PTXAS`` / ``LOWBIT_NVDISASM`` | explicit path of the tool (wins over every search) |
| ``CUDA_HOME`` / ``CUDA_PATH`` | a CUDA toolkit whose ``bin/`` is searched last |
| ``LOWBIT_CACHE_DIR`` | the compile cache (default ``~/.cache/lowbit``) |
"""

from __future__ import annotations

import os
from pathlib import Path


def tool_override(name: str) -> str | None:
    """The path given by ``LOWBIT_<NAME>``, if set and non-empty."""
    value = os.environ.get(f"LOWBIT_{name.upper()}", "").strip()
    return value or None


def cuda_homes() -> list[Path]:
    """CUDA toolkit roots named by the environment, in order."""
    roots = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        value = os.environ.get(var, "").strip()
        if value:
            roots.append(Path(value))
    return roots


def search_path() -> str:
    return os.environ.get("PATH", "")


def cache_dir() -> Path:
    value = os.environ.get("LOWBIT_CACHE_DIR", "").strip()
    return Path(value) if value else Path.home() / ".cache" / "lowbit"
