"""lowbit.emu.fparith against exact Fraction arithmetic on adversarial inputs."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.emu import fparith as F
from lowbit.errors import UnsupportedPTXError
from tests.emu.ref_float import CANON_NAN, FORMATS, decode, round_fraction, sqrt_fraction_odd

MODES = ("rn", "rz", "rm", "rp")


def _bits(ty, values):
    _, _, dt, ut = FORMATS[ty]
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(dt).view(ut)


def _is_nan(ty, bits):
    return math.isnan(decode(ty, int(bits)))


def ref_op(ty, op, xs, rnd, ftz=False):
    """Exact reference for one element: op in add sub mul fma div sqrt."""
    eb, mb, _, _ = FORMATS[ty]
    vals = [decode(ty, int(x)) for x in xs]
    if ftz:
        tiny = 2.0 ** (2 - (1 << (eb - 1)))
        vals = [math.copysign(0.0, v) if abs(v) < tiny else v for v in vals]
    # non-finite cases: float64 IEEE semantics classify them identically
    with np.errstate(all="ignore"):
        f = np.float64
        naive = {
            "add": lambda a, b: f(a) + f(b), "sub": lambda a, b: f(a) - f(b), "mul": lambda a, b: f(a) * f(b),
            "fma": lambda a, b, c: f(a) * f(b) + f(c), "div": lambda a, b: f(a) / f(b), "sqrt": lambda a: np.sqrt(f(a)),
        }[op](*vals)
    if math.isnan(naive):
        return CANON_NAN[ty]
    if not all(math.isfinite(v) for v in vals) or (op == "div" and vals[1] == 0):
        return round_fraction(ty, Fraction(0), rnd, neg_zero=math.copysign(1, naive) < 0) if naive == 0 else \
            int(np.array(naive).astype(FORMATS[ty][2]).view(FORMATS[ty][3]))
    fr = [Fraction(v) for v in vals]
    if op in ("add", "sub", "fma"):
        if op == "fma":
            x, y = fr[0] * fr[1], fr[2]
            xneg = (math.copysign(1, vals[0]) * math.copysign(1, vals[1])) < 0
            yneg = math.copysign(1, vals[2]) < 0
        else:
            x, y = fr[0], fr[1] if op == "add" else -fr[1]
            xneg = math.copysign(1, vals[0]) < 0
            yneg = (math.copysign(1, vals[1]) < 0) != (op == "sub")
        v = x + y
        if v == 0:  # IEEE 754 6.3 signs of exact zero sums
            negz = (xneg and yneg) if (x == 0 and y == 0 and xneg == yneg) else rnd == "rm"
            return round_fraction(ty, v, rnd, neg_zero=negz)
        return round_fraction(ty, v, rnd, ftz=ftz)
    if op == "mul":
        v = fr[0] * fr[1]
        return round_fraction(ty, v, rnd, neg_zero=(math.copysign(1, vals[0]) * math.copysign(1, vals[1])) < 0, ftz=ftz)
    if op == "div":
        v = fr[0] / fr[1]
        return round_fraction(ty, v, rnd, neg_zero=(math.copysign(1, vals[0]) * math.copysign(1, vals[1])) < 0, ftz=ftz)
    if op == "sqrt":
        if vals[0] == 0:
            return int(_bits(ty, [vals[0]])[0])
        return round_fraction(ty, sqrt_fraction_odd(fr[0]), rnd, ftz=ftz)
    raise AssertionError(op)


def run_op(ty, op, arrays, rnd, ftz=False):
    if op == "fma":
        return F.fma(ty, *arrays, rnd=rnd, ftz=ftz)
    if op == "sqrt":
        return F.sqrt(ty, arrays[0], rnd=rnd, ftz=ftz)
    return getattr(F, op)(ty, *arrays, rnd=rnd, ftz=ftz)


def check(ty, op, arrays, rnd, ftz=False):
    got = run_op(ty, op, arrays, rnd, ftz)
    for i in range(got.size):
        xs = [a.reshape(-1)[i] for a in arrays]
        want = ref_op(ty, op, xs, rnd, ftz)
        assert int(got.reshape(-1)[i]) == want, (ty, op, rnd, [hex(int(x)) for x in xs], hex(int(got.reshape(-1)[i])), hex(want))


# ------------------------------------------------------------ adversarial generators


def near_tie_fma(ty, n, rng):
    """c plus a product close to half an ulp of c: the inputs that break double rounding."""
    eb, mb, _, _ = FORMATS[ty]
    span = 8 if ty == "f16" else 20
    c = rng.uniform(-4, 4, n) * 2.0 ** rng.integers(-span, span, n)
    c = decode_array(ty, _bits(ty, c))
    e = np.floor(np.log2(np.abs(c))) - mb - 1  # exponent of half an ulp of c
    k = rng.integers(-3, 4, n)
    j = rng.integers(-3, 4, n)
    a = np.ldexp(1.0 + k * 2.0**-mb, e.astype(int))
    b = 1.0 + j * 2.0**-mb * rng.choice([1, 0.5], n)
    a = a * rng.choice([-1, 1], n)
    return [_bits(ty, a), _bits(ty, b), _bits(ty, c)]


def decode_array(ty, bits):
    _, _, dt, _ = FORMATS[ty]
    return bits.view(dt).astype(np.float64)


def cancel_fma(ty, n, rng):
    """c = -(a*b) rounded, nudged a few ulps: massive cancellation."""
    _, _, dt, ut = FORMATS[ty]
    a = rng.uniform(-2, 2, n) * 2.0 ** rng.integers(-10, 10, n)
    b = rng.uniform(-2, 2, n) * 2.0 ** rng.integers(-10, 10, n)
    a, b = a.astype(dt).astype(np.float64), b.astype(dt).astype(np.float64)
    with np.errstate(over="ignore"):
        c = (-(a * b)).astype(dt).view(ut).astype(np.int64) + rng.integers(-2, 3, n)
    return [_bits(ty, a), _bits(ty, b), c.astype(ut)]


def extreme_fma(ty, n, rng):
    """Subnormal and overflowing results, signed zeros, infinities and NaN operands."""
    eb, mb, dt, ut = FORMATS[ty]
    bias = (1 << (eb - 1)) - 1
    small = 2.0 ** (1 - bias) * rng.uniform(-1, 1, n)
    a = np.concatenate([small * 2.0**10, rng.uniform(1, 2, n) * 2.0 ** (bias - 1),
                        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0])])
    b = np.concatenate([rng.uniform(-1, 1, n) * 2.0**-12, rng.uniform(1, 3, n) * rng.choice([-1, 1], n),
                        np.array([-0.0, -0.0, 0.0, 2.0, 1.0, 5.0, 3.0, np.inf])])
    c = np.concatenate([small, rng.uniform(-1, 1, n) * 2.0**bias,
                        np.array([0.0, -0.0, 1.0, np.inf, 1.0, -0.0, 0.0, -np.inf])])
    return [_bits(ty, a), _bits(ty, b), _bits(ty, c)]


@pytest.mark.parametrize("ty", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("rnd", MODES)
def test_fma_adversarial_vs_fraction(ty, rnd):
    rng = np.random.default_rng(hash((ty, rnd)) % 2**32)
    for gen in (near_tie_fma, cancel_fma, extreme_fma):
        check(ty, "fma", gen(ty, 60, rng), rnd)


def test_fma_f32_double_rounding_worked_example():
    # exact = 1 + 2^-23 + 2^-24 - 2^-70: float64 rounds it onto the f32 midpoint
    # 1 + 3*2^-24, and a second rounding would tie to even (1 + 2^-22); the
    # correctly rounded result is 1 + 2^-23.
    a, b, c = 2.0**-24 * (1 + 2.0**-23), 1 - 2.0**-23, 1 + 2.0**-23
    naive = np.float32(np.float64(a) * np.float64(b) + np.float64(c))
    got = F.fma("f32", *[np.float32(v).view(np.uint32) for v in (a, b, c)]).view(np.float32)
    assert got == np.float32(1 + 2.0**-23)
    assert naive != got  # the emulator is not doing the naive thing


def test_fma_f16_product_exact_sum_not():
    # f16 fma: the product is exact in float64 but the sum with c needs care.
    a, b, c = 2.0**-11 * (1 + 2.0**-10), 1 - 2.0**-11, 1 + 2.0**-10
    got = F.fma("f16", *[np.float16(v).view(np.uint16) for v in (a, b, c)])
    want = round_fraction("f16", Fraction(a) * Fraction(b) + Fraction(c), "rn")
    assert int(got) == want


@pytest.mark.parametrize("ty", ["f16x2", "bf16x2"])
def test_fma_packed_halves_independent(ty):
    base = ty[:-2]
    rng = np.random.default_rng(7)
    lo = near_tie_fma(base, 40, rng)
    hi = cancel_fma(base, 40, rng)
    packed = [(h.astype(np.uint32) << 16) | l.astype(np.uint32) for l, h in zip(lo, hi)]
    got = F.fma(ty, *packed)
    np.testing.assert_array_equal(got & 0xFFFF, F.fma(base, *lo))
    np.testing.assert_array_equal(got >> 16, F.fma(base, *hi))
    for i in range(40):
        assert int(got[i] & 0xFFFF) == ref_op(base, "fma", [x[i] for x in lo], "rn")


f32s = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)


@settings(max_examples=300)
@given(f32s, f32s, f32s, st.sampled_from(MODES), st.booleans())
def test_fma_f32_hypothesis(a, b, c, rnd, ftz):
    arrays = [np.array([v], np.float32).view(np.uint32) for v in (a, b, c)]
    check("f32", "fma", arrays, rnd, ftz)


@settings(max_examples=200)
@given(f32s, f32s, st.sampled_from(["add", "sub", "mul", "div"]), st.sampled_from(MODES))
def test_binary_f32_hypothesis(a, b, op, rnd):
    check("f32", op, [np.array([v], np.float32).view(np.uint32) for v in (a, b)], rnd)


@pytest.mark.parametrize("ty", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_binary_random_all_modes(ty, op):
    rng = np.random.default_rng(11)
    _, _, dt, ut = FORMATS[ty]
    n = 120
    a = rng.uniform(-1, 1, n) * 2.0 ** rng.integers(-30, 30, n)
    b = rng.uniform(-1, 1, n) * 2.0 ** rng.integers(-30, 30, n)
    b[:20] = -a[:20] * (1 + rng.integers(-3, 3, 20) * 2.0**-20)  # cancellation
    a[20:30] *= 2.0**-100 if ty != "f16" else 2.0**-8  # subnormal region
    for rnd in MODES:
        check(ty, op, [_bits(ty, a), _bits(ty, b)], rnd)


@pytest.mark.parametrize("ty", ["f32", "f64"])
def test_div_sqrt_all_modes(ty):
    rng = np.random.default_rng(3)
    n = 80
    a = rng.uniform(0, 4, n) * 2.0 ** rng.integers(-60, 60, n)
    b = rng.uniform(-4, 4, n) * 2.0 ** rng.integers(-60, 60, n)
    a[:5] = [1, 2, 9, 0.25, 3]
    b[:5] = [3, 3, 3, 7, 10]
    for rnd in MODES:
        check(ty, "div", [_bits(ty, a), _bits(ty, b)], rnd)
        check(ty, "sqrt", [_bits(ty, a)], rnd)


def test_f64_all_modes_vs_fraction():
    rng = np.random.default_rng(5)
    n = 60
    a = rng.uniform(-1, 1, n) * 2.0 ** rng.integers(-40, 40, n)
    b = rng.uniform(-1, 1, n) * 2.0 ** rng.integers(-40, 40, n)
    c = -a * b * (1 + rng.integers(-3, 3, n) * 2.0**-50)
    a[-4:] = [2.0**-540, 2.0**600, 1e-310, 2.0**1000]  # slow exact path: error terms out of range
    b[-4:] = [2.0**-520, 2.0**500, 3.0, 1.5]
    c[-4:] = [2.0**-1070, -(2.0**1023), 1e-300, 2.0**1023]
    arrays = [_bits("f64", x) for x in (a, b, c)]
    for rnd in MODES:
        check("f64", "fma", arrays, rnd)
        check("f64", "add", arrays[:2], rnd)
        check("f64", "mul", arrays[:2], rnd)


def test_nan_is_canonical_and_zero_signs():
    nan_payload = np.array([0x7FC12345], np.uint32)
    one = np.float32(1).view(np.uint32)
    assert int(F.add("f32", nan_payload, one)[0]) == 0x7FFFFFFF
    assert int(F.mul("f16", np.uint16(0xFE01), np.uint16(0x3C00))) == 0x7FFF
    x = np.float32(3.5).view(np.uint32)
    mx = np.float32(-3.5).view(np.uint32)
    assert int(F.add("f32", x, mx)) == 0x00000000
    assert int(F.add("f32", x, mx, rnd="rm")) == 0x80000000
    negz = np.float32(-0.0).view(np.uint32)
    assert int(F.add("f32", negz, negz)) == 0x80000000
    inf = np.float32(np.inf).view(np.uint32)
    assert int(F.fma("f32", inf, np.uint32(0), one)) == 0x7FFFFFFF  # inf * 0


def test_ftz_sat_relu():
    sub = np.float32(1e-40).view(np.uint32)
    one = np.float32(1).view(np.uint32)
    assert int(F.mul("f32", sub, one, ftz=True)) == 0
    assert F.mul("f32", sub, one).view(np.float32) == np.float32(1e-40)
    assert int(F.add("f32", np.float32(-1e-40).view(np.uint32), np.uint32(0), ftz=True)) in (0, 0x80000000)
    two = np.float32(2).view(np.uint32)
    assert F.add("f32", two, one, sat=True).view(np.float32) == 1.0
    assert int(F.add("f32", np.float32(-2).view(np.uint32), one, sat=True)) == 0
    assert int(F.add("f32", np.uint32(0x7FC00000), one, sat=True)) == 0
    h = np.float16(-3).view(np.uint16)
    assert int(F.fma("f16", h, np.float16(1).view(np.uint16), np.uint16(0), relu=True)) == 0


def test_min_max_compare_testp_copysign():
    v = np.array([1.0, -0.0, 0.0, np.nan, np.nan, 3.0], np.float32).view(np.uint32)
    w = np.array([2.0, 0.0, -0.0, 5.0, np.nan, -np.inf], np.float32).view(np.uint32)
    mn = F.fmin("f32", v, w).view(np.float32)
    mx = F.fmax("f32", v, w).view(np.float32)
    assert mn[0] == 1 and mx[0] == 2
    assert np.signbit(mn[1]) and np.signbit(mn[2]) and not np.signbit(mx[1]) and not np.signbit(mx[2])
    assert mn[3] == 5 and mx[3] == 5 and int(mn.view(np.uint32)[4]) == 0x7FFFFFFF
    assert int(F.fmin("f32", v, w, nan=True)[3]) == 0x7FFFFFFF
    assert mn[5] == -np.inf
    np.testing.assert_array_equal(F.compare("f32", "lt", v, w), [True, False, False, False, False, False])
    np.testing.assert_array_equal(F.compare("f32", "ne", v, w), [True, False, False, False, False, True])
    np.testing.assert_array_equal(F.compare("f32", "neu", v, w), [True, False, False, True, True, True])
    np.testing.assert_array_equal(F.compare("f32", "nan", v, w), [False, False, False, True, True, False])
    t = np.array([1.0, 1e-40, np.inf, np.nan, 0.0], np.float32).view(np.uint32)
    np.testing.assert_array_equal(F.testp("f32", "subnormal", t), [False, True, False, False, False])
    np.testing.assert_array_equal(F.testp("f32", "normal", t), [True, False, False, False, False])
    np.testing.assert_array_equal(F.testp("f32", "finite", t), [True, True, False, False, True])
    assert F.copysign("f32", np.float32(-1).view(np.uint32), np.float32(2.5).view(np.uint32)).view(np.float32) == -2.5
    with pytest.raises(UnsupportedPTXError):
        F.compare("f32", "bogus", v, w)
    with pytest.raises(UnsupportedPTXError):
        F.div("f16", np.uint16(0), np.uint16(0))


def test_approx_within_documented_tolerance():
    rng = np.random.default_rng(2)
    x = rng.uniform(-10, 10, 500).astype(np.float32)
    bits = x.view(np.uint32)
    ulp = lambda v: np.spacing(np.abs(v).astype(np.float32))  # noqa: E731
    ex2 = F.approx("ex2", "f32", bits).view(np.float32)
    assert np.all(np.abs(ex2 - np.exp2(x.astype(np.float64))) <= 2 * ulp(ex2))
    pos = np.abs(x) + np.float32(0.1)
    lg2 = F.approx("lg2", "f32", pos.view(np.uint32)).view(np.float32)
    assert np.all(np.abs(lg2 - np.log2(pos.astype(np.float64))) <= 2.0**-22 * np.maximum(1, np.abs(lg2)))
    s = F.approx("sin", "f32", bits).view(np.float32)
    assert np.all(np.abs(s - np.sin(x.astype(np.float64))) <= 2.0**-20.9)
    sp = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0], np.float32).view(np.uint32)
    e = F.approx("ex2", "f32", sp).view(np.float32)
    assert e[0] == 0 and e[1] == np.inf and np.isnan(e[2]) and e[3] == 1
    r = F.approx("rsqrt", "f32", sp).view(np.float32)
    assert r[3] == np.inf and r[4] == -np.inf
    assert F.approx("lg2", "f32", sp).view(np.float32)[3] == -np.inf
    assert np.isnan(F.approx("cos", "f32", sp).view(np.float32)[1])
    assert F.div_full(np.float32(1).view(np.uint32), np.float32(3).view(np.uint32)).view(np.float32) == np.float32(1 / 3)
    h = F.approx("ex2", "f16x2", np.uint32(0x3C004000))  # (lo 2.0, hi 1.0)
    assert int(h) == (0x4000 << 16 | 0x4400)


def test_bf16_add_matches_ml_dtypes_rn():
    rng = np.random.default_rng(9)
    a = rng.standard_normal(1000).astype(ml_dtypes.bfloat16)
    b = (rng.standard_normal(1000) * 2.0 ** rng.integers(-8, 8, 1000)).astype(ml_dtypes.bfloat16)
    # float32 sum then one rounding is innocuous for bf16 (24 >= 2*8+2), an independent path
    want = (a.astype(np.float32) + b.astype(np.float32)).astype(ml_dtypes.bfloat16).view(np.uint16)
    np.testing.assert_array_equal(F.add("bf16", a.view(np.uint16), b.view(np.uint16)), want)


f16s = st.floats(width=16, allow_nan=True, allow_infinity=True, allow_subnormal=True)


@settings(max_examples=300)
@given(f16s, f16s, f16s, st.sampled_from(MODES))
def test_fma_f16_hypothesis(a, b, c, rnd):
    check("f16", "fma", [np.array([v], np.float16).view(np.uint16) for v in (a, b, c)], rnd)


@pytest.mark.full
@pytest.mark.parametrize("ty", ["f32", "f16", "bf16"])
def test_fma_adversarial_sweep(ty):
    rng = np.random.default_rng(1234)
    for rnd in MODES:
        for gen in (near_tie_fma, cancel_fma, extreme_fma):
            check(ty, "fma", gen(ty, 2000, rng), rnd)
