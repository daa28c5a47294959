"""Structured control flow: counted ``for`` loops with loop-carried registers, and ``if``.

Both are regions, not branches: a body is a tuple of ops ending in the
registers it yields.  LLVM receives them as the canonical loop / diamond
shapes it optimises best (phi nodes at the loop header and at the join), and
the verifier can check scoping without a CFG.

``for %i = start to stop step s iter(%a = init, ...)`` runs the body for
i = start, start + s, ... while ``i < stop`` (signed compare in the type of
``%i``, i32 or i64; ``s`` must be positive); the body sees the carried
registers and yields their next values; the op's results are their values
after the last iteration (the inits when the loop runs zero times).

``if cond`` runs ``then_body`` or ``else_body``; each yields one value per
result.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.simt.base import Op
from lowbit.ir.simt.types import I32, I64, PRED, Const, Operand, Reg


def _tuples(op: Op, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(op, name), tuple):
            raise op.fail(f"{name.rstrip('_')} must be a tuple")


def _ops_only(op: Op, body: tuple[object, ...]) -> None:
    for x in body:
        if not isinstance(x, Op):
            raise op.fail(f"body holds a {type(x).__name__}, not an op")


@dataclass(frozen=True, eq=False)
class For(Op):
    """A counted loop; ``carried`` are the body's views of the loop-carried values."""

    iv: Reg
    start: Operand
    stop: Operand
    step: Operand
    carried: tuple[Reg, ...]
    inits: tuple[Operand, ...]
    body: tuple[Op, ...]
    yields: tuple[Operand, ...]
    results_: tuple[Reg, ...]
    opname = "for"
    result_fields, operand_fields = ("results_",), ("start", "stop", "step", "inits")

    def __post_init__(self) -> None:
        t = self.want_reg(self.iv, "induction variable").type
        if t not in (I32, I64):
            raise self.fail(f"induction variable must be i32 or i64, got {t}")
        self.expect(t, "start", "stop", "step")
        if isinstance(self.step, Const) and self.step.value <= 0:
            raise self.fail(f"step must be positive, got {self.step.value}")
        _tuples(self, "carried", "inits", "body", "yields", "results_")
        n = len(self.carried)
        if not len(self.inits) == len(self.yields) == len(self.results_) == n:
            raise self.fail(
                f"{n} carried values need as many inits, yields and results "
                f"(got {len(self.inits)}, {len(self.yields)}, {len(self.results_)})"
            )
        for i, (c, init, y, r) in enumerate(zip(self.carried, self.inits, self.yields, self.results_)):
            ct = self.want_reg(c, f"carried value {i}").type
            self.same(self.want(init, f"init {i}"), ct, f"init {i}")
            self.same(self.want(y, f"yield {i}"), ct, f"yield {i}")
            self.same(self.want_reg(r, f"result {i}").type, ct, f"result {i}")
        _ops_only(self, self.body)

    @property
    def regions(self) -> tuple[tuple[tuple[Reg, ...], tuple[Op, ...], tuple[Operand, ...]], ...]:
        """(registers the region defines on entry, its ops, what it yields)."""
        return (((self.iv,) + self.carried, self.body, self.yields),)


@dataclass(frozen=True, eq=False)
class If(Op):
    """``if cond {then} else {else}``, yielding one value per result from each side."""

    cond: Operand
    then_body: tuple[Op, ...]
    then_yields: tuple[Operand, ...]
    else_body: tuple[Op, ...]
    else_yields: tuple[Operand, ...]
    results_: tuple[Reg, ...]
    opname = "if"
    result_fields, operand_fields = ("results_",), ("cond",)

    def __post_init__(self) -> None:
        self.expect(PRED, "cond")
        _tuples(self, "then_body", "then_yields", "else_body", "else_yields", "results_")
        n = len(self.results_)
        if len(self.then_yields) != n or len(self.else_yields) != n:
            raise self.fail(
                f"{n} results need {n} yields on each side (then {len(self.then_yields)}, "
                f"else {len(self.else_yields)})"
            )
        for i, (r, a, b) in enumerate(zip(self.results_, self.then_yields, self.else_yields)):
            rt = self.want_reg(r, f"result {i}").type
            self.same(self.want(a, f"then yield {i}"), rt, f"then yield {i}")
            self.same(self.want(b, f"else yield {i}"), rt, f"else yield {i}")
        _ops_only(self, self.then_body + self.else_body)

    @property
    def regions(self) -> tuple[tuple[tuple[Reg, ...], tuple[Op, ...], tuple[Operand, ...]], ...]:
        return (((), self.then_body, self.then_yields), ((), self.else_body, self.else_yields))


__all__ = ["For", "If"]
