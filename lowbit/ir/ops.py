"""VM instructions: one frozen dataclass per op, each validating itself.

An op is created once and never changes; ops compare by identity.  Every
constructor checks its operands' types and raises :class:`IRError` naming the
op and its source location, so an ill-typed op cannot exist -- the parser,
the DSL and later passes all build ops through these constructors.  What a
single op cannot check (values defined before use, scoping of loop bodies)
is the verifier's job (:mod:`lowbit.ir.verifier`).

Conventions
* Results are :class:`~lowbit.ir.types.Value` s (tiles, shared buffers,
  global views) or :class:`~lowbit.ir.expr.Var` s (scalars).
* Element-wise ops take tiles of *equal* shape and dtype; the DSL inserts
  ``broadcast``/``full``/``cast`` to get there, so lowering never has to guess.
* Scalars (offsets, bounds, loop limits) are :class:`~lowbit.ir.expr.Expr`.
* ``loc`` (keyword-only, optional) is the DSL source position to blame.

The meaning of each op is in ``docs/dsl.md`` and, executably, in
:mod:`lowbit.interp`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lowbit.dtypes import DType
from lowbit.errors import IRError
from lowbit.ir.expr import Expr, Scalar, Var
from lowbit.ir.types import BOOL, INT32, GlobalType, PointerType, SharedType, TileType, Value, is_arith, is_bool

__all__ = [
    "ARITH_UNARY",
    "BINARY_TILE_OPS",
    "OP_CLASSES",
    "REDUCE_KINDS",
    "AllocShared",
    "Arange",
    "Barrier",
    "Broadcast",
    "Cast",
    "CommitGroup",
    "CopyAsync",
    "Dot",
    "ElementwiseBinary",
    "ElementwiseUnary",
    "Fma",
    "For",
    "FreeShared",
    "Full",
    "GlobalView",
    "If",
    "LoadGlobal",
    "LoadShared",
    "Loc",
    "Lookup",
    "NumPrograms",
    "Op",
    "Print",
    "ProgramId",
    "Reduce",
    "Reshape",
    "StoreGlobal",
    "StoreShared",
    "View",
    "WaitGroup",
    "Where",
]


@dataclass(frozen=True)
class Loc:
    """A source position: file, 1-based line, 1-based column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


Carried = Var | Value  # what loops and ifs carry: scalars (Var) or values
CarriedIn = Expr | Value  # what flows into them: scalar expressions or values


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all instructions."""

    loc: Loc | None = field(default=None, kw_only=True)

    opname = "op"

    def fail(self, message: str) -> IRError:
        where = f" at {self.loc}" if self.loc is not None else ""
        return IRError(f"{self.opname}{where}: {message}")

    def tile(self, v: object, what: str) -> TileType:
        if not isinstance(v, Value) or not isinstance(v.type, TileType):
            raise self.fail(f"{what} must be a register tile, got {_describe(v)}")
        return v.type

    def check_result(self, result: Value, expected: TileType) -> None:
        if not isinstance(result, Value) or not isinstance(result.type, TileType):
            raise self.fail(f"result must be a register tile, got {_describe(result)}")
        got = result.type
        if got.dtype != expected.dtype or got.shape != expected.shape:
            raise self.fail(f"result type {got} does not match the inferred {expected}")

    def index_exprs(self, exprs: tuple[Expr, ...], what: str, n: int) -> None:
        if not isinstance(exprs, tuple) or len(exprs) != n:
            raise self.fail(f"{what} needs {n} index expressions, got {exprs!r}")
        for e in exprs:
            if not isinstance(e, Expr) or e.dtype.name not in ("int32", "int64"):
                raise self.fail(f"{what} must be int32/int64 scalars, got {_describe(e)}")


def _describe(v: object) -> str:
    if isinstance(v, Value):
        return str(v.type)
    if isinstance(v, Expr):
        return f"a {v.dtype.name} scalar"
    return type(v).__name__


def _global(op: Op, v: object, what: str) -> GlobalType:
    if not isinstance(v, Value) or not isinstance(v.type, GlobalType):
        raise op.fail(f"{what} must be a global view, got {_describe(v)}")
    return v.type


def _shared(op: Op, v: object, what: str) -> SharedType:
    if not isinstance(v, Value) or not isinstance(v.type, SharedType):
        raise op.fail(f"{what} must be a shared buffer, got {_describe(v)}")
    return v.type


def _mask(op: Op, mask: Value | None, shape: tuple[int, ...]) -> None:
    if mask is None:
        return
    t = op.tile(mask, "mask")
    if not is_bool(t.dtype):
        raise op.fail(f"mask must be a bool tile, got {t}")
    if t.shape != shape:
        raise op.fail(f"mask shape {list(t.shape)} does not match the tile shape {list(shape)}")


# --------------------------------------------------------------------- queries


@dataclass(frozen=True, eq=False)
class ProgramId(Op):
    """The block's index along grid ``axis`` (0, 1, 2) as an int32 scalar."""

    result: Var
    axis: int
    opname = "program_id"

    def __post_init__(self) -> None:
        if self.axis not in (0, 1, 2) or self.result.dtype != INT32:
            raise self.fail(f"axis must be 0, 1 or 2 and the result int32 (axis={self.axis})")


