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
