"""Assembling PTX with ptxas and reading its resource report.

``ptxas -v`` writes, per entry function (CUDA 13.0's wording)::

    ptxas info    : Compiling entry function 'k' for 'sm_80'
    ptxas info    : Function properties for k
        0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
    ptxas info    : Used 8 registers, used 1 barriers, 2048 bytes smem, 360 bytes cmem[0]

Dynamic shared memory is not in ``smem``.  :func:`parse_report` turns this
into one :class:`Resources` per entry; :func:`assemble` runs ptxas in a
temporary directory and returns the cubin bytes with the report.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lowbit.arch import Target, target as get_target
from lowbit.errors import CodegenError, ToolchainError
from lowbit.toolchain import require_tool, run_tool


@dataclass(frozen=True)
class Resources:
    """What ptxas reports for one entry function."""

    kernel: str
    arch: str
    registers: int = 0
    barriers: int = 0
    shared_bytes: int = 0  # static shared memory only
    stack_frame: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    cmem: tuple[tuple[int, int], ...] = ()  # (bank, bytes)

    @property
    def spills(self) -> int:
        return self.spill_stores + self.spill_loads

    def __str__(self) -> str:
        return (
            f"{self.kernel} ({self.arch}): {self.registers} registers, {self.spill_stores} bytes spill stores, "
            f"{self.spill_loads} bytes spill loads, {self.stack_frame} bytes stack, "
            f"{self.shared_bytes} bytes smem, {self.barriers} barriers"
        )


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '([^']+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_BARRIERS = re.compile(r"used (\d+) barriers")
_SMEM = re.compile(r"(\d+) bytes smem")
_CMEM = re.compile(r"(\d+) bytes cmem\[(\d+)\]")


def parse_report(text: str) -> dict[str, Resources]:
    """Parse ``ptxas -v`` output into ``{kernel name: Resources}``."""
    found: dict[str, dict] = {}
    current: str | None = None
    for line in text.splitlines():
        if m := _ENTRY.search(line):
            current = m.group(1)
            found[current] = {"kernel": current, "arch": m.group(2)}
            continue
        if m := _PROPS.search(line):
            current = m.group(1)
            found.setdefault(current, {"kernel": current, "arch": ""})
            continue
        if current is None:
            continue
        fields = found[current]
        if m := _FRAME.search(line):
            fields.update(stack_frame=int(m[1]), spill_stores=int(m[2]), spill_loads=int(m[3]))
        if m := _USED.search(line):
            fields["registers"] = int(m[1])
            if b := _BARRIERS.search(line):
                fields["barriers"] = int(b[1])
            if s := _SMEM.search(line):
                fields["shared_bytes"] = int(s[1])
            fields["cmem"] = tuple((int(bank), int(size)) for size, bank in _CMEM.findall(line))
    return {name: Resources(**fields) for name, fields in found.items()}


@dataclass(frozen=True)
class Assembled:
    cubin: bytes
    resources: dict[str, Resources]
    log: str


def assemble(ptx: str, arch: str | Target, opt_level: int = 3, extra_args: tuple[str, ...] = (),
             timeout: float | None = None) -> Assembled:  # fmt: skip
    """Run ptxas on ``ptx`` for ``arch``; raises :class:`CodegenError` with ptxas' message when it rejects the PTX.

    The tool itself misbehaving is a :class:`~lowbit.errors.ToolchainError` that blames the tool, not
    the PTX: missing (callers that can live without a cubin catch it and keep the PTX), not finishing
    within ``timeout`` seconds (default :data:`lowbit.config.PTXAS_TIMEOUT_S`), killed by a signal,
    exiting non-zero without a word, or exiting 0 without writing the cubin.
    """
    tgt = get_target(arch)
    ptxas = require_tool("ptxas")
    with tempfile.TemporaryDirectory(prefix="lowbit-ptxas-") as tmp:
        src, out = Path(tmp) / "kernel.ptx", Path(tmp) / "kernel.cubin"
        src.write_text(ptx)
        args = [f"-arch={tgt.name}", f"-O{opt_level}", "-v", *extra_args, str(src), "-o", str(out)]
        res = run_tool("ptxas", args, timeout, path=ptxas)
        log = (res.stdout + res.stderr).strip()
        if res.returncode < 0:
            raise ToolchainError(f"ptxas was killed by signal {-res.returncode} while assembling for {tgt.name}"
                                 + (f":\n{log}" if log else " (it printed nothing)"))
        if res.returncode != 0 and not log:
            raise ToolchainError(f"ptxas exited with status {res.returncode} and printed nothing (assembling for "
                                 f"{tgt.name}): the tool failed, not the PTX")
        if res.returncode != 0:
            raise CodegenError(f"ptxas rejected the PTX for {tgt.name}:\n{log}")
        try:
            cubin = out.read_bytes()
        except OSError:
            cubin = b""
        if not cubin:
            raise ToolchainError(f"ptxas exited with status 0 but wrote no cubin (assembling for {tgt.name})"
                                 + (f":\n{log}" if log else ""))
        return Assembled(cubin, parse_report(log), log)
