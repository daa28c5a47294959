"""Which image of a compiled kernel a device runs, which target to compile for, and the PTX parameter layout.

Pure logic over text and numbers (no driver, no lark), so it is tested on
machines without a GPU.

Compatibility (CUDA C Programming Guide, "Binary Compatibility" and "PTX
Compatibility"):

* a **cubin** built for ``sm_XY`` runs on devices of compute capability
  ``X.Z`` with ``Z >= Y`` (same major); an arch-specific ``sm_XYa`` cubin
  only on ``X.Y`` itself;
* **PTX** for ``.target sm_XY`` is JIT-compiled by the driver for any device
  of compute capability ``>= X.Y``; ``sm_XYa`` PTX only for ``X.Y``.

So a launch prefers the cubin (no JIT, the ptxas report describes what
runs), falls back to PTX (the driver JIT), and refuses, naming both, a
device neither can run on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lowbit.arch import TARGETS
from lowbit.errors import LaunchError

__all__ = ["PtxParam", "choose_images", "entry_params", "hardware_decode", "parse_target", "runs_on", "target_for"]


def parse_target(name: str) -> tuple[int, bool]:
    """``"sm_90a"`` -> (90, True)."""
    m = re.fullmatch(r"sm_(\d+)([af]?)", name.strip())
    if not m:
        raise LaunchError(f"not a target name: {name!r}")
    return int(m.group(1)), bool(m.group(2))


def runs_on(kind: str, target: str, sm: int) -> bool:
    """Whether a ``kind`` ("cubin" or "ptx") image for ``target`` runs on a device of compute capability ``sm``."""
    want, specific = parse_target(target)
    if specific:
        return want == sm
    if kind == "cubin":
        return want // 10 == sm // 10 and want % 10 <= sm % 10
    return want <= sm


def ptx_target(ptx: str) -> str:
    m = re.search(r"^\s*\.target\s+(sm_\d+[af]?)", ptx, re.M)
    if not m:
        raise LaunchError("the PTX has no .target directive")
    return m.group(1)


def choose_images(kernel_name: str, arch: str, ptx: str, cubin: bytes | None, sm: int) -> list[tuple[str, bytes]]:
    """The images to try on a device of compute capability ``sm``, best first: [("cubin", b), ("ptx", b)]."""
    out: list[tuple[str, bytes]] = []
    if cubin and runs_on("cubin", arch, sm):
        out.append(("cubin", cubin))
    target = ptx_target(ptx)
    if runs_on("ptx", target, sm):
        out.append(("ptx", ptx.encode() + b"\0"))
    if not out:
        raise LaunchError(f"kernel {kernel_name} was compiled for {arch} (PTX .target {target}); a device of compute "
                          f"capability {sm // 10}.{sm % 10} runs neither its cubin nor its PTX; compile it for this "
                          "device's target (kernel[grid](...) with device arrays picks it)")  # fmt: skip
    return out


def target_for(sm: int, needs_fp8: bool, kernel_name: str = "kernel") -> str:
    """The lowbit target to compile for on a device of compute capability ``sm``: the newest portable one <= it."""
    names = [n for n in TARGETS if not parse_target(n)[1]]
    fits = sorted((parse_target(n)[0], n) for n in names if parse_target(n)[0] <= sm)
    if needs_fp8:
        fits = [(v, n) for v, n in fits if v >= 89]
    if not fits:
        need = "sm_89 or newer (it uses FP8)" if needs_fp8 else f"{min(names)} or newer"
        raise LaunchError(f"kernel {kernel_name} needs a GPU of {need}; this device is sm_{sm}")
    return fits[-1][1]


def hardware_decode(sm: int, element: object, act: str) -> bool:
    """Whether codes of ``element`` dequantised into ``act`` take a packed hardware ``cvt.rn.f16x2.<f>x2`` on
    the target lowbit compiles for on a device of compute capability ``sm`` (the lowering's own rule,
    :func:`lowbit.transforms._dequant_floats.hw_kind`).  The instruction decodes the exact format, so a
    host-checked FOLD or NaN-free twin would then only add work (a multiply a pair, or the bit path)."""
    from lowbit.transforms._dequant_floats import hw_kind  # noqa: PLC0415 - the compiler, on first GPU use only

    try:
        arch = target_for(sm, False)
    except LaunchError:
        return False
    return hw_kind(element, act, 1.0, arch) is not None


@dataclass(frozen=True)
class PtxParam:
    """One ``.param`` of a PTX ``.entry``: its name, type (``u64``, ``f32``, ``b8``...), byte size and alignment."""

    name: str
    type: str
    size: int
    align: int


_SIZES = {"8": 1, "16": 2, "32": 4, "64": 8}


def entry_params(ptx: str, kernel_name: str) -> tuple[PtxParam, ...]:
    """The ``.entry kernel_name(...)`` parameter list of ``ptx`` (PTX ISA 5.1.6), read with a regex (no lark)."""
    m = re.search(r"\.entry\s+" + re.escape(kernel_name) + r"\s*\((.*?)\)", ptx, re.S)
    if m is None:
        raise LaunchError(f"the PTX has no .entry {kernel_name}")
    out = []
    for raw in m.group(1).split(","):
        text = raw.strip()
        if not text:
            continue
        pm = re.fullmatch(r"\.param\s+(?:\.align\s+(\d+)\s+)?\.(\w+)\s+(?:\.ptr\s+(?:\.\w+\s+)*(?:\.align\s+\d+\s+)?)?"
                          r"([\w$]+)(?:\[(\d+)\])?", text)  # fmt: skip
        if pm is None:
            raise LaunchError(f"cannot read PTX parameter {text!r} of {kernel_name}")
        align, ty, name, count = pm.groups()
        bits = re.sub(r"\D", "", ty)
        if bits not in _SIZES:
            raise LaunchError(f"PTX parameter {name} of {kernel_name} has type .{ty}, which lowbit cannot pass")
        size = _SIZES[bits] * (int(count) if count else 1)
        out.append(PtxParam(name, ty, size, int(align) if align else _SIZES[bits]))
    return tuple(out)
