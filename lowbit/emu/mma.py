"""Warp-level matrix instructions: mma.sync, ldmatrix, stmatrix (PTX ISA 9.7.14).

These are the only functions of the semantics layer that know about warps:
operands are arrays shaped ``(nwarps, 32, nregs)`` -- one row per lane -- of
uint32 register bit patterns (M gathers them from the member lanes after
checking the member mask).

    mma_sync(shape, dtype, atype, btype, ctype, a, b, c, *, satfinite=False, bop=None) -> d
        shape "m16n8k16" etc.; types are PTX names ("f32", "f16", "bf16", "tf32",
        "e4m3", "e5m2", "s8", "u8", "s4", "u4", "b1", "s32"); ``bop`` is
        "and.popc" / "xor.popc" for b1.  Only the .row.col layout exists for
        these shapes.  Returns d shaped like c (uint32).
    ldmatrix(rows, num, trans=False) -> uint32 (nwarps, 32, num)
        ``ldmatrix.sync.aligned.m8n8.x{num}{.trans}.shared.b16``: ``rows`` is
        uint8 (nwarps, 32, 16): lane i holds the 16 bytes at the row address
        that lane i supplied (lanes 8j..8j+7 address the rows of matrix j;
        M reads the bytes from shared memory; lanes past 8*num are ignored).
    stmatrix(regs, num, trans=False) -> uint8 (nwarps, 32, 16)
        the inverse: the 16 bytes each row-address lane's row receives.
    fragment_coords(shape, atype) -> dict of index arrays (the layouts below)

Fragment layouts (PTX ISA 9.7.14.5.x "Matrix Fragments for mma.m16n8kK"):
with ``groupID = laneid >> 2`` and ``threadID_in_group = laneid % 4`` and an
element width of ``w = 32 / bits`` elements per register (element j of a
register sits in bits [j*bits, (j+1)*bits)), the ISA's per-shape tables all
reduce to

    A (16 x K), register r, element j:
        row = groupID + 8 * (r % 2)
        col = threadID_in_group * w + j + 4 * w * (r // 2)
    B (K x 8), register r, element j:
        row = threadID_in_group * w + j + 4 * w * r
        col = groupID
    C/D (16 x 8), element i (f32/s32: one per register; f16: two per register):
        row = groupID + 8 * (i // 2)
        col = threadID_in_group * 2 + (i % 2)

e.g. m16n8k16.f16: a0,a1 at (g, 2t..2t+1), a2,a3 at (g+8, ...), a4..a7 at
columns +8; m16n8k32.s8: a0..a3 at (g, 4t..4t+3), ..., a8..a15 at +16;
m16n8k256.b1: 32 bits a register, a64..a127 at columns +128.

Numerics.  Integer mma is exact: products summed in int64, then wrapped to 32
bits, or clamped to [INT32_MIN, INT32_MAX] with ``.satfinite``.  b1:
``popc(a_row AND/XOR b_col)`` summed with c.  Float mma: the inputs are decoded
exactly, products are exact in float64 and the K products plus c are summed in
float64 (np.matmul order), then rounded once (RN) to the f32/f16 accumulator.
The hardware instead adds with limited-precision alignment (no per-product
rounding, truncation of aligned addends): results agree within a relative
error of 2^-22 * (|c| + sum |a_k b_k|) for f32 accumulators (f16
accumulators: 2^-10), which is the tolerance the GPU fidelity harness uses.
tf32 operands use the upper 19 bits of the f32 register (the low 13 mantissa
bits are ignored, as the tensor cores do).
"""

from __future__ import annotations

import functools

import numpy as np

from lowbit.emu import fparith_round as R
from lowbit.errors import UnsupportedPTXError

_BITS = {"f16": 16, "bf16": 16, "tf32": 32, "e4m3": 8, "e5m2": 8, "s8": 8, "u8": 8, "s4": 4, "u4": 4, "b1": 1}
_FLOAT_IN = {"f16": R.F16, "bf16": R.BF16, "tf32": R.F32, "e4m3": R.E4M3, "e5m2": R.E5M2}
# shape -> element types allowed (PTX ISA 9.7.14.5 "mma" shapes table; sm_80..sm_90 subset)
_SHAPES = {
    "m16n8k4": {"tf32"}, "m16n8k8": {"f16", "bf16", "tf32"}, "m16n8k16": {"f16", "bf16", "s8", "u8", "e4m3", "e5m2"},
    "m16n8k32": {"s8", "u8", "s4", "u4", "e4m3", "e5m2"}, "m16n8k64": {"s4", "u4"},
    "m16n8k128": {"b1"}, "m16n8k256": {"b1"},
}


def _parse_shape(shape: str):
    try:
        m, rest = shape[1:].split("n")
        n, k = rest.split("k")
        return int(m), int(n), int(k)
    except ValueError:
        raise UnsupportedPTXError(f"mma shape .{shape} is not valid") from None


