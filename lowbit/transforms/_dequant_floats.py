"""Dequantisation of float codes ``eXmY`` (at most 8 bits): fields moved into f16/bf16, or one hardware ``cvt``.

Part of :mod:`lowbit.transforms._lower_dequant` (its docstring's **Floats**
paragraph).  Two forms, and :func:`float_pairs` picks one per tile:

* **the bit path** (every target): :func:`float_map` checks on the format's
  whole table that moving the fields gives ``value * 2**k`` for every code;
  :func:`_float_pairs` builds the pairs (lop3/shifts, then one ``mul`` by
  ``2**-k`` times the op's factor unless that is 1 -- with ``FOLD`` the host
  put ``2**k`` into the scales and the op's factor is ``2**-k``: no ``mul``).
* **the hardware form** (:func:`hw_kind`, :func:`_hw_pairs`): the pair's two
  codes moved into the b16 (b8 for e2m1) operand the packed ``cvt.rn.f16x2.<f>x2``
  wants -- codes already side by side need one shift (or none), others one
  ``prmt`` (FP6: and a mask clearing each byte's two top bits) -- then the
  ``cvt``, which gives each code's *value* exactly; the op's factor (``2**-k``
  under ``FOLD``) is then one exact ``mul``.  Only into f16 (there is no
  bf16x2 destination), only on the targets with the instruction
  (``cvt.e4m3x2``/``cvt.e5m2x2``: sm_89, sm_90, sm_90a and later;
  ``cvt.e2m1x2``/``e2m3x2``/``e3m2x2``: sm_100a, sm_120a; see
  :mod:`lowbit.arch.targets`), and only for formats whose every code -- NaN
  and infinity codes included -- the instruction decodes to what the op
  means (checked on the whole table against the OCP definition of the
  instruction's format: the NaN-free twin of e4m3fn, whose all-ones code is
  a finite 480, does not qualify).

**The rule** (:func:`float_pairs`): where both forms apply, each is built for
the tile and rolled back, and the one with fewer instructions *on the codes*
wins: an instruction counts when it reads the code words or a value computed
from them inside the current region (the loop body); what depends only on
the thread, constants and values made outside the loop -- prmt selectors,
byte indices, constant pairs -- is loop-invariant (LLVM hoists it) and
counts 0, as do bitcasts and truncations (register renames).  The scale
multiply, common to both, is not counted; a tie keeps the bit path.  Where
only one applies, it is used.  On targets without the instruction nothing is
tried, so their code is exactly what it was before the hardware form existed.
"""

from __future__ import annotations

import functools

import numpy as np

from lowbit.dtypes import DType, FloatType, dtype
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.control import For, If
from lowbit.ir.simt.types import I16, I32
from lowbit.transforms._dequant_pairs import (
    _H2, _MAGIC, Gathered, _aligned_entries, _byte_index, _entries, _h2, _mul, _pair_const, _place_pair,
    _place_planes, _selector, _shifted, _split_pair, _split_word,
)
from lowbit.transforms._dequant_planes import _float_planes
from lowbit.transforms._dequant_ints import _exact


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


# ----------------------------------------------------------------------------------------------- the choice


def float_pairs(ctx, codes, pos, dst: str, factor: float) -> list[Operand] | None:  # noqa: ANN001
    """The pairs of a float ``dequant`` without zero: the bit path or the hardware form, whichever is cheaper for
    this tile (the module docstring's rule); None when neither applies."""
    src = codes.dtype
    fm = float_map(src, dst, factor)
    kind = hw_kind(src, dst, factor, ctx.arch)
    forms = []
    if fm is not None:
        forms.append(lambda: _float_pairs(ctx, codes, pos, dst, *fm))
    if kind is not None:
        forms.append(lambda: _hw_pairs(ctx, codes, pos, kind, factor))
    if len(forms) < 2:
        return forms[0]() if forms else None
    costs = [_trial_cost(ctx, make, _code_words(pos)) for make in forms]
    ok = [(c, i) for i, c in enumerate(costs) if c is not None]
    if not ok:
        return None
    return forms[min(ok)[1]]()  # the first (the bit path) on a tie


