"""Lowering of the compute ops: element-wise math, casts, views, dot, reduce, lookup, broadcast, reshape.

Element-wise ops work slot by slot (every operand has the same flat
distribution, so slot ``j`` of each holds the same element).  Ops that need
other threads' elements exchange through scratch shared memory
(:meth:`Ctx.exchange`): ``dot`` is the straightforward per-thread FMA scheme
(each thread owns C elements and walks K over A and B in shared memory),
``reduce`` combines inside warps with butterfly shuffles where the reduced
axis allows and walks the rest in scratch, ``view`` assembles each result code from
the one or more source codes it overlaps (LSB-first, ``lowbit.pack``'s order).
"""

from __future__ import annotations

from lowbit.dtypes import dtype
from lowbit.ir import ops as V
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import BF16, F16, F32, I32, I64
from lowbit.ir.types import TileType
from lowbit.transforms import _values as vals
from lowbit.transforms._context import Ctx, Tile, fail, nbytes, row_strides, spill_type

__all__ = ["HANDLERS"]


def _result(ctx: Ctx, op: V.Op, v: object, regs: list[Operand]) -> None:
    t = v.type  # type: ignore[attr-defined]
    assert isinstance(t, TileType)  # noqa: S101
    ctx.check_layout(t, op)
    ctx.put(v, Tile(t.dtype, t.shape, tuple(regs)))


def _program_id(ctx: Ctx, op: V.ProgramId) -> None:
    ctx.put(op.result, ctx.b.sreg(f"ctaid.{'xyz'[op.axis]}"))


def _num_programs(ctx: Ctx, op: V.NumPrograms) -> None:
    ctx.put(op.result, ctx.b.sreg(f"nctaid.{'xyz'[op.axis]}"))


def _full(ctx: Ctx, op: V.Full) -> None:
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    r = vals.convert(ctx.b, ctx.scalar(op.value), op.value.dtype, t.dtype)
    _result(ctx, op, op.result, [r] * ctx.slots(t.size))


def _arange(ctx: Ctx, op: V.Arange) -> None:
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    regs = []
    for j in range(ctx.slots(t.size)):
        c = ctx.coords(t.shape, j)[0]
        regs.append(ctx.b.binary("add", c, Const(op.start, I32)) if op.start else c)
    _result(ctx, op, op.result, regs)


def _cast(ctx: Ctx, op: V.Cast) -> None:
    x = ctx.tile(op.x, op)
    dst = op.result.type.dtype  # type: ignore[union-attr]
    memo: dict[int, Operand] = {}
    regs = []
    for r in x.regs:  # a Full tile repeats one register: convert it once
        if id(r) not in memo:
            memo[id(r)] = vals.convert(ctx.b, r, x.dtype, dst)
        regs.append(memo[id(r)])
    _result(ctx, op, op.result, regs)


def _unary(ctx: Ctx, op: V.ElementwiseUnary) -> None:
    x = ctx.tile(op.x, op)
    _result(ctx, op, op.result, [vals.unary(ctx.b, op.op, r, x.dtype) for r in x.regs])


def _binary(ctx: Ctx, op: V.ElementwiseBinary) -> None:
    a, b = ctx.tile(op.a, op), ctx.tile(op.b, op)
    _result(ctx, op, op.result, [vals.binary(ctx.b, op.op, x, y, a.dtype) for x, y in zip(a.regs, b.regs)])


def _where(ctx: Ctx, op: V.Where) -> None:
    c, a, b = ctx.tile(op.cond, op), ctx.tile(op.a, op), ctx.tile(op.b, op)
    _result(ctx, op, op.result, [ctx.b.select(p, x, y) for p, x, y in zip(c.regs, a.regs, b.regs)])


def _fma(ctx: Ctx, op: V.Fma) -> None:
    a, b, c = ctx.tile(op.a, op), ctx.tile(op.b, op), ctx.tile(op.c, op)
    _result(ctx, op, op.result, [ctx.b.fma(x, y, z) for x, y, z in zip(a.regs, b.regs, c.regs)])


def _reshape(ctx: Ctx, op: V.Reshape) -> None:
    x = ctx.tile(op.x, op)  # the flat distribution depends only on the element count: nothing moves
    _result(ctx, op, op.result, list(x.regs))


