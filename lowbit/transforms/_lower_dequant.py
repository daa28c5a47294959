"""Weight codes to f16/bf16 two at a time: byte permutes, magic exponents and packed arithmetic.

One generator serves every integer format of 1-8 bits and every float
format of at most 8 bits, for a ``dequant`` (codes, optional zero and scale,
see :class:`lowbit.ir.ops.Dequant`) and for a plain ``cast`` of codes.  It
works on *pairs* of result slots: the two halves of one f16x2/bf16x2
register, whose codes the layout put in the thread's words at known bit
positions (the same in every thread, or a per-thread byte with the same
bit offset inside it: a gathering view's B fragments).

**Getting a pair into one register.**  Each code needs its own byte at its
own place: ``prmt`` assembles the two halves from the bytes of at most two
source registers, each the code's word shifted (once per word and shift,
shared by every pair that needs it) so that the code lands where the next
step wants it inside its byte.

**Kernel order** (layout 3: the two codes of a pair at bits ``s`` and
``s + 16`` of one word of each bit plane) needs no ``prmt``: each plane's
word, shifted so that the bits land where the half wants them (once per word
and amount, shared by the pairs of that word), is both halves at once, and
one ``lop3`` a plane merges it.  Integers choose the code's bit offset per
pair over the whole tile for the fewest shifts and zero constants; a float
plane whose bits go to non-adjacent fields (sign, top exponent bit) is
respaced once per word so that it too takes one shift and one ``lop3``.

**Integers** (code ``c``, ``B`` bits; ``o = 2**(B-1)`` for signed codes,
whose sign bit is flipped on the way in, else 0).  ``lop3`` keeps each
half's code bits and ORs in the magic exponent: the half *is* the value
``M + (c + o) * 2**q`` exactly (f16: ``M = 1024``, bits ``0x6400``, codes of
up to 10 bits fit; bf16: ``M = 128``, ``0x4300``, up to 7 bits).  One
``fma`` with per-half constants ``2**-q`` and ``-(M * 2**-q + o + z)``
leaves ``c - z``: exact, since every operand and the result are integers
below ``2 M`` (or power-of-two multiples of them).  The zero's constant is
made once per zero register: ``M + z + o`` is again a magic number, built
with integer instructions (no conversion), then subtracted from a
constant.  One ``mul`` by the scale pair rounds ``(c - z) * s`` once:
bit-identical to the f32 chain, whose product is exact in f32.  8-bit
codes into f16 take the magic byte straight from ``prmt``; into bf16 (no
bf16 magic holds 8 bits) each code goes through the f32 magic ``0x4B4000cc``
(:func:`_f32_magic`: prmt, f32 sub, one rounding pack per pair -- no
integer-to-float conversion).

**Floats** ``eXmY``.  The code's exponent and mantissa bits are moved into
the f16/bf16 exponent and mantissa fields (the mantissa's top aligned) and
its sign to bit 15: that pattern is the code's value times ``2**k`` (``k``
the difference of the biases) for every code -- subnormal codes become
subnormal halves with the same ratio.  Whether that holds for *every* code
of a format (NaN and infinity codes included) is checked on the format's
table, not assumed; one ``mul`` by ``2**-k`` (times the element factor)
restores the value exactly, one ``mul`` by the scale rounds once.

Everything else -- widths that straddle words, codebooks, formats whose
codes do not map, zeros or scales of another dtype -- computes the f32
chain slot by slot, which is what the op means.
"""

from __future__ import annotations

import functools

import numpy as np

from lowbit.dtypes import DType, FloatType, IntType, dtype
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import BF16, F16, F32, I32, VectorType
from lowbit.transforms import _values as vals
from lowbit.transforms._tiles import scalars

__all__ = ["Gathered", "fast_cast", "lower_dequant"]

_F32 = dtype("f32")
_H2 = {"f16": VectorType(F16, 2), "bf16": VectorType(BF16, 2)}
#: (magic exponent bits of the value M, M, mantissa bits) per target
_MAGIC = {"f16": (0x6400, 1024.0, 10), "bf16": (0x4300, 128.0, 7)}


class Gathered:
    """Where a tile's codes sit: per slot, the word register, the shift of its bits, and that shift per thread."""

    __slots__ = ("slots",)

    def __init__(self, slots: list[tuple[Operand, Operand, np.ndarray]]) -> None:
        self.slots = slots


def _static_positions(tile) -> Gathered | None:  # noqa: ANN001
    """The positions of a words-form tile's slots (the same in every thread)."""
    if tile.wrds is None:
        return None
    bits = tile.dtype.bits
    out = []
    for j in range(tile.slots):
        w, sh = divmod(j * bits, 32)
        if sh + bits > 32:
            return None  # straddles two words
        out.append((tile.wrds[w], Const(sh, I32), np.full(1, sh)))
    return Gathered(out)


