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

Zeros (``zero="int"``) and scales are the same in every version: zeros
stay a dense version-1 stream (they are G*N codes, tiny next to the weight).
"""

from __future__ import annotations

import numpy as np

import lowbit
from lowbit.errors import QuantizeError

__all__ = ["LAYOUTS", "pack_codes", "plane_rows", "qweight_rows", "resolve_layout", "unpack_codes"]

#: Layout versions of ``qweight``: version -> name.
LAYOUTS: dict[int, str] = {1: "lsb", 2: "planes"}


def resolve_layout(layout: object, where: str = "layout") -> int:
    """A layout version from its number (1, 2) or name ("lsb", "planes"); QuantizeError naming ``where`` otherwise."""
    if isinstance(layout, str):
        for version, name in LAYOUTS.items():
            if name == layout:
                return version
    elif isinstance(layout, (int, np.integer)) and not isinstance(layout, bool) and int(layout) in LAYOUTS:
        return int(layout)
    known = ", ".join(f"{v} ({n!r})" for v, n in LAYOUTS.items())
    raise QuantizeError(f"{where}: unknown layout version {layout!r}; known: {known}")


def plane_rows(k: int, bits: int, layout: int) -> tuple[tuple[int, int, int], ...]:
    """``((row offset, rows, width), ...)`` of each plane of ``qweight`` (version 1: one plane of ``bits``)."""
    widths = (bits,) if layout == 1 else lowbit.plane_widths(bits)
    out, row = [], 0
    for w in widths:
        rows = -(-k * w // 32)
        out.append((row, rows, w))
        row += rows
    return tuple(out)


def qweight_rows(k: int, bits: int, layout: int) -> int:
    """Rows of ``qweight`` for K codes of ``bits`` bits: ``sum_p ceil(K*w_p/32)`` (version 1: ``ceil(K*bits/32)``)."""
    return sum(rows for _, rows, _ in plane_rows(k, bits, layout))


def pack_codes(codes: np.ndarray, bits: int, layout: int) -> np.ndarray:
    """(K, N) codes -> (qweight_rows(K, bits, layout), N) uint32 words in ``layout``."""
    if layout == 1:
        return lowbit.pack(codes, bits, axis=0)
    planes = lowbit.split_planes(codes, bits)
    words = [lowbit.pack(p, w, axis=0) for p, w in zip(planes, lowbit.plane_widths(bits), strict=True)]
    return np.ascontiguousarray(np.concatenate(words, axis=0))


def unpack_codes(words: np.ndarray, bits: int, k: int, layout: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: the (K, N) uint8 codes."""
    if layout == 1:
        return lowbit.unpack(words, bits, k, axis=0)
    planes = [lowbit.unpack(words[r0 : r0 + rows], w, k, axis=0) for r0, rows, w in plane_rows(k, bits, layout)]
    return lowbit.join_planes(planes, bits)
