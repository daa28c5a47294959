"""Register layouts the compiler chooses by default: blocked (coalesced) distributions of a tile over a block.

:func:`blocked` is the layout of a global load or store (each thread owns
runs of consecutive elements along the last dimension, consecutive threads
own consecutive runs, so a warp's accesses are contiguous) and, with a 2-D
per-thread block, the accumulator of a per-thread FMA ``dot``.  Any tile
shape works over any power-of-two number of threads: thread digits take
the power-of-two factors of the dimensions (innermost first), the rest of a
dimension stays in each thread's slots, and threads left over replicate the
tile (outermost, so whole warps repeat the same data).
"""

from __future__ import annotations

import math

from lowbit.errors import LayoutError
from lowbit.layout.register import RegisterLayout, local, product, replicate, spatial

__all__ = ["blocked", "padded_extent", "pow2_factor"]


def pow2_factor(n: int, cap: int) -> int:
    """The largest power of two that divides ``n`` and is at most ``cap`` (>= 1)."""
    f = 1
    while n % (2 * f) == 0 and 2 * f <= cap:
        f *= 2
    return f


def padded_extent(n: int, threads: int) -> tuple[int, int]:
    """(padded extent, thread factor) for ``n`` blocks over at most ``threads`` threads.

    The thread factor is a power of two; when ``n``'s own power-of-two
    factor is smaller than what ``threads`` and ``n`` allow, ``n`` is rounded
    up (at most doubled) so that the threads divide it.
    """
    want = 1
    while want * 2 <= threads and want < n:
        want *= 2
    if n % want == 0:
        return n, want
    return -(-n // want) * want, want


def blocked(shape: tuple[int, ...], threads: int, inner: tuple[int, ...] | None = None,
            pad: bool = False) -> RegisterLayout:  # fmt: skip
    """``product(replicate, local(repeats), spatial(threads grid), local(inner))`` over ``shape``.

    ``inner`` is each thread's innermost block (default: one element); it
    must divide ``shape``.  Threads are laid out row-major over the grid of
    blocks, taking power-of-two factors of the block counts from the last
    dimension outwards; when the grid has fewer blocks than ``threads`` the
    remaining threads replicate it (most significant thread digits).

    With ``pad``, a dimension whose block count has too small a power-of-two
    factor is rounded up (:func:`padded_extent`) so the threads spread over
    it instead of replicating: the layout's shape then exceeds ``shape``
    (a padded layout, see :class:`~lowbit.ir.types.TileType`).

    Laws (tested): the layout has ``shape`` (or covers it, padded), spans ``threads`` threads, and
    thread ``t``'s slots ``s*b .. s*b + b - 1`` (``b = prod(inner)``) hold
    one ``inner`` block; ``contiguous_run(-1) == inner[-1]`` when the last
    dimension has more than one block per thread row.
    """
    shape = tuple(shape)
    if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
        raise LayoutError(f"blocked(): bad shape {shape!r}", shape)
    if threads < 1 or threads & (threads - 1):
        raise LayoutError(f"blocked(): threads must be a power of two, got {threads}", shape)
    inner = tuple(inner) if inner is not None else (1,) * len(shape)
    if len(inner) != len(shape) or any(s % i for s, i in zip(shape, inner)):
        raise LayoutError(f"blocked(): inner block {inner} does not divide {shape}", shape, inner)
    grid = [s // i for s, i in zip(shape, inner)]
    tgrid = [1] * len(shape)
    left = threads
    for d in reversed(range(len(shape))):
        if pad:
            grid[d], f = padded_extent(grid[d], left)
        else:
            f = pow2_factor(grid[d], left)
        tgrid[d] = f
        left //= f
    repeats = tuple(g // t for g, t in zip(grid, tgrid))
    parts = []
    if left > 1:
        parts.append(replicate(left, len(shape)))
    if math.prod(repeats) > 1:
        parts.append(local(*repeats))
    parts.append(spatial(*tgrid))
    if math.prod(inner) > 1:
        parts.append(local(*inner))
    return product(*parts)
