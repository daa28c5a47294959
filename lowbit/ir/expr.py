"""Scalar index expressions: the arithmetic of offsets, bounds and loop limits.

Everything scalar in a VM program -- a kernel's ``int32`` parameter, a
program id, a loop index, ``pid * BM + 16`` -- is an :class:`Expr` tree.
Trees (not SSA ops) because the compiler wants to *see* the arithmetic of an
address: the simplifier folds it (``lowbit.ir.simplifier``), later passes ask
whether an offset is a multiple of 8.  Leaves are constants and
:class:`Var` s; a ``Var`` is compared by identity (two parameters named ``n``
in different programs are different), every other node by value.

Dtypes: int32, int64, bool, and the float scalars f32/f16/bf16 (kernel float
parameters such as ``alpha``).  Both operands of a binary node have the same
dtype (the DSL inserts :class:`Cast` nodes); comparisons give bool.  The
meaning of each node is :func:`evaluate`, written with
:mod:`lowbit.ir.semantics` (C/PTX integer rules, int32 wraps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from lowbit.dtypes import DType
from lowbit.errors import IRError
from lowbit.ir import semantics as sem
from lowbit.ir.types import BOOL, INT32, is_bool, scalar_ok

__all__ = [
    "ARITH_OPS",
    "BINARY_OPS",
    "COMPARE_OPS",
    "UNARY_OPS",
    "Binary",
    "Cast",
    "Const",
    "Expr",
    "Scalar",
    "Select",
    "Unary",
    "Var",
    "const",
    "evaluate",
    "free_vars",
    "substitute",
]

Scalar = int | float | bool

#: Binary operators and their printed spelling.
ARITH_OPS = ("add", "sub", "mul", "div", "mod", "min", "max")
BITWISE_OPS = ("and", "or", "xor", "shl", "shr")
COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
BINARY_OPS = ARITH_OPS + BITWISE_OPS + COMPARE_OPS
UNARY_OPS = ("neg", "not", "abs")


class Expr:
    """Base of scalar expression nodes (frozen dataclasses)."""

    dtype: DType


@dataclass(frozen=True)
class Const(Expr):
    """A literal of ``dtype``; ints are stored wrapped into the dtype's range."""

    value: Scalar
    dtype: DType

    def __post_init__(self) -> None:
        if not scalar_ok(self.dtype):
            raise IRError(f"scalar constants cannot have dtype {self.dtype.name}")
        if is_bool(self.dtype):
            object.__setattr__(self, "value", bool(self.value))
        elif self.dtype.is_int:
            if isinstance(self.value, float) or isinstance(self.value, bool):
                raise IRError(f"integer constant of {self.dtype.name} given {self.value!r}")
            object.__setattr__(self, "value", sem.wrap_int(self.value, self.dtype.bits, self.dtype.is_signed))
        else:
            object.__setattr__(self, "value", float(self.value))


@dataclass(frozen=True, eq=False)
class Var(Expr):
    """A named scalar: a kernel parameter, a program id, a loop index, a carried scalar."""

    name: str
    dtype: DType

    def __post_init__(self) -> None:
        if not scalar_ok(self.dtype):
            raise IRError(f"scalar variable {self.name!r} cannot have dtype {self.dtype.name}")

    def __repr__(self) -> str:
        return f"Var({self.name}:{self.dtype.name})"


@dataclass(frozen=True)
class Unary(Expr):
    """``neg`` (ints, floats), ``not`` (bool: logical; ints: bitwise), ``abs``."""

    op: str
    a: Expr
    dtype: DType = field(init=False)

    def __post_init__(self) -> None:
        if self.op not in UNARY_OPS:
            raise IRError(f"unknown scalar unary op {self.op!r}")
        if self.op in ("neg", "abs") and is_bool(self.a.dtype):
            raise IRError(f"scalar {self.op} of a bool")
        object.__setattr__(self, "dtype", self.a.dtype)


@dataclass(frozen=True)
class Binary(Expr):
    """``a op b`` with both operands of one dtype; comparisons give bool."""

    op: str
    a: Expr
    b: Expr
    dtype: DType = field(init=False)

    def __post_init__(self) -> None:
        if self.op not in BINARY_OPS:
            raise IRError(f"unknown scalar binary op {self.op!r}")
        if self.a.dtype != self.b.dtype:
            raise IRError(
                f"scalar {self.op}: operand dtypes differ ({self.a.dtype.name} vs {self.b.dtype.name})"
            )
        t = self.a.dtype
        if is_bool(t) and self.op not in ("and", "or", "xor", "eq", "ne"):
            raise IRError(f"scalar {self.op} is not defined on bool")
        if t.is_float and self.op in BITWISE_OPS + ("mod",):
            raise IRError(f"scalar {self.op} is not defined on {t.name}")
        object.__setattr__(self, "dtype", BOOL if self.op in COMPARE_OPS else t)


@dataclass(frozen=True)
class Select(Expr):
    """``cond ? a : b`` with a bool ``cond``."""

    cond: Expr
    a: Expr
    b: Expr
    dtype: DType = field(init=False)

    def __post_init__(self) -> None:
        if not is_bool(self.cond.dtype):
            raise IRError(f"select condition must be bool, got {self.cond.dtype.name}")
        if self.a.dtype != self.b.dtype:
            raise IRError(f"select arms differ in dtype ({self.a.dtype.name} vs {self.b.dtype.name})")
        object.__setattr__(self, "dtype", self.a.dtype)


