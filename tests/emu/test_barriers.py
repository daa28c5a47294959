"""bar / barrier .sync, .arrive and .red (PTX ISA 9.7.13.1) on the SIMT machine.

References: the ISA's own producer/consumer example (bar.arrive + bar.sync on
two named barriers), numpy reductions of random predicates for bar.red, and
the ISA's arrival rule ("marks warps' arrival at barrier"; a thread count is
in threads, a multiple of the warp size) for partial warps and over-full
barriers.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.errors import EmulatorError, UnsupportedPTXError
from tests.emu.ptxkit import kernel, run

ITERS = 5

PRODUCER_CONSUMER = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    shr.u32 %r2, %r1, 5;
    and.b32 %r3, %r1, 31;
    shl.b32 %r4, %r3, 2;
    mov.u32 %r5, slot;
    add.s32 %r6, %r5, %r4;          // my slot
    add.s32 %r7, %r3, 1;
    and.b32 %r7, %r7, 31;
    shl.b32 %r7, %r7, 2;
    add.s32 %r8, %r5, %r7;          // the next lane's slot
    mov.u32 %r10, 0;
    mov.u32 %r13, 0;
    setp.ne.u32 %p1, %r2, 0;
    @%p1 bra CONSUMER;
PRODUCER:
    setp.eq.u32 %p2, %r10, 0;
    @%p2 bra FILL;
    bar.sync 1, 64;                 // wait until the consumer has read the slots
FILL:
    mad.lo.u32 %r11, %r10, 100, %r3;
    st.shared.u32 [%r6], %r11;
    bar.arrive 0, 64;               // announce, go on without waiting
    add.u32 %r10, %r10, 1;
    setp.lt.u32 %p3, %r10, {iters};
    @%p3 bra PRODUCER;
    ret;
CONSUMER:
    {consumer_wait}
    ld.shared.u32 %r12, [%r8];
    add.u32 %r13, %r13, %r12;
    bar.arrive 1, 64;
    add.u32 %r10, %r10, 1;
    setp.lt.u32 %p3, %r10, {iters};
    @%p3 bra CONSUMER;
    mul.wide.u32 %rd2, %r3, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r13;
"""
SLOT = ".shared .align 4 .b8 slot[128];"


def test_isa_producer_consumer_with_bar_arrive():
    ptx = kernel(PRODUCER_CONSUMER.format(iters=ITERS, consumer_wait="bar.sync 0, 64;"), ".param .u64 out",
                 shared=SLOT)
    out = np.zeros(32, np.uint32)
    st = run(ptx, 1, 64, [out])
    lanes = (np.arange(32) + 1) % 32
    want = sum(i * 100 + lanes for i in range(ITERS))
    np.testing.assert_array_equal(out, want)
    # barrier 0 completes ITERS times, barrier 1 ITERS-1 times (the last arrive finds no producer)
    assert st.barriers == 2 * ITERS - 1


def test_consumer_without_its_wait_is_caught():
    ptx = kernel(PRODUCER_CONSUMER.format(iters=ITERS, consumer_wait=""), ".param .u64 out", shared=SLOT)
    with pytest.raises(EmulatorError, match="race|undefined value|second time"):
        run(ptx, 1, 64, [np.zeros(32, np.uint32)])


RED = """
    ld.param.u64 %rd1, [inp];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mad.lo.u32 %r4, %r2, %r3, %r1;
    mul.wide.u32 %rd3, %r4, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.u32 %r5, [%rd4];
    setp.ne.u32 %p1, %r5, 0;
    bar.red.popc.u32 %r6, 3, %p1;
    barrier.red.and.aligned.pred %p2, 4, %p1;
    bar.cta.red.or.pred %p3, 5, {count}!%p1;
    selp.u32 %r7, 1, 0, %p2;
    selp.u32 %r8, 1, 0, %p3;
    mul.wide.u32 %rd5, %r4, 12;
    add.s64 %rd6, %rd2, %rd5;
    st.global.u32 [%rd6], %r6;
    st.global.u32 [%rd6+4], %r7;
    st.global.u32 [%rd6+8], %r8;
"""


@pytest.mark.parametrize("threads,count", [(80, None), (96, 96), (33, None)])
def test_bar_red_matches_numpy_per_block(threads, count):
    rng = np.random.default_rng(threads)
    blocks = 5
    p = (rng.random((blocks, threads)) < rng.random((blocks, 1))).astype(np.uint32)
    p[0] = 1  # all true
    p[1] = 0  # all false
    out = np.zeros((blocks, threads, 3), np.uint32)
    ptx = kernel(RED.format(count="" if count is None else f"{count}, "), ".param .u64 inp, .param .u64 out")
    st = run(ptx, blocks, threads, [p.copy(), out])
    pb = p.astype(bool)
    np.testing.assert_array_equal(out[:, :, 0], np.repeat(pb.sum(1, keepdims=True), threads, 1))
    np.testing.assert_array_equal(out[:, :, 1], np.repeat(pb.all(1, keepdims=True), threads, 1))
    np.testing.assert_array_equal(out[:, :, 2], np.repeat((~pb).any(1, keepdims=True), threads, 1))
    assert st.barriers == 3 * blocks


def test_bar_red_predicate_must_be_defined():
    ptx = kernel("    bar.red.popc.u32 %r1, 0, %p5;")
    with pytest.raises(EmulatorError, match="undefined value: bar.red predicate"):
        run(ptx, 1, 64, [])


def test_thread_count_counts_whole_warps():
    # 48 threads = a full warp and a half one; the half warp's arrival counts 32 ("marks warps' arrival")
    body = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    bar.sync 1, 64;
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], 9;
"""
    out = np.zeros(48, np.uint32)
    run(kernel(body, ".param .u64 out"), 2, 48, [out])
    assert (out == 9).all()


def test_more_warps_than_the_count_admits_raises():
    body = "    bar.sync 1, 32;"
    with pytest.raises(EmulatorError, match="2 warps arrived at barrier 1 whose thread count 32 admits 1"):
        run(kernel(body), 1, 64, [])


def test_arriving_twice_before_completion_raises():
    # warp 1 never comes; warp 0 arrives twice at a 64-thread barrier (on a GPU it would complete it alone)
    body = """
    mov.u32 %r1, %tid.x;
    setp.ge.u32 %p1, %r1, 32;
    @%p1 bra LATER;
    bar.arrive 2, 64;
    bar.arrive 2, 64;
    ret;
LATER:
    ret;
"""
    with pytest.raises(EmulatorError, match="arrive at barrier 2 a second time"):
        run(kernel(body), 1, 64, [])


def test_bar_arrive_needs_a_count_and_unknown_forms_are_refused():
    with pytest.raises(UnsupportedPTXError, match="needs a thread count"):
        run(kernel("    bar.arrive 0;"), 1, 32, [])
    with pytest.raises(UnsupportedPTXError, match="bar.red.xor.pred"):
        run(kernel("    bar.red.xor.pred %p1, 0, %p2;"), 1, 32, [])