def _trial_cost(ctx, make, words: set[int]) -> int | None:  # noqa: ANN001
    """Instructions on the codes that ``make()`` emits (None when it does not apply), the builder and the memo left
    as before.  ``words``: ids of the registers holding the codes (with every load in the region, the sources)."""
    mark, memo = ctx.b.mark(), dict(ctx.scopes[-1])
    before = ctx.b.region()
    try:
        got = make()
    finally:
        dropped = ctx.b.rollback(mark)
        ctx.scopes[-1].clear()
        ctx.scopes[-1].update(memo)
    if got is None:
        return None
    variant = set(words)
    cost = 0
    for i, op in enumerate((*before, *dropped)):
        data = isinstance(op, (S.Load, S.Shfl, For, If)) or any(id(r) in variant for r in op.operands)
        if not data:
            continue
        variant.update(id(r) for r in op.results)
        if i >= len(before) and not (isinstance(op, S.Cast) and op.kind in ("bitcast", "trunc")):
            cost += 1
    return cost


def _code_words(pos) -> set[int]:  # noqa: ANN001
    """The ids of the registers the tile's codes sit in (every plane's words for bit planes)."""
    planes = [g for g, _, _ in pos] if isinstance(pos, list) else [pos]
    return {id(w) for g in planes for w, _, _ in g.slots}


# ----------------------------------------------------------------------------------------------- hardware cvt

#: the packed hardware conversions to f16x2 (PTX ISA, cvt): kind -> (exponent bits, mantissa bits, bias, specials)
#: of the source format as the instruction reads it (OCP MX v1.0: e4m3 has NaN at S.1111.111 and no inf, e5m2 IEEE
#: inf/NaN, the FP6/FP4 forms neither); the arch feature is ``cvt.<kind>``.
_HW = {"e4m3x2": (4, 3, 7, "fn"), "e5m2x2": (5, 2, 15, "ieee"), "e2m1x2": (2, 1, 1, "none"),
       "e2m3x2": (2, 3, 1, "none"), "e3m2x2": (3, 2, 3, "none")}  # fmt: skip


def _hw_table(kind: str) -> np.ndarray:
    """What ``cvt.rn.f16x2.<kind>`` makes of every code (float64; NaN for NaN), from the format's definition."""
    E, M, bias, special = _HW[kind]
    c = np.arange(1 << (1 + E + M))
    sign = np.where(c >> (E + M) & 1, -1.0, 1.0)
    e, m = c >> M & ((1 << E) - 1), c & ((1 << M) - 1)
    mag = np.where(e == 0, m * 2.0 ** (1 - bias - M), ((1 << M) + m) * 2.0 ** (e - bias - M))
    top = e == (1 << E) - 1
    if special == "fn":
        mag = np.where(top & (m == (1 << M) - 1), np.nan, mag)
    elif special == "ieee":
        mag = np.where(top, np.where(m == 0, np.inf, np.nan), mag)
    return sign * mag


@functools.lru_cache(maxsize=None)
def hw_kind(src: DType, dst: str, factor: float, arch: str) -> str | None:
    """The ``cvt.rn.f16x2.<kind>`` that decodes ``src`` on ``arch`` for a dequant into ``dst`` with ``factor``, or
    None: the target has it, the destination is f16, every code of ``src`` means what the instruction gives
    (NaN and infinities included), and every value times ``factor`` is exactly an f16 (one exact ``mul``)."""
    from lowbit.arch import target  # noqa: PLC0415

    if dst != "f16" or not isinstance(src, FloatType) or getattr(src, "table", None) is not None or src.bits > 8:
        return None
    for kind, (E, M, _, _) in _HW.items():
        if (src.exponent, src.mantissa, src.signed) != (E, M, True) or not target(arch).supports(f"cvt.{kind}"):
            continue
        want = np.asarray(src.decode(np.arange(1 << src.bits, dtype=np.uint64)), dtype=np.float64)
        got = _hw_table(kind)
        same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
        with np.errstate(all="ignore"):
            scaled = got * factor
        if same.all() and _exact(scaled, dst).all():
            return kind
    return None