# ----------------------------------------------------------------------------------------------- helpers


def _native(ctx, dst: str) -> bool:  # noqa: ANN001
    from lowbit.arch import target  # noqa: PLC0415

    return dst == "f16" or target(ctx.arch).supports("bf16x2.arith")


def _pair_const(ctx, lo: float, hi: float, dst: str) -> Operand:  # noqa: ANN001
    key = ("h2const", lo, hi, dst)
    got = ctx.find(key)
    if got is None:
        vt = _H2[dst]
        got = ctx.b.op(S.Pack, vt, (Const(lo, vt.elem), Const(hi, vt.elem)), hint="k2")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _h2(ctx, w: Operand, dst: str) -> Operand:  # noqa: ANN001
    return ctx.b.cast("bitcast", w, _H2[dst], "dq") if w.type == I32 else w


def _i32(ctx, h: Operand) -> Operand:  # noqa: ANN001
    return ctx.b.cast("bitcast", h, I32, "w") if h.type != I32 else h


def _mul(ctx, a: Operand, b: Operand, dst: str) -> Operand:  # noqa: ANN001
    """``a * b`` on pairs, rounded once (bf16x2 below sm_90: ``fma(a, b, -0)``)."""
    if _native(ctx, dst):
        return ctx.b.binary("fmul", _h2(ctx, a, dst), _h2(ctx, b, dst), "dq")
    return ctx.b.fma(_h2(ctx, a, dst), _h2(ctx, b, dst), _pair_const(ctx, -0.0, -0.0, dst), "dq")


def _shifted(ctx, w: Operand, s: int) -> Operand:  # noqa: ANN001
    """``w >> s`` (``s > 0``) or ``w << -s``, once per word and shift."""
    if s == 0:
        return w
    key = ("dq_shift", id(w), s)
    got = ctx.find(key)
    if got is None:
        got = ctx.b.binary("lshr" if s > 0 else "shl", w, Const(abs(s), I32), "dqs")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _byte_index(ctx, sh: Operand, delta: int) -> Operand | int:  # noqa: ANN001
    """The byte ``(sh + delta) / 8`` of a code at bit ``sh`` after its word moved by ``delta`` bits."""
    if isinstance(sh, Const):
        return (int(sh.value) + delta) // 8
    key = ("dq_byte", id(sh), delta)
    got = ctx.find(key)
    if got is None:
        b = ctx.b
        x = b.binary("add", sh, Const(delta, I32), "pj") if delta else sh
        got = b.binary("lshr", x, Const(3, I32), "pj")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _selector(ctx, nibbles: list[tuple[Operand | int, int]]) -> Operand:  # noqa: ANN001
    """A ``prmt`` selector from four (byte index, added constant) nibbles, computed once per thread if needed."""
    if all(isinstance(j, int) for j, _ in nibbles):
        return Const(sum(((j + c) & 0xF) << (4 * i) for i, (j, c) in enumerate(nibbles)), I32)  # type: ignore[operator]
    key = ("dq_sel", tuple((id(j) if not isinstance(j, int) else j, c) for j, c in nibbles))
    got = ctx.find(key)
    if got is None:
        b = ctx.b
        const = 0
        acc: Operand | None = None
        for i, (j, c) in enumerate(nibbles):
            if isinstance(j, int):
                const += ((j + c) & 0xF) << (4 * i)
                continue
            const += (c & 0xF) << (4 * i)
            term = b.binary("shl", j, Const(4 * i, I32), "ps") if i else j
            acc = term if acc is None else b.binary("or", acc, term, "ps")
        got = b.binary("add", acc, Const(const, I32), "psel") if const else acc
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _aligned_entries(ctx, entries: list[tuple[Operand, Operand, np.ndarray]]) -> list:  # noqa: ANN001
    """The pair's (word, bit, per-thread bits) with the first code's bit inside its byte the same in every thread.

    When it differs from thread to thread (1- and 2-bit codes of a B fragment: thread t's pair starts at bit
    2t or 4t of a word), both words move right by that offset -- one shift per word and thread pattern,
    shared by every pair with the same pattern -- and the positions follow.
    """
    p0 = np.asarray(entries[0][2])
    if len(np.unique(p0 % 8)) == 1 or isinstance(entries[0][1], Const):
        return entries
    b = ctx.b
    pattern = tuple(int(x) for x in p0 % 8)
    vkey = ("dq_vshift", id(entries[0][1]))
    v = ctx.find(vkey)
    if v is None:
        v = b.binary("and", entries[0][1], Const(7, I32), "dqv")
        ctx.put(vkey, v)
    out = []
    for w, sh, p in entries:
        u = ctx.find(("dq_vword", id(w), id(v)))
        if u is None:
            u = b.binary("lshr", w, v, "dqv")
            ctx.put(("dq_vword", id(w), id(v)), u)
        sh2 = ctx.find(("dq_vbit", id(sh), id(v)))
        if sh2 is None:
            sh2 = b.binary("sub", sh, v, "dqv")
            ctx.put(("dq_vbit", id(sh), id(v)), sh2)
        out.append((u, sh2, np.asarray(p) - p0 % 8))
    return out


