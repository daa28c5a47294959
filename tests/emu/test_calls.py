"""``call`` to ``.func`` device functions (PTX ISA 9.7.12.2), inlined at load time by lowbit.emu.inline.

References: numpy restatements of each callee; the LLVM fixture
``llvm_device_calls`` (in test_kernels) covers LLVM's own calling sequence,
and its local-memory traffic is counted here against the PTX by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.emu import launch
from lowbit.emu.inline import inline_calls
from lowbit.emu.parser import parse
from lowbit.errors import EmulatorError, UnsupportedPTXError
from tests.emu.ptxkit import HEADER, run

HEAD = HEADER.format(version="8.0", target="sm_80")

# clamp(x, lo): three returns, two of them early and guarded; every lane then
# votes, which needs the warp reconverged after the divergent returns.
CLAMP = HEAD + """
.func (.param .b32 ret) clamp(.param .b32 x, .param .b32 lo)
{
    .reg .b32 %r<4>;
    .reg .pred %p<3>;
    ld.param.b32 %r1, [x];
    ld.param.b32 %r2, [lo];
    setp.lt.s32 %p1, %r1, %r2;
    @%p1 st.param.b32 [ret], %r2;
    @%p1 ret;
    setp.gt.s32 %p2, %r1, 1000;
    @!%p2 bra KEEP;
    st.param.b32 [ret], 1000;
    ret;
KEEP:
    st.param.b32 [ret], %r1;
}
.visible .entry k(.param .u64 buf, .param .u32 lo)
{
    .reg .b32 %r<9>;
    .reg .b64 %rd<4>;
    .reg .pred %p<2>;
    ld.param.u64 %rd1, [buf];
    ld.param.u32 %r7, [lo];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd2, %r1, 8;
    add.s64 %rd3, %rd1, %rd2;
    ld.global.u32 %r2, [%rd3];
    {
    .param .b32 a0;
    .param .b32 a1;
    .param .b32 r0;
    st.param.b32 [a0], %r2;
    st.param.b32 [a1], %r7;
    call.uni (r0), clamp, (a0, a1);
    ld.param.b32 %r3, [r0];
    }
    setp.eq.s32 %p1, %r3, 1000;
    vote.sync.ballot.b32 %r4, %p1, -1;
    st.global.u32 [%rd3], %r3;
    st.global.u32 [%rd3+4], %r4;
}
"""


def test_divergent_returns_reconverge_after_the_call():
    rng = np.random.default_rng(1)
    n = 64
    x = rng.integers(-2000, 2000, n).astype(np.int32)
    buf = np.zeros((n, 2), np.uint32)
    buf[:, 0] = x.view(np.uint32)
    run(CLAMP, 1, n, [buf, np.uint32(np.int32(-50).view(np.uint32))])
    want = np.clip(x, -50, 1000)
    np.testing.assert_array_equal(buf[:, 0].view(np.int32), want)
    ballot = [sum(1 << i for i in range(32) if want[w * 32 + i] == 1000) for w in range(2)]
    np.testing.assert_array_equal(buf[:, 1], np.repeat(ballot, 32))


def test_register_parameters_nested_calls_and_a_guarded_call():
    ptx = HEAD + """
.func (.reg .b32 r) sq(.reg .b32 a)
{
    mul.lo.u32 r, a, a;
    ret;
}
.func (.reg .b32 r) sumsq(.reg .b32 a, .reg .b32 b)
{
    .reg .b32 %t<3>;
    call (%t1), sq, (a);
    call (%t2), sq, (b);
    add.u32 r, %t1, %t2;
}
.visible .entry k(.param .u64 out)
{
    .reg .b32 %r<6>;
    .reg .b64 %rd<4>;
    .reg .pred %p<2>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    add.u32 %r2, %r1, 3;
    mov.u32 %r3, 77;
    setp.lt.u32 %p1, %r1, 40;
    @%p1 call (%r3), sumsq, (%r1, %r2);
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r3;
}
"""
    n = 70
    out = np.zeros(n, np.uint32)
    run(ptx, 1, n, [out])
    t = np.arange(n, dtype=np.uint32)
    np.testing.assert_array_equal(out, np.where(t < 40, t * t + (t + 3) * (t + 3), 77))
    fn = inline_calls(parse(ptx), parse(ptx).entry("k"))
    assert not any(i.opcode == "call" for i in fn.body)
    assert sum(1 for r in fn.registers if "@inl" in r) == 6 + 2 * 2  # sumsq: a b r %t0-2; each sq: a r


def test_an_undefined_argument_is_only_an_error_where_it_is_used():
    def prog(use: str) -> str:
        return HEAD + f"""
