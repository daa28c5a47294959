"""register_map and shuffle_plan against brute force over (thread, slot) tables."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from lowbit.layout import register as R
from lowbit.layout.construct import blocked
from lowbit.transforms._layout_maps import local_table, register_map, shuffle_plan, spatial_table

LAYOUTS = [
    blocked((16, 32), 128, (1, 4)), blocked((16, 32), 128, (1, 8)), blocked((16, 32), 128, (2, 2)),
    blocked((16, 32), 128), R.product(R.spatial(16, 8), R.local(1, 4)), R.product(R.local(2, 2), R.spatial(8, 16)),
    R.product(R.spatial(2, 64), R.local(8, 1)), R.product(R.column_spatial(16, 8), R.local(1, 4)),
]  # fmt: skip


def _brute_map(src: R.RegisterLayout, dst: R.RegisterLayout) -> tuple[int, ...] | None:
    out = []
    for s in range(dst.local_size):
        found = None
        for s2 in range(src.local_size):
            if all(src.coords(t, s2) == dst.coords(t, s) for t in range(dst.num_threads)):
                found = s2
                break
        if found is None:
            return None
        out.append(found)
    return tuple(out)


def test_tables_decompose_coordinates() -> None:
    for lay in LAYOUTS:
        sp, lo = spatial_table(lay), local_table(lay)
        for t, s in itertools.product(range(0, lay.num_threads, 5), range(lay.local_size)):
            assert tuple(sp[t] + lo[s]) == lay.coords(t, s)


@given(st.sampled_from(range(len(LAYOUTS))), st.sampled_from(range(len(LAYOUTS))))
def test_register_map_is_the_brute_force_map(i: int, j: int) -> None:
    src, dst = LAYOUTS[i], LAYOUTS[j]
    assert register_map(src, dst) == _brute_map(src, dst)


@given(st.sampled_from(range(len(LAYOUTS))), st.sampled_from(range(len(LAYOUTS))))
def test_shuffle_plans_move_every_element_within_its_warp(i: int, j: int) -> None:
    src, dst = LAYOUTS[i], LAYOUTS[j]
    plan = shuffle_plan(src, dst)
    if plan is None:
        return
    for s, (s2, lanes) in enumerate(zip(plan.slots, plan.lanes)):
        for t in range(dst.num_threads):
            owner = (t // 32) * 32 + lanes[t]
            assert src.coords(owner, s2) == dst.coords(t, s)


def test_some_pairs_are_register_moves_and_some_shuffles() -> None:
    a, b = LAYOUTS[0], LAYOUTS[4]  # the same elements per thread
    assert register_map(a, b) is not None
    c, d = R.spatial(4, 8), R.column_spatial(4, 8)  # a transpose of thread order inside one warp
    assert register_map(c, d) is None and shuffle_plan(c, d) is not None
    e, f = R.product(R.spatial(4, 32), R.local(4, 1)), R.product(R.local(4, 1), R.spatial(4, 32))
    assert shuffle_plan(e, f) is None  # rows move between warps: only shared memory can do it
