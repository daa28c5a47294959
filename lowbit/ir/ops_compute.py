"""VM compute ops: constants, casts, views, element-wise math, dot, reduce, lookup, and tile re-arrangements.

Element-wise ops take tiles of *equal* shape and dtype; the DSL inserts
``broadcast``/``full``/``cast`` to get there, so lowering never has to guess.
Re-exported by :mod:`lowbit.ir.ops`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lowbit.dtypes import DType
from lowbit.ir.expr import Expr
from lowbit.ir.op_base import Op, OpSpec
from lowbit.ir.op_base import describe as _describe
from lowbit.ir.types import BOOL, INT32, SharedType, TileType, Value, is_arith, is_bool

__all__ = ["ARITH_UNARY", "BINARY_TILE_OPS", "DOT_FP8", "REDUCE_KINDS", "Arange", "Broadcast", "Cast", "Dot",
           "CONVERT_ROUTES", "ConvertLayout", "ElementwiseBinary", "ElementwiseUnary", "Fma", "Full", "Lookup", "Permute", "Reduce",
           "Reshape", "Slice", "THREAD_INDEX_KINDS", "ThreadIndex", "View", "Where", "view_shape"]  # fmt: skip


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
    spec = OpSpec(results=("result",), operands=("value",))

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
    spec = OpSpec(results=("result",), attrs=("start",))

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
    spec = OpSpec(results=("result",), operands=("x",))

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
    spec = OpSpec(results=("result",), operands=("x",), attrs=("axis",))

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
    spec = OpSpec(results=("result",), operands=("x",), attrs=("op",), mnemonic_attr="op")

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
    spec = OpSpec(results=("result",), operands=("a", "b"), attrs=("op",), mnemonic_attr="op")

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
    spec = OpSpec(results=("result",), operands=("cond", "a", "b"))

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
    spec = OpSpec(results=("result",), operands=("a", "b", "c"))

    def __post_init__(self) -> None:
        ts = [self.tile(v, w) for v, w in ((self.a, "a"), (self.b, "b"), (self.c, "c"))]
        if len({(t.dtype, t.shape) for t in ts}) != 1 or not ts[0].dtype.is_float or not is_arith(ts[0].dtype):
            raise self.fail(f"operands must be float tiles of one type, got {', '.join(map(str, ts))}")
        self.check_result(self.result, TileType(ts[0].dtype, ts[0].shape))


#: The result dtypes of a ``dequant``: the 16-bit floats tensor cores take.
DEQUANT_RESULTS = ("f16", "bf16")


@dataclass(frozen=True, eq=False)
class Dequant(Op):
    """Weight codes to f16/bf16: ``cast(((f32(codes) * factor) - f32(zero)) * f32(scale), result)``.

    Every step is the f32 operation it names (the interpreter computes exactly
    that), so a ``dequant`` means what the chain of casts, ``mul``, ``sub`` and
    ``mul`` it replaces means.  ``select_instructions`` creates it from that
    chain; the lowering is free to compute it any way that gives the same
    bits -- two or more codes per instruction, magic-exponent tricks -- and
    falls back to the f32 chain where no exact packed form exists.
    ``zero`` and ``scale`` are optional and have the codes' shape (a
    broadcast stays a separate op); ``factor`` is a power of two
    (1.0: none).  ``table`` (optional, codebook codes only) is a shared
    buffer a ``pair_table`` filled with the chain's values before the scale
    (:mod:`lowbit.transforms._lower_codebook`): where the lowering may look
    two codes up at once; ``lookup`` ``"reg"`` (codebook codes, no ``table``)
    asks for the register table read with ``prmt`` instead.  Neither
    changes what the op means.
    """

    result: Value
    codes: Value
    zero: Value | None = None
    scale: Value | None = None
    factor: float = 1.0
    table: Value | None = None
    lookup: str = ""
    opname = "dequant"
    spec = OpSpec(results=("result",), operands=("codes",), optional=("zero", "scale", "table"),
                  attrs=("factor", "lookup"))  # fmt: skip

    def __post_init__(self) -> None:
        t = self.tile(self.codes, "codes")
        if is_bool(t.dtype) or t.dtype.bits > 8:
            raise self.fail(f"codes must be a tile of a format of at most 8 bits, got {t}")
        for v, what in ((self.zero, "zero"), (self.scale, "scale")):
            if v is not None:
                tv = self.tile(v, what)
                if tv.shape != t.shape or is_bool(tv.dtype) or tv.dtype.bits > 32:
                    raise self.fail(f"{what} must be a tile of the codes' shape {list(t.shape)} with at most "
                                    f"32-bit elements, got {tv}")  # fmt: skip
        if self.scale is not None and not self.scale.type.dtype.is_float:  # type: ignore[union-attr]
            raise self.fail(f"scale must be a float tile, got {self.scale.type}")
        f = float(self.factor)
        if not (f > 0 and f == 2.0 ** round(math.log2(f))):
            raise self.fail(f"factor must be a power of two, got {self.factor!r}")
        r = self.tile(self.result, "result")
        if r.dtype.name not in DEQUANT_RESULTS:
            raise self.fail(f"result must be f16 or bf16, got {r}")
        self.check_result(self.result, TileType(r.dtype, t.shape))
        if self.lookup not in ("", "reg") or self.lookup and (self.table is not None or t.dtype.bits != 4):
            raise self.fail(f"lookup must be '' or 'reg' (4-bit codebook codes, no table), got {self.lookup!r}")
        if self.table is not None:
            tt = self.table.type
            n = 1 << t.dtype.bits
            sizes = {w * n * n * r for w in (1, 2) for r in (1, 2, 4, 8, 16, 32)}  # (f16x2 or 2 x f32) x copies
            if not isinstance(tt, SharedType) or tt.dtype != INT32 or len(tt.shape) != 1 or tt.shape[0] not in sizes:
                raise self.fail(f"table must be a shared<int32, [{n * n} * c]> or [{2 * n * n} * c] pair table of the "
                                f"{n} codes (c copies, a power of two up to 32), got {tt}")  # fmt: skip


#: Storage formats a dot takes directly (tensor cores read them): their products are exact in f32.
DOT_FP8 = ("e4m3fn", "e5m2")


@dataclass(frozen=True, eq=False)
class Dot(Op):
    """``c + a @ b`` on [M, K] x [K, N] tiles; products exact, accumulated in ``c``'s dtype.

    a and b have one dtype (f16, bf16, f32, an integer type, the FP8
    formats e4m3fn / e5m2, whose products are exact in f32, or a bipolar
    format, whose codes stand for odd integers); ``c`` is f32
    (or f16) for floats, f32 for FP8 and int32 for integers.  ``inst`` is instruction
    selection's choice (``mma.m16n8k16.f32.f16``: tensor cores, with the
    operands in that instruction's fragment layouts); empty until selected.
    ``interleave`` asks for fragments whose N columns are interleaved within
    each warp (a thread's columns adjacent: wide loads of a B computed in
    registers, wide stores of C); it chooses where elements sit, never what
    the dot computes.
    """

    result: Value
    a: Value
    b: Value
    c: Value
    inst: str = ""
    interleave: bool = False
    opname = "dot"
    spec = OpSpec(results=("result",), operands=("a", "b", "c"), attrs=("inst", "interleave"))

    def __post_init__(self) -> None:
        ta, tb, tc = self.tile(self.a, "a"), self.tile(self.b, "b"), self.tile(self.c, "c")
        if len(ta.shape) != 2 or len(tb.shape) != 2 or len(tc.shape) != 2:
            raise self.fail(f"operands must be 2-D tiles, got {ta}, {tb}, {tc}")
        if ta.shape[1] != tb.shape[0] or tc.shape != (ta.shape[0], tb.shape[1]):
            raise self.fail(
                f"shapes do not chain: a {list(ta.shape)} x b {list(tb.shape)} -> c {list(tc.shape)}"
            )
        fp8 = ta.dtype.name in DOT_FP8
        bipolar = ta.dtype.name.startswith("bipolar")  # codes of odd integers: their values multiply
        if ta.dtype != tb.dtype or not (is_arith(ta.dtype) or fp8 or bipolar):
            raise self.fail(f"a and b must share a numeric dtype (or an FP8 or bipolar format), got {ta.dtype.name} "
                            f"and {tb.dtype.name}")  # fmt: skip
        want = ("f32",) if fp8 else ("f32", "f16") if ta.dtype.is_float else ("int32",)
        if tc.dtype.name not in want:
            raise self.fail(f"accumulator of a {ta.dtype.name} dot must be {' or '.join(want)}, got {tc.dtype.name}")
        self.check_result(self.result, tc)
        if not isinstance(self.inst, str) or (self.inst and not self.inst.startswith("mma.")):
            raise self.fail(f"inst must be '' or an mma instruction name, got {self.inst!r}")
        if not isinstance(self.interleave, bool):
            raise self.fail(f"interleave must be a bool, got {self.interleave!r}")


@dataclass(frozen=True, eq=False)
class Reduce(Op):
    """Reduce ``x`` along ``axis`` with ``kind`` (sum/max/min); the axis stays with extent 1."""

    result: Value
    x: Value
    kind: str
    axis: int
    opname = "reduce"
    spec = OpSpec(results=("result",), operands=("x",), attrs=("kind", "axis"))

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
    spec = OpSpec(results=("result",), operands=("table", "index"))

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
    spec = OpSpec(results=("result",), operands=("x",))

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
    spec = OpSpec(results=("result",), operands=("x",))

    def __post_init__(self) -> None:
        t, r = self.tile(self.x, "operand"), self.tile(self.result, "result")
        if t.size != r.size:
            raise self.fail(f"cannot reshape {list(t.shape)} ({t.size} elements) to {list(r.shape)}")
        self.check_result(self.result, TileType(t.dtype, r.shape))


# ------------------------------------------------------------ layouts and re-arrangements


#: How a selected conversion moves data: "" not selected yet, "regs" within each thread, "shfl" within warps.
#: (A conversion through shared memory is not a route: instruction selection writes it out as VM ops.)
CONVERT_ROUTES = ("", "regs", "shfl")


@dataclass(frozen=True, eq=False)
class ConvertLayout(Op):
    """The same tile in another register layout (the result's): values unchanged, data may move between threads.

    Layout inference inserts it where a producer's layout and a consumer's
    differ; instruction selection then picks its route (nothing, register
    moves, warp shuffles, or an explicit shared-memory round trip).  The
    interpreter treats it as the identity.
    """

    result: Value
    x: Value
    route: str = ""
    opname = "convert_layout"
    spec = OpSpec(results=("result",), operands=("x",), attrs=("route",))

    def __post_init__(self) -> None:
        t = self.tile(self.x, "operand")
        self.check_result(self.result, TileType(t.dtype, t.shape))
        if self.result.type.layout is None:  # type: ignore[union-attr]
            raise self.fail("the result must carry the layout it converts to")
        if self.route not in CONVERT_ROUTES:
            raise self.fail(f"route must be one of {CONVERT_ROUTES}, got {self.route!r}")


@dataclass(frozen=True, eq=False)
class Permute(Op):
    """Reorder the dimensions: result dimension ``i`` is operand dimension ``order[i]`` (a transpose in 2-D)."""

    result: Value
    x: Value
    order: tuple[int, ...]
    opname = "permute"
    spec = OpSpec(results=("result",), operands=("x",), attrs=("order",))

    def __post_init__(self) -> None:
        t = self.tile(self.x, "operand")
        if not isinstance(self.order, tuple) or sorted(self.order) != list(range(len(t.shape))):
            raise self.fail(f"order {self.order!r} is not a permutation of {len(t.shape)} dimensions")
        self.check_result(self.result, TileType(t.dtype, tuple(t.shape[d] for d in self.order)))


@dataclass(frozen=True, eq=False)
class Slice(Op):
    """The static sub-tile of the result's shape starting at ``starts`` (constant per dimension)."""

    result: Value
    x: Value
    starts: tuple[int, ...]
    opname = "slice"
    spec = OpSpec(results=("result",), operands=("x",), attrs=("starts",))

    def __post_init__(self) -> None:
        t = self.tile(self.x, "operand")
        r = self.tile(self.result, "result")
        if (not isinstance(self.starts, tuple) or len(self.starts) != len(t.shape)
                or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.starts)):  # fmt: skip
            raise self.fail(f"starts {self.starts!r} must be {len(t.shape)} ints")
        if len(r.shape) != len(t.shape) or any(s < 0 or s + n > m for s, n, m in zip(self.starts, r.shape, t.shape)):
            raise self.fail(f"a {list(r.shape)} slice at {list(self.starts)} does not fit in {list(t.shape)}")
        self.check_result(self.result, TileType(t.dtype, r.shape))


THREAD_INDEX_KINDS = ("lane", "warp")


@dataclass(frozen=True, eq=False)
class ThreadIndex(Op):
    """An int32 tile whose every element is the lane (0..31) or warp index of the thread holding it.

    The value depends on where elements sit, so the result must carry an
    explicit, injective register layout over the block's threads (each
    element held by exactly one thread).
    """

    result: Value
    kind: str
    opname = "thread_index"
    spec = OpSpec(results=("result",), attrs=("kind",))

    def __post_init__(self) -> None:
        t = self.tile(self.result, "result")
        if self.kind not in THREAD_INDEX_KINDS:
            raise self.fail(f"kind must be one of {', '.join(THREAD_INDEX_KINDS)}, got {self.kind!r}")
        if t.dtype != INT32 or t.layout is None:
            raise self.fail(f"the result must be an int32 tile with an explicit layout, got {t}")
        if not getattr(t.layout, "is_injective", False):
            raise self.fail(f"the layout {t.layout} holds some element in several threads: their indices differ")
