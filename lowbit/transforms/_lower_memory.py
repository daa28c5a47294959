"""Lowering of the memory ops on layout-carrying tiles: global views, loads/stores, shared buffers, async copies.

Global addressing: element ``i`` of a view sits at element offset
``sum(i_d * stride_d)`` from the pointer, computed in i64 (offsets may pass
2**31); an element is in bounds when ``0 <= i_d < shape_d`` for every d.
Out-of-bounds or masked-off elements are not touched (predicated accesses)
and read the load's ``other``.  The tile's layout says which elements a
thread touches (:meth:`Ctx.coords`); instruction selection's ``vec`` says how
many consecutive ones one access covers -- a run of ``vec`` slots is one
``ld/st.v2/.v4`` (or 8/16/32-bit) access whose bits land in the tile's words
form, and its bounds test is uniform because selection proved the run
aligned and the extent a multiple of it.  ``vec == 1`` is the per-element
path: elements narrower than a byte are read as the one or two bytes that
hold them, LSB-first (``lowbit.pack``'s order), and written with an atomic
and/or pair per 32-bit word they touch (other threads and blocks own the
neighbouring bits; see :func:`_store_bits`), which needs a pointer to whole
32-bit words.  Only a layout's first replica stores.

Shared memory (planned buffers, stage views, packed sub-byte elements,
swizzles, async copies) is :mod:`~lowbit.transforms._lower_shared`; its
handlers are part of :data:`HANDLERS`.
"""

from __future__ import annotations

import math

from lowbit.dtypes import DType
from lowbit.ir import ops as V
from lowbit.ir.expr import Const as EConst
from lowbit.ir.simt import Const, Operand, Reg
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import I8, I16, I32, I64, PRED, PTR_GLOBAL, ScalarType, VectorType
from lowbit.ir.types import GlobalType, PointerType, TileType, is_bool
from lowbit.layout.register import RegisterLayout
from lowbit.transforms import _values as vals
from lowbit.transforms._context import Ctx, GView, fail
from lowbit.transforms._lower_compute import put_tile
from lowbit.transforms._lower_shared import HANDLERS as SHARED
from lowbit.transforms._tiles import scalars, word_count, words

__all__ = ["HANDLERS", "in_bounds", "offset_parts", "storage_type"]


