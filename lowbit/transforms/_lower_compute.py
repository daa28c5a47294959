"""Lowering of the compute ops on layout-carrying tiles: every op works on the slots each thread already holds.

``infer_layouts`` made every op register-local and ``select_instructions``
wrote out every move between threads, so here an element-wise op works
slot by slot (on packed ``f16x2``/``bf16x2`` words where the dtype has
them), a ``broadcast``, ``slice`` or ``regs`` conversion is a permutation
of registers fixed at compile time, ``reshape``/``permute``/``view`` re-label
the same registers, a ``shfl`` conversion is one ``shfl.sync.idx`` per
slot, and ``reduce`` combines in-thread slots then lanes with
``shfl.sync.bfly`` (its axis never spans warps here).  ``dot`` does not
reach this pass: instruction selection rewrote it.
"""

from __future__ import annotations

from lowbit.dtypes import dtype
from lowbit.errors import CodegenError
from lowbit.ir import ops as V
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import BF16, F16, F32, I16, I32, I64, PRED, VectorType
from lowbit.ir.types import TileType, is_bool
from lowbit.layout.register import RegisterLayout
from lowbit.transforms import _values as vals
from lowbit.transforms._context import Ctx, fail
from lowbit.transforms._layout_maps import local_table, register_map
from lowbit.transforms._tiles import Tile, full_words, scalars, word_count, words

__all__ = ["HANDLERS", "owner_lane", "put_tile"]


def _layout_of(v: object) -> RegisterLayout:
    t = v.type  # type: ignore[attr-defined]
    assert isinstance(t, TileType) and t.layout is not None  # noqa: S101 - infer_layouts ran
    return t.layout  # type: ignore[return-value]


def put_tile(ctx: Ctx, v: object, scal: list[Operand] | None = None, wrds: list[Operand] | None = None) -> Tile:
    t = v.type  # type: ignore[attr-defined]
    tile = Tile(t.dtype, _layout_of(v), scal, wrds)
    ctx.put(v, tile)
    return tile


def _program_id(ctx: Ctx, op: V.ProgramId) -> None:
    ctx.put(op.result, ctx.b.sreg(f"ctaid.{'xyz'[op.axis]}"))


def _num_programs(ctx: Ctx, op: V.NumPrograms) -> None:
    ctx.put(op.result, ctx.b.sreg(f"nctaid.{'xyz'[op.axis]}"))


def _full(ctx: Ctx, op: V.Full) -> None:
    t = op.result.type
    r = vals.convert(ctx.b, ctx.scalar(op.value), op.value.dtype, t.dtype)  # type: ignore[union-attr]
    n = _layout_of(op.result).local_size
    if isinstance(r, Const) and not is_bool(t.dtype) and not t.dtype.is_float:  # type: ignore[union-attr]
        put_tile(ctx, op.result, wrds=full_words(int(r.value), t.dtype, n))  # type: ignore[union-attr]
    else:
        put_tile(ctx, op.result, scal=[r] * n)


def _arange(ctx: Ctx, op: V.Arange) -> None:
    lay = _layout_of(op.result)
    put_tile(ctx, op.result, scal=[ctx.add(ctx.coords(lay, s)[0], op.start, "ar") for s in range(lay.local_size)])


def _thread_index(ctx: Ctx, op: V.ThreadIndex) -> None:
    lay = _layout_of(op.result)
    v = ctx.lane() if op.kind == "lane" else ctx.b.binary("lshr", ctx.tid, Const(5, I32), "warp")
    put_tile(ctx, op.result, scal=[v] * lay.local_size)


# ----------------------------------------------------------------------------------- element-wise

_PACKED = {"add", "sub", "mul"}


def _h2(ctx: Ctx, w: Operand, t) -> Operand:  # noqa: ANN001
    return ctx.b.cast("bitcast", w, t, "h2")


