"""torch.ops.lowbit.matmul: opcheck, FakeTensor/meta, torch.compile(fullgraph=True), and the GPU entry point.

The GPU path (CUDA tensors) runs through :func:`lowbit.ops._device.launch_cuda`
and lowbit.runtime.  Here (no GPU) its launch arguments are run on the
emulator, and the whole path runs on the stand-in driver in
tests/ops/test_cuda_path.py; the ``gpu``-marked test compares it with the CPU
result where a GPU exists.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit.ops as ops
from lowbit.errors import LaunchError
from tests.conftest import IN_CI, gpu_available
from tests.ops.reference import dequantize_reference, gemm_bound

torch = __import__("torch") if IN_CI else pytest.importorskip("torch")  # CI installs the torch extra
from lowbit.ops import torch_ops  # noqa: E402 - after torch is known to be there
from lowbit.ops._device import launch_cuda, runtime_available  # noqa: E402

K, N = 96, 40

CONFIGS = [
    ("uint4", {}, torch.float16, True),
    ("int4", {"group_size": 32}, torch.float16, False),
    ("uint3", {"zero": "float", "group_size": -1}, torch.bfloat16, True),
    ("e2m1", {}, torch.float16, True),
    ("nf4", {"scale_dtype": "bf16"}, torch.bfloat16, False),
    ("mxfp4", {}, torch.float16, False),
    ("nvfp4", {}, torch.float16, True),
    ("uint4", {"perm": "random"}, torch.float16, True),
]


def _operands(fmt: str, kw: dict, act: torch.dtype, bias: bool, m: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    kw = dict(kw)
    if kw.get("perm") == "random":
        kw["perm"] = torch.randperm(K, generator=g)
    qw = ops.quantize_weight(torch.randn(K, N, generator=g), fmt, **kw)
    a = torch.randn(m, K, generator=g).to(act)
    b = torch.randn(N, generator=g).to(act) if bias else None
    return qw, a, b


@pytest.mark.parametrize(("fmt", "kw", "act", "bias"), CONFIGS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)])
def test_opcheck(fmt: str, kw: dict, act: torch.dtype, bias: bool) -> None:
    qw, a, b = _operands(fmt, kw, act, bias)
    args = (a, *torch_ops.weight_operands(qw), b)
    result = torch.library.opcheck(torch.ops.lowbit.matmul.default, args)
    assert set(result.values()) == {"SUCCESS"}, result
    a3 = a.reshape(1, 3, K)
    result = torch.library.opcheck(torch.ops.lowbit.matmul.default, (a3, *torch_ops.weight_operands(qw), b))
    assert set(result.values()) == {"SUCCESS"}, result


def test_meta_tensors_give_shape_and_dtype() -> None:
    qw, a, b = _operands("uint4", {}, torch.bfloat16, True)
    meta = qw.to("meta")
    out = torch.ops.lowbit.matmul(a.to("meta").reshape(1, 3, K), *torch_ops.weight_operands(meta), b.to("meta"))
    assert out.device.type == "meta" and out.shape == (1, 3, N) and out.dtype == torch.bfloat16
    with pytest.raises(RuntimeError, match="qweight has"):
        torch.ops.lowbit.matmul(torch.empty(3, K + 64, device="meta"), *torch_ops.weight_operands(meta))


class _Capture:
    """A torch.compile backend that records the FX graph and runs it as is."""

    def __init__(self) -> None:
        self.graphs: list[torch.fx.GraphModule] = []

    def __call__(self, gm: torch.fx.GraphModule, inputs: list) -> object:
        self.graphs.append(gm)
        return gm.forward

    def targets(self) -> list[object]:
        return [n.target for gm in self.graphs for n in gm.graph.nodes if n.op == "call_function"]


def _small_model() -> torch.nn.Module:
    from lowbit.nn import quantize_model  # noqa: PLC0415

    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 96), torch.nn.GELU(), torch.nn.Linear(96, 80), torch.nn.ReLU(), torch.nn.Linear(80, 24)
    )
    quantize_model(model, "uint4", group_size=32, skip=["4"])
    model[2] = type(model[2]).from_linear(torch.nn.Linear(96, 80), "nf4", group_size=32)
    return model.to(torch.float16).eval()


def test_torch_compile_fullgraph_matches_eager_and_keeps_the_op() -> None:
    model = _small_model()
    cap = _Capture()
    compiled = torch.compile(model, backend=cap, fullgraph=True)
    x = torch.randn(7, 64, dtype=torch.float16)
    with torch.no_grad():
        eager = model(x)
        out = compiled(x)
    assert torch.equal(out, eager)
    ops_in_graph = [t for t in cap.targets() if t in (torch.ops.lowbit.matmul, torch.ops.lowbit.matmul.default)]
    assert len(ops_in_graph) == 2, cap.targets()
    assert eager.shape == (7, 24) and torch.isfinite(eager).all()


def test_torch_compile_aot_eager_with_dynamic_batch() -> None:
    model = _small_model()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True, dynamic=True)
    with torch.no_grad():
        for m in (1, 5, 9):
            x = torch.randn(m, 64, dtype=torch.float16)
            assert torch.equal(compiled(x), model(x))


@pytest.mark.full
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own
def test_torch_compile_inductor_matches_eager() -> None:
    """The default backend (inductor, C++ codegen for the rest of the graph: ~20 s here)."""
    model = _small_model()
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(7, 64, dtype=torch.float16)
    with torch.no_grad():
        assert torch.equal(compiled(x), model(x))


def test_the_cuda_implementation_refuses_cpu_tensors_and_a_machine_without_a_gpu() -> None:
    """Host tensors never reach the driver; CUDA-looking tensors without a usable GPU get the runtime's reason."""
    from tests.ops.fake_cuda import FakeCudaTensor

    qw, a, b = _operands("uint4", {"perm": "random"}, torch.float16, True, m=5)
    args = (a, *torch_ops.weight_operands(qw), b)
    before = [t.clone() for t in (a, qw.qweight, qw.scales, b)]
    with pytest.raises(LaunchError, match=r"^kernel wx_matmul: the GPU path needs CUDA tensors, but the arguments "
                                          r"are on host \(CPU tensors take the reference path\)$"):
        torch_ops._matmul_cuda(*args)
    assert all(torch.equal(x, y) for x, y in zip(before, (a, qw.qweight, qw.scales, b)))  # inputs unchanged
    if runtime_available():  # pragma: no cover - a GPU machine
        return
    grid, kargs, cx, _ = torch_ops.prepare_cuda(*args)
    fake = tuple(x.as_subclass(FakeCudaTensor) if isinstance(x, torch.Tensor) else x for x in kargs)
    with pytest.raises(LaunchError, match=r"^the arguments are on cuda:0, but no GPU is usable here: "):
        launch_cuda(torch_ops._launch.kernel(), grid, fake, cx)


