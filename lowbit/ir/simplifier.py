"""The index-expression simplifier: local algebra as a table of rewrite rules.

Each :class:`Rule` is one rewrite, a pattern and a builder, with the law it
relies on in a comment.  Integer arithmetic in the VM *wraps* (int32 mod
2**32), so only laws of the ring Z/2**n are allowed: associativity,
commutativity and distributivity of + and *, x - x = 0, ... but never
``(x * c) // c = x`` (false on overflow) nor ``x < x + 1`` (false at the
maximum).  Every rule is property-tested on int32 values, negatives
included (``tests/ir/test_simplify.py``).

Patterns: :data:`X`, :data:`Y` match any expression (the same name twice
must match equal subtrees); :data:`C1`, :data:`C2` match constants only;
``lit(v)`` matches the constant ``v``; ``P(op, ...)`` matches a binary,
unary (``neg``/``not``/``abs``), ``select`` or ``cast`` node.  Rules apply to
integer and bool expressions only: floats keep IEEE behaviour (x * 0 is not
0 when x is NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lowbit.errors import IRError
from lowbit.dtypes import DType
from lowbit.ir.expr import Binary, Cast, Const, Expr, Select, Unary, evaluate
from lowbit.ir.types import BOOL, is_bool

__all__ = ["C1", "C2", "RULES", "Rule", "X", "Y", "P", "lit", "match", "simplify"]


@dataclass(frozen=True)
class PVar:
    """A pattern variable; ``const_only`` matches only :class:`Const` nodes."""

    name: str
    const_only: bool = False


@dataclass(frozen=True)
class PLit:
    value: int | bool


@dataclass(frozen=True)
class P:
    """A node pattern: ``P("add", X, C1)``; ops are those of :mod:`lowbit.ir.expr` plus ``select``."""

    op: str
    args: tuple[Pattern, ...]

    def __init__(self, op: str, *args: Pattern) -> None:
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "args", args)


Pattern = PVar | PLit | P
Binding = dict[str, Expr]

X, Y = PVar("x"), PVar("y")
C1, C2 = PVar("c1", True), PVar("c2", True)


def lit(v: int | bool) -> PLit:
    return PLit(v)


def _children(e: Expr) -> tuple[str, tuple[Expr, ...]] | None:
    if isinstance(e, Binary):
        return e.op, (e.a, e.b)
    if isinstance(e, Unary):
        return e.op, (e.a,)
    if isinstance(e, Select):
        return "select", (e.cond, e.a, e.b)
    if isinstance(e, Cast):
        return "cast", (e.a,)
    return None


def match(p: Pattern, e: Expr, b: Binding) -> bool:
    """Extend binding ``b`` so that ``p`` matches ``e``; False (``b`` may be partly filled) if not."""
    if isinstance(p, PVar):
        if p.const_only and not isinstance(e, Const):
            return False
        if p.name in b:
            return b[p.name] == e
        b[p.name] = e
        return True
    if isinstance(p, PLit):
        # bool literals match only bool constants: True == 1 in Python, but `x & 1` is not `x and true`
        return (
            isinstance(e, Const)
            and not isinstance(e.value, float)
            and isinstance(e.value, bool) == isinstance(p.value, bool)
            and e.value == p.value
        )
    node = _children(e)
    if node is None or node[0] != p.op or len(node[1]) != len(p.args):
        return False
    return all(match(pa, ea, b) for pa, ea in zip(p.args, node[1]))


@dataclass(frozen=True)
class Rule:
    """``pattern -> build(binding)``; ``build`` may return None to decline (a side condition)."""

    name: str
    pattern: Pattern
    build: Callable[[Mapping[str, Expr]], Expr | None]


def _fold(e: Expr) -> Expr | None:
    """Evaluate an operator node whose operands are all constants (division by zero is left alone)."""
    node = _children(e)
    if node is None or not all(isinstance(a, Const) for a in node[1]):
        return None
    try:
        return Const(evaluate(e, {}), e.dtype)
    except IRError:
        return None


def _c(e: Expr, v: int | bool) -> Const:
    return Const(v, e.dtype)


def _not_const(e: Expr) -> bool:
    return not isinstance(e, Const)


# One rewrite a line; the comment states the law over Z/2**n (or over bool).
RULES: tuple[Rule, ...] = (
    Rule("add-zero", P("add", X, lit(0)), lambda m: m["x"]),  # x + 0 = x
    Rule("add-const-left", P("add", C1, X), lambda m: Binary("add", m["x"], m["c1"]) if _not_const(m["x"]) else None),  # c + x = x + c
    Rule("add-assoc-const", P("add", P("add", X, C1), C2), lambda m: Binary("add", m["x"], _fold(Binary("add", m["c1"], m["c2"])))),  # (x + c1) + c2 = x + (c1 + c2)
    Rule("sub-zero", P("sub", X, lit(0)), lambda m: m["x"]),  # x - 0 = x
    Rule("sub-self", P("sub", X, X), lambda m: _c(m["x"], 0)),  # x - x = 0
    Rule("sub-const", P("sub", X, C1), lambda m: Binary("add", m["x"], _fold(Unary("neg", m["c1"]))) if _not_const(m["x"]) else None),  # x - c = x + (-c)
    Rule("mul-one", P("mul", X, lit(1)), lambda m: m["x"]),  # x * 1 = x
    Rule("mul-zero", P("mul", X, lit(0)), lambda m: _c(m["x"], 0)),  # x * 0 = 0
    Rule("mul-const-left", P("mul", C1, X), lambda m: Binary("mul", m["x"], m["c1"]) if _not_const(m["x"]) else None),  # c * x = x * c
    Rule("mul-assoc-const", P("mul", P("mul", X, C1), C2), lambda m: Binary("mul", m["x"], _fold(Binary("mul", m["c1"], m["c2"])))),  # (x * c1) * c2 = x * (c1 * c2)
    Rule("mul-distribute-const", P("mul", P("add", X, C1), C2), lambda m: Binary("add", Binary("mul", m["x"], m["c2"]), _fold(Binary("mul", m["c1"], m["c2"])))),  # (x + c1) * c2 = x*c2 + c1*c2
    Rule("div-one", P("div", X, lit(1)), lambda m: m["x"]),  # x / 1 = x (truncating)
    Rule("mod-one", P("mod", X, lit(1)), lambda m: _c(m["x"], 0)),  # x % 1 = 0
    Rule("min-self", P("min", X, X), lambda m: m["x"]),  # min(x, x) = x
    Rule("max-self", P("max", X, X), lambda m: m["x"]),  # max(x, x) = x
    Rule("and-zero", P("and", X, lit(0)), lambda m: _c(m["x"], 0)),  # x & 0 = 0
    Rule("or-zero", P("or", X, lit(0)), lambda m: m["x"]),  # x | 0 = x
    Rule("xor-zero", P("xor", X, lit(0)), lambda m: m["x"]),  # x ^ 0 = x
    Rule("xor-self", P("xor", X, X), lambda m: _c(m["x"], 0)),  # x ^ x = 0
    Rule("shl-zero", P("shl", X, lit(0)), lambda m: m["x"]),  # x << 0 = x
    Rule("shr-zero", P("shr", X, lit(0)), lambda m: m["x"]),  # x >> 0 = x
    Rule("neg-neg", P("neg", P("neg", X)), lambda m: m["x"]),  # -(-x) = x (also for the minimum)
    Rule("not-not", P("not", P("not", X)), lambda m: m["x"]),  # ~~x = x, not not b = b
    Rule("eq-self", P("eq", X, X), lambda m: Const(True, _bool_of(m))),  # x == x (ints)
    Rule("ne-self", P("ne", X, X), lambda m: Const(False, _bool_of(m))),  # x != x is false (ints)
    Rule("lt-self", P("lt", X, X), lambda m: Const(False, _bool_of(m))),  # x < x is false
    Rule("le-self", P("le", X, X), lambda m: Const(True, _bool_of(m))),  # x <= x
    Rule("select-true", P("select", lit(True), X, Y), lambda m: m["x"]),  # true ? x : y = x
    Rule("select-false", P("select", lit(False), X, Y), lambda m: m["y"]),  # false ? x : y = y
    Rule("select-same", P("select", Y, X, X), lambda m: m["x"]),  # c ? x : x = x
    Rule("bool-and-true", P("and", X, lit(True)), lambda m: m["x"]),  # b and true = b
    Rule("bool-or-false", P("or", X, lit(False)), lambda m: m["x"]),  # b or false = b
)


def _bool_of(m: Mapping[str, Expr]) -> DType:
    return BOOL


def _rewrite_once(e: Expr) -> Expr:
    folded = _fold(e)
    if folded is not None:
        return folded
    if isinstance(e, Cast) and e.a.dtype == e.dtype:
        return e.a  # cast to the same type is the identity
    if not (e.dtype.is_int or is_bool(e.dtype)):
        return e
    if isinstance(e, Binary) and not (e.a.dtype.is_int or is_bool(e.a.dtype)):
        return e  # comparisons of floats: IEEE (NaN != NaN)
    for rule in RULES:
        b: Binding = {}
        if match(rule.pattern, e, b):
            out = rule.build(b)
            if out is not None:
                return out
    return e


def _rebuild(e: Expr, kids: tuple[Expr, ...]) -> Expr:
    if isinstance(e, Binary):
        return e if (kids[0] is e.a and kids[1] is e.b) else Binary(e.op, kids[0], kids[1])
    if isinstance(e, Unary):
        return e if kids[0] is e.a else Unary(e.op, kids[0])
    if isinstance(e, Select):
        return e if kids == (e.cond, e.a, e.b) else Select(*kids)
    if isinstance(e, Cast):
        return e if kids[0] is e.a else Cast(kids[0], e.dtype)
    return e


def simplify(e: Expr) -> Expr:
    """``e`` rewritten bottom-up with :data:`RULES` and constant folding until nothing changes."""
    for _ in range(64):
        node = _children(e)
        if node is not None:
            e = _rebuild(e, tuple(simplify(k) for k in node[1]))
        new = _rewrite_once(e)
        if new == e and type(new) is type(e):
            return e
        e = new
    return e

