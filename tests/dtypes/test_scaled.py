"""Block-scaled formats (lowbit.dtypes.scaled) against references written here.

The references use exact ``fractions.Fraction`` arithmetic and element value
sets built from the OCP MX v1.0 formulas (sign/exponent/mantissa fields, §5.3),
not lowbit's decoders: the MX conversion of spec §6.3 (floor(log2 amax) -
emax_elem, clamp, round to nearest even, saturate) and the NVFP4 two-level
recipe documented in the module.
"""

from __future__ import annotations

import bisect
import pickle
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lowbit.dtypes import dtype, e8m0
from lowbit.dtypes.scaled import SCALED_TYPES, ScaledType
from lowbit.dtypes.scaled_round import round_half_even_div, round_to_grid, two_sum
from lowbit.errors import LowbitError, QuantizeError

# -- references ---------------------------------------------------------------------

# (exponent bits, mantissa bits, bias, non-finite convention) from the spec's tables.
FLOAT_FORMATS = {
    "e4m3fn": (4, 3, 7, "fn"),
    "e5m2": (5, 2, 15, "ieee"),
    "e3m2": (3, 2, 3, "none"),
    "e2m3": (2, 3, 1, "none"),
    "e2m1": (2, 1, 1, "none"),
}
EMAX_ELEM = {"e4m3fn": 8, "e5m2": 15, "e3m2": 4, "e2m3": 2, "e2m1": 2, "int8": 0}  # spec §6.3


def float_grid(ebits: int, mbits: int, bias: int, nan: str, signed: bool = True) -> list[tuple[Fraction, int]]:
    """Sorted (value, code) of every finite code, one entry per value (+0 for zero)."""
    out: dict[Fraction, int] = {}
    for code in range(1 << (ebits + mbits + signed)):
        mag = code & ((1 << (ebits + mbits)) - 1)
        e, m = mag >> mbits, mag & ((1 << mbits) - 1)
        if nan == "fn" and e == (1 << ebits) - 1 and m == (1 << mbits) - 1:
            continue
        if nan == "ieee" and e == (1 << ebits) - 1:
            continue
        if e == 0:
            v = Fraction(m, 1 << mbits) * Fraction(2) ** (1 - bias)
        else:
            v = (1 + Fraction(m, 1 << mbits)) * Fraction(2) ** (e - bias)
        if signed and code >> (ebits + mbits):
            v = -v
        out.setdefault(v, code)  # codes ascend: zero keeps the +0 code
    return sorted(out.items())


def int_grid(bits: int) -> list[tuple[Fraction, int]]:
    return [(Fraction(v), v % (1 << bits)) for v in range(-(1 << (bits - 1)), 1 << (bits - 1))]


def nearest_even(grid: list[tuple[Fraction, int]], v: Fraction) -> tuple[Fraction, int]:
    """Grid entry nearest to v; a tie goes to the even code; beyond the ends: the end (saturation)."""
    vals = [g[0] for g in grid]
    i = bisect.bisect_left(vals, v)
    if i == 0:
        return grid[0]
    if i == len(grid):
        return grid[-1]
    lo, hi = grid[i - 1], grid[i]
    dlo, dhi = v - lo[0], hi[0] - v
    if dlo < dhi:
        return lo
    if dhi < dlo:
        return hi
    return lo if lo[1] % 2 == 0 else hi


def nearest_ties_away(grid: list[tuple[Fraction, int]], v: Fraction) -> tuple[Fraction, int]:
    """The MX reference library's default 'nearest': ties away from zero."""
    vals = [g[0] for g in grid]
    i = bisect.bisect_left(vals, v)
    if i == 0 or i == len(grid):
        return grid[min(i, len(grid) - 1)]
    lo, hi = grid[i - 1], grid[i]
    if v - lo[0] == hi[0] - v:
        return hi if v > 0 else lo
    return lo if v - lo[0] < hi[0] - v else hi


def floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    return e


def grid_for(elem: str) -> list[tuple[Fraction, int]]:
    return int_grid(8) if elem == "int8" else float_grid(*FLOAT_FORMATS[elem])


