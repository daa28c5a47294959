"""dot on tensor cores for every operand type: emulator = interpreter on odd and aligned shapes, bit-exact on integers.

One generic kernel (operand dtype T, accumulator ACC) covers f16 with f32 and
f16 accumulators, bf16, int8, uint8, int4 (native k64 on sm_80, widened to
8 bits on sm_90), e4m3/e5m2 (k32 on sm_89, converted to f16 on sm_90) and
1-bit codes (k256 and.popc), bipolar1 (xor.popc on sm_80, and.popc plus row and
column popcounts on sm_90) and bipolar2 (widened to int8).  Each case checks
which mma the PTX uses.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler import compile_program
from tests.conftest import require_tool


@lowbit.kernel(num_warps=4)
def mm(a_ptr: lowbit.ptr(T), b_ptr: lowbit.ptr(T), c_ptr: lowbit.ptr(ACC), M: lowbit.int32, N: lowbit.int32,
       K: lowbit.int32, T: lowbit.constexpr = lowbit.f16, ACC: lowbit.constexpr = lowbit.f32,
       BM: lowbit.constexpr = 32, BN: lowbit.constexpr = 32, BK: lowbit.constexpr = 32):  # fmt: skip
    m0, n0 = lowbit.program_id(0) * BM, lowbit.program_id(1) * BN
    a = lowbit.global_view(a_ptr, (M, K))
    b = lowbit.global_view(b_ptr, (K, N))
    acc = lowbit.zeros((BM, BN), ACC)
    for k in range(0, K, BK):
        acc = lowbit.dot(lowbit.load(a, (m0, k), (BM, BK)), lowbit.load(b, (k, n0), (BK, BN)), acc)
    lowbit.store(lowbit.global_view(c_ptr, (M, N)), acc, (m0, n0))


# (T, ACC, BK, arch, the mma shape and types the PTX must use)
CASES = [
    ("f16", "f32", 32, "sm_80", "m16n8k16.row.col.f32.f16.f16.f32"),
    ("f16", "f16", 32, "sm_80", "m16n8k16.row.col.f16.f16.f16.f16"),
    ("bf16", "f32", 32, "sm_80", "m16n8k16.row.col.f32.bf16.bf16.f32"),
    ("int8", "int32", 64, "sm_80", "m16n8k32.row.col.s32.s8.s8.s32"),
    ("uint8", "int32", 64, "sm_80", "m16n8k32.row.col.s32.u8.u8.s32"),
    ("int4", "int32", 64, "sm_80", "m16n8k64.row.col.s32.s4.s4.s32"),
    ("int4", "int32", 64, "sm_90", "m16n8k32.row.col.s32.s8.s8.s32"),
    ("uint2", "int32", 64, "sm_80", "m16n8k32.row.col.s32.s8.s8.s32"),
    ("e4m3fn", "f32", 32, "sm_89", "m16n8k32.row.col.f32.e4m3.e4m3.f32"),
    ("e5m2", "f32", 32, "sm_89", "m16n8k32.row.col.f32.e5m2.e5m2.f32"),
    ("e4m3fn", "f32", 32, "sm_90", "m16n8k16.row.col.f32.f16.f16.f32"),
    ("uint1", "int32", 256, "sm_80", "m16n8k256.row.col.s32.b1.b1.s32.and.popc"),
    ("bipolar1", "int32", 256, "sm_80", "m16n8k256.row.col.s32.b1.b1.s32.xor.popc"),
    ("bipolar1", "int32", 256, "sm_90", "m16n8k256.row.col.s32.b1.b1.s32.and.popc"),  # xor.popc is emulated
    ("bipolar2", "int32", 64, "sm_80", "m16n8k32.row.col.s32.s8.s8.s32"),
]  # fmt: skip
SHAPES = [(1, 100, 136), (37, 100, 136), (37, 96, 512)]


def _operand(t: str, shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(array passed to the kernel, its exact float64 values)."""
    dt = lowbit.dtype(t)
    if t in ("f16", "bf16"):
        x = rng.standard_normal(shape)
        codes = np.asarray(dt.encode(x))
        vals = np.asarray(dt.decode(codes), dtype=np.float64)
        arr = vals.astype(np.float16) if t == "f16" else codes.astype(np.uint16)
        return arr, vals
    if t.startswith("bipolar"):  # odd integers: every code is a value
        codes = rng.integers(0, 1 << dt.bits, shape)
        vals = np.asarray(dt.decode(codes.astype(np.uint64)), dtype=np.float64)
        return lowbit.pack(codes.astype(np.uint8).reshape(-1), dt.bits, axis=-1), vals
    if dt.is_int:
        lo, hi = dt.min, dt.max
        v = rng.integers(lo, hi + 1, shape)
        if dt.bits >= 8:
            return v.astype(np.int8 if dt.is_signed else np.uint8), v.astype(np.float64)
        codes = (v & ((1 << dt.bits) - 1)).astype(np.uint8).reshape(-1)  # the view's order: row-major bits
        return lowbit.pack(codes, dt.bits, axis=-1), v.astype(np.float64)
    codes = rng.integers(0, 256, shape)
    vals = np.asarray(dt.decode(codes.astype(np.uint64)), dtype=np.float64)
    codes[~np.isfinite(vals)] = 0x38  # a finite value (1.0 in e4m3, 0.5.. in e5m2): keep the sums finite
    return codes.astype(np.uint8), np.asarray(dt.decode(codes.astype(np.uint64)), dtype=np.float64)


