"""The tile-level VM IR: types, scalar expressions, ops, programs, verifier, text form.

Import submodules directly (``from lowbit.ir import ops``); this package
re-exports the names most users need.  ``parse`` is loaded on first use: the
parser needs lark, and ``import lowbit`` must work without it (GPU machines).
"""

from lowbit.ir import ops
from lowbit.ir.expr import Binary, Cast, Const, Expr, Select, Unary, Var, evaluate
from lowbit.ir.printer import print_program
from lowbit.ir.program import Param, Program
from lowbit.ir.simplifier import simplify
from lowbit.ir.types import BOOL, INT32, INT64, GlobalType, PointerType, SharedType, TileType, Value
from lowbit.ir.verifier import verify

__all__ = [
    "BOOL",
    "INT32",
    "INT64",
    "Binary",
    "Cast",
    "Const",
    "Expr",
    "GlobalType",
    "Param",
    "PointerType",
    "Program",
    "Select",
    "SharedType",
    "TileType",
    "Unary",
    "Value",
    "Var",
    "evaluate",
    "ops",
    "parse",
    "print_program",
    "simplify",
    "verify",
]


def __getattr__(name: str) -> object:
    if name == "parse":
        from lowbit.ir.parser import parse  # noqa: PLC0415 - lark only when .lbir text is parsed

        return parse
    raise AttributeError(f"module 'lowbit.ir' has no attribute {name!r}")
