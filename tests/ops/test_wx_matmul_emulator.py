"""``lowbit.ops.matmul(..., backend="emulator")``: the wx_matmul PTX on the emulator against float64.

Odd shapes (M in {1, 3, 67}, N = 136, K = 288: no dimension is a multiple
of the 16/32-row tiles in M, N is not a multiple of 32, K spans groups of
128 with a short last group), random weights and activations, every output
NaN-poisoned by the backend before the run.  The reference dequantises the
packed fields independently (tests/ops/reference.py); the bound is derived
from the kernel's roundings.  A sensitivity check shows the bound is tight
enough to catch a zero point off by one code.
"""

from __future__ import annotations

import dataclasses
import zlib

import ml_dtypes
import numpy as np
import pytest

import lowbit
import lowbit.ops as ops
from tests.ops.reference import dequantize_reference, gemm_bound

N, K = 136, 288
REQUIRED = ("uint4", "uint3", "int8", "e2m1", "e4m3", "nf4", "mxfp4")
MORE = (
    "uint1", "uint2", "uint5", "uint6", "uint7", "uint8", "int2", "int3", "int4", "int5", "int6", "int7",
    "bipolar3", "e5m2", "e3m2", "e2m3", "f5e2m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxint8", "nvfp4",
)  # fmt: skip


def _case(fmt: object, m: int, seed: int, act: object = np.float16, **kw: object):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((K, N)) * 0.5
    qw = ops.quantize_weight(w, fmt, **kw)
    a = rng.standard_normal((m, K)).astype(act)
    bias = rng.standard_normal(N).astype(act)
    return qw, a, bias


def _check(qw: ops.QuantizedWeight, a: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    before = (a.copy(), None if bias is None else bias.copy(), {f: v.copy() for f, v in qw.tensors().items()})
    c = ops.matmul(a, qw, bias, backend="emulator")
    assert c.shape == (a.shape[0], qw.shape[1]) and c.dtype == a.dtype
    ref, bound = gemm_bound(a, dequantize_reference(qw), bias)
    err = np.abs(c.astype(np.float64) - ref)
    assert np.isfinite(c.astype(np.float64)).all()
    worst = np.unravel_index(int(np.argmax(err - bound)), err.shape)
    assert (err <= bound).all(), f"{qw}: |C - ref| = {err[worst]:.3g} > {bound[worst]:.3g} at {worst}"
    np.testing.assert_array_equal(a, before[0])
    if bias is not None:
        np.testing.assert_array_equal(bias, before[1])
    for f, v in qw.tensors().items():
        np.testing.assert_array_equal(v, before[2][f])
    return c


#: (fmt, m) cases the default tier leaves to the full one: uint3 at M=67 (three row blocks of 3-bit codes) is
#: the slowest emulation here (~20 s); uint3 keeps M=1 and 3 by default
_FULL_ONLY = {("uint3", 67)}


@pytest.mark.parametrize("fmt, m", [pytest.param(f, m, id=f"{f}-{m}", marks=pytest.mark.full if (f, m) in _FULL_ONLY else ())
                                    for f in REQUIRED for m in (1, 3, 67)])  # fmt: skip
def test_required_formats_match_float64(fmt: str, m: int) -> None:
    qw, a, bias = _case(fmt, m, seed=zlib.crc32(f"{fmt}/{m}".encode()))
    _check(qw, a, bias)


#: formats the default tier keeps (one of each kind: widths that split into planes, signed, float, MX, NVFP4,
#: bipolar); the rest run in the full tier, which also runs every format x M x activation (CI time, cold cache)
_MORE_DEFAULT = {"uint1", "uint5", "uint7", "int3", "int6", "bipolar3", "e3m2", "f5e2m2", "mxfp6_e2m3", "nvfp4"}


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=() if f in _MORE_DEFAULT else pytest.mark.full) for f in MORE])
def test_every_other_format_matches_float64(fmt: str) -> None:
    qw, a, _ = _case(fmt, 3, seed=7)
    _check(qw, a, None)


def test_a_user_codebook() -> None:
    table = np.sort(np.random.default_rng(3).standard_normal(8))
    qw, a, bias = _case(lowbit.codebook(table), 3, seed=8)
    assert qw.bits == 3
    _check(qw, a, bias)


@pytest.mark.parametrize(
    "kw",
    [
        {"zero": "float"},
        {"group_size": -1},
        {"group_size": 32},
        {"group_size": 64, "zero": "int"},
        {"scale_dtype": "f32"},
        {"scale_dtype": "bf16"},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_groups_zeros_and_scale_dtypes(kw: dict) -> None:
    qw, a, bias = _case("uint4", 3, seed=11, **kw)
    _check(qw, a, bias)


def test_signed_codes_with_integer_zero_points() -> None:
    qw, a, bias = _case("int4", 3, seed=17, zero="int", group_size=64)
    assert qw.zero == "int" and (qw.zero_codes() >= 8).any()  # negative zero points (codes 8..15) occur
    _check(qw, a, bias)


@pytest.mark.parametrize("fmt", ["uint4", "e2m1", "mxfp4", "nf4"])
def test_bf16_activations(fmt: str) -> None:
    qw, a, bias = _case(fmt, 3, seed=12, act=ml_dtypes.bfloat16)
    _check(qw, a, bias)


@pytest.mark.parametrize("fmt", ["uint4", "int3"])
def test_act_order_permutation(fmt: str) -> None:
    rng = np.random.default_rng(13)
    w = rng.standard_normal((K, N))
    perm = rng.permutation(K)
    qw = ops.quantize_weight(w, fmt, perm=perm)
    a = rng.standard_normal((3, K)).astype(np.float16)
    c = _check(qw, a, None)
    # the permutation matters: the same stored codes read in stored order give another product
    plain = dataclasses.replace(qw, perm=None)
    assert not np.allclose(ops.matmul(a, plain, backend="emulator"), c, atol=0.5)


def test_batched_leading_dimensions() -> None:
    qw, _, bias = _case("uint4", 1, seed=14)
    a = np.random.default_rng(15).standard_normal((2, 3, K)).astype(np.float16)
    c = ops.matmul(a, qw, bias, backend="emulator")
    assert c.shape == (2, 3, N)
    np.testing.assert_array_equal(c.reshape(6, N), ops.matmul(a.reshape(6, K), qw, bias, backend="emulator"))


def test_the_bound_catches_a_zero_off_by_one() -> None:
    """Sensitivity: shifting one group's zero of one column by one code leaves the bound."""
    qw, a, bias = _case("uint4", 3, seed=16)
    c = ops.matmul(a, qw, bias, backend="emulator").astype(np.float64)
    w = dequantize_reference(qw)
    w_bad = w.copy()
    w_bad[:128, 5] += qw.numpy().scales[0, 5].astype(np.float64)  # (c - (z - 1)) * s = w + s
    ref_bad, bound = gemm_bound(a, w_bad, bias)
    assert (np.abs(c - ref_bad) > bound)[:, 5].any()
    ref, bound = gemm_bound(a, w, bias)
    assert (np.abs(c - ref) <= bound).all()


@pytest.mark.full
@pytest.mark.parametrize("act", [np.float16, ml_dtypes.bfloat16], ids=["f16", "bf16"])
@pytest.mark.parametrize("m", [1, 3, 67])
@pytest.mark.parametrize("fmt", REQUIRED + MORE)
def test_every_format_every_m_both_activations(fmt: str, m: int, act: object) -> None:
    qw, a, bias = _case(fmt, m, seed=zlib.crc32(f"full/{fmt}/{m}".encode()), act=act)
    _check(qw, a, bias)
