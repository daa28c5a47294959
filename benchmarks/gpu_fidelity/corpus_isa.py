"""Instruction-family cases in hand-written PTX: cvt, fma, integer corners, lop3/prmt/bfe/bfi, shfl, ldmatrix.

Every reference here is numpy / ml_dtypes / exact rational arithmetic written
from the PTX ISA text, never from ``lowbit.emu``.  NaN results of
conversions and fma are the canonical NaN (f16/bf16 0x7fff, f32 0x7fffffff,
e4m3/e5m2 0x7f) -- the ISA's statement; a GPU that differs shows up as a
fidelity failure on exactly those elements.

Tier "default" keeps every family with a few thousand inputs; tier "full"
adds the exhaustive sweeps (all 65536 f16 / fp8x2 inputs).
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
from corpus import Case, Out, elementwise_case, source, HEADER

E4M3, E5M2 = ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2
BF16 = ml_dtypes.bfloat16
F8 = {"e4m3": (E4M3, 448.0, 0x7F), "e5m2": (E5M2, 57344.0, 0x7F)}


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(sum(map(ord, name)) * 7919)


# ----------------------------------------------------------------------------- float helpers (numpy only)


def f8_to_f16_bits(codes: np.ndarray, fmt: str) -> np.ndarray:
    """fp8 codes -> f16 bits (exact; NaN -> canonical 0x7fff)."""
    dt = F8[fmt][0]
    v = codes.astype(np.uint8).view(dt).astype(np.float32)
    out = v.astype(np.float16).view(np.uint16).copy()
    out[np.isnan(v)] = 0x7FFF
    return out


def to_f8_satfinite(x: np.ndarray, fmt: str) -> np.ndarray:
    """float (f16/f32 values) -> fp8 codes, round to nearest even, .satfinite (NaN -> 0x7f)."""
    dt, mx, nan = F8[fmt]
    x = x.astype(np.float32)
    c = np.clip(x, -mx, mx)  # clamping before rounding is the same as after (the max is representable)
    codes = c.astype(dt).view(np.uint8).copy()
    codes[np.isnan(x)] = nan
    return codes


def _step(bits: np.ndarray, nbits: int, away: np.ndarray) -> np.ndarray:
    """One ulp away from zero (away) or toward zero (~away) on sign-magnitude bits."""
    b = bits.astype(np.int64)
    return np.where(away, b + 1, b - 1).astype(bits.dtype)


def round_f32_to(x32: np.ndarray, fmt: str, rnd: str) -> np.ndarray:
    """f32 values -> f16/bf16 bits under rn/rz/rm/rp (correct rounding; NaN canonical)."""
    x = x32.astype(np.float64)
    dt = np.float16 if fmt == "f16" else BF16
    with np.errstate(over="ignore"):
        r = x32.astype(np.float32).astype(dt)
    bits = r.view(np.uint16).copy()
    back = r.astype(np.float64)
    neg = np.signbit(back)
    fin = ~np.isnan(x)
    if rnd == "rz":
        fix = fin & (np.abs(back) > np.abs(x))
        bits = np.where(fix, _step(bits, 16, np.zeros_like(fix)), bits)
    elif rnd == "rm":
        fix = fin & (back > x)
        bits = np.where(fix, _step(bits, 16, neg), bits)  # toward -inf: away from 0 if negative
    elif rnd == "rp":
        fix = fin & (back < x)
        bits = np.where(fix, _step(bits, 16, ~neg), bits)
    bits = np.where(np.isnan(x), 0x7FFF, bits).astype(np.uint16)
    # a zero result keeps the sign of x
    return bits


def float_to_int(x: np.ndarray, dst: str, rnd: str) -> np.ndarray:
    w = int(dst[1:])
    signed = dst[0] == "s"
    lo, hi = (-(2 ** (w - 1)), 2 ** (w - 1) - 1) if signed else (0, 2**w - 1)
    f = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor, "rpi": np.ceil}[rnd]
    with np.errstate(invalid="ignore"):
        v = f(x.astype(np.float64))
    out = []
    for t in v.tolist():
        r = 0 if t != t else (hi if t == float("inf") else lo if t == float("-inf") else min(max(int(t), lo), hi))
        out.append(r & (2**w - 1))
    return np.array(out, dtype=np.uint64).astype({8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[w])


def _f32_specials() -> np.ndarray:
    b = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 1, 0x807FFFFF,
                  0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000], np.uint32)
    return b.view(np.float32)


def f32_inputs(name: str, n: int) -> np.ndarray:
    """Random f32 over all binades + specials + f16/bf16 rounding ties and near-ties."""
    rng = _rng(name)
    rnd = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    mid = (rng.standard_normal(n) * np.exp2(rng.integers(-30, 20, n))).astype(np.float32)
    # ties for f16 (13 dropped bits: pattern 1000000000000) and bf16 (16 dropped bits: 0x8000), +-1 ulp
    base = rng.integers(0, 2**32, n // 4, dtype=np.uint64).astype(np.uint32)
    ties16 = (base & np.uint32(0xFFFFE000)) | np.uint32(0x1000)
    ties_bf = (base & np.uint32(0xFFFF0000)) | np.uint32(0x8000)
    near = np.concatenate([ties16 + np.uint32(1), ties16 - np.uint32(1), ties_bf + np.uint32(1), ties_bf - np.uint32(1)])
    # f16 range edges (65504, 65520 = the overflow tie), subnormals
    edges = np.array([65504, 65519.99, 65520, 65536, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-9, 3.39e38], np.float32)
    v = np.concatenate([rnd, mid, ties16.view(np.float32), ties_bf.view(np.float32), near.view(np.float32), edges, -edges,
                        _f32_specials()])
    return v.astype(np.float32)


# ----------------------------------------------------------------------------- cvt


def _cvt_cases(tier: str):
    full = tier in ("full", "exhaustive")
    rng = _rng("cvt")
    # fp8x2 -> f16x2 (sm_89): all 65536 (full) or a random 4096 + the 256 x same-byte pairs
    for fmt in ("e4m3", "e5m2"):
        if full:
            a = np.arange(65536, dtype=np.uint32).astype(np.uint16)
        else:
            a = np.concatenate([rng.integers(0, 65536, 4096).astype(np.uint16), (np.arange(256) * 257).astype(np.uint16)])
        lo, hi = f8_to_f16_bits(a & 0xFF, fmt), f8_to_f16_bits(a >> 8, fmt)
        ref = lo.astype(np.uint32) | (hi.astype(np.uint32) << 16)
        yield elementwise_case(f"cvt_f16x2_{fmt}x2{'_all' if full else ''}", f"    cvt.rn.f16x2.{fmt}x2 %d0, %a0;",
                               [a], [ref], target="sm_89", version="8.1")
    # f16x2 -> fp8x2 satfinite (sm_89): every f16 value (full) in both halves
    for fmt in ("e4m3", "e5m2"):
        if full:
            h = np.arange(65536, dtype=np.uint32).astype(np.uint16)
            other = np.roll(h, 12345)
        else:
            h = rng.integers(0, 65536, 4096).astype(np.uint16)
            other = rng.integers(0, 65536, 4096).astype(np.uint16)
        a = h.astype(np.uint32) | (other.astype(np.uint32) << 16)
        lo = to_f8_satfinite(h.view(np.float16), fmt)
        hi = to_f8_satfinite(other.view(np.float16), fmt)
        ref = (lo.astype(np.uint16) | (hi.astype(np.uint16) << 8)).astype(np.uint16)
        yield elementwise_case(f"cvt_{fmt}x2_f16x2{'_all' if full else ''}", f"    cvt.rn.satfinite.{fmt}x2.f16x2 %d0, %a0;",
                               [a], [ref], target="sm_89", version="8.1")
    if tier == "exhaustive":
        return
    # f32 pair -> fp8x2 satfinite: d = {cvt(a) in the upper byte, cvt(b) in the lower}
    x = f32_inputs("cvt_fp8_f32", 2048)
    y = np.roll(x, 7)
    for fmt in ("e4m3", "e5m2"):
        ref = (to_f8_satfinite(x, fmt).astype(np.uint16) << 8) | to_f8_satfinite(y, fmt).astype(np.uint16)
        yield elementwise_case(f"cvt_{fmt}x2_f32", f"    cvt.rn.satfinite.{fmt}x2.f32 %d0, %a0, %a1;",
                               [x.view(np.uint32), y.view(np.uint32)], [ref.astype(np.uint16)], target="sm_89", version="8.1")
    # f32 -> f16 / bf16, all rounding modes the ISA allows
    x = f32_inputs("cvt_f32_f16", 2048)
    for fmt, modes, target, ver in (("f16", ("rn", "rz", "rm", "rp"), "sm_80", "8.0"),
                                    ("bf16", ("rn", "rz", "rm", "rp"), "sm_90", "8.0")):
        for rnd in modes:
            ref = round_f32_to(x, fmt, rnd)
            yield elementwise_case(f"cvt_{rnd}_{fmt}_f32", f"    cvt.{rnd}.{fmt}.f32 %d0, %a0;", [x.view(np.uint32)], [ref],
                                   target=target, version=ver)
    # f32 pair -> f16x2 / bf16x2 (rn): a in the upper half
    y = np.roll(x, 3)
    for fmt in ("f16", "bf16"):
        ref = (round_f32_to(x, fmt, "rn").astype(np.uint32) << 16) | round_f32_to(y, fmt, "rn").astype(np.uint32)
        yield elementwise_case(f"cvt_rn_{fmt}x2_f32", f"    cvt.rn.{fmt}x2.f32 %d0, %a0, %a1;",
                               [x.view(np.uint32), y.view(np.uint32)], [ref])
    # f16 -> f32 (exact; every f16 value)
    h = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    v = h.view(np.float16).astype(np.float32)
    ref = v.view(np.uint32).copy()
    ref[np.isnan(v)] = 0x7FFFFFFF
    yield elementwise_case("cvt_f32_f16_all", "    cvt.f32.f16 %d0, %a0;", [h], [ref])
    # float -> int, all modes
    xi = np.concatenate([f32_inputs("cvt_f2i", 512), np.arange(-40, 40, 0.25, dtype=np.float32),
                         np.float32([2**31, -(2**31), 2**31 - 128, 2**32, 4294967040.0, -0.5, 255.5, 256.0, -128.5, 65535.5])])
    for dst in ("s32", "u32", "s8", "u8", "s16", "u16", "s64", "u64"):
        for rnd in ("rni", "rzi", "rmi", "rpi"):
            ref = float_to_int(xi, dst, rnd)
            w = int(dst[1:])
            if w == 8:  # 8-bit results travel in 16-bit registers: store the low byte
                yield elementwise_case(f"cvt_{rnd}_{dst}_f32", f"    cvt.{rnd}.{dst}.f32 %d0, %a0;", [xi.view(np.uint32)], [ref])
            else:
                yield elementwise_case(f"cvt_{rnd}_{dst}_f32", f"    cvt.{rnd}.{dst}.f32 %d0, %a0;", [xi.view(np.uint32)], [ref])
    # int -> f32 (rn): numpy's int -> float32 is round-to-nearest-even
    ii = np.concatenate([rng.integers(-(2**31), 2**31, 1024), [2**24 + 1, 2**24 + 3, -(2**31), 2**31 - 1, 0, -1]]).astype(np.int32)
    yield elementwise_case("cvt_rn_f32_s32", "    cvt.rn.f32.s32 %d0, %a0;", [ii.view(np.uint32)], [ii.astype(np.float32).view(np.uint32)])
    uu = ii.view(np.uint32)
    yield elementwise_case("cvt_rn_f32_u32", "    cvt.rn.f32.u32 %d0, %a0;", [uu], [uu.astype(np.float32).view(np.uint32)])


# ----------------------------------------------------------------------------- fma.rn (exact rational reference)


def _round_bits(v: Fraction, fmt: str) -> int:
    """``v`` rounded to nearest even in f32/f16/bf16 (bits), IEEE overflow to inf."""
    from tests.emu.ref_float import round_fraction

    return round_fraction(fmt, v, "rn")


def _fma_ref(a: np.ndarray, b: np.ndarray, c: np.ndarray, fmt: str) -> np.ndarray:
    dec = {"f32": np.float32, "f16": np.float16, "bf16": BF16}[fmt]
    ut = np.uint32 if fmt == "f32" else np.uint16
    nanbits = 0x7FFFFFFF if fmt == "f32" else 0x7FFF
    av, bv, cv = (np.asarray(t).view(dec).astype(np.float64) for t in (a, b, c))
    with np.errstate(invalid="ignore", over="ignore"):
        special = av * bv + cv  # right for inf/nan cases
    out = np.empty(len(av), ut)
    for i in range(len(av)):
        x, y, z = av[i], bv[i], cv[i]
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z)):
            s = special[i]
            out[i] = nanbits if np.isnan(s) else (np.array(s).astype(dec).view(ut))
            continue
        v = Fraction(x) * Fraction(y) + Fraction(z)
        if v == 0:  # exact zero: +0 unless both addends are -0 (round to nearest)
            neg = (np.signbit(x) != np.signbit(y)) and np.signbit(z) if x * y == 0 else False
            out[i] = (1 << (8 * np.dtype(ut).itemsize - 1)) if neg else 0
            continue
        out[i] = _round_bits(v, fmt)
    return out


def _fma_inputs(fmt: str, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adversarial: cancellation (c = -round(a b)), near-ties, subnormal products, overflow, specials."""
    dec = {"f32": np.float32, "f16": np.float16, "bf16": BF16}[fmt]
    ut = np.uint32 if fmt == "f32" else np.uint16
    nb = 8 * np.dtype(ut).itemsize
    a = rng.integers(0, 2**nb, n, dtype=np.uint64).astype(ut)
    b = rng.integers(0, 2**nb, n, dtype=np.uint64).astype(ut)
    av = (rng.uniform(1, 2, n) * np.exp2(rng.integers(-8, 8, n))).astype(dec)
    bv = (rng.uniform(1, 2, n) * np.exp2(rng.integers(-8, 8, n))).astype(dec)
    with np.errstate(over="ignore"):
        prod = (av.astype(np.float64) * bv.astype(np.float64)).astype(dec)
    cc = (-prod.astype(np.float64)).astype(dec)  # cancellation: the result is the product's rounding error
    half = (prod.astype(np.float64) * rng.choice([2.0**-12, 2.0**-25, 1e-3, 0.5], n)).astype(dec)
    a[: n // 2] = av[: n // 2].view(ut)
    b[: n // 2] = bv[: n // 2].view(ut)
    c = rng.integers(0, 2**nb, n, dtype=np.uint64).astype(ut)
    c[: n // 4] = cc[: n // 4].view(ut)
    c[n // 4 : n // 2] = half[n // 4 : n // 2].view(ut)
    return a, b, c


def _fma_cases(tier: str):
    if tier == "exhaustive":
        return
    rng = _rng("fma")
    a, b, c = _fma_inputs("f32", 1024, rng)
    yield elementwise_case("fma_rn_f32", "    fma.rn.f32 %d0, %a0, %a1, %a2;", [a, b, c], [_fma_ref(a, b, c, "f32")])
    for fmt in ("f16", "bf16"):
        a0, b0, c0 = _fma_inputs(fmt, 1024, rng)
        a1, b1, c1 = _fma_inputs(fmt, 1024, rng)
        pack = lambda lo, hi: lo.astype(np.uint32) | (hi.astype(np.uint32) << 16)  # noqa: E731
        ref = pack(_fma_ref(a0, b0, c0, fmt), _fma_ref(a1, b1, c1, fmt))
        yield elementwise_case(f"fma_rn_{fmt}x2", f"    fma.rn.{fmt}x2 %d0, %a0, %a1, %a2;",
                               [pack(a0, a1), pack(b0, b1), pack(c0, c1)], [ref])
        yield elementwise_case(f"fma_rn_{fmt}", f"    fma.rn.{fmt} %d0, %a0, %a1, %a2;", [a0, b0, c0],
                               [_fma_ref(a0, b0, c0, fmt)])


# ----------------------------------------------------------------------------- integer corners and bit ops

M32 = (1 << 32) - 1


def _s32(u: np.ndarray) -> np.ndarray:
    return u.astype(np.uint32).view(np.int32).astype(np.int64)


def _int_inputs(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x80000001, 3, 0x10000, 0xFFFF], np.uint32)
    a = np.concatenate([rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32), np.repeat(corners, len(corners))])
    b = np.concatenate([rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32), np.tile(corners, len(corners))])
    small = rng.integers(-300, 300, n // 4).astype(np.int64).astype(np.uint32)
    b[: n // 4] = small  # small divisors (incl. 0 and negative)
    return a, b


def _intop_cases(tier: str):
    if tier == "exhaustive":
        return
    rng = _rng("int")
    a, b = _int_inputs(1024, rng)
    ua, ub = a.astype(np.uint64), b.astype(np.uint64)
    sa, sb = _s32(a), _s32(b)
    u32 = lambda v: np.array([int(t) & M32 for t in v], np.uint64).astype(np.uint32)  # noqa: E731
    yield elementwise_case("mul_hi_u32", "    mul.hi.u32 %d0, %a0, %a1;", [a, b], [((ua * ub) >> np.uint64(32)).astype(np.uint32)])
    prod = [int(x) * int(y) for x, y in zip(sa, sb)]
    yield elementwise_case("mul_hi_s32", "    mul.hi.s32 %d0, %a0, %a1;", [a, b], [u32([p >> 32 for p in prod])])
    yield elementwise_case("mul_lo_s32", "    mul.lo.s32 %d0, %a0, %a1;", [a, b], [u32(prod)])
    yield elementwise_case("mul_wide_s32", "    mul.wide.s32 %d0, %a0, %a1;", [a, b],
                           [np.array([p & (2**64 - 1) for p in prod], np.uint64)])
    # div/rem: by zero is undefined for integers in the ISA, and so (for div.s32) is MIN / -1.  The
    # defined inputs are compared bit for bit; the undefined ones go to separate cases run with the
    # emulator's checks off, every element masked (the GPU must simply not fault).
    for signed in (False, True):
        undef = (b == 0) | (((sa == -(2**31)) & (sb == -1)) if signed else False)
        x, y = a[~undef], b[~undef]
        for op in ("div", "rem"):
            ty = "s32" if signed else "u32"
            yield elementwise_case(f"{op}_{ty}", f"    {op}.{ty} %d0, %a0, %a1;", [x, y], [_divrem(x, y, op, signed)])
            xu, yu = a[undef], b[undef]
            yield elementwise_case(f"{op}_{ty}_undefined", f"    {op}.{ty} %d0, %a0, %a1;", [xu, yu],
                                   [np.zeros(len(xu), np.uint32)], rules=[{"mask": np.zeros(len(xu), bool)}], checks=False,
                                   note="ISA-undefined results (by zero, MIN/-1): nothing compared; checks that the "
                                        "hardware runs it without a fault")
    # shifts: amounts >= 32 clamp (shl/shr.u -> 0, shr.s -> sign fill)
    sh = np.concatenate([rng.integers(0, 40, len(a) - 4), [31, 32, 33, 0xFFFFFFFF]]).astype(np.uint32)
    k = np.minimum(sh.astype(np.uint64), 32)
    shl = np.where(k >= 32, 0, (ua << np.minimum(k, 31)) & np.uint64(M32)).astype(np.uint32)
    shr = np.where(k >= 32, 0, ua >> np.minimum(k, 31)).astype(np.uint32)
    sar = u32([int(x) >> min(int(s), 32) for x, s in zip(sa, sh)])
    yield elementwise_case("shl_b32", "    shl.b32 %d0, %a0, %a1;", [a, sh], [shl])
    yield elementwise_case("shr_u32", "    shr.u32 %d0, %a0, %a1;", [a, sh], [shr])
    yield elementwise_case("shr_s32", "    shr.s32 %d0, %a0, %a1;", [a, sh], [sar])
    yield elementwise_case("popc_clz_brev_bfind", "\n".join([
        "    popc.b32 %t0, %a0;", "    clz.b32 %t1, %a0;", "    brev.b32 %t2, %a0;", "    bfind.s32 %t3, %a0;",
        "    bfind.u32 %t4, %a0;", "    xor.b32 %t5, %t0, %t1;", "    shl.b32 %t5, %t5, 8;",
        "    xor.b32 %d0, %t5, %t2;", "    shl.b32 %t3, %t3, 16;", "    and.b32 %t4, %t4, 0xffff;", "    or.b32 %d1, %t3, %t4;"]),
        [a], [_popc_clz_brev(a), _bfind(a)])
    # lop3: a few truth tables on random words (d = LUT[(a_i << 2) | (b_i << 1) | c_i] per bit)
    c = rng.integers(0, 2**32, len(a), dtype=np.uint64).astype(np.uint32)
    for imm in (0x96, 0xE8, 0xCA, 0x1E, 0x80, 0xFE, 0x6A, 0x00, 0xFF):
        ref = np.zeros(len(a), np.uint32)
        for bits in range(8):
            if imm >> bits & 1:
                ta = a if bits & 4 else ~a
                tb = b if bits & 2 else ~b
                tc = c if bits & 1 else ~c
                ref |= ta & tb & tc
        yield elementwise_case(f"lop3_{imm:02x}", f"    lop3.b32 %d0, %a0, %a1, %a2, 0x{imm:02x};", [a, b, c], [ref])
    # prmt default mode (selector nibbles incl. the sign-replicate bit 3)
    sel = rng.integers(0, 2**16, len(a)).astype(np.uint32)
    yield elementwise_case("prmt_b32", "    prmt.b32 %d0, %a0, %a1, %a2;", [a, b, sel], [_prmt(a, b, sel)])
    # bfe.u32 / bfe.s32 (pos, len from bytes of c, may exceed 32), bfi.b32
    pos = (c & 0xFF) % 40
    ln = ((c >> 8) & 0xFF) % 40
    yield elementwise_case("bfe_u32", "    and.b32 %t0, %a1, 0xff;\n    shr.u32 %t1, %a1, 8;\n    and.b32 %t1, %t1, 0xff;\n"
                           "    bfe.u32 %d0, %a0, %t0, %t1;", [a, (pos | (ln << 8)).astype(np.uint32)], [_bfe(a, pos, ln, False)])
    yield elementwise_case("bfe_s32", "    and.b32 %t0, %a1, 0xff;\n    shr.u32 %t1, %a1, 8;\n    and.b32 %t1, %t1, 0xff;\n"
                           "    bfe.s32 %d0, %a0, %t0, %t1;", [a, (pos | (ln << 8)).astype(np.uint32)], [_bfe(a, pos, ln, True)])
    yield elementwise_case("bfi_b32", "    and.b32 %t0, %a2, 0xff;\n    shr.u32 %t1, %a2, 8;\n    and.b32 %t1, %t1, 0xff;\n"
                           "    bfi.b32 %d0, %a0, %a1, %t0, %t1;", [a, b, (pos | (ln << 8)).astype(np.uint32)],
                           [_bfi(a, b, pos, ln)])


def _divrem(x, y, op, signed):
    out = []
    for p, q in zip(x.tolist(), y.tolist()):
        if signed:
            p, q = (p - 2**32 if p >> 31 else p), (q - 2**32 if q >> 31 else q)
        quo = abs(p) // abs(q) * (1 if (p < 0) == (q < 0) else -1)  # C: truncation toward zero
        out.append((quo if op == "div" else p - quo * q) & M32)
    return np.array(out, np.uint64).astype(np.uint32)


def _popc_clz_brev(a: np.ndarray) -> np.ndarray:
    out = []
    for x in a.tolist():
        popc = bin(x).count("1")
        clz = 32 - x.bit_length()
        brev = int(f"{x:032b}"[::-1], 2)
        out.append(((((popc ^ clz) << 8) & M32) ^ brev) & M32)
    return np.array(out, np.uint64).astype(np.uint32)


def _bfind(a: np.ndarray) -> np.ndarray:
    out = []
    for x in a.tolist():
        u = x.bit_length() - 1 if x else 0xFFFFFFFF
        s = x if x < 2**31 else (~x) & M32  # signed: the most significant non-sign bit
        sb = s.bit_length() - 1 if s else 0xFFFFFFFF
        out.append((((sb << 16) & M32) | (u & 0xFFFF)))
    return np.array(out, np.uint64).astype(np.uint32)


def _prmt(a, b, sel):
    out = []
    for x, y, s in zip(a.tolist(), b.tolist(), sel.tolist()):
        by = [(x >> 8 * i) & 0xFF for i in range(4)] + [(y >> 8 * i) & 0xFF for i in range(4)]
        d = 0
        for i in range(4):
            n = (s >> 4 * i) & 0xF
            v = by[n & 7]
            if n & 8:
                v = 0xFF if v & 0x80 else 0
            d |= v << 8 * i
        out.append(d)
    return np.array(out, np.uint64).astype(np.uint32)


def _bfe(a, pos, ln, signed):
    out = []
    for x, p, l in zip(a.tolist(), pos.tolist(), ln.tolist()):
        # ISA: msb = signed ? (len == 0 ? 0 : a[min(pos+len-1, 31)]) : 0; d[i] = i < len && pos+i <= 31 ? a[pos+i] : sbit
        if signed:
            sbit = 0 if l == 0 else (x >> min(p + l - 1, 31)) & 1
        else:
            sbit = 0
        d = 0
        for i in range(32):
            bit = (x >> (p + i)) & 1 if (i < l and p + i <= 31) else sbit
            d |= bit << i
        out.append(d)
    return np.array(out, np.uint64).astype(np.uint32)


def _bfi(a, b, pos, ln):
    out = []
    for x, y, p, l in zip(a.tolist(), b.tolist(), pos.tolist(), ln.tolist()):
        d = y
        for i in range(l):
            if p + i > 31:
                break
            d = (d & ~(1 << (p + i))) | (((x >> i) & 1) << (p + i))
        out.append(d & M32)
    return np.array(out, np.uint64).astype(np.uint32)


# ----------------------------------------------------------------------------- shfl.sync


def _shfl_ptx(mode: str) -> str:
    return HEADER.format(version="8.0", target="sm_80") + f"""
.visible .entry shfl_{mode}(.param .u64 pa, .param .u64 pb, .param .u64 pc, .param .u64 pd)
{{
    .reg .pred %p<4>;
    .reg .b32 %r<16>;
    .reg .b64 %rd<16>;
    mov.u32 %r0, %ctaid.x;
    mov.u32 %r1, %tid.x;
    mad.lo.s32 %r2, %r0, 64, %r1;
    cvt.u64.u32 %rd0, %r2;
    shl.b64 %rd0, %rd0, 2;
    ld.param.u64 %rd1, [pa];
    cvta.to.global.u64 %rd1, %rd1;
    add.s64 %rd1, %rd1, %rd0;
    ld.param.u64 %rd2, [pb];
    cvta.to.global.u64 %rd2, %rd2;
    add.s64 %rd2, %rd2, %rd0;
    ld.param.u64 %rd3, [pc];
    cvta.to.global.u64 %rd3, %rd3;
    add.s64 %rd3, %rd3, %rd0;
    ld.global.b32 %r3, [%rd1];
    ld.global.b32 %r4, [%rd2];
    ld.global.b32 %r5, [%rd3];
    shfl.sync.{mode}.b32 %r6|%p0, %r3, %r4, %r5, 0xffffffff;
    selp.u32 %r7, 1, 0, %p0;
    ld.param.u64 %rd4, [pd];
    cvta.to.global.u64 %rd4, %rd4;
    mul.wide.u32 %rd5, %r2, 8;
    add.s64 %rd4, %rd4, %rd5;
    st.global.v2.b32 [%rd4], {{%r6, %r7}};
    ret;
}}
"""


def _shfl_ref(mode, a, b, c):
    n = len(a)
    out = np.zeros((n, 2), np.uint32)
    for w in range(n // 32):
        for lane in range(32):
            i = 32 * w + lane
            bval, cval, seg = int(b[i]) & 31, int(c[i]) & 31, (int(c[i]) >> 8) & 31
            maxl = (lane & seg) | (cval & ~seg & 31)
            minl = lane & seg
            if mode == "up":
                j = lane - bval
                p = j >= maxl
            elif mode == "down":
                j = lane + bval
                p = j <= maxl
            elif mode == "bfly":
                j = lane ^ bval
                p = j <= maxl
            else:
                j = minl | (bval & ~seg & 31)
                p = j <= maxl
            if not p:
                j = lane
            out[i] = (a[32 * w + j], int(p))
    return out


def _shfl_cases(tier: str):
    if tier == "exhaustive":
        return
    rng = _rng("shfl")
    n = 128  # 2 blocks x 64 threads
    for mode in ("idx", "up", "down", "bfly"):
        a = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        b = rng.integers(0, 32, n).astype(np.uint32)
        # c: per warp one of: plain (0x1f / 0 for up), segments of 8/4 lanes, a clamp inside
        choices = [0x1F, 0x0, 0x181F, 0x1C1F, 0x0F, 0x1807] if mode != "up" else [0x0, 0x1800, 0x1C00, 0x4, 0x1801]
        c = np.repeat(rng.choice(choices, n // 32), 32).astype(np.uint32)  # uniform within a warp (as the ISA expects)
        ref = _shfl_ref(mode, a, b, c)
        d = np.full((n, 2), 0xDEADBEEF, np.uint32)
        yield Case(name=f"shfl_sync_{mode}", ptx=_shfl_ptx(mode), kernel=f"shfl_{mode}", grid=(2, 1, 1), block=(64, 1, 1),
                   args=[a, b, c, d], outs=[Out(3, ref, name="d_and_p")])


# ----------------------------------------------------------------------------- ldmatrix


def _ldmatrix_ptx(num: int, trans: bool) -> str:
    t = ".trans" if trans else ""
    regs = ", ".join(f"%r{10 + k}" for k in range(num))
    stores = "\n".join(f"    st.global.b32 [%rd6+{4 * k}], %r{10 + k};" for k in range(num))
    return HEADER.format(version="8.0", target="sm_80") + f"""
.visible .entry ldmatrix_x{num}{'_trans' if trans else ''}(.param .u64 pin, .param .u64 prow, .param .u64 pout)
{{
    .reg .pred %p<4>;
    .reg .b32 %r<32>;
    .reg .b64 %rd<16>;
    .shared .align 16 .b8 tile[1024];
    mov.u32 %r1, %tid.x;
    // each of the 32 threads copies 32 bytes of the 1 KiB input into shared memory
    ld.param.u64 %rd1, [pin];
    cvta.to.global.u64 %rd1, %rd1;
    mul.wide.u32 %rd2, %r1, 32;
    add.s64 %rd1, %rd1, %rd2;
    mov.u32 %r2, tile;
    mad.lo.u32 %r3, %r1, 32, %r2;
    ld.global.v4.b32 {{%r4, %r5, %r6, %r7}}, [%rd1];
    st.shared.v4.b32 [%r3], {{%r4, %r5, %r6, %r7}};
    ld.global.v4.b32 {{%r4, %r5, %r6, %r7}}, [%rd1+16];
    st.shared.v4.b32 [%r3+16], {{%r4, %r5, %r6, %r7}};
    bar.sync 0;
    // this lane's row address: tile + 16 * row[lane]
    ld.param.u64 %rd3, [prow];
    cvta.to.global.u64 %rd3, %rd3;
    mul.wide.u32 %rd4, %r1, 4;
    add.s64 %rd3, %rd3, %rd4;
    ld.global.u32 %r8, [%rd3];
    mad.lo.u32 %r9, %r8, 16, %r2;
    ldmatrix.sync.aligned.m8n8.x{num}{t}.shared.b16 {{{regs}}}, [%r9];
    ld.param.u64 %rd5, [pout];
    cvta.to.global.u64 %rd5, %rd5;
    mul.wide.u32 %rd6, %r1, {4 * num};
    add.s64 %rd6, %rd5, %rd6;
{stores}
    ret;
}}
"""


def _ldmatrix_ref(data: np.ndarray, rows: np.ndarray, num: int, trans: bool) -> np.ndarray:
    """ISA 9.7.14.5.15: matrix m's 8 rows come from the addresses of threads 8m..8m+7; lane l holds
    elements (l // 4, 2 (l % 4) .. +1) of matrix m in register m (transposed with .trans)."""
    tile = data.reshape(64, 8)  # 64 rows of 8 b16
    out = np.zeros((32, num), np.uint32)
    for m in range(num):
        mat = np.stack([tile[rows[8 * m + r]] for r in range(8)])  # (8, 8)
        if trans:
            mat = mat.T
        for lane in range(32):
            r, c = lane // 4, 2 * (lane % 4)
            out[lane, m] = int(mat[r, c]) | (int(mat[r, c + 1]) << 16)
    return out


def _ldmatrix_cases(tier: str):
    if tier == "exhaustive":
        return
    rng = _rng("ldmatrix")
    for num in (1, 2, 4):
        for trans in (False, True):
            data = rng.integers(0, 2**16, 512).astype(np.uint16)
            rows = rng.permutation(64)[:32].astype(np.uint32)
            ref = _ldmatrix_ref(data, rows, num, trans)
            out = np.full((32, num), 0xDEADBEEF, np.uint32)
            name = f"ldmatrix_x{num}{'_trans' if trans else ''}"
            yield Case(name=name, ptx=_ldmatrix_ptx(num, trans), kernel=name, grid=(1, 1, 1), block=(32, 1, 1),
                       args=[data, rows, out], outs=[Out(2, ref, name="regs")])


@source("isa")
def isa(tier: str):
    yield from _cvt_cases(tier)
    yield from _fma_cases(tier)
    yield from _intop_cases(tier)
    yield from _shfl_cases(tier)
    yield from _ldmatrix_cases(tier)
