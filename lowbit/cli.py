"""The ``lowbit`` command line.

    lowbit info              version, ptxas/nvdisasm found (and their versions), GPU or not
    lowbit info formats      every built-in number format: bits, range, example values
    lowbit info targets      the target table: shared memory, native/emulated mma forms
    lowbit install-tools     pip-install the pinned ptxas/nvdisasm wheels (no CUDA toolkit needed)
    lowbit compile FILE.py[:kernel] [--arch sm_80] [-D NAME=VALUE ...] [-o OUT]
                   [--emit vm|simt|llvm|ptx|cubin] [--dump DIR]
                             compile a @lowbit.kernel and print ptxas' resource report
    lowbit run FILE.py[:kernel] --grid EXPRS [-D NAME=VALUE ...] [--backend auto|gpu|emulator]
               [--arch sm_80] [--num-warps N] [--seed S]
                             launch on random inputs sized by the kernel's views (the GPU when
                             there is one, else the emulator) and check against the interpreter

Errors a user can cause are printed as one ``lowbit: error: ...`` line with
exit status 2, never as a traceback: a missing file, a file with a syntax
error or one that raises while it is imported (named with its line), an
unknown kernel, a bad ``-D``, an unwritable ``-o``/``--dump``, a bad option.
Anything else is a bug in lowbit: one ``lowbit: internal error: ...`` line and
exit status 3.  ``--traceback`` (before or after the command) shows the frames
in both cases.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

from lowbit.errors import LowbitError, UsageError

#: Exit statuses: a mistake the user can fix, and a bug in lowbit.
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _cmd_info(args: argparse.Namespace) -> int:
    if args.what == "formats":
        from lowbit.dtypes import format_table

        print(format_table())
        return 0
    if args.what == "targets":
        print(_targets_table())
        return 0
    import platform

    import lowbit
    from lowbit import toolchain

    print(f"lowbit {lowbit.__version__} (Python {platform.python_version()}, {sys.executable})")
    for name in toolchain.TOOLS:
        info = toolchain.tool_info(name)
        if info.path is None:
            print(f"{name:9s} not found (run `lowbit install-tools`)")
        else:
            print(f"{name:9s} {info.version or 'unknown version'} at {info.path}")
    try:
        import llvmlite

        print(f"llvmlite  {llvmlite.__version__}")
    except ImportError:
        print("llvmlite  not installed")
    from lowbit import config, runtime
    from lowbit.compiler.specs import compiler_status

    print(f"gpu       {runtime.status()}")
    can, why = compiler_status()
    print(f"compiler  {'available' if can else 'unavailable: ' + why + ' (carried kernels only)'}")
    root = config.cache_dir() / "kernels"
    entries = list(root.glob("*/*.lbc")) if root.is_dir() else []
    specs = list((root / "specs").glob("*/*.json")) if root.is_dir() else []
    size = sum(p.stat().st_size for p in entries)
    print(f"cache     {root}: {len(entries)} compiled kernels ({size / 2**20:.1f} MiB), {len(specs)} specialisations")
    return 0


def _targets_table() -> str:
    from lowbit.arch import TARGETS

    feats = [
        "mma.m16n8k16.f16",
        "mma.m16n8k32.s8",
        "mma.m16n8k64.s4",
        "mma.m16n8k256.b1.and",
        "mma.m16n8k32.e4m3",
        "cvt.e4m3x2",
        "cvt.e2m1x2",
    ]
    head = ["target", "smem/block", "ptx"] + [f.split(".", 1)[1] for f in feats]
    rows = [head]
    for t in TARGETS.values():
        rows.append(
            [t.name, f"{t.max_shared_per_block_optin // 1024} KiB", "%d.%d" % t.default_ptx]
            + [t.feature(f).support.value for f in feats]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _cmd_install_tools(args: argparse.Namespace) -> int:
    from lowbit import toolchain

    cmd = toolchain.install_tools_command()
    if args.quiet:
        cmd.append("-q")
    print("+ " + " ".join(cmd))
    if args.dry_run:
        return 0
    return subprocess.call(cmd)


_EMITS = ("vm", "simt", "llvm", "ptx", "cubin")


def _load_kernels(path: str) -> dict[str, object]:
    """Import FILE.py as a module (its ``__main__`` guard stays closed) and collect its kernels.

    A syntax error, or any exception other than a lowbit error while the file
    runs, becomes a :class:`UsageError` naming the file and line; a lowbit
    error (a bad ``@lowbit.kernel`` found at decoration) passes unchanged.
    """
    import importlib.util
    from pathlib import Path

    from lowbit.launch import Kernel

    file = Path(path)
    if not path.endswith(".py") and not file.exists() and Path(path + ".py").is_file():
        file = Path(path + ".py")
    if not file.exists():
        raise UsageError(f"{path}: no such file")
    if not file.is_file():
        raise UsageError(f"{path}: not a file (give FILE.py[:kernel])")
    try:
        spec = importlib.util.spec_from_file_location(f"_lowbit_cli_{file.stem}", file)
    except (ValueError, OSError) as exc:  # pragma: no cover - odd paths
        raise UsageError(f"{path}: cannot be imported as a Python module ({exc})") from None
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported as a Python module (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except LowbitError:
        raise
    except SyntaxError as exc:
        where = f"{exc.filename or path}:{exc.lineno or '?'}" + (f":{exc.offset}" if exc.offset else "")
        raise UsageError(f"{where}: syntax error: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read: {exc}") from exc
    except SystemExit as exc:
        raise UsageError(f"{path}: exited (SystemExit {exc.code!r}) while it was imported; "
                         "put its script part under `if __name__ == \"__main__\":`") from exc  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the user's module code may raise anything
        raise UsageError(f"{_raise_site(exc, file)}: importing the file raised "
                         f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
    finally:
        sys.path.pop(0)
    return {name: obj for name, obj in vars(module).items() if isinstance(obj, Kernel)}


def _raise_site(exc: BaseException, file: object) -> str:
    """``file:line`` of the innermost frame of ``exc``'s traceback inside ``file`` (else the file alone)."""
    import traceback
    from pathlib import Path

    target = Path(str(file)).resolve()
    where = str(file)
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            if Path(frame.filename).resolve() == target:
                where = f"{file}:{frame.lineno}"
        except OSError:  # pragma: no cover
            continue
    return where