def _place_pair(ctx, pos: Gathered, m: int, B: int, target: callable, high: bool,
                second: Operand | None = None):  # noqa: ANN001,ANN202
    """One ``prmt`` putting slot ``m``'s and ``m + 1``'s codes each into the low (``high=False``) or high byte of
    its half, at the bit offset ``target(q)`` inside that byte (q: its offset in its word's byte).

    Returns ``(register, (q0, q1))`` -- the codes' bit offsets inside their halves -- or None when the
    positions do not allow it.  With ``second`` (a register) the other byte of each half comes from it.
    """
    n = len(pos.slots)
    picks = []
    for w, sh, p in _aligned_entries(ctx, [pos.slots[m], pos.slots[m + 1 if m + 1 < n else m]]):
        q = np.unique(np.asarray(p) % 8)
        if len(q) != 1:
            return None
        q = int(q[0])
        want = target(q)
        if want is None:
            return None
        d = want - q  # move the word left by d bits (right when negative)
        if np.any(np.asarray(p) + d < 0) or np.any(np.asarray(p) + d + B > 32):
            return None
        picks.append((_shifted(ctx, w, -d), _byte_index(ctx, sh, d), want))
    (a, j0, q0), (c, j1, q1) = picks
    if a is c or (isinstance(a, Const) and isinstance(c, Const) and a.value == c.value):
        src_b = second if second is not None else a
        base1 = 0
    elif second is None:
        src_b, base1 = c, 4
    else:
        return None  # two words and a filler: three sources
    fill = (4, 0) if second is not None else None
    if high:
        nib = [fill or (j0, 0), (j0, 0), fill or (j1, base1), (j1, base1)]
    else:
        nib = [(j0, 0), fill or (j0, 0), (j1, base1), fill or (j1, base1)]
    x = ctx.b.op(S.Prmt, I32, a, src_b, _selector(ctx, nib), hint="dq")
    return x, (q0 + (8 if high else 0), q1 + (8 if high else 0))


def _split_pair(ctx, pos: Gathered, m: int, B: int, lim: int, top: bool = False):  # noqa: ANN001,ANN202
    """Slots ``m`` and ``m + 1`` when one word already holds them at bits ``s`` and ``s + 16`` (kernel-order
    weights): that word, shifted right by ``d`` so that ``s - d + B <= lim``, *is* the pair -- no ``prmt``.

    ``d`` is 0 when the codes fit where they are, else the code's byte (``s - s % 8``, one shift per word
    shared by the pairs of that byte) or ``s`` itself.  ``top``: the codes go to the top of their halves
    instead (``d = s + B - 16``, a left shift when negative; the float path).  Returns ``(register, (q, q))``
    or None.
    """
    got = _split_word(pos, m)
    if got is None:
        return None
    w0, s = got
    if s + B > 16:
        return None
    if top:
        return _shifted(ctx, w0, s + B - 16), (16 - B, 16 - B)
    d = next((d for d in (0, s - s % 8, s) if s - d + B <= lim), None)
    if d is None:
        return None
    return _shifted(ctx, w0, d), (s - d, s - d)


def _place_planes(ctx, planes: list, m: int, base: int, high: bool, first: tuple[int, int] | None):  # noqa: ANN001,ANN202
    """A pair's codes assembled from their bit planes: each plane's bits placed at ``base + offset`` of the
    low (or high) byte of each half by its own ``prmt``, merged by one ``lop3`` a plane.

    ``first``: ``(constant, lut)`` of the top plane's ``lop3`` (the integer path ORs the magic and flips the
    sign there); otherwise planes are ANDed with their masks.  Returns (register, q) like :func:`_place_pair`.
    """
    b = ctx.b
    acc = None
    q = None
    for g, off, w in sorted(planes, key=lambda p: -p[1]):  # the top plane first
        got = _place_pair(ctx, g, m, w, lambda _q, o=off: base + o if base + o + w <= 8 else None, high)
        if got is None:
            return None
        x, _ = got
        sh = base + off + (8 if high else 0)
        mask = ((1 << w) - 1) << sh
        mask |= mask << 16
        if acc is None:
            acc = (b.lop3(x, Const(mask, I32), Const(first[0], I32), first[1], hint="dq") if first is not None
                   else b.binary("and", x, Const(mask, I32), "dq"))  # fmt: skip
        else:
            acc = b.lop3(x, Const(mask, I32), acc, 0xEA, hint="dq")  # (x & mask) | acc
        q = base + (8 if high else 0)
    return acc, (q, q)


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


def _thread_reg(ctx, key: tuple, make) -> Operand:  # noqa: ANN001
    got = ctx.find(key)
    if got is None:
        got = make(ctx.b)
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
    b = ctx.b

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


