"""benchmarks/gpu_check.py: --prepare end to end here, the examples section on the stand-in driver, and --run on a
machine without a GPU (every section recorded, results archived, nothing crashes)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lowbit.compiler.cache import CompileCache
from lowbit.compiler.specs import SpecIndex
from lowbit.runtime.driver import use_driver
from tests.runtime.fake_driver import FakeDriver

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gc") / "gpu_check"
    assert gpu_check.prepare(out, ("sm_90",)) == 0
    return out


def test_prepare_writes_everything_the_gpu_run_needs(prepared: Path) -> None:
    m = json.loads((prepared / "manifest.json").read_text())
    cache, index = CompileCache(prepared / "cache" / "kernels"), SpecIndex(prepared / "cache" / "kernels")
    assert len(m["variants"]) == 6 and {v["arch"] for v in m["variants"]} == {"sm_90", "sm_80"}
    for v in m["variants"]:
        assert cache.get(v["key"]) is not None and index.lookup(v["spec"])["key"] == v["key"] and v["cubin"]
    assert sorted(p.name for p in (prepared / "examples").glob("*.npz")) == [
        "01_vector_add-sm_90.npz", "02_uint4_cast-sm_90.npz", "03_matmul_f16-sm_90.npz", "04_w4a16_matmul-sm_90.npz"]
    fid = json.loads((prepared / "fidelity" / "manifest.json").read_text())
    assert fid["counts"]["cases"] >= 150 and fid["counts"]["bad"] == 0 and m["fidelity_rc"] == 0
    assert m["command"] == gpu_check.COMMAND and 'carry=["benchmarks/gpu_check"]' in m["command"]
    assert sum(m["sections"].values()) <= 240 and m["bytes"] < 32 * 2**20  # fits the 4 minutes and the carry limit


def test_the_examples_section_runs_on_the_stand_in(prepared: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(prepared / "cache"))
    with use_driver(FakeDriver(cc=(9, 0))):
        rc = gpu_check.section_examples(prepared, tmp_path)
    rows = json.loads((tmp_path / "examples.json").read_text())["rows"]
    assert rc == 0 and [r["verdict"] for r in rows] == ["pass"] * 4, rows
    assert all(r["image"] == "ptx" and r["device_array"]["gpu_vs_emu_exact"] for r in rows)


def test_run_without_a_gpu_records_every_section(prepared: Path, tmp_path: Path) -> None:
    archive = tmp_path / "out" / "gpu_check.tar.gz"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--run", "--prepared",
                           str(prepared), "--results", str(tmp_path / "results"), "--archive", str(archive)],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (results,) = (tmp_path / "results").iterdir()
    assert results.name.startswith("no-gpu-")
    summary = (results / "summary.md").read_text()
    assert all(f"| {name} | " in summary for name, _ in gpu_check.SECTIONS)
    assert json.loads((results / "env.json").read_text())["runtime"].startswith("no GPU (")
    ops_result = json.loads((results / "ops.json").read_text())  # the ops section ran and said why it stopped
    assert ops_result["error"].startswith("no GPU: torch.cuda.is_available()=False") and ops_result["parts"] == {}
    with tarfile.open(archive) as tar:
        assert f"{results.name}/summary.md" in tar.getnames()


# --------------------------------------------------------------------------- the ops section (issue 15)

from benchmarks import gpu_check_ops  # noqa: E402

_BLOCKED_DRY_RUN = """
import json, sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("lark", "llvmlite"):
            raise ImportError(f"blocked for this test: {name}")
