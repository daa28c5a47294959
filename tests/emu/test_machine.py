"""The SIMT machine: divergence and reconvergence, independent blocks, collectives, atomics, memory spaces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.arch import banks
from lowbit.emu.stats import warp_wavefronts
from tests.emu.ptxkit import i32, kernel, run

OUT = ".param .u64 out"
PROLOGUE = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mad.lo.s32 %r4, %r2, %r3, %r1;
    mul.wide.u32 %rd2, %r4, 4;
    add.s64 %rd3, %rd1, %rd2;
"""


def test_nested_divergent_loop_matches_python():
    body = PROLOGUE + """
    rem.u32 %r5, %r4, 11;
    mov.u32 %r6, 0;
    mov.u32 %r7, 0;
LOOP:
    setp.ge.u32 %p1, %r7, %r5;
    @%p1 bra DONE;
    and.b32 %r8, %r7, 1;
    setp.eq.u32 %p2, %r8, 0;
    @%p2 bra EVEN;
    add.s32 %r6, %r6, 100;
    bra NEXT;
EVEN:
    mul.lo.s32 %r6, %r6, 3;
    add.s32 %r6, %r6, 1;
NEXT:
    add.s32 %r7, %r7, 1;
    bra LOOP;
DONE:
    st.global.u32 [%rd3], %r6;
    ret;
"""
    out = np.zeros(3 * 80, np.uint32)
    stats = run(kernel(body, OUT), 3, 80, [out])  # 80: a partial last warp

    def ref(k):
        v = 0
        for i in range(k):
            v = v * 3 + 1 if i % 2 == 0 else v + 100
        return v
    np.testing.assert_array_equal(out, [ref(t % 11) for t in range(240)])
    assert stats.by_opcode["st"] == 240


def test_partial_exit_then_barrier_and_shared_reduction():
    body = PROLOGUE + """
    mov.u32 %r10, smem;
    shl.b32 %r11, %r1, 2;
    add.s32 %r12, %r10, %r11;
    st.shared.u32 [%r12], %r4;
    bar.sync 0;
    setp.ne.u32 %p1, %r1, 0;
    @%p1 ret;
    mov.u32 %r13, 0;
    mov.u32 %r14, 0;
SUM:
    shl.b32 %r15, %r14, 2;
    add.s32 %r16, %r10, %r15;
    ld.shared.u32 %r17, [%r16];
    add.s32 %r13, %r13, %r17;
    add.s32 %r14, %r14, 1;
    setp.lt.u32 %p2, %r14, %r3;
    @%p2 bra SUM;
    mul.wide.u32 %rd4, %r2, 4;
    add.s64 %rd5, %rd1, %rd4;
    st.global.u32 [%rd5], %r13;
    ret;
"""
    out = np.zeros(5, np.uint32)
    run(kernel(body, OUT, shared=".shared .align 4 .b8 smem[1024];"), 5, 96, [out])
    np.testing.assert_array_equal(out, np.arange(480).reshape(5, 96).sum(1))


def test_blocks_waiting_on_an_inter_block_flag_are_scheduled_independently():
    # block b waits until flag == b, then bumps it: a chain through every block in reverse launch order
    body = """
    ld.param.u64 %rd1, [flag];
    ld.param.u64 %rd2, [order];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r9, %nctaid.x;
    sub.s32 %r3, %r9, 1;
    sub.s32 %r3, %r3, %r2;
    setp.ne.u32 %p1, %r1, 0;
    @%p1 bra DONE;
SPIN:
    ld.volatile.global.u32 %r4, [%rd1];
    setp.ne.u32 %p2, %r4, %r3;
    @%p2 bra SPIN;
    atom.global.add.u32 %r5, [%rd1+4], 1;
    mul.wide.u32 %rd3, %r5, 4;
    add.s64 %rd4, %rd2, %rd3;
    st.global.u32 [%rd4], %r2;
    add.s32 %r6, %r4, 1;
    st.volatile.global.u32 [%rd1], %r6;
DONE:
    ret;
"""
    flag, order = np.zeros(2, np.uint32), np.zeros(6, np.uint32)
    run(kernel(body, ".param .u64 flag, .param .u64 order"), 6, 64, [flag, order])
    np.testing.assert_array_equal(order, np.arange(6)[::-1])


