"""VM memory ops and block queries: global views, loads and stores, shared buffers, async copies, barriers.

Re-exported by :mod:`lowbit.ir.ops`, the one namespace of op classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.expr import Expr, Scalar, Var
from lowbit.ir.op_base import Effect, Op, OpSpec
from lowbit.ir.op_base import describe as _describe
from lowbit.ir.op_base import global_type as _global
from lowbit.ir.op_base import mask_check as _mask
from lowbit.ir.op_base import shared_type as _shared
from lowbit.ir.types import INT32, PointerType, SharedType, TileType, Value

#: How instruction selection reads a shared tile: "" plain loads (``vec`` wide), or ``ldmatrix`` (8x8 b16
#: matrices, four per instruction, straight into mma fragment registers), ``.trans`` for the transposed form.
LOAD_SHARED_VIA = ("", "ldmatrix", "ldmatrix.trans")


def _vec(op: Op, vec: int) -> None:
    if not isinstance(vec, int) or isinstance(vec, bool) or vec < 1 or vec & (vec - 1):
        raise op.fail(f"vec (elements per access) must be a power of two >= 1, got {vec!r}")


__all__ = ["LOAD_SHARED_VIA", "AllocShared", "Barrier", "CommitGroup", "CopyAsync", "FreeShared", "GlobalView", "LoadGlobal",
           "LoadShared", "NumPrograms", "ProgramId", "StoreGlobal", "StoreShared", "WaitGroup"]  # fmt: skip


# --------------------------------------------------------------------- queries


@dataclass(frozen=True, eq=False)
class ProgramId(Op):
    """The block's index along grid ``axis`` (0, 1, 2) as an int32 scalar."""

    result: Var
    axis: int
    opname = "program_id"
    spec = OpSpec(results=("result",), attrs=("axis",))

    def __post_init__(self) -> None:
        if self.axis not in (0, 1, 2) or self.result.dtype != INT32:
            raise self.fail(f"axis must be 0, 1 or 2 and the result int32 (axis={self.axis})")


@dataclass(frozen=True, eq=False)
class NumPrograms(Op):
    """The grid's extent along ``axis`` as an int32 scalar."""

    result: Var
    axis: int
    opname = "num_programs"
    spec = OpSpec(results=("result",), attrs=("axis",))

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
    spec = OpSpec(results=("result",), operands=("ptr", "shape", "strides"))

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
    spec = OpSpec(results=("result",))

    def __post_init__(self) -> None:
        _shared(self, self.result, "result")


@dataclass(frozen=True, eq=False)
class FreeShared(Op):
    """End of a shared buffer's lifetime (its memory may be reused after this)."""

    buf: Value
    opname = "free_shared"
    spec = OpSpec(operands=("buf",), effect=Effect.WRITE)

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
    vec: int = 1
    opname = "load_global"
    spec = OpSpec(results=("result",), operands=("src", "offsets"), optional=("mask",), attrs=("other", "vec"),
                  effect=Effect.READ)  # fmt: skip

    def __post_init__(self) -> None:
        g = _global(self, self.src, "source")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        t = self.tile(self.result, "result")
        if t.dtype != g.dtype or len(t.shape) != g.ndim:
            raise self.fail(f"result {t} does not match the view {g}")
        _mask(self, self.mask, t.shape)
        _vec(self, self.vec)


@dataclass(frozen=True, eq=False)
class StoreGlobal(Op):
    """Write ``value`` at ``offsets`` of ``dst``; elements outside its shape or off ``mask`` are skipped."""

    dst: Value
    value: Value
    offsets: tuple[Expr, ...]
    mask: Value | None = None
    vec: int = 1
    opname = "store_global"
    spec = OpSpec(operands=("dst", "value", "offsets"), optional=("mask",), attrs=("vec",), effect=Effect.WRITE)

    def __post_init__(self) -> None:
        g = _global(self, self.dst, "destination")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        t = self.tile(self.value, "value")
        if t.dtype != g.dtype or len(t.shape) != g.ndim:
            raise self.fail(f"value {t} does not match the view {g}")
        _mask(self, self.mask, t.shape)
        _vec(self, self.vec)


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
    vec: int = 1
    via: str = ""
    opname = "load_shared"
    spec = OpSpec(results=("result",), operands=("src", "offsets"), attrs=("vec", "via"), effect=Effect.READ)

    def __post_init__(self) -> None:
        _sub_tile(self, self.tile(self.result, "result"), _shared(self, self.src, "source"), self.offsets)
        _vec(self, self.vec)
        if self.via not in LOAD_SHARED_VIA:
            raise self.fail(f"via must be one of {LOAD_SHARED_VIA}, got {self.via!r}")


@dataclass(frozen=True, eq=False)
class StoreShared(Op):
    """Write a tile into a shared buffer at ``offsets`` (must lie inside the buffer)."""

    dst: Value
    value: Value
    offsets: tuple[Expr, ...]
    vec: int = 1
    opname = "store_shared"
    spec = OpSpec(operands=("dst", "value", "offsets"), attrs=("vec",), effect=Effect.WRITE)

    def __post_init__(self) -> None:
        _sub_tile(self, self.tile(self.value, "value"), _shared(self, self.dst, "destination"), self.offsets)
        _vec(self, self.vec)


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
    spec = OpSpec(operands=("dst", "src", "offsets"), optional=("mask",), effect=Effect.WRITE)

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
    spec = OpSpec(effect=Effect.SYNC)


@dataclass(frozen=True, eq=False)
class WaitGroup(Op):
    """Wait until at most ``pending`` committed groups are still in flight."""

    pending: int = 0
    opname = "wait"
    spec = OpSpec(attrs=("pending",), effect=Effect.SYNC)

    def __post_init__(self) -> None:
        if not isinstance(self.pending, int) or self.pending < 0:
            raise self.fail(f"pending must be a non-negative int, got {self.pending!r}")


@dataclass(frozen=True, eq=False)
class Barrier(Op):
    """All threads of the block reach this point before any goes on (``bar.sync 0``)."""

    opname = "barrier"
    spec = OpSpec(effect=Effect.SYNC)
