"""Lowering of shared memory: planned buffers, stage views, packed sub-byte elements, swizzles, async copies.

The block has one shared-memory area (``@smem``, static or dynamic:
:func:`lowbit.transforms.plan_shared.storage`); a buffer is its planned
byte ``offset`` in it (:class:`~lowbit.transforms._context.SBuf`), a view
adds a runtime byte offset (``dyn``: the stage's start).  Elements are
dense, row-major and packed -- element ``i`` of a view starts at bit
``i * bits`` of the view, LSB-first, so eight uint4 codes share a 32-bit
word -- and a buffer's swizzle XOR-permutes the byte offsets within the
allocation: ``rel -> rel ^ ((rel >> shift) & mask)``.  Since a planned
swizzle's period divides every view's size, ``swizzle(dyn + local) = dyn +
swizzle(local)`` and the per-thread part is loop-invariant; otherwise the
whole offset is swizzled at run time.

Accesses: ``vec`` slots per instruction (whole bytes, at most 16, inside
one swizzle chunk) or one element each: elements of at least a byte are
one load/store of their storage unit; narrower ones are read as the one or
two bytes that hold them and written with an ``atom.shared.and``/``or`` pair
per 32-bit word they touch, because neighbouring bits belong to other
threads (the argument of :func:`lowbit.transforms._lower_memory._store_bits`).

``copy_async`` moves runs of its copy layout as one 4/8/16-byte
``cp.async`` where the run starts in bounds and aligned (proven by
selection, then issued whatever its bounds: all or nothing through
``ignore-src`` when no run straddles the row's end, else the tail
zero-filled through ``src_size``; or tested at run time), other runs
through registers (loaded, zero where out of bounds, then stored as the
run's bytes at once), and single elements by ``cp.async.ca`` (4/8 bytes,
zero-filled when off) or synchronously.  Cache hints ride on the
``cp.async``s.
"""

from __future__ import annotations

import math

from lowbit.dtypes import DType
from lowbit.ir import ops as V
from lowbit.ir.expr import Const as EConst
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import I8, I32, I64, ScalarType
from lowbit.ir.types import SharedType, TileType, is_bool
from lowbit.layout.register import RegisterLayout
from lowbit.layout.swizzle import Swizzle
from lowbit.transforms import _values as vals
from lowbit.transforms._context import Ctx, GView, SBuf, fail, row_strides
from lowbit.transforms._lower_compute import put_tile
from lowbit.transforms._shared_access import copy_run, swizzle_of
from lowbit.transforms._tiles import scalars, word_count, words

__all__ = ["HANDLERS", "element_pointer", "shared_byte_offset"]


def _mem():  # noqa: ANN202 - the global-memory helpers (imported late: _lower_memory imports this module)
    from lowbit.transforms import _lower_memory  # noqa: PLC0415

    return _lower_memory


def _bits(dt: DType) -> int:
    return 8 if is_bool(dt) else dt.bits


# ---------------------------------------------------------------------------- addresses


def _linear(ctx: Ctx, buf: SBuf, offsets: tuple, coords: tuple[Operand, ...]) -> Operand:
    """The row-major element index (i32) of ``offsets + coords`` in the view."""
    b = ctx.b
    lin: Operand | None = None
    for d, (c, stride) in enumerate(zip(coords, row_strides(buf.shape))):
        off = ctx.i32(ctx.scalar(offsets[d]))
        idx = ctx.add(off, c.value, "si") if isinstance(c, Const) else b.binary("add", off, c, "si")
        if isinstance(idx, Const) and idx.value == 0:
            continue
        term = idx if stride == 1 else (Const(idx.value * stride, I32) if isinstance(idx, Const)
                                        else b.binary("mul", idx, Const(stride, I32), "si"))  # fmt: skip
        lin = term if lin is None else (Const(lin.value + term.value, I32) if isinstance(lin, Const) and isinstance(term, Const)
                                        else b.binary("add", lin, term, "si"))  # fmt: skip
    return lin if lin is not None else Const(0, I32)


def _scale(ctx: Ctx, x: Operand, num: int, shift: int = 0) -> Operand:
    """``(x * num) >> shift`` (i32), folded for constants."""
    b = ctx.b
    if isinstance(x, Const):
        return Const((x.value * num) >> shift, I32)
    y = x if num == 1 else b.binary("mul", x, Const(num, I32), "sb")
    return y if shift == 0 else b.binary("lshr", y, Const(shift, I32), "sb")


