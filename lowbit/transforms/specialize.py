"""Specialise a program to what is known before launch: fold its scalar arithmetic.

Requires: a verified VM program (constexprs already substituted by the DSL;
          specialisation facts, if any, on its parameters).
Ensures:  every scalar expression simplified by the rules of
          :mod:`lowbit.ir.simplifier` (constants folded, identities removed),
          so later passes see ``k`` instead of ``(k * 1) + 0`` when they ask
          what divides an offset.
Preserves: the program's meaning (each rule is an integer identity,
          hypothesis-tested), values and their types, op order, locations.

Why first: layout inference and instruction selection reason about offsets
(alignment, divisibility); they should see each offset in its simplest form.
"""

from __future__ import annotations

from lowbit.ir.expr import Expr
from lowbit.ir.program import Program
from lowbit.ir.rewrite import Rewriter
from lowbit.ir.simplifier import simplify
from lowbit.transforms.options import Options

__all__ = ["run"]


class _Fold(Rewriter):
    def expr(self, e: Expr) -> Expr:
        return simplify(super().expr(e))


def run(prog: Program, opts: Options) -> Program:
    return _Fold().run(prog)