def nbytes(t: ScalarType) -> int:
    return max(1, t.bits // 8)


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


# ---------------------------------------------------------------------------- helpers shared with _lower_shared


def _copy_sync(ctx: Ctx, view: GView, dst: Operand, ok: Operand, lin: Operand, st: ScalarType,
               own: Operand | None) -> None:  # fmt: skip
    b = ctx.b
    raw = b.load(st, b.gep(view.ptr, lin, st), nbytes(st), ok, Const(0, st) if st.is_int else Const(0.0, st), "ld")
    b.store(dst, raw, nbytes(st), own)


def _layout_of(v: object) -> RegisterLayout:
    lay = v.type.layout  # type: ignore[attr-defined]
    assert lay is not None  # noqa: S101 - infer_layouts ran
    return lay  # type: ignore[return-value]


def in_bounds(ctx: Ctx, off: Operand, c: Operand, lim: Operand) -> tuple[Operand, Operand]:
    """(``idx = off + c``, the predicate ``0 <= off + c < lim``) for a layout coordinate ``c`` in [0, 2**31).

    One unsigned compare against ``max(lim, 0)`` (loop-invariant, made once
    per scope) instead of two signed ones.  The law: for ``off`` of w = 32 or
    64 bits the exact sum ``off + c`` lies in [-2**(w-1), 2**w - 1), so the
    w-bit ``idx`` read unsigned is the sum itself when the sum is not
    negative -- also where the signed w-bit add wrapped, giving an unsigned
    value >= 2**(w-1), above every extent -- and >= 2**(w-1) when it is
    negative: the compare is the exact bounds test of the mathematical sum,
    and of the wrapped ``idx`` as well (the two agree).  So where the
    predicate holds the add did not wrap, ``idx`` is exact and ``sext(idx) ==
    sext(off) + c`` (what :func:`offset_parts` relies on).
    """
    b = ctx.b
    key = ("nonneg", id(lim), off.type != lim.type)
    if off.type != lim.type:
        off, lim = ctx.i64(off), ctx.i64(lim)
    t = off.type
    if isinstance(c, Const):
        idx = ctx.add(off, c.value, "idx")
    else:
        idx = b.binary("add", off, c if t == c.type else ctx.i64(c), "idx")
    top = ctx.find(key)
    if top is None:
        top = Const(max(lim.value, 0), t) if isinstance(lim, Const) else b.binary("smax", lim, Const(0, t), "lim")
        ctx.put(key, top)
    return idx, b.cmp("ult", idx, top, "inb")  # type: ignore[arg-type]


def offset_parts(ctx: Ctx, view: GView, offsets: tuple,
                 coords: tuple[Operand, ...]) -> tuple[Operand | None, Operand | None]:  # fmt: skip
    """The i64 element offset of ``offsets + coords`` split as (offsets' part, coordinates' part), None for 0.

    ``sum(sext(off_d) * stride_d) + sum(sext(c_d) * stride_d)``: the offset
    of the exact sums ``off_d + c_d`` (an i32 add that wraps leaves the view:
    :func:`in_bounds`), so the element's offset wherever it is in bounds, and
    shaped for the loop: the first part is shared by every access of the op
    (it alone changes from one K step to the next), the second is
    loop-invariant per thread, so an address becomes one add to a hoisted
    pointer.  Out of bounds the value is some offset the access must not use.
    """
    b = ctx.b
    base: Operand | None = None
    inv: Operand | None = None
    for d, c in enumerate(coords):
        off = ctx.scalar(offsets[d])
        stride = _wide(ctx, ctx.scalar(view.strides[d]))
        if not (isinstance(off, Const) and off.value == 0):
            key = ("off_part", id(off), id(stride))  # (cached per scope, so the ids stay valid)
            term = ctx.find(key)
            if term is None:
                term = _times(ctx, _wide(ctx, off), stride)
                ctx.put(key, term)
            base = term if base is None else b.binary("add", base, term, "off")  # type: ignore[arg-type]
        if not (isinstance(c, Const) and c.value == 0):
            t2 = _times(ctx, ctx.i64(c), stride)
            both = isinstance(inv, Const) and isinstance(t2, Const)
            inv = t2 if inv is None else Const(inv.value + t2.value, I64) if both else b.binary("add", inv, t2, "off")
    return base, inv


def offset_address(ctx: Ctx, view: GView, offsets: tuple, coords: tuple[Operand, ...], st: ScalarType) -> Operand:
    """The address of element ``offsets + coords`` of ``view`` (elements of storage type ``st``), built as
    ``ptr + coords' part`` and then one add per dimension's offset term, not as one sum of the terms.

    The sums are the same (offsets in i64 wrap alike, the geps are not ``inbounds``), but each partial pointer
    that depends only on loop-invariant terms is itself invariant and hoisted: where a K step moves one
    dimension's offset, the step's address is one add (and that term's scaling) to a hoisted pointer -- the
    row term of ``(m0 + r) * K + k`` no longer joins the loop's sum.
    """
    b = ctx.b
    _, inv = offset_parts(ctx, view, tuple(EConst(0, o.dtype) for o in offsets), coords)
    ptr = view.ptr if inv is None else b.gep(view.ptr, inv, st, "ga")
    for d in range(len(coords)):
        off = ctx.scalar(offsets[d])
        if isinstance(off, Const) and off.value == 0:
            continue
        stride = _wide(ctx, ctx.scalar(view.strides[d]))
        key = ("off_part", id(off), id(stride))
        term = ctx.find(key)
        if term is None:
            term = _times(ctx, _wide(ctx, off), stride)
            ctx.put(key, term)
        ptr = b.gep(ptr, term, st, "ga")  # type: ignore[arg-type]
    return ptr


def packed_address(ctx: Ctx, view: GView, offsets: tuple, coords: tuple[Operand, ...], bits: int) -> Operand | None:
    """:func:`offset_address` for elements of ``bits < 8`` (a run that starts on a byte): the coordinates'
    byte ``floor(inv * bits / 8)`` plus each offset term in bytes, where every term ``off_d * stride_d * bits``
    is proven a multiple of 8 (constants, or the divisibility facts of the offset or the stride) -- then
    ``floor((inv + T) * bits / 8) = floor(inv * bits / 8) + T * bits / 8`` exactly; None where one is not."""
    b = ctx.b
    terms: list[Operand] = []
    for d in range(len(coords)):
        off = ctx.scalar(offsets[d])
        if isinstance(off, Const) and off.value == 0:
            continue
        stride = _wide(ctx, ctx.scalar(view.strides[d]))
        if isinstance(stride, Const) and stride.value * bits % 8 == 0:
            terms.append(_times(ctx, _wide(ctx, off), Const(stride.value * bits // 8, I64)))
        elif not isinstance(stride, Const) and ctx.divisibility(view.strides[d]) * bits % 8 == 0:
            # stride * bits / 8 bytes a row, exact, made in the stride's own i32 (it is below the stride, so it
            # fits): (stride >> 3) * bits, or stride >> log2(8 / bits) where bits divides 8 -- then the term
            # is a widening multiply of two i32s, as an element stride's is
            s32 = ctx.scalar(view.strides[d])
            skey = ("stride_bytes", id(s32), bits)
            sb = ctx.find(skey)
            if sb is None:
                g = math.gcd(bits, 8)  # stride * bits / 8 = (stride / (8 / g)) * (bits / g), 8 / g dividing stride
                sb = b.binary("ashr", s32, Const((8 // g).bit_length() - 1, s32.type), "sb")
                if bits // g != 1:
                    sb = b.binary("mul", sb, Const(bits // g, s32.type), "sb")
                ctx.put(skey, sb)
            terms.append(_times(ctx, _wide(ctx, off), _wide(ctx, sb)))  # type: ignore[arg-type]
        elif ctx.divisibility(offsets[d]) * bits % 8 == 0:
            ob = b.binary("ashr", b.binary("mul", _wide(ctx, off), Const(bits, I64), "ob"), Const(3, I64), "ob")
            terms.append(_times(ctx, ob, stride))
        else:
            return None
    _, inv = offset_parts(ctx, view, tuple(EConst(0, o.dtype) for o in offsets), coords)
    ptr = view.ptr
    if inv is not None:
        byte = Const((inv.value * bits) >> 3, I64) if isinstance(inv, Const) else \
            b.binary("ashr", b.binary("mul", inv, Const(bits, I64), "bit"), Const(3, I64), "by")
        ptr = b.gep(ptr, byte, I8, "ga")
    for t in terms:
        ptr = b.gep(ptr, t, I8, "ga")
    return ptr


def _wide(ctx: Ctx, x: Operand) -> Operand:
    """``x`` sign-extended to i64, once per scope."""
    if x.type == I64 or isinstance(x, Const):
        return ctx.i64(x)
    key = ("i64", id(x))
    got = ctx.find(key)
    if got is None:
        got = ctx.i64(x)
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _times(ctx: Ctx, x: Operand, stride: Operand) -> Operand:
    if isinstance(stride, Const) and stride.value == 1:
        return x
    if isinstance(x, Const) and isinstance(stride, Const):
        return Const(x.value * stride.value, I64)
    return ctx.b.binary("mul", x, stride, "off")


def whole_units(ctx: Ctx, off: object, lim: object, extent: int) -> bool:
    """Whether the tile's ``extent`` elements from ``off`` along a dimension of size ``lim`` (VM expressions)
    are all in bounds or all out: both are multiples of a power of two ``D >= extent`` (the divisibility facts).

    Then for every coordinate ``0 <= c < extent``: ``0 <= off + c < lim`` exactly when ``0 <= off < lim``.
    If ``0 <= off < lim``, ``off <= lim - D`` (both multiples of D), so ``off + c < lim``; if ``off < 0``,
    ``off <= -D`` and ``off + c < 0``; if ``off >= lim``, ``off + c >= lim``.  (No register wraps: ``off + c``
    stays below the next multiple of D, which is at most ``2**(w-1)`` for a w-bit ``off``.)  So one compare of
    ``off`` serves the whole dimension -- the per-row tests of, e.g., a K step of whole 16-row chunks of a
    ``cdiv(K, 128) * 16``-row view collapse into one.  Loads use it (the pipelined loop's loads are where it
    pays); stores keep their per-row tests: outside loops it saves nothing, and a uniform predicate there
    changed ptxas's register allocation of the main loop (uint3 layout 2: +30 SASS in an identical PTX loop).
    """
    d = min(ctx.divisibility(off), ctx.divisibility(lim))  # type: ignore[arg-type]
    return extent <= d


def _element(ctx: Ctx, view: GView, offsets: tuple, coords: tuple[Operand, ...],
             extent: tuple[int, ...] | None = None):  # noqa: ANN202
    """(in-bounds predicate, i64 element offset) of the element at ``offsets + coords`` of ``view``.

    ``extent``: the tile's shape (every valid slot's coordinate ``c_d`` lies in ``[0, extent_d)``), which lets
    a dimension whose offset and size are multiples of a ``D >= extent_d`` be tested once for the whole tile
    (:func:`whole_units`).  The offset is exact where the predicate holds (and only used there: accesses are
    predicated on it).
    """
    b = ctx.b
    ok = None
    for d, c in enumerate(coords):
        off = ctx.scalar(offsets[d])
        lim = ctx.scalar(view.shape[d])
        if extent is not None and whole_units(ctx, offsets[d], view.shape[d], extent[d]):
            c = Const(0, c.type)  # noqa: PLW2901 - the whole tile's test along d is its first row's
        key = ("elem", id(off), id(lim), c.value if isinstance(c, Const) else id(c))
        inb = ctx.find(key)
        if inb is None:  # one bounds test per distinct coordinate of a dimension, not per element
            inb = in_bounds(ctx, off, c, lim)[1]
            ctx.put(key, inb)
        ok = inb if ok is None else b.binary("and", ok, inb)
    base, inv = offset_parts(ctx, view, offsets, coords)
    lin = base if inv is None else inv if base is None else b.binary("add", base, inv, "off")
    assert ok is not None  # noqa: S101
    return ok, lin if lin is not None else Const(0, I64)


def _with_valid(ctx: Ctx, ok: Operand | None, valid: Operand | bool) -> Operand | None:
    """``ok`` and the slot's validity (padded layouts); callers skip statically invalid slots first."""
    return ok if valid is True else ctx.and_(ok, valid)  # type: ignore[arg-type]


_ACCESS = {8: I8, 16: I16, 32: I32, 64: VectorType(I32, 2), 128: VectorType(I32, 4)}


def _access_type(bits: int):  # noqa: ANN202
    return _ACCESS[bits]


def _pattern(code: int, bits: int, w: int) -> int:
    out = 0
    for j in range(w):
        out |= (code & ((1 << bits) - 1)) << (j * bits)
    return out


def _const_of(value: int, t) -> Operand:  # noqa: ANN001
    """A constant of an access type (vectors: lanes built with pack)."""
    if isinstance(t, VectorType):
        lanes = tuple(Const((value >> (32 * i)) & 0xFFFFFFFF, I32) for i in range(t.count))
        return lanes  # type: ignore[return-value]
    return Const(value & ((1 << t.bits) - 1), t)


def _fill_code(op: V.LoadGlobal, dt: DType) -> int:
    c = vals.const_value(op.other, dt)
    code = c.value
    if dt.name in vals.IEEE:
        import numpy as np  # noqa: PLC0415

        code = int(np.asarray(dt.encode(np.float64(op.other) if not isinstance(op.other, bool) else float(op.other))).reshape(()))
    return int(code) & ((1 << dt.bits) - 1)


def _put_bits(ctx: Ctx, acc: list[Operand | None], bit: int, v: Operand, nbits: int) -> None:
    """OR an access's ``nbits`` (an i8/i16/i32 or i32-vector register) into the words form at bit ``bit``."""
    b = ctx.b
    if nbits >= 32:
        parts = [v] if nbits == 32 else [b.op(S.Extract, I32, v, i, hint="lw") for i in range(nbits // 32)]
        for i, p in enumerate(parts):
            acc[bit // 32 + i] = p
        return
    x = b.cast("zext", v, I32, "lw")
    sh = bit % 32
    if sh:
        x = b.binary("shl", x, Const(sh, I32), "lw")
    i = bit // 32
    acc[i] = x if acc[i] is None else b.binary("or", acc[i], x, "lw")


def _get_bits(ctx: Ctx, ws: list[Operand], bit: int, nbits: int) -> Operand:
    b = ctx.b
    if nbits >= 32:
        i = bit // 32
        if nbits == 32:
            return ws[i]
        t = _access_type(nbits)
        return b.op(S.Pack, t, tuple(ws[i:i + nbits // 32]), hint="sw")
    x = ws[bit // 32]
    if bit % 32:
        x = b.binary("lshr", x, Const(bit % 32, I32), "sw")
    return b.cast("trunc", x, _access_type(nbits), "sw")


def _byte_address(ctx: Ctx, view: GView, lin: Operand, dt: DType) -> Operand:
    """The address of element ``lin`` for an access that starts on a byte (vector runs are aligned)."""
    st = storage_type(dt)
    if st is not None:
        return ctx.b.gep(view.ptr, lin, st, "ga")
    byte = ctx.b.binary("ashr", ctx.b.binary("mul", lin, Const(dt.bits, I64), "bit"), Const(3, I64), "by")
    return ctx.b.gep(view.ptr, byte, I8, "ga")


def _hints(ctx: Ctx, op: V.LoadGlobal) -> dict[str, object]:
    """The load's cache hints as SIMT load fields (the L2 policy register was made at the kernel's entry)."""
    return {"l1": op.l1, "policy": ctx.l2_policy(op.l2) if op.l2 else None, "prefetch": op.prefetch}


def _load_global(ctx: Ctx, op: V.LoadGlobal) -> None:
    t = op.result.type
    assert isinstance(t, TileType)  # noqa: S101
    lay = _layout_of(op.result)
    view = ctx.get(op.src, op)
    assert isinstance(view, GView)  # noqa: S101
    dt = t.dtype
    st = storage_type(dt)
    if st is None and (is_bool(dt) or 8 % dt.bits and dt.bits > 8):
        raise fail(op, f"global elements of {dt.name} are not supported")
    b = ctx.b
    w = op.vec
    if w > 1:
        nbits = w * dt.bits
        at = _access_type(nbits)
        fill = _const_of(_pattern(_fill_code(op, dt), dt.bits, w), at)
        if isinstance(fill, tuple):
            fill = b.op(S.Pack, at, fill, hint="fill")
        acc: list[Operand | None] = [None] * word_count(dt, lay.local_size)
        for r in range(lay.local_size // w):
            valid = ctx.valid(lay, t.shape, r * w)
            if valid is False:  # a run of phantom elements (padded layout): the fill, no access
                v = fill
            else:
                coords = ctx.coords(lay, r * w)
                ok, lin = _element(ctx, view, op.offsets, coords, t.shape)
                addr = offset_address(ctx, view, op.offsets, coords, st) if st is not None else \
                    packed_address(ctx, view, op.offsets, coords, dt.bits)
                if addr is None:  # a packed term not proven whole bytes: the byte of the whole offset
                    addr = _byte_address(ctx, view, lin, dt)
                v = b.load(at, addr, min(16, max(1, nbits // 8)),
                           _with_valid(ctx, ok, valid), fill, "ld", **_hints(ctx, op))  # fmt: skip
            _put_bits(ctx, acc, r * w * dt.bits, v, nbits)
        put_tile(ctx, op.result, wrds=[a if a is not None else Const(0, I32) for a in acc])
        return
    mask = scalars(ctx, ctx.tile(op.mask, op)) if op.mask is not None else None
    other = vals.const_value(op.other, dt)
    regs = []
    for s in range(lay.local_size):
        valid = ctx.valid(lay, t.shape, s)
        if valid is False:
            regs.append(other)
            continue
        ok, lin = _element(ctx, view, op.offsets, ctx.coords(lay, s), t.shape)
        if mask is not None:
            ok = b.binary("and", ok, mask[s])
        ok = _with_valid(ctx, ok, valid)
        if st is None:
            v = vals.from_code(b, _load_bits(ctx, view, lin, ok), dt)
        else:
            raw = b.load(st, b.gep(view.ptr, lin, st), nbytes(st), ok, Const(0, st) if st.is_int else other, "ld",
                         **_hints(ctx, op))  # fmt: skip
            v = _to_reg(ctx, raw, dt)
        regs.append(b.select(ok, v, other) if (st is None or st.is_int) else v)
    put_tile(ctx, op.result, scal=regs)


def _store_global(ctx: Ctx, op: V.StoreGlobal) -> None:
    x = ctx.tile(op.value, op)
    view = ctx.get(op.dst, op)
    assert isinstance(view, GView)  # noqa: S101
    dt, lay = x.dtype, x.layout
    st = storage_type(dt)
    b = ctx.b
    own = ctx.primary(lay)
    w = op.vec
    if w > 1:
        nbits = w * dt.bits
        ws = words(ctx, x)
        for r in range(lay.local_size // w):
            valid = ctx.valid(lay, op.value.type.shape, r * w)  # type: ignore[union-attr]
            if valid is False:
                continue
            ok, lin = _element(ctx, view, op.offsets, ctx.coords(lay, r * w))
            v = _get_bits(ctx, ws, r * w * dt.bits, nbits)
            b.store(_byte_address(ctx, view, lin, dt), v, min(16, max(1, nbits // 8)),
                    _with_valid(ctx, ctx.and_(ok, own), valid))  # fmt: skip
        return
    if st is None:
        if is_bool(dt) or dt.bits > 8:
            raise fail(op, f"global elements of {dt.name} are not supported")
        if not view.whole_words:
            raise fail(op, f"stores of {dt.name} (narrower than a byte) update whole 32-bit words atomically, "
                           "so the pointer must be to 32-bit words (declare it lowbit.ptr('uint32') and view it with "
                           f"dtype={dt.name}): a buffer of bytes may start or end inside a word")  # fmt: skip
    mask = scalars(ctx, ctx.tile(op.mask, op)) if op.mask is not None else None
    xs = scalars(ctx, x)
    for s, r in enumerate(xs):
        valid = ctx.valid(lay, op.value.type.shape, s)  # type: ignore[union-attr]
        if valid is False:
            continue
        ok, lin = _element(ctx, view, op.offsets, ctx.coords(lay, s))
        if mask is not None:
            ok = b.binary("and", ok, mask[s])
        ok = _with_valid(ctx, ctx.and_(ok, own), valid)
        if st is None:
            _store_bits(ctx, view, lin, vals.code_of(b, r, dt, False), ok)
        else:
            b.store(b.gep(view.ptr, lin, st), _to_storage(ctx, r, st), nbytes(st), ok)


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
    **SHARED,  # alloc_shared, shared_view, free_shared, load/store_shared, copy_async: _lower_shared
    V.CommitGroup: _commit,
    V.WaitGroup: _wait,
    V.Barrier: _barrier,
}

_ = (GlobalType, PointerType, PTR_GLOBAL, PRED, Reg)
