"""Casts to codebooks, e8m0, unsigned and fnuz floats, from wide non-float codes, and f64/int -> small floats.

Every cast is checked bit-exactly against the interpreter (``dst.encode(x
as float64, saturate=True)``) on random values plus every code's value, the
midpoints between neighbouring codes (ties) and their neighbours one f64/f32
ulp away; f64 inputs include values that a rounding through f32 would
round twice.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.dtypes import codebook
from tests.transforms.harness import both

CB6 = codebook(np.sort(np.random.default_rng(66).standard_normal(64)).round(3))


@lowbit.kernel
def to_codes(x_ptr: lowbit.ptr("f64"), y_ptr: lowbit.ptr("f32"), i_ptr: lowbit.ptr("int32"), o_ptr: lowbit.ptr("f32"),
             n: lowbit.int32, T: lowbit.constexpr = lowbit.nf4):  # fmt: skip
    """f64 -> T, f32 -> T and int32 -> T, each decoded back to f32 (T -> f32 is exact for these formats)."""
    s = lowbit.program_id(0) * 128
    o = lowbit.global_view(o_ptr, (3, n))
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (s,), (128,))
    y = lowbit.load(lowbit.global_view(y_ptr, (n,)), (s,), (128,))
    i = lowbit.load(lowbit.global_view(i_ptr, (n,)), (s,), (128,))
    lowbit.store(o, lowbit.cast(lowbit.cast(x, T), lowbit.f32)[None, :], (0, s))
    lowbit.store(o, lowbit.cast(lowbit.cast(y, T), lowbit.f32)[None, :], (1, s))
    lowbit.store(o, lowbit.cast(lowbit.cast(i, T), lowbit.f32)[None, :], (2, s))


def _inputs(dt: lowbit.DType, rng: np.random.Generator, n: int) -> np.ndarray:
    v = np.asarray(dt.decode(np.arange(1 << dt.bits, dtype=np.uint64)), np.float64)
    v = np.unique(v[np.isfinite(v)])
    mids = (v[:-1] + v[1:]) / 2
    special = np.concatenate([v, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf),
                              [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-140, -(2.0**-140), 1e30, -1e30]])  # fmt: skip
    scale = np.abs(v).max() if v.size else 1.0
    x = rng.standard_normal(n) * scale * rng.choice([1e-3, 0.1, 0.5, 1, 2], n)
    x[: min(n, special.size)] = special[:n]
    try:
        dt.encode(np.array([np.nan]), saturate=True)
    except lowbit.LowbitError:  # no NaN code: the interpreter refuses NaN
        x = np.nan_to_num(x, nan=0.25)
    return x


TYPES = ["nf4", "e8m0", "ue4m3", "f8e4m3b8fnuz", "bipolar5", "e2m1", "e3m2", "e4m3fn", "e5m2", "cb6"]


@pytest.mark.parametrize("t", TYPES)
def test_casts_to_code_formats(t: str, cache: CompileCache) -> None:
    dt = CB6 if t == "cb6" else lowbit.dtype(t)
    rng = np.random.default_rng(len(t) * 31 + dt.bits)
    n = 1000
    x = _inputs(dt, rng, n)
    if t in ("e4m3fn", "e2m1", "e3m2", "e5m2"):  # f64 values one f32 rounding away from a tie: double-rounding traps
        v = np.asarray(dt.decode(np.arange(1 << dt.bits, dtype=np.uint64)), np.float64)
        v = np.unique(v[np.isfinite(v)])
        mids = (v[:-1] + v[1:]) / 2
        k = min(mids.size, 150)
        x[-k:] = (mids[:k] + np.sign(mids[:k]) * np.abs(mids[:k]) * 2.0**-30)
    with np.errstate(over="ignore"):
        y = x.astype(np.float32)
        i = np.clip(np.nan_to_num(x * 3), -(2**31), 2**31 - 1).astype(np.int32)
    i[:4] = [2**31 - 1, -(2**31), 16777217, -16777219]  # int -> f32 would round these
    o = np.full((3, n), np.nan, np.float32)
    [(want, got)] = both(to_codes, cache, (-(-n // 128),), [x, y, i, o, n], [3], T=dt)
    codes = np.asarray(dt.encode(x, saturate=True))
    ref = np.asarray(dt.decode(codes), np.float32)
    np.testing.assert_array_equal(got[0], ref)  # independent of the interpreter: encode on the exact f64
