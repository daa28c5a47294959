"""The semantics tables of lowbit's VM: one definition, shared by everyone.

The interpreter (``lowbit.interp``), the later VM→SIMT lowering and the
format codecs must agree on what ``a // b`` means for negative ``a``, what
an int32 overflow gives and what a float→int cast does with 1e10.  This
module is that agreement, written as pure-Python scalar functions (the
*law*); the interpreter vectorises them with numpy and its tests check the
vector versions against these.  Everything follows C / PTX, not Python:

=====================  ==========================================================
operation              meaning
=====================  ==========================================================
``a // b`` (ints)      quotient truncated toward zero (``div.s32``): -7 // 2 == -3
``a % b``  (ints)      remainder with the sign of ``a`` (``rem.s32``): -7 % 2 == -1
division by zero       int: an error in the interpreter (undefined on the GPU);
                       float: IEEE (±inf / NaN)
int arithmetic         wraps modulo 2**bits (two's complement): int32 max + 1 == int32 min
shifts                 shift amount taken modulo the width is *not* done: an amount
                       >= bits gives 0 (logical) or the sign fill (arithmetic ``>>``
                       of a signed value), as PTX ``shl``/``shr`` clamp
float → int cast       truncate toward zero, then clip to the target range; NaN → 0
                       (PTX ``cvt.rzi.sat``)
int → int cast         keep the low ``bits`` bits (wrap), sign per the target type
float → float cast     round to nearest even; overflow → ±inf for IEEE types (f32→f16);
                       to a float of at most 8 bits: the format's
                       ``encode(x, saturate=True)``
``lowbit.round(x, m)`` explicit rounding of a float to an integral float:
                       ``rn`` (nearest even), ``rz`` (toward zero), ``rd`` (floor),
                       ``ru`` (ceil)
addresses              int64
=====================  ==========================================================

Type promotion for binary ops (:func:`promote`) is the table in
``docs/dsl.md``; in short: equal types stay; two different integer types of
at most 16 bits give int32; otherwise the widest integer wins, unsigned if an
operand of that width is unsigned (C's rule); floats promote to the wider of
f16/bf16/f32 (f16 with bf16 gives f32); an integer never silently meets a float
and formats of at most 8 bits (fp8, fp4, codebooks) take no arithmetic: cast
them first.
"""

from __future__ import annotations

import math
import struct

from lowbit.dtypes import DType, dtype
from lowbit.errors import IRError

__all__ = [
    "ARITH_FLOATS",
    "float_to_int",
    "promote",
    "round_f32",
    "shift_left",
    "shift_right",
    "trunc_div",
    "trunc_mod",
    "wrap_int",
]

#: Float types that take arithmetic (everything narrower is storage-only).
ARITH_FLOATS = ("f16", "bf16", "f32", "f64")


def wrap_int(value: int, bits: int, signed: bool) -> int:
    """``value`` reduced modulo ``2**bits`` into the signed or unsigned range."""
    mask = (1 << bits) - 1
    v = int(value) & mask
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def trunc_div(a: int, b: int) -> int:
    """Integer quotient rounded toward zero (C, PTX ``div``); ``b != 0``."""
    if b == 0:
        raise IRError("integer division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def trunc_mod(a: int, b: int) -> int:
    """Remainder of :func:`trunc_div`: ``a == b * trunc_div(a, b) + trunc_mod(a, b)``."""
    return a - b * trunc_div(a, b)


def shift_left(a: int, n: int, bits: int, signed: bool) -> int:
    """``a << n`` in a ``bits``-wide register; amounts >= bits give 0 (PTX ``shl`` clamps)."""
    if n < 0 or n >= bits:
        return 0
    return wrap_int(a << n, bits, signed)


def shift_right(a: int, n: int, bits: int, signed: bool) -> int:
    """``a >> n``: arithmetic for signed types, logical for unsigned; amounts clamp at ``bits``."""
    if n < 0 or n >= bits:
        return -1 if (signed and a < 0) else 0
    return wrap_int(a >> n, bits, signed)


def float_to_int(x: float, bits: int, signed: bool) -> int:
    """PTX ``cvt.rzi.sat``: truncate toward zero, clip to the range, NaN → 0."""
    if math.isnan(x):
        return 0
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if math.isinf(x):
        return hi if x > 0 else lo
    return max(lo, min(hi, int(x)))


def round_f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even); overflow gives ±inf."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _float_rank(t: DType) -> int:
    return {"f16": 1, "bf16": 1, "f32": 2, "f64": 3}.get(t.name, 0)


def promote(a: DType, b: DType) -> DType:
    """The result type of a binary arithmetic op on operands of types ``a`` and ``b``.

    Raises :class:`IRError` when the pair does not promote (int with float,
    a format of at most 8 bits that is not an integer, bool with a number).
    """
    if a == b:
        return a
    if a.name == "bool" or b.name == "bool":
        raise IRError(f"cannot combine {a.name} and {b.name}: bool only combines with bool")
    if a.is_int and b.is_int:
        if a.bits <= 16 and b.bits <= 16:
            return dtype("int32")
        width = max(a.bits, b.bits, 32)
        unsigned = any((t.bits == width and not t.is_signed) for t in (a, b))
        return dtype(f"uint{width}" if unsigned else f"int{width}")
    if a.is_float and b.is_float and _float_rank(a) and _float_rank(b):
        if _float_rank(a) == _float_rank(b):  # f16 with bf16: neither holds the other
            return dtype("f32")
        return a if _float_rank(a) > _float_rank(b) else b
    raise IRError(
        f"cannot combine {a.name} and {b.name} in arithmetic; cast one of them explicitly "
        "(integers never meet floats implicitly, and formats of at most 8 bits must be cast "
        "to f16/bf16/f32 first)"
    )
