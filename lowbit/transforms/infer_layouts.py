"""Give every register tile a layout, and make each layout change an explicit ``convert_layout``.

Requires: a verified VM program (user layouts on some tiles, or none).
Ensures:  every register tile value carries a :class:`RegisterLayout` that
          spans the block's threads; for every op, its tiles' layouts
          satisfy its rule (:mod:`~lowbit.transforms._layout_rules`), so it
          lowers without moving data between threads -- where a producer's
          and a consumer's layouts differ, a ``convert_layout`` sits between
          them (route not selected yet); loop-carried and ``if`` values have
          one layout across inits, block arguments, yields and results.
Preserves: the program's meaning (``convert_layout`` is the identity), user
          layouts, op order, source locations.

How layouts are chosen, in three rounds of increasing freedom, each
followed by propagation to a fixpoint through every op's rule in both
directions (an op assigns its operands what it requires of them and its
results what it produces, where those are still unknown):

1. strict -- layouts the program states: user ``layout=`` arguments,
   ``convert_layout`` results, ``thread_index``;
2. common -- each op's anchor (coalesced 16-byte runs for loads and
   stores, the FMA block layout for ``dot`` accumulators): loads and dots
   before stores (data flows from where it is read; a store can take any
   layout), largest tiles first, then program order -- a small tile (a row
   of scales) takes the layout its large neighbours imply instead of
   imposing its own;
3. free -- any tile still without a layout gets the coalesced default.

Conflicts (two sides already fixed differently) are resolved afterwards:
an operand is converted to what its op requires, and a result its op
produces in another layout than assigned is produced that way and
converted after.  Two strict layouts that meet are an error at the op's
line.  Everything is deterministic: ops are visited in program order.
"""

from __future__ import annotations

from collections import deque

from lowbit.errors import CodegenError
from lowbit.ir import ops as O
from lowbit.ir.program import Program
from lowbit.ir.rewrite import Rewriter, walk
from lowbit.ir.types import TileType, Value
from lowbit.layout.register import RegisterLayout
from lowbit.transforms._costs import direct_load_cost, shared_conversion_cost
from lowbit.transforms._layout_rules import Env, Tied, default_layout, memory_layout, rule, tile_operands, tile_results
from lowbit.transforms.options import Options

__all__ = ["run"]


def _is_tile(v: object) -> bool:
    return isinstance(v, Value) and isinstance(v.type, TileType)


def _where(op: O.Op | None) -> str:
    return f"{op.loc}: " if op is not None and op.loc is not None else ""


class _Graph:
    """Who defines and who uses each tile; the carried groups of loops and branches."""

    def __init__(self, prog: Program) -> None:
        self.ops: list[O.Op] = list(walk(prog.body))
        self.order = {id(op): i for i, op in enumerate(self.ops)}
        self.producer: dict[int, O.Op] = {}
        self.users: dict[int, list[O.Op]] = {}
        self.values: dict[int, Value] = {}
        self.groups: dict[int, list[Value]] = {}  # value id -> its carried group (loops / ifs)
        for op in self.ops:
            for v in tile_results(op):
                self._def(v, op)
            for v in tile_operands(op):
                self._use(v, op)
            if isinstance(op, O.For):
                for a in op.args:
                    if _is_tile(a):
                        self._def(a, op)
                for init, arg, y, res in zip(op.inits, op.args, op.yields, op.results):
                    if _is_tile(arg):
                        self._use(y, op)
                        self._group([init, arg, y, res])
            elif isinstance(op, O.If):
                for ty, ey, res in zip(op.then_yields, op.else_yields, op.results):
                    if _is_tile(res):
                        self._use(ty, op)
                        self._use(ey, op)
                        self._group([ty, ey, res])

    def _def(self, v: Value, op: O.Op) -> None:
        self.values[id(v)] = v
        self.producer[id(v)] = op

    def _use(self, v: Value, op: O.Op) -> None:
        self.values[id(v)] = v
        self.users.setdefault(id(v), []).append(op)

    def _group(self, members: list[Value]) -> None:
        merged: list[Value] = []
        for m in members:
            for x in self.groups.get(id(m), [m]):
                if all(x is not y for y in merged):
                    merged.append(x)
        for x in merged:
            self.groups[id(x)] = merged


