"""lowbit.nn.QuantLinear and quantize_model: orientation, skip rules, state_dict round trips, dtype moves."""

from __future__ import annotations

import io

import numpy as np
import pytest

import lowbit.ops as ops
from lowbit.errors import QuantizeError
from tests.conftest import IN_CI
from tests.ops.reference import dequantize_reference

torch = __import__("torch") if IN_CI else pytest.importorskip("torch")
from lowbit.nn import QuantLinear, quantize_model  # noqa: E402


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 48),
        torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Linear(48, 40, bias=False), torch.nn.Linear(40, 40)),
        torch.nn.Linear(40, 16),
    )


@pytest.mark.parametrize("fmt", ["uint4", "int8", "e2m1", "nf4", "mxfp4", "nvfp4"])
def test_from_linear_computes_x_wT_with_the_quantized_weight(fmt: str) -> None:
    torch.manual_seed(1)
    lin = torch.nn.Linear(96, 40)
    q = QuantLinear.from_linear(lin, fmt, group_size=32 if fmt in ("uint4", "int8", "e2m1", "nf4") else None)
    x = torch.randn(5, 96, dtype=torch.float16)
    y = q(x)
    assert y.shape == (5, 40) and y.dtype == torch.float16
    w = dequantize_reference(q.quantized_weight())  # (K, N) = linear.weight.T, quantized
    assert w.shape == (96, 40)
    err = np.abs(w - lin.weight.detach().double().numpy().T)
    assert err.max() < 0.25 * np.abs(w).max()  # it is the linear's weight, transposed (a wrong orientation fails)
    ref = x.double().numpy() @ w + lin.bias.detach().double().numpy()
    mag = np.abs(x.double().numpy()) @ np.abs(w) + np.abs(lin.bias.detach().double().numpy())
    assert (np.abs(y.double().numpy() - ref) <= (96 + 3) * 2.0**-24 * mag + 2.0**-11 * np.abs(ref) + 2.0**-11 * mag).all()


def test_quantize_model_skips_by_name_prefix_and_pattern() -> None:
    m = quantize_model(_net(), "uint4", group_size=16, skip=["0"])
    assert isinstance(m[0], torch.nn.Linear) and isinstance(m[2][0], QuantLinear) and isinstance(m[3], QuantLinear)
    m = quantize_model(_net(), "uint4", group_size=16, skip=["2"])
    assert isinstance(m[2][0], torch.nn.Linear) and isinstance(m[2][1], torch.nn.Linear) and isinstance(m[0], QuantLinear)
    m = quantize_model(_net(), "int4", group_size=16, skip=["*.1", "3"])
    assert isinstance(m[2][1], torch.nn.Linear) and isinstance(m[2][0], QuantLinear) and isinstance(m[3], torch.nn.Linear)
    assert m[2][0].bias is None and m[0].bias is not None
    with pytest.raises(QuantizeError, match="parent module"):
        quantize_model(torch.nn.Linear(4, 4))


def _safetensors_friendly(sd: dict) -> None:
    ptrs = set()
    for k, v in sd.items():
        assert isinstance(v, torch.Tensor) and v.is_contiguous(), k
        assert v.dtype in (torch.int32, torch.int64, torch.uint8, torch.float16, torch.bfloat16, torch.float32), k
        assert v.untyped_storage().data_ptr() not in ptrs, f"{k} shares storage"
        ptrs.add(v.untyped_storage().data_ptr())


@pytest.mark.parametrize("fmt,kw", [("uint4", {"group_size": 16}), ("uint3", {"zero": "float", "group_size": 32}),
                                    ("nvfp4", {}), ("e4m3", {"scale_dtype": "bf16"})])  # fmt: skip
def test_state_dict_round_trip(fmt: str, kw: dict) -> None:
    src = quantize_model(_net(), fmt, **kw)
    sd = src.state_dict()
    _safetensors_friendly(sd)
    assert "3.qweight" in sd and "3.scales" in sd and "0.bias" in sd
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    torch.manual_seed(99)  # a different float model: its weights must all be replaced
    dst = quantize_model(torch.nn.Sequential(
        torch.nn.Linear(64, 48), torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Linear(48, 40, bias=False), torch.nn.Linear(40, 40)), torch.nn.Linear(40, 16),
    ), fmt, **kw)  # fmt: skip
    x = torch.randn(3, 64, dtype=torch.float16)
    assert not torch.equal(dst.half()(x), src.half()(x))
    dst.load_state_dict(loaded)
    assert torch.equal(dst(x), src(x))
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


def test_act_order_layer_round_trip() -> None:
    torch.manual_seed(2)
    lin = torch.nn.Linear(64, 24)
    q = QuantLinear.from_linear(lin, "uint4", group_size=16, perm=torch.randperm(64))
    assert q.perm is not None and "perm" in q.state_dict()
    q2 = QuantLinear(64, 24, wtype="uint4", group_size=16, act_order=True, dtype=torch.float32)
    q2.load_state_dict(q.state_dict())
    x = torch.randn(4, 64, dtype=torch.float16)
    assert torch.equal(q(x), q2(x))
    plain = QuantLinear(64, 24, wtype="uint4", group_size=16)
    with pytest.raises(RuntimeError, match="perm"):
        plain.load_state_dict(q.state_dict())


def test_dtype_conversions_keep_the_quantization_buffers() -> None:
    torch.manual_seed(3)
    q = QuantLinear.from_linear(torch.nn.Linear(64, 32), "nvfp4")
    saved = {n: t.clone() for n, t in q.state_dict().items() if n != "bias"}
    q.to(torch.bfloat16)
    assert q.bias.dtype == torch.bfloat16
    for n, t in saved.items():
        got = q.state_dict()[n]
        assert got.dtype == t.dtype and torch.equal(got, t), n
    q.half()
    assert q.tensor_scale.dtype == torch.float32 and q.bias.dtype == torch.float16
    q.to("meta")
    assert all(t.device.type == "meta" for t in q.state_dict().values())


def test_inputs_of_other_float_dtypes_on_cpu() -> None:
    torch.manual_seed(4)
    q = QuantLinear.from_linear(torch.nn.Linear(32, 8), "uint4", group_size=16)
    x = torch.randn(2, 32)
    assert q(x).dtype == torch.float32 and q(x.bfloat16()).dtype == torch.bfloat16
    ref = ops.matmul(x, q.quantized_weight(), q.bias.float(), backend="reference")
    assert torch.equal(q(x), ref)


def test_construction_errors() -> None:
    with pytest.raises(QuantizeError, match="expected an nn.Linear"):
        QuantLinear.from_linear(torch.nn.Conv1d(3, 3, 1))
    with pytest.raises(QuantizeError, match="scale_dtype"):
        QuantLinear(8, 8, scale_dtype="f64")
    with pytest.raises(QuantizeError, match="fixed block"):
        QuantLinear(64, 8, wtype="mxfp4", group_size=128)
