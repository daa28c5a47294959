"""Codebook codes (nf4, any user table of at most 16 entries) to f16/bf16 two at a time: a pair table or a register table.

A ``dequant`` of codebook codes means ``cast(((f32(T[c]) * factor) - z) * s,
dst)``; the generic lowering computes ``f32(T[c])`` with a compare/select
chain over the table, per element.  Here the two codes of one f16x2 result
register -- consecutive K rows of an mma B fragment -- are looked up
together, in one of three forms, chosen by cost (below).

**The shared pair table** (FLUTE's idea: Guo et al., "Fast Matrix
Multiplications for Lookup Table-Quantized LLMs", 2024): the pair's codes
form one index ``c0 | c1 << B`` and one ``ld.shared`` reads both values.
``select_instructions``' dequantisation rule
(:mod:`~lowbit.transforms._fuse_dequant`) asks :func:`choose` for a form;
for a shared one it gives the ``dequant`` a ``table`` operand and puts
``alloc_shared``, ``pair_table`` (:class:`lowbit.ir.ops.PairTable`) and a
``barrier`` at the start of the program -- before every loop, so the main
loop only reads it -- one table per (form, copies, entries), shared by
every ``dequant`` that wants it.  ``plan_shared`` places it like any buffer.
``pair_table`` is lowered here: each thread writes a few words, its entries
picked from constants.  Two entry widths:

* ``half`` -- 4 bytes an entry: ``(e[c0], e[c1])`` as one f16x2/bf16x2
  word, ``e[c] = f32(T[c]) * factor``.  Taken only when every ``e[c]`` is
  a value of the result dtype, there is no zero and the scale is of the
  result dtype: then one packed ``mul`` by the scale pair rounds
  ``e * s`` once, and the f32 chain's product is exact in f32 (at most 11
  x 11 significant bits), so both round the same number once.  (This is
  what ``lowbit.ops`` launches for nf4: ``_fold.codebook_in`` rounds the
  table to the activation dtype.)
* ``single`` -- 8 bytes an entry: ``(e[c0], e[c1])`` as two f32.  One
  ``ld.shared.v2.f32``, then the rest of the chain in f32 exactly as
  written (``- z``, ``* s``) and one ``cvt.rn.f16x2.f32``: bit-identical
  by construction (a table whose entries no f16/bf16 holds).

*Replication against bank conflicts.*  The 32 lanes of a warp look up 32
independent pairs: random words of a 256-word table, about 3.1 wavefronts
a lookup (:func:`lowbit.arch.banks.expected_table_wavefronts`).  A table
of ``copies`` interleaved copies (unit ``e * copies + lane % copies``,
:func:`lowbit.arch.banks.table_unit`) puts each copy in its own banks: a
phase's lanes conflict at most ``phase lanes / copies``-way
(:func:`~lowbit.arch.banks.worst_table_wavefronts`), for ``copies`` times
the bytes and one ``add`` a lookup (the lane's copy: a per-thread base).
The expected count falls only for many copies (16: 2.0, 32: 1.0 for the
half table; 2 to 8 copies keep ~3 -- the max over all banks), which is
why the model rarely takes it.

**The register table** (``reg``, 4-bit codes, exact ``half`` entries, no
zero): the 16 entries' low bytes ``L`` and high bytes ``H`` as four 8-byte
register tables (``L[0:8]``, ``L[8:16]``, ``H[0:8]``, ``H[8:16]``, two
registers each, constants).  Four codes ``a b c d`` (two pairs) as the
nibbles of a selector ``S``: ``prmt`` with ``S`` reads ``L[c]`` for the
codes below 8 (a nibble's top bit asks for sign replication: junk for the
others), ``prmt`` with ``S ^ 0x8888`` reads ``L[c]`` for the codes from 8;
a byte mask ``M`` of the codes' top bits (one ``prmt`` in sign mode of ``S``
and ``S << 4``) selects between them (one ``lop3``); the same for ``H``; two
``prmt`` interleave ``L`` and ``H`` bytes into the two result words.  11
instructions for two pairs, no shared memory, no wavefronts.  The selector
is one ``prmt`` of the word's two pair bytes (layout 1) or the merged index
word itself (layout 3, below).  The eight table words are made per thread
(one ``lop3`` of ``tid`` that leaves the constant), so that ptxas keeps them
in registers: as immediates they sit in uniform registers and every
``prmt`` pays a copy (nf4, layout 1: 5.73 -> 4.91 static thread-instructions
a weight).

**Index assembly.**  Layout 1 (codes in K order): a pair is a byte of the
word, one ``prmt`` (or shift/``and``).  Kernel order (layout 3, the pair's
codes at bits ``s`` and ``s + 16``): two ``lop3`` of ``w`` and
``w >> 12`` (and one shift) put the indices of all four pairs of a word
into two merged words, one byte each (:func:`_merged`), then one ``prmt``
a pair extracts it: 2 instructions a pair where two shifts, two masks and
an ``or`` were (nf4 layout 3: 4.55 -> 3.13 static).

**The cost model** (:func:`costs`, per pair of results, in issue slots):
instructions plus ``WF_WEIGHT`` per expected shared wavefront of the
lookup; the index (``order``: ``"adjacent"``, layout 1, 1 a pair;
``"split"``, layout 3, 2) is counted for the shared forms, the
selector (0.5 and 1) for the register form:

* ``half``: index + 1 load + (1 with copies: the lane's base) + 1 packed
  ``mul`` by the scale, + ``WF_WEIGHT * E[wavefronts]``;
* ``single``: index + 1 load (+ 1) + 2 per f32 step (zero, scale) + 1
  rounding pack, + the 8-byte load's wavefronts (two half-warp phases);
* ``reg``: selector + 5.5 + 1 ``mul``;
* ``chain``: ``2 (2 (n - 1) + factor + steps) + 1``.

A table may take at most ``TABLE_BYTES_MAX`` bytes of shared memory (its
copies count; wx_matmul's pipeline stages need the rest); :func:`choose`
takes the cheapest exact form, on a tie the one with fewer shared bytes.
With ``WF_WEIGHT = 1`` (a wavefront costs what an instruction costs) nf4
keeps the unreplicated half table in both orders (adjacent: 3 + 3.13 =
6.13 against 7.0 for the register table and 6.95 for 8 copies; split: 7.13
against 7.5): :data:`WF_WEIGHT` is the knob -- an SM issues four warp
instructions a clock but serves one wavefront, so where the shared pipe is
the bottleneck a wavefront is worth up to 4, and then the register table
wins (6.13 + 3 x 3.13 against 7.0).  (The emulator, which counts wavefronts
with the same bank model, measures 3.30 a lookup for nf4 on normal weights,
2.89 with 8 copies, 2.0 with 16, 1.0 with 32.)  The rule's ``order`` is
``"adjacent"``: the codes' order is not known when the table is chosen (the
layouts come later), and the choice is the same for both at these weights
(tested).  ``Options.codebook`` forces a form (tests, experiments).

Anything else -- codes not in words form, a pair whose codes the index
cannot be made from, a form the fuse rule did not choose -- is the
per-slot f32 chain of :mod:`~lowbit.transforms._lower_dequant`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lowbit.arch import banks
from lowbit.dtypes import DType, dtype
from lowbit.dtypes.codebook import CodebookType
from lowbit.errors import IRError
from lowbit.ir import ops as V
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import F32, I8, I32, VectorType

__all__ = ["FORMS", "HANDLERS", "MAX_ENTRIES", "TABLE_BYTES_MAX", "WF_WEIGHT", "Choice", "choose", "costs", "entries",
           "lower_table", "parse_form"]  # fmt: skip

#: The largest table a pair table serves (16 entries: 256 pairs, 1 KiB as halves, 2 KiB as f32).
MAX_ENTRIES = 16
#: Issue slots one expected shared-memory wavefront of a lookup costs in :func:`costs`.
WF_WEIGHT = 1.0
#: The most shared memory one table (all its copies) may take.
TABLE_BYTES_MAX = 8192
#: The forms :func:`choose` picks from (``Options.codebook`` names one to force it).
FORMS = ("reg", "half", "single", "chain")
COPIES = (1, 2, 4, 8, 16, 32)
#: Per pair: the shared forms' index, the register form's selector, by the codes' order.
INDEX_COST = {"adjacent": 1.0, "split": 2.0}
SELECTOR_COST = {"adjacent": 0.5, "split": 1.0}
#: The register table's instructions per pair beyond the selector (11 for two pairs, see above).
REG_COST = 5.5
_V2F32 = VectorType(F32, 2)


class Choice(NamedTuple):
    """A lookup form: ``form`` (``reg``, ``half``, ``single``), the table's ``copies``, its ``entries``."""

    form: str
    copies: int
    entries: tuple[int, ...]


