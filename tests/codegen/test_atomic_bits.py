"""``atomic_and`` / ``atomic_or``: text, type checks, PTX, and their meaning under contention on the emulator.

Every thread of several blocks clears and sets its own bit of shared words
(32 threads a word, blocks interleaved on the same words): the result is
exact only if each and/or is atomic on the whole word, which is what the
sub-byte global store relies on.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from lowbit.codegen.emit import compile_kernel
from lowbit.emu import launch
from lowbit.errors import IRError
from lowbit.ir.simt import F32, I32, PTR_GLOBAL, PTR_LOCAL, Reg, parse_kernel, print_kernel
from lowbit.ir.simt import ops as O

BITS = """\
// thread g = bid + nblocks * tid owns bit g % 32 of word g / 32: clear it, then set it to v[g]
kernel @bits(%w: ptr.global[uint32], %v: ptr.global[uint32], %olds: ptr.global[uint32]) threads 96 {
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %nb: i32 = sreg nctaid.x
  %t: i32 = mul %tid, %nb
  %g: i32 = add %t, %bid
  %wi: i32 = lshr %g, 5:i32
  %k: i32 = and %g, 31:i32
  %one: i32 = shl 1:i32, %k
  %clear: i32 = not %one
  %pv: ptr.global = gep i32 %v, %g
  %bit: i32 = load %pv align 4
  %set: i32 = shl %bit, %k
  %pw: ptr.global = gep i32 %w, %wi
  %o1: i32 = atomic_and %pw, %clear
  %o2: i32 = atomic_or %pw, %set
  %po: ptr.global = gep i32 %olds, %g
  %both: i32 = or %o1, %o2
  store %po, %both align 4
}
"""


def test_text_round_trip_and_types() -> None:
    k = parse_kernel(BITS)
    assert print_kernel(parse_kernel(print_kernel(k))) == print_kernel(k)
    assert "%o1: i32 = atomic_and %pw, %clear" in print_kernel(k)
    p = Reg("p", PTR_GLOBAL)
    with pytest.raises(IRError, match="atomic and takes i32 or i64"):
        O.AtomicBits(Reg("r", F32), "and", p, Reg("f", F32))
    with pytest.raises(IRError, match="unknown atomic bit operation"):
        O.AtomicBits(Reg("r", I32), "xor", p, Reg("x", I32))
    with pytest.raises(IRError, match="global or shared"):
        O.AtomicBits(Reg("r", I32), "or", Reg("l", PTR_LOCAL), Reg("x", I32))
    with pytest.raises(IRError, match="line 2"):
        parse_kernel("kernel @k(%p: ptr.global) threads 32 {\n  %r: f32 = atomic_or %p, 1.0:f32\n}\n")


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_contended_and_or_keep_every_threads_bit(arch: str) -> None:
    ptx = compile_kernel(parse_kernel(BITS), arch).ptx
    assert re.search(r"(atom|red)\.global\.and\.b32", ptx) and re.search(r"(atom|red)\.global\.or\.b32", ptx)
    nblocks = 5
    n = 96 * nblocks
    rng = np.random.default_rng(11)
    v = rng.integers(0, 2, n).astype(np.uint32)
    w = rng.integers(0, 2**32, n // 32, dtype=np.uint64).astype(np.uint32)
    olds = np.zeros(n, np.uint32)
    launch(ptx, "bits", nblocks, 96, [w, v, olds])
    want = np.zeros(n // 32, np.uint64)
    for g in range(n):
        want[g // 32] |= np.uint64(int(v[g]) << (g % 32))
    np.testing.assert_array_equal(w, want.astype(np.uint32))
