"""reduce through in-thread slots and warp butterflies (shfl.bfly), against the interpreter.

Tile shapes cover: the reduced axis inside a group of lanes (8, 32 lanes),
extents that split into lanes and slots (24 = 8 x 3, 12 = 4 x 3,
64 = 32 x 2), a strided axis (axis 0 of [16, 2]), tiles smaller than the
block (replicated layouts), larger than the block (several slots), an odd
extent spread over padded lanes (33: phantom elements left out of the
reduction), and an axis whose inferred layout spans warps (axis 0 of
[6, 32]: instruction selection converts it into a layout that keeps the axis
inside warps, explicitly, through shared memory).  Inputs are smaller than the tiles (masked tails read 0).
Integers and max/min are bit-exact; float sums are held to
``2 (N-1) u sum|x|`` (see ``_lower_compute._reduce``): both sides round
each addition in the element type, in different orders.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from tests.transforms.harness import both, compiled


@lowbit.kernel
def red_i32(x_ptr: lowbit.ptr("int32"), o_ptr: lowbit.ptr("int32"), R: lowbit.int32, C: lowbit.int32,
            BR: lowbit.constexpr = 8, BC: lowbit.constexpr = 8, AX: lowbit.constexpr = 1):  # fmt: skip
    x = lowbit.load(lowbit.global_view(x_ptr, (R, C)), (0, 0), (BR, BC))
    o = lowbit.global_view(o_ptr, (3 * BR, BC))
    lowbit.store(o, lowbit.reduce(x, AX, "sum", keepdims=True), (0, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "max", keepdims=True), (BR, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "min", keepdims=True), (2 * BR, 0))


@lowbit.kernel
def red_f32(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), R: lowbit.int32, C: lowbit.int32,
            BR: lowbit.constexpr = 8, BC: lowbit.constexpr = 8, AX: lowbit.constexpr = 1):  # fmt: skip
    x = lowbit.load(lowbit.global_view(x_ptr, (R, C)), (0, 0), (BR, BC))
    o = lowbit.global_view(o_ptr, (3 * BR, BC))
    lowbit.store(o, lowbit.reduce(x, AX, "sum", keepdims=True), (0, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "max", keepdims=True), (BR, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "min", keepdims=True), (2 * BR, 0))


@lowbit.kernel
def red_f16(x_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), R: lowbit.int32, C: lowbit.int32,
            BR: lowbit.constexpr = 8, BC: lowbit.constexpr = 8, AX: lowbit.constexpr = 1):  # fmt: skip
    x = lowbit.load(lowbit.global_view(x_ptr, (R, C)), (0, 0), (BR, BC))
    o = lowbit.global_view(o_ptr, (3 * BR, BC))
    lowbit.store(o, lowbit.reduce(x, AX, "sum", keepdims=True), (0, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "max", keepdims=True), (BR, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "min", keepdims=True), (2 * BR, 0))


@lowbit.kernel
def red_i64(x_ptr: lowbit.ptr("int64"), o_ptr: lowbit.ptr("int64"), R: lowbit.int32, C: lowbit.int32,
            BR: lowbit.constexpr = 8, BC: lowbit.constexpr = 8, AX: lowbit.constexpr = 1):  # fmt: skip
    """64-bit values cross the shuffles as two 32-bit halves."""
    x = lowbit.load(lowbit.global_view(x_ptr, (R, C)), (0, 0), (BR, BC))
    o = lowbit.global_view(o_ptr, (3 * BR, BC))
    lowbit.store(o, lowbit.reduce(x, AX, "sum", keepdims=True), (0, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "max", keepdims=True), (BR, 0))
    lowbit.store(o, lowbit.reduce(x, AX, "min", keepdims=True), (2 * BR, 0))


# (BR, BC, AX, shuffled?)
SHAPES = [(8, 8, 1, True), (5, 24, 1, True), (3, 64, 1, True), (16, 2, 0, True), (4, 12, 1, True),
          (40, 4, 1, True), (7, 33, 1, True), (6, 32, 0, True)]  # fmt: skip
KERNELS = {"int32": (red_i32, np.int32), "f32": (red_f32, np.float32), "f16": (red_f16, np.float16),
           "int64": (red_i64, np.int64)}
ULP = {"f32": 2.0**-24, "f16": 2.0**-11}


@pytest.mark.parametrize("t", list(KERNELS))
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{r}x{c}ax{a}" for r, c, a, _ in SHAPES])
def test_reduce_matches_the_interpreter(t: str, shape: tuple[int, int, int, bool], cache: CompileCache) -> None:
    br, bc, ax, shuffled = shape
    kernel, npt = KERNELS[t]
    cx = {"BR": br, "BC": bc, "AX": ax}
    ck = compiled(kernel, cache, **cx)
    assert ("shfl.sync.bfly" in ck.ptx) == shuffled
    rng = np.random.default_rng(br * 100 + bc + ax)
    r, c = max(1, br - 1), max(1, bc - 1)  # odd tails: the last row and column read 0
    if t == "int32":
        x = rng.integers(-(2**31), 2**31, (r, c)).astype(np.int32)  # sums wrap
    elif t == "int64":
        x = rng.integers(-(2**62), 2**62, (r, c)).astype(np.int64)
    else:
        x = (rng.standard_normal((r, c)) * 4).astype(npt)
    is_int = t.startswith("int")
    o = np.full((3 * br, bc), -7 if is_int else np.nan, npt)
    [(want, got)] = both(kernel, cache, (1,), [x, o, r, c], [1], exact=is_int, atol=1e30, **cx)
    xp = np.zeros((br, bc), object if is_int else np.float64)
    xp[:r, :c] = [[int(v) if is_int else float(v) for v in row] for row in x]
    if is_int:  # independent reference: exact sums wrapped to the width, max/min
        w = 2 ** (np.dtype(npt).itemsize * 8)
        wrap = ((xp.sum(axis=ax, keepdims=True) + w // 2) % w - w // 2).astype(npt)
        for k, ref in enumerate((wrap, xp.max(axis=ax, keepdims=True), xp.min(axis=ax, keepdims=True))):
            res = got[k * br:(k + 1) * br]
            np.testing.assert_array_equal(res[:1] if ax == 0 else res[:, :1], ref.astype(npt))
        return
    keep = (slice(0, 1), slice(None)) if ax == 0 else (slice(None), slice(0, 1))
    for k in range(3):  # sentinels outside the results survive
        assert np.isnan(np.delete(got[k * br:(k + 1) * br], 0, axis=ax)).all()
    np.testing.assert_array_equal(got[br:], want[br:])  # max, min: exact
    n = (br, bc)[ax]
    bound = 2 * (n - 1) * ULP[t] * np.abs(xp).sum(axis=ax, keepdims=True)
    err = np.abs(got[:br][keep].astype(np.float64) - want[:br][keep].astype(np.float64))
    assert (err <= bound).all(), (err.max(), bound.min())
    assert (np.abs(got[:br][keep] - xp.sum(axis=ax, keepdims=True)) <= bound / 2).all()  # vs the exact sum