def mx_reference(block: list[float], elem: str, rounder=nearest_even) -> tuple[int, list[Fraction]]:
    """(scale code, element values x 2**implicit) of one MX block per spec §6.3; finite input."""
    vals = [Fraction(v) for v in block]
    amax = max(abs(v) for v in vals)
    shared = -127 if amax == 0 else max(-127, min(127, floor_log2(amax) - EMAX_ELEM[elem]))
    x = Fraction(2) ** shared
    implicit = Fraction(1, 64) if elem == "int8" else Fraction(1)
    grid = grid_for(elem)
    return shared + 127, [rounder(grid, v / x / implicit)[0] * implicit for v in vals]


UE4M3 = float_grid(4, 3, 7, "fn", signed=False)
E2M1 = float_grid(2, 1, 1, "none")


def nvfp4_reference(x: np.ndarray) -> tuple[np.float32, list[int], np.ndarray]:
    """NVFP4 per the documented recipe, 1-D input, in Fractions; returns (ts, scale codes, values)."""
    amax = float(np.abs(x).max())
    ts = np.float32(1.0) if amax == 0 else np.float32(amax / 2688.0)
    tsf = Fraction(float(ts))
    codes, out = [], []
    for b in range(0, x.size, 16):
        blk = [Fraction(float(v)) for v in x[b : b + 16]]
        bamax = max(abs(v) for v in blk)
        target = Fraction(float(bamax) / (6 * float(ts)))  # the recipe's one float64 division
        sval, scode = nearest_even(UE4M3, target)
        codes.append(scode)
        eff = sval * tsf
        for v in blk:
            out.append(0.0 if eff == 0 else float(nearest_even(E2M1, v / eff)[0] * eff))
    return ts, codes, np.array(out)


def random_blocks(rng: np.random.Generator, nblocks: int, elem: str) -> np.ndarray:
    """Blocks of 32 with varied magnitudes, near-max entries, exact ties and zeros."""
    grid = [g[0] for g in grid_for(elem)]
    mids = [(a + b) / 2 for a, b in zip(grid, grid[1:])]
    imp = Fraction(1, 64) if elem == "int8" else Fraction(1)
    rows = []
    for _ in range(nblocks):
        shared = int(rng.integers(-20, 20))
        x = Fraction(2) ** shared
        blk = rng.standard_normal(32) * float(x) * 2.0 ** EMAX_ELEM[elem]
        # exact ties of the element grid, scaled by the block's X (kept below the block max)
        for j in rng.choice(32, size=6, replace=False):
            m = mids[int(rng.integers(0, len(mids)))]
            blk[j] = float(m * imp * x)
        blk[int(rng.integers(0, 32))] = 0.0
        # pin the block's floor(log2 amax) to shared + emax_elem, near the top of the binade
        blk[0] = float(rng.uniform(1.0, 1.999)) * float(x) * 2.0 ** EMAX_ELEM[elem] * rng.choice([-1, 1])
        rows.append(blk)
    return np.concatenate(rows)


MX_NAMES = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8"]

# -- registry -----------------------------------------------------------------------

EXPECTED = {
    "mxfp8_e4m3": ("e4m3fn", "e8m0", 32, 8),
    "mxfp8_e5m2": ("e5m2", "e8m0", 32, 8),
    "mxfp6_e3m2": ("e3m2", "e8m0", 32, 6),
    "mxfp6_e2m3": ("e2m3", "e8m0", 32, 6),
    "mxfp4": ("e2m1", "e8m0", 32, 4),
    "mxint8": ("int8", "e8m0", 32, 8),
    "nvfp4": ("e2m1", "ue4m3", 16, 4),
}


