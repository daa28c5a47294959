"""The state of one VM -> SIMT lowering: the builder, what each VM value became, the tile distribution.

Distribution ("flat cyclic", the layout ``assign_layouts`` records): a tile of
``n`` elements (row-major linear index ``e``) over ``T`` threads is held in
``L = max(1, ceil(n / T))`` slots per thread; slot ``j`` of thread ``t``
holds element ``(j*T + t) mod n``.  It is *primary* (the one copy that
stores, writes shared memory...) when ``j*T + t < n``.  When ``n`` divides
by ``T`` this is ``product(local(n/T), spatial(T))``; when ``T`` divides by
``n`` it is ``T/n``-fold replication of ``spatial(n)``; otherwise some
trailing slots hold duplicates.  Every slot always holds a defined value.

Ops that move elements between threads (dot, reduce, view, broadcast,
lookup) exchange through one shared ``@scratch`` buffer: barrier, every
primary slot writes, barrier, every thread reads what it needs.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

from lowbit.dtypes import DType
from lowbit.errors import CodegenError
from lowbit.ir import ops as V
from lowbit.ir.expr import Binary, Cast, Const as EConst, Expr, Select, Unary, Var
from lowbit.ir.simt import Builder, Const, Operand, Reg
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import I32, I64, PRED, ScalarType
from lowbit.ir.types import TileType, Value, is_bool
from lowbit.transforms import _values as vals

__all__ = ["Ctx", "GView", "SBuf", "Tile", "fail"]


@dataclass(frozen=True)
class Tile:
    """A lowered register tile: one operand per slot."""

    dtype: DType
    shape: tuple[int, ...]
    regs: tuple[Operand, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class GView:
    """A lowered global view: base pointer register, shape and strides (VM scalar expressions)."""

    ptr: Reg
    dtype: DType
    shape: tuple[Expr, ...]
    strides: tuple[Expr, ...]
    #: the pointer's own elements are whole 32-bit words (ptr<uint32>, ptr<f32>, ptr<int64>...), so the
    #: buffer starts 4-byte aligned and ends on a word: word-wide atomics on it stay inside it
    whole_words: bool = False


@dataclass(frozen=True)
class SBuf:
    """A lowered shared buffer: its SIMT name, element dtype and shape (row-major, dense)."""

    name: str
    dtype: DType
    shape: tuple[int, ...]


def fail(op: V.Op, message: str) -> CodegenError:
    where = f"{op.loc}: " if op.loc is not None else ""
    return CodegenError(f"{where}cannot lower {op.opname}: {message}")


def row_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return tuple(reversed(out))


def spill_type(dt: DType) -> ScalarType:
    """How an element is kept in scratch shared memory (predicates as i32)."""
    return I32 if is_bool(dt) else vals.reg_type(dt)


def nbytes(t: ScalarType) -> int:
    return max(1, t.bits // 8)


class Ctx:
    """Mutable while one program is lowered; the pass returns an immutable SIMT kernel."""

    def __init__(self, b: Builder, threads: int) -> None:
        self.b, self.T = b, threads
        self.scopes: list[dict[object, object]] = [{}]
        self.tid = b.sreg("tid.x")
        self.scratch_bytes = 0
        self.shared_count = 0

    # ------------------------------------------------------------------ scopes
    def put(self, key: object, value: object) -> None:
        self.scopes[-1][key] = value

    def find(self, key: object) -> object | None:
        for s in reversed(self.scopes):
            if key in s:
                return s[key]
        return None

    def push(self) -> None:
        self.scopes.append({})

    def pop(self) -> None:
        self.scopes.pop()

    def tile(self, v: Value, op: V.Op) -> Tile:
        t = self.find(v)
        if not isinstance(t, Tile):
            raise fail(op, f"operand {v.hint or v} is not a lowered register tile")
        return t

    def get(self, v: object, op: V.Op) -> object:
        t = self.find(v)
        if t is None:
            raise fail(op, f"operand {getattr(v, 'hint', '') or v} has no lowered value")
        return t

    # ------------------------------------------------------------------ scalars
    def scalar(self, e: Expr) -> Operand:
        key = ("expr", e)
        got = self.find(key)
        if got is not None:
            return got  # type: ignore[return-value]
        b = self.b
        if isinstance(e, EConst):
            r: Operand = vals.const_value(e.value, e.dtype)
        elif isinstance(e, Var):
            found = self.find(e)
            if found is None:
                raise CodegenError(f"scalar {e.name!r} has no lowered value")
            r = found  # type: ignore[assignment]
        elif isinstance(e, Unary):
            r = vals.unary(b, e.op, self.scalar(e.a), e.a.dtype)
        elif isinstance(e, Binary):
            r = vals.binary(b, e.op, self.scalar(e.a), self.scalar(e.b), e.a.dtype)
        elif isinstance(e, Select):
            r = b.select(self.scalar(e.cond), self.scalar(e.a), self.scalar(e.b))
        elif isinstance(e, Cast):
            r = vals.convert(b, self.scalar(e.a), e.a.dtype, e.dtype)
        else:
            raise CodegenError(f"unknown scalar expression {e!r}")
        self.put(key, r)
        return r

    def i64(self, x: Operand) -> Operand:
        if x.type == I64:
            return x
        if isinstance(x, Const):
            return Const(x.value, I64)
        return self.b.cast("sext", x, I64)

    # ------------------------------------------------------------------ distribution
    def slots(self, n: int) -> int:
        return max(1, -(-n // self.T))

    def lin(self, n: int, j: int) -> Operand:
        """Linear element index (i32) held by this thread's slot ``j`` of an ``n``-element tile."""
        key = ("lin", n, j)
        got = self.find(key)
        if got is not None:
            return got  # type: ignore[return-value]
        b = self.b
        r: Operand = self.tid if j == 0 else b.binary("add", self.tid, Const(j * self.T, I32), "e")
        if (j + 1) * self.T > n:
            r = b.binary("urem", r, Const(n, I32), "e")
        self.put(key, r)
        return r

    def primary(self, n: int, j: int) -> Operand | None:
        """Predicate: this slot is the element's one writing copy (None: always)."""
        if (j + 1) * self.T <= n:
            return None
        key = ("primary", n, j)
        got = self.find(key)
        if got is None:
            e = self.tid if j == 0 else self.b.binary("add", self.tid, Const(j * self.T, I32), "e")
            got = self.b.cmp("ult", e, Const(n, I32), "own")
            self.put(key, got)
        return got  # type: ignore[return-value]

    def coords(self, shape: tuple[int, ...], j: int) -> tuple[Operand, ...]:
        key = ("coords", shape, j)
        got = self.find(key)
        if got is not None:
            return got  # type: ignore[return-value]
        n = math.prod(shape)
        e = self.lin(n, j)
        out: list[Operand] = []
        for d, stride in enumerate(row_strides(shape)):
            if shape[d] == 1:
                out.append(Const(0, I32))
                continue
            c = e if stride == 1 else self.b.binary("udiv", e, Const(stride, I32), "c")
            if d > 0 and stride * shape[d] < n:
                c = self.b.binary("urem", c, Const(shape[d], I32), "c")
            out.append(c)
        res = tuple(out)
        self.put(key, res)
        return res

    def and_(self, a: Operand | None, c: Operand | None) -> Operand | None:
        if a is None:
            return c
        if c is None:
            return a
        return self.b.binary("and", a, c)

    # ------------------------------------------------------------------ scratch exchange
    def scratch(self, size: int) -> Reg:
        self.scratch_bytes = max(self.scratch_bytes, size)
        return self.b.shared_addr("scratch")

    def exchange(self, tiles: list[Tile]) -> list[tuple[Reg, ScalarType]]:
        """Write ``tiles`` to scratch (one after another, 16-byte aligned); return (base, elem type) of each."""
        offs, total = [], 0
        for t in tiles:
            offs.append(total)
            total += -(-(t.size * nbytes(spill_type(t.dtype))) // 16) * 16
        base = self.scratch(total)
        b = self.b
        b.emit(S.Barrier())
        out = []
        for t, off in zip(tiles, offs):
            st = spill_type(t.dtype)
            tb = b.gep(base, Const(off, I32), ScalarType("i8"), "xb") if off else base
            for j, r in enumerate(t.regs):
                v = b.cast("zext", r, I32) if r.type == PRED else r
                p = b.gep(tb, self.lin(t.size, j), st, "xa")
                b.store(p, v, nbytes(st), self.primary(t.size, j))
            out.append((tb, st))
        b.emit(S.Barrier())
        return out

    def read(self, base: Reg, st: ScalarType, index: Operand, dt: DType) -> Operand:
        v = self.b.load(st, self.b.gep(base, index, st, "ra"), nbytes(st))
        return self.b.cmp("ne", v, Const(0, I32)) if is_bool(dt) else v

    def check_layout(self, t: TileType, op: V.Op) -> None:
        from lowbit.transforms.assign_layouts import flat_layout  # noqa: PLC0415 - avoid an import cycle

        if t.layout is not None and t.layout != flat_layout(t.shape, self.T):
            raise fail(op, f"register layout {t.layout} is not supported by the lowering yet "
                           f"(only the block-wide distribution {flat_layout(t.shape, self.T)})")