class _Infer:
    def __init__(self, prog: Program, arch: str, tensor_cores: bool = True) -> None:
        self.prog = prog
        self.T = prog.num_warps * 32
        self.env = Env(self.T, arch, tensor_cores)
        self.g = _Graph(prog)
        self.lay: dict[int, RegisterLayout] = {}
        self.strict: dict[int, O.Op | None] = {}  # value id -> the op that fixed it strictly
        self.round_ = "strict"
        self.queue: deque[O.Op] = deque()

    def get(self, v: Value) -> RegisterLayout | None:
        return self.lay.get(id(v))

    def assign(self, v: Value, layout: RegisterLayout, op: O.Op | None) -> None:
        if id(v) in self.lay:
            return
        if op is not self.g.producer.get(id(v)) and not self._loads_well(v, layout):
            return  # this load reads in its coalesced layout; a conversion will feed the consumer
        shape = v.type.shape  # type: ignore[union-attr]
        if layout.num_threads != self.T or layout.rank != len(shape) or any(a < b for a, b in zip(layout.shape, shape)):
            raise CodegenError(f"{_where(op)}layout {layout} does not fit a {list(v.type.shape)} tile "  # type: ignore[union-attr]
                               f"over the kernel's {self.T} threads (num_warps={self.prog.num_warps})")  # fmt: skip
        for m in self.g.groups.get(id(v), [v]):
            if id(m) not in self.lay:
                self.lay[id(m)] = layout
                self._touch(m)

    def _loads_well(self, v: Value, layout: RegisterLayout) -> bool:
        """Whether a global load may read ``v`` straight into ``layout`` (a layout reaching it from a consumer).

        A big tile read in narrow, scattered pieces (an mma fragment: 4-byte
        pairs, 8 rows per instruction) can cost more instructions and sectors
        than a 16-byte coalesced load and a conversion through shared memory
        (read with ``ldmatrix``): :mod:`~lowbit.transforms._costs` decides.
        Small tiles (a few slots per thread: scales, zero points) load in any
        layout that reads no element in more threads than a coalesced load would
        (replicated words would read each weight byte several times).
        """
        p = self.g.producer.get(id(v))
        if not isinstance(p, O.LoadGlobal):
            return True
        t = v.type
        bits = t.dtype.bits  # type: ignore[union-attr]
        coalesced = memory_layout(t.shape, bits, self.T)  # type: ignore[union-attr]
        if layout.local_size <= 8 and layout.replication <= coalesced.replication:
            return True  # small, and no more threads read each element than a coalesced load would have
        return direct_load_cost(layout, bits) <= shared_conversion_cost(coalesced, layout, bits)

    def _touch(self, v: Value) -> None:
        p = self.g.producer.get(id(v))
        if p is not None:
            self.queue.append(p)
        self.queue.extend(self.g.users.get(id(v), ()))

    def propagate(self) -> None:
        while self.queue:
            op = self.queue.popleft()
            r = rule(op)
            for v, x in r.produces(op, self.get, self.env).items():
                self.assign(v, x, op)
            for v, x in r.requires(op, self.get, self.env).items():
                self.assign(v, x, op)

    def seed_strict(self) -> None:
        for op in self.g.ops:
            for v in tile_results(op) + ([a for a in op.args if _is_tile(a)] if isinstance(op, O.For) else []):
                lay = v.type.layout  # type: ignore[union-attr]
                if lay is None:
                    continue
                if not isinstance(lay, RegisterLayout):
                    raise CodegenError(f"{_where(op)}{lay!r} is not a register layout")
                for m in self.g.groups.get(id(v), [v]):
                    prev = self.strict.get(id(m))
                    if prev is not None and self.lay.get(id(m)) != lay:
                        raise CodegenError(f"{_where(op)}the layout {lay} given here conflicts with the layout "
                                           f"{self.lay[id(m)]} given at {prev.loc or prev.opname} for the same "
                                           "loop-carried value: convert one explicitly with lowbit.convert_layout")  # fmt: skip
                    self.strict[id(m)] = op
                self.assign(v, lay, op)
        for op in self.g.ops:  # then what ops cannot do without (tensor-core fragments), as strictly
            for v, lay in rule(op).strict(op, self.env):
                if id(v) in self.lay and self.lay[id(v)] != lay and id(v) in self.strict:
                    raise CodegenError(f"{_where(op)}{op.mnemonic} on tensor cores needs {v.hint or 'an operand'} in "
                                       f"{lay}, but it was given {self.lay[id(v)]}: convert it explicitly with "
                                       "lowbit.convert_layout")  # fmt: skip
                if id(v) not in self.lay:
                    self.assign(v, lay, op)
                    if id(v) in self.lay:  # (a load may keep its coalesced layout instead)
                        for m in self.g.groups.get(id(v), [v]):
                            self.strict[id(m)] = op
        self.queue.extend(self.g.ops)
        self.propagate()

    def seed_common(self) -> None:
        self.round_ = "common"
        anchors = []
        for op in self.g.ops:
            a = rule(op).anchor(op, self.env)
            if a is not None:
                v, lay = a
                # views that need whole word groups first (their source cannot be any other way without a
                # conversion), then loads and dots, stores last (a store takes its value's layout)
                prio = 0 if isinstance(op, O.View) else 2 if isinstance(op, O.StoreGlobal | O.StoreShared) else 1
                anchors.append((prio, -v.type.size, self.g.order[id(op)], v, lay, op))  # type: ignore[union-attr]
        for *_, v, lay, op in sorted(anchors, key=lambda x: (x[0], x[1], x[2])):
            self.assign(v, lay, op)
            self.propagate()

    def seed_free(self) -> None:
        for op in self.g.ops:
            for v in tile_results(op) + tile_operands(op):
                if id(v) not in self.lay:
                    self.assign(v, default_layout(v.type, self.T), op)  # type: ignore[arg-type]
                    self.propagate()

    def check_strict_conflicts(self) -> None:
        """Two layouts the program states, joined by an op that needs them equal, are the user's to resolve."""

        def strict_only(v: Value) -> RegisterLayout | None:
            return self.lay.get(id(v)) if id(v) in self.strict else None

        for op in self.g.ops:
            r = rule(op)
            if isinstance(r, Tied):
                given = [(m, self.lay[id(m)]) for m in r.members(op) if id(m) in self.strict]
                if len({str(x) for _, x in given}) > 1:
                    (_, a), (_, b) = given[0], next(g for g in given if g[1] != given[0][1])
                    raise CodegenError(f"{_where(op)}{op.mnemonic} needs its tiles in one layout, but they were given "
                                       f"{a} and {b}: convert one explicitly with lowbit.convert_layout")  # fmt: skip
                if not isinstance(op, O.Dot):
                    continue
            for v, x in r.requires(op, strict_only, self.env).items():
                if id(v) in self.strict and x != self.lay[id(v)]:
                    raise CodegenError(
                        f"{_where(op)}{op.mnemonic} needs its operand {v.hint or ''} in the layout {x}, but it was "
                        f"given {self.lay[id(v)]}: convert it explicitly with lowbit.convert_layout")  # fmt: skip


