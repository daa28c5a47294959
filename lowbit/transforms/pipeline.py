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
and zeros, layout 3's plane words) are prefetched one K step ahead as
loop-carried values, so their latency overlaps a step of ``mma`` too.

**Ping-pong pairs.**  A carried prefetch is live across the back edge
together with its successor (the next step's load is issued before this
step's last use), so LLVM and ptxas copy every carried word at the back
edge: one ``mov`` / ``IMAD.MOV`` a word a step (31 of wx_matmul uint7's
758 SASS a step at layout 3).  A loop with prefetched tiles is therefore
emitted as pairs of K steps, each pair carrying register set 0: the first
step reads set 0 and loads set 1, the second reads set 1 and loads the
next set 0, whose lifetime begins after set 0's ends -- the same registers,
no copy.  Then the odd step, under an ``if``::

    for k in range(start, stop - step, 2*step) iter(..., rd, kn = start, set0):
        <step k: read ring[rd], set0; copies into ring[rd-1], set1 = prefetch(k + step)>
        <step k + step: read ring[rd+1], set1; copies into ring[rd], set0' = prefetch(k + 2*step)>
        yield ..., (rd + 2) % S, k + 2*step, set0'
    if kend < stop:                            # an odd trip count (1 included): the last step
        <step kend: read ring[rd], set0; no copies, no prefetch -- nothing reads them>

``kend`` (the carried ``kn``'s result) is where the pairs stopped: ``start``
when they ran zero times, so trip counts 0 and 1 take no pair and 0 skips
the ``if``.  The odd step's wait is right without a copy of its own: the
groups in flight are those of its own step and the ``S - 2`` after it
(zero-filled past the end).  With ``S == 2`` every pair starts at stage 0,
so the stages are constants and nothing is carried for them.  The
unrolled loop's bound ``stop - step`` must not overflow int32 (a K loop's
``stop`` is a size; the single loop's ``k + step`` has the same limit).

The cost rule (:func:`unrolls`): unroll exactly when the loop carries
prefetched tiles -- the only values whose copies the pairs remove; other
loops keep one step an iteration (the pairs would double the body, and
the odd step triple it, for nothing).  Measured at sm_80 (wx_matmul,
16x128x128, 3 stages, static SASS a K step): uint4 382 -> 349, uint7 758
-> 700, reg-to-reg ``IMAD.MOV`` 24 -> 1 and 31 -> 0 a step; an
iteration now consumes two K steps' weights.

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
from lowbit.ir.op_base import Carried
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


def _like(v: Carried) -> Carried:
    """A new scalar or value of ``v``'s kind and type."""
    return Var(v.name, v.dtype) if isinstance(v, Var) else Value(v.type, v.hint)


def _next(rd: Expr, S: int, n: int = 1) -> Expr:
    """``(rd + n) % S`` for a stage ``0 <= rd < S`` and ``0 < n < S`` (one select, no division)."""
    if isinstance(rd, Const):
        return Const((int(rd.value) + n) % S, INT32)
    if n == 1:
        return Select(Binary("eq", rd, Const(S - 1, INT32)), Const(0, INT32), Binary("add", rd, Const(1, INT32)))
    if n == S - 1:
        return _prev(rd, S)
    return Select(Binary("ge", rd, Const(S - n, INT32)), Binary("sub", rd, Const(S - n, INT32)),
                  Binary("add", rd, Const(n, INT32)))


def _prev(rd: Expr, S: int) -> Expr:
    """``(rd - 1) % S`` for a stage ``0 <= rd < S``."""
    if isinstance(rd, Const):
        return _next(rd, S, S - 1)
    return Select(Binary("eq", rd, Const(0, INT32)), Const(S - 1, INT32), Binary("sub", rd, Const(1, INT32)))


def unrolls(plan: _Plan) -> bool:
    """The cost rule: a loop is unrolled into ping-pong pairs exactly when it carries prefetched tiles (the
    only values whose back-edge copies the unroll removes); otherwise the doubled body buys nothing."""
    return bool(plan.prefetched)


@dataclass(frozen=True)
class _Run:
    """What every K step of one pipelined loop shares: the input loop, its plan, the staged loads, their rings."""

    loop: O.For
    plan: _Plan
    loads: list
    rings: list


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
        self._fresh = False  # define every value anew (a loop body emitted more than once)

    def define(self, v: Carried, op: O.Op | None) -> Carried:
        if self._fresh and op is not None:
            return _like(v)
        return v

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
        """``copy_async`` of the staged load's K step ``k`` (in the input program's terms) into ``ring[stage]``."""
        view = self._stage(ring, stage)
        offs = tuple(self.expr(substitute(o, {id(var): k})) for o in lg.offsets)
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
        loads = [s.load for s in plan.staged] + list(plan.direct)
        rings = []
        for lg in loads:
            t = lg.result.type
            ring = Value(SharedType(t.dtype, (S, *t.shape)), "ring")  # type: ignore[union-attr]
            self.emit(O.AllocShared(result=ring, loc=lg.loc))
            rings.append(ring)
        # prologue: the first S-1 K steps in flight, one group each
        for j in range(S - 1):
            kj = _add(loop.start, _times(loop.step, j))
            for lg, ring in zip(loads, rings):
                self._copy(lg, ring, Const(j, INT32), loop.var, kj)
            self.emit(O.CommitGroup(loc=loop.loc))
        first = [self._prefetch(lg, loop.var, loop.start) for lg in plan.prefetched]
        self._skip.update(id(op) for s in plan.staged for op in s.ops)
        self._skip.update(id(b) for b in plan.barriers)
        self._skip.update(id(lg) for lg in plan.prefetched)
        run = _Run(loop, plan, loads, rings)
        if unrolls(plan):
            self._ping_pong(run, first)
        else:
            self._single(run, first)
        self.emit(O.WaitGroup(pending=0, loc=loop.loc))  # copies past the end of K may still be in flight
        for ring in rings:
            self.emit(O.FreeShared(buf=ring, loc=loop.loc))

    # ------------------------------------------------------------------ one K step, and the loops made of them
    def _prefetch(self, lg: O.LoadGlobal, var: Var, k: Expr) -> Value:
        """The prefetched load of K step ``k`` (in the input program's terms), into a new value."""
        v = Value(lg.result.type, lg.result.hint)
        offs = tuple(self.expr(substitute(o, {id(var): k})) for o in lg.offsets)
        self.emit(lg.map_values(self.value, self.expr).replace(result=v, offsets=offs))
        return v

    def _step(self, run: _Run, k: Expr, carried: tuple, pre: list, rd: Expr, wr: Expr | None) -> tuple[tuple, list]:
        """Emit one K step of the pipelined loop at K index ``k`` (an expression of the new program), with the
        input loop's args reading ``carried``, its prefetched loads reading ``pre`` and its staged reads
        ``ring[rd]``; ``wr`` is the stage the step's copies fill (None: the last step, which issues no copies
        and no prefetches -- nothing would read them).  Returns the step's yields and its prefetched values."""
        loop, plan = run.loop, run.plan
        self.bind(loop.var, k)
        for a, c in zip(loop.args, carried):
            self.bind(a, c)
        for lg, v in zip(plan.prefetched, pre):
            self.bind(lg.result, v)
        for s, ring in zip(plan.staged, run.rings):
            self._reads[id(s.read)] = (s, ring, rd)
        for lg, ring in zip(plan.direct, run.rings[len(plan.staged):]):
            self._reads[id(lg)] = (lg, ring, rd)
        self.emit(O.WaitGroup(pending=self.S - 2, loc=loop.loc))
        self.emit(O.Barrier(loc=loop.loc))
        nxt: list = []
        if wr is not None:
            ahead = _add(loop.var, _times(loop.step, self.S - 1))
            for lg, ring in zip(run.loads, run.rings):
                self._copy(lg, ring, wr, loop.var, ahead)
            self.emit(O.CommitGroup(loc=loop.loc))
            nxt = [self._prefetch(lg, loop.var, _add(loop.var, loop.step)) for lg in plan.prefetched]
        for op in loop.body:
            self.visit(op)
        return tuple(self.item(y) for y in loop.yields), nxt

    def _single(self, run: _Run, first: list) -> None:
        """The pipelined loop, one K step an iteration: the stage and the prefetched tiles are carried."""
        loop, S = run.loop, self.S
        var, args = (self._fresh_var(loop.var), tuple(_like(a) for a in loop.args)) if self._fresh else (loop.var, loop.args)
        rd = Var("stage", INT32)
        pre = [Value(lg.result.type, lg.result.hint) for lg in run.plan.prefetched]
        self._bodies.append([])
        try:
            yields, nxt = self._step(run, var, args, pre, rd, _prev(rd, S))
        finally:
            body = tuple(self._bodies.pop())
        results = tuple(self._define(r, loop) for r in loop.results)
        self.emit(O.For(
            var=var, start=self.expr(loop.start), stop=self.expr(loop.stop), step=self.expr(loop.step),
            inits=tuple(self.item(x) for x in loop.inits) + (Const(0, INT32), *first),
            args=(*args, rd, *pre), body=body, yields=(*yields, _next(rd, S), *nxt),
            results=(*results, Var("stage_out", INT32), *(_like(v) for v in pre)), loc=loop.loc,
        ))  # fmt: skip

    def _fresh_var(self, var: Var) -> Var:
        """A new loop index standing for ``var`` (same divisibility facts, for the copies' alignment proofs)."""
        new = Var(var.name, var.dtype)
        self.sel.div.known[id(new)] = self.sel.div(var)
        return new

    def _ping_pong(self, run: _Run, first: list) -> None:
        """The pipelined loop unrolled into pairs of K steps, then the odd step (see the module docstring)."""
        loop, S = run.loop, self.S
        start, stop, step = self.expr(loop.start), self.expr(loop.stop), self.expr(loop.step)
        fresh, self._fresh = self._fresh, True  # the body is emitted three times: every definition anew
        try:
            var, kvar, kend = self._fresh_var(loop.var), self._fresh_var(loop.var), self._fresh_var(loop.var)
            args = tuple(_like(a) for a in loop.args)
            set0 = [Value(lg.result.type, lg.result.hint) for lg in run.plan.prefetched]
            # S == 2: every pair starts at stage 0, so the stages are constants and nothing is carried
            rd = Const(0, INT32) if S == 2 else Var("stage", INT32)
            stage = () if S == 2 else (rd,)
            self._bodies.append([])
            try:
                mid, set1 = self._step(run, var, args, set0, rd, _prev(rd, S))  # ping: reads set 0, loads set 1
                ends, set0_next = self._step(run, Binary("add", var, step), mid, set1, _next(rd, S), rd)  # pong
            finally:
                body = tuple(self._bodies.pop())
            done = tuple(_like(r) for r in loop.results)
            rd_end = Const(0, INT32) if S == 2 else Var("stage_out", INT32)
            set0_end = [Value(v.type, v.hint) for v in set0]
            self.emit(O.For(
                var=var, start=start, stop=Binary("sub", stop, step), step=Binary("mul", step, Const(2, INT32)),
                inits=(*(self.item(x) for x in loop.inits), *(Const(0, INT32) for _ in stage), start, *first),
                args=(*args, *stage, kvar, *set0), body=body,
                yields=(*ends, *(_next(rd, S, 2) for _ in stage), Binary("add", var, _times(step, 2)), *set0_next),
                results=(*done, *((rd_end,) if stage else ()), kend, *set0_end), loc=loop.loc,
            ))  # fmt: skip
            # the odd step, at K index kend (a trip count of 0 or 1 runs no pair)
            self._bodies.append([])
            try:
                last, _ = self._step(run, kend, done, set0_end, rd_end, None)
            finally:
                then = tuple(self._bodies.pop())
        finally:
            self._fresh = fresh
        results = tuple(self._define(r, loop) for r in loop.results)
        self.emit(O.If(cond=Binary("lt", kend, stop), then_body=then, then_yields=last, else_body=(),
                       else_yields=done, results=results, loc=loop.loc))


def run(prog: Program, opts: Options) -> Program:
    if prog.num_stages <= 1:
        return prog
    return _Pipeline(prog, opts).run(prog)

