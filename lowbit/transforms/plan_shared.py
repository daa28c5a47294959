"""Plan shared memory: a byte offset and a swizzle for every buffer, within the target's budget.

Requires: ``select_instructions`` ran: every shared buffer the program
          uses is an explicit ``alloc_shared`` (the DSL's and those the
          conversion routes and the FMA ``dot`` scheme write out), memory
          ops carry their vector widths.
Ensures:  every ``alloc_shared`` has ``offset >= 0`` in the block's one
          shared-memory area, aligned to 16 bytes (128 for a swizzled
          buffer); two buffers whose lifetimes overlap occupy disjoint
          bytes, and a buffer placed over bytes another buffer used before
          is preceded by a ``barrier`` (inserted unless one already
          separates them), so no thread writes it while another still reads
          the old one; every buffer has the swizzle its accesses want
          (a user's is kept; otherwise the candidate with the fewest bank
          wavefronts under :mod:`lowbit.arch.banks`, no swizzle on a tie), carried by its type and its views' types; the peak
          fits the target's opt-in limit, else :class:`CompileError` names
          every buffer with its size.  Above the target's 48 KiB default
          the kernel takes its shared memory dynamically (:func:`storage`).
Preserves: the program's meaning and layouts; op order (barriers aside).

Lifetimes.  Ops are numbered in program order (a loop's body inside the
loop's span).  A buffer lives from its ``alloc_shared`` to its last use or
its ``free_shared`` -- to the end of the body that allocated it when it is
never freed, or when it is the destination of a ``copy_async`` whose data
may still be in flight at the free (no ``wait(0)`` between the last copy
and the free, in the free's body) -- and a use inside a loop that does not
contain the allocation keeps it alive to the end of that loop (the next
iteration uses it again).
Views (``shared_view``) are uses of the buffer they view.  Buffers are
placed largest first, each at the lowest aligned offset clear of every
already placed buffer it lives alongside: deterministic, and for the
interval graphs lifetimes form usually the peak of simultaneously live
bytes.

Swizzles.  For each buffer the requests its accesses issue (lane byte
addresses, :mod:`~lowbit.transforms._shared_access`) are priced under the
candidate swizzles (:func:`candidates`; searching on an even sample of
:data:`SAMPLE` requests, stopping at the fewest possible, then pricing the
choice on all of them); a buffer used through views only considers
swizzles whose period divides the view (stage) size, so one stage's
pattern is every stage's.  Candidates move whole chunks at least as wide as
the buffer's widest access, so no access is split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lowbit.arch import target as get_target
from lowbit.errors import CompileError
from lowbit.ir import ops as O
from lowbit.ir.op_base import Loc
from lowbit.ir.program import Program
from lowbit.ir.rewrite import Rewriter, walk
from lowbit.ir.types import SharedType, Value
from lowbit.layout.strided import Layout
from lowbit.layout.swizzle import Swizzle
from lowbit.transforms import _shared_access as acc
from lowbit.transforms.options import Options

__all__ = ["ALIGN", "SAMPLE", "SWIZZLED_ALIGN", "candidates", "BufferPlan", "SharedStorage", "buffer_bytes", "plan", "run",
           "storage"]  # fmt: skip

ALIGN = 16  # every buffer: the widest access (16-byte vectors, cp.async) stays inside it and aligned
SWIZZLED_ALIGN = 128  # a swizzled buffer: bank k of its offset is bank k of the address

#: Requests priced per candidate while searching (evenly sampled; the choice is then priced on all of them).
SAMPLE = 96


def candidates(t: SharedType, reqs: list[acc.Request]) -> list[Swizzle]:
    """Swizzles that keep every access of the buffer whole: chunks of ``2**base`` bytes at least as wide as its
    widest access (16-byte vectors and cp.async: base 4), XORed with ``bits`` bits of the offset ``shift``
    higher (the row index, for rows of ``2**(base + shift)`` bytes).  The classic choice for the buffer's row
    length comes first (rows of 128 bytes and 16-byte chunks: Sw<3,4,3>)."""
    widest = max((16 if r.kind == "ldmatrix" else r.width for r in reqs), default=16)
    row = t.shape[-1] * acc.element_bits(t) // 8
    out: list[Swizzle] = []
    for base in (4, 3, 2):
        if 1 << base < widest:
            continue
        natural = max(1, (row.bit_length() - 1) - base) if row else 3
        for bits in range(7 - base, 0, -1):
            shifts = [natural] + [s for s in range(bits, 8) if s != natural]
            out += [Swizzle(bits, base, s) for s in shifts if s >= bits]
    return out


def buffer_bytes(t: SharedType) -> int:
    """Bytes the buffer occupies: its packed elements, rounded up to 16 (and to a swizzle's row block)."""
    n = -(-math.prod(t.shape) * acc.element_bits(t) // 8)
    unit = ALIGN
    sw = acc.swizzle_of(t)
    if sw is not None:
        unit = max(unit, 1 << (sw.base + sw.bits))
    return -(-n // unit) * unit


def _align(t: SharedType) -> int:
    return SWIZZLED_ALIGN if acc.swizzle_of(t) is not None else ALIGN


@dataclass(frozen=True)
class BufferPlan:
    """Where one buffer went: its allocation op, type (with the chosen swizzle), offset, bytes, live span."""

    alloc: O.AllocShared
    type: SharedType
    offset: int
    size: int
    start: int
    end: int
    wavefronts: int  # of its accesses (per block, all warps) under its swizzle
    ideal: int  # the fewest they could take

    @property
    def name(self) -> str:
        return self.alloc.result.hint or "buffer"


@dataclass(frozen=True)
class SharedStorage:
    """How the lowering declares the area: total bytes, dynamic (above the default limit) or static."""

    total: int
    dynamic: bool
    align: int


# ------------------------------------------------------------------------------------------ lifetimes


class _Lifetimes:
    """Program-order positions, loop spans, and each buffer's live interval."""

    def __init__(self, prog: Program) -> None:
        self.pos: dict[int, int] = {}
        self.loops: list[tuple[int, int]] = []  # spans of For ops
        self.region_end: dict[int, int] = {}  # op id -> last position of the body that holds it
        self.parent: dict[int, int] = {}  # op id -> id of the body (tuple) that holds it
        self.counter = 0
        self._number(prog.body)
        self.base: dict[int, Value] = {}  # view id -> the allocated buffer it views
        self.allocs: list[O.AllocShared] = []
        self.copied: dict[int, int] = {}  # buffer id -> position of its last copy_async
        self.freed: dict[int, tuple[int, int]] = {}  # buffer id -> (position, id of the body) of its free
        self.uses: dict[int, list[int]] = {}
        self.waits: dict[int, list[int]] = {}  # body id -> positions of its wait(0)s
        for op in walk(prog.body):
            self._scan(op)

    def _number(self, body: tuple[O.Op, ...]) -> int:
        first = self.counter
        for op in body:
            self.pos[id(op)] = self.counter
            self.parent[id(op)] = id(body)
            self.counter += 1
            for r in op.regions():
                self._number(r.body)
            if isinstance(op, O.For):
                self.loops.append((self.pos[id(op)], self.counter - 1))
        last = self.counter - 1
        for op in body:
            self.region_end[id(op)] = last
        return first

    def root(self, v: Value) -> Value:
        while id(v) in self.base:
            v = self.base[id(v)]
        return v

    def _scan(self, op: O.Op) -> None:
        p = self.pos[id(op)]
        if isinstance(op, O.AllocShared):
            self.allocs.append(op)
            self.uses.setdefault(id(op.result), [])
            return
        if isinstance(op, O.SharedView):
            self.base[id(op.result)] = op.buf
        if isinstance(op, O.FreeShared):
            if id(op.buf) not in self.base:  # freeing a view frees nothing (the DSL refuses it)
                self.freed[id(op.buf)] = (p, self.parent[id(op)])
            return
        if isinstance(op, O.WaitGroup) and op.pending == 0:
            self.waits.setdefault(self.parent[id(op)], []).append(p)
        if isinstance(op, O.CopyAsync):
            self.copied[id(self.root(op.dst))] = p
        for v in op.uses():
            if isinstance(v, Value) and isinstance(v.type, SharedType):
                self.uses.setdefault(id(self.root(v)), []).append(p)

    def _retired(self, key: int) -> bool:
        """Whether no copy into the buffer can still be in flight at its free: a ``wait(0)`` in the free's own
        body lies between the last copy and the free (otherwise the data may land after the free)."""
        if key not in self.copied:
            return True
        free, body = self.freed[key]
        return any(self.copied[key] < w < free for w in self.waits.get(body, []))

    def interval(self, a: O.AllocShared) -> tuple[int, int]:
        start = self.pos[id(a)]
        key = id(a.result)
        end = max([start, *self.uses.get(key, [])])
        if key in self.freed and self._retired(key):
            end = max(end, self.freed[key][0])
        else:
            end = max(end, self.region_end[id(a)])
        # a use inside a loop that the allocation is outside of: alive to that loop's end
        for lo, hi in self.loops:
            if not lo <= start <= hi and any(lo <= u <= hi for u in self.uses.get(key, [])):
                end = max(end, hi)
        return start, end


# ------------------------------------------------------------------------------------------ swizzles


def _choose_swizzle(t: SharedType, reqs: list[acc.Request], stage_bytes: set[int]) -> tuple[SharedType, int, int]:
    """(the buffer's type with its swizzle, its accesses' wavefronts under it, the fewest they could take)."""
    ideal = acc.ideal_wavefronts(reqs)
    if t.layout is not None or not reqs:
        return t, acc.wavefronts(reqs, acc.swizzle_of(t)), ideal
    none = acc.wavefronts(reqs, None)
    if none == ideal:
        return t, none, ideal
    sample = reqs if len(reqs) <= SAMPLE else [reqs[i * len(reqs) // SAMPLE] for i in range(SAMPLE)]
    floor = acc.ideal_wavefronts(sample)
    best, best_cost = None, acc.wavefronts(sample, None)
    for sw in candidates(t, reqs):
        if any(s % sw.period for s in stage_bytes):
            continue
        cost = acc.wavefronts(sample, sw)
        if cost < best_cost:
            best, best_cost = sw, cost
            if cost == floor:
                break
    if best is None:
        return t, none, ideal
    cost = acc.wavefronts(reqs, best)
    return (SharedType(t.dtype, t.shape, best), cost, ideal) if cost < none else (t, none, ideal)


# ------------------------------------------------------------------------------------------ the plan


def _where(loc: Loc | None) -> str:
    return f" (line {loc.line})" if loc is not None else ""


def _check_layout(a: O.AllocShared) -> None:
    t = a.result.type
    lay = t.layout  # type: ignore[union-attr]
    if lay is None or isinstance(lay, Swizzle):
        return
    if isinstance(lay, Layout) and all(lay(idx) == i for i, idx in enumerate(np.ndindex(*t.shape))):  # type: ignore[union-attr]
        return  # the dense row-major layout, stated
    raise CompileError(f"alloc_shared{_where(a.loc)}: shared layout {lay.to_text()} is not supported; shared buffers "
                       "are dense and row-major, optionally swizzled (layout=lowbit.layout.Swizzle(bits, base, shift))")


def plan(prog: Program, opts: Options) -> list[BufferPlan]:
    """Offsets, swizzles and live spans of every buffer of ``prog`` (raises CompileError over budget)."""
    life = _Lifetimes(prog)
    for a in life.allocs:
        _check_layout(a)
    threads = prog.num_warps * 32
    reqs: dict[int, list[acc.Request]] = {id(a.result): [] for a in life.allocs}
    stages: dict[int, set[int]] = {id(a.result): set() for a in life.allocs}
    for op in walk(prog.body):
        if isinstance(op, O.SharedView):
            stages[id(life.root(op.buf))].add(_view_bytes(op))
        buf = acc.accessed_buffer(op)
        if buf is not None:
            reqs[id(life.root(buf))].extend(acc.requests(op, threads))
    chosen = {id(a): _choose_swizzle(a.result.type, reqs[id(a.result)], stages[id(a.result)])  # type: ignore[arg-type]
              for a in life.allocs}  # fmt: skip
    placed: list[BufferPlan] = []
    for a in sorted(life.allocs, key=lambda a: (-buffer_bytes(chosen[id(a)][0]), life.pos[id(a)])):
        t, cost, ideal = chosen[id(a)]
        size, align = buffer_bytes(t), _align(t)
        start, end = life.interval(a)
        clash = sorted((p.offset, p.offset + p.size) for p in placed if p.start <= end and start <= p.end)
        off = 0
        for lo, hi in clash:
            if off + size <= lo:
                break
            off = max(off, -(-hi // align) * align)
        placed.append(BufferPlan(a, t, off, size, start, end, cost, ideal))
    placed.sort(key=lambda p: p.start)
    _check_budget(prog, placed, opts)
    return placed


def _view_bytes(op: O.SharedView) -> int:
    t = op.result.type
    return math.prod(t.shape) * acc.element_bits(t) // 8  # type: ignore[union-attr]


def _check_budget(prog: Program, placed: list[BufferPlan], opts: Options) -> None:
    tgt = get_target(opts.arch)
    total = max((p.offset + p.size for p in placed), default=0)
    if total <= tgt.max_shared_per_block_optin:
        return
    # the moment of the peak: the start of the buffer whose placement reaches furthest
    top = max(placed, key=lambda p: p.offset + p.size)
    live = [p for p in placed if p.start <= top.start <= p.end]
    lines = [f"  {p.name}: {p.type} {p.size} bytes{_where(p.alloc.loc)}"
             + (" [live at the peak]" if p in live else "") for p in placed]  # fmt: skip
    raise CompileError(
        f"kernel {prog.name} needs {total} bytes of shared memory ({sum(p.size for p in live)} bytes live at "
        f"once), more than the {tgt.max_shared_per_block_optin} bytes a block may have on {tgt.name}; "
        f"its shared buffers:\n" + "\n".join(lines) + "\nuse smaller tiles or fewer stages"
    )


def storage(prog: Program, arch: str) -> SharedStorage:
    """How the planned area is declared: static up to the target's 48 KiB default, dynamic above it."""
    total, align = 0, ALIGN
    for op in walk(prog.body):
        if isinstance(op, O.AllocShared):
            t = op.result.type
            if op.offset < 0:
                raise CompileError(f"alloc_shared{_where(op.loc)}: the buffer has no planned offset (run plan_shared)")
            total = max(total, op.offset + buffer_bytes(t))  # type: ignore[arg-type]
            align = max(align, _align(t))  # type: ignore[arg-type]
    return SharedStorage(total, total > get_target(arch).default_max_shared, align)


# ------------------------------------------------------------------------------------------ the rewrite


class _Apply(Rewriter):
    def __init__(self, plans: list[BufferPlan], barriers: set[int]) -> None:
        super().__init__()
        self.plans = {id(p.alloc): p for p in plans}
        self.barriers = barriers

    def visit(self, op: O.Op) -> None:
        if isinstance(op, O.AllocShared):
            p = self.plans[id(op)]
            if id(op) in self.barriers:
                self.emit(O.Barrier(loc=op.loc))
            r = op.result if p.type == op.result.type else Value(p.type, op.result.hint)
            if r is not op.result:
                self.bind(op.result, r)
            self.emit(O.AllocShared(result=r, offset=p.offset, loc=op.loc))
        elif isinstance(op, O.SharedView):
            buf = self.value(op.buf)
            t = op.result.type
            r = op.result
            if buf.type.layout != t.layout:  # type: ignore[union-attr]
                r = Value(SharedType(t.dtype, t.shape, buf.type.layout), op.result.hint)  # type: ignore[union-attr]
                self.bind(op.result, r)
            self.emit(O.SharedView(result=r, buf=buf, indices=tuple(self.expr(i) for i in op.indices), loc=op.loc))
        else:
            super().visit(op)


def _needs_barrier(prog: Program, plans: list[BufferPlan], life: _Lifetimes) -> set[int]:
    """Allocations whose bytes held another buffer before (another buffer placed over them, or the same
    allocation in the previous iteration of a loop), unless a barrier follows them before any access."""
    out: set[int] = set()
    for p in plans:
        shared = any(q is not p and q.offset < p.offset + p.size and p.offset < q.offset + q.size for q in plans)
        in_loop = any(lo < p.start <= hi for lo, hi in life.loops)
        if shared or in_loop:
            out.add(id(p.alloc))
    for body in _bodies(prog.body):
        for i, op in enumerate(body):
            if id(op) not in out:
                continue
            for nxt in body[i + 1:]:
                if isinstance(nxt, O.Barrier):
                    out.discard(id(op))
                    break
                if not isinstance(nxt, O.AllocShared | O.SharedView | O.GlobalView):
                    break
    return out


def _bodies(body: tuple[O.Op, ...]):  # noqa: ANN202
    yield body
    for op in body:
        for r in op.regions():
            yield from _bodies(r.body)


def run(prog: Program, opts: Options) -> Program:
    plans = plan(prog, opts)
    if not plans:
        return prog
    return _Apply(plans, _needs_barrier(prog, plans, _Lifetimes(prog))).run(prog)
