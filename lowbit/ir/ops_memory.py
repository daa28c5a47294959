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


__all__ = ["L1_EVICTION", "L2_EVICTION", "LOAD_SHARED_VIA", "PREFETCH_SIZES", "AllocShared", "Barrier", "CommitGroup", "CopyAsync",
           "FreeShared", "GlobalView", "LoadGlobal", "LoadShared", "NumPrograms", "PairTable", "ProgramId",
           "SharedView", "StoreGlobal", "StoreShared", "WaitGroup"]  # fmt: skip

#: Cache hints a global load may state (PTX ISA 9.7.9.8 ``ld``): the L1 eviction priority
#: (``.L1::evict_first`` ...), the L2 eviction priority of a ``createpolicy.fractional`` policy passed with
#: ``.L2::cache_hint`` (9.7.9.17), and an L2 prefetch size (``.L2::64B/128B/256B``).  "" = no hint.
L1_EVICTION = ("", "evict_normal", "evict_unchanged", "evict_first", "evict_last", "no_allocate")
L2_EVICTION = ("", "evict_normal", "evict_first", "evict_last", "evict_unchanged")
PREFETCH_SIZES = (0, 64, 128, 256)


def _hints(op: Op, l1: str | None, l2: str, prefetch: int) -> None:
    if l1 is not None and l1 not in L1_EVICTION:
        raise op.fail(f"l1 eviction priority must be one of {L1_EVICTION[1:]}, got {l1!r}")
    if l2 not in L2_EVICTION:
        raise op.fail(f"l2 eviction priority must be one of {L2_EVICTION[1:]}, got {l2!r}")
    if prefetch not in PREFETCH_SIZES:
        raise op.fail(f"L2 prefetch size must be 64, 128 or 256 bytes (0: none), got {prefetch!r}")


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
    """Allocate a shared buffer (contents undefined until written).

    ``offset`` is where the shared-memory planner (``plan_shared``) put it:
    its byte offset in the block's one shared-memory area (-1: not planned
    yet).  Elements are dense and row-major (sub-byte elements packed
    LSB-first); the buffer's layout, when it has one, is a
    :class:`~lowbit.layout.swizzle.Swizzle` of its byte offsets (the
    lowering also accepts the row-major strided layout, which changes nothing).
    """

    result: Value
    offset: int = -1
    opname = "alloc_shared"
    spec = OpSpec(results=("result",), attrs=("offset",))

    def __post_init__(self) -> None:
        _shared(self, self.result, "result")
        if not isinstance(self.offset, int) or isinstance(self.offset, bool) or self.offset < -1:
            raise self.fail(f"offset must be a byte offset >= 0 (or -1: unplanned), got {self.offset!r}")


