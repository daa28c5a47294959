"""Bank-conflict analysis and ldmatrix addressing (cost model: lowbit.arch.banks)."""

from __future__ import annotations

import pytest

from lowbit.errors import LayoutError
from lowbit.layout import (
    Layout,
    MemoryLayout,
    Swizzle,
    access_wavefronts,
    block_fragment,
    ldmatrix_fragment,
    ldmatrix_plan,
    local,
    mma_fragment,
    product,
    row_major,
    spatial,
    warp_accesses,
)

SW128 = Swizzle(3, 4, 3)  # CuTe Swizzle<3,4,3> on byte addresses: 16-byte chunk ^= row % 8


def f16_tile(rows, swizzle=None):
    return MemoryLayout(row_major(rows, 64), 16, swizzle)  # 64 f16 = 128-byte rows


def test_issue_bank_requirement():
    # an 8x8 f16 matrix of a row-major 64-wide tile: 8 wavefronts unswizzled, 1 with the 128-byte swizzle
    assert ldmatrix_plan(f16_tile(8), ldmatrix_fragment(1)).wavefronts() == 8
    assert ldmatrix_plan(f16_tile(8, SW128), ldmatrix_fragment(1)).wavefronts() == 1
    # x4: 32 and 4
    assert ldmatrix_plan(f16_tile(32), ldmatrix_fragment(4)).nums == (4,)
    assert ldmatrix_plan(f16_tile(32), ldmatrix_fragment(4)).wavefronts() == 32
    assert ldmatrix_plan(f16_tile(32, SW128), ldmatrix_fragment(4)).wavefronts() == 4
    # the same for the real consumer: an m16n8k16 A fragment (one ldmatrix.x4)
    assert ldmatrix_plan(f16_tile(16), mma_fragment("m16n8k16", "A")).wavefronts() == 32
    assert ldmatrix_plan(f16_tile(16, SW128), mma_fragment("m16n8k16", "A")).wavefronts() == 4


@pytest.mark.parametrize("swizzle", [None, SW128])
def test_ldmatrix_addresses_for_mma_a_match_formula(swizzle):
    plan = ldmatrix_plan(f16_tile(16, swizzle), mma_fragment("m16n8k16", "A"))
    assert plan is not None and not plan.trans and plan.nums == (4,)
    # matrix i: rows 8*(i%2).., k-columns 8*(i//2).. (a0a1 / a2a3 / a4a5 / a6a7 of the ISA table)
    for lane in range(32):
        i, r = divmod(lane, 8)
        byte = (8 * (i % 2) + r) * 128 + (i // 2) * 16
        assert plan.addresses[0][lane] == (byte if swizzle is None else swizzle(byte))


def test_ldmatrix_trans_for_b_from_row_major_k_by_n():
    # B (K x N) stored row-major with N contiguous: ldmatrix needs .trans
    mem = MemoryLayout(row_major(16, 64), 16, SW128)
    plan = ldmatrix_plan(mem, mma_fragment("m16n8k16", "B"))
    assert plan is not None and plan.trans and plan.nums == (2,)
    for lane in range(16):
        i, r = divmod(lane, 8)
        assert plan.addresses[0][lane] == SW128((8 * i + r) * 128)
    assert all(a is None for a in plan.addresses[0][16:])
    assert plan.wavefronts() == 2
    assert ldmatrix_plan(mem, mma_fragment("m16n8k16", "B"), trans=False) is None


def test_ldmatrix_for_b_from_n_by_k_storage_without_trans():
    # B^T stored row-major (N x K, K contiguous): view it with strides (1, 64) as K x N
    mem = MemoryLayout(Layout((16, 8), (1, 64)), 16)
    plan = ldmatrix_plan(mem, mma_fragment("m16n8k16", "B"))
    assert plan is not None and not plan.trans


def test_ldmatrix_impossible_returns_none():
    spread = MemoryLayout(Layout((16, 16), (64, 2)), 16)  # every other element: rows not contiguous
    assert ldmatrix_plan(spread, mma_fragment("m16n8k16", "A")) is None
    misaligned = MemoryLayout(Layout((16, 16), (65, 1)), 16)  # 130-byte rows: not 16-byte aligned
    assert ldmatrix_plan(misaligned, mma_fragment("m16n8k16", "A")) is None
    assert ldmatrix_plan(MemoryLayout(row_major(16, 16), 32), mma_fragment("m16n8k16", "A")) is None


def test_subbyte_ldmatrix_for_s4_a_fragment():
    # m16n8k64 A (16 x 64 s4) from a row-major 16 x 128 4-bit tile (64-byte rows)
    frag = mma_fragment("m16n8k64", "A")
    plain = ldmatrix_plan(MemoryLayout(row_major(16, 128), 4), frag)
    swz = ldmatrix_plan(MemoryLayout(row_major(16, 128), 4, SW128), frag)
    assert plain is not None and swz is not None and plain.nums == (4,)
    for lane in range(32):
        i, r = divmod(lane, 8)
        byte = (8 * (i % 2) + r) * 64 + (i // 2) * 16
        assert plain.addresses[0][lane] == byte
        assert swz.addresses[0][lane] == SW128(byte)
    # 64-byte rows: rows r and r+2 share banks -> 4 wavefronts per matrix; the swizzle spreads them
    assert plain.wavefronts() == 16
    assert swz.wavefronts() == 4


def test_block_fragment_ldmatrix_per_warp():
    a = block_fragment("m16n8k16", "A", (2, 2), (2, 1))  # 64 x 16, replicated over warps along N
    mem = f16_tile(64, SW128)
    p0 = ldmatrix_plan(mem, a, warp=0)
    p1 = ldmatrix_plan(mem, a, warp=1)
    p2 = ldmatrix_plan(mem, a, warp=2)
    assert p0.nums == (4, 4) and p0 == p1  # replicated warps load the same rows
    assert p2.addresses[0][0] == SW128(32 * 128)
    with pytest.raises(LayoutError):
        ldmatrix_plan(mem, a, warp=4)


def test_vector_access_addresses_and_wavefronts():
    # each thread copies 8 contiguous f16 (16 bytes); 8 threads cover a 128-byte row
    lay = product(spatial(4, 8), local(1, 8))  # 4 rows x 64 columns per warp
    mem = f16_tile(4)
    addrs = warp_accesses(mem, lay, vector=8)
    assert addrs == (tuple((t // 8) * 128 + (t % 8) * 16 for t in range(32)),)
    assert access_wavefronts(mem, lay, vector=8) == 4  # 16-byte accesses: 4 conflict-free phases
    # column-wise scalar reads of one column: every lane hits the same bank in a new word
    col = product(spatial(32, 1), local(1, 1))
    assert access_wavefronts(f16_tile(32), col) == 32
    assert access_wavefronts(f16_tile(32, SW128), col) == 4  # swizzle spreads them over 8 chunks


def test_vector_access_must_be_contiguous():
    lay = product(spatial(8, 4), local(1, 2))
    with pytest.raises(LayoutError):
        warp_accesses(MemoryLayout(Layout((8, 8), (1, 8)), 16), lay, vector=2)
    with pytest.raises(LayoutError):
        warp_accesses(f16_tile(8), lay, vector=3)