def _flat_index(ctx: Ctx, coords: list[Operand], shape: tuple[int, ...]) -> Operand:
    b = ctx.b
    out: Operand | None = None
    for c, s in zip(coords, row_strides(shape)):
        if isinstance(c, Const) and c.value == 0:
            continue
        term = c if s == 1 else b.binary("mul", c, Const(s, I32), "xi")
        out = term if out is None else b.binary("add", out, term, "xi")
    return out if out is not None else Const(0, I32)


def _broadcast(ctx: Ctx, op: V.Broadcast) -> None:
    x = ctx.tile(op.x, op)
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    L = ctx.slots(t.size)
    if x.size == 1:  # every thread already holds the one element in slot 0
        _result(ctx, op, op.result, [x.regs[0]] * L)
        return
    (base, st), = ctx.exchange([x])
    regs = []
    for j in range(L):
        c = [cc if xs != 1 else Const(0, I32) for cc, xs in zip(ctx.coords(t.shape, j), x.shape)]
        regs.append(ctx.read(base, st, _flat_index(ctx, c, x.shape), x.dtype))
    _result(ctx, op, op.result, regs)


def _lookup(ctx: Ctx, op: V.Lookup) -> None:
    table, idx = ctx.tile(op.table, op), ctx.tile(op.index, op)
    (base, st), = ctx.exchange([table])
    regs = []
    for r in idx.regs:
        i = vals.code_of(ctx.b, r, idx.dtype, False) if not vals.is_int(idx.dtype) else r
        if i.type == I64:
            i = ctx.b.cast("trunc", i, I32)
        regs.append(ctx.read(base, st, i, table.dtype))
    _result(ctx, op, op.result, regs)


# ---------------------------------------------------------------------------- view


def _view(ctx: Ctx, op: V.View) -> None:
    x = ctx.tile(op.x, op)
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    sd, dd, ax = x.dtype, t.dtype, op.axis % len(x.shape)
    sb, db = sd.bits, dd.bits
    wide = sb > 32 or db > 32
    W = I64 if wide else I32
    b = ctx.b
    codes = Tile(dtype("uint64") if wide else dtype("uint32"), x.shape, tuple(vals.code_of(b, r, sd, wide) for r in x.regs))
    (base, st), = ctx.exchange([codes])
    regs = []
    nmax = 1 if sb % db == 0 else (db + sb - 2) // sb + 1
    for j in range(ctx.slots(t.size)):
        c = list(ctx.coords(t.shape, j))
        p = c[ax] if db == 1 else b.binary("mul", c[ax], Const(db, I32), "bp")
        s0 = b.binary("udiv", p, Const(sb, I32), "s0") if sb > 1 else p
        off = b.binary("urem", p, Const(sb, I32), "so") if sb > 1 else Const(0, I32)
        code: Operand | None = None
        for i in range(nmax):
            si = s0 if i == 0 else b.binary("add", s0, Const(i, I32), "s0")
            if i:
                si = b.binary("umin", si, Const(x.shape[ax] - 1, I32))  # beyond the tile: not needed anyway
            src = ctx.read(base, st, _flat_index(ctx, c[:ax] + [si] + c[ax + 1:], x.shape), codes.dtype)
            if i == 0:
                part = b.binary("lshr", src, off if not wide else b.cast("zext", off, I64))
            else:
                amt = b.binary("and", b.binary("sub", Const(i * sb, I32), off), Const(W.bits - 1, I32))
                part = b.binary("shl", src, amt if not wide else b.cast("zext", amt, I64))
                need = b.cmp("ult", b.binary("sub", Const(i * sb, I32), off), Const(db, I32))
                part = b.select(need, part, Const(0, W))
            code = part if code is None else b.binary("or", code, part)
        assert code is not None  # noqa: S101
        if db < W.bits:
            code = b.binary("and", code, Const((1 << db) - 1, W))
        regs.append(vals.from_code(b, code, dd))
    _result(ctx, op, op.result, regs)


# ---------------------------------------------------------------------------- dot and reduce