@dataclass(frozen=True, eq=False)
class NumPrograms(Op):
    """The grid's extent along ``axis`` as an int32 scalar."""

    result: Var
    axis: int
    opname = "num_programs"

    def __post_init__(self) -> None:
        if self.axis not in (0, 1, 2) or self.result.dtype != INT32:
            raise self.fail(f"axis must be 0, 1 or 2 and the result int32 (axis={self.axis})")


# ---------------------------------------------------------------------- memory


@dataclass(frozen=True, eq=False)
class GlobalView(Op):
    """A strided view of ``ptr``'s memory with element ``result.type.dtype`` (may be a few bits).

    Element ``i`` (a multi-index) lives at bit ``sum(i_d * strides_d) * bits``
    from the pointer; ``shape`` bounds every masked load and store.
    """

    result: Value
    ptr: Value
    shape: tuple[Expr, ...]
    strides: tuple[Expr, ...]
    opname = "global_view"

    def __post_init__(self) -> None:
        if not isinstance(self.ptr, Value) or not isinstance(self.ptr.type, PointerType):
            raise self.fail(f"the base must be a pointer parameter, got {_describe(self.ptr)}")
        g = _global(self, self.result, "result")
        self.index_exprs(self.shape, "shape", g.ndim)
        self.index_exprs(self.strides, "strides", g.ndim)


@dataclass(frozen=True, eq=False)
class AllocShared(Op):
    """Allocate a shared buffer (contents undefined until written)."""

    result: Value
    opname = "alloc_shared"

    def __post_init__(self) -> None:
        _shared(self, self.result, "result")


@dataclass(frozen=True, eq=False)
class FreeShared(Op):
    """End of a shared buffer's lifetime (its memory may be reused after this)."""

    buf: Value
    opname = "free_shared"

    def __post_init__(self) -> None:
        _shared(self, self.buf, "operand")


@dataclass(frozen=True, eq=False)
class LoadGlobal(Op):
    """Read the tile at ``offsets`` of ``src``; elements outside ``src``'s shape or off ``mask`` read ``other``."""

    result: Value
    src: Value
    offsets: tuple[Expr, ...]
    mask: Value | None = None
    other: Scalar = 0
    opname = "load_global"

    def __post_init__(self) -> None:
        g = _global(self, self.src, "source")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        t = self.tile(self.result, "result")
        if t.dtype != g.dtype or len(t.shape) != g.ndim:
            raise self.fail(f"result {t} does not match the view {g}")
        _mask(self, self.mask, t.shape)


