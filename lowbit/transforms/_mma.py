"""Which tensor-core instruction a ``dot`` uses on a target, and the operand layouts that feed it.

:func:`plan` looks at a ``dot``'s operand dtypes and tile shapes, the block's
warps and the target table (:mod:`lowbit.arch`: which ``mma.sync`` forms a
target runs natively and which ptxas only emulates), and returns an
:class:`MmaPlan` -- or ``None``, and the FMA scheme is used:

* f16 -> ``m16n8k16`` with an f32 or an f16 accumulator; bf16 -> ``m16n8k16``
  with f32 only (PTX has no bf16 form with f16 C/D: an f16 accumulator is
  widened before and rounded after);
* 8-bit integers -> ``m16n8k32`` (s32); 4-bit -> ``m16n8k64`` where native
  (sm_80/86/89), else (sm_90: 2 IMMA.S8 + ~90 LOP3 per instruction) widened
  to 8 bits and ``m16n8k32`` -- exact; any other integer of at most 8 bits is
  widened to 8 bits the same way;
* e4m3/e5m2 -> ``m16n8k32`` on sm_89; where ptxas emulates it (sm_90)
  converted to f16 (exact) and ``m16n8k16``;
* 1-bit codes -> ``m16n8k256`` ``.and.popc`` (a product of bits is their
  AND, for uint1 and for int1's {0, -1} alike); bipolar1 ({-1, +1}: a
  product is ``1 - 2 (a xor b)``) -> ``.xor.popc`` where the target runs it
  natively, else ``.and.popc`` with the identity ``popc(a xor b) = popc(a) +
  popc(b) - 2 popc(a and b)`` (the row and column popcounts are two more
  ``.and.popc`` with an all-ones operand); wider bipolar codes are odd
  integers, widened to int8 (bipolar8's +-255 does not fit: FMA).

Warps tile the block's C: ``(wm, wn)`` warps along M and N (as square a
per-warp tile as the shape allows), each owning ``tm x tn`` mma tiles, K in
``tk`` steps; the layouts are :func:`lowbit.layout.fragments.block_fragment`
of the PTX fragment tables, replicated over warps a tile does not fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lowbit.arch import Support, target
from lowbit.dtypes import DType, dtype
from lowbit.layout import register as R
from lowbit.layout.fragments import block_fragment
from lowbit.layout.register import RegisterLayout

__all__ = ["MmaPlan", "interleave_n", "plan", "plan_of_inst"]


@dataclass(frozen=True)
class MmaPlan:
    """One ``dot``'s tensor-core instruction, warp grid and operand layouts."""

    shape: str  # "m16n8k16"
    ab: DType  # the operand dtype the instruction reads (after any widening/conversion)
    acc: DType  # the accumulator dtype of the instruction (f32, f16, int32)
    warps: tuple[int, int]  # warps along M, N
    rep: int  # warps that replicate the whole grid (when the tile is too small for every warp)
    tiles: tuple[int, int, int]  # mma tiles per warp along M, N, and K steps
    a: RegisterLayout
    b: RegisterLayout
    c: RegisterLayout
    #: C with its slots in the instruction's order (tiles, then fragment registers); ``c`` may order them
    #: differently (interleaved 32-bit accumulators: a thread's adjacent columns in adjacent slots)
    c_inst: RegisterLayout | None = None

    @property
    def kk(self) -> int:
        return int(self.shape.split("k")[1])

    @property
    def inst(self) -> str:
        """The attribute written on the selected ``dot``: ``mma.<shape>.<acc>.<ab>``."""
        return f"mma.{self.shape}.{self.acc.name}.{self.ab.name}"


def _native(tgt, feature: str) -> bool:  # noqa: ANN001
    return tgt.feature(feature).support is Support.NATIVE


def _instruction(a: DType, c: DType, arch: str) -> tuple[str, DType, DType] | None:
    """(mma shape, operand dtype fed to it, accumulator dtype) for ``a``-typed operands, or None."""
    tgt = target(arch)
    f16, f32, i32 = dtype("f16"), dtype("f32"), dtype("int32")
    if a.name == "f16":
        return "m16n8k16", a, (f16 if c.name == "f16" else f32)
    if a.name == "bf16":
        return "m16n8k16", a, f32
    if a.name in ("e4m3fn", "e5m2"):
        feat = f"mma.m16n8k32.{'e4m3' if a.name == 'e4m3fn' else 'e5m2'}"
        if _native(tgt, feat):
            return "m16n8k32", a, f32
        return "m16n8k16", f16, f32  # every e4m3/e5m2 value is an f16 value
    if not a.is_int or a.bits > 8:
        return None
    if a.name.startswith("bipolar"):
        if a.bits == 1:  # products are 1 - 2 (a xor b): xor.popc, or and.popc with row/column popcounts
            ok = _native(tgt, "mma.m16n8k256.b1.xor") or tgt.supports("mma.m16n8k256.b1.and")
            return ("m16n8k256", a, i32) if ok else None
        if a.bits == 8:
            return None  # odd values up to 255: no 8-bit integer holds them
        return "m16n8k32", dtype("int8"), i32
    if a.bits == 1:
        return ("m16n8k256", a, i32) if tgt.supports("mma.m16n8k256.b1.and") else None
    if a.bits == 4 and a.name in ("int4", "uint4") and _native(tgt, f"mma.m16n8k64.{'s4' if a.is_signed else 'u4'}"):
        return "m16n8k64", a, i32
    # every integer of at most 8 bits is exactly an int8 (signed, or unsigned of at most 7 bits) or a uint8
    wide = dtype("uint8") if (not a.is_signed and a.bits == 8) else dtype("int8")
    return "m16n8k32", wide, i32


