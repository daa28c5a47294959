"""Every deliberate difference from ml_dtypes and from the OCP MX reference code.

Each test shows both sides: what the other library does (so the test notices
if it changes) and that lowbit matches its *own* independent reference
(exact Fraction rounding, frexp, clip-then-cast, numpy rint+clip).  The table
in docs/formats.md lists these tests.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.dtypes import dtype
from lowbit.errors import DTypeError
from tests.dtypes.formats import ref_of
from tests.dtypes.reference import FloatRef, e8m0_ref, midpoints

ML = {
    "e4m3fn": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e3m2": ml_dtypes.float6_e3m2fn,
    "e2m3": ml_dtypes.float6_e2m3fn,
    "e2m1": ml_dtypes.float4_e2m1fn,
}


def _ml(x: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(x).astype(ML[name]).view(np.uint8)


# -- 1. ml_dtypes rounds float64 through float32 (two roundings) -----------------------
def test_issue_example_double_rounding() -> None:
    x = 1.0625 + 2.0**-24  # just above the tie 1.0625 between 1 and 1.125
    assert float(dtype("e4m3fn").decode(dtype("e4m3fn").encode(x))) == 1.125
    assert float(np.float64(x).astype(ml_dtypes.float8_e4m3fn)) == 1.0  # float32 made it a tie


@pytest.mark.parametrize("name", list(ML))
def test_float64_near_ties_lowbit_exact_ml_dtypes_double_rounds(name: str) -> None:
    t = dtype(name)
    ref = FloatRef(ref_of(t))
    mids = np.asarray([float(m) for m in midpoints(ref.vals[:-1])], dtype=np.float64)
    mids = mids[mids > 0]
    x = np.concatenate([mids * (1 + 2.0**-40), mids * (1 - 2.0**-40)])
    x = np.concatenate([x, -x])
    got = t.encode(x)
    want = np.asarray([ref.encode(float(v), False) for v in x])
    np.testing.assert_array_equal(got, want)
    ml = _ml(x, name)
    np.testing.assert_array_equal(ml, _ml(x.astype(np.float32), name))  # it goes via float32
    assert (ml != got).sum() >= len(x) // 4  # and lands on the wrong side of ~half the ties


# -- 2. e4m3fn overflow: ml_dtypes -> NaN; lowbit saturate=True -> +-448 -----------------
def test_e4m3fn_saturation_matches_clip_then_cast() -> None:
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-2000, 2000, 20_000), [464.0, 465.0, 1e30, -1e30, np.inf, -np.inf]])
    x = x.astype(np.float32)
    t = dtype("e4m3fn")
    np.testing.assert_array_equal(t.encode(x, saturate=True), _ml(np.clip(x, -448, 448), "e4m3fn"))
    over = np.abs(x) > 464
    assert (_ml(x, "e4m3fn")[over] & 0x7F == 0x7F).all()  # ml_dtypes: NaN
    assert (t.encode(x, saturate=False)[over] & 0x7F == 0x7F).all()  # lowbit default agrees
    assert (t.decode(t.encode(x, saturate=True))[over] == 448 * np.sign(x[over])).all()


# -- 3. e8m0: lowbit's default rounding is rz (MX spec floor, PTX cvt.rz) -----------------
def test_e8m0_ties_rz_default_vs_ml_dtypes_ties_up() -> None:
    k = np.arange(-126, 127)
    x = 1.5 * 2.0**k
    e8 = dtype("e8m0")
    assert (e8.encode(x) == k + 127).all()  # rz: floor
    assert (e8.encode(x, rounding="rp") == k + 128).all()
    assert (e8.encode(x, rounding="rn_up") == k + 128).all()
    assert (x.astype(ml_dtypes.float8_e8m0fnu).view(np.uint8) == k + 128).all()  # ties up


@settings(max_examples=60)
@given(
    xs=st.lists(
        st.one_of(
            st.floats(allow_nan=True),
            st.floats(2.0**-140, 2.0**130),
            st.integers(-140, 130).map(lambda k: 1.5 * 2.0**k),
            st.integers(-140, 130).map(lambda k: math.nextafter(1.5 * 2.0**k, 0)),
        ),
        min_size=1,
        max_size=30,
    ),
    mode=st.sampled_from(["rz", "rp", "rn_up"]),
    saturate=st.booleans(),
)
def test_e8m0_matches_frexp_reference(xs: list[float], mode: str, saturate: bool) -> None:
    got = dtype("e8m0").encode(np.asarray(xs), saturate=saturate, rounding=mode)
    assert got.tolist() == [e8m0_ref(x, mode, saturate) for x in xs]


def test_e8m0_subnormal_inputs_round_to_nearest() -> None:
    # ml_dtypes rounds float32 subnormals just above 2**-127 up to 2**-126; nearest is 2**-127.
    x = np.asarray([1.01, 1.2, 1.49, 1.5, 1.7], dtype=np.float64) * 2.0**-127
    got = dtype("e8m0").encode(x, rounding="rn_up")
    assert got.tolist() == [e8m0_ref(v, "rn_up") for v in x] == [0, 0, 0, 1, 1]
    assert x.astype(np.float32).astype(ml_dtypes.float8_e8m0fnu).view(np.uint8).tolist() == [1, 1, 1, 1, 1]


def test_e8m0_invalid_inputs() -> None:
    e8 = dtype("e8m0")
    bad = [0.0, -0.0, -1.0, np.inf, -np.inf, np.nan]
    for saturate in (False, True):
        assert e8.encode(bad, saturate=saturate).tolist() == [0xFF] * 6
    assert e8.encode([2.0**-128, 1e-300], saturate=False).tolist() == [0, 0]
    assert e8.encode([2.0**128, 1e300], saturate=False).tolist() == [0xFF, 0xFF]
    assert e8.encode([2.0**128, 1e300], saturate=True).tolist() == [0xFE, 0xFE]
    with pytest.raises(DTypeError, match="rounding"):
        e8.encode(1.0, rounding="rn")
    with pytest.raises(DTypeError, match="rounding"):
        dtype("e4m3fn").encode(1.0, rounding="rz")


# -- 4. int2/int4: ml_dtypes truncates and wraps; lowbit rounds half-even and clips --------
def test_int4_round_and_clip_vs_ml_dtypes_wrap() -> None:
    x = np.asarray([8.0, -9.0, 7.6, 2.5, -2.5, 3.5, 100.0], dtype=np.float32)
    assert dtype("int4").decode(dtype("int4").encode(x)).tolist() == [7, -8, 7, 2, -2, 4, 7]
    assert x.astype(ml_dtypes.int4).astype(int).tolist()[:3] == [-8, 7, 7]  # wrap, truncate


def test_int2_round_and_clip_vs_ml_dtypes_wrap() -> None:
    x = np.asarray([2.0, 3.0, -3.0, 1.6, -2.5], dtype=np.float32)
    assert dtype("int2").decode(dtype("int2").encode(x)).tolist() == [1, 1, -2, 1, -2]  # rint, clip to [-2, 1]
    assert x.astype(ml_dtypes.int2).astype(int).tolist()[:4] == [-2, -1, 1, 1]  # wrap, truncate
    u = np.asarray([4.0, 5.0, 2.5], dtype=np.float32)
    assert dtype("uint2").decode(dtype("uint2").encode(u)).tolist() == [3, 3, 2]
    assert u.astype(ml_dtypes.uint2).astype(int).tolist()[:2] == [0, 1]


@pytest.mark.parametrize("name", ["int2", "int4", "uint2", "uint4", "int3", "uint7"])
@settings(max_examples=50)
@given(xs=st.lists(st.one_of(st.floats(allow_nan=False), st.floats(-20, 20),
                             st.integers(-20, 20).map(lambda i: i + 0.5)), min_size=1, max_size=30))
def test_int_encode_matches_rint_clip(name: str, xs: list[float]) -> None:
    t = dtype(name)
    x = np.asarray(xs, dtype=np.float64)
    want = np.clip(np.rint(x), t.min, t.max)
    np.testing.assert_array_equal(t.decode(t.encode(x)), want)


# -- 5. NaN into formats without NaN: ml_dtypes writes -0, lowbit raises --------------------
@pytest.mark.parametrize("name", ["e3m2", "e2m3", "e2m1"])
def test_nan_into_finite_formats(name: str) -> None:
    x = np.asarray([1.0, np.nan], dtype=np.float32)
    assert _ml(x, name)[1] == 1 << (dtype(name).bits - 1)  # -0 in ml_dtypes
    with pytest.raises(DTypeError, match=r"NaN at index 1"):
        dtype(name).encode(x)


# -- 6. OCP MX reference code rounds ties away from zero; lowbit rounds to even --------------
def _mx_reference(x: np.ndarray, ebits: int, mbits: int, max_norm: float) -> np.ndarray:
    """The MX library's element quantizer (microsoft/microxcaling, mx/elemwise_ops.py,
    ``_quantize_elemwise_core`` with round="nearest", saturate_normals=True), in numpy."""
    min_exp = -(2 ** (ebits - 1)) + 2
    private_exp = np.floor(np.log2(np.abs(x) + (x == 0)))
    private_exp = np.maximum(private_exp, min_exp)
    scaled = x * 2.0 ** (mbits - private_exp)
    scaled = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # "nearest": ties away from 0
    out = scaled * 2.0 ** (private_exp - mbits)
    return np.clip(out, -max_norm, max_norm)


@pytest.mark.parametrize("name", ["e2m1", "e3m2", "e2m3", "e4m3fn"])
def test_mx_reference_ties_away_lowbit_ties_even(name: str) -> None:
    t = dtype(name)
    ref = FloatRef(ref_of(t))
    vals = ref.vals[:-1]
    ties = np.asarray([float(m) for m in midpoints(vals)], dtype=np.float64)
    ties = np.concatenate([ties, -ties])
    mx = _mx_reference(ties, t.exponent, t.mantissa, t.max)
    ours = t.decode(t.encode(ties, saturate=True))
    # lowbit is the exact ties-to-even reference on every tie ...
    assert t.encode(ties, saturate=True).tolist() == [ref.encode(float(v), True) for v in ties]
    # ... the MX reference always picks the neighbour farther from zero ...
    lower = np.asarray([float(max(v for v in vals if v < abs(x))) for x in ties])
    assert (np.abs(mx) == np.minimum(lower + 2 * (np.abs(ties) - lower), t.max)).all()
    # ... so they differ exactly where the even neighbour is the one nearer zero.
    differ = mx != ours
    assert differ.any()
    assert (np.abs(ours[differ]) < np.abs(mx[differ])).all()
    if name == "e2m1":
        assert t.decode(t.encode([0.25, 2.5, 5.0])).tolist() == [0.0, 2.0, 4.0]
        assert _mx_reference(np.asarray([0.25, 2.5, 5.0]), 2, 1, 6.0).tolist() == [0.5, 3.0, 6.0]


@pytest.mark.parametrize("name", ["e2m1", "e3m2", "e2m3", "e4m3fn"])
def test_mx_reference_agrees_off_ties(name: str) -> None:
    t = dtype(name)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1.5 * t.max, 1.5 * t.max, 20_000)
    x = np.concatenate([x, x * 2.0**-8])
    np.testing.assert_array_equal(
        t.decode(t.encode(x, saturate=True)), _mx_reference(x, t.exponent, t.mantissa, t.max)
    )