sys.meta_path.insert(0, _Block())
from benchmarks.gpu_check_ops import dry_run
from pathlib import Path
from lowbit.compiler.specs import compiler_status
variants = dry_run(Path(sys.argv[1]))
print(json.dumps({"variants": variants, "compiler": list(compiler_status()),
                  "blocked_loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("lark", "llvmlite"))}))
"""


def test_prepare_carries_every_variant_the_ops_section_launches(prepared: Path) -> None:
    m = json.loads((prepared / "ops" / "manifest.json").read_text())
    layers, ms = len(gpu_check_ops.LAYERS), len(gpu_check_ops.LAYER_M)
    assert len(m["checks"]) == layers * ms and all((prepared / "ops" / c).exists() for c in m["checks"])
    # each (layer, M) is its own variant (format, or M <= 16 / > 16), plus one per timed M and weight layout of the
    # 4096 GEMM (layout 1 and the kernel order: its own tiles and constexprs)
    assert len(m["variants"]) == layers * ms + len(gpu_check_ops.BENCH_M) * len(gpu_check_ops.BENCH_LAYOUTS)
    cache, index = CompileCache(prepared / "cache" / "kernels"), SpecIndex(prepared / "cache" / "kernels")
    for v in m["variants"]:
        assert v["kernel"] == "wx_matmul" and v["arch"] == "sm_90" and v["cubin"]
        assert index.lookup(v["spec"])["key"] == v["key"] and cache.get(v["key"]) is not None


def test_the_ops_sections_launches_find_their_variants_where_nothing_compiles(prepared: Path) -> None:
    """Every launch of the GPU run, through the op's CUDA path on the stand-in, in a process without lark/llvmlite."""
    env = {**os.environ, "LOWBIT_CACHE_DIR": str(prepared / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _BLOCKED_DRY_RUN, str(prepared)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["compiler"] == [False, "lark is not installed"] and res["blocked_loaded"] == []
    manifest = json.loads((prepared / "ops" / "manifest.json").read_text())["variants"]
    assert sorted(v["spec"] for v in res["variants"]) == sorted(v["spec"] for v in manifest)


def test_the_quantlinear_part_on_the_stand_in_and_that_its_verdict_can_fail(prepared: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """part_quantlinear's comparisons, run with the stand-in (the emulator) as the device, at M = 1."""
    import numpy as np
    import torch

    from tests.ops.fake_cuda import FakeCuda

    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(prepared / "cache"))
    with FakeCuda() as fc:
        res = gpu_check_ops.part_quantlinear(torch, prepared, fc.to, "quantlinear-*-M1.npz")
    assert res["verdict"] == "pass" and len(res["rows"]) == len(gpu_check_ops.LAYERS), res
    assert all(r["gpu_vs_emulator_equal"] == r["elements"] == 136 for r in res["rows"])
    (tmp_path / "ops").mkdir()
    name = f"quantlinear-{gpu_check_ops.GRAPH_LAYER.name}-M1.npz"
    with np.load(prepared / "ops" / name) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["emu"] = arrays["emu"].copy()
    arrays["emu"][0, 5] += np.float16(0.5)  # a recorded output the device will not reproduce
    np.savez(tmp_path / "ops" / name, **arrays)
    with FakeCuda() as fc:
        bad = gpu_check_ops.part_quantlinear(torch, tmp_path, fc.to)
    assert bad["verdict"] == "fail" and bad["rows"][0]["gpu_vs_emulator_equal"] == 135


def test_the_independent_uint4_dequantisation_matches_lowbits() -> None:
    import torch

    qw = gpu_check_ops.bench_weight(torch, 1, lambda t: t)
    assert torch.equal(gpu_check_ops.dequant_uint4(torch, qw), qw.dequantize())


class _Event:
    """torch.cuda.Event on the host clock (for running the GPU parts' code on the stand-in)."""

    def __init__(self, enable_timing: bool = False) -> None:
        self.t = 0.0

    def record(self) -> None:
        import time

        self.t = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: _Event) -> float:
        return (end.t - self.t) * 1e3


class _Graph:
    def replay(self) -> None:
        pass


def test_every_gpu_part_runs_its_code_on_the_stand_in(prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the GPU's results (launches are recorded, not run; events and graphs are stubs): only that no part
    raises before its first GPU session.  The quantlinear part's numbers are tested above."""
    import contextlib

    import torch

    from tests.ops.fake_cuda import FakeCuda

    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(prepared / "cache"))
    for name, value in {"BENCH_M": (1,), "BENCH_SETS": 2, "HOST_CALLS": 2, "HOST_REPS": 1, "TIME_BUDGET_S": 0.0,
                        "GRAPH_CALLS": 2}.items():  # fmt: skip
        monkeypatch.setattr(gpu_check_ops, name, value)
    monkeypatch.setattr(torch.cuda, "Event", _Event)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _Graph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g: contextlib.nullcontext())
    with FakeCuda(run=False) as fc:
        for name, part in gpu_check_ops.PARTS:
            res = part(torch, prepared, fc.to, "quantlinear-*-M1.npz") if name == "quantlinear" else \
                part(torch, prepared, fc.to)  # fmt: skip
            assert "error" not in res and res["verdict"] in ("pass", "fail"), (name, res)
        assert len(fc.driver.launches) > 10
    assert set(res["rows"][0]) >= {"lowbit_kernel_us", "torch_fp16_kernel_us", "speedup_vs_torch_fp16"}
    assert set(res["rows"][0]["kernel_order"]) >= {"equals_layout_1", "lowbit_kernel_us", "speedup_vs_layout_1"}
