"""Fragment layouts against the PTX ISA's fragment tables, typed here from the ISA text.

Sources: PTX ISA 8.x section 9.7.14.5 "Matrix Fragments for mma.m16n8k16 with
floating point type", "... for mma.m16n8k32", "... for mma.m16n8k64",
"... for mma.m16n8k256"; section 9.7.14.5.15 (ldmatrix).  Every formula
below is the ISA's own (groupID = %laneid >> 2, threadID_in_group = %laneid % 4).
"""

from __future__ import annotations

import pytest

from lowbit.errors import LayoutError
from lowbit.layout import (
    RegisterPacking,
    block_fragment,
    divide_outer,
    ldmatrix_fragment,
    mma_fragment,
    product,
    spatial,
    local,
)


def isa_m16n8k16_a(lane, i):  # .f16/.bf16, a0..a7
    g, t = lane >> 2, lane % 4
    row = g if (0 <= i < 2 or 4 <= i < 6) else g + 8
    col = t * 2 + (i & 1) + (8 if i >= 4 else 0)
    return row, col


def isa_m16n8k16_b(lane, i):  # b0..b3
    g, t = lane >> 2, lane % 4
    return t * 2 + (i & 1) + (8 if i >= 2 else 0), g


def isa_m16n8k32_a(lane, i):  # .s8/.u8/.e4m3/.e5m2, a0..a15
    g, t = lane >> 2, lane % 4
    row = g if (0 <= i < 4 or 8 <= i < 12) else g + 8
    col = t * 4 + (i & 3) + (16 if i >= 8 else 0)
    return row, col


def isa_m16n8k32_b(lane, i):  # b0..b7
    g, t = lane >> 2, lane % 4
    return t * 4 + (i & 3) + (16 if i >= 4 else 0), g


def isa_m16n8k64_a(lane, i):  # .s4/.u4, a0..a31
    g, t = lane >> 2, lane % 4
    row = g if (0 <= i < 8 or 16 <= i < 24) else g + 8
    col = t * 8 + (i & 7) + (32 if i >= 16 else 0)
    return row, col


def isa_m16n8k64_b(lane, i):  # b0..b15
    g, t = lane >> 2, lane % 4
    return t * 8 + (i & 7) + (32 if i >= 8 else 0), g


def isa_m16n8k256_a(lane, i):  # .b1, a0..a127
    g, t = lane >> 2, lane % 4
    row = g if (0 <= i < 32 or 64 <= i < 96) else g + 8
    col = t * 32 + (i & 31) + (128 if i >= 64 else 0)
    return row, col


def isa_m16n8k256_b(lane, i):  # b0..b63
    g, t = lane >> 2, lane % 4
    return t * 32 + (i & 31) + (128 if i >= 32 else 0), g


def isa_c(lane, i):  # c0..c3 (f32 / s32 accumulators, all m16n8kK shapes)
    g, t = lane >> 2, lane % 4
    return (g if i < 2 else g + 8), t * 2 + (i & 1)


CASES = [
    ("m16n8k16", "A", isa_m16n8k16_a, (16, 16), 8),
    ("m16n8k16", "B", isa_m16n8k16_b, (16, 8), 4),
    ("m16n8k16", "C", isa_c, (16, 8), 4),
    ("m16n8k32", "A", isa_m16n8k32_a, (16, 32), 16),
    ("m16n8k32", "B", isa_m16n8k32_b, (32, 8), 8),
    ("m16n8k32", "C", isa_c, (16, 8), 4),
    ("m16n8k64", "A", isa_m16n8k64_a, (16, 64), 32),
    ("m16n8k64", "B", isa_m16n8k64_b, (64, 8), 16),
    ("m16n8k64", "C", isa_c, (16, 8), 4),
    ("m16n8k256", "A", isa_m16n8k256_a, (16, 256), 128),
    ("m16n8k256", "B", isa_m16n8k256_b, (256, 8), 64),
    ("m16n8k256", "D", isa_c, (16, 8), 4),
]


