"""Lowering of ``atomic``: one ``atom.global`` (``red`` when its old value is unused) per element a thread owns.

Only a layout's first replica issues atomics (a replicated element must be
added once); when the old values are wanted the layout is injective
(``select_instructions`` converted it).  An element out of bounds or off
the mask issues nothing and reads 0.  f16 adds go two at a time as
``atom.add.noftz.f16x2`` where a thread owns two consecutive elements of a
row starting at an even column -- taken at run time when the pair is in
bounds, on the mask and 4-byte aligned (a pointer is only known to be
element-aligned), else element by element.  Old values come back as the
atomics' results (PTX ISA 9.7.13.5).
"""

from __future__ import annotations

from lowbit.ir import ops as V
from lowbit.ir.expr import Const as EConst
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import F16, I16, I32, I64
from lowbit.transforms import _values as vals
from lowbit.transforms._context import Ctx, GView, fail
from lowbit.transforms._layout_maps import local_table, spatial_table
from lowbit.transforms._lower_compute import put_tile
from lowbit.transforms._tiles import scalars

__all__ = ["HANDLERS"]

_PTX_TYPE = {"f32": "f32", "f16": "f16", "int32": "s32", "uint32": "u32"}


def _mem():  # noqa: ANN202
    from lowbit.transforms import _lower_memory  # noqa: PLC0415

    return _lower_memory


def _zero(t) -> Const:  # noqa: ANN001
    return Const(0.0, t) if t.is_float else Const(0, t)


def _one(ctx: Ctx, op: V.Atomic, view: GView, kind: str, ptype: str, lin: Operand, x: Operand, c: Operand | None,
         ok: Operand | None, want: bool) -> Operand | None:  # fmt: skip
    """One atomic on element ``lin`` where ``ok``; returns its old value (0 where not done) when ``want``."""
    b, m = ctx.b, _mem()
    st = m.storage_type(view.dtype)
    rt = x.type
    ptr = b.gep(view.ptr, lin, st, "aa")
    if ok is None:
        return b.op(S.Atomic, rt, kind, ptype, ptr, x, c, hint="old")
    with b.if_(ok) as scope:
        old = b.op(S.Atomic, rt, kind, ptype, ptr, x, c, hint="old")
        if want:
            scope.yield_(old)
            b.else_(scope)
            scope.yield_(_zero(rt))
    return scope.results[0] if want else None


def _pairs(op: V.Atomic, lay) -> bool:  # noqa: ANN001
    """f16 adds by pairs: slots (2j, 2j+1) hold columns (2c, 2c+1) of one row for every thread."""
    if op.value.type.dtype.name != "f16" or op.kind != "add" or lay.local_size % 2:  # type: ignore[union-attr]
        return False
    lo, sp = local_table(lay), spatial_table(lay)
    step = lo[1::2] - lo[0::2]
    want = [0] * (lay.rank - 1) + [1]
    return bool((step == want).all() and (lo[0::2, -1] % 2 == 0).all() and (sp[:, -1] % 2 == 0).all())


def _atomic(ctx: Ctx, op: V.Atomic) -> None:
    x = ctx.tile(op.value, op)
    view = ctx.get(op.dst, op)
    assert isinstance(view, GView)  # noqa: S101
    lay, dt = x.layout, x.dtype
    want = op.result is not None
    if want and not lay.is_injective:
        raise fail(op, "the old values of an atomic need a layout without replication (select_instructions converts)")
    m, b = _mem(), ctx.b
    kind, ptype = op.kind, ("b32" if op.kind == "cas" else _PTX_TYPE[dt.name])
    xs = scalars(ctx, x)
    cs = scalars(ctx, ctx.tile(op.compare, op)) if op.compare is not None else None
    mask = scalars(ctx, ctx.tile(op.mask, op)) if op.mask is not None else None
    own = ctx.primary(lay)
    shape = op.value.type.shape  # type: ignore[union-attr]
    olds: list[Operand] = []

    def ok_of(s: int) -> tuple[Operand | None, Operand]:
        valid = ctx.valid(lay, shape, s)
        ok, lin = m._element(ctx, view, op.offsets, ctx.coords(lay, s))  # noqa: SLF001
        if mask is not None:
            ok = b.binary("and", ok, mask[s])
        return m._with_valid(ctx, ctx.and_(ok, own), valid), lin  # noqa: SLF001

    rt = vals.reg_type(dt)
    last = view.strides[-1]
    if _pairs(op, lay) and isinstance(last, EConst) and last.value == 1:
        for j in range(0, lay.local_size, 2):
            if ctx.valid(lay, shape, j) is False:
                olds += [_zero(rt), _zero(rt)]
                continue
            (ok0, lin), (ok1, _) = ok_of(j), ok_of(j + 1)
            addr = b.binary("add", b.cast("ptrtoint", view.ptr, I64, "pa"), b.binary("mul", lin, Const(2, I64)), "ga")
            aligned = b.cmp("eq", b.binary("and", addr, Const(3, I64)), Const(0, I64), "al")
            both = b.binary("and", b.binary("and", ok0, ok1), aligned, "pair") if ok0 is not None and ok1 is not None \
                else aligned  # fmt: skip
            word = b.binary("or", b.cast("zext", b.cast("bitcast", xs[j], I16), I32),
                            b.binary("shl", b.cast("zext", b.cast("bitcast", xs[j + 1], I16), I32), Const(16, I32)))  # fmt: skip
            with b.if_(both) as scope:
                old2 = b.op(S.Atomic, I32, "add", "f16x2", b.gep(view.ptr, lin, F16, "aa"), word, None, hint="old")
                lo_h = b.cast("bitcast", b.cast("trunc", old2, I16), F16)
                hi_h = b.cast("bitcast", b.cast("trunc", b.binary("lshr", old2, Const(16, I32)), I16), F16)
                scope.yield_(lo_h, hi_h)
                b.else_(scope)
                singles = []
                for k, okk in ((0, ok0), (1, ok1)):
                    lk = lin if k == 0 else b.binary("add", lin, Const(1, I64), "lk")
                    singles.append(_one(ctx, op, view, "add", "f16", lk, xs[j + k], None, okk, True))
                scope.yield_(*singles)
            olds += list(scope.results)
    else:
        for s in range(lay.local_size):
            if ctx.valid(lay, shape, s) is False:
                olds.append(_zero(rt))
                continue
            ok, lin = ok_of(s)
            olds.append(_one(ctx, op, view, kind, ptype, lin, xs[s], None if cs is None else cs[s], ok, want)
                        or _zero(rt))  # fmt: skip
    if want:
        put_tile(ctx, op.result, scal=olds)


HANDLERS = {V.Atomic: _atomic}
