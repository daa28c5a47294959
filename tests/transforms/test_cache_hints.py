"""Cache hints as load options: L1 eviction priority, L2 eviction policies, L2 prefetch sizes.

They never change a result: the kernel with hints equals the interpreter (and
the same kernel without them) on the emulator; the PTX carries them in the
PTX ISA's spelling (9.7.9.8 ``ld``, 9.7.9.25 ``cp.async``, 9.7.9.17
``createpolicy``) and ptxas assembles it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.errors import DSLError
from tests.transforms.harness import both, compiled


@lowbit.kernel(num_warps=4)
def streamed(w_ptr: lowbit.ptr("f16"), s_ptr: lowbit.ptr("f16"), o_ptr: lowbit.ptr("f16"), R: lowbit.int32,
             C: lowbit.int32, L1: lowbit.constexpr = "", L2: lowbit.constexpr = "", PF: lowbit.constexpr = 0):  # fmt: skip
    """o = w * s, the weights streamed (read once) and the scales kept (re-read by every block)."""
    r0 = lowbit.program_id(0) * 16
    w = lowbit.global_view(w_ptr, (R, C))
    buf = lowbit.shared(lowbit.f16, (16, 64))
    lowbit.copy_async(buf, w, (r0, 0), l2=L2 or None, prefetch=PF or None)
    lowbit.commit()
    s = lowbit.load(lowbit.global_view(s_ptr, (1, C)), (0, 0), (1, 64), l1=L1 or None, l2="evict_last" if L2 else None,
                    prefetch=PF or None)  # fmt: skip
    t = lowbit.load(w, (r0, 0), (16, 64), mask=None, l1=L1 or None, l2=L2 or None, prefetch=PF or None)
    lowbit.wait(0)
    lowbit.barrier()
    u = lowbit.load(buf, (0, 0), (16, 64))
    lowbit.store(lowbit.global_view(o_ptr, (R, C)), (t + u) * s, (r0, 0))


HINTS = [("", "", 0), ("evict_first", "", 0), ("no_allocate", "evict_first", 0), ("evict_last", "evict_first", 128),
         ("", "evict_last", 256)]  # fmt: skip


@pytest.mark.parametrize(("l1", "l2", "pf"), HINTS, ids=[f"{a or '-'}.{b or '-'}.{c}" for a, b, c in HINTS])
def test_hints_reach_the_ptx_and_change_no_value(l1: str, l2: str, pf: int, cache: CompileCache) -> None:
    rng = np.random.default_rng(4)
    r, c = 37, 60  # partial rows and columns: masked loads and zero-filled copies
    w = rng.standard_normal((r, c)).astype(np.float16)
    s = rng.standard_normal((1, c)).astype(np.float16)
    o = np.full((r, c), np.nan, np.float16)
    [(want, got)] = both(streamed, cache, (3,), [w, s, o, r, c], [2], L1=l1, L2=l2, PF=pf)
    np.testing.assert_array_equal(got[:, :60], ((w + w) * s).astype(np.float16))
    ck = compiled(streamed, cache, L1=l1, L2=l2, PF=pf)
    loads = re.findall(r"ld\.global[.\w:]*", ck.ptx)
    copies = re.findall(r"cp\.async\.c[ag]\.shared\.global[.\w:]*", ck.ptx)
    if l1:
        assert any(f".L1::{l1}" in x for x in loads), loads
    if l2:
        assert re.search(rf"createpolicy\.fractional\.L2::{l2}\.b64", ck.ptx)
        assert any(".L2::cache_hint" in x for x in loads) and all(".L2::cache_hint" in x for x in copies), copies
    if pf:
        assert any(f".L2::{pf}B" in x for x in loads) and all(f".L2::{pf}B" in x for x in copies)
    if not (l1 or l2 or pf):
        assert not any("::" in x for x in loads + copies)


@lowbit.kernel(num_warps=1)
def _bad_l1(x_ptr: lowbit.ptr("f32")):
    lowbit.load(lowbit.global_view(x_ptr, (32,)), (0,), (32,), l1="evict_sometimes")


@lowbit.kernel(num_warps=1)
def _hint_on_shared(x_ptr: lowbit.ptr("f32")):
    buf = lowbit.shared(lowbit.f32, (32,))
    lowbit.load(buf, (0,), (32,), l2="evict_first")


@lowbit.kernel(num_warps=1)
def _bad_prefetch(x_ptr: lowbit.ptr("f32")):
    buf = lowbit.shared(lowbit.f32, (32,))
    lowbit.copy_async(buf, lowbit.global_view(x_ptr, (32,)), prefetch=512)


@pytest.mark.parametrize(("kernel", "message"), [
    (_bad_l1, r"load: l1 must be one of 'evict_normal', .*, got the constant 'evict_sometimes'"),
    (_hint_on_shared, r"load: cache hints \(l1, l2, prefetch\) apply to global loads only"),
    (_bad_prefetch, r"copy_async: prefetch must be one of 64, 128, 256, got the constant 512"),
])  # fmt: skip
def test_bad_hints_are_errors_at_the_line(kernel, message: str) -> None:  # noqa: ANN001
    with pytest.raises(DSLError, match=r"test_cache_hints.py:\d+:\d+: " + message):
        kernel.specialize()
