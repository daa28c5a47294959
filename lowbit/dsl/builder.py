"""The IR builder behind the DSL: typed helpers that emit VM ops at the current source line.

The frontend evaluates Python expressions to *DSL values*: Python constants
(constexprs: ints, floats, bools, strings, dtypes, tuples), scalar
:class:`~lowbit.ir.expr.Expr` (runtime ints/floats/bools) and
:class:`~lowbit.ir.types.Value` (tiles, global views, shared buffers,
pointers).  The builder turns operations on them into ops: it applies the
promotion table, numpy-style broadcasting (as explicit ``reshape`` /
``broadcast`` ops), materialises scalars with ``full``, and refuses with a
:class:`~lowbit.dsl.diagnostics.Fail` whose message the frontend locates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lowbit.dtypes import DType
from lowbit.dsl.diagnostics import Fail
from lowbit.errors import IRError
from lowbit.ir import ops as O
from lowbit.ir import semantics as sem
from lowbit.ir.expr import Binary, Cast, Const, Expr, Unary, Var
from lowbit.ir.simplifier import simplify
from lowbit.ir.types import BOOL, INT32, INT64, GlobalType, Layout, SharedType, TileType, Value, is_arith, is_bool, resolve_dtype

__all__ = ["Builder", "DValue", "describe", "is_constexpr"]

DValue = object  # a DSL value: constexpr Python object, Expr or Value (checked where used)

_F32 = resolve_dtype("f32")


def is_constexpr(x: DValue) -> bool:
    return not isinstance(x, Expr | Value)


def describe(x: DValue) -> str:
    """A short phrase for messages: 'a tile<f16, [32, 32]>', 'a runtime int32 scalar', 'the constant 3'."""
    if isinstance(x, Value):
        return f"a {x.type}"
    if isinstance(x, Expr):
        name = f" '{x.name}'" if isinstance(x, Var) else ""
        return f"a runtime {x.dtype.name} scalar{name}"
    if isinstance(x, DType):
        return f"the dtype {x.name}"
    return f"the constant {x!r}"


def literal_fits(value: object, dt: DType, what: str) -> object:
    """A Python int literal that takes an integer operand's type must fit its bits -- as a signed or an
    unsigned value, so that bit patterns such as ``x & 0xFFFFFFFF`` on an int32 keep working; it would
    otherwise wrap silently (``n + (1 << 40)`` adding 0)."""
    if isinstance(value, int) and not isinstance(value, bool) and dt.is_int:
        lo, hi = -(1 << (dt.bits - 1)), (1 << dt.bits) - 1
        if not lo <= value <= hi:
            raise Fail(f"{what}: the constant {value} does not fit {dt.name} ({dt.bits} bits: {lo}..{hi}); "
                       "cast to a wider type first")  # fmt: skip
    return value


@dataclass
class Builder:
    """Collects ops into nested blocks; ``loc`` is the source position stamped on new ops."""

    blocks: list[list[O.Op]] = field(default_factory=lambda: [[]])
    loc: O.Loc | None = None
    #: the variable the statement being built assigns to ("" if none): names the shared buffers it creates
    name_hint: str = ""

    # ------------------------------------------------------------- plumbing
    def emit(self, op: O.Op) -> None:
        self.blocks[-1].append(op)

    def push(self) -> None:
        self.blocks.append([])

    def pop(self) -> tuple[O.Op, ...]:
        return tuple(self.blocks.pop())

    def make(self, cls: type[O.Op], **fields: object) -> O.Op:
        try:
            op = cls(**fields, loc=self.loc)  # type: ignore[arg-type]
        except IRError as exc:
            raise Fail(str(exc).split(": ", 1)[-1]) from None
        self.emit(op)
        return op

    @staticmethod
    def new(t: TileType | SharedType | GlobalType, hint: str = "") -> Value:
        return Value(t, hint)

    # ------------------------------------------------------------ coercions
    @staticmethod
    def dtype(x: DValue, what: str) -> DType:
        if isinstance(x, DType):
            return x
        if isinstance(x, str):
            try:
                return resolve_dtype(x)
            except IRError as exc:
                raise Fail(f"{what}: {exc}") from None
        raise Fail(f"{what} must be a dtype, got {describe(x)}")

    @staticmethod
    def const_int(x: DValue, what: str) -> int:
        if isinstance(x, bool) or not isinstance(x, int):
            if isinstance(x, Expr):
                raise Fail(f"{what} must be a constexpr int, got {describe(x)}")
            raise Fail(f"{what} must be an int, got {describe(x)}")
        return x

    def shape(self, x: DValue, what: str) -> tuple[int, ...]:
        items = x if isinstance(x, tuple | list) else (x,)
        out = tuple(self.const_int(s, what) for s in items)
        if not out or any(s <= 0 for s in out):
            raise Fail(f"{what} must be positive constexpr ints, got {list(out)}")
        return out

    def expr(self, x: DValue, what: str) -> Expr:
        """A scalar expression from a runtime scalar or a Python number."""
        if isinstance(x, Expr):
            return x
        if isinstance(x, bool):
            return Const(x, BOOL)
        if isinstance(x, int):
            return Const(x, INT32 if -(2**31) <= x < 2**31 else INT64)
        if isinstance(x, float):
            return Const(x, _F32)
        raise Fail(f"{what} must be a scalar, got {describe(x)}")

    def index(self, x: DValue, what: str) -> Expr:
        e = self.expr(x, what)
        if e.dtype not in (INT32, INT64):
            raise Fail(f"{what} must be an int32/int64 scalar, got {describe(x)}")
        return e

    def tile(self, x: DValue, what: str) -> Value:
        if not isinstance(x, Value) or not isinstance(x.type, TileType):
            raise Fail(f"{what} must be a tile, got {describe(x)}")
        return x

    # ------------------------------------------------------------ scalars
    def scalar_cast(self, e: Expr, dt: DType) -> Expr:
        return e if e.dtype == dt else simplify(Cast(e, dt))

    def scalar_binary(self, op: str, a: DValue, b: DValue, sym: str) -> Expr:
        ea, eb = self.expr(a, "operand"), self.expr(b, "operand")
        if ea.dtype != eb.dtype:
            # A Python literal takes the other side's type; otherwise int32 widens to int64.
            if is_constexpr(a) and not (isinstance(a, float) and eb.dtype.is_int):
                ea = Const(literal_fits(a, eb.dtype, f"'{sym}'"), eb.dtype)  # type: ignore[arg-type]
            elif is_constexpr(b) and not (isinstance(b, float) and ea.dtype.is_int):
                eb = Const(literal_fits(b, ea.dtype, f"'{sym}'"), ea.dtype)  # type: ignore[arg-type]
            else:
                try:
                    t = sem.promote(ea.dtype, eb.dtype)
                except IRError:
                    raise Fail(f"'{sym}' between {describe(a)} and {describe(b)}: cast one of them explicitly") from None
                ea, eb = self.scalar_cast(ea, t), self.scalar_cast(eb, t)
        if op == "div" and sym == "/" and ea.dtype.is_int:
            raise Fail("'/' on integers; use '//' (which truncates toward zero, as C does)")
        if op == "div" and sym == "//" and ea.dtype.is_float:
            raise Fail("'//' on floats is not supported; use '/' and lowbit.round")
        try:
            return simplify(Binary(op, ea, eb))
        except IRError as exc:
            raise Fail(f"'{sym}': {str(exc).split(': ', 1)[-1]}") from None

    def scalar_unary(self, op: str, a: DValue) -> Expr:
        try:
            return simplify(Unary(op, self.expr(a, "operand")))
        except IRError as exc:
            raise Fail(str(exc)) from None

    # -------------------------------------------------------------- tiles
    def full(self, shape: tuple[int, ...], dt: DType, value: DValue, layout: Layout | None = None, hint: str = "") -> Value:
        if is_constexpr(value) and dt.is_int:
            literal_fits(value, dt, "fill value")
        e = self.expr(value, "fill value")
        if is_constexpr(value) and not isinstance(value, float) and not is_bool(e.dtype) and dt.is_float:
            e = Const(float(value), _F32)  # type: ignore[arg-type]
        r = self.new(TileType(dt, shape, layout), hint)
        self.make(O.Full, result=r, value=e)
        return r

    def cast(self, v: Value, dt: DType, hint: str = "") -> Value:
        t = v.type
        assert isinstance(t, TileType)  # noqa: S101
        if t.dtype == dt:
            return v
        r = self.new(TileType(dt, t.shape), hint)
        self.make(O.Cast, result=r, x=v)
        return r

    def reshape(self, v: Value, shape: tuple[int, ...]) -> Value:
        t = v.type
        assert isinstance(t, TileType)  # noqa: S101
        if t.shape == shape:
            return v
        r = self.new(TileType(t.dtype, shape))
        self.make(O.Reshape, result=r, x=v)
        return r

    def broadcast_to(self, v: Value, shape: tuple[int, ...]) -> Value:
        t = v.type
        assert isinstance(t, TileType)  # noqa: S101
        if len(t.shape) < len(shape):
            v = self.reshape(v, (1,) * (len(shape) - len(t.shape)) + t.shape)
            t = v.type  # type: ignore[assignment]
        if t.shape == shape:
            return v
        r = self.new(TileType(t.dtype, shape))
        self.make(O.Broadcast, result=r, x=v)
        return r

    @staticmethod
    def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
        n = max(len(a), len(b))
        pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
        out = []
        for x, y in zip(pa, pb):
            if x != y and 1 not in (x, y):
                raise Fail(f"shapes {list(a)} and {list(b)} do not broadcast")
            out.append(max(x, y))
        return tuple(out)

    def operand_type(self, x: DValue) -> DType | None:
        """The dtype of a tile or runtime scalar operand; None for Python literals (weakly typed)."""
        if isinstance(x, Value):
            return self.tile(x, "operand").type.dtype  # type: ignore[union-attr]
        if isinstance(x, Expr):
            return x.dtype
        if isinstance(x, bool | int | float):
            return None
        raise Fail(f"operand must be a tile or a scalar, got {describe(x)}")

    def tile_binary(self, op: str, a: DValue, b: DValue, sym: str) -> Value:
        ta, tb = self.operand_type(a), self.operand_type(b)
        if ta is None or tb is None:
            known = ta or tb
            assert known is not None  # noqa: S101
            lit = a if ta is None else b
            if isinstance(lit, float) and not known.is_float:
                raise Fail(f"'{sym}': float constant {lit!r} with an integer tile of {known.name}; cast the tile first")
            dt = known
            literal_fits(lit, dt, f"'{sym}'")
        else:
            try:
                dt = sem.promote(ta, tb)
            except IRError as exc:
                raise Fail(f"'{sym}': {str(exc).split(': ', 1)[-1]}") from None
        if op == "div" and sym == "/" and dt.is_int:
            raise Fail("'/' on integer tiles; use '//' (truncating toward zero)")
        if op == "div" and sym == "//" and dt.is_float:
            raise Fail("'//' on float tiles is not supported; use '/' and lowbit.round")
        if not (is_arith(dt) or is_bool(dt)):
            raise Fail(f"'{sym}' is not defined on {dt.name} tiles; cast them to f16/f32 or an integer type first")
        shapes = [x.type.shape for x in (a, b) if isinstance(x, Value)]
        shape = shapes[0] if len(shapes) == 1 else self.broadcast_shapes(shapes[0], shapes[1])  # type: ignore[union-attr]
        va = self._as_tile(a, dt, shape)
        vb = self._as_tile(b, dt, shape)
        r = self.new(TileType(BOOL if op in ("eq", "ne", "lt", "le", "gt", "ge") else dt, shape))
        self.make(O.ElementwiseBinary, result=r, op=op, a=va, b=vb)
        return r

    def _as_tile(self, x: DValue, dt: DType, shape: tuple[int, ...]) -> Value:
        if isinstance(x, Value):
            return self.broadcast_to(self.cast(x, dt), shape)
        return self.full(shape, dt, x)

    def unary(self, op: str, x: Value) -> Value:
        t = x.type
        assert isinstance(t, TileType)  # noqa: S101
        r = self.new(TileType(t.dtype, t.shape))
        self.make(O.ElementwiseUnary, result=r, op=op, x=x)
        return r

