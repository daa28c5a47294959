"""Packed sub-byte elements in shared memory: 4 bits per uint4 (any width 1..7), LSB-first, word-level access.

A tile of codes goes global -> shared (a register store, or ``copy_async``)
-> registers in another layout -> global, and must come back bit-exact
(interpreter, emulator, and the window of the input codes computed with
numpy).  Aligned shapes move whole words (vector stores, 16-byte
``cp.async``); odd shapes put several threads' codes in one byte, which
the lowering writes with ``atom.shared.and/or`` pairs -- the racecheck is
on.  The buffer takes ``bits / 8`` bytes per element.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.errors import CodegenError
from lowbit.transforms import Options, plan_shared
from tests.transforms.harness import both, compiled
from tests.transforms.test_plan_shared import _selected


@lowbit.kernel(num_warps=4)
def roundtrip(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("uint32"), R: lowbit.int32, C: lowbit.int32,
              T: lowbit.constexpr = lowbit.uint4, BR: lowbit.constexpr = 16, BC: lowbit.constexpr = 64,
              VIA: lowbit.constexpr = "store"):  # fmt: skip
    r0, c0 = lowbit.program_id(0) * BR, lowbit.program_id(1) * BC
    src = lowbit.global_view(w_ptr, (R, C), dtype=T)
    buf = lowbit.shared(T, (BR, BC))
    if VIA == "copy":
        lowbit.copy_async(buf, src, (r0, c0))
        lowbit.commit()
        lowbit.wait(0)
    else:
        lowbit.store(buf, lowbit.load(src, (r0, c0), (BR, BC)))
    lowbit.barrier()
    t = lowbit.load(buf, (0, 0), (BR, BC), layout=lowbit.layout.blocked((BR, BC), 128))  # one code per slot
    lowbit.store(lowbit.global_view(o_ptr, (R, C), dtype=T), t, (r0, c0))


def _codes(bits: int, r: int, c: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    codes = rng.integers(0, 1 << bits, (r, c)).astype(np.uint8)
    words = lowbit.pack(codes.reshape(-1), bits)
    return codes, np.concatenate([words, np.zeros(2, np.uint32)])  # a spare word: odd rows read past the end


CASES = [(b, via, shape) for b in range(1, 8) for via in ("store", "copy") for shape in ((16, 64), (8, 20))]


@pytest.mark.parametrize(("bits", "via", "shape"), CASES, ids=[f"u{b}-{v}-{s[0]}x{s[1]}" for b, v, s in CASES])
def test_packed_codes_survive_shared_memory(bits: int, via: str, shape: tuple[int, int], cache: CompileCache) -> None:
    t = lowbit.dtype(f"uint{bits}")
    br, bc = shape
    r, c = 2 * br - 3, 2 * bc - 5  # partial blocks at the bottom and right edges
    rng = np.random.default_rng(bits * 10 + br)
    codes, words = _codes(bits, r, c, rng)
    out = np.zeros_like(words)
    grid = (-(-r // br), -(-c // bc))
    [(_, got)] = both(roundtrip, cache, grid, [words, out, r, c], [1], T=t, BR=br, BC=bc, VIA=via)
    back = lowbit.unpack(got[: words.size - 2], bits, count=r * c).reshape(r, c)
    np.testing.assert_array_equal(back, codes)
    ck = compiled(roundtrip, cache, T=t, BR=br, BC=bc, VIA=via)
    (plan,) = plan_shared.plan(_selected(roundtrip.specialize(T=t, BR=br, BC=bc, VIA=via)), Options("sm_80"))
    packed = -(-br * bc * bits // 8)
    assert plan.size == -(-packed // (16 if plan.type.layout is None else 128)) * (16 if plan.type.layout is None else 128)
    assert ck.shared_bytes == plan.size


def test_uint4_tiles_take_half_a_byte_per_code_and_move_as_words(cache: CompileCache) -> None:
    ck = compiled(roundtrip, cache, T=lowbit.uint4, BR=16, BC=64, VIA="copy")
    assert ck.shared_bytes == 16 * 64 // 2
    assert re.findall(r"cp\.async\.cg\.shared\.global \[[^]]+\], \[[^]]+\], 16", ck.ptx)  # 32 codes a copy
    assert "atom.shared" not in ck.ptx  # every thread owns whole words
    odd = compiled(roundtrip, cache, T=lowbit.uint3, BR=8, BC=20, VIA="store")
    assert "atom.shared.and.b32" in odd.ptx and "atom.shared.or.b32" in odd.ptx  # neighbours share bytes
    plans = plan_shared.plan(_selected(roundtrip.specialize(T=lowbit.uint4, BR=16, BC=64)), Options("sm_80"))
    assert {p.name: p.size for p in plans} == {"buf": 512}


@lowbit.kernel(num_warps=1)
def stages3(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("uint32"), T: lowbit.constexpr = lowbit.uint4):
    """Stages of 4 codes (2 bytes for uint4): a stage starts inside a word, neighbours' codes share it."""
    src = lowbit.global_view(w_ptr, (5, 4), dtype=T)
    dst = lowbit.global_view(o_ptr, (5, 4), dtype=T)
    ring = lowbit.shared(T, (5, 4))
    for s in range(5):
        lowbit.store(ring[s], lowbit.reshape(lowbit.load(src, (s, 0), (1, 4)), (4,)))
    lowbit.barrier()
    for s in range(5):
        lowbit.store(dst, lowbit.reshape(lowbit.load(ring[4 - s], (0,), (4,)), (1, 4)), (s, 0))


@pytest.mark.parametrize("bits", [2, 4])
def test_stages_that_start_inside_a_word(bits: int, cache: CompileCache) -> None:
    t = lowbit.dtype(f"uint{bits}")
    codes, words = _codes(bits, 5, 4, np.random.default_rng(bits))
    out = np.zeros_like(words)
    [(_, got)] = both(stages3, cache, (1,), [words, out], [1], T=t)
    back = lowbit.unpack(got[: words.size - 2], bits, count=20).reshape(5, 4)
    np.testing.assert_array_equal(back, codes[::-1])


def test_a_stage_that_starts_inside_a_byte_is_refused_at_its_line(cache: CompileCache) -> None:
    with pytest.raises(CodegenError, match=r"test_shared_subbyte.py:\d+:\d+: cannot lower shared_view: a view of 4 "
                                           r"uint3 elements does not start on a byte"):  # fmt: skip
        lowbit.compile(stages3, T=lowbit.uint3, cache=cache)
