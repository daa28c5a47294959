"""The ``ops`` section of benchmarks/gpu_check.py (issue 15): lowbit.ops and lowbit.nn on a GPU.

Build machine (``gpu_check.py --prepare`` calls it; lark, llvmlite 0.50, ptxas)::

    python benchmarks/gpu_check_ops.py --prepare benchmarks/gpu_check

records the QuantLinear checks' layers, inputs, emulator outputs and float64
references (``<prepared>/ops/*.npz``) and runs **every launch the GPU run
makes** through the op's real CUDA path on the stand-in driver
(tests/ops/fake_cuda.py, launches recorded, not executed), which compiles each
variant for sm_90 into the carried cache ``<prepared>/cache`` -- the GPU
machine cannot compile -- and lists them in ``<prepared>/ops/manifest.json``.

GPU machine: gpu_check's ``ops`` section (its own process, 25 s budget) calls
:func:`run`, which writes ``<results>/ops.json`` after each part:

===========  ==================================================================
part         what
===========  ==================================================================
quantlinear  QuantLinear (uint4 g128 + bias, uint4 act-order, nf4 g64 bf16, mxfp4;
             K=256, N=136, M in {1, 37}) on CUDA: bit for bit against the
             emulator output recorded here, within the float64 bound, and
             against the same layer on the CPU (torch's reference path)
graph        a CUDA-graph capture of a QuantLinear forward (M=1), replayed on a new
             input: equal to eager, replay time
host         host time per call at M=1: QuantLinear, torch.ops.lowbit.matmul, next
             to F.linear (fp16) and torch.add of the same sizes
matmul       lowbit.ops.matmul (uint4, group 128, int zeros, f16) against torch's
             fp16 matmul of the same (dequantised) weight, K = N = 4096, M in
             {1, 16, 256}: CUDA events, median of many runs, 4 weight sets rotated
             (a 4096x4096 fp16 weight fits in an H200's L2); kernel time from a
             CUDA graph of 8 calls, and eager per-call time; error against an
             fp32 reference dequantised independently on the GPU; then the same
             weights in layout 3 (kernel order): equal bit for bit, and its
             kernel time from the same graph (``kernel_order``: which layout
             decode should default to)
===========  ==================================================================

CI (no GPU): ``python -m benchmarks.gpu_check_ops --dry-run PREPARED`` runs the
same launches on the stand-in driver in a process that cannot compile
(tests/runtime/test_gpu_check.py blocks lark and llvmlite): every variant must
come from the carried cache.  NOT YET RUN ON A GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the QuantLinear layers checked on the GPU (K x N, rows M)
LAYER_K, LAYER_N, LAYER_M = 256, 136, (1, 37)
#: the timed GEMM: uint4, group 128, int zeros, f16 scales and activations
BENCH_K = BENCH_N = 4096
BENCH_M = (1, 16, 256)
#: the timed GEMM's weight layouts: 1 (lsb, lowbit.ops' default, 16x32 tiles) and 3 (kernel order, 16x128 tiles,
#: the static tables' kernel) -- which is faster at decode on a GPU decides the default (issue 13's open question)
BENCH_LAYOUTS = (1, 3)
BENCH_SETS = 4  # weight sets rotated through, so repeated runs do not read one weight from L2
GRAPH_CALLS = 8  # calls per captured graph when timing the kernel alone
TIME_BUDGET_S = 0.5  # per timed quantity (the whole section has 25 s, start-up included)
HOST_CALLS, HOST_REPS = 200, 7  # host time: calls between synchronisations (fewer than the launch queue), rounds


@dataclass(frozen=True)
class LayerCheck:
    name: str
    wtype: str
    group_size: int | None
    scale_dtype: str
    act: str  # "f16" | "bf16"
    bias: bool
    act_order: bool = False


LAYERS = (
    LayerCheck("uint4-g128", "uint4", 128, "f16", "f16", True),
    LayerCheck("uint4-g128-act-order", "uint4", 128, "f16", "f16", False, act_order=True),
    LayerCheck("nf4-g64-bf16", "nf4", 64, "bf16", "bf16", True),
    LayerCheck("mxfp4", "mxfp4", None, "f16", "f16", False),
)
GRAPH_LAYER = LAYERS[0]  # the graph and host-time parts use this layer at M = 1


def _torch_dtype(torch, name: str):  # noqa: ANN001,ANN202
    return {"f16": torch.float16, "bf16": torch.bfloat16}[name]


# ============================================================================== arrays <-> npz (bf16 as int16 bits)


def _to_np(t) -> np.ndarray:  # noqa: ANN001
    import torch

    t = t.detach().cpu().contiguous()
    return t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()


def _from_np(torch, a: np.ndarray, bf16: bool):  # noqa: ANN001,ANN202
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.view(torch.bfloat16) if bf16 else t


def _new_layer(cfg: LayerCheck):  # noqa: ANN202
    import torch

    from lowbit.nn import QuantLinear

    return QuantLinear(LAYER_K, LAYER_N, cfg.bias, wtype=cfg.wtype, group_size=cfg.group_size,
                       scale_dtype=cfg.scale_dtype, act_order=cfg.act_order, dtype=_torch_dtype(torch, cfg.act))  # fmt: skip


def load_check(path: Path, to_dev):  # noqa: ANN001,ANN201
    """(config, meta, CPU layer, device layer, CPU input, device input, arrays) of one prepared QuantLinear check."""
    import torch

    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    cfg = LayerCheck(**meta["config"])
    bf16 = set(meta["bf16"])
    sd = {k[3:]: _from_np(torch, v, k[3:] in bf16) for k, v in arrays.items() if k.startswith("sd_")}
    layer = _new_layer(cfg)
    layer.load_state_dict(sd)
    x = _from_np(torch, arrays["x"], cfg.act == "bf16")
    dev_layer = _new_layer(cfg)
    dev_layer.load_state_dict(sd)
    return cfg, meta, layer, to_dev(dev_layer), x, to_dev(x), arrays


# ============================================================================== prepare (build machine)


def prepare(out: Path) -> int:
    """Record the QuantLinear checks and compile every variant the GPU run launches into ``out/cache``."""
    os.environ["LOWBIT_CACHE_DIR"] = str(out / "cache")  # the launch path compiles into the carried cache
    import torch

    import lowbit.ops as ops
    from lowbit.nn import QuantLinear
    from tests.ops.reference import dequantize_reference, gemm_bound

    t0 = time.perf_counter()
    (out / "ops").mkdir(parents=True, exist_ok=True)
    checks = []
    for i, cfg in enumerate(LAYERS):
        g = torch.Generator().manual_seed(1500 + i)
        lin = torch.nn.Linear(LAYER_K, LAYER_N, bias=cfg.bias)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(LAYER_N, LAYER_K, generator=g) * 0.05)
            if cfg.bias:
                lin.bias.copy_(torch.randn(LAYER_N, generator=g) * 0.1)
        perm = torch.randperm(LAYER_K, generator=g) if cfg.act_order else None
        layer = QuantLinear.from_linear(lin, wtype=cfg.wtype, group_size=cfg.group_size, scale_dtype=cfg.scale_dtype,
                                        perm=perm).to(_torch_dtype(torch, cfg.act))  # fmt: skip
        qw = layer.quantized_weight().numpy()
        sd = layer.state_dict()
        for m in LAYER_M:
            x = torch.randn(m, LAYER_K, generator=g).to(_torch_dtype(torch, cfg.act))
            xn = ops._tensors.numpy_of(x)
            bn = None if layer.bias is None else ops._tensors.numpy_of(layer.bias)
            emu = ops.matmul(xn, qw, bn, backend="emulator")
            ref, bound = gemm_bound(xn, dequantize_reference(qw), bn)
            assert (np.abs(emu.astype(np.float64) - ref) <= bound).all(), cfg  # the recorded output is right
            meta = {"config": asdict(cfg), "M": m, "bf16": [k for k, v in sd.items() if v.dtype == torch.bfloat16]}
            name = f"quantlinear-{cfg.name}-M{m}.npz"
            np.savez_compressed(out / "ops" / name, meta=np.array(json.dumps(meta)), x=_to_np(x), ref=ref, bound=bound,
                                emu=emu.view(np.int16) if cfg.act == "bf16" else emu,
                                **{f"sd_{k}": _to_np(v) for k, v in sd.items()})  # fmt: skip
            checks.append(name)
            print(f"ops check {name}: emulator output and float64 reference recorded")
    launched = dry_run(out)
    manifest = {"checks": checks, "variants": launched, "layers": [asdict(c) for c in LAYERS],
                "bench": {"K": BENCH_K, "N": BENCH_N, "M": list(BENCH_M), "sets": BENCH_SETS}}  # fmt: skip
    (out / "ops" / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    missing = [v for v in launched if not v["cubin"]]
    print(f"ops: {len(checks)} checks, {len(launched)} variants compiled for "
          f"{sorted({v['arch'] for v in launched})} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    return 1 if missing else 0


# ============================================================================== the launches, on any "device"


def bench_weight(torch, s: int, to_dev, layout: int = 1):  # noqa: ANN001,ANN201
    """Weight set ``s`` of the timed GEMM: random words (= random uint4 codes), scales and zero codes; in
    ``layout`` 3 (kernel order) the same weight, repacked on the host before it moves to the device."""
    import lowbit.ops as ops

    g = torch.Generator().manual_seed(77 + s)
    k, n, group = BENCH_K, BENCH_N, 128
    words = torch.randint(-(2**31), 2**31, (k * 4 // 32, n), generator=g, dtype=torch.int64).to(torch.int32)
    zeros = torch.randint(-(2**31), 2**31, ((k // group) * n * 4 // 32,), generator=g, dtype=torch.int64)
    scales = (torch.rand(k // group, n, generator=g) * 0.01 + 0.005).to(torch.float16)
    qw = ops.QuantizedWeight(wtype="uint4", shape=(k, n), group_size=group, zero="int", qweight=words, scales=scales,
                             zeros=zeros.to(torch.int32)).repack(layout)  # fmt: skip (layout 1: the same arrays)
    return ops.QuantizedWeight(wtype="uint4", shape=(k, n), group_size=group, zero="int", qweight=to_dev(qw.qweight),
                               scales=to_dev(qw.scales), zeros=to_dev(qw.zeros), layout=qw.layout)  # fmt: skip


def dry_run(prepared: Path) -> list[dict]:
    """Every launch of :func:`run`, through the op's CUDA path on the stand-in driver (not executed).

    Returns the variants loaded (kernel, arch, spec id, key, facts).  Where
    nothing compiles (CI's blocked child, a GPU machine) each must come from
    the carried cache.
    """
    import torch

    import lowbit.ops as ops
    from lowbit.ops import _device, torch_ops
    from tests.ops.fake_cuda import FakeCuda

    paths = sorted((prepared / "ops").glob("quantlinear-*.npz"))
    if not paths:
        raise SystemExit(f"no QuantLinear checks in {prepared / 'ops'}: run --prepare first")
    with FakeCuda(run=False) as fc:
        for path in paths:  # quantlinear; graph and host use LAYERS[0] at M = 1, one of these
            _, _, _, dev_layer, _, dx, _ = load_check(path, fc.to)
            with torch.no_grad():
                dev_layer(dx)
        for m in BENCH_M:  # matmul, in each layout
            for layout in BENCH_LAYOUTS:
                qw = bench_weight(torch, 0, fc.tensor, layout)
                ops.matmul(fc.tensor(torch.zeros(m, BENCH_K, dtype=torch.float16)), qw)
        kernel = torch_ops._launch.kernel()
        loaded = [gk for per in _device.loaded_variants(kernel).values() for gk in per.values()]
        assert len(fc.driver.launches) == len(paths) + len(BENCH_M) * len(BENCH_LAYOUTS), len(fc.driver.launches)
    return [{"kernel": gk.compiled.kernel_name, "arch": gk.compiled.arch, "spec": gk.compiled.spec,
             "key": gk.compiled.key, "cubin": gk.compiled.cubin is not None,
             "facts": sorted(gk.compiled.program.facts)} for gk in loaded]  # fmt: skip


# ============================================================================== the GPU run


def _median_us(times_ms: list[float]) -> float:
    return statistics.median(times_ms) * 1e3


def _events_per_call(torch, fn, budget_s: float | None = None, max_runs: int = 200) -> tuple[float, int]:  # noqa: ANN001
    """Median GPU time (us) between events around one eager call; fn(i) runs call i."""
    budget_s = TIME_BUDGET_S if budget_s is None else budget_s
    for i in range(3):
        fn(i)
    torch.cuda.synchronize()
    pairs = []
    stop = time.perf_counter() + budget_s
    while not pairs or (len(pairs) < max_runs and time.perf_counter() < stop):  # at least one run
        st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        st.record()
        fn(len(pairs))
        en.record()
        pairs.append((st, en))
        if len(pairs) % 16 == 0:
            en.synchronize()
    torch.cuda.synchronize()
    return _median_us([s.elapsed_time(e) for s, e in pairs]), len(pairs)


def _graph_per_call(torch, fn, calls: int = GRAPH_CALLS, budget_s: float | None = None,
                    max_runs: int = 100) -> tuple[float, int]:  # noqa: ANN001
    """Median GPU time (us) per call inside a CUDA graph of ``calls`` calls (no launch gaps)."""
    budget_s = TIME_BUDGET_S if budget_s is None else budget_s
    for i in range(calls):  # warm-up outside the capture: every variant loaded
        fn(i)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(calls):
            fn(i)
    g.replay()
    torch.cuda.synchronize()
    times = []
    stop = time.perf_counter() + budget_s
    while not times or (len(times) < max_runs and time.perf_counter() < stop):
        st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        st.record()
        g.replay()
        en.record()
        en.synchronize()
        times.append(st.elapsed_time(en) / calls)
    return _median_us(times), len(times)


def _cuda(t):  # noqa: ANN001,ANN202 - a tensor or a module
    return t.cuda()


def part_quantlinear(torch, prepared: Path, to_dev=_cuda, pattern: str = "quantlinear-*.npz") -> dict:  # noqa: ANN001
    """Each prepared QuantLinear check on the device.

    ``to_dev`` is ``.cuda()`` on the GPU; CI passes the stand-in's (every part takes it, so CI runs each part's
    code on the stand-in driver before a GPU session spends device time on it).
    """
    import lowbit.ops as ops

    rows, ok = [], True
    for path in sorted((prepared / "ops").glob(pattern)):
        cfg, meta, layer, dev_layer, x, dx, arrays = load_check(path, to_dev)
        with torch.no_grad():
            got = dev_layer(dx)
            torch.cuda.synchronize()
            cpu = layer(x)
        g = ops._tensors.numpy_of(got).astype(np.float64)
        emu = arrays["emu"]
        emu = _from_np(torch, emu, True).float().numpy() if cfg.act == "bf16" else emu.astype(np.float64)
        ref, bound = arrays["ref"], arrays["bound"]
        c = ops._tensors.numpy_of(cpu).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # a non-finite output is a finding, reported below
            row = _compare(path.stem, got, meta["M"], g, emu, ref, bound, c)
        ok &= row["verdict"] == "pass"
        rows.append(row)
    return {"verdict": "pass" if ok and rows else "fail", "rows": rows}


def _compare(name: str, got, m: int, g: np.ndarray, emu: np.ndarray, ref: np.ndarray, bound: np.ndarray,  # noqa: ANN001
             c: np.ndarray) -> dict:  # fmt: skip
    """One check's row: the device output ``g`` against the emulator, the float64 bound and the CPU output ``c``."""
    row = {"check": name, "device": str(got.device), "shape": list(got.shape), "M": m,
           "finite": bool(np.isfinite(g).all()),
           "gpu_vs_emulator_equal": int((g == emu).sum()), "elements": int(g.size),
           "gpu_within_f64_bound": bool((np.abs(g - ref) <= bound).all()),
           "max_abs_err_vs_f64": float(np.abs(g - ref).max()),
           "gpu_vs_cpu_within_2x_bound": bool((np.abs(g - c) <= 2 * bound).all()),
           "max_abs_diff_vs_cpu": float(np.abs(g - c).max())}  # fmt: skip
    row["verdict"] = "pass" if (row["finite"] and row["gpu_within_f64_bound"] and row["gpu_vs_cpu_within_2x_bound"]
                                and row["gpu_vs_emulator_equal"] == row["elements"]) else "fail"  # fmt: skip
    return row


