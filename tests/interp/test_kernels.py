"""The interpreter's meaning of each tile op, checked through small kernels against numpy references.

Shapes are deliberately not multiples of the tiles, outputs are poisoned
(NaN or a sentinel) before each run, and references are written here
independently of the interpreter's code.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.errors import LowbitError


@lowbit.kernel
def masked_copy(x_ptr: lowbit.ptr("f32"), y_ptr: lowbit.ptr("f32"), M: lowbit.int32, N: lowbit.int32,
                BM: lowbit.constexpr = 8, BN: lowbit.constexpr = 16):  # fmt: skip
    """y = where(x > 0, x, -1) on the transpose view of x: strides (1, M)."""
    m0, n0 = lowbit.program_id(0) * BM, lowbit.program_id(1) * BN
    xt = lowbit.global_view(x_ptr, (N, M), strides=(1, N))  # x is (M, N) row-major; this is x.T
    y = lowbit.global_view(y_ptr, (N, M))
    cols = lowbit.arange(0, BM) + m0
    t = lowbit.load(xt, (n0, m0), (BN, BM), mask=cols[None, :] < M - 1, other=-5.0)
    lowbit.store(y, lowbit.where(t > 0.0, t, -1.0), (n0, m0))


def test_strided_masked_load_and_store() -> None:
    rng = np.random.default_rng(0)
    m, n = 13, 21
    x = rng.standard_normal((m, n)).astype(np.float32)
    y = np.full((n, m), np.nan, np.float32)
    masked_copy.interpret[(2, 2)](x, y, m, n)
    xt = x.T.copy()
    xt[:, m - 1 :] = -5.0  # the user mask drops the last column: 'other' fills it
    np.testing.assert_array_equal(y, np.where(xt > 0, xt, -1.0))


@lowbit.kernel
def subbyte_roundtrip(src_ptr: lowbit.ptr("uint32"), dst_ptr: lowbit.ptr("uint32"), R: lowbit.int32,
                      C: lowbit.int32, T: lowbit.constexpr = lowbit.uint3, BR: lowbit.constexpr = 4,
                      BC: lowbit.constexpr = 16):  # fmt: skip
    """Read an (R, C) tensor of T codes packed as one LSB-first stream, add one (wrapping in T), write it back."""
    r0, c0 = lowbit.program_id(0) * BR, lowbit.program_id(1) * BC
    src = lowbit.global_view(src_ptr, (R, C), dtype=T)  # element strides (C, 1): bit (r*C + c) * bits
    dst = lowbit.global_view(dst_ptr, (R, C), dtype=T)
    t = lowbit.load(src, (r0, c0), (BR, BC))
    lowbit.store(dst, t + 1, (r0, c0))


@pytest.mark.parametrize("bits", [1, 3, 4, 5, 6, 8])
def test_subbyte_global_loads_and_stores(bits: int) -> None:
    """Codes straddling bytes and words (3, 5, 6 bits) read and write exactly; neighbours are kept."""
    rng = np.random.default_rng(bits)
    r, c = 7, 37
    codes = rng.integers(0, 1 << bits, size=(r, c)).astype(np.uint8)
    src = lowbit.pack(codes.reshape(-1), bits)
    dst = np.full_like(src, 0xDEADBEEF)  # poisoned; the padding bits after the last code must stay so
    subbyte_roundtrip.interpret[(2, 3)](src, dst, r, c, T=lowbit.dtype(f"uint{bits}"))
    got = lowbit.unpack(dst, bits, r * c).reshape(r, c)
    np.testing.assert_array_equal(got, (codes.astype(np.int64) + 1) % (1 << bits))
    used = r * c * bits % 32
    if used:
        pad = np.uint32(0xFFFFFFFF) << np.uint32(used)
        assert (dst[-1] & pad) == (np.uint32(0xDEADBEEF) & pad)


@lowbit.kernel
def reductions(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), i_ptr: lowbit.ptr("int32"), M: lowbit.int32):
    x = lowbit.load(lowbit.global_view(x_ptr, (M, 12)), (0, 0), (16, 12), other=0.0)
    o = lowbit.global_view(o_ptr, (3, 16))
    lowbit.store(o, lowbit.reduce(x, 1, "sum")[None, :], (0, 0))
    lowbit.store(o, lowbit.reduce(x, 1, "max")[None, :], (1, 0))
    lowbit.store(o, lowbit.reduce(x, 1, "min")[None, :], (2, 0))
    xi = lowbit.cast(x * 100.0, lowbit.int32)
    lowbit.store(lowbit.global_view(i_ptr, (1, 12)), lowbit.reduce(xi, 0, "sum", keepdims=True), (0, 0))


def test_reduce() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((11, 12)).astype(np.float32)
    o = np.full((3, 16), np.nan, np.float32)
    i = np.full((1, 12), -1, np.int32)
    reductions.interpret[1](x, o, i, 11)
    xp = np.zeros((16, 12), np.float32)
    xp[:11] = x
    np.testing.assert_allclose(o[0], xp.astype(np.float64).sum(1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(o[1], xp.max(1))
    np.testing.assert_array_equal(o[2], xp.min(1))
    np.testing.assert_array_equal(i[0], np.trunc(xp * np.float32(100.0)).astype(np.int64).sum(0))


@lowbit.kernel
def lut(c_ptr: lowbit.ptr("uint8"), t_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), n: lowbit.int32):
    table = lowbit.load(lowbit.global_view(t_ptr, (16,)), (0,), (16,))
    codes = lowbit.cast(lowbit.load(lowbit.global_view(c_ptr, (n,)), (0,), (64,)), lowbit.uint4)
    lowbit.store(lowbit.global_view(o_ptr, (n,)), lowbit.lookup(table, codes), (0,))


def test_lookup_gathers_from_a_table() -> None:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 16, 50).astype(np.uint8)
    table = lowbit.nf4.values().astype(np.float16)
    out = np.full(50, np.nan, np.float16)
    lut.interpret[1](codes, table, out, 50)
    np.testing.assert_array_equal(out, table[codes])


@lowbit.kernel
def pipeline(x_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), n: lowbit.int32, EARLY: lowbit.constexpr = False):
    x = lowbit.global_view(x_ptr, (n, 8))
    buf = lowbit.shared(lowbit.f16, (4, 8))
    lowbit.store(buf, lowbit.zeros((4, 8), lowbit.f16))
    lowbit.barrier()
    lowbit.copy_async(buf, x, (0, 0))
    lowbit.commit()
    if EARLY:
        early = lowbit.load(buf)  # before the wait: the copy has not landed
        lowbit.store(lowbit.global_view(o_ptr, (4, 8)), early, (0, 0))
    lowbit.wait(0)
    lowbit.barrier()
    if not EARLY:
        lowbit.store(lowbit.global_view(o_ptr, (4, 8)), lowbit.load(buf, (0, 0), (4, 8)), (0, 0))
    lowbit.free(buf)


def test_copy_async_lands_only_after_wait() -> None:
    x = np.arange(24, dtype=np.float16).reshape(3, 8) + 1  # 3 rows: the 4th row is out of bounds -> 0
    out = np.full((4, 8), np.nan, np.float16)
    pipeline.interpret[1](x, out, 3)
    np.testing.assert_array_equal(out[:3], x)
    assert (out[3] == 0).all()
    stale = np.full((4, 8), np.nan, np.float16)
    pipeline.interpret[1](x, stale, 3, EARLY=True)
    assert (stale == 0).all()  # what was in shared memory before the copy


@lowbit.kernel
def int_dot(a_ptr: lowbit.ptr("int8"), b_ptr: lowbit.ptr("int8"), c_ptr: lowbit.ptr("int32"),
            M: lowbit.int32, N: lowbit.int32, K: lowbit.int32, BM: lowbit.constexpr = 16,
            BN: lowbit.constexpr = 16, BK: lowbit.constexpr = 32):  # fmt: skip
    m0, n0 = lowbit.program_id(0) * BM, lowbit.program_id(1) * BN
    a, b = lowbit.global_view(a_ptr, (M, K)), lowbit.global_view(b_ptr, (K, N))
    acc = lowbit.zeros((BM, BN), lowbit.int32)
    for k in range(0, K, BK):
        acc = lowbit.dot(lowbit.load(a, (m0, k), (BM, BK)), lowbit.load(b, (k, n0), (BK, BN)), acc)
    lowbit.store(lowbit.global_view(c_ptr, (M, N)), acc, (m0, n0))


def test_integer_dot_is_exact() -> None:
    rng = np.random.default_rng(5)
    m, n, k = 37, 20, 70
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    c = np.full((m, n), -999, np.int32)
    int_dot.interpret[(3, 2)](a, b, c, m, n, k)
    want = np.array([[sum(int(a[i, t]) * int(b[t, j]) for t in range(k)) for j in range(n)] for i in range(m)])
    np.testing.assert_array_equal(c, want)


@lowbit.kernel
def math_ops(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), n: lowbit.int32):
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (0,), (32,), other=1.0)
    o = lowbit.global_view(o_ptr, (5, n))
    lowbit.store(o, lowbit.exp2(x)[None, :], (0, 0))
    lowbit.store(o, lowbit.sqrt(lowbit.abs(x))[None, :], (1, 0))
    lowbit.store(o, lowbit.fma(x, x, x)[None, :], (2, 0))
    lowbit.store(o, lowbit.round(x * 3.0, "rn")[None, :], (3, 0))
    lowbit.store(o, lowbit.maximum(x, -x)[None, :], (4, 0))


def test_elementwise_math() -> None:
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(29) * 4).astype(np.float32)
    o = np.full((5, 29), np.nan, np.float32)
    math_ops.interpret[1](x, o, 29)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(o[0], np.exp2(x64), rtol=2**-23)
    np.testing.assert_allclose(o[1], np.sqrt(np.abs(x64)), rtol=2**-24)
    np.testing.assert_array_equal(o[2], (x64 * x64 + x64).astype(np.float32))  # one rounding
    np.testing.assert_array_equal(o[3], np.rint(x * np.float32(3.0)))
    np.testing.assert_array_equal(o[4], np.abs(x))


def test_out_of_buffer_access_names_the_parameter() -> None:
    @lowbit.kernel
    def overrun(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        t = lowbit.load(lowbit.global_view(x_ptr, (n,)), (0,), (8,))

    # the binder sizes the view from the scalar arguments and refuses the launch before it runs
    with pytest.raises(LowbitError, match="argument 'x_ptr': the kernel views it as f32\\[8\\] .* needs 32 bytes, "
                                          "but the array has 16"):
        overrun.interpret[1](np.zeros(4, np.float32), 8)  # the view claims 8 elements, the buffer has 4

    @lowbit.kernel
    def grid_sized(x_ptr: lowbit.ptr("f32")):
        t = lowbit.load(lowbit.global_view(x_ptr, (lowbit.num_programs(0) * 8,)), (0,), (8,))

    # a view sized by the grid is beyond the binder: the interpreter's own bounds check names the parameter
    with pytest.raises(LowbitError, match="outside parameter 'x_ptr' \\(16 bytes\\)"):
        grid_sized.interpret[1](np.zeros(4, np.float32))


def test_lookup_out_of_range_is_an_error() -> None:
    @lowbit.kernel
    def bad_lut(x_ptr: lowbit.ptr("int32"), n: lowbit.int32):
        x = lowbit.global_view(x_ptr, (n,))
        table = lowbit.arange(0, 4)
        lowbit.store(x, lowbit.lookup(table, lowbit.load(x, (0,), (8,))), (0,))

    with pytest.raises(LowbitError, match="index 9 outside a table of 4 entries"):
        bad_lut.interpret[1](np.array([0, 1, 9, 2], np.int32), 4)