@dataclass(frozen=True, eq=False)
class StoreGlobal(Op):
    """Write ``value`` at ``offsets`` of ``dst``; elements outside its shape or off ``mask`` are skipped."""

    dst: Value
    value: Value
    offsets: tuple[Expr, ...]
    mask: Value | None = None
    opname = "store_global"

    def __post_init__(self) -> None:
        g = _global(self, self.dst, "destination")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        t = self.tile(self.value, "value")
        if t.dtype != g.dtype or len(t.shape) != g.ndim:
            raise self.fail(f"value {t} does not match the view {g}")
        _mask(self, self.mask, t.shape)


def _sub_tile(op: Op, tile: TileType, buf: SharedType, offsets: tuple[Expr, ...]) -> None:
    op.index_exprs(offsets, "offsets", len(buf.shape))
    if tile.dtype != buf.dtype or len(tile.shape) != len(buf.shape):
        raise op.fail(f"tile {tile} does not match the buffer {buf}")
    if any(a > b for a, b in zip(tile.shape, buf.shape)):
        raise op.fail(f"tile {tile} is larger than the buffer {buf}")


@dataclass(frozen=True, eq=False)
class LoadShared(Op):
    """Read a tile from a shared buffer at ``offsets`` (must lie inside the buffer)."""

    result: Value
    src: Value
    offsets: tuple[Expr, ...]
    opname = "load_shared"

    def __post_init__(self) -> None:
        _sub_tile(self, self.tile(self.result, "result"), _shared(self, self.src, "source"), self.offsets)


@dataclass(frozen=True, eq=False)
class StoreShared(Op):
    """Write a tile into a shared buffer at ``offsets`` (must lie inside the buffer)."""

    dst: Value
    value: Value
    offsets: tuple[Expr, ...]
    opname = "store_shared"

    def __post_init__(self) -> None:
        _sub_tile(self, self.tile(self.value, "value"), _shared(self, self.dst, "destination"), self.offsets)


@dataclass(frozen=True, eq=False)
class CopyAsync(Op):
    """Start copying the ``dst``-shaped tile at ``offsets`` of ``src`` into ``dst``.

    Out-of-bounds (or masked-off) elements become zero.  The data may be read
    only after a ``commit`` of this copy's group and a ``wait`` that covers it
    (and a barrier when other threads read it).
    """

    dst: Value
    src: Value
    offsets: tuple[Expr, ...]
    mask: Value | None = None
    opname = "copy_async"

    def __post_init__(self) -> None:
        s = _shared(self, self.dst, "destination")
        g = _global(self, self.src, "source")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        if s.dtype != g.dtype or len(s.shape) != g.ndim:
            raise self.fail(f"buffer {s} does not match the view {g}")
        _mask(self, self.mask, s.shape)


@dataclass(frozen=True, eq=False)
class CommitGroup(Op):
    """Close the group of async copies issued since the last commit."""

    opname = "commit"


@dataclass(frozen=True, eq=False)
class WaitGroup(Op):
    """Wait until at most ``pending`` committed groups are still in flight."""

    pending: int = 0
    opname = "wait"

    def __post_init__(self) -> None:
        if not isinstance(self.pending, int) or self.pending < 0:
            raise self.fail(f"pending must be a non-negative int, got {self.pending!r}")


@dataclass(frozen=True, eq=False)
class Barrier(Op):
    """All threads of the block reach this point before any goes on (``bar.sync 0``)."""

    opname = "barrier"


# --------------------------------------------------------------------- compute

ARITH_UNARY = ("neg", "abs", "exp2", "log2", "sqrt", "rsqrt", "round_rn", "round_rz", "round_rd", "round_ru")
_FLOAT_UNARY = ("exp2", "log2", "sqrt", "rsqrt", "round_rn", "round_rz", "round_rd", "round_ru")
BINARY_TILE_OPS = (
    "add", "sub", "mul", "div", "mod", "min", "max",
    "and", "or", "xor", "shl", "shr",
    "eq", "ne", "lt", "le", "gt", "ge",
)  # fmt: skip
_COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")
REDUCE_KINDS = ("sum", "max", "min")