def _swizzle(ctx: Ctx, sw: Swizzle | None, x: Operand) -> Operand:
    if sw is None or sw.bits == 0:
        return x
    if isinstance(x, Const):
        return Const(sw(x.value), I32)
    b = ctx.b
    hi = b.binary("and", b.binary("lshr", x, Const(sw.shift, I32), "sw"), Const(sw.mask, I32), "sw")
    return b.binary("xor", x, hi, "sw")


def _add(ctx: Ctx, a: Operand | None, x: Operand) -> Operand:
    if a is None:
        return x
    if isinstance(a, Const) and isinstance(x, Const):
        return Const(a.value + x.value, I32)
    if isinstance(x, Const) and x.value == 0:
        return a
    return ctx.b.binary("add", a, x, "so")


def shared_byte_offset(ctx: Ctx, buf: SBuf, local: Operand) -> Operand:
    """The byte offset in the area of byte ``local`` of the view (swizzle and stage applied)."""
    sw = buf.swizzle
    if buf.dyn is None:
        rel = _swizzle(ctx, sw, local)
    elif sw is None or buf.dyn_align % sw.period == 0:
        rel = _add(ctx, buf.dyn, _swizzle(ctx, sw, local))
    else:
        rel = _swizzle(ctx, sw, _add(ctx, buf.dyn, local))
    return _add(ctx, Const(buf.offset, I32), rel) if buf.offset else rel


def _pointer(ctx: Ctx, buf: SBuf, local: Operand) -> Operand:
    """The address of byte ``local`` of the view: ``area + (offset + swizzle(local)) + dyn`` where the swizzle
    commutes with the stage (:func:`shared_byte_offset`), as two steps, so the per-thread part is one
    loop-invariant pointer (hoisted) and a stage's access is one add of the stage offset to it -- not an i32 add,
    its widening and a 64-bit add per access.  Both parts are non-negative i32 byte offsets of one allocation,
    whose sum fits too, so the two widened adds are the one add of the sum."""
    sw = buf.swizzle
    if buf.dyn is None or not (sw is None or buf.dyn_align % sw.period == 0):
        return ctx.b.gep(ctx.b.shared_addr(buf.name), shared_byte_offset(ctx, buf, local), I8, "sa")
    inv = _swizzle(ctx, sw, local)
    inv = _add(ctx, Const(buf.offset, I32), inv) if buf.offset else inv
    key = ("thread_base", buf.name, id(inv) if not isinstance(inv, Const) else inv.value)
    base = ctx.find(key)
    if base is None:
        base = ctx.b.gep(ctx.b.shared_addr(buf.name), inv, I8, "sa")
        ctx.put(key, base)
    return ctx.b.gep(base, buf.dyn, I8, "sa")


def _allocation_pointer(ctx: Ctx, buf: SBuf, rel: Operand) -> Operand:
    """The address of byte ``rel`` of the whole allocation (stage offset included; swizzle applied)."""
    off = _swizzle(ctx, buf.swizzle, rel)
    off = _add(ctx, Const(buf.offset, I32), off) if buf.offset else off
    return ctx.b.gep(ctx.b.shared_addr(buf.name), off, I8, "sa")


