"""Tests of the GPU fidelity harness's CPU half (benchmarks/gpu_fidelity): bundling and diffing.

The GPU launch itself needs a GPU; here we check that bundles are complete,
that ``run_gpu.py --check-only`` passes on honest bundles and fails on a
corrupted one, that its comparison rule is right, and that the GPU script
imports nothing the GPU image lacks.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_fidelity"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_fidelity_{name}", HARNESS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_gpu_imports_only_numpy_and_cuda_bindings():
    tree = ast.parse((HARNESS / "run_gpu.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    import sys

    allowed = set(sys.stdlib_module_names) | {"numpy", "cuda"}
    assert roots <= allowed, roots - allowed
    assert not roots & {"lowbit", "lark", "ml_dtypes", "tests", "triton"}, roots


def test_compare_rule():
    run_gpu = _load("run_gpu")
    a = np.array([1.0, 2.0, np.nan], np.float32)
    assert run_gpu.compare(a, a.copy(), "exact", 0, 0)["ok"]
    b = a.copy()
    b[0] = np.nextafter(np.float32(1), np.float32(2))
    assert not run_gpu.compare(b, a, "exact", 0, 0)["ok"]
    assert run_gpu.compare(b, a, "close", 1e-6, 0)["ok"]
    c = a.copy()
    c.view(np.uint32)[2] ^= 1  # a different NaN: an overwritten sentinel
    res = run_gpu.compare(c, a, "close", 1, 1)
    assert not res["ok"] and res["bad"] == 1 and res["first"].startswith("[2]")
    assert not run_gpu.compare(a[:2], a, "exact", 0, 0)["ok"]


@pytest.mark.parametrize("emulator", [True, False])
def test_bundle_then_check_only(tmp_path, emulator):
    bundle = _load("bundle")
    run_gpu = _load("run_gpu")
    names = ["llvm_vector_add", "llvm_inline_asm"]
    for name in names:
        row = bundle.bundle_case(name, tmp_path, run_emulator=emulator)
        assert row["emulator"] == ("ok" if emulator else "not run"), row
    b = run_gpu.load_bundle(tmp_path / "llvm_inline_asm.npz")
    assert str(b["kernel"]) == "bit_and_mma" and list(b["grid"]) == [2, 1, 1]
    assert list(b["out_name"]) == ["x3", "maj", "perm", "fd"]
    assert list(b["out_compare"]) == ["exact", "exact", "exact", "close"]
    assert int(b["format"]) == 2 and str(b["target"]) == "sm_80" and str(b["source"]) == "fixture"
    assert ".entry bit_and_mma" in str(b["ptx"])
    assert run_gpu.main(["--check-only", str(tmp_path), "--json", str(tmp_path / "r.json")]) == 0
    if emulator:  # a wrong emulator output must make the check fail
        path = tmp_path / "llvm_vector_add.npz"
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        data["emu2"] = data["emu2"].copy()
        data["emu2"][7] += 1
        np.savez(path, **data)
        assert run_gpu.main(["--check-only", str(path)]) == 1
