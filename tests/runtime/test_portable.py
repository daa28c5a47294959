"""A cache built here loads where nothing compiles: no lark, another llvmlite (the GPU machines).

The child process (tests/runtime/carried_child.py) blocks lark and llvmlite before importing lowbit; it must
import lowbit and lowbit.runtime, find each specialisation by the key stored when it was built, launch it, and
name a specialisation that was never built.  Two such processes at once, and a corrupt entry, are covered too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import compile_program
from lowbit.compiler.specs import SpecIndex
from tests.runtime.test_runtime import VADD

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ({}, {"x_ptr": 16, "y_ptr": 16, "out_ptr": 16})


def _build(root: Path) -> list[str]:
    cache = CompileCache(root)
    prog = VADD.specialize()
    return [compile_program(prog.with_facts(f), "sm_90", cache).key for f in VARIANTS]


def _child(root: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "LOWBIT_CACHE_DIR": str(root.parent), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.runtime.carried_child", mode], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def carried(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("carried") / "kernels"  # LOWBIT_CACHE_DIR/kernels, as config.cache_dir() says
    return root, _build(root)


def test_two_processes_without_lark_or_llvmlite_load_and_launch_the_carried_kernels(carried) -> None:
    root, keys = carried
    procs = [_child(root, "launch") for _ in range(2)]
    for res in map(_result, procs):
        assert res["blocked_loaded"] == [] and res["compiler"] == [False, "lark is not installed"]
        assert res["key"] == keys[0]  # found by the key stored at build time, not one recomputed here
        assert res["backend"] == "gpu", res.get("error")
        assert [int.from_bytes(bytes.fromhex(h), "little") for h in res["raw"]] == [*res["ptrs"], 300]


def test_a_missing_specialisation_is_named(carried) -> None:
    root, _ = carried
    res = _result(_child(root, "miss"))
    assert res["error"].startswith("kernel vector_add (sm_90, num_warps=4, BLOCK=64) is not in the carried cache ")
    assert "no such specialisation" in res["error"] and "this machine cannot compile (lark is not installed)" in res["error"]


def test_a_corrupt_carried_entry_is_a_launch_error_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "kernels"
    keys = _build(root)
    entry = CompileCache(root)._path(keys[1])
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    res = _result(_child(root, "launch"))
    assert res["key"] == keys[0]  # the intact variant still loads
    assert "kernel vector_add (sm_90, num_warps=4, BLOCK=128, facts out_ptr:div(16), x_ptr:div(16), y_ptr:div(16)) " \
           "is not in the carried cache" in res["error"] and "entry missing or corrupt" in res["error"]
    assert not entry.exists()  # the damaged file was removed, as the compile cache does


def test_the_index_records_the_stored_key(carried) -> None:
    root, keys = carried
    recs = [json.loads(p.read_text()) for p in sorted((root / "specs").rglob("*.json"))]
    assert sorted(r["key"] for r in recs) == sorted(keys)
    assert all(r["arch"] == "sm_90" and r["kernel"] == "vector_add" and "llvm" in r["built_with"] for r in recs)
    assert SpecIndex(root).lookup("0" * 64) is None
