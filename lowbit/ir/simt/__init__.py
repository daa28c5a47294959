"""The SIMT IR: per-thread code with explicit registers, addresses, memory spaces and warp collectives.

It sits between the tile-level VM IR (:mod:`lowbit.ir`) and LLVM
(:mod:`lowbit.codegen.emit`).  The VM -> SIMT lowering writes it; codegen
translates it op by op.  Text form: :func:`print_kernel` / :func:`parse_kernel`
(round trip exact); reference: ``docs/simt.md``.  ``parse_kernel`` is loaded
on first use (it needs lark; the rest of lowbit must import without it).
"""

from lowbit.ir.simt import ops
from lowbit.ir.simt.builder import Builder
from lowbit.ir.simt.control import For, If
from lowbit.ir.simt.kernel import Kernel, Param, SharedBuffer
from lowbit.ir.simt.printer import print_kernel
from lowbit.ir.simt.types import (
    BF16, F16, F32, F64, I8, I16, I32, I64, PRED, PTR_GLOBAL, PTR_LOCAL, PTR_SHARED,
    Const, Operand, PtrType, Reg, ScalarType, Space, Type, VectorType, const, parse_type,
)  # fmt: skip
from lowbit.ir.simt.verifier import verify

__all__ = [
    "BF16", "F16", "F32", "F64", "I8", "I16", "I32", "I64", "PRED", "PTR_GLOBAL", "PTR_LOCAL", "PTR_SHARED",
    "Builder", "Const", "For", "If", "Kernel", "Operand", "Param", "PtrType", "Reg", "ScalarType",
    "SharedBuffer", "Space", "Type", "VectorType", "const", "ops", "parse_kernel", "parse_type",
    "print_kernel", "verify",
]  # fmt: skip


def __getattr__(name: str) -> object:
    if name == "parse_kernel":
        from lowbit.ir.simt.parser import parse_kernel  # noqa: PLC0415 - lark only when SIMT text is parsed

        return parse_kernel
    raise AttributeError(f"module 'lowbit.ir.simt' has no attribute {name!r}")
