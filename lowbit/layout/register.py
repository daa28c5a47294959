"""Register layouts: which thread of a block holds which element of a tile, in which slot.

A :class:`RegisterLayout` is a function ``(thread, slot) -> coordinates`` over
a rank-r tile.  Its canonical form (the idea comes from NVIDIA Tilus' register
layouts; this is lowbit's own formulation):

* every tile dimension ``d`` is split into *modes*, ``modes[d]``, listed most
  significant first (the coordinate along ``d`` is the mixed-radix number
  of its mode digits);
* ``spatial`` lists the digits of the thread index, most significant first:
  a mode id (modes are numbered dimension-major), or ``-r`` for a
  *replication* digit of size ``r`` that selects nothing (r threads hold the
  same elements: broadcast operands, reduction results);
* ``local`` lists the digits of the slot index (a thread's local storage),
  most significant first, as mode ids.

Every mode appears exactly once in ``spatial`` or ``local``.  The form is
canonical -- size-1 modes are dropped, a mode immediately followed by the next
mode of its dimension in the same digit list is merged with it, adjacent
replication digits are merged -- so two layouts are ``==`` exactly when they
are the same function (hypothesis-tested in ``tests/layout``).

Algebra (the laws are in the docstrings and tested):

* :func:`product` is the **hierarchical (Kronecker) product**, *not* function
  composition: ``product(outer, inner)`` tiles ``inner`` over ``outer``; the
  strided module's ``compose`` is function composition and the two modules
  share no names.
* :func:`divide` / :func:`divide_outer` undo it, returning ``None`` when no
  quotient exists.
* :func:`reshape`, :func:`permute`, :func:`reduce_dim` re-view a layout.

Printing: ``to_text()`` (and ``str()``) is the compact form the IR uses;
``describe()`` is the readable one -- the shortest product of primitives
when the layout is one (``product(local(2, 1), spatial(8, 4), local(1, 2))``,
which evaluates back to the layout), else per-coordinate formulas of the
thread and slot index (see :mod:`lowbit.layout._describe`).
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass
from functools import cached_property

from lowbit.errors import LayoutError
from lowbit.layout import _describe
from lowbit.layout import _refine as rf


def _check_shape(shape: tuple[int, ...], what: str) -> tuple[int, ...]:
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise LayoutError(f"{what}: shape must be a non-empty tuple of positive ints, got {shape!r}", shape)
    return tuple(shape)


@dataclass(frozen=True)
class RegisterLayout:
    """(thread, slot) -> tile coordinates, in the canonical form described in the module docstring."""

    modes: tuple[tuple[int, ...], ...]
    spatial: tuple[int, ...]
    local: tuple[int, ...]

    def __post_init__(self) -> None:
        try:
            modes = tuple(tuple(int(m) for m in dim) for dim in self.modes)
            spatial = tuple(int(e) for e in self.spatial)
            local = tuple(int(e) for e in self.local)
        except (TypeError, ValueError) as exc:
            raise LayoutError(f"RegisterLayout fields must be int tuples: {exc}", self.modes) from exc
        if not modes:
            raise LayoutError("RegisterLayout needs at least one dimension", self.modes)
        n_modes = sum(len(d) for d in modes)
        if any(m < 1 for d in modes for m in d):
            raise LayoutError(f"mode sizes must be positive, got {modes}", modes)
        if any(e < 0 for e in local) or any(e >= n_modes for e in spatial + local):
            raise LayoutError(f"bad mode reference in spatial={spatial} local={local} ({n_modes} modes)", modes)
        refs = sorted(e for e in spatial + local if e >= 0)
        if refs != list(range(n_modes)):
            raise LayoutError(
                f"every mode must appear exactly once in spatial or local: spatial={spatial} local={local}", modes
            )
        canon = rf.normalize(rf.Raw.from_fields(modes, spatial, local))
        object.__setattr__(self, "modes", canon[0])
        object.__setattr__(self, "spatial", canon[1])
        object.__setattr__(self, "local", canon[2])

    # ---- queries -------------------------------------------------------
    @property
    def rank(self) -> int:
        return len(self.modes)

    @cached_property
    def mode_sizes(self) -> tuple[int, ...]:
        return tuple(m for dim in self.modes for m in dim)

    @cached_property
    def shape(self) -> tuple[int, ...]:
        return tuple(math.prod(dim) for dim in self.modes)

    @cached_property
    def num_threads(self) -> int:
        return math.prod(self._digit_size(e) for e in self.spatial)

    @cached_property
    def local_size(self) -> int:
        """Slots per thread."""
        return math.prod(self.mode_sizes[e] for e in self.local)

    @cached_property
    def replication(self) -> int:
        """How many threads hold each element (1 for an injective layout)."""
        return math.prod(-e for e in self.spatial if e < 0)

    @property
    def is_injective(self) -> bool:
        """True when (thread, slot) -> coordinates is one-to-one (no replication)."""
        return self.replication == 1

    def _digit_size(self, entry: int) -> int:
        return -entry if entry < 0 else self.mode_sizes[entry]

    @cached_property
    def _mode_dim(self) -> tuple[tuple[int, int], ...]:
        """For each mode id: (dimension, weight of its digit in that dimension's coordinate)."""
        out = []
        for d, dim in enumerate(self.modes):
            for j in range(len(dim)):
                out.append((d, math.prod(dim[j + 1 :])))
        return tuple(out)

    def coords(self, thread: int, slot: int) -> tuple[int, ...]:
        """The coordinates held by ``thread`` in ``slot``."""
        try:
            thread, slot = operator.index(thread), operator.index(slot)
        except TypeError:
            raise LayoutError(f"coords() takes integer thread and slot, got ({thread!r}, {slot!r})", self.shape) from None
        if not (0 <= thread < self.num_threads and 0 <= slot < self.local_size):
            raise LayoutError(
                f"(thread={thread}, slot={slot}) out of range for {self.describe()} "
                f"({self.num_threads} threads, {self.local_size} slots)",
                self.shape,
            )
        out = [0] * self.rank
        for entries, index in ((self.spatial, thread), (self.local, slot)):
            for e in reversed(entries):
                size = self._digit_size(e)
                digit, index = index % size, index // size
                if e >= 0:
                    d, w = self._mode_dim[e]
                    out[d] += digit * w
        return tuple(out)

    def owners(self, coords: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """Inverse of :meth:`coords`: every (thread, slot) holding ``coords`` (``replication`` of them)."""
        coords = tuple(coords)
        if len(coords) != self.rank or not all(0 <= c < s for c, s in zip(coords, self.shape)):
            raise LayoutError(f"coordinates {coords} outside the tile {self.shape}", self.shape, coords)
        digit = {}
        for d, dim in enumerate(self.modes):
            c = coords[d]
            for j in reversed(range(len(dim))):
                mid = sum(len(x) for x in self.modes[:d]) + j
                digit[mid], c = c % dim[j], c // dim[j]
        slot = 0
        for e in self.local:
            slot = slot * self.mode_sizes[e] + digit[e]
        choices = [range(-e) if e < 0 else (digit[e],) for e in self.spatial]
        result = []
        for picks in itertools.product(*choices):
            thread = 0
            for e, p in zip(self.spatial, picks):
                thread = thread * self._digit_size(e) + p
            result.append((thread, slot))
        return tuple(sorted(result))

    def table(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """``table()[thread][slot]`` == ``coords(thread, slot)`` for every thread and slot."""
        return tuple(tuple(self.coords(t, s) for s in range(self.local_size)) for t in range(self.num_threads))

    def contiguous_run(self, dim: int = -1) -> int:
        """Elements a thread owns consecutively along ``dim`` in consecutive slots.

        Law: for every thread t and slot s with ``s % run == 0``, slots
        ``s .. s+run-1`` hold consecutive coordinates along ``dim`` (others
        fixed).  This is the vector width a load/store along ``dim`` may use.
        """
        dim = _dim_index(dim, self.rank, self)
        if not self.modes[dim] or not self.local:
            return 1
        last = sum(len(x) for x in self.modes[: dim + 1]) - 1
        return self.mode_sizes[last] if self.local[-1] == last else 1

    # ---- text ------------------------------------------------------------
    def to_text(self) -> str:
        """Compact one-line form, parsed back by :func:`lowbit.layout.text.parse`.

        ``R[<dims>|t=<digits>|l=<digits>]``: dims comma-separated, each its
        modes joined by ``.`` (``1`` for a size-1 dimension); digits joined
        by ``.``, ``m<i>`` a mode, ``r<n>`` replication.
        """
        dims = ",".join(".".join(map(str, d)) if d else "1" for d in self.modes)

        def digits(es: tuple[int, ...]) -> str:
            return ".".join(f"r{-e}" if e < 0 else f"m{e}" for e in es)

        return f"R[{dims}|t={digits(self.spatial)}|l={digits(self.local)}]"

    def __str__(self) -> str:
        # readable; the IR printer and parser use the compact to_text() form
        return self.describe()

    @cached_property
    def _factors(self) -> tuple[tuple[str, tuple[int, ...]], ...] | None:
        found = _describe.product_factors((self.modes, self.spatial, self.local))
        if found is None:
            return None
        made = [_PRIMITIVES[name](*args) for name, args in found]
        if (product(*made) if made else local(*(1,) * self.rank)) != self:  # never expected; stay exact
            return None
        return tuple(found)

    @property
    def is_product(self) -> bool:
        """True when the layout is a :func:`product` of primitives (what :meth:`describe` then prints)."""
        return self._factors is not None

    def describe(self) -> str:
        """A readable one-line description (see "Printing layouts" in docs/layouts.md).

        A product of primitives prints as the shortest such product in
        lowbit's own names, which evaluates back to an equal layout::

            product(local(2, 1), spatial(8, 4), local(1, 2))      # mma m16n8k16 C

        Any other layout prints each coordinate as an expression of the
        thread index ``t`` and slot index ``s`` (most significant term
        first), plus the replication::

            4x4 tile, 4 threads x 4 slots: d0 = 2*(t%2) + t//2, d1 = s
        """
        if self._factors is not None:
            return _describe.factors_text(list(self._factors), self.rank)
        return _describe.formula((self.modes, self.spatial, self.local))

    def render(self) -> str:
        """A grid of ``thread:slot`` entries for a 2-D layout (replicas joined by ``/``), for docs and debugging."""
        if self.rank != 2:
            raise LayoutError(f"render() draws 2-D layouts, this one has shape {self.shape}", self.shape)
        rows = []
        for i in range(self.shape[0]):
            cells = ["/".join(f"{t}:{s}" for t, s in self.owners((i, j))) for j in range(self.shape[1])]
            rows.append(" ".join(f"{c:>7}" for c in cells))
        return "\n".join(rows)


def _dim_index(dim: int, rank: int, layout: object) -> int:
    if not -rank <= dim < rank:
        raise LayoutError(f"dimension {dim} out of range for rank {rank}", layout)
    return dim % rank


def _from_raw(raw: rf.Raw) -> RegisterLayout:
    modes, spatial, local = rf.normalize(raw)
    return RegisterLayout(modes, spatial, local)


# ---- primitives --------------------------------------------------------
def _primitive(shape: tuple[int, ...], *, threads: bool, column: bool, what: str) -> RegisterLayout:
    shape = _check_shape(shape, what)
    modes = tuple((s,) if s > 1 else () for s in shape)
    ids = list(range(sum(len(m) for m in modes)))
    if column:
        ids.reverse()
    digits = tuple(ids)
    return RegisterLayout(modes, digits if threads else (), () if threads else digits)


def local(*shape: int) -> RegisterLayout:
    """One thread holds the whole ``shape``; slot = row-major index."""
    return _primitive(shape, threads=False, column=False, what="local")


def column_local(*shape: int) -> RegisterLayout:
    """One thread holds the whole ``shape``; slot = column-major index (first dimension fastest)."""
    return _primitive(shape, threads=False, column=True, what="column_local")


def spatial(*shape: int) -> RegisterLayout:
    """One element per thread; thread = row-major index."""
    return _primitive(shape, threads=True, column=False, what="spatial")


def column_spatial(*shape: int) -> RegisterLayout:
    """One element per thread; thread = column-major index (first dimension fastest)."""
    return _primitive(shape, threads=True, column=True, what="column_spatial")


def replicate(count: int, rank: int = 2) -> RegisterLayout:
    """``count`` threads hold the same single element of a rank-``rank`` all-ones tile.

    As a factor of :func:`product` it makes an operand shared by ``count``
    threads (or warps, when the inner factor spans a warp).
    """
    if not isinstance(count, int) or count < 1 or not isinstance(rank, int) or rank < 1:
        raise LayoutError(f"replicate(count={count!r}, rank={rank!r}) needs positive ints", (count, rank))
    return RegisterLayout(((),) * rank, (-count,) if count > 1 else (), ())


_PRIMITIVES = {
    "local": local,
    "column_local": column_local,
    "spatial": spatial,
    "column_spatial": column_spatial,
    "replicate": replicate,
}


# ---- the hierarchical product and its inverses -------------------------
def product(*layouts: RegisterLayout) -> RegisterLayout:
    """Hierarchical (Kronecker) product, outermost first: ``product(outer, inner)``.

    This is *not* function composition.  Law, for P = product(A, B)::

        P.shape[d]   == A.shape[d] * B.shape[d]
        P.num_threads == A.num_threads * B.num_threads;  P.local_size likewise
        P.coords(ta * B.num_threads + tb, sa * B.local_size + sb)
            == A.coords(ta, sa) * B.shape + B.coords(tb, sb)      (per dimension)

    It is associative; the mma C fragment of m16n8k16 is
    ``product(local(2, 1), spatial(8, 4), local(1, 2))``.
    """
    if not layouts:
        raise LayoutError("product() needs at least one layout, got none", layouts)
    result = layouts[0]
    for inner in layouts[1:]:
        if not isinstance(result, RegisterLayout) or not isinstance(inner, RegisterLayout):
            raise LayoutError(f"product() takes RegisterLayouts, got {type(inner).__name__}", result, inner)
        if result.rank != inner.rank:
            raise LayoutError(
                f"product(): ranks differ, {result.shape} and {inner.shape}", result.shape, inner.shape
            )
        result = _from_raw(rf.Raw.concat(rf.Raw.of(result), rf.Raw.of(inner)))
    return result


def divide(layout: RegisterLayout, inner: RegisterLayout) -> RegisterLayout | None:
    """The quotient Q with ``product(Q, inner) == layout``, or ``None`` if there is none.

    This answers "does every thread's data contain ``inner``-shaped pieces":
    e.g. ``divide(L, local(1, 8))`` is not None exactly when L can be read
    with 8-element vectors along the last dimension, thread for thread.
    The quotient is unique when it exists (``product`` is cancellative).
    """
    if not isinstance(layout, RegisterLayout) or not isinstance(inner, RegisterLayout):
        raise LayoutError("divide() takes two RegisterLayouts", layout, inner)
    if layout.rank != inner.rank:
        raise LayoutError(f"divide(): ranks differ, {layout.shape} and {inner.shape}", layout.shape, inner.shape)
    if (
        any(a % b for a, b in zip(layout.shape, inner.shape))
        or layout.num_threads % inner.num_threads
        or layout.local_size % inner.local_size
    ):
        return None
    raw = rf.split_tail(rf.Raw.of(layout), rf.Raw.of(inner))
    if raw is None:
        return None
    quotient = _from_raw(raw)
    return quotient if product(quotient, inner) == layout else None


def divide_outer(layout: RegisterLayout, outer: RegisterLayout) -> RegisterLayout | None:
    """The quotient Q with ``product(outer, Q) == layout``, or ``None`` if there is none.

    E.g. the per-warp layout of a block layout tiled over warps by ``outer``.
    """
    if not isinstance(layout, RegisterLayout) or not isinstance(outer, RegisterLayout):
        raise LayoutError("divide_outer() takes two RegisterLayouts", layout, outer)
    rev = divide(_reverse(layout), _reverse(outer))
    return None if rev is None else _reverse(rev)


def _reverse(layout: RegisterLayout) -> RegisterLayout:
    """Reverse the digit order of every dimension and both digit lists (an involution).

    ``_reverse(product(a, b)) == product(_reverse(b), _reverse(a))``; it turns
    outer division into inner division.
    """
    old_ids = []
    new_modes = []
    start = 0
    for dim in layout.modes:
        ids = list(range(start, start + len(dim)))
        start += len(dim)
        old_ids.extend(reversed(ids))
        new_modes.append(tuple(reversed(dim)))
    remap = {old: new for new, old in enumerate(old_ids)}

    def rev(entries: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(e if e < 0 else remap[e] for e in reversed(entries))

    return RegisterLayout(tuple(new_modes), rev(layout.spatial), rev(layout.local))


# ---- re-views ----------------------------------------------------------
def permute(layout: RegisterLayout, order: tuple[int, ...]) -> RegisterLayout:
    """Reorder the tile's dimensions: new dimension i is old dimension ``order[i]``.

    Law: ``permute(L, o).coords(t, s)[i] == L.coords(t, s)[o[i]]``.
    """
    order = tuple(order)
    if sorted(order) != list(range(layout.rank)):
        raise LayoutError(f"permute(): {order} is not a permutation of {layout.rank} dimensions", layout.shape)
    starts = [sum(len(d) for d in layout.modes[:i]) for i in range(layout.rank)]
    remap = {}
    new = 0
    for d in order:
        for j in range(len(layout.modes[d])):
            remap[starts[d] + j] = new
            new += 1

    def m(entries: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(e if e < 0 else remap[e] for e in entries)

    return RegisterLayout(tuple(layout.modes[d] for d in order), m(layout.spatial), m(layout.local))


def reshape(layout: RegisterLayout, shape: tuple[int, ...]) -> RegisterLayout:
    """View the tile with another shape of the same size (row-major order), threads and slots unchanged.

    Law: ravel(new.coords(t, s), shape) == ravel(layout.coords(t, s), layout.shape).
    Raises LayoutError when a mode would have to be cut where it cannot be
    (e.g. a mode of 6 cut at 4).
    """
    shape = _check_shape(tuple(shape), "reshape")
    if math.prod(shape) != math.prod(layout.shape):
        raise LayoutError(f"reshape(): {layout.shape} and {shape} differ in size", layout.shape, shape)
    raw = rf.regroup(rf.Raw.of(layout), shape)
    if raw is None:
        raise LayoutError(f"reshape(): {layout.describe()} cannot be viewed with shape {shape}", layout.shape, shape)
    return _from_raw(raw)


def reduce_dim(layout: RegisterLayout, dim: int) -> RegisterLayout:
    """The layout of the result of reducing ``dim`` to size 1.

    Threads that held different elements along ``dim`` now hold the same
    result (their digit becomes replication); slots along ``dim`` disappear.
    Law: {(t, c with c[dim]=0) for all (t, s)} of the input equals
    {(t, c)} of the output.
    """
    dim = _dim_index(dim, layout.rank, layout)
    start = sum(len(d) for d in layout.modes[:dim])
    gone = set(range(start, start + len(layout.modes[dim])))
    sizes = layout.mode_sizes
    keep = [i for i in range(len(sizes)) if i not in gone]
    remap = {old: new for new, old in enumerate(keep)}
    new_spatial = tuple(-sizes[e] if e in gone else (e if e < 0 else remap[e]) for e in layout.spatial)
    new_local = tuple(remap[e] for e in layout.local if e not in gone)
    new_modes = tuple(() if d == dim else m for d, m in enumerate(layout.modes))
    return RegisterLayout(new_modes, new_spatial, new_local)


__all__ = [
    "RegisterLayout",
    "column_local",
    "column_spatial",
    "divide",
    "divide_outer",
    "local",
    "permute",
    "product",
    "reduce_dim",
    "replicate",
    "reshape",
    "spatial",
]