def _packed_binary(ctx: Ctx, op: str, a: Tile, b: Tile) -> list[Operand] | None:
    """``add/sub/mul`` on pairs of f16/bf16 slots (``.f16x2``; bf16x2 below sm_90 through ``fma.rn.bf16x2``)."""
    dt = a.dtype
    if dt.name not in ("f16", "bf16") or op not in _PACKED or a.slots < 2:
        return None
    from lowbit.arch import target  # noqa: PLC0415

    vt = VectorType(F16 if dt.name == "f16" else BF16, 2)
    native = dt.name == "f16" or target(ctx.arch).supports("bf16x2.arith")
    bb, out = ctx.b, []
    one, mzero, mone = (_splat(ctx, v, vt) for v in (1.0, -0.0, -1.0))
    for x, y in zip(words(ctx, a), words(ctx, b)):
        hx, hy = _h2(ctx, x, vt), _h2(ctx, y, vt)
        if native:
            r = bb.binary({"add": "fadd", "sub": "fsub", "mul": "fmul"}[op], hx, hy, "h2")
        elif op == "add":  # a * 1 + b: one rounding, exactly the sum's
            r = bb.fma(hx, one, hy, "h2")
        elif op == "sub":  # b * -1 + a
            r = bb.fma(hy, mone, hx, "h2")
        else:  # a * b + (-0): the product rounded once; -0 keeps a +0 product +0
            r = bb.fma(hx, hy, mzero, "h2")
        out.append(bb.cast("bitcast", r, I32, "w"))
    return out


def _splat(ctx: Ctx, v: float, vt: VectorType) -> Operand:
    key = ("splat", v, vt)
    got = ctx.find(key)
    if got is None:
        c = Const(v, vt.elem)
        got = ctx.b.op(S.Pack, vt, (c, c), hint="k")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _packed_fma(ctx: Ctx, a: Tile, b: Tile, c: Tile) -> list[Operand] | None:
    dt = a.dtype
    if dt.name not in ("f16", "bf16") or a.slots < 2:
        return None
    vt = VectorType(F16 if dt.name == "f16" else BF16, 2)
    out = []
    for x, y, z in zip(words(ctx, a), words(ctx, b), words(ctx, c)):
        r = ctx.b.fma(_h2(ctx, x, vt), _h2(ctx, y, vt), _h2(ctx, z, vt), "h2")
        out.append(ctx.b.cast("bitcast", r, I32, "w"))
    return out


def _unary(ctx: Ctx, op: V.ElementwiseUnary) -> None:
    x = ctx.tile(op.x, op)
    put_tile(ctx, op.result, scal=[vals.unary(ctx.b, op.op, r, x.dtype) for r in scalars(ctx, x)])


def _planes_of(ctx: Ctx, op: V.ElementwiseBinary, a: Tile, b: Tile) -> list | None:
    """Where an ``or`` of planes or a ``shl`` of one by a constant keeps every code bit (see Tile.planes)."""
    if op.op == "shl" and a.planes is not None:
        ks = {r.value if isinstance(r, Const) else None for r in scalars(ctx, b)}
        k = ks.pop() if len(ks) == 1 else None
        if isinstance(k, int) and 0 <= k and max(o + w for _, o, w in a.planes) + k <= 8:
            return [(g, o + k, w) for g, o, w in a.planes]
    if op.op == "or" and a.planes is not None and b.planes is not None:
        bits = [set(range(o, o + w)) for _, o, w in a.planes + b.planes]
        if sum(map(len, bits)) == len(set().union(*bits)):
            return a.planes + b.planes
    return None


def _binary(ctx: Ctx, op: V.ElementwiseBinary) -> None:
    a, b = ctx.tile(op.a, op), ctx.tile(op.b, op)
    planes = _planes_of(ctx, op, a, b) if op.a.type.dtype.is_int else None  # type: ignore[union-attr]
    packed = _packed_binary(ctx, op.op, a, b)
    if packed is not None:
        put_tile(ctx, op.result, wrds=packed)
        return
    put_tile(ctx, op.result, scal=[vals.binary(ctx.b, op.op, x, y, a.dtype)
                                   for x, y in zip(scalars(ctx, a), scalars(ctx, b))]).planes = planes  # fmt: skip


def _where(ctx: Ctx, op: V.Where) -> None:
    c, a, b = ctx.tile(op.cond, op), ctx.tile(op.a, op), ctx.tile(op.b, op)
    put_tile(ctx, op.result, scal=[ctx.b.select(p, x, y)
                                   for p, x, y in zip(scalars(ctx, c), scalars(ctx, a), scalars(ctx, b))])  # fmt: skip


def _fma(ctx: Ctx, op: V.Fma) -> None:
    a, b, c = ctx.tile(op.a, op), ctx.tile(op.b, op), ctx.tile(op.c, op)
    packed = _packed_fma(ctx, a, b, c)
    if packed is not None:
        put_tile(ctx, op.result, wrds=packed)
        return
    put_tile(ctx, op.result, scal=[ctx.b.fma(x, y, z)
                                   for x, y, z in zip(scalars(ctx, a), scalars(ctx, b), scalars(ctx, c))])  # fmt: skip


