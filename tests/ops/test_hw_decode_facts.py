"""The GPU path drops FOLD and the NaN-free twin where the device's packed cvt decodes the exact format.

On sm_89+ ``cvt.rn.f16x2.e4m3x2`` decodes e4m3fn (NaN codes included), so reading its NaN-free twin
(which disqualifies the cvt: the twin's 0x7f means 480) or folding the bias into the scales (one more
multiply a pair after the cvt) would only cost.  The decision is the lowering's own rule
(:func:`lowbit.transforms._dequant_floats.hw_kind`), asked for the target lowbit compiles for on that device.
"""

from __future__ import annotations

import pytest

import lowbit
from lowbit.runtime.images import hardware_decode

torch = pytest.importorskip("torch")

from lowbit.ops import torch_ops  # noqa: E402


@pytest.mark.parametrize(("sm", "fmt", "act", "want"), [
    (80, "e4m3fn", "f16", False),   # sm_80: no packed cvt
    (86, "e5m2", "f16", False),
    (89, "e4m3fn", "f16", True),
    (90, "e5m2", "f16", True),
    (90, "e4m3fn", "bf16", False),  # no bf16x2 destination on any target
    (90, "e2m1", "f16", False),     # FP4/FP6 forms need sm_100a/sm_120a, which lowbit does not pick for a device
    (90, "uint4", "f16", False),
    (90, "nf4", "f16", False),
    (75, "e4m3fn", "f16", False),   # below every target
])
def test_hardware_decode(sm: int, fmt: str, act: str, want: bool) -> None:
    assert hardware_decode(sm, lowbit.dtype(fmt), act) is want


def _plan(wtype: str, act: torch.dtype, sm: int | None, fold: bool, finite: bool) -> dict:
    torch_ops._CONFIGS.clear()
    cfg = torch_ops._cuda_config(wtype, 128, "none", 1, act, act, False, True, fold, finite, sm)
    return dict(cfg.plan.constexprs)


def test_config_drops_facts_where_the_cvt_decodes() -> None:
    twin = _plan("e4m3fn", torch.float16, 80, True, True)
    assert twin["FOLD"] and twin["W"] != lowbit.dtype("e4m3fn")  # sm_80: folded, read through the twin
    hw = _plan("e4m3fn", torch.float16, 90, True, True)
    assert not hw["FOLD"] and hw["W"] == lowbit.dtype("e4m3fn")  # sm_90: the exact format, unfolded
    assert _plan("e4m3fn", torch.float16, None, True, True) == twin  # no device known (CPU tensors): as given
    bf = _plan("e4m3fn", torch.bfloat16, 90, True, True)
    assert bf["FOLD"]  # bf16: the bit path, facts kept
    torch_ops._CONFIGS.clear()


def test_device_sm_off_cuda_is_none() -> None:
    assert torch_ops._device_sm(torch.device("cpu")) is None