def test_the_dispatcher_has_the_ops_cpu_cuda_and_meta_kernels() -> None:
    for key in ("CPU", "CUDA", "Meta"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key("lowbit::matmul", key), key
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("lowbit::matmul", "XLA")  # the check can fail


@pytest.mark.parametrize(("fmt", "kw", "act", "bias"), CONFIGS[:1] + CONFIGS[3:4] + CONFIGS[6:])
def test_cuda_launch_arguments_compute_the_product_on_the_emulator(fmt: str, kw: dict, act: torch.dtype,
                                                                    bias: bool) -> None:  # fmt: skip
    """prepare_cuda's grid, arguments and constexprs, run as they are on the emulator, give A @ W + bias."""
    qw, a, b = _operands(fmt, kw, act, bias, m=5)
    grid, args, cx, out = torch_ops.prepare_cuda(a, *torch_ops.weight_operands(qw), b)
    host = [np.array(ops._tensors.numpy_of(x), copy=True) if ops._tensors.is_torch(x) else x for x in args]
    assert args[6] is out and len(args) == 10 and args[7:] == (5, N, K)
    host[6][...] = np.nan
    torch_ops._launch.kernel()[grid](*host, **dict(cx))
    c = host[6]
    ref, bound = gemm_bound(ops._tensors.numpy_of(a), dequantize_reference(qw),
                            None if b is None else ops._tensors.numpy_of(b))  # fmt: skip
    assert (np.abs(c.astype(np.float64) - ref) <= bound).all()


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("fmt", "kw", "act", "bias"), CONFIGS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)])
def test_on_cuda_tensors_the_op_matches_the_cpu_result(fmt: str, kw: dict, act: torch.dtype, bias: bool) -> None:
    """The GPU kernel against the float64 reference and against the CPU op (the reference path), M = 1 and 67.

    Needs a machine that compiles (or the variants in a carried cache); gpu_check_ops.py is the prepared check.
    """
    for m in (1, 67):
        qw, a, b = _operands(fmt, kw, act, bias, m=m, seed=m)
        cq = qw.to("cuda")
        got = torch.ops.lowbit.matmul(a.cuda(), *torch_ops.weight_operands(cq), None if b is None else b.cuda())
        torch.cuda.synchronize()
        cpu = torch.ops.lowbit.matmul(a, *torch_ops.weight_operands(qw), b)
        ref, bound = gemm_bound(ops._tensors.numpy_of(a), dequantize_reference(qw),
                                None if b is None else ops._tensors.numpy_of(b))  # fmt: skip
        g = ops._tensors.numpy_of(got).astype(np.float64)
        assert got.shape == cpu.shape == (m, N) and got.dtype == act and got.device.type == "cuda"
        assert (np.abs(g - ref) <= bound).all(), np.abs(g - ref).max()
        assert (np.abs(g - ops._tensors.numpy_of(cpu).astype(np.float64)) <= 2 * bound).all()
