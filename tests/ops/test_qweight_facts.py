"""The dequantisation facts (FOLD, the NaN-free twin) are decided once per weight and every path launches with them.

Checked: the packing constructors decide them once, on the host, and moves / repacks / conversions carry them
without deciding again; a weight whose scales make FOLD wrong (an overflowing or inexact folded scale, e8m0
extremes) or whose codes hold a NaN code gets fold / finite False and still matches the float64 reference, and
forcing the fact on it would change the result (so the check matters); containers cannot be changed behind the
facts' back (numpy read-only, torch version counters); the emulator backend, the torch op on CUDA tensors
(stand-in driver) and QuantLinear launch the same constexprs for one weight; checkpoints and state dicts keep
(or decide again) the facts; torch.compile sees them as constants.
"""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np
import pytest

import lowbit
import lowbit.ops as ops
from lowbit.ops import _fold, _launch
from lowbit.ops import qweight as qweight_module
from lowbit.ops._fold import DequantFacts, host_facts
from tests.conftest import IN_CI
from tests.ops.reference import dequantize_reference, gemm_bound

K, N = 96, 40
NPDT = {"f16": np.float16, "bf16": ml_dtypes.bfloat16}


def _w(seed: int = 0, k: int = K, n: int = N, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n)) * scale


def _a(act: str, m: int = 3, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((m, K)).astype(NPDT[act])


def _run(qw: ops.QuantizedWeight, a: np.ndarray, fold: bool, finite: bool) -> np.ndarray:
    """The emulator kernel with the given facts (whatever the weight says)."""
    q = qw.numpy()
    act = ops._tensors.dtype_name(a)
    m = a.shape[0]
    p = _launch.plan(q.wtype, q.group_size, q.zero, q.scale_format.name, act, False, q.layout, m <= 16, fold, finite)
    out = np.full((m, N), np.nan, a.dtype)
    copy = {f: None if getattr(q, f) is None else np.array(getattr(q, f)) for f in ("qweight", "scales", "zeros",
                                                                                      "tensor_scale")}  # fmt: skip
    args = _launch.kernel_arguments(p, np.array(a), copy["qweight"], copy["scales"], copy["zeros"],
                                    copy["tensor_scale"], None, out, np.zeros(1, a.dtype), m, N, K)  # fmt: skip
    _launch.kernel()[p.grid(m, N)](*args, **p.kwargs())
    return out


def _bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).view(np.uint16)


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time a weight's facts are decided on its values (the scan): the weight's format."""
    seen: list[str] = []
    real = qweight_module.weight_facts

    def counted(qw: object) -> dict:
        seen.append(qw.wtype.name)
        return real(qw)

    monkeypatch.setattr(qweight_module, "weight_facts", counted)
    return seen


# -- decided once, carried ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["uint4", "int4", "e2m1", "e4m3", "e5m2", "nf4", "mxfp4", "mxfp8_e4m3", "nvfp4"])
def test_facts_are_decided_when_the_weight_is_packed_and_equal_the_host_check(fmt: str, decisions: list) -> None:
    qw = ops.quantize_weight(_w(1), fmt, group_size=32 if fmt in ("uint4", "int4", "e2m1", "e4m3", "e5m2", "nf4")
                             else None)  # fmt: skip
    assert decisions == [qw.wtype.name]  # at pack time, once
    for act in ("f16", "bf16"):
        assert qw.facts(act) == host_facts(qw, act), act  # the record is the value scan's answer
    assert qw.facts("f32") == DequantFacts(False, False)
    moved = [qw.repack(2), qw.repack(3), qw.repack(3).repack(1), qw.numpy()]
    if torch is not None:
        t = qw.to("cpu")
        moved += [t, t.numpy(), t.repack(3), t.to("meta")]
    for v in moved:
        assert all(v.facts(act) == qw.facts(act) for act in ("f16", "bf16")), v
    assert decisions == [qw.wtype.name]  # nothing decided again: the values did not change
    assert isinstance(qw.facts("f16"), tuple) and qw.facts("f16")._fields == ("fold", "finite")


def test_the_expected_facts_of_common_formats() -> None:
    """What the facts are, on defaults quantize_weight gives (absmax scales)."""
    want = {  # (f16, bf16); FOLD needs zero="none" float codes; the twin exists for e4m3fn only
        "uint4": ((False, False), (False, False)),
        "e2m1": ((True, False), (False, False)),  # f16 scales (11-bit mantissas) are rarely bf16 values
        "e4m3": ((True, True), (False, True)),
        "mxfp4": ((True, False), (True, False)),  # e8m0: powers of two, normal in both
        "nvfp4": ((False, False), (False, False)),  # its fold is split with the accumulator (ACC_EXP), no host data
    }
    for fmt, (f16, bf16) in want.items():
        qw = ops.quantize_weight(_w(2, scale=0.5), fmt)
        assert (tuple(qw.facts("f16")), tuple(qw.facts("bf16"))) == (f16, bf16), fmt


def test_a_weight_built_from_arrays_decides_on_first_use_and_keeps_them(decisions: list) -> None:
    src = ops.quantize_weight(_w(3), "e4m3")
    fields = {f: np.array(v, copy=True) for f, v in src.tensors().items()}
    qw = ops.QuantizedWeight(src.wtype, src.shape, src.group_size, src.zero, **fields)
    assert decisions == ["e4m3fn"]  # only src so far
    assert qw.facts("f16") == src.facts("f16") and qw.facts("bf16") == src.facts("bf16")
    ops.matmul(_a("f16", 1), qw, backend="emulator")
    assert decisions == ["e4m3fn", "e4m3fn"]  # once for qw, however often it is used


# -- facts that must be False ------------------------------------------------------------------


def _case(name: str) -> tuple[ops.QuantizedWeight, str, DequantFacts]:
    """A weight whose values refuse a fact, the activation dtype, and the facts it must get."""
    if name == "e2m1-overflow":  # 8 * 2**14 = 131072: no f16
        qw = ops.quantize_weight(_w(4, scale=0.5), "e2m1", group_size=32)
        s = np.array(qw.scales, copy=True)
        s[1, 7] = 8.0
        return dataclasses.replace(qw, scales=s), "f16", DequantFacts(False, False)
    if name == "e4m3-overflow-bf16":  # 512 * 2**120 = 2**129: no bf16
        qw = ops.quantize_weight(_w(5, scale=0.5), "e4m3", group_size=32)
        s = np.array(qw.scales, copy=True)
        s[2, 3] = 512.0
        return dataclasses.replace(qw, scales=s), "bf16", DequantFacts(False, True)
    if name == "mxfp4-huge":  # e8m0 2**73: folded 2**199 overflows bf16 (and f16)
        qw = ops.quantize_weight(_w(6), "mxfp4")
        s = np.array(qw.scales, copy=True)
        s[2, 5] = 200
        return dataclasses.replace(qw, scales=s), "bf16", DequantFacts(False, False)
    if name == "mxfp4-tiny":  # e8m0 2**-29: folded 2**-15 is an f16 subnormal, which the e8m0 fold cannot build
        qw = ops.quantize_weight(_w(6), "mxfp4")
        s = np.array(qw.scales, copy=True)
        s[:, 5] = 127 - 29  # the whole column, so that its (tiny) outputs are visible
        return dataclasses.replace(qw, scales=s), "f16", DequantFacts(False, False)
    assert name == "e4m3-nan-code"
    qw = ops.quantize_weight(_w(7, scale=0.5), "e4m3", group_size=32)
    codes = qw.codes().copy()
    codes[37, 11] = 0x7F  # e4m3fn's NaN
    words = ops.layouts.pack_codes(codes, 8, 1)
    return dataclasses.replace(qw, qweight=words), "f16", DequantFacts(True, False)


CASES = ["e2m1-overflow", "e4m3-overflow-bf16", "mxfp4-huge", "mxfp4-tiny", "e4m3-nan-code"]


@pytest.mark.parametrize("name", CASES)
def test_weights_that_refuse_a_fact_get_it_false_and_still_match_the_reference(name: str) -> None:
    qw, act, want = _case(name)
    assert qw.facts(act) == want, qw.facts(act)
    assert qw.facts(act) == host_facts(qw, act)
    if name in ("e2m1-overflow", "mxfp4-huge", "mxfp4-tiny"):
        assert qw.facts("f16") == DequantFacts(False, False), qw.facts("f16")
    a = (_a(act).astype(np.float64) * (2.0**10 if name == "mxfp4-tiny" else 1)).astype(NPDT[act])
    got = np.asarray(ops.matmul(a, qw, backend="emulator"))
    np.testing.assert_array_equal(_bits(got), _bits(_run(qw, a, *want)))  # launched with the weight's facts
    ref, bound = gemm_bound(a, dequantize_reference(qw), None)
    finite = np.isfinite(ref).all(axis=0)
    if name == "e4m3-nan-code":
        assert not finite[11] and finite.sum() == N - 1 and np.isnan(got[:, 11].astype(np.float64)).all()
    assert (np.abs(got[:, finite].astype(np.float64) - ref[:, finite]) <= bound[:, finite]).all()
    if name == "mxfp4-tiny":  # its weights (at most 6 * 2**-29) are below f16's subnormals either way
        return
    # the fact was needed: claiming it changes the result (an inf, a wrong value, or a NaN read as a number)
    wrong = _run(qw, a, True, want.finite) if not want.fold else _run(qw, a, want.fold, True)
    assert not np.array_equal(_bits(wrong), _bits(got)), name


def test_facts_are_true_where_the_values_allow_and_the_kernel_is_then_bit_identical() -> None:
    """Random weights with shifted scales: when a fact is True, the specialised kernel equals the unchecked one."""
    rng = np.random.default_rng(11)
    seen = set()
    for fmt in ("e2m1", "e4m3", "e3m2", "mxfp4", "mxfp6_e2m3"):
        for trial in range(2):
            qw = ops.quantize_weight(_w(20 + trial, scale=float(2.0 ** rng.integers(-12, 8))), fmt)
            for act in ("f16", "bf16"):
                f = qw.facts(act)
                seen.add((f.fold, f.finite))
                if not (f.fold or f.finite):
                    continue
                a = _a(act, 2, seed=trial)
                got = np.asarray(ops.matmul(a, qw, backend="emulator"))
                np.testing.assert_array_equal(_bits(got), _bits(_run(qw, a, False, False)), err_msg=f"{fmt} {act}")
    assert {(True, False), (True, True), (False, True)} <= seen, seen


# -- the container cannot change behind the facts -----------------------------------------------


def test_numpy_fields_are_read_only_and_the_callers_arrays_are_not_touched() -> None:
    src = ops.quantize_weight(_w(8), "e2m1")
    scales = np.array(src.scales, copy=True)
    words = np.array(src.qweight, copy=True)
    qw = dataclasses.replace(src, scales=scales, qweight=words)
    assert scales.flags.writeable and words.flags.writeable  # the caller's arrays keep their flags
    with pytest.raises(ValueError, match="read-only"):
        qw.scales[0, 0] = 8.0
    assert np.shares_memory(qw.scales, scales)  # no copy: a read-only view
    assert qw.facts("f16").fold


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - CI has torch
        return None
    return torch


torch = __import__("torch") if IN_CI else _torch()
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


@needs_torch
def test_torch_fields_changed_in_place_are_decided_again(decisions: list) -> None:
    qw = ops.quantize_weight(torch.from_numpy(_w(9) * 0.5), "e2m1", group_size=32)
    assert qw.is_torch and qw.facts("f16").fold and decisions == ["e2m1"]
    qw.scales[1, 7] = 8.0  # in place: the version counter moves
    assert not qw.facts("f16").fold and decisions == ["e2m1", "e2m1"]
    a = torch.from_numpy(_a("f16"))
    want = _run(qw, a.numpy(), False, False)
    got = ops.matmul(a.numpy(), qw.numpy(), backend="emulator")
    np.testing.assert_array_equal(_bits(got), _bits(want))
    host = ops.quantize_weight(torch.from_numpy(_w(9) * 0.5), "e2m1", group_size=32)
    q = host.numpy()  # its own arrays: a later change of the tensors cannot reach it behind its facts
    host.scales[1, 7] = 8.0
    assert q.facts("f16").fold and not host.facts("f16").fold and not np.shares_memory(q.scales, host.scales.numpy())
    with torch.inference_mode():  # inference tensors have no version counter: decided once, not watched
        inf = ops.quantize_weight(torch.from_numpy(_w(9) * 0.5), "e2m1", group_size=32)
        assert inf.facts("f16").fold


# -- the same kernel on every path --------------------------------------------------------------


class _Recorder:
    """Stands in for ``_launch.kernel()``: records the constexprs of each launch and runs nothing."""

    def __init__(self) -> None:
        self.launched: list[dict] = []

    def __getitem__(self, grid: object):  # noqa: ANN204
        return lambda *args, **cx: self.launched.append(cx)


PATH_FORMATS = [("e2m1", "f16"), ("e4m3", "f16"), ("e4m3", "bf16"), ("mxfp4", "bf16"), ("nvfp4", "f16"),
                ("uint4", "f16")]  # fmt: skip


@needs_torch
@pytest.mark.parametrize(("case", "act"), [*PATH_FORMATS, ("e2m1-overflow", "f16"), ("e4m3-nan-code", "f16")])
def test_the_torch_op_quantlinear_and_the_emulator_launch_the_same_specialisation(case: str, act: str,
                                                                                    monkeypatch) -> None:  # fmt: skip
    from lowbit.nn import QuantLinear
    from lowbit.ops import torch_ops
    from tests.ops.fake_cuda import FakeCuda

    qw = _case(case)[0] if "-" in case else ops.quantize_weight(_w(12), case)
    rec = _Recorder()
    monkeypatch.setattr(_launch, "kernel", lambda: rec)
    cuda: list[tuple] = []
    monkeypatch.setattr(torch_ops, "launch_cuda", lambda kernel, grid, args, cx: cuda.append(cx))
    a = _a(act, 5)
    ops.matmul(a, qw, backend="emulator")
    (emulated,) = rec.launched
    ta = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16) if act == "bf16" else torch.from_numpy(a)
    layer = QuantLinear.from_quantized_weight(qw)
    with FakeCuda(run=False) as fc:
        on = {f: fc.tensor(v) for f, v in qw.to("cpu").tensors().items()}
        fqw = dataclasses.replace(qw.to("cpu"), **on)  # a weight built from (fake) CUDA tensors
        fqw.facts(act)  # its facts, decided once (here: one host copy)
        mark = fc.mark()
        ops.matmul(fc.tensor(ta), fqw)  # torch.ops.lowbit.matmul through lowbit.ops.matmul
        calls, _, _ = fc.since(mark)
        fc.module(layer)
        layer(fc.tensor(ta))  # QuantLinear.forward
    assert len(cuda) == 2
    assert dict(cuda[0]) == emulated and dict(cuda[1]) == emulated, (dict(cuda[0]), dict(cuda[1]), emulated)
    assert not {n for n, _ in calls} & {"cpu", "numpy", "item", "tolist"}  # no value read on the call
    f = qw.facts(act)
    elem = qw.wtype.element if isinstance(qw.wtype, lowbit.ScaledType) else qw.wtype
    assert emulated["FOLD"] == (f.fold or emulated["ACC_EXP"] > 0)
    assert (emulated["W"] != elem) == (f.finite or isinstance(elem, lowbit.CodebookType)), emulated["W"]


@needs_torch
def test_the_cuda_plan_key_holds_the_facts() -> None:
    from lowbit.ops import torch_ops

    qw = ops.quantize_weight(torch.from_numpy(_w(13)), "e4m3", group_size=32)
    a = torch.from_numpy(_a("f16"))
    seen = {}
    for fold in (False, True):
        for finite in (False, True):
            _, _, cx, _ = torch_ops.prepare_cuda(a, *torch_ops.weight_operands(qw), None, fold, finite)
            seen[(fold, finite)] = dict(cx)
    assert [seen[k]["FOLD"] for k in sorted(seen)] == [False, False, True, True]
    assert seen[(False, False)]["W"] == lowbit.dtype("e4m3") and seen[(False, True)]["W"].nan == "none"
    assert torch_ops.prepare_cuda(a, *torch_ops.weight_operands(qw), None)[2] == tuple(seen[(False, False)].items())


# -- checkpoints, state dicts, torch.compile ----------------------------------------------------


@needs_torch
def test_gptq_import_decides_the_facts_on_the_host_and_carries_them(decisions: list) -> None:
    src = ops.quantize_weight(_w(14), "uint4", group_size=32)
    words = torch.from_numpy(np.array(src.qweight).view(np.int32))
    zc = src.zero_codes().astype(np.int64)
    qzeros = torch.from_numpy(lowbit.pack(zc.astype(np.uint8), 4, axis=1).view(np.int32))
    qw = ops.from_gptq(words, qzeros, torch.from_numpy(np.array(src.scales)), bits=4, group_size=32,
                       checkpoint_format="gptq_v2")  # fmt: skip
    assert qw.is_torch and decisions == ["uint4", "uint4"]  # src, then the import (before its move to torch)
    assert qw.facts("f16") == DequantFacts(False, False) and decisions == ["uint4", "uint4"]
    np.testing.assert_array_equal(qw.dequantize().numpy(), src.dequantize().astype(np.float32))


@needs_torch
@pytest.mark.parametrize("case", ["e4m3", "e2m1-overflow", "e4m3-nan-code"])
def test_a_state_dict_round_trip_decides_the_facts_from_the_loaded_values(case: str) -> None:
    from lowbit.nn import QuantLinear

    qw = _case(case)[0] if "-" in case else ops.quantize_weight(_w(15, scale=0.5), case, group_size=32)
    src = QuantLinear.from_quantized_weight(qw)
    dst = QuantLinear(K, N, bias=False, wtype=qw.wtype, group_size=qw.group_size, zero=qw.zero)
    zeros = dst.quantized_weight()
    assert zeros.facts("f16") == host_facts(zeros.numpy(), "f16") == (True, qw.wtype.name == "e4m3fn")  # all-zero
    dst.load_state_dict(src.state_dict())
    for act in ("f16", "bf16"):
        assert dst._facts[act] == src._facts[act] == qw.facts(act) == host_facts(qw.numpy(), act), act
        assert dst.quantized_weight().facts(act) == qw.facts(act)
    x = torch.from_numpy(_a("f16"))
    torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0, equal_nan=True)  # the CPU reference
    dst.scales.copy_(dst.scales * 0 + 8.0)  # in place: the next eager forward decides again
    dst(x)
    assert dst._facts["f16"] == host_facts(dst.quantized_weight(facts=False).numpy(), "f16")


@needs_torch
def test_torch_compile_traces_the_facts_as_constants() -> None:
    from lowbit.nn import QuantLinear

    graphs = []

    def capture(gm, inputs):  # noqa: ANN001,ANN202
        graphs.append(gm)
        return gm.forward

    qw = ops.quantize_weight(_w(16, scale=0.5), "e4m3", group_size=32)
    layer = QuantLinear.from_quantized_weight(qw).eval()
    other, _, _ = _case("e4m3-overflow-bf16")  # FOLD refused for bf16 only
    s = np.array(other.scales, copy=True)
    s[2, 3] = 4096.0  # and for f16: 4096 * 2**8 = 2**20
    other = dataclasses.replace(other, scales=s)
    fresh = QuantLinear(K, N, bias=False, wtype="e4m3", group_size=32)
    fresh.load_state_dict(QuantLinear.from_quantized_weight(other).state_dict())  # decided at load, before compile
    x = torch.from_numpy(_a("f16"))
    want = [(True, True), (False, True)]
    for mod, facts in zip((layer, fresh), want):
        graphs.clear()
        compiled = torch.compile(mod, backend=capture, fullgraph=True)
        with torch.no_grad():
            assert torch.equal(compiled(x), mod(x))
        (node,) = [n for gm in graphs for n in gm.graph.nodes
                   if n.op == "call_function" and "lowbit" in str(n.target)]  # fmt: skip
        assert tuple(node.args[-2:]) == facts, node.args  # constants of the graph: one graph per set of facts
    assert tuple(other.facts("f16")) == want[1]
