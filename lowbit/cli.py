"""The ``lowbit`` command line.

    lowbit info              version, ptxas/nvdisasm found (and their versions), GPU or not
    lowbit info formats      every built-in number format: bits, range, example values
    lowbit info targets      the target table: shared memory, native/emulated mma forms
    lowbit install-tools     pip-install the pinned ptxas/nvdisasm wheels (no CUDA toolkit needed)

Errors a user can cause are printed as one ``lowbit: error: ...`` line with
exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

from lowbit.errors import LowbitError


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
    print(f"gpu       {toolchain.gpu_status()}")
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
    print("+ " + " ".join(cmd))
    if args.dry_run:
        return 0
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lowbit", description="lowbit: a kernel compiler for arbitrary-bit low-precision GPU computation"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="show the installation, the number formats or the targets")
    info.add_argument("what", nargs="?", choices=["formats", "targets"], help="what to list (default: installation)")
    info.set_defaults(func=_cmd_info)
    tools = sub.add_parser("install-tools", help="pip-install the pinned ptxas/nvdisasm wheels")
    tools.add_argument("--dry-run", action="store_true", help="print the pip command without running it")
    tools.set_defaults(func=_cmd_install_tools)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except LowbitError as exc:
        print(f"lowbit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