.func (.param .b32 ret) pick(.param .b32 a, .param .b32 b)
{{
    .reg .b32 %r<3>;
    ld.param.b32 %r1, [{use}];
    st.param.b32 [ret], %r1;
}}
.visible .entry k(.param .u64 out)
{{
    .reg .b32 %r<6>;
    .reg .b64 %rd<2>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, 5;
    {{
    .param .b32 p0; .param .b32 p1; .param .b32 r0;
    st.param.b32 [p0], %r1;
    st.param.b32 [p1], %r2;        // %r2 is never written
    call.uni (r0), pick, (p0, p1);
    ld.param.b32 %r3, [r0];
    }}
    st.global.u32 [%rd1], %r3;
}}
"""
    out = np.zeros(1, np.uint32)
    run(prog("a"), 1, 1, [out])
    assert out[0] == 5
    with pytest.raises(EmulatorError, match="undefined value"):
        run(prog("b"), 1, 1, [out])


def _call_to(callee_decl: str, call: str) -> str:
    return HEAD + callee_decl + """
.visible .entry k()
{
    .reg .b32 %r<4>;
    .reg .b64 %rd<2>;
""" + call + "\n}\n"


@pytest.mark.parametrize("decl,call,msg", [
    (".func (.reg .b32 r) f(.reg .b32 a)\n{\n    call (r), g, (a);\n}\n"
     ".func (.reg .b32 r) g(.reg .b32 a)\n{\n    call (r), f, (a);\n}\n",
     "    call (%r1), f, (%r2);", r"recursive call \(f -> g -> f\)"),
    (".extern .func (.param .b32 r) vprintf(.param .b64 fmt, .param .b64 args);\n",
     "    { .param .b64 a; .param .b64 b; .param .b32 r;\n    call.uni (r), vprintf, (a, b); }",
     "vprintf, an external function without a body"),
    (".func f()\n{\n    ret;\n}\n",
     "    call.uni %rd1, ();", "indirect call through a register"),
])
def test_what_cannot_be_inlined_is_refused_by_name(decl, call, msg):
    with pytest.raises(UnsupportedPTXError, match=msg):
        run(_call_to(decl, call), 1, 32, [])


def test_local_memory_bytes_are_counted_and_call_arguments_are_not():
    from tests.emu.fixtures import recipes

    case = recipes.load("llvm_device_calls")
    args = case.make_args()
    st = launch(case.ptx, case.kernel, case.meta["grid"], case.meta["block"], args)
    case.check(args)
    n = int(case.meta["args"][2]["value"])
    # `table` stores its 8-word stack array once and loads one word, per thread (the PTX above)
    assert (st.local_bytes_written, st.local_bytes_read) == (32 * n, 4 * n)
    # inlined returns run as branches; the kernel's own `ret` runs once per thread of the 3 x 96 grid
    assert st.by_opcode["call"] == 0 and st.by_opcode["ret"] == 3 * 96


def test_local_bytes_by_width_and_through_generic_addresses():
    ptx = HEAD + """
.visible .entry k(.param .u64 out)
{
    .local .align 16 .b8 stack[48];
    .reg .b32 %r<8>;
    .reg .b64 %rd<6>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    st.local.v4.u32 [stack], {%r1, %r1, %r1, %r1};
    st.local.u16 [stack+16], %r1;
    mov.u64 %rd2, stack;
    cvta.local.u64 %rd3, %rd2;
    st.u64 [%rd3+24], %rd2;
    ld.local.u32 %r2, [stack+8];
    ld.u16 %r3, [%rd3+16];
    add.u32 %r4, %r2, %r3;
    mul.wide.u32 %rd4, %r1, 4;
    add.s64 %rd5, %rd1, %rd4;
    st.global.u32 [%rd5], %r4;
}
"""
    n = 37
    out = np.zeros(n, np.uint32)
    st = run(ptx, 1, n, [out])
    np.testing.assert_array_equal(out, 2 * np.arange(n))
    assert (st.local_bytes_written, st.local_bytes_read) == ((16 + 2 + 8) * n, (4 + 2) * n)
    assert st.global_bytes_written == 4 * n
