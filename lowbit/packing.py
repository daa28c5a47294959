"""Packing sub-byte codes into 32-bit words, and back.

A low-bit tensor lives in memory as unsigned *codes* (the bit patterns a
:mod:`lowbit.dtypes` type's ``encode`` returns) packed densely into ``uint32``
words.  This module owns that host-side representation.

The one layout built today is ``"lsb"`` (:data:`LSB`): along the packed axis,
code ``i`` occupies bits ``[i*bits, (i+1)*bits)`` of the little-endian
concatenation of the words, i.e. word ``w`` holds bits ``[32*w, 32*w + 32)``
and bit 0 of a word is its least significant bit.  Widths that do not divide
32 (3, 5, 6, 7) therefore straddle word boundaries: with ``bits=3`` code 10
sits in bits 30..31 of word 0 and bit 0 of word 1.  ``n`` codes take
``ceil(n*bits/32)`` words; the padding bits above the last code are zero.
This is the order a GPU thread reads when it shifts a loaded word right by
``bits`` at a time, and what the numpy reference interpreter, the emulator's
tests and the quantization helpers (:mod:`lowbit.quant`) exchange.

Why a named :class:`Packing` value: ``pack`` and ``unpack`` take
``layout=`` so that a caller names the stream order it exchanges; only
``"lsb"`` is registered in :data:`PACKINGS`.  The device layouts a kernel
reads -- bit planes (version 2) and the kernel order whose words hold one
thread's mma B fragments (version 3) -- are not packings of a stream but
rearrangements of a whole weight with its scales and zeros; they live in
:mod:`lowbit.ops.layouts`, built from the tools below.

Bit planes (:func:`plane_widths`, :func:`split_planes`, :func:`join_planes`)
are the other host-side tool: a ``bits``-wide code cut into planes whose
widths are powers of two (FP6-LLM's split of a 6-bit weight into a 4-bit and
a 2-bit plane), so that each plane packed on its own never straddles a word.
``QuantizedWeight`` layout version 2 (:mod:`lowbit.ops.layouts`) stores them.

Both directions are vectorised: codes are processed in periods of
``32 / gcd(bits, 32)`` codes, which fill exactly ``bits / gcd(bits, 32)``
words, so the Python loop runs at most 32 times whatever the array size and
every step is a whole-array numpy shift/or.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from lowbit.errors import PackError

__all__ = [
    "LSB", "PACKINGS", "Packing", "LsbPacking", "get_packing", "join_planes", "num_words", "pack", "plane_widths",
    "split_planes", "unpack",
]  # fmt: skip

WORD_BITS = 32
_MAX_BITS = 8


def num_words(count: int, bits: int) -> int:
    """Number of 32-bit words that ``count`` codes of ``bits`` bits occupy: ``ceil(count*bits/32)``."""
    _check_bits(bits)
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise PackError(f"count must be a non-negative integer, got {count!r}")
    return -(-int(count) * bits // WORD_BITS)


@dataclass(frozen=True)
class Packing:
    """A named way of laying codes out in ``uint32`` words (the seam for device layouts).

    Subclasses implement :meth:`pack` and :meth:`unpack`; the contract every
    layout keeps is ``unpack(pack(c, bits, axis), bits, c.shape[axis], axis) == c``
    for codes in ``[0, 2**bits)``, and values outside that range raise
    :class:`~lowbit.errors.PackError`.
    """

    name: ClassVar[str] = "abstract"

    def pack(self, codes: np.ndarray, bits: int, axis: int = -1) -> np.ndarray:
        raise NotImplementedError

    def unpack(self, words: np.ndarray, bits: int, count: int, axis: int = -1) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class LsbPacking(Packing):
    """Dense LSB-first packing: code ``i`` in bits ``[i*bits, (i+1)*bits)`` of the word stream."""

    name: ClassVar[str] = "lsb"

    def pack(self, codes: np.ndarray, bits: int, axis: int = -1) -> np.ndarray:
        """Pack integer ``codes`` along ``axis`` into ``uint32`` words.

        Returns an array shaped like ``codes`` except that ``axis`` has length
        ``ceil(n*bits/32)``.  Raises :class:`PackError` for a width outside
        1..8, a non-integer array, a 0-d array, a bad axis, or a code outside
        ``[0, 2**bits)`` (the message names the first such index and value;
        encode signed values with their dtype first).
        """
        _check_bits(bits)
        arr = _as_integer_array(codes, "codes")
        ax = _normalize_axis(axis, arr.ndim, "codes")
        _check_range(arr, bits)
        n = arr.shape[ax]
        moved = np.moveaxis(arr, ax, -1)
        lead = moved.shape[:-1]
        flat = moved.reshape(math.prod(lead), n)
        per, wper = _period(bits)
        groups = -(-n // per)
        if n % per:  # zero codes fill the last period, so the padding bits are zero
            padded = np.zeros((flat.shape[0], groups * per), dtype=flat.dtype)
            padded[:, :n] = flat
            flat = padded
        chunks = flat.reshape(flat.shape[0], groups, per)
        out = np.zeros((flat.shape[0], groups, wper), dtype=np.uint32)
        for k in range(per):
            word, off = divmod(k * bits, WORD_BITS)
            code = chunks[:, :, k].astype(np.uint32)
            # uint32 << off keeps the low 32 bits: the part that fits in `word`.
            out[:, :, word] |= code << np.uint32(off)
            if off + bits > WORD_BITS:  # the code straddles into the next word
                out[:, :, word + 1] |= code >> np.uint32(WORD_BITS - off)
        words = out.reshape(flat.shape[0], groups * wper)[:, : num_words(n, bits)]
        return np.ascontiguousarray(np.moveaxis(words.reshape(*lead, num_words(n, bits)), -1, ax))

    def unpack(self, words: np.ndarray, bits: int, count: int, axis: int = -1) -> np.ndarray:
        """Unpack ``count`` codes of ``bits`` bits along ``axis`` from ``words``.

        ``words`` is any integer array whose values fit in 32 unsigned bits
        (``int32`` words, as torch stores them, are reinterpreted bit for
        bit).  Words beyond the ``ceil(count*bits/32)`` needed are ignored;
        fewer raise :class:`PackError`.  Returns ``uint8`` codes shaped like
        ``words`` with ``axis`` of length ``count``.
        """
        _check_bits(bits)
        arr = _as_words(words)
        ax = _normalize_axis(axis, arr.ndim, "words")
        need = num_words(count, bits)
        have = arr.shape[ax]
        if need > have:
            raise PackError(
                f"unpack: {count} codes of {bits} bits need {need} words along axis {ax}, "
                f"but words.shape[{ax}] is {have}"
            )
        moved = np.moveaxis(arr, ax, -1)
        lead = moved.shape[:-1]
        flat = moved.reshape(math.prod(lead), have)[:, :need]
        per, wper = _period(bits)
        groups = -(-count // per)
        padded = np.zeros((flat.shape[0], groups * wper), dtype=np.uint32)
        padded[:, :need] = flat
        chunks = padded.reshape(flat.shape[0], groups, wper)
        mask = np.uint32((1 << bits) - 1)
        out = np.empty((flat.shape[0], groups, per), dtype=np.uint8)
        for k in range(per):
            word, off = divmod(k * bits, WORD_BITS)
            code = chunks[:, :, word] >> np.uint32(off)
            if off + bits > WORD_BITS:
                code = code | (chunks[:, :, word + 1] << np.uint32(WORD_BITS - off))
            out[:, :, k] = code & mask
        codes = out.reshape(flat.shape[0], groups * per)[:, :count]
        return np.ascontiguousarray(np.moveaxis(codes.reshape(*lead, count), -1, ax))


LSB = LsbPacking()
"""The dense LSB-first layout, ``layout="lsb"``."""

PACKINGS: dict[str, Packing] = {LSB.name: LSB}
"""Every named layout.  Device layouts (fragment-order interleaved) will be added here."""


def get_packing(layout: str | Packing) -> Packing:
    """Resolve a layout name (``"lsb"``) or pass a :class:`Packing` through."""
    if isinstance(layout, Packing):
        return layout
    try:
        return PACKINGS[layout]
    except (KeyError, TypeError):
        raise PackError(f"unknown packing layout {layout!r}; known: {sorted(PACKINGS)}") from None


def pack(codes: np.ndarray, bits: int, axis: int = -1, *, layout: str | Packing = "lsb") -> np.ndarray:
    """Pack unsigned ``codes`` (each in ``[0, 2**bits)``) along ``axis`` into ``uint32`` words.

    ``layout`` names the word layout (only ``"lsb"`` today, see the module
    docstring).  ``result.shape[axis] == ceil(codes.shape[axis] * bits / 32)``.
    """
    return get_packing(layout).pack(codes, bits, axis)


def unpack(
    words: np.ndarray, bits: int, count: int, axis: int = -1, *, layout: str | Packing = "lsb"
) -> np.ndarray:
    """Inverse of :func:`pack`: ``count`` ``uint8`` codes along ``axis``."""
    return get_packing(layout).unpack(words, bits, count, axis)


# -- bit planes -----------------------------------------------------------------


def plane_widths(bits: int) -> tuple[int, ...]:
    """The bit-plane widths of a ``bits``-bit code: the powers of two of ``bits``' binary form, widest first.

    3 -> (2, 1), 5 -> (4, 1), 6 -> (4, 2), 7 -> (4, 2, 1); a power of two is
    one plane: 1 -> (1,), 2 -> (2,), 4 -> (4,), 8 -> (8,).  Law:
    ``sum(plane_widths(b)) == b`` and every width divides 32, so a plane packed
    LSB-first never straddles a word.  Plane ``p`` holds bits ``[o_p, o_p + w_p)``
    of the code, ``o_p = sum(plane_widths(b)[:p])``: the widest plane holds
    the low bits (for 3 bits: bits 0-1 in the 2-bit plane, bit 2 in the 1-bit plane).
    """
    _check_bits(bits)
    return tuple(w for w in (8, 4, 2, 1) if bits & w)


def split_planes(codes: np.ndarray, bits: int) -> tuple[np.ndarray, ...]:
    """``bits``-bit ``codes`` -> one ``uint8`` array per plane of :func:`plane_widths` (same shape).

    Plane ``p`` is ``(codes >> o_p) & (2**w_p - 1)``.  Raises :class:`PackError`
    for a code outside ``[0, 2**bits)`` (naming its index), as :func:`pack` does.
    Inverse: :func:`join_planes`.
    """
    _check_bits(bits)
    arr = _as_integer_array(codes, "codes")
    _check_range(arr, bits)
    c = arr.astype(np.uint8)
    out, shift = [], 0
    for w in plane_widths(bits):
        out.append(np.ascontiguousarray((c >> np.uint8(shift)) & np.uint8((1 << w) - 1)))
        shift += w
    return tuple(out)


def join_planes(planes: tuple[np.ndarray, ...] | list[np.ndarray], bits: int) -> np.ndarray:
    """Inverse of :func:`split_planes`: ``sum(plane_p << o_p)`` as ``uint8`` codes.

    ``planes`` must hold one array per width of ``plane_widths(bits)``, all of
    one shape, plane ``p``'s values in ``[0, 2**w_p)``; otherwise :class:`PackError`.
    """
    widths = plane_widths(bits)
    if not isinstance(planes, (tuple, list)) or len(planes) != len(widths):
        got = len(planes) if isinstance(planes, (tuple, list)) else type(planes).__name__
        raise PackError(f"join_planes: {bits}-bit codes have {len(widths)} planes of widths {widths}, got {got}")
    arrs = [_as_integer_array(p, f"plane {i}") for i, p in enumerate(planes)]
    if len({a.shape for a in arrs}) > 1:
        raise PackError(f"join_planes: the planes have different shapes {[a.shape for a in arrs]}")
    out = np.zeros(arrs[0].shape, dtype=np.uint8)
    shift = 0
    for i, (a, w) in enumerate(zip(arrs, widths, strict=True)):
        try:
            _check_range(a, w)
        except PackError as exc:
            raise PackError(f"join_planes: plane {i} ({w} bits): {exc}") from None
        out |= a.astype(np.uint8) << np.uint8(shift)
        shift += w
    return out


# -- validation -----------------------------------------------------------------


def _check_bits(bits: object) -> None:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= _MAX_BITS:
        raise PackError(f"bits must be an integer in 1..{_MAX_BITS}, got {bits!r}")


def _period(bits: int) -> tuple[int, int]:
    """(codes, words) in one repeat of the bit pattern: ``lcm(bits, 32)`` bits."""
    g = math.gcd(bits, WORD_BITS)
    return WORD_BITS // g, bits // g


def _as_integer_array(x: object, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise PackError(f"{what} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise PackError(f"{what} must have at least one dimension, got a 0-d array")
    return arr


def _normalize_axis(axis: object, ndim: int, what: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -ndim <= axis < ndim:
        raise PackError(f"axis {axis!r} is out of range for {what} with {ndim} dimension(s)")
    return int(axis) % ndim


def _check_range(arr: np.ndarray, bits: int) -> None:
    if arr.size == 0 or (arr.min() >= 0 and arr.max() < (1 << bits)):
        return
    bad = (arr < 0) | (arr >= (1 << bits))
    if bad.any():
        idx = np.unravel_index(int(np.argmax(bad)), arr.shape)
        index = tuple(int(i) for i in idx)
        raise PackError(
            f"code {int(arr[index])} at index {index} is outside [0, {1 << bits}) for {bits}-bit packing "
            "(encode signed values with their dtype first)"
        )


def _as_words(x: object) -> np.ndarray:
    arr = _as_integer_array(x, "words")
    if arr.dtype == np.uint32:
        return arr
    if arr.dtype == np.int32:  # torch has no uint32: reinterpret the bits
        return arr.view(np.uint32)
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        flat_bad = (arr < 0) | (arr > 0xFFFFFFFF)
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(flat_bad)), arr.shape))
        raise PackError(f"word {int(arr[index])} at index {index} does not fit in 32 unsigned bits")
    return arr.astype(np.uint32)
