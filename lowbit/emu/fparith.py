"""Floating-point arithmetic of the PTX ISA on raw bit patterns (PTX ISA 9.7.3, 9.7.4).

Values cross as numpy unsigned arrays: ``f16``/``bf16`` -> uint16, ``f32`` ->
uint32, ``f64`` -> uint64, packed ``f16x2``/``bf16x2`` -> uint32 (element 0 in
bits 15:0, element 1 in bits 31:16; every packed op works per half, PTX ISA
9.7.4).  Every function is vectorised over arbitrary (broadcastable) shapes and
knows nothing about threads.  Type names are PTX's without the dot.

Public API (M decodes the modifiers of an instruction into these calls).  The
arithmetic lives here; the approximate functions, sign operations, min/max,
comparisons and classification live in :mod:`lowbit.emu.fparith_special` and
are re-exported, so every name below is ``fparith.<name>``:

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
from lowbit.emu.fparith_round import PACKED, decoded, from_float64, per_half, ptx_format, to_float64  # noqa: F401
from lowbit.emu.fparith_special import (  # noqa: F401  (re-exported: the executors call F.<name>)
    abs_, approx, compare, copysign, div_approx, fmax, fmin, neg, testp,
)
from lowbit.errors import UnsupportedPTXError

_U64 = np.uint64
_SPLIT = float(2**27 + 1)  # Veltkamp splitter for 53-bit significands


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
    if ty in PACKED:
        return per_half(ty, lambda t, x, y: _binary(op, t, x, y, rnd, ftz, sat, relu), a, b)
    f = ptx_format(ty)
    x, y = decoded(f, ftz, a, b)
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
    if ty in PACKED:
        return per_half(ty, lambda t, x, y, z: fma(t, x, y, z, rnd, ftz, sat, relu), a, b, c)
    f = ptx_format(ty)
    x, y, z = decoded(f, ftz, a, b, c)
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
    f = ptx_format(ty)
    if f not in (R.F32, R.F64):
        raise UnsupportedPTXError(f"div.{rnd}.{ty} is not a PTX instruction")
    x, y = decoded(f, ftz, a, b)
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
    f = ptx_format(ty)
    one = R.round_f64(np.float64(1.0), f)
    return div(ty, np.broadcast_to(one, np.shape(a)), a, rnd, ftz)


def sqrt(ty, a, rnd="rn", ftz=False):
    """``sqrt.rnd{.ftz}.f32`` / ``sqrt.rnd.f64``: correctly rounded square root."""
    f = ptx_format(ty)
    if f not in (R.F32, R.F64):
        raise UnsupportedPTXError(f"sqrt.{rnd}.{ty} is not a PTX instruction")
    (x,) = decoded(f, ftz, a)
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


def div_full(a, b, ftz=False):
    """``div.full{.ftz}.f32``: full-range division; returns RN(a/b) (hardware: <= 2 ulp)."""
    return div("f32", a, b, "rn", ftz)
