"""Float and vector atomics (PTX ISA 9.7.13.5 atom, 9.7.13.6 red) and how racecheck treats atomics.

Hardware applies colliding atomics in an unspecified order.  The emulator
applies them in thread order (a legal serialisation), so the *returned old
values* are checked against a sequential reference in thread order, and the
inputs are small integers or powers of two whose sums are exact in any
order -- the final memory value is then what any GPU produces too.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lowbit.errors import EmulatorError, UnsupportedPTXError
from tests.emu.ptxkit import kernel, run

# thread t adds val[t] to acc[slot[t]] and records the old value it saw
ATOM_GLOBAL = """
    ld.param.u64 %rd1, [acc];
    ld.param.u64 %rd2, [val];
    ld.param.u64 %rd3, [slot];
    ld.param.u64 %rd4, [old];
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mad.lo.u32 %r4, %r1, %r2, %r3;
    mul.wide.u32 %rd5, %r4, 4;
    add.s64 %rd6, %rd2, %rd5;
    ld.global.{ldt} %r5, [%rd6];
    add.s64 %rd7, %rd3, %rd5;
    ld.global.u32 %r6, [%rd7];
    mul.wide.u32 %rd8, %r6, 4;
    add.s64 %rd9, %rd1, %rd8;
    atom.global.{op} %r7, [%rd9], %r5;
    add.s64 %rd10, %rd4, %rd5;
    st.global.u32 [%rd10], %r7;
"""
PARAMS4 = ".param .u64 acc, .param .u64 val, .param .u64 slot, .param .u64 old"


def _sequential(acc0, vals, slots, add):
    """Old values and final memory when the atomics run one by one in thread order."""
    acc = list(acc0)
    old = []
    for v, s in zip(vals, slots):
        old.append(acc[s])
        acc[s] = add(acc[s], v)
    return old, acc


@pytest.mark.parametrize("blocks,threads", [(3, 70), (1, 33)])
def test_atom_global_add_f32_in_thread_order(blocks, threads):
    rng = np.random.default_rng(threads)
    n = blocks * threads
    vals = rng.integers(-64, 65, n).astype(np.float32)  # small integers: the sum is exact in any order
    slots = rng.integers(0, 5, n).astype(np.uint32)
    acc0 = (rng.integers(-8, 9, 5) * 0.5).astype(np.float32)
    acc, old = acc0.copy(), np.zeros(n, np.float32)
    ptx = kernel(ATOM_GLOBAL.format(ldt="f32", op="add.f32"), PARAMS4)
    run(ptx, blocks, threads, [acc, vals, slots, old])
    want_old, want_acc = _sequential(acc0, vals, slots, lambda a, b: np.float32(a + b))
    np.testing.assert_array_equal(acc, np.array(want_acc, np.float32))
    np.testing.assert_array_equal(old, np.array(want_old, np.float32))


@pytest.mark.parametrize("t,npdt,target,version", [("f16x2", np.float16, "sm_80", "8.0"),
                                                    ("bf16x2", ml_dtypes.bfloat16, "sm_90", "8.0")])
def test_atom_add_noftz_packed_halves(t, npdt, target, version):
    rng = np.random.default_rng(7)
    n = 75
    vals = rng.choice([-4.0, -1.0, 0.5, 1.0, 2.0, 8.0], (n, 2)).astype(npdt)  # exact in any order
    slots = rng.integers(0, 3, n).astype(np.uint32)
    acc0 = rng.integers(-16, 16, (3, 2)).astype(npdt)
    acc, old = acc0.copy(), np.zeros((n, 2), npdt)
    ptx = kernel(ATOM_GLOBAL.format(ldt="b32", op=f"add.noftz.{t}"), PARAMS4, target=target, version=version)
    run(ptx, 1, n, [acc.view(np.uint32), vals.view(np.uint32), slots, old.view(np.uint32)])
    want_old, want_acc = _sequential(list(acc0), list(vals), slots, lambda a, b: (a + b).astype(npdt))
    np.testing.assert_array_equal(acc.astype(np.float32), np.array(want_acc).astype(np.float32))
    np.testing.assert_array_equal(old.astype(np.float32), np.array(want_old).astype(np.float32))


def test_bf16_atomics_need_sm90():
    ptx = kernel(ATOM_GLOBAL.format(ldt="b32", op="add.noftz.bf16x2"), PARAMS4)
    with pytest.raises(UnsupportedPTXError, match="bf16 atomic needs sm_90"):
        run(ptx, 1, 32, [np.zeros(1, np.uint32)] * 4)


RED_SHARED = """
    ld.param.u64 %rd1, [val];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.f32 %f1, [%rd4];
    and.b32 %r2, %r1, 3;
    shl.b32 %r3, %r2, 2;
    mov.u32 %r4, acc;
    add.u32 %r5, %r4, %r3;
    setp.lt.u32 %p1, %r1, 4;
    @%p1 st.shared.f32 [%r5], 0f00000000;
    bar.sync 0;
    red.shared.add.f32 [%r5], %f1;
    bar.sync 0;
    @!%p1 bra DONE;
    ld.shared.f32 %f2, [%r5];
    add.s64 %rd5, %rd2, %rd3;
    st.global.f32 [%rd5], %f2;
