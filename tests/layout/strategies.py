"""Hypothesis strategies and independent reference evaluators for the layout tests."""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

from hypothesis import strategies as st

from lowbit.layout import register as R
from lowbit.layout.strided import Layout

# ---- register layouts --------------------------------------------------


def ref_coords(modes, spatial, local, thread, slot):
    """Reference semantics of the (possibly non-canonical) register-layout fields, written independently."""
    flat = [m for dim in modes for m in dim]
    digit = {}
    for entries, index in ((spatial, thread), (local, slot)):
        sizes = [(-e if e < 0 else flat[e]) for e in entries]
        for e, size in zip(reversed(entries), reversed(sizes)):
            if e >= 0:
                digit[e] = index % size
            index //= size
    out, k = [], 0
    for dim in modes:
        c = 0
        for m in dim:
            c = c * m + digit[k]
            k += 1
        out.append(c)
    return tuple(out)


def ref_table(modes, spatial, local):
    flat = [m for dim in modes for m in dim]
    nt = math.prod((-e if e < 0 else flat[e]) for e in spatial)
    ls = math.prod(flat[e] for e in local)
    return [[ref_coords(modes, spatial, local, t, s) for s in range(ls)] for t in range(nt)]


@st.composite
def raw_fields(draw, rank=None, max_mode=4, max_modes=4):
    """Random, possibly non-canonical (size-1 modes, splittable runs) register-layout fields."""
    rank = draw(st.integers(1, 3)) if rank is None else rank
    n = draw(st.integers(0, max_modes))
    dims = [[] for _ in range(rank)]
    for _ in range(n):
        dims[draw(st.integers(0, rank - 1))].append(draw(st.integers(1, max_mode)))
    modes = tuple(tuple(d) for d in dims)
    ids = list(range(n))
    ids = draw(st.permutations(ids))
    cut = draw(st.integers(0, n))
    spatial, local = list(ids[:cut]), list(ids[cut:])
    for _ in range(draw(st.integers(0, 2))):
        spatial.insert(draw(st.integers(0, len(spatial))), -draw(st.integers(2, 3)))
    return modes, tuple(spatial), tuple(local)


@st.composite
def register_layouts(draw, rank=None, **kw):
    modes, spatial, local = draw(raw_fields(rank=rank, **kw))
    return R.RegisterLayout(modes, spatial, local)


_PRIMS = (R.local, R.column_local, R.spatial, R.column_spatial)


@st.composite
def primitive_products(draw, rank=2, factors=(1, 3)):
    """A product of random primitives (what fragments and block layouts look like)."""
    parts = []
    for _ in range(draw(st.integers(*factors))):
        if draw(st.integers(0, 5)) == 0:
            parts.append(R.replicate(draw(st.integers(2, 3)), rank))
        else:
            prim = draw(st.sampled_from(_PRIMS))
            parts.append(prim(*(draw(st.integers(1, 4)) for _ in range(rank))))
    return R.product(*parts)


def _compositions(n):
    """Ordered factorisations of n into factors > 1."""
    if n == 1:
        return [()]
    out = []
    for f in range(2, n + 1):
        if n % f == 0:
            out += [(f, *rest) for rest in _compositions(n // f)]
    return out


@lru_cache(maxsize=None)
def all_layouts(shape, num_threads, local_size):
    """Every register layout with these parameters, by brute-force enumeration (small cases only)."""
    found = set()
    for modes in itertools.product(*(_compositions(s) for s in shape)):
        flat = [m for d in modes for m in d]
        n = len(flat)
        for mask in range(1 << n):
            sp = [i for i in range(n) if mask >> i & 1]
            lo = [i for i in range(n) if not mask >> i & 1]
            if math.prod(flat[i] for i in lo) != local_size:
                continue
            rep, r = divmod(num_threads, math.prod(flat[i] for i in sp))
            if r:
                continue
            for reps in _compositions(rep):
                digits = sp + [-f for f in reps]
                for order in set(itertools.permutations(digits)):
                    for lorder in itertools.permutations(lo):
                        found.add(R.RegisterLayout(modes, order, lorder))
    return frozenset(found)


# ---- strided layouts ---------------------------------------------------


@st.composite
def int_tuples(draw, leaf, depth=2):
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(leaf)
    return tuple(draw(int_tuples(leaf, depth - 1)) for _ in range(draw(st.integers(1, 3))))


@st.composite
def strided_layouts(draw, max_size=64, zero_strides=True, depth=2):
    """Hierarchical (often depth 2) shape:stride layouts with non-compact and (optionally) zero strides."""
    shape = draw(int_tuples(st.integers(1, 4), depth).filter(lambda s: math.prod(_leaves(s)) <= max_size))

    def strides(s):
        if isinstance(s, int):
            lo = 0 if zero_strides else 1
            return draw(st.integers(lo, 24))
        return tuple(strides(x) for x in s)

    return Layout(shape, strides(shape))


@st.composite
def compact_layouts(draw, max_size=48, gaps=True):
    """Injective layouts: a compact column-major layout with its modes permuted and gaps inserted."""
    sizes = draw(st.lists(st.integers(2, 4), min_size=1, max_size=4).filter(lambda s: math.prod(s) <= max_size))
    order = draw(st.permutations(range(len(sizes))))
    strides = [0] * len(sizes)
    acc = 1
    for i in order:
        acc *= draw(st.sampled_from([1, 1, 2])) if gaps else 1  # an occasional gap
        strides[i] = acc
        acc *= sizes[i]
    if len(sizes) >= 2 and draw(st.booleans()):
        shape = (tuple(sizes[:2]), *sizes[2:])
        stride = (tuple(strides[:2]), *strides[2:])
        return Layout(shape, stride)
    return Layout(tuple(sizes), tuple(strides))


def _leaves(t):
    return (t,) if isinstance(t, int) else tuple(x for s in t for x in _leaves(s))


def ref_offset(layout: Layout, index: int) -> int:
    """Colexicographic index -> offset, independently of Layout.__call__."""
    total = 0
    for s, d in zip(_leaves(layout.shape), _leaves(layout.stride)):
        total += (index % s) * d
        index //= s
    return total