def test_registry_names_fields_and_lookup():
    assert set(SCALED_TYPES) == {*EXPECTED, "mxfp8"}
    assert SCALED_TYPES["mxfp8"] is SCALED_TYPES["mxfp8_e4m3"]
    for name, t in SCALED_TYPES.items():
        elem, scale, block, bits = EXPECTED[t.name]
        assert (t.element.name, t.scale.name, t.block, t.bits) == (elem, scale, block, bits)
        assert t.element == dtype(elem) and t.scale == dtype(scale)
        assert t.has_tensor_scale == (t.name == "nvfp4")
        assert dtype(name) is t and dtype(t.name) == t and dtype(name.upper()) is t
        assert pickle.loads(pickle.dumps(t)) == t
        assert hash(pickle.loads(pickle.dumps(t))) == hash(t)
        assert t.code_dtype == np.uint8
    assert SCALED_TYPES["mxfp4"].bits_per_element == 4.25
    assert SCALED_TYPES["nvfp4"].bits_per_element == 4.5
    assert {t.name: t.emax_elem for t in SCALED_TYPES.values() if t.is_mx} == {
        "mxfp8_e4m3": 8, "mxfp8_e5m2": 15, "mxfp6_e3m2": 4, "mxfp6_e2m3": 2, "mxfp4": 2, "mxint8": 0,
    }
    assert ScaledType("x", "e2m1", "e8m0", 32) == ScaledType("x", "e2m1", "e8m0", 32)
    with pytest.raises(QuantizeError, match="block must be a positive integer"):
        ScaledType("x", "e2m1", "e8m0", 0)


@pytest.mark.parametrize("name", MX_NAMES)
def test_mx_range_is_reachable_and_not_exceeded(name):
    # min / max / smallest_subnormal from the spec's grids (not lowbit's decoders) and the
    # E8M0 scale range 2**-127..2**127; each extreme must survive quantize -> dequantize exactly.
    t = SCALED_TYPES[name]
    elem = EXPECTED[name][0]
    grid = [v * (Fraction(1, 64) if elem == "int8" else 1) for v, _ in grid_for(elem)]
    top, bottom = Fraction(2) ** 127, Fraction(2) ** -127
    assert Fraction(t.max) == max(grid) * top and Fraction(t.min) == min(grid) * top
    if elem == "int8":
        assert t.smallest_subnormal is None and t.min == -(2.0**128)
        tiny = float(Fraction(1, 64) * bottom)  # int8 code 1 with the smallest scale
    else:
        assert Fraction(t.smallest_subnormal) == min(v for v in grid if v > 0) * bottom
        tiny = t.smallest_subnormal
    for v in (t.max, t.min, tiny, -tiny):
        codes, scales = t.quantize(np.full(32, v))
        assert t.dequantize(codes, scales).tolist() == [v] * 32, v
    codes, scales = t.quantize(np.full(32, 4 * t.max))  # beyond the range: saturates at max
    assert t.dequantize(codes, scales).max() == t.max
    codes, scales = t.quantize(np.full(32, tiny / 2))  # a tie with zero: rounds to even (0)
    assert not t.dequantize(codes, scales).any()


def test_nvfp4_range_per_unit_tensor_scale():
    t = SCALED_TYPES["nvfp4"]
    assert (t.min, t.max) == (-6 * 448.0, 6 * 448.0)  # e2m1 max x ue4m3 max (0x7E)
    assert t.smallest_subnormal == float(Fraction(1, 2) * Fraction(1, 2**9))  # e2m1 0.5 x ue4m3 2**-9


# -- MX conversion against the spec formula ----------------------------------------------


@pytest.mark.parametrize("name", MX_NAMES)
def test_mx_matches_spec_reference(name):
    t = SCALED_TYPES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x = random_blocks(rng, 12, t.element_name)
    codes, scales = t.quantize(x)
    deq = t.dequantize(codes, scales)
    assert codes.shape == x.shape and scales.shape == (12,)
    elem_values = t.element.decode(codes) * 2.0**t.element_exp
    for b in range(12):
        blk = x[32 * b : 32 * (b + 1)]
        scode, ref = mx_reference(list(blk), t.element_name)
        assert scales[b] == scode, (b, scales[b], scode)
        xs = Fraction(2) ** (scode - 127)
        ref_f = np.array([float(v) for v in ref])
        np.testing.assert_array_equal(elem_values[32 * b : 32 * (b + 1)], ref_f)
        np.testing.assert_array_equal(deq[32 * b : 32 * (b + 1)], np.array([float(v * xs) for v in ref]))
    # The scale code is e8m0's round-toward-zero encoding of X = 2**shared_exp (and of amax / 2**emax).
    amax = np.abs(x.reshape(12, 32)).max(axis=1)
    np.testing.assert_array_equal(scales, e8m0.encode(amax / 2.0**t.emax_elem, rounding="rz"))


