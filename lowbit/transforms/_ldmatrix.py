"""When a tile read from a row-major shared buffer can come straight from ``ldmatrix`` into its registers.

``ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].b16`` (PTX ISA 9.7.14.5.15):
lane ``l`` supplies the address of row ``l % 8`` of matrix ``l // 8`` -- 16
contiguous bytes -- and, without ``.trans``, thread ``t`` receives in its
register ``i`` the 32 bits at row ``t >> 2``, bytes ``4 (t % 4) .. +4`` of
matrix ``i``; with ``.trans`` the b16 elements at rows ``2 (t % 4) + {0, 1}``,
column ``t >> 2``.

So a destination layout is an ldmatrix layout when each of its 32-bit
registers ``q`` (``32 / bits`` consecutive slots) holds, in every warp, the
pattern ``base_q(warp) + (t >> 2, e (t % 4) + j)`` (rows, elements along the
row; ``e = 32 / bits``) -- or, transposed, ``base_q(warp) + (2 (t % 4) + j,
t >> 2)`` for 16-bit elements -- with ``base_q`` 16-byte aligned.  That is
checked here numerically over every thread; the lowering then computes each
lane's row address from the thread's own coordinates.
"""

from __future__ import annotations

import numpy as np

from lowbit.layout.register import RegisterLayout
from lowbit.transforms._layout_maps import thread_coords

__all__ = ["ldmatrix_ok"]


def ldmatrix_ok(lay: RegisterLayout, bits: int, trans: bool) -> bool:
    """Whether a 2-D tile in ``lay`` (of ``bits``-bit elements, row-major shared) loads with ldmatrix[.trans]."""
    if lay.rank != 2 or bits > 16 or 32 % bits or lay.num_threads % 32:
        return False
    e = 32 // bits
    if trans and bits != 16:
        return False
    if lay.local_size % e:
        return False
    t = np.arange(lay.num_threads)
    lane = t % 32
    warp0 = t - lane
    row_in = lane >> 2
    col_in = e * (lane & 3)
    for q in range(lay.local_size // e):
        first = thread_coords(lay, q * e)
        base = first[warp0]
        if trans:
            want = np.stack([base[:, 0] + 2 * (lane & 3), base[:, 1] + (lane >> 2)], axis=1)
        else:
            want = np.stack([base[:, 0] + row_in, base[:, 1] + col_in], axis=1)
        if not np.array_equal(first, want):
            return False
        if np.any(base[:, 1] % (16 * 8 // bits if not trans else 8)):
            return False  # the 16-byte rows must start aligned
        for j in range(1, e):  # the register's other elements follow along the row (or, .trans, down the column)
            step = np.array([j, 0]) if trans else np.array([0, j])
            if not np.array_equal(thread_coords(lay, q * e + j), first + step):
                return False
    return True
