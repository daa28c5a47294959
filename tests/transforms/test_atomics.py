"""Global atomics from the DSL: add (f32, f16, int32, uint32), max/min (int32, uint32), cas -- interpreter vs
emulator vs numpy.

Several blocks (and, through a stride-0 view, several elements of one tile)
update the same addresses, so only order-independent results are compared
across backends: integer sums, maxima, minima, and f32/f16 sums of small
integers (exact in any order).  Old values are compared where each address
is touched once.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.errors import DSLError
from lowbit.transforms import Options, lower_vm
from lowbit.ir import ops as O
from lowbit.ir.rewrite import walk
from tests.transforms.harness import both, compiled


@lowbit.kernel(num_warps=4)
def accumulate(x_ptr: lowbit.ptr("f32"), keep_ptr: lowbit.ptr("int32"), o_ptr: lowbit.ptr(T), R: lowbit.int32,
               C: lowbit.int32, c_off: lowbit.int32, T: lowbit.constexpr = lowbit.f32, KIND: lowbit.constexpr = "add",
               BR: lowbit.constexpr = 8, BC: lowbit.constexpr = 32):  # fmt: skip
    """Every block adds its (BR, BC) tile of x into the same (BR, C) window of o: grid axis 0 stacks them."""
    c0 = lowbit.program_id(1) * BC
    r0 = lowbit.program_id(0) * BR
    x = lowbit.cast(lowbit.load(lowbit.global_view(x_ptr, (R, C)), (r0, c0), (BR, BC)), T)
    keep = lowbit.load(lowbit.global_view(keep_ptr, (R, C)), (r0, c0), (BR, BC)) != 0
    o = lowbit.global_view(o_ptr, (BR, C + c_off))
    if KIND == "add":
        lowbit.atomic_add(o, x, (0, c0 + c_off), mask=keep)
    elif KIND == "max":
        lowbit.atomic_max(o, x, (0, c0 + c_off), mask=keep)
    else:
        lowbit.atomic_min(o, x, (0, c0 + c_off), mask=keep)


_NP = {"f32": np.float32, "f16": np.float16, "int32": np.int32, "uint32": np.uint32}
CASES = [("f32", "add", 0), ("f16", "add", 0), ("f16", "add", 1), ("int32", "add", 3), ("uint32", "add", 0),
         ("int32", "max", 0), ("int32", "min", 5), ("uint32", "max", 1), ("uint32", "min", 0)]  # fmt: skip


@pytest.mark.parametrize(("t", "kind", "c_off"), CASES, ids=[f"{k}-{t}-off{c}" for t, k, c in CASES])
def test_blocks_accumulate_into_one_window(t: str, kind: str, c_off: int, cache: CompileCache) -> None:
    rng = np.random.default_rng(len(t) * 7 + c_off)
    r, c, br = 29, 70, 8
    lo = 0 if t == "uint32" else -20
    x = rng.integers(lo, 20, (r, c)).astype(np.float32)  # small integers: sums exact in f16/f32 in any order
    keep = (rng.random((r, c)) < 0.8).astype(np.int32)
    o = rng.integers(lo, 20, (br, c + c_off)).astype(_NP[t])
    grid = (-(-r // br), -(-c // 32))
    [(_, got)] = both(accumulate, cache, grid, [x, keep, o, r, c, c_off], [2], T=lowbit.dtype(t), KIND=kind)
    want = o.astype(np.float64)
    for blk in range(grid[0]):
        xs = x[blk * br:(blk + 1) * br].astype(np.float64)
        ks = keep[blk * br:(blk + 1) * br].astype(bool)
        tgt = want[: xs.shape[0], c_off:]
        if kind == "add":
            tgt += np.where(ks, xs, 0)
        elif kind == "max":
            np.maximum(tgt, np.where(ks, xs, -np.inf), out=tgt)
        else:
            np.minimum(tgt, np.where(ks, xs, np.inf), out=tgt)
    np.testing.assert_array_equal(got.astype(np.float64), want)
    ck = compiled(accumulate, cache, T=lowbit.dtype(t), KIND=kind)
    ptx_t = {"f32": "f32", "f16": "f16", "int32": "s32", "uint32": "u32"}[t]
    if kind == "add" and t in ("int32", "uint32"):
        ptx_t = "[su]32"
    assert re.search(rf"atom\.global\.(add|max|min)(\.noftz)?\.{ptx_t}\b", ck.ptx), t
    if t == "f16":
        assert "atom.global.add.noftz.f16x2" in ck.ptx  # pairs of neighbours in one atomic where aligned


@lowbit.kernel(num_warps=4)
def swap(o_ptr: lowbit.ptr("int32"), old_ptr: lowbit.ptr("int32"), cmp_ptr: lowbit.ptr("int32"),
         val_ptr: lowbit.ptr("int32"), N: lowbit.int32, B: lowbit.constexpr = 64):  # fmt: skip
    n0 = lowbit.program_id(0) * B
    cmp = lowbit.load(lowbit.global_view(cmp_ptr, (N,)), (n0,), (B,))
    val = lowbit.load(lowbit.global_view(val_ptr, (N,)), (n0,), (B,))
    old = lowbit.atomic_cas(lowbit.global_view(o_ptr, (N,)), cmp, val, (n0,))
    lowbit.store(lowbit.global_view(old_ptr, (N,)), old, (n0,))


def test_compare_and_swap_returns_the_old_values(cache: CompileCache) -> None:
    rng = np.random.default_rng(9)
    n = 150
    o = rng.integers(-5, 5, n).astype(np.int32)
    cmp = np.where(rng.random(n) < 0.5, o, o + 1).astype(np.int32)
    val = rng.integers(100, 200, n).astype(np.int32)
    old = np.full(n, -99, np.int32)
    outs = both(swap, cache, (3,), [o, old, cmp, val, n], [0, 1])
    np.testing.assert_array_equal(outs[0][1], np.where(o == cmp, val, o))
    np.testing.assert_array_equal(outs[1][1], o)


@lowbit.kernel(num_warps=4)
def tiny(o_ptr: lowbit.ptr("f32"), old_ptr: lowbit.ptr("f32"), v: lowbit.f32):
    """A 4-element tile over 128 threads (a replicated layout): each element must be added once."""
    old = lowbit.atomic_add(lowbit.global_view(o_ptr, (4,)), lowbit.full((4,), v, lowbit.f32))
    lowbit.store(lowbit.global_view(old_ptr, (4,)), old)


def test_a_replicated_tile_adds_each_element_once_and_returns_its_old_value(cache: CompileCache) -> None:
    o = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    old = np.full(4, np.nan, np.float32)
    outs = both(tiny, cache, (2,), [o, old, np.float32(0.5)], [0, 1])
    np.testing.assert_array_equal(outs[0][1], o + 1.0)  # two blocks, one add each per element
    assert set(outs[1][1].tolist()) <= {1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5}
    vm = lower_vm(tiny.specialize(), Options("sm_80"))
    (at,) = [op for op in walk(vm.body) if isinstance(op, O.Atomic)]
    assert at.value.type.layout.is_injective and at.result is not None


@lowbit.kernel(num_warps=1)
def ftz(o_ptr: lowbit.ptr("f32"), v: lowbit.f32):
    lowbit.atomic_add(lowbit.global_view(o_ptr, (32,)), lowbit.full((32,), v, lowbit.f32))


def test_f32_adds_flush_subnormals_on_both_backends(cache: CompileCache) -> None:
    o = np.zeros(32, np.float32)
    o[:16] = 1e-39  # subnormal memory operands flush too
    outs = both(ftz, cache, (1,), [o, np.float32(1e-40)], [0])
    np.testing.assert_array_equal(outs[0][1], np.zeros(32, np.float32))
    ck = compiled(ftz, cache)
    assert "atom" in ck.ptx or "red" in ck.ptx
    vm = lower_vm(ftz.specialize(), Options("sm_80"))
    assert all(op.result is None for op in walk(vm.body) if isinstance(op, O.Atomic))  # unused old values dropped


@lowbit.kernel(num_warps=1)
def _bad_dtype(o_ptr: lowbit.ptr("f32")):
    lowbit.atomic_max(lowbit.global_view(o_ptr, (32,)), lowbit.zeros((32,), lowbit.f32))


@lowbit.kernel(num_warps=1)
def _bad_cast(o_ptr: lowbit.ptr("int32")):
    lowbit.atomic_add(lowbit.global_view(o_ptr, (32,)), lowbit.zeros((32,), lowbit.f32))


def test_unsupported_atomics_are_errors_at_the_line() -> None:
    with pytest.raises(DSLError, match=r"test_atomics.py:\d+:\d+: atomic_max takes int32, uint32 elements, got f32"):
        _bad_dtype.specialize()
    with pytest.raises(DSLError, match=r"atomic_add: a f32 tile into global<int32, 1>; use lowbit.cast"):
        _bad_cast.specialize()
