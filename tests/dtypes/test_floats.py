"""FloatType against the exact Fraction reference (tests/dtypes/reference.py).

Default tier: the built-ins and the formats ml_dtypes lacks, on every value,
every midpoint (an exact tie) and the float64 neighbours of each midpoint,
plus hypothesis over random floats.  ``full``: the same for every split of
<= 8 bits in every NaN convention and three biases (433 formats).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.dtypes import FloatType, dtype
from lowbit.errors import DTypeError
from tests.dtypes.formats import NOT_IN_ML_DTYPES, all_float_splits, ref_of, small_builtins
from tests.dtypes.reference import NAN, FloatRef, midpoints

SMALL_FLOATS = [t for t in small_builtins() if isinstance(t, FloatType) and t.mantissa > 0]
DEFAULT_FORMATS = SMALL_FLOATS + [dtype(n) for n in NOT_IN_ML_DTYPES]
_REFS: dict = {}


def _ref(t: FloatType) -> FloatRef:
    if t not in _REFS:
        _REFS[t] = FloatRef(ref_of(t))
    return _REFS[t]


def _check_against_reference(t: FloatType, xs: np.ndarray, saturate: bool) -> None:
    ref = _ref(t)
    expect = [ref.encode(float(x), saturate) for x in xs]
    finite_ok = [e != "raise" for e in expect]
    if not all(finite_ok):
        with pytest.raises(DTypeError, match="NaN at index"):
            t.encode(xs, saturate=saturate)
        xs = xs[np.asarray(finite_ok)]
        expect = [e for e in expect if e != "raise"]
    got = t.encode(xs, saturate=saturate)
    assert got.dtype == np.uint8
    for x, g, e in zip(xs, got.tolist(), expect):
        if e == NAN:
            assert g in ref.nans, (t.name, float(x), saturate, g)
        else:
            assert g == e, (t.name, float(x).hex(), saturate, g, e)


def _probe_points(t: FloatType) -> np.ndarray:
    """Every value, every exact midpoint and its float64 neighbours, overflow edges, both signs."""
    ref = _ref(t)
    finite = ref.vals  # includes the overflow sentinel one ulp past max
    pts: list[float] = []
    for mid in midpoints(finite):
        f = float(mid)
        assert Fraction(f) == mid  # small formats' midpoints are exact in float64
        pts += [f, math.nextafter(f, math.inf), math.nextafter(f, -math.inf)]
    pts += [float(v) for v in finite]
    pts += [float(finite[-1]) * 4, 1e300, math.inf, 5e-324, 1e-300, 0.0]
    arr = np.asarray(pts, dtype=np.float64)
    return np.concatenate([arr, -arr, [math.nan, -math.nan]])


@pytest.mark.parametrize("t", DEFAULT_FORMATS, ids=str)
@pytest.mark.parametrize("saturate", [False, True])
def test_encode_ties_and_edges_match_reference(t: FloatType, saturate: bool) -> None:
    _check_against_reference(t, _probe_points(t), saturate)


@pytest.mark.full
@pytest.mark.parametrize("t", all_float_splits(), ids=str)
def test_every_split_matches_reference(t: FloatType) -> None:
    pts = _probe_points(t)
    for saturate in (False, True):
        _check_against_reference(t, pts, saturate)
    _check_decode(t)


def _check_decode(t: FloatType) -> None:
    ref = ref_of(t)
    got = t.values()
    for code in range(1 << t.bits):
        v = ref.value(code)
        g = float(got[code])
        if v == NAN:
            assert math.isnan(g), (t.name, code)
        elif isinstance(v, str):
            assert g == float(v), (t.name, code)
        else:
            assert Fraction(g) == v, (t.name, code, g, v)
            if v == 0:
                sign_set = t.signed and code >> (t.bits - 1) == 1
                assert math.copysign(1.0, g) == (-1.0 if sign_set else 1.0), (t.name, code)


@pytest.mark.parametrize("t", DEFAULT_FORMATS, ids=str)
def test_decode_matches_reference(t: FloatType) -> None:
    _check_decode(t)


def _random_floats(t: FloatType) -> st.SearchStrategy[float]:
    top = float(_ref(t).vals[-1]) * 2
    mids = [float(m) for m in midpoints(_ref(t).vals)]
    tie = st.sampled_from(mids)
    return st.one_of(
        st.floats(allow_nan=False),  # the whole float64 line, inf and subnormals included
        st.floats(-top, top),
        tie,
        tie.map(lambda f: math.nextafter(f, math.inf)),
        tie.map(lambda f: -math.nextafter(f, -math.inf)),
        st.floats(-t.smallest_normal * 2, t.smallest_normal * 2),
    )


@pytest.mark.parametrize("name", NOT_IN_ML_DTYPES)
def test_random_floats_match_reference(name: str) -> None:
    t = dtype(name)

    @settings(max_examples=40)
    @given(xs=st.lists(_random_floats(t), min_size=1, max_size=40), saturate=st.booleans())
    def check(xs: list[float], saturate: bool) -> None:
        _check_against_reference(t, np.asarray(xs, dtype=np.float64), saturate)

    check()


# -- documented constants (OCP MX v1.0 tables; docs/design/METHODS.md) ---------------
@pytest.mark.parametrize(
    "name, max_, min_normal, min_sub",
    [
        ("e4m3fn", 448.0, 2.0**-6, 2.0**-9),
        ("e5m2", 57344.0, 2.0**-14, 2.0**-16),
        ("e3m2", 28.0, 0.25, 0.0625),
        ("e2m3", 7.5, 1.0, 0.125),
        ("e2m1", 6.0, 1.0, 0.5),
        ("ue4m3", 448.0, 2.0**-6, 2.0**-9),
        ("f16", 65504.0, 2.0**-14, 2.0**-24),
        ("bf16", float(np.finfo(np.float32).max) * (1 - 2.0**-8) / (1 - 2.0**-24), 2.0**-126, 2.0**-133),
        ("f32", float(np.finfo(np.float32).max), 2.0**-126, 2.0**-149),
        ("f64", float(np.finfo(np.float64).max), 2.0**-1022, 5e-324),
        ("f8e4m3", 480.0, 2.0**-6, 2.0**-9),
    ],
)
def test_ranges(name: str, max_: float, min_normal: float, min_sub: float) -> None:
    t = dtype(name)
    assert t.max == max_ and t.smallest_normal == min_normal and t.smallest_subnormal == min_sub
    assert t.min == (-max_ if t.is_signed else 0.0)
    assert t.is_float and not t.is_int


def test_e2m1_values_are_the_ocp_table() -> None:
    pos = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    np.testing.assert_array_equal(dtype("e2m1").values(), pos + [-v for v in pos])


def test_special_codes() -> None:
    e4 = dtype("e4m3fn")
    assert e4.encode(np.nan) == 0x7F and e4.encode(-np.nan) == 0xFF
    assert e4.encode([np.inf, -np.inf]).tolist() == [0x7F, 0xFF]
    assert e4.encode([np.inf, -np.inf], saturate=True).tolist() == [0x7E, 0xFE]
    e5 = dtype("e5m2")
    assert e5.encode([np.inf, -np.inf, 1e6]).tolist() == [0x7C, 0xFC, 0x7C]
    assert e5.encode([np.inf, 1e6], saturate=True).tolist() == [0x7B, 0x7B]
    # -0 keeps its sign, including values that round to zero
    assert e4.encode([-0.0, -1e-30, 0.0]).tolist() == [0x80, 0x80, 0x00]
    assert dtype("f8e4m3b8fnuz").encode([-0.0, -1e-30]).tolist() == [0, 0]
    # unsigned: negative input
    ue = dtype("ue4m3")
    assert ue.encode([-0.0, -1e-30, -1.0]).tolist() == [0, 0, 0x7F]
    assert ue.encode([-1.0, 1e6], saturate=True).tolist() == [0, 0x7E]


def test_formats_without_nan_saturate_and_reject_nan() -> None:
    e2m1 = dtype("e2m1")
    assert e2m1.encode([100.0, -np.inf, 6.5, 5.0]).tolist() == [7, 15, 7, 6]  # 5 -> 4 (even)
    with pytest.raises(DTypeError, match=r"NaN at index \(1, 0\)"):
        e2m1.encode(np.array([[1.0, 2.0], [np.nan, 0.0]]))


def test_float64_input_is_rounded_once() -> None:
    # 1.0625 is the e4m3fn midpoint of 1 and 1.125; 2**-24 above it must round up.
    x = 1.0625 + 2.0**-24
    assert dtype("e4m3fn").decode(dtype("e4m3fn").encode(x)) == 1.125
    assert dtype("e4m3fn").encode(np.float32(1.0625)) == dtype("e4m3fn").encode(1.0)


def test_wide_floats_match_numpy_casts() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            rng.integers(0, 2**64, 200_000, dtype=np.uint64).view(np.float64),
            rng.standard_normal(100_000) * 10.0 ** rng.integers(-45, 40, 100_000),
            [0.0, -0.0, np.inf, -np.inf, 65520.0, 65519.99, 2.0**-25, 3 * 2.0**-26],
        ]
    )
    x = x[~np.isnan(x)]
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(dtype("f16").encode(x), x.astype(np.float16).view(np.uint16))
        np.testing.assert_array_equal(dtype("f32").encode(x), x.astype(np.float32).view(np.uint32))
    np.testing.assert_array_equal(dtype("f64").encode(x), x.view(np.uint64))
    codes = rng.integers(0, 2**16, 50_000).astype(np.uint16)
    np.testing.assert_array_equal(
        dtype("f16").decode(codes), codes.view(np.float16).astype(np.float64)
    )
    c32 = rng.integers(0, 2**32, 50_000, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):  # signalling-NaN patterns
        want = c32.view(np.float32).astype(np.float64)
    np.testing.assert_array_equal(dtype("f32").decode(c32), want)


def test_encode_shapes_and_input_kinds() -> None:
    t = dtype("e3m2")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 7)) * 8
    codes = t.encode(x)
    assert codes.shape == (3, 5, 7) and codes.dtype == np.uint8
    np.testing.assert_array_equal(t.encode(x.astype(np.float16)), t.encode(x.astype(np.float16).astype(np.float64)))
    np.testing.assert_array_equal(t.encode(x[:, ::2, 1:]), codes[:, ::2, 1:])  # non-contiguous
    assert t.encode(1.5).shape == () and t.encode([]).shape == (0,)
    assert t.encode([1, 2, -3]).tolist() == t.encode([1.0, 2.0, -3.0]).tolist()
    assert t.decode(np.array([[1, 2]], dtype=np.int32)).shape == (1, 2)


def test_encode_million_values_is_fast() -> None:
    import time

    x = np.random.default_rng(3).standard_normal(1_000_000) * 100
    t0 = time.perf_counter()
    dtype("e4m3fn").encode(x)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"encoding 1e6 values took {elapsed:.2f} s"
