"""Tensor-core fragment layouts (mma.sync, ldmatrix) as ordinary register layouts.

Each is a short :func:`~lowbit.layout.register.product` of primitives,
written from the PTX ISA's fragment tables (PTX ISA 8.x, section 9.7.14.5,
"Matrix Fragments for mma.m16n8k16 with floating point type", "... for
mma.m16n8k32", "... for mma.m16n8k64", "... for mma.m16n8k256"; and
section 9.7.14.5.15, "Warp-level matrix load instruction: ldmatrix").  With
``groupID = lane >> 2`` and ``threadID_in_group = lane % 4`` the tables say,
for the four m16n8kK shapes with e = 32 / element bits elements per 32-bit
register:

* A (16 x K, row): ``a_i`` is at row ``groupID + 8 * ((i // e) % 2)``,
  column ``threadID_in_group * e + i % e + (K / 2) * (i // (2e))``
  -> ``column_local(2, 2) x spatial(8, 4) x local(1, e)``;
* B (K x 8, col): ``b_i`` is at row ``threadID_in_group * e + i % e + (K / 2) * (i // e)``,
  column ``groupID`` -> ``local(2, 1) x column_spatial(4, 8) x local(e, 1)``;
* C/D (16 x 8): ``c_i`` at row ``groupID + 8 * (i // 2)``, column
  ``threadID_in_group * 2 + i % 2`` -> ``local(2, 1) x spatial(8, 4) x local(1, 2)``.

The tests type the ISA formulas independently and compare every (lane, slot).
Slots are the elements "low to high" across the fragment's registers, so
:class:`~lowbit.layout.subbyte.RegisterPacking` gives register and bit.
"""

from __future__ import annotations

from lowbit.errors import LayoutError
from lowbit.layout.register import (
    RegisterLayout,
    column_local,
    column_spatial,
    local,
    product,
    replicate,
    spatial,
)

#: mma.sync shapes lowbit uses -> element bits of A and B (PTX ISA 9.7.14.5):
#: m16n8k16 f16/bf16, m16n8k32 s8/u8/e4m3/e5m2, m16n8k64 s4/u4 (and e2m1), m16n8k256 b1.
MMA_SHAPES: dict[str, int] = {"m16n8k16": 16, "m16n8k32": 8, "m16n8k64": 4, "m16n8k256": 1}


def mma_fragment(shape: str, operand: str) -> RegisterLayout:
    """The warp-level layout of operand ``"A"``, ``"B"`` or ``"C"`` (also D) of ``mma.sync.<shape>.row.col``.

    A is M x K, B is K x N, C is M x N (logical coordinates, not memory).
    """
    if shape not in MMA_SHAPES:
        raise LayoutError(f"unknown mma shape {shape!r}; known: {sorted(MMA_SHAPES)}", shape)
    e = 32 // MMA_SHAPES[shape]
    if operand == "A":
        return product(column_local(2, 2), spatial(8, 4), local(1, e))
    if operand == "B":
        return product(local(2, 1), column_spatial(4, 8), local(e, 1))
    if operand in ("C", "D"):
        return product(local(2, 1), spatial(8, 4), local(1, 2))
    raise LayoutError(f"mma operand must be 'A', 'B', 'C' or 'D', got {operand!r}", operand)


def ldmatrix_fragment(num: int, trans: bool = False) -> RegisterLayout:
    """The destination layout of ``ldmatrix.sync.aligned.m8n8.x{num}[.trans].b16``.

    Matrix i of the ``num`` 8x8 b16 matrices is rows ``8i .. 8i+7`` of an
    ``(8 * num, 8)`` tile, in the coordinates of the matrix *as stored*
    (row r = the 16 bytes whose address lane ``8i + r`` supplies).  Without
    .trans lane l receives, in register i, row ``l >> 2``, columns
    ``2 (l % 4) + {0, 1}``; with .trans it receives column ``l >> 2``,
    rows ``2 (l % 4) + {0, 1}`` (PTX ISA 9.7.14.5.15, ldmatrix).
    """
    if num not in (1, 2, 4):
        raise LayoutError(f"ldmatrix loads 1, 2 or 4 matrices, got x{num}", num)
    if trans:
        return product(local(num, 1), column_spatial(4, 8), local(2, 1))
    return product(local(num, 1), spatial(8, 4), local(1, 2))


def block_fragment(shape: str, operand: str, warps: tuple[int, int], tiles: tuple[int, int]) -> RegisterLayout:
    """An mma operand over a whole block: ``warps = (warps along M, warps along N)``, warp id row-major.

    ``tiles`` = mma tiles per warp along the operand's two dimensions.  Warps
    that share an operand hold it replicated: A (M x K) is shared by the
    warps along N, B (K x N) by the warps along M.  E.g. a 64x64 C tile of
    2x2 warps, each 2x4 m16n8k16 tiles: ``block_fragment("m16n8k16", "C", (2, 2), (2, 4))``.
    """
    wm, wn = warps
    frag = mma_fragment(shape, operand)
    if operand == "A":
        outer = product(spatial(wm, 1), replicate(wn))
    elif operand == "B":
        outer = product(replicate(wm), spatial(1, wn))
    else:
        outer = spatial(wm, wn)
    return product(outer, local(*tiles), frag)


__all__ = ["MMA_SHAPES", "block_fragment", "ldmatrix_fragment", "mma_fragment"]
