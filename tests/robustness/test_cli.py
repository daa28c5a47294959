"""CLI misuse: every mistake is ONE ``lowbit: error: ...`` line naming the file, line or option, exit 2.

Nothing here compiles to PTX: each check fires before (or instead of) the compile, so the file is fast.
An unexpected non-lowbit exception is one ``lowbit: internal error: ...`` line, exit 3; ``--traceback``
(before or after the command) adds the frames.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lowbit import cli
from lowbit.cli import EXIT_INTERNAL, EXIT_USAGE, main

REPO = Path(__file__).resolve().parents[2]
VADD = str(REPO / "examples" / "01_vector_add.py")

GOOD = (
    "import lowbit\n"
    "@lowbit.kernel\n"
    "def a(x: lowbit.ptr('f32'), n: lowbit.int32, BLOCK: lowbit.constexpr = 128):\n"
    "    v = lowbit.global_view(x, (n,))\n"
    "    lowbit.store(v, lowbit.load(v, (0,), (BLOCK,)) + 1.0, (0,))\n"
)


def one_error(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = EXIT_USAGE) -> str:
    """Run the CLI in-process; it must exit ``status`` with exactly one stderr line, no traceback."""
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own exit (through _Parser.error)
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == status, (rc, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    prefix = "lowbit: error: " if status == EXIT_USAGE else "lowbit: internal error: "
    assert err.startswith(prefix), err
    return err[len(prefix):].rstrip("\n")


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "syn.py").write_text("import lowbit\n\ndef f(:\n    pass\n")
    (tmp_path / "boom.py").write_text("import lowbit\n\n\ndef helper():\n    return {}['missing']\n\n\nhelper()\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(4)\n")
    (tmp_path / "empty.py").write_text("import lowbit\nX = 1\n")
    (tmp_path / "badannot.py").write_text(
        "import lowbit\n@lowbit.kernel\ndef k(x: lowbit.ptr('f17'), n: lowbit.int32):\n    pass\n"
    )
    (tmp_path / "badbody.py").write_text(
        "import lowbit\n@lowbit.kernel\ndef k(x: lowbit.ptr('f32'), n: lowbit.int32):\n    y = n + nope\n"
    )
    (tmp_path / "latin1.py").write_bytes(b"import lowbit\nNAME = 'caf\xe9'\n")
    (tmp_path / "a_file").write_text("not a directory\n")
    return tmp_path


def test_syntax_error_names_file_line_col(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = one_error(capsys, ["compile", str(files / "syn.py")])
    assert msg == f"{files / 'syn.py'}:3:7: syntax error: invalid syntax"


def test_exception_at_import_names_the_innermost_line_in_the_file(files: Path, capsys) -> None:
    msg = one_error(capsys, ["compile", str(files / "boom.py")])
    assert msg == f"{files / 'boom.py'}:5: importing the file raised KeyError: 'missing'"


def test_sys_exit_at_import(files: Path, capsys) -> None:
    msg = one_error(capsys, ["run", str(files / "exits.py"), "--grid", "1"])
    assert msg.startswith(f"{files / 'exits.py'}: exited (SystemExit 4) while it was imported")


def test_undecodable_source(files: Path, capsys) -> None:
    msg = one_error(capsys, ["compile", str(files / "latin1.py")])
    assert msg.startswith(f"{files / 'latin1.py'}:") and "syntax error" in msg and "utf-8" in msg.lower()


def test_missing_file_and_directory(files: Path, capsys) -> None:
    assert one_error(capsys, ["compile", str(files / "nope.py")]) == f"{files / 'nope.py'}: no such file"
    assert one_error(capsys, ["compile", str(files)]) == f"{files}: not a file (give FILE.py[:kernel])"


def test_unknown_kernel_and_no_kernel(files: Path, capsys) -> None:
    good = files / "good.py"
    assert one_error(capsys, ["compile", f"{good}:b"]) == f"{good} has no @lowbit.kernel named 'b' (kernels: a)"
    assert one_error(capsys, ["compile", str(files / "empty.py")]) == f"{files / 'empty.py'} defines no @lowbit.kernel"


def test_output_paths_are_checked_before_compiling(files: Path, capsys) -> None:
    good = str(files / "good.py")
    msg = one_error(capsys, ["compile", good, "-o", str(files / "missing" / "k.ptx")])
    assert msg == f"-o {files / 'missing' / 'k.ptx'}: {files / 'missing'} does not exist"
    msg = one_error(capsys, ["compile", good, "-o", str(files / "a_file" / "k.ptx")])
    assert msg == f"-o {files / 'a_file' / 'k.ptx'}: {files / 'a_file'} is not a directory"
    msg = one_error(capsys, ["compile", good, "-o", str(files)])
    assert msg == f"-o {files}: is a directory (give a file; --dump DIR writes every stage)"
    msg = one_error(capsys, ["compile", good, "--dump", str(files / "a_file" / "sub")])
    assert msg.startswith(f"--dump {files / 'a_file' / 'sub'}: cannot create the directory: ")
    assert one_error(capsys, ["compile", good, "--emit", "cubin"]) == "--emit cubin writes binary: give -o FILE"
    assert not (files / "cache").exists()  # nothing was compiled


def test_unwritable_output_after_compile(files: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails only at the end (disk full, permissions) is still one line naming the option."""
    import pathlib

    def refuse(self: pathlib.Path, data: str, *a: object, **k: object) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    out = files / "k.vm"
    monkeypatch.setattr(pathlib.Path, "write_text", refuse)
    with pytest.raises(cli.UsageError, match=rf"^-o {out}: cannot write: Permission denied$"):
        cli._write(out, "text", "-o")


