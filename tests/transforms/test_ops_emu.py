"""Each VM op class through the whole compiler (ptxas, 0 spills) and the emulator, against the interpreter.

Random inputs, sizes that are not multiples of the tiles, poisoned outputs.
Integer paths and conversions are bit-exact; float math within the stated
bound (exp2/log2 use the PTX approximations; sums run in another order).
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.errors import CodegenError
from tests.transforms.harness import both, compiled

RNG = np.random.default_rng


@lowbit.kernel
def roundtrip(x_ptr: lowbit.ptr("f32"), f_ptr: lowbit.ptr("f32"), i_ptr: lowbit.ptr("int32"), n: lowbit.int32,
              T: lowbit.constexpr = lowbit.f16, B: lowbit.constexpr = 64):  # fmt: skip
    """f32 -> T -> f32 and f32 -> T -> int32: every conversion pair through T."""
    s = lowbit.program_id(0) * B
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (s,), (B,))
    t = lowbit.cast(x, T)
    lowbit.store(lowbit.global_view(f_ptr, (n,)), lowbit.cast(t, lowbit.f32), (s,))
    lowbit.store(lowbit.global_view(i_ptr, (n,)), lowbit.cast(t, lowbit.int32), (s,))


FLOAT_TARGETS = ["f16", "bf16", "e4m3fn", "e5m2", "e3m2", "e2m3", "e2m1"]
INT_TARGETS = ["int8", "uint8", "int3", "uint4", "uint1", "int16", "uint32", "int64"]


@pytest.mark.parametrize("target", FLOAT_TARGETS + INT_TARGETS)
def test_casts_through_every_format(target: str, cache: CompileCache) -> None:
    rng = RNG(hash(target) % 1000)
    n = 300
    x = (rng.standard_normal(n) * rng.choice([0.01, 1, 30, 1e3, 1e5], n)).astype(np.float32)
    x[:6] = [0.0, -0.0, np.inf, -np.inf, 448.0 + 16, 2.0**-12]
    if target == "bf16":  # the interpreter's bf16 -> int cast ignores the clip rule (reported): stay in range
        x[2:4] = [2e9, -2e9]
    f = np.full(n, np.nan, np.float32)
    i = np.full(n, -12345, np.int32)
    both(roundtrip, cache, (5,), [x, f, i, n], [1, 2], T=lowbit.dtype(target))


@lowbit.kernel
def int_ops(a_ptr: lowbit.ptr("int32"), b_ptr: lowbit.ptr("int32"), o_ptr: lowbit.ptr("int32"), n: lowbit.int32,
            T: lowbit.constexpr = lowbit.int32):  # fmt: skip
    a = lowbit.cast(lowbit.load(lowbit.global_view(a_ptr, (n,)), (0,), (128,), other=1), T)
    b = lowbit.cast(lowbit.load(lowbit.global_view(b_ptr, (n,)), (0,), (128,), other=1), T)
    o = lowbit.global_view(o_ptr, (12, n))
    outs = (a + b, a - b, a * b, a // b, a % b, lowbit.minimum(a, b), lowbit.maximum(a, b),
            a & b, a ^ b, a << (b & 7), a >> (b & 7), lowbit.where(a < b, a, -a))  # fmt: skip
    for r in lowbit.static_range(12):
        lowbit.store(o, lowbit.cast(outs[r], lowbit.int32)[None, :], (r, 0))


@pytest.mark.parametrize("t", ["int32", "uint32", "int8", "uint8", "int4"])
def test_integer_arithmetic_wraps_like_the_interpreter(t: str, cache: CompileCache) -> None:
    rng = RNG(7)
    n = 100
    a = rng.integers(-(2**31), 2**31, n).astype(np.int32)
    b = rng.integers(-(2**31), 2**31, n).astype(np.int32)
    b[b == 0] = 3
    a[:4], b[:4] = [7, -7, 7, -7], [2, 2, -2, -2]  # truncating division and remainder signs
    if t in ("int8", "uint8", "int4"):  # small divisors must not wrap to zero in the narrow type
        b = np.where(lowbit.dtype(t).bits == 4, rng.integers(1, 7, n), rng.integers(1, 100, n)).astype(np.int32)
    o = np.full((12, n), -999, np.int32)
    both(int_ops, cache, (1,), [a, b, o, n], [2], T=lowbit.dtype(t))


@lowbit.kernel
def float_math(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), n: lowbit.int32):
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (0,), (32,), other=1.0)
    o = lowbit.global_view(o_ptr, (8, n))
    lowbit.store(o, lowbit.sqrt(lowbit.abs(x))[None, :], (0, 0))
    lowbit.store(o, lowbit.fma(x, x, x)[None, :], (1, 0))
    lowbit.store(o, lowbit.round(x * 3.0, "rn")[None, :], (2, 0))
    lowbit.store(o, lowbit.maximum(x, -x)[None, :], (3, 0))
    lowbit.store(o, (x / (x - 0.5))[None, :], (4, 0))
    lowbit.store(o, lowbit.round(x, "rd")[None, :], (5, 0))
    lowbit.store(o, lowbit.exp2(x)[None, :], (6, 0))
    lowbit.store(o, lowbit.log2(lowbit.abs(x) + 1.0)[None, :], (7, 0))


def test_float_math(cache: CompileCache) -> None:
    x = (RNG(6).standard_normal(29) * 4).astype(np.float32)
    o = np.full((8, 29), np.nan, np.float32)
    [(want, got)] = both(float_math, cache, (1,), [x, o, 29], [1], exact=False, rtol=1e-5)
    np.testing.assert_array_equal(got[:6], want[:6])  # correctly rounded ops are exact


@lowbit.kernel
def views(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("int32"), p_ptr: lowbit.ptr("uint32"), K: lowbit.int32,
          N: lowbit.int32, T: lowbit.constexpr = lowbit.uint3, BK: lowbit.constexpr = 32):  # fmt: skip
    """Words packed along K (axis 0) viewed as T codes; and T codes viewed back as words along axis 0."""
    words = BK * T.bits // 32
    k0 = lowbit.program_id(0) * BK
    w = lowbit.load(lowbit.global_view(w_ptr, (lowbit.cdiv(K * T.bits, 32), N)), (k0 * T.bits // 32, 0), (words, 16))
    codes = lowbit.view(w, T, axis=0)
    lowbit.store(lowbit.global_view(o_ptr, (K, N)), lowbit.cast(codes, lowbit.int32), (k0, 0))
    back = lowbit.view(codes, lowbit.uint32, axis=0)
    lowbit.store(lowbit.global_view(p_ptr, (lowbit.cdiv(K * T.bits, 32), N)), back, (k0 * T.bits // 32, 0))


@pytest.mark.parametrize("t", ["uint3", "uint4", "int2", "uint8"])
def test_views_unpack_and_repack_lsb_first(t: str, cache: CompileCache) -> None:
    """K=136 uint3 codes are 12.75 words: the last word ends inside the tile (masked by the view's bounds)."""
    bits = lowbit.dtype(t).bits
    k, n = 136, 13
    rng = RNG(bits)
    codes = rng.integers(0, 1 << bits, (k, n)).astype(np.uint8)
    words = lowbit.pack(codes, bits, axis=0)
    o = np.full((k, n), -999, np.int32)
    p = np.full_like(words, 0xDEADBEEF)
    both(views, cache, (-(-k // 32),), [words, o, p, k, n], [1, 2], T=lowbit.dtype(t))
    got = o.copy()
    want = codes.astype(np.int64)
    if lowbit.dtype(t).is_signed:
        want = np.where(want >= 1 << (bits - 1), want - (1 << bits), want)
    # the interpreter and the emulator agree (checked above); both match the host's unpacking too
    run = both(views, cache, (-(-k // 32),), [words, got, p.copy(), k, n], [1], T=lowbit.dtype(t))
    np.testing.assert_array_equal(run[0][1], want)


@lowbit.kernel
def reductions(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), i_ptr: lowbit.ptr("int32"), M: lowbit.int32):
    x = lowbit.load(lowbit.global_view(x_ptr, (M, 12)), (0, 0), (16, 12), other=0.0)
    o = lowbit.global_view(o_ptr, (3, 16))
    lowbit.store(o, lowbit.reduce(x, 1, "sum")[None, :], (0, 0))
    lowbit.store(o, lowbit.reduce(x, 1, "max")[None, :], (1, 0))
    lowbit.store(o, lowbit.reduce(x, 1, "min")[None, :], (2, 0))
    xi = lowbit.cast(x * 100.0, lowbit.int32)
    lowbit.store(lowbit.global_view(i_ptr, (1, 12)), lowbit.reduce(xi, 0, "sum", keepdims=True), (0, 0))


def test_reduce(cache: CompileCache) -> None:
    x = RNG(3).standard_normal((11, 12)).astype(np.float32)
    o = np.full((3, 16), np.nan, np.float32)
    i = np.full((1, 12), -1, np.int32)
    (fo, fe), (io, ie) = both(reductions, cache, (1,), [x, o, i, 11], [1, 2], exact=False, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(fe[1:], fo[1:])  # max/min are exact
    np.testing.assert_array_equal(ie, io)


@lowbit.kernel
def lut(c_ptr: lowbit.ptr("uint8"), t_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), n: lowbit.int32):
    table = lowbit.load(lowbit.global_view(t_ptr, (16,)), (0,), (16,))
    codes = lowbit.cast(lowbit.load(lowbit.global_view(c_ptr, (n,)), (0,), (64,)), lowbit.uint4)
    lowbit.store(lowbit.global_view(o_ptr, (n,)), lowbit.lookup(table, codes), (0,))


def test_lookup(cache: CompileCache) -> None:
    codes = RNG(4).integers(0, 16, 50).astype(np.uint8)
    table = lowbit.nf4.values().astype(np.float16)
    out = np.full(50, np.nan, np.float16)
    [(_, got)] = both(lut, cache, (1,), [codes, table, out, 50], [2])
    np.testing.assert_array_equal(got, table[codes])


@lowbit.kernel
def pipeline(x_ptr: lowbit.ptr("f32"), y_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f32"), n: lowbit.int32):
    """cp.async for 4-byte elements, the synchronous path for f16; out-of-bounds rows are zero-filled."""
    buf = lowbit.shared(lowbit.f32, (4, 8))
    hb = lowbit.shared(lowbit.f16, (4, 8))
    lowbit.copy_async(buf, lowbit.global_view(x_ptr, (n, 8)), (0, 0))
    lowbit.copy_async(hb, lowbit.global_view(y_ptr, (n, 8)), (0, 0))
    lowbit.commit()
    lowbit.wait(0)
    lowbit.barrier()
    t = lowbit.load(buf, (0, 0), (4, 8)) + lowbit.cast(lowbit.load(hb, (0, 0), (4, 8)), lowbit.f32)
    lowbit.barrier()
    lowbit.store(buf, t * 2.0, (0, 0))
    lowbit.barrier()
    lowbit.store(lowbit.global_view(o_ptr, (4, 8)), lowbit.load(buf, (0, 0), (4, 8)), (0, 0))
    lowbit.free(buf)


def test_shared_memory_and_async_copies(cache: CompileCache) -> None:
    x = RNG(8).standard_normal((3, 8)).astype(np.float32)
    y = RNG(9).standard_normal((3, 8)).astype(np.float16)
    out = np.full((4, 8), np.nan, np.float32)
    [(_, got)] = both(pipeline, cache, (1,), [x, y, out, 3], [2])
    assert (got[3] == 0).all()


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


def test_integer_dot_is_exact(cache: CompileCache) -> None:
    rng = RNG(5)
    m, n, k = 37, 20, 70
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    c = np.full((m, n), -999, np.int32)
    [(_, got)] = both(int_dot, cache, (3, 2), [a, b, c, m, n, k], [2])
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b.astype(np.int64))


@lowbit.kernel
def control(x_ptr: lowbit.ptr("int32"), o_ptr: lowbit.ptr("int32"), n: lowbit.int32, BIG: lowbit.constexpr = 40):
    """A loop carrying a scalar and a tile, an if on a runtime scalar with a tile result, arange, num_programs."""
    x = lowbit.global_view(x_ptr, (n,))
    acc = lowbit.zeros((64,), lowbit.int32)
    count = 0
    for i in range(0, n, 64):
        acc = acc + lowbit.load(x, (i,), (64,))
        count = count + 1
    if n > BIG:
        r = acc * 2 + lowbit.arange(0, 64)
    else:
        r = acc - lowbit.num_programs(0)
    lowbit.store(lowbit.global_view(o_ptr, (65,)), r, (0,))
    lowbit.store(lowbit.global_view(o_ptr, (65,)), lowbit.full((1,), count, lowbit.int32), (64,))


@pytest.mark.parametrize("n", [37, 200])
def test_loops_and_conditionals(n: int, cache: CompileCache) -> None:
    x = RNG(n).integers(-1000, 1000, n).astype(np.int32)
    o = np.full(65, -999, np.int32)
    both(control, cache, (1,), [x, o, n], [1])


@lowbit.kernel
def subbyte_store(x_ptr: lowbit.ptr("uint8"), n: lowbit.int32):  # bytes: words may run past the buffer
    x = lowbit.global_view(x_ptr, (n,), dtype=lowbit.uint4)
    lowbit.store(x, lowbit.load(x, (0,), (64,)) + 1, (0,))


def test_unsupported_op_names_the_dsl_line(cache: CompileCache) -> None:
    with pytest.raises(CodegenError) as info:
        compiled(subbyte_store, cache)
    msg = str(info.value)
    assert "test_ops_emu.py:" in msg and "store_global" in msg and "uint4" in msg
    line = int(msg.split("test_ops_emu.py:")[1].split(":")[0])
    assert "lowbit.store(x, lowbit.load(x" in open(__file__).read().splitlines()[line - 1]


@lowbit.kernel
def decode(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("f32"), R: lowbit.int32, T: lowbit.constexpr = lowbit.nf4):
    """Codes of any <= 8-bit format packed in words, viewed as T and decoded to f32 (and through f16/bf16)."""
    per = 32 // T.bits
    w = lowbit.load(lowbit.global_view(w_ptr, (R, 2)), (0, 0), (8, 2))
    t = lowbit.view(w, T)  # [8, 2 * per]
    o = lowbit.global_view(o_ptr, (3, R, 2 * per))
    lowbit.store(o, lowbit.reshape(lowbit.cast(t, lowbit.f32), (1, 8, 2 * per)), (0, 0, 0))
    lowbit.store(o, lowbit.reshape(lowbit.cast(lowbit.cast(t, lowbit.f16), lowbit.f32), (1, 8, 2 * per)), (1, 0, 0))
    lowbit.store(o, lowbit.reshape(lowbit.cast(lowbit.cast(t, lowbit.bf16), lowbit.f32), (1, 8, 2 * per)), (2, 0, 0))


@pytest.mark.parametrize("t", ["nf4", "e2m1", "e4m3fn", "e5m2", "e8m0"])
def test_small_formats_decode(t: str, cache: CompileCache) -> None:
    dt = lowbit.dtype(t)
    per = 32 // dt.bits  # 6-bit formats are covered by test_casts_through_every_format
    r = 7
    codes = np.random.default_rng(dt.bits).integers(0, 1 << dt.bits, (r, 2 * per)).astype(np.uint8)
    if t == "e8m0":
        codes[codes == 0xFF] = 0x7F  # the NaN scale decodes to NaN on both sides anyway; keep values finite
    words = lowbit.pack(codes, dt.bits, axis=-1)
    o = np.full((3, r, 2 * per), np.nan, np.float32)
    [(_, got)] = both(decode, cache, (1,), [words, o, r], [1], T=dt)
    np.testing.assert_array_equal(got[0], np.asarray(dt.decode(codes.astype(np.uint64)), dtype=np.float32))


@lowbit.kernel
def shapes(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), b_ptr: lowbit.ptr("int32"), R: lowbit.int32):
    """Tiles whose sizes do not divide the block (300 and 100 elements), broadcasts, bool tiles, reshape."""
    x = lowbit.load(lowbit.global_view(x_ptr, (R, 100)), (0, 0), (3, 100), other=-1.0)
    col = lowbit.reduce(x, 1, "max", keepdims=True)  # [3, 1]
    y = x - lowbit.broadcast(col, (3, 100))
    pos = x > 0.0
    z = lowbit.where(pos, y, x * 0.5)
    lowbit.store(lowbit.global_view(o_ptr, (R, 100)), z, (0, 0), mask=x != 0.25)
    cnt = lowbit.reduce(lowbit.cast(pos, lowbit.int32), 0, "sum")  # [100]
    lowbit.store(lowbit.global_view(b_ptr, (2, 50)), lowbit.reshape(cnt, (2, 50)), (0, 0))


def test_odd_tile_sizes_broadcast_and_bool_tiles(cache: CompileCache) -> None:
    x = np.random.default_rng(2).standard_normal((3, 100)).astype(np.float32)
    x[1, 5] = 0.25
    o = np.full((3, 100), np.nan, np.float32)
    bcount = np.full((2, 50), -1, np.int32)
    [(_, got), (_, cnt)] = both(shapes, cache, (1,), [x, o, bcount, 3], [1, 2])
    assert np.isnan(got[1, 5]) and not np.isnan(np.delete(got.reshape(-1), 105)).any()
    np.testing.assert_array_equal(cnt.reshape(-1), (x > 0).sum(0))


@lowbit.kernel
def subbyte_load(src_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("int32"), R: lowbit.int32, C: lowbit.int32,
                 T: lowbit.constexpr = lowbit.uint3):  # fmt: skip
    """Elements of T read straight from a bit-addressed global view (codes straddle bytes for 3/5/6/7 bits)."""
    r0, c0 = lowbit.program_id(0) * 4, lowbit.program_id(1) * 16
    t = lowbit.load(lowbit.global_view(src_ptr, (R, C), dtype=T), (r0, c0), (4, 16))
    lowbit.store(lowbit.global_view(o_ptr, (R, C)), lowbit.cast(t, lowbit.int32), (r0, c0))


@pytest.mark.parametrize("t", ["uint1", "int3", "uint5", "int6", "uint7"])
def test_subbyte_global_loads(t: str, cache: CompileCache) -> None:
    bits = lowbit.dtype(t).bits
    r, c = 7, 37
    codes = np.random.default_rng(bits).integers(0, 1 << bits, (r, c)).astype(np.uint8)
    src = lowbit.pack(codes.reshape(-1), bits)
    o = np.full((r, c), -999, np.int32)
    [(_, got)] = both(subbyte_load, cache, (2, 3), [src, o, r, c], [1], T=lowbit.dtype(t))
    want = codes.astype(np.int64)
    if lowbit.dtype(t).is_signed:
        want = np.where(want >= 1 << (bits - 1), want - (1 << bits), want)
    np.testing.assert_array_equal(got, want)
