"""Lowering of the memory ops: global views, masked global loads/stores, shared buffers, async copies.

Global addressing: element ``i`` of a view sits at element offset
``sum(i_d * stride_d)`` from the pointer, computed in i64 (offsets may pass
2**31); an element is in bounds when ``0 <= i_d < shape_d`` for every d.
Out-of-bounds or masked-off elements are not touched (predicated accesses)
and read the load's ``other``.  Elements narrower than a byte are read as
the one or two bytes that hold them, LSB-first (``lowbit.pack``'s order).

Shared buffers are dense row-major arrays with one storage unit per element
(sub-byte elements take a byte): the VM reaches shared memory only through
tile ops, so its bit layout there is the compiler's choice.
"""

from __future__ import annotations

from lowbit.dtypes import DType
from lowbit.ir import ops as V
from lowbit.ir.simt import Const, Operand, Reg
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.kernel import SharedBuffer
from lowbit.ir.simt.types import I8, I16, I32, I64, PTR_GLOBAL, ScalarType
from lowbit.ir.types import GlobalType, SharedType, TileType, is_bool
from lowbit.transforms import _values as vals
from lowbit.transforms._context import Ctx, GView, SBuf, Tile, fail, nbytes, row_strides

__all__ = ["HANDLERS"]


def storage_type(dt: DType) -> ScalarType | None:
    """How one element is stored in memory (None: narrower than a byte, bit-addressed)."""
    if is_bool(dt) or dt.bits < 8:
        return None
    if dt.name in vals.IEEE:
        return vals.IEEE[dt.name]
    return {8: I8, 16: I16, 32: I32, 64: I64}.get(dt.bits)


def _to_reg(ctx: Ctx, x: Operand, dt: DType) -> Operand:
    """A loaded storage unit -> the element's register form."""
    rt = vals.reg_type(dt)
    if x.type == rt:
        return x
    signed = vals.is_int(dt) and dt.is_signed
    return ctx.b.cast("sext" if signed else "zext", x, rt)


def _to_storage(ctx: Ctx, x: Operand, st: ScalarType) -> Operand:
    return x if x.type == st else ctx.b.cast("trunc", x, st)


def _global_view(ctx: Ctx, op: V.GlobalView) -> None:
    g = op.result.type
    assert isinstance(g, GlobalType)  # noqa: S101
    ptr = ctx.get(op.ptr, op)
    ctx.put(op.result, GView(ptr, g.dtype, op.shape, op.strides))  # type: ignore[arg-type]


def _element(ctx: Ctx, view: GView, offsets: tuple, shape: tuple[int, ...], j: int, op: V.Op):  # noqa: ANN202
    """(in-bounds predicate, i64 element offset) of slot ``j`` of a ``shape`` tile at ``offsets``."""
    b = ctx.b
    ok = None
    lin: Operand | None = None
    for d, c in enumerate(ctx.coords(shape, j)):
        off = ctx.scalar(offsets[d])
        lim = ctx.scalar(view.shape[d])
        if off.type != lim.type:
            off, lim = ctx.i64(off), ctx.i64(lim)
        idx = b.binary("add", off, c if off.type == I32 else ctx.i64(c), "idx") if not (isinstance(c, Const) and c.value == 0) else off
        inb = b.binary("and", b.cmp("sge", idx, Const(0, idx.type)), b.cmp("slt", idx, lim))
        ok = inb if ok is None else b.binary("and", ok, inb)
        term = b.binary("mul", ctx.i64(idx), ctx.i64(ctx.scalar(view.strides[d])), "off")
        lin = term if lin is None else b.binary("add", lin, term, "off")
    assert ok is not None and lin is not None  # noqa: S101
    return ok, lin


def _load_bits(ctx: Ctx, view: GView, lin: Operand, ok: Operand) -> Operand:
    """A sub-byte element's code (i32) at element offset ``lin`` (masked by ``ok``)."""
    b, bits = ctx.b, view.dtype.bits
    bitaddr = b.binary("mul", lin, Const(bits, I64), "bit")
    lo_p = b.gep(view.ptr, b.binary("ashr", bitaddr, Const(3, I64)), I8, "ba")
    word = b.cast("zext", b.load(I8, lo_p, 1, ok, Const(0, I8), "byte"), I32)
    if 8 % bits:
        hi_i = b.binary("ashr", b.binary("add", bitaddr, Const(bits - 1, I64)), Const(3, I64))
        hi = b.cast("zext", b.load(I8, b.gep(view.ptr, hi_i, I8, "ba"), 1, ok, Const(0, I8), "byte"), I32)
        word = b.binary("or", word, b.binary("shl", hi, Const(8, I32)))
    sh = b.cast("trunc", b.binary("and", bitaddr, Const(7, I64)), I32)
    return b.binary("and", b.binary("lshr", word, sh), Const((1 << bits) - 1, I32))


