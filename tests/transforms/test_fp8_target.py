"""The default target: sm_89 exactly when an FP8 format appears anywhere in the program."""

from __future__ import annotations

import lowbit
from lowbit.compiler import driver


@lowbit.kernel
def fp8_in_loop(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32"), n: lowbit.int32):
    acc = lowbit.zeros((64,), lowbit.f32)
    for k in range(0, n, 64):
        x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (k,), (64,))
        acc = acc + lowbit.cast(lowbit.cast(x, lowbit.e5m2), lowbit.f32)  # FP8 only inside the loop body
    lowbit.store(lowbit.global_view(o_ptr, (64,)), acc, (0,))


@lowbit.kernel
def fp8_lookalike_names(x_e4m3fn: lowbit.ptr("f32"), out_e5m2: lowbit.ptr("f32"), n: lowbit.int32,
                        s_e4m3fn: lowbit.f32):  # fmt: skip
    v = lowbit.load(lowbit.global_view(x_e4m3fn, (n,)), (0,), (64,))
    lowbit.store(lowbit.global_view(out_e5m2, (n,)), s_e4m3fn * v, (0,))


def test_fp8_anywhere_selects_sm_89_and_names_do_not() -> None:
    assert driver.needs_fp8(fp8_in_loop.specialize())
    assert not driver.needs_fp8(fp8_lookalike_names.specialize())
