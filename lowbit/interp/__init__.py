"""The numpy reference interpreter of VM programs: the meaning every lowering is checked against.

``run(prog, grid, args)`` binds the arguments (numpy arrays for pointers,
Python numbers for scalars), runs every block of ``grid`` and leaves the
results in the caller's arrays.  Integers are exact, floats IEEE, and each
op follows the semantics tables of :mod:`lowbit.ir.semantics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from lowbit.errors import LaunchError
from lowbit.interp.machine import HANDLERS, Slot, run_program
from lowbit.interp.memory import Buffer
from lowbit.interp.values import InterpError, storage_dtype
from lowbit.ir.expr import Var, convert
from lowbit.ir.program import Program
from lowbit.ir.types import PointerType, is_bool

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


def _bind_pointer(name: str, ptype: PointerType, arr: object) -> Buffer:
    dt = ptype.dtype
    if not isinstance(arr, np.ndarray):
        raise LaunchError(f"argument '{name}': expected a numpy array for ptr<{dt.name}>, got {type(arr).__name__}")
    if not arr.flags.c_contiguous:
        raise LaunchError(f"argument '{name}': the array must be C-contiguous (use np.ascontiguousarray)")
    if not arr.flags.writeable:
        raise LaunchError(f"argument '{name}': the array is read-only")
    sd = storage_dtype(dt)
    if dt.bits % 8 == 0 and dt.bits >= 8:
        ok = arr.dtype.itemsize * 8 == dt.bits and (
            arr.dtype == sd or arr.dtype.kind in "u" or (dt.is_int and arr.dtype.kind == "i")
        )
        if sd.kind == "f" and arr.dtype.kind == "i":
            ok = False
    else:
        ok = arr.dtype.kind in "iu"  # packed sub-byte codes: any integer words
    if not ok:
        raise LaunchError(
            f"argument '{name}': array dtype {arr.dtype} does not hold {dt.name} elements "
            f"(expected {sd if dt.bits % 8 == 0 else 'an integer array of packed codes'})"
        )
    return Buffer(name, arr.reshape(-1).view(np.uint8))


def _bind_scalar(name: str, var: Var, value: object) -> int | float | bool:
    dt = var.dtype
    if isinstance(value, np.generic):
        value = value.item()
    if is_bool(dt):
        if not isinstance(value, bool | int):
            raise LaunchError(f"argument '{name}': expected a bool, got {value!r}")
        return bool(value)
    if dt.is_int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise LaunchError(f"argument '{name}': expected an int for {dt.name}, got {value!r}")
        if not dt.min <= value <= dt.max:
            raise LaunchError(f"argument '{name}': {value} does not fit in {dt.name}")
        return value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise LaunchError(f"argument '{name}': expected a number for {dt.name}, got {value!r}")
    return convert(float(value), dt)


def bind_args(prog: Program, args: Mapping[str, object]) -> dict[str, Slot]:
    """Check and convert launch arguments (by parameter name) for :func:`run`."""
    out: dict[str, Slot] = {}
    for p in prog.params:
        if p.name not in args:
            raise LaunchError(f"missing argument '{p.name}' of kernel {prog.name}")
        v = p.value
        if isinstance(v, Var):
            out[p.name] = _bind_scalar(p.name, v, args[p.name])
        else:
            assert isinstance(v.type, PointerType)  # noqa: S101 (Param validated this)
            out[p.name] = _bind_pointer(p.name, v.type, args[p.name])
        if p.divisibility > 1:
            _check_fact(p.name, p.divisibility, args[p.name], out[p.name])
    return out


def _check_fact(name: str, d: int, arg: object, bound: Slot) -> None:
    """A program specialised on ``divisibility`` runs only with arguments that have it."""
    if isinstance(bound, Buffer):
        addr = int(arg.__array_interface__["data"][0])  # type: ignore[attr-defined]
        if addr % d:
            raise LaunchError(f"argument '{name}': the kernel was specialised on a {d}-byte aligned address, "
                              f"but the array starts at {addr:#x}")  # fmt: skip
    elif int(bound) % d:  # type: ignore[arg-type]
        raise LaunchError(f"argument '{name}': the kernel was specialised on a multiple of {d}, got {bound}")


def run(prog: Program, grid: object, args: Mapping[str, object], printer: Callable[[str], None] = print) -> None:
    """Run ``prog`` over ``grid``; pointer arguments are numpy arrays updated in place."""
    run_program(prog, normalize_grid(grid), bind_args(prog, args), printer)
