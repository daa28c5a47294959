"""Read loops out of PTX text: the static instruction mix of a kernel's main loop.

A loop is a label followed, later in the text, by a branch back to it; the
main loop is the outermost one (the longest such range).  LLVM may rotate a
loop so that its first block is not the label the back edge targets, so the
range is taken from the earliest label that a later branch targets to that
branch.  Counts are static (an inner loop's instructions count once).
"""

from __future__ import annotations

import re
from collections import Counter

_LABEL = re.compile(r"^\s*(\$L__\w+):")
_BRANCH = re.compile(r"\bbra(?:\.uni)?\s+(\$L__\w+);")


def instructions(ptx: str) -> list[str]:
    """The instruction lines of the PTX (no directives, labels, comments or braces)."""
    out = []
    for line in ptx.splitlines():
        s = line.strip()
        if s.startswith("{") and ";" in s:  # an inline-asm block on one line: its instructions count
            out += [p.strip() for p in s.strip("{} ").split(";") if p.strip() and not p.strip().startswith(".")]
            continue
        if not s or s.startswith(("//", ".", "{", "}", "$")) or s.endswith(":"):
            continue
        out.append(s)
    return out


def main_loop(ptx: str) -> list[str]:
    """The instructions of the outermost loop (empty when the kernel has no loop)."""
    lines = ptx.splitlines()
    where = {}
    for i, line in enumerate(lines):
        m = _LABEL.match(line)
        if m:
            where[m.group(1)] = i
    best = None
    for i, line in enumerate(lines):
        m = _BRANCH.search(line)
        if m and m.group(1) in where and where[m.group(1)] < i:
            span = (where[m.group(1)], i)
            if best is None or span[1] - span[0] > best[1] - best[0]:
                best = span
    if best is None:
        return []
    return instructions("\n".join(lines[best[0]:best[1] + 1]))


def opcode(line: str) -> str:
    s = re.sub(r"^@!?%\w+\s+", "", line)
    return s.split()[0].rstrip(";")


def mix(lines: list[str]) -> Counter:
    return Counter(opcode(x) for x in lines)


def counts(lines: list[str]) -> dict[str, int]:
    """The numbers the layout work is judged on: barriers, shared traffic, scalar vs vector global loads."""
    m = mix(lines)
    glob = {k: v for k, v in m.items() if k.startswith("ld.global")}
    return {
        "bar.sync": m.get("bar.sync", 0),
        "ld.shared": sum(v for k, v in m.items() if k.startswith("ld.shared")),
        "st.shared": sum(v for k, v in m.items() if k.startswith("st.shared")),
        "ld.global.scalar": sum(v for k, v in glob.items() if ".v2" not in k and ".v4" not in k),
        "ld.global.vector": sum(v for k, v in glob.items() if ".v2" in k or ".v4" in k),
    }
