"""Host time of one ``torch.ops.lowbit.matmul`` call up to ``cuLaunchKernel``, next to plain torch ops.

Users of peer libraries report Python dispatch eating the speedup at decode
(and a ``custom_op`` wrapper adding up to 50% latency), so the target is
<= 15 us from the op's entry to ``cuLaunchKernel``.  This machine has no
GPU, so the CUDA path runs on CPU tensors against **the stand-in driver**
(``tests/runtime/fake_driver.py``, whose ``cuLaunchKernel`` returns at once):

* the tensors are ordinary CPU tensors, with ``torch.Tensor.is_cuda`` and
  ``get_device`` patched for the run to say ``cuda:0`` (a patch of the
  class costs nothing measurable; a tensor *subclass* would double the
  cost of every attribute read) and torch's current stream patched to a
  constant handle, so lowbit's binder takes its CUDA-tensor path and the
  runtime its torch-stream path;
* ``torch.empty`` inside the op allocates on the CPU (torch's CUDA caching
  allocator is of the same order, ~1-2 us);
* ``cuLaunchKernel`` is a Python no-op: the real cuda-bindings call (its
  marshalling and the driver's own work) is *not* in these numbers, and
  neither are the real CUDA tensors' attribute reads;
  ``benchmarks/gpu_check_ops.py`` measures the real thing on a GPU.

Rows (the median and the minimum over ``--repeat`` rounds of the mean of
``--calls`` calls, one torch thread; on a shared machine the minimum is the
better estimate):

1. **dispatch**: a no-op op with ``lowbit::matmul``'s schema registered like
   it (``torch.library.Library.define`` + ``impl``), and the same no-op
   through the ``torch.library.custom_op`` decorator;
2. the parts of the CUDA implementation: ``prepare_cuda`` (plan lookup,
   shape checks, ``torch.empty``, the argument tuple), ``launch_cuda``
   (binder, variant lookup, launch), and inside the latter
   ``Binder.bind_values`` and ``GPUKernel.launch_bound`` (pack, stream,
   the stand-in ``cuLaunchKernel``);
3. **the whole path**: an op with the same schema registered like
   ``lowbit::matmul`` whose kernel *is* the CUDA implementation
   (``torch_ops._matmul_cuda``), called through the dispatcher -- and the
   same kernel behind ``custom_op``, to compare the two registrations on
   the real path, not only on a no-op;
4. plain torch ops in the same run: ``torch.add`` of two (1, 4096) f16
   tensors and ``nn.Linear(64, 64)`` at M=1 on the CPU.

    python -m benchmarks.bench_dispatch [--calls 200] [--repeat 150] [--json out.json] [--md out.md]

Short rounds and many of them: on the shared 2-core build machine a round of
a few milliseconds often runs uninterrupted, so the minimum is stable (two
runs agree within ~1%) where medians of long rounds moved by 2x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lowbit  # noqa: E402
import lowbit.ops as ops  # noqa: E402
from lowbit.ops import _device, torch_ops  # noqa: E402
from lowbit.runtime.driver import use_driver  # noqa: E402
from tests.runtime.fake_driver import FakeDriver  # noqa: E402

K = N = 4096
STREAM = 0x5EED


def per_call_us(fn: Callable[[], object], calls: int, repeat: int) -> tuple[float, float]:
    """(median, minimum) over ``repeat`` rounds of the mean of ``calls`` calls, in us.

    On a shared machine other processes only ever add time, so the minimum is
    the better estimate of the path's own cost; the median is reported too.
    """
    for _ in range(min(calls, 200)):
        fn()
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter_ns() - t0) / calls / 1e3)
    return statistics.median(rounds), min(rounds)


@contextlib.contextmanager
def cpu_tensors_report_cuda() -> Iterator[FakeDriver]:
    """CPU tensors say ``cuda:0`` to lowbit, torch's stream is a constant, the driver is the no-op stand-in."""
    saved = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    torch.Tensor.is_cuda = property(lambda self: True)  # type: ignore[assignment,method-assign]
    torch.Tensor.get_device = lambda self: 0  # type: ignore[assignment,method-assign]
    torch._C._cuda_getCurrentRawStream = lambda ordinal: STREAM
    fake = FakeDriver(cc=(9, 0), run=False, record=False)
    try:
        with use_driver(fake):
            yield fake
    finally:
        del torch.Tensor.is_cuda, torch.Tensor.get_device
        if saved is None:
            del torch._C._cuda_getCurrentRawStream
        else:
            torch._C._cuda_getCurrentRawStream = saved


