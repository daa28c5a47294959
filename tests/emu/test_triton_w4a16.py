"""Triton's W4A16 GEMM (the bench_compile baseline) compiled on the CPU and run in the emulator.

The kernel unpacks uint4 codes from uint32 words with shifts and masks, applies
integer zeros and f16 scales and feeds tl.dot (mma.sync): a low-bit kernel
nobody here wrote, checked against a float64 dequantise-then-matmul reference.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit import emu
from tests.conftest import require_tool


@pytest.mark.parametrize("m, n, k", [(37, 100, 136), (16, 32, 128)])
def test_triton_w4a16_ptx_matches_float64_reference(m: int, n: int, k: int) -> None:
    require_tool("triton")
    from benchmarks.baselines.triton_w4a16 import CONSTEXPRS, compile_for

    compiled = compile_for(arch=80, num_warps=4, num_stages=1)
    ptx = compiled.asm["ptx"]
    rng = np.random.default_rng(m * 1000 + k)
    a = rng.standard_normal((m, k)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    scales = np.ascontiguousarray(q.scales, dtype=np.float16)
    zeros = np.ascontiguousarray(q.zeros, dtype=np.uint8)
    c = np.full((m, n), np.nan, dtype=np.float16)
    scratch = [np.zeros(256, np.uint8), np.zeros(256, np.uint8)]  # Triton's global/profile scratch pointers
    bm, bn = CONSTEXPRS["BM"], CONSTEXPRS["BN"]
    grid = (-(-m // bm), -(-n // bn), 1)
    stats = emu.launch(
        ptx, "w4a16_matmul", grid, (128, 1, 1),
        [a, words, scales, zeros, c, np.int32(m), np.int32(n), np.int32(k), *scratch],
        shared_bytes=compiled.metadata.shared,
    )
    assert stats.mma > 0
    g = np.arange(k) // 128
    w = (q.codes.astype(np.float64) - q.zeros.astype(np.float64)[g]) * q.scales.astype(np.float64)[g]
    a64 = a.astype(np.float64)
    ref, mag = a64 @ w, np.abs(a64) @ np.abs(w)
    # each dequantised weight is rounded to f16 (2^-11 relative), K f32 additions, one f16 rounding of C
    tol = 2.0 * ((2.0**-11 + k * 2.0**-24) * mag + 2.0**-11 * np.abs(ref)) + 2.0**-24
    err = np.abs(c.astype(np.float64) - ref)
    assert np.all(np.isfinite(c))
    assert np.all(err <= tol), f"max error {err.max()} exceeds tolerance at {np.unravel_index(np.argmax(err - tol), err.shape)}"
