"""Stage-indexed shared buffers: ``lowbit.shared(dt, (stages, BK, BN))`` and ``buf[s]`` with a runtime ``s``.

A hand-written ``STAGES``-deep cp.async ring: the prologue fills stages
0..S-2, each step waits for its own stage (``wait(S - 2)``), reads it, and
refills the stage it just freed -- ``copy_async``, ``load`` and ``store``
all through ``buf[i % S]``.  The emulator's cp.async visibility check and
racecheck are on: waiting one group too few (``wait(S - 1)``) is named as
an early read.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit import emu
from lowbit.compiler.cache import CompileCache
from lowbit.errors import DSLError, EmulatorError
from lowbit.interp.values import InterpError
from lowbit.ir import ops as O
from lowbit.ir.printer import print_program
from lowbit.ir.parser import parse
from lowbit.layout import Swizzle
from lowbit.transforms import Options, lower_vm
from tests.transforms.harness import both, compiled


@lowbit.kernel(num_warps=4)
def ring(x_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f32"), R: lowbit.int32, K: lowbit.int32,
         S: lowbit.constexpr = 3, BR: lowbit.constexpr = 16, BK: lowbit.constexpr = 32,
         EARLY: lowbit.constexpr = 0, SW: lowbit.constexpr = None):  # fmt: skip
    """o[r, c] = sum over K steps of x[r, k*BK + c] (f32), the tiles streamed through an S-stage ring."""
    r0 = lowbit.program_id(0) * BR
    x = lowbit.global_view(x_ptr, (R, K))
    buf = lowbit.shared(lowbit.f16, (S, BR, BK), layout=SW)
    steps = lowbit.cdiv(K, BK)
    for s in lowbit.static_range(S - 1):  # prologue: one group per stage (empty groups past the end)
        if s < steps:
            lowbit.copy_async(buf[s], x, (r0, s * BK))
        lowbit.commit()
    acc = lowbit.zeros((BR, BK), lowbit.f32)
    for i in range(steps):
        lowbit.wait(S - 1 if EARLY else S - 2)  # this step's stage has landed
        lowbit.barrier()
        acc = acc + lowbit.cast(lowbit.load(buf[i % S], (0, 0), (BR, BK)), lowbit.f32)
        nxt = i + S - 1
        if nxt < steps:
            lowbit.copy_async(buf[nxt % S], x, (r0, nxt * BK))
        lowbit.commit()
    lowbit.wait(0)
    lowbit.store(lowbit.global_view(o_ptr, (R, BK)), acc, (r0, 0))


def _reference(x: np.ndarray, bk: int) -> np.ndarray:
    r, k = x.shape
    pad = np.zeros((r, -(-k // bk) * bk), np.float32)
    pad[:, :k] = x
    return pad.reshape(r, -1, bk).sum(axis=1, dtype=np.float32)


@pytest.mark.parametrize("stages", [2, 3, 4])
@pytest.mark.parametrize(("r", "k"), [(16, 256), (37, 136), (20, 24)])
def test_a_hand_written_ring_equals_the_interpreter(stages: int, r: int, k: int, cache: CompileCache) -> None:
    rng = np.random.default_rng(stages * 100 + k)
    x = rng.integers(-64, 64, (r, k)).astype(np.float16)  # small integers: every f32 sum is exact
    o = np.full((r, 32), np.nan, np.float32)
    grid = (-(-r // 16),)
    [(_, got)] = both(ring, cache, grid, [x, o, r, k], [1], S=stages)
    np.testing.assert_array_equal(got, _reference(x, 32))


@pytest.mark.parametrize("sw", [Swizzle(2, 4, 2), Swizzle(3, 4, 4), Swizzle(1, 3, 7)], ids=str)
def test_a_swizzled_ring_equals_the_interpreter(sw: Swizzle, cache: CompileCache) -> None:
    """Stages are 1 KiB: Sw<2,4,2> (period 256) swizzles each stage alike; Sw<3,4,4> and Sw<1,3,7> (periods 2 and
    2 KiB) mix the stage offset into the XOR, which the lowering then applies at run time."""
    rng = np.random.default_rng(8)
    x = rng.integers(-64, 64, (37, 136)).astype(np.float16)
    o = np.full((37, 32), np.nan, np.float32)
    [(_, got)] = both(ring, cache, (3,), [x, o, 37, 136], [1], S=3, SW=sw)
    np.testing.assert_array_equal(got, _reference(x, 32))


def test_the_ring_copies_16_bytes_into_views_and_waits_for_one_stage(cache: CompileCache) -> None:
    ck = compiled(ring, cache, S=3)
    assert "cp.async.cg.shared.global [" in ck.ptx and re.search(r"cp\.async\.wait_group\s+1;", ck.ptx)
    vm = print_program(lower_vm(ring.specialize(S=3), Options("sm_80")))
    assert "shared_view(%" in vm and "alloc_shared() {offset=0} : shared<f16, [3, 16, 32]" in vm
    assert ck.shared_bytes == 3 * 16 * 32 * 2


def test_waiting_one_group_too_few_is_named_as_an_early_read(cache: CompileCache) -> None:
    ck = compiled(ring, cache, S=3, EARLY=1)
    x = np.ones((16, 256), np.float16)
    o = np.zeros((16, 32), np.float32)
    with pytest.raises(EmulatorError, match="cp.async"):
        emu.launch(ck.ptx, ck.kernel_name, (1,), ck.threads_per_block, [x, o, np.int32(16), np.int32(256)])


def test_views_print_parse_and_keep_the_buffers_layout() -> None:
    @lowbit.kernel(num_warps=1)
    def k(x_ptr: lowbit.ptr("f32"), s: lowbit.int32):
        buf = lowbit.shared(lowbit.f32, (2, 4, 8, 32), layout=lowbit.layout.Swizzle(3, 4, 3))
        v = buf[s, 1]
        lowbit.store(v, lowbit.zeros((8, 32), lowbit.f32))

    text = print_program(k.specialize())
    assert "shared_view(%0, [%s, 1]) : shared<f32, [8, 32], `Sw<3,4,3>`>" in text
    assert print_program(parse(text)) == text


@lowbit.kernel(num_warps=1)
def _sliced(x_ptr: lowbit.ptr("f32"), s: lowbit.int32):
    buf = lowbit.shared(lowbit.f32, (3, 4, 32))
    v = buf[0:2]  # noqa: F841


@lowbit.kernel(num_warps=1)
def _outside(x_ptr: lowbit.ptr("f32"), s: lowbit.int32):
    buf = lowbit.shared(lowbit.f32, (3, 4, 32))
    v = buf[3]  # noqa: F841


@lowbit.kernel(num_warps=1)
def _too_many(x_ptr: lowbit.ptr("f32"), s: lowbit.int32):
    buf = lowbit.shared(lowbit.f32, (3, 4, 32))
    v = buf[s, 0, 1]  # noqa: F841


@lowbit.kernel(num_warps=1)
def _whole_ring(x_ptr: lowbit.ptr("f32"), s: lowbit.int32):
    buf = lowbit.shared(lowbit.f32, (3, 4, 32))
    lowbit.copy_async(buf, lowbit.global_view(x_ptr, (4, 32)))


@lowbit.kernel(num_warps=1)
def _free_view(x_ptr: lowbit.ptr("f32"), s: lowbit.int32):
    buf = lowbit.shared(lowbit.f32, (3, 4, 32))
    lowbit.free(buf[s])


@pytest.mark.parametrize(("kernel", "message"), [
    (_free_view, r"free: free the buffer itself, not a view of it"),
    (_sliced, r"test_shared_stages.py:\d+:\d+: a shared buffer is indexed by scalars of its leading dimensions"),
    (_outside, r"index 3 is outside dimension 0 of extent 3"),
    (_too_many, r"3 indices for a rank-3 shared buffer"),
    (_whole_ring, r"a rank-3 buffer from a rank-2 view; index a stage first \(buf\[s\]\)"),
])  # fmt: skip
def test_bad_stage_indices_are_errors_at_the_line(kernel, message: str) -> None:  # noqa: ANN001
    with pytest.raises(DSLError, match=message):
        kernel.specialize()


def test_the_interpreter_refuses_a_stage_outside_the_buffer() -> None:
    @lowbit.kernel(num_warps=1)
    def k(o_ptr: lowbit.ptr("f32"), s: lowbit.int32):
        buf = lowbit.shared(lowbit.f32, (3, 4, 32))
        lowbit.store(buf[s], lowbit.zeros((4, 32), lowbit.f32))

    with pytest.raises(InterpError, match=r"index \[3\] is outside the leading extents \[3\]"):
        k.interpret[1](np.zeros(1, np.float32), 3)
    assert isinstance(next(op for op in k.specialize().body if isinstance(op, O.SharedView)), O.SharedView)
