"""The tile functions of the DSL (``lowbit.load``, ``lowbit.dot``, ...) and their lowering to ops.

Each public function here is a *stub*: its Python signature and docstring
are the documentation, and calling it outside a kernel raises.  Inside a
kernel the frontend binds the call's arguments to the stub's signature and
runs the stub's implementation (attached by :func:`_builtin`, in this same
module -- no registry that depends on import order) on the
:class:`~lowbit.dsl.builder.Builder`.
"""

from __future__ import annotations

import math

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from lowbit.dtypes import DType
from lowbit.dsl.builder import Builder, DValue, describe, is_constexpr
from lowbit.dsl.diagnostics import Fail
from lowbit.errors import DSLError, LowbitError
from lowbit.ir import ops as O
from lowbit.ir.expr import Const, Expr, Select, Var
from lowbit.ir.simplifier import simplify
from lowbit.ir.types import INT32, GlobalType, PointerType, SharedType, TileType, Value, is_bool, resolve_dtype

__all__ = [
    "BUILTIN_NAMES", "Constexpr", "PtrSpec", "abs", "arange", "atomic_add", "atomic_cas", "atomic_max",
    "atomic_min", "barrier", "broadcast", "cast", "cdiv",
    "commit", "constexpr", "convert_layout", "copy_async", "dot", "exp2", "expand_dims", "fma", "free", "full",
    "global_view", "implementation", "lane_id", "load", "log2", "lookup", "maximum", "minimum", "num_programs",
    "permute", "print", "program_id", "ptr", "reduce", "reshape", "round", "rsqrt", "shared", "sqrt",
    "static_assert", "static_range", "store", "transpose", "view", "wait", "warp_id", "where", "zeros",
]  # fmt: skip

Impl = Callable[..., DValue]
_IMPLS: dict[str, Impl] = {}


