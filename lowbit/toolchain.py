"""Finding NVIDIA's command-line tools (ptxas, nvdisasm) without a CUDA toolkit.

Search order for a tool ``name``:

1. ``LOWBIT_<NAME>`` (e.g. ``LOWBIT_PTXAS=/opt/cuda/bin/ptxas``);
2. the pinned PyPI wheels in the running Python environment
   (``nvidia-cuda-nvcc`` carries ptxas, ``nvidia-cuda-nvdisasm`` nvdisasm; both
   install into the ``nvidia`` namespace package under ``cu13/bin``).  These
   come first because the project pins them: PTX acceptance and SASS counts
   are then reproducible, and CI uses exactly these copies;
3. ``PATH``;
4. ``$CUDA_HOME/bin`` and ``$CUDA_PATH/bin``.

``lowbit install-tools`` installs the wheels with ``--no-deps`` (the nvcc
wheel declares ~110 MB of dependencies that ptxas does not need).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lowbit import config
from lowbit.errors import ToolchainError

TOOLS = ("ptxas", "nvdisasm")
# Pinned to the GPU machines' CUDA 13.0 driver; there is no 13.0 nvdisasm wheel.
TOOL_WHEELS = ("nvidia-cuda-nvcc==13.0.88", "nvidia-cuda-nvdisasm==13.5.37")


def _wheel_bin_dirs() -> list[Path]:
    try:
        import nvidia  # namespace package installed by the nvidia-cuda-* wheels
    except ImportError:
        return []
    dirs = []
    for root in getattr(nvidia, "__path__", []):
        for sub in sorted(Path(root).glob("cu*/bin")):
            dirs.append(sub)
    return dirs


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_tool(name: str) -> str | None:
    """Absolute path of ``name`` (``"ptxas"`` or ``"nvdisasm"``), or None when it is nowhere."""
    if name not in TOOLS:
        raise ToolchainError(f"unknown tool {name!r}; lowbit looks for {', '.join(TOOLS)}")
    override = config.tool_override(name)
    if override is not None:
        if not _executable(Path(override)):
            raise ToolchainError(f"LOWBIT_{name.upper()}={override} is not an executable file")
        return str(Path(override).resolve())
    for directory in _wheel_bin_dirs():
        if _executable(directory / name):
            return str(directory / name)
    found = shutil.which(name, path=config.search_path())
    if found:
        return found
    for root in config.cuda_homes():
        if _executable(root / "bin" / name):
            return str(root / "bin" / name)
    return None


def require_tool(name: str) -> str:
    """Like :func:`find_tool` but raises a :class:`ToolchainError` that says how to get the tool."""
    path = find_tool(name)
    if path is None:
        raise ToolchainError(
            f"{name} not found: looked in LOWBIT_{name.upper()}, the nvidia-cuda-* wheels, PATH and CUDA_HOME. "
            f"Install it with `lowbit install-tools` (pip install --no-deps {' '.join(TOOL_WHEELS)})"
        )
    return path


@dataclass(frozen=True)
class ToolInfo:
    name: str
    path: str | None
    version: str | None  # e.g. "13.0.88"


def _default_timeout(name: str) -> float:
    return {"ptxas": config.PTXAS_TIMEOUT_S, "nvdisasm": config.NVDISASM_TIMEOUT_S}.get(name, config.PTXAS_TIMEOUT_S)


def run_tool(name: str, args: list[str], timeout: float | None = None, path: str | None = None,
             **kwargs: object) -> subprocess.CompletedProcess:  # fmt: skip
    """Run tool ``name`` (found by :func:`require_tool`) with ``args``, its output captured as text.

    Every run is bounded: ``timeout`` seconds (default :data:`lowbit.config.PTXAS_TIMEOUT_S` or
    :data:`~lowbit.config.NVDISASM_TIMEOUT_S`); a tool that does not finish in time is killed and is a
    :class:`ToolchainError` naming the tool and the timeout, and so is one that cannot be started.
    The exit status is the caller's to judge.  ``path``: the tool already found (by the caller).
    """
    path = path or require_tool(name)
    limit = _default_timeout(name) if timeout is None else timeout
    try:
        return subprocess.run([path, *args], capture_output=True, text=True, timeout=limit, check=False, **kwargs)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{name} ({path}) did not finish within {limit:g} s and was killed (the timeout is "
                             f"lowbit.config.{name.upper()}_TIMEOUT_S or the call's timeout=)") from None
    except OSError as exc:
        raise ToolchainError(f"{name} ({path}) could not be run: {exc.strerror or exc}") from None


@functools.lru_cache(maxsize=None)
def _version_of(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=config.TOOL_VERSION_TIMEOUT_S, check=False).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None
    match = re.search(r"V(\d+\.\d+\.\d+)", out) or re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


def tool_info(name: str) -> ToolInfo:
    path = find_tool(name)
    return ToolInfo(name, path, _version_of(path) if path else None)


def install_tools_command() -> list[str]:
    """The pip command that installs the pinned ptxas/nvdisasm wheels into this Python."""
    return [sys.executable, "-m", "pip", "install", "--no-deps", *TOOL_WHEELS]


def gpu_status() -> str:
    """A one-line description of the GPU visible through the CUDA driver, or why there is none."""
    try:
        from cuda.bindings import driver  # optional: the `gpu` extra
    except ImportError:
        return "no GPU support installed (pip install 'lowbit[gpu]')"
    try:
        (err,) = driver.cuInit(0)
        if err != driver.CUresult.CUDA_SUCCESS:
            return f"no GPU (cuInit: {err.name})"
        err, count = driver.cuDeviceGetCount()
        if err != driver.CUresult.CUDA_SUCCESS or count == 0:
            return "no GPU (no CUDA device)"
        err, dev = driver.cuDeviceGet(0)
        err, raw = driver.cuDeviceGetName(64, dev)
        name = raw.split(b"\0", 1)[0].decode(errors="replace")
        return f"{count} GPU(s): {name}"
    except Exception as exc:  # the driver library itself may be missing: an exception, not a CUresult
        return f"no GPU ({type(exc).__name__}: {exc})"
