"""bench_decode's output: progress lines, the static SASS count, the markdown report with its environment."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BITS = 4
WEIGHT_BYTES_TARGET = 1.1  # x bits/8, issue 11


def _fmt(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def _cfg(c) -> str:
    return f"{c[0]}x{c[1]}x{c[2]} w{c[3]}"


def metrics(m) -> dict:
    """The figures of one measurement, per weight element (and per MAC)."""
    st = m.stats
    # bytes the memory system moves: distinct 32-byte sectors per warp instruction (lanes sharing a word -- an
    # mma fragment's quad, a group's scale -- are one transaction); the lanes' own bytes are reported beside
    w_read = 32 * m.sectors.get("w_ptr", (0, 0))[0]
    sz = 32 * (m.sectors.get("s_ptr", (0, 0))[0] + m.sectors.get("z_ptr", (0, 0))[0])
    return {
        "issue_slots_per_weight": st.issue_slots / m.weights,
        "thread_instr_per_weight": st.thread_instructions / m.weights,
        "weight_bytes_per_weight": w_read / m.weights,
        "weight_lane_bytes_per_weight": m.traffic.get("w_ptr", (0, 0))[0] / m.weights,
        "scale_zero_bytes_per_weight": sz / m.weights,
        "issue_slots_per_mac": st.issue_slots / m.macs,
        "thread_instr_per_mac": st.thread_instructions / m.macs,
        "mma_per_weight": st.mma / m.weights,
        "ldmatrix_wavefronts_per_request": m.wavefronts("ldmatrix"),
        "cp_async16_wavefronts_per_request": m.wavefronts("cp.async.cg.16") or m.wavefronts("cp.async.ca.16"),
        "shared_wavefronts_per_request": st.bank_conflict_factor,
        "checks": st.checks,
    }


def progress_line(m) -> str:
    head = f"{m.side:6s} {'x'.join(map(str, m.shape)):>14s} {_cfg(m.config):16s}"
    if m.error:
        return f"{head} n/a: {m.error}"
    if m.stats is None:
        return f"{head} compiled ({m.path}, {m.shared_bytes} B shared)"
    x = metrics(m)
    return (f"{head} issue/w {_fmt(x['issue_slots_per_weight'])}  thr/w {_fmt(x['thread_instr_per_weight'])}  "
            f"wB/w {x['weight_bytes_per_weight']:.3f}  correct {m.correct}  {m.seconds:.1f}s  {m.path}")


def as_dict(m) -> dict:
    out = {"side": m.side, "shape": list(m.shape), "config": list(m.config), "emulated_grid": list(m.grid),
           "full_grid": list(m.full_grid), "path": m.path, "shared_bytes": m.shared_bytes, "error": m.error,
           "correct": m.correct, "seconds": round(m.seconds, 2), "facts": m.facts}
    if m.ok:
        out.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics(m).items()})
        out["argument_traffic"] = {k: list(v) for k, v in m.traffic.items()}
        out["argument_sectors"] = {k: list(v) for k, v in m.sectors.items()}
    return out


# ------------------------------------------------------------------------------------------ static SASS

def _sass_tool(given: Path | None) -> Path:
    cands = [given] if given else [ROOT / "shared" / "tools" / "sass_loop_stats.py",
                                   ROOT.parent / "shared" / "tools" / "sass_loop_stats.py",
                                   Path("/work/shared/tools/sass_loop_stats.py")]
    for c in cands:
        if c and c.exists():
            return c
    raise SystemExit(f"sass_loop_stats.py not found (tried {', '.join(map(str, cands))}); pass --sass-tool")


def k_steps_per_iteration(ptx: str) -> int:
    """K steps one iteration of a lowbit kernel's main loop runs: ``lowbit.transforms.pipeline`` waits for its
    ring once a K step (one ``cp.async.wait_group``) and runs a loop that carries prefetched tiles in pairs of
    steps; a loop without the wait (unpipelined) runs one."""
    from tests.transforms.ptx_loops import main_loop, mix

    return max(1, mix(main_loop(ptx)).get("cp.async.wait_group", 0))


def static_row(m, tool: Path | None) -> dict:
    """Run sass_loop_stats.py on one side's cubin: main-loop SASS x threads / (k_steps x BK x BN) weights per
    iteration (``m.k_steps``: the K steps one iteration runs, 1 unless the side says otherwise)."""
    from lowbit.toolchain import find_tool

    row = {"side": m.side, "shape": list(m.shape), "config": list(m.config), "path": m.path}
    if m.error or not m.cubin:
        row["error"] = m.error or "no cubin (ptxas missing: run `lowbit install-tools`)"
        return row
    bm, bn, bk, nw = m.config
    steps = getattr(m, "k_steps", 1)
    nvdisasm = find_tool("nvdisasm")
    if nvdisasm is None:
        raise SystemExit("nvdisasm not found: run `lowbit install-tools`")
    with tempfile.TemporaryDirectory(prefix="lowbit-decode-") as tmp:
        cubin = Path(tmp) / f"{m.side}.cubin"
        cubin.write_bytes(m.cubin)
        res = subprocess.run([sys.executable, str(_sass_tool(tool)), str(cubin), "--threads", str(32 * nw),
                              "--weights-per-iter", str(steps * bk * bn), "--json"], capture_output=True, text=True,
                             env=dict(os.environ, NVDISASM=str(nvdisasm)))
    if res.returncode:
        row["error"] = f"sass_loop_stats failed: {res.stderr.strip()[-300:]}"
        return row
    kernels = json.loads(res.stdout)
    k = max(kernels, key=lambda r: r["loop_body"])
    if not k["loop_body"]:  # a figure of 0 would pass every target: no loop found is an error, not a count
        row["error"] = (f"sass_loop_stats found no main loop in {k['kernel']} ({k['total']} SASS): no backward "
                        "branch whose target it reads (it skips a `BRA.U` to a label, as ptxas emits for sm_100a)")
        return row
    row.update({"kernel": k["kernel"], "sass_total": k["total"], "loop_body": k["loop_body"],
                "inner_loops": k["inner_loops"], "k_steps": steps, "thread_instr_per_weight": k.get("thread_instr_per_weight"),
                "thread_instr_per_mac": k.get("thread_instr_per_weight", 0) / bm,
                "top_ops": dict(list(k["loop_ops"].items())[:8])})
    return row


def static_line(r: dict) -> str:
    if "error" in r:
        return f"static: n/a ({r['error']})"
    warn = f" ({r['inner_loops']} loop(s) nested in the main loop: a lower bound)" if r["inner_loops"] else ""
    steps = f" ({r['k_steps']} K steps)" if r.get("k_steps", 1) > 1 else ""
    return f"static: main loop {r['loop_body']} SASS{steps}, {r['thread_instr_per_weight']} thread-instr/weight{warn}"


# ------------------------------------------------------------------------------------------ report

def environment() -> list[str]:
    import numpy
    import triton

    import lowbit
    from lowbit.compiler.cache import toolchain_versions
    from lowbit.toolchain import tool_info

    llvm_v, ptxas_v = toolchain_versions()
    cpu = next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown")
    try:
        from triton import knobs

        tptx = subprocess.run([knobs.nvidia.ptxas.path, "--version"], capture_output=True, text=True).stdout
        tptx = tptx.strip().splitlines()[-1] if tptx.strip() else "unknown"
    except Exception:  # noqa: BLE001 - a version string only
        tptx = "unknown"
    return [
        f"Date: {datetime.date.today().isoformat()}. Machine: {platform.node() or 'unknown'}, {cpu}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; no GPU (everything below ran on lowbit's PTX emulator).",
        f"Python {platform.python_version()}, numpy {numpy.__version__}, lowbit {lowbit.__version__} "
        f"(git {_git_rev()}), {llvm_v}, ptxas {ptxas_v}, nvdisasm {tool_info('nvdisasm').version}, "
        f"Triton {triton.__version__} (its sm_80 ptxas: {tptx}).",
    ]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git_rev() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return res.stdout.strip() or "unknown"


def best(rows):
    """The correct measurement with the fewest issue slots per MAC (per weight at a fixed shape), or None."""
    ok = [r for r in rows if r.ok and r.correct]
    return min(ok, key=lambda r: r.stats.issue_slots / r.macs) if ok else None


def markdown(measured, static_rows, shapes, configs, args) -> str:
    out = ["# bench_decode: W4A16 GEMM per weight element, lowbit vs Triton (sm_80 PTX on the emulator)", ""]
    out += environment() + [""]
    out += [f"Command: `python -m benchmarks.bench_decode {' '.join(sys.argv[1:])}`", "",
            f"Configurations (BM x BN x BK, num_warps), the one list both sides choose from: "
            f"{', '.join(_cfg(c) for c in configs)}. Triton: `benchmarks/baselines/triton_w4a16.py`, "
            f"num_stages=3; lowbit: example 04 with num_stages={getattr(args, 'stages', 3)}. Best = fewest issue slots.", ""]
    if measured:
        out += _emulated_section(measured, shapes, args)
    if static_rows:
        out += _static_section(static_rows)
    return "\n".join(out) + "\n"


def _emulated_section(measured, shapes, args) -> list[str]:
    out = ["## Emulated (issue slots = 32 x warp-instructions issued)", ""]
    checks = all(m.stats.checks for m in measured if m.stats is not None)
    out += [f"Emulated blocks: all rows of blocks x the first {args.blocks} columns of blocks (N-blocks "
            f"0..{args.blocks - 1}) of each grid, full K loop; every block is interior (the shapes tile exactly), "
            f"so per-weight figures equal the full grid's. Checks (racecheck, cp.async, definedness): "
            f"{'on' if checks else 'off'}. Emulated columns of C checked "
            f"against float64. Weight and scale/zero bytes are what the memory system moves: distinct 32-byte "
            f"sectors per warp instruction x 32 (lanes of one warp sharing a word count once).", ""]
    out += ["| M x N x K | side | best config | path | issue slots / w | thread-instr / w | weight B / w "
            f"(<= {WEIGHT_BYTES_TARGET * BITS / 8:.2f}) | scale+zero B / w | issue / MAC | ldmatrix wf/req | "
            "cp.async.16 wf/req |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for shape in shapes:
        rows = [m for m in measured if tuple(m.shape) == tuple(shape)]
        b = {side: best([r for r in rows if r.side == side]) for side in ("lowbit", "triton")}
        for side, m in b.items():
            if m is None:
                out.append(f"| {'x'.join(map(str, shape))} | {side} | none ran | | | | | | | | |")
                continue
            x = metrics(m)
            out.append(f"| {'x'.join(map(str, shape))} | {side} | {_cfg(m.config)} | {m.path} | "
                       f"{_fmt(x['issue_slots_per_weight'])} | {_fmt(x['thread_instr_per_weight'])} | "
                       f"{x['weight_bytes_per_weight']:.3f} | {x['scale_zero_bytes_per_weight']:.3f} | "
                       f"{x['issue_slots_per_mac']:.3f} | {_fmt(x['ldmatrix_wavefronts_per_request'])} | "
                       f"{_fmt(x['cp_async16_wavefronts_per_request'])} |")
        if b["lowbit"] and b["triton"]:
            lx, tx = metrics(b["lowbit"]), metrics(b["triton"])
            ratios.append(f"- {'x'.join(map(str, shape))}: lowbit / Triton issue slots "
                          f"**{lx['issue_slots_per_weight'] / tx['issue_slots_per_weight']:.2f}**, thread-instructions "
                          f"{lx['thread_instr_per_weight'] / tx['thread_instr_per_weight']:.2f} (target <= 0.5, "
                          f"issue 11; <= 0.25 with fast dequantisation, issue 13)")
    out += ["", "Ratios measured in this run:", ""] + ratios + ["", "Every configuration:", "",
            "| M x N x K | side | config | issue / w | thread / w | weight B / w | shared B | emulated s | note |",
            "|---|---|---|---|---|---|---|---|---|"]
    for m in measured:
        shape = "x".join(map(str, m.shape))
        if not m.ok:
            out.append(f"| {shape} | {m.side} | {_cfg(m.config)} | | | | {m.shared_bytes} | | n/a: {m.error} |")
            continue
        x = metrics(m)
        note = "" if m.correct else "WRONG RESULT"
        out.append(f"| {shape} | {m.side} | {_cfg(m.config)} | {_fmt(x['issue_slots_per_weight'])} | "
                   f"{_fmt(x['thread_instr_per_weight'])} | {x['weight_bytes_per_weight']:.3f} | {m.shared_bytes} | "
                   f"{m.seconds:.1f} | {note} |")
    return out + [""]


def _static_section(rows) -> list[str]:
    out = ["## Static: SASS of the main loop (`shared/tools/sass_loop_stats.py`)", "",
           "thread-instructions per weight = main-loop SASS instructions x threads / (BK x BN); per MAC: / BM. "
           "The cubin does not depend on M, N, K (same facts), so each configuration appears once. A loop nested "
           "in the main loop is counted once: the figure is then a lower bound.", "",
           "| side | config | path | main-loop SASS | thread-instr / w | thread-instr / MAC | nested loops | "
           "top opcodes |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['side']} | {_cfg(r['config'])} | {r['path']} | | | | | n/a: {r['error']} |")
            continue
        top = ", ".join(f"{k} {v}" for k, v in list(r["top_ops"].items())[:6])
        body = f"{r['loop_body']} ({r['k_steps']} K steps)" if r.get("k_steps", 1) > 1 else r["loop_body"]
        out.append(f"| {r['side']} | {_cfg(r['config'])} | {r['path']} | {body} | "
                   f"{r['thread_instr_per_weight']} | {r['thread_instr_per_mac']:.3f} | {r['inner_loops']} | {top} |")
    best = {}
    for side in ("lowbit", "triton"):
        ok = [r for r in rows if r["side"] == side and "error" not in r and r["config"][0] == 16]
        best[side] = min(ok, key=lambda r: r["thread_instr_per_weight"]) if ok else None
    if best["lowbit"] and best["triton"]:
        lb, tr = best["lowbit"], best["triton"]
        bound = " (lowbit's main loop has a nested loop: its figure is a lower bound)" if lb["inner_loops"] else ""
        out += ["", f"Best BM=16 (decode) configuration by SASS: lowbit {_cfg(lb['config'])} "
                f"{lb['thread_instr_per_weight']}, Triton {_cfg(tr['config'])} {tr['thread_instr_per_weight']} "
                f"thread-instructions per weight: ratio {lb['thread_instr_per_weight'] / tr['thread_instr_per_weight']:.2f}"
                f"{bound}."]
    return out + [""]
