from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lowbit.cli import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "info" in out and "install-tools" in out


def test_info_reports_tools_and_gpu(capsys: pytest.CaptureFixture[str], ptxas_path: str) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lowbit ")
    assert f"ptxas     13.0" in out and ptxas_path in out
    assert "gpu " in out


def test_info_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "targets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "target"
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert set(by_name) == {"sm_80", "sm_86", "sm_89", "sm_90", "sm_90a", "sm_100a", "sm_120a"}
    assert "163 KiB" in by_name["sm_80"] and "227 KiB" in by_name["sm_90"]


def test_info_formats_lists_every_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    from lowbit.dtypes import builtin_types

    assert main(["info", "formats"]) == 0
    out = capsys.readouterr().out
    for t in builtin_types():
        assert t.name in out


def test_install_tools_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install-tools", "--dry-run"]) == 0
    assert "nvidia-cuda-nvcc==13.0.88" in capsys.readouterr().out


def test_bad_command_exits_2_without_traceback() -> None:
    res = subprocess.run([sys.executable, "-m", "lowbit.cli", "info", "nonsense"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "invalid choice" in res.stderr


def test_console_script_is_installed_and_runs() -> None:
    # pyproject's [project.scripts] entry, as installed (pip install -e . / .[test])
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "lowbit"]
    assert ep.value == "lowbit.cli:main"
    script = Path(sys.executable).parent / "lowbit"
    assert script.exists(), f"no `lowbit` script next to {sys.executable}"
    res = subprocess.run([str(script), "info", "formats"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    mxfp4 = next(line for line in res.stdout.splitlines() if line.startswith("mxfp4 "))
    assert "6 x 2^127" in mxfp4  # OCP MX: e2m1 max 6 times the largest E8M0 scale 2**127
    res = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "install-tools" in res.stdout


# --------------------------------------------------------------------------- lowbit compile

from pathlib import Path  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_compile_prints_ptx_and_the_resource_line(capsys: pytest.CaptureFixture[str], ptxas_path: str) -> None:
    assert main(["compile", str(EXAMPLES / "01_vector_add.py")]) == 0
    captured = capsys.readouterr()
    assert ".visible .entry vector_add(" in captured.out and ".target sm_80" in captured.out
    assert "vector_add for sm_80:" in captured.err and "registers" in captured.err and "0 bytes spill stores" in captured.err


def test_compile_defines_emit_dump_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str], ptxas_path: str) -> None:
    src = str(EXAMPLES / "01_vector_add.py") + ":vector_add"
    assert main(["compile", src, "--arch", "sm_90", "-D", "BLOCK=64", "--emit", "vm"]) == 0
    vm = capsys.readouterr().out
    assert "64" in vm and "program_id" in vm
    dump = tmp_path / "dump"
    cubin = tmp_path / "k.cubin"
    assert main(["compile", src, "--emit", "cubin", "-o", str(cubin), "--dump", str(dump)]) == 0
    assert cubin.read_bytes()[:4] == b"\x7fELF"
    assert sorted(p.suffix for p in dump.iterdir()) == [".cubin", ".lbir", ".ll", ".ptx", ".simt"]


def test_compile_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two = tmp_path / "two.py"
    two.write_text(
        "import lowbit\n"
        "@lowbit.kernel\n"
        "def a(x: lowbit.ptr('f32'), n: lowbit.int32):\n"
        "    lowbit.store(lowbit.global_view(x, (n,)), lowbit.zeros((128,), lowbit.f32), (0,))\n"
        "@lowbit.kernel\n"
        "def b(x: lowbit.ptr('f32'), n: lowbit.int32):\n"
        "    lowbit.store(lowbit.global_view(x, (n,)), lowbit.zeros((128,), lowbit.f32), (0,))\n"
    )
    assert main(["compile", str(two)]) == 2
    assert "defines 2 kernels (a, b)" in capsys.readouterr().err
    assert main(["compile", f"{two}:c"]) == 2
    assert "no @lowbit.kernel named 'c'" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["compile", f"{two}:a", "-D", "not an assignment"]) == 2
    assert "-D expects NAME=VALUE" in capsys.readouterr().err
    assert main(["compile", f"{two}:a", "-D", "NOPE=3"]) == 2
    assert "NOPE" in capsys.readouterr().err


def test_compile_each_emit_stage_and_defines_change_the_program(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch, ptxas_path: str) -> None:
    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(tmp_path / "cache"))
    src = str(EXAMPLES / "04_w4a16_matmul.py")
    heads = {"vm": "kernel @w4a16_matmul(", "simt": "kernel @w4a16_matmul(", "llvm": 'define ptx_kernel void @"w4a16_matmul"',
             "ptx": ".visible .entry w4a16_matmul("}  # fmt: skip
    texts = {}
    for stage, head in heads.items():
        assert main(["compile", src, "--emit", stage]) == 0
        captured = capsys.readouterr()
        texts[stage] = captured.out
        assert head in captured.out or head.replace('"', "") in captured.out, (stage, captured.out[:300])
        assert "w4a16_matmul for sm_80: " in captured.err and "registers" in captured.err
    assert "simt" not in texts["vm"] and "threads 128" in texts["simt"] and ".reqntid 128" in texts["ptx"]
    # -D replaces a declared default: BM=32 and num_warps stay, so the block's tile (and the VM text) changes
    assert main(["compile", src, "--emit", "vm", "-D", "BM=32", "-D", "BK=64"]) == 0
    vm32 = capsys.readouterr().out
    assert vm32 != texts["vm"] and 'BM="32"' in vm32 and 'BK="64"' in vm32 and 'BM="16"' in texts["vm"]
    # -o writes the stage to the file and nothing to stdout
    out = tmp_path / "k.ptx"
    assert main(["compile", src, "-o", str(out)]) == 0
    assert capsys.readouterr().out == "" and out.read_text().rstrip("\n") == texts["ptx"].rstrip("\n")


def test_compile_names_constexprs_that_have_no_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "nodefault.py"
    f.write_text(
        "import lowbit\n"
        "@lowbit.kernel(num_warps=1)\n"
        "def k(x: lowbit.ptr('f32'), n: lowbit.int32, BLOCK: lowbit.constexpr, SCALE: lowbit.constexpr = 2):\n"
        "    v = lowbit.global_view(x, (n,))\n"
        "    lowbit.store(v, lowbit.load(v, (0,), (BLOCK,)) * SCALE, (0,))\n"
    )
    assert main(["compile", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowbit: error: ") and "BLOCK" in err and "SCALE" not in err and "Traceback" not in err
    assert main(["compile", str(f), "-D", "BLOCK=32", "--emit", "vm"]) == 0
    assert 'BLOCK="32"' in capsys.readouterr().out


def test_compile_without_ptxas_still_gives_ptx_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from lowbit.codegen import ptxas
    from lowbit.compiler import cache
    from lowbit.errors import ToolchainError

    def missing(name: str) -> str:
        raise ToolchainError("ptxas not found (run `lowbit install-tools`)")

    monkeypatch.setattr(ptxas, "require_tool", missing)
    monkeypatch.setattr(cache, "toolchain_versions", lambda: ("test-llvm", "none"))
    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(tmp_path / "cache"))
    src = str(EXAMPLES / "01_vector_add.py")
    assert main(["compile", src]) == 0
    captured = capsys.readouterr()
    assert ".visible .entry vector_add(" in captured.out and "ptxas not found: PTX only" in captured.err
    assert main(["compile", src, "--emit", "cubin", "-o", str(tmp_path / "k.cubin")]) == 2
    assert "no cubin: ptxas was not found" in capsys.readouterr().err
