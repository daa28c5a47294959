"""FOLD (the float codes' exponent-bias correction folded into the scales) is chosen only when it changes nothing."""

from __future__ import annotations

import dataclasses

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
    tiny = np.array(mx.scales, copy=True)
    tiny[1, 3] = 127 - 14 - 15  # e8m0 2**-29: times 2**14 an f16 subnormal, exact -- but the kernel builds e8m0
    assert not fold_ok(mx.wtype, tiny, mx.scale_format, "f16")  # folds from the exponent alone: normal values only
    tiny[1, 3] = 127 - 14 - 14  # 2**-28 * 2**14 = 2**-14, the smallest normal f16
    assert fold_ok(mx.wtype, tiny, mx.scale_format, "f16")


def test_folded_kernel_equals_the_unfolded_one_bit_for_bit() -> None:
    import ml_dtypes

    for fmt, act in (("e2m1", "f16"), ("e4m3", "f16"), ("mxfp4", "f16"), ("mxfp4", "bf16")):
        qw = _weight(fmt)
        npdt = np.float16 if act == "f16" else ml_dtypes.bfloat16
        assert fold_ok(qw.wtype, qw.scales, qw.scale_format, act), (fmt, act)
        a = np.random.default_rng(1).standard_normal((3, 288)).astype(npdt)
        folded = ops.matmul(a, qw, backend="emulator")  # FOLD chosen: the scales allow it
        q = qw.numpy()
        p = _launch.plan(q.wtype, q.group_size, q.zero, q.scale_format.name, act, False, q.layout, True, False)
        assert dict(_launch.plan(q.wtype, q.group_size, q.zero, q.scale_format.name, act, False, q.layout, True,
                                 True).constexprs)["FOLD"]  # fmt: skip
        out = np.full((3, 40), np.nan, npdt)
        spare = np.zeros(1, npdt)
        args = _launch.kernel_arguments(p, np.array(a), np.array(q.qweight), np.array(q.scales),
                                        None if q.zeros is None else np.array(q.zeros),
                                        None if q.tensor_scale is None else np.array(q.tensor_scale),
                                        None, out, spare, 3, 40, 288)  # fmt: skip
        _launch.kernel()[p.grid(3, 40)](*args, **p.kwargs())
        np.testing.assert_array_equal(np.asarray(folded).view(np.uint16), out.view(np.uint16), err_msg=f"{fmt} {act}")


def test_the_nan_free_twin_is_chosen_only_for_fn_formats_and_decodes_alike() -> None:
    from lowbit.ops._fold import finite_twin

    e4m3 = lowbit.dtype("e4m3")  # e4m3fn: 0x7f / 0xff are NaN
    for act in ("f16", "bf16"):
        twin = finite_twin(e4m3, act)
        assert twin is not None and twin.nan == "none" and (twin.exponent, twin.mantissa, twin.bias) == (4, 3, 7)
        codes = np.arange(256, dtype=np.uint64)
        a, b = np.asarray(e4m3.decode(codes), np.float64), np.asarray(twin.decode(codes), np.float64)
        finite = np.isfinite(a)
        assert finite.sum() == 254 and np.array_equal(a[finite], b[finite]) and np.isfinite(b).all()
    assert finite_twin(lowbit.dtype("e5m2"), "f16") is None  # f16's top byte: NaN and inf map as they are
    assert finite_twin(lowbit.dtype("e2m1"), "f16") is None and finite_twin(lowbit.dtype("uint4"), "f16") is None