def parse_form(text: str) -> tuple[str, int | None] | None:
    """``Options.codebook`` as ``(form, copies or None)``, None for ``"auto"``; an IRError naming the forms."""
    if text == "auto":
        return None
    form, _, c = str(text).partition(":")
    ok = form in FORMS and (not c or (form in ("half", "single") and c.isdigit() and int(c) in COPIES))
    if not ok:
        raise IRError(f"codebook form must be 'auto' or one of {FORMS} (shared forms may add ':copies', copies in "
                      f"{COPIES}), got {text!r}")  # fmt: skip
    return form, int(c) if c else None


def _f32_values(cb: CodebookType, factor: float) -> np.ndarray:
    """``f32(T[c]) * factor`` per code, as the interpreter computes it (f32 rounding, then an f32 mul)."""
    f32 = dtype("f32")
    t = np.asarray(f32.decode(f32.encode(np.asarray(cb.table, dtype=np.float64))), dtype=np.float32)
    with np.errstate(all="ignore"):
        return t * np.float32(factor)


def entries(cb: CodebookType, dst: str, factor: float, form: str) -> tuple[int, ...] | None:
    """The table's bit patterns for ``form`` (16-bit ``dst`` values for ``half``/``reg``, or f32 bits); None when
    the 16-bit values are not exact."""
    v = _f32_values(cb, factor)
    if form == "single":
        return tuple(int(x) for x in v.view(np.uint32))
    t = dtype(dst)
    with np.errstate(all="ignore"):
        codes = np.asarray(t.encode(v.astype(np.float64)), dtype=np.uint64)
        back = np.asarray(t.decode(codes), dtype=np.float64)
    if not np.array_equal(back, v.astype(np.float64)) or np.any(np.signbit(back) != np.signbit(v)):
        return None
    return tuple(int(c) for c in codes)


