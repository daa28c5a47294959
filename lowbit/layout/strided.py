"""Strided layouts: hierarchical shape:stride maps from coordinates to offsets (the CuTe algebra).

A :class:`Layout` pairs a hierarchical shape (an int or a nested tuple of
ints) with a congruent stride.  An integer index is split colexicographically
(first mode fastest) over the flattened shape; the offset is the sum of
coordinate * stride.  These describe shared-memory tiles and global views;
:mod:`lowbit.layout.swizzle` XOR-permutes their offsets.

The operations follow CuTe (CUTLASS ``python/pycute/layout.py`` and Cecka,
"CuTe Layout Representation and Algebra", 2024); the code is lowbit's own and
every operation checks its preconditions, raising :class:`LayoutError` rather
than returning a layout that breaks its law:

* :func:`compose` is **function composition**: ``compose(a, b)(i) == a(b(i))``.
  (It is not the register layouts' hierarchical ``product``; the two modules
  share no function names.)
* :func:`complement`, :func:`logical_divide`, :func:`logical_product`,
  :func:`right_inverse`, :func:`left_inverse`, :func:`coalesce`.

Strides are non-negative (zero = broadcast); negative strides are rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from lowbit.errors import LayoutError

IntTuple = Union[int, tuple["IntTuple", ...]]


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def flatten(t: IntTuple) -> tuple[int, ...]:
    """The leaves of an int tuple, left to right."""
    if _is_int(t):
        return (t,)
    return tuple(leaf for sub in t for leaf in flatten(sub))


def size_of(shape: IntTuple) -> int:
    return math.prod(flatten(shape))


def _congruent(a: IntTuple, b: IntTuple) -> bool:
    if _is_int(a) or _is_int(b):
        return _is_int(a) and _is_int(b)
    return len(a) == len(b) and all(_congruent(x, y) for x, y in zip(a, b))


def _valid(t: object, minimum: int) -> bool:
    if _is_int(t):
        return t >= minimum
    return isinstance(t, tuple) and len(t) > 0 and all(_valid(x, minimum) for x in t)


@dataclass(frozen=True)
class Layout:
    """shape:stride, hierarchical.  ``Layout(8)`` is the compact ``8:1``; a tuple shape defaults to column-major."""

    shape: IntTuple
    stride: IntTuple | None = None

    def __post_init__(self) -> None:
        shape = _freeze(self.shape)
        if not _valid(shape, 1):
            raise LayoutError(f"shape must be a positive int or a non-empty nested tuple of them, got {self.shape!r}", self.shape)
        stride = compact_stride(shape) if self.stride is None else _freeze(self.stride)
        if not _valid(stride, 0):
            raise LayoutError(f"strides must be non-negative ints, got {self.stride!r}", self.shape, self.stride)
        if not _congruent(shape, stride):
            raise LayoutError(f"shape {shape} and stride {stride} are not congruent", shape, stride)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "stride", stride)

    @property
    def rank(self) -> int:
        return 1 if _is_int(self.shape) else len(self.shape)

    @property
    def size(self) -> int:
        return size_of(self.shape)

    @property
    def cosize(self) -> int:
        """One past the largest offset."""
        return sum((s - 1) * d for s, d in zip(flatten(self.shape), flatten(self.stride))) + 1

    def mode(self, i: int) -> Layout:
        if _is_int(self.shape):
            if i not in (0, -1):
                raise LayoutError(f"mode {i} of a rank-1 layout {self}", self.shape)
            return self
        if not -self.rank <= i < self.rank:
            raise LayoutError(f"mode {i} out of range for {self}", self.shape)
        return Layout(self.shape[i], self.stride[i])

    def modes(self) -> tuple[Layout, ...]:
        return tuple(self.mode(i) for i in range(self.rank))

    def flat_modes(self) -> tuple[tuple[int, int], ...]:
        return tuple(zip(flatten(self.shape), flatten(self.stride)))

    def __call__(self, coord: IntTuple) -> int:
        """Offset of an index (int, colexicographic) or of a hierarchical coordinate."""
        return _crd2idx(coord, self.shape, self.stride, self)

    def to_text(self) -> str:
        """``shape:stride`` with nested parentheses and no spaces, e.g. ``(8,(2,4)):(16,(1,2))``."""
        return f"{_fmt(self.shape)}:{_fmt(self.stride)}"

    def __str__(self) -> str:
        return self.to_text()

    def describe(self) -> str:
        """The readable form: CuTe's ``shape:stride`` notation, the same as :meth:`to_text`."""
        return self.to_text()


def _freeze(t: object) -> object:
    if isinstance(t, list):
        t = tuple(t)
    if isinstance(t, tuple):
        return tuple(_freeze(x) for x in t)
    return t


def _fmt(t: IntTuple) -> str:
    return str(t) if _is_int(t) else "(" + ",".join(_fmt(x) for x in t) + ")"


