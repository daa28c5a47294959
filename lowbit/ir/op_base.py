"""The base of every VM op: its description (operands, results, attributes, regions, effect) and the checks it shares.

Every op class states, once, on the class, what each of its fields is
(:class:`OpSpec`): the results it defines, the operands it reads (values
and scalar expressions, in their printed order), the optional operands
(absent = ``None``), the static attributes, and its effect on memory and
other threads.  The verifier, the printer and parser, the rewriter and the
passes read that description instead of keeping a table per op, so adding
an op means writing its class (and its meaning: the interpreter handler
and a lowering).  Ops with nested bodies (``for``, ``if``) describe them
through :meth:`Op.regions`.

An op is created once and never changes; ops compare by identity.
Constructors validate their operands and raise :class:`IRError` naming the op
and its source location, so an ill-typed op cannot exist.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from lowbit.errors import IRError
from lowbit.ir.expr import Expr, Var
from lowbit.ir.types import GlobalType, SharedType, TileType, Value, is_bool

__all__ = ["Carried", "CarriedIn", "Effect", "Loc", "Op", "OpSpec", "Region", "check_spec", "describe",
           "global_type", "mask_check", "shared_type"]  # fmt: skip

Carried = Var | Value  # what loops and ifs carry: scalars (Var) or values
CarriedIn = Expr | Value  # what flows into them: scalar expressions or values
Operand = Value | Expr | tuple  # a tuple holds Exprs or Values (read in order)


class Effect(enum.Enum):
    """What an op does besides defining its results (what passes may reorder, merge or delete).

    ``PURE``: nothing (may be deleted when unused, computed anywhere its
    operands are); ``READ``: reads memory; ``WRITE``: writes memory (never
    deleted, order kept with other memory ops); ``SYNC``: orders other
    threads' or the async unit's memory operations (barrier, commit, wait);
    ``IO``: host-visible output (print); ``CONTROL``: has regions whose
    ops carry their own effects.
    """

    PURE = "pure"
    READ = "read"
    WRITE = "write"
    SYNC = "sync"
    IO = "io"
    CONTROL = "control"


@dataclass(frozen=True)
class OpSpec:
    """The description of an op class's fields.

    ``results``: fields holding defined values (a Value / Var, or a tuple of
    them); ``operands``: fields read, in printed order (a Value, an Expr, or
    a tuple of Exprs / Values); ``optional``: fields that are a Value or
    ``None``; ``attrs``: static fields (ints, strings, floats, tuples of
    ints, layouts); ``region_fields``: the fields that make up nested
    bodies (block arguments, ops, yields), which :meth:`Op.regions`
    describes.  Every dataclass field but ``loc`` is in exactly one of
    them (checked when the op classes are registered).  ``mnemonic_attr``
    names a string attribute printed as the mnemonic (``add %a, %b``).
    """

    results: tuple[str, ...] = ()
    operands: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    attrs: tuple[str, ...] = ()
    region_fields: tuple[str, ...] = ()
    effect: Effect = Effect.PURE
    mnemonic_attr: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.operands + self.optional


@dataclass(frozen=True)
class Loc:
    """A source position: file, 1-based line, 1-based column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Region:
    """A nested body as the verifier and rewriter see it: block arguments, ops, what it yields."""

    args: tuple[Carried, ...]
    body: tuple[Op, ...]
    yields: tuple[CarriedIn, ...]


