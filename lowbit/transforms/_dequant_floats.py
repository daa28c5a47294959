"""Dequantisation of float codes ``eXmY`` (at most 8 bits): fields moved into f16/bf16, the bias a power of two.

Part of :mod:`lowbit.transforms._lower_dequant` (its docstring's **Floats**
paragraph): :func:`float_map` checks on the format's whole table that moving
the fields gives ``value * 2**k`` for every code; :func:`_float_pairs` builds
the pairs.
"""

from __future__ import annotations

import functools

import numpy as np

from lowbit.dtypes import DType, FloatType, dtype
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import I32
from lowbit.transforms._dequant_pairs import (
    _MAGIC, Gathered, _h2, _mul, _pair_const, _place_pair, _place_planes, _split_pair,
)
from lowbit.transforms._dequant_planes import _float_planes
from lowbit.transforms._dequant_ints import _exact


# ----------------------------------------------------------------------------------------------- floats


@functools.lru_cache(maxsize=None)
def float_map(src: DType, dst: str, factor: float) -> tuple[float, bool] | None:
    """``(m, nan_fix)``: the factor ``m`` that turns every code's field pattern in ``dst`` into its value times
    ``factor``, exactly, and whether the NaN codes (all-ones fields) need the fix-up.

    The pattern puts the code's sign at bit 15 and its exponent and mantissa fields into the target's with
    the mantissa's top aligned.  None when some code (NaN and infinity codes included) does not map, or
    the product is not exact in ``dst``.
    """
    if not isinstance(src, FloatType) or src.bits > 8 or getattr(src, "table", None) is not None:
        return None
    _, _, tm = _MAGIC[dst]
    X, Y = src.exponent, src.mantissa
    te = 5 if dst == "f16" else 8
    if X > te or Y > tm:
        return None
    codes = np.arange(1 << src.bits, dtype=np.uint64)
    values = np.asarray(src.decode(codes), dtype=np.float64)
    em = codes & ((1 << (X + Y)) - 1)
    sign = (codes >> (X + Y)) & 1 if src.signed else np.zeros_like(codes)
    pat = (sign << 15 | em << (tm - Y)).astype(np.uint16)
    pv = np.asarray(dtype(dst).decode(pat.astype(np.uint64)), dtype=np.float64)
    tb = 15 if dst == "f16" else 127
    k = (tb - src.bias)  # pattern = value * 2**(bias - tb)
    mult = 2.0**k * factor
    with np.errstate(all="ignore"):
        got = pv * mult  # exact in float64 (a power of two); it must also be a dst value: one exact mul.f16x2
        want = values * factor
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    same &= _exact(got, dst)
    nan_fix = False
    if not same.all():
        # the "fn" convention: NaN is the code whose exponent and mantissa bits are all ones, which the field
        # pattern makes a finite number -- fixable with a carry test; any other mismatch is not
        full = em == (1 << (X + Y)) - 1
        if not (src.signed and np.array_equal(~same, full) and np.isnan(values[full]).all()):
            return None
        nan_fix = True
    if not _exact(np.asarray([mult]), dst).all():
        return None
    return mult, nan_fix


def _float_pairs(ctx, codes, pos: Gathered, dst: str, mult: float, nan_fix: bool) -> list[Operand] | None:  # noqa: ANN001
    src: FloatType = codes.dtype
    B, n = src.bits, codes.slots
    X, Y = src.exponent, src.mantissa
    _, _, tm = _MAGIC[dst]
    top = tm + X  # the exponent field's top bit + 1 in the target half
    b = ctx.b
    out = []
    for m in range(0, n, 2):
        # each code to the top of its byte (its sign, or an unsigned format's exponent top, at bit 7), that byte
        # the high byte of its half
        sgn = src.signed
        if isinstance(pos, list) and not nan_fix:  # every bit straight to its field: the pattern itself
            x = _float_planes(ctx, pos, m, src, tm)
            if x is None:
                return None
            r = _h2(ctx, x, dst)
            if mult != 1.0:
                r = _mul(ctx, r, _pair_const(ctx, mult, mult, dst), dst)
            out.append(r)
            continue
        if isinstance(pos, list):
            got = _place_planes(ctx, pos, m, 8 - B, True, None)
        else:
            got = _split_pair(ctx, pos, m, B, 16, top=True) or _place_pair(
                ctx, pos, m, B, lambda q: 8 - B if q <= 8 - B else None, True)
        if got is None:
            return None
        t, _ = got
        em_mask = ((1 << (X + Y)) - 1) << (tm - Y)
        em2 = em_mask | em_mask << 16
        if sgn and top == 15:  # the fields are where the target wants them (e5m2 -> f16): keep them and the sign
            x = b.binary("and", t, Const(em2 | 0x80008000, I32), "dq")
        elif sgn:
            shift = 15 - top  # the fields now end at bit 15 (below the sign): move them down to the target's
            e = b.binary("lshr", t, Const(shift, I32), "dq") if shift else t
            if nan_fix:  # all-ones fields carry into bit 15 of y; prmt spreads that bit over the half's high byte
                src_em = ((1 << (X + Y)) - 1) << (16 - B)
                y = b.binary("add", b.binary("and", t, Const(src_em | src_em << 16, I32), "dqn"),
                             Const((1 << (16 - B)) * 0x10001, I32), "dqn")  # fmt: skip
                nanm = b.op(S.Prmt, I32, y, Const(0, I32), Const(0xB494, I32), hint="dqn")  # [0, sign(y1), 0, sign(y3)]
                # (t & 0x8000) | (nanm & ~0x8000): the sign, and ones over the exponent of a NaN code
                sg = b.lop3(t, nanm, Const(0x80008000, I32), 0xE4, hint="dq")
            else:
                sg = b.binary("and", t, Const(0x80008000, I32), "dq")
            x = b.lop3(e, Const(em2, I32), sg, 0xEA, hint="dq")  # (a & b) | c
        else:
            shift = 16 - top
            e = b.binary("lshr", t, Const(shift, I32), "dq") if shift else t
            x = b.binary("and", e, Const(em2, I32), "dq")
        r = _h2(ctx, x, dst)
        if mult != 1.0:
            r = _mul(ctx, r, _pair_const(ctx, mult, mult, dst), dst)
        out.append(r)
    return out