def _cast(ctx: Ctx, op: V.Cast) -> None:
    x = ctx.tile(op.x, op)
    dst = op.result.type.dtype  # type: ignore[union-attr]
    from lowbit.transforms._lower_dequant import fast_cast  # noqa: PLC0415

    planes = None
    if dst.is_int and not is_bool(dst) and x.dtype.is_int and not is_bool(x.dtype) and not x.dtype.name.startswith("bipolar"):
        if x.gath is not None and not x.dtype.is_signed and dst.bits >= x.dtype.bits:
            planes = [(x.gath, 0, x.dtype.bits)]
        elif x.planes is not None and (dst.bits >= 32 or max(o + w for _, o, w in x.planes) <= dst.bits):
            planes = x.planes
    if planes is not None:
        put_tile(ctx, op.result, scal=[vals.convert(ctx.b, r, x.dtype, dst) for r in scalars(ctx, x)]).planes = planes
        return
    fast = fast_cast(ctx, x, dst)
    if fast is not None:
        put_tile(ctx, op.result, wrds=fast)
        return
    xs = scalars(ctx, x)
    if dst.name in ("f16", "bf16") and x.dtype.name == "f32" and len(xs) >= 2:
        # two f32 -> one f16x2/bf16x2 register (cvt.rn.f16x2.f32): half the conversions
        kind = "f16x2.rn" if dst.name == "f16" else "bf16x2.rn"
        vt = VectorType(F16 if dst.name == "f16" else BF16, 2)
        out = []
        for i in range(0, len(xs), 2):
            hi = xs[i + 1] if i + 1 < len(xs) else Const(0.0, F32)
            out.append(ctx.b.cast("bitcast", ctx.b.op(S.CvtPack, vt, kind, xs[i], hi, hint="cv"), I32, "w"))
        put_tile(ctx, op.result, wrds=out)
        return
    memo: dict[int, Operand] = {}
    regs = []
    for r in xs:  # a Full tile repeats one register: convert it once
        if id(r) not in memo:
            memo[id(r)] = vals.convert(ctx.b, r, x.dtype, dst)
        regs.append(memo[id(r)])
    put_tile(ctx, op.result, scal=regs)


def _dequant(ctx: Ctx, op: V.Dequant) -> None:
    from lowbit.transforms._lower_dequant import lower_dequant  # noqa: PLC0415

    put_tile(ctx, op.result, wrds=lower_dequant(ctx, op))


# ----------------------------------------------------------------------------------- re-labelling


def _gather_view(ctx: Ctx, op: V.View, x: Tile) -> None:
    """A view whose source holds, whole and replicated, the words each thread's codes come from.

    Result slot ``s`` (code coordinate ``k`` along the axis) is bits
    ``(k % r) * b`` of source slot ``w(s)`` -- the slot holding word ``k // r``,
    the same for every thread (checked here over all of them); the bit
    offset is a constant when the code's position in its word does not
    depend on the thread, else computed from the thread's coordinates.
    """
    import numpy as np  # noqa: PLC0415

    from lowbit.transforms._layout_maps import thread_coords  # noqa: PLC0415
    from lowbit.transforms._tiles import _extract  # noqa: PLC0415

    lay_r = _layout_of(op.result)
    ax = op.axis % len(op.x.type.shape)  # type: ignore[union-attr]
    sb, db = x.dtype.bits, op.result.type.dtype.bits  # type: ignore[union-attr]
    r = sb // db
    src = np.stack([thread_coords(x.layout, w) for w in range(x.slots)])  # (slots, threads, rank)
    b = ctx.b
    ws = words(ctx, x)
    out = []
    where = []
    for s in range(lay_r.local_size):
        c = thread_coords(lay_r, s).copy()
        pos = c[:, ax] % r
        c[:, ax] //= r
        hit = np.nonzero(np.all(src == c[None], axis=(1, 2)))[0]
        if len(hit) == 0:
            raise fail(op, f"no source slot holds the words of result slot {s} ({x.layout} -> {lay_r})")
        word = _extract(ctx, ws, int(hit[0]), sb)
        if np.all(pos == pos[0]):
            sh: Operand = Const(int(pos[0]) * db, I32)
        else:
            k = ctx.coords(lay_r, s)[ax]
            sh = b.binary("mul", b.binary("and", k, Const(r - 1, I32), "vp"), Const(db, I32), "vp")
        v = word if isinstance(sh, Const) and sh.value == 0 else b.binary("lshr", word, sh, "vx")
        code = b.binary("and", v, Const((1 << db) - 1, I32), "vx") if db < 32 else v
        out.append(vals.from_code(b, code, op.result.type.dtype))  # type: ignore[union-attr]
        where.append((word, sh, pos * db))
    from lowbit.transforms._lower_dequant import Gathered  # noqa: PLC0415

    put_tile(ctx, op.result, scal=out).gath = Gathered(where)  # (unused extractions are dead code to LLVM)


