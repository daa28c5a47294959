"""Epilogue stores through shared memory: a tile whose layout gives each thread 8-byte runs (an mma accumulator's
shape) is converted to the coalesced layout before its final store, so every access is a 16-byte ``st.global.v4``.

Only outside loops (a conversion per iteration would cost more than it saves), only where alignment facts allow
16-byte accesses (the specialised variant), and the values are the interpreter's.
"""

from __future__ import annotations

import re

import numpy as np

import lowbit
from lowbit.compiler import compile_program
from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import run_on_emulator
from lowbit.ir import ops as O
from lowbit.ir.rewrite import walk
from lowbit.transforms import Options, lower_vm

PAIRS = lowbit.layout.product(lowbit.layout.local(2, 4), lowbit.layout.spatial(16, 8), lowbit.layout.local(1, 2))


@lowbit.kernel(num_warps=4)
def epilogue(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), M: lowbit.int32, N: lowbit.int32,
             LOOP: lowbit.constexpr = 0):  # fmt: skip
    """o = 2x, the tile held in runs of two elements per thread (like mma.sync's accumulator fragments)."""
    m0, n0 = lowbit.program_id(0) * 32, lowbit.program_id(1) * 64
    x = lowbit.global_view(x_ptr, (M, N))
    o = lowbit.global_view(o_ptr, (M, N))
    t = lowbit.load(x, (m0, n0), (32, 64), layout=PAIRS) * 2.0
    if LOOP:
        for i in range(1):
            lowbit.store(o, t, (m0, n0))
    else:
        lowbit.store(o, t, (m0, n0))


def _aligned(prog):  # noqa: ANN001, ANN202
    return prog.with_facts({p.name: 16 for p in prog.params})


def _stores(ptx: str) -> set[str]:
    return set(re.findall(r"st\.global[.\w]*", ptx))


def test_an_epilogue_store_becomes_16_byte_stores(tmp_path) -> None:
    prog = _aligned(epilogue.specialize())
    vm = lower_vm(prog, Options("sm_80"))
    (st,) = [op for op in walk(vm.body) if isinstance(op, O.StoreGlobal)]
    assert st.vec == 4 and st.value.type.layout != PAIRS
    assert sum(isinstance(op, O.ConvertLayout) or isinstance(op, O.StoreShared) for op in walk(vm.body)) >= 1
    ck = compile_program(prog, "sm_80", cache=CompileCache(tmp_path))
    assert _stores(ck.ptx) == {"st.global.v4.b32"}
    m, n = 64, 128
    x = np.random.default_rng(0).standard_normal((m, n)).astype(np.float32)
    o = np.full((m, n), np.nan, np.float32)
    want = o.copy()
    run_on_emulator(ck, (2, 2), [x, o, m, n])
    epilogue.interpret[(2, 2)](x, want, m, n)
    np.testing.assert_array_equal(o, want)
    np.testing.assert_array_equal(o, 2 * x)


def test_inside_a_loop_or_unaligned_the_store_keeps_its_layout(tmp_path) -> None:
    looped = compile_program(_aligned(epilogue.specialize(LOOP=1)), "sm_80", cache=CompileCache(tmp_path))
    assert _stores(looped.ptx) == {"st.global.v2.b32"}  # 8-byte runs, no conversion per iteration
    plain = compile_program(epilogue.specialize(), "sm_80", cache=CompileCache(tmp_path))  # no alignment facts
    assert "st.shared" not in plain.ptx and _stores(plain.ptx) == {"st.global.b32"}
