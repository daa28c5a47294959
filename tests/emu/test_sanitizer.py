"""Plant-the-bug tests: each kernel carries one bug a GPU would punish, and the emulator must say so.

Every planted kernel has a fixed twin that runs clean and matches numpy, so a
test cannot pass by the emulator refusing everything.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from lowbit.errors import EmulatorError, UnsupportedPTXError
from tests.emu.ptxkit import i32, kernel, line_of, run

# ------------------------------------------------------------------ racecheck: a missing bar.sync
RACE = """
    ld.param.u64 %rd1, [inp];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.u32 %r2, [%rd4];
    mov.u32 %r3, smem;
    shl.b32 %r4, %r1, 2;
    add.s32 %r5, %r3, %r4;
    st.shared.u32 [%r5], %r2;
    {barrier}
    add.s32 %r6, %r1, 32;
    and.b32 %r6, %r6, 127;
    shl.b32 %r7, %r6, 2;
    add.s32 %r8, %r3, %r7;
    ld.shared.u32 %r9, [%r8];
    add.s64 %rd5, %rd2, %rd3;
    st.global.u32 [%rd5], %r9;
    ret;
"""
SMEM = ".shared .align 4 .b8 smem[512];"


def _race_args():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 1 << 30, 128).astype(np.uint32), np.zeros(128, np.uint32)]


def test_missing_barrier_is_a_race_naming_both_warps_and_the_address():
    ptx = kernel(RACE.format(barrier=""), ".param .u64 inp, .param .u64 out", shared=SMEM)
    with pytest.raises(EmulatorError, match="race") as e:
        run(ptx, 2, 128, _race_args())
    msg = str(e.value)
    assert re.search(r"warp \d reads shared address 0x[0-9a-f]+ which warp \d", msg), msg
    assert "PTX line" in msg and "ld.shared.u32" in msg


def test_with_the_barrier_the_same_kernel_is_clean_and_right():
    ptx = kernel(RACE.format(barrier="bar.sync 0;"), ".param .u64 inp, .param .u64 out", shared=SMEM)
    inp, out = _race_args()
    st = run(ptx, 1, 128, [inp, out])
    np.testing.assert_array_equal(out, np.roll(inp, -32))
    assert st.barriers == 1 and st.shared_bytes_written == 512


def test_write_after_read_by_another_warp_is_a_race():
    body = """
    mov.u32 %r1, %tid.x;
    mov.u32 %r3, smem;
    setp.eq.u32 %p2, %r1, 0;
    @%p2 st.shared.u32 [%r3], %r1;
    bar.sync 0;
    ld.shared.u32 %r2, [%r3];
    setp.eq.u32 %p1, %r1, 40;
    @%p1 st.shared.u32 [%r3], %r2;
    ret;
"""
    with pytest.raises(EmulatorError, match="race.*warp 1 writes"):
        run(kernel(body, shared=SMEM), 1, 64, [])


def test_two_warps_storing_one_address_in_one_instruction_is_a_race():
    body = """
    mov.u32 %r1, %tid.x;
    mov.u32 %r3, smem;
    st.shared.u32 [%r3], %r1;
    ret;
"""
    with pytest.raises(EmulatorError, match="race"):
        run(kernel(body, shared=SMEM), 1, 64, [])
    run(kernel(body, shared=SMEM), 1, 32, [])  # one warp: no race


# ------------------------------------------------------------------ cp.async: wait_group one too high
CP = """
    ld.param.u64 %rd1, [inp];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 16;
    add.s64 %rd4, %rd1, %rd3;
    mov.u32 %r3, smem;
    shl.b32 %r4, %r1, 4;
    add.s32 %r5, %r3, %r4;
    cp.async.cg.shared.global [%r5], [%rd4], 16;
    cp.async.commit_group;
    add.s64 %rd6, %rd4, 1024;
    add.s32 %r6, %r5, 1024;
    cp.async.cg.shared.global [%r6], [%rd6], 16, %r10;
    cp.async.commit_group;
    cp.async.wait_group {n};
    bar.sync 0;
    xor.b32 %r7, %r1, 63;
    shl.b32 %r8, %r7, 4;
    add.s32 %r9, %r3, %r8;
    ld.shared.v4.u32 {{%r11, %r12, %r13, %r14}}, [%r9+1024];
    add.s64 %rd7, %rd2, %rd3;
    st.global.v4.u32 [%rd7], {{%r11, %r12, %r13, %r14}};
    ret;
