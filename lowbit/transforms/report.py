"""What instruction selection chose, as lines a person reads: the compile report.

For each ``dot``: the tensor-core instruction and how the target runs it
(the target table's native / emulated), or the FMA scheme and why; for each
explicit shared-memory round trip: what it moves and how it is read back
(``ldmatrix``); for the conversions left as register moves or shuffles:
their route.  ``lowbit compile`` prints it; ``CompiledKernel.report`` keeps it.
"""

from __future__ import annotations

from lowbit.arch import target
from lowbit.ir import ops as O
from lowbit.ir.program import Program
from lowbit.ir.rewrite import walk

__all__ = ["selection_report"]

_FEATURE = {"m16n8k16.f16": "mma.m16n8k16.f16", "m16n8k16.bf16": "mma.m16n8k16.bf16", "m16n8k32.int8": "mma.m16n8k32.s8",
            "m16n8k32.uint8": "mma.m16n8k32.u8", "m16n8k64.int4": "mma.m16n8k64.s4", "m16n8k64.uint4": "mma.m16n8k64.u4",
            "m16n8k32.e4m3fn": "mma.m16n8k32.e4m3", "m16n8k32.e5m2": "mma.m16n8k32.e5m2",
            "m16n8k256.uint1": "mma.m16n8k256.b1.and", "m16n8k256.int1": "mma.m16n8k256.b1.and"}  # fmt: skip


def _where(op: O.Op) -> str:
    return f"{op.loc}: " if op.loc is not None else ""


def selection_report(prog: Program, arch: str) -> list[str]:
    """One line per selection decision of a selected program (``lower_vm``'s output)."""
    tgt = target(arch)
    lines = []
    for op in walk(prog.body):
        if isinstance(op, O.Dot) and op.inst:
            _, shape, _, ab = op.inst.split(".")
            feat = _FEATURE.get(f"{shape}.{ab}")
            how = tgt.feature(feat).support.value if feat else "native"
            lines.append(f"{_where(op)}dot {op.a.type.dtype.name} x {op.b.type.dtype.name} -> "  # type: ignore[union-attr]
                         f"{op.result.type.dtype.name}: {op.inst} ({how} on {arch})")  # type: ignore[union-attr]
        elif isinstance(op, O.LoadShared) and op.via:
            lines.append(f"{_where(op)}shared read of {op.result.type}: {op.via}")
        elif isinstance(op, O.ConvertLayout):
            lines.append(f"{_where(op)}layout conversion of {op.x.type.dtype.name}{list(op.x.type.shape)}: {op.route}")  # type: ignore[union-attr]
        elif isinstance(op, O.AllocShared) and op.result.hint in ("dot_a", "dot_b"):
            lines.append(f"{_where(op)}dot operand staged in shared memory for the FMA scheme ({op.result.type})")
    return lines
