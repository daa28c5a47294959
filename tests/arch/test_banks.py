"""The bank model on the patterns every CUDA programmer knows, plus its invariances."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowbit.arch import banks
from lowbit.errors import ArchError


def test_consecutive_words_are_one_wavefront() -> None:
    assert banks.wavefronts([4 * lane for lane in range(32)], 4) == 1


def test_broadcast_is_free() -> None:
    assert banks.wavefronts([64] * 32, 4) == 1
    assert banks.wavefronts([64] * 32, 16) == 4  # one per quarter-warp phase


@pytest.mark.parametrize("stride_words, expected", [(1, 1), (2, 2), (3, 1), (4, 4), (8, 8), (16, 16), (32, 32), (33, 1)])
def test_strided_words(stride_words: int, expected: int) -> None:
    # the classic table: a stride of s words conflicts gcd(s, 32)-ways
    assert banks.wavefronts([4 * stride_words * lane for lane in range(32)], 4) == expected


def test_wide_accesses_use_phases() -> None:
    assert banks.phase_lanes(1) == banks.phase_lanes(4) == 32
    assert banks.phase_lanes(8) == 16
    assert banks.phase_lanes(16) == 8
    # contiguous 8-byte and 16-byte accesses: each phase reads 128 conflict-free bytes
    assert banks.wavefronts([8 * lane for lane in range(32)], 8) == 2
    assert banks.wavefronts([16 * lane for lane in range(32)], 16) == 4
    # 16-byte accesses with a 128-byte stride: each 8-lane phase hits the same 4 banks 8 times
    assert banks.wavefronts([128 * lane for lane in range(32)], 16) == 32


def test_sub_word_accesses_to_one_word_merge() -> None:
    # 32 lanes reading consecutive bytes touch 8 words in 8 banks: one wavefront
    assert banks.wavefronts(list(range(32)), 1) == 1
    assert banks.wavefronts([2 * lane for lane in range(32)], 2) == 1


def test_inactive_lanes() -> None:
    assert banks.wavefronts([None] * 32, 4) == 0
    addrs = [128 * lane if lane % 2 else None for lane in range(32)]
    assert banks.wavefronts(addrs, 4) == 16


def test_ldmatrix_row_major_tile_unswizzled_and_swizzled() -> None:
    # an 8x8 f16 matrix inside a row-major 64-wide f16 tile: rows are 128 bytes apart
    rows = [128 * r for r in range(8)]
    assert banks.ldmatrix_wavefronts(rows, 1) == 8
    # the 128-byte XOR swizzle moves row r's 16-byte chunk c to chunk c ^ (r % 8)
    swizzled = [128 * r + 16 * (0 ^ r) for r in range(8)]
    assert banks.ldmatrix_wavefronts(swizzled, 1) == 1
    x4 = [128 * r + 16 * c for c in range(4) for r in range(8)]
    x4_swz = [128 * r + 16 * (c ^ r) for c in range(4) for r in range(8)]
    assert banks.ldmatrix_wavefronts(x4, 4) == 32
    assert banks.ldmatrix_wavefronts(x4_swz, 4) == 4


@given(st.lists(st.integers(0, 4095), min_size=32, max_size=32), st.sampled_from([1, 2, 4, 8, 16]), st.randoms())
def test_permuting_lanes_within_a_phase_changes_nothing(words, width, rnd: random.Random) -> None:
    addrs = [w * width for w in words]
    step = banks.phase_lanes(width)
    shuffled = []
    for i in range(0, 32, step):
        chunk = addrs[i : i + step]
        rnd.shuffle(chunk)
        shuffled += chunk
    assert banks.wavefronts(addrs, width) == banks.wavefronts(shuffled, width)


@given(st.lists(st.integers(0, 4095), min_size=32, max_size=32), st.sampled_from([1, 2, 4, 8, 16]))
def test_cost_bounds(words, width) -> None:
    addrs = [w * width for w in words]
    step = banks.phase_lanes(width)
    phases = 32 // step
    total = banks.wavefronts(addrs, width)
    # at least one wavefront per phase, at most one per distinct word touched in a phase
    assert phases <= total <= phases * step * max(1, width // 4)
    # shifting every address by a multiple of 128 bytes maps banks to themselves
    assert banks.wavefronts([a + 128 * 7 for a in addrs], width) == total


def test_bad_input() -> None:
    with pytest.raises(ArchError, match="width"):
        banks.wavefronts([0] * 32, 3)
    with pytest.raises(ArchError, match="aligned"):
        banks.wavefronts([2] + [0] * 31, 4)
    with pytest.raises(ArchError, match="32 lanes"):
        banks.wavefronts([0] * 33, 4)
    with pytest.raises(ArchError, match="x3"):
        banks.ldmatrix_wavefronts([0] * 24, 3)
    with pytest.raises(ArchError, match="16 row addresses"):
        banks.ldmatrix_wavefronts([0] * 8, 2)
