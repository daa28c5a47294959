"""Software pipelining: a K loop's shared-memory staging becomes a ``num_stages``-deep ``cp.async`` ring.

After instruction selection a tile that reaches its consumer through shared
memory (an ``ldmatrix``-fed ``dot`` operand, the words a gathering view
reads) is, inside the loop body, the fixed sequence select writes::

    x = load_global(view, offsets(k))          # registers, coalesced
    [x = permute(x)]                           # a transposed buffer
    buf = alloc_shared(); barrier(); store_shared(buf, x); barrier()
    y = load_shared(buf) {via / vec}; free_shared(buf)
    [y = permute(y)]

With ``S = num_stages > 1`` this pass turns every such sequence of a loop
into a ring ``shared<T, [S, ...]>`` fed by asynchronous copies that run
``S - 1`` K steps ahead (PTX ISA 9.7.9.25, ``cp.async`` /
``cp.async.commit_group`` / ``cp.async.wait_group``)::

    ring = alloc_shared()                      # one per staged tile
    copy_async(ring[j], view, offsets(start + j*step)); commit   for j < S-1
    for k ... iter(..., rd = 0):
        wait(S - 2); barrier()                 # stage rd landed; stage rd-1 is read by nobody
        copy_async(ring[(rd - 1) % S], view, offsets(k + (S-1)*step)); commit
        y = load_shared(ring[rd])              # then the body as before
        yield ..., (rd + 1) % S
    wait(0); free_shared(ring)

One barrier per K step does both jobs: the stage about to be read is
complete for every thread (each waited on its own copies), and the stage
about to be overwritten was last read in the previous iteration, before the
barrier.  Copies past the end of K read nothing and zero-fill (their
source size is 0), so the group count stays the same in every iteration and
the tail needs no epilogue loop; a K loop that runs zero times only waits.
A transposed buffer becomes a natural one (16-byte copies cannot
transpose); the read takes the transposed layout instead.

Small tiles loaded straight into registers in the same loop (group scales
and zeros) are prefetched one K step ahead as loop-carried values, so
their latency overlaps a step of ``mma`` too.

A loop is pipelined only when nothing in it writes global memory (the
copies and prefetches read ahead of its iterations) and every staged load
reads a view defined outside the loop at offsets that depend on the loop
index and on values from outside only, with no mask and a zero fill value.
Anything else keeps its select-time form: the pass never changes what a
program computes, only when its loads are issued.
"""

from __future__ import annotations

from dataclasses import dataclass


from lowbit.ir import ops as O
from lowbit.ir.expr import Binary, Const, Expr, Select, Var, free_vars, substitute
from lowbit.ir.program import Program
from lowbit.ir.rewrite import Rewriter, walk
from lowbit.ir.types import INT32, SharedType, TileType, Value
from lowbit.transforms.options import Options

__all__ = ["run"]

#: a prefetched register tile may take at most this many 32-bit registers a thread (it is live a whole step)
PREFETCH_REGS = 16


@dataclass(frozen=True)
class _Staged:
    """One staged tile of a loop: the ops select wrote for it, by role."""

    load: O.LoadGlobal
    permute_in: O.Permute | None
    alloc: O.AllocShared
    store: O.StoreShared
    read: O.LoadShared
    free: O.FreeShared
    permute_out: O.Permute | None

    @property
    def ops(self) -> list[O.Op]:
        """Every op of the sequence except the read (which is replaced in place)."""
        out: list[O.Op] = [self.load, self.alloc, self.store, self.free]
        return out + [p for p in (self.permute_in, self.permute_out) if p is not None]


@dataclass(frozen=True)
class _Plan:
    staged: tuple[_Staged, ...]
    direct: tuple[O.LoadGlobal, ...]  # large tiles loaded straight into registers: staged through a ring too
    prefetched: tuple[O.LoadGlobal, ...]
    barriers: tuple[O.Barrier, ...]  # select's barriers around the staged stores (dropped)