class _Resolve(Rewriter):
    """Retype every tile with its layout; insert the conversions the rules ask for."""

    def __init__(self, inf: _Infer) -> None:
        super().__init__()
        self.inf = inf

    def define(self, v, op):  # noqa: ANN001, ANN201
        if not _is_tile(v):
            return v
        lay = self.inf.lay[id(v)]
        if v.type.layout == lay:
            return v
        return Value(TileType(v.type.dtype, v.type.shape, lay), v.hint)

    def convert(self, x: Value, lay: RegisterLayout, loc: O.Loc | None) -> Value:
        if x.type.layout == lay:  # type: ignore[union-attr]
            return x
        r = Value(TileType(x.type.dtype, x.type.shape, lay), x.hint)  # type: ignore[union-attr]
        self.emit(O.ConvertLayout(result=r, x=x, loc=loc))
        return r

    def visit(self, op: O.Op) -> None:
        if isinstance(op, O.For):
            self._visit_for(op)
            return
        if isinstance(op, O.If):
            self._visit_if(op)
            return
        mapped = op.map_values(self.value, self.expr)
        r = rule(op)
        # 1. operands to what the op requires (given its results' final layouts)
        final = {id(v): self.inf.lay[id(v)] for v in tile_results(op)}

        def lay_final(v: Value) -> RegisterLayout | None:
            got = final.get(id(v))
            return got if got is not None else getattr(self.value(v).type, "layout", None)

        changes: dict[str, object] = {}
        need = {id(v): x for v, x in r.requires(op, lay_final, self.inf.env).items()}
        for name in op.spec.inputs:
            cur = getattr(mapped, name)
            if isinstance(cur, Value) and _is_tile(cur):
                orig = getattr(op, name)
                want = need.get(id(orig))
                if want is not None and cur.type.layout != want:
                    changes[name] = self.convert(cur, want, op.loc)
        mapped = mapped.replace(**changes) if changes else mapped
        # 2. results the op produces in another layout than assigned: produce them so, convert after
        after: list[tuple[Value, Value]] = []
        results = {id(v) for v in tile_results(op)}

        def lay_now(v: Value) -> RegisterLayout | None:  # operands as converted, results as assigned
            return self.inf.lay.get(id(v)) if id(v) in results else getattr(v.type, "layout", None)

        made = r.produces(mapped, lay_now, self.inf.env)
        res_changes: dict[str, object] = {}
        for name in op.spec.results:
            old = getattr(op, name)
            if not _is_tile(old):
                res_changes[name] = self._define_result(old, op)
                continue
            target = self.inf.lay[id(old)]
            got = next((x for v, x in made.items() if v is getattr(mapped, name)), None)
            if got is not None and got != target:
                tmp = Value(TileType(old.type.dtype, old.type.shape, got), old.hint)
                res_changes[name] = tmp
                after.append((old, tmp))
            else:
                res_changes[name] = self._define_result(old, op)
        self.emit(mapped.replace(**res_changes) if res_changes else mapped)
        for old, tmp in after:
            self.bind(old, self.convert(tmp, self.inf.lay[id(old)], op.loc))

    def _define_result(self, v, op):  # noqa: ANN001, ANN202
        new = self.define(v, op)
        if new is not v:
            self.bind(v, new)
        return new

    def _region(self, body: tuple[O.Op, ...], yields: tuple, targets: list, loc: O.Loc | None) -> tuple[tuple, tuple]:
        self._bodies.append([])
        try:
            for op in body:
                self.visit(op)
            ys = []
            for y, t in zip(yields, targets):
                y2 = self.item(y)
                ys.append(self.convert(y2, self.inf.lay[id(t)], loc) if _is_tile(y2) else y2)
        finally:
            out = self._bodies.pop()
        return tuple(out), tuple(ys)

    def _visit_for(self, op: O.For) -> None:
        inits = []
        for init, arg in zip(op.inits, op.args):
            x = self.item(init)
            inits.append(self.convert(x, self.inf.lay[id(arg)], op.loc) if _is_tile(x) else x)
        var = self._define_result(op.var, op)
        args = tuple(self._define_result(a, op) for a in op.args)
        body, yields = self._region(op.body, op.yields, list(op.args), op.loc)
        results = tuple(self._define_result(r, op) for r in op.results)
        self.emit(O.For(var=var, start=self.expr(op.start), stop=self.expr(op.stop), step=self.expr(op.step),
                        inits=tuple(inits), args=args, body=body, yields=yields, results=results, loc=op.loc))  # fmt: skip

    def _visit_if(self, op: O.If) -> None:
        cond = self.expr(op.cond)
        tb, ty = self._region(op.then_body, op.then_yields, list(op.results), op.loc)
        eb, ey = self._region(op.else_body, op.else_yields, list(op.results), op.loc)
        results = tuple(self._define_result(r, op) for r in op.results)
        self.emit(O.If(cond=cond, then_body=tb, then_yields=ty, else_body=eb, else_yields=ey, results=results,
                       loc=op.loc))  # fmt: skip