"""


def _cp_ptx(n):
    body = CP.format(n=n).replace("ret;", "ret;", 1)
    body = body.replace("    mov.u32 %r1, %tid.x;", "    mov.u32 %r1, %tid.x;\n    and.b32 %r10, %r1, 16;")
    return kernel(body, ".param .u64 inp, .param .u64 out", shared=".shared .align 16 .b8 smem[2048];")


def test_wait_group_one_too_high_reads_in_flight_data():
    rng = np.random.default_rng(2)
    inp = rng.integers(0, 1 << 32, 512, dtype=np.uint64).astype(np.uint32)
    with pytest.raises(EmulatorError, match="cp.async.*in flight"):
        run(_cp_ptx(1), 1, 64, [inp, np.zeros(256, np.uint32)])


def test_wait_group_zero_sees_the_data_with_zero_fill():
    rng = np.random.default_rng(3)
    inp = rng.integers(0, 1 << 32, 512, dtype=np.uint64).astype(np.uint32)
    out = np.zeros(256, np.uint32)
    run(_cp_ptx(0), 1, 64, [inp, out])
    second = inp[256:512].reshape(64, 4).copy()
    # src-size = tid & 16: threads with bit 4 clear copy nothing (zero fill)
    tid = np.arange(64)
    second[(tid & 16) == 0] = 0
    np.testing.assert_array_equal(out.reshape(64, 4), second[tid ^ 63])


# ------------------------------------------------------------------ memcheck: an unmasked tail
TAIL = """
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [y];
    ld.param.u32 %r9, [n];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mad.lo.s32 %r4, %r2, %r3, %r1;
    {guard}
    mul.wide.s32 %rd3, %r4, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.f32 %f1, [%rd4];
    add.f32 %f2, %f1, %f1;
    add.s64 %rd5, %rd2, %rd3;
    st.global.f32 [%rd5], %f2;
DONE:
    ret;
"""


def test_unmasked_tail_is_out_of_bounds_with_block_thread_address_line():
    ptx = kernel(TAIL.format(guard=""), ".param .u64 x, .param .u64 y, .param .u32 n")
    x = np.random.default_rng(4).standard_normal(200).astype(np.float32)
    with pytest.raises(EmulatorError) as e:
        run(ptx, 2, 128, [x, np.zeros(200, np.float32), i32(200)])
    msg = str(e.value)
    assert "memcheck: out-of-bounds global load of 4 bytes at address 0x" in msg
    assert "block (1,0,0) thread (72,0,0)" in msg and "56 threads in all" in msg
    assert f"PTX line {line_of(ptx, 'ld.global.f32')}: `ld.global.f32 %f1, [%rd4];`" in msg


def test_masked_tail_runs_clean():
    guard = "setp.ge.s32 %p1, %r4, %r9;\n    @%p1 bra DONE;"
    ptx = kernel(TAIL.format(guard=guard), ".param .u64 x, .param .u64 y, .param .u32 n")
    x = np.random.default_rng(5).standard_normal(200).astype(np.float32)
    y = np.zeros(200, np.float32)
    run(ptx, 2, 128, [x, y, i32(200)])
    np.testing.assert_array_equal(y, x + x)


def test_misaligned_access_is_reported():
    body = """
    ld.param.u64 %rd1, [x];
    add.s64 %rd2, %rd1, 2;
    ld.global.u32 %r1, [%rd2];
    ret;
"""
    with pytest.raises(EmulatorError, match="misaligned global access of 4 bytes"):
        run(kernel(body, ".param .u64 x"), 1, 32, [np.zeros(8, np.uint32)])


# ------------------------------------------------------------------ definedness
def test_undefined_register_as_branch_condition():
    body = """
    mov.u32 %r1, %tid.x;
    setp.lt.u32 %p1, %r2, 5;
    @%p1 bra DONE;
    add.s32 %r1, %r1, 1;
DONE:
    ret;
