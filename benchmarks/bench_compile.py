"""Compile time: lowbit (DSL -> PTX -> cubin) against Triton on the same W4A16 GEMM.

Each measurement runs in a fresh Python subprocess with an empty compile
cache, so nothing is warm (``compile_s``); lowbit's child then compiles three
new constexpr sets with its LLVM worker already up (``warm_compile_s``, the
median; ptxas runs inside every compile, cold and warm): lowbit compiles ``examples/04_w4a16_matmul.py``'s
kernel, Triton compiles ``benchmarks/baselines/triton_w4a16.py`` with the
same block shape (16x32x32), num_warps=4 and num_stages=3 on both sides
(each builds its 3-stage cp.async pipeline).  Imports are
timed separately from compilation.  Median of ``--repeat`` runs (default 5).

    python -m benchmarks.bench_compile [--repeat 5] [--arch sm_80] [--json out.json]

The figure that matters is the ratio lowbit / Triton measured side by side
in one run on one machine; absolute seconds depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOWBIT_CHILD = r"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
import lowbit
spec = importlib.util.spec_from_file_location("ex04", sys.argv[1])
ex04 = importlib.util.module_from_spec(spec); spec.loader.exec_module(ex04)
t1 = time.perf_counter()
out = lowbit.compile(ex04.w4a16_matmul, arch=sys.argv[2], num_stages=3)
t2 = time.perf_counter()
assert out.ptx and (out.cubin is not None)
# warm: the LLVM worker is up, a new set of constexprs compiles from scratch (DSL, passes, LLVM, ptxas)
warm = []
for bn, bk in ((64, 32), (128, 64), (64, 128)):
    t3 = time.perf_counter()
    w = lowbit.compile(ex04.w4a16_matmul, arch=sys.argv[2], BN=bn, BK=bk, num_stages=3)
    warm.append(time.perf_counter() - t3)
    assert w.cubin is not None
print(json.dumps({"import_s": t1 - t0, "compile_s": t2 - t1, "warm_compile_s": sorted(warm)[1]}))
"""

TRITON_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import triton
from benchmarks.baselines import triton_w4a16
t1 = time.perf_counter()
k = triton_w4a16.compile_for(arch=int(sys.argv[1]), num_warps=4, num_stages=3)
t2 = time.perf_counter()
assert k.asm["ptx"] and k.asm["cubin"]
print(json.dumps({"import_s": t1 - t0, "compile_s": t2 - t1}))
"""


def _run(code: str, args: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="lowbit-bench-") as tmp:
        env = dict(os.environ, LOWBIT_CACHE_DIR=str(Path(tmp) / "lowbit"), TRITON_CACHE_DIR=str(Path(tmp) / "triton"),
                   TRITON_DEFAULT_FP_FUSION="1", PYTHONPATH=str(ROOT))
        res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT)
        if res.returncode != 0:
            raise SystemExit(f"benchmark child failed:\n{res.stderr[-3000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--arch", default="sm_80")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    sm = int(args.arch.removeprefix("sm_").rstrip("a"))
    runs: dict[str, list[dict]] = {"lowbit": [], "triton": []}
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        runs["lowbit"].append(_run(LOWBIT_CHILD, [str(ROOT / "examples" / "04_w4a16_matmul.py"), args.arch]))
        runs["triton"].append(_run(TRITON_CHILD, [str(sm)]))
    summary = {
        name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for name, rs in runs.items()
    }
    summary["ratio_compile_lowbit_over_triton"] = summary["lowbit"]["compile_s"] / summary["triton"]["compile_s"]
    summary["ratio_import_lowbit_over_triton"] = summary["lowbit"]["import_s"] / summary["triton"]["import_s"]
    summary.update(arch=args.arch, repeat=args.repeat, machine=os.uname().machine, cpus=os.cpu_count())
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
