"""XOR swizzles and their composition with strided layouts.

``Swizzle(bits, base, shift)`` (CuTe's ``Swizzle<B, M, S>``) flips the
``bits`` bits starting at bit ``base`` of an offset with the ``bits`` bits
starting at ``base + shift``:  ``x ^ ((x >> shift) & (mask << base))`` with
``mask = 2**bits - 1``.  With ``shift >= bits`` the two fields do not overlap,
so the map is a bijection and an involution on every aligned block of
``2**(base + bits + shift)`` offsets (tested).

The classic 128-byte shared-memory swizzle for tiles whose rows are 128
bytes: 16-byte chunks (``base = 4`` on byte addresses) are XORed with the row
index modulo 8 (``bits = 3``, ``shift = 3``): ``Swizzle(3, 4, 3)`` on byte
addresses, ``Swizzle(3, 3, 3)`` on f16 element offsets.  Then the 8 rows of
an 8x8 f16 ldmatrix hit 8 different 16-byte bank groups.

:class:`SwizzledLayout` is the function composition ``swizzle o layout``
(CuTe's ``ComposedLayout``) on element offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.errors import LayoutError
from lowbit.layout.strided import IntTuple, Layout


@dataclass(frozen=True)
class Swizzle:
    """offset -> offset ^ ((offset >> shift) & (2**bits - 1) << base)."""

    bits: int
    base: int
    shift: int

    def __post_init__(self) -> None:
        vals = (self.bits, self.base, self.shift)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals) or self.bits < 0 or self.base < 0:
            raise LayoutError(f"Swizzle{vals}: bits and base must be non-negative ints", vals)
        if self.shift < self.bits:
            raise LayoutError(
                f"Swizzle{vals}: shift must be >= bits, else the XOR fields overlap and it is not a bijection", vals
            )

    @property
    def mask(self) -> int:
        """The bits that get flipped."""
        return ((1 << self.bits) - 1) << self.base

    @property
    def period(self) -> int:
        """Offsets are permuted within aligned blocks of this many."""
        return 1 << (self.base + self.bits + self.shift)

    def __call__(self, offset: int) -> int:
        return offset ^ ((offset >> self.shift) & self.mask)

    def to_text(self) -> str:
        return f"Sw<{self.bits},{self.base},{self.shift}>"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """CuTe's ``Sw<B,M,S>`` and which offset bits it flips with which, e.g. ``Sw<3,4,3> (bits 4-6 ^= bits 7-9)``."""
        if self.bits == 0:
            return f"{self.to_text()} (identity)"
        lo, hi = self.base, self.base + self.shift

        def bits(start: int) -> str:
            return f"bit {start}" if self.bits == 1 else f"bits {start}-{start + self.bits - 1}"

        return f"{self.to_text()} ({bits(lo)} ^= {bits(hi)})"


@dataclass(frozen=True)
class SwizzledLayout:
    """``swizzle(layout(coord))``: a strided layout whose offsets are XOR-permuted (function composition)."""

    swizzle: Swizzle
    layout: Layout

    def __post_init__(self) -> None:
        if not isinstance(self.swizzle, Swizzle) or not isinstance(self.layout, Layout):
            raise LayoutError("SwizzledLayout(swizzle, layout) takes a Swizzle and a strided Layout", self.layout)

    @property
    def shape(self) -> IntTuple:
        return self.layout.shape

    @property
    def size(self) -> int:
        return self.layout.size

    def __call__(self, coord: IntTuple) -> int:
        return self.swizzle(self.layout(coord))

    def to_text(self) -> str:
        """``Sw<b,m,s>o<layout>``, e.g. ``Sw<3,3,3>o(8,64):(64,1)``."""
        return f"{self.swizzle.to_text()}o{self.layout.to_text()}"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """``Sw<3,3,3> o (8,64):(64,1)``: CuTe's notation for a composed layout, spaced."""
        return f"{self.swizzle.to_text()} o {self.layout.to_text()}"


__all__ = ["Swizzle", "SwizzledLayout"]
