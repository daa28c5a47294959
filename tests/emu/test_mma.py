"""mma.sync and ldmatrix: fragments filled from the PTX ISA's per-element tables, results vs numpy.

The layouts below are typed from PTX ISA 9.7.14.5.x ("Matrix Fragments for
mma.m16n8k16 / k32 / k64 / k256 / m16n8k8") element by element, in the ISA's
own form (a_i, b_i, c_i with if/else on i), independently of the closed form
in lowbit.emu.mma.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lowbit.emu import mma
from lowbit.errors import UnsupportedPTXError

NW = 3  # warps per call: the functions are batched over warps


def a_pos(shape_k, bits, lane, i):
    """ISA: row/col of element a_i held by ``lane``."""
    g, t = lane >> 2, lane % 4
    if shape_k == 8 and bits == 32:  # m16n8k8 .tf32
        return (g if i in (0, 2) else g + 8), (t if i < 2 else t + 4)
    per = 32 // bits  # elements per register
    half = 2 * per  # a_0 .. a_{half-1} cover the first K/2 columns
    row = g if (i < per or 2 * per <= i < 3 * per) else g + 8
    col = t * per + (i % per) if i < half else t * per + (i % per) + 4 * per
    return row, col


def b_pos(shape_k, bits, lane, i):
    g, t = lane >> 2, lane % 4
    if shape_k == 8 and bits == 32:
        return (t if i == 0 else t + 4), g
    per = 32 // bits
    row = t * per + (i % per) if i < per else t * per + (i % per) + 4 * per
    return row, g


def c_pos(lane, i):
    g, t = lane >> 2, lane % 4
    return (g if i < 2 else g + 8), t * 2 + (i & 1)


def pack(mat_codes, pos, nregs, bits, k):
    """Registers (NW, 32, nregs) from element codes of a matrix (NW, rows, cols)."""
    per = 32 // bits
    regs = np.zeros((mat_codes.shape[0], 32, nregs), np.uint64)
    for lane in range(32):
        for i in range(nregs * per):
            r, c = pos(k, bits, lane, i)
            regs[:, lane, i // per] |= mat_codes[:, r, c].astype(np.uint64) << np.uint64((i % per) * bits)
    return regs.astype(np.uint32)


def pack_c(cvals_bits, ctype):
    if ctype in ("f32", "s32"):
        regs = np.zeros((NW, 32, 4), np.uint32)
        for lane in range(32):
            for i in range(4):
                regs[:, lane, i] = cvals_bits[:, c_pos(lane, i)[0], c_pos(lane, i)[1]]
        return regs
    regs = np.zeros((NW, 32, 2), np.uint32)
    for lane in range(32):
        for i in range(4):
            r, c = c_pos(lane, i)
            regs[:, lane, i // 2] |= cvals_bits[:, r, c].astype(np.uint32) << np.uint32(16 * (i % 2))
    return regs


def unpack_d(d, dtype):
    out = np.zeros((NW, 16, 8), np.uint32)
    for lane in range(32):
        for i in range(4):
            r, c = c_pos(lane, i)
            out[:, r, c] = d[:, lane, i] if dtype in ("f32", "s32") else (d[:, lane, i // 2] >> np.uint32(16 * (i % 2))) & 0xFFFF
    return out


FLOAT_CASES = [  # shape, atype, dtype(=ctype), numpy/ml_dtypes element type, bits
    ("m16n8k16", "f16", "f32", np.float16, 16), ("m16n8k16", "f16", "f16", np.float16, 16),
    ("m16n8k16", "bf16", "f32", ml_dtypes.bfloat16, 16), ("m16n8k8", "f16", "f32", np.float16, 16),
    ("m16n8k8", "tf32", "f32", np.float32, 32),
    ("m16n8k32", "e4m3", "f32", ml_dtypes.float8_e4m3fn, 8), ("m16n8k32", "e5m2", "f32", ml_dtypes.float8_e5m2, 8),
    ("m16n8k32", "e4m3", "f16", ml_dtypes.float8_e4m3fn, 8),
]


@pytest.mark.parametrize("shape,atype,acc,edt,bits", FLOAT_CASES)
def test_float_mma_vs_numpy(shape, atype, acc, edt, bits):
    k = int(shape.split("k")[1])
    rng = np.random.default_rng(k + bits)
    a = rng.standard_normal((NW, 16, k)).astype(edt)
    b = rng.standard_normal((NW, k, 8)).astype(edt)
    if atype == "tf32":  # tf32 operands: low 13 mantissa bits are ignored
        a = (a.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)
        b = (b.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)
    cdt = np.float32 if acc == "f32" else np.float16
    c = (rng.standard_normal((NW, 16, 8)) * 4).astype(cdt)
    ut = {1: np.uint8, 2: np.uint16, 4: np.uint32}[np.dtype(edt).itemsize]
    ar = pack(a.view(ut), a_pos, 16 * k // (32 * (32 // bits)), bits, k)
    br = pack(b.view(ut), b_pos, 8 * k // (32 * (32 // bits)), bits, k)
    cr = pack_c(c.view(np.uint32 if acc == "f32" else np.uint16), acc)
    d = mma.mma_sync(shape, acc, atype, atype, acc, ar, br, cr)
    assert d.shape == cr.shape and d.dtype == np.uint32
    got = unpack_d(d, acc)
    got = got.view(np.float32) if acc == "f32" else got.astype(np.uint16).view(np.float16).astype(np.float32)
    af, bf = a.astype(np.float64), b.astype(np.float64)
    exact = af @ bf + c.astype(np.float64)
    scale = np.abs(af) @ np.abs(bf) + np.abs(c.astype(np.float64))
    tol = (2.0**-22 if acc == "f32" else 2.0**-10) * scale
    assert np.all(np.abs(got - exact) <= tol)
    assert not np.all(got == 0)


INT_CASES = [("m16n8k32", "s8", "s8", 8), ("m16n8k32", "u8", "s8", 8), ("m16n8k16", "s8", "u8", 8),
             ("m16n8k64", "s4", "s4", 4), ("m16n8k64", "u4", "s4", 4), ("m16n8k32", "u4", "u4", 4)]


def _signed(codes, bits, signed):
    v = codes.astype(np.int64)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v) if signed else v


@pytest.mark.parametrize("shape,atype,btype,bits", INT_CASES)
@pytest.mark.parametrize("satfinite", [False, True])
def test_integer_mma_exact(shape, atype, btype, bits, satfinite):
    k = int(shape.split("k")[1])
    rng = np.random.default_rng(k * bits)
    a = rng.integers(0, 1 << bits, (NW, 16, k))
    b = rng.integers(0, 1 << bits, (NW, k, 8))
    c = rng.integers(-(2**31), 2**31, (NW, 16, 8))
    c[0, :4] = 2**31 - 1  # force overflow on some outputs of warp 0
    c[1, :4] = -(2**31)
    ar = pack(a, a_pos, 16 * k // (32 * (32 // bits)), bits, k)
    br = pack(b, b_pos, 8 * k // (32 * (32 // bits)), bits, k)
    cr = pack_c(c.astype(np.int32).view(np.uint32), "s32")
    d = mma.mma_sync(shape, "s32", atype, btype, "s32", ar, br, cr, satfinite=satfinite)
    got = unpack_d(d, "s32").view(np.int32).astype(np.int64)
    want = _signed(a, bits, atype[0] == "s") @ _signed(b, bits, btype[0] == "s") + c
    want = np.clip(want, -(2**31), 2**31 - 1) if satfinite else (want + 2**31) % 2**32 - 2**31
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [256, 128])
@pytest.mark.parametrize("bop", ["and.popc", "xor.popc"])
def test_b1_mma(k, bop):
    rng = np.random.default_rng(k)
    a = rng.integers(0, 2, (NW, 16, k))
    b = rng.integers(0, 2, (NW, k, 8))
    c = rng.integers(-1000, 1000, (NW, 16, 8))
    ar = pack(a, a_pos, 16 * k // 1024, 1, k)
    br = pack(b, b_pos, 8 * k // 1024, 1, k)
    d = mma.mma_sync(f"m16n8k{k}", "s32", "b1", "b1", "s32", ar, br, pack_c(c.astype(np.int32).view(np.uint32), "s32"), bop=bop)
    got = unpack_d(d, "s32").view(np.int32)
    op = np.logical_and if bop == "and.popc" else np.logical_xor
    want = op(a[:, :, None, :], b.transpose(0, 2, 1)[:, None, :, :]).sum(-1) + c
    np.testing.assert_array_equal(got, want)


def test_mma_rejects_bad_combinations():
    z4, z2 = np.zeros((1, 32, 4), np.uint32), np.zeros((1, 32, 2), np.uint32)
    with pytest.raises(UnsupportedPTXError):
        mma.mma_sync("m16n8k16", "f32", "s4", "s4", "f32", z4, z2, z4)
    with pytest.raises(UnsupportedPTXError):
        mma.mma_sync("m16n8k16", "f16", "bf16", "bf16", "f16", z4, z2, z2)
    with pytest.raises(UnsupportedPTXError):
        mma.mma_sync("m16n8k256", "s32", "b1", "b1", "s32", z4, z2, z4)  # no .and.popc/.xor.popc


def _shared_rows(rng):
    """Four 8x8 b16 matrices in 'shared memory' and the row bytes each lane's address selects."""
    mats = rng.integers(0, 2**16, (NW, 4, 8, 8)).astype(np.uint16)
    rows = np.zeros((NW, 32, 16), np.uint8)
    for lane in range(32):  # lanes 8j..8j+7 give the addresses of matrix j's rows
        rows[:, lane] = mats[:, lane // 8, lane % 8].view(np.uint8).reshape(NW, 16)
    return mats, rows


@pytest.mark.parametrize("num", [1, 2, 4])
@pytest.mark.parametrize("trans", [False, True])
def test_ldmatrix(num, trans):
    mats, rows = _shared_rows(np.random.default_rng(num))
    if num < 4:  # addresses of lanes >= 8*num are not used
        rows[:, 8 * num:] = 0xAB
    got = mma.ldmatrix(rows, num, trans)
    assert got.shape == (NW, 32, num)
    for lane in range(32):
        for j in range(num):
            # ISA: without .trans thread l holds row l/4, columns 2*(l%4), +1 of matrix j;
            # with .trans it holds the same positions of the transposed matrix.
            m = mats[:, j].transpose(0, 2, 1) if trans else mats[:, j]
            lo, hi = m[:, lane // 4, 2 * (lane % 4)], m[:, lane // 4, 2 * (lane % 4) + 1]
            np.testing.assert_array_equal(got[:, lane, j], lo.astype(np.uint32) | (hi.astype(np.uint32) << 16))
    np.testing.assert_array_equal(mma.stmatrix(got, num, trans)[:, : 8 * num], rows[:, : 8 * num])


def test_ldmatrix_feeds_mma_a_fragment():
    # x4 ldmatrix of a 16x16 f16 tile (matrices: rows 0-7/cols 0-7, rows 8-15/cols 0-7,
    # rows 0-7/cols 8-15, rows 8-15/cols 8-15) yields exactly the m16n8k16 A fragment.
    rng = np.random.default_rng(0)
    tile = rng.standard_normal((NW, 16, 16)).astype(np.float16)
    bits = tile.view(np.uint16)
    rows = np.zeros((NW, 32, 16), np.uint8)
    for lane in range(32):
        j, r = lane // 8, lane % 8
        rows[:, lane] = bits[:, r + 8 * (j % 2), 8 * (j // 2): 8 * (j // 2) + 8].view(np.uint8).reshape(NW, 16)
    np.testing.assert_array_equal(mma.ldmatrix(rows, 4), pack(bits, a_pos, 4, 16, 16))