@dataclass(frozen=True, eq=False)
class SharedView(Op):
    """The sub-buffer ``buf[i0, i1, ...]``: the leading dimensions fixed at runtime indices (a stage of a ring).

    The result aliases ``buf`` (no copy): its shape is ``buf``'s without the
    ``len(indices)`` leading extents, its elements are those of ``buf`` at
    ``(indices..., j...)``.  Every index must lie in its extent.  It lives
    as long as ``buf`` (the planner counts its uses as uses of ``buf``) and
    carries ``buf``'s layout (a swizzle applies to offsets within ``buf``).
    This is how a pipeline names stage ``s`` of a ``(stages, BK, BN)``
    buffer: rotating stages changes only the index expression.
    """

    result: Value
    buf: Value
    indices: tuple[Expr, ...]
    opname = "shared_view"
    spec = OpSpec(results=("result",), operands=("buf", "indices"))

    def __post_init__(self) -> None:
        s = _shared(self, self.buf, "source")
        r = _shared(self, self.result, "result")
        k = len(self.indices) if isinstance(self.indices, tuple) else 0
        if not 1 <= k < len(s.shape):
            raise self.fail(f"a view of {s} fixes 1..{len(s.shape) - 1} leading dimensions, got {self.indices!r}")
        self.index_exprs(self.indices, "indices", k)
        if r.dtype != s.dtype or r.shape != s.shape[k:] or r.layout != s.layout:
            raise self.fail(f"result {r} must be {SharedType(s.dtype, s.shape[k:], s.layout)}")


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
    l1: str = ""
    l2: str = ""
    prefetch: int = 0
    opname = "load_global"
    spec = OpSpec(results=("result",), operands=("src", "offsets"), optional=("mask",),
                  attrs=("other", "vec", "l1", "l2", "prefetch"), effect=Effect.READ)  # fmt: skip

    def __post_init__(self) -> None:
        g = _global(self, self.src, "source")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        t = self.tile(self.result, "result")
        if t.dtype != g.dtype or len(t.shape) != g.ndim:
            raise self.fail(f"result {t} does not match the view {g}")
        _mask(self, self.mask, t.shape)
        _vec(self, self.vec)
        _hints(self, self.l1, self.l2, self.prefetch)


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
    (and a barrier when other threads read it).  ``l2`` / ``prefetch`` are
    cache hints (``cp.async ... .L2::cache_hint`` with an eviction policy,
    ``.L2::128B``...; PTX ISA 9.7.9.25), never meaning.  ``vec`` > 1 says
    instruction selection proved every run of ``vec`` elements the copy
    issues starts on a multiple of its size in global memory (1: tested at
    run time); ``whole`` says it also proved the view's last extent a
    multiple of ``vec``, so each run lies wholly inside or wholly outside
    the view (no partial run at a row's end).  Both change how the copy is
    issued, never what it copies.
    """

    dst: Value
    src: Value
    offsets: tuple[Expr, ...]
    mask: Value | None = None
    l2: str = ""
    prefetch: int = 0
    vec: int = 1
    whole: bool = False
    opname = "copy_async"
    spec = OpSpec(operands=("dst", "src", "offsets"), optional=("mask",), attrs=("l2", "prefetch", "vec", "whole"),
                  effect=Effect.WRITE)  # fmt: skip

    def __post_init__(self) -> None:
        s = _shared(self, self.dst, "destination")
        g = _global(self, self.src, "source")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        if s.dtype != g.dtype or len(s.shape) != g.ndim:
            raise self.fail(f"buffer {s} does not match the view {g}")
        _mask(self, self.mask, s.shape)
        _hints(self, None, self.l2, self.prefetch)
        _vec(self, self.vec)
        if not isinstance(self.whole, bool) or self.whole and self.vec == 1:
            raise self.fail(f"whole (no run straddles the view's end) is a bool that needs vec > 1, got {self.whole!r}")


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


#: Bits per entry of a ``pair_table``: 16 (two entries share a word) or 32 (one word each).
PAIR_TABLE_WIDTHS = (16, 32)


@dataclass(frozen=True, eq=False)
class PairTable(Op):
    """Fill ``dst`` with the pair table of the ``n``-entry table ``entries`` (``width``-bit patterns).

    Pair ``(i, j)`` (``i, j < n``) is at index ``e = i | j * n``: with
    ``width`` 16, word ``e`` is ``entries[i] | entries[j] << 16``; with 32,
    words ``2e`` and ``2e + 1`` are ``entries[i]`` and ``entries[j]``.
    ``copies`` (a power of two up to 32) replicates the table against bank
    conflicts, copies interleaved (:func:`lowbit.arch.banks.table_unit`):
    the unit (one word with width 16, two with 32) of pair ``e`` in copy
    ``r`` is unit ``e * copies + r``.  ``dst`` is a 1-D int32 buffer of
    exactly ``n * n * width / 16 * copies`` words; ``n`` is a power of
    two, 2..16.  The codebook lowering
    (:mod:`lowbit.transforms._lower_codebook`) builds one before the main
    loop and looks two codes up with one shared load (lane ``l`` in copy
    ``l % copies``).
    """

    dst: Value
    entries: tuple[int, ...]
    width: int = 16
    copies: int = 1
    opname = "pair_table"
    spec = OpSpec(operands=("dst",), attrs=("entries", "width", "copies"), effect=Effect.WRITE)

    def __post_init__(self) -> None:
        t = _shared(self, self.dst, "destination")
        n = len(self.entries) if isinstance(self.entries, tuple) else 0
        if n < 2 or n > 16 or n & (n - 1):
            raise self.fail(f"entries must be a tuple of 2, 4, 8 or 16 bit patterns, got {self.entries!r}")
        if self.width not in PAIR_TABLE_WIDTHS:
            raise self.fail(f"width must be 16 or 32 bits, got {self.width!r}")
        if any(not isinstance(e, int) or isinstance(e, bool) or not 0 <= e < 1 << self.width for e in self.entries):
            raise self.fail(f"entries must be {self.width}-bit patterns (ints 0 .. 2**{self.width} - 1), got {self.entries!r}")
        c = self.copies
        if not isinstance(c, int) or isinstance(c, bool) or c < 1 or c > 32 or c & (c - 1):
            raise self.fail(f"copies must be a power of two from 1 to 32, got {c!r}")
        words = n * n * self.width // 16 * c
        if t.dtype != INT32 or t.shape != (words,):
            raise self.fail(f"destination must be shared<int32, [{words}]> for {n} entries of {self.width} bits in "
                            f"{c} copies, got {t}")  # fmt: skip


@dataclass(frozen=True, eq=False)
class Barrier(Op):
    """All threads of the block reach this point before any goes on (``bar.sync 0``)."""

    opname = "barrier"
    spec = OpSpec(effect=Effect.SYNC)
