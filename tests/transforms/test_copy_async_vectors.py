"""copy_async of 1- and 2-byte elements as 4/8/16-byte cp.async chunks, against the interpreter and numpy.

Row lengths and offsets make some chunks aligned (one cp.async, the row's
tail zero-filled through src_size), others misaligned, partly or wholly out
of bounds or at negative columns (copied synchronously); shared rows that
take 8-, 4-byte chunks or none at all.  The emulator checks that no shared
byte is read before the cp.async writing it is waited for (and barriered).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.errors import IRError
from lowbit.ir import ops as O
from lowbit.ir.rewrite import walk
from lowbit.transforms import Options, lower_vm
from tests.transforms.harness import both, compiled


@lowbit.kernel
def copy_f16(x_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), R: lowbit.int32, C: lowbit.int32,
             r0: lowbit.int32, c0: lowbit.int32, BR: lowbit.constexpr = 8, BC: lowbit.constexpr = 40):  # fmt: skip
    buf = lowbit.shared(lowbit.f16, (BR, BC))
    lowbit.copy_async(buf, lowbit.global_view(x_ptr, (R, C)), (r0, c0))
    lowbit.commit()
    lowbit.wait(0)
    lowbit.barrier()
    lowbit.store(lowbit.global_view(o_ptr, (BR, BC)), lowbit.load(buf, (0, 0), (BR, BC)), (0, 0))


@lowbit.kernel
def copy_u8(x_ptr: lowbit.ptr("uint8"), o_ptr: lowbit.ptr("uint8"), R: lowbit.int32, C: lowbit.int32,
            r0: lowbit.int32, c0: lowbit.int32, BR: lowbit.constexpr = 8, BC: lowbit.constexpr = 40):  # fmt: skip
    buf = lowbit.shared(lowbit.uint8, (BR, BC))
    lowbit.copy_async(buf, lowbit.global_view(x_ptr, (R, C)), (r0, c0))
    lowbit.commit()
    lowbit.wait(0)
    lowbit.barrier()
    lowbit.store(lowbit.global_view(o_ptr, (BR, BC)), lowbit.load(buf, (0, 0), (BR, BC)), (0, 0))


def _window(x: np.ndarray, r0: int, c0: int, br: int, bc: int) -> np.ndarray:
    out = np.zeros((br, bc), x.dtype)
    for i in range(br):
        for j in range(bc):
            if 0 <= r0 + i < x.shape[0] and 0 <= c0 + j < x.shape[1]:
                out[i, j] = x[r0 + i, c0 + j]
    return out


# (R, C, r0, c0, BR, BC, chunk bytes or 0)
CASES = {
    "f16": [(13, 64, 3, 8, 8, 40, 16), (13, 37, 0, 0, 8, 40, 16), (9, 60, 2, 31, 8, 40, 16), (5, 64, -2, -3, 8, 40, 16),
            (11, 50, 1, 4, 6, 12, 8), (7, 33, 0, 1, 5, 6, 4), (7, 33, 2, 0, 3, 7, 0)],
    "uint8": [(13, 64, 3, 16, 8, 48, 16), (13, 37, 1, 5, 8, 48, 16), (9, 100, 0, 90, 4, 24, 8),
              (7, 23, 2, 3, 5, 20, 4), (7, 23, 0, 0, 5, 6, 0)],
}  # fmt: skip
PARAMS = [(t, c) for t, cs in CASES.items() for c in cs]


@pytest.mark.parametrize(("t", "case"), PARAMS, ids=[f"{t}-{'x'.join(map(str, c[:6]))}" for t, c in PARAMS])
def test_narrow_async_copies(t: str, case: tuple[int, ...], cache: CompileCache) -> None:
    r, c, r0, c0, br, bc, chunk = case
    kernel = copy_f16 if t == "f16" else copy_u8
    ck = compiled(kernel, cache, BR=br, BC=bc)
    copy = r"cp\.async\.c[ag]\.shared\.global(?:\.L2::\w+)? \[[^]]+\], \[[^]]+\], (\d+)"
    kinds = {int(m) for m in re.findall(copy, ck.ptx)}
    assert kinds == ({chunk} if chunk else set()), kinds
    rng = np.random.default_rng(r * 1000 + c)
    if t == "f16":
        x = rng.standard_normal((r, c)).astype(np.float16)
        o = np.full((br, bc), np.nan, np.float16)
    else:
        x = rng.integers(1, 256, (r, c)).astype(np.uint8)
        o = np.full((br, bc), 0, np.uint8)
    [(_, got)] = both(kernel, cache, (1,), [x, o, r, c, r0, c0], [1], BR=br, BC=bc)
    np.testing.assert_array_equal(got, _window(x, r0, c0, br, bc))


# ------------------------------------------------------------------------------------------------ proven-aligned runs


@lowbit.kernel
def copy_strided(x_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), R: lowbit.int32, C: lowbit.int32,
                 LD: lowbit.int32, r0: lowbit.int32, c0: lowbit.int32, BR: lowbit.constexpr = 8,
                 BC: lowbit.constexpr = 64):  # fmt: skip
    buf = lowbit.shared(lowbit.f16, (BR, BC))
    lowbit.copy_async(buf, lowbit.global_view(x_ptr, (R, C), (LD, 1)), (r0, c0))
    lowbit.commit()
    lowbit.wait(0)
    lowbit.barrier()
    lowbit.store(lowbit.global_view(o_ptr, (BR, BC)), lowbit.load(buf, (0, 0), (BR, BC)), (0, 0))


BIG = 2**31 - 16  # offset + column passes int32: every such chunk is out of bounds, none wraps into the view
# (R, C, LD, r0, c0): the launch facts say x_ptr, LD and c0 are multiples of 16, C of 16 only where C % 16 == 0
STRIDED = [(13, 64, 64, 3, 16), (9, 48, 48, -2, -16), (13, 37, 48, 1, 16), (6, 45, 64, 0, 0), (5, 70, 80, 4, 32),
           (13, 64, 64, 2**31 - 4, 0), (13, 64, 64, 0, BIG), (7, 29, 32, -9, -64), (3, 0, 16, 0, 0)]  # fmt: skip


@pytest.mark.parametrize("case", STRIDED, ids=["x".join(map(str, c)) for c in STRIDED])
def test_proven_aligned_runs_copy_all_or_nothing_or_their_tail(case: tuple[int, ...], cache: CompileCache) -> None:
    """Selection proves the 16-byte runs aligned (ptr, LD and c0 divisible): one cp.async each, whatever its
    bounds.  Where C is a multiple of the run too (``whole``) it is all or nothing (``ignore-src``); else the
    row's partial run reads only its part (``src-size``).  Negative and int32-passing offsets are out of bounds."""
    from lowbit.compiler import compile_program, run_on_emulator  # noqa: PLC0415

    r, c, ld, r0, c0 = case
    whole = c % 16 == 0
    facts = {"x_ptr": 16, "o_ptr": 16, "LD": 16, "c0": 16} | ({"C": 16} if whole else {})
    prog = copy_strided.specialize().with_facts(facts)
    [cp] = [op for op in walk(lower_vm(prog, Options("sm_80")).body) if isinstance(op, O.CopyAsync)]
    assert cp.vec == 8 and cp.whole == whole
    ck = compile_program(prog, "sm_80", cache)
    assert ("ignore_src" in ck.simt) == whole
    last = [ln.split(",")[-1].strip() for ln in ck.ptx.splitlines() if "cp.async.cg.shared.global" in ln]
    assert last and all(x.startswith("%p" if whole else "%r") for x in last), last  # ignore-src / src-size
    rng = np.random.default_rng(r * 1000 + c)
    x = rng.standard_normal(max(1, r * ld)).astype(np.float16)
    o = np.full((8, 64), np.nan, np.float16)
    run_on_emulator(ck, (1,), [x, o, r, c, ld, r0, c0])
    want = np.zeros((8, 64), np.float16)
    for i in range(8):
        for j in range(64):
            if 0 <= r0 + i < r and 0 <= c0 + j < c:
                want[i, j] = x[(r0 + i) * ld + c0 + j]
    np.testing.assert_array_equal(o, want)
    o2 = np.full((8, 64), np.nan, np.float16)
    copy_strided.interpret[(1,)](x, o2, r, c, ld, r0, c0)
    np.testing.assert_array_equal(o2, want)


def test_whole_needs_a_vector_width() -> None:
    prog = lower_vm(copy_strided.specialize(), Options("sm_80"))  # no facts: vec 1, not whole
    [cp] = [op for op in walk(prog.body) if isinstance(op, O.CopyAsync)]
    assert cp.vec == 1 and not cp.whole
    with pytest.raises(IRError, match="whole .* needs vec > 1"):
        cp.replace(whole=True)
