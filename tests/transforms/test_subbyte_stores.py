"""Stores of 1..7-bit elements to global memory: interpreter vs emulator vs an independent bit-level reference.

The destination is a buffer of random words (every bit a sentinel): the
stored elements must land LSB-first at ``bits * (r * ld + c + c_off)`` and
every other bit must survive.  Odd row strides and column offsets make
elements straddle bytes and words; column blocks of neighbouring programs
share words, so a plain read-modify-write would lose bits (the emulator runs
blocks interleaved); masked-off elements and the out-of-bounds tail are not
written.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.errors import CodegenError
from tests.transforms.harness import both, compiled


@lowbit.kernel
def bits_store(src_ptr: lowbit.ptr("f32"), keep_ptr: lowbit.ptr("int32"), dst_ptr: lowbit.ptr("uint32"),
               R: lowbit.int32, C: lowbit.int32, ld: lowbit.int32, c_off: lowbit.int32,
               T: lowbit.constexpr = lowbit.uint3, BR: lowbit.constexpr = 4, BC: lowbit.constexpr = 16):  # fmt: skip
    r0, c0 = lowbit.program_id(0) * BR, lowbit.program_id(1) * BC
    x = lowbit.load(lowbit.global_view(src_ptr, (R, C)), (r0, c0), (BR, BC))
    keep = lowbit.load(lowbit.global_view(keep_ptr, (R, C)), (r0, c0), (BR, BC))
    dst = lowbit.global_view(dst_ptr, (R, C + c_off), strides=(ld, 1), dtype=T)
    lowbit.store(dst, lowbit.cast(x, T), (r0, c0 + c_off), mask=keep != 0)


def _values(dt: lowbit.DType, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(f32 inputs, the codes a correct store writes) -- exact values, so the cast is not under test here."""
    codes = rng.integers(0, 1 << dt.bits, shape).astype(np.uint64)
    if dt.is_float:
        x = np.asarray(dt.decode(codes), np.float64)
        codes = np.where(x == 0, np.uint64(0), codes)  # -0.0 casts to the -0 code anyway; keep both sides simple
        x = np.asarray(dt.decode(codes), np.float64)
    else:
        x = codes.astype(np.int64)
        if dt.is_signed:
            x = np.where(x >= 1 << (dt.bits - 1), x - (1 << dt.bits), x)
    return x.astype(np.float32), codes


def _reference(words: np.ndarray, codes: np.ndarray, keep: np.ndarray, bits: int, ld: int, c_off: int) -> np.ndarray:
    flat = np.unpackbits(words.view(np.uint8), bitorder="little")
    for (r, c), code in np.ndenumerate(codes):
        if keep[r, c]:
            at = bits * (r * ld + c + c_off)
            flat[at : at + bits] = [(int(code) >> k) & 1 for k in range(bits)]
    return np.packbits(flat, bitorder="little").view(np.uint32)


TYPES = ["uint1", "uint2", "uint3", "uint4", "uint5", "int6", "uint7", "e2m1", "e3m2"]


@pytest.mark.parametrize("t", TYPES)
def test_subbyte_global_stores(t: str, cache: CompileCache) -> None:
    dt = lowbit.dtype(t)
    rng = np.random.default_rng(100 + dt.bits + 17 * dt.is_float)
    r, c, c_off = 7, 37, 5
    ld = c + c_off + 3  # rows start at odd bit offsets for odd widths
    x, codes = _values(dt, rng, (r, c))
    keep = (rng.random((r, c)) < 0.8).astype(np.int32)
    nwords = -(-(dt.bits * r * ld) // 32) + 2  # two sentinel words past the view
    dst = rng.integers(0, 2**32, nwords, dtype=np.uint64).astype(np.uint32)
    want = _reference(dst, codes, keep, dt.bits, ld, c_off)
    [(_, got)] = both(bits_store, cache, (2, 3), [x, keep, dst, r, c, ld, c_off], [2], T=dt)
    np.testing.assert_array_equal(got, want)


def test_subbyte_stores_with_several_slots_per_thread(cache: CompileCache) -> None:
    """A 9 x 40 tile over 128 threads: three slots each, the last one partly duplicates (primary rule)."""
    dt = lowbit.dtype("uint3")
    rng = np.random.default_rng(5)
    r, c, c_off = 11, 45, 1
    ld = c + c_off
    x, codes = _values(dt, rng, (r, c))
    keep = np.ones((r, c), np.int32)
    dst = rng.integers(0, 2**32, -(-(3 * r * ld) // 32) + 1, dtype=np.uint64).astype(np.uint32)
    want = _reference(dst, codes, keep, 3, ld, c_off)
    [(_, got)] = both(bits_store, cache, (2, 2), [x, keep, dst, r, c, ld, c_off], [2], T=dt, BR=9, BC=40)
    np.testing.assert_array_equal(got, want)


@lowbit.kernel
def byte_buffer_store(x_ptr: lowbit.ptr("uint8"), n: lowbit.int32):
    x = lowbit.global_view(x_ptr, (n,), dtype=lowbit.uint4)
    lowbit.store(x, lowbit.load(x, (0,), (64,)) + 1, (0,))


def test_subbyte_store_through_a_byte_pointer_is_a_named_error(cache: CompileCache) -> None:
    with pytest.raises(CodegenError) as info:
        compiled(byte_buffer_store, cache)
    msg = str(info.value)
    assert "test_subbyte_stores.py:" in msg and "uint4" in msg and "ptr('uint32')" in msg
