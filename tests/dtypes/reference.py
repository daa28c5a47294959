"""Independent brute-force references for lowbit.dtypes, in exact arithmetic.

Nothing here calls lowbit's codecs.  Each reference enumerates a format's
representable values from the defining formula (sign, exponent field,
mantissa field -> ``fractions.Fraction``) and rounds one value at a time by
searching that list: the nearest value wins, a tie goes to the even code
(floats, bipolar) or the lower code (codebooks).  Float overflow follows
IEEE 754: the input is rounded as if the exponent range were unbounded (the
candidate one ulp beyond the largest finite value stands for "overflow").
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from fractions import Fraction

NAN = "nan"


@dataclass(frozen=True)
class RefFloat:
    """A float format by its parameters; ``bias=None`` means 2**(e-1) - 1."""

    e: int
    m: int
    bias: int | None = None
    nan: str = "none"  # none | fn | ieee | fnuz
    signed: bool = True

    @property
    def b(self) -> int:
        return (1 << (self.e - 1)) - 1 if self.bias is None else self.bias

    @property
    def bits(self) -> int:
        return self.e + self.m + int(self.signed)

    def value(self, code: int) -> Fraction | str:
        """The exact value of ``code`` (a Fraction, ``"nan"``, ``"inf"`` or ``"-inf"``)."""
        e, m = self.e, self.m
        sign = (code >> (e + m)) & 1 if self.signed else 0
        big_e = (code >> m) & ((1 << e) - 1)
        frac = code & ((1 << m) - 1)
        all_e = (1 << e) - 1
        if self.nan == "ieee" and big_e == all_e:
            return NAN if frac else ("-inf" if sign else "inf")
        if self.nan == "fn" and big_e == all_e and frac == (1 << m) - 1:
            return NAN
        if self.nan == "fnuz" and code == 1 << (self.bits - 1):
            return NAN
        if m == 0:
            mag = Fraction(2) ** (big_e - self.b)
        elif big_e == 0:
            mag = Fraction(frac, 1 << m) * Fraction(2) ** (1 - self.b)
        else:
            mag = (1 + Fraction(frac, 1 << m)) * Fraction(2) ** (big_e - self.b)
        return -mag if sign else mag

    def table(self) -> list[tuple[Fraction, int]]:
        """(value, code) of every finite non-negative code with the sign bit clear, sorted."""
        out = []
        for code in range(1 << (self.e + self.m)):
            v = self.value(code)
            if isinstance(v, Fraction):
                out.append((v, code))
        out.sort()
        return out

    def nan_codes(self) -> set[int]:
        return {c for c in range(1 << self.bits) if self.value(c) == NAN}


class FloatRef:
    """Round exact values into a :class:`RefFloat`, one at a time."""

    def __init__(self, fmt: RefFloat) -> None:
        self.fmt = fmt
        table = fmt.table()
        self.vals = [v for v, _ in table]
        self.codes = [c for _, c in table]
        self.max_code = self.codes[-1]
        # The next code's pattern read as a normal number with an unbounded exponent
        # field is one ulp past the largest finite value: landing there means overflow.
        nxt = self.max_code + 1
        big_e, frac = nxt >> fmt.m, nxt & ((1 << fmt.m) - 1)
        self.vals.append((1 + Fraction(frac, 1 << fmt.m)) * Fraction(2) ** (big_e - fmt.b))
        self.codes.append(nxt)
        self.nans = fmt.nan_codes()
        self.inf_code = ((1 << fmt.e) - 1) << fmt.m if fmt.nan == "ieee" else None
        self.sign_bit = 1 << (fmt.e + fmt.m)

    def _nearest_mag(self, mag: Fraction) -> int:
        """Code (maybe max_code + 1 = overflow) nearest to ``mag >= 0``, ties to even."""
        i = bisect.bisect_left(self.vals, mag)
        if i == 0:
            return self.codes[0]
        if i == len(self.vals):
            return self.max_code + 1
        lo, hi = self.vals[i - 1], self.vals[i]
        dlo, dhi = mag - lo, hi - mag
        if dlo < dhi:
            return self.codes[i - 1]
        if dhi < dlo:
            return self.codes[i]
        return self.codes[i - 1] if self.codes[i - 1] % 2 == 0 else self.codes[i]

    def encode(self, x: float, saturate: bool) -> int | str:
        """The code of ``x``; ``"nan"`` when any NaN code is right; ``"raise"`` for NaN
        input into a format without NaN."""
        f = self.fmt
        if math.isnan(x):
            return NAN if self.nans else "raise"
        neg = math.copysign(1.0, x) < 0
        if math.isinf(x):
            mag_code = self.max_code + 1
        else:
            mag_code = self._nearest_mag(abs(Fraction(x)))
        if mag_code > self.max_code:  # overflow
            if saturate or f.nan == "none":
                mag_code = self.max_code
            elif f.nan == "ieee":
                mag_code = self.inf_code
            else:
                return NAN
        if not f.signed:
            if neg and mag_code != 0:
                return 0 if (saturate or f.nan == "none") else NAN
            return mag_code
        if f.nan == "fnuz" and mag_code == 0:
            return 0
        return mag_code | (self.sign_bit if neg else 0)


def e8m0_ref(x: float, mode: str, saturate: bool = False, bias: int = 127) -> int:
    """E8M0 code of ``x`` from frexp: rz = floor(log2 x), rp = ceil, rn_up = ties up."""
    if math.isnan(x) or math.isinf(x) or x <= 0:
        return 0xFF
    fr, ex = math.frexp(x)  # x = fr * 2**ex, fr in [0.5, 1)
    k = ex - 1  # floor(log2 x)
    exact = fr == 0.5
    if mode == "rp" and not exact:
        k += 1
    elif mode == "rn_up" and Fraction(x) >= Fraction(3, 2) * Fraction(2) ** k:
        k += 1
    code = k + bias
    if code < 0:
        return 0
    if code > 0xFE:
        return 0xFE if saturate else 0xFF
    return code


def nearest_in_table(table: list[Fraction], x: Fraction, ties: str) -> int:
    """Index of the entry of ``table`` (any order) nearest ``x``; ties by code: lower / even."""
    best: list[int] = []
    best_d: Fraction | None = None
    for code, v in enumerate(table):
        d = abs(x - v)
        if best_d is None or d < best_d:
            best, best_d = [code], d
        elif d == best_d:
            best.append(code)
    if ties == "lower":
        return min(best)
    even = [c for c in best if c % 2 == 0]
    return min(even) if even else min(best)


def midpoints(values: list[Fraction]) -> list[Fraction]:
    """Exact midpoints of adjacent distinct sorted values."""
    vs = sorted(set(values))
    return [(a + b) / 2 for a, b in zip(vs, vs[1:])]
