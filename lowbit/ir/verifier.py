"""The verifier: whole-program checks that no single op constructor can make.

Each op checks its own operand types when it is built.  What remains is
about *where* values are: every operand defined before use and visible
(loop and branch bodies see their enclosing scope, their own block
arguments, and nothing defined in a sibling body); every value defined
once; shared buffers not used after ``free_shared`` (nor freed twice); scalar
grid expressions written in the kernel's scalar parameters.

:data:`SIGNATURES` has one entry per op class: what it reads, what it
defines, which nested bodies it has.  :func:`verify` collects *every*
problem (op, location, message) and raises one :class:`IRError` listing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lowbit.errors import IRError
from lowbit.ir import ops as O
from lowbit.ir.expr import Expr, Var, free_vars
from lowbit.ir.program import Program
from lowbit.ir.types import SharedType, Value

__all__ = ["SIGNATURES", "Signature", "problems", "verify"]

Item = Var | Value | Expr


@dataclass(frozen=True)
class Region:
    """A nested body: its block arguments and what it yields."""

    body: tuple[O.Op, ...]
    args: tuple[Var | Value, ...]
    yields: tuple[Expr | Value, ...]


@dataclass(frozen=True)
class Signature:
    uses: tuple[Item | None, ...]
    defs: tuple[Var | Value, ...]
    regions: tuple[Region, ...] = ()


def _sig(uses: tuple[Item | None, ...] = (), defs: tuple[Var | Value, ...] = ()) -> Signature:
    return Signature(uses, defs)


SIGNATURES: dict[type[O.Op], Callable[[O.Op], Signature]] = {
    O.ProgramId: lambda op: _sig((), (op.result,)),
    O.NumPrograms: lambda op: _sig((), (op.result,)),
    O.GlobalView: lambda op: _sig((op.ptr, *op.shape, *op.strides), (op.result,)),
    O.AllocShared: lambda op: _sig((), (op.result,)),
    O.FreeShared: lambda op: _sig((op.buf,)),
    O.LoadGlobal: lambda op: _sig((op.src, *op.offsets, op.mask), (op.result,)),
    O.StoreGlobal: lambda op: _sig((op.dst, op.value, *op.offsets, op.mask)),
    O.LoadShared: lambda op: _sig((op.src, *op.offsets), (op.result,)),
    O.StoreShared: lambda op: _sig((op.dst, op.value, *op.offsets)),
    O.CopyAsync: lambda op: _sig((op.dst, op.src, *op.offsets, op.mask)),
    O.CommitGroup: lambda op: _sig(),
    O.WaitGroup: lambda op: _sig(),
    O.Barrier: lambda op: _sig(),
    O.Full: lambda op: _sig((op.value,), (op.result,)),
    O.Arange: lambda op: _sig((), (op.result,)),
    O.Cast: lambda op: _sig((op.x,), (op.result,)),
    O.View: lambda op: _sig((op.x,), (op.result,)),
    O.ElementwiseUnary: lambda op: _sig((op.x,), (op.result,)),
    O.ElementwiseBinary: lambda op: _sig((op.a, op.b), (op.result,)),
    O.Where: lambda op: _sig((op.cond, op.a, op.b), (op.result,)),
    O.Fma: lambda op: _sig((op.a, op.b, op.c), (op.result,)),
    O.Dot: lambda op: _sig((op.a, op.b, op.c), (op.result,)),
    O.Reduce: lambda op: _sig((op.x,), (op.result,)),
    O.Lookup: lambda op: _sig((op.table, op.index), (op.result,)),
    O.Broadcast: lambda op: _sig((op.x,), (op.result,)),
    O.Reshape: lambda op: _sig((op.x,), (op.result,)),
    O.For: lambda op: Signature(
        (op.start, op.stop, op.step, *op.inits),
        tuple(op.results),
        (Region(op.body, (op.var, *op.args), op.yields),),
    ),
    O.If: lambda op: Signature(
        (op.cond,),
        tuple(op.results),
        (Region(op.then_body, (), op.then_yields), Region(op.else_body, (), op.else_yields)),
    ),
    O.Print: lambda op: _sig(tuple(op.values)),
}


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
            entry = SIGNATURES.get(type(op))
            if entry is None:
                self.report(op, f"unknown op class {type(op).__name__}")
                continue
            sig = entry(op)
            for item in sig.uses:
                self.use(op, item, scope)
            for region in sig.regions:
                inner = set(scope)
                for a in region.args:
                    self.define(op, a, inner)
                self.block(region.body, inner)
                for y in region.yields:
                    self.use(op, y, inner)
            for d in sig.defs:
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
