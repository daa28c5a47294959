"""Rough per-thread costs of moving a tile, for the choices layout inference has to make.

The one question asked today: should a global load read its tile straight
into the layout its consumer needs (an mma fragment, say), or read it
coalesced and convert through shared memory?  Costs are instruction counts
per thread, a global access weighted by how many 32-byte sectors one warp
instruction touches against the fewest its bytes could take, and a barrier
counted as :data:`BARRIER` instructions.  Exactness is not the point;
picking the right side of a factor of two is.
"""

from __future__ import annotations

import math

import numpy as np

from lowbit.layout.construct import pow2_factor
from lowbit.layout.register import RegisterLayout
from lowbit.transforms._layout_maps import thread_coords

__all__ = ["best_round_trip", "direct_load_cost", "round_trip_cost", "shared_conversion_cost"]

BARRIER = 4


def _run(lay: RegisterLayout, bits: int) -> int:
    return pow2_factor(lay.contiguous_run(-1), max(1, 128 // bits))


def _sector_factor(lay: RegisterLayout, bits: int, run: int) -> float:
    """Sectors warp 0 touches per access, over the fewest its 32 lanes' bytes need (>= 1)."""
    ratios = []
    for s in range(0, lay.local_size, run):
        c = thread_coords(lay, s)[:32]
        nbytes = run * max(bits, 8) // 8
        if c.shape[1] == 1:
            keys = {int(x) * bits // 8 // 32 for x in c[:, 0]}
        else:
            keys = {(tuple(int(v) for v in row[:-1]), int(row[-1]) * bits // 8 // 32) for row in c}
        distinct = len({tuple(int(v) for v in row) for row in c})
        ideal = max(1, math.ceil(distinct * nbytes / 32))
        ratios.append(len(keys) / ideal)
    return float(np.mean(ratios)) if ratios else 1.0


def direct_load_cost(lay: RegisterLayout, bits: int) -> float:
    run = _run(lay, bits)
    return lay.local_size / run * max(1.0, _sector_factor(lay, bits, run))


def round_trip_cost(src: RegisterLayout, dst: RegisterLayout, bits: int) -> float:
    """A shared store from ``src``, two barriers and the read into ``dst`` (ldmatrix if it can), row-major buffer."""
    from lowbit.transforms._ldmatrix import ldmatrix_ok  # noqa: PLC0415

    store = src.local_size / _run(src, bits)
    if dst.rank == 2 and (ldmatrix_ok(dst, bits, False) or ldmatrix_ok(dst, bits, True)):
        read = dst.local_size * bits / 32 / 4
    else:
        read = dst.local_size / _run(dst, bits)
    return store + read + 2 * BARRIER


def transposed(lay: RegisterLayout) -> RegisterLayout:
    from lowbit.layout import register as R  # noqa: PLC0415

    return R.permute(lay, (1, 0))


def best_round_trip(src: RegisterLayout, dst: RegisterLayout, bits: int) -> tuple[float, bool]:
    """(cost, transposed?): the buffer stored row-major as the tile is, or transposed (a [C, R] buffer) when
    that lets the reads (or the stores) use wider accesses."""
    natural = round_trip_cost(src, dst, bits)
    if src.rank != 2 or bits < 8:
        return natural, False
    flipped = round_trip_cost(transposed(src), transposed(dst), bits)
    return (flipped, True) if flipped < natural else (natural, False)


def shared_conversion_cost(src: RegisterLayout, dst: RegisterLayout, bits: int) -> float:
    """A coalesced load in ``src`` and the cheapest shared-memory round trip into ``dst``."""
    return src.local_size / _run(src, bits) + best_round_trip(src, dst, bits)[0]
