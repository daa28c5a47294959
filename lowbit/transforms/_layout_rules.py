"""Layout rules, one per VM op class: what an op says about the layouts of its tiles.

Each rule answers, for one op:

* ``produces(op, lay)`` -- the result layouts that make the op free of data
  movement given its tile operands' known layouts (nothing when the op
  does not determine its result's layout);
* ``requires(op, lay)`` -- the operand layouts that make the op free given
  its result's (and other operands') known layouts;
* ``anchor(op, threads)`` -- a layout the op would like its result (or, for
  stores, its value operand) to have, and how strongly (:data:`COMMON`);
  strict requirements come from the program itself (user layouts,
  ``convert_layout``, ``thread_index``) and, with tensor cores, from ``dot``.

The rules are data: :data:`RULES` maps op classes to rule objects, and
``infer_layouts`` only walks the program applying them.  Every rule keeps
values where they are -- a layout a rule returns must make the op's
lowering register-local.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lowbit.errors import LayoutError
from lowbit.ir import ops as O
from lowbit.ir.types import SharedType, TileType, Value
from lowbit.layout import register as R
from lowbit.layout.construct import blocked, pow2_factor
from lowbit.layout.register import RegisterLayout

__all__ = ["COMMON", "FREE", "RULES", "STRICT", "Env", "Rule", "copy_layout", "default_layout", "fma_acc_layout",
           "memory_layout", "rule", "tile_operands", "tile_results", "view_gather_source", "view_result_layout",
           "view_source_layout"]  # fmt: skip

STRICT, COMMON, FREE = 0, 1, 2

Layouts = list[RegisterLayout | None]


def _tiles(op: O.Op, names: tuple[str, ...]) -> list[Value]:
    out = []
    for name in names:
        v = getattr(op, name)
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, Value) and isinstance(x.type, TileType):
                out.append(x)
    return out


def tile_operands(op: O.Op) -> list[Value]:
    """The register tiles an op reads, in its description's order (regions' yields not included)."""
    return _tiles(op, op.spec.inputs)


def tile_results(op: O.Op) -> list[Value]:
    return _tiles(op, op.spec.results)


# ------------------------------------------------------------------------------------- default layouts


def memory_layout(shape: tuple[int, ...], bits: int, threads: int) -> RegisterLayout:
    """The coalesced layout of a tile read from or written to memory: runs of up to 16 bytes along the last
    dimension, shorter when the tile has too few elements to give every thread a full run (no thread idles
    or duplicates work while another does several runs)."""
    per_thread = max(1, math.prod(shape) // threads)
    vec = pow2_factor(shape[-1], max(1, min(128 // max(bits, 1), per_thread)))
    return blocked(shape, threads, (1,) * (len(shape) - 1) + (vec,), pad=True)


def default_layout(t: TileType, threads: int) -> RegisterLayout:
    return memory_layout(t.shape, t.dtype.bits, threads)


def fma_acc_layout(shape: tuple[int, int], threads: int) -> RegisterLayout:
    """The accumulator of a per-thread FMA ``dot``: each thread owns an Mt x Nt block (about square, Nt <= 8)."""
    m, n = shape
    e = max(1, m * n // threads)
    nt = pow2_factor(n, min(8, e))
    mt = pow2_factor(m, max(1, e // nt))
    return blocked(shape, threads, (mt, nt), pad=True)


# ------------------------------------------------------------------------------------- view layouts


def _group(src_bits: int, dst_bits: int) -> tuple[int, int]:
    """(source elements, result elements) of one group of a view: both sides hold lcm(bits) bits."""
    lcm = src_bits * dst_bits // math.gcd(src_bits, dst_bits)
    return lcm // src_bits, lcm // dst_bits


def _along(rank: int, axis: int, n: int) -> RegisterLayout:
    return R.local(*(n if d == axis else 1 for d in range(rank)))


def view_result_layout(src: RegisterLayout, axis: int, src_bits: int, dst_bits: int) -> RegisterLayout | None:
    """The layout of ``view(x, ...)`` that keeps every bit in its register, given x's layout, or None.

    With groups of ``g`` source / ``c`` result elements along ``axis``: when
    ``src == product(Q, local(g along axis))`` the result is
    ``product(Q, local(c along axis))`` -- each thread's slots, as a bit
    stream, are unchanged.
    """
    g, c = _group(src_bits, dst_bits)
    rank = src.rank
    q = src if g == 1 else R.divide(src, _along(rank, axis, g))
    if q is None:
        return None
    return q if c == 1 else R.product(q, _along(rank, axis, c))


def view_gather_source(dst: RegisterLayout, axis: int, src_bits: int, dst_bits: int) -> RegisterLayout | None:
    """The source layout of a *gathering* view: every thread holds, whole, each word its codes come from.

    For ``r = src_bits / dst_bits`` codes per word along ``axis``, the code
    coordinate ``k`` splits into the word ``k // r`` and the position ``k % r``
    inside it.  The result's modes along ``axis`` are cut at weight ``r``
    (a mode that straddles it is split in two); the modes below it select a
    code inside a word, so in the source they vanish -- a slot digit simply
    goes, a thread digit becomes replication (those threads read the same
    word and each takes its own code).  ``None`` when the cut does not fall
    on mode boundaries (odd sizes) or ``src_bits`` is not a multiple of
    ``dst_bits``.  The lowering extracts each code from its word register.
    """
    if src_bits % dst_bits or src_bits <= dst_bits:
        return None
    r = src_bits // dst_bits
    if r & (r - 1):
        return None
    keys: list[list[tuple[int, bool]]] = []  # per dimension: (size, below the cut) most significant first
    expand: dict[int, list[int]] = {}  # old mode id -> new key ids
    key_size: dict[int, int] = {}
    key_low: dict[int, bool] = {}
    nxt = 0
    old = 0
    for d, sizes in enumerate(dst.modes):
        dim_keys = []
        for j, size in enumerate(sizes):
            w = math.prod(sizes[j + 1:])
            parts: list[tuple[int, bool]]
            if d == axis and w < r < w * size:
                if r % w or size % (r // w):
                    return None
                lo = r // w
                parts = [(size // lo, False), (lo, True)]
            else:
                parts = [(size, d == axis and w < r)]
            ids = []
            for sz, low in parts:
                key_size[nxt], key_low[nxt] = sz, low
                ids.append(nxt)
                dim_keys.append((nxt, sz, low))
                nxt += 1
            expand[old] = ids
            old += 1
        keys.append(dim_keys)  # type: ignore[arg-type]
    # renumber the kept keys dimension-major
    new_id, modes = {}, []
    for dim_keys in keys:
        sizes = []
        for k, sz, low in dim_keys:  # type: ignore[misc]
            if not low:
                new_id[k] = len(new_id)
                sizes.append(sz)
        modes.append(tuple(sizes))
    spatial, local = [], []
    for e in dst.spatial:
        for k in ([e] if e < 0 else expand[e]):
            if k < 0:
                spatial.append(k)
            elif key_low[k]:
                spatial.append(-key_size[k])  # threads that read the same word
            else:
                spatial.append(new_id[k])
    for e in dst.local:
        for k in expand[e]:
            if not key_low[k]:
                local.append(new_id[k])
    # a thread's words in row-major slot order (the last dimension innermost): adjacent words of a row are
    # adjacent slots, so they load as vectors from a row-major buffer or from global memory (with interleaved
    # mma fragments a thread holds adjacent columns)
    local = sorted(local)
    try:
        return RegisterLayout(tuple(modes), tuple(spatial), tuple(local))
    except LayoutError:
        return None


def view_friendly_layout(t: TileType, axis: int, src_bits: int, dst_bits: int, threads: int) -> RegisterLayout:
    """A layout of the view's source in which each thread holds whole groups along ``axis`` as its innermost slots.

    ``product(coalesced layout of the grouped tile, local(g along axis))``: the
    bit stream of each group is then contiguous in the thread's words.
    """
    g, _ = _group(src_bits, dst_bits)
    if t.shape[axis] % g:
        raise LayoutError(f"a view along axis {axis} of {list(t.shape)} does not split into groups of {g}", t.shape)
    grouped = tuple(n // g if d == axis else n for d, n in enumerate(t.shape))
    return R.product(memory_layout(grouped, t.dtype.bits * g, threads), _along(len(t.shape), axis, g))


def view_source_layout(dst: RegisterLayout, axis: int, src_bits: int, dst_bits: int) -> RegisterLayout | None:
    """The inverse: the source layout whose view is ``dst`` without moving bits, or None."""
    g, c = _group(src_bits, dst_bits)
    rank = dst.rank
    q = dst if c == 1 else R.divide(dst, _along(rank, axis, c))
    if q is None:
        return None
    return q if g == 1 else R.product(q, _along(rank, axis, g))


# ------------------------------------------------------------------------------------- rules

Lay = Callable[[Value], RegisterLayout | None]


@dataclass(frozen=True)
class Env:
    """What rules may know of the program as a whole: the block's threads and the target."""

    threads: int
    arch: str = "sm_80"
    tensor_cores: bool = True


