"""Weight codes to f16/bf16 two at a time: byte permutes, magic exponents and packed arithmetic.

One generator serves every integer format of 1-8 bits and every float
format of at most 8 bits, for a ``dequant`` (codes, optional zero and scale,
see :class:`lowbit.ir.ops.Dequant`) and for a plain ``cast`` of codes.  It
works on *pairs* of result slots: the two halves of one f16x2/bf16x2
register, whose codes the layout put in the thread's words at known bit
positions (the same in every thread, or a per-thread byte with the same
bit offset inside it: a gathering view's B fragments).

**Getting a pair into one register.**  Each code needs its own byte at its
own place: ``prmt`` assembles the two halves from the bytes of at most two
source registers, each the code's word shifted (once per word and shift,
shared by every pair that needs it) so that the code lands where the next
step wants it inside its byte.

**Kernel order** (layout 3: the two codes of a pair at bits ``s`` and
``s + 16`` of one word of each bit plane) needs no ``prmt``: each plane's
word, shifted so that the bits land where the half wants them (once per word
and amount, shared by the pairs of that word), is both halves at once, and
one ``lop3`` a plane merges it.  Integers choose the code's bit offset per
pair over the whole tile for the fewest shifts and zero constants; a float
plane whose bits go to non-adjacent fields (sign, top exponent bit) is
respaced once per word so that it too takes one shift and one ``lop3``.

**Integers** (code ``c``, ``B`` bits; ``o = 2**(B-1)`` for signed codes,
whose sign bit is flipped on the way in, else 0).  ``lop3`` keeps each
half's code bits and ORs in the magic exponent: the half *is* the value
``M + (c + o) * 2**q`` exactly (f16: ``M = 1024``, bits ``0x6400``, codes of
up to 10 bits fit; bf16: ``M = 128``, ``0x4300``, up to 7 bits).  One
``fma`` with per-half constants ``2**-q`` and ``-(M * 2**-q + o + z)``
leaves ``c - z``: exact, since every operand and the result are integers
below ``2 M`` (or power-of-two multiples of them).  The zero's constant is
made once per zero register: ``M + z + o`` is again a magic number, built
with integer instructions (no conversion), then subtracted from a
constant.  One ``mul`` by the scale pair rounds ``(c - z) * s`` once:
bit-identical to the f32 chain, whose product is exact in f32.  8-bit
codes into f16 take the magic byte straight from ``prmt``; into bf16 (no
bf16 magic holds 8 bits) each code goes through the f32 magic ``0x4B4000cc``
(:func:`_f32_magic`: prmt, f32 sub, one rounding pack per pair -- no
integer-to-float conversion).

**Floats** ``eXmY``.  The code's exponent and mantissa bits are moved into
the f16/bf16 exponent and mantissa fields (the mantissa's top aligned) and
its sign to bit 15: that pattern is the code's value times ``2**k`` (``k``
the difference of the biases) for every code -- subnormal codes become
subnormal halves with the same ratio.  Whether that holds for *every* code
of a format (NaN and infinity codes included) is checked on the format's
table, not assumed; one ``mul`` by ``2**-k`` (times the element factor)
restores the value exactly, one ``mul`` by the scale rounds once.  Into f16 on
targets with a packed ``cvt.rn.f16x2.<f>x2`` (FP8 from sm_89, FP4/FP6 on
sm_100a/sm_120a) the hardware form competes: the pair's codes moved into the
cvt's operand, one ``cvt`` (the exact value), the op's factor as one ``mul``;
the form with fewer instructions for the tile wins
(:mod:`~lowbit.transforms._dequant_floats` states the rule).

Everything else -- widths that straddle words, codebooks, formats whose
codes do not map, zeros or scales of another dtype -- computes the f32
chain slot by slot, which is what the op means.

**Where the pieces live.**  This module is the entry (:func:`lower_dequant`,
:func:`fast_cast`: which form applies, the scale multiply, the f32 chain);
:mod:`~lowbit.transforms._dequant_pairs` says where codes sit and gets a
pair into one register; :mod:`~lowbit.transforms._dequant_planes` merges
bit planes; :mod:`~lowbit.transforms._dequant_ints` and
:mod:`~lowbit.transforms._dequant_floats` generate the integer and float
forms; codebooks are :mod:`~lowbit.transforms._lower_codebook`.
"""

from __future__ import annotations

from lowbit.dtypes import DType
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import F32, I32
from lowbit.transforms import _values as vals
from lowbit.transforms._tiles import scalars
from lowbit.transforms._dequant_pairs import _F32, _H2, Gathered, _i32, _mul, _scale_pairs, _static_positions
from lowbit.transforms._dequant_ints import _f32_forms, _f32_magic, _factor_exact, _int_ok, _int_pairs
from lowbit.transforms._dequant_floats import float_pairs

__all__ = ["Gathered", "fast_cast", "lower_dequant"]


# ----------------------------------------------------------------------------------------------- entry points


