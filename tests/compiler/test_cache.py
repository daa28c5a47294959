"""The compile cache: atomic entries, corruption detection, one build across racing processes."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import time
from pathlib import Path

import pytest

import lowbit
from lowbit.compiler.cache import CompileCache, cache_key, source_hash

KEY = "ab" + "0" * 62


def test_round_trip(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    assert cache.get(KEY) is None
    arts = {"ptx": b".version 7.0\n", "cubin": bytes(range(256)) * 3, "empty": b""}
    cache.put(KEY, arts)
    assert cache.get(KEY) == arts


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_a_damaged_entry_is_detected_removed_and_rebuilt(tmp_path: Path, damage: str) -> None:
    cache = CompileCache(tmp_path)
    cache.put(KEY, {"ptx": b"x" * 1000})
    path = next(tmp_path.rglob("*.lbc"))
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "flip": data[:-1] + bytes([data[-1] ^ 1]), "garbage": b"nonsense",
         "empty": b""}[damage]
    )
    assert cache.get(KEY) is None
    assert not path.exists()
    calls = []
    out = cache.get_or_build(KEY, lambda: calls.append(1) or {"ptx": b"rebuilt"})
    assert out == {"ptx": b"rebuilt"} and calls == [1]
    assert cache.get(KEY) == {"ptx": b"rebuilt"}


def _racer(root: str, key: str, log: str, start: object) -> None:
    def build():
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(0.5)
        return {"ptx": b"the one build"}

    start.wait(timeout=60)  # type: ignore[attr-defined] - both processes are past start-up: a real race
    out = CompileCache(root).get_or_build(key, build)
    assert out == {"ptx": b"the one build"}


def test_two_processes_racing_on_one_key_build_once(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_racer, args=(str(tmp_path / "c"), KEY, str(log), start)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().count("built") == 1
    assert CompileCache(tmp_path / "c").get(KEY) == {"ptx": b"the one build"}


def test_key_covers_program_options_arch_and_source(tmp_path: Path) -> None:
    base = cache_key("prog", {"num_warps": 4}, "sm_80")
    assert base == cache_key("prog", {"num_warps": 4}, "sm_80")
    assert base != cache_key("prog2", {"num_warps": 4}, "sm_80")
    assert base != cache_key("prog", {"num_warps": 8}, "sm_80")
    assert base != cache_key("prog", {"num_warps": 4}, "sm_90")
    # an edit to any lowbit source file changes the key
    copy = tmp_path / "lowbit"
    shutil.copytree(Path(lowbit.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_hash(copy)
    assert before == source_hash.__wrapped__(copy)
    (copy / "errors.py").write_text((copy / "errors.py").read_text() + "\n# edited\n")
    after = source_hash.__wrapped__(copy)
    assert after != before
    assert cache_key("prog", {}, "sm_80", lowbit_source=before) != cache_key("prog", {}, "sm_80", lowbit_source=after)


def test_bad_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        CompileCache(tmp_path).get("../../etc/passwd")