class Rule:
    """No opinion: the result's layout is free, operands keep theirs.

    ``produces(op, lay)``: result layouts that follow from the known layouts
    (``lay(v)``, None when unknown) of the op's operands; ``requires(op,
    lay)``: operand layouts the op needs given its results' (and its other
    operands') known layouts.  Both return only what they can say.
    """

    def produces(self, op: O.Op, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:
        return {}

    def requires(self, op: O.Op, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:
        return {}

    def anchor(self, op: O.Op, env: Env) -> tuple[Value, RegisterLayout] | None:
        return None

    def strict(self, op: O.Op, env: Env) -> list[tuple[Value, RegisterLayout]]:
        """Layouts the op cannot do without (tensor-core fragments): set first, like user layouts."""
        return []


def _known(d: dict[Value, RegisterLayout | None]) -> dict[Value, RegisterLayout]:
    return {v: x for v, x in d.items() if x is not None}


class Tied(Rule):
    """Some tiles of the op share one layout: ``members(op)`` lists them, results first."""

    def members(self, op: O.Op) -> list[Value]:
        return tile_results(op) + tile_operands(op)

    def _layout(self, op: O.Op, lay: Lay) -> RegisterLayout | None:
        return next((x for v in self.members(op) if (x := lay(v)) is not None), None)

    def produces(self, op: O.Op, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:
        x = self._layout(op, lay)
        return {r: x for r in tile_results(op) if r in self.members(op)} if x is not None else {}

    def requires(self, op: O.Op, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:
        x = self._layout(op, lay)
        return {v: x for v in tile_operands(op) if v in self.members(op)} if x is not None else {}


class Broadcast(Rule):
    def requires(self, op: O.Broadcast, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        out = lay(op.result)
        if out is None:
            return {}
        for d, (a, b) in enumerate(zip(op.x.type.shape, op.result.type.shape)):  # type: ignore[union-attr]
            if a == 1 and b > 1:
                out = R.reduce_dim(out, d)
        return {op.x: out}


class Reduce(Rule):
    def produces(self, op: O.Reduce, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        x = lay(op.x)
        return {op.result: R.reduce_dim(x, op.axis)} if x is not None else {}


def _view_args(op: O.View) -> tuple[int, int, int]:
    return op.axis % len(op.x.type.shape), op.x.type.dtype.bits, op.result.type.dtype.bits  # type: ignore[union-attr]


class View(Rule):
    def anchor(self, op: O.View, env: Env) -> tuple[Value, RegisterLayout] | None:  # type: ignore[override]
        """Straddling widths (a uint3 code may span two words) need whole groups of words per thread."""
        ax, sb, db = _view_args(op)
        g, _ = _group(sb, db)
        return (op.x, view_friendly_layout(op.x.type, ax, sb, db, env.threads)) if g > 1 else None  # type: ignore[arg-type]

    def produces(self, op: O.View, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        x, out = lay(op.x), lay(op.result)
        if x is None:
            return {}
        if out is not None and x == view_gather_source(out, *_view_args(op)):
            return {op.result: out}  # a gathering view (codes taken out of replicated words)
        return _known({op.result: view_result_layout(x, *_view_args(op))})

    def requires(self, op: O.View, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        out = lay(op.result)
        if out is None:
            return {}
        src = view_source_layout(out, *_view_args(op))
        if src is None:  # each thread reads, whole, the words its codes are in -- if few threads share a word
            g = view_gather_source(out, *_view_args(op))
            if g is not None and g.replication <= 4 * out.replication:
                src = g  # (a source in another layout is converted into it: words move, not codes)
        if src is None:  # no source layout views to this one: use one that holds whole groups (converted to/from)
            src = view_friendly_layout(op.x.type, *_view_args(op), env.threads)  # type: ignore[arg-type]
            x = lay(op.x)
            if x is not None and view_result_layout(x, *_view_args(op)) is not None and src != x:
                return {op.x: x}  # the operand's own layout views fine; the result is converted after
        return {op.x: src}


def _try(fn, *args) -> RegisterLayout | None:  # noqa: ANN001
    try:
        return fn(*args)
    except LayoutError:
        return None


def reshape_layout(lay: RegisterLayout, src: tuple[int, ...], dst: tuple[int, ...]) -> RegisterLayout | None:
    """``lay`` (of a ``src``-shaped tile) re-viewed for a ``dst``-shaped tile with the same registers, or None.

    An unpadded layout reshapes like :func:`lowbit.layout.register.reshape`; a
    padded one only when the reshape adds or removes extent-1 dimensions
    (``expand_dims``, ``keepdims=False``), which keeps the padding where it is.
    """
    if tuple(lay.shape) == tuple(src):
        return _try(R.reshape, lay, dst)
    if [n for n in src if n != 1] != [n for n in dst if n != 1]:
        return None
    pads = iter(p for p, n in zip(lay.shape, src) if n != 1)
    target = tuple(1 if n == 1 else next(pads) for n in dst)
    return _try(R.reshape, lay, target)


def reshape_fallback(shape: tuple[int, ...], threads: int) -> RegisterLayout:
    """Where no register-local reshape exists between two layouts: every thread holds the whole tile.

    That layout reshapes to any shape; the operand is converted into it and
    the result out of it.  Costly for big tiles, so only odd cases get here.
    """
    return R.product(R.replicate(threads, len(shape)), R.local(*shape))


class Reshape(Rule):
    def produces(self, op: O.Reshape, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        x = lay(op.x)
        if x is None:
            return {}
        return _known({op.result: reshape_layout(x, op.x.type.shape, op.result.type.shape)})  # type: ignore[union-attr]

    def requires(self, op: O.Reshape, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        out = lay(op.result)
        if out is None:
            return {}
        src = reshape_layout(out, op.result.type.shape, op.x.type.shape)  # type: ignore[union-attr]
        if src is None:
            src = reshape_fallback(op.x.type.shape, env.threads)  # type: ignore[union-attr]
        return {op.x: src}


class Permute(Rule):
    def produces(self, op: O.Permute, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        x = lay(op.x)
        return {op.result: R.permute(x, op.order)} if x is not None else {}

    def requires(self, op: O.Permute, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        out = lay(op.result)
        inverse = tuple(op.order.index(d) for d in range(len(op.order)))
        return {op.x: R.permute(out, inverse)} if out is not None else {}


class Lookup(Tied):
    """The index and the result share a layout; every thread holds the whole (small) table."""

    def members(self, op: O.Lookup) -> list[Value]:  # type: ignore[override]
        return [op.result, op.index]

    def requires(self, op: O.Lookup, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        out = super().requires(op, lay, env)
        x = self._layout(op, lay)
        if x is not None:
            out[op.table] = R.product(R.replicate(x.num_threads, 1), R.local(op.table.type.shape[0]))  # type: ignore[union-attr]
        return out


class Load(Tied):
    """A load's result wants the coalesced layout; its mask shares the result's."""

    def anchor(self, op: O.Op, env: Env) -> tuple[Value, RegisterLayout] | None:
        t = op.result.type  # type: ignore[attr-defined]
        return op.result, memory_layout(t.shape, t.dtype.bits, env.threads)  # type: ignore[attr-defined]


class Store(Tied):
    """A store's value wants the coalesced layout; its mask shares the value's."""

    def anchor(self, op: O.Op, env: Env) -> tuple[Value, RegisterLayout] | None:
        t = op.value.type  # type: ignore[attr-defined]
        return op.value, memory_layout(t.shape, t.dtype.bits, env.threads)  # type: ignore[attr-defined]


class CopyAsync(Rule):
    """``copy_async`` distributes the buffer's elements like a coalesced load of it: its mask must match."""

    def requires(self, op: O.CopyAsync, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        return {op.mask: copy_layout(op, env.threads)} if op.mask is not None else {}


def copy_layout(op: O.CopyAsync, threads: int) -> RegisterLayout:
    """How ``copy_async`` spreads its buffer's elements over the threads (and so its mask's layout).

    Runs of up to 16 bytes along the last dimension even when that leaves
    threads idle: one 16-byte ``cp.async`` is the unit the copy engine moves
    best, and only first replicas copy.
    """
    s = op.dst.type
    assert isinstance(s, SharedType)  # noqa: S101
    vec = pow2_factor(s.shape[-1], max(1, 128 // max(s.dtype.bits, 1)))
    return blocked(s.shape, threads, (1,) * (len(s.shape) - 1) + (vec,), pad=True)


def dot_plan(op: O.Dot, env: Env):  # noqa: ANN201 - an MmaPlan or None
    from lowbit.transforms._mma import plan  # noqa: PLC0415

    if not env.tensor_cores:
        return None
    ta, tb, tc = op.a.type, op.b.type, op.c.type
    return plan(ta.dtype, tb.dtype, tc.dtype, ta.shape, tb.shape, env.threads // 32, env.arch,  # type: ignore[union-attr]
                op.interleave)  # fmt: skip


class Dot(Tied):
    """On tensor cores: the mma fragment layouts for every operand (strict); else the FMA scheme, where only the
    accumulator and the result share a layout (the FMA block layout unless told otherwise)."""

    def members(self, op: O.Dot) -> list[Value]:  # type: ignore[override]
        return [op.result, op.c]

    def strict(self, op: O.Dot, env: Env) -> list[tuple[Value, RegisterLayout]]:  # type: ignore[override]
        p = dot_plan(op, env)
        return [] if p is None else [(op.a, p.a), (op.b, p.b), (op.c, p.c), (op.result, p.c)]

    def requires(self, op: O.Dot, lay: Lay, env: Env) -> dict[Value, RegisterLayout]:  # type: ignore[override]
        out = super().requires(op, lay, env)
        p = dot_plan(op, env)
        if p is not None:
            out.update({op.a: p.a, op.b: p.b})
        return out

    def anchor(self, op: O.Dot, env: Env) -> tuple[Value, RegisterLayout] | None:  # type: ignore[override]
        return op.result, fma_acc_layout(op.result.type.shape, env.threads)  # type: ignore[union-attr,arg-type]


SAME = Tied()
RULES: dict[type[O.Op], Rule] = {
    O.Cast: SAME, O.Dequant: SAME, O.ElementwiseUnary: SAME, O.ElementwiseBinary: SAME, O.Where: SAME, O.Fma: SAME,
    O.Broadcast: Broadcast(), O.Reduce: Reduce(), O.View: View(), O.Reshape: Reshape(), O.Permute: Permute(),
    O.Lookup: Lookup(), O.LoadGlobal: Load(), O.LoadShared: Load(), O.StoreGlobal: Store(),
    O.StoreShared: Store(), O.CopyAsync: CopyAsync(), O.Dot: Dot(),
    O.Atomic: Store(),  # value, mask, compare and old values share the value's (coalesced) layout
}  # fmt: skip
# Full, Arange, Slice, ConvertLayout, ThreadIndex and the ops without tiles have no rule (Rule()): their
# results take what their users want (or, for convert_layout and thread_index, what they state).
DEFAULT = Rule()


def rule(op: O.Op) -> Rule:
    return RULES.get(type(op), DEFAULT)