#: ops a dot's B operand may be computed through (same-shape tiles) and still come from a view of words
_ELEMENTWISE = (O.Cast, O.ElementwiseBinary, O.ElementwiseUnary, O.Fma, O.Where)
#: ops that only rename the coordinates of a view's codes (kernel-order weights: a reshape/permute chain)
_RELABEL = (O.Reshape, O.Permute)


def _fed_by_view(v: Value, producer: dict[int, O.Op]) -> bool:
    """Whether ``v`` is computed element by element from a ``view`` (codes unpacked from words in registers)."""
    seen: set[int] = set()
    todo = [v]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        op = producer.get(id(x))
        if isinstance(op, O.View):
            return True
        if isinstance(op, _ELEMENTWISE):
            shape = x.type.shape  # type: ignore[union-attr]
            todo += [u for u in op.uses() if isinstance(u, Value) and getattr(u.type, "shape", None) == shape]
        elif isinstance(op, _RELABEL):
            todo.append(op.x)  # type: ignore[attr-defined]
    return False


class _Interleave(Rewriter):
    """Mark each ``dot`` whose B is unpacked in registers from a view: its fragments interleave N per warp,
    so a thread's columns are adjacent (its words, scales and zeros load wide; its C stores wide)."""

    def __init__(self, prog: Program) -> None:
        super().__init__()
        self.producer = {id(d): op for op in walk(prog.body) for d in op.defs()}

    def visit(self, op: O.Op) -> None:
        new = self.copy(op)
        if isinstance(op, O.Dot) and not op.interleave and _fed_by_view(op.b, self.producer):
            new = new.replace(interleave=True)
        self.emit(new)


def run(prog: Program, opts: Options) -> Program:
    if opts.tensor_cores and any(isinstance(op, O.Dot) for op in walk(prog.body)):
        prog = _Interleave(prog).run(prog)
    inf = _Infer(prog, opts.arch, opts.tensor_cores)
    inf.seed_strict()
    inf.check_strict_conflicts()
    inf.seed_common()
    inf.seed_free()
    return _Resolve(inf).run(prog)