def _uses(body: tuple[O.Op, ...]) -> dict[int, list[O.Op]]:
    """id(value) -> the ops (at any depth, yields of nested loops as their op) that read it."""
    out: dict[int, list[O.Op]] = {}
    for op in walk(body):
        items = list(op.uses())
        for r in op.regions():
            items.extend(r.yields)
        for x in items:
            if isinstance(x, Value):
                out.setdefault(id(x), []).append(op)
    return out


def _defined_inside(loop: O.For) -> set[int]:
    """ids of every scalar and value the loop body (or the loop's own region) defines."""
    out = {id(loop.var)} | {id(a) for a in loop.args}
    for op in walk(loop.body):
        out.update(id(d) for d in op.defs())
        for r in op.regions():
            out.update(id(a) for a in r.args)
    return out


def _invariant_offsets(offsets: tuple[Expr, ...], loop: O.For, inside: set[int]) -> bool:
    """Every offset depends on the loop index and on scalars from outside the loop only."""
    return all(id(v) not in inside or v is loop.var for e in offsets for v in free_vars(e))


def _is_zero(offsets: tuple[Expr, ...]) -> bool:
    return all(isinstance(o, Const) and o.value == 0 for o in offsets)


def _transposes(op: O.Op | None) -> bool:
    return isinstance(op, O.Permute) and tuple(op.order) == (1, 0)


def _plan(loop: O.For) -> _Plan | None:
    body = loop.body
    if any(isinstance(op, O.StoreGlobal | O.Atomic) for op in walk(body)):
        return None  # copies would read ahead of this loop's own writes
    if not (isinstance(loop.step, Const) or all(id(v) not in _defined_inside(loop) for v in free_vars(loop.step))):
        return None
    inside = _defined_inside(loop)
    uses = _uses(body)
    producer = {id(d): op for op in body for d in op.defs()}
    only = lambda v, op: [u for u in uses.get(id(v), [])] == [op]  # noqa: E731
    staged: list[_Staged] = []
    barriers: list[O.Barrier] = []
    for i, op in enumerate(body):
        if not isinstance(op, O.AllocShared) or i + 5 >= len(body):
            continue
        b1, st, b2, rd, fr = body[i + 1 : i + 6]
        buf = op.result
        if not (isinstance(b1, O.Barrier) and isinstance(st, O.StoreShared) and isinstance(b2, O.Barrier)
                and isinstance(rd, O.LoadShared) and isinstance(fr, O.FreeShared)):  # fmt: skip
            continue
        if st.dst is not buf or rd.src is not buf or fr.buf is not buf or len(uses.get(id(buf), [])) != 3:
            continue
        if not (_is_zero(st.offsets) and _is_zero(rd.offsets)) or st.value.type.shape != buf.type.shape:  # type: ignore[union-attr]
            continue
        pin = producer.get(id(st.value))
        src = pin.x if _transposes(pin) else st.value  # type: ignore[union-attr]
        if _transposes(pin) and not only(pin.result, st):  # type: ignore[union-attr]
            continue
        lg = producer.get(id(src))
        if not isinstance(lg, O.LoadGlobal) or not only(lg.result, pin if _transposes(pin) else st):
            continue
        if lg.mask is not None or lg.other != 0 or id(lg.src) in inside or not _invariant_offsets(lg.offsets, loop, inside):
            continue
        pout = None
        if _transposes(pin):  # the read must be transposed back, and only that
            cons = uses.get(id(rd.result), [])
            if len(cons) != 1 or not _transposes(cons[0]) or cons[0] not in body:
                continue
            pout = cons[0]
        staged.append(_Staged(lg, pin if _transposes(pin) else None, op, st, rd, fr, pout))  # type: ignore[arg-type]
        barriers += [b1, b2]
    taken = {id(s.load) for s in staged}
    prefetched, direct = [], []
    for op in body:
        if not isinstance(op, O.LoadGlobal) or id(op) in taken:
            continue
        if op.mask is not None or op.other != 0 or id(op.src) in inside or not _invariant_offsets(op.offsets, loop, inside):
            continue
        t = op.result.type
        regs = t.layout.local_size * max(t.dtype.bits, 32) // 32  # type: ignore[union-attr]
        if regs <= PREFETCH_REGS:
            prefetched.append(op)
        elif t.dtype.bits % 8 == 0 and t.dtype.bits <= 64:  # type: ignore[union-attr] - whole bytes: cp.async runs
            direct.append(op)
    if not staged and not direct:
        return None
    return _Plan(tuple(staged), tuple(direct), tuple(prefetched), tuple(barriers))