@pytest.mark.parametrize(("shape", "operand", "isa", "tile", "count"), CASES)
def test_mma_fragment_matches_isa_table(shape, operand, isa, tile, count):
    frag = mma_fragment(shape, operand)
    assert (frag.shape, frag.num_threads, frag.local_size, frag.replication) == (tile, 32, count, 1)
    for lane in range(32):
        for i in range(count):
            assert frag.coords(lane, i) == isa(lane, i), (lane, i)


@pytest.mark.parametrize(("shape", "bits"), [("m16n8k16", 16), ("m16n8k32", 8), ("m16n8k64", 4), ("m16n8k256", 1)])
def test_fragment_registers_hold_the_isa_elements(shape, bits):
    # "four .b32 registers, with each register containing 32/bits elements", a_i low to high
    per = 32 // bits
    pack = RegisterPacking(mma_fragment(shape, "A"), bits)
    assert pack.registers == 4
    for i in range(4 * per):
        assert pack.location(i) == (i // per, (i % per) * bits)
    assert RegisterPacking(mma_fragment(shape, "B"), bits).registers == 2


def isa_ldmatrix(lane, reg, trans):
    # register reg of lane holds matrix reg; without .trans row lane>>2, cols 2*(lane%4)+{0,1}
    g, t = lane >> 2, lane % 4
    if trans:
        return [(8 * reg + 2 * t + e, g) for e in range(2)]
    return [(8 * reg + g, 2 * t + e) for e in range(2)]


@pytest.mark.parametrize("num", [1, 2, 4])
@pytest.mark.parametrize("trans", [False, True])
def test_ldmatrix_fragment_matches_isa(num, trans):
    frag = ldmatrix_fragment(num, trans)
    assert frag.shape == (8 * num, 8) and frag.num_threads == 32 and frag.local_size == 2 * num
    for lane in range(32):
        for reg in range(num):
            assert [frag.coords(lane, 2 * reg + e) for e in range(2)] == isa_ldmatrix(lane, reg, trans)


def test_fragments_are_short_products():
    assert mma_fragment("m16n8k16", "C") == product(local(2, 1), spatial(8, 4), local(1, 2))
    assert divide_outer(mma_fragment("m16n8k64", "A"), mma_fragment("m16n8k64", "A")) == local(1, 1)


def test_block_fragment_replicates_shared_operands():
    a = block_fragment("m16n8k16", "A", (2, 2), (2, 1))
    b = block_fragment("m16n8k16", "B", (2, 2), (1, 4))
    c = block_fragment("m16n8k16", "C", (2, 2), (2, 4))
    assert (a.shape, a.num_threads, a.replication) == ((64, 16), 128, 2)
    assert (b.shape, b.num_threads, b.replication) == ((16, 64), 128, 2)
    assert (c.shape, c.num_threads, c.replication) == ((64, 64), 128, 1)
    for lane in range(32):
        for s in range(a.local_size):
            # warps (wm, 0) and (wm, 1) hold the same A; warp (1, *) holds rows + 32
            assert a.coords(lane, s) == a.coords(32 + lane, s)
            ra, ka = a.coords(64 + lane, s)
            assert (ra - 32, ka) == a.coords(lane, s)
        for s in range(b.local_size):
            assert b.coords(lane, s) == b.coords(64 + lane, s)
            kb, nb = b.coords(32 + lane, s)
            assert (kb, nb - 32) == b.coords(lane, s)
            tile, i = divmod(s, 4)
            assert b.coords(lane, s) == (isa_m16n8k16_b(lane, i)[0], tile * 8 + isa_m16n8k16_b(lane, i)[1])


def test_bad_fragment_requests():
    with pytest.raises(LayoutError):
        mma_fragment("m16n8k8", "A")
    with pytest.raises(LayoutError):
        mma_fragment("m16n8k16", "E")
    with pytest.raises(LayoutError):
        ldmatrix_fragment(3)
