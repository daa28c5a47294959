"""Dequantisation of integer codes (1-8 bits): the magic-exponent form and, for 8-bit codes into bf16, the f32 magic.

Part of :mod:`lowbit.transforms._lower_dequant` (its docstring's
**Integers** paragraph is the derivation): ``lop3`` makes each half
``M + (c + o) * 2**q`` exactly, one ``fma`` with per-group constants leaves
``c - z`` exactly, and the scale multiply rounds once.
"""

from __future__ import annotations

import numpy as np

from lowbit.dtypes import DType, IntType, dtype
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import F32, I32
from lowbit.transforms import _values as vals
from lowbit.transforms._tiles import scalars
from lowbit.transforms._dequant_pairs import (
    _F32, _H2, _MAGIC, Gathered, _byte_index, _h2, _i32, _mul, _native, _pair_const, _place_pair, _scale_pairs,
    _selector, _split_pair, _thread_reg,
)
from lowbit.transforms._dequant_planes import _int_planes, _split_plan


# ----------------------------------------------------------------------------------------------- integers


def _int_ok(src: DType, dst: str, zero_dt: DType | None) -> bool:
    if not isinstance(src, IntType) or src.name.startswith("bipolar") or src.bits > 8:
        return False
    B = src.bits
    _, M, room = _MAGIC[dst]
    if B > room:
        return False
    if zero_dt is not None:
        if not isinstance(zero_dt, IntType) or zero_dt.name.startswith("bipolar") or zero_dt.bits > 8:
            return False
        o = (1 << (B - 1)) if src.is_signed else 0
        if int(zero_dt.min) + o < 0 or int(zero_dt.max) + o >= M:
            return False  # M + z + o must be a magic number of the target
    return True


def _zero_const(ctx, z_lo: Operand, z_hi: Operand, q: tuple[int, int], o: int, dst: str) -> Operand:  # noqa: ANN001
    """``(-(M 2**-q0 + o + z_lo), -(M 2**-q1 + o + z_hi))`` as one pair, from the zero registers' values."""
    key = ("dq_zero", id(z_lo), id(z_hi), q, o, dst)
    got = ctx.find(key)
    if got is not None:
        return got  # type: ignore[return-value]
    b = ctx.b
    bits, M, _ = _MAGIC[dst]
    tkey = ("dq_zmagic", id(z_lo), id(z_hi), o, dst)
    t = ctx.find(tkey)
    if t is None:  # M + z + o per half: its bits are the magic plus the integer z + o (0 <= z + o < M)
        lo = b.binary("add", ctx.i32(z_lo), Const(bits + o, I32), "dz")
        if z_hi is z_lo:
            t = b.binary("mul", lo, Const(0x10001, I32), "dz")
        else:
            hi = b.binary("add", ctx.i32(z_hi), Const(bits + o, I32), "dz")
            t = b.binary("or", lo, b.binary("shl", hi, Const(16, I32), "dz"), "dz")
        ctx.put(tkey, t)
    if q == (0, 0):
        got = b.binary("xor", t, Const(0x80008000, I32), "dz")  # -(M + z + o): flip both signs
    else:  # (M - M 2**-q) - (M + z + o), exact: integers (or 2**-q multiples) below 2 M
        k = _pair_const(ctx, M - M * 2.0 ** -q[0], M - M * 2.0 ** -q[1], dst)
        if _native(ctx, dst):
            got = b.binary("fsub", k, _h2(ctx, t, dst), "dz")
        else:
            got = b.fma(_h2(ctx, t, dst), _pair_const(ctx, -1.0, -1.0, dst), k, "dz")
    ctx.put(key, got)
    return got  # type: ignore[return-value]


