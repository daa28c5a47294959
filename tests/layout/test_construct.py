"""blocked(): the layout laws its docstring states, over many shapes, thread counts and inner blocks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowbit.errors import LayoutError
from lowbit.layout.construct import blocked, padded_extent, pow2_factor


@given(st.lists(st.integers(1, 40), min_size=1, max_size=3), st.sampled_from([32, 64, 128, 256]), st.booleans(), st.data())
def test_blocked_laws(shape: list[int], threads: int, pad: bool, data: st.DataObject) -> None:
    inner = tuple(data.draw(st.sampled_from([d for d in (1, 2, 4, 8) if n % d == 0])) for n in shape)
    lay = blocked(tuple(shape), threads, inner, pad=pad)
    assert lay.num_threads == threads
    assert all(p >= n for p, n in zip(lay.shape, shape)) and (pad or lay.shape == tuple(shape))
    b = math.prod(inner)
    for t in range(0, threads, max(1, threads // 7)):
        for s0 in range(0, lay.local_size, b):
            cs = [lay.coords(t, s0 + j) for j in range(b)]
            base = cs[0]
            assert all(c0 % i == 0 for c0, i in zip(base, inner))  # blocks are aligned to the inner shape
            want = {tuple(c0 + o for c0, o in zip(base, off)) for off in _offsets(inner)}
            assert set(map(tuple, cs)) == want  # one inner block per b consecutive slots
    assert lay.contiguous_run(-1) % inner[-1] == 0


def _offsets(inner: tuple[int, ...]) -> list[tuple[int, ...]]:
    out = [()]
    for n in inner:
        out = [o + (i,) for o in out for i in range(n)]
    return out


def test_padding_spreads_odd_extents_instead_of_replicating() -> None:
    plain, padded = blocked((5, 20), 128), blocked((5, 20), 128, pad=True)
    assert plain.local_size == 25 and plain.replication == 32
    assert padded.shape == (8, 32) and padded.local_size == 2 and padded.replication == 1
    assert padded_extent(33, 128) == (64, 64) and padded_extent(64, 128) == (64, 64) and padded_extent(6, 4) == (8, 4)


def test_pow2_factor_and_errors() -> None:
    assert [pow2_factor(n, 16) for n in (1, 6, 40, 64, 0)] == [1, 2, 8, 16, 16]
    with pytest.raises(LayoutError, match="power of two"):
        blocked((4, 4), 96)
    with pytest.raises(LayoutError, match="does not divide"):
        blocked((4, 6), 32, (1, 4))
