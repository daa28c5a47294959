"""The layout versions of ``QuantizedWeight.qweight``: how (K, N) codes become (rows, N) uint32 words.

Every version packs each column's codes along K (axis 0), LSB-first, with
:func:`lowbit.pack`; they differ in how a code's bits are split first.

* **Version 1, "lsb"**: ``lowbit.pack(codes, bits, axis=0)``: code ``(k, n)``
  at bit ``k*bits`` of column n's word stream, ``ceil(K*bits/32)`` rows.
  Widths 3, 5, 6, 7 straddle words.
* **Version 2, "planes"** (FP6-LLM's bit-plane split): the code is cut into
  planes of the power-of-two widths :func:`lowbit.plane_widths` (:mod:`lowbit.packing`)
  gives, widest first and holding the low bits (3 -> 2 + 1, 5 -> 4 + 1,
  6 -> 4 + 2, 7 -> 4 + 2 + 1); plane p is packed on its own,
  ``lowbit.pack(plane_p, w_p, axis=0)`` (``ceil(K*w_p/32)`` rows), and the
  planes are stacked along the word axis in that order: plane p starts at
  row ``R_p = sum(ceil(K*w_q/32) for q < p)``.  No plane's code straddles a
  word, so every load of a K step is whole words.  Rows:
  ``sum_p ceil(K*w_p/32)``; bytes: ``4 * N * sum_p ceil(K*w_p/32)``, which is
  ``K*N*bits/8`` exactly when K is a multiple of 32 (the same as version 1)
  and at most ``4*N*(len(planes) - 1)`` bytes more otherwise.  A
  power-of-two width has one plane, so **its version 2 is byte-identical to
  version 1**.

* **Version 3, "kernel"** (Marlin's pre-permutation, lowbit's own order): the
  words a thread of ``wx_matmul`` loads hold exactly the codes of its
  ``mma.m16n8k16`` B fragments, in the order its unpack wants.  The code is
  cut into planes as in version 2 (one plane for widths 1, 2, 4, 8), K is
  zero-padded to a multiple of :data:`KCHUNK` = 128 rows, and each plane of
  width ``w`` (``P = 32/w`` codes a word) becomes ``(K/128) * 4w`` rows of N
  words -- column n's words stay in column n, so slicing columns shards the
  weight.  Row ``r = c*4w + t*w + q`` (chunk c of 128 rows, lane quad
  position ``t = lane % 4`` of the fragment, word ``q < w``) of column n
  holds, at bits ``[i*w, (i+1)*w)``, the code of row
  ``k = 128c + 16*(q*P/4 + j//2) + 8*(j % 2) + 2t + e`` with
  ``e = i // (P/2)``, ``j = i % (P/2)``: the lower half of the word holds the
  first row of each B-fragment pair (rows ``2t``, ``2t+8`` of a 16-row
  step), the upper half the second (``2t+1``, ``2t+9``) at the same place,
  so one ``lop3`` with mask ``(2**w - 1) * 0x10001 << (j*w)`` drops pair j
  into the two f16 halves (shifted once by 8 bits for the upper pairs).  A
  thread's words for one 128-row chunk are the w words ``r = c*4w + t*w ..``
  of each of its columns; ``wx_matmul`` interleaves a warp's columns so a
  thread's columns are adjacent and its words load as vectors.  Planes are
  stacked along the rows widest first (plane p from row
  ``R_p = sum(ceil(K/128)*4*w_q for q < p)``).  Rows:
  ``ceil(K/128)*4*bits``: ``K*bits/32`` exactly (version 1's bytes) when K
  is a multiple of 128; the padding rows hold zero codes.  The kernel reads
  it in K steps that are multiples of 128 rows.

Scales are the same in every version: a kernel-order thread holds whole
columns' codes, and the (interleaved) columns of a thread are adjacent, so
its scales and zeros are contiguous runs of a (G, N) row already: no
reorder of them would save a load.

Integer zeros (``zero="int"``): the (G, N) zero codes, row-major ``(g, n)``,
as one dense LSB-first stream (``lowbit.pack(z.reshape(-1), zbits)``,
``ceil(G*N*zbits/32)`` uint32 words), where ``zbits``
(:func:`zero_bits`) is

* the code width ``bits`` in versions 1 and 2, and in version 3 for widths
  1, 2, 4, 8 (GPTQ's ``qzeros`` order once its off-by-one is undone);
* **8 in version 3 for widths 3, 5, 6, 7**: one zero a byte, 4 a word,
  zero code ``(g, n)`` in byte ``(g*N + n) % 4`` of word ``(g*N + n) // 4``
  (the high bits of each byte are 0).  A 7-bit dense stream straddles words,
  so a thread's 4 adjacent zeros cost ~8 byte loads and ~45 address and
  extract instructions a K step; as bytes they are one aligned 32-bit load
  (when N is a multiple of 4).  The zeros grow by at most 8/3 of a tiny
  array (G*N bytes instead of G*N*bits/8); the weight array is unchanged.

:func:`pack_zeros` / :func:`unpack_zeros` convert (G, N) zero codes to and
from a version's words; ``QuantizedWeight.repack`` converts them with the
codes.
"""