@pytest.mark.parametrize(
    ("define", "message"),
    [
        ("=3", "-D expects NAME=VALUE, got '=3'"),
        ("BLOCK", "-D expects NAME=VALUE, got 'BLOCK'"),
        ("1X=3", "-D expects NAME=VALUE, got '1X=3'"),
        ("BLOCK=", "-D BLOCK= has no value (NAME=VALUE: a Python literal or a dtype name)"),
        ("NOPE=3", "kernel a has no constexpr 'NOPE' (its constexprs: BLOCK)"),
    ],
)
def test_bad_defines(files: Path, capsys, define: str, message: str) -> None:
    assert one_error(capsys, ["compile", str(files / "good.py"), "-D", define, "--emit", "vm"]) == message


def test_define_of_a_wrong_kind_is_located_in_the_kernel(files: Path, capsys) -> None:
    good = files / "good.py"
    msg = one_error(capsys, ["compile", str(good), "-D", "BLOCK=-4", "--emit", "vm"])
    assert msg == f"{good}:5:21: load shape must be positive constexpr ints, got [-4]"


def test_dsl_errors_are_one_located_line(files: Path, capsys) -> None:
    msg = one_error(capsys, ["compile", str(files / "badbody.py"), "--emit", "vm"])
    assert msg == f"{files / 'badbody.py'}:4:13: undefined name 'nope'"
    msg = one_error(capsys, ["compile", str(files / "badannot.py"), "--emit", "vm"])
    assert msg.startswith(f"{files / 'badannot.py'}:3:10: parameter 'x': lowbit.ptr('f17'): unknown dtype 'f17': "
                          "did you mean 'f16'?")  # fmt: skip