def _view_base(ctx: Ctx, buf: SBuf) -> Operand:
    """The address of an unswizzled view's first byte (area + offset + stage offset)."""
    key = ("view_base", buf)
    got = ctx.find(key)
    if got is None:
        start = _add(ctx, Const(buf.offset, I32), buf.dyn) if buf.dyn is not None else Const(buf.offset, I32)
        got = ctx.b.shared_addr(buf.name)
        if not (isinstance(start, Const) and start.value == 0):
            got = ctx.b.gep(got, start, I8, "sv")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def element_pointer(ctx: Ctx, buf: SBuf, offsets: tuple, coords: tuple[Operand, ...]) -> Operand:
    """The address of the element at ``offsets + coords`` of ``buf`` (it must start on a byte)."""
    bits = _bits(buf.dtype)
    lin = _linear(ctx, buf, offsets, coords)
    if buf.swizzle is None or buf.swizzle.bits == 0:
        # indexed in elements from the view's start, as LLVM sees best (adjacent elements are adjacent indices)
        if bits % 8 == 0:
            return ctx.b.gep(_view_base(ctx, buf), lin, _unit(buf.dtype), "sa")
        return ctx.b.gep(_view_base(ctx, buf), _scale(ctx, lin, bits, 3), I8, "sa")
    return _pointer(ctx, buf, _scale(ctx, lin, bits // 8) if bits % 8 == 0 else _scale(ctx, lin, bits, 3))


# ---------------------------------------------------------------------------- buffers and views


def _alloc_shared(ctx: Ctx, op: V.AllocShared) -> None:
    t = op.result.type
    assert isinstance(t, SharedType)  # noqa: S101
    if op.offset < 0 or ctx.shared_area is None:
        raise fail(op, "the buffer has no planned offset (the plan_shared pass did not run)")
    ctx.put(op.result, SBuf(ctx.shared_area, t.dtype, t.shape, op.offset, None, swizzle_of(t), 1 << 30))


def _shared_view(ctx: Ctx, op: V.SharedView) -> None:
    buf = ctx.get(op.buf, op)
    assert isinstance(buf, SBuf)  # noqa: S101
    bits = _bits(buf.dtype)
    k = len(op.indices)
    strides = row_strides(buf.shape)[:k]
    view_bits = math.prod(buf.shape[k:]) * bits
    if view_bits % 8:
        raise fail(op, f"a view of {math.prod(buf.shape[k:])} {buf.dtype.name} elements does not start on a byte "
                       "(shared elements are packed): make the view's size a whole number of bytes")  # fmt: skip
    dyn, align = buf.dyn, buf.dyn_align
    for e, st in zip(op.indices, strides):
        nbytes = st * bits // 8
        align = math.gcd(align, nbytes)
        dyn = _add(ctx, dyn, _scale(ctx, ctx.i32(ctx.scalar(e)), nbytes))
    ctx.put(op.result, SBuf(buf.name, buf.dtype, buf.shape[k:], buf.offset, dyn, buf.swizzle, align))


# ---------------------------------------------------------------------------- loads and stores


def _byte_local(ctx: Ctx, buf: SBuf, lin: Operand) -> tuple[Operand, Operand | None]:
    """(view byte offset of the byte holding element ``lin``'s first bit, its bit shift in that byte)."""
    bits = _bits(buf.dtype)
    if bits % 8 == 0:
        return _scale(ctx, lin, bits // 8), None
    bit = _scale(ctx, lin, bits)
    sh = Const(bit.value & 7, I32) if isinstance(bit, Const) else ctx.b.binary("and", bit, Const(7, I32), "sh")
    return _scale(ctx, bit, 1, 3), sh


def _load_code(ctx: Ctx, buf: SBuf, lin: Operand, valid: Operand | bool) -> Operand:
    """The i32 code of a sub-byte element (its one or two bytes, each through the swizzle)."""
    b, bits = ctx.b, buf.dtype.bits
    byte, sh = _byte_local(ctx, buf, lin)

    def load(local: Operand) -> Operand:
        p = _pointer(ctx, buf, local)
        raw = b.load(I8, p, 1) if valid is True else b.load(I8, p, 1, valid, Const(0, I8))  # type: ignore[arg-type]
        return b.cast("zext", raw, I32)

    word = load(byte)
    if 8 % bits:  # 3-, 5-, 6-, 7-bit codes may straddle into the next byte: read the byte holding the last bit
        last = _scale(ctx, _add(ctx, _scale(ctx, lin, bits), Const(bits - 1, I32)), 1, 3)  # (== byte when none)
        word = b.binary("or", word, b.binary("shl", load(last), Const(8, I32)))
    return b.binary("and", b.binary("lshr", word, sh), Const((1 << bits) - 1, I32))  # type: ignore[arg-type]


def _store_code(ctx: Ctx, buf: SBuf, lin: Operand, code: Operand, ok: Operand | None, op: V.Op) -> None:
    """Write a sub-byte code with an and/or atomic pair per 32-bit word it touches (other threads own the rest)."""
    b, bits = ctx.b, buf.dtype.bits
    if buf.swizzle is not None and buf.swizzle.bits and buf.swizzle.base < 2:
        raise fail(op, f"sub-byte stores update whole words; the swizzle {buf.swizzle} moves smaller pieces")
    full = (1 << bits) - 1
    # the bit within the allocation: words are the allocation's (a stage need not start on a word)
    bit = _add(ctx, _scale(ctx, buf.dyn, 8) if buf.dyn is not None else None, _scale(ctx, lin, bits))
    word = _scale(ctx, bit, 1, 5)
    sh = Const(bit.value & 31, I32) if isinstance(bit, Const) else b.binary("and", bit, Const(31, I32), "sh")

    def update(w: Operand, clear: Operand, put: Operand) -> None:
        p = _allocation_pointer(ctx, buf, _scale(ctx, w, 4))
        b.op(S.AtomicBits, I32, "and", p, clear, hint="old")
        b.op(S.AtomicBits, I32, "or", p, put, hint="old")

    def body() -> None:
        update(word, b.unary("not", b.binary("shl", Const(full, I32), sh)), b.binary("shl", code, sh))
        if 32 % bits == 0:
            return
        rs = b.binary("and", b.binary("sub", Const(32, I32), sh), Const(31, I32))
        with b.if_(b.cmp("ugt", sh, Const(32 - bits, I32), "two")):
            update(_add(ctx, word, Const(1, I32)), b.unary("not", b.binary("lshr", Const(full, I32), rs)),
                   b.binary("lshr", code, rs))  # fmt: skip

    if ok is None:
        body()
    else:
        with b.if_(ok):
            body()


def _unit(dt: DType) -> ScalarType:
    return _mem().storage_type(dt) or I8


def _load_shared(ctx: Ctx, op: V.LoadShared) -> None:
    if op.via:
        from lowbit.transforms._lower_mma import lower_ldmatrix  # noqa: PLC0415

        lower_ldmatrix(ctx, op)
        return
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    lay: RegisterLayout = t.layout  # type: ignore[assignment]
    buf = ctx.get(op.src, op)
    assert isinstance(buf, SBuf)  # noqa: S101
    b, m = ctx.b, _mem()
    if op.vec > 1:
        nbits = op.vec * t.dtype.bits
        at = m._access_type(nbits)  # noqa: SLF001
        acc: list[Operand | None] = [None] * word_count(t.dtype, lay.local_size)
        zero = m._const_of(0, at)  # noqa: SLF001
        for r in range(lay.local_size // op.vec):
            valid = ctx.valid(lay, t.shape, r * op.vec)
            if valid is False:
                continue
            p = element_pointer(ctx, buf, op.offsets, ctx.coords(lay, r * op.vec))
            if valid is True:
                v = b.load(at, p, min(16, nbits // 8), hint="ls")
            else:
                z = zero if not isinstance(zero, tuple) else b.op(S.Pack, at, zero, hint="z")
                v = b.load(at, p, min(16, nbits // 8), valid, z, hint="ls")
            m._put_bits(ctx, acc, r * nbits, v, nbits)  # noqa: SLF001
        put_tile(ctx, op.result, wrds=[a if a is not None else Const(0, I32) for a in acc])
        return
    unit = _unit(t.dtype)
    sub = not is_bool(t.dtype) and t.dtype.bits < 8
    regs = []
    for s in range(lay.local_size):
        valid = ctx.valid(lay, t.shape, s)
        if valid is False:
            raw: Operand = Const(0, I32 if sub else unit)
        elif sub:
            raw = _load_code(ctx, buf, _linear(ctx, buf, op.offsets, ctx.coords(lay, s)), valid)
        else:
            p = element_pointer(ctx, buf, op.offsets, ctx.coords(lay, s))
            zero = Const(0.0, unit) if unit.is_float else Const(0, unit)
            raw = b.load(unit, p, m.nbytes(unit)) if valid is True else b.load(unit, p, m.nbytes(unit), valid, zero)
        if sub:
            regs.append(vals.from_code(b, raw, t.dtype))
        elif m.storage_type(t.dtype) is None:  # bool: the byte holds the code
            regs.append(vals.from_code(b, b.cast("zext", raw, I32), t.dtype))
        else:
            regs.append(m._to_reg(ctx, raw, t.dtype))  # noqa: SLF001
    put_tile(ctx, op.result, scal=regs)


def _store_shared(ctx: Ctx, op: V.StoreShared) -> None:
    x = ctx.tile(op.value, op)
    buf = ctx.get(op.dst, op)
    assert isinstance(buf, SBuf)  # noqa: S101
    b, m = ctx.b, _mem()
    own = ctx.primary(x.layout)
    shape = op.value.type.shape  # type: ignore[union-attr]
    if op.vec > 1:
        nbits = op.vec * x.dtype.bits
        ws = words(ctx, x)
        for r in range(x.slots // op.vec):
            valid = ctx.valid(x.layout, shape, r * op.vec)
            if valid is False:
                continue
            p = element_pointer(ctx, buf, op.offsets, ctx.coords(x.layout, r * op.vec))
            b.store(p, m._get_bits(ctx, ws, r * nbits, nbits), min(16, nbits // 8),  # noqa: SLF001
                    m._with_valid(ctx, own, valid))  # noqa: SLF001
        return
    unit = _unit(x.dtype)
    sub = not is_bool(x.dtype) and x.dtype.bits < 8
    for s, r in enumerate(scalars(ctx, x)):
        valid = ctx.valid(x.layout, shape, s)
        if valid is False:
            continue
        ok = m._with_valid(ctx, own, valid)  # noqa: SLF001
        coords = ctx.coords(x.layout, s)
        if sub:
            _store_code(ctx, buf, _linear(ctx, buf, op.offsets, coords), vals.code_of(b, r, x.dtype, False), ok, op)
            continue
        v = vals.code_of(b, r, x.dtype, False) if m.storage_type(x.dtype) is None else r
        b.store(element_pointer(ctx, buf, op.offsets, coords), m._to_storage(ctx, v, unit), m.nbytes(unit), ok)  # noqa: SLF001


# ---------------------------------------------------------------------------- asynchronous copies


def _copy_async(ctx: Ctx, op: V.CopyAsync) -> None:
    buf = ctx.get(op.dst, op)
    view = ctx.get(op.src, op)
    assert isinstance(buf, SBuf) and isinstance(view, GView)  # noqa: S101
    m = _mem()
    dt = buf.dtype
    if is_bool(dt) or dt.bits > 64:
        raise fail(op, f"copies of {dt.name} elements are not supported")
    lay, run = copy_run(op, ctx.T)
    sw = buf.swizzle
    if sw is not None and sw.bits and run * dt.bits // 8 > (1 << sw.base):
        run = 1  # a copy larger than the swizzle's chunk would be split: element by element
    last = view.strides[-1]
    if op.mask is None and run > 1 and isinstance(last, EConst) and last.value == 1:
        _copy_runs(ctx, op, view, buf, lay, run)
        return
    _copy_elements(ctx, op, view, buf, lay, m)


def _policy(ctx: Ctx, l2: str) -> Operand | None:
    return ctx.l2_policy(l2) if l2 else None


def _copy_elements(ctx: Ctx, op: V.CopyAsync, view: GView, buf: SBuf, lay: RegisterLayout, m) -> None:  # noqa: ANN001
    b, dt = ctx.b, buf.dtype
    st = m.storage_type(dt)
    mask = scalars(ctx, ctx.tile(op.mask, op)) if op.mask is not None else None
    own = ctx.primary(lay)
    zero_offs = tuple(EConst(0, o.dtype) for o in op.offsets)
    for s in range(lay.local_size):
        valid = ctx.valid(lay, buf.shape, s)
        if valid is False:
            continue
        own_s = m._with_valid(ctx, own, valid)  # noqa: SLF001
        coords = ctx.coords(lay, s)
        ok, lin = m._element(ctx, view, op.offsets, coords)  # noqa: SLF001
        if mask is not None:
            ok = b.binary("and", ok, mask[s])
        if st is None:  # packed sub-byte element: neighbours belong to other threads
            code = m._load_bits(ctx, view, lin, ok)  # noqa: SLF001
            _store_code(ctx, buf, _linear(ctx, buf, zero_offs, coords), code, own_s, op)
            continue
        dst = element_pointer(ctx, buf, zero_offs, coords)
        if m.nbytes(st) in (4, 8):
            safe = b.select(ok, lin, Const(0, I64))
            src = b.gep(view.ptr, safe, st, "cs")
            size = b.select(ok, Const(m.nbytes(st), I32), Const(0, I32))
            cp = S.CpAsync(dst, src, m.nbytes(st), "ca", size, **_cp_hints(ctx, op))
            if own_s is None:
                b.emit(cp)
            else:
                with b.if_(own_s):
                    b.emit(cp)
            continue
        m._copy_sync(ctx, view, dst, ok, lin, st, own_s)  # noqa: SLF001


def _cp_hints(ctx: Ctx, op: V.CopyAsync) -> dict[str, object]:
    out: dict[str, object] = {}
    if op.l2:
        out["policy"] = _policy(ctx, op.l2)
    if op.prefetch:
        out["prefetch"] = op.prefetch
    return out


def _copy_runs(ctx: Ctx, op: V.CopyAsync, view: GView, buf: SBuf, lay: RegisterLayout, vw: int) -> None:
    """Runs of ``vw`` consecutive row elements: one cp.async when aligned and starting in bounds, else via registers."""
    b, m = ctx.b, _mem()
    bits = buf.dtype.bits
    size = vw * bits // 8
    zero_offs = tuple(EConst(0, o.dtype) for o in op.offsets)
    proven = op.vec >= vw and bits % 8 == 0  # alignment proven by selection: one cp.async per run
    addr0 = None if proven else b.binary("mul", b.cast("ptrtoint", view.ptr, I64, "pa"), Const(8, I64), "pb")
    st = m.storage_type(buf.dtype)
    for r in range(lay.local_size // vw):
        valid = ctx.valid(lay, buf.shape, r * vw)
        if valid is False:
            continue
        own = m._with_valid(ctx, ctx.primary(lay), valid)  # noqa: SLF001
        coords = ctx.coords(lay, r * vw)
        if proven:
            _copy_aligned_run(ctx, op, view, element_pointer(ctx, buf, zero_offs, coords), coords, vw, own)
            continue
        _, lin = m._element(ctx, view, op.offsets, coords)  # noqa: SLF001

        def at(d: int) -> Operand:
            off = ctx.i64(ctx.scalar(op.offsets[d]))
            c = coords[d]
            return off if isinstance(c, Const) and c.value == 0 else b.binary("add", off, ctx.i64(c), "ri")

        col = at(len(coords) - 1)
        extent = ctx.i64(ctx.scalar(view.shape[-1]))
        rows_ok = None
        for d in range(len(coords) - 1):
            idx = at(d)
            inb = b.binary("and", b.cmp("sge", idx, Const(0, I64)),
                           b.cmp("slt", idx, ctx.i64(ctx.scalar(view.shape[d]))))  # fmt: skip
            rows_ok = ctx.and_(rows_ok, inb)

        def in_row(k: int) -> Operand:
            ck = col if k == 0 else b.binary("add", col, Const(k, I64), "ck")
            inb = b.binary("and", b.cmp("sge", ck, Const(0, I64)), b.cmp("slt", ck, extent))
            return inb if rows_ok is None else b.binary("and", rows_ok, inb)

        dst0 = element_pointer(ctx, buf, zero_offs, coords)
        left = b.binary("smin", b.binary("sub", extent, col), Const(vw, I64))  # >= 1 when in_row(0)
        bit = b.binary("add", addr0, b.binary("mul", lin, Const(bits, I64)), "gb")  # type: ignore[arg-type]
        aligned = b.cmp("eq", b.binary("and", bit, Const(size * 8 - 1, I64)), Const(0, I64), "al")
        fast = b.binary("and", in_row(0), aligned, "fast")
        if bits % 8:  # a row ending inside a byte: its last byte holds the next row's bits, which must not land
            whole = b.cmp("eq", b.binary("and", b.binary("mul", left, Const(bits, I64)), Const(7, I64)), Const(0, I64))
            fast = b.binary("and", fast, whole, "fast")
        go = fast if own is None else b.binary("and", fast, own)
        with b.if_(go) as scope:
            nbytes_in = b.binary("lshr", b.binary("mul", b.cast("trunc", left, I32), Const(bits, I32)), Const(3, I32), "sz")
            src = m._byte_address(ctx, view, lin, buf.dtype)  # noqa: SLF001
            b.emit(S.CpAsync(dst0, src, size, "cg" if size == 16 else "ca", nbytes_in, **_cp_hints(ctx, op)))
            b.else_(scope)
            _copy_run_sync(ctx, view, buf, dst0, lin, vw, in_row, own, st)


def _copy_aligned_run(ctx: Ctx, op: V.CopyAsync, view: GView, dst: Operand, coords: tuple[Operand, ...], vw: int,
                      own: Operand | None) -> None:
    """One cp.async for a run whose alignment selection proved, whatever its bounds.

    Out of bounds it reads nothing and zero-fills: with ``ignore-src`` when
    selection also proved every run wholly in or wholly out of its row
    (``op.whole``), else through ``src_size``, which reads only a K tail's
    part.  A copy that reads nothing touches no memory (PTX ISA 9.7.9.25;
    the emulator resolves no address for it either), so its source address
    is left as computed -- an address past the view is never read -- and
    every address is one add to a loop-invariant pointer
    (:func:`~lowbit.transforms._lower_memory.offset_parts`).
    """
    b, m = ctx.b, _mem()
    size = vw * view.dtype.bits // 8
    ok: Operand | None = None
    col: Operand | None = None
    for d, c in enumerate(coords):
        lim = ctx.scalar(view.shape[d])
        idx, inb = m.in_bounds(ctx, ctx.scalar(op.offsets[d]), c, lim)
        ok = ctx.and_(ok, inb)
        col, ext = idx, lim
    assert ok is not None and col is not None  # noqa: S101
    src = m.offset_address(ctx, view, op.offsets, coords, m.storage_type(view.dtype))  # hoisted pointer + k's term
    cache = "cg" if size == 16 else "ca"
    if op.whole:
        cp = S.CpAsync(dst, src, size, cache, ignore_src=b.unary("not", ok, "skip"), **_cp_hints(ctx, op))
    else:  # in bounds, ext - col is in [1, ext] (no wrap): the elements left in the row, at most the run
        if ext.type != col.type:
            ext = ctx.i64(ext)
        left = b.cast("trunc", b.binary("smin", b.binary("sub", ext, col), Const(vw, col.type)), I32) \
            if col.type == I64 else b.binary("smin", b.binary("sub", ext, col), Const(vw, I32))
        nbytes = b.select(ok, _scale(ctx, left, view.dtype.bits // 8), Const(0, I32), "sz")
        cp = S.CpAsync(dst, src, size, cache, nbytes, **_cp_hints(ctx, op))
    if own is None:
        b.emit(cp)
    else:
        with b.if_(own):
            b.emit(cp)


def _copy_run_sync(ctx: Ctx, view: GView, buf: SBuf, dst: Operand, lin: Operand, vw: int, in_row, own,
                   st: ScalarType | None) -> None:  # noqa: ANN001
    """A run loaded element by element (0 where out of bounds) into registers, stored as its bytes at once."""
    b, m = ctx.b, _mem()
    bits = buf.dtype.bits
    nbits = vw * bits
    acc: list[Operand | None] = [None] * max(1, nbits // 32)
    for k in range(vw):
        lk = lin if k == 0 else b.binary("add", lin, Const(k, I64), "lk")
        ok = in_row(k)
        if st is None:
            code = m._load_bits(ctx, view, lk, ok)  # noqa: SLF001
        else:
            raw = b.load(st, b.gep(view.ptr, lk, st), m.nbytes(st), ok,
                         Const(0, st) if st.is_int else Const(0.0, st), "ld")  # fmt: skip
            code = vals.code_of(b, m._to_reg(ctx, raw, buf.dtype), buf.dtype, bits > 32)  # noqa: SLF001
        if bits == 64:
            acc[2 * k] = b.cast("trunc", code, I32)
            acc[2 * k + 1] = b.cast("trunc", b.binary("lshr", code, Const(32, I64)), I32)
            continue
        w, sh = divmod(k * bits, 32)
        part = code if sh == 0 else b.binary("shl", code, Const(sh, I32), "pk")
        acc[w] = part if acc[w] is None else b.binary("or", acc[w], part, "pk")
    ws = [a if a is not None else Const(0, I32) for a in acc]
    b.store(dst, m._get_bits(ctx, ws, 0, nbits), min(16, nbits // 8), own)  # noqa: SLF001


HANDLERS = {
    V.AllocShared: _alloc_shared,
    V.SharedView: _shared_view,
    V.FreeShared: lambda ctx, op: None,
    V.LoadShared: _load_shared,
    V.StoreShared: _store_shared,
    V.CopyAsync: _copy_async,
}