@pytest.mark.parametrize("mode, b, c", [("idx", 5, 31), ("up", 3, 0), ("down", 2, 31), ("bfly", 6, 31),
                                         ("down", 1, 0x1f0f - 0x1000), ("idx", 3, 0x181f)])
def test_shfl_modes_match_the_isa_pseudocode(mode, b, c):
    body = PROLOGUE + f"""
    mul.lo.s32 %r5, %r4, 7;
    shfl.sync.{mode}.b32 %r6|%p1, %r5, {b}, {c}, -1;
    selp.u32 %r7, 1, 0, %p1;
    shl.b32 %r8, %r7, 31;
    or.b32 %r9, %r6, %r8;
    st.global.u32 [%rd3], %r9;
    ret;
"""
    out = np.zeros(64, np.uint32)
    run(kernel(body, OUT), 2, 32, [out])
    want = []
    for t in range(64):
        lane, seg = t % 32, (c >> 8) & 31
        maxl = (lane & seg) | ((c & 31) & ~seg)
        j, ok = {"up": (lane - b, lane - b >= maxl), "down": (lane + b, lane + b <= maxl),
                 "bfly": (lane ^ b, (lane ^ b) <= maxl)}.get(mode, (None, None))
        if mode == "idx":
            j = (lane & seg) | (b & ~seg)
            ok = j <= maxl
        j = j if ok else lane
        want.append(((t - lane + j) * 7) | (int(ok) << 31))
    np.testing.assert_array_equal(out, want)


def test_vote_ballot_redux_activemask():
    body = (PROLOGUE + """
    and.b32 %r5, %r4, 5;
    setp.ne.u32 %p1, %r5, 0;
    vote.sync.ballot.b32 %r6, %p1, -1;
    vote.sync.all.pred %p2, %p1, -1;
    vote.sync.any.pred %p3, %p1, -1;
    redux.sync.add.u32 %r7, %r4, -1;
    redux.sync.max.s32 %r8, %r5, -1;
    activemask.b32 %r9;
    selp.u32 %r10, 1, 0, %p2;
    selp.u32 %r11, 2, 0, %p3;
    add.s32 %r12, %r10, %r11;
    st.global.v4.u32 [%rd3+0], {%r6, %r7, %r8, %r12};
    st.global.u32 [%rd3+16], %r9;
    ret;
""").replace("mul.wide.u32 %rd2, %r4, 4;", "mul.wide.u32 %rd2, %r4, 32;")
    out = np.zeros((64, 8), np.uint32)
    run(kernel(body, OUT), 2, 32, [out])
    t = np.arange(64)
    p = (t & 5) != 0
    ballot = [int(sum(int(p[w * 32 + i]) << i for i in range(32))) for w in range(2)]
    np.testing.assert_array_equal(out[:, 0], np.repeat(ballot, 32))
    np.testing.assert_array_equal(out[:, 1], np.repeat(t.reshape(2, 32).sum(1), 32))
    np.testing.assert_array_equal(out[:, 2], 5)
    np.testing.assert_array_equal(out[:, 3], 2)
    np.testing.assert_array_equal(out[:, 4], 0xFFFFFFFF)


def test_atomics_with_collisions_match_a_sequential_histogram():
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 9, 256).astype(np.uint32)
    body = """
    ld.param.u64 %rd1, [keys];
    ld.param.u64 %rd2, [hist];
    ld.param.u64 %rd5, [olds];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mad.lo.s32 %r4, %r2, %r3, %r1;
    mul.wide.u32 %rd3, %r4, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.u32 %r5, [%rd4];
    mul.wide.u32 %rd6, %r5, 4;
    add.s64 %rd7, %rd2, %rd6;
    atom.global.add.u32 %r6, [%rd7], 1;
    red.global.max.u32 [%rd2+36], %r4;
    add.s64 %rd8, %rd5, %rd3;
    st.global.u32 [%rd8], %r6;
    ret;
"""
    hist, olds = np.zeros(10, np.uint32), np.zeros(256, np.uint32)
    run(kernel(body, ".param .u64 keys, .param .u64 hist, .param .u64 olds"), 4, 64, [keys, hist, olds])
    np.testing.assert_array_equal(hist[:9], np.bincount(keys, minlength=9))
    assert hist[9] == 255
    for k in range(9):  # each bucket's old values are a permutation of 0..count-1
        np.testing.assert_array_equal(np.sort(olds[keys == k]), np.arange((keys == k).sum()))