def _int_pairs(ctx, codes, pos: Gathered, dst: str, zs: list[Operand] | None, factor: float) -> list[Operand] | None:  # noqa: ANN001
    src: IntType = codes.dtype
    B, n = src.bits, codes.slots
    signed = src.is_signed
    o = (1 << (B - 1)) if signed else 0
    magic, M, room = _MAGIC[dst]
    b = ctx.b
    out = []
    plan = None
    if isinstance(pos, list):
        zkeys = None if zs is None else [(id(zs[m]), id(zs[m + 1] if m + 1 < n else zs[m])) for m in range(0, n, 2)]
        plan = _split_plan(ctx, pos, n, B, room, zkeys)
    for m in range(0, n, 2):
        if B == 8 and dst == "f16":  # the code is the whole low byte: prmt brings the magic byte 0x64 too
            got = _place_pair(ctx, pos, m, B, lambda q: q if q == 0 else None, False, second=Const(0x64646464, I32))
            if got is None:
                return None
            x, q = got
            if signed:
                x = b.binary("xor", x, Const(0x00800080, I32), "dq")
        elif isinstance(pos, list):  # bit planes: the magic and the sign flip go in with the top plane
            got = _int_planes(ctx, pos, m, B, room, magic, signed, plan[m // 2] if plan is not None else None)
            if got is None:
                return None
            x, q = got
        else:
            lim = min(room, 8)  # inside one byte, and inside the target's mantissa
            got = _split_pair(ctx, pos, m, B, room) if B < 8 else None  # (8 bits: prmt brings the magic)
            if got is None:
                got = _place_pair(ctx, pos, m, B, lambda q: q if q + B <= lim else lim - B, False)
            if got is None:
                return None
            x, q = got
            keep = ((1 << B) - 1) << q[0] | (((1 << B) - 1) << q[1]) << 16
            mag = magic | magic << 16
            flip = ((1 << (q[0] + B - 1)) | (1 << (q[1] + B - 1)) << 16) if signed else 0
            # (x & keep) ^ (magic | flip): lop3 f(a, b, c) = (a & b) ^ c, lut (0xF0 & 0xCC) ^ 0xAA = 0x6A
            x = b.lop3(x, Const(keep, I32), Const(mag | flip, I32), 0x6A, hint="dq")
        s0, s1 = 2.0 ** -q[0], 2.0 ** -q[1]
        if zs is None:
            c = _pair_const(ctx, -(M * s0 + o) * factor, -(M * s1 + o) * factor, dst)
            r = b.fma(_h2(ctx, x, dst), _pair_const(ctx, s0 * factor, s1 * factor, dst), c, "dq")
        else:
            z_lo, z_hi = zs[m], zs[m + 1] if m + 1 < n else zs[m]
            r = b.fma(_h2(ctx, x, dst), _pair_const(ctx, s0, s1, dst), _h2(ctx, _zero_const(ctx, z_lo, z_hi, q, o, dst), dst), "dq")
        out.append(r)
    return out


# 8-bit integer codes into bf16: bf16's magic (M = 128) holds 7 bits, so each code goes through an f32 whose
# pattern 0x4B4000cc *is* 2**23 + 2**22 + c (one prmt drops the code byte into it; signed codes have their sign
# bit flipped first, once per word, so the byte is c + o).  One f32 sub of the exact 2**23 + 2**22 + o + z (its
# bits are the magic plus the integer o + z: one integer add per zero register, no conversion) leaves c - z
# exactly.  Then either ("pair") one cvt.rn.bf16x2.f32 per pair -- exact, when every c - z is a bf16 value --
# and one bf16x2 mul by the scale pair, or ("f32") one f32 mul by the scale's f32 value per code (exact:
# c - z has <= 9 bits, the scale 8) and one rounding cvt per pair.  Both round once, as the f32 chain does.
# Per pair: 2 prmt, 2 sub, 1 cvt, then 1 mul ("pair") or 2 ("f32").  (A split into a 7-bit bf16 magic for
# the low bits and a second magic for bit 7 costs 1 prmt, 2 lop3, >= 3 packed fma/sub and the mul: no cheaper.)
_F32_MAGIC = 0x4B400000  # 2**23 + 2**22: integers in [-2**22, 2**22) added to it stay in its binade
_F32_COST = {"pair": {"prmt": 2, "sub": 2, "cvt": 1, "mul": 1}, "f32": {"prmt": 2, "sub": 2, "cvt": 1, "mul": 2}}


def _f32_forms(src: DType, dst: str, zero_dt: DType | None, factor: float) -> list[str]:
    """The f32-magic forms exact for ``src`` codes (and ``zero_dt`` zeros) into ``dst``, cheapest first; []
    when the f32 magic does not apply (only 8-bit integer codes into bf16, where the integer path refuses)."""
    if dst != "bf16" or factor != 1.0 or not isinstance(src, IntType) or src.bits != 8:
        return []
    if src.name.startswith("bipolar"):
        return []
    zr = (0, 0)
    if zero_dt is not None:
        if not isinstance(zero_dt, IntType) or zero_dt.name.startswith("bipolar") or zero_dt.bits > 8:
            return []
        zr = (int(zero_dt.min), int(zero_dt.max))
    diffs = np.arange(int(src.min) - zr[1], int(src.max) - zr[0] + 1, dtype=np.float64)
    forms = ["pair", "f32"] if bool(np.all(_exact(diffs, dst))) else ["f32"]
    return sorted(forms, key=lambda f: sum(_F32_COST[f].values()))


def _f32_magic(ctx, codes, pos, zero, scale, dst: str, form: str) -> list[Operand] | None:  # noqa: ANN001
    """The result words of 8-bit integer codes into ``dst`` through the f32 magic (see above)."""
    if isinstance(pos, list):
        return None  # bit planes: the code is not one byte of a word
    n = codes.slots
    if any(np.any(np.asarray(p) % 8) for _, _, p in pos.slots):
        return None
    b = ctx.b
    o = 128 if codes.dtype.is_signed else 0
    magic = Const(_F32_MAGIC, I32)

    def value(m: int) -> Operand:  # 2**23 + 2**22 + c + o as an f32
        w, sh, _ = pos.slots[m]
        if o:  # every byte's sign bit, once per word
            w = _thread_reg(ctx, ("dq_flip8", id(w)),
                            lambda b_, w=w: b_.binary("xor", w, Const(0x80808080, I32), "dqf"))  # fmt: skip
        sel = _selector(ctx, [(_byte_index(ctx, sh, 0), 0), (5, 0), (6, 0), (7, 0)])
        return b.cast("bitcast", b.op(S.Prmt, I32, w, magic, sel, hint="dq"), F32, "dqf")

    def bias(z: Operand | None) -> Operand:  # 2**23 + 2**22 + o + z, exact: its bits are the magic plus o + z
        if z is None:
            return Const(float(2**23 + 2**22 + o), F32)
        return _thread_reg(ctx, ("dq_f32zero", id(z), o), lambda b_: b_.cast(
            "bitcast", b_.binary("add", ctx.i32(z), Const(_F32_MAGIC + o, I32), "dz"), F32, "dz"))

    def s32(s: Operand) -> Operand:  # the scale's f32 value (exact), once per scale register
        return _thread_reg(ctx, ("dq_s32", id(s)), lambda b_: vals.convert(b_, s, scale.dtype, _F32))

    zs = scalars(ctx, zero) if zero is not None else None
    ss = scalars(ctx, scale) if scale is not None and form == "f32" else None
    sp = _scale_pairs(ctx, scale, dst) if scale is not None and form == "pair" else None
    out = []
    for k, m in enumerate(range(0, n, 2)):
        halves = []
        for j in (m, min(m + 1, n - 1)):
            v = vals.binary(b, "sub", value(j), bias(zs[j] if zs is not None else None), _F32)
            if ss is not None:
                v = vals.binary(b, "mul", v, s32(ss[j]), _F32)
            halves.append(v)
        r = b.op(S.CvtPack, _H2[dst], "bf16x2.rn", halves[0], halves[1], hint="cv")
        if sp is not None:
            r = _mul(ctx, r, sp[k], dst)
        out.append(_i32(ctx, r))
    return out


def _factor_exact(src: IntType, dst: str, factor: float) -> bool:
    """Whether ``c * factor`` and the fma constants ``(M 2**-q + o) * factor`` are exact in ``dst`` for every code."""
    _, M, _ = _MAGIC[dst]
    o = (1 << (src.bits - 1)) if src.is_signed else 0
    vals_ = [float(c) * factor for c in range(int(src.min), int(src.max) + 1)]
    vals_ += [-(M * 2.0**-q + o) * factor for q in range(8)] + [2.0**-q * factor for q in range(8)]
    return bool(np.all(_exact(np.asarray(vals_, dtype=np.float64), dst)))


def _exact(x: np.ndarray, dst: str) -> np.ndarray:
    """Per element: whether the float64 ``x`` is a value of ``dst`` (NaN counts as one)."""
    t = dtype(dst)
    with np.errstate(all="ignore"):
        back = np.asarray(t.decode(t.encode(x)), dtype=np.float64)
    return (back == x) & (np.signbit(back) == np.signbit(x)) | (np.isnan(back) & np.isnan(x))