"""
    with pytest.raises(EmulatorError, match="undefined value: guard predicate %p1"):
        run(kernel(body), 1, 32, [])


def test_moving_undefined_is_fine_but_storing_it_is_not():
    body = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    setp.lt.u32 %p1, %r1, 16;
    @%p1 mov.u32 %r2, 7;
    mov.u32 %r3, %r2;
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    @%p1 st.global.u32 [%rd3], %r3;
    {bad}
    ret;
"""
    out = np.zeros(32, np.uint32)
    run(kernel(body.format(bad=""), ".param .u64 out"), 1, 32, [out])
    np.testing.assert_array_equal(out, np.where(np.arange(32) < 16, 7, 0))
    with pytest.raises(EmulatorError, match="undefined value is stored") as e:
        run(kernel(body.format(bad="st.global.u32 [%rd3], %r3;"), ".param .u64 out"), 1, 32, [out])
    assert "thread (16,0,0)" in str(e.value)


def test_undefined_address_is_reported():
    body = """
    ld.global.u32 %r1, [%rd5];
    ret;
"""
    with pytest.raises(EmulatorError, match="address register %rd5 is undefined"):
        run(kernel(body), 1, 32, [])


def test_uninitialised_shared_memory_is_undefined_when_stored():
    body = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r3, smem;
    ld.shared.u32 %r1, [%r3];
    st.global.u32 [%rd1], %r1;
    ret;
"""
    with pytest.raises(EmulatorError, match="undefined value is stored"):
        run(kernel(body, ".param .u64 out", shared=SMEM), 1, 1, [np.zeros(1, np.uint32)])


# ------------------------------------------------------------------ collectives
SHFL = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    shfl.sync.bfly.b32 %r2, %r1, 1, 31, {mask};
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r2;
    ret;
"""


def test_shfl_with_a_wrong_member_mask():
    ptx = kernel(SHFL.format(mask="0xffff"), ".param .u64 out")
    with pytest.raises(EmulatorError, match=r"shfl.sync with member mask 0x0000ffff: lane 16 executes it but is not"):
        run(ptx, 1, 32, [np.zeros(32, np.uint32)])
    out = np.zeros(32, np.uint32)
    run(kernel(SHFL.format(mask="-1"), ".param .u64 out"), 1, 32, [out])
    np.testing.assert_array_equal(out, np.arange(32) ^ 1)


def test_shfl_reached_by_part_of_a_warp():
    body = SHFL.format(mask="-1").replace("    shfl", "    setp.lt.u32 %p1, %r1, 20;\n    @%p1 bra SKIP;\n    shfl")
    body = body.replace("    mul.wide", "SKIP:\n    mul.wide")
    with pytest.raises(EmulatorError, match="lane 0 is not executing it"):
        run(kernel(body, ".param .u64 out"), 1, 32, [np.zeros(32, np.uint32)])


# ------------------------------------------------------------------ refusing what it cannot do
def test_unimplemented_instruction_is_named_with_its_line():
    body = """
    mov.u32 %r1, 1;
    sad.u32 %r2, %r1, %r1, %r1;
    ret;
"""
    ptx = kernel(body)
    with pytest.raises(UnsupportedPTXError, match=rf"PTX line {line_of(ptx, 'sad')}: instruction `sad.u32` is not"):
        run(ptx, 1, 32, [])


def test_sm89_instruction_in_sm80_ptx_is_refused():
    body = """
    mov.f32 %f1, 0f3F800000;
    cvt.rn.satfinite.e4m3x2.f32 %h1, %f1, %f1;
    ret;
"""
    with pytest.raises(UnsupportedPTXError, match="needs a target with cvt.e4m3x2; this PTX is for .target sm_80"):
        run(kernel(body), 1, 32, [])
    run(kernel(body, target="sm_89", version="8.1"), 1, 32, [])  # the same line is fine for sm_89


def test_fp8_mma_in_sm80_ptx_is_refused():
    body = """
    mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f5, %f6, %f7, %f8};
    ret;
"""
    with pytest.raises(UnsupportedPTXError, match="mma.m16n8k32.e4m3"):
        run(kernel(body), 1, 32, [])