@pytest.mark.parametrize("t, acc, bk, arch, inst", CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES])
def test_mma_instruction_is_used(t: str, acc: str, bk: int, arch: str, inst: str) -> None:
    require_tool("ptxas")
    prog = mm.specialize(T=lowbit.dtype(t), ACC=lowbit.dtype(acc), BK=bk)
    prog = prog.with_facts({"a_ptr": 16, "b_ptr": 16, "c_ptr": 16, "N": 16, "K": 16})  # what aligned launches give
    ck = compile_program(prog, arch)
    found = set(re.findall(r"mma\.sync\.aligned\.(m16n8k\d+\.row\.col\.[\w.]+)", ck.ptx))
    assert found == {inst}, found
    assert ck.resources.spill_stores == 0 and ck.resources.spill_loads == 0
    assert "fma.rn.f32" not in ck.ptx


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("t, acc, bk, arch, inst", CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES])
def test_mma_emulator_equals_interpreter(t: str, acc: str, bk: int, arch: str, inst: str, shape) -> None:  # noqa: ANN001
    m, n, k = shape
    dt = lowbit.dtype(t)
    rng = np.random.default_rng(m * 1000 + n + k + dt.bits)
    a, av = _operand(t, (m, k), rng)
    b, bv = _operand(t, (k, n), rng)
    out_np = {"f32": np.float32, "f16": np.float16, "int32": np.int32}[acc]
    cx = dict(T=dt, ACC=lowbit.dtype(acc), BK=bk)
    grid = (-(-m // 32), -(-n // 32))
    c_int, c_emu = np.full((m, n), 0, out_np), np.full((m, n), 0, out_np)
    if out_np is not np.int32:
        c_int[:], c_emu[:] = np.nan, np.nan
    mm.interpret[grid](a, b, c_int, m, n, k, **cx)
    mm.on(arch)[grid](a, b, c_emu, m, n, k, **cx)
    ref = av @ bv
    if t.startswith("bipolar"):  # a K tail reads code 0 in both tiles: -1 x -1 = +1 per padded position
        ref = ref + (-(-k // bk) * bk - k)
    if out_np is np.int32:
        np.testing.assert_array_equal(c_emu, c_int)
        np.testing.assert_array_equal(c_emu.astype(np.int64), ref.astype(np.int64))
        return
    mag = np.abs(av) @ np.abs(bv)
    u = 2.0**-11 if acc == "f16" else 2.0**-24
    steps = k // 16 + 1 if acc == "f16" else k
    bound = 2 * steps * u * mag + (2.0**-11 * np.abs(ref) if acc == "f16" else 0) + 1e-6
    for got in (c_emu, c_int):
        assert np.all(np.abs(got.astype(np.float64) - ref) <= bound), (t, acc, np.max(np.abs(got - ref)))
