"""The packed register model: a lowered tile's slots as one register each, or as bits packed in 32-bit words.

A :class:`Tile` is the per-thread part of a register tile under its
layout: ``layout.local_size`` slots.  It exists in one or both of two forms:

* **scalars** -- one SIMT register per slot, in the element's register form
  (:func:`lowbit.transforms._values.reg_type`: normalised i32 for small
  integers, the code for small floats, f16/bf16/f32/f64, pred for bool);
* **words** -- the slots' bit patterns packed LSB-first, slot ``j`` at bits
  ``[j*b, (j+1)*b)`` of the concatenated i32 words (``b`` = element bits).
  This is how a vector load delivers a contiguous run, how an ``f16x2``
  instruction sees two slots, how eight uint4 codes share one register,
  and -- because a ``view`` keeps every bit where it is -- why a view whose
  source and result group their slots alike is no instruction at all.

Conversions (:func:`scalars`, :func:`words`) are emitted on first use in a
scope and cached there by the lowering context.
"""

from __future__ import annotations

import math

from lowbit.dtypes import DType
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt.types import I32, I64, PRED, ScalarType
from lowbit.ir.types import is_bool
from lowbit.layout.register import RegisterLayout
from lowbit.transforms import _values as vals

__all__ = ["Tile", "full_words", "scalars", "word_count", "words"]


class Tile:
    """A lowered register tile: dtype, layout, and its defining form (``scal`` or ``wrds``)."""

    __slots__ = ("dtype", "layout", "scal", "wrds", "gath", "planes")

    def __init__(self, dtype: DType, layout: RegisterLayout, scal: list[Operand] | None = None,
                 wrds: list[Operand] | None = None) -> None:  # fmt: skip
        if (scal is None) == (wrds is None):
            raise ValueError("a tile is defined by exactly one form")
        self.dtype, self.layout, self.scal, self.wrds = dtype, layout, scal, wrds
        #: where each slot's bits sit in source words (a gathering view's codes): lets a cast read them in pairs
        self.gath = None
        #: integer codes composed of bit planes (``or`` of shifted gathering views): [(Gathered, bit offset, width)]
        self.planes = None
        n = layout.local_size
        if scal is not None and len(scal) != n:
            raise ValueError(f"{len(scal)} scalars for {n} slots")
        if wrds is not None and len(wrds) != word_count(dtype, n):
            raise ValueError(f"{len(wrds)} words for {n} slots of {dtype.name}")

    @property
    def slots(self) -> int:
        return self.layout.local_size

    @property
    def bits(self) -> int:
        return self.dtype.bits

    def __repr__(self) -> str:
        form = "scalars" if self.scal is not None else "words"
        return f"Tile({self.dtype.name}, {self.layout.to_text()}, {form})"


def packable(dt: DType) -> bool:
    """Whether ``dt`` has a words form (every dtype but bool)."""
    return not is_bool(dt)


def word_count(dt: DType, slots: int) -> int:
    return math.ceil(slots * dt.bits / 32)


def _extract(ctx, ws: list[Operand], j: int, bits: int) -> Operand:  # noqa: ANN001 - Ctx (cycle)
    """The zero-extended code of slot ``j`` (i32 for <= 32 bits, i64 above)."""
    b = ctx.b
    o = j * bits
    w, sh = divmod(o, 32)
    if bits == 64:
        lo, hi = b.cast("zext", ws[w], I64), b.cast("zext", ws[w + 1], I64)
        return b.binary("or", lo, b.binary("shl", hi, Const(32, I64)))
    if bits == 32:
        return ws[w]
    v = ws[w] if sh == 0 else b.binary("lshr", ws[w], Const(sh, I32), "x")
    if sh + bits > 32:  # straddles into the next word
        v = b.binary("or", v, b.binary("shl", ws[w + 1], Const(32 - sh, I32), "x"), "x")
    if sh + bits < 32 or sh + bits > 32:
        v = b.binary("and", v, Const((1 << bits) - 1, I32), "x")
    return v


def scalars(ctx, t: Tile) -> list[Operand]:  # noqa: ANN001
    """The tile's scalar form (computed from its words once per scope)."""
    if t.scal is not None:
        return t.scal
    key = ("scalars", id(t))
    got = ctx.find(key)
    if got is None:
        got = [vals.from_code(ctx.b, _extract(ctx, t.wrds, j, t.bits), t.dtype) for j in range(t.slots)]
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def words(ctx, t: Tile) -> list[Operand]:  # noqa: ANN001
    """The tile's words form (packed from its scalars once per scope)."""
    if t.wrds is not None:
        return t.wrds
    key = ("words", id(t))
    got = ctx.find(key)
    if got is None:
        got = _pack(ctx, t.scal, t.dtype)
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _pack(ctx, scal: list[Operand], dt: DType) -> list[Operand]:  # noqa: ANN001
    b, bits = ctx.b, dt.bits
    codes = [vals.code_of(b, r, dt, bits > 32) for r in scal]
    if bits == 64:
        out = []
        for c in codes:
            out.append(b.cast("trunc", c, I32))
            out.append(b.cast("trunc", b.binary("lshr", c, Const(32, I64)), I32))
        return out
    n = word_count(dt, len(codes))
    acc: list[Operand | None] = [None] * n
    for j, c in enumerate(codes):
        w, sh = divmod(j * bits, 32)
        parts = [(w, c if sh == 0 else b.binary("shl", c, Const(sh, I32), "pk"))]
        if sh + bits > 32:
            parts.append((w + 1, b.binary("lshr", c, Const(32 - sh, I32), "pk")))
        for i, p in parts:
            acc[i] = p if acc[i] is None else b.binary("or", acc[i], p, "pk")
    return [a if a is not None else Const(0, I32) for a in acc]


def full_words(value: Operand | int, dt: DType, slots: int) -> list[Operand]:
    """The words form of ``slots`` copies of a constant code (an int) -- no instructions."""
    if not isinstance(value, int):
        raise TypeError("full_words takes a constant code")
    bits = dt.bits
    stream = 0
    for j in range(slots):
        stream |= (value & ((1 << bits) - 1)) << (j * bits)
    return [Const((stream >> (32 * i)) & 0xFFFFFFFF, I32) for i in range(word_count(dt, slots))]


def scalar_type(dt: DType) -> ScalarType:
    return PRED if is_bool(dt) else vals.reg_type(dt)


def make(dt: DType, layout: RegisterLayout, scal: list[Operand] | None = None, wrds: list[Operand] | None = None) -> Tile:
    return Tile(dt, layout, scal, wrds)
