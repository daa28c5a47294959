"""Lowering of the memory ops: global views, masked global loads/stores, shared buffers, async copies.

Global addressing: element ``i`` of a view sits at element offset
``sum(i_d * stride_d)`` from the pointer, computed in i64 (offsets may pass
2**31); an element is in bounds when ``0 <= i_d < shape_d`` for every d.
Out-of-bounds or masked-off elements are not touched (predicated accesses)
and read the load's ``other``.  Elements narrower than a byte are read as
the one or two bytes that hold them, LSB-first (``lowbit.pack``'s order),
and written with an atomic and/or pair per 32-bit word they touch (other
threads and blocks own the neighbouring bits; see :func:`_store_bits`), which
needs a pointer to whole 32-bit words.

Shared buffers are dense row-major arrays with one storage unit per element
(sub-byte elements take a byte): the VM reaches shared memory only through
tile ops, so its bit layout there is the compiler's choice.
"""

from __future__ import annotations

import math

from lowbit.dtypes import DType
from lowbit.ir import ops as V
from lowbit.ir.expr import Const as EConst
from lowbit.ir.simt import Const, Operand, Reg
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.kernel import SharedBuffer
from lowbit.ir.simt.types import I8, I16, I32, I64, PTR_GLOBAL, ScalarType
from lowbit.ir.types import GlobalType, PointerType, SharedType, TileType, is_bool
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
    pt = op.ptr.type
    words = isinstance(pt, PointerType) and not is_bool(pt.dtype) and pt.dtype.bits % 32 == 0
    ctx.put(op.result, GView(ptr, g.dtype, op.shape, op.strides, words))  # type: ignore[arg-type]


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
        if is_bool(x.dtype) or x.dtype.bits > 8:
            raise fail(op, f"global elements of {x.dtype.name} are not supported")
        if not view.whole_words:
            raise fail(op, f"stores of {x.dtype.name} (narrower than a byte) update whole 32-bit words atomically, "
                           "so the pointer must be to 32-bit words (declare it lowbit.ptr('uint32') and view it with "
                           f"dtype={x.dtype.name}): a buffer of bytes may start or end inside a word")  # fmt: skip
    mask = ctx.tile(op.mask, op) if op.mask is not None else None
    b = ctx.b
    for j, r in enumerate(x.regs):
        ok, lin = _element(ctx, view, op.offsets, x.shape, j, op)
        if mask is not None:
            ok = b.binary("and", ok, mask.regs[j])
        ok = ctx.and_(ok, ctx.primary(x.size, j))
        if st is None:
            _store_bits(ctx, view, lin, vals.code_of(b, r, x.dtype, False), ok)
        else:
            b.store(b.gep(view.ptr, lin, st), _to_storage(ctx, r, st), nbytes(st), ok)


def _store_bits(ctx: Ctx, view: GView, lin: Operand, code: Operand, ok: Operand | None) -> None:
    """Write a sub-byte element's ``code`` at element offset ``lin`` (where ``ok``), keeping every other bit.

    Neighbouring elements of one word may belong to other threads or other
    blocks, so the word is never read and written back: for each of the one
    or two 32-bit words the element's bits fall in, ``atomic_and(word,
    ~mask)`` clears them and ``atomic_or(word, bits)`` sets them.  Each
    thread's pair touches only its own bits, so pairs of different threads
    interleave in any order and still leave every thread's bits as written
    and all other bits as they were (the argument in
    :class:`~lowbit.ir.simt.ops.AtomicBits`).  Elements of 3, 5, 6 or 7 bits
    straddle a word boundary when ``bit % 32 > 32 - bits``; the second
    word's pair runs only then.
    """
    b, bits = ctx.b, view.dtype.bits
    full = (1 << bits) - 1
    bitaddr = b.binary("mul", lin, Const(bits, I64), "bit")
    word = b.binary("ashr", bitaddr, Const(5, I64), "wi")
    sh = b.cast("trunc", b.binary("and", bitaddr, Const(31, I64)), I32, "sh")
    p0 = b.gep(view.ptr, word, I32, "wa")
    clear0 = b.unary("not", b.binary("shl", Const(full, I32), sh))
    set0 = b.binary("shl", code, sh)
    straddle = 32 % bits != 0

    def update(p: Operand, clear: Operand, put: Operand) -> None:
        b.op(S.AtomicBits, I32, "and", p, clear, hint="old")
        b.op(S.AtomicBits, I32, "or", p, put, hint="old")

    def body() -> None:
        update(p0, clear0, set0)
        if not straddle:
            return
        rs = b.binary("and", b.binary("sub", Const(32, I32), sh), Const(31, I32))  # 32 - sh, in 1..6 when used
        second = b.cmp("ugt", sh, Const(32 - bits, I32), "two")
        with b.if_(second):
            p1 = b.gep(p0, Const(1, I32), I32, "wa")
            update(p1, b.unary("not", b.binary("lshr", Const(full, I32), rs)), b.binary("lshr", code, rs))

    if ok is None:
        body()
    else:
        with b.if_(ok):
            body()


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
    n = math.prod(t.shape)
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


def _vector_width(view: GView, buf_shape: tuple[int, ...], st: ScalarType | None, masked: bool) -> int:
    """Elements per ``cp.async`` chunk for 1- and 2-byte elements (0: no vector copies).

    What the VM program guarantees statically: the view's last stride is the
    constant 1 (a row is contiguous in global memory) and no per-element mask
    (``src_size`` can only zero-fill a chunk's tail).  The widest of 16, 8, 4
    bytes whose element count divides the shared row is taken, so a chunk
    never crosses a shared row and its shared address (buffers are 16-byte
    aligned) is aligned.  The global address's alignment is not known before
    launch (a pointer is only element-aligned): it is tested per chunk at run
    time (:func:`_copy_async`).
    """
    if masked or st is None or nbytes(st) > 2:
        return 0
    last = view.strides[-1]
    if not (isinstance(last, EConst) and last.value == 1):
        return 0
    for size in (16, 8, 4):
        v = size // nbytes(st)
        if buf_shape[-1] % v == 0:
            return v
    return 0


