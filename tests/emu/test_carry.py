"""mad.cc / madc (PTX ISA 9.7.2.5-6): multiword multiplication through the carry flag.

The reference is Python's exact integer product.  The PTX is the ISA's own
worked example ("extended-precision multiply [r3,r2,r1,r0] = [r5,r4] *
[r7,r6]") run per thread on random operands, plus the same chain on 64-bit
limbs and the signed ``.hi`` form against the ISA pseudocode
``t = a * b; d = t<hi> + c + CF``.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.errors import UnsupportedPTXError
from tests.emu.ptxkit import kernel, run

ISA_EXAMPLE = """
    mul.lo.{t}     %x0, %a0, %b0;
    mul.hi.{t}     %x1, %a0, %b0;
    mad.lo.cc.{t}  %x1, %a1, %b0, %x1;
    madc.hi.{t}    %x2, %a1, %b0, 0;
    mad.lo.cc.{t}  %x1, %a0, %b1, %x1;
    madc.hi.cc.{t} %x2, %a0, %b1, %x2;
    addc.{t}       %x3, 0, 0;
    mad.lo.cc.{t}  %x2, %a1, %b1, %x2;
    madc.hi.{t}    %x3, %a1, %b1, %x3;
"""


def _multiword_kernel(bits: int) -> str:
    t, k, w = ("u32", "b32", 4) if bits == 32 else ("u64", "b64", 8)
    # operand slots: a0 a1 at +0 +w, b0 b1 at +2w +3w of the thread's 4-limb record
    loads = "".join(f"    ld.global.{t} %{n}{i}, [%rd3+{(base + i) * w}];\n"
                    for n, base in (("a", 0), ("b", 2)) for i in range(2))
    stores = "".join(f"    st.global.{t} [%rd5+{i * w}], %x{i};\n" for i in range(4))
    body = f"""
    ld.param.u64 %rd1, [inp];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd6, %r1, {4 * w};
    add.s64 %rd3, %rd1, %rd6;
    add.s64 %rd5, %rd2, %rd6;
{loads}{ISA_EXAMPLE.format(t=t)}{stores}"""
    regs = f"    .reg .{k} %a<2>;\n    .reg .{k} %b<2>;\n    .reg .{k} %x<4>;\n"
    return kernel(body, ".param .u64 inp, .param .u64 out", regs=regs)


def _limbs(x: int, n: int, bits: int) -> list[int]:
    return [(x >> (bits * i)) & ((1 << bits) - 1) for i in range(n)]


@pytest.mark.parametrize("bits", [32, 64])
def test_isa_extended_precision_multiply(bits):
    rng = np.random.default_rng(bits)
    n = 77  # odd: a partial last warp
    top = (1 << (2 * bits)) - 1
    xs = [int(v) for v in rng.integers(0, 2**63, n)]
    xs = [(x * 0x9E3779B97F4A7C15 ** (bits // 32)) & top for x in xs]
    ys = [(x * 0xBF58476D1CE4E5B9 + 12345) & top for x in xs]
    xs[:3], ys[:3] = [top, top, 0], [top, 1, top]  # all carries / none
    dt = np.uint32 if bits == 32 else np.uint64
    inp = np.array([_limbs(x, 2, bits) + _limbs(y, 2, bits) for x, y in zip(xs, ys)], dt)
    out = np.zeros((n, 4), dt)
    run(_multiword_kernel(bits), 1, n, [inp, out])
    want = np.array([_limbs(x * y, 4, bits) for x, y in zip(xs, ys)], dt)
    np.testing.assert_array_equal(out, want)


def test_signed_hi_and_carry_follow_the_isa_pseudocode():
    # d = (a*b signed)<63..32> + c + CF, carry out of the unsigned 32-bit add
    rng = np.random.default_rng(5)
    n = 45
    a, b, c, cin = (rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32) for _ in range(4))
    a[:4] = [0x80000000, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000]
    b[:4] = [0x80000000, 0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF]
    cin &= 1
    body = """
    ld.param.u64 %rd1, [buf];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd2, %r1, 16;
    add.s64 %rd3, %rd1, %rd2;
    ld.global.v4.u32 {%r10, %r11, %r12, %r13}, [%rd3];
    add.cc.u32 %r20, %r13, 0xFFFFFFFF;      // CF = (cin != 0)
    madc.hi.cc.s32 %r14, %r10, %r11, %r12;  // uses and sets CF
    addc.u32 %r15, 0, 0;                    // the carry out
    mad.hi.cc.s32 %r16, %r10, %r11, %r12;   // no carry in
    addc.u32 %r17, 0, 0;
    st.global.v4.u32 [%rd3], {%r14, %r15, %r16, %r17};
"""
    buf = np.stack([a, b, c, cin], 1).copy()
    run(kernel(body, ".param .u64 buf"), 1, n, [buf])
    for i in range(n):
        ai, bi = int(a[i].view(np.int32)), int(b[i].view(np.int32))
        hi = ((ai * bi) >> 32) & 0xFFFFFFFF
        for col, carry in ((0, int(cin[i])), (2, 0)):
            s = hi + int(c[i]) + carry
            assert int(buf[i, col]) == s & 0xFFFFFFFF and int(buf[i, col + 1]) == s >> 32, (i, col)


def test_mad_wide_cc_is_refused_by_name():
    ptx = kernel("    mad.wide.cc.u32 %rd1, %r1, %r2, %rd3;")
    with pytest.raises(UnsupportedPTXError, match="mad.wide.cc.u32"):
        run(ptx, 1, 32, [])
