"""The VM rewriter: rebuild a program op by op, letting a pass replace, insert and retype.

Programs are immutable, so a pass builds a new one.  :class:`Rewriter`
walks the body in order (regions included), and for each op calls
:meth:`Rewriter.visit`, which by default emits a copy of the op with its
operands mapped.  A pass subclasses it and overrides ``visit`` (or
:meth:`Rewriter.define`, which every definition goes through) to:

* **replace** an op: emit other ops instead, and :meth:`bind` the old
  result to the new value so every later use follows;
* **insert** ops: :meth:`emit` them before or after the copy;
* **retype** values: return a new value from ``define`` (a tile with a
  layout, say); uses are remapped automatically.

Everything is driven by the ops' descriptions (:class:`~lowbit.ir.op_base.OpSpec`,
``regions``/``region_changes``), so a new op class needs nothing here.
"""

from __future__ import annotations

from lowbit.errors import IRError
from lowbit.ir.expr import Expr, Var, substitute
from lowbit.ir.op_base import Carried, Op, Region
from lowbit.ir.program import Param, Program
from lowbit.ir.types import Value

__all__ = ["Rewriter", "walk"]


def walk(body: tuple[Op, ...]):  # noqa: ANN201 - a generator of ops
    """Every op of ``body`` and of its nested regions, in program order (an op before its regions' ops)."""
    for op in body:
        yield op
        for r in op.regions():
            yield from walk(r.body)


class Rewriter:
    """Copies a program; override :meth:`visit` / :meth:`define` to change it (see the module docstring)."""

    def __init__(self) -> None:
        self._map: dict[int, Carried] = {}
        self._vars: dict[int, Expr] = {}
        self._bodies: list[list[Op]] = []

    # ------------------------------------------------------------------ values
    def bind(self, old: Carried, new: Carried) -> None:
        """From now on, uses of ``old`` read ``new``."""
        self._map[id(old)] = new
        if isinstance(old, Var):
            if not isinstance(new, Expr):
                raise IRError(f"a scalar {old.name} cannot be replaced by a value")
            self._vars[id(old)] = new

    def value(self, v: Value) -> Value:
        got = self._map.get(id(v), v)
        return got  # type: ignore[return-value]

    def expr(self, e: Expr) -> Expr:
        return substitute(e, self._vars)

    def item(self, x: Expr | Value) -> Expr | Value:
        return self.expr(x) if isinstance(x, Expr) else self.value(x)

    def define(self, v: Carried, op: Op | None) -> Carried:
        """The value that replaces definition ``v`` (of ``op``; None for parameters).  Default: ``v`` itself."""
        return v

    # ------------------------------------------------------------------ ops
    def emit(self, op: Op) -> Op:
        self._bodies[-1].append(op)
        return op

    def visit(self, op: Op) -> None:
        """Handle one op of the input; the default emits :meth:`copy`."""
        self.emit(self.copy(op))

    def copy(self, op: Op, **changes: object) -> Op:
        """``op`` with operands mapped, definitions passed through :meth:`define`, regions rewritten."""
        new = op.map_values(self.value, self.expr)
        fields: dict[str, object] = {}
        if op.regions():
            regions = []
            for r in op.regions():
                args = tuple(self._define(a, op) for a in r.args)
                body = self.body(r.body)
                regions.append(Region(args, body, tuple(self.item(y) for y in r.yields)))
            fields.update(op.region_changes(tuple(regions)))
        for name in op.spec.results:
            old = getattr(op, name)
            fields[name] = tuple(self._define(d, op) for d in old) if isinstance(old, tuple) else self._define(old, op)
        fields.update(changes)
        changed = {k: v for k, v in fields.items() if v is not getattr(new, k)}
        return new.replace(**changed) if changed else new

    def _define(self, v: Carried, op: Op | None) -> Carried:
        new = self.define(v, op)
        if new is not v:
            self.bind(v, new)
        return new

    def body(self, ops: tuple[Op, ...]) -> tuple[Op, ...]:
        self._bodies.append([])
        try:
            for op in ops:
                self.visit(op)
        finally:
            out = self._bodies.pop()
        return tuple(out)

    def run(self, prog: Program) -> Program:
        params = tuple(Param(p.name, self._define(p.value, None), p.divisibility) for p in prog.params)  # type: ignore[arg-type]
        body = self.body(prog.body)
        grid = tuple(self.expr(e) for e in prog.grid) if prog.grid is not None else None
        return Program(prog.name, params, body, prog.constexprs, prog.num_warps, grid, prog.num_stages)