def _dot(ctx: Ctx, op: V.Dot) -> None:
    a, bt, c = ctx.tile(op.a, op), ctx.tile(op.b, op), ctx.tile(op.c, op)
    M, K = a.shape
    N = bt.shape[1]
    b = ctx.b
    is_float = a.dtype.is_float
    (abase, ast), (bbase, bst) = ctx.exchange([a, bt])
    acc_t = F32 if is_float else vals.reg_type(c.dtype)
    inits = []
    for r in c.regs:
        if is_float:
            inits.append(r if c.dtype.name == "f32" else b.cast("fpext", r, F32))
        else:
            inits.append(r)
    L = len(c.regs)
    rows, cols = [], []
    for j in range(L):
        i_, n_ = ctx.coords(c.shape, j)
        rows.append(b.gep(abase, b.binary("mul", i_, Const(K, I32), "ar") if K > 1 else i_, ast, "arow"))
        cols.append(b.gep(bbase, n_, bst, "bcol"))

    def load_f(p: Operand, st, dt) -> Operand:  # noqa: ANN001
        v = b.load(st, p, st.bits // 8)
        if is_float:
            return v if dt.name == "f32" else vals.convert(b, v, dt, dtype("f32"))
        return v if v.type == acc_t else vals.convert(b, v, dt, c.dtype)

    with b.for_(Const(0, I32), Const(K, I32), Const(1, I32), inits, "k") as loop:
        kn = b.binary("mul", loop.iv, Const(N, I32), "kn") if N > 1 else loop.iv
        out = []
        for j in range(L):
            av = load_f(b.gep(rows[j], loop.iv, ast, "ap"), ast, a.dtype)
            bv = load_f(b.gep(cols[j], kn, bst, "bp"), bst, bt.dtype)
            if is_float:
                out.append(b.fma(av, bv, loop.carried[j], "acc"))
            else:
                out.append(b.binary("add", loop.carried[j], b.binary("mul", av, bv), "acc"))
        loop.yield_(*out)
    regs = []
    for r in loop.results:
        if is_float:
            regs.append(r if c.dtype.name == "f32" else b.cast("fptrunc", r, vals.reg_type(c.dtype)))
        else:
            regs.append(vals.normalize(b, r, c.dtype))
    _result(ctx, op, op.result, regs)


def _warp_split(shape: tuple[int, ...], ax: int) -> tuple[int, int] | None:
    """``(s, n1)``: the reduced axis (stride ``s`` elements) splits into groups of ``n1`` held by ``s * n1`` lanes.

    Under the flat distribution element ``e`` sits in lane ``e mod 32`` of
    slot ``e // T`` (or, for tiles smaller than the block, ``e mod n``).  When
    ``s`` is a power of two and ``n1`` a power of two dividing the extent with
    ``s * n1 <= 32``, the ``n1`` elements ``base + i*s`` (``i`` in one group)
    are in one slot and in lanes of one aligned ``s * n1``-lane block whose
    lane bits equal the element's low bits, so ``shfl.bfly`` with masks
    ``s, 2s, ..., s*n1/2`` combines exactly one group.  None: no such split.
    """
    s, n = row_strides(shape)[ax], shape[ax]
    if s & (s - 1) or s >= 32:
        return None
    n1 = 1
    while n % (2 * n1) == 0 and s * n1 * 2 <= 32:
        n1 *= 2
    return (s, n1) if n1 > 1 else None


def _shfl_bfly(ctx: Ctx, v: Operand, mask: int) -> Operand:
    """``v`` of the lane ``laneid ^ mask``: shuffles move 32 bits, so narrower floats ride in f32, 64-bit in halves."""
    b = ctx.b
    t = v.type
    if t in (I32, F32):
        return b.shfl("bfly", v, Const(mask, I32), hint="sh")
    if t in (F16, BF16):  # exact both ways
        return b.cast("fptrunc", b.shfl("bfly", b.cast("fpext", v, F32), Const(mask, I32), hint="sh"), t)
    w = v if t == I64 else b.cast("bitcast", v, I64)
    lo = b.shfl("bfly", b.cast("trunc", w, I32), Const(mask, I32), hint="sh")
    hi = b.shfl("bfly", b.cast("trunc", b.binary("lshr", w, Const(32, I64)), I32), Const(mask, I32), hint="sh")
    out = b.binary("or", b.cast("zext", lo, I64), b.binary("shl", b.cast("zext", hi, I64), Const(32, I64)))
    return out if t == I64 else b.cast("bitcast", out, t)


def _reduce(ctx: Ctx, op: V.Reduce) -> None:
    """Reduce along ``op.axis``: butterfly shuffles inside each warp where the axis allows, then scratch memory.

    With a warp split (:func:`_warp_split`) each group of ``n1`` elements is
    combined with ``log2(n1)`` ``shfl.bfly`` steps, one lane per group writes
    its partial to scratch, and each result element combines its ``n / n1``
    partials in order; otherwise every element goes through scratch and each
    result walks the whole axis.  Integer results are bit-identical to the
    interpreter (sums wrap modulo 2**32 or 2**64 and are normalised once,
    max/min are exact), and so are float max/min.  Float sums add in the
    element dtype in another order than the interpreter's (numpy's pairwise
    sum): both are within ``(N-1) u sum|x|`` of the exact sum, so they differ
    by at most ``2 (N-1) u sum|x|`` (``u`` = 2**-24 f32, 2**-11 f16, 2**-8
    bf16, 2**-53 f64) -- the tolerance the tests hold it to.
    """
    x = ctx.tile(op.x, op)
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    b, ax = ctx.b, op.axis
    fn = {"sum": "add", "max": "max", "min": "min"}[op.kind]
    acc_dt = x.dtype

    def combine(a: Operand, v: Operand) -> Operand:
        if vals.is_int(acc_dt) and fn == "add":
            return b.binary("add", a, v)  # wraps; normalised once at the end
        return vals.binary(b, fn, a, v, acc_dt)

    split = _warp_split(x.shape, ax)
    if split is None:
        (base, st), = ctx.exchange([x])
        part_shape = x.shape
    else:
        s, n1 = split
        part_shape = x.shape[:ax] + (x.shape[ax] // n1,) + x.shape[ax + 1:]
        parts = []
        for r in x.regs:
            v, m = r, s
            while m < s * n1:
                v = combine(v, _shfl_bfly(ctx, v, m))
                m *= 2
            parts.append(v)
        st = spill_type(x.dtype)
        size = 1
        for d in part_shape:
            size *= d
        base = ctx.scratch(-(-(size * nbytes(st)) // 16) * 16)
        b.emit(S.Barrier())  # scratch may still be read by an earlier exchange
        for j, v in enumerate(parts):
            c = list(ctx.coords(x.shape, j))
            lead = b.cmp("eq", b.binary("and", c[ax], Const(n1 - 1, I32)), Const(0, I32), "lead")
            c[ax] = b.binary("lshr", c[ax], Const(n1.bit_length() - 1, I32), "grp")
            p = b.gep(base, _flat_index(ctx, c, part_shape), st, "pa")
            b.store(p, v, nbytes(st), ctx.and_(ctx.primary(x.size, j), lead))
        b.emit(S.Barrier())
    n_ax, stride = part_shape[ax], row_strides(part_shape)[ax]
    firsts, bases = [], []
    for j in range(ctx.slots(t.size)):
        p0 = b.gep(base, _flat_index(ctx, list(ctx.coords(t.shape, j)), part_shape), st, "rb")
        bases.append(p0)
        firsts.append(b.load(st, p0, nbytes(st)))
    if n_ax == 1:
        results = firsts
    else:
        with b.for_(Const(1, I32), Const(n_ax, I32), Const(1, I32), firsts, "r") as loop:
            off = b.binary("mul", loop.iv, Const(stride, I32)) if stride > 1 else loop.iv
            loop.yield_(*[combine(loop.carried[j], b.load(st, b.gep(p0, off, st, "rp"), nbytes(st)))
                          for j, p0 in enumerate(bases)])  # fmt: skip
        results = list(loop.results)
    _result(ctx, op, op.result, [vals.normalize(b, r, acc_dt) for r in results])


HANDLERS = {
    V.ProgramId: _program_id,
    V.NumPrograms: _num_programs,
    V.Full: _full,
    V.Arange: _arange,
    V.Cast: _cast,
    V.View: _view,
    V.ElementwiseUnary: _unary,
    V.ElementwiseBinary: _binary,
    V.Where: _where,
    V.Fma: _fma,
    V.Dot: _dot,
    V.Reduce: _reduce,
    V.Lookup: _lookup,
    V.Broadcast: _broadcast,
    V.Reshape: _reshape,
}
