"""Printing layouts: describe() is readable (and, for products, evaluates back); str()/to_text() stay compact."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lowbit.layout as LL
from lowbit.layout import (
    Layout,
    MemoryLayout,
    RegisterLayout,
    RegisterPacking,
    Swizzle,
    SwizzledLayout,
    block_fragment,
    ldmatrix_fragment,
    local,
    mma_fragment,
    parse,
    permute,
    product,
    reduce_dim,
    replicate,
    reshape,
    row_major,
    spatial,
)
from lowbit.layout.fragments import MMA_SHAPES
from tests.layout.strategies import all_layouts, primitive_products, register_layouts

#: What describe()'s product form is evaluated in: lowbit.layout's public names.
NAMESPACE = {name: getattr(LL, name) for name in LL.__all__}

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def formula_coords(text: str, thread: int, slot: int) -> tuple[int, ...]:
    """Evaluate a formula-form description's ``d<i> = <expr>`` terms at (t, s)."""
    dims = text.split(": ", 1)[1].split("; ")[0].split(", ")
    out = []
    for i, d in enumerate(dims):
        name, expr = d.split(" = ")
        assert name == f"d{i}"
        out.append(eval(expr, {"__builtins__": {}}, {"t": thread, "s": slot}))
    return tuple(out)


def check_description(layout: RegisterLayout) -> str:
    """The law of describe(): a product form evaluates to the layout, a formula form computes its coords."""
    text = layout.describe()
    assert "\n" not in text
    if layout.is_product:
        assert eval(text, {"__builtins__": {}}, NAMESPACE) == layout, text
        assert text.startswith(("product(", "local(", "spatial(", "column_", "replicate("))
    else:
        shape = "x".join(map(str, layout.shape))
        assert text.startswith(f"{shape} tile, {layout.num_threads} threads x {layout.local_size} slots: ")
        for t in range(layout.num_threads):
            for s in range(layout.local_size):
                assert formula_coords(text, t, s) == layout.coords(t, s), (text, t, s)
        assert ("each element on" in text) == (layout.replication > 1)
    return text


def all_fragments() -> list[RegisterLayout]:
    out = [mma_fragment(shape, op) for shape in MMA_SHAPES for op in "ABCD"]
    out += [ldmatrix_fragment(n, trans) for n in (1, 2, 4) for trans in (False, True)]
    out += [
        block_fragment(shape, op, warps, tiles)
        for shape in MMA_SHAPES
        for op in "ABC"
        for warps in ((1, 1), (2, 2), (4, 1), (1, 4))
        for tiles in ((1, 1), (2, 4))
    ]
    return out


# ---- the product form ------------------------------------------------------------


@pytest.mark.parametrize("layout", all_fragments(), ids=lambda x: x.to_text())
def test_every_fragment_prints_as_a_product_that_evaluates_back(layout):
    assert layout.is_product
    check_description(layout)


def test_m16n8k16_fragments_exact_strings():
    assert mma_fragment("m16n8k16", "A").describe() == "product(column_local(2, 2), spatial(8, 4), local(1, 2))"
    assert mma_fragment("m16n8k16", "B").describe() == "product(local(2, 1), column_spatial(4, 8), local(2, 1))"
    assert mma_fragment("m16n8k16", "C").describe() == "product(local(2, 1), spatial(8, 4), local(1, 2))"
    assert ldmatrix_fragment(4).describe() == "product(local(4, 1), spatial(8, 4), local(1, 2))"
    assert ldmatrix_fragment(1, trans=True).describe() == "product(column_spatial(4, 8), local(2, 1))"
    # the fewest factors: the 4-bit A fragment is not printed as a longer product
    assert mma_fragment("m16n8k64", "A").describe() == "product(column_local(2, 2), spatial(8, 4), local(1, 8))"


def test_block_fragments_and_replication_print_as_products():
    c = block_fragment("m16n8k16", "C", (2, 2), (2, 4))
    assert c.describe() == "product(spatial(2, 2), local(2, 4), local(2, 1), spatial(8, 4), local(1, 2))"
    # replication is a primitive too: the A operand shared by the 2 warps along N
    a = block_fragment("m16n8k16", "A", (2, 2), (1, 1))
    assert a.describe() == "product(spatial(2, 1), replicate(2), column_local(2, 2), spatial(8, 4), local(1, 2))"
    assert reduce_dim(mma_fragment("m16n8k16", "C"), 1).describe() == "product(local(2, 1), spatial(8, 1), replicate(4))"


