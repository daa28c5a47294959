"""Robustness: caches verify what they serve, and an unusable cache never fails a launch (issue 9, item 4).

Entries record their full key and what they hold; a copied, foreign, stale-format or damaged entry is a
miss and a rebuild (the right kernel runs).  An unusable cache directory compiles without a cache and
says so once, with a :class:`~lowbit.errors.CacheWarning`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit.compiler import cache as cache_mod
from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import run_on_emulator
from lowbit.compiler.specs import SpecIndex
from lowbit.errors import CacheWarning, LowbitError
from lowbit.runtime.launcher import _serves

KEY_A, KEY_B = "ab" + "0" * 62, "cd" + "1" * 62


def _vector_kernel(op: str):
    @lowbit.kernel
    def vop(x: lowbit.ptr("int32"), y: lowbit.ptr("int32"), out: lowbit.ptr("int32"), n: lowbit.int32):
        a = lowbit.load(lowbit.global_view(x, (n,)), (0,), (128,))
        b = lowbit.load(lowbit.global_view(y, (n,)), (0,), (128,))
        lowbit.store(lowbit.global_view(out, (n,)), a + b if OP == "add" else a - b, (0,))

    OP = op  # noqa: N806 - read by the kernel as a closure constant
    return vop


vadd, vsub = _vector_kernel("add"), _vector_kernel("sub")


def _run(ck, a: int, b: int) -> int:
    x, y, out = np.full(4, a, np.int32), np.full(4, b, np.int32), np.zeros(4, np.int32)
    run_on_emulator(ck, (1,), {"x": x, "y": y, "out": out, "n": 4})
    return int(out[0])


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "_WARNED", set())


# ------------------------------------------------------------------------------------------ verified entries


def test_a_copied_entry_is_not_served_for_another_key(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    add, sub = lowbit.compile(vadd, cache=cache), lowbit.compile(vsub, cache=cache)
    assert add.key != sub.key and _run(add, 5, 1) == 6 and _run(sub, 5, 1) == 4
    add_path, sub_path = cache._path(add.key), cache._path(sub.key)
    shutil.copyfile(sub_path, add_path)  # vsub's entry now sits under vadd's key
    fresh = CompileCache(tmp_path)
    again = lowbit.compile(vadd, cache=fresh)
    assert fresh.mismatches == 1
    assert _run(again, 5, 1) == 6  # the right kernel: rebuilt, not vsub's bytes
    assert ".entry vop" in again.ptx and again.ptx == add.ptx
    assert fresh.get(add.key) is not None  # the rebuilt entry replaced the foreign one


def test_an_entry_records_its_key_and_what_it_holds(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    ck = lowbit.compile(vadd, cache=cache)
    data = cache._path(ck.key).read_bytes()
    assert data[:4] == b"LBC2"
    mlen = int.from_bytes(data[36:40], "little")
    manifest = json.loads(data[40 : 40 + mlen])
    assert manifest["key"] == ck.key and manifest["holds"] == {"kernel": "vop", "arch": "sm_80"}
    assert {"ptx", "meta", "simt", "llvm"} <= {name for name, _ in manifest["artifacts"]}


def test_an_entry_holding_another_kernel_is_a_miss(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    cache.put(KEY_A, {"ptx": b"other"}, holds={"kernel": "other", "arch": "sm_80"})
    assert cache.get(KEY_A, {"kernel": "vop", "arch": "sm_80"}) is None
    assert cache.mismatches == 1 and not cache._path(KEY_A).exists()


def test_an_entry_for_another_target_is_a_miss(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    cache.put(KEY_A, {"ptx": b"x"}, holds={"kernel": "vop", "arch": "sm_90"})
    assert cache.get(KEY_A, {"kernel": "vop", "arch": "sm_80"}) is None


def test_a_renamed_entry_file_is_a_miss(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    cache.put(KEY_A, {"ptx": b"for a"})
    path_b = cache._path(KEY_B)
    path_b.parent.mkdir(parents=True)
    cache._path(KEY_A).rename(path_b)
    assert cache.get(KEY_B) is None and cache.mismatches == 1
    calls: list[int] = []
    assert cache.get_or_build(KEY_B, lambda: calls.append(1) or {"ptx": b"for b"}) == {"ptx": b"for b"}
    assert calls == [1] and cache.get(KEY_B) == {"ptx": b"for b"}


@pytest.mark.parametrize("damage", ["old-format", "truncated", "garbage", "bad-manifest", "flipped-byte"])
def test_a_damaged_or_old_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    cache = CompileCache(tmp_path)
    cache.put(KEY_A, {"ptx": b"x" * 100})
    path = cache._path(KEY_A)
    data = path.read_bytes()
    if damage == "bad-manifest":
        import hashlib
        import struct

        manifest = b'[["ptx", 100]]'  # the LBC1 manifest: a list, no key
        payload = struct.pack("<I", len(manifest)) + manifest + b"x" * 100
        data = b"LBC2" + hashlib.sha256(payload).digest() + payload
    else:
        data = {"old-format": b"LBC1" + data[4:], "truncated": data[:50], "garbage": b"\xff" * 64,
                "flipped-byte": data[:-1] + bytes([data[-1] ^ 0x40])}[damage]
    path.write_bytes(data)
    assert cache.get(KEY_A) is None and not path.exists()
    assert cache.get_or_build(KEY_A, lambda: {"ptx": b"new"}) == {"ptx": b"new"}


def test_a_spec_record_for_another_id_is_not_served(tmp_path: Path) -> None:
    index = SpecIndex(tmp_path)
    sid_a, sid_b = "a" * 64, "b" * 64
    assert index.record(sid_a, KEY_A, {"kernel": "k"})
    assert index.lookup(sid_a)["key"] == KEY_A  # type: ignore[index]
    index._path(sid_b).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(index._path(sid_a), index._path(sid_b))
    assert index.lookup(sid_b) is None


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"key": 5}', "\udcff"])
def test_an_unreadable_spec_record_is_absent(tmp_path: Path, body: str) -> None:
    index = SpecIndex(tmp_path)
    path = index._path("c" * 64)
    path.parent.mkdir(parents=True)
    path.write_bytes(body.encode("utf-8", "surrogateescape"))
    assert index.lookup("c" * 64) is None


def test_the_emulator_plan_cache_checks_the_ptx(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    add, sub = lowbit.compile(vadd, cache=cache), lowbit.compile(vsub, cache=cache)
    assert _run(add, 5, 1) == 6
    impostor = dataclasses.replace(sub, key=add.key)  # sub's PTX under add's key: must not reuse add's plan
    assert _run(impostor, 5, 1) == 4
    assert _run(add, 5, 1) == 6


def test_the_loaded_module_cache_checks_what_it_loaded() -> None:
    a = types.SimpleNamespace(kernel_name="k", ptx="ptx-a", cubin=b"1")
    same = types.SimpleNamespace(kernel_name="k", ptx="ptx-a", cubin=b"1")
    other = types.SimpleNamespace(kernel_name="k", ptx="ptx-b", cubin=b"1")
    loaded = types.SimpleNamespace(compiled=a)
    assert _serves(loaded, a) and _serves(loaded, same)  # type: ignore[arg-type]
    assert not _serves(loaded, other)  # type: ignore[arg-type]
    assert not _serves(loaded, types.SimpleNamespace(kernel_name="j", ptx="ptx-a", cubin=b"1"))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ unusable directories


def _unusable(tmp_path: Path, kind: str) -> Path:
    if kind == "a-file":
        root = tmp_path / "cache"
        root.write_text("not a directory")
        return root
    if kind == "parent-is-a-file":
        (tmp_path / "blocker").write_text("x")
        return tmp_path / "blocker" / "cache"
    if kind == "cannot-create":
        return Path("/proc/lowbit-no-such-dir/cache")
    if kind == "dev-null":
        return Path("/dev/null")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["a-file", "parent-is-a-file", "cannot-create", "dev-null"])
def test_an_unusable_cache_compiles_without_it_and_warns_once(tmp_path: Path, kind: str) -> None:
    root = _unusable(tmp_path, kind)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = lowbit.compile(vadd, cache=CompileCache(root))
        second = lowbit.compile(vadd, cache=CompileCache(root))
    mine = [w for w in seen if issubclass(w.category, CacheWarning)]
    assert len(mine) == 1, [str(w.message) for w in seen]
    msg = str(mine[0].message)
    assert msg.startswith(f"the compile cache {root} cannot be used (") and "compiling without a cache" in msg
    assert _run(first, 5, 1) == 6 and _run(second, 2, 9) == 11


def test_an_unwritable_cache_compiles_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # running as root, a chmod would not stop the writes: the refusal is simulated where it would happen
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache_mod.tempfile, "mkstemp", refuse)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ck = lowbit.compile(vsub, cache=CompileCache(tmp_path / "c"))
    mine = [w for w in seen if issubclass(w.category, CacheWarning)]
    assert len(mine) == 1 and "PermissionError: Permission denied" in str(mine[0].message)
    assert _run(ck, 5, 1) == 4


def test_a_kernel_launch_with_an_unusable_cache_dir_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "lowbit-cache"
    blocker.write_text("a file")
    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(blocker))
    k = _vector_kernel("add")
    x, y, out = np.arange(10, dtype=np.int32), np.ones(10, np.int32), np.zeros(10, np.int32)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        k[(1,)](x, y, out, 10)
    assert np.array_equal(out, x + 1)
    mine = [w for w in seen if issubclass(w.category, CacheWarning)]
    assert len(mine) == 1 and f"{blocker}/kernels cannot be used (NotADirectoryError" in str(mine[0].message)


def test_a_read_error_is_a_miss_not_a_crash(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path)
    cache._path(KEY_A).mkdir(parents=True)  # a directory where the entry file should be
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cache.get(KEY_A) is None
    assert cache.disabled and any(issubclass(w.category, CacheWarning) for w in seen)
    assert cache.get_or_build(KEY_A, lambda: {"ptx": b"built"}) == {"ptx": b"built"}


def test_cache_warnings_are_lowbit_warnings_not_errors() -> None:
    assert issubclass(CacheWarning, lowbit.errors.LowbitWarning) and not issubclass(CacheWarning, LowbitError)
