"""Sub-byte awareness: where a b-bit element lives in a thread's 32-bit registers and in memory.

Registers.  :class:`RegisterPacking` places a register layout's slots, in slot
order, into 32-bit registers LSB-first (the order the PTX ISA's mma fragment
tables use: "a0, a1, ... (low to high)").  ``dense=False`` (default) puts
``32 // b`` elements in each register and never splits one across two (a
3-bit layout wastes 2 bits per register); ``dense=True`` packs back to back,
so an element may straddle registers (what a packed 3- or 6-bit stream
loaded from memory looks like).

Memory.  :class:`MemoryLayout` is a strided layout over b-bit elements
(element offset -> bit address ``offset * b``), optionally XOR-swizzled on
*byte* addresses (``Swizzle(3, 4, 3)``: 16-byte chunks, the granularity of
``cp.async``/``ldmatrix`` rows), which works for every width -- an f16 tile
and a 4-bit tile use the same swizzle.  Shared-memory tiles and global views
are both MemoryLayouts.

A dtype is given as an int bit width or any object with an int ``.bits``
(so this module does not depend on :mod:`lowbit.dtypes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.errors import LayoutError
from lowbit.layout.register import RegisterLayout
from lowbit.layout.strided import IntTuple, Layout
from lowbit.layout.swizzle import Swizzle


def bits_of(dtype: object) -> int:
    """The bit width of ``dtype``: an int, or an object with an int ``.bits``."""
    bits = dtype if isinstance(dtype, int) and not isinstance(dtype, bool) else getattr(dtype, "bits", None)
    if not isinstance(bits, int) or isinstance(bits, bool) or bits < 1:
        raise LayoutError(f"expected a bit width or a dtype with .bits, got {dtype!r}", dtype)
    return bits


@dataclass(frozen=True)
class RegisterPacking:
    """Slots of a register layout packed LSB-first into 32-bit registers."""

    layout: RegisterLayout
    bits: int
    dense: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", bits_of(self.bits))
        if not self.dense and self.bits > 32:
            raise LayoutError(f"elements of {self.bits} bits do not fit a 32-bit register; use dense=True", self.bits)

    @property
    def per_register(self) -> int:
        """Whole elements per register when not dense (0 for elements wider than 32 bits)."""
        return 32 // self.bits

    @property
    def registers(self) -> int:
        """32-bit registers each thread needs for its slots."""
        n = self.layout.local_size
        if self.dense:
            return -(-n * self.bits // 32)
        return -(-n // self.per_register)

    def pieces(self, slot: int) -> tuple[tuple[int, int, int], ...]:
        """(register, bit offset, bit count) pieces of ``slot``, low bits first."""
        if not 0 <= slot < self.layout.local_size:
            raise LayoutError(f"slot {slot} out of range ({self.layout.local_size} slots)", self.layout.shape)
        start = slot * self.bits if self.dense else (slot // self.per_register) * 32 + (slot % self.per_register) * self.bits
        out, pos, left = [], start, self.bits
        while left:
            take = min(left, 32 - pos % 32)
            out.append((pos // 32, pos % 32, take))
            pos += take
            left -= take
        return tuple(out)

    def location(self, slot: int) -> tuple[int, int]:
        """(register, bit offset) of ``slot``; LayoutError when the slot straddles two registers."""
        pieces = self.pieces(slot)
        if len(pieces) != 1:
            raise LayoutError(f"slot {slot} of {self.bits}-bit elements straddles registers {pieces}", self.bits)
        return pieces[0][0], pieces[0][1]

    def describe(self) -> str:
        """E.g. ``16-bit slots of product(...), 2 per 32-bit register, 4 registers per thread``."""
        if self.dense:
            how = "packed back to back"
        else:
            waste = 32 - self.per_register * self.bits
            how = f"{self.per_register} per 32-bit register" + (f" ({waste} bits unused)" if waste else "")
        regs = self.registers
        return f"{self.bits}-bit slots of {self.layout.describe()}, {how}, {regs} register{'s' * (regs != 1)} per thread"

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class MemoryLayout:
    """A strided layout over ``bits``-bit elements, optionally XOR-swizzled on byte addresses."""

    layout: Layout
    bits: int
    swizzle: Swizzle | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", bits_of(self.bits))
        if not isinstance(self.layout, Layout):
            raise LayoutError(f"MemoryLayout needs a strided Layout, got {type(self.layout).__name__}", self.layout)
        if self.swizzle is not None and not isinstance(self.swizzle, Swizzle):
            raise LayoutError("MemoryLayout.swizzle must be a Swizzle or None", self.swizzle)

    @property
    def shape(self) -> IntTuple:
        return self.layout.shape

    def bit_address(self, coord: IntTuple) -> int:
        """Address, in bits, of the element's lowest bit (swizzle applied to its byte)."""
        raw = self.layout(coord) * self.bits
        if self.swizzle is None:
            return raw
        return self.swizzle(raw >> 3) * 8 + (raw & 7)

    def byte_address(self, coord: IntTuple) -> int:
        """Byte address of an element that starts on a byte boundary (else LayoutError)."""
        bit = self.bit_address(coord)
        if bit % 8:
            raise LayoutError(f"element {coord} of {self} starts at bit {bit}, not on a byte", self.shape, coord)
        return bit // 8

    def segments(self, coord: IntTuple) -> tuple[tuple[int, int], ...]:
        """(bit address, bit count) pieces of the element, low bits first.

        More than one piece when the element crosses a swizzle chunk (e.g. a
        3-bit element across a 16-byte boundary) and the chunks moved apart.
        """
        raw = self.layout(coord) * self.bits
        out: list[tuple[int, int]] = []
        for k in range(self.bits):
            b = raw + k
            addr = b if self.swizzle is None else self.swizzle(b >> 3) * 8 + (b & 7)
            if out and out[-1][0] + out[-1][1] == addr:
                out[-1] = (out[-1][0], out[-1][1] + 1)
            else:
                out.append((addr, 1))
        return tuple(out)

    @property
    def footprint_bytes(self) -> int:
        """Bytes spanned (unswizzled; a swizzle permutes within aligned blocks of ``period`` bytes)."""
        return -(-self.layout.cosize * self.bits // 8)

    def to_text(self) -> str:
        """``M[b<bits>|<layout>]`` or ``M[b<bits>|<layout>|Sw<b,m,s>]``."""
        sw = "" if self.swizzle is None else f"|{self.swizzle.to_text()}"
        return f"M[b{self.bits}|{self.layout.to_text()}{sw}]"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """E.g. ``4-bit elements at (8,64):(64,1), bytes swizzled by Sw<3,4,3> (bits 4-6 ^= bits 7-9)``."""
        sw = "" if self.swizzle is None else f", bytes swizzled by {self.swizzle.describe()}"
        return f"{self.bits}-bit elements at {self.layout.to_text()}{sw}"


__all__ = ["MemoryLayout", "RegisterPacking", "bits_of"]
