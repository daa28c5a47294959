"""The Triton baseline for bench_compile and bench_decode: a W4A16 group-quantized GEMM like examples/04.

Same contract as ``examples/04_w4a16_matmul.py``: A (M, K) f16, W's uint4
codes packed LSB-first along K into (K/8, N) uint32 words, f16 scales and
uint8 integer zeros of shape (ceil(K/128), N), C (M, N) f16; the same block
shape (BM=16, BN=32, BK=32) and num_warps=4.  ``@triton.jit`` functions must
live in a real file, hence this module.  Written for these benchmarks:
bench_compile times its compilation; bench_decode runs its PTX (num_stages=3,
the block shapes of its configuration list) on lowbit's emulator and counts
what it issues.  It is the plain Triton way to write the kernel, not a tuned one.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def w4a16_matmul(a_ptr, w_ptr, s_ptr, z_ptr, c_ptr, M, N, K,
                 BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        rk = k0 + tl.arange(0, BK)
        a = tl.load(a_ptr + rm[:, None] * K + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        words = tl.load(w_ptr + (rk[:, None] // 8) * N + rn[None, :], mask=(rk[:, None] < K) & (rn[None, :] < N), other=0)
        codes = (words >> ((rk[:, None] % 8) * 4)) & 0xF
        g = k0 // GROUP
        s = tl.load(s_ptr + g * N + rn, mask=rn < N, other=0.0)
        z = tl.load(z_ptr + g * N + rn, mask=rn < N, other=0)
        w = (codes.to(tl.float16) - z.to(tl.float16)[None, :]) * s[None, :]
        acc = tl.dot(a, w, acc)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(tl.float16), mask=(rm[:, None] < M) & (rn[None, :] < N))


SIGNATURE = {
    "a_ptr": "*fp16", "w_ptr": "*u32", "s_ptr": "*fp16", "z_ptr": "*u8", "c_ptr": "*fp16",
    "M": "i32", "N": "i32", "K": "i32",
    "BM": "constexpr", "BN": "constexpr", "BK": "constexpr", "GROUP": "constexpr",
}
CONSTEXPRS = {"BM": 16, "BN": 32, "BK": 32, "GROUP": 128}


def compile_for(arch: int = 80, num_warps: int = 4, num_stages: int = 1, constexprs: dict | None = None,
                divisible: tuple[str, ...] = ()):
    """Compile to PTX and cubin on the CPU (no GPU needed); returns Triton's CompiledKernel.

    ``constexprs`` overrides :data:`CONSTEXPRS` (block shape, group);
    ``divisible`` names the arguments Triton may assume 16-aligned (pointers)
    or multiples of 16 (sizes): ``tt.divisibility=16``, the fact Triton's own
    JIT would specialise on at launch.
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(SIGNATURE)
    unknown = [d for d in divisible if d not in names or SIGNATURE[d] == "constexpr"]
    if unknown:
        raise ValueError(f"divisible: {unknown} are not runtime arguments of w4a16_matmul")
    attrs = {(names.index(d),): [["tt.divisibility", 16]] for d in divisible}
    src = ASTSource(fn=w4a16_matmul, signature=SIGNATURE, constexprs={**CONSTEXPRS, **(constexprs or {})}, attrs=attrs)
    return triton.compile(
        src, target=GPUTarget("cuda", arch, 32), options={"num_warps": num_warps, "num_stages": num_stages}
    )