def _copy_sync(ctx: Ctx, view: GView, dst: Operand, ok: Operand, lin: Operand, st: ScalarType,
               own: Operand | None) -> None:  # fmt: skip
    b = ctx.b
    raw = b.load(st, b.gep(view.ptr, lin, st), nbytes(st), ok, Const(0, st) if st.is_int else Const(0.0, st), "ld")
    b.store(dst, raw, nbytes(st), own)


def _copy_vectors(ctx: Ctx, op: V.CopyAsync, view: GView, buf: SBuf, st: ScalarType, vw: int) -> None:
    """Chunks of ``vw`` consecutive elements of a row, flat-distributed over the threads (as elements are).

    A chunk whose first element is in bounds and whose global address is
    aligned to the chunk size is one ``cp.async`` (``cg`` for 16 bytes,
    ``ca`` for 4/8) reading the in-bounds part of the row and zero-filling
    the rest (``src_size``); any other chunk (misaligned base pointer or
    offset, out of bounds, a negative column) is copied element by element
    synchronously, out-of-bounds elements as 0.
    """
    b, es = ctx.b, nbytes(st)
    shape = buf.shape
    cshape = shape[:-1] + (shape[-1] // vw,)
    nc = 1
    for d in cshape:
        nc *= d
    base = b.shared_addr(buf.name)
    size = vw * es
    addr0 = b.cast("ptrtoint", view.ptr, I64, "pa")
    last = len(shape) - 1
    for j in range(ctx.slots(nc)):
        rows_ok: Operand | None = None
        lin: Operand | None = None
        col = extent = Const(0, I64)
        for d, c in enumerate(ctx.coords(cshape, j)):
            cd = c if d < last else (b.binary("mul", c, Const(vw, I32), "vc") if not isinstance(c, Const) else c)
            idx = b.binary("add", ctx.i64(ctx.scalar(op.offsets[d])), ctx.i64(cd), "idx")
            lim = ctx.i64(ctx.scalar(view.shape[d]))
            term = b.binary("mul", idx, ctx.i64(ctx.scalar(view.strides[d])), "off") if d < last else idx
            lin = term if lin is None else b.binary("add", lin, term, "off")
            if d < last:
                inb = b.binary("and", b.cmp("sge", idx, Const(0, I64)), b.cmp("slt", idx, lim))
                rows_ok = ctx.and_(rows_ok, inb)
            else:
                col, extent = idx, lim
        assert lin is not None  # noqa: S101

        def in_row(k: int) -> Operand:
            ck = col if k == 0 else b.binary("add", col, Const(k, I64), "ck")
            inb = b.binary("and", b.cmp("sge", ck, Const(0, I64)), b.cmp("slt", ck, extent))
            return inb if rows_ok is None else b.binary("and", rows_ok, inb)

        own = ctx.primary(nc, j)
        first_ok = in_row(0)
        addr = b.binary("add", addr0, b.binary("mul", lin, Const(es, I64)), "ga")
        aligned = b.cmp("eq", b.binary("and", addr, Const(size - 1, I64)), Const(0, I64), "al")
        fast = b.binary("and", first_ok, aligned, "fast")
        e0 = ctx.lin(nc, j)
        dst0 = b.gep(base, b.binary("mul", e0, Const(vw, I32), "ve"), st, "ca")
        go = fast if own is None else b.binary("and", fast, own)
        with b.if_(go) as scope:
            left = b.binary("smin", b.binary("sub", extent, col), Const(vw, I64))  # >= 1 here
            nbytes_in = b.binary("mul", b.cast("trunc", left, I32), Const(es, I32), "sz")
            b.emit(S.CpAsync(dst0, b.gep(view.ptr, lin, st, "cs"), size, "cg" if size == 16 else "ca", nbytes_in))
            b.else_(scope)
            slow = own  # here own implies not fast; a duplicate chunk copies nothing
            for k in range(vw):
                lk = lin if k == 0 else b.binary("add", lin, Const(k, I64), "lk")
                _copy_sync(ctx, view, b.gep(dst0, Const(k, I32), st, "ca"), in_row(k), lk, st, slow)


def _copy_async(ctx: Ctx, op: V.CopyAsync) -> None:
    """Each thread copies its (flat-distributed) elements -- or chunks of elements -- of the buffer.

    4- and 8-byte elements go through ``cp.async.ca`` with ``src_size`` 0 for
    out-of-bounds / masked-off elements (zero fill).  1- and 2-byte elements
    of contiguous rows (and no mask) go as 4/8/16-byte chunks
    (:func:`_copy_vectors`); other narrow elements are copied synchronously
    (load + shared store), which satisfies the VM's contract (the data is
    there by the wait, visible to other threads after a barrier).
    """
    buf = ctx.get(op.dst, op)
    view = ctx.get(op.src, op)
    assert isinstance(buf, SBuf) and isinstance(view, GView)  # noqa: S101
    shape, dt = buf.shape, buf.dtype
    n = math.prod(shape)
    mask = ctx.tile(op.mask, op) if op.mask is not None else None
    st = storage_type(dt)
    vw = _vector_width(view, shape, st, mask is not None)
    if vw:
        assert st is not None  # noqa: S101
        _copy_vectors(ctx, op, view, buf, st, vw)
        return
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
            _copy_sync(ctx, view, dst, ok, lin, st, own)


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