def _flatten(items: list[object], x: object) -> None:
    if isinstance(x, tuple):
        for y in x:
            _flatten(items, y)
    elif x is not None:
        items.append(x)


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all instructions."""

    loc: Loc | None = field(default=None, kw_only=True)

    opname: ClassVar[str] = "op"
    spec: ClassVar[OpSpec] = OpSpec()

    # ------------------------------------------------------------------ the description, generically
    @property
    def mnemonic(self) -> str:
        a = self.spec.mnemonic_attr
        return getattr(self, a) if a is not None else self.opname

    def uses(self) -> tuple[Value | Expr, ...]:
        """Every value and scalar expression the op reads directly (not inside its regions), in order."""
        out: list[object] = []
        for name in self.spec.inputs:
            _flatten(out, getattr(self, name))
        return tuple(out)  # type: ignore[arg-type]

    def defs(self) -> tuple[Carried, ...]:
        """Every value the op defines in the enclosing scope."""
        out: list[object] = []
        for name in self.spec.results:
            _flatten(out, getattr(self, name))
        return tuple(out)  # type: ignore[arg-type]

    def regions(self) -> tuple[Region, ...]:
        """Nested bodies (``for``/``if`` override this and :meth:`region_changes`)."""
        return ()

    def region_changes(self, regions: tuple[Region, ...]) -> dict[str, object]:
        """The field values that rebuild this op with ``regions`` instead of its own (same count and arity)."""
        if regions:
            raise IRError(f"{self.opname} has no regions")
        return {}

    def attrs(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.spec.attrs}

    def replace(self, **changes: object) -> Op:
        """A new op with some fields changed (validated again by the constructor)."""
        return dataclasses.replace(self, **changes)

    def map_values(self, value: Callable[[Value], Value], expr: Callable[[Expr], Expr]) -> Op:
        """A copy whose operands are mapped (values by ``value``, scalar expressions by ``expr``).

        Results and regions are kept; the rewriter maps those itself.
        """
        changes = {name: _map_item(getattr(self, name), value, expr) for name in self.spec.inputs}
        return self.replace(**changes) if any(changes[n] is not getattr(self, n) for n in changes) else self

    # ------------------------------------------------------------------ checks constructors share
    def fail(self, message: str) -> IRError:
        where = f" at {self.loc}" if self.loc is not None else ""
        return IRError(f"{self.opname}{where}: {message}")

    def tile(self, v: object, what: str) -> TileType:
        if not isinstance(v, Value) or not isinstance(v.type, TileType):
            raise self.fail(f"{what} must be a register tile, got {describe(v)}")
        return v.type

    def check_result(self, result: Value, expected: TileType) -> None:
        if not isinstance(result, Value) or not isinstance(result.type, TileType):
            raise self.fail(f"result must be a register tile, got {describe(result)}")
        got = result.type
        if got.dtype != expected.dtype or got.shape != expected.shape:
            raise self.fail(f"result type {got} does not match the inferred {expected}")

    def index_exprs(self, exprs: tuple[Expr, ...], what: str, n: int) -> None:
        if not isinstance(exprs, tuple) or len(exprs) != n:
            raise self.fail(f"{what} needs {n} index expressions, got {exprs!r}")
        for e in exprs:
            if not isinstance(e, Expr) or e.dtype.name not in ("int32", "int64"):
                raise self.fail(f"{what} must be int32/int64 scalars, got {describe(e)}")


def _map_item(x: object, value: Callable[[Value], Value], expr: Callable[[Expr], Expr]) -> object:
    if isinstance(x, Value):
        return value(x)
    if isinstance(x, Expr):
        return expr(x)
    if isinstance(x, tuple):
        mapped = tuple(_map_item(y, value, expr) for y in x)
        return x if all(a is b for a, b in zip(mapped, x)) else mapped
    return x


def describe(v: object) -> str:
    if isinstance(v, Value):
        return str(v.type)
    if isinstance(v, Expr):
        return f"a {v.dtype.name} scalar"
    return type(v).__name__


def global_type(op: Op, v: object, what: str) -> GlobalType:
    if not isinstance(v, Value) or not isinstance(v.type, GlobalType):
        raise op.fail(f"{what} must be a global view, got {describe(v)}")
    return v.type


def shared_type(op: Op, v: object, what: str) -> SharedType:
    if not isinstance(v, Value) or not isinstance(v.type, SharedType):
        raise op.fail(f"{what} must be a shared buffer, got {describe(v)}")
    return v.type


def mask_check(op: Op, mask: Value | None, shape: tuple[int, ...]) -> None:
    if mask is None:
        return
    t = op.tile(mask, "mask")
    if not is_bool(t.dtype):
        raise op.fail(f"mask must be a bool tile, got {t}")
    if t.shape != shape:
        raise op.fail(f"mask shape {list(t.shape)} does not match the tile shape {list(shape)}")


def check_spec(cls: type[Op]) -> None:
    """Every dataclass field of ``cls`` but ``loc`` is described exactly once by its :class:`OpSpec`."""
    s = cls.spec
    named = s.results + s.operands + s.optional + s.attrs + s.region_fields
    fields = [f.name for f in dataclasses.fields(cls) if f.name != "loc"]
    if sorted(named) != sorted(fields):
        raise IRError(f"op class {cls.__name__}: its OpSpec names {sorted(named)}, its fields are {sorted(fields)}")
    if s.mnemonic_attr is not None and s.mnemonic_attr not in s.attrs:
        raise IRError(f"op class {cls.__name__}: mnemonic attribute {s.mnemonic_attr!r} is not an attribute")

