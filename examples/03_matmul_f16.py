"""03 -- tiled f16 matmul with ``dot``: C (f32) = A (M, K) @ B (K, N), f16 inputs.

The idea: each block owns a BM x BN tile of C and walks K in steps of BK,
accumulating ``dot(a, b, acc)`` in f32 (what tensor-core MMA does).  M, N, K
are runtime ints: one compiled program serves every shape; the tiles at the
edges are masked by the global views.

    python examples/03_matmul_f16.py
"""

import sys

import numpy as np

import lowbit


@lowbit.kernel(num_warps=4)
def matmul_f16(
    a_ptr: lowbit.ptr("f16"),
    b_ptr: lowbit.ptr("f16"),
    c_ptr: lowbit.ptr("f32"),
    M: lowbit.int32,
    N: lowbit.int32,
    K: lowbit.int32,
    BM: lowbit.constexpr = 32,
    BN: lowbit.constexpr = 32,
    BK: lowbit.constexpr = 32,
):
    m0 = lowbit.program_id(0) * BM
    n0 = lowbit.program_id(1) * BN
    a = lowbit.global_view(a_ptr, (M, K))
    b = lowbit.global_view(b_ptr, (K, N))
    c = lowbit.global_view(c_ptr, (M, N))
    acc = lowbit.zeros((BM, BN), lowbit.f32)
    for k in range(0, K, BK):
        ta = lowbit.load(a, (m0, k), (BM, BK))
        tb = lowbit.load(b, (k, n0), (BK, BN))
        acc = lowbit.dot(ta, tb, acc)
    lowbit.store(c, acc, (m0, n0))


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 C = A @ B written as an explicit sum over K (not the interpreter's matmul)."""
    return (a.astype(np.float64)[:, :, None] * b.astype(np.float64)[None, :, :]).sum(axis=1)


def tolerance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-element bound: products of f16 are exact in f32; K f32 additions add <= K * 2**-24 * sum|a||b|."""
    k = a.shape[1]
    return 2.0 * k * 2.0**-24 * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))) + 1e-30


def _launcher(kernel, backend: str):
    """``kernel[grid]`` compiles to PTX and runs it on lowbit's emulator; ``.interpret`` is the numpy reference."""
    return kernel.interpret if backend == "interpreter" else kernel


def run(m: int = 37, n: int = 100, k: int = 136, bm: int = 32, bn: int = 32, bk: int = 32, seed: int = 2, backend: str = "emulator") -> bool:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c = np.full((m, n), np.nan, dtype=np.float32)
    _launcher(matmul_f16, backend)[(-(-m // bm), -(-n // bn))](a, b, c, m, n, k, BM=bm, BN=bn, BK=bk)
    return bool(np.all(np.abs(c - reference(a, b)) <= tolerance(a, b)))


if __name__ == "__main__":
    ok_ref = run(backend="interpreter")
    print(f"matmul_f16 on the reference interpreter matches the float64 reference within the K-derived tolerance: {ok_ref}")
    ok = run()
    print(f"matmul_f16 as PTX on the emulator matches the float64 reference within the K-derived tolerance: {ok}")
    sys.exit(0 if ok and ok_ref else 1)