def test_local_memory_and_generic_addressing():
    body = PROLOGUE + """
    mov.u64 %rd10, depot;
    cvta.local.u64 %rd11, %rd10;
    st.u32 [%rd11], %r4;
    st.local.u32 [%rd10+4], %r1;
    ld.u32 %r5, [%rd11+4];
    ld.local.u32 %r6, [%rd10];
    mov.u32 %r20, smem;
    cvta.shared.u64 %rd12, %rd20;
    cvt.u64.u32 %rd13, %r20;
    cvta.shared.u64 %rd14, %rd13;
    shl.b32 %r21, %r1, 2;
    cvt.u64.u32 %rd15, %r21;
    add.s64 %rd16, %rd14, %rd15;
    st.u32 [%rd16], %r6;
    ld.shared.u32 %r7, [%r20];
    bar.sync 0;
    add.s32 %r8, %r5, %r6;
    add.s32 %r8, %r8, %r7;
    st.u32 [%rd3], %r8;
    ret;
""".replace("    cvta.shared.u64 %rd12, %rd20;\n", "")
    regs = ".local .align 8 .b8 depot[16];"
    out = np.zeros(64, np.uint32)
    run(kernel(body, OUT, regs=regs, shared=".shared .align 4 .b8 smem[128];"), 2, 32, [out])
    t = np.arange(64)
    np.testing.assert_array_equal(out, (t % 32) + t + (t // 32) * 32)


def test_trace_prints_one_thread(capsys):
    body = PROLOGUE + """
    add.s32 %r5, %r4, 1000;
    st.global.u32 [%rd3], %r5;
    ret;
"""
    out = np.zeros(64, np.uint32)
    run(kernel(body, OUT), 2, 32, [out], trace=(1, 3))
    text = capsys.readouterr().out
    assert "[block (1,0,0) thread (3,0,0)]" in text
    assert "add.s32 %r5, %r4, 1000;  -> %r5=0x40b" in text  # 1000 + 35
    assert text.count("\n") == body.count(";")


def test_stats_count_bank_conflicts():
    body = """
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, smem;
    mul.lo.s32 %r3, %r1, {stride};
    add.s32 %r4, %r2, %r3;
    st.shared.u32 [%r4], %r1;
    ret;
"""
    shared = ".shared .align 4 .b8 smem[4096];"
    s1 = run(kernel(body.format(stride=4), shared=shared), 1, 32, [])
    s2 = run(kernel(body.format(stride=8), shared=shared), 1, 32, [])
    s32 = run(kernel(body.format(stride=128), shared=shared), 1, 32, [])
    assert (s1.shared_wavefronts, s2.shared_wavefronts, s32.shared_wavefronts) == (1, 2, 32)


@settings(max_examples=60)
@given(st.sampled_from([1, 2, 4, 8, 16]), st.integers(0, 2**32 - 1), st.integers(1, 32), st.data())
def test_vectorised_bank_counter_agrees_with_the_arch_reference(width, seed, nactive, data):
    rng = np.random.default_rng(seed)
    nwarps = 3
    lanes, warps, addrs, ref = [], [], [], 0
    spread = data.draw(st.sampled_from([64, 1024, 8192]))
    for w in range(nwarps):
        active = np.sort(rng.choice(32, nactive, replace=False))
        a = rng.integers(0, spread // width, nactive) * width
        per_lane = [None] * 32
        for lane, x in zip(active, a):
            per_lane[lane] = int(x)
        ref += banks.wavefronts(per_lane, width)
        lanes.append(active)
        warps.append(np.full(nactive, w))
        addrs.append(a)
    got, req = warp_wavefronts(np.concatenate(warps), np.concatenate(lanes), np.concatenate(addrs), width)
    assert got == ref and req == nwarps


def test_i32_helper_is_numpy():
    assert isinstance(i32(3), np.int32)
