"""lowbit.packing: LSB-first packing of 1..8-bit codes into uint32 words.

The reference below packs bit by bit in pure Python, straight from the
definition "code i occupies bits [i*bits, (i+1)*bits) of the little-endian
concatenation of the words"; the vectorised implementation must agree with it
on every width, length and axis.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowbit.packing as lp
from lowbit.errors import LowbitError, PackError
from lowbit.packing import LSB, PACKINGS, Packing, get_packing, num_words, pack, unpack


def ref_pack_1d(codes: list[int], bits: int) -> list[int]:
    """Bit-by-bit reference: set bit (i*bits + b) of the word stream for each set bit b of code i."""
    nbits = len(codes) * bits
    words = [0] * ((nbits + 31) // 32)
    for i, c in enumerate(codes):
        for b in range(bits):
            if (c >> b) & 1:
                pos = i * bits + b
                words[pos // 32] |= 1 << (pos % 32)
    return words


def ref_unpack_1d(words: list[int], bits: int, count: int) -> list[int]:
    out = []
    for i in range(count):
        c = 0
        for b in range(bits):
            pos = i * bits + b
            c |= ((words[pos // 32] >> (pos % 32)) & 1) << b
        out.append(c)
    return out


def ref_pack(codes: np.ndarray, bits: int, axis: int) -> np.ndarray:
    moved = np.moveaxis(codes, axis, -1)
    rows = [ref_pack_1d([int(v) for v in row], bits) for row in moved.reshape(-1, moved.shape[-1])]
    nw = (moved.shape[-1] * bits + 31) // 32
    arr = np.array(rows, dtype=np.uint64).reshape(moved.shape[:-1] + (nw,))
    return np.moveaxis(arr, -1, axis)


@st.composite
def code_arrays(draw):
    bits = draw(st.integers(1, 8))
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 13), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    seed = draw(st.integers(0, 2**32 - 1))
    dtype = draw(st.sampled_from([np.uint8, np.int64, np.uint16, np.int32]))
    codes = np.random.default_rng(seed).integers(0, 1 << bits, size=shape).astype(dtype)
    return codes, bits, axis


@settings(max_examples=150)
@given(code_arrays())
def test_pack_matches_bitwise_reference_and_round_trips(case):
    codes, bits, axis = case
    words = pack(codes, bits, axis)
    n = codes.shape[axis]
    assert words.dtype == np.uint32
    expected_shape = list(codes.shape)
    expected_shape[axis] = -(-n * bits // 32)
    assert words.shape == tuple(expected_shape)
    np.testing.assert_array_equal(words.astype(np.uint64), ref_pack(codes, bits, axis))
    back = unpack(words, bits, n, axis)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, codes)


@settings(max_examples=60)
@given(st.integers(1, 8), st.integers(0, 70), st.integers(0, 2**32 - 1))
def test_unpack_matches_bitwise_reference_on_random_words(bits, count, seed):
    nw = -(-count * bits // 32)
    words = np.random.default_rng(seed).integers(0, 2**32, size=nw, dtype=np.uint64).astype(np.uint32)
    got = unpack(words, bits, count)
    assert got.tolist() == ref_unpack_1d([int(w) for w in words], bits, count)


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 97])
def test_every_width_odd_lengths_round_trip(bits, n):
    rng = np.random.default_rng(bits * 1000 + n)
    codes = rng.integers(0, 1 << bits, size=(3, n), dtype=np.uint8)
    for axis in (1, -1):
        words = pack(codes, bits, axis)
        assert words.shape == (3, num_words(n, bits))
        np.testing.assert_array_equal(unpack(words, bits, n, axis), codes)
    np.testing.assert_array_equal(unpack(pack(codes.T, bits, 0), bits, n, 0), codes.T)


def test_straddling_code_positions_for_width_3():
    # 11 codes of 3 bits: code 10 occupies bits 30, 31 of word 0 and bit 0 of word 1.
    codes = np.zeros(11, dtype=np.uint8)
    codes[10] = 0b111
    assert pack(codes, 3).tolist() == [0xC0000000, 0x1]
    codes[10] = 0b100  # only its top bit: bit 0 of word 1
    assert pack(codes, 3).tolist() == [0, 0x1]
    codes[:] = 0
    codes[1] = 0b101  # bits 3 and 5
    assert pack(codes, 3).tolist() == [0b101000, 0]


@pytest.mark.parametrize("bits", [5, 6, 7])
def test_straddling_widths_place_each_bit(bits):
    n = 40
    for i in range(n):
        codes = np.zeros(n, dtype=np.uint8)
        codes[i] = 1  # lowest bit of code i
        words = pack(codes, bits)
        pos = i * bits
        expected = [0] * num_words(n, bits)
        expected[pos // 32] = 1 << (pos % 32)
        assert words.tolist() == expected, (bits, i)


@pytest.mark.parametrize("bits", range(1, 9))
def test_padding_bits_are_zero(bits):
    n = 13
    codes = np.full(n, (1 << bits) - 1, dtype=np.uint8)
    words = pack(codes, bits)
    total = sum(bin(int(w)).count("1") for w in words)
    assert total == n * bits
    used = n * bits - 32 * (len(words) - 1)
    if used < 32:
        assert int(words[-1]) >> used == 0


def test_empty_axis_and_extra_words():
    codes = np.zeros((4, 0), dtype=np.uint8)
    words = pack(codes, 4)
    assert words.shape == (4, 0)
    assert unpack(words, 4, 0).shape == (4, 0)
    codes = np.arange(8, dtype=np.uint8)
    words = np.concatenate([pack(codes, 4), np.array([0xFFFFFFFF], dtype=np.uint32)])
    np.testing.assert_array_equal(unpack(words, 4, 8), codes)  # extra words are ignored


def test_int32_words_are_reinterpreted():
    codes = np.array([15] * 8 + [1], dtype=np.uint8)
    words = pack(codes, 4)
    assert words[0] == 0xFFFFFFFF
    np.testing.assert_array_equal(unpack(words.view(np.int32), 4, 9), codes)
    np.testing.assert_array_equal(unpack(words.astype(np.int64), 4, 9), codes)


def test_out_of_range_code_names_first_index_and_value():
    codes = np.zeros((2, 5), dtype=np.int16)
    codes[1, 3] = 16
    codes[1, 4] = 99
    with pytest.raises(PackError, match=r"code 16 at index \(1, 3\).*\[0, 16\)"):
        pack(codes, 4)
    codes[1, 3] = -1
    with pytest.raises(PackError, match=r"code -1 at index \(1, 3\)"):
        pack(codes, 4)
    with pytest.raises(PackError, match=r"code 2 at index \(0,\)"):
        pack([2, 0, 1], 1)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: pack(np.array([0.0, 1.0]), 4), "integer array"),
        (lambda: pack(np.array([True, False]), 1), "integer array"),
        (lambda: pack(np.array(3, dtype=np.uint8), 4), "at least one dimension"),
        (lambda: pack(np.zeros(4, np.uint8), 0), "bits must be an integer in 1..8"),
        (lambda: pack(np.zeros(4, np.uint8), 9), "bits must be an integer in 1..8"),
        (lambda: pack(np.zeros(4, np.uint8), 4.0), "bits must be"),
        (lambda: pack(np.zeros((2, 4), np.uint8), 4, axis=2), "axis 2 is out of range"),
        (lambda: unpack(np.zeros(2, np.uint32), 4, 17), r"17 codes of 4 bits need 3 words.*is 2"),
        (lambda: unpack(np.zeros(2, np.float32), 4, 1), "integer array"),
        (lambda: unpack(np.array([-1, 0]), 4, 1), "does not fit in 32 unsigned bits"),
        (lambda: unpack(np.zeros(2, np.uint32), 4, -1), "count must be a non-negative integer"),
        (lambda: pack(np.zeros(4, np.uint8), 4, layout="marlin"), "unknown packing layout"),
    ],
)
def test_errors(call, pattern):
    with pytest.raises(PackError, match=pattern) as info:
        call()
    assert isinstance(info.value, LowbitError)


def test_layout_is_a_named_value():
    assert get_packing("lsb") is LSB
    assert PACKINGS["lsb"] == lp.LsbPacking()
    assert isinstance(LSB, Packing) and hash(LSB) == hash(lp.LsbPacking())
    assert pickle.loads(pickle.dumps(LSB)) == LSB
    codes = np.arange(10, dtype=np.uint8) % 8
    np.testing.assert_array_equal(pack(codes, 3, layout=LSB), LSB.pack(codes, 3))


def test_user_array_not_modified():
    codes = np.arange(12, dtype=np.uint8).reshape(3, 4) % 4
    before = codes.copy()
    pack(codes, 2, axis=0)
    np.testing.assert_array_equal(codes, before)


def test_large_uint4_matrix_is_fast():
    codes = np.random.default_rng(0).integers(0, 16, size=(4096, 4096), dtype=np.uint8)
    t0 = time.perf_counter()
    words = pack(codes, 4, axis=0)
    elapsed = time.perf_counter() - t0
    assert words.shape == (512, 4096)
    np.testing.assert_array_equal(unpack(words, 4, 4096, axis=0), codes)
    # ~0.1 s on an idle core; the bound leaves room for a loaded shared machine.
    assert elapsed < 2.0, f"packing a 4096x4096 uint4 matrix took {elapsed:.2f} s"