from __future__ import annotations

import numpy as np

import lowbit
from lowbit.errors import QuantizeError

__all__ = [
    "KCHUNK", "LAYOUTS", "kernel_order_rows", "pack_codes", "pack_zeros", "plane_rows", "qweight_rows", "resolve_layout",
    "unpack_codes", "unpack_zeros", "zero_bits", "zero_words",
]  # fmt: skip

#: Layout versions of ``qweight``: version -> name.
LAYOUTS: dict[int, str] = {1: "lsb", 2: "planes", 3: "kernel"}
#: Rows of K per chunk of version 3 (a multiple of every power-of-two plane's rows per word, 128 / w).
KCHUNK = 128


def resolve_layout(layout: object, where: str = "layout") -> int:
    """A layout version from its number (1, 2, 3) or name ("lsb", "planes", "kernel"); QuantizeError naming
    ``where`` otherwise."""
    if isinstance(layout, str):
        for version, name in LAYOUTS.items():
            if name == layout:
                return version
    elif isinstance(layout, (int, np.integer)) and not isinstance(layout, bool) and int(layout) in LAYOUTS:
        return int(layout)
    known = ", ".join(f"{v} ({n!r})" for v, n in LAYOUTS.items())
    raise QuantizeError(f"{where}: unknown layout version {layout!r}; known: {known}")


