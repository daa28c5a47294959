"""The shared-memory planner: lifetimes and offsets, inserted barriers, the budget, dynamic shared memory.

Kernels run on the interpreter and, compiled, on the emulator with its
racecheck and cp.async checks on (``run_on_emulator`` defaults): buffers
whose lifetimes overlap must not share bytes (the values would be wrong),
and a buffer placed over another one's bytes must not be written while the
other is still read (the racecheck would name it).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit import emu
from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import compile_program
from lowbit.errors import CompileError, EmulatorError
from lowbit.ir import ops as O
from lowbit.ir.rewrite import walk
from lowbit.transforms import Options, infer_layouts, lower_vm, plan_shared, select_instructions, specialize
from tests.transforms.harness import both, compiled


def _selected(prog, arch: str = "sm_80"):  # noqa: ANN001, ANN202
    for p in (specialize, infer_layouts, select_instructions):
        prog = p.run(prog, Options(arch))
    return prog


def _plans(kernel, arch: str = "sm_80", **cx):  # noqa: ANN001, ANN202
    return {p.name: p for p in plan_shared.plan(_selected(kernel.specialize(**cx), arch), Options(arch))}


@lowbit.kernel(num_warps=4)
def phases(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), N: lowbit.int32, R: lowbit.constexpr = 32):
    """Three phases through shared memory; a and c never live together, b overlaps both."""
    x = lowbit.global_view(x_ptr, (R, N))
    o = lowbit.global_view(o_ptr, (3, R, N))
    t = lowbit.load(x, (0, 0), (R, 32))
    a = lowbit.shared(lowbit.f32, (R, 32))
    lowbit.store(a, t)
    lowbit.barrier()
    ta = lowbit.load(a, (0, 0), (R, 32), layout=lowbit.layout.product(lowbit.layout.spatial(32, 4),
                                                                       lowbit.layout.local(1, 8)))
    b = lowbit.shared(lowbit.f32, (R, 32))
    lowbit.store(b, ta * 2.0)
    lowbit.free(a)
    lowbit.barrier()
    tb = lowbit.load(b, (0, 0), (R, 32))
    c = lowbit.shared(lowbit.f32, (R, 32))  # may reuse a's bytes: the planner must fence a's readers off
    lowbit.store(c, tb + 1.0)
    lowbit.free(b)
    lowbit.barrier()
    tc = lowbit.load(c, (0, 0), (R, 32), layout=lowbit.layout.product(lowbit.layout.spatial(32, 4),
                                                                       lowbit.layout.local(1, 8)))
    lowbit.free(c)
    lowbit.store(o, lowbit.reshape(ta, (1, R, 32)), (0, 0, 0))
    lowbit.store(o, lowbit.reshape(tb, (1, R, 32)), (1, 0, 0))
    lowbit.store(o, lowbit.reshape(tc, (1, R, 32)), (2, 0, 0))


def test_buffers_share_bytes_only_when_never_live_together(cache: CompileCache) -> None:
    plans = _plans(phases)
    a, b, c = plans["a"], plans["b"], plans["c"]
    assert (a.size, b.size, c.size) == (4096, 4096, 4096)
    disjoint = lambda p, q: p.offset + p.size <= q.offset or q.offset + q.size <= p.offset  # noqa: E731
    assert disjoint(a, b) and disjoint(b, c)  # live together
    assert a.offset == c.offset  # a is freed before c is allocated: c takes its bytes
    assert all(p.offset % plan_shared.ALIGN == 0 for p in plans.values())
    assert a.end < c.start and a.start <= b.start <= a.end
    ck = compiled(phases, cache)
    assert re.search(r"\.shared \.align (16|128) \.b8 smem\[8192\]", ck.ptx)  # two buffers' worth, not three
    rng = np.random.default_rng(5)
    x = rng.standard_normal((32, 40)).astype(np.float32)
    o = np.full((3, 32, 40), np.nan, np.float32)
    [(want, got)] = both(phases, cache, (1,), [x, o, 40], [1])
    np.testing.assert_array_equal(got[2, :, :32], x[:, :32] * 2 + 1)


def test_a_buffer_placed_over_a_dead_one_is_fenced_by_a_barrier(cache: CompileCache, monkeypatch) -> None:
    """Without the planner's barrier before c's first store, warps still reading a race with it."""

    @lowbit.kernel(num_warps=4)
    def reuse(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32")):
        x = lowbit.global_view(x_ptr, (32, 32))
        o = lowbit.global_view(o_ptr, (2, 32, 32))
        a = lowbit.shared(lowbit.f32, (32, 32))
        lowbit.store(a, lowbit.load(x, (0, 0), (32, 32)))
        lowbit.barrier()
        ta = lowbit.load(a, (0, 0), (32, 32), layout=lowbit.layout.product(lowbit.layout.spatial(32, 4),
                                                                           lowbit.layout.local(1, 8)))
        lowbit.free(a)
        c = lowbit.shared(lowbit.f32, (32, 32))  # no barrier written here: other warps still read a's bytes
        lowbit.store(c, lowbit.load(x, (0, 0), (32, 32)) + 1.0)  # written in another thread mapping
        lowbit.barrier()
        tc = lowbit.load(c, (0, 0), (32, 32))
        lowbit.store(o, lowbit.reshape(ta, (1, 32, 32)), (0, 0, 0))
        lowbit.store(o, lowbit.reshape(tc, (1, 32, 32)), (1, 0, 0))

    vm = lower_vm(reuse.specialize(), Options("sm_80"))
    ops = list(walk(vm.body))
    allocs = [op for op in ops if isinstance(op, O.AllocShared)]
    assert [a.offset for a in allocs] == [0, 0]
    i = ops.index(allocs[1])
    assert isinstance(ops[i - 1], O.Barrier)  # inserted by the planner
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 32)).astype(np.float32)
    o = np.full((2, 32, 32), np.nan, np.float32)
    both(reuse, cache, (1,), [x, o], [1])
    # the same plan without the inserted barrier: the emulator's racecheck names the race
    monkeypatch.setattr(plan_shared, "_needs_barrier", lambda prog, plans, life: set())
    ck = compile_program(reuse.specialize(), "sm_80", cache=CompileCache(cache.root / "nobarrier"))
    assert ck.ptx.count("bar.sync") == 2
    with pytest.raises(EmulatorError, match="race: .*warp 1 writes shared address .* which warp 0 accessed"):
        emu.launch(ck.ptx, ck.kernel_name, (1,), ck.threads_per_block, [x.copy(), o.copy()])  # its own PTX


def _big(kb_a: int, kb_b: int, overlap: bool):  # noqa: ANN202
    @lowbit.kernel(num_warps=4)
    def big(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), A: lowbit.constexpr = kb_a * 256,
            B: lowbit.constexpr = kb_b * 256, BOTH: lowbit.constexpr = overlap):  # fmt: skip
        x = lowbit.global_view(x_ptr, (A,))
        o = lowbit.global_view(o_ptr, (A,))
        stage = lowbit.shared(lowbit.f32, (A,))
        lowbit.copy_async(stage, x, (0,))
        lowbit.commit()
        lowbit.wait(0)
        lowbit.barrier()
        t = lowbit.load(stage, (0,), (512,))
        if not BOTH:
            lowbit.free(stage)
        spill = lowbit.shared(lowbit.f32, (B,))
        lowbit.store(spill, t * 3.0, (B - 512,))
        lowbit.barrier()
        u = lowbit.load(spill, (B - 512,), (512,))
        if BOTH:
            u = u + lowbit.load(stage, (A - 512,), (512,))
        lowbit.store(o, u, (0,))

    return big


def test_over_budget_is_a_compile_error_naming_each_buffer() -> None:
    kernel = _big(96, 96, True)  # 192 KiB live at once: sm_80 allows 163 KiB per block
    with pytest.raises(CompileError) as exc:
        lower_vm(kernel.specialize(), Options("sm_80"))
    msg = str(exc.value)
    assert "196608 bytes of shared memory" in msg and "166912 bytes a block may have on sm_80" in msg
    assert re.search(r"stage: shared<f32, \[24576\]> 98304 bytes \(line \d+\) \[live at the peak\]", msg), msg
    assert re.search(r"spill: shared<f32, \[24576\]> 98304 bytes \(line \d+\) \[live at the peak\]", msg), msg
    # the same buffers one after the other fit (they share bytes), and sm_90 has room for both at once
    lower_vm(_big(96, 96, False).specialize(), Options("sm_80"))
    lower_vm(kernel.specialize(), Options("sm_90"))


def test_96_kib_on_sm80_takes_dynamic_shared_memory_and_records_the_opt_in(cache: CompileCache) -> None:
    kernel = _big(64, 32, True)  # 96 KiB live at once
    ck = compiled(kernel, cache)
    assert ck.dynamic_shared_bytes == 96 * 1024 and ck.dynamic_shared == 96 * 1024 and ck.shared_bytes == 0
    assert ck.max_dynamic_shared == 96 * 1024  # what the runtime sets as MAX_DYNAMIC_SHARED_SIZE_BYTES
    assert re.search(r"\.extern \.shared \.align 16 \.b8 smem\[\];", ck.ptx), ck.ptx[:400]
    assert "shared @smem dynamic size 98304 align 16" in ck.simt
    rng = np.random.default_rng(2)
    n = 64 * 256
    x = rng.standard_normal(n).astype(np.float32)
    o = np.full(n, np.nan, np.float32)
    [(want, got)] = both(kernel, cache, (1,), [x, o], [1])
    np.testing.assert_array_equal(got[:512], x[:512] * 3 + x[n - 512:])
    small = compiled(_big(16, 16, True), cache)  # 32 KiB: static, no opt-in
    assert small.dynamic_shared_bytes == 0 and small.max_dynamic_shared is None and small.shared_bytes == 32768


def test_the_runtime_sets_the_opt_in_on_the_stand_in_driver() -> None:
    from lowbit import runtime
    from lowbit.runtime.driver import use_driver
    from tests.runtime.fake_driver import FakeDriver

    kernel = _big(64, 32, True)
    fake = FakeDriver(cc=(8, 0))
    with use_driver(fake):
        ck = lowbit.compile(kernel, arch="sm_80")
        n = 64 * 256
        x = np.random.default_rng(4).standard_normal(n).astype(np.float32)
        dx, do = runtime.DeviceArray.from_numpy(x), runtime.DeviceArray.from_numpy(np.zeros(n, np.float32))
        runtime.load(ck)((1,), dx, do)
        assert "cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES=98304)" in fake.calls
        assert fake.launches[-1]["smem"] == 98304
        np.testing.assert_array_equal(do.numpy()[:512], x[:512] * 3 + x[n - 512:])


def test_every_planned_offset_is_aligned_and_swizzled_buffers_take_128() -> None:
    @lowbit.kernel(num_warps=4)
    def mixed(o_ptr: lowbit.ptr("f16")):
        a = lowbit.shared(lowbit.uint8, (3,))  # 3 bytes: rounded up to 16
        s = lowbit.shared(lowbit.f16, (8, 64), layout=lowbit.layout.Swizzle(3, 4, 3))
        lowbit.store(a, lowbit.full((3,), 1, lowbit.uint8))
        lowbit.store(s, lowbit.full((8, 64), 2.0, lowbit.f16))
        lowbit.barrier()
        lowbit.store(lowbit.global_view(o_ptr, (8, 64)), lowbit.load(s, (0, 0), (8, 64)), (0, 0))

    plans = _plans(mixed)
    assert plans["a"].size == 16 and plans["s"].size == 1024 and plans["s"].offset % 128 == 0
    assert plan_shared.storage(lower_vm(mixed.specialize(), Options("sm_80")), "sm_80").align == 128
