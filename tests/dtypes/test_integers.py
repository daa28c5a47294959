"""IntType and BipolarType against numpy and an exact enumeration."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.dtypes import BipolarType, IntType, dtype
from lowbit.errors import DTypeError
from tests.dtypes.reference import nearest_in_table


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("signed", [True, False])
def test_int_decode_is_twos_complement(bits: int, signed: bool) -> None:
    t = IntType(bits, signed)
    codes = np.arange(1 << bits)
    want = [c - (1 << bits) if signed and c >= 1 << (bits - 1) else c for c in codes.tolist()]
    assert t.decode(codes).tolist() == want
    assert (t.min, t.max) == (min(want), max(want))
    assert t.code_dtype == np.uint8 and t.is_int and not t.is_float and t.is_signed == signed


def test_int1_is_minus_one_and_zero() -> None:
    assert dtype("int1").values().tolist() == [0.0, -1.0]
    assert dtype("int1").encode([-0.6, -0.4, 5.0, -5.0]).tolist() == [1, 0, 0, 1]


def test_wide_ints_are_exact() -> None:
    i64, u64 = dtype("int64"), dtype("uint64")
    big = np.asarray([2**63 - 1, -(2**63), -1, 12345678901234567], dtype=np.int64)
    codes = i64.encode(big)
    assert codes.dtype == np.uint64
    np.testing.assert_array_equal(i64.decode_int(codes), big)
    assert i64.encode([1e300, -1e300, np.inf]).view(np.int64).tolist() == [2**63 - 1, -(2**63), 2**63 - 1]
    assert u64.encode(np.asarray([2**64 - 1], dtype=np.uint64)).tolist() == [2**64 - 1]
    assert u64.encode([-5.0, 1e30, 2.0**63]).tolist() == [0, 2**64 - 1, 2**63]
    assert dtype("int16").encode(np.asarray([40000, -40000], dtype=np.int64)).tolist() == [0x7FFF, 0x8000]
    assert dtype("uint8").encode(np.asarray([2**64 - 1], dtype=np.uint64)).tolist() == [255]
    assert dtype("int8").encode(np.asarray([2**64 - 1], dtype=np.uint64)).tolist() == [127]
    assert dtype("int32").code_dtype == np.uint32


@settings(max_examples=60)
@given(
    bits=st.sampled_from([1, 2, 3, 5, 8, 12, 16, 32]),
    signed=st.booleans(),
    xs=st.lists(st.one_of(st.floats(allow_nan=False), st.integers(-300, 300).map(lambda i: i / 2)),
                min_size=1, max_size=30),
)
def test_int_encode_is_rint_then_clip(bits: int, signed: bool, xs: list[float]) -> None:
    t = IntType(bits, signed)
    x = np.asarray(xs)
    np.testing.assert_array_equal(t.decode(t.encode(x)), np.clip(np.rint(x), t.min, t.max))


def test_int_nan_raises_with_index() -> None:
    with pytest.raises(DTypeError, match=r"int4.encode: NaN at index 2"):
        dtype("int4").encode([1.0, 2.0, np.nan, np.nan])


# -- bipolar ------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_bipolar_values_from_bits(bits: int) -> None:
    t = BipolarType(bits)
    for code, v in enumerate(t.values().tolist()):
        assert v == sum((2 * ((code >> i) & 1) - 1) * 2**i for i in range(bits))
    assert (t.min, t.max) == (-(2**bits - 1), 2**bits - 1)


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_bipolar_encode_matches_enumeration(bits: int) -> None:
    t = BipolarType(bits)
    table = [Fraction(sum((2 * ((c >> i) & 1) - 1) * 2**i for i in range(bits))) for c in range(1 << bits)]

    @settings(max_examples=40)
    @given(xs=st.lists(st.one_of(st.floats(allow_nan=False), st.floats(-40, 40),
                                 st.integers(-40, 40).map(float),
                                 st.floats(-1e-300, 1e-300)), min_size=1, max_size=30))
    def check(xs: list[float]) -> None:
        got = t.encode(np.asarray(xs)).tolist()
        want = [nearest_in_table(table, Fraction(x) if np.isfinite(x) else Fraction(int(np.sign(x)) * 10**9),
                                 "even") for x in xs]
        assert got == want

    check()


def test_bipolar_ties_and_tiny_values() -> None:
    t = BipolarType(2)  # values -3 -1 1 3 at codes 0 1 2 3
    assert t.encode([0.0, -0.0, 2.0, -2.0, 1e-300, -1e-300, 4.0, -100]).tolist() == [2, 2, 2, 0, 2, 1, 3, 0]


@given(x=st.integers(-8, 7))
def test_bipolar_is_twos_complement_with_top_bit_flipped(x: int) -> None:
    # METHODS.md: the bipolar pattern of 2x + 1 is int4's pattern of x with the top bit flipped.
    assert int(BipolarType(4).encode(2 * x + 1)) == int(dtype("int4").encode(x)) ^ 0b1000
