"""A generator of random, well-formed VM programs that uses every op class.

Programs are built directly with the op constructors (not through the DSL),
so they reach shapes of the IR the DSL never writes.  Each program draws
15-30 ops uniformly from :data:`MAKERS` (plus nested loop and branch
bodies), creating whatever operands an op needs on the way; values are
scoped like the IR (a body's values stay in the body).
"""

from __future__ import annotations

import random

from lowbit.dtypes import dtype
from lowbit.ir import ops as O
from lowbit.ir.expr import Binary, Cast, Const, Expr, Select, Unary, Var
from lowbit.ir.program import Param, Program
from lowbit.ir.types import BOOL, INT32, INT64, GlobalType, PointerType, SharedType, TileType, Value
from lowbit.layout import register as R

F16, F32, U8, U32, U4, I8 = (dtype(n) for n in ("f16", "f32", "uint8", "uint32", "uint4", "int8"))
TILE_DTYPES = (F16, F32, INT32, U8, U32, U4, I8, dtype("e4m3fn"), dtype("bf16"))
ARITH = (F16, F32, INT32, U8, U32, I8)


class Gen:
    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd
        self.block: list[O.Op] = []
        self.params = [
            Param("a", Value(PointerType(F16), "a")),
            Param("b", Value(PointerType(U32), "b")),
            Param("n", Var("n", INT32)),
            Param("alpha", Var("alpha", F32)),
        ]
        self.scalars: list[Expr] = [p.value for p in self.params if isinstance(p.value, Var)]  # type: ignore[misc]
        self.tiles: list[Value] = []
        self.globals: list[Value] = []
        self.shared: list[Value] = []
        self.used: set[type] = set()
        self.freed: set[int] = set()  # ids of freed shared buffers (in any scope)

    # ---------------------------------------------------------------- helpers
    def add(self, op: O.Op) -> O.Op:
        """Append ``op``; its tile result joins the pool only now, so no op reads its own result."""
        self.block.append(op)
        self.used.add(type(op))
        result = getattr(op, "result", None)
        if isinstance(result, Value) and isinstance(result.type, TileType):
            self.tiles.append(result)
        return op

    def int_expr(self, depth: int = 2) -> Expr:
        ints = [s for s in self.scalars if s.dtype == INT32]
        r = self.r.random()
        if depth == 0 or r < 0.3:
            return self.r.choice(ints) if ints and self.r.random() < 0.6 else Const(self.r.randint(-9, 40), INT32)
        op = self.r.choice(["add", "sub", "mul", "div", "mod", "min", "max", "sel", "neg", "cast"])
        if op == "sel":
            return Select(Binary("lt", self.int_expr(depth - 1), self.int_expr(depth - 1)), self.int_expr(depth - 1), self.int_expr(depth - 1))
        if op == "neg":
            return Unary("neg", self.int_expr(depth - 1))
        if op == "cast":
            return Cast(Cast(self.int_expr(depth - 1), INT64), INT32)
        if op in ("div", "mod"):
            return Binary(op, self.int_expr(depth - 1), Const(self.r.choice([1, 2, 3, 8, -4]), INT32))
        return Binary(op, self.int_expr(depth - 1), self.int_expr(depth - 1))

    def bool_expr(self) -> Expr:
        return Binary(self.r.choice(["lt", "le", "eq", "ne", "gt", "ge"]), self.int_expr(1), self.int_expr(1))

    def full(self, dt, shape) -> Value:
        v = Value(TileType(dt, shape))
        if dt.is_float and dt.bits >= 16:
            val: Expr = self.r.choice([Const(self.r.choice([0.5, -1.25, 3.0, 1e-3]), F32), [s for s in self.scalars if s.dtype == F32][0]])
        else:
            val = self.int_expr(1)
        self.add(O.Full(result=v, value=val))
        return v

    def tile(self, dt=None, shape=None) -> Value:
        pool = [t for t in self.tiles if (dt is None or t.type.dtype == dt) and (shape is None or t.type.shape == shape)]
        if pool and self.r.random() < 0.7:
            return self.r.choice(pool)
        return self.full(dt or self.r.choice(ARITH), shape or self.r.choice([(4, 8), (8,), (2, 4, 2)]))

    @staticmethod
    def new_tile(dt, shape) -> Value:
        return Value(TileType(dt, shape))

    def global_view(self, dt=None) -> Value:
        pool = [g for g in self.globals if dt is None or g.type.dtype == dt]
        if pool and self.r.random() < 0.6:
            return self.r.choice(pool)
        ptr = self.r.choice([p.value for p in self.params if isinstance(p.value, Value)])
        gdt = dt or self.r.choice([ptr.type.dtype, U4, U8])
        g = Value(GlobalType(gdt, 2))
        self.add(O.GlobalView(result=g, ptr=ptr, shape=(self.int_expr(1), Const(64, INT32)), strides=(Const(64, INT32), Const(1, INT32))))
        self.globals.append(g)
        return g

    def shared_buf(self) -> Value:
        live = [s for s in self.shared if id(s) not in self.freed]
        if live and self.r.random() < 0.6:
            return self.r.choice(live)
        s = Value(SharedType(self.r.choice([F16, INT32, U8]), (4, 8)))
        self.add(O.AllocShared(result=s))
        self.shared.append(s)
        return s

    def mask(self, shape) -> Value | None:
        if self.r.random() < 0.5:
            return None
        src = self.tile(INT32, shape)
        m = self.new_tile(BOOL, shape)
        self.add(O.ElementwiseBinary(result=m, op="lt", a=src, b=self.tile(INT32, shape)))
        return m

    def offsets(self, n: int) -> tuple[Expr, ...]:
        return tuple(self.int_expr(1) for _ in range(n))

    # ---------------------------------------------------------------- makers
    def m_program_id(self) -> None:
        v = Var("pid", INT32)
        self.add(self.r.choice([O.ProgramId, O.NumPrograms])(result=v, axis=self.r.randint(0, 2)))
        self.scalars.append(v)

    def m_num_programs(self) -> None:
        v = Var("np", INT32)
        self.add(O.NumPrograms(result=v, axis=self.r.randint(0, 2)))
        self.scalars.append(v)

    def m_global_view(self) -> None:
        self.globals = []  # force a fresh view
        self.global_view()

    def m_alloc(self) -> None:
        self.shared = []
        self.shared_buf()

    def m_free(self) -> None:
        s = self.shared_buf()
        self.add(O.FreeShared(buf=s))
        self.freed.add(id(s))

    def m_load_global(self) -> None:
        g = self.global_view()
        shape = self.r.choice([(4, 8), (2, 16)])
        v = self.new_tile(g.type.dtype, shape)
        other = self.r.choice([0, 1, 0.5]) if g.type.dtype.is_float else self.r.choice([0, 3])
        self.add(O.LoadGlobal(result=v, src=g, offsets=self.offsets(2), mask=self.mask(shape), other=other))

    def m_store_global(self) -> None:
        g = self.global_view()
        v = self.tile(g.type.dtype, (4, 8))
        self.add(O.StoreGlobal(dst=g, value=v, offsets=self.offsets(2), mask=self.mask((4, 8))))

    def m_load_shared(self) -> None:
        s = self.shared_buf()
        self.add(O.LoadShared(result=self.new_tile(s.type.dtype, (2, 8)), src=s, offsets=(Const(2, INT32), Const(0, INT32))))

    def m_store_shared(self) -> None:
        s = self.shared_buf()
        self.add(O.StoreShared(dst=s, value=self.tile(s.type.dtype, (4, 8)), offsets=(Const(0, INT32), Const(0, INT32))))

    def m_copy_async(self) -> None:
        s = self.shared_buf()
        g = self.global_view(s.type.dtype)
        self.add(O.CopyAsync(dst=s, src=g, offsets=self.offsets(2), mask=self.mask((4, 8))))

    def m_shared_view(self) -> None:
        ring = Value(SharedType(self.r.choice([F16, INT32, U8]), (2, 4, 8)))
        self.add(O.AllocShared(result=ring))
        v = Value(SharedType(ring.type.dtype, (4, 8)))
        self.add(O.SharedView(result=v, buf=ring, indices=(Const(self.r.randint(0, 1), INT32),)))
        self.shared.append(v)

    def m_atomic(self) -> None:
        g = self.global_view(self.r.choice([F16, U32]))
        kind = "add" if g.type.dtype == F16 else self.r.choice(["add", "max", "min", "cas"])
        value = self.tile(g.type.dtype, (4, 8))
        cmp = self.tile(g.type.dtype, (4, 8)) if kind == "cas" else None
        res = self.new_tile(g.type.dtype, (4, 8)) if self.r.random() < 0.5 else None
        self.add(O.Atomic(result=res, kind=kind, dst=g, value=value, offsets=self.offsets(2), mask=self.mask((4, 8)),
                          compare=cmp))  # fmt: skip

    def m_sync(self) -> None:
        self.add(O.CommitGroup())
        self.add(O.WaitGroup(pending=0))
        self.add(O.Barrier())

    def m_arange(self) -> None:
        self.add(O.Arange(result=self.new_tile(INT32, (self.r.choice([4, 8, 16]),)), start=self.r.randint(-3, 5)))

    def m_cast(self) -> None:
        x = self.tile()
        self.add(O.Cast(result=self.new_tile(self.r.choice(TILE_DTYPES), x.type.shape), x=x))

    def m_view(self) -> None:
        x = self.tile(self.r.choice([U32, U8, F16]), (4, 8))
        axis = self.r.choice([0, 1])
        target = self.r.choice([U4, U8, dtype("uint2"), dtype("int16")])
        shape = O.view_shape(x.type, target, axis)
        if isinstance(shape, str):
            target, shape = U4, O.view_shape(x.type, U4, axis)
        self.add(O.View(result=self.new_tile(target, shape), x=x, axis=axis))

    def m_unary(self) -> None:
        x = self.tile(self.r.choice([F16, F32, INT32, BOOL if self.r.random() < 0.2 else I8]))
        dt = x.type.dtype
        ops = ["not"] if dt == BOOL else (list(O.ARITH_UNARY) if dt.is_float else ["neg", "abs", "not"])
        self.add(O.ElementwiseUnary(result=self.new_tile(dt, x.type.shape), op=self.r.choice(ops), x=x))

    def m_binary(self) -> None:
        x = self.tile(self.r.choice(ARITH))
        dt = x.type.dtype
        ops = [o for o in O.BINARY_TILE_OPS if not (dt.is_float and o in ("mod", "and", "or", "xor", "shl", "shr"))]
        op = self.r.choice(ops)
        rdt = BOOL if op in ("eq", "ne", "lt", "le", "gt", "ge") else dt
        self.add(O.ElementwiseBinary(result=self.new_tile(rdt, x.type.shape), op=op, a=x, b=self.tile(dt, x.type.shape)))

    def m_where(self) -> None:
        shape = (4, 8)
        c = self.mask(shape) or self.mask(shape) or self.mask(shape)
        if c is None:
            c = self.new_tile(BOOL, shape)
            self.add(O.ElementwiseBinary(result=c, op="ne", a=self.tile(INT32, shape), b=self.tile(INT32, shape)))
        dt = self.r.choice(TILE_DTYPES)
        self.add(O.Where(result=self.new_tile(dt, shape), cond=c, a=self.tile(dt, shape), b=self.tile(dt, shape)))

    def m_fma(self) -> None:
        dt = self.r.choice([F16, F32])
        a, b, c = (self.tile(dt, (4, 8)) for _ in range(3))
        self.add(O.Fma(result=self.new_tile(dt, (4, 8)), a=a, b=b, c=c))

    def m_dot(self) -> None:
        dt, acc = self.r.choice([(F16, F32), (I8, INT32), (F32, F32)])
        a, b, c = self.tile(dt, (4, 8)), self.tile(dt, (8, 2)), self.tile(acc, (4, 2))
        self.add(O.Dot(result=self.new_tile(acc, (4, 2)), a=a, b=b, c=c))

    def m_reduce(self) -> None:
        x = self.tile(self.r.choice(ARITH), (4, 8))
        axis = self.r.randint(0, 1)
        shape = (1, 8) if axis == 0 else (4, 1)
        self.add(O.Reduce(result=self.new_tile(x.type.dtype, shape), x=x, kind=self.r.choice(O.REDUCE_KINDS), axis=axis))

    def m_lookup(self) -> None:
        table = self.tile(self.r.choice(TILE_DTYPES), (16,))
        idx = self.tile(U4, (4, 8))  # codes of a 16-entry table: always in range
        self.add(O.Lookup(result=self.new_tile(table.type.dtype, (4, 8)), table=table, index=idx))

    def m_pair_table(self) -> None:
        n = self.r.choice([2, 4, 16])
        width = self.r.choice([16, 32])
        s = Value(SharedType(INT32, (n * n * width // 16,)))
        self.add(O.AllocShared(result=s))  # (not in the pool: the other generators use [4, 8] buffers)
        self.add(O.PairTable(dst=s, entries=tuple(self.r.randrange(1 << width) for _ in range(n)), width=width))

    def m_dequant(self) -> None:
        codes = self.tile(self.r.choice([U4, I8, U8, dtype("e4m3fn")]), (4, 8))
        zero = self.tile(codes.type.dtype, (4, 8)) if self.r.random() < 0.5 else None
        scale = self.tile(self.r.choice([F16, dtype("bf16")]), (4, 8)) if self.r.random() < 0.7 else None
        table = None
        if codes.type.dtype == U4 and self.r.random() < 0.3:  # a pair table of the 16 codes (a shared operand)
            table = Value(SharedType(INT32, (256,)))
            self.add(O.AllocShared(result=table))
            self.add(O.PairTable(dst=table, entries=tuple(self.r.randrange(1 << 16) for _ in range(16))))
        self.add(O.Dequant(result=self.new_tile(self.r.choice([F16, dtype("bf16")]), (4, 8)), codes=codes,
                           zero=zero, scale=scale, factor=self.r.choice([1.0, 0.25, 4.0]), table=table))

    def m_broadcast(self) -> None:
        x = self.tile(None, (1, 8))
        self.add(O.Broadcast(result=self.new_tile(x.type.dtype, (4, 8)), x=x))

    def m_reshape(self) -> None:
        x = self.tile(None, (4, 8))
        self.add(O.Reshape(result=self.new_tile(x.type.dtype, self.r.choice([(32,), (8, 4), (2, 2, 8)])), x=x))

    def m_convert_layout(self) -> None:
        x = self.tile(None, (4, 8))
        lay = self.r.choice([R.product(R.spatial(4, 8), R.replicate(self.threads // 32, 2)) if self.threads >= 32
                             else R.spatial(4, 8), R.product(R.spatial(2, 2), R.local(2, 4))])
        self.add(O.ConvertLayout(result=Value(TileType(x.type.dtype, (4, 8), lay)), x=x))

    def m_permute(self) -> None:
        x = self.tile(None, self.r.choice([(4, 8), (2, 4, 2)]))
        order = tuple(self.r.sample(range(len(x.type.shape)), len(x.type.shape)))
        self.add(O.Permute(result=self.new_tile(x.type.dtype, tuple(x.type.shape[d] for d in order)), x=x, order=order))

    def m_slice(self) -> None:
        x = self.tile(None, (4, 8))
        self.add(O.Slice(result=self.new_tile(x.type.dtype, (2, 4)), x=x, starts=(self.r.randint(0, 2), self.r.randint(0, 4))))

    def m_thread_index(self) -> None:
        lay = R.product(R.spatial(self.threads // 8, 8), R.local(1, 2))
        self.add(O.ThreadIndex(result=Value(TileType(INT32, (self.threads // 8, 16), lay)),
                               kind=self.r.choice(O.THREAD_INDEX_KINDS)))

    def m_print(self) -> None:
        vals = tuple(self.r.sample([self.tile(), self.int_expr(1)], self.r.randint(0, 2)))
        self.add(O.Print(prefix=self.r.choice(["acc", 'quote"d', "x\ty"]), values=vals))

    def _nested(self, n: int) -> tuple[list[O.Op], int]:
        saved = (self.block, list(self.scalars), list(self.tiles), list(self.globals), list(self.shared))
        self.block = []
        self.body(n)
        body = self.block
        self.block, self.scalars, self.tiles, self.globals, self.shared = saved
        return body, 0

    def m_for(self) -> None:
        acc = self.tile(self.r.choice([F32, INT32]), (4, 8))
        k0 = self.int_expr(1)
        var, arg_t, arg_s = Var("i", INT32), Value(acc.type), Var("k", INT32)
        carried = self.r.choice([(), (arg_t,), (arg_t, arg_s)])
        inits = {arg_t: acc, arg_s: k0}
        saved = (self.block, list(self.scalars), list(self.tiles), list(self.globals), list(self.shared))
        self.block = []
        self.scalars += [var] + [c for c in carried if isinstance(c, Var)]
        self.tiles += [c for c in carried if isinstance(c, Value)]
        self.body(self.r.randint(1, 4))
        yields = tuple(self.tile(acc.type.dtype, (4, 8)) if isinstance(c, Value) else Binary("add", c, Const(1, INT32)) for c in carried)
        body = self.block
        self.block, self.scalars, self.tiles, self.globals, self.shared = saved
        results = tuple(Value(c.type) if isinstance(c, Value) else Var("kr", INT32) for c in carried)
        self.add(O.For(var=var, start=Const(0, INT32), stop=self.int_expr(1), step=Const(self.r.randint(1, 3), INT32),
                       inits=tuple(inits[c] for c in carried), args=carried, body=tuple(body), yields=yields, results=results))
        for r in results:
            (self.tiles if isinstance(r, Value) else self.scalars).append(r)

    def m_if(self) -> None:
        n = self.r.randint(0, 2)
        dt = self.r.choice([F16, INT32])
        outs = []
        bodies = []
        for _ in range(2):
            saved = (self.block, list(self.scalars), list(self.tiles), list(self.globals), list(self.shared))
            self.block = []
            self.body(self.r.randint(0, 3))
            ys = tuple(self.tile(dt, (4, 8)) if i == 0 else self.int_expr(1) for i in range(n))
            bodies.append((tuple(self.block), ys))
            self.block, self.scalars, self.tiles, self.globals, self.shared = saved
        results = tuple(Value(TileType(dt, (4, 8))) if i == 0 else Var("r", INT32) for i in range(n))
        self.add(O.If(cond=self.bool_expr(), then_body=bodies[0][0], then_yields=bodies[0][1],
                      else_body=bodies[1][0], else_yields=bodies[1][1], results=results))
        for r in results:
            (self.tiles if isinstance(r, Value) else self.scalars).append(r)

    def body(self, n: int) -> None:
        for _ in range(n):
            maker = self.r.choice(MAKERS)
            if maker in (Gen.m_for, Gen.m_if) and len(self.block) > 40:
                continue
            maker(self)


MAKERS = [v for k, v in vars(Gen).items() if k.startswith("m_")]


def random_program(seed: int) -> tuple[Program, set[type]]:
    """A random program and the op classes it contains."""
    g = Gen(random.Random(seed))
    num_warps = g.r.choice([1, 4, 8])
    g.threads = 32 * num_warps
    g.body(g.r.randint(15, 30))
    grid = (Binary("add", g.params[2].value, Const(1, INT32)), Const(2, INT32)) if g.r.random() < 0.3 else None  # type: ignore[arg-type]
    return Program(f"rand{seed}", tuple(g.params), tuple(g.block), (("S", repr(seed)),), num_warps, grid), g.used
