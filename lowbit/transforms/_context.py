"""The state of one VM -> SIMT lowering: the builder, what each VM value became, and the one layout emitter.

Every register tile arrives with a :class:`~lowbit.layout.register.RegisterLayout`
(``infer_layouts`` put it there), and this module is the only place that
turns a layout into per-thread arithmetic: :meth:`Ctx.coords` gives the
coordinates thread ``tid`` holds in a slot as ``spatial part(tid)`` (one
set of registers per layout, computed once in the scope that first needs
it) plus the slot's constant part; :meth:`Ctx.primary` is the predicate of
the one replica that writes (all replication digits zero).

A lowered tile (:class:`~lowbit.transforms._tiles.Tile`) keeps its layout
and either one register per slot or its slots' bits packed LSB-first into
32-bit words; conversions between the two forms are cached per scope here,
so each is emitted once where it is first needed and never used outside
the region that computed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lowbit.dtypes import DType
from lowbit.errors import CodegenError
from lowbit.ir import ops as V
from lowbit.ir.expr import Binary, Cast, Const as EConst, Expr, Select, Unary, Var
from lowbit.ir.simt import Builder, Const, Operand, Reg
from lowbit.ir.simt.types import I32, I64, PRED
from lowbit.layout.register import RegisterLayout
from lowbit.layout.swizzle import Swizzle
from lowbit.transforms import _values as vals
from lowbit.transforms._layout_maps import local_table, spatial_table

__all__ = ["Ctx", "GView", "SBuf", "fail"]


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
    """A lowered shared buffer or view: where it is in the block's shared area and how its bytes are ordered.

    ``name``: the SIMT shared area; ``offset``: the allocation's planned byte
    offset in it; ``dyn``: a runtime byte offset of this view within the
    allocation (a stage's start; None: the whole buffer), a multiple of
    ``dyn_align``; ``swizzle``: the allocation's swizzle of byte offsets
    within it.  Elements are dense, row-major, packed (sub-byte elements
    share bytes, LSB-first).  Addresses: :mod:`~lowbit.transforms._lower_shared`.
    """

    name: str
    dtype: DType
    shape: tuple[int, ...]
    offset: int = 0
    dyn: Operand | None = None
    swizzle: Swizzle | None = None
    dyn_align: int = 1 << 30


def fail(op: V.Op, message: str) -> CodegenError:
    where = f"{op.loc}: " if op.loc is not None else ""
    return CodegenError(f"{where}cannot lower {op.opname}: {message}")


def row_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return tuple(reversed(out))


class Ctx:
    """Mutable while one program is lowered; the pass returns an immutable SIMT kernel."""

    def __init__(self, b: Builder, threads: int, arch: str) -> None:
        self.b, self.T, self.arch = b, threads, arch
        self.scopes: list[dict[object, object]] = [{}]
        self.tid = b.sreg("tid.x")
        #: the SIMT name of the block's shared area (None: the program uses no shared memory)
        self.shared_area: str | None = None
        #: L2 eviction policies (createpolicy registers) by priority, made once at the kernel's entry
        self.policies: dict[str, Operand] = {}
        #: the largest power of two known to divide a VM scalar expression (``lower_simt`` sets the program's
        #: :class:`~lowbit.transforms._divisibility.Divisibility`; 1, nothing known, when lowering without one)
        self.divisibility: Callable[[Expr], int] = lambda e: 1

    def l2_policy(self, priority: str) -> Operand:
        """The ``createpolicy.fractional.L2::<priority>`` register (made at entry by ``lower_simt``)."""
        got = self.policies.get(priority)
        if got is None:
            raise CodegenError(f"no L2 policy {priority!r} was created at the kernel's entry")
        return got

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

    def get(self, v: object, op: V.Op) -> object:
        t = self.find(v)
        if t is None:
            raise fail(op, f"operand {getattr(v, 'hint', '') or v} has no lowered value")
        return t

    def tile(self, v: object, op: V.Op):  # noqa: ANN201 - a Tile (import cycle)
        from lowbit.transforms._tiles import Tile  # noqa: PLC0415

        t = self.find(v)
        if not isinstance(t, Tile):
            raise fail(op, f"operand {getattr(v, 'hint', '') or v} is not a lowered register tile")
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

    def i32(self, x: Operand) -> Operand:
        if x.type == I32:
            return x
        if isinstance(x, Const):
            return Const(x.value, I32)
        return self.b.cast("trunc", x, I32)

    def i64(self, x: Operand) -> Operand:
        if x.type == I64:
            return x
        if isinstance(x, Const):
            return Const(x.value, I64)
        return self.b.cast("sext", x, I64)

    def add(self, a: Operand, c: int, hint: str = "c") -> Operand:
        """``a + c`` (cached per scope: the same coordinate register for the same offset from the same base)."""
        if c == 0:
            return a
        if isinstance(a, Const):
            return Const(a.value + c, a.type)
        key = ("add", id(a), c)
        got = self.find(key)
        if got is None:
            got = self.b.binary("add", a, Const(c, a.type), hint)
            self.put(key, got)
        return got  # type: ignore[return-value]

    def and_(self, a: Operand | None, c: Operand | None) -> Operand | None:
        if a is None:
            return c
        if c is None:
            return a
        return self.b.binary("and", a, c)

    # ------------------------------------------------------------------ the layout emitter
    def thread_digits(self, layout: RegisterLayout) -> dict[int, Operand]:
        """Mode id (or ``-position - 1`` for replication digits) -> that digit of ``tid.x``, as i32 registers."""
        key = ("digits", layout)
        got = self.find(key)
        if got is not None:
            return got  # type: ignore[return-value]
        if layout.num_threads != self.T:
            raise CodegenError(f"layout {layout} spans {layout.num_threads} threads, the block has {self.T}")
        b, out, stride = self.b, {}, 1
        for pos in reversed(range(len(layout.spatial))):
            e = layout.spatial[pos]
            size = -e if e < 0 else layout.mode_sizes[e]
            d: Operand = self.tid if stride == 1 else b.binary("udiv", self.tid, Const(stride, I32), "td")
            if stride * size < self.T:
                d = b.binary("urem", d, Const(size, I32), "td")
            out[e if e >= 0 else -pos - 1] = d
            stride *= size
        self.put(key, out)
        return out

    def spatial_coords(self, layout: RegisterLayout) -> tuple[Operand, ...]:
        """The thread part of the coordinates (i32 per dimension; constants where no thread digit adds)."""
        key = ("spatial", layout)
        got = self.find(key)
        if got is not None:
            return got  # type: ignore[return-value]
        digits = self.thread_digits(layout)
        out: list[Operand] = [Const(0, I32)] * layout.rank
        for e, d in digits.items():
            if e < 0:
                continue
            dim, w = layout._mode_dim[e]  # noqa: SLF001 - the layout's own mode weights
            term = d if w == 1 else self.b.binary("mul", d, Const(w, I32), "tc")
            out[dim] = term if isinstance(out[dim], Const) and out[dim].value == 0 else self.b.binary("add", out[dim], term, "tc")
        res = tuple(out)
        self.put(key, res)
        return res

    def coords(self, layout: RegisterLayout, slot: int) -> tuple[Operand, ...]:
        """The coordinates (i32) this thread holds in ``slot`` of ``layout``."""
        base = self.spatial_coords(layout)
        lo = local_table(layout)[slot]
        return tuple(self.add(c, int(o)) for c, o in zip(base, lo))

    def valid(self, layout: RegisterLayout, shape: tuple[int, ...], slot: int) -> Operand | bool:
        """Whether this thread's ``slot`` holds a real element of a ``shape`` tile (padded layouts).

        ``True``/``False`` when it is the same for every thread (known at
        compile time), else an i1 register.
        """
        if tuple(layout.shape) == tuple(shape):
            return True
        key = ("valid", layout, shape, slot)
        got = self.find(key)
        if got is not None:
            return got  # type: ignore[return-value]
        sp = spatial_table(layout)
        lo = local_table(layout)[slot]
        out: Operand | bool = True
        base = self.spatial_coords(layout)
        for d, (p, n) in enumerate(zip(layout.shape, shape)):
            if p == n:
                continue
            lo_d, hi_d = int(lo[d]) + int(sp[:, d].min()), int(lo[d]) + int(sp[:, d].max())
            if lo_d >= n:
                out = False
                break
            if hi_d < n:
                continue
            c = self.add(base[d], int(lo[d]))
            p_d = self.b.cmp("ult", c, Const(n, I32), "ok")
            out = p_d if out is True else self.b.binary("and", out, p_d)  # type: ignore[arg-type]
        self.put(key, out)
        return out

    def primary(self, layout: RegisterLayout) -> Operand | None:
        """Predicate: this thread is its elements' first replica (None when nothing is replicated)."""
        if layout.is_injective:
            return None
        key = ("primary", layout)
        got = self.find(key)
        if got is None:
            conds = [d for e, d in self.thread_digits(layout).items() if e < 0]
            for c in conds:
                p = self.b.cmp("eq", c, Const(0, I32), "own")
                got = p if got is None else self.b.binary("and", got, p)  # type: ignore[arg-type]
            self.put(key, got)
        return got  # type: ignore[return-value]

    def lane(self) -> Operand:
        key = ("lane",)
        got = self.find(key)
        if got is None:
            got = self.b.binary("and", self.tid, Const(31, I32), "lane")
            self.put(key, got)
        return got  # type: ignore[return-value]

    def pred_to_i32(self, p: Operand) -> Operand:
        return self.b.cast("zext", p, I32) if p.type == PRED else p