def plane_rows(k: int, bits: int, layout: int) -> tuple[tuple[int, int, int], ...]:
    """``((row offset, rows, width), ...)`` of each plane of ``qweight`` (version 1: one plane of ``bits``;
    version 3: ``ceil(K/128)*4*w`` rows a plane)."""
    widths = (bits,) if layout == 1 else lowbit.plane_widths(bits)
    out, row = [], 0
    for w in widths:
        rows = -(-k // KCHUNK) * 4 * w if layout == 3 else -(-k * w // 32)
        out.append((row, rows, w))
        row += rows
    return tuple(out)


def qweight_rows(k: int, bits: int, layout: int) -> int:
    """Rows of ``qweight`` for K codes of ``bits`` bits: ``sum_p ceil(K*w_p/32)`` (version 1: ``ceil(K*bits/32)``;
    version 3: ``ceil(K/128)*4*bits``)."""
    return sum(rows for _, rows, _ in plane_rows(k, bits, layout))


def pack_codes(codes: np.ndarray, bits: int, layout: int) -> np.ndarray:
    """(K, N) codes -> (qweight_rows(K, bits, layout), N) uint32 words in ``layout``."""
    if layout == 1:
        return lowbit.pack(codes, bits, axis=0)
    planes = lowbit.split_planes(codes, bits)
    pack = _pack_kernel_order if layout == 3 else (lambda p, w: lowbit.pack(p, w, axis=0))
    words = [pack(p, w) for p, w in zip(planes, lowbit.plane_widths(bits), strict=True)]
    return np.ascontiguousarray(np.concatenate(words, axis=0))


def unpack_codes(words: np.ndarray, bits: int, k: int, layout: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: the (K, N) uint8 codes."""
    if layout == 1:
        return lowbit.unpack(words, bits, k, axis=0)
    if layout == 3:
        planes = [_unpack_kernel_order(words[r0 : r0 + rows], w, k) for r0, rows, w in plane_rows(k, bits, layout)]
    else:
        planes = [lowbit.unpack(words[r0 : r0 + rows], w, k, axis=0) for r0, rows, w in plane_rows(k, bits, layout)]
    return lowbit.join_planes(planes, bits)


def zero_bits(bits: int, layout: int) -> int:
    """Bits one stored integer zero takes in ``layout``: 8 (a byte) in version 3 for widths 3, 5, 6, 7, else ``bits``."""
    return 8 if layout == 3 and bits & (bits - 1) != 0 else bits


def zero_words(groups: int, n: int, bits: int, layout: int) -> int:
    """Length of the 1-D ``zeros`` word array of (groups, n) integer zeros of ``bits``-bit codes in ``layout``."""
    return -(-groups * n * zero_bits(bits, layout) // 32)


def pack_zeros(zeros: np.ndarray, bits: int, layout: int) -> np.ndarray:
    """(G, N) integer zero codes (each in ``[0, 2**bits)``) -> the ``(zero_words(G, N, bits, layout),)`` uint32
    words of ``layout`` (the module docstring)."""
    z = np.asarray(zeros)
    if z.ndim != 2:
        raise QuantizeError(f"pack_zeros: expected (G, N) zero codes, got shape {z.shape}")
    if z.size and (not np.issubdtype(z.dtype, np.integer) or int(z.min()) < 0 or int(z.max()) >= 1 << bits):
        raise QuantizeError(f"pack_zeros: zero codes must be integers in [0, {1 << bits}) for {bits}-bit codes")
    return lowbit.pack(z.reshape(-1), zero_bits(bits, layout))


def unpack_zeros(words: np.ndarray, bits: int, groups: int, n: int, layout: int) -> np.ndarray:
    """Inverse of :func:`pack_zeros`: the (groups, n) uint8 zero codes."""
    z = lowbit.unpack(np.asarray(words).reshape(-1), zero_bits(bits, layout), groups * n).reshape(groups, n)
    if zero_bits(bits, layout) != bits and z.size and int(z.max()) >= 1 << bits:
        raise QuantizeError(f"unpack_zeros: a byte holds {int(z.max())}, not a {bits}-bit zero code (layout {layout})")
    return z


def kernel_order_rows(w: int) -> np.ndarray:
    """``(4w, 32/w)`` int array: the row inside its 128-row chunk of the code at bit ``i*w`` of chunk row ``r``
    of a version-3 plane of width ``w`` (1, 2, 4 or 8) -- the formula in the module docstring."""
    if w not in (1, 2, 4, 8):
        raise QuantizeError(f"kernel order: plane width {w} is not 1, 2, 4 or 8")
    p = 32 // w
    r = np.arange(4 * w)[:, None]
    i = np.arange(p)[None, :]
    t, q = r // w, r % w
    e, j = i // (p // 2), i % (p // 2)
    return 16 * (q * (p // 4) + j // 2) + 8 * (j % 2) + 2 * t + e


def _pack_kernel_order(codes: np.ndarray, w: int) -> np.ndarray:
    """(K, N) codes of ``w`` bits -> (ceil(K/128)*4w, N) uint32 words of version 3 (K zero-padded)."""
    k, n = codes.shape
    c = -(-k // KCHUNK)
    padded = np.zeros((c * KCHUNK, n), dtype=np.uint32)
    padded[:k] = codes
    rows = kernel_order_rows(w)  # (4w, P)
    g = padded.reshape(c, KCHUNK, n)[:, rows, :]  # (c, 4w, P, n)
    shifts = (np.arange(32 // w, dtype=np.uint32) * np.uint32(w))[None, None, :, None]
    out = np.bitwise_or.reduce(g << shifts, axis=2)
    return np.ascontiguousarray(out.reshape(c * 4 * w, n).astype(np.uint32))


def _unpack_kernel_order(words: np.ndarray, w: int, k: int) -> np.ndarray:
    """Inverse of :func:`_pack_kernel_order`: the (K, N) uint8 codes (the padding rows dropped)."""
    words = np.asarray(words, dtype=np.uint32)
    n = words.shape[1]
    c = words.shape[0] // (4 * w)
    rows = kernel_order_rows(w)
    shifts = (np.arange(32 // w, dtype=np.uint32) * np.uint32(w))[None, None, :, None]
    codes = (words.reshape(c, 4 * w, 1, n) >> shifts) & np.uint32((1 << w) - 1)  # (c, 4w, P, n)
    out = np.zeros((c, KCHUNK, n), dtype=np.uint8)
    out[:, rows, :] = codes.astype(np.uint8)
    return out.reshape(c * KCHUNK, n)[:k]