@dataclass(frozen=True)
class Cast(Expr):
    """Scalar conversion with the cast rules of :mod:`lowbit.ir.semantics`."""

    a: Expr
    dtype: DType

    def __post_init__(self) -> None:
        if not scalar_ok(self.dtype):
            raise IRError(f"scalar cast to {self.dtype.name} is not supported")


def const(value: Scalar, dt: DType = INT32) -> Const:
    return Const(value, dt)


# ---------------------------------------------------------------------------
# meaning


def _round_to(dt: DType, x: float) -> float:
    if dt.name == "f32":
        return sem.round_f32(x)
    if dt.name in ("f16", "bf16"):
        # Decode(encode) is the format's round-to-nearest-even (IEEE overflow to inf).
        if math.isnan(x):
            return x
        return float(dt.decode(dt.encode(x, saturate=False)))
    return x


def convert(value: Scalar, dt: DType) -> Scalar:
    """``value`` converted to scalar dtype ``dt`` by the VM's cast rules."""
    if is_bool(dt):
        return bool(value)
    if dt.is_int:
        if isinstance(value, float):
            return sem.float_to_int(value, dt.bits, dt.is_signed)
        return sem.wrap_int(int(value), dt.bits, dt.is_signed)
    return _round_to(dt, float(value))


def _binary(op: str, x: Scalar, y: Scalar, dt: DType) -> Scalar:
    if op in COMPARE_OPS:
        return {"eq": x == y, "ne": x != y, "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}[op]
    if is_bool(dt):
        return {"and": x and y, "or": x or y, "xor": x != y}[op]
    if dt.is_int:
        bits, signed = dt.bits, dt.is_signed
        if op == "shl":
            return sem.shift_left(x, y, bits, signed)
        if op == "shr":
            return sem.shift_right(x, y, bits, signed)
        r = {
            "add": lambda: x + y,
            "sub": lambda: x - y,
            "mul": lambda: x * y,
            "div": lambda: sem.trunc_div(x, y),
            "mod": lambda: sem.trunc_mod(x, y),
            "min": lambda: min(x, y),
            "max": lambda: max(x, y),
            "and": lambda: x & y,
            "or": lambda: x | y,
            "xor": lambda: x ^ y,
        }[op]()
        return sem.wrap_int(r, bits, signed)
    if op == "div":
        if y == 0:
            r = math.nan if (x == 0 or math.isnan(x)) else math.copysign(math.inf, x) * math.copysign(1.0, y)
        else:
            r = x / y
    elif op in ("min", "max"):
        r = y if math.isnan(x) else x if math.isnan(y) else (min(x, y) if op == "min" else max(x, y))
    else:
        r = {"add": x + y, "sub": x - y, "mul": x * y}[op]
    return _round_to(dt, r)


def evaluate(e: Expr, env: Mapping[Var, Scalar]) -> Scalar:
    """The value of ``e`` with each :class:`Var` read from ``env`` (the reference meaning)."""
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Var):
        try:
            return env[e]
        except KeyError:
            raise IRError(f"scalar {e.name!r} has no value here") from None
    if isinstance(e, Unary):
        x = evaluate(e.a, env)
        if e.op == "not":
            return (not x) if is_bool(e.dtype) else sem.wrap_int(~x, e.dtype.bits, e.dtype.is_signed)
        r = -x if e.op == "neg" else abs(x)
        return sem.wrap_int(r, e.dtype.bits, e.dtype.is_signed) if e.dtype.is_int else r
    if isinstance(e, Binary):
        return _binary(e.op, evaluate(e.a, env), evaluate(e.b, env), e.a.dtype)
    if isinstance(e, Select):
        return evaluate(e.a, env) if evaluate(e.cond, env) else evaluate(e.b, env)
    if isinstance(e, Cast):
        return convert(evaluate(e.a, env), e.dtype)
    raise IRError(f"not a scalar expression: {e!r}")


def free_vars(e: Expr) -> list[Var]:
    """The distinct :class:`Var` leaves of ``e`` in first-seen order."""
    out: list[Var] = []
    seen: set[int] = set()

    def walk(x: Expr) -> None:
        if isinstance(x, Var):
            if id(x) not in seen:
                seen.add(id(x))
                out.append(x)
        elif isinstance(x, Unary | Cast):
            walk(x.a)
        elif isinstance(x, Binary):
            walk(x.a)
            walk(x.b)
        elif isinstance(x, Select):
            walk(x.cond)
            walk(x.a)
            walk(x.b)

    walk(e)
    return out


def substitute(e: Expr, mapping: Mapping[int, Expr]) -> Expr:
    """``e`` with every :class:`Var` whose ``id`` is in ``mapping`` replaced (``e`` itself when none is)."""
    if not mapping:
        return e
    if isinstance(e, Var):
        return mapping.get(id(e), e)
    if isinstance(e, Unary):
        a = substitute(e.a, mapping)
        return e if a is e.a else Unary(e.op, a)
    if isinstance(e, Cast):
        a = substitute(e.a, mapping)
        return e if a is e.a else Cast(a, e.dtype)
    if isinstance(e, Binary):
        a, b = substitute(e.a, mapping), substitute(e.b, mapping)
        return e if a is e.a and b is e.b else Binary(e.op, a, b)
    if isinstance(e, Select):
        c, a, b = (substitute(x, mapping) for x in (e.cond, e.a, e.b))
        return e if c is e.cond and a is e.a and b is e.b else Select(c, a, b)
    return e