def _parse_define(text: str) -> tuple[str, object]:
    """``NAME=VALUE``: a Python literal (16, 0.5, True), else a lowbit dtype name (uint4, e2m1), else a string."""
    import ast

    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise UsageError(f"-D expects NAME=VALUE, got {text!r}")
    if not raw:
        raise UsageError(f"-D {name}= has no value (NAME=VALUE: a Python literal or a dtype name)")
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    try:
        from lowbit.dtypes import dtype

        return name, dtype(raw)
    except LowbitError:
        return name, raw


def _pick_kernel(source: str) -> object:
    path, _, wanted = source.rpartition(":") if _has_kernel_suffix(source) else (source, "", "")
    kernels = _load_kernels(path)
    if wanted:
        if wanted not in kernels:
            known = ", ".join(sorted(kernels)) or "none"
            raise UsageError(f"{path} has no @lowbit.kernel named {wanted!r} (kernels: {known})")
        kernel = kernels[wanted]
    elif len(kernels) == 1:
        kernel = next(iter(kernels.values()))
    elif not kernels:
        raise UsageError(f"{path} defines no @lowbit.kernel")
    else:
        raise UsageError(
            f"{path} defines {len(kernels)} kernels ({', '.join(sorted(kernels))}); name one: {path}:KERNEL"
        )
    return kernel


def _has_kernel_suffix(source: str) -> bool:
    """``FILE.py:kernel`` (a trailing ``:identifier``), not a Windows drive or a ``:`` inside a directory name."""
    head, sep, tail = source.rpartition(":")
    return bool(sep) and bool(head) and (tail == "" or tail.isidentifier()) and "/" not in tail


def _write(path: object, content: str | bytes, what: str) -> None:
    """Write one output file; an OSError becomes a UsageError naming the option and the path."""
    from pathlib import Path

    out = Path(str(path))
    try:
        if isinstance(content, bytes):
            out.write_bytes(content)
        else:
            out.write_text(content)
    except OSError as exc:
        raise UsageError(f"{what} {out}: cannot write: {exc.strerror or exc}") from exc


