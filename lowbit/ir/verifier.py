"""The verifier: whole-program checks that no single op constructor can make.

Each op checks its own operand types when it is built.  What remains is
about *where* values are: every operand defined before use and visible
(loop and branch bodies see their enclosing scope, their own block
arguments, and nothing defined in a sibling body); every value defined
once; shared buffers not used after ``free_shared`` (nor freed twice); scalar
grid expressions written in the kernel's scalar parameters.

What an op reads, defines and nests comes from its class's description
(:meth:`~lowbit.ir.op_base.Op.uses`, ``defs``, ``regions``), so there is no
per-op table here.  :func:`verify` collects *every* problem (op, location,
message) and raises one :class:`IRError` listing them.
"""

from __future__ import annotations

from lowbit.errors import IRError
from lowbit.ir import ops as O
from lowbit.ir.expr import Expr, Var, free_vars
from lowbit.ir.program import Program
from lowbit.ir.types import SharedType, Value

__all__ = ["problems", "verify"]

Item = Var | Value | Expr


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.defined: set[int] = set()  # ids of every value ever defined (single definition)
        self.freed: set[int] = set()

    def report(self, op: O.Op | None, message: str) -> None:
        if op is None:
            self.problems.append(message)
            return
        where = f" at {op.loc}" if op.loc is not None else ""
        self.problems.append(f"{op.opname}{where}: {message}")

    def define(self, op: O.Op | None, v: Var | Value, scope: set[int]) -> None:
        if id(v) in self.defined:
            name = v.name if isinstance(v, Var) else (v.hint or str(v.type))
            self.report(op, f"{name} is defined more than once")
        self.defined.add(id(v))
        scope.add(id(v))

    def use(self, op: O.Op, item: Item | None, scope: set[int]) -> None:
        if item is None:
            return
        leaves: list[Var | Value] = free_vars(item) if isinstance(item, Expr) else [item]  # type: ignore[list-item]
        for v in leaves:
            if id(v) not in scope:
                name = v.name if isinstance(v, Var) else (v.hint or str(v.type))
                self.report(op, f"operand {name} is used where it is not defined")
            elif id(v) in self.freed:
                self.report(op, f"shared buffer {v.hint or v.type} is used after free_shared")

    def block(self, body: tuple[O.Op, ...], scope: set[int]) -> None:
        for op in body:
            if not isinstance(op, O.Op):
                self.report(None, f"{type(op).__name__} in a body is not an op")
                continue
            for item in op.uses():
                self.use(op, item, scope)
            for region in op.regions():
                inner = set(scope)
                for a in region.args:
                    self.define(op, a, inner)
                self.block(region.body, inner)
                for y in region.yields:
                    self.use(op, y, inner)
            for d in op.defs():
                self.define(op, d, scope)
            self.sync(op)

    def sync(self, op: O.Op) -> None:
        if isinstance(op, O.FreeShared):
            if id(op.buf) in self.freed:
                self.report(op, "shared buffer freed twice")
            self.freed.add(id(op.buf))
        elif isinstance(op, O.AllocShared) and not isinstance(op.result.type, SharedType):
            self.report(op, "alloc_shared must define a shared buffer")


def problems(prog: Program) -> list[str]:
    """Every problem in ``prog``, one message each (empty when it verifies)."""
    c = _Checker()
    scope: set[int] = set()
    for p in prog.params:
        c.define(None, p.value, scope)
    scalars = {id(p.value) for p in prog.params if isinstance(p.value, Var)}
    for e in prog.grid or ():
        for v in free_vars(e):
            if id(v) not in scalars:
                c.report(None, f"grid of {prog.name}: {v.name} is not a scalar parameter")
    c.block(prog.body, scope)
    return c.problems


def verify(prog: Program) -> Program:
    """Return ``prog`` unchanged, or raise :class:`IRError` listing every problem."""
    found = problems(prog)
    if found:
        raise IRError(f"kernel {prog.name} does not verify:\n  " + "\n  ".join(found))
    return prog
