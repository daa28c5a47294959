"""The numpy reference interpreter of VM programs: the meaning every lowering is checked against.

``run(prog, grid, args)`` binds the arguments (numpy arrays for pointers,
Python numbers for scalars), runs every block of ``grid`` and leaves the
results in the caller's arrays.  Integers are exact, floats IEEE, and each
op follows the semantics tables of :mod:`lowbit.ir.semantics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from lowbit import config
from lowbit.arch import MAX_BLOCK_THREADS, MAX_GRID
from lowbit.binder import Binder, require_host
from lowbit.errors import LaunchError
from lowbit.interp.machine import HANDLERS, Slot, run_program
from lowbit.interp.memory import Buffer
from lowbit.interp.values import InterpError
from lowbit.ir.program import Program

__all__ = ["HANDLERS", "InterpError", "bind_args", "normalize_grid", "run"]


def normalize_grid(grid: object) -> tuple[int, int, int]:
    """``grid`` (an int or a tuple of 1-3 positive ints) as an (x, y, z) triple, within the hardware's limits.

    Every backend applies the same limits (:data:`lowbit.arch.MAX_GRID`: x < 2^31, y and z < 65536): a
    grid a GPU would refuse is refused by the interpreter and the emulator too, before anything runs.
    """
    dims = (grid,) if isinstance(grid, int | np.integer) else grid
    if (
        not isinstance(dims, tuple | list)
        or not 1 <= len(dims) <= 3
        or not all(isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in dims)
    ):
        raise LaunchError(f"the grid must be a positive int or a tuple of 1 to 3 positive ints, got {grid!r}")
    full = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    for i, (d, most) in enumerate(zip(full, MAX_GRID)):
        if d > most:
            raise LaunchError(f"grid {tuple(full)!r}: dimension {'xyz'[i]} is {d}, above the hardware limit {most} "
                              f"(grid limits: x < 2^31, y and z < 65536)")
    return full  # type: ignore[return-value]


def bind_args(prog: Program, args: Mapping[str, object],
              staged: list[tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, Slot]:  # fmt: skip
    """Check and convert launch arguments (by parameter name) for :func:`run` (through :class:`Binder`).

    With ``staged`` (a list), every array runs on a private copy of its bytes -- one per distinct array, so
    an array passed twice is still one buffer -- and ``(array, copy)`` pairs are appended for the caller
    to copy back after a complete run; without it the kernel works on the caller's arrays directly.
    """
    bound = Binder.of(prog).bind(args)
    require_host(bound, "interpreter")
    out: dict[str, Slot] = {}
    copies: dict[tuple[int, int], np.ndarray] = {}
    for p, v in zip(prog.params, bound.values):
        if not isinstance(v, np.ndarray):
            out[p.name] = v  # type: ignore[assignment]
            continue
        flat = v.reshape(-1).view(np.uint8)
        if staged is not None:
            key = (v.__array_interface__["data"][0], v.nbytes)
            if key not in copies:
                copies[key] = flat.copy()
                if v.flags.writeable:
                    staged.append((flat, copies[key]))
            flat = copies[key]
        out[p.name] = Buffer(p.name, flat)
    return out


def run(prog: Program, grid: object, args: Mapping[str, object], printer: Callable[[str], None] = print,
        max_seconds: float | None = None) -> None:
    """Run ``prog`` over ``grid``; pointer arguments are numpy arrays updated in place.

    ``max_seconds`` bounds the wall time (default :data:`lowbit.config.INTERP_MAX_SECONDS`; ``math.inf``: none).

    The update is all or nothing: the program runs on copies, written back only when every block
    finished, so an error (out of bounds, a bad loop step) leaves the caller's arrays as they were.
    """
    g = normalize_grid(grid)
    if 32 * prog.num_warps > MAX_BLOCK_THREADS:
        raise LaunchError(f"kernel {prog.name}: {32 * prog.num_warps} threads per block, above the hardware limit "
                          f"{MAX_BLOCK_THREADS}")
    if max_seconds is not None and (why := config.budget_problem("max_seconds", max_seconds)) is not None:
        raise LaunchError(why)
    staged: list[tuple[np.ndarray, np.ndarray]] = []
    run_program(prog, g, bind_args(prog, args, staged), printer, max_seconds)
    for flat, copy in staged:
        flat[:] = copy