def _entries(g, m: int) -> tuple:  # noqa: ANN001
    n = len(g.slots)
    return g.slots[m], g.slots[m + 1 if m + 1 < n else m]


def _split_word(g, m: int) -> tuple[Operand, int] | None:  # noqa: ANN001
    """``(word, s)`` when slots ``m`` and ``m + 1`` of the plane ``g`` sit at bits ``s`` and ``s + 16`` of one word
    in every thread (kernel order, layout 3), else None."""
    if m + 1 >= len(g.slots):
        return None
    (w0, s0, p0), (w1, s1, p1) = g.slots[m], g.slots[m + 1]
    if w0 is not w1 or not (isinstance(s0, Const) and isinstance(s1, Const)):
        return None
    s = int(s0.value)
    if int(s1.value) != s + 16 or np.any(np.asarray(p0) != s) or np.any(np.asarray(p1) != s + 16):
        return None
    return w0, s


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


# ----------------------------------------------------------------------------------------------- integers


def _int_ok(src: DType, dst: str, zero_dt: DType | None) -> bool:
    if not isinstance(src, IntType) or src.name.startswith("bipolar") or src.bits > 8:
        return False
    B = src.bits
    _, M, room = _MAGIC[dst]
    if B > room:
        return False
    if zero_dt is not None:
        if not isinstance(zero_dt, IntType) or zero_dt.name.startswith("bipolar") or zero_dt.bits > 8:
            return False
        o = (1 << (B - 1)) if src.is_signed else 0
        if int(zero_dt.min) + o < 0 or int(zero_dt.max) + o >= M:
            return False  # M + z + o must be a magic number of the target
    return True


def _zero_const(ctx, z_lo: Operand, z_hi: Operand, q: tuple[int, int], o: int, dst: str) -> Operand:  # noqa: ANN001
    """``(-(M 2**-q0 + o + z_lo), -(M 2**-q1 + o + z_hi))`` as one pair, from the zero registers' values."""
    key = ("dq_zero", id(z_lo), id(z_hi), q, o, dst)
    got = ctx.find(key)
    if got is not None:
        return got  # type: ignore[return-value]
    b = ctx.b
    bits, M, _ = _MAGIC[dst]
    tkey = ("dq_zmagic", id(z_lo), id(z_hi), o, dst)
    t = ctx.find(tkey)
    if t is None:  # M + z + o per half: its bits are the magic plus the integer z + o (0 <= z + o < M)
        lo = b.binary("add", ctx.i32(z_lo), Const(bits + o, I32), "dz")
        if z_hi is z_lo:
            t = b.binary("mul", lo, Const(0x10001, I32), "dz")
        else:
            hi = b.binary("add", ctx.i32(z_hi), Const(bits + o, I32), "dz")
            t = b.binary("or", lo, b.binary("shl", hi, Const(16, I32), "dz"), "dz")
        ctx.put(tkey, t)
    if q == (0, 0):
        got = b.binary("xor", t, Const(0x80008000, I32), "dz")  # -(M + z + o): flip both signs
    else:  # (M - M 2**-q) - (M + z + o), exact: integers (or 2**-q multiples) below 2 M
        k = _pair_const(ctx, M - M * 2.0 ** -q[0], M - M * 2.0 ** -q[1], dst)
        if _native(ctx, dst):
            got = b.binary("fsub", k, _h2(ctx, t, dst), "dz")
        else:
            got = b.fma(_h2(ctx, t, dst), _pair_const(ctx, -1.0, -1.0, dst), k, "dz")
    ctx.put(key, got)
    return got  # type: ignore[return-value]


