"""Instruction families of issue 4 item 4 run end to end through PTX text.

The module tests (``test_intops``, ``test_fparith``, ``test_cvt``) check the
arithmetic helpers directly; these tests go through the parser, the builders'
operand and modifier decoding and the machine, one family per test, against
numpy written from the PTX ISA (9.7.x) -- never against the emulator itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.emu.ptxkit import kernel, run

N = 96  # three warps: one block, several warps, a partial last word of work
TID = """
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd9, %r1, 4;
"""


def _rand_u32(seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corners = np.array([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE], np.uint32)[:n]
    return np.concatenate([corners, rng.integers(0, 2**32, n - corners.size, dtype=np.uint64).astype(np.uint32)])


def _binary_kernel(op: str, ty: str = "b32") -> str:
    return kernel(f"""
    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd2, [b];
    ld.param.u64 %rd3, [out];
{TID}
    add.s64 %rd4, %rd1, %rd9;
    add.s64 %rd5, %rd2, %rd9;
    add.s64 %rd6, %rd3, %rd9;
    ld.global.u32 %r2, [%rd4];
    ld.global.u32 %r3, [%rd5];
    {op} %r4, %r2, %r3;
    st.global.u32 [%rd6], %r4;
    ret;
""", ".param .u64 a, .param .u64 b, .param .u64 out")


I32 = lambda x: x.view(np.int32)  # noqa: E731
INT_BINARY = {
    "min.s32": lambda a, b: np.minimum(I32(a), I32(b)).view(np.uint32),
    "max.s32": lambda a, b: np.maximum(I32(a), I32(b)).view(np.uint32),
    "min.u32": np.minimum,
    "max.u32": np.maximum,
    "and.b32": np.bitwise_and,
    "or.b32": np.bitwise_or,
    "xor.b32": np.bitwise_xor,
    "sub.s32": lambda a, b: (a.astype(np.int64) - b.astype(np.int64)).astype(np.uint32),
    "mul.lo.s32": lambda a, b: (a.astype(np.uint64) * b.astype(np.uint64)).astype(np.uint32),
    "add.sat.s32": lambda a, b: np.clip(I32(a).astype(np.int64) + I32(b), -2**31, 2**31 - 1).astype(np.int32).view(np.uint32),
}


@pytest.mark.parametrize("op", sorted(INT_BINARY))
def test_integer_binary_through_ptx(op):
    a, b = _rand_u32(1), np.roll(_rand_u32(2), 5)
    out = np.zeros(N, np.uint32)
    run(_binary_kernel(op), 1, N, [a, b, out])
    np.testing.assert_array_equal(out, INT_BINARY[op](a, b))


@pytest.mark.parametrize("op,ref", [
    ("neg.s32", lambda a: (-I32(a).astype(np.int64)).astype(np.uint32)),  # -MIN wraps to MIN
    ("abs.s32", lambda a: np.abs(I32(a).astype(np.int64)).astype(np.uint32)),  # |MIN| wraps to MIN
    ("not.b32", np.invert),
    ("cnot.b32", lambda a: (a == 0).astype(np.uint32)),
    ("popc.b32", lambda a: np.array([bin(int(x)).count("1") for x in a], np.uint32)),
])
def test_integer_unary_through_ptx(op, ref):
    a = _rand_u32(3)
    out = np.zeros(N, np.uint32)
    ptx = _binary_kernel("OPX").replace("OPX %r4, %r2, %r3", f"{op} %r4, %r2")
    run(ptx, 1, N, [a, np.zeros(N, np.uint32), out])
    np.testing.assert_array_equal(out, ref(a))


# ------------------------------------------------------------------ setp / selp

INT_CMP = {  # PTX ISA 9.7.3.5 setp: signed eq ne lt le gt ge, unsigned lo ls hi hs
    "eq.s32": np.equal, "ne.s32": np.not_equal,
    "lt.s32": lambda a, b: I32(a) < I32(b), "le.s32": lambda a, b: I32(a) <= I32(b),
    "gt.s32": lambda a, b: I32(a) > I32(b), "ge.s32": lambda a, b: I32(a) >= I32(b),
    "lo.u32": np.less, "ls.u32": np.less_equal, "hi.u32": np.greater, "hs.u32": np.greater_equal,
    "lt.u32": np.less, "ge.u32": np.greater_equal,
}

SETP = """
    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd2, [b];
    ld.param.u64 %rd3, [out];
{TID}
    add.s64 %rd4, %rd1, %rd9;
    add.s64 %rd5, %rd2, %rd9;
    add.s64 %rd6, %rd3, %rd9;
    ld.global.{ldt} %{r}2, [%rd4];
    ld.global.{ldt} %{r}3, [%rd5];
    and.b32 %r5, %r1, 1;
    setp.ne.u32 %p3, %r5, 0;          // c: odd thread
    setp.{cmp} %p1, %{r}2, %{r}3;
    setp.{cmp}.and %p2, %{r}2, %{r}3, %p3;
    setp.{cmp}.or %p4|%p5, %{r}2, %{r}3, !%p3;
    selp.u32 %r6, 1, 0, %p1;
    selp.u32 %r7, 2, 0, %p2;
    selp.u32 %r8, 4, 0, %p4;
    selp.u32 %r9, 8, 0, %p5;
    or.b32 %r10, %r6, %r7;
    or.b32 %r10, %r10, %r8;
    or.b32 %r10, %r10, %r9;
    st.global.u32 [%rd6], %r10;
    ret;
