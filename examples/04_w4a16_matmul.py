"""04 -- W4A16 group-quantized matmul: C (f16) = A (M, K, f16) @ dequant(W (K, N), uint4, groups of 128).

The idea: the weight never exists in f16 in memory.  W is quantized with
``lowbit.quantize(w, "uint4", group_size=128, symmetric=False)`` (integer
zeros, GPTQ/AWQ style), its codes packed along K into uint32 words of shape
(K/8, N).  Inside the K loop each block loads its [BK/8, BN] words, *views*
them along axis 0 as the [BK, BN] uint4 tile, casts to f16, applies the
group's zero and f16 scale (shape (ceil(K/128), N)) and feeds ``dot``.

    python examples/04_w4a16_matmul.py
"""

import sys

import numpy as np

import lowbit


@lowbit.kernel(num_warps=4)
def w4a16_matmul(
    a_ptr: lowbit.ptr("f16"),
    w_ptr: lowbit.ptr("uint32"),
    s_ptr: lowbit.ptr("f16"),
    z_ptr: lowbit.ptr("uint8"),
    c_ptr: lowbit.ptr("f16"),
    M: lowbit.int32,
    N: lowbit.int32,
    K: lowbit.int32,
    BM: lowbit.constexpr = 16,
    BN: lowbit.constexpr = 32,
    BK: lowbit.constexpr = 32,
    GROUP: lowbit.constexpr = 128,
):
    lowbit.static_assert(BK % 8 == 0, "BK must cover whole uint32 words")
    lowbit.static_assert(GROUP % BK == 0, "a K step must not straddle two quantization groups")
    m0 = lowbit.program_id(0) * BM
    n0 = lowbit.program_id(1) * BN
    a = lowbit.global_view(a_ptr, (M, K))
    w = lowbit.global_view(w_ptr, (lowbit.cdiv(K, 8), N))
    scales = lowbit.global_view(s_ptr, (lowbit.cdiv(K, GROUP), N))
    zeros = lowbit.global_view(z_ptr, (lowbit.cdiv(K, GROUP), N))
    acc = lowbit.zeros((BM, BN), lowbit.f32)
    for k in range(0, K, BK):
        ta = lowbit.load(a, (m0, k), (BM, BK))
        words = lowbit.load(w, (k // 8, n0), (BK // 8, BN), l2="evict_first")  # streamed once: leave L2 to A
        codes = lowbit.view(words, lowbit.uint4, axis=0)  # [BK, BN]
        g = k // GROUP
        s = lowbit.load(scales, (g, n0), (1, BN))
        z = lowbit.load(zeros, (g, n0), (1, BN))
        wt = (lowbit.cast(codes, lowbit.f16) - lowbit.cast(z, lowbit.f16)) * s
        acc = lowbit.dot(ta, wt, acc)
    lowbit.store(lowbit.global_view(c_ptr, (M, N)), lowbit.cast(acc, lowbit.f16), (m0, n0))


def reference(a: np.ndarray, q: "lowbit.quant.QuantizedTensor") -> tuple[np.ndarray, np.ndarray]:
    """float64 dequantise-then-matmul, as an explicit sum over K; also the |A| @ |W| magnitudes."""
    k = q.codes.shape[0]
    g = np.arange(k) // 128
    w = (q.codes.astype(np.float64) - q.zeros.astype(np.float64)[g]) * q.scales.astype(np.float64)[g]
    a64 = a.astype(np.float64)
    return (a64[:, :, None] * w[None, :, :]).sum(axis=1), np.abs(a64) @ np.abs(w)


def tolerance(ref: np.ndarray, mag: np.ndarray, k: int) -> np.ndarray:
    """Each dequantised weight is rounded once to f16 (2**-11 relative), K f32 additions, a final f16 rounding."""
    return 2.0 * ((2.0**-11 + k * 2.0**-24) * mag + 2.0**-11 * np.abs(ref)) + 2.0**-24


def _launcher(kernel, backend: str):
    """``kernel[grid]`` compiles to PTX and runs it on lowbit's emulator; ``.interpret`` is the numpy reference."""
    return kernel.interpret if backend == "interpreter" else kernel


def run(m: int = 37, n: int = 100, k: int = 136, bm: int = 16, bn: int = 32, bk: int = 32, seed: int = 3, backend: str = "emulator") -> bool:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)  # (K/8, N) uint32
    scales = np.ascontiguousarray(q.scales, dtype=np.float16)
    zeros = np.ascontiguousarray(q.zeros, dtype=np.uint8)
    c = np.full((m, n), np.nan, dtype=np.float16)
    _launcher(w4a16_matmul, backend)[(-(-m // bm), -(-n // bn))](
        a, words.copy(), scales.copy(), zeros.copy(), c, m, n, k, BM=bm, BN=bn, BK=bk
    )
    ref, mag = reference(a, q)
    return bool(np.all(np.abs(c.astype(np.float64) - ref) <= tolerance(ref, mag, k)))


if __name__ == "__main__":
    compiled = lowbit.compile(w4a16_matmul)  # DSL -> VM -> SIMT -> LLVM -> PTX (+ cubin with ptxas), cached
    print(f"compiled {compiled.kernel_name} for {compiled.arch}: {len(compiled.ptx.splitlines())} lines of PTX")
    print(f"ptxas: {compiled.resources or 'not found, PTX only (run `lowbit install-tools`)'}")
    ok_ref = run(backend="interpreter")
    print(f"w4a16_matmul on the reference interpreter matches the float64 dequantise-then-matmul reference: {ok_ref}")
    ok = run()
    print(f"w4a16_matmul as PTX on the emulator matches the float64 dequantise-then-matmul reference: {ok}")
    sys.exit(0 if ok and ok_ref else 1)