def test_mx_ties_round_to_even_not_away_from_zero():
    t = SCALED_TYPES["mxfp4"]
    # amax 4 -> shared_exp = 2 - 2 = 0, X = 1; 2.5, 0.25, -5, 1.75 are e2m1 ties.
    blk = np.array([4.0, 2.5, 0.25, -5.0, 1.75, -0.75] + [0.0] * 26)
    codes, scales = t.quantize(blk)
    got = t.dequantize(codes, scales)
    assert scales[0] == 127
    _, even = mx_reference(list(blk), "e2m1", nearest_even)
    _, away = mx_reference(list(blk), "e2m1", nearest_ties_away)
    np.testing.assert_array_equal(got, [float(v) for v in even])
    assert got[1:6].tolist() == [2.0, 0.0, -4.0, 2.0, -1.0]
    assert [float(v) for v in away[1:6]] == [3.0, 0.5, -6.0, 2.0, -1.0]  # the MX reference library
    assert got.tolist() != [float(v) for v in away]


def test_mx_saturates_elements_above_max():
    # floor(log2 480) = 8 -> shared_exp 0 for e4m3 (emax 8): 480 / X = 480 > 448 saturates to 448.
    t = SCALED_TYPES["mxfp8_e4m3"]
    codes, scales = t.quantize(np.array([480.0, -500.0, 3.0]))
    assert scales.tolist() == [127]
    assert t.dequantize(codes, scales).tolist() == [448.0, -448.0, 3.0]
    # e2m1: 7.9 -> floor(log2) = 2 -> X = 1 -> saturates to 6
    t = SCALED_TYPES["mxfp4"]
    codes, scales = t.quantize(np.array([7.9, 1.0]))
    assert t.dequantize(codes, scales).tolist() == [6.0, 1.0]


def test_mxint8_elements_are_code_over_64():
    t = SCALED_TYPES["mxint8"]
    blk = np.array([1.0, -0.5, 0.015625, -1.999, 1.9921875, 0.0078125])
    codes, scales = t.quantize(blk)
    assert scales.tolist() == [127]  # amax 1.999 -> floor(log2) = 0 -> shared_exp 0
    signed = codes.astype(np.int8).astype(int)
    assert signed.tolist() == [64, -32, 1, -128, 127, 0]  # 0.5 tie -> 0 (even); -127.936 -> -128
    assert t.dequantize(codes, scales).tolist() == [v / 64 for v in signed.tolist()]


def test_tail_block_is_shorter_and_scaled_on_its_own():
    rng = np.random.default_rng(7)
    for name in ("mxfp4", "mxfp6_e2m3", "mxint8"):
        t = SCALED_TYPES[name]
        x = rng.standard_normal(70)
        x[64:] *= 1e-3  # a tiny tail: its scale must come from its own 6 elements
        codes, scales = t.quantize(x)
        assert codes.shape == (70,) and scales.shape == (3,)
        tail_codes, tail_scale = t.quantize(x[64:])
        assert scales[2] == tail_scale[0]
        np.testing.assert_array_equal(codes[64:], tail_codes)
        padded = np.concatenate([x[64:], np.zeros(26)])
        scode, ref = mx_reference(list(padded), t.element_name)
        assert scales[2] == scode
        np.testing.assert_array_equal(
            t.dequantize(codes, scales)[64:], [float(v * Fraction(2) ** (scode - 127)) for v in ref[:6]]
        )


@pytest.mark.parametrize("name", MX_NAMES)
def test_all_zero_block_gets_scale_0_and_zero_elements(name):
    t = SCALED_TYPES[name]
    x = np.concatenate([np.zeros(32), np.linspace(-3, 3, 32)])
    x[5] = -0.0
    codes, scales = t.quantize(x)
    assert scales[0] == 0x00 and scales[1] != 0x00
    deq = t.dequantize(codes, scales)
    assert (deq[:32] == 0).all()
    assert (t.element.decode(codes[:32]) == 0).all()


