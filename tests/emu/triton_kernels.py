"""Triton kernels whose PTX the emulator must run (issue 4, "Kernels written by others").

``@triton.jit`` functions must live in a real ``.py`` file, so they live here;
``tests/emu/gen_fixtures.py`` compiles them (on the CPU, no GPU needed) into
the committed fixtures and M's end-to-end tests may compile them afresh.
Every kernel masks its tail so sizes need not be multiples of the block.

``SPECS`` lists, per fixture, the kernel, its Triton signature, constexprs,
the argument indices that carry ``tt.divisibility=16`` (pointers and leading
sizes, so Triton emits vectorised loads and ``cp.async``), the target and
the compile options.  It is plain data so that tests can import it without
importing Triton.
"""

from __future__ import annotations

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - the specs below stay importable
    triton = None

if triton is not None:

    @triton.jit
    def vector_add(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask)
        y = tl.load(y_ptr + offs, mask=mask)
        tl.store(out_ptr + offs, x + y, mask=mask)

    @triton.jit
    def row_softmax(x_ptr, out_ptr, n_cols, x_stride, out_stride, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        cols = tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_ptr + row * x_stride + cols, mask=mask, other=-float("inf"))
        x = x - tl.max(x, axis=0)
        num = tl.exp(x)
        den = tl.sum(num, axis=0)
        tl.store(out_ptr + row * out_stride + cols, num / den, mask=mask)

    @triton.jit
    def matmul(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_bk, stride_cm,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """C[M, N] (f32) = A[M, K] @ B[K, N], all row-major (inner stride 1)."""
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rk = tl.arange(0, BLOCK_K)
        a_ptrs = a_ptr + rm[:, None] * stride_am + rk[None, :]
        b_ptrs = b_ptr + rk[:, None] * stride_bk + rn[None, :]
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in range(0, tl.cdiv(K, BLOCK_K)):
            k_left = K - k * BLOCK_K
            a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
            b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
            acc = tl.dot(a, b, acc)
            a_ptrs += BLOCK_K
            b_ptrs += BLOCK_K * stride_bk
        c_ptrs = c_ptr + rm[:, None] * stride_cm + rn[None, :]
        tl.store(c_ptrs, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


_MATMUL_SIG_F16 = {
    "a_ptr": "*fp16", "b_ptr": "*fp16", "c_ptr": "*fp32", "M": "i32", "N": "i32", "K": "i32",
    "stride_am": "i32", "stride_bk": "i32", "stride_cm": "i32",
    "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr",
}
_MATMUL_SIG_FP8 = dict(_MATMUL_SIG_F16, a_ptr="*fp8e4nv", b_ptr="*fp8e4nv")

#: fixture name -> how to compile it.  ``divisible`` are argument indices given
#: ``tt.divisibility = 16``; the values passed at launch must honour that.
SPECS: dict[str, dict] = {
    "triton_vector_add": {
        "kernel": "vector_add",
        "signature": {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"},
        "constexprs": {"BLOCK": 256},
        "divisible": (0, 1, 2),
        "arch": 80,
        "options": {"num_warps": 4, "ptx_version": 88, "enable_fp_fusion": True},
    },
    "triton_row_softmax": {
        "kernel": "row_softmax",
        "signature": {"x_ptr": "*fp32", "out_ptr": "*fp32", "n_cols": "i32", "x_stride": "i32",
                      "out_stride": "i32", "BLOCK": "constexpr"},
        "constexprs": {"BLOCK": 128},
        "divisible": (0, 1, 3, 4),
        "arch": 80,
        "options": {"num_warps": 4, "ptx_version": 88, "enable_fp_fusion": True},
    },
    "triton_matmul_f16": {
        "kernel": "matmul",
        "signature": _MATMUL_SIG_F16,
        "constexprs": {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32},
        "divisible": (0, 1, 2, 4, 5, 6, 7, 8),
        "arch": 80,
        "options": {"num_warps": 4, "num_stages": 3, "ptx_version": 88, "enable_fp_fusion": True},
    },
    "triton_matmul_fp8": {
        "kernel": "matmul",
        "signature": _MATMUL_SIG_FP8,
        "constexprs": {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64},
        "divisible": (0, 1, 2, 4, 5, 6, 7, 8),
        "arch": 89,
        "options": {"num_warps": 4, "num_stages": 3, "ptx_version": 88, "enable_fp_fusion": True},
    },
}


def compile_spec(name: str):
    """Compile ``SPECS[name]`` with Triton on the CPU; returns the ``CompiledKernel``."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    spec = SPECS[name]
    fn = globals()[spec["kernel"]]
    attrs = {(i,): [["tt.divisibility", 16]] for i in spec["divisible"]}
    src = ASTSource(fn=fn, signature=spec["signature"], constexprs=spec["constexprs"], attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", spec["arch"], 32), options=dict(spec["options"]))
