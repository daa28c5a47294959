"""Dequantisation of codes stored as bit planes (layouts 2 and 3): segments, shifts and one ``lop3`` a plane.

Part of :mod:`lowbit.transforms._lower_dequant`.  A code made of bit planes
(``Tile.planes``) reaches its half in segments (runs of code bits that go to
consecutive bits of the half); the comment below says how each is moved and
merged, and how integer codes choose their bit offset per pair.
"""

from __future__ import annotations

import numpy as np

from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import I32
from lowbit.transforms._dequant_pairs import _entries, _selector, _shifted, _split_word, _thread_reg


# ----------------------------------------------------------------------------------------------- bit planes
#
# A code made of bit planes (Tile.planes: [(Gathered, code bit offset, width)]) reaches its half in
# *segments*: runs of code bits that go to consecutive bits of the half (an integer's plane is one segment;
# a float's plane splits where its field pattern jumps, e.g. at the sign).  Each segment of each half is
# one rotation of its plane's word (once per word and amount, shared by every pair that word holds; the
# amount is a per-thread register when the code's bit inside its byte differs between threads), one
# ``prmt`` per segment for both halves, one ``lop3`` merging it: ``(x & mask) ^ magic`` for the first,
# ``(x & mask) | acc`` after.  For integers the half's bit offset of the code (q0, q1) is free (the fma
# constants follow it) and is chosen per pair to need the fewest new rotations.  Kernel order (every pair
# of every plane at bits s and s + 16 of one word) skips the rotations and the prmt: see _merge_segments.


def _rotl(ctx, w: Operand, d: int) -> Operand:  # noqa: ANN001
    """``w`` rotated left by the constant ``d`` (one ``shf.l.wrap``), once per word and amount."""
    d %= 32
    if d == 0:
        return w
    key = ("dq_rot", id(w), d)
    got = ctx.find(key)
    if got is None:
        b = ctx.b
        got = b.binary("or", b.binary("shl", w, Const(d, I32), "dqr"), b.binary("lshr", w, Const(32 - d, I32), "dqr"), "dqr")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _move_plan(entry: tuple, sub: int, w: int, t: int) -> tuple:
    """How a code bit run (plane bit ``sub`` on, ``w`` bits) at ``entry``'s positions gets to bit ``t % 8`` of
    a byte: ``("rot", d)`` a constant rotation (same offset in every thread); ``("shl"|"shr", T)`` one
    per-thread shift to in-byte bit T, in the same direction in every thread with no bit lost; else
    ``("align", lo, d)``: a per-thread right shift to the lowest in-byte offset ``lo``, then a rotation."""
    p = (np.asarray(entry[2]) + sub) % 32
    T = t % 8
    r = p % 8
    if len(np.unique(r)) == 1:
        return ("rot", int((T - r[0]) % 8) if T >= r[0] else int(T - r[0]) % 32)
    if np.all(T >= r) and np.all(p + (T - r) + w <= 32):
        return ("shl", T)
    if np.all(T <= r):
        return ("shr", T)
    lo = int(r.min())
    return ("align", lo, int(T - lo) % 32)


def _plan_cost(ctx, entry: tuple, plan: tuple, sub: int, seen: set) -> int:  # noqa: ANN001
    """New instructions ``plan`` needs for this word (0 when made already, or by an earlier segment)."""
    w = id(entry[0])
    if plan[0] == "rot":
        keys = [] if plan[1] % 32 == 0 else [("r", w, plan[1])]
    elif plan[0] == "align":
        keys = [("a", w, id(entry[1]), sub, plan[1])] + ([("ar", w, id(entry[1]), sub, plan[1], plan[2])] if plan[2] else [])
    else:
        keys = [(plan[0], w, id(entry[1]), sub, plan[1])]
    n = 0
    for k in keys:
        if k not in seen and not (k[0] == "r" and ctx.find(("dq_rot", k[1], k[2])) is not None) \
                and ctx.find(("dq_mv",) + k) is None:  # fmt: skip
            n += 1
        seen.add(k)
    return n


