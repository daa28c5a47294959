"""Robustness: every external tool lowbit runs is bounded in time and blamed as the tool (issue 9, items 1 and 5).

A misbehaving ptxas / nvdisasm is a shell script put in place with ``LOWBIT_PTXAS`` /
``LOWBIT_NVDISASM``; a misbehaving LLVM worker is a stand-in command line given to
:class:`~lowbit.codegen.llvm.LLVMWorker`.  Each case asserts the exception type and what its
message names (the tool, the timeout, the exit status), and that it came back in bounded time.
"""

from __future__ import annotations

import stat
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit import config, toolchain
from lowbit.codegen.llvm import LLVMWorker
from lowbit.codegen.ptxas import assemble
from lowbit.compiler import cache as cache_mod
from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import run_on_emulator
from lowbit.errors import CodegenError, LowbitError, ToolchainError, ToolchainWarning

PTX = ".version 7.0\n.target sm_80\n.address_size 64\n.visible .entry k() { ret; }\n"
VERSION = 'echo "Cuda compilation tools, release 13.0, V13.0.88"'


def _script(tmp_path: Path, name: str, body: str) -> Path:
    """An executable shell script that answers ``--version`` like ptxas and runs ``body`` otherwise."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then {VERSION}; exit 0; fi\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_ptxas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def install(body: str) -> Path:
        path = _script(tmp_path, "ptxas", body)
        monkeypatch.setenv("LOWBIT_PTXAS", str(path))
        return path

    return install


# ------------------------------------------------------------------------------------------ ptxas


def test_a_ptxas_that_never_exits_times_out(fake_ptxas) -> None:
    fake_ptxas("exec sleep 30")
    t0 = time.monotonic()
    with pytest.raises(ToolchainError, match=r"ptxas .* did not finish within 0\.5 s") as info:
        assemble(PTX, "sm_80", timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert "PTXAS_TIMEOUT_S" in str(info.value)


def test_the_default_ptxas_timeout_comes_from_config(fake_ptxas, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ptxas("exec sleep 30")
    monkeypatch.setattr(config, "PTXAS_TIMEOUT_S", 0.4)
    with pytest.raises(ToolchainError, match=r"did not finish within 0\.4 s"):
        assemble(PTX, "sm_80")


@pytest.mark.parametrize("status", [1, 3, 127])
def test_a_silent_nonzero_exit_blames_the_tool(fake_ptxas, status: int) -> None:
    fake_ptxas(f"exit {status}")
    with pytest.raises(ToolchainError) as info:
        assemble(PTX, "sm_80")
    msg = str(info.value)
    assert f"ptxas exited with status {status} and printed nothing" in msg
    assert "rejected" not in msg


def test_a_ptxas_that_writes_no_cubin_is_a_toolchain_error(fake_ptxas) -> None:
    fake_ptxas('echo "ptxas info    : 0 bytes gmem"; exit 0')
    with pytest.raises(ToolchainError, match="exited with status 0 but wrote no cubin") as info:
        assemble(PTX, "sm_80")
    assert not isinstance(info.value, FileNotFoundError)


def test_a_ptxas_killed_by_a_signal_says_so(fake_ptxas) -> None:
    fake_ptxas("kill -9 $$")
    with pytest.raises(ToolchainError, match="ptxas was killed by signal 9"):
        assemble(PTX, "sm_80")


def test_a_ptxas_that_complains_rejects_the_ptx(fake_ptxas) -> None:
    fake_ptxas('echo "ptxas fatal   : Unresolved extern function \'foo\'" >&2; exit 255')
    with pytest.raises(CodegenError, match=r"ptxas rejected the PTX for sm_80:\nptxas fatal   : Unresolved extern"):
        assemble(PTX, "sm_80")


def test_a_ptxas_that_writes_its_cubin_is_fine(fake_ptxas) -> None:
    # the script finds "-o PATH" among its arguments and writes four bytes there
    fake_ptxas('while [ $# -gt 0 ]; do if [ "$1" = "-o" ]; then printf CUBN > "$2"; fi; shift; done; exit 0')
    asm = assemble(PTX, "sm_80")
    assert asm.cubin == b"CUBN"


@pytest.mark.parametrize("make", ["missing", "directory", "not-executable"])
def test_a_bad_ptxas_override_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: str) -> None:
    path = tmp_path / "ptxas"
    if make == "directory":
        path.mkdir()
    elif make == "not-executable":
        path.write_text("#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("LOWBIT_PTXAS", str(path))
    with pytest.raises(ToolchainError, match=rf"LOWBIT_PTXAS={path} is not an executable file"):
        assemble(PTX, "sm_80")


def test_a_version_query_that_hangs_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ptxas"
    path.write_text("#!/bin/sh\nexec sleep 30\n")
    path.chmod(0o755)
    monkeypatch.setenv("LOWBIT_PTXAS", str(path))
    monkeypatch.setattr(config, "TOOL_VERSION_TIMEOUT_S", 0.4)
    t0 = time.monotonic()
    info = toolchain.tool_info("ptxas")
    assert info.path == str(path.resolve()) and info.version is None
    assert time.monotonic() - t0 < 10


# ------------------------------------------------------------------------------------------ nvdisasm / run_tool


def test_a_hanging_nvdisasm_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOWBIT_NVDISASM", str(_script(tmp_path, "nvdisasm", "exec sleep 30")))
    monkeypatch.setattr(config, "NVDISASM_TIMEOUT_S", 0.3)
    with pytest.raises(ToolchainError, match=r"nvdisasm .* did not finish within 0\.3 s .*NVDISASM_TIMEOUT_S"):
        toolchain.run_tool("nvdisasm", ["x.cubin"])


def test_run_tool_names_an_unknown_tool() -> None:
    with pytest.raises(ToolchainError, match="unknown tool 'cuobjdump'; lowbit looks for ptxas, nvdisasm"):
        toolchain.run_tool("cuobjdump", [])


# ------------------------------------------------------------------------------------------ compile with a bad ptxas


@lowbit.kernel
def _double(x: lowbit.ptr("f32"), n: lowbit.int32, BLOCK: lowbit.constexpr = 128):
    v = lowbit.load(lowbit.global_view(x, (n,)), (lowbit.program_id(0) * BLOCK,), (BLOCK,))
    lowbit.store(lowbit.global_view(x, (n,)), v + v, (lowbit.program_id(0) * BLOCK,))


def test_compiling_with_a_hanging_ptxas_keeps_the_ptx_and_warns_once(
    fake_ptxas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ptxas("exec sleep 30")
    monkeypatch.setattr(config, "PTXAS_TIMEOUT_S", 0.5)
    cache_mod.toolchain_versions.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            ck = lowbit.compile(_double, cache=CompileCache(tmp_path / "cache"), BLOCK=64)
        assert ck.cubin is None and ".entry _double" in ck.ptx
        mine = [w for w in seen if issubclass(w.category, ToolchainWarning)]
        assert len(mine) == 1
        assert "did not finish within 0.5 s" in str(mine[0].message) and "without a cubin" in str(mine[0].message)
        x = np.arange(100, dtype=np.float32)
        run_on_emulator(ck, (2,), {"x": x, "n": 100})
        assert np.array_equal(x, 2 * np.arange(100, dtype=np.float32))
    finally:
        cache_mod.toolchain_versions.cache_clear()


# ------------------------------------------------------------------------------------------ the LLVM worker

_HELLO = ("import struct, sys, json, time; d = json.dumps({'ok': True, 'ready': True}).encode(); "
          "sys.stdout.buffer.write(struct.pack('<I', len(d)) + d); sys.stdout.flush(); ")


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("import time; time.sleep(30)", r"did not start within 0\.5 s and was killed"),
        (_HELLO + "time.sleep(30)", r"did not answer a request for sm_80 within 0\.5 s and was killed"),
        ("import sys; sys.stderr.write('boom\\n'); sys.exit(4)", r"did not start: worker exited with status 4: boom"),
        (_HELLO + "sys.stdin.buffer.read(4); sys.exit(6)", r"LLVM failed while compiling for sm_80: worker exited "
                                                          r"with status 6"),
        (_HELLO + "sys.stdin.buffer.read(8); sys.stdout.buffer.write(b'\\x05\\x00\\x00\\x00{bad}'); "
                  "sys.stdout.flush(); time.sleep(30)", r"LLVM failed while compiling for sm_80"),
    ],
    ids=["never-starts", "never-answers", "dies-at-start", "dies-mid-request", "garbled-reply"],
)
def test_a_misbehaving_llvm_worker_is_a_codegen_error(code: str, raised: str) -> None:
    worker = LLVMWorker(timeout=0.5, command=(sys.executable, "-c", code))
    t0 = time.monotonic()
    try:
        with pytest.raises(CodegenError, match=raised):
            worker.request({"llvm_ir": "", "cpu": "sm_80", "ptx": [7, 0], "opt": 3})
    finally:
        worker.close()
    assert time.monotonic() - t0 < 20


def test_an_llvm_worker_that_cannot_be_started_is_named() -> None:
    worker = LLVMWorker(command=("/nonexistent/lowbit-llvm-worker",))
    with pytest.raises(CodegenError, match="the LLVM worker could not be started: No such file or directory"):
        worker.request({"llvm_ir": "", "cpu": "sm_80", "ptx": [7, 0], "opt": 3})


def test_a_timed_out_worker_is_killed_and_forgotten() -> None:
    worker = LLVMWorker(timeout=0.5, command=(sys.executable, "-c", _HELLO + "time.sleep(30)"))
    try:
        with pytest.raises(CodegenError, match="did not answer"):
            worker.request({"llvm_ir": "", "cpu": "sm_80", "ptx": [7, 0], "opt": 3})
        assert worker._proc is None  # the next request starts a fresh worker
    finally:
        worker.close()