def _body(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias=None,  # noqa: ANN001,ANN202
          fold=False, finite=False):  # noqa: ANN001
    return a.new_empty((a.shape[0], qweight.shape[1]))  # the no-op: one allocation, like the real op's output


def _ops() -> torch.library.Library:
    """The ops timed: a no-op and the CUDA implementation, each through Library.impl and through custom_op."""
    lib = torch.library.Library("lowbit_bench", "DEF")
    lib.define(torch_ops.SCHEMA)
    lib.impl("matmul", _body, "CPU")
    lib.define(torch_ops.SCHEMA.replace("matmul(", "matmul_cuda_path(", 1))
    lib.impl("matmul_cuda_path", torch_ops._matmul_cuda, "CPU")  # the CUDA kernel, reached by a CPU dispatch

    @torch.library.custom_op("lowbit_bench::noop_custom_op", mutates_args=(), device_types="cpu")
    def noop_custom(a: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, zeros: Optional[torch.Tensor],  # noqa: UP045
                    perm: Optional[torch.Tensor], tensor_scale: Optional[torch.Tensor], wtype: str, group_size: int,  # noqa: UP045
                    zero: str, layout: int, bias: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045
        return _body(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias)

    @torch.library.custom_op("lowbit_bench::cuda_path_custom_op", mutates_args=(), device_types="cpu")
    def cuda_custom(a: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, zeros: Optional[torch.Tensor],  # noqa: UP045
                    perm: Optional[torch.Tensor], tensor_scale: Optional[torch.Tensor], wtype: str, group_size: int,  # noqa: UP045
                    zero: str, layout: int, bias: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045
        return torch_ops._matmul_cuda(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero,
                                      layout, bias)  # fmt: skip

    return lib


def measure(calls: int, repeat: int) -> list[dict]:
    torch.manual_seed(0)
    qw = ops.quantize_weight(torch.randn(K, N), "uint4", group_size=128)
    w = torch_ops.weight_operands(qw)
    rows: list[dict] = []
    lib = _ops()  # noqa: F841 - the Library object keeps the registrations alive
    noop, noop_custom = torch.ops.lowbit_bench.matmul.default, torch.ops.lowbit_bench.noop_custom_op.default
    cuda_path = torch.ops.lowbit_bench.matmul_cuda_path.default
    cuda_custom = torch.ops.lowbit_bench.cuda_path_custom_op.default
    kernel = torch_ops._launch.kernel()

    def row(what: str, m: int, fn: Callable[[], object]) -> None:
        med, low = per_call_us(fn, calls, repeat)
        rows.append({"what": what, "M": m, "us": med, "min_us": low})

    for m in (1, 16):
        a = torch.randn(m, K).to(torch.float16)
        assert noop(a, *w, None).shape == noop_custom(a, *w, None).shape == (m, N)
        row("dispatch: no-op op with lowbit::matmul's schema (Library.impl, as lowbit)", m, lambda: noop(a, *w, None))
        row("dispatch: the same no-op through torch.library.custom_op", m, lambda: noop_custom(a, *w, None))
        row("CUDA path part: torch_ops.prepare_cuda", m, lambda: torch_ops.prepare_cuda(a, *w, None))
        with cpu_tensors_report_cuda() as fake:
            grid, args, cx, _ = torch_ops.prepare_cuda(a, *w, None)
            _device.launch_cuda(kernel, grid, args, cx)  # warm-up: compile (or the disk cache) and load
            spec = _device._BY_ID[id(cx)]
            bound = spec.binder.bind_values(args)
            assert bound.torch and bound.device == "cuda:0", bound
            (gk,) = spec.variants.values()
            row("CUDA path part: launch_cuda (binder + variant + launch_bound)", m,
                lambda: _device.launch_cuda(kernel, grid, args, cx))  # fmt: skip
            row("  of which Binder.bind_values (7 tensors, 3 ints)", m, lambda: spec.binder.bind_values(args))
            row("  of which GPUKernel.launch_bound (pack, stream, stand-in cuLaunchKernel)", m,
                lambda: gk.launch_bound(grid, bound))  # fmt: skip
            fake.record = True
            cuda_path(a, *w, None)  # the whole path reaches the driver exactly once per call, on torch's stream
            fake.record = False
            (last,) = fake.launches
            assert last["stream"] == STREAM and last["grid"] == (*grid, 1), last
            row("WHOLE CUDA PATH: op entry -> cuLaunchKernel (Library.impl, as lowbit)", m,
                lambda: cuda_path(a, *w, None))  # fmt: skip
            row("whole CUDA path through torch.library.custom_op instead", m,
                lambda: cuda_custom(a, *w, None))  # fmt: skip
    xa, xb = torch.randn(1, K).half(), torch.randn(1, K).half()
    row("plain torch: torch.add (1, 4096) f16", 1, lambda: torch.add(xa, xb))
    li = torch.nn.Linear(64, 64)
    xi = torch.randn(1, 64)
    with torch.no_grad():
        row("plain torch: nn.Linear(64, 64) f32", 1, lambda: li(xi))
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"# bench_dispatch: host time per call ({meta['date']})",
        "",
        f"Machine: {meta['machine']}, Python {meta['python']}, torch {meta['torch']}, lowbit {meta['lowbit']}; "
        f"K = N = {K}, uint4, group 128, f16, no bias; {meta['repeat']} rounds x {meta['calls']} calls; "
        f"load average {meta['load']}.",
        "",
        "**No GPU here: the CUDA path runs on CPU tensors that report cuda:0, against the stand-in driver** "
        "(`tests/runtime/fake_driver.py`, `cuLaunchKernel` a no-op). Not included: the real cuda-bindings "
        "`cuLaunchKernel` and real CUDA tensors (see the module docstring; `benchmarks/gpu_check_ops.py` measures "
        "them on a GPU).",
        "",
        "| what | M | us / call (median) | us / call (min) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['what']} | {r['M']} | {r['us']:.2f} | {r['min_us']:.2f} |" for r in rows]
    by = {(r["what"], r["M"]): r["min_us"] for r in rows}
    add = by[("plain torch: torch.add (1, 4096) f16", 1)]
    for m in (1, 16):
        whole = by[("WHOLE CUDA PATH: op entry -> cuLaunchKernel (Library.impl, as lowbit)", m)]
        co = by[("whole CUDA path through torch.library.custom_op instead", m)]
        lines.append(f"\nM={m} (minima): the whole CUDA path costs {whole:.2f} us per call on the stand-in driver "
                     f"({whole / add:.1f} x torch.add in this run; target <= 15 us); through custom_op {co:.2f} us "
                     f"(+{co - whole:.2f} us, +{100 * (co - whole) / whole:.0f}%).")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=150)
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--md", type=str, default=None)
    ns = ap.parse_args()
    torch.set_num_threads(1)
    rows = measure(ns.calls, ns.repeat)
    import os  # noqa: PLC0415

    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
            + f", {os.cpu_count()} cores, {torch.get_num_threads()} torch thread", "python": platform.python_version(),
            "torch": torch.__version__, "lowbit": lowbit.__version__, "calls": ns.calls, "repeat": ns.repeat,
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()), "driver": "stand-in (no-op cuLaunchKernel)"}  # fmt: skip
    text = markdown(rows, meta)
    print(text)
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if ns.md:
        with open(ns.md, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
