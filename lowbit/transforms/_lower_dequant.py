"""Integer codes to f16 two at a time: byte permutes and magic exponents instead of one conversion per code.

A code ``c`` of at most 8 bits placed in the low mantissa bits of an f16
whose exponent says 1024 (bits ``0x6400 | c << q``) *is* the value
``1024 + c * 2**q``, exactly; one ``fma.rn.f16x2`` with per-half constants
``(2**-q, -(1024 * 2**-q + o))`` then leaves ``c - o`` in each half --
exact too, since every step is a power-of-two scaling or a difference of
integers below 2048 (``o`` is the code offset: 0 for unsigned codes,
``2**(B-1)`` for signed ones, whose sign bit is flipped on the way in).

The lowering of a ``cast`` from a B-bit integer (B in 1, 2, 4, 8) to f16
uses it for every pair of result slots whose two codes lie in one byte of
one source word -- which is every pair of a tile viewed from words in
``lowbit.pack`` order, and of a gathering view's B fragments (the byte then
depends on the thread: the ``prmt`` selector is computed once per thread):

* B = 8: ``prmt`` picks the two code bytes and the magic byte 0x64 above each
  (``[c0, 0x64, c1, 0x64]``), one ``sub.f16x2`` (``fma``) removes 1024;
* B < 8: ``prmt`` copies the byte into both halves under the magic byte,
  one ``lop3`` keeps each half's code bits (and flips the sign bits of
  signed codes in the same instruction), one ``fma.f16x2`` scales and
  removes the offsets.

Three instructions per two codes instead of an extract, a shift and a
``cvt`` per code.  Bit-identical to the VM's cast (the differential tests
compare every code).
"""

from __future__ import annotations

import numpy as np

from lowbit.dtypes import DType, IntType
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import F16, I32, VectorType

__all__ = ["Gathered", "fast_codes_to_f16"]

_H2 = VectorType(F16, 2)
MAGIC_BYTE = 0x64  # the high byte of 0x6400: f16 exponent field 25 -> 2**10 = 1024


class Gathered:
    """Where a tile's codes sit: per slot, the word register, the shift of its bits, and that shift per thread."""

    __slots__ = ("slots",)

    def __init__(self, slots: list[tuple[Operand, Operand, np.ndarray]]) -> None:
        self.slots = slots


def _static_positions(ctx, tile) -> Gathered | None:  # noqa: ANN001
    """The positions of a words-form tile's slots (the same in every thread)."""
    if tile.wrds is None:
        return None
    bits = tile.dtype.bits
    out = []
    for j in range(tile.slots):
        w, sh = divmod(j * bits, 32)
        if sh + bits > 32:
            return None  # straddles two words
        out.append((tile.wrds[w], Const(sh, I32), np.full(1, sh)))
    return Gathered(out)


def _selector(ctx, shift: Operand, lo_byte: int, hi_byte_delta: int) -> Operand:  # noqa: ANN001
    """``prmt`` selector ``[j, 4, j + d, 4]`` for the byte ``j = shift / 8 + lo_byte`` (4: the magic byte of b)."""
    b = ctx.b
    if isinstance(shift, Const):
        j = shift.value // 8 + lo_byte
        return Const(j | 4 << 4 | (j + hi_byte_delta) << 8 | 4 << 12, I32)
    key = ("prmt_sel", id(shift), lo_byte, hi_byte_delta)
    got = ctx.find(key)
    if got is None:
        j = b.binary("lshr", shift, Const(3, I32), "pj")
        if lo_byte:
            j = b.binary("add", j, Const(lo_byte, I32), "pj")
        got = b.binary("or", b.binary("or", j, b.binary("shl", j, Const(8, I32), "pj"), "pj"),
                       Const(4 << 4 | hi_byte_delta << 8 | 4 << 12, I32), "psel")  # fmt: skip
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _pair_const(ctx, lo: float, hi: float) -> Operand:  # noqa: ANN001
    key = ("h2const", lo, hi)
    got = ctx.find(key)
    if got is None:
        got = ctx.b.op(S.Pack, _H2, (Const(lo, F16), Const(hi, F16)), hint="k2")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def fast_codes_to_f16(ctx, tile, dst: DType) -> list[Operand] | None:  # noqa: ANN001
    """The f16 result's words for a cast of integer codes, or None when the fast form does not apply."""
    src = tile.dtype
    if dst.name != "f16" or not isinstance(src, IntType) or src.bits not in (1, 2, 4, 8) or tile.slots < 2:
        return None  # bipolar codes (is_int, but code c means 2c - (2**B - 1)) take the general path
    pos = getattr(tile, "gath", None) or _static_positions(ctx, tile)
    if pos is None:
        return None
    B, n = src.bits, tile.slots
    signed = src.is_signed
    offset = (1 << (B - 1)) if signed else 0
    b = ctx.b
    magic_word = Const(0x64646464, I32)
    out = []
    for m in range(0, n, 2):
        (w0, sh0, p0), (w1, sh1, p1) = pos.slots[m], pos.slots[m + 1] if m + 1 < n else pos.slots[m]
        if w0 is not w1 and not (isinstance(w0, Const) and isinstance(w1, Const) and w0.value == w1.value):
            return None
        if m + 1 >= n:
            p1 = p0 + B  # a lone last code: its partner lane is don't-care; take the next bits
        d = np.unique(np.asarray(p1) - np.asarray(p0))
        q0 = np.unique(np.asarray(p0) % 8)
        if len(d) != 1 or len(q0) != 1:
            return None
        q0, d = int(q0[0]), int(d[0])
        if B == 8:
            if d != 8 or q0 != 0 or np.any(np.asarray(p0) % 32 > 16):
                return None  # two consecutive bytes of one word
            sel = _selector(ctx, sh0, 0, 1)
            x = b.op(S.Prmt, I32, w0, magic_word, sel, hint="dq")
            if signed:  # flip the sign bits: c ^ 0x80 = v + 128
                x = b.binary("xor", x, Const(0x00800080, I32), "dq")
            r = b.binary("fsub", b.cast("bitcast", x, _H2, "dq"), _pair_const(ctx, 1024.0 + offset, 1024.0 + offset), "dq")
        else:
            q1 = q0 + d
            if not (0 <= q1 and q1 + B <= 8):
                return None  # the pair is not inside one byte
            sel = _selector(ctx, sh0, 0, 0)
            x = b.op(S.Prmt, I32, w0, magic_word, sel, hint="dq")
            mask = ((1 << B) - 1) << q0 | (((1 << B) - 1) << q1) << 16
            keep = mask | 0xFF00FF00
            if signed:
                flip = (1 << (q0 + B - 1)) | (1 << (q1 + B - 1)) << 16
                # lop3(x, keep, flip) = (x & keep) ^ flip: f(a, b, c) = (a & b) ^ c, lut (0xF0 & 0xCC) ^ 0xAA = 0x6A
                x = b.lop3(x, Const(keep, I32), Const(flip, I32), 0x6A, hint="dq")
            else:
                x = b.binary("and", x, Const(keep, I32), "dq")
            s0, s1 = 2.0 ** -q0, 2.0 ** -q1
            r = b.fma(b.cast("bitcast", x, _H2, "dq"), _pair_const(ctx, s0, s1),
                      _pair_const(ctx, -(1024.0 * s0 + offset), -(1024.0 * s1 + offset)), "dq")  # fmt: skip
        out.append(b.cast("bitcast", r, I32, "w"))
    return out
