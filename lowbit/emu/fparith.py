"""Floating-point arithmetic of the PTX ISA on raw bit patterns (PTX ISA 9.7.3, 9.7.4).

Values cross as numpy unsigned arrays: ``f16``/``bf16`` -> uint16, ``f32`` ->
uint32, ``f64`` -> uint64, packed ``f16x2``/``bf16x2`` -> uint32 (element 0 in
bits 15:0, element 1 in bits 31:16; every packed op works per half, PTX ISA
9.7.4).  Every function is vectorised over arbitrary (broadcastable) shapes and
knows nothing about threads.  Type names are PTX's without the dot.

Public API (M decodes the modifiers of an instruction into these calls):

    add(ty, a, b, rnd="rn", ftz=False, sat=False, relu=False) -> bits
    sub(ty, a, b, rnd="rn", ftz=False, sat=False, relu=False) -> bits
    mul(ty, a, b, rnd="rn", ftz=False, sat=False, relu=False) -> bits
    fma(ty, a, b, c, rnd="rn", ftz=False, sat=False, relu=False) -> bits  # fma and mad.rnd
    div(ty, a, b, rnd="rn", ftz=False) -> bits        # div.rnd.f32 / .f64 (IEEE)
    div_full(a, b, ftz=False) -> bits                 # div.full.f32
    div_approx(a, b, ftz=False) -> bits               # div.approx.f32
    sqrt(ty, a, rnd="rn", ftz=False) -> bits          # sqrt.rnd.f32 / .f64
    rcp(ty, a, rnd="rn", ftz=False) -> bits           # rcp.rnd.f32 / .f64
    approx(op, ty, a, ftz=False) -> bits              # op: ex2 lg2 rcp sqrt rsqrt sin cos tanh
    neg(ty, a, ftz=False), abs_(ty, a, ftz=False) -> bits
    fmin(ty, a, b, ftz=False, nan=False, relu=False), fmax(...) -> bits
    compare(ty, cmp, a, b, ftz=False) -> bool         # setp: eq ne lt le gt ge equ neu ltu leu gtu geu num nan
    testp(ty, op, a) -> bool                          # finite infinite number notanumber normal subnormal
    copysign(ty, a, b) -> bits                        # |b| with the sign of a
    to_float64(ty, bits) -> float64, from_float64(ty, x, rnd="rn") -> bits

Exactness.  Results are correctly rounded in every mode:

* f16/bf16/f32: operands are decoded exactly to float64; the exact result is
  brought to a float64 *rounded to odd* (``s`` plus the sign of the exact error
  ``exact - s``), then rounded once to the destination by integer arithmetic
  (:mod:`fparith_round`).  Round-to-odd at 53 >= p+2 bits never double-rounds.
  - add/sub/fma: ``s, err = TwoSum(x, y)`` is error-free (Knuth), and for fma
    the product of two <= 24-bit significands is exact in float64 (48 <= 53
    bits, exponents well inside float64's range), so fma.rn.f32 and fma.rn.f16
    see exactly ``a*b + c``.  (Plain float64 ``a*b + c`` is *not* enough for
    f32: the sum can round in float64 onto an f32 midpoint and round again.)
  - f16/bf16 add/mul: float64 RN alone would already be innocuous for ``.rn``
    because 53 >= 2p+2 (Figueroa 1995), but not for ``.rz/.rm/.rp``, so the
    same round-to-odd path is used for all modes.
  - div/sqrt: the sign of the remainder ``a - q*b`` (``a - s*s``) is computed
    exactly with Dekker's TwoProduct.
* f64: numpy's IEEE float64 is the ``.rn`` result of add/sub/mul/div/sqrt; the
  directed modes step one ulp using the exact error sign; fma.f64 uses
  Boldo-Melquiond's emulated FMA (TwoProduct, TwoSum, a round-to-odd sum).
  Elements whose error terms could under/overflow take an exact
  ``fractions.Fraction`` path (rare; the only per-element loop).

NaNs: any NaN result is the canonical NaN 0x7fffffff (f32), 0x7fff (f16/bf16),
0x7fffffffffffffff (f64) -- NVIDIA GPUs do not propagate payloads for f32
arithmetic; f64 payload behaviour is an assumption for the GPU fidelity harness
to confirm.  ``.ftz`` flushes subnormal inputs and results to zeros of the
same sign (PTX ISA 9.7.3 "Subnormal numbers"); f64 has no ``.ftz``.  ``.sat``
clamps to [0.0, 1.0] and maps NaN to +0.0.  ``.relu`` maps negative results
to +0.0 and keeps NaN canonical.

Approximate instructions (``approx``, ``div_full``, ``div_approx``): the
emulator returns the correctly rounded (RN) value of the exact function, with
the special cases of the ISA (ex2(-inf)=+0, lg2(0)=-inf, rsqrt(-0)=-inf,
sin/cos(inf)=NaN, ...).  Hardware differs by its documented max error
(PTX ISA: ex2.approx.f32 2 ulp, lg2 2^-22 abs/rel, rcp/sqrt/rsqrt 1 ulp,
sin/cos 2^-20.9 absolute in [-pi, pi], div.full.f32 2 ulp); the fidelity
harness compares these within those tolerances, never bit for bit.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from lowbit.emu import fparith_round as R
from lowbit.errors import UnsupportedPTXError

_U64 = np.uint64
_PACKED = {"f16x2": "f16", "bf16x2": "bf16"}
_SPLIT = float(2**27 + 1)  # Veltkamp splitter for 53-bit significands


# ------------------------------------------------------------ bits <-> float64


def _fmt(ty: str) -> R.FloatFormat:
    if ty not in ("f16", "bf16", "f32", "f64"):
        raise UnsupportedPTXError(f"floating-point operation on unsupported type .{ty}")
    return R.fmt(ty)


def to_float64(ty: str, bits) -> np.ndarray:
    """Exact float64 value of f16/bf16/f32/f64 bit patterns."""
    return R.to_f64(_fmt(ty), bits)


def from_float64(ty: str, x, rnd: str = "rn", ftz: bool = False) -> np.ndarray:
    """Round float64 values to ``ty`` bits (one rounding of the float64 value)."""
    return R.round_f64(x, _fmt(ty), rnd, ftz=ftz)


def _packed(ty: str, fn, *args):
    """Apply ``fn(base_ty, *halves)`` to both 16-bit halves of packed operands."""
    base = _PACKED[ty]
    ws = [np.asarray(a, dtype=np.uint32) for a in args]
    lo = fn(base, *[(w & np.uint32(0xFFFF)).astype(np.uint16) for w in ws])
    hi = fn(base, *[(w >> np.uint32(16)).astype(np.uint16) for w in ws])
    if lo.dtype == bool:
        return lo, hi
    return (hi.astype(np.uint32) << np.uint32(16)) | lo.astype(np.uint32)


def _inputs(f: R.FloatFormat, ftz: bool, *bits):
    if ftz and f is not R.F64:
        bits = [R.flush_subnormal_inputs(f, b) for b in bits]
    return [R.to_f64(f, b) for b in bits]


# ------------------------------------------------------------ error-free transforms


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a):
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _toward(s, d):
    """One float64 step from ``s`` in the direction of the sign of ``d``."""
    return np.nextafter(s, np.where(d > 0, np.inf, -np.inf))


def _round_to_odd(s, d):
    """``s`` = RN(exact), ``d`` = sign of exact - s: return RO(exact) at 53 bits."""
    even = (R.contig(s, np.float64).view(_U64) & _U64(1)) == 0
    return np.where((d != 0) & even & np.isfinite(s), _toward(s, d), s)


def _directed(s, d, rnd: str):
    """Correct an RN float64 ``s`` to mode ``rnd`` given ``d`` = sign(exact - s)."""
    if rnd == "rn":
        return s
    if rnd == "rm":
        move = d < 0
    elif rnd == "rp":
        move = d > 0
    elif rnd == "rz":
        move = ((d < 0) & (s > 0)) | ((d > 0) & (s < 0))
    else:
        raise UnsupportedPTXError(f"unsupported rounding modifier .{rnd}")
    return np.where(move, _toward(s, d), s)


def _safe64(*xs, lo=2.0**-480, hi=2.0**480):
    ok = np.ones(np.broadcast(*xs).shape, dtype=bool)
    for x in xs:
        ax = np.abs(x)
        ok &= (ax == 0) | ((ax >= lo) & (ax <= hi))
    return ok


# ------------------------------------------------------------ exact slow path (f64 only)


def _round_fraction_f64(v: Fraction, rnd: str) -> float:
    if v == 0:
        return 0.0
    neg = v < 0
    v = abs(v)
    e = v.numerator.bit_length() - v.denominator.bit_length() - 62
    scaled = v / Fraction(2) ** e
    m = scaled.numerator // scaled.denominator
    while m >= 1 << 62:
        e += 1
        scaled /= 2
        m = scaled.numerator // scaled.denominator
    if m * scaled.denominator != scaled.numerator:
        m |= 1  # round to odd at 62 bits: a later rounding to 53 bits is exact
    bits = R.round_parts(np.array(neg), np.array(m, dtype=_U64), np.array(e), R.F64, rnd)
    return float(np.asarray(bits, dtype=_U64).view(np.float64))


def _exact_f64(op: str, rnd: str, out, mask, *xs):
    """Overwrite ``out[mask]`` with the exactly rounded ``op`` on finite operands."""
    idx = np.argwhere(mask)
    for ix in map(tuple, idx):
        vals = [float(np.broadcast_to(x, mask.shape)[ix]) for x in xs]
        if not all(np.isfinite(vals)):
            continue
        fr = [Fraction(v) for v in vals]
        if op == "mul":
            v = fr[0] * fr[1]
        elif op == "fma":
            v = fr[0] * fr[1] + fr[2]
        elif op == "div":
            if fr[1] == 0:
                continue
            v = fr[0] / fr[1]
        else:
            raise AssertionError(op)
        res = _round_fraction_f64(v, rnd)
        if res == 0:
            continue  # zero signs are already right in the vector result
        out[ix] = res
    return out


# ------------------------------------------------------------ core


def _finish(f, r, rnd, ftz, sat, relu):
    """Round the float64 ``r`` (exact or rounded to odd) to ``f`` and apply clamps."""
    bits = R.round_f64(r, f, rnd if f is not R.F64 else "rn", ftz=ftz)
    if sat or relu:
        v = R.to_f64(f, bits)
        nan = np.isnan(v)
        low = np.signbit(v) & ~nan
        bits = np.where(low, f.udtype(0), bits)
        if sat:
            one = R.round_f64(np.float64(1.0), f)
            bits = np.where(nan, f.udtype(0), np.where(v > 1.0, one, bits))
    return bits.astype(f.udtype)


def _zero_sign(s, x, y, rnd):
    """IEEE 754 6.3: an exact zero sum is +0 except under .rm, unless x, y are same-signed zeros."""
    if rnd != "rm":
        return s
    keep = (x == 0) & (y == 0) & (np.signbit(x) == np.signbit(y))
    return np.where((s == 0) & ~keep, -0.0, s)


def _sum(f, x, y, rnd):
    with np.errstate(all="ignore"):
        s, err = _two_sum(x, y)
        fin = np.isfinite(x) & np.isfinite(y)
        d = np.where(np.isinf(s) & fin, -np.sign(s), np.where(fin & np.isfinite(s), np.sign(err), 0.0))
    s = _zero_sign(s, x, y, rnd)
    return _directed(s, d, rnd) if f is R.F64 else _round_to_odd(s, d)


def _binary(op, ty, a, b, rnd, ftz, sat, relu):
    if ty in _PACKED:
        return _packed(ty, lambda t, x, y: _binary(op, t, x, y, rnd, ftz, sat, relu), a, b)
    f = _fmt(ty)
    x, y = _inputs(f, ftz, a, b)
    if op == "sub":
        op, y = "add", -y
    if op == "add":
        r = _sum(f, x, y, rnd)
    elif f is not R.F64:  # mul: exact in float64 for <= 24-bit significands
        with np.errstate(all="ignore"):
            r = x * y
    else:
        with np.errstate(all="ignore"):
            s, err = _two_prod(x, y)
            fin = np.isfinite(x) & np.isfinite(y)
            d = np.where(np.isinf(s) & fin, -np.sign(s), np.where(np.isfinite(s), np.sign(err), 0.0))
            r = np.array(_directed(s, d, rnd), dtype=np.float64)
            hard = fin & ~_safe64(x, y) & (s != 0)
            if hard.any():
                r = _exact_f64("mul", rnd, r, hard, x, y)
    return _finish(f, r, rnd, ftz, sat, relu)


def add(ty, a, b, rnd="rn", ftz=False, sat=False, relu=False):
    """``add{.rnd}{.ftz}{.sat}.ty`` (PTX ISA 9.7.3.1, 9.7.4.1)."""
    return _binary("add", ty, a, b, rnd, ftz, sat, relu)


def sub(ty, a, b, rnd="rn", ftz=False, sat=False, relu=False):
    """``sub{.rnd}{.ftz}{.sat}.ty``: a - b."""
    return _binary("sub", ty, a, b, rnd, ftz, sat, relu)


def mul(ty, a, b, rnd="rn", ftz=False, sat=False, relu=False):
    """``mul{.rnd}{.ftz}{.sat}.ty``."""
    return _binary("mul", ty, a, b, rnd, ftz, sat, relu)


def fma(ty, a, b, c, rnd="rn", ftz=False, sat=False, relu=False):
    """``fma.rnd{.ftz}{.sat}{.relu}.ty`` and ``mad.rnd``: a*b + c with one rounding."""
    if ty in _PACKED:
        return _packed(ty, lambda t, x, y, z: fma(t, x, y, z, rnd, ftz, sat, relu), a, b, c)
    f = _fmt(ty)
    x, y, z = _inputs(f, ftz, a, b, c)
    with np.errstate(all="ignore"):
        if f is not R.F64:
            r = _sum(f, x * y, z, rnd)  # x*y is exact here
        else:
            r = _fma64(x, y, z, rnd)
    return _finish(f, r, rnd, ftz, sat, relu)


def _fma64(x, y, z, rnd):
    # Boldo & Melquiond (2008), emulated FMA: uh + ul = x*y exactly,
    # th + tl = z + uh exactly, v = RO(tl + ul), result = round(th + v).
    uh, ul = _two_prod(x, y)
    th, tl = _two_sum(z, uh)
    s1, e1 = _two_sum(tl, ul)
    v = _round_to_odd(s1, np.sign(e1))
    s, err = _two_sum(th, v)
    fin = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    ok = fin & np.isfinite(s) & np.isfinite(uh)
    r = np.where(ok, _directed(s, np.sign(err), rnd), x * y + z)
    r = np.array(_zero_sign(r, x * y, z, rnd), dtype=np.float64)
    hard = fin & ~(ok & _safe64(x, y) & _safe64(z, hi=2.0**1000, lo=0.0))
    if hard.any():
        r = _exact_f64("fma", rnd, r, hard, x, y, z)
    return r


def div(ty, a, b, rnd="rn", ftz=False):
    """``div.rnd{.ftz}.f32`` / ``div.rnd.f64``: IEEE 754 correctly rounded division."""
    f = _fmt(ty)
    if f not in (R.F32, R.F64):
        raise UnsupportedPTXError(f"div.{rnd}.{ty} is not a PTX instruction")
    x, y = _inputs(f, ftz, a, b)
    with np.errstate(all="ignore"):
        q = x / y
        h, lo = _two_prod(q, y)
        rem = (x - h) - lo
        regular = np.isfinite(q) & np.isfinite(x) & np.isfinite(y) & (q != 0)
        d = np.where(regular, np.sign(rem) * np.sign(y), 0.0)
        if f is R.F64:
            r = np.array(_directed(q, d, rnd), dtype=np.float64)
            hard = np.isfinite(x) & np.isfinite(y) & (y != 0) & (x != 0) & ~(_safe64(x, y, q))
            if hard.any():
                r = _exact_f64("div", rnd, r, hard, x, y)
        else:
            r = _round_to_odd(q, d)
    return _finish(f, r, rnd, ftz, False, False)


def rcp(ty, a, rnd="rn", ftz=False):
    """``rcp.rnd{.ftz}.f32`` / ``rcp.rnd.f64``: correctly rounded 1/a."""
    f = _fmt(ty)
    one = R.round_f64(np.float64(1.0), f)
    return div(ty, np.broadcast_to(one, np.shape(a)), a, rnd, ftz)


def sqrt(ty, a, rnd="rn", ftz=False):
    """``sqrt.rnd{.ftz}.f32`` / ``sqrt.rnd.f64``: correctly rounded square root."""
    f = _fmt(ty)
    if f not in (R.F32, R.F64):
        raise UnsupportedPTXError(f"sqrt.{rnd}.{ty} is not a PTX instruction")
    (x,) = _inputs(f, ftz, a)
    with np.errstate(all="ignore"):
        # Scale by an even power of two into a range where TwoProduct is exact;
        # sqrt halves the exponent, so the scaling back is exact (results of
        # f64 sqrt are never subnormal).
        k = np.where((np.abs(x) > 0) & np.isfinite(x), np.frexp(x)[1] // 2, 0)
        xs = np.ldexp(x, -2 * k)
        s = np.sqrt(xs)
        h, lo = _two_prod(s, s)
        rem = (xs - h) - lo
        d = np.where(np.isfinite(s) & (s > 0), np.sign(rem), 0.0)
        r = _directed(s, d, rnd) if f is R.F64 else _round_to_odd(s, d)
        r = np.ldexp(r, k)
    return _finish(f, r, rnd, ftz, False, False)


# ------------------------------------------------------------ approximate functions


def _approx_f64(op: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == "ex2":
            return np.exp2(x)
        if op == "lg2":
            return np.where(x == 0, -np.inf, np.log2(x))
        if op == "rcp":
            return 1.0 / x
        if op == "sqrt":
            return np.sqrt(x)
        if op == "rsqrt":
            return 1.0 / np.sqrt(x)  # rsqrt(-0) = -inf, rsqrt(+0) = +inf
        if op == "sin":
            return np.sin(x)
        if op == "cos":
            return np.cos(x)
        if op == "tanh":
            return np.tanh(x)
    raise UnsupportedPTXError(f"{op}.approx is not implemented")


def approx(op, ty, a, ftz=False):
    """``op.approx{.ftz}.ty`` for op in ex2 lg2 rcp sqrt rsqrt sin cos tanh.

    Returns RN(op(a)) of the exact function (see module docstring for the
    hardware's documented error bounds).  ``ty``: f32, f64 (rcp/sqrt/rsqrt
    only, ``.ftz`` for rcp.approx.ftz.f64 flushes inputs), f16/bf16 and the
    packed types (ex2, tanh).
    """
    if ty in _PACKED:
        return _packed(ty, lambda t, x: approx(op, t, x, ftz), a)
    f = _fmt(ty)
    x = _inputs(f, ftz, a)[0]
    return R.round_f64(_approx_f64(op, x), f, "rn", ftz=ftz)


def div_full(a, b, ftz=False):
    """``div.full{.ftz}.f32``: full-range division; returns RN(a/b) (hardware: <= 2 ulp)."""
    return div("f32", a, b, "rn", ftz)


def div_approx(a, b, ftz=False):
    """``div.approx{.ftz}.f32``: a * (1/b); for 2^126 <= |b| <= 2^128 the ISA's result is 0."""
    x, y = _inputs(R.F32, ftz, a, b)
    with np.errstate(all="ignore"):
        q = x / y
        tiny = (np.abs(y) >= 2.0**126) & np.isfinite(y) & np.isfinite(x)
        q = np.where(tiny, 0.0 * np.sign(x) * np.sign(y), q)
    return R.round_f64(q, R.F32, "rn", ftz=ftz)