@functools.lru_cache(maxsize=None)
def fragment_coords(shape: str, atype: str) -> dict:
    """Index arrays (lane, reg, elem) -> (row, col) for A, B and C of ``shape``."""
    m, n, k = _parse_shape(shape)
    if (m, n) != (16, 8) or atype not in _SHAPES.get(shape, ()):
        raise UnsupportedPTXError(f"mma.sync.{shape} with .{atype} operands is not supported")
    w = 32 // _BITS[atype]
    lane = np.arange(32)
    g, t = lane >> 2, lane % 4
    na, nb = (16 * k) // (32 * w), (8 * k) // (32 * w)
    r, j = np.arange(na)[None, :, None], np.arange(w)[None, None, :]
    a_row = np.broadcast_to(g[:, None, None] + 8 * (r % 2), (32, na, w))
    a_col = np.broadcast_to(t[:, None, None] * w + j + 4 * w * (r // 2), (32, na, w))
    rb = np.arange(nb)[None, :, None]
    b_row = np.broadcast_to(t[:, None, None] * w + j + 4 * w * rb, (32, nb, w))
    b_col = np.broadcast_to(g[:, None, None] + 0 * rb + 0 * j, (32, nb, w))
    i = np.arange(4)[None, :]
    c_row = g[:, None] + 8 * (i // 2)
    c_col = t[:, None] * 2 + (i % 2)
    return {"k": k, "w": w, "na": na, "nb": nb, "a": (a_row, a_col), "b": (b_row, b_col), "c": (c_row, c_col)}


def _elements(regs, nregs, w, bits):
    """(nwarps, 32, nregs) uint32 -> (nwarps, 32, nregs, w) element codes (uint32)."""
    x = np.asarray(regs, dtype=np.uint32)
    if x.shape[-2:] != (32, nregs):
        raise UnsupportedPTXError(f"mma operand has shape {x.shape}, expected (nwarps, 32, {nregs})")
    sh = (np.arange(w, dtype=np.uint32) * np.uint32(bits))
    mask = np.uint32((1 << bits) - 1) if bits < 32 else np.uint32(0xFFFFFFFF)
    return (x[..., None] >> sh) & mask


def _matrix(codes, rows, cols, shape):
    nw = codes.shape[0]
    out = np.zeros((nw,) + shape, dtype=codes.dtype)
    out[:, rows.reshape(-1), cols.reshape(-1)] = codes.reshape(nw, -1)
    return out


def _decode(atype, codes):
    if atype in _FLOAT_IN:
        if atype == "tf32":
            codes = codes & np.uint32(0xFFFFE000)
        return R.to_f64(_FLOAT_IN[atype], codes)
    bits = _BITS[atype]
    v = codes.astype(np.int64)
    if atype[0] == "s":
        v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
    return v


def mma_sync(shape, dtype, atype, btype, ctype, a, b, c, *, satfinite=False, bop=None):
    """``mma.sync.aligned.shape.row.col{.satfinite}.dtype.atype.btype.ctype d, a, b, c``."""
    fc = fragment_coords(shape, atype)
    if _BITS.get(btype) != _BITS[atype] or (atype in _FLOAT_IN) != (btype in _FLOAT_IN):
        raise UnsupportedPTXError(f"mma.sync.{shape}.{atype}.{btype}: mismatched operand types")
    if atype in ("f16", "bf16", "tf32") and btype != atype:
        raise UnsupportedPTXError(f"mma.sync.{shape}.{atype}.{btype}: mismatched operand types")
    k, w, bits = fc["k"], fc["w"], _BITS[atype]
    am = _matrix(_elements(a, fc["na"], w, bits), *fc["a"], (16, k))
    bm = _matrix(_elements(b, fc["nb"], w, bits), *fc["b"], (k, 8))
    crow, ccol = fc["c"]
    if atype in _FLOAT_IN:
        accs = ("f32",) if atype in ("bf16", "tf32") else ("f32", "f16")
        if dtype not in accs or ctype not in accs:
            raise UnsupportedPTXError(f"mma.sync.{shape}.{dtype}.{atype}.{btype}.{ctype} is not supported")
        cvals = _c_values(c, ctype)
        with np.errstate(invalid="ignore", over="ignore"):  # inf*0 and NaN inputs give NaN, as in hardware
            acc = np.matmul(_decode(atype, am), _decode(btype, bm))
        cm = np.zeros_like(acc)
        cm[:, crow.reshape(-1), ccol.reshape(-1)] = cvals.reshape(cvals.shape[0], -1)
        with np.errstate(all="ignore"):
            dm = acc + cm
        return _d_regs(dm, dtype, crow, ccol)
    if dtype != "s32" or ctype != "s32":
        raise UnsupportedPTXError(f"mma.sync.{shape}.{dtype}.{atype}.{btype}.{ctype}: integer mma accumulates in s32")
    cint = np.asarray(c, np.uint32).view(np.int32).astype(np.int64)
    cm = np.zeros((cint.shape[0], 16, 8), np.int64)
    cm[:, crow.reshape(-1), ccol.reshape(-1)] = cint.reshape(cint.shape[0], -1)
    if atype == "b1":
        if bop not in ("and.popc", "xor.popc"):
            raise UnsupportedPTXError(f"mma.sync.{shape}.b1 needs .and.popc or .xor.popc, got {bop!r}")
        ai, bi = am.astype(np.int64), bm.astype(np.int64)
        both = np.matmul(ai, bi)
        acc = both if bop == "and.popc" else ai.sum(-1)[:, :, None] + bi.sum(-2)[:, None, :] - 2 * both
    else:
        acc = np.matmul(_decode(atype, am), _decode(btype, bm))
    dm = acc + cm
    if satfinite:
        dm = np.clip(dm, -(2**31), 2**31 - 1)
    d = dm[:, crow, ccol]
    return d.astype(np.uint64).astype(np.uint32)


def _c_values(c, ctype):
    c = np.asarray(c, np.uint32)
    if ctype == "f32":
        if c.shape[-1] != 4:
            raise UnsupportedPTXError("f32 accumulator needs 4 registers")
        return R.to_f64(R.F32, c)
    if c.shape[-1] != 2:
        raise UnsupportedPTXError("f16 accumulator needs 2 registers")
    lo = R.to_f64(R.F16, c & np.uint32(0xFFFF))
    hi = R.to_f64(R.F16, c >> np.uint32(16))
    return np.stack([lo[..., 0], hi[..., 0], lo[..., 1], hi[..., 1]], axis=-1)


def _d_regs(dm, dtype, crow, ccol):
    d = dm[:, crow, ccol]  # (nwarps, 32, 4)
    if dtype == "f32":
        return R.round_f64(d, R.F32).astype(np.uint32)
    h = R.round_f64(d, R.F16).astype(np.uint32)
    return np.stack([h[..., 0] | (h[..., 1] << np.uint32(16)), h[..., 2] | (h[..., 3] << np.uint32(16))], axis=-1)


# ------------------------------------------------------------ ldmatrix / stmatrix


def _ld_index(num, trans):
    """For (lane, reg, half): the (row-provider lane, b16 column) it reads."""
    lane = np.arange(32)[:, None, None]
    reg = np.arange(num)[None, :, None]
    half = np.arange(2)[None, None, :]
    if trans:  # thread gets column laneid/4 of rows 2*(laneid%4) + half
        src_lane = 8 * reg + 2 * (lane % 4) + half
        col = np.broadcast_to(lane // 4, src_lane.shape)
    else:  # thread gets row laneid/4, columns 2*(laneid%4) + half
        src_lane = np.broadcast_to(8 * reg + lane // 4, (32, num, 2))
        col = np.broadcast_to(2 * (lane % 4) + half, (32, num, 2))
    return np.broadcast_to(src_lane, (32, num, 2)), col


def ldmatrix(rows, num, trans=False):
    """``ldmatrix.sync.aligned.m8n8.x{1,2,4}{.trans}.shared.b16`` (PTX ISA 9.7.14.5.15)."""
    if num not in (1, 2, 4):
        raise UnsupportedPTXError(f"ldmatrix .x{num} is not valid")
    r = np.asarray(rows, np.uint8)
    if r.shape[-2:] != (32, 16):
        raise UnsupportedPTXError(f"ldmatrix rows have shape {r.shape}, expected (nwarps, 32, 16)")
    elems = np.ascontiguousarray(r).view("<u2")  # (nwarps, 32, 8) b16 elements, little-endian
    src, col = _ld_index(num, trans)
    v = elems[:, src, col].astype(np.uint32)  # (nwarps, 32, num, 2)
    return v[..., 0] | (v[..., 1] << np.uint32(16))


def stmatrix(regs, num, trans=False):
    """``stmatrix.sync.aligned.m8n8.x{1,2,4}{.trans}.shared.b16`` (sm_90): the row bytes per lane."""
    if num not in (1, 2, 4):
        raise UnsupportedPTXError(f"stmatrix .x{num} is not valid")
    x = np.asarray(regs, np.uint32)
    src, col = _ld_index(num, trans)
    halves = np.stack([x & np.uint32(0xFFFF), x >> np.uint32(16)], axis=-1).astype(np.uint16)
    out = np.zeros(x.shape[:-2] + (32, 8), np.uint16)
    out[:, src.reshape(-1), col.reshape(-1)] = halves.reshape(x.shape[0], -1)
    return out.astype("<u2").view(np.uint8)