def test_small_and_degenerate_products():
    assert spatial(8, 4).describe() == "spatial(8, 4)"
    assert local(4).describe() == "local(4)"
    assert local(1, 1).describe() == "local(1, 1)"  # one thread, one slot
    assert replicate(4).describe() == "replicate(4)"
    assert replicate(3, 3).describe() == "replicate(3, 3)"
    assert product(local(2, 2), local(2, 2)).describe() == "product(local(2, 2), local(2, 2))"
    assert product(local(1, 2), local(1, 2)).describe() == "local(1, 4)"  # canonical: one merged mode
    # re-views of products are printed from the canonical form, not their history
    c = mma_fragment("m16n8k16", "C")
    assert permute(c, (1, 0)).describe() == "product(local(1, 2), column_spatial(4, 8), local(2, 1))"
    assert reshape(c, (128,)).describe() == "product(local(2), spatial(32), local(2))"
    for x in (permute(c, (1, 0)), reshape(c, (128,)), reshape(c, (4, 32))):
        check_description(x)


@SETTINGS
@given(st.integers(1, 3).flatmap(lambda r: primitive_products(rank=r, factors=(1, 5))))
def test_random_products_print_as_products_that_evaluate_back(layout):
    assert layout.is_product
    check_description(layout)


@SETTINGS
@given(register_layouts(max_modes=6))
def test_every_random_layout_has_an_exact_description(layout):
    check_description(layout)


def _products_within(shape, threads, slots):
    """Every product of primitives with this tile shape, thread count and slot count, built factor by factor."""
    rank = len(shape)
    divisors = [[d for d in range(1, s + 1) if s % d == 0] for s in shape]
    prims = set()
    for dims in __import__("itertools").product(*divisors):
        for f in (LL.local, LL.column_local, LL.spatial, LL.column_spatial):
            prims.add(f(*dims))
    prims |= {replicate(r, rank) for r in range(2, threads + 1) if threads % r == 0}
    fits = lambda x: (  # noqa: E731
        all(s % a == 0 for s, a in zip(shape, x.shape)) and threads % x.num_threads == 0 and slots % x.local_size == 0
    )
    seen = {local(*(1,) * rank)}
    frontier = set(seen)
    while frontier:
        frontier = {product(x, p) for x in frontier for p in prims if fits(product(x, p))} - seen
        seen |= frontier
    return {x for x in seen if x.shape == tuple(shape) and x.num_threads == threads and x.local_size == slots}


@pytest.mark.parametrize(
    "shape,threads,slots,some_are_not",
    [((4, 4), 4, 4, True), ((4, 2), 4, 2, True), ((4, 2), 8, 2, True), ((2, 2), 4, 2, False), ((2, 2, 2), 4, 2, False)],
)
def test_is_product_matches_brute_force(shape, threads, slots, some_are_not):
    products = _products_within(shape, threads, slots)
    everything = all_layouts(shape, threads, slots)
    assert products <= everything
    assert {x for x in everything if x.is_product} == products
    # with one mode per dimension every digit order is a product; with two, some are not
    assert any(not x.is_product for x in everything) == some_are_not


# ---- the formula form --------------------------------------------------------------


def test_permuted_layout_prints_coordinate_formulas():
    # thread bit 0 selects the *high* half of the rows: no product of primitives does that
    lay = RegisterLayout(((2, 2), (4,)), spatial=(1, 0), local=(2,))
    assert not lay.is_product
    assert lay.describe() == "4x4 tile, 4 threads x 4 slots: d0 = 2*(t%2) + t//2, d1 = s"
    check_description(lay)
    # the m16n8k16 C fragment with its slot digits swapped (column pair outer, row half inner)
    c = mma_fragment("m16n8k16", "C")
    swapped = RegisterLayout(c.modes, c.spatial, tuple(reversed(c.local)))
    assert swapped.describe() == "16x8 tile, 32 threads x 4 slots: d0 = 8*(s%2) + t//4, d1 = 2*(t%4) + s//2"
    check_description(swapped)


def test_replicated_layout_prints_coordinate_formulas_and_the_free_thread_digit():
    lay = RegisterLayout(((2, 2), (4,)), spatial=(1, -2, 0), local=(2,))
    assert not lay.is_product
    assert lay.describe() == (
        "4x4 tile, 8 threads x 4 slots: d0 = 2*(t%2) + t//4, d1 = s; each element on 2 threads (t//2%2 ignored)"
    )
    check_description(lay)
    # a block layout with a warp digit both replicated and transposed
    warps = RegisterLayout(((2, 2), (8,)), spatial=(1, -4, 0), local=(2,))
    assert warps.describe() == (
        "4x8 tile, 16 threads x 8 slots: d0 = 2*(t%2) + t//8, d1 = s; each element on 4 threads (t//2%4 ignored)"
    )
    check_description(warps)


