"""Hand-written PTX for the machine's tests: one helper that wraps a kernel body."""

from __future__ import annotations

import numpy as np

import lowbit.emu as emu

HEADER = """.version {version}
.target {target}
.address_size 64
"""


def kernel(body: str, params: str = "", *, name: str = "k", regs: str = "", shared: str = "",
           target: str = "sm_80", version: str = "8.0", directives: str = "") -> str:
    """PTX text of one ``.entry name(params)`` with declarations ``regs``/``shared`` and ``body``."""
    std = """
    .reg .pred %p<16>;
    .reg .b16 %h<16>;
    .reg .b32 %r<64>;
    .reg .b64 %rd<64>;
    .reg .f32 %f<32>;
"""
    return HEADER.format(version=version, target=target) + f"""
.visible .entry {name}({params})
{directives}
{{
{std}{regs}
{shared}
{body}
}}
"""


def run(ptx: str, grid, block, args, **kw) -> emu.Stats:
    return emu.launch(ptx, "k", grid, block, args, **kw)


def i32(x) -> np.int32:
    return np.int32(x)


def line_of(ptx: str, text: str) -> int:
    """1-based line of the first line of ``ptx`` containing ``text``."""
    return next(i for i, line in enumerate(ptx.splitlines(), 1) if text in line)
