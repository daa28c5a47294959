"""Codebook codes (nf4, any user table of at most 16 entries) to f16/bf16 two at a time, through a pair table.

A ``dequant`` of codebook codes means ``cast(((f32(T[c]) * factor) - z) * s,
dst)``; the generic lowering computes ``f32(T[c])`` with a compare/select
chain over the table, per element.  Here a table of *pairs* replaces it
(FLUTE's idea: Guo et al., "Fast Matrix Multiplications for Lookup
Table-Quantized LLMs", 2024): the two codes of one f16x2 result register
-- consecutive K rows of an mma B fragment, usually adjacent bits of one
word -- form one index ``c0 | c1 << B``, and one ``ld.shared`` reads both
values.

**Where the table comes from.**  ``select_instructions``' dequantisation
rule (:mod:`~lowbit.transforms._fuse_dequant`) asks :func:`choose` for a
form; when one is chosen it gives the ``dequant`` a ``table`` operand and
puts ``alloc_shared``, ``pair_table`` (:class:`lowbit.ir.ops.PairTable`)
and a ``barrier`` at the start of the program -- before every loop, so the
main loop only reads it -- one table per (codebook, factor, form), shared
by every ``dequant`` that wants it.  ``plan_shared`` places it like any
buffer (it lives to the end of the last loop that reads it; a later
buffer over its bytes gets a barrier).  ``pair_table`` is lowered here:
each thread writes a few words, its entries picked from constants.

**The two forms** (the values are computed as the VM's f32 chain computes
them, with lowbit's own f32 and f16/bf16 encoders):

* ``half`` -- 4 bytes an entry: ``(e[c0], e[c1])`` as one f16x2/bf16x2
  word, ``e[c] = f32(T[c]) * factor``.  Taken only when every ``e[c]`` is
  a value of the result dtype, there is no zero and the scale is of the
  result dtype: then one packed ``mul`` by the scale pair rounds
  ``e * s`` once, and the f32 chain's product is exact in f32 (at most 11
  x 11 significant bits), so both round the same number once.
* ``single`` -- 8 bytes an entry: ``(e[c0], e[c1])`` as two f32.  One
  ``ld.shared.v2.f32``, then the rest of the chain in f32 exactly as
  written (``- z``, ``* s``) and one ``cvt.rn.f16x2.f32``: bit-identical
  by construction.  This is what NF4 gets: its entries are f32 values
  with 24 significant bits, no f16 or bf16 holds them, and
  ``f16(f32(e * s))`` is not ``f16(e * s)`` in general.

:func:`choose` prices both and the select chain by estimated instructions
per pair of results and takes the cheapest form that is exact.  A
register table read with ``prmt`` (for 2- and 4-entry books) is not built:
its selector has to be computed from the codes (about as many
instructions as the shared form's extraction plus load), so it is never
cheaper here.  Anything else -- codes not in words form, a pair whose
codes the index cannot be made from, a form the fuse rule did not choose
-- is the per-slot f32 chain of :mod:`~lowbit.transforms._lower_dequant`.
"""

from __future__ import annotations

import numpy as np

from lowbit.dtypes import DType, dtype
from lowbit.dtypes.codebook import CodebookType
from lowbit.ir import ops as V
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import F32, I8, I32, VectorType

__all__ = ["HANDLERS", "MAX_ENTRIES", "choose", "costs", "entries", "lower_table"]

#: The largest table a pair table serves (16 entries: 256 pairs, 1 KiB as halves, 2 KiB as f32).
MAX_ENTRIES = 16
_V2F32 = VectorType(F32, 2)


def _f32_values(cb: CodebookType, factor: float) -> np.ndarray:
    """``f32(T[c]) * factor`` per code, as the interpreter computes it (f32 rounding, then an f32 mul)."""
    f32 = dtype("f32")
    t = np.asarray(f32.decode(f32.encode(np.asarray(cb.table, dtype=np.float64))), dtype=np.float32)
    with np.errstate(all="ignore"):
        return t * np.float32(factor)


def entries(cb: CodebookType, dst: str, factor: float, form: str) -> tuple[int, ...] | None:
    """The table's bit patterns for ``form`` (16-bit ``dst`` values, or f32 bits); None when ``half`` is not exact."""
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


def costs(n: int, *, zero: bool, scale: bool, factor: bool, half_ok: bool) -> dict[str, float]:
    """Estimated instructions per pair of results of each form that applies (``chain``: the per-slot f32 chain).

    The pair's index is one instruction when its codes are adjacent in one word (a shift, an ``and`` or a
    ``prmt`` of the byte); the chain is ``n - 1`` compares and selects per code, then its f32 steps.
    """
    steps = int(zero) + int(scale)
    out = {"chain": 2 * (2 * (n - 1) + int(factor) + steps) + 1, "single": 1 + 1 + 2 * steps + 1}
    if half_ok:
        out["half"] = 1 + 1 + int(scale)
    return out