def _fast(ctx, codes, zero, scale, dst: str, factor: float) -> list[Operand] | None:  # noqa: ANN001
    if codes.slots < 2:
        return None
    pos = getattr(codes, "gath", None) or _static_positions(codes) or getattr(codes, "planes", None)
    if pos is None:
        return None
    if isinstance(pos, list):
        if sum(w for _, _, w in pos) != codes.dtype.bits:
            return None
        if len(pos) == 1 and pos[0][1] == 0:
            pos = pos[0][0]  # one plane: the codes' own gathering view
    if scale is not None and scale.dtype.name != dst:
        return None
    src = codes.dtype
    if not _int_ok(src, dst, zero.dtype if zero is not None else None) and (
            forms := _f32_forms(src, dst, zero.dtype if zero is not None else None, float(factor))):
        return _f32_magic(ctx, codes, pos, zero, scale, dst, forms[0])  # 8-bit codes into bf16: the f32 magic
    if _int_ok(src, dst, zero.dtype if zero is not None else None):
        if zero is not None and factor != 1.0:
            return None
        if factor != 1.0 and not _factor_exact(src, dst, factor):
            return None
        pairs = _int_pairs(ctx, codes, pos, dst, scalars(ctx, zero) if zero is not None else None, factor)
    elif zero is None:  # floats: the bit path or the hardware cvt (lowbit.transforms._dequant_floats)
        pairs = float_pairs(ctx, codes, pos, dst, float(factor))
    else:
        return None
    if pairs is None:
        return None
    if scale is not None:
        pairs = [_mul(ctx, r, s, dst) for r, s in zip(pairs, _scale_pairs(ctx, scale, dst))]
    return [_i32(ctx, r) for r in pairs]


def fast_cast(ctx, tile, dst: DType) -> list[Operand] | None:  # noqa: ANN001
    """The result words of ``cast(codes, dst)`` for f16/bf16, two codes per instruction; None when no fast form."""
    if dst.name not in _H2:
        return None
    return _fast(ctx, tile, None, None, dst.name, 1.0)


class F32Tail:
    """The f32 chain's steps after the codes' value, per slot: ``- f32(zero)``, ``* f32(scale)`` (each zero or
    scale register converted once), and the pairwise rounding to f16x2/bf16x2 words."""

    def __init__(self, ctx, zero, scale) -> None:  # noqa: ANN001
        self.b = ctx.b
        self.zero, self.scale = zero, scale
        self.zs = scalars(ctx, zero) if zero is not None else None
        self.ss = scalars(ctx, scale) if scale is not None else None
        self.memo: dict[tuple[int, str], Operand] = {}

    def f32(self, r: Operand, dt: DType, tag: str) -> Operand:
        key = (id(r), tag)
        if key not in self.memo:
            self.memo[key] = vals.convert(self.b, r, dt, _F32)
        return self.memo[key]

    def finish(self, v: Operand, i: int) -> Operand:
        """Slot ``i``'s f32 value ``v`` minus its zero, times its scale."""
        if self.zs is not None:
            v = vals.binary(self.b, "sub", v, self.f32(self.zs[i], self.zero.dtype, "z"), _F32)
        if self.ss is not None:
            v = vals.binary(self.b, "mul", v, self.f32(self.ss[i], self.scale.dtype, "s"), _F32)
        return v

    def pack(self, res: list[Operand], dst: str) -> list[Operand]:
        """The f32 values rounded two at a time into ``dst`` words (an odd last slot pairs with 0)."""
        kind = "f16x2.rn" if dst == "f16" else "bf16x2.rn"
        out = []
        for i in range(0, len(res), 2):
            hi = res[i + 1] if i + 1 < len(res) else Const(0.0, F32)
            out.append(self.b.cast("bitcast", self.b.op(S.CvtPack, _H2[dst], kind, res[i], hi, hint="cv"), I32, "w"))
        return out


def _general(ctx, op, codes, zero, scale, dst: DType) -> list[Operand]:  # noqa: ANN001
    """The f32 chain, slot by slot (what the op means), rounded in pairs to the result dtype."""
    tail = F32Tail(ctx, zero, scale)
    res = []
    for i, c in enumerate(scalars(ctx, codes)):
        v = tail.f32(c, codes.dtype, "c")
        if op.factor != 1.0:
            v = vals.binary(ctx.b, "mul", v, Const(float(op.factor), F32), _F32)
        res.append(tail.finish(v, i))
    return tail.pack(res, dst.name)


def lower_dequant(ctx, op) -> list[Operand]:  # noqa: ANN001
    """The result words of a ``dequant``: the packed forms where they apply, else the f32 chain."""
    codes = ctx.tile(op.codes, op)
    zero = ctx.tile(op.zero, op) if op.zero is not None else None
    scale = ctx.tile(op.scale, op) if op.scale is not None else None
    dst = op.result.type.dtype
    if op.table is not None or op.lookup:  # codebook codes with a pair or register table (transforms._lower_codebook)
        from lowbit.transforms._lower_codebook import lower_table  # noqa: PLC0415

        got = lower_table(ctx, op, codes, zero, scale)
        if got is not None:
            return got
    fast = _fast(ctx, codes, zero, scale, dst.name, float(op.factor))
    return fast if fast is not None else _general(ctx, op, codes, zero, scale, dst)