"""


def _setp_ref(t: np.ndarray, odd: np.ndarray) -> np.ndarray:
    # setp.CmpOp.BoolOp p|q, a, b, c:  p = (t BoolOp c); q = (!t BoolOp c)
    p1 = t
    p2 = t & odd
    p4 = t | ~odd
    p5 = ~t | ~odd
    return (p1 * 1 + p2 * 2 + p4 * 4 + p5 * 8).astype(np.uint32)


@pytest.mark.parametrize("cmp", sorted(INT_CMP))
def test_setp_integer_comparisons_and_combining(cmp):
    a = _rand_u32(4)
    b = np.where(np.arange(N) % 3 == 0, a, np.roll(_rand_u32(5), 7)).astype(np.uint32)  # many ties
    out = np.zeros(N, np.uint32)
    run(kernel(SETP.format(TID=TID, cmp=cmp, ldt="u32", r="r"), ".param .u64 a, .param .u64 b, .param .u64 out"),
        1, N, [a, b, out])
    odd = (np.arange(N) & 1).astype(bool)
    np.testing.assert_array_equal(out, _setp_ref(np.asarray(INT_CMP[cmp](a, b)), odd))


FLOAT_CMP = {  # ordered compares are false on NaN; the u-forms are true on NaN (PTX ISA 9.7.3.5)
    "eq": np.equal, "ne": lambda a, b: (a != b) & ~np.isnan(a) & ~np.isnan(b),
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "equ": lambda a, b: (a == b) | np.isnan(a) | np.isnan(b), "neu": np.not_equal,
    "ltu": lambda a, b: ~(a >= b), "leu": lambda a, b: ~(a > b),
    "gtu": lambda a, b: ~(a <= b), "geu": lambda a, b: ~(a < b),
    "num": lambda a, b: ~np.isnan(a) & ~np.isnan(b), "nan": lambda a, b: np.isnan(a) | np.isnan(b),
}


@pytest.mark.parametrize("cmp", sorted(FLOAT_CMP))
def test_setp_float_comparisons_with_nan_and_signed_zero(cmp):
    rng = np.random.default_rng(6)
    pool = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-40, 3.5], np.float32)
    a = rng.choice(pool, N).astype(np.float32)
    b = rng.choice(pool, N).astype(np.float32)
    out = np.zeros(N, np.uint32)
    body = SETP.format(TID=TID, cmp=f"{cmp}.f32", ldt="f32", r="f")
    run(kernel(body, ".param .u64 a, .param .u64 b, .param .u64 out"), 1, N, [a, b, out])
    odd = (np.arange(N) & 1).astype(bool)
    with np.errstate(invalid="ignore"):
        want = _setp_ref(np.asarray(FLOAT_CMP[cmp](a, b)), odd)
    np.testing.assert_array_equal(out, want)


# ------------------------------------------------------------------ mov pack / unpack, vector ld/st

def test_mov_vector_pack_unpack_and_vector_memory():
    # ld.v4 / ld.v2 / ld.nc / ld.volatile, mov.b64 {lo,hi} packs LSB-first, mov {a,b} unpacks,
    # mov.b32 {h0,h1} splits into halves, st.v2 / st.v4 write back.
    ptx = kernel(f"""
    ld.param.u64 %rd1, [src];
    ld.param.u64 %rd2, [dst];
{TID}
    mul.wide.u32 %rd10, %r1, 16;
    add.s64 %rd3, %rd1, %rd10;
    add.s64 %rd4, %rd2, %rd10;
    ld.global.v4.u32 {{%r10, %r11, %r12, %r13}}, [%rd3];
    ld.global.nc.v2.u32 {{%r14, %r15}}, [%rd3+8];
    ld.volatile.global.u32 %r16, [%rd3+4];
    mov.b64 %rd5, {{%r10, %r11}};
    mov.b64 {{%r20, %r21}}, %rd5;
    mov.b32 {{%h1, %h2}}, %r12;
    mov.b32 %r22, {{%h2, %h1}};
    add.s32 %r23, %r14, %r16;
    st.global.v2.u32 [%rd4], {{%r21, %r20}};
    st.global.v2.u32 [%rd4+8], {{%r22, %r23}};
    add.s64 %rd6, %rd4, 16;
    mul.wide.u32 %rd11, %r1, 8;
    ld.param.u64 %rd7, [wide];
    add.s64 %rd8, %rd7, %rd11;
    st.global.u64 [%rd8], %rd5;
    ret;