# ------------------------------------------------------------------ progress
def test_infinite_loop_is_no_forward_progress_not_a_hang():
    body = """
    ld.param.u64 %rd1, [flag];
SPIN:
    ld.volatile.global.u32 %r1, [%rd1];
    setp.eq.u32 %p1, %r1, 0;
    @%p1 bra SPIN;
    ret;
"""
    with pytest.raises(EmulatorError, match="no forward progress"):
        run(kernel(body, ".param .u64 flag"), 2, 64, [np.zeros(1, np.uint32)])


def test_barrier_in_divergent_code_deadlocks_with_a_report():
    body = """
    mov.u32 %r1, %tid.x;
    setp.lt.u32 %p1, %r1, 32;
    @%p1 bra SKIP;
    bar.sync 0;
SKIP:
    ret;
"""
    # warps 1 and 2 wait at the barrier, warp 0 exits: exited threads do not count, so this completes
    run(kernel(body), 1, 96, [])
    body2 = body.replace("SKIP:\n    ret;", "SKIP:\n    bar.sync 1;\n    ret;")
    with pytest.raises(EmulatorError, match="deadlock"):
        run(kernel(body2), 1, 96, [])


def test_bar_sync_reached_by_part_of_a_warp():
    body = """
    mov.u32 %r1, %tid.x;
    setp.lt.u32 %p1, %r1, 8;
    @%p1 bra SKIP;
    bar.sync 0;
SKIP:
    ret;
"""
    with pytest.raises(EmulatorError, match="divergent barrier: bar.sync .aligned. reached by only part of a warp"):
        run(kernel(body), 1, 64, [])


def test_checks_off_skips_the_sanitizer_but_not_memcheck():
    ptx = kernel(RACE.format(barrier=""), ".param .u64 inp, .param .u64 out", shared=SMEM)
    inp, out = _race_args()
    run(ptx, 1, 128, [inp, out], checks=False)
    np.testing.assert_array_equal(out, np.roll(inp, -32))  # lockstep order happens to be right: exactly why racecheck exists
    tail = kernel(TAIL.format(guard=""), ".param .u64 x, .param .u64 y, .param .u32 n")
    with pytest.raises(EmulatorError, match="memcheck"):
        run(tail, 2, 128, [np.zeros(200, np.float32), np.zeros(200, np.float32), i32(200)], checks=False)


# ------------------------------------------------------------------ memcheck on shared and local memory
SHARED_TAIL = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r3, smem;
    shl.b32 %r4, %r1, 2;
    add.s32 %r5, %r3, %r4{skew};
    st.shared.u32 [%r5], %r1;
    bar.sync 0;
    ld.shared.u32 %r6, [%r5];
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r6;
    ret;
"""


def test_shared_out_of_bounds_names_block_thread_address_and_line():
    # 128 threads x 4 bytes into a 480-byte array: threads 120..127 write past its end.
    sm = ".shared .align 4 .b8 smem[480];"
    ptx = kernel(SHARED_TAIL.format(skew=""), ".param .u64 out", shared=sm)
    with pytest.raises(EmulatorError) as e:
        run(ptx, 2, 128, [np.zeros(128, np.uint32)])
    msg = str(e.value)
    assert "memcheck: out-of-bounds shared store of 4 bytes" in msg, msg
    assert re.search(r"block \(0,0,0\) thread \(120,0,0\)", msg), msg
    assert "address 0x" in msg and f"PTX line {line_of(ptx, 'st.shared.u32')}" in msg, msg
    out = np.zeros(120, np.uint32)  # the fixed twin: 120 threads fit
    run(ptx, 1, 120, [out])
    np.testing.assert_array_equal(out, np.arange(120))


def test_misaligned_shared_access_is_reported():
    ptx = kernel(SHARED_TAIL.format(skew=";\n    add.s32 %r5, %r5, 2"), ".param .u64 out",
                 shared=".shared .align 4 .b8 smem[512];")
    with pytest.raises(EmulatorError, match="misaligned shared access of 4 bytes") as e:
        run(ptx, 1, 64, [np.zeros(64, np.uint32)])
    assert f"PTX line {line_of(ptx, 'st.shared.u32')}" in str(e.value)


def test_local_out_of_bounds_is_reported():
    # a 16-byte local array indexed by tid: thread 4 steps past it.
    body = """
    .local .align 4 .b8 stack[16];
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mov.u64 %rd4, stack;
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd5, %rd4, %rd2;
    st.local.u32 [%rd5], %r1;
    ld.local.u32 %r2, [%rd5];
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r2;
    ret;