def compact_stride(shape: IntTuple, start: int = 1) -> IntTuple:
    """Column-major (first mode fastest) compact strides for ``shape``."""
    if _is_int(shape):
        return start
    out = []
    for s in shape:
        out.append(compact_stride(s, start))
        start *= size_of(s)
    return tuple(out)


def row_major(*shape: int) -> Layout:
    """A compact row-major layout (last dimension fastest), e.g. a shared tile ``row_major(8, 64)``."""
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return Layout(tuple(shape), tuple(reversed(strides))) if len(shape) > 1 else Layout(shape[0], 1)


def _crd2idx(coord: IntTuple, shape: IntTuple, stride: IntTuple, where: object) -> int:
    if _is_int(coord):
        if not 0 <= coord < size_of(shape):
            raise LayoutError(f"index {coord} out of range for shape {_fmt(shape)} in {where}", shape)
        total = 0
        for s, d in zip(flatten(shape), flatten(stride)):
            total += (coord % s) * d
            coord //= s
        return total
    if _is_int(shape) or len(coord) != len(shape):
        raise LayoutError(f"coordinate {coord} does not match shape {_fmt(shape)} in {where}", shape, coord)
    return sum(_crd2idx(c, s, d, where) for c, s, d in zip(coord, shape, stride))


def make_layout(*layouts: Layout) -> Layout:
    """Concatenate layouts as the modes of a new one: ``make_layout(a, b)((i, j)) == a(i) + b(j)``."""
    if not layouts:
        raise LayoutError("make_layout() needs at least one layout, got none", layouts)
    return Layout(tuple(x.shape for x in layouts), tuple(x.stride for x in layouts))


def _from_modes(modes: list[tuple[int, int]]) -> Layout:
    if not modes:
        return Layout(1, 0)
    if len(modes) == 1:
        return Layout(modes[0][0], modes[0][1])
    return Layout(tuple(m[0] for m in modes), tuple(m[1] for m in modes))


def coalesce(layout: Layout) -> Layout:
    """The shortest flat layout with the same function on ``range(size)``.

    Law: ``coalesce(L)(i) == L(i)`` for every i < size(L); size-1 modes are
    dropped and a mode (s1, d1) followed by (s2, s1*d1) merges into (s1*s2, d1).
    """
    out: list[tuple[int, int]] = []
    for s, d in layout.flat_modes():
        if s == 1:
            continue
        if out and out[-1][0] * out[-1][1] == d:
            out[-1] = (out[-1][0] * s, out[-1][1])
        elif out and out[-1][1] == 0 and d == 0:
            out[-1] = (out[-1][0] * s, 0)
        else:
            out.append((s, d))
    return _from_modes(out)


