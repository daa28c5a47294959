"""benchmarks/gpu_check.py: --prepare end to end here, the examples section on the stand-in driver, and --run on a
machine without a GPU (every section recorded, results archived, nothing crashes)."""

from __future__ import annotations

import importlib.util
import json
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
    with tarfile.open(archive) as tar:
        assert f"{results.name}/summary.md" in tar.getnames()