def _hw_pairs(ctx, codes, pos, kind: str, factor: float) -> list[Operand] | None:  # noqa: ANN001
    """Each pair: its codes into the cvt's operand, one ``cvt.rn.f16x2.<kind>``, one ``mul`` by ``factor`` unless 1."""
    b = ctx.b
    out = []
    for m in range(0, codes.slots, 2):
        x = _hw_operand(ctx, pos, m, codes.dtype.bits)
        if x is None:
            return None
        h = b.op(S.CvtUnpack, _H2["f16"], f"{kind}.f16x2", b.cast("trunc", x, I16, "dq"), hint="dq")
        if factor != 1.0:
            h = _mul(ctx, h, _pair_const(ctx, factor, factor, "f16"), "f16")
        out.append(h)
    return out


def _hw_operand(ctx, pos, m: int, B: int) -> Operand | None:  # noqa: ANN001
    """A register whose low 16 bits hold slots ``m`` and ``m + 1`` as the cvt reads them: slot ``m`` in byte 0 and
    ``m + 1`` in byte 1 (each code in its byte's low bits, the rest 0: FP6's two top bits are cleared), or for
    4-bit codes slot ``m`` in bits 0-3 and ``m + 1`` in bits 4-7 (the bits above do not matter: the operand is
    the low byte).  None when the positions do not allow it."""
    b = ctx.b
    mask = 0x3F3F if B == 6 else None
    if isinstance(pos, list):  # bit planes: each code into the low byte of its half, then bytes 0 and 2 -> 0 and 1
        if B == 4:
            return None
        got = _place_planes(ctx, pos, m, 0, False, None)
        return None if got is None else b.op(S.Prmt, I32, got[0], got[0], Const(0x0020, I32), hint="dq")
    if (kw := _split_word(pos, m)) is not None:  # kernel order: the codes at bits s and s + 16 of one word
        w, s = kw
        if B == 4:  # low nibble from w >> s, high nibble from w >> (s + 12): (a & 0xF) | (b & ~0xF)
            return b.lop3(_shifted(ctx, w, s), _shifted(ctx, w, s + 12), Const(0xF, I32), 0xE4, hint="dq")
        q = s % 8
        if q + B > 8:
            return None
        j = (s - q) // 8
        x = b.op(S.Prmt, I32, _shifted(ctx, w, q), Const(0, I32), Const(j | (j + 2) << 4, I32), hint="dq")
        return b.binary("and", x, Const(mask, I32), "dq") if mask else x
    (w0, sh0, p0), (w1, sh1, p1) = _aligned_entries(ctx, list(_entries(pos, m)))
    p0, p1 = np.asarray(p0), np.asarray(p1)
    if w0 is w1 and B in (4, 8) and np.all(p1 == p0 + B):  # side by side already: the word moved down
        return _var_shift(ctx, w0, sh0)
    if B == 4:
        d = np.unique(p1 - p0)
        if w0 is not w1 or len(d) != 1 or np.any(p0 + 4 > 32):
            return None
        t = _var_shift(ctx, w0, sh0)  # slot m at bits 0-3, slot m + 1 at bit d
        return b.lop3(t, _shifted(ctx, t, int(d[0]) - 4), Const(0xF, I32), 0xE4, hint="dq")
    picks = []
    for w, sh, p in ((w0, sh0, p0), (w1, sh1, p1)):
        q = np.unique(p % 8)
        if len(q) != 1 or int(q[0]) + B > 8:
            return None
        q = int(q[0])
        picks.append((_shifted(ctx, w, q), _byte_index(ctx, sh, -q)))
    (a, j0), (c, j1) = picks
    same = a is c or (isinstance(a, Const) and isinstance(c, Const) and a.value == c.value)
    sel = _selector(ctx, [(j0, 0), (j1, 0 if same else 4), (j0, 0), (j0, 0)])
    x = b.op(S.Prmt, I32, a, a if same else c, sel, hint="dq")
    return b.binary("and", x, Const(mask, I32), "dq") if mask else x


def _var_shift(ctx, w: Operand, sh: Operand) -> Operand:  # noqa: ANN001
    """``w >> sh`` once per word and shift register (a constant shift through :func:`_shifted`)."""
    if isinstance(sh, Const):
        return _shifted(ctx, w, int(sh.value))
    key = ("dq_hw_shift", id(w), id(sh))
    got = ctx.find(key)
    if got is None:
        got = ctx.b.binary("lshr", w, sh, "dqs")
        ctx.put(key, got)
    return got  # type: ignore[return-value]
