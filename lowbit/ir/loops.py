"""The loops of a VM program whose step is known only at run time, and why a compiled kernel may trap.

``range(start, stop, step)`` needs ``step > 0``.  A constant step is checked
when the kernel is compiled; a runtime step (a scalar argument, or a value
computed from one) is checked by the interpreter before the loop runs, and by
the compiled kernel with a guard: ``@(step <= 0) trap`` before the loop
(:mod:`lowbit.transforms.lower_simt`).  The trap carries a code written next
to it in the PTX (``trap; // lowbit trap <code>``), :data:`TRAP_RANGE_STEP` +
the loop's index in :func:`runtime_step_loops`, so the launch layer can turn
the emulator's (or, one day, the GPU's) abort into "range step must be
positive" at the user's line.  The index table is computed from the program
itself, never stored, so a cached kernel's codes always resolve against the
source it was launched from.
"""

from __future__ import annotations

import re

from lowbit.ir import ops as V
from lowbit.ir.expr import Const
from lowbit.ir.op_base import Loc
from lowbit.ir.rewrite import walk

__all__ = ["TRAP_RANGE_STEP", "TRAP_TEXT", "runtime_step_loops", "trap_code_at"]

#: Trap codes from here up are runtime-step loop guards (code - TRAP_RANGE_STEP is the loop's index).
TRAP_RANGE_STEP = 1000

#: How a trap's code appears in PTX.
TRAP_TEXT = re.compile(r"\btrap\s*;\s*//\s*lowbit trap (\d+)")


def runtime_step_loops(body: tuple[V.Op, ...]) -> tuple[Loc | None, ...]:
    """The source locations of the loops whose step is not a constant, distinct, in program order.

    A loop that a pass splits or copies keeps its location, so the table is the same before and after
    the passes (a location appears once however many loops carry it).
    """
    seen: list[Loc | None] = []
    for op in walk(body):
        if isinstance(op, V.For) and not isinstance(op.step, Const) and op.loc not in seen:
            seen.append(op.loc)
    return tuple(seen)


def trap_code_at(ptx: str, line: int) -> int | None:
    """The lowbit trap code written on PTX line ``line`` (1-based), or None when that line has none."""
    lines = ptx.splitlines()
    if not 1 <= line <= len(lines):
        return None
    m = TRAP_TEXT.search(lines[line - 1])
    return int(m.group(1)) if m else None