def _load_global(ctx: Ctx, op: V.LoadGlobal) -> None:
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    ctx.check_layout(t, op)
    view = ctx.get(op.src, op)
    assert isinstance(view, GView)  # noqa: S101
    mask = ctx.tile(op.mask, op) if op.mask is not None else None
    other = vals.const_value(op.other, t.dtype)
    st = storage_type(t.dtype)
    if st is None and (is_bool(t.dtype) or 8 % t.dtype.bits and t.dtype.bits > 8):
        raise fail(op, f"global elements of {t.dtype.name} are not supported")
    b, regs = ctx.b, []
    n = t.size
    for j in range(ctx.slots(n)):
        ok, lin = _element(ctx, view, op.offsets, t.shape, j, op)
        if mask is not None:
            ok = b.binary("and", ok, mask.regs[j])
        if st is None:
            v = vals.from_code(b, _load_bits(ctx, view, lin, ok), t.dtype)
        else:
            raw = b.load(st, b.gep(view.ptr, lin, st), nbytes(st), ok, Const(0, st) if st.is_int else other, "ld")
            v = _to_reg(ctx, raw, t.dtype)
        regs.append(b.select(ok, v, other) if (st is None or st.is_int) else v)
    ctx.put(op.result, Tile(t.dtype, t.shape, tuple(regs)))


def _store_global(ctx: Ctx, op: V.StoreGlobal) -> None:
    x = ctx.tile(op.value, op)
    view = ctx.get(op.dst, op)
    assert isinstance(view, GView)  # noqa: S101
    st = storage_type(x.dtype)
    if st is None:
        raise fail(op, f"stores of {x.dtype.name} (narrower than a byte) to global memory are not supported yet; "
                       "view the tile as uint32 words and store those")  # fmt: skip
    mask = ctx.tile(op.mask, op) if op.mask is not None else None
    b = ctx.b
    for j, r in enumerate(x.regs):
        ok, lin = _element(ctx, view, op.offsets, x.shape, j, op)
        if mask is not None:
            ok = b.binary("and", ok, mask.regs[j])
        ok = ctx.and_(ok, ctx.primary(x.size, j))
        b.store(b.gep(view.ptr, lin, st), _to_storage(ctx, r, st), nbytes(st), ok)


# ---------------------------------------------------------------------------- shared memory


def _shared_unit(dt: DType) -> ScalarType:
    return storage_type(dt) or I8


def _alloc_shared(ctx: Ctx, op: V.AllocShared) -> None:
    t = op.result.type
    assert isinstance(t, SharedType)  # noqa: S101
    if t.layout is not None:
        raise fail(op, f"shared layout {t.layout} is not supported by the lowering yet")
    name = f"smem{ctx.shared_count}"
    ctx.shared_count += 1
    n = 1
    for s in t.shape:
        n *= s
    ctx.b.shared.append(SharedBuffer(name, n * nbytes(_shared_unit(t.dtype)), 16))
    ctx.put(op.result, SBuf(name, t.dtype, t.shape))


def _shared_index(ctx: Ctx, buf: SBuf, offsets: tuple, shape: tuple[int, ...], j: int) -> Operand:
    b = ctx.b
    lin: Operand | None = None
    for d, (c, stride) in enumerate(zip(ctx.coords(shape, j), row_strides(buf.shape))):
        idx = b.binary("add", ctx.scalar(offsets[d]) if offsets[d].dtype.name == "int32" else
                       b.cast("trunc", ctx.scalar(offsets[d]), I32), c, "si")  # fmt: skip
        term = idx if stride == 1 else b.binary("mul", idx, Const(stride, I32), "si")
        lin = term if lin is None else b.binary("add", lin, term, "si")
    assert lin is not None  # noqa: S101
    return lin


