"""Choose a register layout for every register tile that has none: the block-wide flat distribution.

Requires: a verified VM program.
Ensures:  every register tile whose distribution is expressible in
          :mod:`lowbit.layout` carries its layout on its type, so the printed
          ``.lbir`` shows it: for ``n`` elements over ``T = 32 * num_warps``
          threads, ``product(local(n/T), spatial(T))`` reshaped to the tile
          (``T`` divides ``n``) or ``T/n``-fold replication of ``spatial(n)``
          (``n`` divides ``T``).  Row-major element ``e`` sits in slot
          ``e // T`` of thread ``e % T``.  Tiles with other sizes keep
          ``None``; the lowering distributes them the same way, with
          duplicate trailing slots.
Preserves: the program's meaning (layouts do not change values), op order,
          source locations, given layouts.

This is the simplest layout that lowers every op; layout *inference*
(mma fragments, vector-friendly runs) replaces it in a later issue.
"""

from __future__ import annotations

import math
from functools import lru_cache

from lowbit.errors import LayoutError
from lowbit.ir.program import Program
from lowbit.ir.rewrite import Rewriter
from lowbit.ir.types import TileType, Value
from lowbit.layout import register as R
from lowbit.transforms.options import Options

__all__ = ["flat_layout", "run"]


@lru_cache(maxsize=None)
def flat_layout(shape: tuple[int, ...], threads: int) -> R.RegisterLayout | None:
    """The flat cyclic distribution of a ``shape`` tile over ``threads`` threads, or None if inexpressible."""
    n = math.prod(shape)
    try:
        if n % threads == 0:
            flat = R.product(R.local(n // threads), R.spatial(threads)) if n > threads else R.spatial(n)
        elif threads % n == 0:
            flat = R.product(R.replicate(threads // n, 1), R.spatial(n))
        else:
            return None
        return R.reshape(flat, shape)
    except LayoutError:
        return None


class _Flat(Rewriter):
    def __init__(self, threads: int) -> None:
        super().__init__()
        self.threads = threads

    def define(self, v, op):  # noqa: ANN001, ANN201
        t = getattr(v, "type", None)
        if isinstance(t, TileType) and t.layout is None:
            lay = flat_layout(t.shape, self.threads)
            if lay is not None:
                return Value(TileType(t.dtype, t.shape, lay), v.hint)
        return v


def run(prog: Program, opts: Options) -> Program:
    return _Flat(prog.num_warps * 32).run(prog)
