"""Swizzles (bijections, involutions, composition) and sub-byte register/memory addressing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.errors import LayoutError
from lowbit.layout import (
    Layout,
    MemoryLayout,
    RegisterPacking,
    Swizzle,
    SwizzledLayout,
    bits_of,
    local,
    mma_fragment,
    row_major,
)

EX = settings(max_examples=60)


@st.composite
def swizzles(draw):
    bits = draw(st.integers(0, 3))
    return Swizzle(bits, draw(st.integers(0, 4)), draw(st.integers(bits, bits + 3)))


@EX
@given(swizzles(), st.integers(0, 3))
def test_swizzle_is_a_bijection_and_involution(sw, block):
    lo = block * sw.period
    block_vals = [sw(x) for x in range(lo, lo + sw.period)]
    assert sorted(block_vals) == list(range(lo, lo + sw.period))
    assert all(sw(sw(x)) == x for x in range(lo, lo + sw.period))


def test_swizzle_formula():
    sw = Swizzle(3, 4, 3)  # 128-byte swizzle on byte addresses
    for row in range(16):
        for chunk in range(8):
            addr = row * 128 + chunk * 16 + 5
            assert sw(addr) == row * 128 + ((chunk ^ (row % 8)) * 16) + 5


def test_swizzle_rejects_overlapping_fields():
    with pytest.raises(LayoutError):
        Swizzle(3, 4, 2)
    with pytest.raises(LayoutError):
        Swizzle(-1, 0, 0)


@EX
@given(swizzles(), st.integers(1, 4), st.integers(1, 4))
def test_swizzled_layout_is_composition(sw, r, c):
    lay = row_major(r * 4, c * 8)
    sl = SwizzledLayout(sw, lay)
    for i in range(lay.size):
        assert sl(i) == sw(lay(i))
    if lay.size % sw.period == 0:
        assert sorted(sl(i) for i in range(lay.size)) == list(range(lay.size))  # still a bijection


def test_byte_swizzle_equals_element_swizzle_for_power_of_two_widths():
    # Swizzle<3,4,3> on bytes == Swizzle<3,3,3> on f16 offsets == Swizzle<3,5,3> on 4-bit offsets
    for bits, elem_sw in ((16, Swizzle(3, 3, 3)), (8, Swizzle(3, 4, 3)), (4, Swizzle(3, 5, 3))):
        cols = 1024 // bits
        mem = MemoryLayout(row_major(8, cols), bits, Swizzle(3, 4, 3))
        for r in range(8):
            for c in range(cols):
                assert mem.bit_address((r, c)) == elem_sw(r * cols + c) * bits


class Dt:
    bits = 3


def test_bits_of_accepts_ints_and_dtypes():
    assert bits_of(4) == 4 and bits_of(Dt()) == 3
    with pytest.raises(LayoutError):
        bits_of("f16")
    with pytest.raises(LayoutError):
        bits_of(True)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8, 16])
def test_register_packing_padded(bits):
    pack = RegisterPacking(local(1, 20), bits)
    per = 32 // bits
    assert pack.registers == -(-20 // per)
    for s in range(20):
        assert pack.location(s) == (s // per, (s % per) * bits)


@pytest.mark.parametrize("bits", [3, 5, 6, 7])
def test_register_packing_dense_straddles(bits):
    pack = RegisterPacking(local(1, 20), Dt() if bits == 3 else bits, dense=True)
    assert pack.registers == -(-20 * bits // 32)
    covered = []
    for s in range(20):
        pieces = pack.pieces(s)
        assert sum(n for _, _, n in pieces) == bits
        for reg, off, n in pieces:
            covered.extend(reg * 32 + off + k for k in range(n))
    assert covered == list(range(20 * bits))  # back to back, LSB first
    straddler = next(s for s in range(20) if (s * bits) // 32 != (s * bits + bits - 1) // 32)
    with pytest.raises(LayoutError):
        pack.location(straddler)


def test_mma_s4_fragment_registers():
    pack = RegisterPacking(mma_fragment("m16n8k64", "A"), 4)
    assert pack.registers == 4 and pack.location(9) == (1, 4)


@pytest.mark.parametrize("bits", [1, 3, 4, 6, 8, 16])
def test_memory_layout_bit_addresses(bits):
    lay = Layout((5, 7), (7 * 3, 3))  # non-compact: every third element
    mem = MemoryLayout(lay, bits)
    for i in range(5):
        for j in range(7):
            assert mem.bit_address((i, j)) == (i * 21 + j * 3) * bits
            assert mem.segments((i, j)) == ((mem.bit_address((i, j)), bits),)
            if (mem.bit_address((i, j))) % 8 == 0:
                assert mem.byte_address((i, j)) == mem.bit_address((i, j)) // 8
            else:
                with pytest.raises(LayoutError):
                    mem.byte_address((i, j))


def test_swizzled_three_bit_elements_split_at_chunk_boundaries():
    mem = MemoryLayout(row_major(16, 256), 3, Swizzle(3, 4, 3))  # 96-byte rows of 3-bit codes
    bits_seen = set()
    split = 0
    for r in range(16):
        for c in range(256):
            segs = mem.segments((r, c))
            split += len(segs) > 1
            for a, n in segs:
                bits_seen.update(range(a, a + n))
            # every bit of the element goes where the byte swizzle sends it
            raw = (r * 256 + c) * 3
            for k, addr in enumerate(a + i for a, n in segs for i in range(n)):
                b = raw + k
                assert addr == Swizzle(3, 4, 3)(b >> 3) * 8 + (b & 7)
    assert split > 0
    assert bits_seen == set(range(16 * 256 * 3))  # a bijection on bits