""", ".param .u64 src, .param .u64 dst, .param .u64 wide")
    src = _rand_u32(7, 4 * N)
    dst = np.zeros(4 * N, np.uint32)
    wide = np.zeros(N, np.uint64)
    run(ptx, 1, N, [src, dst, wide])
    s = src.reshape(N, 4)
    d = dst.reshape(N, 4)
    np.testing.assert_array_equal(d[:, 0], s[:, 1])
    np.testing.assert_array_equal(d[:, 1], s[:, 0])
    np.testing.assert_array_equal(d[:, 2], (s[:, 2] >> 16) | ((s[:, 2] & 0xFFFF) << 16))  # halves swapped
    np.testing.assert_array_equal(d[:, 3], (s[:, 2].astype(np.uint64) + s[:, 1]).astype(np.uint32))
    np.testing.assert_array_equal(wide, s[:, 0].astype(np.uint64) | (s[:, 1].astype(np.uint64) << 32))


# ------------------------------------------------------------------ atomics: exch / cas / min / max

ATOM = """
    ld.param.u64 %rd1, [mem];
    ld.param.u64 %rd2, [val];
    ld.param.u64 %rd3, [old];
{TID}
    add.s64 %rd4, %rd1, %rd9;
    add.s64 %rd5, %rd2, %rd9;
    add.s64 %rd6, %rd3, %rd9;
    ld.global.u32 %r2, [%rd5];
    {body}
    st.global.u32 [%rd6], %r7;
    ret;