DONE:
"""
ACC = ".shared .align 4 .b8 acc[16];"


def test_red_shared_add_f32_sums_per_slot():
    rng = np.random.default_rng(3)
    n = 150
    vals = (2.0 ** rng.integers(-6, 6, n)).astype(np.float32)  # powers of two: exact in any order
    out = np.zeros(4, np.float32)
    st = run(kernel(RED_SHARED, ".param .u64 val, .param .u64 out", shared=ACC), 1, n, [vals, out])
    want = np.array([vals[k::4].astype(np.float64).sum() for k in range(4)], np.float32)
    np.testing.assert_array_equal(out, want)
    assert st.by_opcode["red"] == n


def test_f32_atomic_add_flushes_subnormals_on_global_only():
    # ISA 9.7.13.5: atom.add.f32 on global memory flushes subnormal inputs and results
    # to sign-preserving zero; on shared memory it keeps them.
    tiny = np.float32(-(2.0**-140))  # a negative subnormal
    start = np.float32(-3 * 2.0**-140)
    body = """
    ld.param.u64 %rd1, [g];
    ld.param.f32 %f1, [x];
    ld.global.f32 %f5, [%rd1];
    mov.u32 %r1, sh;
    st.shared.f32 [%r1], %f5;
    atom.global.add.f32 %f2, [%rd1], %f1;
    atom.shared.add.f32 %f3, [%r1], %f1;
    ld.shared.f32 %f4, [%r1];
    st.global.f32 [%rd1+4], %f4;
"""
    g = np.array([start, 7.0], np.float32)
    run(kernel(body, ".param .u64 g, .param .f32 x", shared=".shared .align 4 .b8 sh[4];"), 1, 1, [g, tiny])
    assert g[0] == 0 and np.signbit(g[0])  # (-0) + (-0): both inputs flushed, the sign kept
    assert g[1] == np.float32(-4 * 2.0**-140)  # shared: the exact subnormal sum


VEC = """
    ld.param.u64 %rd1, [acc];
    ld.param.u64 %rd2, [old];
    mov.u32 %r1, %tid.x;
    cvt.rn.f32.u32 %f1, %r1;
    add.f32 %f2, %f1, 0f3F800000;
    mov.f32 %f3, 0f40000000;
    mov.f32 %f4, 0fBF800000;
    atom.global.v4.f32.add {%f5, %f6, %f7, %f8}, [%rd1+16], {%f1, %f2, %f3, %f4};
    mul.wide.u32 %rd3, %r1, 16;
    add.s64 %rd4, %rd2, %rd3;
    st.global.v4.f32 [%rd4], {%f5, %f6, %f7, %f8};
"""


def test_vector_atom_f32_is_four_separate_atomics():
    n = 41
    acc = np.array([9, 9, 9, 9, 1, 2, 3, 4, 9, 9, 9, 9], np.float32)
    old = np.zeros((n, 4), np.float32)
    run(kernel(VEC, ".param .u64 acc, .param .u64 old", target="sm_90", version="8.1"), 1, n, [acc, old])
    t = np.arange(n, dtype=np.float32)
    adds = np.stack([t, t + 1, np.full(n, 2.0), np.full(n, -1.0)], 1).astype(np.float32)
    start = np.array([1, 2, 3, 4], np.float32)
    np.testing.assert_array_equal(old, start + np.cumsum(adds, 0) - adds)  # thread order
    np.testing.assert_array_equal(acc[4:8], start + adds.sum(0))
    assert (acc[:4] == 9).all() and (acc[8:] == 9).all()


def test_vector_atom_needs_sm90_ptx81_and_alignment():
    with pytest.raises(UnsupportedPTXError, match="vector atomic needs sm_90\\+ and PTX ISA 8.1"):
        run(kernel(VEC, ".param .u64 acc, .param .u64 old"), 1, 4, [np.zeros(8, np.float32)] * 2)
    with pytest.raises(UnsupportedPTXError, match="vector atomic needs sm_90"):
        run(kernel(VEC, ".param .u64 acc, .param .u64 old", target="sm_90", version="8.0"), 1, 4,
            [np.zeros(8, np.float32)] * 2)
    bad = VEC.replace("[%rd1+16]", "[%rd1+8]")
    with pytest.raises(EmulatorError, match="misaligned global access of 16 bytes"):
        run(kernel(bad, ".param .u64 acc, .param .u64 old", target="sm_90", version="8.1"), 1, 4,
            [np.zeros(12, np.float32), np.zeros((4, 4), np.float32)])
    odd = VEC.replace("v4.f32.add", "v4.f32.max")
    with pytest.raises(UnsupportedPTXError, match="not a vector atomic"):
        run(kernel(odd, ".param .u64 acc, .param .u64 old", target="sm_90", version="8.1"), 1, 4,
            [np.zeros(12, np.float32), np.zeros((4, 4), np.float32)])


@pytest.mark.parametrize("op,ref", [("max", np.maximum), ("add", np.add)])
def test_vector_atom_f16_v8_noftz(op, ref):
    rng = np.random.default_rng(11)
    n = 50
    vals = rng.integers(-8, 9, (n, 8)).astype(np.float16)
    acc0 = rng.integers(-8, 9, 8).astype(np.float16)
    body = f"""
    .reg .b16 %g<8>;
    ld.param.u64 %rd1, [acc];
    ld.param.u64 %rd2, [val];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 16;
    add.s64 %rd4, %rd2, %rd3;
    ld.global.v4.b16 {{%h0, %h1, %h2, %h3}}, [%rd4];
    ld.global.v4.b16 {{%h4, %h5, %h6, %h7}}, [%rd4+8];
    red.global.v8.f16.{op}.noftz [%rd1], {{%h0, %h1, %h2, %h3, %h4, %h5, %h6, %h7}};
