"""VM control flow: ``for`` and ``if`` with carried values, and ``print``.

Their nested bodies are described by :meth:`~lowbit.ir.op_base.Op.regions`
(block arguments, ops, yields), which the verifier and the rewriter read.
Re-exported by :mod:`lowbit.ir.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.expr import Expr, Var
from lowbit.ir.op_base import Carried, CarriedIn, Effect, Op, OpSpec, Region
from lowbit.ir.op_base import describe as _describe
from lowbit.ir.types import TileType, Value, is_bool

__all__ = ["For", "If", "Print"]


# ---------------------------------------------------------------- control flow


def _carry_type(x: Var | Value | Expr) -> object:
    if isinstance(x, Expr):
        return x.dtype
    t = x.type
    return (t.dtype, t.shape) if isinstance(t, TileType) else t


def _check_carried(op: Op, what: str, results: tuple[Carried, ...], *flows: tuple[CarriedIn, ...]) -> None:
    for flow in flows:
        if len(flow) != len(results):
            raise op.fail(f"{what}: {len(flow)} values for {len(results)} carried slots")
        for i, (r, x) in enumerate(zip(results, flow)):
            if isinstance(r, Var) != isinstance(x, Expr) or _carry_type(r) != _carry_type(x):
                raise op.fail(
                    f"{what}: carried value #{i} changes type ({_describe(r)} vs {_describe(x)})"
                )


@dataclass(frozen=True, eq=False)
class For(Op):
    """``for var in range(start, stop, step)`` with loop-carried ``args``.

    ``args`` take ``inits`` on entry and ``yields`` after each iteration;
    ``results`` hold the final values (``inits`` when the loop runs zero times).
    ``step`` must be positive at run time.
    """

    var: Var
    start: Expr
    stop: Expr
    step: Expr
    inits: tuple[CarriedIn, ...]
    args: tuple[Carried, ...]
    body: tuple[Op, ...]
    yields: tuple[CarriedIn, ...]
    results: tuple[Carried, ...]
    opname = "for"
    spec = OpSpec(results=("results",), operands=("start", "stop", "step", "inits"), region_fields=("var", "args", "body", "yields"), effect=Effect.CONTROL)

    def __post_init__(self) -> None:
        for e in (self.start, self.stop, self.step):
            if not isinstance(e, Expr) or e.dtype != self.var.dtype or not e.dtype.is_int:
                raise self.fail(f"range bounds must be {self.var.dtype.name} scalars, got {_describe(e)}")
        _check_carried(self, "for", self.results, self.args, self.inits, self.yields)

    def regions(self) -> tuple[Region, ...]:
        return (Region((self.var, *self.args), self.body, self.yields),)

    def region_changes(self, regions: tuple[Region, ...]) -> dict[str, object]:
        """The field values that rebuild this op's regions (the rewriter's inverse of :meth:`regions`)."""
        (r,) = regions
        return {"var": r.args[0], "args": tuple(r.args[1:]), "body": r.body, "yields": r.yields}


@dataclass(frozen=True, eq=False)
class If(Op):
    """``if cond`` (a bool scalar) with values ``results`` defined by either branch."""

    cond: Expr
    then_body: tuple[Op, ...]
    then_yields: tuple[CarriedIn, ...]
    else_body: tuple[Op, ...]
    else_yields: tuple[CarriedIn, ...]
    results: tuple[Carried, ...]
    opname = "if"
    spec = OpSpec(results=("results",), operands=("cond",), region_fields=("then_body", "then_yields", "else_body", "else_yields"), effect=Effect.CONTROL)

    def __post_init__(self) -> None:
        if not isinstance(self.cond, Expr) or not is_bool(self.cond.dtype):
            raise self.fail(f"condition must be a bool scalar, got {_describe(self.cond)}")
        _check_carried(self, "if", self.results, self.then_yields, self.else_yields)

    def regions(self) -> tuple[Region, ...]:
        return (Region((), self.then_body, self.then_yields), Region((), self.else_body, self.else_yields))

    def region_changes(self, regions: tuple[Region, ...]) -> dict[str, object]:
        t, e = regions
        return {"then_body": t.body, "then_yields": t.yields, "else_body": e.body, "else_yields": e.yields}


@dataclass(frozen=True, eq=False)
class Print(Op):
    """Print ``prefix`` and the values (interpreter only; the compiler drops it)."""

    prefix: str
    values: tuple[CarriedIn, ...]
    opname = "print"
    spec = OpSpec(operands=("values",), attrs=("prefix",), effect=Effect.IO)

    def __post_init__(self) -> None:
        for v in self.values:
            if not isinstance(v, Expr | Value):
                raise self.fail(f"cannot print {_describe(v)}")
