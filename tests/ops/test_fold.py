"""FOLD (the float codes' exponent-bias correction folded into the scales) is chosen only when it changes nothing."""

from __future__ import annotations

import numpy as np

import lowbit
import lowbit.ops as ops
from lowbit.ops import _launch
from lowbit.ops._fold import fold_exponent, fold_ok


def _weight(fmt: str, scale: float = 0.5, seed: int = 5) -> ops.QuantizedWeight:
    rng = np.random.default_rng(seed)
    return ops.quantize_weight(rng.standard_normal((288, 40)) * scale, fmt)


def test_fold_exponent_per_format_and_activation() -> None:
    assert fold_exponent(lowbit.dtype("e2m1"), "f16") == 14 and fold_exponent(lowbit.dtype("e2m1"), "bf16") == 126
    assert fold_exponent(lowbit.dtype("e4m3"), "f16") == 8 and fold_exponent(lowbit.dtype("e5m2"), "f16") == 0
    assert fold_exponent(lowbit.dtype("mxfp4"), "f16") == 14  # its element, e2m1
    assert fold_exponent(lowbit.dtype("uint4"), "f16") is None and fold_exponent(lowbit.dtype("nf4"), "f16") is None


def test_overflowing_or_inexact_folds_are_refused() -> None:
    qw = _weight("e2m1")
    assert fold_ok(qw.wtype, qw.scales, qw.scale_format, "f16")
    big = np.array(qw.scales, copy=True)
    big[2, 7] = 8.0  # 8 * 2**14 = 131072 > 65504: the folded scale would be inf
    assert not fold_ok(qw.wtype, big, qw.scale_format, "f16")
    sub = np.array(qw.scales, copy=True)
    sub[0, 0] = np.float16(2.0**-24) * 3  # a subnormal scale: times 2**14 it is still exact
    assert fold_ok(qw.wtype, sub, qw.scale_format, "f16")
    mx = _weight("mxfp4")
    assert fold_ok(mx.wtype, mx.scales, mx.scale_format, "f16")
    huge = np.array(mx.scales, copy=True)
    huge[0, 0] = 200  # e8m0 2**73: no f16 holds 2**87
    assert not fold_ok(mx.wtype, huge, mx.scale_format, "f16")


def test_folded_kernel_equals_the_unfolded_one_bit_for_bit() -> None:
    for fmt in ("e2m1", "e4m3", "mxfp4"):
        qw = _weight(fmt)
        a = np.random.default_rng(1).standard_normal((3, 288)).astype(np.float16)
        folded = ops.matmul(a, qw, backend="emulator")  # FOLD chosen: the scales allow it
        q = qw.numpy()
        p = _launch.plan(q.wtype, q.group_size, q.zero, q.scale_format.name, "f16", False, q.layout, True, False)
        assert dict(_launch.plan(q.wtype, q.group_size, q.zero, q.scale_format.name, "f16", False, q.layout, True,
                                 True).constexprs)["FOLD"]  # fmt: skip
        out = np.full((3, 40), np.nan, np.float16)
        spare = np.zeros(1, np.float16)
        args = _launch.kernel_arguments(p, np.array(a), np.array(q.qweight), np.array(q.scales),
                                        None if q.zeros is None else np.array(q.zeros),
                                        None if q.tensor_scale is None else np.array(q.tensor_scale),
                                        None, out, spare, 3, 40, 288)  # fmt: skip
        _launch.kernel()[p.grid(3, 40)](*args, **p.kwargs())
        np.testing.assert_array_equal(folded.view(np.uint16), out.view(np.uint16), err_msg=fmt)
