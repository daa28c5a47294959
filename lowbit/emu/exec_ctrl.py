"""Executors for control, predicates and warp collectives.

``bra`` (PTX ISA 9.7.12.1), ``ret``/``exit`` (9.7.12.4-5), ``bar``/``barrier``
``.sync``, ``.arrive`` and ``.red`` (9.7.13.1; the machine's barrier unit does
the waiting), ``setp``/``selp``/``set`` (9.7.7), and the
warp collectives ``shfl.sync`` (9.7.9.6), ``vote.sync`` (9.7.13.4),
``redux.sync`` (9.7.13.10), ``activemask`` (9.7.13.11), ``bar.warp.sync``
(9.7.13.3).  Collectives act per warp and check their member mask: a lane
named in the mask that is not executing the instruction, or a lane executing
it without being named, is an error (on hardware, a hang or undefined result).
"""

from __future__ import annotations

import numpy as np

from lowbit.emu import fparith
from lowbit.emu import ptx_ast as A
from lowbit.emu.decode import and_defined, bits_of, fetch, is_float, is_signed, store, type_of
from lowbit.emu.machine import BARRIER, BRANCH, EXIT, NORMAL as NORMAL_KIND, Op
from lowbit.emu.sanitizer import fault
from lowbit.errors import UnsupportedPTXError

SINT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}


def build_bra(m, ins):
    target = ins.operands[-1]
    if not isinstance(target, A.LabelRef):
        raise UnsupportedPTXError(f"PTX line {ins.line}: indirect branch `{ins.text}` is not supported")
    return Op(ins, BRANCH, klass="control", target=target.target)


def build_exit(m, ins):
    if m.func.kind != "entry":
        raise UnsupportedPTXError(f"PTX line {ins.line}: ret from a .func (calls are not supported)")
    return Op(ins, EXIT, klass="control")


def build_trap(m, ins):
    """``trap`` (PTX ISA 9.7.19.3): the launch aborts; on a GPU the context reports an illegal instruction."""
    op = Op(ins, NORMAL_KIND, klass="control")

    def run(act):
        threads = np.flatnonzero(m.live if act is None else act)
        raise fault(m, "trap", "the kernel executed `trap` and the launch was aborted", threads, op)

    op.run = run
    return op


class BarrierSpec:
    """What a ``bar``/``barrier`` instruction asks of the machine's barrier unit (PTX ISA 9.7.13.1).

    ``mode`` is ``"sync"``, ``"arrive"`` or ``"red"``; ``aligned`` is true for
    every ``bar.*`` spelling (``bar.sync`` = ``barrier.sync.aligned``) and for
    ``barrier.*.aligned``; ``__call__(arr)`` gives ``(barrier id, thread count
    or None)`` for the arriving threads ``arr``; for ``.red``, ``red`` is the
    operator (``"popc"``, ``"and"``, ``"or"``), ``pred(arr)`` the arriving
    threads' predicate ``c`` and ``write(values, mask)`` stores the result in
    ``d`` of the threads ``mask`` when the barrier completes.
    """

    def __init__(self, mode, aligned, ids, red=None, pred=None, write=None):
        self.mode = mode
        self.aligned = aligned
        self.ids = ids
        self.red = red
        self.pred = pred
        self.write = write

    def __call__(self, arr):
        return self.ids(arr)