def _same_registers(ctx: Ctx, op: V.Op) -> None:
    """reshape / permute / view: the result's layout holds the same bits in the same registers."""
    x = ctx.tile(op.x, op)  # type: ignore[attr-defined]
    if isinstance(op, V.View) and x.planes is not None and x.dtype.bits == op.result.type.dtype.bits:  # type: ignore[union-attr]
        put_tile(ctx, op.result, scal=scalars(ctx, x)).planes = x.planes  # a same-width view: the codes' bits
        return
    t = op.result.type  # type: ignore[attr-defined]
    if isinstance(op, V.View):
        from lowbit.transforms._layout_rules import view_result_layout  # noqa: PLC0415

        ax = op.axis % len(op.x.type.shape)  # type: ignore[union-attr]
        if view_result_layout(x.layout, ax, x.dtype.bits, t.dtype.bits) != t.layout:
            _gather_view(ctx, op, x)
            return
        put_tile(ctx, op.result, wrds=words(ctx, x))  # type: ignore[attr-defined]
    elif x.scal is not None:
        out = put_tile(ctx, op.result, scal=x.scal)  # type: ignore[attr-defined]
        out.gath, out.planes = x.gath, x.planes  # same slots, same registers: the codes' bits stay where they were
    else:
        put_tile(ctx, op.result, wrds=x.wrds)  # type: ignore[attr-defined]
    _ = t


def _permuted(ctx: Ctx, op: V.Op, x: Tile, sigma: tuple[int, ...] | None, what: str) -> None:
    if sigma is None:
        raise fail(op, f"{what} is not a register move between {x.layout} and {_layout_of(op.result)}")  # type: ignore[attr-defined]
    xs = scalars(ctx, x)
    put_tile(ctx, op.result, scal=[xs[i] for i in sigma])  # type: ignore[attr-defined]


def _broadcast(ctx: Ctx, op: V.Broadcast) -> None:
    x = ctx.tile(op.x, op)
    dims = tuple(None if a == 1 and b > 1 else d
                 for d, (a, b) in enumerate(zip(op.x.type.shape, op.result.type.shape)))  # type: ignore[union-attr]  # fmt: skip
    _permuted(ctx, op, x, register_map(x.layout, _layout_of(op.result), dims), "the broadcast")


def _slice(ctx: Ctx, op: V.Slice) -> None:
    x = ctx.tile(op.x, op)
    _permuted(ctx, op, x, register_map(x.layout, _layout_of(op.result), None, op.starts), "the slice")


def owner_lane(ctx: Ctx, src: RegisterLayout, coords: tuple[Operand, ...]) -> Operand:
    """The lane of the thread of ``src`` holding ``coords`` (replicas: this thread's own replication digits)."""
    b = ctx.b
    digits = ctx.thread_digits(src)
    thread: Operand = Const(0, I32)
    stride = 1
    for pos in reversed(range(len(src.spatial))):
        e = src.spatial[pos]
        size = -e if e < 0 else src.mode_sizes[e]
        if e < 0:
            d = digits[-pos - 1]
        else:
            dim, w = src._mode_dim[e]  # noqa: SLF001
            d = coords[dim] if w == 1 else b.binary("udiv", coords[dim], Const(w, I32), "od")
            d = b.binary("urem", d, Const(size, I32), "od")
        term = d if stride == 1 else b.binary("mul", d, Const(stride, I32), "ot")
        thread = term if isinstance(thread, Const) and thread.value == 0 else b.binary("add", thread, term, "ot")
        stride *= size
        if stride >= 32:
            break
    return b.binary("and", thread, Const(31, I32), "olane") if stride > 32 else thread


def _shfl_value(ctx: Ctx, v: Operand, lane: Operand) -> Operand:
    """``v`` of ``lane``: shuffles move 32 bits; 16-bit floats ride in f32 (exact), predicates as 0/1."""
    b = ctx.b
    t = v.type
    if t in (I32, F32):
        return b.shfl("idx", v, lane, hint="sh")
    if t in (F16, BF16):
        return b.cast("fptrunc", b.shfl("idx", b.cast("fpext", v, F32), lane, hint="sh"), t)
    if t == PRED:
        return b.cmp("ne", b.shfl("idx", b.cast("zext", v, I32), lane, hint="sh"), Const(0, I32))
    raise CodegenError(f"cannot shuffle a {t} value")


