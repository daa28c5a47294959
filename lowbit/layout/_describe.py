"""The readable one-line description of a register layout (``RegisterLayout.describe()``).

Private to :mod:`lowbit.layout.register`; works on the canonical fields
``(modes, spatial, local)`` only.

**Product form.**  A layout is a product of primitives exactly when its
canonical digits can be grouped into *layers* -- each layer one primitive
factor: ``replicate(r)`` (one replication digit), or ``spatial`` /
``column_spatial`` / ``local`` / ``column_local`` (at most one mode per
dimension, contiguous in the thread resp. slot digit list, in increasing resp.
decreasing dimension order) -- that can be totally ordered outer-to-inner
consistently with the thread digit order, the slot digit order and every
dimension's mode order (most significant first).  Canonical modes never need
to be split: a mode merged by normalisation can stay in the inner of the two
layers it came from.  Splitting a layer into one layer per digit keeps the
order constraints satisfiable, so the one-digit-per-layer grouping decides
whether any grouping works; :func:`product_factors` then looks for the fewest
layers.

**Formula form** (everything else: a thread or slot digit that selects less
significant coordinates than a later digit, e.g. a transposed digit order).
Each coordinate as an expression of the thread index ``t`` and slot index
``s`` (see :func:`formula`).
"""

from __future__ import annotations

import heapq
import math

Fields = tuple[tuple[tuple[int, ...], ...], tuple[int, ...], tuple[int, ...]]

#: Give up looking for fewer layers after this many candidate groupings
#: (the one-digit-per-layer grouping, already found valid, is used then).
_MAX_CHECKS = 5000


def _groupings(entries: tuple[int, ...], dim_of: list[int]) -> list[list[tuple[int, ...]]]:
    """Every split of ``entries`` into contiguous layers that a primitive can be, longest first layer first."""
    out: list[list[tuple[int, ...]]] = []

    def ok(seg: tuple[int, ...]) -> bool:
        if len(seg) == 1:
            return True
        if any(e < 0 for e in seg):
            return False
        dims = [dim_of[e] for e in seg]
        return all(a < b for a, b in zip(dims, dims[1:])) or all(a > b for a, b in zip(dims, dims[1:]))

    def walk(i: int, acc: list[tuple[int, ...]]) -> None:
        if i == len(entries):
            out.append(list(acc))
            return
        for k in range(len(entries) - i, 0, -1):
            seg = entries[i : i + k]
            if ok(seg):
                acc.append(seg)
                walk(i + k, acc)
                acc.pop()

    walk(0, [])
    return out


