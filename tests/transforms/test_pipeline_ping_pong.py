"""Ping-pong unrolling of pipelined K loops that carry prefetched register tiles (issue 13).

A pipelined loop that prefetches small tiles (scales, zeros, layout 3's
plane words) one K step ahead is emitted as pairs of K steps -- the first
reads register set 0 while loading set 1, the second the reverse -- then
the odd step under an ``if``, so no prefetched word is copied at the back
edge.  What must hold:

* the PTX main loop holds two K steps (two ``cp.async.wait_group``, two
  ``bar.sync``) and no ``mov`` copies a word an ``ld.global`` of the loop
  loaded into a loop-carried register (main had one per carried word: 3 in
  example 04, 19 in wx_matmul uint4 layout 3) -- at most one is left, a
  zero-fill register LLVM's coalescer shares with a loaded word;
* a loop without prefetches is not unrolled (the cost rule);
* results equal numpy (and the interpreter) for 0-6 K steps at every
  pipeline depth 2-4, on a small pipelined kernel (example 04) and on
  wx_matmul layout 3 (odd and even trip counts, a short last step).
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

import lowbit
import lowbit.errors
from lowbit.compiler import compile_program
from lowbit.ir import ops as O
from lowbit.ir.rewrite import walk
from lowbit.toolchain import require_tool
from lowbit.transforms import Options, lower_vm
from tests.transforms.ptx_loops import main_loop, mix
from tests.transforms.test_pipeline import EX04, _ex03, _ex04, _run04

_LOAD = re.compile(r"ld\.global\S*\s+(\{[^}]*\}|%\w+)")
_MOV = re.compile(r"mov\.b(?:32|64)\s+(%\w+),\s*(%\w+);")


def carried_copies(ptx: str) -> list[str]:
    """The main loop's register-to-register ``mov`` from a register an ``ld.global`` of the loop writes into one
    no ``ld.global`` writes: the copy of a loaded word into a loop-carried register (a load's zero-fill ``mov``
    writes the load's own destination, so it is not one)."""
    loop = main_loop(ptx)
    loaded = {r for ln in loop if (m := _LOAD.search(ln)) for r in re.findall(r"%\w+", m.group(1))}
    return [ln for ln in loop if (m := _MOV.match(ln)) and m.group(2) in loaded and m.group(1) not in loaded]


def _wx_ptx(fmt: str) -> str:
    from benchmarks import bench_formats as bf

    m, n, k = bf.SHAPE
    return bf.build(bf.quantize(fmt, k, n, 0, 3), m, "f16", bf.DEFAULT_TILE).compiled.ptx


# ------------------------------------------------------------------------------------------------ the PTX


def test_the_copy_finder_sees_the_copies_of_a_single_step_loop() -> None:
    """The finder itself: a hand-written back edge that copies a loaded word (the form main's loops had)."""
    ptx = "\n".join([
        "$L__BB0_1:", "mov.b32 %r2, 0;", "ld.global.v2.b32 {%r2, %r3}, [%rd1];", "add.s32 %r9, %r1, %r5;",
        "mov.b32 %r1, %r2;", "mov.b32 %r5, %r3;", "mov.b32 %r6, %r9;", "@%p1 bra $L__BB0_1;",
    ])  # fmt: skip
    assert [ln.split()[1] for ln in carried_copies(ptx)] == ["%r1,", "%r5,"]


@pytest.mark.parametrize("stages", [2, 3, 4])
def test_a_loop_with_prefetches_runs_two_k_steps_without_copying_them(stages: int) -> None:
    ptx = compile_program(_ex04(stages), "sm_80").ptx
    assert len(carried_copies(ptx)) <= 1, carried_copies(ptx)  # one a carried word before (3)
    loop = mix(main_loop(ptx))
    assert loop["cp.async.wait_group"] == 2 and loop["bar.sync"] == 2 and loop["cp.async.commit_group"] == 2


def test_a_loop_without_prefetches_is_not_unrolled() -> None:
    ptx = compile_program(_ex03(3), "sm_80").ptx
    assert mix(main_loop(ptx))["cp.async.wait_group"] == 1
    sel = lower_vm(_ex03(3), Options("sm_80"))
    assert not any(isinstance(op, O.If) for op in sel.body)


def test_the_unrolled_loop_steps_two_k_steps_and_the_odd_one_follows() -> None:
    sel = lower_vm(_ex04(3), Options("sm_80"))
    top = [type(op).__name__ for op in sel.body]
    i = top.index("For")
    assert top[i + 1] == "If"  # the odd step, right after the pairs
    loop, odd = sel.body[i], sel.body[i + 1]
    waits = lambda body: sum(isinstance(op, O.WaitGroup) for op in walk(body))
    assert waits(loop.body) == 2 and waits(odd.then_body) == 1
    # the odd step is the last: it issues no copies and no prefetches
    assert not any(isinstance(op, O.CopyAsync | O.CommitGroup | O.LoadGlobal) for op in walk(odd.then_body))


@pytest.mark.parametrize("fmt", ["uint4", "uint7"])
def test_wx_matmul_layout_3_copies_no_prefetched_word_at_the_back_edge(fmt: str) -> None:
    require_tool("ptxas")
    ptx = _wx_ptx(fmt)
    assert len(carried_copies(ptx)) <= 1, carried_copies(ptx)  # 19 (uint4) and 30 (uint7) before
    assert mix(main_loop(ptx))["cp.async.wait_group"] == 2


# ------------------------------------------------------------------------------------------------ results


@pytest.mark.parametrize("stages", [2, 3, 4])
def test_every_trip_count_of_a_small_kernel_equals_numpy_and_the_interpreter(stages: int) -> None:
    require_tool("ptxas")
    for k in (0, 32, 64, 96, 128, 160, 70, 1):  # 0-5 K steps of 32, then 3 with a short last one, and 1 of 1
        _run04(stages, 37, 40, k)


def _wx_emulated(fmt: str, m: int, n: int, k: int) -> None:
    """wx_matmul as bench_formats builds it (num_stages 3: ``lowbit.ops`` launches one stage), every block on the
    emulator, against tests/ops/reference.py's float64 dequantise-then-matmul and its bound."""
    from benchmarks import bench_formats as bf
    from lowbit.compiler import run_on_emulator
    from tests.ops.reference import dequantize_reference, gemm_bound

    qw = bf.quantize(fmt, k, n, zlib.crc32(f"ping-pong/{fmt}/{k}".encode()), 3)
    a = np.random.default_rng(k).standard_normal((m, k))
    b = bf.build(qw, m, "f16", bf.DEFAULT_TILE, a)
    assert b.compiled.ptx.count("cp.async.wait_group") > 2  # pipelined (prologue, pairs, odd step)
    cx = b.constexprs
    run_on_emulator(b.compiled, (-(-m // cx["BM"]), -(-n // cx["BN"])), b.args, checks=True)
    ref, bound = gemm_bound(b.args["a_ptr"], dequantize_reference(qw), None)
    err = np.abs(np.asarray(b.out).astype(np.float64) - ref)
    assert np.isfinite(err).all() and (err <= bound).all(), float((err / bound).max())


@pytest.mark.parametrize("k", [100, 256, 300, 512, 600])  # 1, 2, 3, 4, 5 K steps of 128 (100, 300, 600: short)
def test_wx_matmul_layout_3_every_trip_count_matches_float64(k: int) -> None:
    require_tool("ptxas")
    _wx_emulated("uint7", 3, 40, k)


@pytest.mark.parametrize("k", [256, 384])  # an even and an odd trip count (2, 3 K steps) for a one-plane format
def test_wx_matmul_layout_3_uint4_matches_float64(k: int) -> None:
    require_tool("ptxas")
    _wx_emulated("uint4", 5, 136, k)


# ------------------------------------------------------------------------------------------------ a runtime range


@lowbit.kernel(num_warps=4)
def _from_k0(a_ptr: lowbit.ptr("f16"), w_ptr: lowbit.ptr("uint32"), s_ptr: lowbit.ptr("f16"),
             z_ptr: lowbit.ptr("uint8"), c_ptr: lowbit.ptr("f16"), M: lowbit.int32, N: lowbit.int32,
             K: lowbit.int32, K0: lowbit.int32, STEP: lowbit.int32, BM: lowbit.constexpr = 16,
             BN: lowbit.constexpr = 32, BK: lowbit.constexpr = 32):  # fmt: skip
    """Example 04's loop from a runtime K0 by a runtime STEP (= BK when launched right)."""
    m0 = lowbit.program_id(0) * BM
    n0 = lowbit.program_id(1) * BN
    a = lowbit.global_view(a_ptr, (M, K))
    w = lowbit.global_view(w_ptr, (lowbit.cdiv(K, 8), N))
    scales = lowbit.global_view(s_ptr, (lowbit.cdiv(K, 128), N))
    zeros = lowbit.global_view(z_ptr, (lowbit.cdiv(K, 128), N))
    acc = lowbit.zeros((BM, BN), lowbit.f32)
    for k in range(K0, K, STEP):
        ta = lowbit.load(a, (m0, k), (BM, BK))
        codes = lowbit.view(lowbit.load(w, (k // 8, n0), (BK // 8, BN)), lowbit.uint4, axis=0)
        s = lowbit.load(scales, (k // 128, n0), (1, BN))
        z = lowbit.load(zeros, (k // 128, n0), (1, BN))
        acc = lowbit.dot(ta, (lowbit.cast(codes, lowbit.f16) - lowbit.cast(z, lowbit.f16)) * s, acc)
    lowbit.store(lowbit.global_view(c_ptr, (M, N)), lowbit.cast(acc, lowbit.f16), (m0, n0))


@pytest.mark.parametrize("stages", [2, 3])
def test_a_runtime_start_and_step_take_every_trip_count_and_a_bad_step_still_traps(stages: int) -> None:
    require_tool("ptxas")
    m, n, k = 21, 40, 256
    rng = np.random.default_rng(stages)
    a = rng.standard_normal((m, k)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    s, z = np.ascontiguousarray(q.scales, np.float16), np.ascontiguousarray(q.zeros, np.uint8)
    g = np.arange(k) // 128
    wf = (q.codes.astype(np.float64) - q.zeros.astype(np.float64)[g]) * q.scales.astype(np.float64)[g]
    grid = (-(-m // 16), -(-n // 32))
    for k0 in (256, 224, 192, 160, 96, 0, 288):  # 0, 1, 2, 3, 5, 8 K steps, and a start past the end
        c = np.full((m, n), np.nan, np.float16)
        _from_k0[grid](a, words, s, z, c, m, n, k, k0, 32, num_stages=stages)
        a64 = a.astype(np.float64)[:, k0:]
        ref, mag = a64 @ wf[k0:], np.abs(a64) @ np.abs(wf[k0:])
        assert np.all(np.abs(c.astype(np.float64) - ref) <= EX04.tolerance(ref, mag, k)), k0
    prog = _from_k0.last_launch.program
    assert prog.num_stages == stages and mix(main_loop(compile_program(prog, "sm_80").ptx))["cp.async.wait_group"] == 2
    with pytest.raises(lowbit.errors.LowbitError, match="step must be positive"):
        _from_k0[grid](a, words, s, z, np.zeros((m, n), np.float16), m, n, k, 0, 0, num_stages=stages)
