"""The semantics table of issue 5, end to end: DSL kernel -> IR -> interpreter.

``test_semantics.py`` checks the interpreter's numpy helpers; these tests check
that a kernel written with Python operators gets those meanings -- on runtime
scalars (index expressions) as well as on tiles -- against references written
here from C/PTX rules with Python integers, ml_dtypes and IEEE float64.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowbit


def _c_div(a: int, b: int) -> int:
    """C / PTX div.s32: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


@lowbit.kernel
def int_ops(o_ptr: lowbit.ptr("int32"), a: lowbit.int32, b: lowbit.int32):
    o = lowbit.global_view(o_ptr, (8,))
    # runtime scalars: index-expression semantics
    lowbit.store(o, lowbit.full((1,), a // b, lowbit.int32), (0,))
    lowbit.store(o, lowbit.full((1,), a % b, lowbit.int32), (1,))
    lowbit.store(o, lowbit.full((1,), a * b, lowbit.int32), (2,))
    lowbit.store(o, lowbit.full((1,), a + b, lowbit.int32), (3,))
    # tiles: element-wise semantics
    ta = lowbit.full((1,), a, lowbit.int32)
    tb = lowbit.full((1,), b, lowbit.int32)
    lowbit.store(o, ta // tb, (4,))
    lowbit.store(o, ta % tb, (5,))
    lowbit.store(o, ta * tb, (6,))
    lowbit.store(o, ta - tb, (7,))


I32 = st.integers(-(2**31), 2**31 - 1)


@settings(max_examples=60)
@given(I32, I32.filter(lambda v: v != 0))
def test_truncating_division_and_int32_wrap_in_kernels(a: int, b: int) -> None:
    o = np.full(8, -12345, np.int32)
    int_ops.interpret[1](o, a, b)
    q = _wrap32(_c_div(a, b))  # MIN // -1 wraps, as div.s32 does
    r = _wrap32(a - b * _c_div(a, b))
    want = [q, r, _wrap32(a * b), _wrap32(a + b), q, r, _wrap32(a * b), _wrap32(a - b)]
    assert o.tolist() == want


def test_truncation_examples_differ_from_python() -> None:
    o = np.zeros(8, np.int32)
    int_ops.interpret[1](o, -7, 2)
    assert o[:2].tolist() == [-3, -1] and o[4:6].tolist() == [-3, -1]  # Python gives -4 and 1
    int_ops.interpret[1](o, 2**31 - 1, 1)
    assert o[3] == -(2**31)  # int32 max + 1 wraps to min


@lowbit.kernel
def casts(x_ptr: lowbit.ptr("f32"), i_ptr: lowbit.ptr("int8"), u_ptr: lowbit.ptr("uint8"), h_ptr: lowbit.ptr("f16"),
          e_ptr: lowbit.ptr("uint8"), p_ptr: lowbit.ptr("f32"), n: lowbit.int32, BLOCK: lowbit.constexpr = 64):
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (0,), (BLOCK,))
    lowbit.store(lowbit.global_view(i_ptr, (n,)), lowbit.cast(x, lowbit.int8), (0,))
    lowbit.store(lowbit.global_view(u_ptr, (n,)), lowbit.cast(x, lowbit.uint8), (0,))
    h = lowbit.cast(x, lowbit.f16)
    lowbit.store(lowbit.global_view(h_ptr, (n,)), h, (0,))
    e = lowbit.cast(x, lowbit.e4m3fn)
    lowbit.store(lowbit.global_view(e_ptr, (n,)), lowbit.view(e, lowbit.uint8), (0,))
    lowbit.store(lowbit.global_view(p_ptr, (n,)), h + x, (0,))  # f16 + f32 promotes to f32


def _rzi_sat(x: float, lo: int, hi: int) -> int:
    """PTX cvt.rzi.sat: NaN -> 0, truncate toward zero, clip."""
    if np.isnan(x):
        return 0
    if np.isinf(x):
        return hi if x > 0 else lo
    return max(lo, min(hi, int(x)))  # int() truncates toward zero


def test_casts_follow_the_table() -> None:
    rng = np.random.default_rng(5)
    special = [2.7, -2.7, 1e10, -1e10, np.nan, np.inf, -np.inf, 300.0, -0.5, 70000.0, -65520.0, 65519.0,
               448.0, 464.0, -1000.0, 2.0**-10, 1e-30]
    x = np.concatenate([special, rng.standard_normal(64 - len(special)) * 200]).astype(np.float32)
    n = x.size
    i8, u8 = np.zeros(n, np.int8), np.zeros(n, np.uint8)
    h, e, p = np.full(n, np.nan, np.float16), np.zeros(n, np.uint8), np.full(n, np.nan, np.float32)
    casts.interpret[1](x, i8, u8, h, e, p, n)
    assert i8.tolist() == [_rzi_sat(float(v), -128, 127) for v in x]
    assert u8.tolist() == [_rzi_sat(float(v), 0, 255) for v in x]
    # f32 -> f16: IEEE round to nearest even, overflow to +-inf (65520 is the first value that rounds up to inf)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(h, x.astype(np.float16))
    assert np.isinf(h[9]) and h[10] == -np.inf and h[11] == np.float16(65504)
    # f32 -> e4m3fn: encode(saturate=True); in range it is RNE, which ml_dtypes computes independently
    fin = np.isfinite(x) & (np.abs(x) <= 448)
    np.testing.assert_array_equal(e[fin], x[fin].astype(ml_dtypes.float8_e4m3fn).view(np.uint8))
    big = np.isfinite(x) & (np.abs(x) > 448)
    assert np.all(e[big] == np.where(x[big] > 0, 0x7E, 0xFE))  # saturates to +-448, never NaN
    np.testing.assert_array_equal(e, lowbit.dtype("e4m3fn").encode(x.astype(np.float64), saturate=True))
    # promotion: the sum is computed in f32 (one rounding of the exact f16 + f32 sum)
    with np.errstate(over="ignore", invalid="ignore"):
        want = (h.astype(np.float64) + x.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(p, want)


def test_promotion_table_is_what_the_dsl_builds() -> None:
    @lowbit.kernel
    def mixed(o_ptr: lowbit.ptr("int32"), n: lowbit.int32):
        u4 = lowbit.cast(lowbit.arange(0, 4), lowbit.uint4)
        s = u4 + lowbit.arange(0, 4)  # uint4 + int32 -> int32
        lowbit.store(lowbit.global_view(o_ptr, (n,)), s - 20, (0,))

    o = np.zeros(4, np.int32)
    mixed.interpret[1](o, 4)
    assert o.tolist() == [-20, -18, -16, -14]  # int32, not wrapped to 4 bits
    with pytest.raises(lowbit.errors.DSLError, match="cannot combine f16 and int32"):
        @lowbit.kernel
        def bad(o_ptr: lowbit.ptr("f32"), n: lowbit.int32):
            t = lowbit.zeros((4,), lowbit.f16) + lowbit.arange(0, 4)

        bad[1](np.zeros(4, np.float32), 4)
