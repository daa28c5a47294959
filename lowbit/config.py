"""Every environment variable lowbit reads, read here and nowhere else.

| variable | meaning |
|---|---|
| ``LOWBIT_PTXAS`` / ``LOWBIT_NVDISASM`` | explicit path of the tool (wins over every search) |
| ``CUDA_HOME`` / ``CUDA_PATH`` | a CUDA toolkit whose ``bin/`` is searched last |
| ``LOWBIT_CACHE_DIR`` | the compile cache (default ``~/.cache/lowbit``) |

It also names the bounds every launch and every tool call runs under (issue 9,
"everything is bounded"): nothing lowbit starts may run forever.  Each is a
default; a launch or a call can pass its own (the table says where).

| constant | bounds | override |
|---|---|---|
| :data:`EMU_STEPS_BASE`, :data:`EMU_STEPS_PER_THREAD` | (group-)instructions one emulator launch executes | ``emu.launch(max_steps=)``, ``kernel[grid](..., max_steps=)`` |
| :data:`EMU_MAX_SECONDS` | wall time of one emulator launch | ``emu.launch(max_seconds=)``, ``kernel[grid](..., max_seconds=)`` |
| :data:`INTERP_MAX_SECONDS` | wall time of one interpreter launch | ``kernel.interpret[grid](..., max_seconds=)`` |
| :data:`PTXAS_TIMEOUT_S` | one ptxas run | ``assemble(..., timeout=)`` |
| :data:`NVDISASM_TIMEOUT_S` | one nvdisasm run | ``run_tool(..., timeout=)`` |
| :data:`TOOL_VERSION_TIMEOUT_S` | ``<tool> --version`` (read for cache keys) | -- |
| :data:`LLVM_TIMEOUT_S` | one request to the LLVM worker (start-up included) | ``LLVMWorker(timeout=)`` |
"""

from __future__ import annotations

import numbers
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
    if value:
        return Path(value)
    try:
        return Path.home() / ".cache" / "lowbit"
    except RuntimeError:  # no HOME and no passwd entry: a per-user directory under the system's temp
        import tempfile  # noqa: PLC0415

        return Path(tempfile.gettempdir()) / f"lowbit-cache-{os.getuid()}"


# ------------------------------------------------------------------------------------------ bounds

#: Emulator watchdog, step budget: a launch of ``blocks x threads`` threads may execute at most
#: ``EMU_STEPS_BASE + EMU_STEPS_PER_THREAD * blocks * threads`` steps (one step is one instruction issued for
#: one group of threads at one pc: a launch in lockstep takes one step per instruction, a fully diverged one
#: one step per thread per instruction, hence the per-thread term).  Far above any test or example kernel
#: (the largest take ~10^5 steps); a loop whose state keeps changing (so that the spin detector never fires)
#: ends here with an EmulatorError naming the loop.
EMU_STEPS_BASE = 1 << 22
EMU_STEPS_PER_THREAD = 1 << 16

#: The most threads one emulator launch may hold (the emulator keeps every thread of the grid in numpy arrays
#: at once): a larger grid -- legal on a GPU -- is a LaunchError, not a MemoryError minutes later.
EMU_MAX_THREADS = 1 << 24

#: Emulator watchdog, wall time (seconds) of one launch; checked every few thousand steps.
EMU_MAX_SECONDS = 300.0

#: Interpreter watchdog, wall time (seconds) of one ``kernel.interpret[grid](...)`` launch; checked at every
#: block and every loop iteration.  Settable per launch: ``kernel.interpret[grid](..., max_seconds=)``.
INTERP_MAX_SECONDS = 300.0

#: The register budget of one tile (lowbit.compiler.budget): 32-bit registers per thread that a single
#: register tile may cost, checked before lowering (a CompileError at the tile's line).  Four times the
#: hardware's 255 per thread: room for ptxas to spill, none for a runaway constexpr tile.
MAX_TILE_REGISTERS_PER_THREAD = 1024

#: One ptxas run (seconds): the largest kernels here assemble in a few seconds.
PTXAS_TIMEOUT_S = 300.0

#: One nvdisasm run (seconds).
NVDISASM_TIMEOUT_S = 120.0

#: ``<tool> --version`` (seconds): read once per tool for the compile-cache key.
TOOL_VERSION_TIMEOUT_S = 30.0

#: One request to the LLVM worker process, its start-up included (seconds).
LLVM_TIMEOUT_S = 600.0


def budget_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not a watchdog budget (``max_steps``/``max_seconds``: a positive number, ``math.inf``
    for none), or None when it is one.  The emulator and the interpreter raise it as their LaunchError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        return f"{name} must be a positive number (math.inf: no limit), got {value!r}"
    return None


def emu_step_budget(blocks: int, threads: int) -> int:
    """The default step budget of an emulator launch of ``blocks`` blocks of ``threads`` threads."""
    return EMU_STEPS_BASE + EMU_STEPS_PER_THREAD * max(1, blocks) * max(1, threads)