def test_unknown_arch(files: Path, capsys) -> None:
    msg = one_error(capsys, ["compile", str(files / "good.py"), "--arch", "sm_12", "--emit", "vm"])
    assert msg.startswith("unknown target 'sm_12'; known targets: sm_80, ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", VADD], "lowbit run: the following arguments are required: --grid (see `lowbit run --help`)"),
        (["run", VADD, "--grid", "1", "--num-warps", "x"],
         "lowbit run: argument --num-warps: invalid int value: 'x' (see `lowbit run --help`)"),
        (["run", VADD, "--grid", "1", "--backend", "tpu"],
         "lowbit run: argument --backend: invalid choice: 'tpu' (choose from 'auto', 'gpu', 'emulator') "
         "(see `lowbit run --help`)"),
        (["compile"], "lowbit compile: the following arguments are required: FILE.py[:kernel] "
                      "(see `lowbit compile --help`)"),
        (["compile", VADD, "--emit", "sass"], "lowbit compile: argument --emit: invalid choice: 'sass' "
                                              "(choose from 'vm', 'simt', 'llvm', 'ptx', 'cubin') (see `lowbit compile --help`)"),
        (["frobnicate"], "lowbit: argument COMMAND: invalid choice: 'frobnicate' (choose from 'info', "
                         "'install-tools', 'compile', 'run') (see `lowbit --help`)"),
        (["compile", VADD, "--colour"], "lowbit: unrecognized arguments: --colour (see `lowbit --help`)"),
        (["run", VADD, "--grid", "1,", "-D", "n=64", "-D", "n=x"], "argument 'n': expected an int for int32, got 'x'"),
        (["run", VADD, "--grid", "cdiv(n,", "-D", "n=64"],
         "--grid 'cdiv(n,' is not an expression list (e.g. 'cdiv(M, 16), 4')"),
        (["run", VADD, "--grid", "1,2,3,4", "-D", "n=64"], "--grid '1,2,3,4' gives (1, 2, 3, 4): 1 to 3 positive dimensions"),
        (["run", VADD, "--grid", "m", "-D", "n=64"], "--grid: 'm' is not an integer argument or constexpr of the kernel"),
        (["run", VADD, "--grid", "__import__('os')", "-D", "n=64"],
         "--grid: cannot evaluate \"__import__('os')\" (ints, names, + - * // %, cdiv/min/max)"),
        (["run", VADD, "--grid", "1", "-D", "n=64", "--num-warps", "3"],
         "kernel vector_add: num_warps must be a power of two in 1..32, got 3"),
        (["run", VADD, "--grid", "1", "-D", "n=64", "-D", "zzz=4"],
         "vector_add has no parameter or constexpr 'zzz' (it has: x_ptr, y_ptr, out_ptr, n, BLOCK)"),
        (["run", VADD, "--grid", "1"], "give the integer arguments n with -D (e.g. -D n=64): they size the buffers"),
    ],
)
def test_command_line_misuse(capsys, argv: list[str], message: str) -> None:
    assert one_error(capsys, argv) == message


def test_internal_error_is_one_line_and_traceback_shows_frames(files: Path, capsys, monkeypatch) -> None:
    def broken(source: str) -> object:
        raise TypeError("an internal slip")

    monkeypatch.setattr(cli, "_pick_kernel", broken)
    msg = one_error(capsys, ["compile", str(files / "good.py")], status=EXIT_INTERNAL)
    assert msg == ("TypeError: an internal slip -- this is a bug in lowbit; rerun with --traceback to see where, "
                   "and report it")  # fmt: skip
    for argv in (["--traceback", "compile", str(files / "good.py")], ["compile", str(files / "good.py"), "--traceback"]):
        assert main(argv) == EXIT_INTERNAL
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):") and 'in broken\n    raise TypeError' in err
        assert err.splitlines()[-1].startswith("lowbit: internal error: TypeError: an internal slip")


def test_traceback_flag_on_a_user_error_shows_the_cause_chain(files: Path, capsys) -> None:
    assert main(["compile", str(files / "boom.py"), "--traceback"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "KeyError: 'missing'" in err and "in helper" in err and "UsageError" in err
    assert err.splitlines()[-1] == f"lowbit: error: {files / 'boom.py'}:5: importing the file raised KeyError: 'missing'"


def test_python_dash_m_lowbit_prints_one_line_and_no_traceback(files: Path) -> None:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "LOWBIT_CACHE_DIR": str(files / "cache")}
    for name in ("syn.py", "boom.py", "badannot.py"):
        res = subprocess.run([sys.executable, "-m", "lowbit", "compile", str(files / name), "--emit", "vm"],
                             capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
        assert res.returncode == EXIT_USAGE, res.stderr
        assert res.stderr.startswith("lowbit: error: ") and res.stderr.count("\n") == 1, res.stderr
        assert str(files / name) in res.stderr and res.stdout == ""