@pytest.mark.parametrize("name", MX_NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_block_gets_nan_scale(name, bad):
    t = SCALED_TYPES[name]
    x = np.linspace(-2, 2, 96)
    x[40] = bad
    codes, scales = t.quantize(x)
    assert scales[1] == 0xFF and scales[0] != 0xFF and scales[2] != 0xFF
    deq = t.dequantize(codes, scales)
    assert np.isnan(deq[32:64]).all()
    assert np.isfinite(deq[:32]).all() and np.isfinite(deq[64:]).all()


def test_scale_exponent_clamps_at_both_ends():
    t = SCALED_TYPES["mxfp4"]
    codes, scales = t.quantize(np.array([1e300, -1.0]))
    assert scales.tolist() == [254]  # shared_exp clamps to 127; the element saturates
    assert t.dequantize(codes, scales).tolist() == [6.0 * 2.0**127, -0.0]
    tiny = 2.0**-140
    codes, scales = t.quantize(np.array([tiny, 3 * tiny]))
    assert scales.tolist() == [0]  # -138 - 2 clamps to -127: X = 2**-127
    # 3 * 2**-140 / 2**-127 = 3 * 2**-13 is below e2m1's smallest half (0.25): flushes to zero
    assert t.dequantize(codes, scales).tolist() == [0.0, 0.0]


def test_axes_and_dtypes_and_input_untouched():
    t = SCALED_TYPES["mxfp6_e3m2"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 45, 5)).astype(np.float32)
    before = x.copy()
    for axis in (0, 1, 2, -1):
        codes, scales = t.quantize(x, axis=axis)
        ref_codes, ref_scales = t.quantize(np.moveaxis(x, axis, -1))
        np.testing.assert_array_equal(np.moveaxis(codes, axis, -1), ref_codes)
        np.testing.assert_array_equal(np.moveaxis(scales, axis, -1), ref_scales)
        assert scales.shape[axis % 3] == -(-x.shape[axis] // 32)
        np.testing.assert_array_equal(
            np.moveaxis(t.dequantize(codes, scales, axis=axis), axis, -1), t.dequantize(ref_codes, ref_scales)
        )
    np.testing.assert_array_equal(x, before)
    xb = x.astype(ml_dtypes.bfloat16)
    c1, s1 = t.quantize(xb, axis=1)
    c2, s2 = t.quantize(xb.astype(np.float64), axis=1)
    np.testing.assert_array_equal(c1, c2)


# -- NVFP4 ------------------------------------------------------------------------------------


def test_nvfp4_matches_recipe_reference():
    t = SCALED_TYPES["nvfp4"]
    rng = np.random.default_rng(11)
    x = rng.standard_normal(16 * 9 + 5) * np.repeat(2.0 ** rng.integers(-6, 6, 10), 16)[: 16 * 9 + 5]
    x[16:32] *= 1e-7  # a block whose ue4m3 scale is subnormal or zero relative to the tensor
    codes, scales, ts = t.quantize(x)
    assert isinstance(ts, np.float32) and scales.shape == (10,)
    ref_ts, ref_scales, ref_vals = nvfp4_reference(x)
    assert ts == ref_ts
    assert scales.tolist() == ref_scales
    np.testing.assert_array_equal(t.dequantize(codes, scales, ts), ref_vals)


def test_nvfp4_special_blocks():
    t = SCALED_TYPES["nvfp4"]
    x = np.concatenate([np.zeros(16), np.linspace(-5, 5, 16), np.linspace(-1, 1, 16)])
    x[40] = np.nan
    codes, scales, ts = t.quantize(x)
    assert ts == np.float32(5.0 / 2688)
    assert scales[0] == 0x00 and scales[2] == 0x7F  # ue4m3 NaN
    deq = t.dequantize(codes, scales, ts)
    assert (deq[:16] == 0).all() and np.isnan(deq[32:]).all()
    np.testing.assert_array_equal(deq[:32], nvfp4_reference(x[:32])[2])
    zc, zs, zts = t.quantize(np.zeros(20))
    assert zts == np.float32(1.0) and zs.tolist() == [0, 0]
    assert (t.dequantize(zc, zs, zts) == 0).all()


def test_nvfp4_ties_round_to_even():
    t = SCALED_TYPES["nvfp4"]
    # amax 2688 -> ts = 1; block amax 6*448 -> scale code of 448; eff = 448
    x = np.array([2688.0, 2.5 * 448, 0.25 * 448, -5 * 448] + [0.0] * 12)
    codes, scales, ts = t.quantize(x)
    assert ts == 1.0
    assert t.dequantize(codes, scales, ts)[:4].tolist() == [2688.0, 2 * 448.0, 0.0, -4 * 448.0]


# -- exact rounding helpers ---------------------------------------------------------------------


def test_round_to_grid_matches_fraction_reference():
    rng = np.random.default_rng(5)
    for name in ("e2m1", "e3m2", "e4m3fn"):
        grid = float_grid(*FLOAT_FORMATS[name])
        fmt = dtype(name)
        s = np.float32(rng.uniform(0.01, 3, size=(40, 1))).astype(np.float64)
        mids = np.array([float((a + b) / 2) for (a, _), (b, _) in zip(grid, grid[1:])])
        x = np.concatenate(
            [rng.standard_normal((40, 30)) * fmt.max / 2 * s, rng.choice(mids, (40, 10)) * s, np.full((40, 1), -0.0)],
            axis=1,
        )
        got = round_to_grid(x, s, fmt)
        for i in range(40):
            for j in range(x.shape[1]):
                v, code = nearest_even(grid, Fraction(float(x[i, j])) / Fraction(float(s[i, 0])))
                assert fmt.decode(got[i, j]) == float(v), (name, x[i, j], s[i, 0])
        assert np.signbit(fmt.decode(got[:, -1])).all()  # -0 keeps its sign


def test_round_half_even_div_uses_the_exact_sum():
    # (w + z) / s with w + z not a float64: 0.375 + 2**-54 + 0.25 rounds to 0.625 = 2.5 * 0.25,
    # a tie in float64, while the exact quotient is above it: it must round up to 3.
    w, z, s = np.array([0.375 + 2.0**-54, 0.375]), np.array([0.25, 0.25]), np.array([0.25, 0.25])
    hi, lo = two_sum(w, z)
    assert hi[0] == 0.625 and lo[0] == 2.0**-54
    assert round_half_even_div(hi, s, lo).tolist() == [3.0, 2.0]
    assert np.rint(hi / s).tolist() == [2.0, 2.0]  # the naive double rounding
    rng = np.random.default_rng(9)
    x = rng.standard_normal(2000) * 20
    x[::3] = np.round(x[::3]) + 0.5
    sc = np.float16(rng.uniform(0.1, 4, 2000)).astype(np.float64)
    x[::3] *= sc[::3]
    got = round_half_even_div(x, sc)
    for xi, si, gi in zip(x, sc, got):
        q = Fraction(float(xi)) / Fraction(float(si))
        assert gi == round(q), (xi, si)  # Python's round(Fraction) is half-to-even


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda t: t.quantize(np.array(1.0)), "at least one dimension"),
        (lambda t: t.quantize(np.array(["a"])), "real float or integer array"),
        (lambda t: t.quantize(np.ones(4), axis=1), "axis 1 is out of range"),
        (lambda t: t.dequantize(np.zeros(40, np.uint8), np.zeros(1, np.uint8)), r"scales have shape \(1,\), expected \(2,\)"),
        (lambda t: t.dequantize(np.zeros(4), np.zeros(1, np.uint8)), "codes must be an integer array"),
        (lambda t: t.dequantize(np.zeros(4, np.uint8), np.zeros(1, np.uint8), 1.0), "has no tensor scale"),
    ],
)
def test_errors(call, pattern):
    with pytest.raises(QuantizeError, match=pattern) as info:
        call(SCALED_TYPES["mxfp4"])
    assert isinstance(info.value, LowbitError)


def test_nvfp4_dequantize_needs_tensor_scale():
    t = SCALED_TYPES["nvfp4"]
    codes, scales, _ = t.quantize(np.ones(16))
    with pytest.raises(QuantizeError, match="needs the tensor_scale"):
        t.dequantize(codes, scales)