"""
    acc = acc0.copy()
    run(kernel(body, ".param .u64 acc, .param .u64 val", target="sm_90", version="8.1"), 1, n,
        [acc.view(np.uint16), vals.view(np.uint16)])
    want = acc0.astype(np.float32)
    for row in vals.astype(np.float32):
        want = ref(want, row)
    np.testing.assert_array_equal(acc.astype(np.float32), want)


# ------------------------------------------------------------------ racecheck and atomics
RACE = """
    mov.u32 %r1, %tid.x;
    shr.u32 %r2, %r1, 5;
    mov.u32 %r3, cnt;
    {first}
    {barrier}
    {second}
"""
CNT = ".shared .align 4 .b8 cnt[8];"
PLAIN_W1 = "setp.eq.u32 %p1, %r2, 1;\n    @%p1 st.shared.u32 [%r3], 5;"
PLAIN_R1 = "setp.eq.u32 %p1, %r2, 1;\n    @%p1 ld.shared.u32 %r9, [%r3];"
ATOM_W0 = "setp.eq.u32 %p2, %r2, 0;\n    @%p2 atom.shared.add.u32 %r8, [%r3], 1;"
ATOM_ALL = "atom.shared.add.u32 %r8, [%r3], 1;"


@pytest.mark.parametrize("first,second,what", [
    (PLAIN_W1, ATOM_W0, "warp 0 atomically updates shared address 0x0 which warp 1 plainly accessed"),
    (PLAIN_R1, ATOM_W0, "warp 0 atomically updates shared address 0x0 which warp 1 plainly accessed"),
    (ATOM_W0, PLAIN_R1, "warp 1 reads shared address 0x0 which warp 0 accessed"),
    (ATOM_ALL, PLAIN_W1, "warp 1 writes shared address 0x0 which atomics of several other warps accessed"),
])
def test_plain_and_atomic_accesses_of_different_warps_race(first, second, what):
    # compute-sanitizer's racecheck reports these hazards too: the plain access is not
    # atomic with respect to the other warp's atomic, and their order is timing-dependent
    ptx = kernel(RACE.format(first=first, barrier="", second=second), shared=CNT)
    with pytest.raises(EmulatorError, match="race: shared-memory race in block .0,0,0.: " + what):
        run(ptx, 1, 96, [])
    run(kernel(RACE.format(first=first, barrier="bar.sync 0;", second=second), shared=CNT), 1, 96, [])


def test_atomics_of_many_warps_and_same_warp_mixing_do_not_race():
    body = RACE.format(first="setp.eq.u32 %p3, %r1, 0;\n    @%p3 st.shared.u32 [%r3], 0;", barrier="bar.sync 0;",
                       second=ATOM_ALL) + """
    bar.sync 0;
    ld.shared.u32 %r10, [%r3];
    ld.param.u64 %rd1, [out];
    setp.eq.u32 %p4, %r1, 0;
    @%p4 st.global.u32 [%rd1], %r10;
    // one warp mixing its own plain and atomic accesses to a byte is ordered by the warp
    setp.eq.u32 %p5, %r2, 2;
    @%p5 st.shared.u32 [%r3+4], 1;
    @%p5 atom.shared.add.u32 %r11, [%r3+4], 1;
    @%p5 ld.shared.u32 %r12, [%r3+4];
"""
    out = np.zeros(1, np.uint32)
    run(kernel(body, ".param .u64 out", shared=CNT), 1, 96, [out])
    assert out[0] == 96