def _warp_grid(m: int, n: int, warps: int) -> tuple[int, int, int] | None:
    """(wm, wn, rep): warps along M and N (wm*16 | m, wn*8 | n) and replicas, as square per-warp tiles as fit."""
    best = None
    for rep in (1, 2, 4, 8, 16, 32):
        if warps % rep:
            continue
        w = warps // rep
        for wm in (1, 2, 4, 8, 16, 32):
            if w % wm:
                continue
            wn = w // wm
            if m % (16 * wm) or n % (8 * wn):
                continue
            aspect = abs(math.log2((m / wm) / (n / wn)))
            key = (rep, aspect, -wn)
            if best is None or key < best[0]:
                best = (key, (wm, wn, rep))
        if best is not None:
            return best[1]
    return None


def interleave_n(lay: RegisterLayout, rows: int, wn: int, tn: int) -> RegisterLayout:
    """``lay`` with each warp's N columns interleaved: the column of mma tile ``t``, in-tile column ``c`` of
    warp ``w`` becomes ``w * 8 tn + c * tn + t`` -- the same registers (a reshape, a permute and a reshape of
    the layout), so a thread's columns of its ``tn`` tiles are adjacent.  Applied to B and C alike it renames
    the dot's N consistently, so the instruction sequence is unchanged."""
    from lowbit.transforms._layout_rules import reshape_layout  # noqa: PLC0415

    n = wn * tn * 8
    split = reshape_layout(lay, (rows, n), (rows, wn, tn, 8))
    if split is None:
        raise ValueError(f"cannot split the N columns of {lay} as {wn} x {tn} x 8")
    out = reshape_layout(R.permute(split, (0, 1, 3, 2)), (rows, wn, 8, tn), (rows, n))
    assert out is not None  # noqa: S101 - merging dimensions always has a layout
    return out


def _n_innermost_slots(lay: RegisterLayout) -> RegisterLayout:
    """``lay`` with its innermost N mode (an interleaved C's tile index) as the innermost slot digit."""
    nid = len(lay.modes[0]) + len(lay.modes[1]) - 1
    if nid not in lay.local:
        return lay
    return RegisterLayout(lay.modes, lay.spatial, tuple(e for e in lay.local if e != nid) + (nid,))


def slot_order(inst: RegisterLayout, actual: RegisterLayout) -> list[int]:
    """For each slot of ``inst``, the slot of ``actual`` that holds the same element (same threads' tables)."""
    from lowbit.transforms._layout_maps import local_table, spatial_table  # noqa: PLC0415

    if not (spatial_table(inst) == spatial_table(actual)).all():
        raise ValueError(f"{inst} and {actual} distribute the tile over the threads differently")
    where = {tuple(row): i for i, row in enumerate(local_table(actual).tolist())}
    return [where[tuple(row)] for row in local_table(inst).tolist()]


def plan(a: DType, b: DType, c: DType, shape_a: tuple[int, int], shape_b: tuple[int, int], warps: int,
         arch: str, interleave: bool = False) -> MmaPlan | None:  # fmt: skip
    """The tensor-core plan of ``dot(a [M, K], b [K, N], c)`` over ``warps`` warps on ``arch``, or None (FMA).

    ``interleave``: B and C with each warp's N columns interleaved (:func:`interleave_n`)."""
    if a != b:
        return None
    inst = _instruction(a, c, arch)
    if inst is None:
        return None
    shape, ab, acc = inst
    (m, k), (_, n) = shape_a, shape_b
    kk = int(shape.split("k")[1])
    if k % kk:
        return None
    grid = _warp_grid(m, n, warps)
    if grid is None:
        return None
    wm, wn, rep = grid
    tm, tn, tk = m // (16 * wm), n // (8 * wn), k // kk
    la = block_fragment(shape, "A", (wm, wn), (tm, tk))
    lb = block_fragment(shape, "B", (wm, wn), (tk, tn))
    lc = block_fragment(shape, "C", (wm, wn), (tm, tn))
    lc_inst = lc
    if interleave and tn > 1:
        lb, lc_inst = interleave_n(lb, k, wn, tn), interleave_n(lc, m, wn, tn)
        # 32-bit accumulators: the thread's adjacent columns in adjacent slots (wide stores, f16x2 casts of
        # neighbours); an f16 accumulator keeps the instruction's register pairs
        lc = _n_innermost_slots(lc_inst) if acc.bits == 32 else lc_inst
    else:
        lc = lc_inst
    if rep > 1:
        la, lb, lc, lc_inst = (R.product(R.replicate(rep, 2), x) for x in (la, lb, lc, lc_inst))
    return MmaPlan(shape, ab, acc, (wm, wn), rep, (tm, tn, tk), la, lb, lc, lc_inst)


def plan_of_inst(inst: str, a: DType, c: DType, shape_a: tuple[int, int], shape_b: tuple[int, int], warps: int,
                 arch: str, interleave: bool = False) -> MmaPlan:  # fmt: skip
    """The plan a selected ``dot`` (``inst``) was made with (recomputed; it is a pure function)."""
    p = plan(a, a, c, shape_a, shape_b, warps, arch, interleave)
    if p is None or p.inst != inst:
        raise ValueError(f"dot {inst} does not match the plan for {a.name} on {arch}")
    return p