def costs(n: int, *, zero: bool, scale: bool, factor: bool, half_ok: bool, bits: int = 4,
          order: str = "adjacent", max_bytes: float = TABLE_BYTES_MAX) -> dict[tuple[str, int], float]:  # fmt: skip
    """Estimated issue slots per pair of results of every form and copy count that applies (``("chain", 1)``:
    the per-slot f32 chain; shared tables of at most ``max_bytes``), under the model of the module docstring."""
    steps = int(zero) + int(scale)
    idx = INDEX_COST[order]
    out: dict[tuple[str, int], float] = {("chain", 1): 2 * (2 * (n - 1) + int(factor) + steps) + 1}
    for form, ebytes, rest in (("half", 4, 1 + int(scale)), ("single", 8, 1 + 2 * steps + 1)):
        if form == "half" and not half_ok:
            continue
        for c in COPIES:
            if n * n * ebytes * c > max_bytes:
                break
            wf = banks.expected_table_wavefronts(n * n, ebytes, c)
            out[(form, c)] = idx + rest + int(c > 1) + WF_WEIGHT * wf
    if half_ok and not zero and bits == 4:
        out[("reg", 1)] = SELECTOR_COST[order] + REG_COST + int(scale)
    return out


def _bytes(key: tuple[str, int], n: int) -> int:
    form, c = key
    return {"reg": 0, "chain": 0, "half": 4, "single": 8}[form] * n * n * c