# ---- str, repr and the compact text are unchanged ----------------------------------


def test_str_is_readable_text_is_compact_repr_is_the_dataclass():
    c = mma_fragment("m16n8k16", "C")
    assert str(c) == c.describe() == "product(local(2, 1), spatial(8, 4), local(1, 2))"
    assert c.to_text() == "R[2.8,4.2|t=m1.m2|l=m0.m3]" and parse(c.to_text()) == c
    assert repr(c) == "RegisterLayout(modes=((2, 8), (4, 2)), spatial=(1, 2), local=(0, 3))"
    sw = SwizzledLayout(Swizzle(3, 3, 3), row_major(8, 64))
    mem = MemoryLayout(row_major(8, 64), 4, Swizzle(3, 4, 3))
    for x in (row_major(8, 64), Swizzle(3, 4, 3), sw, mem):
        assert str(x) == x.describe()
        assert parse(x.to_text()) == x
        assert repr(x).startswith(type(x).__name__ + "(")


# ---- the other layout kinds --------------------------------------------------------


def test_memory_side_descriptions():
    assert row_major(8, 64).describe() == "(8,64):(64,1)"  # CuTe's notation is already the readable form
    assert Layout(((2, 4), 3), ((1, 16), 4)).describe() == "((2,4),3):((1,16),4)"
    assert Swizzle(3, 4, 3).describe() == "Sw<3,4,3> (bits 4-6 ^= bits 7-9)"
    assert Swizzle(1, 2, 5).describe() == "Sw<1,2,5> (bit 2 ^= bit 7)"
    assert Swizzle(0, 4, 3).describe() == "Sw<0,4,3> (identity)"
    assert SwizzledLayout(Swizzle(3, 3, 3), row_major(8, 64)).describe() == "Sw<3,3,3> o (8,64):(64,1)"
    assert MemoryLayout(row_major(8, 64), 16).describe() == "16-bit elements at (8,64):(64,1)"
    assert MemoryLayout(row_major(8, 64), 4, Swizzle(3, 4, 3)).describe() == (
        "4-bit elements at (8,64):(64,1), bytes swizzled by Sw<3,4,3> (bits 4-6 ^= bits 7-9)"
    )


def test_swizzle_description_names_the_flipped_bits():
    def bits(text):
        lo, _, hi = text.partition("-")
        return range(int(lo), int(hi or lo) + 1)

    for sw in (Swizzle(3, 4, 3), Swizzle(2, 1, 4), Swizzle(1, 0, 1), Swizzle(4, 2, 6)):
        m = re.fullmatch(r"Sw<\d+,\d+,\d+> \(bits? ([\d-]+) \^= bits? ([\d-]+)\)", sw.describe())
        flipped, source = bits(m.group(1)), bits(m.group(2))
        assert sw.mask == sum(1 << b for b in flipped)
        for f, src in zip(flipped, source):  # setting a source bit flips exactly its target bit
            assert sw(1 << src) == (1 << src) | (1 << f)


def test_register_packing_str_is_readable():
    a = mma_fragment("m16n8k16", "A")
    p = RegisterPacking(a, 16)
    assert str(p) == p.describe() == (
        "16-bit slots of product(column_local(2, 2), spatial(8, 4), local(1, 2)), "
        "2 per 32-bit register, 4 registers per thread"
    )
    assert repr(p).startswith("RegisterPacking(layout=RegisterLayout(")
    three = RegisterPacking(local(1, 16), 3)
    assert str(three) == "3-bit slots of local(1, 16), 10 per 32-bit register (2 bits unused), 2 registers per thread"
    dense = RegisterPacking(local(1, 16), 3, dense=True)
    assert str(dense) == "3-bit slots of local(1, 16), packed back to back, 2 registers per thread"
    assert RegisterPacking(local(1, 1), 8).describe().endswith("1 register per thread")


def test_layout_errors_use_the_readable_form():
    from lowbit.errors import LayoutError

    c = mma_fragment("m16n8k16", "C")
    with pytest.raises(LayoutError, match=r"spatial\(8, 4\)"):
        c.coords(32, 0)
    assert math.prod(c.shape) == 128
