"""lowbit.ops.matmul: the reference backends, dispatch by input kind, and argument errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import lowbit.ops as ops
from lowbit.errors import LaunchError
from tests.conftest import require_tool
from tests.ops.reference import dequantize_reference

K, N = 160, 48


@pytest.fixture(scope="module")
def torch():  # noqa: ANN201
    return __import__(require_tool("torch"))


def _setup(fmt: str = "uint4", seed: int = 0, **kw: object):
    rng = np.random.default_rng(seed)
    qw = ops.quantize_weight(rng.standard_normal((K, N)), fmt, **kw)
    a = rng.standard_normal((5, K)).astype(np.float16)
    bias = rng.standard_normal(N).astype(np.float16)
    return qw, a, bias


def _f32_bound(a: np.ndarray, w: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference path: W exact then rounded to f32, f32 GEMM (any order), one rounding to a's dtype."""
    a64 = a.astype(np.float64)
    ref = a64 @ w + bias.astype(np.float64)
    mag = np.abs(a64) @ np.abs(w) + np.abs(bias.astype(np.float64))
    u = 2.0**-11 if a.dtype == np.float16 else 2.0**-8
    return ref, (K + 3) * 2.0**-24 * mag + u * np.abs(ref) + 2.0**-24


@pytest.mark.parametrize("fmt", ["uint4", "int3", "e2m1", "nf4", "mxfp4", "nvfp4"])
def test_numpy_reference_matches_float64(fmt: str) -> None:
    qw, a, bias = _setup(fmt, 1)
    c = ops.matmul(a, qw, bias, backend="reference")
    assert c.dtype == np.float16 and c.shape == (5, N)
    ref, bound = _f32_bound(a, dequantize_reference(qw), bias)
    assert (np.abs(c.astype(np.float64) - ref) <= bound).all()
    np.testing.assert_array_equal(ops.matmul(a, qw, bias), c)  # auto on numpy = the reference


def test_reference_with_act_order_and_bf16() -> None:
    rng = np.random.default_rng(2)
    qw = ops.quantize_weight(rng.standard_normal((K, N)), "uint4", perm=rng.permutation(K), scale_dtype="bf16")
    a = rng.standard_normal((5, K)).astype(ml_dtypes.bfloat16)
    bias = rng.standard_normal(N).astype(ml_dtypes.bfloat16)
    c = ops.matmul(a, qw, bias, backend="reference")
    assert c.dtype == ml_dtypes.bfloat16
    ref, bound = _f32_bound(a, dequantize_reference(qw), bias)
    assert (np.abs(c.astype(np.float64) - ref) <= bound).all()


def test_torch_backends(torch) -> None:  # noqa: ANN001
    qw, a, bias = _setup("uint4", 3, perm=np.random.default_rng(4).permutation(K))
    ta, tb, tq = torch.from_numpy(a), torch.from_numpy(bias), qw.to("cpu")
    ref_np = ops.matmul(a, qw, bias, backend="reference")
    auto = ops.matmul(ta, tq, tb)  # CPU tensors: torch.ops.lowbit.matmul -> the reference
    direct = ops.matmul(ta, tq, tb, backend="reference")
    assert auto.dtype == torch.float16 and auto.shape == (5, N)
    assert torch.equal(auto, direct)
    ref, bound = _f32_bound(a, dequantize_reference(qw), bias)
    assert (np.abs(auto.numpy().astype(np.float64) - ref) <= bound).all()
    assert np.abs(auto.numpy().astype(np.float64) - ref_np.astype(np.float64)).max() <= bound.max()
    emu = ops.matmul(ta, tq, tb, backend="emulator")
    assert isinstance(emu, torch.Tensor) and emu.dtype == torch.float16
    np.testing.assert_array_equal(emu.numpy(), ops.matmul(a, qw, bias, backend="emulator"))
    x3 = torch.randn(2, 3, K, dtype=torch.float16)
    assert ops.matmul(x3, tq).shape == (2, 3, N)
    f32 = ops.matmul(ta.float(), tq, tb.float())
    assert f32.dtype == torch.float32


def test_inputs_are_not_modified(torch) -> None:  # noqa: ANN001
    qw, a, bias = _setup("uint4", 5)
    tq = qw.to("cpu")
    saved = {f: v.clone() for f, v in tq.tensors().items()}
    ta, tb = torch.from_numpy(a.copy()), torch.from_numpy(bias.copy())
    for backend in ops.BACKENDS:
        ops.matmul(ta, tq, tb, backend=backend)
        ops.matmul(a, qw, bias, backend=backend)
    assert torch.equal(ta, torch.from_numpy(a)) and torch.equal(tb, torch.from_numpy(bias))
    for f, v in tq.tensors().items():
        assert torch.equal(v, saved[f]), f


def test_argument_errors_name_the_argument(torch) -> None:  # noqa: ANN001
    qw, a, bias = _setup("uint4", 6)
    cases = [
        (lambda: ops.matmul(a, qw, backend="gpu"), "backend must be one of"),
        (lambda: ops.matmul(a, "uint4"), "argument 'qw'"),
        (lambda: ops.matmul(a[:, :-1], qw), r"argument 'a': the last dimension must be K=160"),
        (lambda: ops.matmul(a.astype(np.int32), qw), "argument 'a': expected f16, bf16 or f32"),
        (lambda: ops.matmul([[1.0] * K], qw), "argument 'a': expected a numpy array"),
        (lambda: ops.matmul(a, qw, bias[:-1]), "argument 'bias'"),
        (lambda: ops.matmul(a, qw, torch.from_numpy(bias)), "argument 'bias'"),
        (lambda: ops.matmul(a, qw.to("cpu")), "argument 'qw'/'bias'"),
        (lambda: ops.matmul(a.astype(np.float32), qw, backend="emulator"), "wx_matmul kernel takes f16 or bf16"),
        (lambda: ops.matmul(torch.from_numpy(a), qw), "argument 'qw': its tensors are on numpy"),
    ]
    for call, match in cases:
        with pytest.raises(LaunchError, match=match):
            call()