def _order(layers: list[tuple[bool, tuple[int, ...]]], modes: tuple[tuple[int, ...], ...]) -> list[int] | None:
    """A total order (outer first) of ``layers`` (``(is_thread, digits)``) obeying every constraint, or None."""
    n = len(layers)
    where = {e: i for i, (_, digits) in enumerate(layers) for e in digits if e >= 0}
    edges: set[tuple[int, int]] = set()
    for kind in (True, False):
        same = [i for i, (t, _) in enumerate(layers) if t == kind]
        edges.update(zip(same, same[1:]))
    start = 0
    for dim in modes:
        ids = range(start, start + len(dim))
        start += len(dim)
        edges.update((where[a], where[b]) for a, b in zip(ids, ids[1:]))
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        if a == b:
            return None
        succ[a].append(b)
        indeg[b] += 1
    # ties: thread (and replication) layers before slot layers, then list order
    ready = [(not layers[i][0], i) for i in range(n) if indeg[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, (not layers[j][0], j))
    return order if len(order) == n else None


def product_factors(fields: Fields) -> list[tuple[str, tuple[int, ...]]] | None:
    """The fewest primitive factors, outermost first, whose product is the layout; None if it is no product.

    Each factor is ``(function name, arguments)``: ``("spatial", (8, 4))``,
    ``("replicate", (4, 2))`` (count, rank).
    """
    modes, spatial, local = fields
    rank = len(modes)
    dim_of = [d for d, dim in enumerate(modes) for _ in dim]
    sizes = [m for dim in modes for m in dim]

    def layers(sp: list[tuple[int, ...]], lo: list[tuple[int, ...]]) -> list[tuple[bool, tuple[int, ...]]]:
        return [(True, s) for s in sp] + [(False, s) for s in lo]

    finest = layers([(e,) for e in spatial], [(e,) for e in local])
    best = _order(finest, modes)
    if best is None:
        return None
    chosen = finest
    by_len_sp: dict[int, list] = {}
    for g in _groupings(spatial, dim_of):
        by_len_sp.setdefault(len(g), []).append(g)
    by_len_lo: dict[int, list] = {}
    for g in _groupings(local, dim_of):
        by_len_lo.setdefault(len(g), []).append(g)
    checks = 0
    done = False
    for total in range(len(finest) + 1):
        for nsp in sorted(by_len_sp):
            for gs in by_len_sp[nsp]:
                for gl in by_len_lo.get(total - nsp, ()):
                    checks += 1
                    cand = layers(gs, gl)
                    order = _order(cand, modes)
                    if order is not None:
                        chosen, best, done = cand, order, True
                        break
                    if checks > _MAX_CHECKS:
                        done = True
                        break
                if done:
                    break
            if done:
                break
        if done:
            break

    out: list[tuple[str, tuple[int, ...]]] = []
    for i in best:
        is_thread, digits = chosen[i]
        if digits[0] < 0:
            out.append(("replicate", (-digits[0], rank)))
            continue
        shape = [1] * rank
        for e in digits:
            shape[dim_of[e]] = sizes[e]
        column = len(digits) > 1 and dim_of[digits[0]] > dim_of[digits[1]]
        name = ("column_" if column else "") + ("spatial" if is_thread else "local")
        out.append((name, tuple(shape)))
    return out


def factors_text(factors: list[tuple[str, tuple[int, ...]]], rank: int) -> str:
    """``product(f1, f2, ...)`` in lowbit's own names (a single factor without ``product``)."""

    def one(name: str, args: tuple[int, ...]) -> str:
        if name == "replicate":
            count, r = args
            return f"replicate({count})" if r == 2 else f"replicate({count}, {r})"
        return f"{name}({', '.join(map(str, args))})"

    if not factors:
        return one("local", (1,) * rank)
    if len(factors) == 1:
        return one(*factors[0])
    return "product(" + ", ".join(one(*f) for f in factors) + ")"


def _digit_expr(var: str, weight: int, size: int, total: int) -> str:
    """The digit of ``var`` with place value ``weight`` and radix ``size`` (``var`` < ``total``)."""
    if weight == 1:
        return var if size == total else f"{var}%{size}"
    if weight * size == total:
        return f"{var}//{weight}"
    return f"{var}//{weight}%{size}"


def formula(fields: Fields) -> str:
    """``16x8 tile, 32 threads x 4 slots: d0 = 8*(s//2) + t//4, d1 = 2*(t%4) + s%2[; ...replication]``.

    ``d<i>`` is coordinate i as a Python expression of the thread index ``t``
    and the slot index ``s``, most significant term first; a replicated
    layout ends with ``; each element on R threads (<digit> ignored)``.
    """
    modes, spatial, local = fields
    sizes = [m for dim in modes for m in dim]

    def size(e: int) -> int:
        return -e if e < 0 else sizes[e]

    threads = math.prod(size(e) for e in spatial)
    slots = math.prod(sizes[e] for e in local)
    digit: dict[int, str] = {}
    ignored = []
    for var, entries, total in (("t", spatial, threads), ("s", local, slots)):
        w = 1
        for e in reversed(entries):
            expr = _digit_expr(var, w, size(e), total)
            if e < 0:
                ignored.append(expr)
            else:
                digit[e] = expr
            w *= size(e)
    dims = []
    start = 0
    for d, dim in enumerate(modes):
        terms = []
        for j in range(len(dim)):
            expr = digit[start + j]
            scale = math.prod(dim[j + 1 :])
            if scale == 1:
                terms.append(expr)
            else:
                terms.append(f"{scale}*{expr}" if expr.isalpha() else f"{scale}*({expr})")
        start += len(dim)
        dims.append(f"d{d} = {' + '.join(terms) if terms else '0'}")
    shape = "x".join(str(math.prod(dim)) for dim in modes)
    text = f"{shape} tile, {threads} threads x {slots} slots: {', '.join(dims)}"
    rep = math.prod(-e for e in spatial if e < 0)
    if rep > 1:
        text += f"; each element on {rep} threads ({', '.join(reversed(ignored))} ignored)"
    return text