"""


CAS_PROLOGUE = """
    ld.param.u64 %rd13, [cmpv];
    add.s64 %rd14, %rd13, %rd9;
    ld.global.u32 %r31, [%rd14];
    xor.b32 %r30, %r31, 0x5A5A5A5A;"""
CAS_BODY = {
    "global": """
    atom.global.exch.b32 %r7, [%rd4], %r2;
    atom.global.cas.b32 %r8, [%rd4], %r31, %r30;""",
    "shared": """
    ld.global.u32 %r24, [%rd4];
    mov.u32 %r25, sm;
    mad.lo.u32 %r26, %r1, 4, %r25;
    st.shared.u32 [%r26], %r24;
    atom.shared.exch.b32 %r7, [%r26], %r2;
    atom.shared.cas.b32 %r8, [%r26], %r31, %r30;
    ld.shared.u32 %r27, [%r26];
    st.global.u32 [%rd4], %r27;""",
}
CAS_EPILOGUE = """
    ld.param.u64 %rd7, [aux];
    add.s64 %rd8, %rd7, %rd9;
    st.global.u32 [%rd8], %r8;"""


@pytest.mark.parametrize("space", ["global", "shared"])
def test_atom_exch_and_cas_per_slot(space):
    # One slot per thread.  exch: d = *a; *a = b.  cas: d = *a; *a = (*a == b) ? c : *a
    # (PTX ISA 9.7.13.5).  exch stores val, then cas(expected=cmpv, new=cmpv ^ 0x5A5A5A5A)
    # swaps exactly where cmpv == val (the even threads).
    mem0, val = _rand_u32(8), _rand_u32(9)
    cmpv = np.where(np.arange(N) % 2 == 0, val, val ^ 1).astype(np.uint32)
    ptx = kernel(ATOM.format(TID=TID, body=CAS_PROLOGUE + CAS_BODY[space] + CAS_EPILOGUE),
                 ".param .u64 mem, .param .u64 val, .param .u64 old, .param .u64 cmpv, .param .u64 aux",
                 shared=".shared .align 4 .b8 sm[384];")
    mem, old, aux = mem0.copy(), np.zeros(N, np.uint32), np.zeros(N, np.uint32)
    run(ptx, 1, N, [mem, val, old, cmpv, aux])
    np.testing.assert_array_equal(old, mem0)  # exch returned the original word
    np.testing.assert_array_equal(aux, val)  # cas returned what exch stored
    swapped = cmpv == val
    np.testing.assert_array_equal(mem, np.where(swapped, cmpv ^ 0x5A5A5A5A, val).astype(np.uint32))
    assert swapped.any() and (~swapped).any()


@pytest.mark.parametrize("op,ref", [("min.s32", np.minimum), ("max.s32", np.maximum),
                                    ("min.u32", np.minimum), ("max.u32", np.maximum)])
def test_atom_min_max_with_collisions(op, ref):
    # 96 threads on 4 slots: the final value is order independent, so any GPU agrees.
    signed = op.endswith("s32")
    rng = np.random.default_rng(10)
    val = _rand_u32(11)
    slot = rng.integers(0, 4, N).astype(np.uint32)
    mem0 = _rand_u32(12, 4)
    ptx = kernel(f"""
    ld.param.u64 %rd1, [mem];
    ld.param.u64 %rd2, [val];
    ld.param.u64 %rd3, [slot];
{TID}
    add.s64 %rd5, %rd2, %rd9;
    ld.global.u32 %r2, [%rd5];
    add.s64 %rd6, %rd3, %rd9;
    ld.global.u32 %r3, [%rd6];
    mul.wide.u32 %rd7, %r3, 4;
    add.s64 %rd8, %rd1, %rd7;
    red.global.{op} [%rd8], %r2;
    ret;
""", ".param .u64 mem, .param .u64 val, .param .u64 slot")
    mem = mem0.copy()
    run(ptx, 1, N, [mem, val, slot])
    view = (lambda x: x.view(np.int32)) if signed else (lambda x: x)
    want = view(mem0.copy())
    for v, s in zip(view(val), slot):
        want[s] = ref(want[s], v)
    np.testing.assert_array_equal(view(mem), want)


# ------------------------------------------------------------------ no-ops and cache hints

def test_fences_hints_policies_and_warp_barrier_change_nothing():
    ptx = kernel(f"""
    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd3, [out];
{TID}
    add.s64 %rd4, %rd1, %rd9;
    add.s64 %rd6, %rd3, %rd9;
    createpolicy.fractional.L2::evict_last.b64 %rd20, 1.0;
    prefetch.global.L2 [%rd4];
    membar.gl;
    fence.acq_rel.gpu;
    membar.cta;
    ld.global.L2::cache_hint.u32 %r2, [%rd4], %rd20;
    bar.warp.sync -1;
    add.s32 %r3, %r2, 1;
    st.global.L2::cache_hint.u32 [%rd6], %r3, %rd20;
    discard.global.L2 [%rd1], 128;
    exit;
