"""The CUDA path of ``torch.ops.lowbit.matmul`` end to end, on the stand-in driver (no GPU here).

CPU tensors that report ``cuda:0`` (tests/ops/fake_cuda.py) go through the op's CUDA implementation,
:func:`lowbit.ops._device.launch_cuda`, the binder's CUDA-tensor path and ``GPUKernel.launch_bound``
to the stand-in driver, which reads the packed ``cuLaunchKernel`` parameters and runs the PTX on the
emulator.  Checked: results (against float64 and bit for bit against the emulator backend), variant
choice by facts, one module load per variant, torch's current stream per call, nothing that
synchronises or allocates device memory after the warm-up, the capture guard, driver errors, bad
arguments.  NOT checked here (GPU only, benchmarks/gpu_check_ops.py): the real cuda-bindings calls,
torch's real stream and allocator, graph capture, the hardware.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lowbit.ops as ops
from lowbit.errors import LaunchError
from lowbit.runtime import CudaError
from tests.conftest import IN_CI
from tests.ops.reference import dequantize_reference, gemm_bound
from tests.runtime.fake_driver import LAUNCH_FAILED

torch = __import__("torch") if IN_CI else pytest.importorskip("torch")
from lowbit.nn import QuantLinear  # noqa: E402
from lowbit.ops import _device, torch_ops  # noqa: E402
from tests.ops.fake_cuda import SYNCING, FakeCuda, FakeCudaTensor  # noqa: E402

K, N = 96, 40
KERNEL = torch_ops._launch.kernel()
#: every torch call the op's CUDA path makes after the warm-up: attribute reads, new_empty for the output,
#: index_select for act-order (both allocate through torch), the op itself, and reshape for 3-D activations
ALLOWED_CALLS = {"__get__", "dim", "data_ptr", "is_conj", "is_neg", "is_contiguous", "numel", "new_empty",
                 "index_select", "reshape", "matmul"}  # fmt: skip

CONFIGS = [
    ("uint4", {"perm": "random"}, torch.float16, True),
    ("int4", {"group_size": 32}, torch.float16, False),
    ("uint3", {"zero": "float", "group_size": -1}, torch.bfloat16, True),
    ("nf4", {"scale_dtype": "bf16"}, torch.bfloat16, False),
    ("mxfp4", {}, torch.float16, False),
    ("nvfp4", {}, torch.float16, True),
]


def _operands(fmt: str, kw: dict, act: torch.dtype, bias: bool, m: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    kw = dict(kw)
    if kw.get("perm") == "random":
        kw["perm"] = torch.randperm(K, generator=g)
    qw = ops.quantize_weight(torch.randn(K, N, generator=g), fmt, **kw)
    a = torch.randn(m, K, generator=g).to(act)
    b = torch.randn(N, generator=g).to(act) if bias else None
    return qw, a, b


def _on(fc: FakeCuda, qw, a, b) -> tuple:
    return fc.tensor(a), [fc.tensor(x) if isinstance(x, torch.Tensor) else x for x in torch_ops.weight_operands(qw)], \
        fc.tensor(b)  # fmt: skip


def _host(t: torch.Tensor) -> np.ndarray:
    with torch._C.DisableTorchFunction():
        return ops._tensors.numpy_of(t.as_subclass(torch.Tensor))


CASES = [(*c, 19) for c in CONFIGS] + [(*c, 1) for c in CONFIGS[:2]]


@pytest.mark.parametrize(("fmt", "kw", "act", "bias", "m"), CASES, ids=[f"{c[0]}-M{c[4]}" for c in CASES])
def test_the_op_on_cuda_tensors_runs_wx_matmul_through_the_runtime(fmt, kw, act, bias, m: int) -> None:
    qw, a, b = _operands(fmt, kw, act, bias, m, seed=m)
    want = ops.matmul(a.numpy() if act == torch.float16 else ops._tensors.numpy_of(a), qw.numpy(),
                      None if b is None else ops._tensors.numpy_of(b), backend="emulator")  # fmt: skip
    ref, bound = gemm_bound(ops._tensors.numpy_of(a), dequantize_reference(qw),
                            None if b is None else ops._tensors.numpy_of(b))  # fmt: skip
    with FakeCuda() as fc:
        fa, w, fb = _on(fc, qw, a, b)
        mark = fc.mark()
        out = torch.ops.lowbit.matmul(fa.reshape(1, m, K), *w, fb)  # 3-D activations
        _, driver, launches = fc.since(mark)
    assert isinstance(out, FakeCudaTensor) and out.shape == (1, m, N) and out.dtype == act
    got = _host(out).reshape(m, N)
    np.testing.assert_array_equal(got, want)  # the same PTX arithmetic as the emulator backend, bit for bit
    assert (np.abs(got.astype(np.float64) - ref) <= bound).all()
    (launch,) = launches
    assert driver.count("cuLaunchKernel") == 1 and driver.count("cuModuleLoadDataEx") == 1
    assert launch["stream"] == fc.stream and launch["grid"] == (-(-m // (16 if m <= 16 else 32)), -(-N // 32), 1)
    assert launch["block"] == (128, 1, 1) and launch["name"] == "wx_matmul"


def test_after_the_warm_up_a_call_is_one_cuLaunchKernel_on_the_current_stream_and_nothing_else() -> None:
    qw, a, b = _operands("uint4", {"perm": "random"}, torch.float16, True, 5)
    with FakeCuda(run=False) as fc:
        fa, w, fb = _on(fc, qw, a, b)
        torch.ops.lowbit.matmul(fa, *w, fb)  # warm-up: compile, load
        mark = fc.mark()
        streams = []
        for s in (0x1111, 0x2222, 0x2222):  # as with torch.cuda.stream(s): read at every launch
            fc.stream = s
            streams.append(s)
            torch.ops.lowbit.matmul(fa, *w, fb)
        calls, driver, launches = fc.since(mark)
    assert driver == ["cuLaunchKernel"] * 3  # no cuMemAlloc, no copy, no cu*Synchronize, no module load
    assert [x["stream"] for x in launches] == streams
    names = {n for n, _ in calls}
    assert not names & SYNCING and not any(cpu for _, cpu in calls), calls
    assert names <= ALLOWED_CALLS, names - ALLOWED_CALLS
    assert "new_empty" in names and "index_select" in names  # the output and the act-order gather: torch's allocator


def test_the_instruments_see_what_synchronises_or_allocates() -> None:
    """The two checks above can fail: a host read, a sync or a device allocation is recorded."""
    from lowbit import runtime

    with FakeCuda(run=False) as fc:
        t = fc.tensor(torch.arange(4.0))
        mark = fc.mark()
        t.sum().item()
        t.cpu()
        bool(t[0] > 1)
        torch.cuda.synchronize()
        runtime.DeviceArray.empty(4, np.float32).numpy()
        calls, driver, _ = fc.since(mark)
    assert {"item", "cpu", "__bool__", "torch.cuda.synchronize"} <= {n for n, _ in calls} & SYNCING
    assert "cuMemAlloc" in driver and "cuMemcpyDtoH" in driver


def test_variants_follow_the_facts_and_each_loads_once() -> None:
    qw, _, _ = _operands("uint4", {}, torch.float16, False, 1)
    with FakeCuda() as fc:
        w = [fc.tensor(x) if isinstance(x, torch.Tensor) else x for x in torch_ops.weight_operands(qw)]
        outs = {}
        for m in (1, 16, 16, 33, 1):
            a = torch.randn(m, K).half()
            outs[m] = (a, torch.ops.lowbit.matmul(fc.tensor(a), *w))
        buf = fc.tensor(torch.randn(3 * K + 1).half())
        skew = buf[1:].view(3, K)  # contiguous, but 2 bytes past a 16-byte boundary: no div(16) fact for 'a'
        got_skew = torch.ops.lowbit.matmul(skew, *w)
        variants = _device.loaded_variants(KERNEL)
        loads = fc.driver.log.count("cuModuleLoadDataEx")
    ptrs = {"a_ptr", "w_ptr", "s_ptr", "z_ptr", "ts_ptr", "bias_ptr", "c_ptr"}
    by_bm = {dict(cx)["BM"]: {frozenset(f) for dev, f in v if dev == "cuda:0"} for cx, v in variants.items()}
    assert by_bm == {  # K = 96 is a multiple of 16, N = 40 is not; M = 16 is; the skewed 'a' is not aligned
        16: {frozenset({"K"} | ptrs), frozenset({"M", "K"} | ptrs), frozenset({"K"} | ptrs - {"a_ptr"})},
        32: {frozenset({"K"} | ptrs)},
    }, variants
    assert loads == 4  # one module per variant, however often it runs
    for m, (a, out) in outs.items():
        np.testing.assert_array_equal(_host(out), ops.matmul(a.numpy(), qw.numpy(), backend="emulator"))
    np.testing.assert_array_equal(_host(got_skew), ops.matmul(_host(skew), qw.numpy(), backend="emulator"))


def test_two_threads_warming_up_one_variant_load_it_once() -> None:
    qw, a, _ = _operands("uint4", {}, torch.float16, False, 7)
    with FakeCuda(run=False) as fc:
        fa, w, _ = _on(fc, qw, a, None)
        grid, args, cx, _ = torch_ops.prepare_cuda(fa, *w, None)
        start = threading.Barrier(3)
        errors: list[BaseException] = []

        def worker() -> None:
            start.wait()
            try:
                _device.launch_cuda(KERNEL, grid, args, cx)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and fc.driver.log.count("cuModuleLoadDataEx") == 1
        assert fc.driver.log.count("cuLaunchKernel") == 3


def test_a_new_variant_during_graph_capture_is_refused_a_warm_one_is_launched() -> None:
    qw, a, _ = _operands("uint4", {}, torch.float16, False, 9)
    with FakeCuda(run=False) as fc:
        fa, w, _ = _on(fc, qw, a, None)
        fc.capturing = True
        with pytest.raises(LaunchError, match=r"^kernel wx_matmul: first launch of the variant for facts .* on "
                                              r"cuda:0 during CUDA graph capture; .* run the op once with the same "
                                              r"shapes before torch.cuda.graph"):
            torch.ops.lowbit.matmul(fa, *w)
        assert "cuModuleLoadDataEx" not in fc.driver.log and not fc.driver.launches
        fc.capturing = False
        torch.ops.lowbit.matmul(fa, *w)
        fc.capturing = True
        torch.ops.lowbit.matmul(fa, *w)
        assert len(fc.driver.launches) == 2


def test_driver_failures_and_bad_arguments_are_launch_errors_naming_the_call_or_argument() -> None:
    qw, a, b = _operands("uint4", {}, torch.float16, True, 4)
    with FakeCuda(run=False) as fc:
        fa, w, fb = _on(fc, qw, a, b)
        torch.ops.lowbit.matmul(fa, *w, fb)
        fc.driver.fail_launch = LAUNCH_FAILED
        with pytest.raises(CudaError) as exc:
            torch.ops.lowbit.matmul(fa, *w, fb)
        assert exc.value.call == "cuLaunchKernel" and exc.value.code == "CUDA_ERROR_LAUNCH_FAILED"
        assert "kernel wx_matmul, grid (1, 2, 1), block (128, 1, 1)" in str(exc.value)
        fc.driver.fail_launch = 0
        n_launches = len(fc.driver.launches)
        bad = [
            ((fa, *w, fb.float()), r"argument 'bias': expected \(40,\) f16, got \(40,\) f32"),
            ((fa, w[0], w[1][:, :20], *w[2:], fb), r"argument 'scales': expected \(1, 40\), got \(1, 20\)"),
            ((fa, *w[:2], None, *w[3:], fb), r"argument 'zeros': zero='int' needs a zeros tensor, got None"),
            ((fa[:, :64], *w, fb), r"argument 'qweight': K=64 codes of 4 bits need \(8, 40\) int32 words"),
            ((fa, qw.qweight, *w[1:], fb), r"argument 'w_ptr' is on host but 'a_ptr' is on cuda:0"),
        ]
        for args, message in bad:
            with pytest.raises(LaunchError, match=message):
                torch.ops.lowbit.matmul(*args)
        assert len(fc.driver.launches) == n_launches  # nothing was launched
        np.testing.assert_array_equal(_host(fa), a.numpy())  # inputs unchanged


def test_an_empty_batch_launches_nothing() -> None:
    qw, a, _ = _operands("uint4", {}, torch.float16, False, 3)
    with FakeCuda(run=False) as fc:
        fa, w, _ = _on(fc, qw, a, None)
        out = torch.ops.lowbit.matmul(fa[:0], *w)
        assert out.shape == (0, N) and not fc.driver.launches


def test_quantlinear_on_cuda_tensors_matches_the_emulator() -> None:
    torch.manual_seed(4)
    lin = torch.nn.Linear(K, N)
    layer = QuantLinear.from_linear(lin, wtype="uint4", group_size=32).half()
    x = torch.randn(2, 3, K).half()
    want = ops.matmul(x.numpy(), layer.quantized_weight().numpy(), layer.bias.numpy(), backend="emulator")
    with FakeCuda() as fc:
        fc.module(layer)
        assert layer.qweight.is_cuda and layer.bias.is_cuda
        out = layer(fc.tensor(x))
    assert out.shape == (2, 3, N)
    np.testing.assert_array_equal(_host(out), want)
