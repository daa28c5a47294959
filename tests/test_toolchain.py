from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lowbit import toolchain
from lowbit.errors import ToolchainError
from tests.conftest import require_tool


def test_ptxas_is_found_and_is_cuda_13(ptxas_path: str) -> None:
    info = toolchain.tool_info("ptxas")
    assert info.path == ptxas_path
    assert info.version is not None and info.version.startswith("13."), info


def test_nvdisasm_is_found(nvdisasm_path: str) -> None:
    out = subprocess.run([nvdisasm_path, "--version"], capture_output=True, text=True, check=True).stdout
    assert "nvdisasm" in out.lower() or "cuda" in out.lower()


def test_ptxas_assembles_a_tiny_kernel(ptxas_path: str, tmp_path: Path) -> None:
    ptx = tmp_path / "k.ptx"
    ptx.write_text(
        ".version 7.0\n.target sm_80\n.address_size 64\n"
        ".visible .entry k(.param .u64 p)\n{\n .reg .b64 %rd<2>;\n .reg .b32 %r<2>;\n"
        " ld.param.u64 %rd0, [p];\n cvta.to.global.u64 %rd1, %rd0;\n mov.u32 %r0, %tid.x;\n"
        " st.global.u32 [%rd1], %r0;\n ret;\n}\n"
    )
    res = subprocess.run(
        [ptxas_path, "-arch=sm_80", "-v", str(ptx), "-o", str(tmp_path / "k.cubin")],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "Used" in res.stderr and "registers" in res.stderr
    assert (tmp_path / "k.cubin").stat().st_size > 0


def test_override_wins_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ptxas"
    fake.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 99.1, V99.1.7'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("LOWBIT_PTXAS", str(fake))
    assert toolchain.find_tool("ptxas") == str(fake.resolve())
    assert toolchain.tool_info("ptxas").version == "99.1.7"
    monkeypatch.setenv("LOWBIT_PTXAS", str(tmp_path / "missing"))
    with pytest.raises(ToolchainError, match="LOWBIT_PTXAS"):
        toolchain.find_tool("ptxas")


def test_missing_tool_message_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "_wheel_bin_dirs", lambda: [])
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.delenv("LOWBIT_NVDISASM", raising=False)
    assert toolchain.find_tool("nvdisasm") is None
    with pytest.raises(ToolchainError, match="lowbit install-tools"):
        toolchain.require_tool("nvdisasm")
    with pytest.raises(ToolchainError, match="unknown tool"):
        toolchain.find_tool("nvcc")


def test_ci_uses_the_pinned_wheels() -> None:
    # CI installs the wheels; lowbit must prefer them over a toolkit on PATH
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip("only meaningful in CI's fresh venv")
    path = require_tool("ptxas")
    assert "nvidia" in path and "site-packages" in path, path
    assert toolchain.tool_info("ptxas").version == "13.0.88"


def test_install_command_is_pinned() -> None:
    cmd = toolchain.install_tools_command()
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert "--no-deps" in cmd
    assert "nvidia-cuda-nvcc==13.0.88" in cmd and "nvidia-cuda-nvdisasm==13.5.37" in cmd