def build_bar(m, ins):
    mods = ins.modifiers
    if ins.opcode == "bar" and "warp" in mods:
        return build_bar_warp(m, ins)
    mode = next((x for x in mods if x in ("sync", "arrive", "red")), None)
    if mode is None:
        if ins.opcode == "barrier" and not [x for x in mods if x not in ("cta", "aligned")]:
            mode = "sync"
        else:
            raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented "
                                      "(bar/barrier .sync, .arrive and .red are)")
    ops = list(ins.operands)
    red = pred_f = write = None
    if mode == "red":
        red = next((x for x in mods if x in ("popc", "and", "or")), None)
        if red is None or len(ops) not in (3, 4):
            raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not a bar.red form")
        dst, ops, c_op = ops[0], ops[1:-1], ops[-1]
        write = store(m, dst, "u32" if red == "popc" else "pred")
        pred_f = fetch(m, c_op, "pred")
    elif mode == "arrive" and len(ops) != 2:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` needs a thread count "
                                  "(bar.arrive a, b)")
    bid_f = fetch(m, ops[0], "u32") if ops else None
    cnt_f = fetch(m, ops[1], "u32") if len(ops) > 1 else None

    def uniform(f, arr, what):
        v, d = f()
        if d is not True and (arr & ~d).any():
            raise fault(m, "undefined value", f"barrier {what} is undefined", np.flatnonzero(arr & ~d), op)
        vals = np.unique(v[arr])
        if vals.size != 1:
            raise fault(m, "barrier", f"barrier {what} differs between threads", np.flatnonzero(arr), op)
        return int(vals[0])

    def ids(arr):
        bid = 0 if bid_f is None else uniform(bid_f, arr, "id")
        if not 0 <= bid < 16:
            raise fault(m, "barrier", f"barrier id {bid} is outside 0..15", np.flatnonzero(arr), op)
        count = None if cnt_f is None else uniform(cnt_f, arr, "thread count")
        if count is not None and count <= 0:
            raise fault(m, "barrier", f"barrier thread count {count} must be positive", np.flatnonzero(arr), op)
        return bid, count

    def pred(arr):
        v, d = pred_f()
        if d is not True and (arr & ~d).any():
            raise fault(m, "undefined value", "bar.red predicate is used before it is written",
                        np.flatnonzero(arr & ~d), op)
        return v

    aligned = ins.opcode == "bar" or "aligned" in mods  # bar.X = barrier.X.aligned
    spec = BarrierSpec(mode, aligned, ids, red, pred if red else None,
                       (lambda v, mask: write(v, True, mask)) if red else None)
    op = Op(ins, BARRIER, klass="sync", data=spec, dsts=_names(ins.operands[0]) if red else ())
    return op


def _warps_of(m, act):
    """(warp indices, lanes mask (nw, 32)) of the warps with an active lane."""
    if act is None:
        act = m.exists
    a = act.reshape(-1, 32)
    w = np.flatnonzero(a.any(1))
    return w, a[w]


def _check_members(m, act, member_bits, op, what):
    """Every warp's active lanes must equal its member mask (restricted to existing lanes)."""
    w, lanes = _warps_of(m, act)
    if member_bits is None:
        full = m.exists.reshape(-1, 32)[w]
        bad = full & ~lanes
        if bad.any():
            i, lane = np.argwhere(bad)[0]
            raise fault(m, "collective", f"{what} reached by only part of a warp: lane {lane} is not executing it",
                        [w[i] * 32 + lane], op)
        return w, lanes
    mm = member_bits.reshape(-1, 32)[w]  # per lane: its membermask operand
    bitsel = (mm[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1
    ex = m.exists.reshape(-1, 32)[w]
    for k in range(lanes.shape[0]):
        named = bitsel[k][lanes[k]]  # (nactive, 32): member masks given by the active lanes
        if named.size and not (named == named[0]).all():
            raise fault(m, "collective", f"{what}: lanes of one warp pass different member masks",
                        [w[k] * 32 + int(np.argmax(lanes[k]))], op)
    want = bitsel[np.arange(len(w)), np.argmax(lanes, 1)].astype(bool) & ex
    bad = want != lanes
    if bad.any():
        i, lane = np.argwhere(bad)[0]
        state = "is not executing it" if want[i, lane] else "executes it but is not in the mask"
        mask_val = int(mm[i, int(np.argmax(lanes[i]))])
        raise fault(m, "collective", f"{what} with member mask {mask_val:#010x}: lane {lane} {state}",
                    [w[i] * 32 + lane], op)
    return w, lanes


def build_bar_warp(m, ins):
    mf = fetch(m, ins.operands[0], "b32")

    def run(act):
        v, d = mf()
        _check_members(m, act, v, op, "bar.warp.sync")

    op = Op(ins, run=run, klass="sync")
    return op


# ---------------------------------------------------------------- comparisons
def int_compare(cmp: str, t: str, a, b):
    if is_signed(t):
        a, b = a.view(SINT[bits_of(t)]), b.view(SINT[bits_of(t)])
    c = {"lo": "lt", "ls": "le", "hi": "gt", "hs": "ge"}.get(cmp, cmp)
    return {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
            "gt": np.greater, "ge": np.greater_equal}[c](a, b)


CMPS = {"eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs",
        "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"}
BOOLS = {"and", "or", "xor"}


def _comparator(ins, t):
    cmp = next(x for x in ins.modifiers if x in CMPS)
    ftz = "ftz" in ins.modifiers
    if t in ("f16x2", "bf16x2"):
        half = t[:-2]

        def cmp2(a, b):
            lo = fparith.compare(half, cmp, (a & 0xFFFF).astype(np.uint16), (b & 0xFFFF).astype(np.uint16), ftz=ftz)
            hi = fparith.compare(half, cmp, (a >> 16).astype(np.uint16), (b >> 16).astype(np.uint16), ftz=ftz)
            return lo, hi
        return cmp2, True
    if is_float(t):
        return (lambda a, b: fparith.compare(t, cmp, a, b, ftz=ftz)), False
    return (lambda a, b: int_compare(cmp, t, a, b)), False


def _combine(boolop, x, c):
    return {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[boolop](x, c)


def build_setp(m, ins):
    t = type_of(ins)
    comp, packed = _comparator(ins, t)
    boolop = next((x for x in ins.modifiers if x in BOOLS), None)
    dst = ins.operands[0]
    p_op, q_op = (dst.first, dst.second) if isinstance(dst, A.PredicatePair) else (dst, A.Sink())
    wp, wq = store(m, p_op, "pred"), store(m, q_op, "pred")
    fa, fb = fetch(m, ins.operands[1], t), fetch(m, ins.operands[2], t)
    fc = fetch(m, ins.operands[3], "pred") if boolop else None

    def run(act):
        a, da = fa()
        b, db = fb()
        d = and_defined(da, db)
        r = comp(a, b)
        if packed:
            p, q = r
        else:
            p, q = r, ~r
        if fc is not None:
            c, dc = fc()
            d = and_defined(d, dc)
            p, q = _combine(boolop, p, c), _combine(boolop, q, c)
        wp(p, d, act)
        wq(q, d, act)

    return Op(ins, run=run, klass="logic", dsts=_names(p_op, q_op))


def build_set(m, ins):
    tys = [x for x in ins.modifiers if x in A.TYPE_SIZES]
    dt, st = tys[0], tys[-1]
    comp, packed = _comparator(ins, st)
    if packed:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented")
    boolop = next((x for x in ins.modifiers if x in BOOLS), None)
    w = store(m, ins.operands[0], dt)
    fa, fb = fetch(m, ins.operands[1], st), fetch(m, ins.operands[2], st)
    fc = fetch(m, ins.operands[3], "pred") if boolop else None
    one = np.uint32(0x3F800000) if dt == "f32" else np.uint32(0xFFFFFFFF)

    def run(act):
        (a, da), (b, db) = fa(), fb()
        r, d = comp(a, b), and_defined(da, db)
        if fc is not None:
            c, dc = fc()
            r, d = _combine(boolop, r, c), and_defined(d, dc)
        w(np.where(r, one, np.uint32(0)), d, act)

    return Op(ins, run=run, klass="logic", dsts=_names(ins.operands[0]))


def build_selp(m, ins):
    t = type_of(ins)
    w = store(m, ins.operands[0], t)
    fa, fb = fetch(m, ins.operands[1], t), fetch(m, ins.operands[2], t)
    fc = fetch(m, ins.operands[3], "pred")

    def run(act):
        (a, da), (b, db), (c, dc) = fa(), fb(), fc()
        v = np.where(c, a, b)
        if da is True and db is True:
            d = dc
        else:
            d = np.where(c, da, db)
            if dc is not True:
                d = d & dc
        w(v, d, act)

    return Op(ins, run=run, klass="logic", dsts=_names(ins.operands[0]))


def _names(*ops):
    out = []
    for o in ops:
        if isinstance(o, A.Register):
            out.append(o.name if o.component is None else f"{o.name}.{o.component}")
        elif isinstance(o, A.Vector):
            out.extend(_names(*o.elements))
    return tuple(out)


# ---------------------------------------------------------------- collectives
def build_shfl(m, ins):
    mode = next(x for x in ins.modifiers if x in ("up", "down", "bfly", "idx"))
    if "sync" not in ins.modifiers:
        raise UnsupportedPTXError(f"PTX line {ins.line}: shfl without .sync is not supported (removed in sm_70+)")
    dst = ins.operands[0]
    d_op, p_op = (dst.first, dst.second) if isinstance(dst, A.PredicatePair) else (dst, A.Sink())
    wd, wp = store(m, d_op, "b32"), store(m, p_op, "pred")
    fa, fb, fc, fm = (fetch(m, o, "b32") for o in ins.operands[1:5])
    lane = m.lane.astype(np.int64)
    base = (np.arange(m.T, dtype=np.int64) // 32) * 32

    def run(act):
        (a, da), (b, db), (c, dc), (mm, dm) = fa(), fb(), fc(), fm()
        ctl = and_defined(db, dc, dm)
        a_act = m.exists if act is None else act
        if ctl is not True and (a_act & ~ctl).any():
            raise fault(m, "undefined value", "shfl.sync lane, clamp or member mask operand is undefined",
                        np.flatnonzero(a_act & ~ctl), op)
        _check_members(m, act, mm, op, "shfl.sync")
        bval = (b & 31).astype(np.int64)
        cval = (c & 31).astype(np.int64)
        seg = ((c >> 8) & 31).astype(np.int64)
        maxl = (lane & seg) | (cval & ~seg)
        minl = lane & seg
        if mode == "up":
            j = lane - bval
            pv = j >= maxl
        elif mode == "down":
            j = lane + bval
            pv = j <= maxl
        elif mode == "bfly":
            j = lane ^ bval
            pv = j <= maxl
        else:
            j = minl | (bval & ~seg)
            pv = j <= maxl
        j = np.where(pv, j, lane)
        src = base + j
        v = a[src]
        # a source lane outside the member mask gives an undefined value (PTX ISA 9.7.9.6)
        in_mask = ((mm >> j.astype(np.uint32)) & 1).astype(bool) & a_act[src]
        d = in_mask if da is True else (in_mask & da[src])
        wd(v, True if d.all() else d, act)
        wp(pv, True, act)

    op = Op(ins, run=run, klass="collective", dsts=_names(d_op, p_op))
    return op


def build_vote(m, ins):
    mode = next(x for x in ins.modifiers if x in ("all", "any", "uni", "ballot"))
    dst, src, mask = ins.operands[:3]
    fp = fetch(m, src, "pred")
    fm = fetch(m, mask, "b32")
    w = store(m, dst, "b32" if mode == "ballot" else "pred")
    weights = (np.uint32(1) << np.arange(32, dtype=np.uint32))

    def run(act):
        (p, dp), (mm, _) = fp(), fm()
        wids, lanes = _check_members(m, act, mm, op, "vote.sync")
        pw = p.reshape(-1, 32)[wids] & lanes
        d = True
        if dp is not True:
            dw = (dp.reshape(-1, 32)[wids] | ~lanes).all(1)
            d = np.zeros(m.T, bool)
            d.reshape(-1, 32)[wids] = dw[:, None]
        if mode == "ballot":
            r = (pw * weights).sum(1, dtype=np.uint64).astype(np.uint32)
            out = np.zeros(m.T, np.uint32)
        else:
            cnt = pw.sum(1)
            tot = lanes.sum(1)
            r = {"all": cnt == tot, "any": cnt > 0, "uni": (cnt == 0) | (cnt == tot)}[mode]
            out = np.zeros(m.T, bool)
        out.reshape(-1, 32)[wids] = r[:, None]
        w(out, d, act)

    op = Op(ins, run=run, klass="collective", dsts=_names(dst))
    return op


def build_redux(m, ins):
    kind = next(x for x in ins.modifiers if x in ("add", "min", "max", "and", "or", "xor"))
    t = type_of(ins)
    if t == "f32":
        # redux.sync.{min,max}{.abs}{.NaN}.f32 is PTX ISA 8.6 and sm_100a-family
        # only, so the sm_80..sm_90 PTX this emulator is built for cannot hold it.
        raise UnsupportedPTXError(
            f"PTX line {ins.line}: `{ins.full_opcode}` (float redux.sync) is not implemented: it needs "
            f"PTX ISA 8.6 and an sm_100a-family target (this PTX is .target {m.module.target}); the emulator "
            "runs redux.sync on .u32/.s32/.b32 only")
    if t not in ("u32", "s32", "b32"):
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented")
    dst, src, mask = ins.operands[:3]
    fa, fm = fetch(m, src, "b32"), fetch(m, mask, "b32")
    w = store(m, dst, "b32")

    def run(act):
        (a, da), (mm, _) = fa(), fm()
        wids, lanes = _check_members(m, act, mm, op, "redux.sync")
        x = a.reshape(-1, 32)[wids]
        if t == "s32":
            x = x.view(np.int32)
        x = x.astype(np.int64)
        if kind == "add":
            r = np.where(lanes, x, 0).sum(1)
        elif kind in ("min", "max"):
            fill = np.iinfo(np.int64).max if kind == "min" else np.iinfo(np.int64).min
            r = (np.min if kind == "min" else np.max)(np.where(lanes, x, fill), axis=1)
        else:
            ufunc = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[kind]
            r = ufunc.reduce(np.where(lanes, x, -1 if kind == "and" else 0), axis=1)
        out = np.zeros(m.T, np.uint32)
        out.reshape(-1, 32)[wids] = (r & 0xFFFFFFFF).astype(np.uint32)[:, None]
        d = True
        if da is not True:
            dw = (da.reshape(-1, 32)[wids] | ~lanes).all(1)
            d = np.zeros(m.T, bool)
            d.reshape(-1, 32)[wids] = dw[:, None]
        w(out, d, act)

    op = Op(ins, run=run, klass="collective", dsts=_names(dst))
    return op


def build_activemask(m, ins):
    w = store(m, ins.operands[0], "b32")
    weights = (np.uint32(1) << np.arange(32, dtype=np.uint32))

    def run(act):
        a = (m.exists if act is None else act).reshape(-1, 32)
        r = (a * weights).sum(1, dtype=np.uint64).astype(np.uint32)
        w(np.repeat(r, 32), True, act)

    return Op(ins, run=run, klass="collective", dsts=_names(ins.operands[0]))


BUILDERS = {
    "bra": build_bra, "ret": build_exit, "exit": build_exit, "bar": build_bar, "barrier": build_bar,
    "setp": build_setp, "set": build_set, "selp": build_selp, "shfl": build_shfl, "vote": build_vote,
    "redux": build_redux, "activemask": build_activemask, "trap": build_trap,
}