# ------------------------------------------------------------ sign, min/max, compare, classify


def neg(ty, a, ftz=False):
    """``neg{.ftz}.ty``: flip the sign bit (NaN stays NaN with its payload, as in hardware)."""
    if ty in _PACKED:
        return np.asarray(a, np.uint32) ^ np.uint32(0x80008000)
    f = _fmt(ty)
    a = R.flush_subnormal_inputs(f, a) if ftz and f is not R.F64 else np.asarray(a, f.udtype)
    return a ^ f.udtype(1 << (f.width - 1))


def abs_(ty, a, ftz=False):
    """``abs{.ftz}.ty``: clear the sign bit."""
    if ty in _PACKED:
        return np.asarray(a, np.uint32) & np.uint32(0x7FFF7FFF)
    f = _fmt(ty)
    a = R.flush_subnormal_inputs(f, a) if ftz and f is not R.F64 else np.asarray(a, f.udtype)
    return a & f.udtype((1 << (f.width - 1)) - 1)


def _minmax(is_max, ty, a, b, ftz, nan, relu):
    if ty in _PACKED:
        return _packed(ty, lambda t, x, y: _minmax(is_max, t, x, y, ftz, nan, relu), a, b)
    f = _fmt(ty)
    if ftz and f is not R.F64:
        a, b = R.flush_subnormal_inputs(f, a), R.flush_subnormal_inputs(f, b)
    a, b = np.asarray(a, f.udtype), np.asarray(b, f.udtype)
    x, y = R.to_f64(f, a), R.to_f64(f, b)
    # -0.0 is treated as smaller than +0.0 (PTX ISA min/max).
    less = (x < y) | ((x == y) & np.signbit(x) & ~np.signbit(y))
    pick_a = ~less if is_max else less
    pick_a |= (x == y) & (np.signbit(x) == np.signbit(y))
    r = np.where(pick_a, a, b)
    xn, yn = np.isnan(x), np.isnan(y)
    canon = f.udtype(f.nan_mag)
    r = np.where(xn & ~yn, b, np.where(yn & ~xn, a, r))
    r = np.where(xn & yn, canon, r)
    if nan:
        r = np.where(xn | yn, canon, r)
    if relu:
        v = R.to_f64(f, r)
        r = np.where(np.signbit(v) & ~np.isnan(v), f.udtype(0), r)
    return r.astype(f.udtype)