def _moved(ctx, entry: tuple, plan: tuple, sub: int) -> tuple[Operand, object, object]:  # noqa: ANN001
    """The word moved by ``plan`` and the byte holding the run's first bit (and the next byte): ints when
    the same in every thread, else per-thread registers."""
    word, sh, p = entry
    p = (np.asarray(p) + sub) % 32
    r = p % 8

    def bytes_of(newp: np.ndarray, reg_pos) -> tuple:  # noqa: ANN001
        j = np.unique(newp // 8)
        if len(j) == 1:
            return int(j[0]), (int(j[0]) + 1) % 4
        j0 = _thread_reg(ctx, ("dq_mvj", id(reg_pos)), lambda b: b.binary("lshr", reg_pos, Const(3, I32), "dqa"))
        j1 = _thread_reg(ctx, ("dq_mvj1", id(reg_pos)),
                         lambda b: b.binary("and", b.binary("add", j0, Const(1, I32), "dqa"), Const(3, I32), "dqa"))
        return j0, j1

    pos = _thread_reg(ctx, ("dq_pos", id(sh), sub),
                      lambda b: b.binary("and", b.binary("add", sh, Const(sub, I32), "dqa"), Const(31, I32), "dqa")
                      if sub else sh)  # fmt: skip
    if plan[0] == "rot":
        d = plan[1]
        newp = (p + d) % 32
        if len(np.unique(newp // 8)) == 1:
            return (_rotl(ctx, word, d), *bytes_of(newp, None))
        np_reg = _thread_reg(ctx, ("dq_posr", id(pos), d),
                             lambda b: b.binary("and", b.binary("add", pos, Const(d, I32), "dqa"), Const(31, I32), "dqa"))
        return (_rotl(ctx, word, d), *bytes_of(newp, np_reg))
    if plan[0] in ("shl", "shr"):
        T = plan[1]
        if plan[0] == "shl":
            amt = _thread_reg(ctx, ("dq_amtl", id(pos), T),
                              lambda b: b.binary("and", b.binary("sub", Const(T + 64, I32), pos, "dqa"), Const(7, I32), "dqa"))
            newp = p + (T - r)
            npos = _thread_reg(ctx, ("dq_posl", id(pos), T), lambda b: b.binary("add", pos, amt, "dqa"))
        else:
            amt = _thread_reg(ctx, ("dq_amtr", id(pos), T),
                              lambda b: b.binary("and", b.binary("sub", pos, Const(T, I32), "dqa"), Const(7, I32), "dqa"))
            newp = p - (r - T)
            npos = _thread_reg(ctx, ("dq_posrr", id(pos), T), lambda b: b.binary("sub", pos, amt, "dqa"))
        key = ("dq_mv", plan[0], id(word), id(sh), sub, T)
        moved = _thread_reg(ctx, key, lambda b: b.binary("shl" if plan[0] == "shl" else "lshr", word, amt, "dqs"))
        return (moved, *bytes_of(newp, npos))
    lo, d = plan[1], plan[2]
    amt = _thread_reg(ctx, ("dq_amtr", id(pos), lo),
                      lambda b: b.binary("and", b.binary("sub", pos, Const(lo, I32), "dqa"), Const(7, I32), "dqa"))
    npos = _thread_reg(ctx, ("dq_posrr", id(pos), lo), lambda b: b.binary("sub", pos, amt, "dqa"))
    aligned = _thread_reg(ctx, ("dq_mv", "a", id(word), id(sh), sub, lo), lambda b: b.binary("lshr", word, amt, "dqs"))
    newp = (p - (r - lo) + d) % 32
    np_reg = _thread_reg(ctx, ("dq_posr", id(npos), d),
                         lambda b: b.binary("and", b.binary("add", npos, Const(d, I32), "dqa"), Const(31, I32), "dqa"))
    return (_rotl(ctx, aligned, d), *bytes_of(newp, np_reg))


def _segments(planes: list, target) -> list | None:  # noqa: ANN001
    """``[(plane, bit inside the plane, width, half bit)]``: maximal runs of each plane's code bits whose
    target half bits (``target(code bit)``) are consecutive and inside the half."""
    out = []
    for g, off, w in planes:
        i = 0
        while i < w:
            t = target(off + i)
            n = 1
            while i + n < w and target(off + i + n) == t + n:
                n += 1
            if t < 0 or t + n > 16 or (t % 8) + n > 16:
                return None
            out.append((g, i, n, t))
            i += n
    return out


def _split_shifts(segs: list, m: int) -> list[tuple[Operand, int]] | None:
    """Per segment ``(word, d)``: the right shift (left when negative) that puts the segment's bits of both
    halves in place, when every plane holds the pair as :func:`_split_word` says (else None)."""
    out = []
    for g, sub, _, t in segs:
        got = _split_word(g, m)
        if got is None:
            return None
        out.append((got[0], got[1] + sub - t))
    return out


def _seg_mask(w: int, t: int) -> int:
    """Bits ``t .. t + w - 1`` of both halves."""
    mask = ((1 << w) - 1) << t
    return mask | mask << 16


def _plane_groups(segs: list) -> list[list]:
    """The segments grouped by their plane, in order of first appearance."""
    groups: dict[int, list] = {}
    for seg in segs:
        groups.setdefault(id(seg[0]), []).append(seg)
    return list(groups.values())


def _respaced(ctx, group: list, m: int) -> Operand | None:  # noqa: ANN001
    """Kernel order, one plane cut into several segments (a float's sign and top exponent bit, whose gap in the
    half differs from the gap in the code): the pair's word *respaced* -- the plane word's copies, one per
    segment moved by the difference of the gaps, selected bit by bit with constant masks (one shift and one
    lop3 per extra copy, once per word, shared by every pair of the word it serves) -- shifted so that all
    segments land at once: one shift and one lop3 for the plane instead of one per segment.  None when no
    respacing of the word serves this pair (see :func:`_respace_plan`)."""
    got = _split_word(group[0][0], m)
    if got is None:
        return None
    word, s = got
    key = ("dq_resp", id(word), tuple(seg[1:] for seg in group))
    plan = ctx.find(key)
    if plan is None:
        plan = _respace_plan(ctx, group, word)
        ctx.put(key, plan)
    if s not in plan:
        return None
    z, a = plan[s]
    return _shifted(ctx, z, s + group[a][1] - group[a][3])


def _respace_plan(ctx, group: list, word: Operand) -> dict[int, tuple[Operand, int]]:  # noqa: ANN001
    """``{s: (respaced word, anchor segment)}`` for the pairs of ``word`` (at bits s and s + 16) that a respacing
    serves.

    A respacing keeps segment ``a`` (the anchor) where it is and moves a copy of the word left by
    ``d_k = (t_k - sub_k) - (t_a - sub_a)`` for each other segment k; a pair is served when each of its
    segments' bits (both halves) stays inside the word and no other served pair wants that bit from another
    copy.  Respacings are taken greedily, the one serving most of the remaining pairs first, while one
    serves enough pairs to pay for its copies."""
    g = group[0][0]
    ss = sorted({got[1] for mm in range(0, len(g.slots) - 1, 2) if (got := _split_word(g, mm)) is not None
                 and got[0] is word})  # fmt: skip
    b = ctx.b
    plan: dict[int, tuple[Operand, int]] = {}
    left = list(ss)
    while left:
        best = None
        for a in range(len(group)):
            base = group[a][3] - group[a][1]
            deltas = [t - sub - base for _, sub, _, t in group]
            claim: dict[int, int] = {}
            served = []
            for s in left:
                want = {}
                for (_, sub, w, _), d in zip(group, deltas, strict=True):
                    for j in range(w):
                        p = s + sub + j + d
                        want[p], want[p + 16] = d, d
                if min(want) < 0 or max(want) > 31 or any(claim.get(p, d) != d for p, d in want.items()):
                    continue
                claim.update(want)
                served.append(s)
            copies = len(set(deltas))
            if len(served) * (len(group) - 1) > 2 * (copies - 1) and (best is None or len(served) > len(best[1])):
                best = (a, served, claim, deltas)
        if best is None:
            break
        a, served, claim, deltas = best
        z = None
        for d in sorted(set(deltas), key=lambda d: d != 0):  # the anchor's (unmoved) copy first
            x = _shifted(ctx, word, -d)
            mask = sum(1 << p for p, dd in claim.items() if dd == d)
            z = x if z is None else b.lop3(x, z, Const(mask, I32), 0xE4, hint="dqr")  # (x & mask) | (z & ~mask)
        for s in served:
            plan[s] = (z, a)
        left = [s for s in left if s not in served]
    return plan


def _merge_segments(ctx, segs_lo: list, segs_hi: list, m: int, first_const: int) -> Operand | None:  # noqa: ANN001
    """One prmt + lop3 per segment: segment i of the low half (slot m) with segment i of the high half (slot
    m + 1); the first lop3 XORs ``first_const`` in (the magic exponent and a sign flip), the rest OR.

    Kernel order (both halves' bits at the same place of one word, the same target bits in both halves):
    no prmt -- the segment's word shifted (once per word and amount) is both halves already.
    """
    b = ctx.b
    acc = None
    split = _split_shifts(segs_lo, m) if [s[3] for s in segs_lo] == [s[3] for s in segs_hi] else None
    if split is not None:
        items = []  # (register, mask): one lop3 each
        for group in _plane_groups(segs_lo):
            z = _respaced(ctx, group, m) if len(group) > 1 else None
            if z is not None:
                items.append((z, sum(_seg_mask(w, t) for _, _, w, t in group)))
                continue
            for seg, (word, d) in zip(group, _split_shifts(group, m), strict=True):
                items.append((_shifted(ctx, word, d), _seg_mask(seg[2], seg[3])))
        for x, mask in items:
            if acc is None:
                acc = (b.lop3(x, Const(mask, I32), Const(first_const, I32), 0x6A, hint="dq") if first_const
                       else b.binary("and", x, Const(mask, I32), "dq"))  # fmt: skip
            else:
                acc = b.lop3(x, Const(mask, I32), acc, 0xEA, hint="dq")  # (x & mask) | acc
        return acc
    for (g, sub, w, t0), (_, _, _, t1) in zip(segs_lo, segs_hi, strict=True):
        e0, e1 = _entries(g, m)
        srcs = []
        nib = [None, None, None, None]
        for half, e, t in ((0, e0, t0), (1, e1, t1)):
            reg, j0, j1 = _moved(ctx, e, _move_plan(e, sub, w, t), sub)
            if srcs and (reg is srcs[0] or isinstance(reg, Const) and isinstance(srcs[0], Const) and reg.value == srcs[0].value):
                base = 0
            else:
                srcs.append(reg)
                base = 4 * (len(srcs) - 1)
            nib[2 * half + t // 8] = (j0, base)
            if t % 8 + w > 8:
                nib[2 * half + t // 8 + 1] = (j1, base)
        for i in range(4):  # bytes no segment reads: any byte (the mask drops them)
            if nib[i] is None:
                nib[i] = nib[i ^ 1] or nib[i ^ 2] or nib[i ^ 3]
        a = srcs[0]
        c = srcs[1] if len(srcs) > 1 else a
        x = b.op(S.Prmt, I32, a, c, _selector(ctx, nib), hint="dq")
        mask = ((1 << w) - 1) << t0 | (((1 << w) - 1) << t1) << 16
        if acc is None:
            acc = (b.lop3(x, Const(mask, I32), Const(first_const, I32), 0x6A, hint="dq") if first_const
                   else b.binary("and", x, Const(mask, I32), "dq"))  # fmt: skip
        else:
            acc = b.lop3(x, Const(mask, I32), acc, 0xEA, hint="dq")  # (x & mask) | acc
    return acc


def _split_plan(ctx, planes: list, n: int, B: int, room: int, zkeys: list | None) -> list[int] | None:  # noqa: ANN001
    """Kernel order: the bit ``q`` of each pair's code in both halves, chosen over the whole tile for the fewest
    new instructions -- shifts (one per plane word and amount) and, with zeros, fma constants (one per zero
    pair and q).  None unless every pair of every plane sits at bits s and s + 16 of one word.

    Pairs that can share no instruction (another column's words and zero) are independent problems; each is
    solved by descent -- one pair at a time moved to its cheapest q given all the others, until none moves
    (the cost is a count of distinct keys, so each move is exact) -- from a greedy start and from seeded
    random starts (deterministic: the same tile always gets the same plan), keeping the cheapest."""
    order = sorted(planes, key=lambda p: -p[1])
    opts: list[dict[int, frozenset]] = []
    for m in range(0, n, 2):
        o: dict[int, frozenset] = {}
        for q in range(0, room - B + 1):
            segs = _segments(order, lambda i, q=q: q + i)
            sh = _split_shifts(segs, m) if segs is not None else None
            if sh is None:
                continue
            keys = {("s", id(w), d) for w, d in sh if d and ctx.find(("dq_shift", id(w), d)) is None}
            keys.add(("w",) + tuple(id(w) for w, _ in sh))  # free, but ties the pairs of shared words together
            if zkeys is not None:
                keys.add(("z", zkeys[m // 2], q))
            o[q] = frozenset(keys)
        if not o:
            return None
        opts.append(o)
    plan = [0] * len(opts)
    for part in _components(opts):
        for i, q in zip(part, _descend([opts[i] for i in part]), strict=True):
            plan[i] = q
    return plan


def _components(opts: list[dict[int, frozenset]]) -> list[list[int]]:
    """The pairs grouped into sets that share no key in any of their options."""
    parent = list(range(len(opts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict = {}
    for i, o in enumerate(opts):
        for keys in o.values():
            for k in keys:
                j = owner.setdefault(k, i)
                parent[root(i)] = root(j)
    parts: dict[int, list[int]] = {}
    for i in range(len(opts)):
        parts.setdefault(root(i), []).append(i)
    return list(parts.values())


def _descend(opts: list[dict[int, frozenset]], restarts: int = 48) -> list[int]:
    """The cheapest plan (one option per entry, cost: distinct keys with a ``("s" | "z", ...)`` tag) found."""
    count: dict = {}

    def add(keys: frozenset, k: int) -> None:
        for x in keys:
            if x[0] != "w":
                count[x] = count.get(x, 0) + k

    def extra(keys: frozenset) -> int:
        return sum(1 for x in keys if x[0] != "w" and not count.get(x))

    def settle(plan: list[int]) -> tuple[int, list[int]]:
        count.clear()
        for o, q in zip(opts, plan, strict=True):
            add(o[q], 1)
        for _ in range(16):
            moved = False
            for i, o in enumerate(opts):
                add(o[plan[i]], -1)
                q = min(o, key=lambda q: (extra(o[q]), q != plan[i], q))
                moved |= q != plan[i]
                plan[i] = q
                add(o[q], 1)
            if not moved:
                break
        return sum(1 for v in count.values() if v > 0), plan

    greedy: list[int] = []
    for o in opts:
        q = min(o, key=lambda q: (extra(o[q]), q))
        greedy.append(q)
        add(o[q], 1)
    best = settle(greedy)
    rng = np.random.default_rng(13)
    for _ in range(restarts):
        got = settle([int(rng.choice(sorted(o))) for o in opts])
        if got[0] < best[0]:
            best = got
    return best[1]


def _int_planes(ctx, planes: list, m: int, B: int, room: int, magic: int, signed: bool, q: int | None = None):  # noqa: ANN001,ANN202
    """A pair's integer codes from their planes: (register, (q0, q1)) with code ``c`` at bit ``q`` of each
    half, the magic exponent ORed in and the sign bit flipped for signed codes; q chosen per half (the two
    halves' rotations are independent) for the fewest new rotations, then the lowest q -- or, given (kernel
    order, :func:`_split_plan`), ``q`` in both halves."""
    order = sorted(planes, key=lambda p: -p[1])  # the plane with the code's top bit first (it takes the flip)
    if q is not None:
        segs = _segments(order, lambda i: q + i)
        flip = ((1 << (q + B - 1)) | (1 << (q + B - 1)) << 16) if signed else 0
        return _merge_segments(ctx, segs, segs, m, magic | magic << 16 | flip), (q, q)
    best = []
    for half in (0, 1):
        cands = []
        for q in range(0, room - B + 1):
            segs = _segments(order, lambda i, q=q: q + i)
            if segs is None:
                continue
            seen: set = set()
            cost = 0
            for g, sub, w, t in segs:
                e = _entries(g, m)[half]
                cost += _plan_cost(ctx, e, _move_plan(e, sub, w, t), sub, seen)
            cands.append((cost, q, segs))
        if not cands:
            return None
        best.append(min(cands, key=lambda c: (c[0], c[1])))
    (_, q0, lo), (_, q1, hi) = best
    if len(lo) != len(hi) or any(a[:3] != b_[:3] for a, b_ in zip(lo, hi)):
        return None
    flip = ((1 << (q0 + B - 1)) | (1 << (q1 + B - 1)) << 16) if signed else 0
    x = _merge_segments(ctx, lo, hi, m, magic | magic << 16 | flip)
    return x, (q0, q1)


def _float_planes(ctx, planes: list, m: int, src, tm: int):  # noqa: ANN001,ANN202
    """A pair's float codes from their planes, each bit straight to its field of the half (sign at bit 15,
    exponent and mantissa with the mantissa's top aligned): the pattern ``_float_pairs`` builds."""
    X, Y = src.exponent, src.mantissa

    def target(i: int) -> int:
        return 15 if i >= X + Y else tm - Y + i

    order = sorted(planes, key=lambda p: -p[1])
    segs = _segments(order, target)
    if segs is None:
        return None
    return _merge_segments(ctx, segs, segs, m, 0)