@dataclass(frozen=True, eq=False)
class Full(Op):
    """A tile whose every element is scalar ``value`` converted to the tile's dtype."""

    result: Value
    value: Expr
    opname = "full"

    def __post_init__(self) -> None:
        self.tile(self.result, "result")
        if not isinstance(self.value, Expr):
            raise self.fail(f"value must be a scalar expression, got {_describe(self.value)}")


@dataclass(frozen=True, eq=False)
class Arange(Op):
    """The int32 tile ``[start, start + n)`` with ``n`` the result's only extent."""

    result: Value
    start: int = 0
    opname = "arange"

    def __post_init__(self) -> None:
        t = self.tile(self.result, "result")
        if t.dtype != INT32 or len(t.shape) != 1:
            raise self.fail(f"result must be a 1-D int32 tile, got {t}")


@dataclass(frozen=True, eq=False)
class Cast(Op):
    """Convert every element to the result's dtype (rules: :mod:`lowbit.ir.semantics`)."""

    result: Value
    x: Value
    opname = "cast"

    def __post_init__(self) -> None:
        t = self.tile(self.x, "operand")
        self.check_result(self.result, TileType(self.tile(self.result, "result").dtype, t.shape))


def view_shape(src: TileType, dt: DType, axis: int) -> tuple[int, ...] | str:
    """Shape of ``src`` reinterpreted as ``dt`` along ``axis``, or why it cannot be."""
    if not -len(src.shape) <= axis < len(src.shape):
        return f"axis {axis} is out of range for a rank-{len(src.shape)} tile"
    ax = axis % len(src.shape)
    total = src.shape[ax] * src.dtype.bits
    if total % dt.bits:
        return (
            f"{src.shape[ax]} x {src.dtype.name} ({total} bits along axis {ax}) is not a whole "
            f"number of {dt.name} ({dt.bits}-bit) elements"
        )
    shape = list(src.shape)
    shape[ax] = total // dt.bits
    return tuple(shape)


@dataclass(frozen=True, eq=False)
class View(Op):
    """Reinterpret the bits along ``axis``: the element stream is LSB-first, as ``lowbit.pack`` orders it."""

    result: Value
    x: Value
    axis: int = -1
    opname = "view"

    def __post_init__(self) -> None:
        t = self.tile(self.x, "operand")
        r = self.tile(self.result, "result")
        if is_bool(t.dtype) or is_bool(r.dtype):
            raise self.fail("bool tiles cannot be viewed (cast them to uint1)")
        shape = view_shape(t, r.dtype, self.axis)
        if isinstance(shape, str):
            raise self.fail(shape)
        self.check_result(self.result, TileType(r.dtype, shape))


@dataclass(frozen=True, eq=False)
class ElementwiseUnary(Op):
    """``op`` applied to each element: neg/abs (numbers), not (ints, bool), exp2/log2/sqrt/rsqrt/round_* (floats)."""

    result: Value
    op: str
    x: Value
    opname = "unary"

    def __post_init__(self) -> None:
        t = self.tile(self.x, "operand")
        if self.op not in ARITH_UNARY + ("not",):
            raise self.fail(f"unknown unary op {self.op!r}")
        if self.op == "not":
            ok = is_bool(t.dtype) or (is_arith(t.dtype) and t.dtype.is_int)
        elif self.op in _FLOAT_UNARY:
            ok = is_arith(t.dtype) and t.dtype.is_float
        else:
            ok = is_arith(t.dtype)
        if not ok:
            raise self.fail(f"{self.op} is not defined on {t.dtype.name}")
        self.check_result(self.result, TileType(t.dtype, t.shape))


