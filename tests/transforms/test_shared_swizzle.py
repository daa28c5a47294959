"""Swizzled shared buffers: a user's swizzle is honoured by every access; the planner's removes bank conflicts.

The planner prices each buffer's accesses with the one bank model
(:mod:`lowbit.arch.banks`) -- and the emulator counts the same wavefronts
when it runs the PTX, so the plan's numbers are checked against what
executed: a transpose through shared memory (rows written with 16-byte
stores, columns read by the lanes of a warp) costs 8x the minimum without
a swizzle and exactly the minimum with the one the planner picks.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import run_on_emulator
from lowbit.layout import Swizzle
from lowbit.transforms import Options, plan_shared
from lowbit.transforms import _shared_access as acc
from tests.transforms.harness import both, compiled
from tests.transforms.test_plan_shared import _selected

NONE = Swizzle(0, 4, 0)  # a stated identity: "no swizzle", which the planner keeps


@lowbit.kernel(num_warps=4)
def transpose(x_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), SW: lowbit.constexpr = None):
    """o = x through shared memory: written in rows, read down the columns (lane = row)."""
    x = lowbit.global_view(x_ptr, (32, 64))
    buf = lowbit.shared(lowbit.f16, (32, 64), layout=SW)
    lowbit.store(buf, lowbit.load(x, (0, 0), (32, 64)))
    lowbit.barrier()
    cols = lowbit.layout.product(lowbit.layout.column_spatial(32, 4), lowbit.layout.local(1, 16))
    lowbit.store(lowbit.global_view(o_ptr, (32, 64)), lowbit.load(buf, (0, 0), (32, 64), layout=cols), (0, 0))


def _plan(**cx):  # noqa: ANN003, ANN202
    (p,) = plan_shared.plan(_selected(transpose.specialize(**cx)), Options("sm_80"))
    return p


@pytest.mark.parametrize("sw", [None, NONE, Swizzle(3, 4, 3), Swizzle(2, 3, 4), Swizzle(1, 2, 6)],
                         ids=["planned", "none", "sw343", "sw234", "sw126"])  # fmt: skip
def test_every_swizzle_keeps_the_values(sw: Swizzle | None, cache: CompileCache) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((32, 64)).astype(np.float16)
    o = np.full((32, 64), np.nan, np.float16)
    [(_, got)] = both(transpose, cache, (1,), [x, o], [1], SW=sw)
    np.testing.assert_array_equal(got, x)
    p = _plan(SW=sw)
    assert p.type.layout == (sw if sw is not None else Swizzle(3, 4, 3))  # a user's swizzle is kept


def test_the_planned_swizzle_reaches_the_minimum_and_the_emulator_agrees(cache: CompileCache) -> None:
    plain, chosen = _plan(SW=NONE), _plan()
    assert chosen.type.layout == Swizzle(3, 4, 3) and chosen.wavefronts == chosen.ideal
    assert plain.wavefronts > chosen.wavefronts and plain.ideal == chosen.ideal
    x = np.random.default_rng(3).standard_normal((32, 64)).astype(np.float16)
    measured = {}
    for name, sw in (("plain", NONE), ("chosen", None)):
        ck = compiled(transpose, cache, SW=sw)
        st = run_on_emulator(ck, (1,), [x, np.zeros_like(x)])
        measured[name] = st.shared_wavefronts
    # the bank model of the plan is the emulator's: same addresses, same wavefronts
    assert measured == {"plain": plain.wavefronts, "chosen": chosen.wavefronts}, (measured, plain, chosen)
    assert measured["plain"] >= 2 * measured["chosen"]


def test_a_narrow_swizzle_narrows_the_vector_accesses() -> None:
    from lowbit.ir import ops as O
    from lowbit.ir.rewrite import walk

    prog = _selected(transpose.specialize(SW=Swizzle(2, 3, 4)))  # 8-byte chunks: no 16-byte access fits one
    vecs = {type(op).__name__: op.vec for op in walk(prog.body) if isinstance(op, O.LoadShared | O.StoreShared)}
    assert vecs == {"StoreShared": 4, "LoadShared": 4}  # 4 f16 = 8 bytes
    assert max(r.width for r in acc.requests(next(op for op in walk(prog.body) if isinstance(op, O.LoadShared)), 128)) == 8


def test_candidates_never_split_an_access() -> None:
    from lowbit.ir.types import SharedType

    t = SharedType(lowbit.dtype("f16"), (32, 64))
    wide = [acc.Request(tuple(range(0, 512, 16)), 16)]
    narrow = [acc.Request(tuple(range(0, 128, 4)), 4)]
    assert all(sw.base >= 4 for sw in plan_shared.candidates(t, wide))
    assert {sw.base for sw in plan_shared.candidates(t, narrow)} == {2, 3, 4}
    assert plan_shared.candidates(t, wide)[0] == Swizzle(3, 4, 3)  # rows of 128 bytes: the classic one first


@lowbit.kernel(num_warps=4)
def staged(x_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16")):
    """A 16-byte cp.async tile, read back by rows: what the planner prices is what the emulator counts, per form."""
    buf = lowbit.shared(lowbit.f16, (32, 64))
    lowbit.copy_async(buf, lowbit.global_view(x_ptr, (32, 64)), (0, 0))
    lowbit.commit()
    lowbit.wait(0)
    lowbit.barrier()
    lowbit.store(lowbit.global_view(o_ptr, (32, 64)), lowbit.load(buf, (0, 0), (32, 64)), (0, 0))


def test_wavefronts_per_instruction_form_match_the_plan(cache: CompileCache) -> None:
    (p,) = plan_shared.plan(_selected(staged.specialize()), Options("sm_80"))
    x = np.random.default_rng(5).standard_normal((32, 64)).astype(np.float16)
    o = np.zeros_like(x)
    st = run_on_emulator(compiled(staged, cache), (1,), [x, o])
    np.testing.assert_array_equal(o, x)
    assert st.checks and st.shared_wavefronts == p.wavefronts == p.ideal
    cp = st.shared_wavefronts_by_opcode["cp.async.cg.16"], st.shared_requests_by_opcode["cp.async.cg.16"]
    assert cp == (4 * 8, 8)  # 4 KiB in 16-byte copies: 8 warp requests, 4 wavefronts each (quarter-warp phases)
    assert sum(st.shared_requests_by_opcode.values()) == st.shared_requests
