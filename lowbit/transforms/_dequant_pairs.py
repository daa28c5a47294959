"""Dequantisation, shared pieces: where a tile's codes sit, and getting the two codes of a pair into one register.

Part of the packed dequantisation family of :mod:`lowbit.transforms._lower_dequant`
(whose docstring explains the scheme).  A pair is the two halves of one
f16x2/bf16x2 register; :class:`Gathered` says, per slot, which word holds the
code and at which bit.  ``prmt`` assembles a pair from the bytes of at most two
source registers, each a code word shifted once per word and amount (memoised
in the lowering context, so every pair of a tile shares them); kernel order
(layout 3) finds both codes at bits ``s`` and ``s + 16`` of one word and needs
no ``prmt`` (:func:`_split_word`).
"""

from __future__ import annotations

import numpy as np

from lowbit.dtypes import dtype
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import BF16, F16, I32, VectorType
from lowbit.transforms._tiles import scalars

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


def _thread_reg(ctx, key: tuple, make) -> Operand:  # noqa: ANN001
    got = ctx.find(key)
    if got is None:
        got = make(ctx.b)
        ctx.put(key, got)
    return got  # type: ignore[return-value]


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