def _convert_layout(ctx: Ctx, op: V.ConvertLayout) -> None:
    x = ctx.tile(op.x, op)
    dst = _layout_of(op.result)
    if op.route == "regs":
        sigma = register_map(x.layout, dst)
        if x.wrds is not None and sigma == tuple(range(dst.local_size)):
            put_tile(ctx, op.result, wrds=x.wrds)
            return
        _permuted(ctx, op, x, sigma, "the conversion")
        return
    if op.route != "shfl":
        raise fail(op, "no route was selected for this layout conversion (run select_instructions first)")
    from lowbit.transforms._layout_maps import shuffle_plan  # noqa: PLC0415

    plan = shuffle_plan(x.layout, dst)
    if plan is None:
        raise fail(op, f"no warp-shuffle route from {x.layout} to {dst}")
    xs = scalars(ctx, x)
    out = []
    for s, src_slot in enumerate(plan.slots):
        lane = owner_lane(ctx, x.layout, ctx.coords(dst, s))
        out.append(_shfl_value(ctx, xs[src_slot], lane))
    put_tile(ctx, op.result, scal=out)


# ----------------------------------------------------------------------------------- reduce and lookup


def _shfl_bfly(ctx: Ctx, v: Operand, mask: int) -> Operand:
    """``v`` of the lane ``laneid ^ mask``: 16-bit floats ride in f32 (exact), 64-bit values in halves."""
    b = ctx.b
    t = v.type
    if t in (I32, F32):
        return b.shfl("bfly", v, Const(mask, I32), hint="sh")
    if t in (F16, BF16):
        return b.cast("fptrunc", b.shfl("bfly", b.cast("fpext", v, F32), Const(mask, I32), hint="sh"), t)
    w = v if t == I64 else b.cast("bitcast", v, I64)
    lo = b.shfl("bfly", b.cast("trunc", w, I32), Const(mask, I32), hint="sh")
    hi = b.shfl("bfly", b.cast("trunc", b.binary("lshr", w, Const(32, I64)), I32), Const(mask, I32), hint="sh")
    out = b.binary("or", b.cast("zext", lo, I64), b.binary("shl", b.cast("zext", hi, I64), Const(32, I64)))
    return out if t == I64 else b.cast("bitcast", out, t)


def _identity(kind: str, dt) -> Const:  # noqa: ANN001
    """What a phantom element contributes: -0 to a sum (x + -0 == x, signs of zero kept), NaN to a float
    max/min (max.f32 returns its other operand, so an all-NaN column stays NaN), the range's end for ints."""
    t = vals.reg_type(dt)
    if dt.is_float:
        return Const(-0.0 if kind == "sum" else float("nan"), t)
    if kind == "sum":
        return Const(0, t)
    lo = -(1 << (dt.bits - 1)) if dt.is_signed else 0
    hi = (1 << (dt.bits - 1)) - 1 if dt.is_signed else (1 << dt.bits) - 1
    return Const(lo if kind == "max" else hi, t)