def _builtin(impl: Impl) -> Callable[[Callable[..., object]], Callable[..., object]]:
    def wrap(stub: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(stub)
        def outside(*args: object, **kwargs: object) -> object:
            raise DSLError(f"lowbit.{stub.__name__}() can only be called inside a @lowbit.kernel or @lowbit.func")

        outside.__lowbit_impl__ = impl  # type: ignore[attr-defined]
        outside.__lowbit_sig__ = inspect.signature(stub)  # type: ignore[attr-defined]
        return outside

    return wrap


def implementation(fn: object) -> tuple[Impl, inspect.Signature] | None:
    """(implementation, signature) when ``fn`` is a DSL builtin, else None."""
    impl = getattr(fn, "__lowbit_impl__", None)
    return (impl, fn.__lowbit_sig__) if impl is not None else None  # type: ignore[attr-defined]


# ------------------------------------------------------------------ annotations


@dataclass(frozen=True)
class PtrSpec:
    """The annotation ``lowbit.ptr(dtype)``: a pointer to global memory holding ``dtype`` elements.

    Python evaluates a parameter's annotation when the ``def`` runs, before
    the kernel exists, so a bad element type cannot raise there without a
    kernel line.  Then ``dtype`` is None and ``error`` says why; the kernel
    reports it as a :class:`~lowbit.errors.DSLError` at the parameter when it
    is first specialised or launched.
    """

    dtype: DType | None
    error: str = ""


def ptr(dtype: DType | str) -> PtrSpec:
    """Annotation of a pointer parameter: ``x: lowbit.ptr("f16")`` (or ``lowbit.ptr(T)`` for a constexpr T)."""
    if not isinstance(dtype, DType | str):
        return PtrSpec(None, f"lowbit.ptr() takes a dtype or a dtype name, got {type(dtype).__name__} {dtype!r}")
    try:
        return PtrSpec(resolve_dtype(dtype))
    except LowbitError as exc:
        return PtrSpec(None, f"lowbit.ptr({dtype!r}): {exc}")


class Constexpr:
    """The annotation ``lowbit.constexpr``: a compile-time parameter; each distinct value is its own program."""

    def __repr__(self) -> str:
        return "lowbit.constexpr"


constexpr = Constexpr()


def static_range(*args: int) -> range:
    """``for i in lowbit.static_range(n)``: a loop unrolled at compile time (constexpr bounds)."""
    raise DSLError("lowbit.static_range() can only be used as the iterable of a for loop in a kernel")


# -------------------------------------------------------------------- helpers


def _tile_t(v: Value) -> TileType:
    assert isinstance(v.type, TileType)  # noqa: S101
    return v.type


def _offsets(b: Builder, offsets: DValue, ndim: int, what: str) -> tuple[Expr, ...]:
    if offsets is None:
        return tuple(Const(0, INT32) for _ in range(ndim))
    items = offsets if isinstance(offsets, tuple | list) else (offsets,)
    if len(items) != ndim:
        raise Fail(f"{what}: {len(items)} offsets for a rank-{ndim} tensor")
    return tuple(b.index(o, "offset") for o in items)


def _mask(b: Builder, mask: DValue, shape: tuple[int, ...], what: str) -> Value | None:
    if mask is None:
        return None
    m = b.tile(mask, f"{what} mask")
    t = _tile_t(m)
    if not is_bool(t.dtype):
        raise Fail(f"{what}: the mask must be a bool tile, got {describe(m)}")
    try:
        if b.broadcast_shapes(t.shape, shape) != shape:
            raise Fail("")
    except Fail:
        raise Fail(f"{what}: mask shape {list(t.shape)} does not match the tile shape {list(shape)}") from None
    return b.broadcast_to(m, shape)


def _layout(layout: DValue) -> object:
    if isinstance(layout, Expr | Value):
        raise Fail(f"layout must be a constexpr layout value, got {describe(layout)}")
    return layout


# ------------------------------------------------------------------- queries


def _program_id(b: Builder, axis: DValue) -> DValue:
    v = Var(f"pid{b.const_int(axis, 'axis')}", INT32)
    b.make(O.ProgramId, result=v, axis=b.const_int(axis, "axis"))
    return v


@_builtin(_program_id)
def program_id(axis: int = 0) -> int:
    """This block's index along grid axis 0, 1 or 2 (an int32 scalar)."""


def _num_programs(b: Builder, axis: DValue) -> DValue:
    v = Var(f"nprog{b.const_int(axis, 'axis')}", INT32)
    b.make(O.NumPrograms, result=v, axis=b.const_int(axis, "axis"))
    return v


@_builtin(_num_programs)
def num_programs(axis: int = 0) -> int:
    """The grid's extent along axis 0, 1 or 2 (an int32 scalar)."""


def _cdiv(b: Builder, x: DValue, y: DValue) -> DValue:
    if is_constexpr(x) and is_constexpr(y):
        return -(-b.const_int(x, "cdiv") // b.const_int(y, "cdiv"))
    return b.scalar_binary("div", b.scalar_binary("sub", b.scalar_binary("add", x, y, "+"), 1, "-"), y, "//")


@_builtin(_cdiv)
def cdiv(x: int, y: int) -> int:
    """Ceiling division ``(x + y - 1) // y`` of non-negative ints."""


# -------------------------------------------------------------------- memory


def _global_view(b: Builder, ptr: DValue, shape: DValue, strides: DValue, dtype: DValue) -> DValue:
    if not isinstance(ptr, Value) or not isinstance(ptr.type, PointerType):
        raise Fail(f"global_view: the base must be a pointer parameter, got {describe(ptr)}")
    dims = shape if isinstance(shape, tuple | list) else (shape,)
    sh = tuple(b.index(s, "global_view shape") for s in dims)
    if strides is None:
        st: list[Expr] = [Const(1, INT32)]
        for s in reversed(sh[1:]):
            prev = st[0]
            # a product of two or more extents can pass 2^31 (e.g. 2 x 65536 x 65536): compute it in int64
            product = not (isinstance(prev, Const) and prev.value == 1)
            if prev.dtype != s.dtype or product:
                prev, s = b.scalar_cast(prev, resolve_dtype("int64")), b.scalar_cast(s, resolve_dtype("int64"))
            st.insert(0, simplify(b.scalar_binary("mul", prev, s, "*")))
        strd = tuple(st)
    else:
        items = strides if isinstance(strides, tuple | list) else (strides,)
        strd = tuple(b.index(s, "global_view strides") for s in items)
    if len(strd) != len(sh):
        raise Fail(f"global_view: {len(sh)} extents but {len(strd)} strides")
    dt = ptr.type.dtype if dtype is None else b.dtype(dtype, "global_view dtype")
    r = b.new(GlobalType(dt, len(sh)), ptr.hint)
    b.make(O.GlobalView, result=r, ptr=ptr, shape=sh, strides=strd)
    return r


@_builtin(_global_view)
def global_view(ptr: object, shape: tuple, strides: tuple | None = None, dtype: DType | None = None) -> object:
    """A strided view of a pointer's memory: extents (runtime ints), strides in elements (row-major by
    default) and an element dtype (the pointer's by default; may be narrower, e.g. uint4 over uint32 words)."""


def _hint(x: DValue, allowed: tuple, what: str) -> object:
    if x not in allowed:
        raise Fail(f"{what} must be one of {', '.join(repr(a) for a in allowed if a)}, got {describe(x)}")
    return x


def _load(b: Builder, src: DValue, offsets: DValue, shape: DValue, mask: DValue, other: DValue, layout: DValue,
          l1: DValue, l2: DValue, prefetch: DValue) -> DValue:  # fmt: skip
    if isinstance(src, Value) and isinstance(src.type, GlobalType):
        if shape is None:
            raise Fail("load: a tile shape is required when loading from global memory (shape=(BM, BK))")
        sh = b.shape(shape, "load shape")
        if len(sh) != src.type.ndim:
            raise Fail(f"load: a rank-{len(sh)} tile from a rank-{src.type.ndim} view")
        if not isinstance(other, bool | int | float):
            raise Fail(f"load: other must be a constant, got {describe(other)}")
        r = b.new(TileType(src.type.dtype, sh, _layout(layout)))  # type: ignore[arg-type]
        b.make(O.LoadGlobal, result=r, src=src, offsets=_offsets(b, offsets, len(sh), "load"),
               mask=_mask(b, mask, sh, "load"), other=other, l1=_hint(l1 or "", O.L1_EVICTION, "load: l1"),
               l2=_hint(l2 or "", O.L2_EVICTION, "load: l2"),
               prefetch=_hint(prefetch or 0, O.PREFETCH_SIZES, "load: prefetch"))  # fmt: skip
        return r
    if isinstance(src, Value) and isinstance(src.type, SharedType):
        sh = src.type.shape if shape is None else b.shape(shape, "load shape")
        if mask is not None:
            raise Fail("load: shared-memory loads take no mask")
        if l1 or l2 or prefetch:
            raise Fail("load: cache hints (l1, l2, prefetch) apply to global loads only")
        r = b.new(TileType(src.type.dtype, sh, _layout(layout)))  # type: ignore[arg-type]
        b.make(O.LoadShared, result=r, src=src, offsets=_offsets(b, offsets, len(src.type.shape), "load"))
        return r
    raise Fail(f"load: the source must be a global view or a shared buffer, got {describe(src)}")


@_builtin(_load)
def load(src: object, offsets: tuple | None = None, shape: tuple | None = None, mask: object = None,
         other: float = 0, layout: object = None, l1: str | None = None, l2: str | None = None,
         prefetch: int | None = None) -> object:  # fmt: skip
    """Load the tile of ``shape`` at ``offsets`` from a global view (elements outside the view or off
    ``mask`` read ``other``) or from a shared buffer (whole buffer by default).

    Global loads take cache hints that never change the result: ``l1`` the L1 eviction priority
    (``"evict_first"`` for data read once, ``"evict_last"``, ``"evict_normal"``, ``"evict_unchanged"``,
    ``"no_allocate"``), ``l2`` an L2 eviction policy (``"evict_first"`` for streamed weights,
    ``"evict_last"`` for data other blocks re-read), ``prefetch`` an L2 prefetch size (64, 128, 256 bytes)."""


def _store(b: Builder, dst: DValue, value: DValue, offsets: DValue, mask: DValue) -> DValue:
    if not isinstance(dst, Value) or not isinstance(dst.type, GlobalType | SharedType):
        raise Fail(f"store: the destination must be a global view or a shared buffer, got {describe(dst)}")
    v = b.tile(value, "store value")
    t = _tile_t(v)
    if t.dtype != dst.type.dtype:
        raise Fail(f"store: a {t.dtype.name} tile into {dst.type}; use lowbit.cast(x, {dst.type.dtype.name})")
    if isinstance(dst.type, GlobalType):
        b.make(O.StoreGlobal, dst=dst, value=v, offsets=_offsets(b, offsets, dst.type.ndim, "store"),
               mask=_mask(b, mask, t.shape, "store"))  # fmt: skip
    else:
        if mask is not None:
            raise Fail("store: shared-memory stores take no mask")
        b.make(O.StoreShared, dst=dst, value=v, offsets=_offsets(b, offsets, len(dst.type.shape), "store"))
    return None


@_builtin(_store)
def store(dst: object, value: object, offsets: tuple | None = None, mask: object = None) -> None:
    """Store a tile at ``offsets`` of a global view (elements outside it or off ``mask`` are skipped)
    or of a shared buffer."""


def _shared(b: Builder, dtype: DValue, shape: DValue, layout: DValue) -> DValue:
    r = b.new(SharedType(b.dtype(dtype, "shared dtype"), b.shape(shape, "shared shape"), _layout(layout)),  # type: ignore[arg-type]
              b.name_hint)
    b.make(O.AllocShared, result=r)
    return r


@_builtin(_shared)
def shared(dtype: DType, shape: tuple, layout: object = None) -> object:
    """Allocate a shared-memory buffer of constexpr ``shape`` (contents undefined).

    Elements are dense and row-major; sub-byte elements are packed (a uint4 takes half a byte).
    ``layout`` may be a :class:`lowbit.layout.Swizzle` of the buffer's byte offsets (e.g.
    ``Swizzle(3, 4, 3)``: 16-byte chunks XORed with the row of 128 bytes), which every access honours;
    without one the compiler chooses a swizzle from the accesses.  A buffer with a leading stage
    dimension, ``(stages, BK, BN)``, is indexed by a runtime scalar: ``buf[s]`` is stage ``s``."""


def _free(b: Builder, buf: DValue) -> DValue:
    if not isinstance(buf, Value) or not isinstance(buf.type, SharedType):
        raise Fail(f"free: expected a shared buffer, got {describe(buf)}")
    if any(isinstance(op, O.SharedView) and op.result is buf for blk in b.blocks for op in blk):
        raise Fail("free: free the buffer itself, not a view of it (buf[s] lives as long as buf)")
    b.make(O.FreeShared, buf=buf)
    return None


@_builtin(_free)
def free(buf: object) -> None:
    """End a shared buffer's lifetime."""


def _copy_async(b: Builder, dst: DValue, src: DValue, offsets: DValue, mask: DValue, l2: DValue,
                prefetch: DValue) -> DValue:  # fmt: skip
    if not isinstance(dst, Value) or not isinstance(dst.type, SharedType):
        raise Fail(f"copy_async: the destination must be a shared buffer, got {describe(dst)}")
    if not isinstance(src, Value) or not isinstance(src.type, GlobalType):
        raise Fail(f"copy_async: the source must be a global view, got {describe(src)}")
    if len(dst.type.shape) != src.type.ndim:
        raise Fail(f"copy_async: a rank-{len(dst.type.shape)} buffer from a rank-{src.type.ndim} view; index a "
                   f"stage first (buf[s]) when the buffer has a stage dimension")  # fmt: skip
    b.make(O.CopyAsync, dst=dst, src=src, offsets=_offsets(b, offsets, src.type.ndim, "copy_async"),
           mask=_mask(b, mask, dst.type.shape, "copy_async"), l2=_hint(l2 or "", O.L2_EVICTION, "copy_async: l2"),
           prefetch=_hint(prefetch or 0, O.PREFETCH_SIZES, "copy_async: prefetch"))  # fmt: skip
    return None


@_builtin(_copy_async)
def copy_async(dst: object, src: object, offsets: tuple | None = None, mask: object = None, l2: str | None = None,
               prefetch: int | None = None) -> None:  # fmt: skip
    """Start an asynchronous copy of the ``dst``-shaped tile at ``offsets`` of ``src`` into ``dst``
    (out-of-bounds elements become 0).  Read ``dst`` only after ``commit()`` and ``wait()``.

    ``dst`` may be a stage of a ring buffer (``buf[s]``); ``l2`` (``"evict_first"``, ``"evict_last"``...)
    and ``prefetch`` (64, 128, 256 bytes) are L2 cache hints, as for :func:`load`."""


def _atomic_impl(kind: str) -> Impl:
    def impl(b: Builder, dst: DValue, *args: DValue) -> DValue:
        if kind == "cas":
            compare, value, offsets, mask = args
        else:
            value, offsets, mask = args
            compare = None
        what = f"atomic_{kind}"
        if not isinstance(dst, Value) or not isinstance(dst.type, GlobalType):
            raise Fail(f"{what}: the destination must be a global view, got {describe(dst)}")
        v = b.tile(value, f"{what} value")
        t = _tile_t(v)
        if t.dtype != dst.type.dtype:
            raise Fail(f"{what}: a {t.dtype.name} tile into {dst.type}; use lowbit.cast(x, {dst.type.dtype.name})")
        if t.dtype.name not in O.ATOMIC_DTYPES[kind]:
            raise Fail(f"{what} takes {', '.join(O.ATOMIC_DTYPES[kind])} elements, got {t.dtype.name}")
        c = None
        if compare is not None:
            c = b.tile(compare, f"{what} compare")
            if _tile_t(c).dtype != t.dtype or _tile_t(c).shape != t.shape:
                raise Fail(f"{what}: compare {describe(c)} must match the value {describe(v)}")
        r = b.new(TileType(t.dtype, t.shape), v.hint)
        b.make(O.Atomic, result=r, kind=kind, dst=dst, value=v, offsets=_offsets(b, offsets, dst.type.ndim, what),
               mask=_mask(b, mask, t.shape, what), compare=c)  # fmt: skip
        return r

    return impl


@_builtin(_atomic_impl("add"))
def atomic_add(dst: object, value: object, offsets: tuple | None = None, mask: object = None) -> object:
    """Atomically add ``value`` (f32, f16, int32, uint32) into the tile at ``offsets`` of a global view; returns
    the old values.  Elements outside the view or off ``mask`` are skipped (their old value reads 0).  f32 adds
    flush subnormals (as ``atom.add.f32`` on global memory does); the order of atomics is unspecified."""


@_builtin(_atomic_impl("max"))
def atomic_max(dst: object, value: object, offsets: tuple | None = None, mask: object = None) -> object:
    """Atomic element-wise maximum (int32, uint32) into a global view; returns the old values."""


@_builtin(_atomic_impl("min"))
def atomic_min(dst: object, value: object, offsets: tuple | None = None, mask: object = None) -> object:
    """Atomic element-wise minimum (int32, uint32) into a global view; returns the old values."""


@_builtin(_atomic_impl("cas"))
def atomic_cas(dst: object, compare: object, value: object, offsets: tuple | None = None, mask: object = None) -> object:
    """Atomic compare-and-swap (int32, uint32): where an element equals ``compare`` it becomes ``value``;
    returns the old values (compare them with ``compare`` to see which swaps happened)."""


@_builtin(lambda b: b.make(O.CommitGroup) and None)
def commit() -> None:
    """Close the group of async copies issued since the last commit."""


@_builtin(lambda b, pending: b.make(O.WaitGroup, pending=b.const_int(pending, "wait pending")) and None)
def wait(pending: int = 0) -> None:
    """Wait until at most ``pending`` committed copy groups are in flight."""


@_builtin(lambda b: b.make(O.Barrier) and None)
def barrier() -> None:
    """Synchronise the threads of the block."""


# -------------------------------------------------------------- construction


def _zeros(b: Builder, shape: DValue, dtype: DValue, layout: DValue) -> DValue:
    return b.full(b.shape(shape, "zeros shape"), b.dtype(dtype, "zeros dtype"), 0, _layout(layout))  # type: ignore[arg-type]


@_builtin(_zeros)
def zeros(shape: tuple, dtype: DType = resolve_dtype("f32"), layout: object = None) -> object:
    """A tile of zeros of constexpr ``shape``."""


def _full(b: Builder, shape: DValue, value: DValue, dtype: DValue, layout: DValue) -> DValue:
    return b.full(b.shape(shape, "full shape"), b.dtype(dtype, "full dtype"), value, _layout(layout))  # type: ignore[arg-type]


@_builtin(_full)
def full(shape: tuple, value: object, dtype: DType = resolve_dtype("f32"), layout: object = None) -> object:
    """A tile of constexpr ``shape`` filled with a scalar (constant or runtime)."""


def _arange(b: Builder, start: DValue, stop: DValue) -> DValue:
    lo, hi = (0, start) if stop is None else (start, stop)
    lo, hi = b.const_int(lo, "arange start"), b.const_int(hi, "arange stop")
    if hi <= lo:
        raise Fail(f"arange: empty range [{lo}, {hi})")
    r = b.new(TileType(INT32, (hi - lo,)))
    b.make(O.Arange, result=r, start=lo)
    return r


@_builtin(_arange)
def arange(start: int, stop: int | None = None) -> object:
    """The int32 tile ``[start, stop)`` (or ``[0, start)``); bounds are constexprs."""


# ------------------------------------------------------------------ element-wise


def _cast(b: Builder, x: DValue, dtype: DValue) -> DValue:
    dt = b.dtype(dtype, "cast dtype")
    if isinstance(x, Value):
        return b.cast(b.tile(x, "cast operand"), dt)
    e = b.expr(x, "cast operand")
    try:
        return b.scalar_cast(e, dt)
    except Exception as exc:  # an IRError from Cast(...) on a non-scalar dtype
        raise Fail(f"cast: a scalar cannot become {dt.name} ({exc})") from None


@_builtin(_cast)
def cast(x: object, dtype: DType) -> object:
    """Convert a tile (or scalar) to ``dtype``: ints wrap, floats round to nearest even, float->int
    truncates and saturates, to <= 8-bit floats saturates (see docs/dsl.md)."""


def _view(b: Builder, x: DValue, dtype: DValue, axis: DValue) -> DValue:
    v = b.tile(x, "view operand")
    t = _tile_t(v)
    dt = b.dtype(dtype, "view dtype")
    ax = b.const_int(axis, "view axis")
    shape = O.view_shape(t, dt, ax)
    if isinstance(shape, str):
        raise Fail(f"view: {shape}")
    r = b.new(TileType(dt, shape))
    b.make(O.View, result=r, x=v, axis=ax % len(t.shape))
    return r


@_builtin(_view)
def view(x: object, dtype: DType, axis: int = -1) -> object:
    """Reinterpret the bits of a tile as ``dtype`` along ``axis``, LSB-first as ``lowbit.pack`` orders
    them: a [R, C] uint32 tile viewed as uint4 is [R, 8C]; along axis 0, [K/8, N] becomes [K, N]."""


def _round(b: Builder, x: DValue, mode: DValue) -> DValue:
    if mode not in ("rn", "rz", "rd", "ru"):
        raise Fail(f"round: mode must be 'rn', 'rz', 'rd' or 'ru', got {mode!r}")
    v = b.tile(x, "round operand")
    if not _tile_t(v).dtype.is_float:
        raise Fail(f"round: expected a float tile, got {describe(v)}")
    return b.unary(f"round_{mode}", v)


@_builtin(_round)
def round(x: object, mode: str = "rn") -> object:  # noqa: A001 (the DSL's name)
    """Round a float tile to integral values: rn (nearest even), rz, rd (floor), ru (ceil)."""


def _make_unary(name: str) -> Impl:
    def impl(b: Builder, x: DValue) -> DValue:
        if isinstance(x, Expr) or is_constexpr(x):
            if name == "abs":
                return abs(x) if is_constexpr(x) else b.scalar_unary("abs", x)  # type: ignore[arg-type]
            raise Fail(f"{name}: expected a tile, got {describe(x)}")
        v = b.tile(x, f"{name} operand")
        dt = _tile_t(v).dtype
        if name != "abs" and not dt.is_float:
            raise Fail(f"{name}: expected a float tile, got {describe(v)}")
        return b.unary(name, v)

    return impl


@_builtin(_make_unary("abs"))
def abs(x: object) -> object:  # noqa: A001
    """Absolute value, element-wise."""


@_builtin(_make_unary("exp2"))
def exp2(x: object) -> object:
    """2**x, element-wise (floats)."""


@_builtin(_make_unary("log2"))
def log2(x: object) -> object:
    """log2(x), element-wise (floats)."""


@_builtin(_make_unary("sqrt"))
def sqrt(x: object) -> object:
    """Square root, element-wise (floats)."""


@_builtin(_make_unary("rsqrt"))
def rsqrt(x: object) -> object:
    """1/sqrt(x), element-wise (floats)."""


def _minmax(op: str) -> Impl:
    def impl(b: Builder, a: DValue, c: DValue) -> DValue:
        if not isinstance(a, Value) and not isinstance(c, Value):
            if is_constexpr(a) and is_constexpr(c):
                return min(a, c) if op == "min" else max(a, c)  # type: ignore[type-var]
            return b.scalar_binary(op, a, c, op)
        return b.tile_binary(op, a, c, op)

    return impl


@_builtin(_minmax("min"))
def minimum(a: object, b: object) -> object:
    """Element-wise minimum (for floats, a NaN operand yields the other operand, as PTX min)."""


@_builtin(_minmax("max"))
def maximum(a: object, b: object) -> object:
    """Element-wise maximum (NaN rule as ``minimum``)."""


def _where(b: Builder, cond: DValue, x: DValue, y: DValue) -> DValue:
    if not isinstance(cond, Value):
        if is_constexpr(cond):
            return x if cond else y
        c = b.expr(cond, "where condition")
        if not is_bool(c.dtype) or isinstance(x, Value) or isinstance(y, Value):
            raise Fail("where: a scalar condition needs bool and scalar operands; use if for control flow")
        ex, ey = b.expr(x, "where operand"), b.expr(y, "where operand")
        if ex.dtype != ey.dtype:
            raise Fail(f"where: operands differ in dtype ({ex.dtype.name} vs {ey.dtype.name})")
        return simplify(Select(c, ex, ey))
    c = b.tile(cond, "where condition")
    if not is_bool(_tile_t(c).dtype):
        raise Fail(f"where: the condition must be a bool tile, got {describe(c)}")
    types = [b.operand_type(v) for v in (x, y)]
    known = [t for t in types if t is not None]
    if not known:
        raise Fail("where: at least one of the operands must be a tile or typed scalar")
    dt = known[0] if len(known) == 1 or known[0] == known[1] else None
    if dt is None:
        raise Fail(f"where: operands differ in dtype ({known[0].name} vs {known[1].name}); cast one")
    shapes = [_tile_t(v).shape for v in (c, x, y) if isinstance(v, Value)]
    shape = shapes[0]
    for s in shapes[1:]:
        shape = b.broadcast_shapes(shape, s)
    tx, ty = (b._as_tile(v, dt, shape) for v in (x, y))
    r = b.new(TileType(dt, shape))
    b.make(O.Where, result=r, cond=b.broadcast_to(c, shape), a=tx, b=ty)
    return r


@_builtin(_where)
def where(cond: object, x: object, y: object) -> object:
    """``x`` where ``cond`` else ``y``, element-wise (operands broadcast)."""


def _fma(b: Builder, x: DValue, y: DValue, z: DValue) -> DValue:
    vs = [b.tile(v, "fma operand") for v in (x, y, z)]
    r = b.new(TileType(_tile_t(vs[0]).dtype, _tile_t(vs[0]).shape))
    b.make(O.Fma, result=r, a=vs[0], b=vs[1], c=vs[2])
    return r


@_builtin(_fma)
def fma(a: object, b: object, c: object) -> object:
    """``a * b + c`` rounded once (float tiles of one type and shape)."""


# --------------------------------------------------------------- contractions


def _dot(b: Builder, a: DValue, bb: DValue, acc: DValue, out_dtype: DValue) -> DValue:
    va, vb = b.tile(a, "dot a"), b.tile(bb, "dot b")
    ta, tb = _tile_t(va), _tile_t(vb)
    if len(ta.shape) != 2 or len(tb.shape) != 2:
        raise Fail(f"dot: operands must be 2-D tiles, got {list(ta.shape)} and {list(tb.shape)}")
    if ta.shape[1] != tb.shape[0]:
        raise Fail(f"dot: shapes do not chain: a is {list(ta.shape)} but b is {list(tb.shape)} ({ta.shape[1]} != {tb.shape[0]})")
    if ta.dtype != tb.dtype:
        raise Fail(f"dot: a is {ta.dtype.name} but b is {tb.dtype.name}; cast one of them")
    if acc is None:
        default = "f32" if ta.dtype.is_float else "int32"
        dt = b.dtype(out_dtype if out_dtype is not None else default, "dot out_dtype")
        acc = b.full((ta.shape[0], tb.shape[1]), dt, 0)
    vc = b.tile(acc, "dot accumulator")
    tc = _tile_t(vc)
    if tc.shape != (ta.shape[0], tb.shape[1]):
        raise Fail(f"dot: accumulator is {list(tc.shape)} but a @ b is {[ta.shape[0], tb.shape[1]]}")
    r = b.new(TileType(tc.dtype, tc.shape))
    b.make(O.Dot, result=r, a=va, b=vb, c=vc)
    return r


@_builtin(_dot)
def dot(a: object, b: object, acc: object = None, out_dtype: DType | None = None) -> object:
    """``acc + a @ b`` for [M, K] x [K, N] tiles of one dtype; the accumulator is f32 (floats) or
    int32 (integers) unless given."""


def _reduce(b: Builder, x: DValue, axis: DValue, op: DValue, keepdims: DValue) -> DValue:
    v = b.tile(x, "reduce operand")
    t = _tile_t(v)
    ax = b.const_int(axis, "reduce axis")
    if not -len(t.shape) <= ax < len(t.shape):
        raise Fail(f"reduce: axis {ax} is out of range for a rank-{len(t.shape)} tile")
    ax %= len(t.shape)
    if op not in O.REDUCE_KINDS:
        raise Fail(f"reduce: op must be one of {', '.join(O.REDUCE_KINDS)}, got {op!r}")
    kept = tuple(1 if i == ax else s for i, s in enumerate(t.shape))
    r = b.new(TileType(t.dtype, kept))
    b.make(O.Reduce, result=r, x=v, kind=op, axis=ax)
    if keepdims or len(t.shape) == 1:
        return r
    return b.reshape(r, tuple(s for i, s in enumerate(t.shape) if i != ax))


@_builtin(_reduce)
def reduce(x: object, axis: int, op: str = "sum", keepdims: bool = False) -> object:
    """Reduce a tile along ``axis`` with ``op`` in {"sum", "max", "min"} (a 1-D tile gives shape [1])."""


def _lookup(b: Builder, table: DValue, index: DValue) -> DValue:
    t, i = b.tile(table, "lookup table"), b.tile(index, "lookup index")
    if len(_tile_t(t).shape) != 1:
        raise Fail(f"lookup: the table must be a 1-D tile, got {describe(t)}")
    if not _tile_t(i).dtype.is_int:
        raise Fail(f"lookup: the index must be an integer tile, got {describe(i)}")
    r = b.new(TileType(_tile_t(t).dtype, _tile_t(i).shape))
    b.make(O.Lookup, result=r, table=t, index=i)
    return r


@_builtin(_lookup)
def lookup(table: object, index: object) -> object:
    """``table[index]`` element-wise: gather from a small 1-D tile by integer codes (LUT kernels)."""


# ------------------------------------------------------------------- shaping


def _broadcast(b: Builder, x: DValue, shape: DValue) -> DValue:
    v = b.tile(x, "broadcast operand")
    sh = b.shape(shape, "broadcast shape")
    if b.broadcast_shapes(_tile_t(v).shape, sh) != sh:
        raise Fail(f"broadcast: cannot broadcast {list(_tile_t(v).shape)} to {list(sh)}")
    return b.broadcast_to(v, sh)


@_builtin(_broadcast)
def broadcast(x: object, shape: tuple) -> object:
    """Repeat a tile along its extent-1 (or missing leading) axes to ``shape``."""


def _expand_dims(b: Builder, x: DValue, axis: DValue) -> DValue:
    v = b.tile(x, "expand_dims operand")
    t = _tile_t(v)
    ax = b.const_int(axis, "expand_dims axis")
    if not -len(t.shape) - 1 <= ax <= len(t.shape):
        raise Fail(f"expand_dims: axis {ax} is out of range")
    ax %= len(t.shape) + 1
    return b.reshape(v, t.shape[:ax] + (1,) + t.shape[ax:])


@_builtin(_expand_dims)
def expand_dims(x: object, axis: int) -> object:
    """Insert an extent-1 axis at ``axis``."""


def _reshape(b: Builder, x: DValue, shape: DValue) -> DValue:
    v = b.tile(x, "reshape operand")
    sh = b.shape(shape, "reshape shape")
    if math.prod(sh) != math.prod(_tile_t(v).shape):
        raise Fail(f"reshape: cannot reshape {list(_tile_t(v).shape)} to {list(sh)}")
    return b.reshape(v, sh)


@_builtin(_reshape)
def reshape(x: object, shape: tuple) -> object:
    """The same elements (row-major order) in a new constexpr shape."""


def _permute(b: Builder, x: DValue, order: DValue) -> DValue:
    v = b.tile(x, "permute operand")
    t = _tile_t(v)
    items = order if isinstance(order, tuple | list) else (order,)
    perm = tuple(b.const_int(o, "permute order") for o in items)
    if sorted(perm) != list(range(len(t.shape))):
        raise Fail(f"permute: {list(perm)} is not a permutation of the {len(t.shape)} axes of {describe(v)}")
    if perm == tuple(range(len(t.shape))):
        return v
    r = b.new(TileType(t.dtype, tuple(t.shape[d] for d in perm)))
    b.make(O.Permute, result=r, x=v, order=perm)
    return r


@_builtin(_permute)
def permute(x: object, order: tuple) -> object:
    """Reorder a tile's axes: result axis ``i`` is axis ``order[i]`` of ``x`` (no data moves until a layout needs it)."""


def _transpose(b: Builder, x: DValue) -> DValue:
    t = _tile_t(b.tile(x, "transpose operand"))
    if len(t.shape) != 2:
        raise Fail(f"transpose takes a 2-D tile, got {list(t.shape)}; use lowbit.permute for other ranks")
    return _permute(b, x, (1, 0))


@_builtin(_transpose)
def transpose(x: object) -> object:
    """The 2-D tile with its axes swapped (``permute(x, (1, 0))``)."""


def _convert_layout(b: Builder, x: DValue, layout: DValue) -> DValue:
    v = b.tile(x, "convert_layout operand")
    t = _tile_t(v)
    lay = _layout(layout)
    if lay is None:
        raise Fail("convert_layout needs a register layout")
    r = b.new(TileType(t.dtype, t.shape, lay))  # type: ignore[arg-type]
    b.make(O.ConvertLayout, result=r, x=v)
    return r


@_builtin(_convert_layout)
def convert_layout(x: object, layout: object) -> object:
    """The same tile in register ``layout`` (a ``lowbit.layout`` RegisterLayout): an explicit data movement."""


def _thread_index(kind: str) -> Impl:
    def impl(b: Builder, shape: DValue, layout: DValue) -> DValue:
        sh = b.shape(shape, f"{kind}_id shape")
        lay = _layout(layout)
        if lay is None:
            raise Fail(f"{kind}_id needs the register layout its values refer to (layout=...)")
        r = b.new(TileType(INT32, sh, lay))  # type: ignore[arg-type]
        b.make(O.ThreadIndex, result=r, kind=kind)
        return r

    return impl


@_builtin(_thread_index("lane"))
def lane_id(shape: tuple, layout: object) -> object:
    """An int32 tile of ``shape`` in register ``layout`` whose each element is the lane (0..31) holding it.

    Which thread holds an element is what a layout says, so the layout is
    required (and must hold each element in exactly one thread).
    """


@_builtin(_thread_index("warp"))
def warp_id(shape: tuple, layout: object) -> object:
    """An int32 tile of ``shape`` in register ``layout`` whose each element is the warp holding it."""


# ------------------------------------------------------------- compile time


def _static_assert(b: Builder, cond: DValue, msg: DValue) -> DValue:
    if not is_constexpr(cond):
        raise Fail(f"static_assert: the condition must be a constexpr, got {describe(cond)}")
    if not cond:
        raise Fail(f"static_assert failed: {msg}" if msg else "static_assert failed")
    return None


@_builtin(_static_assert)
def static_assert(cond: bool, msg: str = "") -> None:
    """Fail compilation (at this line) when the constexpr ``cond`` is false."""


def _print(b: Builder, prefix: DValue, *values: DValue) -> DValue:
    if not isinstance(prefix, str):
        raise Fail(f"print: the first argument must be a string, got {describe(prefix)}")
    vals = tuple(v if isinstance(v, Value) else b.expr(v, "print argument") for v in values)
    b.make(O.Print, prefix=prefix, values=vals)
    return None


@_builtin(_print)
def print(prefix: str, *values: object) -> None:  # noqa: A001
    """Print a message and values when the interpreter runs this line (the compiler drops it)."""


BUILTIN_NAMES = tuple(n for n in __all__ if n not in ("BUILTIN_NAMES", "implementation", "PtrSpec", "Constexpr"))


ptr.__lowbit_constexpr_fn__ = True  # type: ignore[attr-defined]  (callable in annotations)


def _layout_constructors() -> tuple[Callable[..., object], ...]:
    from lowbit.layout import construct, fragments, register, swizzle  # noqa: PLC0415

    return (register.local, register.column_local, register.spatial, register.column_spatial, register.replicate,
            register.product, register.divide, register.divide_outer, register.permute, register.reshape,
            register.reduce_dim, construct.blocked, fragments.mma_fragment, fragments.block_fragment,
            fragments.ldmatrix_fragment, swizzle.Swizzle)  # fmt: skip


# Layout constructors run at compile time inside kernels (their arguments must be constexprs), so a kernel
# can write ``lay = lowbit.layout.product(lowbit.layout.spatial(16, 8), lowbit.layout.local(1, 4))``.
for _fn in _layout_constructors():
    _fn.__lowbit_constexpr_fn__ = True  # type: ignore[attr-defined]