def _load_shared(ctx: Ctx, op: V.LoadShared) -> None:
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    ctx.check_layout(t, op)
    buf = ctx.get(op.src, op)
    assert isinstance(buf, SBuf)  # noqa: S101
    b, st = ctx.b, _shared_unit(t.dtype)
    base = b.shared_addr(buf.name)
    regs = []
    for j in range(ctx.slots(t.size)):
        raw = b.load(st, b.gep(base, _shared_index(ctx, buf, op.offsets, t.shape, j), st, "sa"), nbytes(st))
        if storage_type(t.dtype) is None:  # sub-byte: the byte holds the code
            regs.append(vals.from_code(b, b.cast("zext", raw, I32), t.dtype))
        else:
            regs.append(_to_reg(ctx, raw, t.dtype))
    ctx.put(op.result, Tile(t.dtype, t.shape, tuple(regs)))


def _store_shared(ctx: Ctx, op: V.StoreShared) -> None:
    x = ctx.tile(op.value, op)
    buf = ctx.get(op.dst, op)
    assert isinstance(buf, SBuf)  # noqa: S101
    b, st = ctx.b, _shared_unit(x.dtype)
    base = b.shared_addr(buf.name)
    for j, r in enumerate(x.regs):
        v = vals.code_of(b, r, x.dtype, False) if storage_type(x.dtype) is None else r
        p = b.gep(base, _shared_index(ctx, buf, op.offsets, x.shape, j), st, "sa")
        b.store(p, _to_storage(ctx, v, st), nbytes(st), ctx.primary(x.size, j))


def _copy_async(ctx: Ctx, op: V.CopyAsync) -> None:
    """Each thread copies its (flat-distributed) elements of the buffer.

    4- and 8-byte elements go through ``cp.async.ca`` with ``src_size`` 0 for
    out-of-bounds / masked-off elements (zero fill); narrower elements are
    copied synchronously (load + shared store), which satisfies the VM's
    contract (the data is there by the wait) -- wide vector cp.async comes
    with shared-memory planning.
    """
    buf = ctx.get(op.dst, op)
    view = ctx.get(op.src, op)
    assert isinstance(buf, SBuf) and isinstance(view, GView)  # noqa: S101
    shape, dt = buf.shape, buf.dtype
    n = 1
    for s in shape:
        n *= s
    mask = ctx.tile(op.mask, op) if op.mask is not None else None
    st = storage_type(dt)
    b = ctx.b
    base = b.shared_addr(buf.name)
    for j in range(ctx.slots(n)):
        ok, lin = _element(ctx, view, op.offsets, shape, j, op)
        if mask is not None:
            ok = b.binary("and", ok, mask.regs[j])
        own = ctx.primary(n, j)
        dst = b.gep(base, ctx.lin(n, j), _shared_unit(dt), "ca")
        if st is not None and nbytes(st) in (4, 8):
            safe = b.select(ok, lin, Const(0, I64))
            src = b.gep(view.ptr, safe, st, "cs")
            size = b.select(ok, Const(nbytes(st), I32), Const(0, I32))
            if own is None:
                b.emit(S.CpAsync(dst, src, nbytes(st), "ca", size))
            else:
                with b.if_(own):
                    b.emit(S.CpAsync(dst, src, nbytes(st), "ca", size))
            continue
        if st is None:
            if is_bool(dt) or dt.bits > 8:
                raise fail(op, f"copies of {dt.name} elements are not supported")
            code = _load_bits(ctx, view, lin, ok)
            b.store(dst, b.cast("trunc", code, I8), 1, own)
        else:
            raw = b.load(st, b.gep(view.ptr, lin, st), nbytes(st), ok, Const(0, st) if st.is_int else Const(0.0, st), "ld")
            b.store(dst, raw, nbytes(st), own)


def _commit(ctx: Ctx, op: V.CommitGroup) -> None:
    ctx.b.emit(S.CpAsyncCommit())


def _wait(ctx: Ctx, op: V.WaitGroup) -> None:
    ctx.b.emit(S.CpAsyncWait(min(op.pending, 7)))


def _barrier(ctx: Ctx, op: V.Barrier) -> None:
    ctx.b.emit(S.Barrier())


HANDLERS = {
    V.GlobalView: _global_view,
    V.LoadGlobal: _load_global,
    V.StoreGlobal: _store_global,
    V.AllocShared: _alloc_shared,
    V.FreeShared: lambda ctx, op: None,
    V.LoadShared: _load_shared,
    V.StoreShared: _store_shared,
    V.CopyAsync: _copy_async,
    V.CommitGroup: _commit,
    V.WaitGroup: _wait,
    V.Barrier: _barrier,
}
