"""The numpy reference interpreter of VM programs: the meaning every lowering is checked against.

``run(prog, grid, args)`` binds the arguments (numpy arrays for pointers,
Python numbers for scalars), runs every block of ``grid`` and leaves the
results in the caller's arrays.  Integers are exact, floats IEEE, and each
op follows the semantics tables of :mod:`lowbit.ir.semantics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from lowbit.binder import Binder, require_host
from lowbit.errors import LaunchError
from lowbit.interp.machine import HANDLERS, Slot, run_program
from lowbit.interp.memory import Buffer
from lowbit.interp.values import InterpError
from lowbit.ir.program import Program

__all__ = ["HANDLERS", "InterpError", "bind_args", "normalize_grid", "run"]


def normalize_grid(grid: object) -> tuple[int, int, int]:
    """``grid`` (an int or a tuple of 1-3 positive ints) as an (x, y, z) triple."""
    dims = (grid,) if isinstance(grid, int | np.integer) else grid
    if (
        not isinstance(dims, tuple | list)
        or not 1 <= len(dims) <= 3
        or not all(isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in dims)
    ):
        raise LaunchError(f"the grid must be a positive int or a tuple of 1 to 3 positive ints, got {grid!r}")
    full = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    return full  # type: ignore[return-value]


def bind_args(prog: Program, args: Mapping[str, object]) -> dict[str, Slot]:
    """Check and convert launch arguments (by parameter name) for :func:`run` (through :class:`Binder`)."""
    bound = Binder.of(prog).bind(args)
    require_host(bound, "interpreter")
    out: dict[str, Slot] = {}
    for p, v in zip(prog.params, bound.values):
        out[p.name] = Buffer(p.name, v.reshape(-1).view(np.uint8)) if isinstance(v, np.ndarray) else v  # type: ignore[assignment]
    return out


def run(prog: Program, grid: object, args: Mapping[str, object], printer: Callable[[str], None] = print) -> None:
    """Run ``prog`` over ``grid``; pointer arguments are numpy arrays updated in place."""
    run_program(prog, normalize_grid(grid), bind_args(prog, args), printer)
