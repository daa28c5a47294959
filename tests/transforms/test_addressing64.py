"""Global addresses are computed in 64 bits: an element offset past 2**31 (or 2**32) is not wrapped.

No test machine has the 12 GiB such a buffer needs, so the emulator's
memcheck is the witness: the launch faults, and the faulting address it
reports is the 64-bit one (an offset wrapped to 32 bits would land on a
different address, or in bounds and go unnoticed).  ``kernel[grid](...)``
refuses such arguments before launching (the binder sizes the view), so the
witness runs the compiled PTX on ``lowbit.emu.launch`` directly.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.errors import EmulatorError, LaunchError
from lowbit.emu import launch as emu_launch
from tests.transforms.harness import compiled


@lowbit.kernel(num_warps=1)
def row_copy(x: lowbit.ptr("f32"), out: lowbit.ptr("f32"), stride: lowbit.int64, rows: lowbit.int32, r: lowbit.int32):
    v = lowbit.global_view(x, (rows, 32), strides=(stride, 1))
    t = lowbit.load(v, (r, 0), (1, 32))
    lowbit.store(lowbit.global_view(out, (1, 32)), t, (0, 0))


@lowbit.kernel(num_warps=1)
def row_copy32(x: lowbit.ptr("uint8"), out: lowbit.ptr("uint8"), stride: lowbit.int32, rows: lowbit.int32, r: lowbit.int32):
    v = lowbit.global_view(x, (rows, 32), strides=(stride, 1))
    t = lowbit.load(v, (r, 0), (1, 32))
    lowbit.store(lowbit.global_view(out, (1, 32)), t, (0, 0))


def _fault_address(kernel: object, *args: object) -> int:
    with pytest.raises(LaunchError, match="argument 'x': the kernel views it as"):
        kernel[(1,)](*args)  # type: ignore[index]
    ck = lowbit.compile(kernel, arch="sm_80")
    typed = [a if isinstance(a, np.ndarray) else np.dtype(p.ptx_type).type(a) for a, p in zip(args, ck.params)]
    with pytest.raises(EmulatorError, match="out-of-bounds global load") as exc:
        emu_launch(ck.ptx, ck.kernel_name, (1,), ck.threads_per_block, typed)
    m = re.search(r"at address (0x[0-9a-f]+)", str(exc.value))
    assert m, str(exc.value)
    return int(m.group(1), 16)


def test_in_bounds_rows_read_what_numpy_reads(cache: CompileCache) -> None:
    compiled(row_copy, cache)
    x = np.arange(128, dtype=np.float32)
    for stride, r in ((32, 1), (40, 1), (33, 2)):
        out = np.full(32, np.nan, np.float32)
        row_copy[(1,)](x, out, stride, 3, r)
        np.testing.assert_array_equal(out, x[r * stride : r * stride + 32])


def test_an_int64_stride_past_2_32_is_not_truncated() -> None:
    # stride 2**32 truncated to 32 bits is 0: row 1 would read row 0, in bounds, silently.
    x, out = np.arange(64, dtype=np.float32), np.zeros(32, np.float32)
    a1 = _fault_address(row_copy, x, out, 2**32, 2, 1)
    a2 = _fault_address(row_copy, x, out, 2**32 + 8, 2, 1)
    assert a2 - a1 == 8 * 4


def test_an_int32_index_times_int32_stride_past_2_31_is_widened_first() -> None:
    # 3 * 2**30 = 0xC0000000: as an i32 product it is -2**30, so the two faults would be 2**33 bytes apart
    # in the wrong direction; in 64 bits row 3 lies 2 * 2**30 elements (bytes here) above row 1.
    x, out = np.zeros(64, np.uint8), np.zeros(32, np.uint8)
    a1 = _fault_address(row_copy32, x, out, 2**30, 4, 1)
    a3 = _fault_address(row_copy32, x, out, 2**30, 4, 3)
    assert a3 - a1 == 2 * 2**30


def test_the_simt_multiplies_offsets_in_i64(cache: CompileCache) -> None:
    ck = compiled(row_copy32, cache)
    assert re.search(r"%off[.\d]*: i64 = mul %\S+, %stride\.?\d*", ck.simt) or re.search(
        r"%\S+: i64 = sext %stride", ck.simt
    ), ck.simt
    # the stride parameter is loaded sign-extended and multiplied in 64 bits
    assert re.search(r"ld\.param\.s32\s+%rd", ck.ptx) and re.search(r"(mul|mad)\.(lo\.s64|wide\.s32)", ck.ptx), ck.ptx