def part_graph(torch, prepared: Path, to_dev=_cuda) -> dict:  # noqa: ANN001
    path = prepared / "ops" / f"quantlinear-{GRAPH_LAYER.name}-M1.npz"
    cfg, _, _, layer, _, dx, _ = load_check(path, to_dev)
    act = _torch_dtype(torch, cfg.act)
    static_x = dx.clone()
    with torch.no_grad():
        layer(static_x)  # warm-up: the variant is loaded before the capture
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            static_y = layer(static_x)
        new_x = torch.randn(static_x.shape, device="cuda", dtype=torch.float32).to(act)
        static_x.copy_(new_x)
        static_y.fill_(float("nan"))
        g.replay()
        torch.cuda.synchronize()
        eager = layer(new_x)
        torch.cuda.synchronize()
        equal = bool(torch.equal(static_y, eager))
        replay_us, runs = _events_per_call(torch, lambda i: g.replay())
        eager_us, _ = _events_per_call(torch, lambda i: layer(static_x))
    return {"verdict": "pass" if equal and bool(torch.isfinite(static_y).all()) else "fail",
            "replay_equals_eager_on_new_input": equal, "replay_us": replay_us, "eager_us": eager_us, "runs": runs}  # fmt: skip


def part_host(torch, prepared: Path, to_dev=_cuda) -> dict:  # noqa: ANN001
    from lowbit.ops import torch_ops

    path = prepared / "ops" / f"quantlinear-{GRAPH_LAYER.name}-M1.npz"
    _, _, _, layer, _, dx, _ = load_check(path, to_dev)
    w16 = torch.randn(LAYER_N, LAYER_K, device="cuda", dtype=torch.float16)
    y16 = torch.randn(1, LAYER_N, device="cuda", dtype=torch.float16)
    qw = layer.quantized_weight()
    facts = qw.facts(torch_ops.activation_name(dx.dtype))  # as QuantLinear.forward launches it
    ops_args = (dx, *torch_ops.weight_operands(qw), layer.bias, facts.fold, facts.finite)

    def host_us(fn) -> float:  # noqa: ANN001
        for _ in range(min(20, HOST_CALLS)):
            fn()
        out = []
        for _ in range(HOST_REPS):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(HOST_CALLS):
                fn()
            out.append((time.perf_counter() - t0) / HOST_CALLS * 1e6)
        torch.cuda.synchronize()
        return statistics.median(out)

    with torch.no_grad():
        rows = {
            "QuantLinear(x), M=1, K=256, N=136": host_us(lambda: layer(dx)),
            "torch.ops.lowbit.matmul(...)": host_us(lambda: torch.ops.lowbit.matmul(*ops_args)),
            "torch.nn.functional.linear fp16, same sizes": host_us(lambda: torch.nn.functional.linear(dx, w16)),
            "torch.add (1, 136) fp16": host_us(lambda: torch.add(y16, y16)),
        }
    return {"verdict": "pass", "host_us_per_call": rows, "target_us": 15,
            "note": f"host wall time per call, {HOST_CALLS} calls between synchronisations, median of {HOST_REPS}"}  # fmt: skip