def _cmd_run(args: argparse.Namespace) -> int:
    from lowbit.runtime.check import run_check

    kernel = _pick_kernel(args.source)
    report = run_check(kernel, args.grid, dict(_parse_define(d) for d in args.define), args.backend, args.arch,
                       args.num_warps, args.seed)  # fmt: skip
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _cmd_compile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowbit.compiler import compile as lowbit_compile

    # Output paths are checked before compiling, so that a typo costs no compile.
    if args.output and Path(args.output).is_dir():
        raise UsageError(f"-o {args.output}: is a directory (give a file; --dump DIR writes every stage)")
    parent = Path(args.output).absolute().parent if args.output else None
    if parent is not None and not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"-o {args.output}: {parent} {what}")
    if args.emit == "cubin" and not args.output:
        raise UsageError("--emit cubin writes binary: give -o FILE")
    if args.dump:
        try:
            Path(args.dump).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--dump {args.dump}: cannot create the directory: {exc.strerror or exc}") from exc
    kernel = _pick_kernel(args.source)
    constexprs = dict(_parse_define(d) for d in args.define)
    compiled = lowbit_compile(kernel, arch=args.arch, **constexprs)
    stages = {
        "vm": compiled.vm, "simt": compiled.simt, "llvm": compiled.llvm, "ptx": compiled.ptx, "cubin": compiled.cubin,
    }  # fmt: skip
    if args.dump:
        out_dir = Path(args.dump)
        suffix = {"vm": "lbir", "simt": "simt", "llvm": "ll", "ptx": "ptx", "cubin": "cubin"}
        for stage, content in stages.items():
            if content is None:
                continue
            _write(out_dir / f"{compiled.kernel_name}.{suffix[stage]}", content, "--dump")
    content = stages[args.emit]
    if content is None:
        raise UsageError("no cubin: ptxas was not found (run `lowbit install-tools`); --emit ptx still works")
    if args.output:
        _write(args.output, content, "-o")
    elif isinstance(content, bytes):
        raise UsageError("--emit cubin writes binary: give -o FILE")
    else:
        sys.stdout.write(content if content.endswith("\n") else content + "\n")
    report = str(compiled.resources) if compiled.resources is not None else "ptxas not found: PTX only"
    print(f"lowbit: {compiled.kernel_name} for {compiled.arch}: {report}", file=sys.stderr)
    for line in compiled.report:
        print(f"lowbit:   {line}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lowbit", description="lowbit: a kernel compiler for arbitrary-bit low-precision GPU computation"
    )
    parser.add_argument("--traceback", action="store_true", help="on an error, show the Python frames too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    info = sub.add_parser("info", help="show the installation, the number formats or the targets")
    info.add_argument("what", nargs="?", choices=["formats", "targets"], help="what to list (default: installation)")
    info.set_defaults(func=_cmd_info)
    tools = sub.add_parser("install-tools", help="pip-install the pinned ptxas/nvdisasm wheels")
    tools.add_argument("--dry-run", action="store_true", help="print the pip command without running it")
    tools.add_argument("-q", "--quiet", action="store_true", help="pass -q to pip")
    tools.set_defaults(func=_cmd_install_tools)
    comp = sub.add_parser("compile", help="compile a @lowbit.kernel to PTX (and a cubin with ptxas)")
    comp.add_argument("source", metavar="FILE.py[:kernel]", help="the Python file, and the kernel when it has several")
    comp.add_argument("--arch", default=None, help="target (default sm_80; sm_89 when the kernel needs FP8)")
    comp.add_argument("-D", dest="define", action="append", default=[], metavar="NAME=VALUE",
                      help="set a constexpr (Python literal or dtype name); others take their defaults")
    comp.add_argument("-o", "--output", help="write the emitted stage here instead of stdout")
    comp.add_argument("--emit", choices=_EMITS, default="ptx", help="which stage to output (default ptx)")
    comp.add_argument("--dump", metavar="DIR", help="also write every stage into DIR")
    comp.set_defaults(func=_cmd_compile)
    run = sub.add_parser("run", help="launch a kernel on random inputs and check it against the interpreter")
    run.add_argument("source", metavar="FILE.py[:kernel]", help="the Python file, and the kernel when it has several")
    run.add_argument("--grid", required=True, help="grid dimensions: ints or expressions of the kernel's "
                                                   "arguments and constexprs, e.g. 'cdiv(M, 16), cdiv(N, 32)'")
    run.add_argument("-D", dest="define", action="append", default=[], metavar="NAME=VALUE",
                     help="set a constexpr or a scalar argument (integer sizes are required)")
    run.add_argument("--backend", choices=("auto", "gpu", "emulator"), default="auto",
                     help="auto: the GPU when one is usable, else the emulator")
    run.add_argument("--arch", default=None, help="target (default: the device's, or sm_80 / sm_89 on the emulator)")
    run.add_argument("--num-warps", type=int, default=None, help="warps per block (default: the decorator's)")
    run.add_argument("--seed", type=int, default=0, help="random inputs' seed")
    run.set_defaults(func=_cmd_run)
    for command in sub.choices.values():  # --traceback also after the command; SUPPRESS keeps the global one
        command.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``lowbit: error:`` line (exit 2), not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = f" (see `{self.prog} --help`)"
        self.exit(EXIT_USAGE, f"lowbit: error: {self.prog}: {message}{hint}\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except LowbitError as exc:
        if args.traceback:
            import traceback

            traceback.print_exc()
        print(f"lowbit: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place a lowbit bug meets the user
        if args.traceback:
            import traceback

            traceback.print_exc()
        print(f"lowbit: internal error: {type(exc).__name__}: {_one_line(exc)} -- this is a bug in lowbit; "
              "rerun with --traceback to see where, and report it", file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    """An error's message on one line: a DSL error's source excerpt and caret are dropped (its first
    line already says ``file:line:col``); other line breaks become ``; ``."""
    from lowbit.dsl.diagnostics import SourceError

    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, SourceError):
        return text.splitlines()[0]
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