def compose(a: Layout, b: Layout | tuple[Layout, ...]) -> Layout:
    """Function composition: ``compose(a, b)(i) == a(b(i))`` for every i < size(b).

    ``b`` may be a tuple of layouts, applied to ``a``'s modes one by one (a
    "tiler").  Requires b's offsets to stay inside ``range(size(a))`` and b's
    strides to walk a's modes without splitting one unevenly; otherwise
    :class:`LayoutError`.  The result has b's shape hierarchy.
    """
    if isinstance(b, tuple):
        if len(b) > a.rank:
            raise LayoutError(f"compose(): tiler of {len(b)} modes for {a} of rank {a.rank}", a, b)
        parts = [compose(a.mode(i), b[i]) for i in range(len(b))]
        return make_layout(*parts, *a.modes()[len(b) :])
    if not _is_int(b.shape):
        if b.cosize > a.size:
            raise LayoutError(f"compose(): {b} reaches offset {b.cosize - 1}, outside {a} of size {a.size}", a, b)
        radix = coalesce(a).flat_modes()
        moving = [(s, d) for s, d in b.flat_modes() if s > 1 and d > 0]
        if len(radix) > 1 and len(moving) > 1:
            # composing mode by mode is exact only when b's modes never carry into each other in a's
            # mixed radix: sorted by stride, each mode must start where the previous one ends (or beyond,
            # evenly), and every start and end must fall on a digit boundary of a.  A single moving
            # mode (the others of size 1 or stride 0) has nothing to carry into: compose(a, m) decides.
            cur = 1
            for d, s in sorted((d, s) for s, d in moving):
                if d % cur or not _on_boundary(radix, d) or not _on_boundary(radix, d * s):
                    raise LayoutError(f"compose(): modes of {b} carry into each other in {a}'s index space", a, b)
                cur = d * s
        return make_layout(*(compose(a, m) for m in b.modes()))
    s, d = b.shape, b.stride
    if s == 1:
        return Layout(1, 0)
    if d == 0:
        return Layout(s, 0)
    if (s - 1) * d >= a.size:
        raise LayoutError(f"compose(): {b} reaches offset {(s - 1) * d}, outside {a} of size {a.size}", a, b)
    if s == 2:  # two points are always a stride
        return Layout(2, a(d))
    modes = list(coalesce(a).flat_modes())
    i, rest = 0, d
    while rest > 1:
        m, st = modes[i]
        if rest % m == 0 and i < len(modes) - 1:
            rest //= m
            i += 1
        elif m % rest == 0 or i == len(modes) - 1:
            # the last mode never wraps (the range check above), so any stride walks it evenly
            modes[i] = (-(-m // rest), st * rest)
            rest = 1
        else:
            raise LayoutError(f"compose(): stride {d} of {b} splits mode {m} of {a} unevenly", a, b)
    out: list[tuple[int, int]] = []
    rest = s
    while rest > 1:
        m, st = modes[i]
        if rest <= m:
            out.append((rest, st))
            rest = 1
        elif rest % m == 0:
            out.append((m, st))
            rest //= m
            i += 1
        else:
            raise LayoutError(f"compose(): {b} takes {rest} elements across mode {m} of {a} unevenly", a, b)
    return coalesce(_from_modes(out))


def _on_boundary(radix: tuple[tuple[int, int], ...], c: int) -> bool:
    """Whether index ``c`` splits the mixed radix (mode sizes of ``radix``) evenly: a digit boundary after refinement."""
    w = 1
    for k, (m, _) in enumerate(radix):
        if k == len(radix) - 1 or c <= w * m:
            return c % w == 0 and (k == len(radix) - 1 or m % (c // w) == 0)
        w *= m
    return True


def _filter_zeros(layout: Layout) -> list[tuple[int, int]]:
    return [(s, d) for s, d in layout.flat_modes() if s > 1 and d > 0]


def complement(layout: Layout, cotarget: int | None = None) -> Layout:
    """The layout of the offsets ``layout`` skips, up to ``cotarget`` (default ``cosize``).

    Law: with L' = layout without its stride-0 modes, ``make_layout(L', C)``
    is a bijection from ``range(size(L') * size(C))`` onto the same range, and
    ``size(L') * size(C) >= cotarget``.  Needs L' non-overlapping with each
    sorted stride a multiple of the previous mode's extent.
    """
    if cotarget is None:
        cotarget = layout.cosize
    if not _is_int(cotarget) or cotarget < 1:
        raise LayoutError(f"complement(): cotarget must be a positive int, got {cotarget!r}", layout)
    out: list[tuple[int, int]] = []
    cur = 1
    for s, d in sorted(_filter_zeros(layout), key=lambda m: (m[1], m[0])):
        if d % cur:
            raise LayoutError(
                f"complement(): {layout} is not complementable (stride {d} is not a multiple of {cur})", layout
            )
        out.append((d // cur, cur))
        cur = d * s
    out.append((-(-cotarget // cur), cur))
    return coalesce(_from_modes(out))


def right_inverse(layout: Layout) -> Layout:
    """R with ``layout(R(i)) == i`` for every i < size(R), as large as the layout's compact part allows."""
    flat = layout.flat_modes()
    positions = []
    acc = 1
    for s, d in flat:
        positions.append((d, s, acc))
        acc *= s
    out: list[tuple[int, int]] = []
    cur = 1
    for d, s, pos in sorted(positions):
        if s == 1 or d == 0:
            continue
        if d != cur:
            break
        out.append((s, pos))
        cur = s * d
    return coalesce(_from_modes(out))


def left_inverse(layout: Layout) -> Layout:
    """L with ``L(layout(i)) == i`` for every i < size(layout); needs an injective, complementable layout."""
    if any(d == 0 and s > 1 for s, d in layout.flat_modes()):
        raise LayoutError(f"left_inverse(): {layout} broadcasts (stride 0) and is not injective", layout)
    return right_inverse(make_layout(layout, complement(layout)))


def logical_divide(a: Layout, b: Layout | tuple[Layout, ...]) -> Layout:
    """Split ``a`` into b-shaped tiles: ``compose(a, make_layout(b, complement(b, size(a))))``.

    Law: mode 0 of the result is ``compose(a, b)`` (the first tile); when
    size(a) is covered exactly, the result's offsets are a's offsets
    permuted.  A tuple ``b`` divides mode by mode.
    """
    if isinstance(b, tuple):
        if len(b) > a.rank:
            raise LayoutError(f"logical_divide(): tiler of {len(b)} modes for {a}", a, b)
        return make_layout(*(logical_divide(a.mode(i), b[i]) for i in range(len(b))), *a.modes()[len(b) :])
    return compose(a, make_layout(b, complement(b, a.size)))


def logical_product(a: Layout, b: Layout) -> Layout:
    """Repeat ``a`` over ``b``: ``make_layout(a, compose(complement(a, size(a) * cosize(b)), b))``.

    Law: mode 0 is ``a``; size is size(a) * size(b); when a and b are
    injective so is the result (each tile is a shifted copy of a).
    """
    return make_layout(a, compose(complement(a, a.size * b.cosize), b))


__all__ = [
    "IntTuple",
    "Layout",
    "coalesce",
    "compact_stride",
    "complement",
    "compose",
    "flatten",
    "left_inverse",
    "logical_divide",
    "logical_product",
    "make_layout",
    "right_inverse",
    "row_major",
    "size_of",
]
