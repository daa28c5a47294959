"""Strided (CuTe-style) layouts: each operation's defining law on random hierarchical layouts."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lowbit.errors import LayoutError
from lowbit.layout.strided import (
    Layout,
    coalesce,
    complement,
    compose,
    flatten,
    left_inverse,
    logical_divide,
    logical_product,
    make_layout,
    right_inverse,
    row_major,
)
from tests.layout.strategies import compact_layouts, ref_offset, strided_layouts

EX = settings(max_examples=80)


def values(layout):
    return [ref_offset(layout, i) for i in range(layout.size)]


def test_generated_layouts_are_hierarchical():
    # the strategy must reach depth >= 2, zero and non-compact strides
    lay = Layout(((2, 3), 4), ((0, 5), 7))
    assert values(lay) == [lay(i) for i in range(24)]
    assert lay(((1, 2), 3)) == 0 * 1 + 5 * 2 + 7 * 3


@EX
@given(strided_layouts())
def test_call_matches_reference_and_hierarchical_coordinates(lay):
    assert [lay(i) for i in range(lay.size)] == values(lay)
    if lay.rank > 1:
        # a coordinate per top-level mode, each an int index into that mode
        sizes = [m.size for m in lay.modes()]
        for i in range(lay.size):
            coord, rest = [], i
            for s in sizes:
                coord.append(rest % s)
                rest //= s
            assert lay(tuple(coord)) == lay(i)
    assert lay.cosize == max(values(lay)) + 1


@EX
@given(strided_layouts())
def test_coalesce_law(lay):
    c = coalesce(lay)
    assert c.size == lay.size and values(c) == values(lay)
    flat = list(zip(flatten(c.shape), flatten(c.stride)))
    assert all(s > 1 for s, _ in flat) or flat == [(1, 0)]
    assert all(flat[k][0] * flat[k][1] != flat[k + 1][1] for k in range(len(flat) - 1))


@st.composite
def composable(draw):
    a = draw(strided_layouts(max_size=48))
    n = a.size
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    modes = []
    for _ in range(draw(st.integers(1, 3))):
        d = draw(st.sampled_from(divisors + [0]))
        top = (n - 1) // d + 1 if d else 4
        modes.append((draw(st.integers(1, max(1, min(top, 6)))), d))
    b = Layout(tuple(m[0] for m in modes), tuple(m[1] for m in modes))
    if draw(st.booleans()) and len(modes) >= 2:
        b = Layout((b.shape[:2], *b.shape[2:]), (b.stride[:2], *b.stride[2:]))
    return a, b


@settings(max_examples=150)
@given(composable())
def test_compose_is_function_composition(ab):
    a, b = ab
    try:
        r = compose(a, b)
    except LayoutError as exc:
        assert exc.shapes
        assume(False)
    assert r.size == b.size
    assert [r(i) for i in range(b.size)] == [ref_offset(a, ref_offset(b, i)) for i in range(b.size)]


def test_compose_known_cases():
    # cases in the spirit of CuTe's test_composition.py, checked by the law
    cases = [
        (Layout((6, 2), (8, 2)), Layout((4, 3), (3, 1))),
        (Layout((4, 3), (3, 1)), Layout(12)),
        (Layout(((4, 3), 2), ((1, 4), 12)), Layout((3, 4), (2, 6))),
        (row_major(8, 64), Layout((8, 8), (64, 1))),
        (Layout(20, 2), Layout((4, 5), (1, 4))),
        (Layout((4, 8), (8, 1)), Layout((2, 2), (2, 8))),
    ]
    for a, b in cases:
        r = compose(a, b)
        assert [r(i) for i in range(b.size)] == [a(b(i)) for i in range(b.size)]


def test_compose_with_one_moving_mode_never_refuses_what_one_mode_can_do():
    # b has one mode that moves (the others: size 1 or stride 0); there is nothing to carry into,
    # so compose must agree with composing that single mode (found by a brute-force search)
    cases = [
        (Layout(((1,), 2, (2, 3)), ((2,), 2, (2, 0))), Layout((2,), (6,))),
        (Layout(((3,), (1, 4)), ((1,), (3, 2))), Layout((2, 1, 1), (2, 2, 2))),
        (Layout((3, (2,)), (16, (14,))), Layout((1, 2, 4), (6, 1, 0))),
    ]
    for a, b in cases:
        r = compose(a, b)
        assert [r(i) for i in range(b.size)] == [ref_offset(a, ref_offset(b, i)) for i in range(b.size)]


def test_compose_tiler_by_mode():
    a = row_major(16, 64)
    r = compose(a, (Layout(8, 2), Layout(4, 16)))
    for i in range(8):
        for j in range(4):
            assert r((i, j)) == a((2 * i, 16 * j))


def test_compose_rejects_what_it_cannot_express():
    with pytest.raises(LayoutError):
        compose(Layout(4), Layout(4, 2))  # reaches offset 6 of a size-4 layout
    with pytest.raises(LayoutError):
        compose(Layout((4, 3), (1, 100)), Layout(3, 3))  # stride 3 splits mode 4 unevenly


@st.composite
def with_zero_modes(draw):
    lay = draw(compact_layouts())
    if draw(st.booleans()):
        lay = make_layout(lay, Layout(draw(st.integers(2, 3)), 0))
    return lay


@EX
@given(with_zero_modes(), st.integers(1, 200))
def test_complement_disjoint_and_covering(lay, cotarget):
    c = complement(lay, cotarget)
    kept = [(s, d) for s, d in zip(flatten(lay.shape), flatten(lay.stride)) if d and s > 1] or [(1, 0)]
    filtered = Layout(tuple(s for s, _ in kept), tuple(d for _, d in kept))
    both = make_layout(filtered, c)
    n = both.size
    assert sorted(values(both)) == list(range(n))  # disjoint and together exactly cover 0..n-1
    assert n >= cotarget
    assert n < max(cotarget, filtered.cosize) * 2 or c.size == 1


@EX
@given(strided_layouts())
def test_complement_law_or_error(lay):
    try:
        c = complement(lay)
    except LayoutError:
        # only when the nonzero modes really overlap or interleave unevenly
        nz = sorted((d, s) for s, d in zip(flatten(lay.shape), flatten(lay.stride)) if d and s > 1)
        cur, ok = 1, True
        for d, s in nz:
            ok &= d % cur == 0
            cur = d * s
        assert not ok
        return
    kept = [(s, d) for s, d in zip(flatten(lay.shape), flatten(lay.stride)) if d and s > 1] or [(1, 0)]
    both = make_layout(Layout(tuple(s for s, _ in kept), tuple(d for _, d in kept)), c)
    assert sorted(values(both)) == list(range(both.size))


@EX
@given(strided_layouts())
def test_right_inverse_law(lay):
    r = right_inverse(lay)
    assert all(lay(r(i)) == i for i in range(r.size))


@EX
@given(compact_layouts())
def test_inverses_round_trip_on_injective_layouts(lay):
    li = left_inverse(lay)
    assert all(li(lay(i)) == i for i in range(lay.size))
    if lay.cosize == lay.size:  # a bijection onto 0..n-1: the right inverse is total
        r = right_inverse(lay)
        assert r.size == lay.size
        assert all(lay(r(i)) == i for i in range(lay.size))
        assert all(r(lay(i)) == i for i in range(lay.size))


def test_left_inverse_refuses_broadcast():
    with pytest.raises(LayoutError):
        left_inverse(Layout((4, 2), (1, 0)))


@st.composite
def divisible(draw):
    b = draw(compact_layouts(max_size=16))
    c = complement(b)
    tile = make_layout(b, c)
    # a's flat modes follow the mixed radix of (b, complement(b)) so every stride of b lands on a mode boundary
    radix = [s for _, s in sorted((d, s) for s, d in zip(flatten(tile.shape), flatten(tile.stride)) if s > 1)]
    k = draw(st.integers(1, 3))
    shape = (tuple(radix), k) if len(radix) > 1 else (radix[0] if radix else 1, k)
    strides = tuple(draw(st.integers(0, 9)) for _ in range(len(flatten(shape))))
    it = iter(strides)
    stride = (tuple(next(it) for _ in radix), next(it)) if len(radix) > 1 else (next(it), next(it))
    return Layout(shape, stride), b


@EX
@given(divisible())
def test_logical_divide_law(ab):
    a, b = ab
    r = logical_divide(a, b)
    assert r.size == a.size
    first = r.mode(0)
    assert [first(i) for i in range(b.size)] == [a(b(i)) for i in range(b.size)]
    assert Counter(values(r)) == Counter(values(a))  # the tiles partition a's domain


@EX
@given(compact_layouts(max_size=16, gaps=False), compact_layouts(max_size=16))
def test_logical_product_law(a, b):
    _product_law(a, b)


@EX
@given(compact_layouts(max_size=16), compact_layouts(max_size=16))
def test_logical_product_law_with_gaps_or_error(a, b):
    try:
        logical_product(a, b)
    except LayoutError:
        assume(False)
    _product_law(a, b)


def _product_law(a, b):
    p = logical_product(a, b)
    assert p.size == a.size * b.size
    assert p.mode(0) == a
    vals = [p((i, j)) for j in range(b.size) for i in range(a.size)]
    assert len(set(vals)) == len(vals)  # injective: tiles are disjoint shifted copies of a
    for j in range(b.size):
        assert all(p((i, j)) == a(i) + p((0, j)) for i in range(a.size))
    # divide undoes product: the first a.size offsets of the product are a again
    d = logical_divide(p, Layout(a.size))
    assert [d.mode(0)(i) for i in range(a.size)] == [a(i) for i in range(a.size)]


@EX
@given(strided_layouts(max_size=16), strided_layouts(max_size=16))
def test_make_layout_concatenates(a, b):
    m = make_layout(a, b)
    for i in range(a.size):
        for j in range(b.size):
            assert m((i, j)) == a(i) + b(j)


def test_row_major_and_text():
    lay = row_major(8, 64)
    assert lay((3, 5)) == 3 * 64 + 5
    assert str(lay) == "(8,64):(64,1)"
    assert str(Layout(((2, 4), 3), ((1, 16), 4))) == "((2,4),3):((1,16),4)"


@pytest.mark.parametrize(
    "call",
    [
        lambda: Layout(0),
        lambda: Layout((2, 3), (1,)),
        lambda: Layout((2, 3), (1, -2)),
        lambda: Layout(4)(4),
        lambda: Layout((2, 2))((0, 0, 0)),
        lambda: complement(Layout((2, 2), (1, 1))),
        lambda: Layout((2, 2)).mode(2),
        lambda: compose(Layout(4), (Layout(2), Layout(2))),
        lambda: make_layout(),
        lambda: left_inverse(Layout((4, 2), (1, 0))),
        lambda: complement(Layout(4, 2), 0),
        lambda: logical_divide(Layout(4), (Layout(2), Layout(2))),
        lambda: logical_product(Layout(4), Layout(3, 2)) and logical_product(Layout((2, 2), (1, 1)), Layout(2)),
    ],
)
def test_errors_are_layout_errors(call):
    # never a bare assert or IndexError: a LayoutError that carries the offending shapes
    with pytest.raises(LayoutError) as info:
        call()
    assert info.value.shapes, info.value


@pytest.mark.full
@settings(max_examples=2000)
@given(composable())
def test_compose_law_full(ab):
    test_compose_is_function_composition.hypothesis.inner_test(ab)


def test_sizes():
    lay = Layout(((2, 3), 4), ((1, 2), 6))
    assert lay.size == 24 == math.prod(flatten(lay.shape)) and lay.rank == 2
