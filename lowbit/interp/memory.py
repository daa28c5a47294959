"""Global memory for the interpreter: bit-addressed reads and writes of strided views.

Each pointer argument is the caller's numpy array, used in place through a
flat ``uint8`` view (stores land directly in the caller's array).  A global
view element ``i`` (multi-index) of a ``bits``-wide dtype lives at bit
``bits * sum(i_d * stride_d)`` from the base, LSB-first inside little-endian
bytes -- the order ``lowbit.pack`` writes.  Byte-multiple widths are
gathered byte by byte; other widths (1..57 bits) through an 8-byte window
shifted into place, so a 3-bit code straddling two bytes reads correctly.

Elements outside the view's ``shape`` (or off the mask) are never touched;
an element inside the shape but outside the *buffer* is an
:class:`~lowbit.interp.values.InterpError` naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowbit.dtypes import DType
from lowbit.interp.values import InterpError

__all__ = ["Buffer", "GlobalViewValue", "gather", "scatter", "tile_indices"]


@dataclass(frozen=True, eq=False)
class Buffer:
    """A pointer argument: its name and the flat bytes of the caller's array."""

    name: str
    data: np.ndarray  # uint8, 1-D, a view of the caller's array


@dataclass(frozen=True, eq=False)
class GlobalViewValue:
    """A global view at run time: evaluated shape and strides (elements) over a buffer."""

    buf: Buffer
    dtype: DType
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def tile_indices(view: GlobalViewValue, offsets: tuple[int, ...], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(linear element index, in-bounds mask) of every element of a tile at ``offsets``."""
    lin = np.zeros(shape, dtype=np.int64)
    ok = np.ones(shape, dtype=bool)
    for d, (o, n) in enumerate(zip(offsets, shape)):
        idx = (o + np.arange(n, dtype=np.int64)).reshape([n if i == d else 1 for i in range(len(shape))])
        ok = ok & (idx >= 0) & (idx < view.shape[d])
        lin = lin + idx * view.strides[d]
    return lin, ok


def _check_inside(view: GlobalViewValue, bitaddr: np.ndarray, where: str) -> None:
    nbits = view.buf.data.size * 8
    bad = (bitaddr < 0) | (bitaddr + view.dtype.bits > nbits)
    if bad.any():
        first = int(bitaddr[bad].flat[0])
        raise InterpError(
            f"{where}: element at bit {first} lies outside parameter '{view.buf.name}' "
            f"({view.buf.data.size} bytes); check the view's shape and strides"
        )


def _window(data: np.ndarray, byte: np.ndarray, nbytes: int) -> np.ndarray:
    word = np.zeros(byte.shape, dtype=np.uint64)
    last = data.size - 1
    for k in range(nbytes):
        word |= data[np.minimum(byte + k, last)].astype(np.uint64) << np.uint64(8 * k)
    return word


def gather(view: GlobalViewValue, lin: np.ndarray, active: np.ndarray, where: str) -> np.ndarray:
    """Codes (uint64) of the elements at linear indices ``lin`` where ``active`` (0 elsewhere)."""
    bits = view.dtype.bits
    bitaddr = np.where(active, lin, 0) * bits
    _check_inside(view, bitaddr[active], where)
    data = view.buf.data
    if bits % 8 == 0:
        codes = _window(data, bitaddr // 8, bits // 8)
    elif bits <= 57:
        w = _window(data, bitaddr // 8, 8)
        codes = (w >> (bitaddr % 8).astype(np.uint64)) & np.uint64((1 << bits) - 1)
    else:
        raise InterpError(f"{where}: {bits}-bit elements that are not byte multiples are not supported")
    return np.where(active, codes, np.uint64(0))


def scatter(view: GlobalViewValue, lin: np.ndarray, active: np.ndarray, codes: np.ndarray, where: str) -> None:
    """Write ``codes`` to the elements at ``lin`` where ``active``; sub-byte writes keep neighbours."""
    bits = view.dtype.bits
    lin, codes = lin[active], codes[active].astype(np.uint64)
    bitaddr = lin * bits
    _check_inside(view, bitaddr, where)
    data = view.buf.data
    byte, shift = bitaddr // 8, (bitaddr % 8).astype(np.uint64)
    if bits % 8 == 0:
        for k in range(bits // 8):
            data[byte + k] = ((codes >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)
        return
    mask = np.uint64((1 << bits) - 1) << shift
    val = (codes & np.uint64((1 << bits) - 1)) << shift
    last = data.size - 1
    for k in range(8):
        m = ((mask >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)
        v = ((val >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)
        sel = m != 0
        if not sel.any():
            continue
        idx = np.minimum(byte[sel] + k, last)
        np.bitwise_and.at(data, idx, ~m[sel])
        np.bitwise_or.at(data, idx, v[sel])
