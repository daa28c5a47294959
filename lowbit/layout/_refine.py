"""Mode bookkeeping for register layouts: normalisation, concatenation and refinement.

Private to :mod:`lowbit.layout.register`.  A :class:`Raw` is a register
layout whose modes carry arbitrary integer keys and need not be canonical:
``dims[d]`` lists the keys of dimension d's modes (most significant first),
``spatial``/``local`` list digits (a key, or ``-r`` for replication).

*Refinement* splits a mode of size ``s`` into consecutive factors whose
product is ``s``; the split applies everywhere the mode appears, so the
function (thread, slot) -> coordinates is unchanged.  ``split_tail`` and
``regroup`` refine just enough to expose a boundary at given weights, which
is how division and reshape find their answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Raw:
    sizes: dict[int, int]
    dims: list[list[int]]
    spatial: list[int]
    local: list[int]

    @staticmethod
    def from_fields(modes: tuple[tuple[int, ...], ...], spatial: tuple[int, ...], local: tuple[int, ...]) -> Raw:
        sizes: dict[int, int] = {}
        dims: list[list[int]] = []
        key = 0
        for dim in modes:
            keys = []
            for m in dim:
                sizes[key] = m
                keys.append(key)
                key += 1
            dims.append(keys)
        return Raw(sizes, dims, list(spatial), list(local))

    @staticmethod
    def of(layout) -> Raw:  # noqa: ANN001 - a RegisterLayout (import cycle)
        return Raw.from_fields(layout.modes, layout.spatial, layout.local)

    @staticmethod
    def concat(outer: Raw, inner: Raw) -> Raw:
        """The unnormalised hierarchical product: outer digits above inner digits everywhere."""
        off = max(outer.sizes, default=-1) + 1

        def shift(es: list[int]) -> list[int]:
            return [e if e < 0 else e + off for e in es]

        sizes = dict(outer.sizes)
        sizes.update({k + off: v for k, v in inner.sizes.items()})
        dims = [a + shift(b) for a, b in zip(outer.dims, inner.dims)]
        return Raw(sizes, dims, outer.spatial + shift(inner.spatial), outer.local + shift(inner.local))

    def digit_size(self, e: int) -> int:
        return -e if e < 0 else self.sizes[e]


def normalize(raw: Raw) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...], tuple[int, ...]]:
    """Canonical (modes, spatial, local): drop size-1 digits, merge mergeable neighbours, renumber."""
    sizes = dict(raw.sizes)
    dims = [[k for k in d if sizes[k] > 1] for d in raw.dims]
    lists = [[e for e in raw.spatial if (e < -1 or (e >= 0 and sizes[e] > 1))], [k for k in raw.local if sizes[k] > 1]]
    changed = True
    while changed:
        changed = False
        where = {k: (d, j) for d, keys in enumerate(dims) for j, k in enumerate(keys)}
        for digits in lists:
            for i in range(len(digits) - 1):
                a, b = digits[i], digits[i + 1]
                if a < 0 and b < 0:
                    digits[i : i + 2] = [a * -b]
                elif a >= 0 and b >= 0 and where[a][0] == where[b][0] and where[b][1] == where[a][1] + 1:
                    sizes[a] *= sizes[b]
                    del digits[i + 1]
                    dims[where[b][0]].remove(b)
                else:
                    continue
                changed = True
                break
            if changed:
                break
    ids = {k: i for i, k in enumerate(k for d in dims for k in d)}
    modes = tuple(tuple(sizes[k] for k in d) for d in dims)
    return modes, tuple(e if e < 0 else ids[e] for e in lists[0]), tuple(ids[k] for k in lists[1])


def entry_cuts(sizes: list[int], cuts: list[int]) -> list[set[int]] | None:
    """Where each entry of a mixed-radix sequence must be split so that every weight in ``cuts`` is a boundary.

    ``sizes`` is most significant first; the weight of entry i is the product
    of the entries after it.  For each entry the result holds the inner
    factors r (1 < r < size) of the splits (size/r, r) it needs; ``None`` when a
    cut falls where no split can put it.
    """
    total = math.prod(sizes)
    out: list[set[int]] = [set() for _ in sizes]
    for c in cuts:
        if c == 1:
            continue
        if c > total:
            return None
        w = 1
        for i in reversed(range(len(sizes))):
            if w < c < w * sizes[i]:
                if c % w or sizes[i] % (c // w):
                    return None
                out[i].add(c // w)
                break
            w *= sizes[i]
    return out


def _factors(size: int, rs: set[int]) -> list[int] | None:
    prev = 1
    for r in sorted(rs):
        if r % prev:
            return None
        prev = r
    chain = [1, *sorted(rs), size]
    return [chain[i + 1] // chain[i] for i in reversed(range(len(chain) - 1))]


def _suffix(sizes: list[int]) -> list[int]:
    out, acc = [], 1
    for s in reversed(sizes):
        acc *= s
        out.append(acc)
    return out


def _refine(raw: Raw, mode_cuts: dict[int, set[int]], rep_cuts: dict[int, set[int]]) -> Raw | None:
    """Split modes (by key) and spatial replication digits (by position) at the given inner factors."""
    new_sizes: dict[int, int] = {}
    split: dict[int, list[int]] = {}
    nxt = 0
    for k in sorted(raw.sizes):
        fs = _factors(raw.sizes[k], mode_cuts.get(k, set()))
        if fs is None:
            return None
        split[k] = []
        for f in fs:
            new_sizes[nxt] = f
            split[k].append(nxt)
            nxt += 1
    spatial: list[int] = []
    for pos, e in enumerate(raw.spatial):
        if e >= 0:
            spatial.extend(split[e])
        else:
            fs = _factors(-e, rep_cuts.get(pos, set()))
            if fs is None:
                return None
            spatial.extend(-f for f in fs)
    dims = [[n for k in d for n in split[k]] for d in raw.dims]
    local = [n for k in raw.local for n in split[k]]
    return Raw(new_sizes, dims, spatial, local)


def _tail(sizes: list[int], total: int) -> int | None:
    """How many trailing entries multiply to exactly ``total``."""
    acc, n = 1, 0
    for s in reversed(sizes):
        if acc == total:
            break
        acc *= s
        n += 1
    return n if acc == total else None


def split_tail(p: Raw, f: Raw) -> Raw | None:
    """Refine ``p`` so that ``f``'s digits can be its innermost ones; return the remaining (outer) part.

    Only a candidate: the caller checks ``product(result, f) == p``.
    """
    mode_cuts: dict[int, set[int]] = {k: set() for k in p.sizes}
    rep_cuts: dict[int, set[int]] = {}
    seqs = [(p.dims[d], _suffix([f.sizes[k] for k in f.dims[d]])) for d in range(len(p.dims))]
    seqs.append((p.spatial, _suffix([f.digit_size(e) for e in f.spatial])))
    seqs.append((p.local, _suffix([f.sizes[k] for k in f.local])))
    for idx, (entries, cuts) in enumerate(seqs):
        found = entry_cuts([p.digit_size(e) for e in entries], cuts)
        if found is None:
            return None
        for pos, (e, rs) in enumerate(zip(entries, found)):
            if e >= 0:
                mode_cuts[e] |= rs
            elif idx == len(p.dims):
                rep_cuts[pos] = rs
    q = _refine(p, mode_cuts, rep_cuts)
    if q is None:
        return None
    heads = []
    tails = set()
    for d, keys in enumerate(q.dims):
        n = _tail([q.sizes[k] for k in keys], math.prod(f.sizes[k] for k in f.dims[d]))
        if n is None:
            return None
        heads.append(keys[: len(keys) - n])
        tails |= set(keys[len(keys) - n :])
    listed_tails = set()
    cut_lists = []
    for digits, total in ((q.spatial, math.prod(f.digit_size(e) for e in f.spatial)),
                          (q.local, math.prod(f.sizes[k] for k in f.local))):
        n = _tail([q.digit_size(e) for e in digits], total)
        if n is None:
            return None
        listed_tails |= {e for e in digits[len(digits) - n :] if e >= 0}
        cut_lists.append(digits[: len(digits) - n])
    if tails != listed_tails:
        return None
    keep = {k for h in heads for k in h}
    return Raw({k: q.sizes[k] for k in keep}, heads, cut_lists[0], cut_lists[1])


def regroup(raw: Raw, shape: tuple[int, ...]) -> Raw | None:
    """Refine ``raw`` and regroup its row-major mode sequence into dimensions of ``shape``."""
    flat = [k for d in raw.dims for k in d]
    found = entry_cuts([raw.sizes[k] for k in flat], _suffix(list(shape)))
    if found is None:
        return None
    q = _refine(raw, dict(zip(flat, found)), {})
    if q is None:
        return None
    seq = [k for d in q.dims for k in d]
    dims: list[list[int]] = []
    end = len(seq)
    for s in reversed(shape):
        n = _tail([q.sizes[k] for k in seq[:end]], s)
        if n is None:
            return None
        dims.append(seq[end - n : end])
        end -= n
    dims.reverse()
    return Raw(q.sizes, dims, q.spatial, q.local)
