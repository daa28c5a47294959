"""Approximate functions, sign operations, min/max, comparisons and classification (PTX ISA 9.7.3, 9.7.4).

Split from :mod:`lowbit.emu.fparith` (which re-exports every name here), on
the seam between operations that round an exact arithmetic result (there)
and these, which either evaluate a transcendental approximation once in
float64 and round it (``approx``, ``div_approx``) or only look at and move
bits (``neg``, ``abs_``, ``fmin``/``fmax``, ``compare``, ``testp``,
``copysign``).  Conventions are fparith's: raw bit patterns in numpy
unsigned arrays, packed f16x2/bf16x2 worked per half, canonical NaNs.
"""

from __future__ import annotations

import numpy as np

from lowbit.emu import fparith_round as R
from lowbit.emu.fparith_round import PACKED, decoded, per_half, ptx_format
from lowbit.errors import UnsupportedPTXError


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
    if ty in PACKED:
        return per_half(ty, lambda t, x: approx(op, t, x, ftz), a)
    f = ptx_format(ty)
    x = decoded(f, ftz, a)[0]
    return R.round_f64(_approx_f64(op, x), f, "rn", ftz=ftz)


def div_approx(a, b, ftz=False):
    """``div.approx{.ftz}.f32``: a * (1/b); for 2^126 <= |b| <= 2^128 the ISA's result is 0."""
    x, y = decoded(R.F32, ftz, a, b)
    with np.errstate(all="ignore"):
        q = x / y
        tiny = (np.abs(y) >= 2.0**126) & np.isfinite(y) & np.isfinite(x)
        q = np.where(tiny, 0.0 * np.sign(x) * np.sign(y), q)
    return R.round_f64(q, R.F32, "rn", ftz=ftz)


# ------------------------------------------------------------ sign, min/max, compare, classify


def neg(ty, a, ftz=False):
    """``neg{.ftz}.ty``: flip the sign bit (NaN stays NaN with its payload, as in hardware)."""
    if ty in PACKED:
        return np.asarray(a, np.uint32) ^ np.uint32(0x80008000)
    f = ptx_format(ty)
    a = R.flush_subnormal_inputs(f, a) if ftz and f is not R.F64 else np.asarray(a, f.udtype)
    return a ^ f.udtype(1 << (f.width - 1))


def abs_(ty, a, ftz=False):
    """``abs{.ftz}.ty``: clear the sign bit."""
    if ty in PACKED:
        return np.asarray(a, np.uint32) & np.uint32(0x7FFF7FFF)
    f = ptx_format(ty)
    a = R.flush_subnormal_inputs(f, a) if ftz and f is not R.F64 else np.asarray(a, f.udtype)
    return a & f.udtype((1 << (f.width - 1)) - 1)


def _minmax(is_max, ty, a, b, ftz, nan, relu):
    if ty in PACKED:
        return per_half(ty, lambda t, x, y: _minmax(is_max, t, x, y, ftz, nan, relu), a, b)
    f = ptx_format(ty)
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
    if ty in PACKED:
        return per_half(ty, lambda t, x, y: compare(t, cmp, x, y, ftz), a, b)
    f = ptx_format(ty)
    x, y = decoded(f, ftz, a, b)
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
    f = ptx_format(ty)
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
    f = ptx_format(ty)
    s = f.udtype(1 << (f.width - 1))
    return (np.asarray(b, f.udtype) & ~s) | (np.asarray(a, f.udtype) & s)
