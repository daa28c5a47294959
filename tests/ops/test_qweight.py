"""QuantizedWeight and quantize_weight: packing, defaults, conversions, validation, and import hygiene."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import lowbit
import lowbit.ops as ops
from lowbit.errors import QuantizeError
from tests.conftest import require_tool
from tests.ops.reference import dequantize_reference

K, N = 200, 72
FORMATS = ("uint4", "uint3", "int4", "int8", "e2m1", "e4m3", "e3m2", "nf4", "mxfp4", "mxfp6_e2m3", "mxint8", "nvfp4")


def _w(seed: int = 0, k: int = K, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n))


@pytest.mark.parametrize("fmt", FORMATS)
def test_fields_are_lowbit_quantize_packed(fmt: str) -> None:
    w = _w(1)
    w0 = w.copy()
    qw = ops.quantize_weight(w, fmt)
    np.testing.assert_array_equal(w, w0)
    zero = "int" if fmt.startswith("uint") else "none"
    q = lowbit.quantize(w, fmt, symmetric=zero == "none")
    assert qw.shape == (K, N) and qw.zero == zero and qw.layout == 1 and qw.layout_name == "lsb"
    bits = qw.bits
    np.testing.assert_array_equal(qw.qweight, lowbit.pack(q.codes, bits, axis=0))
    assert qw.qweight.dtype == np.uint32 and qw.qweight.shape == (-(-K * bits // 32), N)
    np.testing.assert_array_equal(qw.scales, q.scales)
    np.testing.assert_array_equal(qw.codes(), q.codes)
    if zero == "int":
        np.testing.assert_array_equal(qw.zero_codes(), q.zeros)
        np.testing.assert_array_equal(qw.zeros, lowbit.pack(q.zeros.reshape(-1), bits))
    # dequantize: exact, equal to lowbit.dequantize and to the bit-by-bit reference
    np.testing.assert_array_equal(qw.dequantize(), lowbit.dequantize(q))
    np.testing.assert_array_equal(qw.dequantize(), dequantize_reference(qw))


def test_defaults() -> None:
    w = _w(2)
    assert ops.quantize_weight(w, "uint4").zero == "int"
    assert ops.quantize_weight(w, "int4").zero == "none"
    assert ops.quantize_weight(w, "e2m1").zero == "none"
    assert ops.quantize_weight(w, "uint4").group_size == 128
    mx = ops.quantize_weight(w, "mxfp4")
    assert mx.group_size == 32 and mx.scale_format.name == "e8m0" and mx.scales.dtype == np.uint8
    nv = ops.quantize_weight(w, "nvfp4")
    assert nv.group_size == 16 and nv.tensor_scale.shape == (1,) and nv.tensor_scale.dtype == np.float32
    assert ops.quantize_weight(w, "uint4", scale_dtype="bf16").scales.dtype == ml_dtypes.bfloat16
    assert lowbit.quantize_weight is ops.quantize_weight and lowbit.QuantizedWeight is ops.QuantizedWeight


def test_float_zeros_and_per_channel() -> None:
    w = _w(3) + 0.7
    qw = ops.quantize_weight(w, "uint4", zero="float", group_size=-1)
    assert qw.zeros.shape == (1, N) and qw.zeros.dtype == np.float16 and qw.num_groups == 1
    np.testing.assert_array_equal(qw.dequantize(), dequantize_reference(qw))
    s, z = qw.scales.astype(np.float64), qw.zeros.astype(np.float64)
    assert (np.abs(qw.dequantize() - w) <= s / 2 + 2.0**-11 * np.abs(z) + 1e-12).all()  # lowbit.quant's bound


def test_permutation_is_recorded_and_undone() -> None:
    w = _w(4)
    perm = np.random.default_rng(5).permutation(K)
    qw = ops.quantize_weight(w, "uint4", perm=perm)
    np.testing.assert_array_equal(qw.perm, perm)
    q = lowbit.quantize(w[perm], "uint4", symmetric=False)  # groups formed in permuted order
    np.testing.assert_array_equal(qw.codes(), q.codes)
    d = qw.dequantize()
    np.testing.assert_array_equal(d[perm], lowbit.dequantize(q))
    assert np.abs(d - w).max() <= q.scales.astype(np.float64).max() / 2 + 1e-12


def test_torch_round_trip_is_bit_exact() -> None:
    torch = __import__(require_tool("torch"))
    w = torch.randn(K, N, dtype=torch.float32)
    qw = ops.quantize_weight(w, "uint4", scale_dtype="bf16", perm=torch.randperm(K))
    assert qw.is_torch and str(qw.device) == "cpu"
    assert qw.qweight.dtype == torch.int32 and qw.scales.dtype == torch.bfloat16 and qw.perm.dtype == torch.int64
    back = qw.numpy()
    assert back.qweight.dtype == np.uint32 and back.scales.dtype == ml_dtypes.bfloat16
    again = back.to("cpu")
    for f, v in qw.tensors().items():
        assert torch.equal(v, again.tensors()[f]), f
    ref = ops.quantize_weight(w.numpy().astype(np.float64), "uint4", scale_dtype="bf16", perm=qw.perm.numpy())
    np.testing.assert_array_equal(back.qweight, ref.qweight)
    d = qw.dequantize()
    assert d.dtype == torch.float32
    np.testing.assert_array_equal(d.numpy(), ref.dequantize().astype(np.float32))


def test_quantized_tensor_round_trip() -> None:
    qw = ops.quantize_weight(_w(6), "nvfp4")
    qt = qw.to_quantized_tensor()
    assert isinstance(qt, lowbit.QuantizedTensor) and qt.tensor_scale == qw.tensor_scale[0]
    again = ops.QuantizedWeight.from_quantized_tensor(qt)
    for f, v in qw.tensors().items():
        np.testing.assert_array_equal(v, again.tensors()[f])


def _bad(qw: ops.QuantizedWeight, match: str, **changes: object) -> None:
    with pytest.raises(QuantizeError, match=match):
        dataclasses.replace(qw, **changes)


def test_validation_names_the_field() -> None:
    qw = ops.quantize_weight(_w(7), "uint4")
    _bad(qw, "qweight has shape", qweight=qw.qweight[:-1])
    _bad(qw, "qweight has dtype", qweight=qw.qweight.astype(np.int64))
    _bad(qw, "scales has dtype", scales=qw.scales.astype(np.float64))
    _bad(qw, "scales has shape", scales=qw.scales[:1])
    _bad(qw, "zeros has shape", zeros=qw.zeros[:1])
    _bad(qw, "zeros is required", zeros=None)
    _bad(qw, "not a permutation", perm=np.zeros(K, dtype=np.int64))
    _bad(qw, "perm has shape", perm=np.arange(K - 1))
    _bad(qw, "unknown layout version 4", layout=4)
    _bad(qw, "zero must be", zero="asym")
    _bad(qw, "group_size", group_size=0)
    _bad(qw, "must be contiguous", scales=np.zeros((2, 2 * N), np.float16)[:, ::2])
    sym = ops.quantize_weight(_w(7), "e2m1")
    _bad(sym, "integer zero points need an integer format", zero="int", zeros=qw.zeros)
    _bad(sym, "takes no zeros", zeros=qw.zeros)
    mx = ops.quantize_weight(_w(7), "mxfp4")
    _bad(mx, "fixed|blocks of 32", group_size=16)
    _bad(mx, "no tensor scale", tensor_scale=np.ones(1, np.float32))
    with pytest.raises(QuantizeError, match="unknown weight format"):
        ops.quantize_weight(_w(7), "uint9x")
    with pytest.raises(QuantizeError, match="not a format of at most 8 bits"):
        ops.quantize_weight(_w(7), "f16")
    with pytest.raises(QuantizeError, match="2-D"):
        ops.quantize_weight(np.zeros(5), "uint4")
    with pytest.raises(QuantizeError, match="perm"):
        ops.quantize_weight(_w(7), "uint4", perm=np.arange(3))


def test_mixed_numpy_and_torch_is_refused() -> None:
    torch = __import__(require_tool("torch"))
    qw = ops.quantize_weight(_w(8), "uint4")
    _bad(qw, "mix of numpy arrays and torch tensors", scales=torch.from_numpy(qw.scales.copy()))


def test_repr_names_the_configuration() -> None:
    text = repr(ops.quantize_weight(_w(9), "uint4", perm=np.arange(K)[::-1].copy()))
    assert "uint4" in text and "K=200" in text and "lsb/v1" in text and "act-order" in text


def test_import_lowbit_and_ops_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np, lowbit, lowbit.ops\n"
        "qw = lowbit.quantize_weight(np.ones((64, 8)), 'uint4')\n"
        "lowbit.ops.matmul(np.ones((2, 64), np.float16), qw, backend='reference')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
