"""Exact rounding core shared by :mod:`lowbit.emu.fparith` and :mod:`lowbit.emu.cvt`.

Everything here works on raw bit patterns held in numpy unsigned arrays and is
vectorised over arbitrary shapes.  The one primitive is :func:`round_parts`:
round the exact value ``(-1)**neg * m * 2**e`` (``m`` an unsigned 64-bit
integer, ``e`` a signed exponent) to a binary floating-point format with one of
the PTX rounding modes (PTX ISA section 9.7.3 "Floating-Point Instructions",
rounding modifiers ``.rn .rz .rm .rp``; ``.rna`` for ``cvt.rna.tf32.f32``).
Because ``m`` is an integer and the rounding is done with integer shifts, the
result is correctly rounded for every format up to f64, subnormals included.

Arithmetic results are handed to this core as float64 values that are either
exact or *rounded to odd* at 53 bits.  Rounding to odd at ``q >= p + 2`` bits
followed by any rounding to ``p`` bits equals a single direct rounding of the
exact value (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums:
proved algorithms using rounding to odd", IEEE TC 2008): f32 has ``p = 24`` and
53 >= 26, so no double rounding can occur.

Formats are described by :class:`FloatFormat`; the small OCP formats (e4m3,
e5m2, e3m2, e2m3, e2m1) use the same core with their own overflow rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowbit.errors import UnsupportedPTXError

ROUNDINGS = ("rn", "rz", "rm", "rp", "rna")

_U64 = np.uint64


@dataclass(frozen=True)
class FloatFormat:
    """A binary float format: field widths, bias and its special encodings.

    ``has_inf``: IEEE infinities at the all-ones exponent (f16/bf16/f32/f64/e5m2).
    ``nan_mag``: the canonical NaN magnitude bits (sign bit excluded), or None
    when the format has no NaN (e2m1/e2m3/e3m2).  ``max_mag``: the largest
    finite magnitude bits.
    """

    name: str
    ebits: int
    mbits: int
    bias: int
    has_inf: bool
    nan_mag: int | None
    max_mag: int

    @property
    def width(self) -> int:
        return 1 + self.ebits + self.mbits

    @property
    def udtype(self) -> type:
        w = self.width
        return np.uint8 if w <= 8 else np.uint16 if w <= 16 else np.uint32 if w <= 32 else np.uint64

    @property
    def inf_mag(self) -> int:
        return ((1 << self.ebits) - 1) << self.mbits

    @property
    def min_normal_mag(self) -> int:
        return 1 << self.mbits


def _ieee(name: str, e: int, m: int) -> FloatFormat:
    inf = ((1 << e) - 1) << m
    # canonical NaN: all-ones exponent and mantissa, i.e. 0x7fffffff for f32
    # (what NVIDIA GPUs return from f32 arithmetic, PTX ISA 9.7.3).
    return FloatFormat(name, e, m, (1 << (e - 1)) - 1, True, inf | ((1 << m) - 1), inf - 1)


F16 = _ieee("f16", 5, 10)
BF16 = _ieee("bf16", 8, 7)
F32 = _ieee("f32", 8, 23)
F64 = _ieee("f64", 11, 52)
TF32 = _ieee("tf32", 8, 10)  # stored in an f32 container by cvt (low 13 bits zero)
# OCP MX v1.0 small formats (see docs METHODS.md table).
E4M3 = FloatFormat("e4m3", 4, 3, 7, False, 0x7F, 0x7E)
E5M2 = FloatFormat("e5m2", 5, 2, 15, True, 0x7F, 0x7B)
E3M2 = FloatFormat("e3m2", 3, 2, 3, False, None, 0x1F)
E2M3 = FloatFormat("e2m3", 2, 3, 1, False, None, 0x1F)
E2M1 = FloatFormat("e2m1", 2, 1, 1, False, None, 0x7)

FORMATS = {f.name: f for f in (F16, BF16, F32, F64, TF32, E4M3, E5M2, E3M2, E2M3, E2M1)}


def fmt(name: str) -> FloatFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnsupportedPTXError(f"unsupported floating-point type .{name}") from None


def contig(x, dtype) -> np.ndarray:
    """``np.asarray(x, dtype)``, copied only when not C-contiguous (keeps 0-d shapes)."""
    a = np.asarray(x, dtype=dtype)
    return a if a.flags.c_contiguous else a.copy()


def bit_length64(m: np.ndarray) -> np.ndarray:
    """Number of significant bits of each uint64 (0 for 0), by binary search."""
    x = np.asarray(m, dtype=_U64)
    n = np.zeros(x.shape, np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = x >= (_U64(1) << _U64(s))
        x = np.where(big, x >> _U64(s), x)
        n += big.astype(np.int64) * s
    return n + (x > 0)


def round_parts(neg, m, e, f: FloatFormat, rnd: str, satfinite: bool = False) -> np.ndarray:
    """Round ``(-1)**neg * m * 2**e`` to format ``f``; returns the bits as uint64.

    ``neg`` bool, ``m`` uint64 (any value up to 2**64-1), ``e`` int64.
    Overflow follows IEEE 754 for the rounding mode (``.rn`` -> inf, ``.rz`` ->
    max finite, ``.rm``/``.rp`` by sign) unless ``satfinite`` (-> max finite) or
    the format has no infinity (-> NaN if it has one, else max finite).
    Zero ``m`` gives a zero with the sign ``neg``.
    """
    if rnd not in ROUNDINGS:
        raise UnsupportedPTXError(f"unsupported rounding modifier .{rnd}")
    neg = np.asarray(neg, dtype=bool)
    m = np.asarray(m, dtype=_U64)
    e = np.asarray(e, dtype=np.int64)
    p = f.mbits + 1
    emin = 1 - f.bias
    top = e + bit_length64(m) - 1
    eq = np.maximum(top, emin) - (p - 1)  # exponent of the result's ulp
    shift = eq - e
    idx = (np.clip(shift, 1, 64) - 1).astype(_U64)  # index of the round bit
    rb = ((m >> idx) & _U64(1)).astype(bool)
    sticky = (m & ((_U64(1) << idx) - _U64(1))) != 0
    q = (m >> idx) >> _U64(1)
    huge = shift > 64
    rb = np.where(huge, False, rb)
    sticky = np.where(huge, m != 0, sticky)
    q = np.where(huge, _U64(0), q)
    left = shift <= 0
    q = np.where(left, m << np.clip(-shift, 0, 63).astype(_U64), q)
    rb &= ~left
    sticky &= ~left
    if rnd == "rn":
        up = rb & (sticky | (q & _U64(1)).astype(bool))
    elif rnd == "rna":
        up = rb
    elif rnd == "rz":
        up = np.zeros_like(rb)
    elif rnd == "rm":
        up = neg & (rb | sticky)
    else:
        up = ~neg & (rb | sticky)
    q = q + up.astype(_U64)
    # biased exponent field minus one, placed so that a carry out of q (or a
    # subnormal rounding up to the smallest normal) bumps the exponent.
    field = np.clip(eq + p - 2 + f.bias, 0, 1 << (f.ebits + 1)).astype(_U64)
    mag = (field << _U64(f.mbits)) + q
    mag = np.where(m == 0, _U64(0), mag)
    ovf = mag > _U64(f.max_mag)
    if ovf.any():
        if f.has_inf and not satfinite:
            to_max = {"rn": ~ovf, "rna": ~ovf, "rz": ovf, "rm": ~neg, "rp": neg}[rnd]
            big_mag = np.where(to_max, _U64(f.max_mag), _U64(f.inf_mag))
        elif f.nan_mag is not None and not satfinite:
            big_mag = _U64(f.nan_mag)
        else:
            big_mag = _U64(f.max_mag)
        mag = np.where(ovf, big_mag, mag)
    return mag | (neg.astype(_U64) << _U64(f.width - 1))


# ---------------------------------------------------------------- float64 bridge


def f64_parts(x: np.ndarray):
    """Split finite float64 values into (neg, m, e) with value = (-1)**neg * m * 2**e."""
    b = contig(x, np.float64).view(_U64)
    neg = (b >> _U64(63)).astype(bool)
    ef = ((b >> _U64(52)) & _U64(0x7FF)).astype(np.int64)
    frac = b & _U64((1 << 52) - 1)
    m = np.where(ef == 0, frac, frac | _U64(1 << 52))
    e = np.where(ef == 0, -1074, ef - 1075)
    return neg, m, e


def round_f64(x, f: FloatFormat, rnd: str = "rn", *, ftz: bool = False, satfinite: bool = False) -> np.ndarray:
    """Round float64 values (exact, or rounded to odd at 53 bits) to format ``f``.

    Returns bits in ``f.udtype``.  NaN -> the canonical NaN of ``f`` (formats
    without NaN: max finite, as satfinite does); infinities -> inf, or max
    finite under ``satfinite`` / for formats without inf.  ``ftz`` flushes
    subnormal *results* to a zero of the same sign.
    """
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    inf = np.isinf(x)
    xs = np.where(nan | inf, 0.0, x)
    if f is F64 and rnd in ("rn", "rz", "rm", "rp"):
        bits = contig(xs, np.float64).view(_U64)
    else:
        neg, m, e = f64_parts(xs)
        bits = round_parts(neg, m, e, f, rnd, satfinite)
    sign = np.signbit(x).astype(_U64) << _U64(f.width - 1)
    if ftz:
        mag = bits & ~(_U64(1) << _U64(f.width - 1))
        bits = np.where((mag != 0) & (mag < _U64(f.min_normal_mag)), sign, bits)
    if inf.any():
        inf_mag = f.inf_mag if (f.has_inf and not satfinite) else (f.nan_mag if (not satfinite and f.nan_mag is not None) else f.max_mag)
        bits = np.where(inf, sign | _U64(inf_mag), bits)
    if nan.any():
        nan_bits = f.nan_mag if f.nan_mag is not None else f.max_mag
        bits = np.where(nan, _U64(nan_bits), bits)
    return bits.astype(f.udtype)


# ---------------------------------------------------------------- decoding


def _small_table(f: FloatFormat) -> np.ndarray:
    codes = np.arange(1 << f.width, dtype=np.int64)
    neg = codes >> (f.width - 1)
    ef = (codes >> f.mbits) & ((1 << f.ebits) - 1)
    mant = codes & ((1 << f.mbits) - 1)
    val = np.where(ef == 0, mant * 2.0 ** (1 - f.bias - f.mbits),
                   (mant + (1 << f.mbits)) * 2.0 ** (ef - f.bias - f.mbits))
    val = np.where(neg == 1, -val, val)
    mag = codes & ((1 << (f.width - 1)) - 1)
    if f.has_inf:
        val = np.where(mag == f.inf_mag, np.where(neg == 1, -np.inf, np.inf), val)
        val = np.where(mag > f.inf_mag, np.nan, val)
    elif f.nan_mag is not None:
        val = np.where(mag == f.nan_mag, np.nan, val)
    return val


_TABLES: dict[str, np.ndarray] = {}


def to_f64(f: FloatFormat, bits) -> np.ndarray:
    """Decode bit patterns of format ``f`` to float64, exactly (NaNs stay NaN)."""
    with np.errstate(invalid="ignore"):  # signalling-NaN patterns warn when widened
        return _to_f64(f, np.asarray(bits))


def _to_f64(f: FloatFormat, bits: np.ndarray) -> np.ndarray:
    if f is F64:
        return contig(bits, _U64).view(np.float64)
    if f is F32:
        return contig(bits, np.uint32).view(np.float32).astype(np.float64)
    if f is F16:
        return contig(bits, np.uint16).view(np.float16).astype(np.float64)
    if f is BF16:
        w = (np.asarray(bits, dtype=np.uint32) & np.uint32(0xFFFF)) << np.uint32(16)
        return w.view(np.float32).astype(np.float64)
    if f is TF32:
        return _to_f64(F32, bits)
    table = _TABLES.get(f.name)
    if table is None:
        table = _TABLES[f.name] = _small_table(f)
    return table[np.asarray(bits, dtype=np.int64) & ((1 << f.width) - 1)]


def flush_subnormal_inputs(f: FloatFormat, bits) -> np.ndarray:
    """``.ftz`` on inputs: subnormal operands become zeros of the same sign."""
    bits = np.asarray(bits)
    signmask = f.udtype(1 << (f.width - 1))
    mag = bits & f.udtype(~(1 << (f.width - 1)) & ((1 << f.width) - 1))
    return np.where((mag != 0) & (mag < f.min_normal_mag), bits & signmask, bits).astype(f.udtype)


# ------------------------------------------------------------ PTX type names <-> formats
# Shared by fparith (arithmetic) and fparith_special (approx, min/max, compare).

PACKED = {"f16x2": "f16", "bf16x2": "bf16"}


def ptx_format(ty: str) -> FloatFormat:
    """The format of a PTX arithmetic type (f16, bf16, f32, f64); others raise."""
    if ty not in ("f16", "bf16", "f32", "f64"):
        raise UnsupportedPTXError(f"floating-point operation on unsupported type .{ty}")
    return fmt(ty)


def to_float64(ty: str, bits) -> np.ndarray:
    """Exact float64 value of f16/bf16/f32/f64 bit patterns."""
    return to_f64(ptx_format(ty), bits)


def from_float64(ty: str, x, rnd: str = "rn", ftz: bool = False) -> np.ndarray:
    """Round float64 values to ``ty`` bits (one rounding of the float64 value)."""
    return round_f64(x, ptx_format(ty), rnd, ftz=ftz)


def per_half(ty: str, fn, *args):
    """Apply ``fn(base_ty, *halves)`` to both 16-bit halves of packed operands."""
    base = PACKED[ty]
    ws = [np.asarray(a, dtype=np.uint32) for a in args]
    lo = fn(base, *[(w & np.uint32(0xFFFF)).astype(np.uint16) for w in ws])
    hi = fn(base, *[(w >> np.uint32(16)).astype(np.uint16) for w in ws])
    if lo.dtype == bool:
        return lo, hi
    return (hi.astype(np.uint32) << np.uint32(16)) | lo.astype(np.uint32)


def decoded(f: FloatFormat, ftz: bool, *bits):
    """Exact float64 values of ``bits`` operands, subnormals flushed first under ``.ftz`` (not f64)."""
    if ftz and f is not F64:
        bits = [flush_subnormal_inputs(f, b) for b in bits]
    return [to_f64(f, b) for b in bits]