def choose(codes: DType, dst: str, zero: DType | None, scale: DType | None, factor: float, *,
           force: str = "auto", order: str = "adjacent") -> Choice | None:  # fmt: skip
    """The lookup a ``dequant`` of these types should use, or None (the chain): the cheapest exact form by
    :func:`costs` (fewer shared bytes on a tie), or the one ``force`` names where it is exact."""
    if not isinstance(codes, CodebookType) or len(codes.table) > MAX_ENTRIES or dst not in ("f16", "bf16"):
        return None
    if 32 % codes.bits:  # 3-bit codes straddle words (layout 1) or come in planes (layout 2): no pair index
        return None
    if scale is not None and not (scale.is_float and scale.bits <= 32 and getattr(scale, "table", None) is None):
        return None
    if zero is not None and not (zero.is_float or zero.is_int) or (zero is not None and zero.bits > 32):
        return None
    half = entries(codes, dst, factor, "half") if zero is None and (scale is None or scale.name == dst) else None
    n = len(codes.table)
    forced = parse_form(force)
    c = costs(n, zero=zero is not None, scale=scale is not None, factor=factor != 1.0, half_ok=half is not None,
              bits=codes.bits, order=order, max_bytes=float("inf") if forced and forced[1] else TABLE_BYTES_MAX)  # fmt: skip
    if forced is not None:  # that form where it applies (copies named: the byte cap is lifted), else the model's
        want, copies = forced
        c = {k: v for k, v in c.items() if k[0] == want and (copies is None or k[1] == copies)} or {
            k: v for k, v in c.items() if _bytes(k, n) <= TABLE_BYTES_MAX}
    form, copies = min(c, key=lambda k: (c[k], _bytes(k, n), k[1]))
    if form == "chain":
        return None
    got = entries(codes, dst, factor, "single") if form == "single" else half
    return Choice(form, copies, got) if got is not None else None


# ----------------------------------------------------------------------------------------------- pair_table


def _pick(ctx, c: Operand, table: tuple[int, ...]) -> Operand:  # noqa: ANN001
    """``table[c]`` (i32 constants) for a per-thread ``c``: a select chain (prologue code, run once)."""
    b = ctx.b
    out: Operand = Const(table[0], I32)
    for i, v in enumerate(table[1:], 1):
        if v != table[0]:
            out = b.select(b.cmp("eq", c, Const(i, I32), "pt"), Const(v, I32), out, "pt")
    return out


def _s32(x: int) -> int:
    return x - (1 << 32) if x >= 1 << 31 else x


