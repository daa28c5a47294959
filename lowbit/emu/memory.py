"""Memory of an emulated launch: global heap, per-block shared, per-thread local, params.

State spaces (PTX ISA 5.1) and the addresses the emulator gives them:

* **global** (and ``.const`` module variables): one little-endian byte heap.
  Every numpy argument array (and every module-scope ``.global``/``.const``
  variable) gets a region at an address ``>= GLOBAL_BASE`` whose residue
  modulo 256 is the host array's own (module variables: 0), so a view that
  starts at an odd offset of its buffer is as misaligned on the emulator as
  it would be on a GPU (kernels specialised on 16-byte alignment, vector
  accesses and their alignment faults depend on it), with an unmapped gap after it so that an off-by-a-little access faults
  instead of landing in the neighbour.  Arguments are copied in before the
  launch and back after it (so the caller's arrays are updated in place); the
  same array passed twice is mapped once.
* **shared**: ``nblocks x size`` bytes (static variables first, then the
  ``.extern .shared`` dynamic array); shared-window addresses are offsets.
* **local**: ``nthreads x size`` bytes, per thread.
* **generic** addresses (ISA 5.1.7 / ``cvta``): global addresses are generic
  addresses; shared offset ``o`` is ``SHARED_WINDOW + o`` and local offset
  ``o`` is ``LOCAL_WINDOW + o``.

Shared and local memory carry a definedness shadow (one bool per byte) for
the valgrind-style checks; global memory is defined (it holds the caller's data).
"""

from __future__ import annotations

import numpy as np

from lowbit.errors import LaunchError

GLOBAL_BASE = 1 << 40
SHARED_WINDOW = 1 << 44
LOCAL_WINDOW = 1 << 45
WINDOW_SIZE = 1 << 32
_GAP = 4096

UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _round_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class ByteSpace:
    """A flat byte array with typed views (``view[k]`` is the array as ``uint{8k}``)."""

    def __init__(self, nbytes: int) -> None:
        self.data = np.zeros(_round_up(max(nbytes, 16), 16), np.uint8)
        self.view = {k: self.data.view(t) for k, t in UINT.items()}

    def read(self, off: np.ndarray, esize: int, nvec: int) -> np.ndarray:
        """``(n, nvec)`` elements of ``esize`` bytes at byte offsets ``off`` (aligned to ``esize``)."""
        idx = (off // esize)[:, None] + np.arange(nvec)
        return self.view[esize][idx]

    def write(self, off: np.ndarray, esize: int, values: np.ndarray) -> None:
        idx = (off // esize)[:, None] + np.arange(values.shape[1])
        self.view[esize][idx] = values


class GlobalHeap(ByteSpace):
    """The global address space: caller arrays and module variables at fixed addresses."""

    def __init__(self) -> None:
        self._regions: list[tuple[int, int, str, np.ndarray | None, bytes | None, bool]] = []
        self._by_ptr: dict[tuple[int, int], int] = {}
        self._aliases: dict[int, list[str]] = {}  # base -> every parameter name the array was passed as
        self._next = GLOBAL_BASE

    def add_array(self, array: np.ndarray, name: str) -> int:
        """Map ``array`` (C-contiguous) and return its device address."""
        if not array.flags.c_contiguous:
            raise LaunchError(f"argument {name}: the array must be C-contiguous (use np.ascontiguousarray)")
        key = (array.__array_interface__["data"][0], array.nbytes)
        if key in self._by_ptr:
            base = self._by_ptr[key]
            self._aliases[base].append(name)
            return base
        base = self._alloc(array.nbytes, name, array, None, bool(array.flags.writeable), key[0] % 256)
        self._by_ptr[key] = base
        self._aliases[base] = [name]
        return base

    def add_bytes(self, nbytes: int, name: str, init: bytes | None, writable: bool = True) -> int:
        """Map a module variable of ``nbytes`` (zero-filled unless ``init`` is given)."""
        return self._alloc(nbytes, name, None, init, writable)

    def _alloc(self, nbytes, name, array, init, writable, residue: int = 0) -> int:
        base = self._next + residue
        self._regions.append((base, nbytes, name, array, init, writable))
        self._next = _round_up(base + max(nbytes, 1) + _GAP, 256)
        return base

    def finalize(self) -> None:
        """Allocate the heap and copy the initial contents in."""
        super().__init__(self._next - GLOBAL_BASE)
        self.bases = np.array([r[0] for r in self._regions] or [0], np.int64)
        self.ends = np.array([r[0] + r[1] for r in self._regions] or [0], np.int64)
        self.writable = np.array([r[5] for r in self._regions] or [False], bool)
        self.names = [r[2] for r in self._regions] or ["?"]
        #: the name traffic is counted under: "p=q" for one array passed as parameters p and q
        self.buffer_names = ["=".join(self._aliases.get(r[0], [r[2]])) for r in self._regions] or ["?"]
        for base, nbytes, _, array, init, _ in self._regions:
            off = base - GLOBAL_BASE
            if array is not None:
                self.data[off : off + nbytes] = array.reshape(-1).view(np.uint8)
            elif init is not None:
                self.data[off : off + len(init)] = np.frombuffer(init, np.uint8)

    def copy_back(self) -> None:
        """Write every writable argument array back from the heap."""
        for base, nbytes, _, array, _, writable in self._regions:
            if array is not None and writable and nbytes:
                off = base - GLOBAL_BASE
                array.reshape(-1).view(np.uint8)[:] = self.data[off : off + nbytes]

    def locate(self, addr: np.ndarray, nbytes: int, write: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(ok, region)``: which (int64) addresses' ``nbytes`` lie inside one mapped (writable) region, and
        the index of the region each address falls in (meaningful where ``ok``)."""
        region = np.searchsorted(self.bases, addr, side="right").astype(np.int64) - 1
        inside = region >= 0
        region = np.maximum(region, 0)
        ok = inside & (addr >= self.bases[region]) & (addr + nbytes <= self.ends[region])
        if write:
            ok &= self.writable[region]
        return ok, region

    def check(self, addr: np.ndarray, nbytes: int, write: bool) -> np.ndarray:
        """Boolean mask of the (int64) addresses whose ``nbytes`` lie inside one mapped (writable) region."""
        return self.locate(addr, nbytes, write)[0]

    def region_name(self, addr: int) -> str:
        i = int(np.searchsorted(self.bases, addr, side="right")) - 1
        if i < 0:
            return "below every buffer"
        return f"{self.names[i]} is [{int(self.bases[i]):#x}, {int(self.ends[i]):#x})"


class ShadowSpace(ByteSpace):
    """A byte space with a per-byte definedness shadow (shared and local memory)."""

    def __init__(self, nbytes: int) -> None:
        super().__init__(nbytes)
        self.defined = np.zeros(self.data.size, bool)
