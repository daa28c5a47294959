"""Host time of one ``torch.ops.lowbit.matmul`` call up to the driver launch, next to plain torch ops.

Users of peer libraries report Python dispatch eating the speedup at decode
(and a ``custom_op`` wrapper adding up to 50% latency), so the target is
<= 15 us from the op's entry to ``cuLaunchKernel``.  On a machine without a
GPU the CUDA path splits into parts that can each be timed honestly:

1. **dispatch**: an op registered exactly like ``lowbit::matmul``
   (``torch.library.Library.define`` with the same schema, a Python kernel
   registered with ``impl``) whose kernel does nothing but return a
   preallocated tensor, called on CPU tensors: the dispatcher and the call
   into the Python kernel, which the CUDA kernel pays the same way; next to
   it the same no-op through the ``torch.library.custom_op`` decorator, the
   registration lowbit does *not* use (see :mod:`lowbit.ops.torch_ops`);
2. **launch preparation**: :func:`lowbit.ops.torch_ops.prepare_cuda` on CPU
   tensors -- everything the CUDA kernel does before
   :func:`lowbit.ops._device.launch_cuda`: plan lookup (memoised),
   shape/dtype checks, the output's ``torch.empty``, the argument tuple;
3. plain torch ops in the same run: ``torch.add`` of two (1, 4096) f16
   tensors and ``nn.Linear(64, 64)`` at M=1 on the CPU.

Not measured (it needs the runtime of issue 14 and a GPU): the runtime's
argument binding and ``cuLaunchKernel`` itself.  ``1 + 2`` is the part of
the host time the ops layer itself costs.  Each figure is the median over
``--repeat`` rounds of the mean of ``--calls`` calls, one torch thread.

    python -m benchmarks.bench_dispatch [--calls 3000] [--repeat 7] [--json out.json] [--md out.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Optional

import torch

import lowbit
import lowbit.ops as ops
from lowbit.ops import torch_ops

K = N = 4096


def per_call_us(fn: Callable[[], object], calls: int, repeat: int) -> float:
    for _ in range(min(calls, 200)):
        fn()
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter_ns() - t0) / calls / 1e3)
    return statistics.median(rounds)


def _noop_ops(out: list[torch.Tensor]) -> tuple[object, object]:
    """Two no-op ops with lowbit::matmul's schema: one registered like it (Library.impl), one via custom_op.

    The first returns ``out[0]`` (preallocated), so its body costs nothing.
    """
    lib = torch.library.Library("lowbit_bench", "DEF")
    lib.define(torch_ops.SCHEMA)
    lib.impl("matmul", lambda *args, **kw: out[0], "CPU")

    @torch.library.custom_op("lowbit_bench::matmul_custom_op", mutates_args=(), device_types="cpu")
    def custom(a: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, zeros: Optional[torch.Tensor],  # noqa: UP045
               perm: Optional[torch.Tensor], tensor_scale: Optional[torch.Tensor], wtype: str, group_size: int,  # noqa: UP045
               zero: str, layout: int, bias: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045
        return a.new_empty((a.shape[0], qweight.shape[1]))

    return lib, custom


def measure(calls: int, repeat: int) -> list[dict]:
    torch.manual_seed(0)
    qw = ops.quantize_weight(torch.randn(K, N), "uint4", group_size=128)
    w = torch_ops.weight_operands(qw)
    bias = torch.zeros(N, dtype=torch.float16)
    rows = []
    holder: list[torch.Tensor] = []
    lib, custom = _noop_ops(holder)  # noqa: F841 - the Library object keeps the registration alive
    noop = torch.ops.lowbit_bench.matmul.default
    for m in (1, 16):
        a = torch.randn(m, K).to(torch.float16)
        holder[:] = [torch.empty(m, N, dtype=torch.float16)]
        assert noop(a, *w, bias) is holder[0]
        grid, args, _, _ = torch_ops.prepare_cuda(a, *w, bias)
        assert grid == (1, N // 32) and args[7:] == (m, N, K)
        rows.append({"what": "dispatch: no-op op with lowbit::matmul's schema (Library.impl, as lowbit)", "M": m,
                     "us": per_call_us(lambda: noop(a, *w, bias), calls, repeat)})
        rows.append({"what": "dispatch: the same no-op through torch.library.custom_op", "M": m,
                     "us": per_call_us(lambda: custom(a, *w, bias), calls, repeat)})
        rows.append({"what": "launch preparation: torch_ops.prepare_cuda", "M": m,
                     "us": per_call_us(lambda: torch_ops.prepare_cuda(a, *w, bias), calls, repeat)})
    xa, xb = torch.randn(1, K).half(), torch.randn(1, K).half()
    rows.append({"what": "plain torch: torch.add (1, 4096) f16", "M": 1,
                 "us": per_call_us(lambda: torch.add(xa, xb), calls, repeat)})
    li = torch.nn.Linear(64, 64)
    xi = torch.randn(1, 64)
    with torch.no_grad():
        rows.append({"what": "plain torch: nn.Linear(64, 64) f32", "M": 1, "us": per_call_us(lambda: li(xi), calls, repeat)})
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"# bench_dispatch: host time per call ({meta['date']})",
        "",
        f"Machine: {meta['machine']}, Python {meta['python']}, torch {meta['torch']}, lowbit {meta['lowbit']}; "
        f"K = N = {K}, uint4, group 128, f16; median of {meta['repeat']} rounds x {meta['calls']} calls.",
        "No GPU here: the driver launch and the runtime's argument binding are not included (see the module docstring).",
        "",
        "| what | M | us / call |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['what']} | {r['M']} | {r['us']:.2f} |" for r in rows]
    by = {(r["what"], r["M"]): r["us"] for r in rows}
    for m in (1, 16):
        total = by[("dispatch: no-op op with lowbit::matmul's schema (Library.impl, as lowbit)", m)] + by[
            ("launch preparation: torch_ops.prepare_cuda", m)]
        lines.append(f"\nM={m}: dispatch + launch preparation = {total:.2f} us, before the runtime's binding and "
                     "cuLaunchKernel (target for the whole path: <= 15 us).")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--md", type=str, default=None)
    ns = ap.parse_args()
    torch.set_num_threads(1)
    rows = measure(ns.calls, ns.repeat)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
            + f", {torch.get_num_threads()} torch thread", "python": platform.python_version(),
            "torch": torch.__version__, "lowbit": lowbit.__version__, "calls": ns.calls, "repeat": ns.repeat}  # fmt: skip
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
