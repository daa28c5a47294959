"""Independent exact references for the emulator's float tests.

The rounding here is written from the IEEE 754 definition with
``fractions.Fraction`` (find the binade, divide by the ulp, decide by the
remainder) and encodes the rounded value through numpy / ml_dtypes casts of a
value that is already representable, so it shares no code with
``lowbit.emu.fparith_round``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np

# name -> (exponent bits, mantissa bits, numpy dtype, unsigned view dtype)
FORMATS = {
    "f16": (5, 10, np.float16, np.uint16),
    "bf16": (8, 7, ml_dtypes.bfloat16, np.uint16),
    "f32": (8, 23, np.float32, np.uint32),
    "f64": (11, 52, np.float64, np.uint64),
}
CANON_NAN = {"f16": 0x7FFF, "bf16": 0x7FFF, "f32": 0x7FFFFFFF, "f64": 0x7FFFFFFFFFFFFFFF}


def decode(ty: str, bits: int) -> float:
    _, _, dt, ut = FORMATS[ty]
    return float(np.array(bits, dtype=ut).view(dt))


def encode_value(ty: str, x: float) -> int:
    """Bits of a float64 value that is representable in ``ty``."""
    _, _, dt, ut = FORMATS[ty]
    return int(np.array(x, dtype=np.float64).astype(dt).view(ut))


def round_fraction(ty: str, v: Fraction, rnd: str, neg_zero: bool = False, ftz: bool = False) -> int:
    """Bits of ``v`` rounded to ``ty`` with rounding mode ``rnd`` (IEEE 754 section 4.3)."""
    eb, mb, _, _ = FORMATS[ty]
    bias = (1 << (eb - 1)) - 1
    emin, emax = 1 - bias, bias
    sign = v < 0 or (v == 0 and neg_zero)
    a = abs(v)
    width = 1 + eb + mb
    sbit = (1 << (width - 1)) if sign else 0
    if a == 0:
        return sbit
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    e = max(e, emin)
    ulp = Fraction(2) ** (e - mb)
    q = a / ulp
    n = q.numerator // q.denominator
    rem = q - n
    if rnd == "rn":
        up = rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1)
    elif rnd == "rna":
        up = rem >= Fraction(1, 2)
    elif rnd == "rz":
        up = False
    elif rnd == "rp":
        up = rem > 0 and not sign
    elif rnd == "rm":
        up = rem > 0 and sign
    else:
        raise ValueError(rnd)
    r = (n + up) * ulp
    maxv = (2 - Fraction(2) ** -mb) * Fraction(2) ** emax
    if r > maxv:
        to_max = rnd == "rz" or (rnd == "rp" and sign) or (rnd == "rm" and not sign)
        inf_bits = ((1 << eb) - 1) << mb
        return sbit | (encode_value(ty, float(maxv)) if to_max else inf_bits)
    if ftz and r < Fraction(2) ** emin:
        return sbit
    return sbit | encode_value(ty, float(r))


def sqrt_fraction_odd(x: Fraction) -> Fraction:
    """A rational with the same rounding as sqrt(x) to <= 53 bits (exact, or nudged by half an ulp at 60+ bits)."""
    k = 0
    while x * Fraction(4) ** k < Fraction(2) ** 130:
        k += 1
    while x * Fraction(4) ** k >= Fraction(2) ** 132:
        k -= 1
    n = x * Fraction(4) ** k
    ni = n.numerator // n.denominator
    s = math.isqrt(ni)
    exact = s * s == ni and n.denominator == 1
    val = Fraction(s) if exact else Fraction(2 * s + 1, 2)
    return val / Fraction(2) ** k