"""
    ptx = kernel(body, ".param .u64 out")
    out = np.zeros(4, np.uint32)
    run(ptx, 1, 4, [out])
    np.testing.assert_array_equal(out, np.arange(4))
    with pytest.raises(EmulatorError, match="memcheck: out-of-bounds local access of 4 bytes at local address 0x10") as e:
        run(ptx, 1, 8, [np.zeros(8, np.uint32)])
    assert "thread (4,0,0)" in str(e.value) and f"PTX line {line_of(ptx, 'st.local.u32')}" in str(e.value)


def test_cp_async_reads_only_src_size_bytes_and_accepts_cache_hints() -> None:
    """A 16-byte copy whose src-size stops at the end of a buffer touches nothing past it (PTX ISA 9.7.9.25: the
    rest is zero-filled, never read); ``.L2::cache_hint`` with a createpolicy register and ``.L2::128B`` ride along."""
    from tests.emu.ptxkit import kernel, run

    ptx = kernel("""
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [o];
    createpolicy.fractional.L2::evict_first.b64 %rd9, 1.0;
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, smem;
    mul.wide.u32 %rd3, %r1, 16;
    add.s64 %rd4, %rd1, %rd3;
    cvt.u64.u32 %rd5, %r2;
    add.s64 %rd5, %rd5, %rd3;
    cvt.u32.u64 %r3, %rd5;
    setp.eq.u32 %p1, %r1, 1;
    selp.u32 %r4, 6, 16, %p1;
    cp.async.cg.shared.global.L2::cache_hint.L2::128B [%r3], [%rd4], 16, %r4, %rd9;
    cp.async.commit_group;
    cp.async.wait_group 0;
    bar.sync 0;
    ld.shared.v4.u32 {%r5, %r6, %r7, %r8}, [%r3];
    add.s64 %rd6, %rd2, %rd3;
    st.global.v4.u32 [%rd6], {%r5, %r6, %r7, %r8};
    """, ".param .u64 x, .param .u64 o", shared=".shared .align 16 .b8 smem[32];", version="7.4")
    x = np.arange(22, dtype=np.uint8)  # thread 1's copy would read bytes 16..31: only 16..21 exist
    o = np.full(32, 0xEE, np.uint8)
    run(ptx, 1, 2, [x, o])
    np.testing.assert_array_equal(o[:22], x)
    np.testing.assert_array_equal(o[22:], 0)


def test_a_packs_defined_half_stays_defined():
    """LLVM leaves an undemanded lane of a pack unwritten (``mov.b32 %r, {%h1, %h2}`` with %h2 never set) and
    reads only the other one back; that half is defined, the unset one is not -- per element, not per register."""
    body = """
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    cvt.u16.u32 %h1, %r1;
    mov.b32 %r2, {{%h1, %h2}};
    {{ .reg .b16 tmp; mov.b32 {{%h3, tmp}}, %r2; }}
    mov.b32 {{tmp2, %h4}}, %r2;
    cvt.u32.u16 %r3, {half};
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r3;
    ret;
"""
    regs = "    .reg .b16 tmp2;\n"
    out = np.zeros(32, np.uint32)
    run(kernel(body.format(half="%h3"), ".param .u64 out", regs=regs), 1, 32, [out])
    np.testing.assert_array_equal(out, np.arange(32))
    with pytest.raises(EmulatorError, match="undefined value is stored"):
        run(kernel(body.format(half="%h4"), ".param .u64 out", regs=regs), 1, 32, [out])
    with pytest.raises(EmulatorError, match="undefined value is stored"):  # the whole register is still undefined
        run(kernel(body.format(half="%h3").replace("st.global.u32 [%rd3], %r3;", "st.global.u32 [%rd3], %r2;"),
                   ".param .u64 out", regs=regs), 1, 32, [out])  # fmt: skip
