"""Bank-conflict analysis and ldmatrix addressing: what a warp's access through a memory layout costs.

This module only produces per-lane byte addresses from layouts; the cost
model (banks, phases, wavefronts) is :mod:`lowbit.arch.banks`, shared with
the emulator so the two cannot disagree.

* :func:`warp_accesses` / :func:`access_wavefronts`: a warp reads or writes
  the elements a register layout assigns it, ``vector`` consecutive slots at
  a time, through a :class:`~lowbit.layout.subbyte.MemoryLayout`.
* :func:`ldmatrix_plan`: can ``ldmatrix`` (x1/x2/x4, optionally .trans)
  produce a fragment layout from a memory layout, and if so which row
  address each lane passes.  ldmatrix semantics (PTX ISA 9.7.14.5.15): for
  matrix i, lane ``8i + r`` supplies the address of row r (16 contiguous,
  16-byte aligned bytes); without .trans, lane l's register i holds bytes
  ``4 (l % 4) .. 4 (l % 4) + 3`` of row ``l >> 2``; with .trans (b16 only) it
  holds the 16-bit elements at column ``l >> 2`` of rows ``2 (l % 4) + {0, 1}``.
  The register's elements are the fragment's slots, LSB-first.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.arch import banks as bank_model
from lowbit.errors import LayoutError
from lowbit.layout.register import RegisterLayout
from lowbit.layout.subbyte import MemoryLayout

WARP = bank_model.WARP_SIZE


def _warp_threads(layout: RegisterLayout, warp: int) -> range:
    if layout.num_threads % WARP or not 0 <= warp < layout.num_threads // WARP:
        raise LayoutError(
            f"warp {warp} does not exist in a layout of {layout.num_threads} threads (whole warps of {WARP})",
            layout.shape,
        )
    return range(warp * WARP, (warp + 1) * WARP)


def warp_accesses(
    memory: MemoryLayout, layout: RegisterLayout, vector: int = 1, warp: int = 0
) -> tuple[tuple[int, ...], ...]:
    """Byte addresses, per access instruction and lane, of a warp moving its slots ``vector`` at a time.

    Instruction k moves slots ``k*vector .. k*vector+vector-1`` of every lane;
    those elements must be contiguous in memory (LayoutError otherwise).
    """
    if vector < 1 or layout.local_size % vector:
        raise LayoutError(f"vector {vector} does not divide {layout.local_size} slots", layout.shape)
    if (vector * memory.bits) % 8:
        raise LayoutError(f"an access of {vector} x {memory.bits} bits is not whole bytes", layout.shape)
    out = []
    for k in range(layout.local_size // vector):
        row = []
        for t in _warp_threads(layout, warp):
            first = memory.bit_address(layout.coords(t, k * vector))
            for j in range(1, vector):
                if memory.bit_address(layout.coords(t, k * vector + j)) != first + j * memory.bits:
                    raise LayoutError(
                        f"thread {t} slots {k * vector}..{k * vector + vector - 1} are not contiguous in {memory}",
                        layout.shape,
                    )
            if first % 8:
                raise LayoutError(f"thread {t} access starts at bit {first}, not on a byte", layout.shape)
            row.append(first // 8)
        out.append(tuple(row))
    return tuple(out)


def access_wavefronts(memory: MemoryLayout, layout: RegisterLayout, vector: int = 1, warp: int = 0) -> int:
    """Total shared-memory wavefronts of :func:`warp_accesses` under the :mod:`lowbit.arch.banks` model."""
    width = vector * memory.bits // 8
    return sum(bank_model.wavefronts(addrs, width) for addrs in warp_accesses(memory, layout, vector, warp))


@dataclass(frozen=True)
class LdmatrixPlan:
    """The ldmatrix instructions that load one warp's fragment.

    ``nums[k]`` is instruction k's matrix count (x1/x2/x4); it fills the
    fragment's 32-bit registers ``sum(nums[:k]) ..``.  ``addresses[k][lane]``
    is the byte address lane passes (``None`` for lanes whose address the
    instruction ignores).
    """

    trans: bool
    nums: tuple[int, ...]
    addresses: tuple[tuple[int | None, ...], ...]

    def wavefronts(self) -> int:
        """Shared-memory wavefronts of all the instructions (:func:`lowbit.arch.banks.ldmatrix_wavefronts`)."""
        return sum(
            bank_model.ldmatrix_wavefronts([a for a in addrs[: 8 * n] if a is not None], n)
            for n, addrs in zip(self.nums, self.addresses)
        )


def _split_registers(count: int) -> tuple[int, ...]:
    out = [4] * (count // 4)
    rest = count % 4
    if rest >= 2:
        out.append(2)
    if rest % 2:
        out.append(1)
    return tuple(out)


def _matrix_rows(memory: MemoryLayout, frag: RegisterLayout, base: int, reg: int, trans: bool) -> list[int] | None:
    """Bit addresses of the 8 rows of the matrix feeding register ``reg``, or None if ldmatrix cannot."""
    bits = memory.bits
    per = 32 // bits
    rows = []
    for r in range(8):
        if not trans:
            start = memory.bit_address(frag.coords(base + 4 * r, reg * per))
            ok = all(
                memory.bit_address(frag.coords(base + 4 * r + t, reg * per + e)) == start + 32 * t + bits * e
                for t in range(4)
                for e in range(per)
            )
        else:
            slot = reg * 2 + r % 2
            start = memory.bit_address(frag.coords(base + r // 2, slot))
            ok = all(
                memory.bit_address(frag.coords(base + 4 * g + r // 2, slot)) == start + 16 * g for g in range(8)
            )
        if not ok or start % 128:
            return None
        rows.append(start // 8)
    return rows


def ldmatrix_plan(
    memory: MemoryLayout, fragment: RegisterLayout, *, trans: bool | None = None, warp: int = 0
) -> LdmatrixPlan | None:
    """How ldmatrix loads warp ``warp``'s part of ``fragment`` from ``memory``, or None if it cannot.

    ``trans=None`` tries without .trans, then with it (.trans only moves
    16-bit elements).  Sub-byte elements (1, 2, 4, 8 bits) load as b16 pairs:
    a register's ``32 // bits`` elements must be 4 contiguous bytes of a row.
    """
    bits = memory.bits
    if bits not in (1, 2, 4, 8, 16):
        return None
    if (fragment.local_size * bits) % 32:
        return None
    base = _warp_threads(fragment, warp)[0]
    nums = _split_registers(fragment.local_size * bits // 32)
    for tr in ((False, True) if trans is None else (trans,)):
        if tr and bits != 16:
            continue
        addresses: list[tuple[int | None, ...]] = []
        reg = 0
        for n in nums:
            lanes: list[int | None] = [None] * WARP
            for i in range(n):
                rows = _matrix_rows(memory, fragment, base, reg + i, tr)
                if rows is None:
                    break
                lanes[8 * i : 8 * i + 8] = rows
            else:
                addresses.append(tuple(lanes))
                reg += n
                continue
            break
        if len(addresses) == len(nums):
            return LdmatrixPlan(tr, nums, tuple(addresses))
    return None


__all__ = ["LdmatrixPlan", "access_wavefronts", "ldmatrix_plan", "warp_accesses"]
