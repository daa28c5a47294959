"""What each shared-memory access of a VM program costs in bank wavefronts, per candidate swizzle.

The planner (:mod:`~lowbit.transforms.plan_shared`) chooses a buffer's
swizzle from the accesses that use it.  This module turns one access op
into the warp requests it will issue after lowering -- per request, the
byte address (relative to the buffer's allocation, before any swizzle) of
every lane, and the per-lane width -- and prices a set of requests under a
swizzle with the one bank model, :mod:`lowbit.arch.banks`.

Requests follow what the lowering emits: ``load_shared`` / ``store_shared``
move ``vec`` consecutive slots per instruction (stores: first replicas
only, loads: every thread); ``copy_async`` writes runs of its copy layout
(``cp.async`` of 4, 8 or 16 bytes where a run is that long, else element by
element).  Padded layouts' phantom slots are inactive lanes.  Runtime
offsets and view indices count as 0 (a stage's offset is a multiple of its
size, so only the in-stage pattern matters when the stage size is a
multiple of the swizzle's period, which the planner arranges).

:data:`ACCESSES` maps op classes to their request functions; tensor-core
work adds ``ldmatrix`` reads there (a request of kind ``"ldmatrix"``: row
addresses of lanes ``0 .. 8*num-1``, priced by
:func:`lowbit.arch.banks.ldmatrix_wavefronts`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lowbit.arch import banks
from lowbit.ir import ops as O
from lowbit.ir.expr import Const, Expr
from lowbit.ir.types import SharedType, TileType, Value, is_bool
from lowbit.layout.construct import pow2_factor
from lowbit.layout.register import RegisterLayout
from lowbit.layout.swizzle import Swizzle
from lowbit.transforms._layout_maps import local_table, spatial_table
from lowbit.transforms._layout_rules import copy_layout

__all__ = ["ACCESSES", "Request", "element_bits", "swizzle_of", "excess_wavefronts", "ideal_wavefronts", "requests",
           "swizzled", "wavefronts"]  # fmt: skip

WARP = banks.WARP_SIZE


@dataclass(frozen=True)
class Request:
    """One warp-wide shared-memory instruction: lane byte addresses (-1: inactive lane) and the width."""

    addresses: tuple[int, ...]
    width: int
    kind: str = "access"  # or "ldmatrix" (addresses: row addresses of lanes 0 .. 8*num-1)


def swizzle_of(t: SharedType) -> Swizzle | None:
    """The buffer's byte-offset swizzle (None: none, or the plain row-major layout stated)."""
    return t.layout if isinstance(t.layout, Swizzle) and t.layout.bits else None


def element_bits(t: SharedType) -> int:
    """Bits one element takes in shared memory (sub-byte elements are packed; bool takes a byte)."""
    return 8 if is_bool(t.dtype) else t.dtype.bits


def _row_strides(shape: tuple[int, ...]) -> np.ndarray:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return np.array(list(reversed(out)), np.int64)


def _const(e: Expr) -> int:
    return int(e.value) if isinstance(e, Const) else 0


def _primary(layout: RegisterLayout) -> np.ndarray:
    """Per thread: is it its elements' first replica (every replication digit 0)?"""
    t = np.arange(layout.num_threads, dtype=np.int64)
    ok = np.ones(layout.num_threads, bool)
    rest = t
    for e in reversed(layout.spatial):
        size = -e if e < 0 else layout.mode_sizes[e]
        d, rest = rest % size, rest // size
        if e < 0:
            ok &= d == 0
    return ok


