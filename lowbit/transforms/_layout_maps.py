"""Where a layout's elements are, numerically: what the passes ask of two layouts before moving any data.

A register layout's coordinates split into a thread part and a slot part,
``coords(t, s) = spatial(t) + local(s)`` (every mode is a thread digit or a
slot digit; replication digits contribute nothing), so two small tables
describe it: ``spatial`` (threads x rank) and ``local`` (slots x rank).
With them:

* :func:`register_map` -- can thread ``t`` find every element it must hold
  in ``dst`` among the elements it already holds in ``src`` (possibly after
  a coordinate map: a broadcast's projection, a slice's shift)?  Then the
  answer is a constant slot permutation: a register move, no instruction;
* :func:`shuffle_plan` -- otherwise, is every element a thread needs held
  by a thread of its own warp, in a slot that does not depend on the
  thread?  Then one ``shfl.idx`` per slot moves it;
* :func:`owner_digits` -- which mode digits of ``src`` a coordinate has
  (for computing a source lane on the device).

Tables are computed once per layout and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lowbit.layout.register import RegisterLayout

__all__ = ["ShufflePlan", "local_table", "register_map", "shuffle_plan", "spatial_table", "thread_coords"]


def _digits(entries: tuple[int, ...], layout: RegisterLayout, index: np.ndarray) -> dict[int, np.ndarray]:
    """Mode id -> digit value for every entry of a digit list, from a flat (thread or slot) index array."""
    out: dict[int, np.ndarray] = {}
    rest = index
    for e in reversed(entries):
        size = -e if e < 0 else layout.mode_sizes[e]
        d, rest = rest % size, rest // size
        if e >= 0:
            out[e] = d
    return out


def _coords(layout: RegisterLayout, digits: dict[int, np.ndarray], n: int) -> np.ndarray:
    out = np.zeros((n, layout.rank), np.int64)
    for e, d in digits.items():
        dim, w = layout._mode_dim[e]  # noqa: SLF001 - the layout's own mode weights
        out[:, dim] += d * w
    return out


@lru_cache(maxsize=4096)
def spatial_table(layout: RegisterLayout) -> np.ndarray:
    """``(num_threads, rank)``: the coordinate part each thread contributes (read-only)."""
    t = np.arange(layout.num_threads, dtype=np.int64)
    out = _coords(layout, _digits(layout.spatial, layout, t), layout.num_threads)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4096)
def local_table(layout: RegisterLayout) -> np.ndarray:
    """``(local_size, rank)``: the coordinate part each slot contributes (read-only)."""
    s = np.arange(layout.local_size, dtype=np.int64)
    out = _coords(layout, _digits(layout.local, layout, s), layout.local_size)
    out.setflags(write=False)
    return out


def thread_coords(layout: RegisterLayout, slot: int) -> np.ndarray:
    """``(num_threads, rank)``: the coordinates every thread holds in ``slot``."""
    return spatial_table(layout) + local_table(layout)[slot]


def _project(c: np.ndarray, dims: tuple[int | None, ...]) -> np.ndarray:
    out = np.zeros((c.shape[0], len(dims)), np.int64)
    for i, d in enumerate(dims):
        if d is not None:
            out[:, i] = c[:, d]
    return out


def register_map(src: RegisterLayout, dst: RegisterLayout, dims: tuple[int | None, ...] | None = None,
                 offset: tuple[int, ...] | None = None) -> tuple[int, ...] | None:  # fmt: skip
    """``sigma`` with ``src.coords(t, sigma[s]) == g(dst.coords(t, s))`` for every thread ``t``, or None.

    ``g`` maps a destination coordinate to a source one: source dimension
    ``i`` is destination dimension ``dims[i]`` (``None``: always 0, e.g. the
    extent-1 axes of a broadcast's source) plus ``offset[i]`` (a slice's
    start).  Default: the identity.  Both layouts must span the same threads.
    Because ``g`` is affine and thread 0 holds the origin of both spatial
    parts, sigma exists exactly when the thread parts agree under ``g`` and
    every shifted slot part of ``dst`` is a slot part of ``src``.
    """
    if src.num_threads != dst.num_threads:
        return None
    dims = dims if dims is not None else tuple(range(dst.rank))
    off = np.asarray(offset if offset is not None else (0,) * src.rank, np.int64)
    if not np.array_equal(spatial_table(src), _project(spatial_table(dst), dims)):
        return None
    key = {tuple(row): i for i, row in enumerate(local_table(src).tolist())}
    out = []
    for row in (_project(local_table(dst), dims) + off).tolist():
        i = key.get(tuple(row))
        if i is None:
            return None
        out.append(i)
    return tuple(out)


@dataclass(frozen=True)
class ShufflePlan:
    """A layout conversion inside warps: destination slot ``s`` reads source slot ``slots[s]`` of lane ``lanes[s][t]``."""

    slots: tuple[int, ...]
    lanes: tuple[tuple[int, ...], ...]  # per destination slot: the source lane of every thread (for tests and costs)


def _owner(src: RegisterLayout, coords: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(thread, slot) in ``src`` holding each coordinate row; replication digits are taken from ``own`` threads."""
    n = coords.shape[0]
    digits: dict[int, np.ndarray] = {}
    for e, (dim, w) in enumerate(src._mode_dim):  # noqa: SLF001
        digits[e] = (coords[:, dim] // w) % src.mode_sizes[e]
    own_digits = {}
    rest = own.copy()
    for e in reversed(src.spatial):
        size = -e if e < 0 else src.mode_sizes[e]
        own_digits[e] = rest % size
        rest //= size
    thread = np.zeros(n, np.int64)
    for e in src.spatial:
        size = -e if e < 0 else src.mode_sizes[e]
        thread = thread * size + (own_digits[e] if e < 0 else digits[e])
    slot = np.zeros(n, np.int64)
    for e in src.local:
        slot = slot * src.mode_sizes[e] + digits[e]
    return thread, slot


def shuffle_plan(src: RegisterLayout, dst: RegisterLayout) -> ShufflePlan | None:
    """A per-slot warp-shuffle route from ``src`` to ``dst`` (same shape and threads), or None."""
    if src.num_threads != dst.num_threads or src.shape != dst.shape:
        return None
    t = np.arange(dst.num_threads, dtype=np.int64)
    slots, lanes = [], []
    for s in range(dst.local_size):
        owner, slot = _owner(src, thread_coords(dst, s), t)
        if np.any(owner // 32 != t // 32) or np.any(slot != slot[0]):
            return None
        slots.append(int(slot[0]))
        lanes.append(tuple(int(x) for x in owner % 32))
    return ShufflePlan(tuple(slots), tuple(lanes))