def test_a_nan_code_keeps_the_exact_format_and_gives_nan() -> None:
    from lowbit.ops._fold import read_finite

    qw = _weight("e4m3").numpy()
    assert read_finite(qw, "f16")  # quantize_weight writes no NaN code
    a = np.random.default_rng(2).standard_normal((2, 288)).astype(np.float16)
    twin_out = ops.matmul(a, qw, backend="emulator")  # read through the twin
    p = _launch.plan(qw.wtype, qw.group_size, qw.zero, qw.scale_format.name, "f16", False, qw.layout, True,
                     fold_ok(qw.wtype, qw.scales, qw.scale_format, "f16"), False)  # fmt: skip
    exact = np.full((2, 40), np.nan, np.float16)
    args = _launch.kernel_arguments(p, np.array(a), np.array(qw.qweight), np.array(qw.scales), None, None, None,
                                    exact, np.zeros(1, np.float16), 2, 40, 288)  # fmt: skip
    _launch.kernel()[p.grid(2, 40)](*args, **p.kwargs())
    np.testing.assert_array_equal(np.asarray(twin_out).view(np.uint16), exact.view(np.uint16))
    bad = np.array(qw.qweight, copy=True)
    bad.reshape(-1).view(np.uint8)[37 * 4 * 40 + 4 * 11 + 2] = 0x7F  # code (37*4 + 2, 11): e4m3fn's NaN
    qn = dataclasses.replace(qw, qweight=bad)
    assert not read_finite(qn, "f16")
    out = np.asarray(ops.matmul(a, qn, backend="emulator"), np.float64)
    assert np.isnan(out[:, 11]).all() and np.isfinite(np.delete(out, 11, axis=1)).all()


def test_codebooks_are_read_with_their_values_rounded_to_the_activation_dtype() -> None:
    import ml_dtypes

    from lowbit.ops._fold import codebook_in

    nf4 = lowbit.dtype("nf4")
    for act, npdt in (("f16", np.float16), ("bf16", ml_dtypes.bfloat16)):
        t = codebook_in(nf4, act)
        want = np.asarray(lowbit.dtypes.NF4_VALUES, np.float64).astype(npdt).astype(np.float64)
        assert t is not None and np.array_equal(np.asarray(t.table), want) and t.bits == 4
        assert not np.array_equal(want, np.asarray(lowbit.dtypes.NF4_VALUES))  # nf4 really changes
        p = _launch.plan(nf4, 128, "none", "f16", act, False, 1, True)
        assert dict(p.constexprs)["W"] == t
    exact = lowbit.codebook((-2.0, -0.5, 0.25, 3.0))
    assert codebook_in(exact, "f16") is None and codebook_in(exact, "bf16") is None
    assert codebook_in(lowbit.dtype("uint4"), "f16") is None and codebook_in(lowbit.dtype("e2m1"), "f16") is None


def test_nvfp4_splits_the_fold_with_the_accumulator_and_changes_no_bit() -> None:
    import ml_dtypes

    from lowbit.ops._fold import block_fold

    assert block_fold(lowbit.dtype("nvfp4"), "f16") == 7  # 448 * 2**7 = 57344 fits f16, 448 * 2**8 does not
    assert block_fold(lowbit.dtype("nvfp4"), "bf16") == 7  # 448 * 2**120 fits bf16; the products need 2**-7 room
    assert block_fold(lowbit.dtype("mxfp4"), "f16") is None  # e8m0 scales: byte-wide, checked on the host
    assert block_fold(lowbit.dtype("e2m1"), "f16") is None
    for act, npdt in (("f16", np.float16), ("bf16", ml_dtypes.bfloat16)):
        qw = _weight("nvfp4", scale=3.0).numpy()
        a = np.random.default_rng(3).standard_normal((3, 288)).astype(npdt)
        got = np.asarray(ops.matmul(a, qw, backend="emulator"))
        p = _launch.plan(qw.wtype, qw.group_size, qw.zero, qw.scale_format.name, act, False, qw.layout, True, False)
        kw = p.kwargs()
        assert kw["FOLD"] and kw["ACC_EXP"] == 7
        kw.update(FOLD=False, ACC_EXP=0)
        out = np.full((3, 40), np.nan, npdt)
        args = _launch.kernel_arguments(p, np.array(a), np.array(qw.qweight), np.array(qw.scales), None,
                                        np.array(qw.tensor_scale), None, out, np.zeros(1, npdt), 3, 40, 288)  # fmt: skip
        _launch.kernel()[p.grid(3, 40)](*args, **kw)
        np.testing.assert_array_equal(got.view(np.uint16), out.view(np.uint16), err_msg=act)