def _tile_requests(buf: SharedType, tile: TileType, offsets: tuple[Expr, ...], vec: int, store: bool) -> list[Request]:
    lay = tile.layout
    assert isinstance(lay, RegisterLayout)  # noqa: S101 - layouts exist after infer_layouts
    bits = element_bits(buf)
    base = np.array([_const(o) for o in offsets], np.int64)
    sp, lo = spatial_table(lay), local_table(lay)
    strides = _row_strides(buf.shape)
    width = max(1, vec * bits // 8)
    if width not in (1, 2, 4, 8, 16):
        return []
    active_threads = _primary(lay) if store else np.ones(lay.num_threads, bool)
    out = []
    for k in range(lay.local_size // vec):
        coords = sp + lo[k * vec]  # (threads, rank)
        valid = np.all(coords < np.array(tile.shape), axis=1) & active_threads
        addr = ((coords + base) @ strides) * bits // 8
        addr = np.where(valid, addr, -1)
        for w in range(lay.num_threads // WARP):
            out.append(Request(tuple(int(a) for a in addr[w * WARP:(w + 1) * WARP]), width))
    return out


def _load_shared(op: O.LoadShared, buf: SharedType) -> list[Request]:
    if op.via:
        return _ldmatrix_requests(buf, op.result.type, op.offsets, op.via == "ldmatrix.trans")  # type: ignore[arg-type]
    return _tile_requests(buf, op.result.type, op.offsets, op.vec, False)  # type: ignore[arg-type]


def _ldmatrix_requests(buf: SharedType, tile: TileType, offsets: tuple[Expr, ...], trans: bool) -> list[Request]:
    """The row addresses ``lower_ldmatrix`` gives each lane: groups of four registers per ``ldmatrix.x4``.

    Lane ``l`` supplies row ``l % 8`` of matrix ``l // 8``; a matrix's rows start at the coordinates its
    register has in the lane-0 pattern (PTX ISA 9.7.14.5.15, ``ldmatrix``).
    """
    lay = tile.layout
    assert isinstance(lay, RegisterLayout)  # noqa: S101
    bits = element_bits(buf)
    e = 32 // bits
    nregs = lay.local_size // e
    sp, lo = spatial_table(lay), local_table(lay)
    base = np.array([_const(o) for o in offsets], np.int64)
    strides = _row_strides(buf.shape)
    lane = np.arange(WARP)
    g, q4, r8 = lane >> 2, lane & 3, lane & 7
    out = []
    for start in range(0, nregs, 4):
        group = list(range(start, min(start + 4, nregs)))
        num = len(group) if len(group) != 3 else 4
        group += [group[-1]] * (num - len(group))
        pick = np.array(group)[np.minimum(lane // 8, num - 1)]
        for w in range(lay.num_threads // WARP):
            t = w * WARP + lane
            c = sp[t] + lo[pick * e]
            row, col = (c[:, 0] - 2 * q4, c[:, 1] - g) if trans else (c[:, 0] - g, c[:, 1] - q4 * e)
            addr = ((row + r8 + base[0]) * strides[0] + (col + base[1]) * strides[1]) * bits // 8
            out.append(Request(tuple(int(a) for a in addr[: 8 * num]), 16, "ldmatrix"))
    return out


def _store_shared(op: O.StoreShared, buf: SharedType) -> list[Request]:
    return _tile_requests(buf, op.value.type, op.offsets, op.vec, True)  # type: ignore[arg-type]


def copy_run(op: O.CopyAsync, threads: int) -> tuple[RegisterLayout, int]:
    """(copy layout, elements per ``cp.async``) as the lowering issues them (1: element by element)."""
    s = op.dst.type
    assert isinstance(s, SharedType)  # noqa: S101
    lay = copy_layout(op, threads)
    bits = element_bits(s)
    run = pow2_factor(lay.contiguous_run(-1), max(1, 128 // bits))
    return lay, run if run * bits in (32, 64, 128) else 1


def _copy_async(op: O.CopyAsync, buf: SharedType, threads: int) -> list[Request]:
    lay, run = copy_run(op, threads)
    t = TileType(buf.dtype, op.dst.type.shape, lay)  # type: ignore[union-attr]
    zero = tuple(Const(0, o.dtype) for o in op.offsets)
    return _tile_requests(op.dst.type, t, zero, run, True)  # type: ignore[arg-type]


Access = tuple[Callable[[O.Op], Value], Callable[..., list[Request]]]

#: op class -> (the shared buffer or view it touches, (op, that buffer's type, threads) -> its requests).
#: Tensor-core work registers ``ldmatrix`` reads here (requests of kind ``"ldmatrix"``).
ACCESSES: dict[type[O.Op], Access] = {
    O.LoadShared: (lambda op: op.src, lambda op, buf, threads: _load_shared(op, buf)),  # type: ignore[attr-defined]
    O.StoreShared: (lambda op: op.dst, lambda op, buf, threads: _store_shared(op, buf)),  # type: ignore[attr-defined]
    O.CopyAsync: (lambda op: op.dst, _copy_async),  # type: ignore[attr-defined]
}


def accessed_buffer(op: O.Op) -> Value | None:
    """The shared buffer (or view) an access op touches, or None when the op is no shared access."""
    entry = ACCESSES.get(type(op))
    return entry[0](op) if entry is not None else None


def requests(op: O.Op, threads: int) -> list[Request]:
    entry = ACCESSES.get(type(op))
    if entry is None:
        return []
    buf = entry[0](op)
    return entry[1](op, buf.type, threads)


def swizzled(addresses: tuple[int, ...], sw: Swizzle | None) -> tuple[int | None, ...]:
    if sw is None:
        return tuple(None if a < 0 else a for a in addresses)
    return tuple(None if a < 0 else sw(a) for a in addresses)


def _cost(r: Request, sw: Swizzle | None) -> int:
    addrs = swizzled(r.addresses, sw)
    if r.kind == "ldmatrix":
        rows = [a for a in addrs if a is not None]
        return banks.ldmatrix_wavefronts(rows, len(rows) // banks.LDMATRIX_ROWS)
    return banks.wavefronts(addrs, r.width)


def wavefronts(reqs: list[Request], sw: Swizzle | None) -> int:
    """Total wavefronts of ``reqs`` when the buffer's byte offsets are swizzled by ``sw`` (the arch.banks model).

    A request moved by a multiple of the swizzle's period (and of the 128 bytes the banks repeat over) costs
    the same, so each distinct shape of request is priced once.
    """
    period = max(banks.NUM_BANKS * banks.BANK_BYTES, sw.period if sw is not None else 0)
    memo: dict[tuple, int] = {}
    total = 0
    for r in reqs:
        live = [a for a in r.addresses if a >= 0]
        if not live:
            continue
        base = min(live) // period * period
        key = (r.kind, r.width, tuple(a - base if a >= 0 else -1 for a in r.addresses))
        cost = memo.get(key)
        if cost is None:
            cost = memo[key] = _cost(Request(key[2], r.width, r.kind), sw)
        total += cost
    return total


def _ideal(r: Request) -> int:
    if r.kind == "ldmatrix":
        return sum(1 for a in r.addresses if a >= 0) // banks.LDMATRIX_ROWS
    step = banks.phase_lanes(r.width)
    total = 0
    for i in range(0, len(r.addresses), step):
        words = {(a + j) // banks.BANK_BYTES for a in r.addresses[i:i + step] if a >= 0
                 for j in range(0, max(r.width, 1), banks.BANK_BYTES)}  # fmt: skip
        if words:
            total += math.ceil(len(words) / banks.NUM_BANKS)
    return total


def ideal_wavefronts(reqs: list[Request]) -> int:
    """The fewest wavefronts the requests can take: one per phase with an active lane (more when a phase
    moves more than 32 distinct words) -- what a conflict-free placement of the same bytes costs."""
    memo: dict[tuple, int] = {}
    total = 0
    for r in reqs:
        live = [a for a in r.addresses if a >= 0]
        if not live:
            continue
        base = min(live) // banks.BANK_BYTES * banks.BANK_BYTES  # a whole number of words: the same words
        key = (r.kind, r.width, tuple(a - base if a >= 0 else -1 for a in r.addresses))
        cost = memo.get(key)
        if cost is None:
            cost = memo[key] = _ideal(r)
        total += cost
    return total


def excess_wavefronts(reqs: list[Request], sw: Swizzle | None) -> int:
    return wavefronts(reqs, sw) - ideal_wavefronts(reqs)