def _add(a: Expr, b: Expr) -> Expr:
    if isinstance(b, Const) and b.value == 0:
        return a
    return Binary("add", a, b)


def _times(e: Expr, n: int) -> Expr:
    return Const(0, e.dtype) if n == 0 else e if n == 1 else Binary("mul", e, Const(n, e.dtype))


class _Pipeline(Rewriter):
    def __init__(self, prog: Program, opts: Options) -> None:
        super().__init__()
        from lowbit.transforms.select_instructions import _Select  # noqa: PLC0415 - its vector-width rules

        self.S = prog.num_stages
        self.sel = _Select(prog, opts)
        for op in walk(prog.body):  # the views' shapes and strides, for the copies' alignment proofs
            if isinstance(op, O.GlobalView):
                self.sel.views[id(op.result)] = op
        self._skip: set[int] = set()
        self._reads: dict[int, tuple[_Staged | O.LoadGlobal, Value, Expr]] = {}

    def visit(self, op: O.Op) -> None:
        if id(op) in self._skip:
            return
        if id(op) in self._reads:
            self._read(*self._reads[id(op)])
            return
        if isinstance(op, O.For) and op.var.dtype == INT32:
            plan = _plan(op)
            if plan is not None:
                self._pipelined(op, plan)
                return
        self.emit(self.copy(op))

    # ------------------------------------------------------------------ the transformed loop
    def _copy(self, lg: O.LoadGlobal, ring: Value, stage: Expr, var: Var, k: Expr) -> None:
        """``copy_async`` of the staged load's K step ``k`` into ``ring[stage]``."""
        view = self._stage(ring, stage)
        offs = tuple(substitute(self.expr(o), {id(var): k}) for o in lg.offsets)
        cp = O.CopyAsync(dst=view, src=self.value(lg.src), offsets=offs, l2=lg.l2, prefetch=lg.prefetch, loc=lg.loc)
        self.emit(self.sel.vectorize_copy(cp))

    def _stage(self, ring: Value, stage: Expr) -> Value:
        t = ring.type
        assert isinstance(t, SharedType)  # noqa: S101
        v = Value(SharedType(t.dtype, t.shape[1:], t.layout), "stage")
        self.emit(O.SharedView(result=v, buf=ring, indices=(stage,)))
        self.sel.stage_views.add(id(v))
        return v

    def _read(self, s: _Staged | O.LoadGlobal, ring: Value, stage: Expr) -> None:
        """The staged tile's read, from ``ring[stage]`` (transposed buffers read the natural one; a direct load
        reads its own layout)."""
        view = self._stage(ring, stage)
        if isinstance(s, O.LoadGlobal):
            zeros = tuple(Const(0, INT32) for _ in s.offsets)
            new = Value(s.result.type, s.result.hint)
            self.emit(self.sel.vectorize_shared(O.LoadShared(result=new, src=view, offsets=zeros, loc=s.loc)))
            self.bind(s.result, new)
            return
        zeros = tuple(Const(0, INT32) for _ in s.load.offsets)
        if s.permute_out is None:
            new = Value(s.read.result.type, s.read.result.hint)
            self.emit(s.read.replace(result=new, src=view, offsets=zeros))
            self.bind(s.read.result, new)
            return
        t = s.permute_out.result.type  # the natural tile, in the layout the consumers want
        assert isinstance(t, TileType)  # noqa: S101
        new = Value(t, s.permute_out.result.hint)
        load = O.LoadShared(result=new, src=view, offsets=zeros, loc=s.read.loc)
        self.emit(self.sel.vectorize_shared(load))
        self.bind(s.permute_out.result, new)

    def _pipelined(self, loop: O.For, plan: _Plan) -> None:
        S = self.S
        start, step = self.expr(loop.start), self.expr(loop.step)
        loads = [s.load for s in plan.staged] + list(plan.direct)
        rings = []
        for lg in loads:
            t = lg.result.type
            ring = Value(SharedType(t.dtype, (S, *t.shape)), "ring")  # type: ignore[union-attr]
            self.emit(O.AllocShared(result=ring, loc=lg.loc))
            rings.append(ring)
        # prologue: the first S-1 K steps in flight, one group each
        for j in range(S - 1):
            kj = _add(start, _times(step, j))
            for lg, ring in zip(loads, rings):
                self._copy(lg, ring, Const(j, INT32), loop.var, kj)
            self.emit(O.CommitGroup(loc=loop.loc))
        first = []
        for lg in plan.prefetched:
            v = Value(lg.result.type, lg.result.hint)
            offs = tuple(substitute(self.expr(o), {id(loop.var): start}) for o in lg.offsets)
            self.emit(self.copy(lg).replace(result=v, offsets=offs))
            first.append(v)
        # the loop
        rd = Var("stage", INT32)
        args = [Value(lg.result.type, lg.result.hint) for lg in plan.prefetched]
        self._skip.update(id(op) for s in plan.staged for op in s.ops)
        self._skip.update(id(b) for b in plan.barriers)
        self._skip.update(id(lg) for lg in plan.prefetched)
        for s, ring in zip(plan.staged, rings):
            self._reads[id(s.read)] = (s, ring, rd)
        for lg, ring in zip(plan.direct, rings[len(plan.staged):]):
            self._reads[id(lg)] = (lg, ring, rd)
        for lg, a in zip(plan.prefetched, args):
            self.bind(lg.result, a)
        self._bodies.append([])
        try:
            self.emit(O.WaitGroup(pending=S - 2, loc=loop.loc))
            self.emit(O.Barrier(loc=loop.loc))
            wr = Select(Binary("eq", rd, Const(0, INT32)), Const(S - 1, INT32), Binary("sub", rd, Const(1, INT32)))
            ahead = _add(loop.var, _times(step, S - 1))
            for lg, ring in zip(loads, rings):
                self._copy(lg, ring, wr, loop.var, ahead)
            self.emit(O.CommitGroup(loc=loop.loc))
            nxt = []
            for lg in plan.prefetched:
                v = Value(lg.result.type, lg.result.hint)
                offs = tuple(substitute(self.expr(o), {id(loop.var): _add(loop.var, step)}) for o in lg.offsets)
                self.emit(self.copy(lg).replace(result=v, offsets=offs))
                nxt.append(v)
            for op in loop.body:
                self.visit(op)
            yields = tuple(self.item(y) for y in loop.yields)
        finally:
            body = tuple(self._bodies.pop())
        rd_next = Select(Binary("eq", rd, Const(S - 1, INT32)), Const(0, INT32), Binary("add", rd, Const(1, INT32)))
        extra_results = [Var("stage_out", INT32)] + [Value(a.type, a.hint) for a in args]
        self.emit(O.For(
            var=loop.var, start=start, stop=self.expr(loop.stop), step=step,
            inits=tuple(self.item(x) for x in loop.inits) + (Const(0, INT32), *first),
            args=(*loop.args, rd, *args), body=body, yields=(*yields, rd_next, *nxt),
            results=(*loop.results, *extra_results), loc=loop.loc,
        ))  # fmt: skip
        self.emit(O.WaitGroup(pending=0, loc=loop.loc))  # copies past the end of K may still be in flight
        for ring in rings:
            self.emit(O.FreeShared(buf=ring, loc=loop.loc))


def run(prog: Program, opts: Options) -> Program:
    if prog.num_stages <= 1:
        return prog
    return _Pipeline(prog, opts).run(prog)

