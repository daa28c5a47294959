"""The interpreter's vectorised semantics agree with the scalar laws of lowbit.ir.semantics.

Each test draws random values (negatives, extremes) and compares the numpy
implementation used on tiles with the pure-Python definition used for
scalar expressions, or with an independent reference (lowbit.pack, the
dtype codecs, IEEE rounding through float64).
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowbit.packing as packing
from lowbit.dtypes import dtype
from lowbit.interp import values as V
from lowbit.ir import semantics as sem
from lowbit.ir.expr import Binary, Const, evaluate
from lowbit.ir.types import BOOL, INT32

I32 = st.integers(-(2**31), 2**31 - 1)
OPS = ["add", "sub", "mul", "div", "mod", "min", "max", "and", "or", "xor", "shl", "shr"]


@settings(max_examples=150)
@given(st.sampled_from(OPS), st.lists(st.tuples(I32, I32), min_size=1, max_size=16), st.sampled_from(["int32", "uint8", "int4", "uint32"]))
def test_int_tile_ops_match_scalar_law(op, pairs, name) -> None:
    dt = dtype(name)
    a = V.wrap(np.array([p[0] for p in pairs], dtype=np.int64), dt)
    b = V.wrap(np.array([p[1] for p in pairs], dtype=np.int64), dt)
    if op in ("shl", "shr"):
        b = np.abs(b) % (dt.bits + 3)  # include amounts >= bits: they clamp
    if op in ("div", "mod"):
        b = np.where(b == 0, 3, b)
    got = V.binary(op, a, b, dt, "test")
    for x, y, g in zip(a.tolist(), b.tolist(), got.tolist()):
        if op == "shl":
            want = sem.shift_left(x, y, dt.bits, dt.is_signed)
        elif op == "shr":
            want = sem.shift_right(x, y, dt.bits, dt.is_signed)
        elif op in ("div", "mod"):
            want = sem.wrap_int((sem.trunc_div if op == "div" else sem.trunc_mod)(x, y), dt.bits, dt.is_signed)
        else:
            want = sem.wrap_int({"add": x + y, "sub": x - y, "mul": x * y, "min": min(x, y), "max": max(x, y),
                                 "and": x & y, "or": x | y, "xor": x ^ y}[op], dt.bits, dt.is_signed)  # fmt: skip
        assert g == want, (op, name, x, y)


@given(I32, I32)
def test_int32_scalar_exprs_use_the_same_law(x, y) -> None:
    if y == 0:
        y = 1
    for op in ("add", "mul", "div", "mod"):
        e = Binary(op, Const(x, INT32), Const(y, INT32))
        tile = V.binary(op, np.array([x]), np.array([y]), dtype("int32"), "t")[0]
        assert evaluate(e, {}) == tile


def test_truncating_division_examples() -> None:
    i32 = dtype("int32")
    a, b = np.array([-7, 7, -7, 7]), np.array([2, -2, -2, 2])
    assert V.binary("div", a, b, i32, "t").tolist() == [-3, -3, 3, 3]
    assert V.binary("mod", a, b, i32, "t").tolist() == [-1, 1, -1, 1]
    assert V.binary("add", np.array([2**31 - 1]), np.array([1]), i32, "t").tolist() == [-(2**31)]
    # Tiles divide by zero to the table's values (a kernel cannot raise on a GPU): lowbit.ir.semantics.OPS.
    zeros = np.zeros(4, dtype=np.int64)
    assert V.binary("div", a, zeros, i32, "t").tolist() == [1, -1, 1, -1]
    assert V.binary("mod", a, zeros, i32, "t").tolist() == [-7, 7, -7, 7]
    assert [sem.int_div_by_zero(x, 32, True) for x in (-7, 7)] == [(1, -7), (-1, 7)]
    u32 = dtype("uint32")
    assert V.binary("div", np.array([5, 0]), np.array([0, 0]), u32, "t").tolist() == [2**32 - 1, 2**32 - 1]
    i64 = dtype("int64")
    lo = np.array([-(2**63)], dtype=np.int64)
    assert V.binary("div", lo, np.array([-1]), i64, "t").tolist() == [-(2**63)]  # MIN // -1 wraps
    assert V.binary("mod", lo, np.array([-1]), i64, "t").tolist() == [0]


@settings(max_examples=100)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=20),
       st.sampled_from(["int32", "int8", "uint8", "uint4", "int64"]))  # fmt: skip
def test_float_to_int_is_rzi_with_saturation(xs, name) -> None:
    dt = dtype(name)
    arr = np.array(xs, dtype=np.float32)
    got = V.cast(arr, dtype("f32"), dt)
    want = [sem.float_to_int(float(x), dt.bits, dt.is_signed) for x in arr]
    assert got.tolist() == want


def test_float_to_int_examples() -> None:
    got = V.cast(np.array([2.7, -2.7, 1e10, -1e10, np.nan, 300.0], np.float32), dtype("f32"), dtype("int8"))
    assert got.tolist() == [2, -2, 127, -128, 0, 127]


@given(st.lists(I32, min_size=1, max_size=20), st.sampled_from(["int4", "uint4", "uint8", "int16", "uint32"]))
def test_int_to_int_wraps(xs, name) -> None:
    dt = dtype(name)
    got = V.cast(np.array(xs, dtype=np.int64), dtype("int32"), dt)
    assert got.tolist() == [sem.wrap_int(x, dt.bits, dt.is_signed) for x in xs]


def test_f32_to_f16_overflow_is_inf_and_rounding_is_rne() -> None:
    x = np.array([70000.0, -70000.0, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11], np.float32)
    got = V.cast(x, dtype("f32"), dtype("f16"))
    assert got.dtype == np.float16
    assert np.isinf(got[:2]).all() and got[0] > 0 > got[1]
    assert got[2] == np.float16(1.0)  # tie to even
    assert got[3] == np.float16(1.0 + 2.0**-9)


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e2m1", "e3m2", "nf4", "e8m0"])
def test_cast_to_small_float_is_saturating_encode(name) -> None:
    dt = dtype(name)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(200) * 30, [1e6, -1e6, 0.0]]).astype(np.float32)
    if name == "e8m0":
        x = np.abs(x) + 1e-3
    got = V.cast(x, dtype("f32"), dt)
    np.testing.assert_array_equal(got, dt.encode(x.astype(np.float64), saturate=True))
    back = V.cast(got, dt, dtype("f32"))
    np.testing.assert_array_equal(back, dt.decode(got).astype(np.float32))


def test_bf16_storage_and_cast() -> None:
    x = np.array([1.0, 3.14159, -2.5e38, 1e-40], np.float32)
    got = V.cast(x, dtype("f32"), dtype("bf16"))
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(got, x.astype(ml_dtypes.bfloat16))


@settings(max_examples=60)
@given(st.data())
def test_view_matches_lowbit_pack(data) -> None:
    bits = data.draw(st.sampled_from([1, 2, 3, 4, 5, 6, 8]))
    axis = data.draw(st.sampled_from([0, 1]))
    words = data.draw(st.integers(1, 3))
    other = data.draw(st.integers(1, 4))
    count = 32 * words // bits
    shape = (count, other) if axis == 0 else (other, count)
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    codes = rng.integers(0, 1 << bits, size=shape).astype(np.uint8)
    packed = packing.pack(codes, bits, axis=axis)  # uint32 words, LSB-first
    u32, ub = dtype("uint32"), dtype(f"uint{bits}")
    tile = packed.astype(np.int64)
    if packed.shape[axis] * 32 != count * bits:
        return  # a partial last word: not a whole-tile view
    unpacked = V.view_bits(tile, u32, ub, axis)
    np.testing.assert_array_equal(unpacked, codes.astype(np.int64))
    np.testing.assert_array_equal(V.view_bits(unpacked, ub, u32, axis), tile)


def test_view_examples_from_the_spec() -> None:
    words = np.array([[0x76543210, 0xFEDCBA98]], dtype=np.int64)  # [1, 2] uint32
    u4 = V.view_bits(words, dtype("uint32"), dtype("uint4"), 1)
    assert u4.shape == (1, 16) and u4.tolist() == [list(range(16))]
    col = np.array([[0x76543210], [0xFEDCBA98]], dtype=np.int64)  # [K/8=2, N=1] viewed along axis 0 -> [16, 1]
    assert V.view_bits(col, dtype("uint32"), dtype("uint4"), 0)[:, 0].tolist() == list(range(16))
    i4 = V.view_bits(words, dtype("uint32"), dtype("int4"), 1)
    assert i4[0, 15] == -1 and i4[0, 8] == -8
    h = np.array([1.0, -2.0], dtype=np.float16)
    assert V.view_bits(h, dtype("f16"), dtype("uint16"), 0).tolist() == [0x3C00, 0xC000]


def test_unary_float_ops() -> None:
    f32 = dtype("f32")
    x = np.array([4.0, 2.5, -2.5, 0.0], np.float32)
    assert V.unary("sqrt", x[:1], f32).tolist() == [2.0]
    assert V.unary("round_rn", x, f32).tolist() == [4.0, 2.0, -2.0, 0.0]
    assert V.unary("round_rd", x, f32).tolist() == [4.0, 2.0, -3.0, 0.0]
    assert V.unary("round_ru", x, f32).tolist() == [4.0, 3.0, -2.0, 0.0]
    assert V.unary("round_rz", x, f32).tolist() == [4.0, 2.0, -2.0, 0.0]
    assert V.unary("exp2", np.array([3.0], np.float32), f32).tolist() == [8.0]
    assert math.isinf(V.unary("rsqrt", np.array([0.0], np.float32), f32)[0])


def test_float_min_max_prefer_numbers_over_nan() -> None:
    f32 = dtype("f32")
    a = np.array([np.nan, 1.0], np.float32)
    b = np.array([2.0, np.nan], np.float32)
    assert V.binary("min", a, b, f32, "t").tolist() == [2.0, 1.0]


def test_bool_ops() -> None:
    a, b = np.array([True, False, True]), np.array([True, True, False])
    assert V.binary("xor", a, b, BOOL, "t").tolist() == [False, True, True]
    assert V.unary("not", a, BOOL).tolist() == [False, True, False]