def _reduce(ctx: Ctx, op: V.Reduce) -> None:
    """Combine the axis' slots inside each thread, then its lanes with butterflies (the axis stays in warps).

    Integer results are bit-identical to the interpreter (sums wrap modulo
    2**32 or 2**64 and are normalised once, max/min are exact), and so are
    float max/min.  Float sums add in another order than the interpreter's
    (numpy's pairwise sum): both are within ``(N-1) u sum|x|`` of the exact
    sum, so they differ by at most ``2 (N-1) u sum|x|`` (``u`` = 2**-24 f32,
    2**-11 f16, 2**-8 bf16, 2**-53 f64) -- the tolerance the tests hold it to.
    """
    x = ctx.tile(op.x, op)
    lay, out_lay = x.layout, _layout_of(op.result)
    b, ax = ctx.b, op.axis
    fn = {"sum": "add", "max": "max", "min": "min"}[op.kind]
    dt = x.dtype

    def combine(a: Operand, v: Operand) -> Operand:
        if vals.is_int(dt) and fn == "add":
            return b.binary("add", a, v)  # wraps; normalised once at the end
        return vals.binary(b, fn, a, v, dt)

    # in-thread: source slot s contributes to the result slot with the same local coordinates off the axis
    lo_in, lo_out = local_table(lay).copy(), local_table(out_lay)
    lo_in[:, ax] = 0
    slot_of = {tuple(row): i for i, row in enumerate(lo_out.tolist())}
    xs = scalars(ctx, x)
    shape = op.x.type.shape  # type: ignore[union-attr]
    ident = _identity(op.kind, dt)
    acc: list[Operand | None] = [None] * out_lay.local_size
    for s, row in enumerate(lo_in.tolist()):
        i = slot_of.get(tuple(row))
        if i is None:
            raise fail(op, f"the result layout {out_lay} is not the reduction of {lay}")
        valid = ctx.valid(lay, shape, s)
        if valid is False:  # a phantom element (padded layout): left out
            continue
        v = xs[s] if valid is True else b.select(valid, xs[s], ident)
        acc[i] = v if acc[i] is None else combine(acc[i], v)  # type: ignore[arg-type]
    acc = [a if a is not None else ident for a in acc]
    # across lanes: every thread digit along the axis (thread stride * size <= 32, ensured by selection)
    stride = 1
    for e in reversed(lay.spatial):
        size = -e if e < 0 else lay.mode_sizes[e]
        if e >= 0 and lay._mode_dim[e][0] == ax and size > 1:  # noqa: SLF001
            if stride * size > 32:
                raise fail(op, "the reduced axis spans warps (run select_instructions first)")
            m = stride
            while m < stride * size:
                acc = [combine(a, _shfl_bfly(ctx, a, m)) for a in acc]  # type: ignore[arg-type]
                m *= 2
        stride *= size
    put_tile(ctx, op.result, scal=[vals.normalize(b, a, dt) for a in acc])  # type: ignore[arg-type]


def _lookup(ctx: Ctx, op: V.Lookup) -> None:
    """``table[index]`` per slot: every thread holds the whole table, so a tree of selects on the index bits."""
    table, idx = ctx.tile(op.table, op), ctx.tile(op.index, op)
    n = op.table.type.shape[0]  # type: ignore[union-attr]
    if n > 256:
        raise fail(op, f"tables of more than 256 entries are not supported (this one has {n})")
    entries = scalars(ctx, table)
    if table.layout.local_size != n:
        raise fail(op, f"the table's layout {table.layout} does not give every thread the whole table")
    order = [None] * n
    for s, row in enumerate(local_table(table.layout).tolist()):
        order[row[0]] = entries[s]
    b, out = ctx.b, []
    memo: dict[int, Operand] = {}
    for r in scalars(ctx, idx):
        if id(r) in memo:
            out.append(memo[id(r)])
            continue
        i = vals.code_of(b, r, idx.dtype, False) if not vals.is_int(idx.dtype) else ctx.i32(r)
        level: list[Operand] = list(order)  # type: ignore[arg-type]
        bit = 0
        while len(level) > 1:
            p = b.cmp("ne", b.binary("and", i, Const(1 << bit, I32)), Const(0, I32), "lb")
            nxt = []
            for k in range(0, len(level), 2):
                nxt.append(b.select(p, level[k + 1], level[k]) if k + 1 < len(level) else level[k])
            level, bit = nxt, bit + 1
        memo[id(r)] = level[0]
        out.append(level[0])
    put_tile(ctx, op.result, scal=out)


def _dot(ctx: Ctx, op: V.Dot) -> None:
    if not op.inst:
        raise fail(op, "dot reaches the lowering only after instruction selection chose how (FMA ops or an mma)")
    from lowbit.transforms._lower_mma import lower_dot  # noqa: PLC0415

    lower_dot(ctx, op)


HANDLERS = {
    V.ProgramId: _program_id,
    V.NumPrograms: _num_programs,
    V.Full: _full,
    V.Arange: _arange,
    V.ThreadIndex: _thread_index,
    V.Cast: _cast,
    V.View: _same_registers,
    V.Reshape: _same_registers,
    V.Permute: _same_registers,
    V.ElementwiseUnary: _unary,
    V.ElementwiseBinary: _binary,
    V.Where: _where,
    V.Fma: _fma,
    V.Broadcast: _broadcast,
    V.Slice: _slice,
    V.ConvertLayout: _convert_layout,
    V.Reduce: _reduce,
    V.Lookup: _lookup,
    V.Dequant: _dequant,
    V.Dot: _dot,
}

_ = (dtype, I16, word_count)
