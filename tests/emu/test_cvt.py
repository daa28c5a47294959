"""lowbit.emu.cvt against Fraction, numpy and ml_dtypes references."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.emu.cvt import cvt, lookup
from lowbit.errors import UnsupportedPTXError
from tests.emu.ref_float import FORMATS, round_fraction

INTS = {f"{k}{w}": (w, k == "s") for k in "us" for w in (8, 16, 32, 64)}


def f32(values):
    return np.asarray(values, np.float32).view(np.uint32)


def int_range(name):
    w, signed = INTS[name]
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)


def as_int(name, bits):
    w, signed = INTS[name]
    v = int(bits) & ((1 << w) - 1)
    return v - (1 << w) if signed and v >> (w - 1) else v


def ref_float_to_int(x: float, rnd: str, name: str) -> int:
    if math.isnan(x):
        return 0
    lo, hi = int_range(name)
    if math.isinf(x):
        return hi if x > 0 else lo
    fr = Fraction(x)
    fl = math.floor(fr)
    r = {"rzi": math.trunc(fr), "rmi": fl, "rpi": math.ceil(fr),
         "rni": fl + (1 if (fr - fl > Fraction(1, 2) or (fr - fl == Fraction(1, 2) and fl % 2)) else 0)}[rnd]
    return min(max(r, lo), hi)


@pytest.mark.parametrize("src", ["f32", "f16", "f64"])
@pytest.mark.parametrize("dst", sorted(INTS))
def test_float_to_int_all_modes(src, dst):
    rng = np.random.default_rng(1)
    w = INTS[dst][0]
    vals = np.concatenate([rng.uniform(-3, 3, 40), [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -0.0, np.nan, np.inf, -np.inf],
                           rng.uniform(-1, 1, 20) * 2.0 ** min(w + 2, 15 if src == "f16" else 70)])
    _, _, dt, ut = FORMATS[src]
    with np.errstate(over="ignore"):
        bits = vals.astype(dt).view(ut)
    for rnd in ("rni", "rzi", "rmi", "rpi"):
        got = cvt(dst, src, {rnd}, bits)
        assert got.dtype.itemsize * 8 == w
        for b, g in zip(bits, got):
            x = float(np.array(b).view(dt))
            assert as_int(dst, g) == ref_float_to_int(x, rnd, dst), (dst, src, rnd, x)


@pytest.mark.parametrize("src", ["s64", "u64", "s32", "u32", "s16"])
@pytest.mark.parametrize("dst", ["f32", "f16", "bf16", "f64"])
def test_int_to_float_all_modes(src, dst):
    rng = np.random.default_rng(2)
    w, signed = INTS[src]
    lo, hi = int_range(src)
    vals = [lo, hi, 0, 1, -1 if signed else 2, (1 << (w - 2)) + 1]
    vals += [int(v) for v in rng.integers(max(lo, -(2**62)), min(hi, 2**62), 30)]
    vals += [(int(v) << (w - 28)) | 1 for v in rng.integers(0, 2**26, 10)] if w > 28 else []
    bits = np.array([v & ((1 << w) - 1) for v in vals], dtype=np.uint64)
    for rnd in ("rn", "rz", "rm", "rp"):
        got = cvt(dst, src, {rnd}, bits)
        for v, g in zip(vals, got):
            assert int(g) == round_fraction(dst, Fraction(as_int(src, v & ((1 << w) - 1))), rnd), (src, dst, rnd, v)


@settings(max_examples=300)
@given(st.floats(width=32), st.sampled_from(["rn", "rz", "rm", "rp"]), st.sampled_from(["f16", "bf16"]))
def test_f32_to_half_all_modes(x, rnd, dst):
    got = int(cvt(dst, "f32", {rnd}, f32([x]))[0])
    if math.isnan(x):
        assert got == 0x7FFF
    elif math.isinf(x):
        assert got == (0xFC00 if dst == "f16" else 0xFF80) if x < 0 else got == (0x7C00 if dst == "f16" else 0x7F80)
    else:
        assert got == round_fraction(dst, Fraction(x), rnd, neg_zero=math.copysign(1, x) < 0)


def test_f32_to_half_rn_matches_numpy_and_ml_dtypes():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(5000) * 2.0 ** rng.integers(-30, 20, 5000)).astype(np.float32)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(cvt("f16", "f32", {"rn"}, x.view(np.uint32)), x.astype(np.float16).view(np.uint16))
    np.testing.assert_array_equal(cvt("bf16", "f32", {"rn"}, x.view(np.uint32)),
                                  x.astype(ml_dtypes.bfloat16).view(np.uint16))
    d = rng.standard_normal(1000) * 2.0 ** rng.integers(-160, 120, 1000)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(cvt("f32", "f64", {"rn"}, d.view(np.uint64)), d.astype(np.float32).view(np.uint32))


def test_float_float_modifiers():
    big = f32([1e6, -1e6, np.nan, -3.0, 0.25])
    sf = cvt("f16", "f32", {"rn", "satfinite"}, big)
    assert list(sf[:2]) == [0x7BFF, 0xFBFF] and sf[2] == 0x7FFF
    r = cvt("f16", "f32", {"rn", "relu"}, big)
    assert r[1] == 0 and r[3] == 0 and r[2] == 0x7FFF and r[4] == 0x3400
    assert cvt("f32", "f32", {"rni"}, f32([2.5])).view(np.float32)[0] == 2.0
    assert cvt("f32", "f32", {"rpi"}, f32([2.1])).view(np.float32)[0] == 3.0
    assert int(cvt("f32", "f32", {"ftz"}, f32([1e-40]))[0]) == 0
    assert cvt("f32", "f32", {"sat"}, f32([7.0])).view(np.float32)[0] == 1.0
    assert cvt("f32", "f16", set(), np.float16(1.5).view(np.uint16)).view(np.float32) == 1.5
    # tf32: round to nearest, ties away, 10 mantissa bits kept
    t = cvt("tf32", "f32", {"rna"}, f32([1 + 2.0**-11, 1 + 2.0**-12, np.nan]))
    assert list(t.view(np.float32)[:2]) == [1 + 2.0**-10, 1.0] and t[2] == 0x7FFFFFFF


def test_packing_order_f16x2_bf16x2():
    # ISA: d[31:16] = cvt(a), d[15:0] = cvt(b)
    d = cvt("f16x2", "f32", {"rn"}, f32([1.0]), f32([-2.0]))
    assert int(d[0]) == (0x3C00 << 16) | 0xC000
    d = cvt("bf16x2", "f32", {"rz"}, f32([1.0]), f32([3.0]))
    assert int(d[0]) == (0x3F80 << 16) | 0x4040


ML = {"e4m3x2": ml_dtypes.float8_e4m3fn, "e5m2x2": ml_dtypes.float8_e5m2, "e2m1x2": ml_dtypes.float4_e2m1fn,
      "e2m3x2": ml_dtypes.float6_e2m3fn, "e3m2x2": ml_dtypes.float6_e3m2fn}
WIDTH = {"e4m3x2": 8, "e5m2x2": 8, "e2m1x2": 4, "e2m3x2": 8, "e3m2x2": 8}


@pytest.mark.parametrize("ty", sorted(ML))
def test_small_float_from_f32_pairs_vs_ml_dtypes(ty):
    rng = np.random.default_rng(4)
    dt = ML[ty]
    mx = float(ml_dtypes.finfo(dt).max)
    x = (rng.standard_normal(400) * mx / 3).astype(np.float32)
    x[:6] = [mx * 4, -mx * 4, np.inf, -np.inf, 0.0, -0.0]
    # ml_dtypes maps overflow to NaN/inf: clamp first (satfinite reference)
    want = np.clip(x, -mx, mx).astype(dt).view(np.uint8).astype(np.uint32)
    a, b = x[:200], x[200:]
    d = cvt(ty, "f32", {"rn", "satfinite"}, f32(a), f32(b))
    w = WIDTH[ty]
    assert d.dtype == (np.uint8 if w == 4 else np.uint16)
    d = d.astype(np.uint32)
    np.testing.assert_array_equal(d >> w, want[:200])
    np.testing.assert_array_equal(d & ((1 << w) - 1), want[200:])
    relu = cvt(ty, "f32", {"rn", "satfinite", "relu"}, f32(a), f32(b)).astype(np.uint32)
    np.testing.assert_array_equal(relu >> w, (np.clip(a, 0, mx) + np.float32(0)).astype(dt).view(np.uint8))  # relu: -0 -> +0


@pytest.mark.parametrize("ty", sorted(ML))
def test_small_float_to_f16x2_exhaustive(ty):
    w = WIDTH[ty]
    codes = np.arange(1 << w, dtype=np.uint32)
    if ty in ("e2m3x2", "e3m2x2"):
        codes = codes[:64]
    vals = codes.astype(np.uint8).view(ML[ty]).astype(np.float16).view(np.uint16).astype(np.uint32)
    vals = np.where(np.isnan(codes.astype(np.uint8).view(ML[ty]).astype(np.float32)), 0x7FFF, vals)
    packed = (codes << w) | codes[::-1]
    d = cvt("f16x2", ty, {"rn"}, packed.astype(np.uint16 if w == 8 else np.uint8))
    np.testing.assert_array_equal(d >> 16, vals)
    np.testing.assert_array_equal(d & 0xFFFF, vals[::-1])


@pytest.mark.parametrize("ty", ["e4m3x2", "e5m2x2"])
def test_f8_from_f16x2(ty):
    rng = np.random.default_rng(6)
    h = (rng.standard_normal(300) * 30).astype(np.float16)
    mx = float(ml_dtypes.finfo(ML[ty]).max)
    want = np.clip(h.astype(np.float32), -mx, mx).astype(ML[ty]).view(np.uint8).astype(np.uint32)
    hb = h.view(np.uint16).astype(np.uint32)
    packed = (hb[:150] << 16) | hb[150:]
    d = cvt(ty, "f16x2", {"rn", "satfinite"}, packed).astype(np.uint32)
    np.testing.assert_array_equal(d >> 8, want[:150])
    np.testing.assert_array_equal(d & 0xFF, want[150:])


def test_ue8m0_both_ways():
    x = np.array([3.0, 4.0, 0.3, 2.0**-130, 2.0**127 * 1.5, np.nan, np.inf, 0.0], np.float32)
    for rnd in ("rz", "rp"):
        d = cvt("ue8m0x2", "f32", {rnd}, f32(x), f32(x[::-1])).astype(np.uint32)
        hi = list(d >> 8)
        for i, v in enumerate(x[:5]):
            e = math.floor(math.log2(v)) if rnd == "rz" or math.log2(v) == int(math.log2(v)) else math.ceil(math.log2(v))
            assert hi[i] == min(max(e + 127, 0), 255), (rnd, v)
        assert hi[5] == 0xFF and hi[6] == 0xFF and hi[7] == 0
    sat = cvt("ue8m0x2", "f32", {"rp", "satfinite"}, f32([np.inf]), f32([2.0**127 * 1.5]))
    assert int(sat[0]) == 0xFEFE
    back = cvt("bf16x2", "ue8m0x2", {"rn"}, np.uint16(0x807F))
    got = (np.array([back >> 16, back & 0xFFFF], np.uint32) << 16).view(np.float32)
    assert list(got) == [2.0, 1.0]
    b = cvt("ue8m0x2", "bf16x2", {"rz"}, np.uint32(0x40404000))  # (3.0 hi, 2.0 lo)
    assert int(b) == (128 << 8) | 128


def test_int_to_int_and_sat():
    v = np.array([0x80, 0x7F, 0xFF], np.uint32)
    np.testing.assert_array_equal(cvt("s32", "s8", set(), v).view(np.int32), [-128, 127, -1])
    np.testing.assert_array_equal(cvt("u32", "u8", set(), v), [128, 127, 255])
    np.testing.assert_array_equal(cvt("u8", "s32", {"sat"}, np.array([-5, 300, 7], np.int32).view(np.uint32)), [0, 255, 7])
    np.testing.assert_array_equal(cvt("s8", "u32", {"sat"}, np.array([5, 300], np.uint32)).view(np.int8), [5, 127])
    np.testing.assert_array_equal(cvt("u16", "u32", set(), np.array([0x12345678], np.uint32)), [0x5678])
    np.testing.assert_array_equal(cvt("s64", "s32", set(), np.array([-2], np.int32).view(np.uint32)).view(np.int64), [-2])


@pytest.mark.parametrize("dst,src,mods", [
    ("s32", "f32", set()),            # float->int needs an integer rounding
    ("f32", "s32", set()),            # int->float needs a float rounding
    ("f16", "f32", set()),            # narrowing needs a rounding
    ("e4m3x2", "f32", {"rn"}),       # needs .satfinite
    ("e2m1x2", "f16x2", {"rn", "satfinite"}),
    ("f32", "f16", {"rn", "relu"}),
    ("ue8m0x2", "f32", {"rn"}),
    ("q8", "f32", {"rn"}),
])
def test_unsupported_combinations_raise(dst, src, mods):
    with pytest.raises(UnsupportedPTXError, match=f"{dst}.{src}"):
        lookup(dst, src, mods)


DT_NAMES = {"e4m3x2": "e4m3fn", "e5m2x2": "e5m2", "e2m1x2": "e2m1", "e2m3x2": "e2m3", "e3m2x2": "e3m2"}


@pytest.mark.parametrize("ty", sorted(DT_NAMES))
def test_small_codec_agrees_with_lowbit_dtypes(ty):
    from lowbit.dtypes import dtype

    d = dtype(DT_NAMES[ty])
    rng = np.random.default_rng(8)
    mx = float(ml_dtypes.finfo(ML[ty]).max)
    x = (rng.standard_normal(512) * mx / 2).astype(np.float32)
    x[:4] = [mx * 3, -mx * 3, np.inf, -np.inf]
    w = WIDTH[ty]
    got = cvt(ty, "f32", {"rn", "satfinite"}, f32(x), f32(x)).astype(np.uint32) & ((1 << w) - 1)
    np.testing.assert_array_equal(got, np.asarray(d.encode(x.astype(np.float64), saturate=True)).astype(np.uint32))
    codes = np.arange(1 << (6 if w == 8 and ty[1] in "23" else w), dtype=np.uint32)
    h = cvt("f16x2", ty, {"rn"}, codes.astype(np.uint16 if w == 8 else np.uint8)) & 0xFFFF
    ref = d.decode(codes)
    assert np.array_equal(h.astype(np.uint16).view(np.float16).astype(np.float64), ref, equal_nan=True)