def dequant_uint4(torch, qw):  # noqa: ANN001,ANN201
    """The uint4 weight in f32 on its device, written from the layout definition, not from lowbit's code:
    code (k, n) is bits 4(k mod 8).. of word (k // 8, n); zero (g, n) is code g*N + n of the zero stream."""
    k, n = qw.shape
    dev = qw.qweight.device
    shifts = (torch.arange(8, device=dev, dtype=torch.int32) * 4).view(1, 8, 1)
    codes = ((qw.qweight.view(-1, 1, n) >> shifts) & 0xF).reshape(k, n).float()
    zs = ((qw.zeros.view(-1, 1) >> shifts.view(1, 8)) & 0xF).reshape(-1)[: qw.num_groups * n].view(-1, n).float()
    g = torch.arange(k, device=dev) // qw.group_size
    return (codes - zs[g]) * qw.scales.float()[g]


def part_matmul(torch, prepared: Path, to_dev=_cuda) -> dict:  # noqa: ANN001
    import lowbit.ops as ops

    torch.backends.cuda.matmul.allow_tf32 = False
    weights = [bench_weight(torch, s, to_dev) for s in range(BENCH_SETS)]
    kernel_order = [bench_weight(torch, s, to_dev, 3) for s in range(BENCH_SETS)]  # the same weights, layout 3
    w32 = [dequant_uint4(torch, qw) for qw in weights]
    w16 = [w.half() for w in w32]
    rows = []
    ok = True
    for m in BENCH_M:
        acts = [torch.randn(m, BENCH_K, device="cuda", dtype=torch.float32).half() for _ in range(BENCH_SETS)]
        got = ops.matmul(acts[0], weights[0])
        ref = acts[0].float() @ w32[0]
        t16 = acts[0] @ w16[0]
        torch.cuda.synchronize()
        rel = float((got.float() - ref).norm() / ref.norm())
        rel16 = float((t16.float() - ref).norm() / ref.norm())
        row = {"M": m, "rel_err_vs_f32": rel, "torch_fp16_rel_err_vs_f32": rel16,
               "finite": bool(torch.isfinite(got).all())}  # fmt: skip
        lb = lambda i: ops.matmul(acts[i % BENCH_SETS], weights[i % BENCH_SETS])  # noqa: E731
        tb = lambda i: torch.matmul(acts[i % BENCH_SETS], w16[i % BENCH_SETS])  # noqa: E731
        once, _ = _events_per_call(torch, lb, budget_s=0.0, max_runs=1)  # a slow kernel gets a shorter graph
        calls = GRAPH_CALLS if once < 1000 else 2 if once < 10_000 else 1
        row["lowbit_kernel_us"], row["graph_runs"] = _graph_per_call(torch, lb, calls)
        row["graph_calls"] = calls
        row["torch_fp16_kernel_us"], _ = _graph_per_call(torch, tb)
        row["lowbit_eager_us"], row["eager_runs"] = _events_per_call(torch, lb)
        row["torch_fp16_eager_us"], _ = _events_per_call(torch, tb)
        weight_bytes = BENCH_K * BENCH_N // 2 + 2 * weights[0].scales.numel() + 4 * weights[0].zeros.numel()
        moved = weight_bytes + 2 * m * (BENCH_K + BENCH_N)
        row["lowbit_GBps"] = moved / (row["lowbit_kernel_us"] * 1e-6) / 1e9
        row["lowbit_TFLOPS"] = 2 * m * BENCH_K * BENCH_N / (row["lowbit_kernel_us"] * 1e-6) / 1e12
        row["torch_fp16_TFLOPS"] = 2 * m * BENCH_K * BENCH_N / (row["torch_fp16_kernel_us"] * 1e-6) / 1e12
        row["speedup_vs_torch_fp16"] = row["torch_fp16_kernel_us"] / row["lowbit_kernel_us"]
        # layout 3: the same weight in kernel order must give the same bits (as on the emulator), and its kernel
        # time (graph only: one timed quantity more an M keeps the section in its 25 s)
        l3 = lambda i: ops.matmul(acts[i % BENCH_SETS], kernel_order[i % BENCH_SETS])  # noqa: E731
        got3 = ops.matmul(acts[0], kernel_order[0])
        torch.cuda.synchronize()
        k3 = {"equals_layout_1": bool(torch.equal(got3, got))}
        k3["lowbit_kernel_us"], k3["graph_runs"] = _graph_per_call(torch, l3, calls)
        k3["speedup_vs_layout_1"] = row["lowbit_kernel_us"] / k3["lowbit_kernel_us"]
        k3["speedup_vs_torch_fp16"] = row["torch_fp16_kernel_us"] / k3["lowbit_kernel_us"]
        row["kernel_order"] = k3
        row["verdict"] = "pass" if row["finite"] and rel < 2e-3 and k3["equals_layout_1"] else "fail"
        ok &= row["verdict"] == "pass"
        rows.append(row)
    return {"verdict": "pass" if ok else "fail", "rows": rows, "weight": "uint4 g128 int zeros f16", "sets": BENCH_SETS}