def _int_pairs(ctx, codes, pos: Gathered, dst: str, zs: list[Operand] | None, factor: float) -> list[Operand] | None:  # noqa: ANN001
    src: IntType = codes.dtype
    B, n = src.bits, codes.slots
    signed = src.is_signed
    o = (1 << (B - 1)) if signed else 0
    magic, M, room = _MAGIC[dst]
    b = ctx.b
    out = []
    plan = None
    if isinstance(pos, list):
        zkeys = None if zs is None else [(id(zs[m]), id(zs[m + 1] if m + 1 < n else zs[m])) for m in range(0, n, 2)]
        plan = _split_plan(ctx, pos, n, B, room, zkeys)
    for m in range(0, n, 2):
        if B == 8 and dst == "f16":  # the code is the whole low byte: prmt brings the magic byte 0x64 too
            got = _place_pair(ctx, pos, m, B, lambda q: q if q == 0 else None, False, second=Const(0x64646464, I32))
            if got is None:
                return None
            x, q = got
            if signed:
                x = b.binary("xor", x, Const(0x00800080, I32), "dq")
        elif isinstance(pos, list):  # bit planes: the magic and the sign flip go in with the top plane
            got = _int_planes(ctx, pos, m, B, room, magic, signed, plan[m // 2] if plan is not None else None)
            if got is None:
                return None
            x, q = got
        else:
            lim = min(room, 8)  # inside one byte, and inside the target's mantissa
            got = _split_pair(ctx, pos, m, B, room) if B < 8 else None  # (8 bits: prmt brings the magic)
            if got is None:
                got = _place_pair(ctx, pos, m, B, lambda q: q if q + B <= lim else lim - B, False)
            if got is None:
                return None
            x, q = got
            keep = ((1 << B) - 1) << q[0] | (((1 << B) - 1) << q[1]) << 16
            mag = magic | magic << 16
            flip = ((1 << (q[0] + B - 1)) | (1 << (q[1] + B - 1)) << 16) if signed else 0
            # (x & keep) ^ (magic | flip): lop3 f(a, b, c) = (a & b) ^ c, lut (0xF0 & 0xCC) ^ 0xAA = 0x6A
            x = b.lop3(x, Const(keep, I32), Const(mag | flip, I32), 0x6A, hint="dq")
        s0, s1 = 2.0 ** -q[0], 2.0 ** -q[1]
        if zs is None:
            c = _pair_const(ctx, -(M * s0 + o) * factor, -(M * s1 + o) * factor, dst)
            r = b.fma(_h2(ctx, x, dst), _pair_const(ctx, s0 * factor, s1 * factor, dst), c, "dq")
        else:
            z_lo, z_hi = zs[m], zs[m + 1] if m + 1 < n else zs[m]
            r = b.fma(_h2(ctx, x, dst), _pair_const(ctx, s0, s1, dst), _h2(ctx, _zero_const(ctx, z_lo, z_hi, q, o, dst), dst), "dq")
        out.append(r)
    return out


# 8-bit integer codes into bf16: bf16's magic (M = 128) holds 7 bits, so each code goes through an f32 whose
# pattern 0x4B4000cc *is* 2**23 + 2**22 + c (one prmt drops the code byte into it; signed codes have their sign
# bit flipped first, once per word, so the byte is c + o).  One f32 sub of the exact 2**23 + 2**22 + o + z (its
# bits are the magic plus the integer o + z: one integer add per zero register, no conversion) leaves c - z
# exactly.  Then either ("pair") one cvt.rn.bf16x2.f32 per pair -- exact, when every c - z is a bf16 value --
# and one bf16x2 mul by the scale pair, or ("f32") one f32 mul by the scale's f32 value per code (exact:
# c - z has <= 9 bits, the scale 8) and one rounding cvt per pair.  Both round once, as the f32 chain does.
# Per pair: 2 prmt, 2 sub, 1 cvt, then 1 mul ("pair") or 2 ("f32").  (A split into a 7-bit bf16 magic for
# the low bits and a second magic for bit 7 costs 1 prmt, 2 lop3, >= 3 packed fma/sub and the mul: no cheaper.)
_F32_MAGIC = 0x4B400000  # 2**23 + 2**22: integers in [-2**22, 2**22) added to it stay in its binade
_F32_COST = {"pair": {"prmt": 2, "sub": 2, "cvt": 1, "mul": 1}, "f32": {"prmt": 2, "sub": 2, "cvt": 1, "mul": 2}}


def _f32_forms(src: DType, dst: str, zero_dt: DType | None, factor: float) -> list[str]:
    """The f32-magic forms exact for ``src`` codes (and ``zero_dt`` zeros) into ``dst``, cheapest first; []
    when the f32 magic does not apply (only 8-bit integer codes into bf16, where the integer path refuses)."""
    if dst != "bf16" or factor != 1.0 or not isinstance(src, IntType) or src.bits != 8:
        return []
    if src.name.startswith("bipolar"):
        return []
    zr = (0, 0)
    if zero_dt is not None:
        if not isinstance(zero_dt, IntType) or zero_dt.name.startswith("bipolar") or zero_dt.bits > 8:
            return []
        zr = (int(zero_dt.min), int(zero_dt.max))
    diffs = np.arange(int(src.min) - zr[1], int(src.max) - zr[0] + 1, dtype=np.float64)
    forms = ["pair", "f32"] if bool(np.all(_exact(diffs, dst))) else ["f32"]
    return sorted(forms, key=lambda f: sum(_F32_COST[f].values()))


def _f32_magic(ctx, codes, pos, zero, scale, dst: str, form: str) -> list[Operand] | None:  # noqa: ANN001
    """The result words of 8-bit integer codes into ``dst`` through the f32 magic (see above)."""
    if isinstance(pos, list):
        return None  # bit planes: the code is not one byte of a word
    n = codes.slots
    if any(np.any(np.asarray(p) % 8) for _, _, p in pos.slots):
        return None
    b = ctx.b
    o = 128 if codes.dtype.is_signed else 0
    magic = Const(_F32_MAGIC, I32)

    def value(m: int) -> Operand:  # 2**23 + 2**22 + c + o as an f32
        w, sh, _ = pos.slots[m]
        if o:  # every byte's sign bit, once per word
            w = _thread_reg(ctx, ("dq_flip8", id(w)),
                            lambda b_, w=w: b_.binary("xor", w, Const(0x80808080, I32), "dqf"))  # fmt: skip
        sel = _selector(ctx, [(_byte_index(ctx, sh, 0), 0), (5, 0), (6, 0), (7, 0)])
        return b.cast("bitcast", b.op(S.Prmt, I32, w, magic, sel, hint="dq"), F32, "dqf")

    def bias(z: Operand | None) -> Operand:  # 2**23 + 2**22 + o + z, exact: its bits are the magic plus o + z
        if z is None:
            return Const(float(2**23 + 2**22 + o), F32)
        return _thread_reg(ctx, ("dq_f32zero", id(z), o), lambda b_: b_.cast(
            "bitcast", b_.binary("add", ctx.i32(z), Const(_F32_MAGIC + o, I32), "dz"), F32, "dz"))

    def s32(s: Operand) -> Operand:  # the scale's f32 value (exact), once per scale register
        return _thread_reg(ctx, ("dq_s32", id(s)), lambda b_: vals.convert(b_, s, scale.dtype, _F32))

    zs = scalars(ctx, zero) if zero is not None else None
    ss = scalars(ctx, scale) if scale is not None and form == "f32" else None
    sp = _scale_pairs(ctx, scale, dst) if scale is not None and form == "pair" else None
    out = []
    for k, m in enumerate(range(0, n, 2)):
        halves = []
        for j in (m, min(m + 1, n - 1)):
            v = vals.binary(b, "sub", value(j), bias(zs[j] if zs is not None else None), _F32)
            if ss is not None:
                v = vals.binary(b, "mul", v, s32(ss[j]), _F32)
            halves.append(v)
        r = b.op(S.CvtPack, _H2[dst], "bf16x2.rn", halves[0], halves[1], hint="cv")
        if sp is not None:
            r = _mul(ctx, r, sp[k], dst)
        out.append(_i32(ctx, r))
    return out


def _factor_exact(src: IntType, dst: str, factor: float) -> bool:
    """Whether ``c * factor`` and the fma constants ``(M 2**-q + o) * factor`` are exact in ``dst`` for every code."""
    _, M, _ = _MAGIC[dst]
    o = (1 << (src.bits - 1)) if src.is_signed else 0
    vals_ = [float(c) * factor for c in range(int(src.min), int(src.max) + 1)]
    vals_ += [-(M * 2.0**-q + o) * factor for q in range(8)] + [2.0**-q * factor for q in range(8)]
    return bool(np.all(_exact(np.asarray(vals_, dtype=np.float64), dst)))


def _exact(x: np.ndarray, dst: str) -> np.ndarray:
    """Per element: whether the float64 ``x`` is a value of ``dst`` (NaN counts as one)."""
    t = dtype(dst)
    with np.errstate(all="ignore"):
        back = np.asarray(t.decode(t.encode(x)), dtype=np.float64)
    return (back == x) & (np.signbit(back) == np.signbit(x)) | (np.isnan(back) & np.isnan(x))


# ----------------------------------------------------------------------------------------------- floats


@functools.lru_cache(maxsize=None)
def float_map(src: DType, dst: str, factor: float) -> tuple[float, bool] | None:
    """``(m, nan_fix)``: the factor ``m`` that turns every code's field pattern in ``dst`` into its value times
    ``factor``, exactly, and whether the NaN codes (all-ones fields) need the fix-up.

    The pattern puts the code's sign at bit 15 and its exponent and mantissa fields into the target's with
    the mantissa's top aligned.  None when some code (NaN and infinity codes included) does not map, or
    the product is not exact in ``dst``.
    """
    if not isinstance(src, FloatType) or src.bits > 8 or getattr(src, "table", None) is not None:
        return None
    _, _, tm = _MAGIC[dst]
    X, Y = src.exponent, src.mantissa
    te = 5 if dst == "f16" else 8
    if X > te or Y > tm:
        return None
    codes = np.arange(1 << src.bits, dtype=np.uint64)
    values = np.asarray(src.decode(codes), dtype=np.float64)
    em = codes & ((1 << (X + Y)) - 1)
    sign = (codes >> (X + Y)) & 1 if src.signed else np.zeros_like(codes)
    pat = (sign << 15 | em << (tm - Y)).astype(np.uint16)
    pv = np.asarray(dtype(dst).decode(pat.astype(np.uint64)), dtype=np.float64)
    tb = 15 if dst == "f16" else 127
    k = (tb - src.bias)  # pattern = value * 2**(bias - tb)
    mult = 2.0**k * factor
    with np.errstate(all="ignore"):
        got = pv * mult  # exact in float64 (a power of two); it must also be a dst value: one exact mul.f16x2
        want = values * factor
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    same &= _exact(got, dst)
    nan_fix = False
    if not same.all():
        # the "fn" convention: NaN is the code whose exponent and mantissa bits are all ones, which the field
        # pattern makes a finite number -- fixable with a carry test; any other mismatch is not
        full = em == (1 << (X + Y)) - 1
        if not (src.signed and np.array_equal(~same, full) and np.isnan(values[full]).all()):
            return None
        nan_fix = True
    if not _exact(np.asarray([mult]), dst).all():
        return None
    return mult, nan_fix


def _float_pairs(ctx, codes, pos: Gathered, dst: str, mult: float, nan_fix: bool) -> list[Operand] | None:  # noqa: ANN001
    src: FloatType = codes.dtype
    B, n = src.bits, codes.slots
    X, Y = src.exponent, src.mantissa
    _, _, tm = _MAGIC[dst]
    top = tm + X  # the exponent field's top bit + 1 in the target half
    b = ctx.b
    out = []
    for m in range(0, n, 2):
        # each code to the top of its byte (its sign, or an unsigned format's exponent top, at bit 7), that byte
        # the high byte of its half
        sgn = src.signed
        if isinstance(pos, list) and not nan_fix:  # every bit straight to its field: the pattern itself
            x = _float_planes(ctx, pos, m, src, tm)
            if x is None:
                return None
            r = _h2(ctx, x, dst)
            if mult != 1.0:
                r = _mul(ctx, r, _pair_const(ctx, mult, mult, dst), dst)
            out.append(r)
            continue
        if isinstance(pos, list):
            got = _place_planes(ctx, pos, m, 8 - B, True, None)
        else:
            got = _split_pair(ctx, pos, m, B, 16, top=True) or _place_pair(
                ctx, pos, m, B, lambda q: 8 - B if q <= 8 - B else None, True)
        if got is None:
            return None
        t, _ = got
        em_mask = ((1 << (X + Y)) - 1) << (tm - Y)
        em2 = em_mask | em_mask << 16
        if sgn and top == 15:  # the fields are where the target wants them (e5m2 -> f16): keep them and the sign
            x = b.binary("and", t, Const(em2 | 0x80008000, I32), "dq")
        elif sgn:
            shift = 15 - top  # the fields now end at bit 15 (below the sign): move them down to the target's
            e = b.binary("lshr", t, Const(shift, I32), "dq") if shift else t
            if nan_fix:  # all-ones fields carry into bit 15 of y; prmt spreads that bit over the half's high byte
                src_em = ((1 << (X + Y)) - 1) << (16 - B)
                y = b.binary("add", b.binary("and", t, Const(src_em | src_em << 16, I32), "dqn"),
                             Const((1 << (16 - B)) * 0x10001, I32), "dqn")  # fmt: skip
                nanm = b.op(S.Prmt, I32, y, Const(0, I32), Const(0xB494, I32), hint="dqn")  # [0, sign(y1), 0, sign(y3)]
                # (t & 0x8000) | (nanm & ~0x8000): the sign, and ones over the exponent of a NaN code
                sg = b.lop3(t, nanm, Const(0x80008000, I32), 0xE4, hint="dq")
            else:
                sg = b.binary("and", t, Const(0x80008000, I32), "dq")
            x = b.lop3(e, Const(em2, I32), sg, 0xEA, hint="dq")  # (a & b) | c
        else:
            shift = 16 - top
            e = b.binary("lshr", t, Const(shift, I32), "dq") if shift else t
            x = b.binary("and", e, Const(em2, I32), "dq")
        r = _h2(ctx, x, dst)
        if mult != 1.0:
            r = _mul(ctx, r, _pair_const(ctx, mult, mult, dst), dst)
        out.append(r)
    return out


# ----------------------------------------------------------------------------------------------- entry points


def _scale_pairs(ctx, st, dst: str) -> list[Operand]:  # noqa: ANN001
    ss = scalars(ctx, st)
    out = []
    for m in range(0, len(ss), 2):
        lo, hi = ss[m], ss[m + 1] if m + 1 < len(ss) else ss[m]
        key = ("dq_scale", id(lo), id(hi))
        got = ctx.find(key)
        if got is None:
            got = ctx.b.op(S.Pack, _H2[dst], (lo, hi), hint="s2")
            ctx.put(key, got)
        out.append(got)
    return out


def _fast(ctx, codes, zero, scale, dst: str, factor: float) -> list[Operand] | None:  # noqa: ANN001
    if codes.slots < 2:
        return None
    pos = getattr(codes, "gath", None) or _static_positions(codes) or getattr(codes, "planes", None)
    if pos is None:
        return None
    if isinstance(pos, list):
        if sum(w for _, _, w in pos) != codes.dtype.bits:
            return None
        if len(pos) == 1 and pos[0][1] == 0:
            pos = pos[0][0]  # one plane: the codes' own gathering view
    if scale is not None and scale.dtype.name != dst:
        return None
    src = codes.dtype
    if not _int_ok(src, dst, zero.dtype if zero is not None else None) and (
            forms := _f32_forms(src, dst, zero.dtype if zero is not None else None, float(factor))):
        return _f32_magic(ctx, codes, pos, zero, scale, dst, forms[0])  # 8-bit codes into bf16: the f32 magic
    if _int_ok(src, dst, zero.dtype if zero is not None else None):
        if zero is not None and factor != 1.0:
            return None
        if factor != 1.0 and not _factor_exact(src, dst, factor):
            return None
        pairs = _int_pairs(ctx, codes, pos, dst, scalars(ctx, zero) if zero is not None else None, factor)
    elif zero is None and (fm := float_map(src, dst, float(factor))) is not None:
        pairs = _float_pairs(ctx, codes, pos, dst, *fm)
    else:
        return None
    if pairs is None:
        return None
    if scale is not None:
        pairs = [_mul(ctx, r, s, dst) for r, s in zip(pairs, _scale_pairs(ctx, scale, dst))]
    return [_i32(ctx, r) for r in pairs]


def fast_cast(ctx, tile, dst: DType) -> list[Operand] | None:  # noqa: ANN001
    """The result words of ``cast(codes, dst)`` for f16/bf16, two codes per instruction; None when no fast form."""
    if dst.name not in _H2:
        return None
    return _fast(ctx, tile, None, None, dst.name, 1.0)


class F32Tail:
    """The f32 chain's steps after the codes' value, per slot: ``- f32(zero)``, ``* f32(scale)`` (each zero or
    scale register converted once), and the pairwise rounding to f16x2/bf16x2 words."""

    def __init__(self, ctx, zero, scale) -> None:  # noqa: ANN001
        self.b = ctx.b
        self.zero, self.scale = zero, scale
        self.zs = scalars(ctx, zero) if zero is not None else None
        self.ss = scalars(ctx, scale) if scale is not None else None
        self.memo: dict[tuple[int, str], Operand] = {}

    def f32(self, r: Operand, dt: DType, tag: str) -> Operand:
        key = (id(r), tag)
        if key not in self.memo:
            self.memo[key] = vals.convert(self.b, r, dt, _F32)
        return self.memo[key]

    def finish(self, v: Operand, i: int) -> Operand:
        """Slot ``i``'s f32 value ``v`` minus its zero, times its scale."""
        if self.zs is not None:
            v = vals.binary(self.b, "sub", v, self.f32(self.zs[i], self.zero.dtype, "z"), _F32)
        if self.ss is not None:
            v = vals.binary(self.b, "mul", v, self.f32(self.ss[i], self.scale.dtype, "s"), _F32)
        return v

    def pack(self, res: list[Operand], dst: str) -> list[Operand]:
        """The f32 values rounded two at a time into ``dst`` words (an odd last slot pairs with 0)."""
        kind = "f16x2.rn" if dst == "f16" else "bf16x2.rn"
        out = []
        for i in range(0, len(res), 2):
            hi = res[i + 1] if i + 1 < len(res) else Const(0.0, F32)
            out.append(self.b.cast("bitcast", self.b.op(S.CvtPack, _H2[dst], kind, res[i], hi, hint="cv"), I32, "w"))
        return out


def _general(ctx, op, codes, zero, scale, dst: DType) -> list[Operand]:  # noqa: ANN001
    """The f32 chain, slot by slot (what the op means), rounded in pairs to the result dtype."""
    tail = F32Tail(ctx, zero, scale)
    res = []
    for i, c in enumerate(scalars(ctx, codes)):
        v = tail.f32(c, codes.dtype, "c")
        if op.factor != 1.0:
            v = vals.binary(ctx.b, "mul", v, Const(float(op.factor), F32), _F32)
        res.append(tail.finish(v, i))
    return tail.pack(res, dst.name)


def lower_dequant(ctx, op) -> list[Operand]:  # noqa: ANN001
    """The result words of a ``dequant``: the packed forms where they apply, else the f32 chain."""
    codes = ctx.tile(op.codes, op)
    zero = ctx.tile(op.zero, op) if op.zero is not None else None
    scale = ctx.tile(op.scale, op) if op.scale is not None else None
    dst = op.result.type.dtype
    if op.table is not None:  # codebook codes with a pair table (lowbit.transforms._lower_codebook)
        from lowbit.transforms._lower_codebook import lower_table  # noqa: PLC0415

        got = lower_table(ctx, op, codes, zero, scale)
        if got is not None:
            return got
    fast = _fast(ctx, codes, zero, scale, dst.name, float(op.factor))
    return fast if fast is not None else _general(ctx, op, codes, zero, scale, dst)