def fmin(ty, a, b, ftz=False, nan=False, relu=False):
    """``min{.ftz}{.NaN}{.relu}.ty``: a NaN operand yields the other; both NaN -> canonical NaN."""
    return _minmax(False, ty, a, b, ftz, nan, relu)


def fmax(ty, a, b, ftz=False, nan=False, relu=False):
    """``max{.ftz}{.NaN}{.relu}.ty``."""
    return _minmax(True, ty, a, b, ftz, nan, relu)


_CMP = {
    "eq": lambda x, y: x == y, "ne": lambda x, y: x != y, "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y, "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y,
}


def compare(ty, cmp, a, b, ftz=False):
    """``setp.cmp{.ftz}.ty`` comparison (PTX ISA 9.7.3 Table "Floating-point comparison").

    Ordered ``eq ne lt le gt ge`` are false if either operand is NaN (``ne``
    included); unordered ``equ neu ltu leu gtu geu`` are true then; ``num``:
    both are numbers, ``nan``: either is NaN.  For packed types returns
    ``(lo, hi)`` boolean arrays.
    """
    if ty in _PACKED:
        return _packed(ty, lambda t, x, y: compare(t, cmp, x, y, ftz), a, b)
    f = _fmt(ty)
    x, y = _inputs(f, ftz, a, b)
    unord = np.isnan(x) | np.isnan(y)
    if cmp == "num":
        return ~unord
    if cmp == "nan":
        return unord
    if cmp in _CMP:
        return _CMP[cmp](x, y) & ~unord
    if cmp.endswith("u") and cmp[:-1] in _CMP:
        return _CMP[cmp[:-1]](x, y) | unord
    raise UnsupportedPTXError(f"setp.{cmp}.{ty} is not a PTX comparison")


def testp(ty, op, a):
    """``testp.op.ty``: finite, infinite, number, notanumber, normal, subnormal."""
    f = _fmt(ty)
    x = R.to_f64(f, a)
    mag = np.abs(x)
    tiny = 2.0 ** (1 - f.bias)
    res = {
        "finite": np.isfinite(x), "infinite": np.isinf(x), "number": ~np.isnan(x),
        "notanumber": np.isnan(x), "normal": np.isfinite(x) & (mag >= tiny),
        "subnormal": (mag > 0) & (mag < tiny),
    }.get(op)
    if res is None:
        raise UnsupportedPTXError(f"testp.{op} is not a PTX test")
    return res


def copysign(ty, a, b):
    """``copysign.ty d, a, b``: d is b with the sign of a (PTX ISA 9.7.3)."""
    f = _fmt(ty)
    s = f.udtype(1 << (f.width - 1))
    return (np.asarray(b, f.udtype) & ~s) | (np.asarray(a, f.udtype) & s)