def _pair_table(ctx, op: V.PairTable) -> None:  # noqa: ANN001
    """Thread ``t`` writes words ``t, t + T, ...`` of the table, each from its two (or one) entries; with copies,
    word ``k`` is word ``i`` of the one-copy table, ``i`` = ``k`` without the copy's bits (unit ``e * copies + r``)."""
    from lowbit.transforms._lower_shared import _view_base  # noqa: PLC0415

    b = ctx.b
    buf = ctx.get(op.dst, op)
    n = len(op.entries)
    bits = n.bit_length() - 1
    words = n * n * op.width // 16 * op.copies
    cbits = op.copies.bit_length() - 1
    base = _view_base(ctx, buf)
    ent = tuple(_s32(e) for e in op.entries)
    for j in range(-(-words // ctx.T)):
        k = ctx.add(ctx.tid, j * ctx.T, "pt")
        ok = None if (j + 1) * ctx.T <= words else b.cmp("ult", k, Const(words, I32), "pt")
        i = k
        if cbits and op.width == 16:  # unit = word: i = k >> cbits
            i = b.binary("lshr", k, Const(cbits, I32), "pt")
        elif cbits:  # unit = two words: i = (k >> 1 >> cbits) << 1 | k & 1
            u = b.binary("shl", b.binary("lshr", k, Const(1 + cbits, I32), "pt"), Const(1, I32), "pt")
            i = b.binary("or", u, b.binary("and", k, Const(1, I32), "pt"), "pt")
        if op.width == 16:  # word e = entries[e % n] | entries[e // n] << 16
            lo = _pick(ctx, b.binary("and", i, Const(n - 1, I32), "pt"), tuple(e & 0xFFFF for e in ent))
            hi = _pick(ctx, b.binary("lshr", i, Const(bits, I32), "pt"), tuple(_s32((e & 0xFFFF) << 16) for e in ent))
            w = b.binary("or", lo, hi, "pt")
        else:  # word 2e + h: entries[e % n] (h = 0) or entries[e // n] (h = 1), i.e. code (i >> 1 >> h * bits) % n
            e = b.binary("lshr", i, Const(1, I32), "pt")
            h = b.binary("and", i, Const(1, I32), "pt")
            c = b.binary("and", b.binary("lshr", e, b.binary("mul", h, Const(bits, I32), "pt"), "pt"),
                         Const(n - 1, I32), "pt")  # fmt: skip
            w = _pick(ctx, c, ent)
        b.store(b.gep(base, k, I32, "pt"), w, 4, ok)
    unit = op.width // 4  # bytes of a pair: one word (f16x2) or two (2 x f32)
    if op.copies > 1:  # lane l reads copy l % copies: its units start (l % copies) * unit bytes in
        lane = b.binary("and", ctx.tid, Const(op.copies - 1, I32), "cbl")
        base = b.gep(base, b.binary("shl", lane, Const(unit.bit_length() - 1, I32), "cbl"), I8, "cbl")
    ctx.put(("cb_table", id(buf)), (op.width, op.copies, base))


HANDLERS = {V.PairTable: _pair_table}


# ----------------------------------------------------------------------------------------------- lookups


def _field(ctx, w: Operand, sh: Operand, p: np.ndarray, nbits: int) -> Operand:  # noqa: ANN001
    """Bits ``[sh, sh + nbits)`` of ``w`` at bit 0 (``p``: ``sh`` per thread), once per word and position."""
    from lowbit.transforms._dequant_pairs import _byte_index, _selector, _shifted  # noqa: PLC0415

    key = ("cb_field", id(w), id(sh) if not isinstance(sh, Const) else int(sh.value), nbits)
    got = ctx.find(key)
    if got is not None:
        return got  # type: ignore[return-value]
    b = ctx.b
    mask = Const((1 << nbits) - 1, I32)
    if isinstance(sh, Const):
        s = int(sh.value)
        if s + nbits == 32:
            got = _shifted(ctx, w, s)
        elif s == 0:
            got = b.binary("and", w, mask, "cbi")
        elif nbits == 8 and s % 8 == 0:
            got = b.op(S.Prmt, I32, w, Const(0, I32), Const(0x4440 | s // 8, I32), hint="cbi")
        else:
            got = b.binary("and", _shifted(ctx, w, s), mask, "cbi")
    elif nbits == 8 and np.all(np.asarray(p) % 8 == 0):  # a whole byte, which one per thread: one prmt
        sel = _selector(ctx, [(_byte_index(ctx, sh, 0), 0), (4, 0), (4, 0), (4, 0)])
        got = b.op(S.Prmt, I32, w, Const(0, I32), sel, hint="cbi")
    else:
        got = b.binary("and", b.binary("lshr", w, sh, "cbi"), mask, "cbi")
    ctx.put(key, got)
    return got  # type: ignore[return-value]


def _merged(ctx, w: Operand, r: int, B: int) -> Operand:  # noqa: ANN001
    """Kernel order's index word for ``r`` = 0 or ``B``: field ``j`` (``2B`` bits) of its low 16 bits is the pair
    index of the codes at bits ``r + 2Bj`` and ``r + 2Bj + 16`` of ``w``.

    With ``M`` the low ``B`` bits of every field (0x0F0F0F0F for B = 4) and ``x = w >> (16 - B)``: ``r = 0`` is
    ``(w & M) | (x & ~M)``; ``r = B`` is ``((x & M) | (w & ~M)) >> B`` -- one shift, two lop3 and one shift a
    word for all its pairs."""
    from lowbit.transforms._dequant_pairs import _shifted  # noqa: PLC0415

    key = ("cb_merged", id(w), r, B)
    got = ctx.find(key)
    if got is None:
        b = ctx.b
        mask = Const(_s32(sum(((1 << B) - 1) << f for f in range(0, 32, 2 * B))), I32)
        x = _shifted(ctx, w, 16 - B)
        if r == 0:
            got = b.lop3(w, x, mask, 0xE4, hint="cbi")  # (w & M) | (x & ~M)
        else:
            got = b.binary("lshr", b.lop3(x, w, mask, 0xE4, hint="cbi"), Const(B, I32), "cbi")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _split_index(ctx, w: Operand, s0: Operand, s1: Operand, B: int) -> Operand | None:  # noqa: ANN001
    """The pair index of codes at bits ``s`` and ``s + 16`` of one word (kernel order, layout 3), or None.

    Per word two merged words (:func:`_merged`, ``r = 0`` and ``r = B``) hold every pair's index as a ``2B``-bit
    field; each index is then one field extraction (a ``prmt`` or an ``and`` for bytes) instead of two shifts,
    two masks and an or per pair.
    """
    if not (isinstance(s0, Const) and isinstance(s1, Const)):
        return None
    s = int(s0.value)
    if int(s1.value) != s + 16 or s % B or s + B > 16:
        return None
    r, j = s % (2 * B), s // (2 * B)
    u = _merged(ctx, w, r, B)
    if B == 4:  # a byte: prmt even for byte 0 (an ``and`` lets LLVM rewrite the load's scaled index into shl + and)
        return _byte(ctx, u, j)
    return _field(ctx, u, Const(2 * B * j, I32), np.full(1, 2 * B * j), 2 * B)


def _byte(ctx, w: Operand, j: int) -> Operand:  # noqa: ANN001
    """Byte ``j`` of ``w`` at bit 0 (one prmt, once per word and byte)."""
    key = ("cb_byte", id(w), j)
    got = ctx.find(key)
    if got is None:
        got = ctx.b.op(S.Prmt, I32, w, Const(0, I32), Const(0x4440 | j, I32), hint="cbi")
        ctx.put(key, got)
    return got  # type: ignore[return-value]


def _pair_index(ctx, pos, m: int, B: int) -> Operand | None:  # noqa: ANN001
    """``c0 | c1 << B`` of slots ``m`` and ``m + 1`` (the last slot twice when the count is odd); None when a
    code is not inside its word."""
    n = len(pos.slots)
    w0, s0, p0 = pos.slots[m]
    w1, s1, p1 = pos.slots[m + 1] if m + 1 < n else pos.slots[m]
    p0, p1 = np.asarray(p0), np.asarray(p1)
    if np.any(p0 < 0) or np.any(p1 < 0) or np.any(p0 + B > 32) or np.any(p1 + B > 32):
        return None
    if w0 is w1 and np.all(p1 == p0 + B) and np.all(p0 + 2 * B <= 32):
        return _field(ctx, w0, s0, p0, 2 * B)
    got = _split_index(ctx, w0, s0, s1, B)
    if got is not None:
        return got
    b = ctx.b
    hi = b.binary("shl", _field(ctx, w1, s1, p1, B), Const(B, I32), "cbi")
    return b.binary("or", _field(ctx, w0, s0, p0, B), hi, "cbi")


def _pair_source(ctx, pos, m: int, B: int) -> tuple[Operand, Operand | int] | None:  # noqa: ANN001
    """``(register, byte)`` when the index of pair ``m`` is a whole byte of a register (4-bit codes) -- of the
    codes' word (``byte`` per thread or constant) or of a merged kernel-order word -- else None."""
    from lowbit.transforms._dequant_pairs import _byte_index  # noqa: PLC0415

    n = len(pos.slots)
    w0, s0, p0 = pos.slots[m]
    w1, s1, p1 = pos.slots[m + 1] if m + 1 < n else pos.slots[m]
    p0, p1 = np.asarray(p0), np.asarray(p1)
    if B != 4 or np.any(p0 < 0) or np.any(p1 < 0) or np.any(p0 + B > 32) or np.any(p1 + B > 32):
        return None
    if w0 is w1 and np.all(p1 == p0 + B) and np.all(p0 % 8 == 0):
        return w0, _byte_index(ctx, s0, 0)
    if w0 is w1 and isinstance(s0, Const) and isinstance(s1, Const):
        s = int(s0.value)
        if int(s1.value) == s + 16 and s % B == 0 and s + B <= 16:
            return _merged(ctx, w0, s % 8, B), s // 8
    return None


def _reg_selectors(ctx, pos, B: int) -> list[tuple[list[int], Operand]] | None:  # noqa: ANN001
    """Groups of (at most) two pairs and their selector: a register whose low 16 bits are the four codes' nibbles
    (``c0 c1`` of the first pair, then of the second) -- a byte pair of one register as it is (a shift for bytes 2,
    3), else one ``prmt`` of the two pairs' bytes."""
    from lowbit.transforms._dequant_pairs import _selector, _shifted  # noqa: PLC0415

    b = ctx.b
    pairs = list(range(0, len(pos.slots), 2))
    src = {}
    for m in pairs:
        got = _pair_source(ctx, pos, m, B)
        if got is None:
            idx = _pair_index(ctx, pos, m, B)
            if idx is None:
                return None
            got = (idx, 0)
        src[m] = got
    out, left = [], list(pairs)
    while left:
        m = left.pop(0)
        (r, j) = src[m]
        mate = next((q for q in left if src[q][0] is r and isinstance(j, int) and j % 2 == 0 and src[q][1] == j + 1),
                    None)  # fmt: skip
        if mate is not None:
            left.remove(mate)
            out.append(([m, mate], _shifted(ctx, r, 8 * j)))
            continue
        mate = left.pop(0) if left else None
        r2, j2 = src[mate] if mate is not None else (r, j)
        sel = _selector(ctx, [(j, 0), (j2, 4), (0, 0), (0, 0)])
        out.append(([m] if mate is None else [m, mate], b.op(S.Prmt, I32, r, r2, sel, hint="cbs")))
    return out


def _reg_tables(ctx, ents: tuple[int, ...]) -> list[Operand]:  # noqa: ANN001
    """``L[0:4] L[4:8] L[8:12] L[12:16] H[0:4] ...``: the entries' low and high bytes, four to a word.

    Each is ``(tid & ~1023) | word`` in one ``lop3`` (``tid < 1024``: the word itself): a per-thread value that
    neither LLVM nor ptxas folds, so that ptxas keeps it in a register across the loop -- as an immediate it lives
    in a uniform register and every ``prmt`` (whose table operands must be registers) pays a copy."""
    key = ("cb_regtab", ents)
    got = ctx.find(key)
    if got is not None:
        return got  # type: ignore[return-value]
    e = list(ents) + [ents[0]] * (16 - len(ents))
    b = ctx.b
    out = []
    for sh in (0, 8):
        for q in range(4):
            w = _s32(sum(((e[4 * q + k] >> sh) & 0xFF) << (8 * k) for k in range(4)))
            out.append(b.lop3(ctx.tid, Const(_s32(0xFFFFFC00), I32), Const(w, I32), 0xEA, hint="cbt"))  # (a & b) | c
    ctx.put(key, out)
    return out


def _reg_lookup(ctx, sel: Operand, t: list[Const]) -> tuple[Operand, Operand]:  # noqa: ANN001
    """The two result words ``(e[a], e[b])``, ``(e[c], e[d])`` for the codes ``a b c d`` in ``sel``'s low nibbles."""
    b = ctx.b

    def prmt(x: Operand, y: Operand, s: Operand | int) -> Operand:
        return b.op(S.Prmt, I32, x, y, Const(s, I32) if isinstance(s, int) else s, hint="cbr")

    hi = b.binary("xor", sel, Const(0x8888, I32), "cbr")  # the codes from 8 as 0..7 (below 8: sign-mode junk)
    mask = prmt(b.binary("shl", sel, Const(4, I32), "cbr"), sel, 0xD9C8)  # byte k: code k's top bit, replicated
    res = []
    for q in (0, 4):  # low bytes, high bytes
        lo8 = prmt(t[q], t[q + 1], sel)
        hi8 = prmt(t[q + 2], t[q + 3], hi)
        res.append(b.lop3(hi8, lo8, mask, 0xE4, hint="cbr"))  # (hi8 & mask) | (lo8 & ~mask)
    return prmt(res[0], res[1], 0x5140), prmt(res[0], res[1], 0x7362)


def lower_table(ctx, op, codes, zero, scale) -> list[Operand] | None:  # noqa: ANN001
    """The result words of a ``dequant`` with a pair table, or None (the caller computes the f32 chain)."""
    from lowbit.transforms._dequant_pairs import _i32, _mul, _scale_pairs, _static_positions  # noqa: PLC0415
    from lowbit.transforms._lower_dequant import F32Tail  # noqa: PLC0415
    from lowbit.transforms._lower_shared import _view_base  # noqa: PLC0415

    if codes.slots < 2:
        return None
    pos = getattr(codes, "gath", None) or _static_positions(codes)
    if pos is None:
        return None
    dst = op.result.type.dtype.name
    B = codes.dtype.bits
    b = ctx.b
    if op.lookup == "reg":
        ents = entries(codes.dtype, dst, float(op.factor), "half")
        groups = None if ents is None or zero is not None or (scale is not None and scale.dtype.name != dst) \
            else _reg_selectors(ctx, pos, B)
        if groups is None:
            return None
        t = _reg_tables(ctx, ents)
        words: dict[int, Operand] = {}
        for ms, sel in groups:
            pair = _reg_lookup(ctx, sel, t)
            for m, w in zip(ms, pair):
                words[m] = w
        out = [words[m] for m in range(0, codes.slots, 2)]
        if scale is not None:
            out = [_mul(ctx, r, s, dst) for r, s in zip(out, _scale_pairs(ctx, scale, dst))]
        return [_i32(ctx, r) for r in out]
    buf = ctx.get(op.table, op)
    width, copies, base = ctx.find(("cb_table", id(buf))) or (None, 1, None)
    if base is None:  # (a table filled elsewhere: the one-copy layout its size says)
        width, base = (16 if int(np.prod(buf.shape)) == (1 << B) ** 2 else 32), _view_base(ctx, buf)
    half = width == 16
    if half and (zero is not None or (scale is not None and scale.dtype.name != dst)):
        return None
    idx = [_pair_index(ctx, pos, m, B) for m in range(0, codes.slots, 2)]
    if any(i is None for i in idx):
        return None
    shift = (2 if half else 3) + copies.bit_length() - 1  # unit bytes x copies
    if half:
        out = [b.load(I32, b.gep(base, b.binary("shl", i, Const(shift, I32), "cba"), I8, "cba"), 4, hint="cb")
               for i in idx]  # fmt: skip
        if scale is not None:
            out = [_mul(ctx, r, s, dst) for r, s in zip(out, _scale_pairs(ctx, scale, dst))]
        return [_i32(ctx, r) for r in out]
    tail = F32Tail(ctx, zero, scale)
    res = []
    for i in idx:
        # the byte offset in 32 bits (not a gep of i64 elements, which LLVM widens to mul.wide): ptxas then folds
        # the shift into the load's scaled index, ``[R.X8 + offset]``
        v2 = b.load(_V2F32, b.gep(base, b.binary("shl", i, Const(shift, I32), "cba"), I8, "cba"), 8, hint="cb")
        for h in range(2):
            if len(res) < codes.slots:
                res.append(tail.finish(b.op(S.Extract, F32, v2, h, hint="cb"), len(res)))
    return tail.pack(res, dst)