def choose(codes: DType, dst: str, zero: DType | None, scale: DType | None, factor: float) -> tuple[str, tuple[int, ...]] | None:
    """``(form, entries)`` of the pair table a ``dequant`` of these types should read, or None (the chain)."""
    if not isinstance(codes, CodebookType) or len(codes.table) > MAX_ENTRIES or dst not in ("f16", "bf16"):
        return None
    if 32 % codes.bits:  # 3-bit codes straddle words (layout 1) or come in planes (layout 2): no pair index
        return None
    if scale is not None and not (scale.is_float and scale.bits <= 32 and getattr(scale, "table", None) is None):
        return None
    if zero is not None and not (zero.is_float or zero.is_int) or (zero is not None and zero.bits > 32):
        return None
    half = entries(codes, dst, factor, "half") if zero is None and (scale is None or scale.name == dst) else None
    c = costs(len(codes.table), zero=zero is not None, scale=scale is not None, factor=factor != 1.0,
              half_ok=half is not None)  # fmt: skip
    form = min(c, key=c.__getitem__)
    if form == "chain":
        return None
    got = half if form == "half" else entries(codes, dst, factor, "single")
    return (form, got) if got is not None else None


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
    """Thread ``t`` writes words ``t, t + T, ...`` of the table, each from its two (or one) entries."""
    from lowbit.transforms._lower_shared import _view_base  # noqa: PLC0415

    b = ctx.b
    buf = ctx.get(op.dst, op)
    n = len(op.entries)
    bits = n.bit_length() - 1
    words = n * n * op.width // 16
    base = _view_base(ctx, buf)
    ent = tuple(_s32(e) for e in op.entries)
    for j in range(-(-words // ctx.T)):
        i = ctx.add(ctx.tid, j * ctx.T, "pt")
        ok = None if (j + 1) * ctx.T <= words else b.cmp("ult", i, Const(words, I32), "pt")
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
        b.store(b.gep(base, i, I32, "pt"), w, 4, ok)


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
    """Kernel order's index word: the low ``B`` bits of each ``2B``-bit field of ``w >> r`` under the low ``B``
    bits of the same field of ``w >> (r + 16)`` -- field ``j`` of the low 16 bits is the pair index of the codes
    at bits ``r + 2Bj`` and ``r + 2Bj + 16``.  One lop3 (and at most two shifts, shared) per word and ``r``."""
    from lowbit.transforms._dequant_pairs import _shifted  # noqa: PLC0415

    key = ("cb_merged", id(w), r, B)
    got = ctx.find(key)
    if got is None:
        mask = sum(((1 << B) - 1) << f for f in range(0, 32, 2 * B))  # 0x0F0F0F0F for B = 4
        got = ctx.b.lop3(_shifted(ctx, w, r), _shifted(ctx, w, r + 16 - B), Const(_s32(mask), I32), 0xE4, hint="cbi")
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
    n = 1 << B
    buf = ctx.get(op.table, op)
    half = int(np.prod(buf.shape)) == n * n
    if half and (zero is not None or (scale is not None and scale.dtype.name != dst)):
        return None
    b = ctx.b
    base = _view_base(ctx, buf)
    idx = [_pair_index(ctx, pos, m, B) for m in range(0, codes.slots, 2)]
    if any(i is None for i in idx):
        return None
    if half:
        out = [b.load(I32, b.gep(base, b.binary("shl", i, Const(2, I32), "cba"), I8, "cba"), 4, hint="cb") for i in idx]
        if scale is not None:
            out = [_mul(ctx, r, s, dst) for r, s in zip(out, _scale_pairs(ctx, scale, dst))]
        return [_i32(ctx, r) for r in out]
    tail = F32Tail(ctx, zero, scale)
    res = []
    for i in idx:
        # the byte offset in 32 bits (not a gep of i64 elements, which LLVM widens to mul.wide): ptxas then folds
        # the shift into the load's scaled index, ``[R.X8 + offset]``
        v2 = b.load(_V2F32, b.gep(base, b.binary("shl", i, Const(3, I32), "cba"), I8, "cba"), 8, hint="cb")
        for h in range(2):
            if len(res) < codes.slots:
                res.append(tail.finish(b.op(S.Extract, F32, v2, h, hint="cb"), len(res)))
    return tail.pack(res, dst)