PARTS = (("quantlinear", part_quantlinear), ("graph", part_graph), ("host", part_host), ("matmul", part_matmul))


def run(prepared: Path, results: Path) -> int:
    """The GPU run (gpu_check's ``ops`` section): each part in turn, ``results/ops.json`` rewritten after each."""
    results.mkdir(parents=True, exist_ok=True)
    data: dict = {"parts": {}}

    def write() -> None:
        (results / "ops.json").write_text(json.dumps(data, indent=1, default=str) + "\n")

    try:
        import torch
    except ImportError as exc:
        data["error"] = f"torch is not importable: {exc}"
        write()
        return 1
    from lowbit import runtime

    data.update({"torch": torch.__version__, "torch_cuda": torch.version.cuda, "runtime": str(runtime.status()),
                 "manifest": json.loads((prepared / "ops" / "manifest.json").read_text())["variants"]
                 if (prepared / "ops" / "manifest.json").exists() else "missing"})  # fmt: skip
    if not (torch.cuda.is_available() and runtime.status().available):
        data["error"] = f"no GPU: torch.cuda.is_available()={torch.cuda.is_available()}, {runtime.status()}"
        write()
        print(data["error"])
        return 1
    data["device"] = torch.cuda.get_device_name()
    write()
    ok = True
    for name, fn in PARTS:
        t0 = time.perf_counter()
        try:
            data["parts"][name] = fn(torch, prepared)
        except Exception as exc:  # noqa: BLE001 - one part's failure is a result; the others still run
            data["parts"][name] = {"verdict": "fail", "error": f"{type(exc).__name__}: {exc}",
                                   "traceback": traceback.format_exc()[-3000:]}  # fmt: skip
        data["parts"][name]["seconds"] = round(time.perf_counter() - t0, 2)
        ok &= data["parts"][name]["verdict"] == "pass"
        write()
        print(f"ops/{name:12s} {data['parts'][name]['verdict']:5s} {data['parts'][name]['seconds']:6.2f} s", flush=True)
    print(json.dumps(data["parts"], indent=1, default=str)[-6000:])
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--prepare", type=Path, metavar="OUT", help="record the checks, compile every variant")
    mode.add_argument("--run", nargs=2, type=Path, metavar=("PREPARED", "RESULTS"), help="the GPU run")
    mode.add_argument("--dry-run", type=Path, metavar="PREPARED", help="every launch on the stand-in driver")
    a = ap.parse_args(argv)
    if a.prepare:
        return prepare(a.prepare.resolve())
    if a.run:
        return run(a.run[0].resolve(), a.run[1].resolve())
    print(json.dumps(dry_run(a.dry_run.resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
