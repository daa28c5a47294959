"""What power of two is known to divide a scalar expression: the facts vector accesses are chosen on.

``divisibility(e)`` is the largest power of two (at most :data:`CAP`) that
divides every value ``e`` can take at run time, from what the program
states: constants, parameters' specialisation facts (``div(16)``), loop
variables (the gcd of start and step) and arithmetic on them (a sum keeps
the smaller, a product multiplies, an exact ``/`` by a power of two
divides).  Unknown leaves (program ids, loaded scalars) count as 1.

The law (hypothesis-tested): ``evaluate(e, env) % divisibility(e) == 0``
for every environment that satisfies the facts.
"""

from __future__ import annotations

from lowbit.ir import ops as O
from lowbit.ir.expr import Binary, Cast, Const, Expr, Select, Unary, Var
from lowbit.ir.program import Program
from lowbit.ir.rewrite import walk

__all__ = ["CAP", "Divisibility"]

CAP = 1 << 12


def _pow2(n: int) -> int:
    if n == 0:
        return CAP
    return min(CAP, n & -n)


class Divisibility:
    """The divisibility of every scalar expression of one program (its facts and loops read once)."""

    def __init__(self, prog: Program) -> None:
        self.known: dict[int, int] = {}
        for p in prog.params:
            if isinstance(p.value, Var):
                self.known[id(p.value)] = p.divisibility
        for op in walk(prog.body):
            if isinstance(op, O.For) and op.var.dtype.is_int:
                self.known[id(op.var)] = min(self(op.start), self(op.step))

    def __call__(self, e: Expr) -> int:
        if isinstance(e, Const):
            return _pow2(int(e.value)) if e.dtype.is_int else 1
        if isinstance(e, Var):
            return self.known.get(id(e), 1)
        if isinstance(e, Cast):
            return self(e.a) if e.dtype.is_int and e.a.dtype.is_int and e.dtype.bits >= e.a.dtype.bits else 1
        if isinstance(e, Unary):
            return self(e.a) if e.op in ("neg", "abs") else 1
        if isinstance(e, Select):
            return min(self(e.a), self(e.b))
        if isinstance(e, Binary):
            a, b = self(e.a), self(e.b)
            if e.op in ("add", "sub", "min", "max"):
                return min(a, b)
            if e.op == "mul":
                return min(CAP, a * b)
            if e.op == "div" and isinstance(e.b, Const) and e.b.value > 0 and e.b.value & (e.b.value - 1) == 0:
                d = int(e.b.value)
                return a // d if a >= d else 1
            if e.op == "shl" and isinstance(e.b, Const) and 0 <= e.b.value < 31:
                return min(CAP, a << int(e.b.value))
            if e.op == "and":
                return max(a, b)
            return 1
        return 1