""", ".param .u64 a, .param .u64 out")
    a = _rand_u32(13, 128)
    out = np.zeros(128, np.uint32)
    run(ptx, 1, N, [a, out])
    np.testing.assert_array_equal(out[:N], a[:N] + np.uint32(1))
    assert not out[N:].any()


# ------------------------------------------------------------------ approximate and IEEE float unary

@pytest.mark.parametrize("op,ref,tol", [
    # PTX ISA 9.7.4: rcp.approx / sqrt.approx / rsqrt.approx max 1 ulp-ish relative error (2^-23 here with
    # margin 2 ulp), sin/cos.approx max abs error 2^-20.9 on [-pi, pi]; the .rn forms are correctly rounded.
    ("rcp.approx.f32", lambda x: 1.0 / x, ("rel", 2.0**-22)),
    ("sqrt.approx.f32", np.sqrt, ("rel", 2.0**-22)),
    ("rsqrt.approx.f32", lambda x: 1.0 / np.sqrt(x), ("rel", 2.0**-22)),
    ("sin.approx.f32", np.sin, ("abs", 2.0**-20.9)),
    ("cos.approx.f32", np.cos, ("abs", 2.0**-20.9)),
    ("rcp.rn.f32", lambda x: 1.0 / x, ("exact", 0)),
    ("sqrt.rn.f32", np.sqrt, ("exact", 0)),
])
def test_float_unary_through_ptx(op, ref, tol):
    rng = np.random.default_rng(14)
    positive = op.startswith(("sqrt", "rsqrt"))
    x = rng.uniform(0.01 if positive else -np.pi, np.pi, N).astype(np.float32)
    out = np.zeros(N, np.float32)
    ptx = kernel(f"""
    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd3, [out];
{TID}
    add.s64 %rd4, %rd1, %rd9;
    add.s64 %rd6, %rd3, %rd9;
    ld.global.f32 %f1, [%rd4];
    {op} %f2, %f1;
    st.global.f32 [%rd6], %f2;
    ret;
""", ".param .u64 a, .param .u64 out")
    run(ptx, 1, N, [x, out])
    want = ref(x.astype(np.float64))
    kind, t = tol
    if kind == "exact":  # float64 then one rounding to f32 is correctly rounded for 1/x and sqrt
        np.testing.assert_array_equal(out, want.astype(np.float32))
    elif kind == "rel":
        assert np.all(np.abs(out - want) <= t * np.abs(want))
    else:
        assert np.all(np.abs(out - want) <= t)


# ------------------------------------------------------------------ special registers

def test_special_registers_in_a_3d_launch():
    ptx = kernel("""
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %tid.y;
    mov.u32 %r3, %ntid.x;
    mad.lo.u32 %r4, %r2, %r3, %r1;          // linear thread id in the block
    mov.u32 %r5, %ctaid.x;
    mov.u32 %r6, %ctaid.y;
    mov.u32 %r7, %nctaid.x;
    mad.lo.u32 %r8, %r6, %r7, %r5;          // linear block id
    mov.u32 %r9, %ntid.y;
    mul.lo.u32 %r10, %r3, %r9;              // threads per block
    mad.lo.u32 %r11, %r8, %r10, %r4;        // global linear id
    mul.wide.u32 %rd2, %r11, 32;
    add.s64 %rd3, %rd1, %rd2;
    mov.u32 %r12, %laneid;
    mov.u32 %r13, %warpid;
    mov.u32 %r14, %clock;
    mov.u32 %r15, %nctaid.y;
    mov.u32 %r16, %clock;
    sub.s32 %r17, %r16, %r14;               // the clock counts up
    st.global.v4.u32 [%rd3], {%r1, %r2, %r5, %r6};
    st.global.v4.u32 [%rd3+16], {%r12, %r13, %r15, %r17};
    ret;
""", ".param .u64 out")
    grid, block = (3, 2, 1), (20, 5, 1)
    nthreads = 3 * 2 * 20 * 5
    out = np.zeros((nthreads, 8), np.uint32)
    run(ptx, grid, block, [out])
    rows = []
    for b_y in range(2):
        for b_x in range(3):
            for t in range(100):
                tx, ty = t % 20, t // 20
                rows.append([tx, ty, b_x, b_y, t % 32, t // 32, 2])
    want = np.array(rows, np.uint32)
    np.testing.assert_array_equal(out[:, :7], want)
    assert np.all(out[:, 7].view(np.int32) > 0)