@dataclass(frozen=True, eq=False)
class ElementwiseBinary(Op):
    """``a op b`` per element on tiles of one shape and dtype; comparisons give bool."""

    result: Value
    op: str
    a: Value
    b: Value
    opname = "binary"

    def __post_init__(self) -> None:
        ta, tb = self.tile(self.a, "lhs"), self.tile(self.b, "rhs")
        if self.op not in BINARY_TILE_OPS:
            raise self.fail(f"unknown binary op {self.op!r}")
        if ta.dtype != tb.dtype or ta.shape != tb.shape:
            raise self.fail(f"operands differ: {ta} vs {tb}")
        dt = ta.dtype
        if is_bool(dt):
            ok = self.op in ("and", "or", "xor", "eq", "ne")
        elif not is_arith(dt):
            ok = False
        elif dt.is_float:
            ok = self.op not in ("mod", "and", "or", "xor", "shl", "shr")
        else:
            ok = True
        if not ok:
            raise self.fail(f"{self.op} is not defined on {dt.name}")
        self.check_result(self.result, TileType(BOOL if self.op in _COMPARE else dt, ta.shape))


@dataclass(frozen=True, eq=False)
class Where(Op):
    """``cond ? a : b`` per element."""

    result: Value
    cond: Value
    a: Value
    b: Value
    opname = "where"

    def __post_init__(self) -> None:
        tc, ta, tb = self.tile(self.cond, "condition"), self.tile(self.a, "lhs"), self.tile(self.b, "rhs")
        if not is_bool(tc.dtype):
            raise self.fail(f"condition must be a bool tile, got {tc}")
        if ta.dtype != tb.dtype or not (tc.shape == ta.shape == tb.shape):
            raise self.fail(f"operands differ: {tc}, {ta}, {tb}")
        self.check_result(self.result, TileType(ta.dtype, ta.shape))


@dataclass(frozen=True, eq=False)
class Fma(Op):
    """``a * b + c`` per element, rounded once (floats)."""

    result: Value
    a: Value
    b: Value
    c: Value
    opname = "fma"

    def __post_init__(self) -> None:
        ts = [self.tile(v, w) for v, w in ((self.a, "a"), (self.b, "b"), (self.c, "c"))]
        if len({(t.dtype, t.shape) for t in ts}) != 1 or not ts[0].dtype.is_float or not is_arith(ts[0].dtype):
            raise self.fail(f"operands must be float tiles of one type, got {', '.join(map(str, ts))}")
        self.check_result(self.result, TileType(ts[0].dtype, ts[0].shape))


@dataclass(frozen=True, eq=False)
class Dot(Op):
    """``c + a @ b`` on [M, K] x [K, N] tiles; products exact, accumulated in ``c``'s dtype.

    a and b have one dtype (f16, bf16, f32, or an integer type); ``c`` is f32
    (or f16) for floats and int32 for integers.
    """

    result: Value
    a: Value
    b: Value
    c: Value
    opname = "dot"

    def __post_init__(self) -> None:
        ta, tb, tc = self.tile(self.a, "a"), self.tile(self.b, "b"), self.tile(self.c, "c")
        if len(ta.shape) != 2 or len(tb.shape) != 2 or len(tc.shape) != 2:
            raise self.fail(f"operands must be 2-D tiles, got {ta}, {tb}, {tc}")
        if ta.shape[1] != tb.shape[0] or tc.shape != (ta.shape[0], tb.shape[1]):
            raise self.fail(
                f"shapes do not chain: a {list(ta.shape)} x b {list(tb.shape)} -> c {list(tc.shape)}"
            )
        if ta.dtype != tb.dtype or not is_arith(ta.dtype):
            raise self.fail(f"a and b must share a numeric dtype, got {ta.dtype.name} and {tb.dtype.name}")
        want = ("f32", "f16") if ta.dtype.is_float else ("int32",)
        if tc.dtype.name not in want:
            raise self.fail(f"accumulator of a {ta.dtype.name} dot must be {' or '.join(want)}, got {tc.dtype.name}")
        self.check_result(self.result, tc)


