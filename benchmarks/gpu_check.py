"""The one prepared script for a GPU machine (issue 14): prepare here, run there in one command, <= 4 minutes.

Here (a build machine: lark, the pinned llvmlite, ptxas)::

    .venv/bin/python benchmarks/gpu_check.py --prepare        # ~30 s; writes benchmarks/gpu_check/ (git-ignored)

compiles every variant the GPU half launches into a carried compile cache
(``gpu_check/cache``, found there by the keys stored here: the GPU machine has
no lark and another llvmlite), bundles the ``benchmarks/gpu_fidelity`` corpus
(``gpu_check/fidelity``), records each example's inputs with its emulator and
interpreter outputs (``gpu_check/examples``), writes ``gpu_check/manifest.json``
and prints the one device command.

There (the GPU image's ``python3``: numpy, torch, cuda-bindings)::

    python3 benchmarks/gpu_check.py --run [--archive OUT.tar.gz]

runs each section in its own process under its own timeout and, after each
one, writes its results under ``benchmarks/results/<device>-<date>/``
(``<section>.json``, ``<section>.log``, ``summary.md``) and refreshes the archive:

=============  =====  =============================================================
section        s      what
=============  =====  =============================================================
env             15    nvidia-smi, versions, lowbit.runtime.status(), manifest check
fidelity        75    gpu_fidelity/run_gpu.py: the corpus, GPU against emulator bit for bit
runtime_tests   50    pytest -m gpu tests/runtime/test_gpu.py on the carried cache
examples        45    every example on DeviceArrays and torch tensors against the emulator
overhead        30    host time per launch (GPUKernel, kernel[grid], torch.add), graph replay
ops             25    benchmarks/gpu_check_ops.py: QuantLinear on CUDA vs emulator/CPU, a CUDA-graph
                      replay, host time per op call, ops.matmul vs torch fp16 at 4096x4096
=============  =====  =============================================================

``--section NAME`` runs one section in this process (what ``--run`` spawns).
NOT YET RUN ON A GPU: the session that wrote it had no device; ``--prepare`` runs here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PREPARED = ROOT / "benchmarks" / "gpu_check"
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = (("env", 15), ("fidelity", 75), ("runtime_tests", 50), ("examples", 45), ("overhead", 30), ("ops", 25))
ARCHS = ("sm_90",)  # the lent machines are H200s; --arch adds others
COMMAND = ('run(command="set -o pipefail; PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --run --archive '
           '$OUT/gpu_check.tar.gz 2>&1 | tee $OUT/gpu_check.log", carry=["benchmarks/gpu_check"], timeout_s=300)')


# ============================================================================== prepare (build machine)


def prepare(out: Path, archs: tuple[str, ...]) -> int:
    from lowbit.binder import Binder
    from lowbit.compiler.cache import CompileCache, source_hash
    from lowbit.compiler.driver import compile_program, describe_specialization, run_bound_on_emulator
    from lowbit.runtime.check import aligned_copy, make_inputs
    from tests.runtime import gpu_plan

    t0 = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    (out / "examples").mkdir(parents=True)
    cache = CompileCache(out / "cache" / "kernels")
    variants = []
    for v in gpu_plan.variants(archs):
        k = gpu_plan.kernel_of(gpu_plan.load_example(v.example))
        prog = k.specialize(**v.constexprs).with_facts(v.facts)
        ck = compile_program(prog, v.arch, cache)
        variants.append({"example": v.example, "kernel": ck.kernel_name, "constexprs": v.constexprs, "facts": v.facts,
                         "arch": v.arch, "spec": ck.spec, "key": ck.key, "cubin": ck.cubin is not None,
                         "what": describe_specialization(prog, v.arch)})
        print(f"compiled  {variants[-1]['what']:70s} {ck.kernel_name}")
    examples = []
    for name, (defines, grid_text) in gpu_plan.EXAMPLES.items():
        k = gpu_plan.kernel_of(gpu_plan.load_example(name))
        for arch in archs:
            inp = make_inputs(k, defines, grid_text, seed=14)
            ref = {n: a.copy() for n, a in inp.host.items()}
            k.interpret[inp.grid](*inp.args(ref), **inp.constexprs)
            prog = inp.prog.with_facts(gpu_plan.device_facts(inp.prog, inp.scalars))
            ck = compile_program(prog, arch, cache)
            emu = {n: aligned_copy(a) for n, a in inp.host.items()}
            run_bound_on_emulator(ck, inp.grid, Binder.of(prog).bind(dict(zip(Binder.of(prog).names, inp.args(emu)))))
            arrays = {f"in_{n}": a for n, a in inp.host.items()}
            arrays.update({f"emu_{n}": a for n, a in emu.items()})
            arrays.update({f"ref_{n}": a for n, a in ref.items()})
            meta = {"example": name, "arch": arch, "grid": list(inp.grid), "scalars": inp.scalars,
                    "constexprs": inp.constexprs, "facts": prog.facts, "params": list(Binder.of(prog).names),
                    "written": list(Binder.of(prog).written), "key": ck.key}
            np.savez_compressed(out / "examples" / f"{name}-{arch}.npz", meta=np.array(json.dumps(meta)), **arrays)
            examples.append(meta)
            print(f"example   {name} {arch} grid {inp.grid}: emulator and interpreter outputs recorded")
    fid = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_fidelity" / "bundle.py"), "--all",
                          str(out / "fidelity"), "--tier", "full"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    print(fid.stdout.strip().splitlines()[-1] if fid.stdout.strip() else fid.stderr[-2000:])
    ops_hook = ROOT / "benchmarks" / "gpu_check_ops.py"
    if ops_hook.exists():  # issue 15: the ops section's checks and variants, compiled into the same carried cache
        subprocess.run([sys.executable, str(ops_hook), "--prepare", str(out)], check=True, cwd=ROOT,
                       env={**os.environ, "LOWBIT_CACHE_DIR": str(out / "cache")})  # fmt: skip
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = {"format": 1, "prepared": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "lowbit_source": source_hash(), "python": platform.python_version(), "archs": list(archs),
                "variants": variants, "examples": examples, "fidelity_rc": fid.returncode, "bytes": size,
                "sections": dict(SECTIONS), "command": COMMAND}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    print(f"\nprepared {len(variants)} variants, {len(examples)} example runs, the fidelity corpus: "
          f"{size / 2**20:.1f} MiB in {out} ({time.perf_counter() - t0:.0f} s)")
    print("\nThe one device command (device tool, from this checkout):\n\n    " + COMMAND + "\n")
    return 0 if fid.returncode == 0 else 1


# ============================================================================== sections (GPU machine)


def _write(results: Path, name: str, data: dict) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")


def section_env(prepared: Path, results: Path) -> int:
    import lowbit
    from lowbit import runtime
    from lowbit.compiler.cache import source_hash
    from lowbit.compiler.specs import compiler_status

    data: dict = {"python": sys.version, "numpy": np.__version__, "lowbit": lowbit.__version__}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total,clocks.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10)  # fmt: skip
        data["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        data["nvidia_smi"] = f"unavailable: {exc}"
    try:
        import torch

        data["torch"] = f"{torch.__version__} (CUDA {torch.version.cuda}, available {torch.cuda.is_available()})"
    except ImportError:
        data["torch"] = "not installed"
    st = runtime.status()
    data["runtime"] = str(st)
    data["compiler"] = list(compiler_status())
    manifest = json.loads((prepared / "manifest.json").read_text())
    data["source_matches_manifest"] = manifest["lowbit_source"] == source_hash()
    data["prepared"] = manifest["prepared"]
    _write(results, "env", data)
    print(json.dumps(data, indent=1, default=str))
    return 0 if st.available and data["source_matches_manifest"] else 1


def section_fidelity(prepared: Path, results: Path) -> int:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_fidelity" / "run_gpu.py"),
                           str(prepared / "fidelity"), "--out-dir", str(results),
                           "--save-outputs", str(results / "gpu_fidelity_outputs.npz")],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    _write(results, "fidelity", {"rc": proc.returncode, "summary": last})
    return proc.returncode


def section_runtime_tests(prepared: Path, results: Path) -> int:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "-rA",
                           "tests/runtime/test_gpu.py", f"--junitxml={results / 'runtime_tests.xml'}"],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    print(proc.stdout[-8000:], proc.stderr[-2000:])
    _write(results, "runtime_tests", {"rc": proc.returncode, "tail": proc.stdout.strip().splitlines()[-1:]})
    return proc.returncode


def section_examples(prepared: Path, results: Path) -> int:
    from lowbit import runtime
    from lowbit.runtime.check import compare_all
    from tests.runtime import gpu_plan

    rows, ok = [], True
    for path in sorted((prepared / "examples").glob("*.npz")):
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        k = gpu_plan.kernel_of(gpu_plan.load_example(meta["example"]))
        prog = k.with_facts(k.specialize(**meta["constexprs"]), meta["facts"])
        ck = k.compiled(prog, meta["arch"])  # the carried entry, by its stored key
        names = meta["params"]
        inputs = {n[3:]: a for n, a in arrays.items() if n.startswith("in_")}
        emu = {n[4:]: a for n, a in arrays.items() if n.startswith("emu_")}
        ref = {n[4:]: a for n, a in arrays.items() if n.startswith("ref_")}
        row: dict = {"example": meta["example"], "arch": meta["arch"], "grid": meta["grid"]}
        try:
            gk = runtime.load(ck)
            row["image"], row["registers"] = gk.image, gk.registers
            dev = {n: runtime.DeviceArray.from_numpy(a) for n, a in inputs.items()}
            gk(tuple(meta["grid"]), *[dev[n] if n in dev else meta["scalars"][n] for n in names])
            got = {n: d.numpy() for n, d in dev.items()}
            row["device_array"] = _verdicts(prog, got, emu, ref, compare_all)
            try:
                import torch

                if torch.cuda.is_available():
                    tens = {n: torch.from_numpy(a.copy()).cuda() for n, a in inputs.items()}
                    (k.on(meta["arch"]))[tuple(meta["grid"])](*[tens[n] if n in tens else meta["scalars"][n]
                                                                for n in names], **meta["constexprs"])  # fmt: skip
                    torch.cuda.synchronize()
                    got_t = {n: t.cpu().numpy() for n, t in tens.items()}
                    row["torch"] = _verdicts(prog, got_t, emu, ref, compare_all)
            except ImportError:
                row["torch"] = "torch not installed"
        except Exception as exc:  # noqa: BLE001 - one example's failure is a result, the others still run
            row["error"] = f"{type(exc).__name__}: {exc}"
        good = "error" not in row and all(v.get("gpu_vs_emu_exact") for key in ("device_array", "torch")
                                          if isinstance(v := row.get(key), dict))  # fmt: skip
        row["verdict"] = "pass" if good else "fail"
        ok &= good
        rows.append(row)
        print(json.dumps(row, default=str))
        _write(results, "examples", {"rows": rows})
    return 0 if ok and rows else 1


def _verdicts(prog, got, emu, ref, compare_all) -> dict:
    vs_emu = compare_all(prog, got, emu)
    vs_ref = compare_all(prog, got, ref)
    return {"gpu_vs_emu_exact": all(c.equal == c.elements for c in vs_emu),
            "gpu_vs_emu": {c.name: f"{c.equal}/{c.elements} equal" for c in vs_emu},
            "gpu_vs_interpreter_ok": all(c.ok for c in vs_ref),
            "max_abs_err_vs_interpreter": max((c.max_abs_err or 0.0) for c in vs_ref)}  # fmt: skip


def section_overhead(prepared: Path, results: Path) -> int:
    import torch

    from lowbit import runtime
    from tests.runtime import gpu_plan

    k = gpu_plan.kernel_of(gpu_plan.load_example("01_vector_add"))
    n = gpu_plan.TEST_SIZES[0]
    x, y, out = (torch.randn(n, device="cuda") for _ in range(3))
    grid = (-(-n // 128),)
    k[grid](x, y, out, n)
    prog = k.last_launch.program
    gk = runtime.load(k.compiled(prog, runtime.device_for(0).target_for(prog)))
    calls, reps = 400, 7

    def per_call(fn) -> float:
        times = []
        for _ in range(reps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times.append((time.perf_counter() - t0) / calls * 1e6)
            torch.cuda.synchronize()
        return float(np.median(times))

    data = {"n": n, "calls": calls, "reps": reps, "host_us_per_call": {
        "GPUKernel(grid, torch tensors)": per_call(lambda: gk(grid, x, y, out, n)),
        "kernel[grid](torch tensors)": per_call(lambda: k[grid](x, y, out, n)),
        "torch.add(out=)": per_call(lambda: torch.add(x, y, out=out)),
    }}
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(50):
            gk(grid, x, y, out, n)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(20):
        g.replay()
    torch.cuda.synchronize()
    data["graph_replay_us_per_launch"] = (time.perf_counter() - t0) / (20 * 50) * 1e6
    _write(results, "overhead", data)
    print(json.dumps(data, indent=1))
    return 0


def section_ops(prepared: Path, results: Path) -> int:
    """benchmarks/gpu_check_ops.py, in this process (so the section's timeout stops it too)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check_ops", ROOT / "benchmarks" / "gpu_check_ops.py")
    hook = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check_ops"] = hook  # dataclasses look their module up there
    spec.loader.exec_module(hook)
    return hook.run(prepared, results)


# ============================================================================== the driver of the sections


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "unknown"


def run_all(prepared: Path, results_root: Path, archive: Path | None) -> int:
    if not (prepared / "manifest.json").exists():
        print(f"{prepared}/manifest.json missing: run --prepare on the build machine and carry {prepared.name}/")
        return 2
    from lowbit import runtime

    st = runtime.status()
    device = st.devices[0].name if st.available else "no-gpu"
    results = results_root / f"{_slug(device)}-{datetime.date.today().isoformat()}"
    results.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LOWBIT_CACHE_DIR": str(prepared / "cache"), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    summary = [f"# gpu_check on {device} ({datetime.date.today().isoformat()})", "", f"- runtime: {st}",
               "", "| section | verdict | seconds | budget |", "|---|---|---|---|"]  # fmt: skip
    all_ok = True
    for name, budget in SECTIONS:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--section", name, "--prepared",
                                   str(prepared), "--results", str(results)], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=budget)  # fmt: skip
            verdict = "pass" if proc.returncode == 0 else f"fail (rc {proc.returncode})"
            log = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            verdict = f"TIMEOUT after {budget} s"
            log = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        secs = time.perf_counter() - t0
        all_ok &= verdict == "pass"
        (results / f"{name}.log").write_text(log)
        summary.append(f"| {name} | {verdict} | {secs:.1f} | {budget} |")
        (results / "summary.md").write_text("\n".join(summary) + "\n")
        print(f"{name:14s} {verdict:24s} {secs:6.1f} s", flush=True)
        if archive is not None:
            archive.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(results, arcname=results.name)
    print(f"results in {results}" + (f", archived to {archive}" if archive else ""))
    return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="prepare (build machine) or run (GPU machine) the GPU check")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--prepare", action="store_true", help="compile and bundle everything the GPU run needs")
    mode.add_argument("--run", action="store_true", help="run every section (on the GPU machine)")
    mode.add_argument("--section", choices=[s for s, _ in SECTIONS], help="run one section in this process")
    ap.add_argument("--prepared", type=Path, default=PREPARED, help="the prepared folder (default benchmarks/gpu_check)")
    ap.add_argument("--arch", action="append", help=f"--prepare: targets to compile for (default {', '.join(ARCHS)})")
    ap.add_argument("--results", type=Path, default=RESULTS, help="--run: results root; --section: the results folder")
    ap.add_argument("--archive", type=Path, help="--run: refresh this .tar.gz of the results after each section")
    a = ap.parse_args(argv)
    if a.prepare:
        return prepare(a.prepared.resolve(), tuple(a.arch or ARCHS))
    if a.run:
        return run_all(a.prepared.resolve(), a.results.resolve(), a.archive)
    return {"env": section_env, "fidelity": section_fidelity, "runtime_tests": section_runtime_tests,
            "examples": section_examples, "overhead": section_overhead, "ops": section_ops}[a.section](
        a.prepared.resolve(), a.results.resolve())  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