@dataclass(frozen=True, eq=False)
class Reduce(Op):
    """Reduce ``x`` along ``axis`` with ``kind`` (sum/max/min); the axis stays with extent 1."""

    result: Value
    x: Value
    kind: str
    axis: int
    opname = "reduce"

    def __post_init__(self) -> None:
        t = self.tile(self.x, "operand")
        if self.kind not in REDUCE_KINDS or not is_arith(t.dtype):
            raise self.fail(f"cannot reduce {t.dtype.name} with {self.kind!r}")
        if not 0 <= self.axis < len(t.shape):
            raise self.fail(f"axis {self.axis} is out of range for {t}")
        shape = tuple(1 if i == self.axis else s for i, s in enumerate(t.shape))
        self.check_result(self.result, TileType(t.dtype, shape))


@dataclass(frozen=True, eq=False)
class Lookup(Op):
    """``table[index]`` per element: a gather from a small 1-D tile by integer codes."""

    result: Value
    table: Value
    index: Value
    opname = "lookup"

    def __post_init__(self) -> None:
        tt, ti = self.tile(self.table, "table"), self.tile(self.index, "index")
        if len(tt.shape) != 1:
            raise self.fail(f"table must be a 1-D tile, got {tt}")
        if not ti.dtype.is_int:
            raise self.fail(f"index must be an integer tile, got {ti}")
        self.check_result(self.result, TileType(tt.dtype, ti.shape))


@dataclass(frozen=True, eq=False)
class Broadcast(Op):
    """Repeat ``x`` along its extent-1 axes to the result's shape (same rank)."""

    result: Value
    x: Value
    opname = "broadcast"

    def __post_init__(self) -> None:
        t, r = self.tile(self.x, "operand"), self.tile(self.result, "result")
        if len(t.shape) != len(r.shape) or any(a not in (1, b) for a, b in zip(t.shape, r.shape)):
            raise self.fail(f"cannot broadcast {list(t.shape)} to {list(r.shape)}")
        self.check_result(self.result, TileType(t.dtype, r.shape))


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """The same elements in row-major order with a new shape."""

    result: Value
    x: Value
    opname = "reshape"

    def __post_init__(self) -> None:
        t, r = self.tile(self.x, "operand"), self.tile(self.result, "result")
        if t.size != r.size:
            raise self.fail(f"cannot reshape {list(t.shape)} ({t.size} elements) to {list(r.shape)}")
        self.check_result(self.result, TileType(t.dtype, r.shape))


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

    def __post_init__(self) -> None:
        for e in (self.start, self.stop, self.step):
            if not isinstance(e, Expr) or e.dtype != self.var.dtype or not e.dtype.is_int:
                raise self.fail(f"range bounds must be {self.var.dtype.name} scalars, got {_describe(e)}")
        _check_carried(self, "for", self.results, self.args, self.inits, self.yields)


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

    def __post_init__(self) -> None:
        if not isinstance(self.cond, Expr) or not is_bool(self.cond.dtype):
            raise self.fail(f"condition must be a bool scalar, got {_describe(self.cond)}")
        _check_carried(self, "if", self.results, self.then_yields, self.else_yields)


@dataclass(frozen=True, eq=False)
class Print(Op):
    """Print ``prefix`` and the values (interpreter only; the compiler drops it)."""

    prefix: str
    values: tuple[CarriedIn, ...]
    opname = "print"

    def __post_init__(self) -> None:
        for v in self.values:
            if not isinstance(v, Expr | Value):
                raise self.fail(f"cannot print {_describe(v)}")


#: Every instruction class; printer, parser, verifier and interpreter each have one entry per class.
OP_CLASSES: tuple[type[Op], ...] = (
    ProgramId, NumPrograms, GlobalView, AllocShared, FreeShared, LoadGlobal, StoreGlobal,
    LoadShared, StoreShared, CopyAsync, CommitGroup, WaitGroup, Barrier, Full, Arange, Cast,
    View, ElementwiseUnary, ElementwiseBinary, Where, Fma, Dot, Reduce, Lookup, Broadcast,
    Reshape, For, If, Print,
)  # fmt: skip
