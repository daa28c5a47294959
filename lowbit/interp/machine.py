"""The reference interpreter: the meaning of every VM op, executed with numpy.

A program runs once per block of the grid; inside a block every op works
on whole tiles (numpy per tile, never per element).  :data:`HANDLERS` has one
entry per op class.  Asynchronous copies are modelled faithfully enough to
catch pipelining bugs: ``copy_async`` reads global memory when issued but
writes shared memory only when a ``wait`` retires its committed group, so a
kernel that reads a buffer before waiting sees stale data (as a GPU may).
Barriers are no-ops: a block is one logical thread of control here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from lowbit import config
from lowbit.errors import LowbitError
from lowbit.ir import ops as O
from lowbit.ir.expr import Expr, Scalar, Var, evaluate
from lowbit.ir.program import Program
from lowbit.dtypes import dtype
from lowbit.ir.types import INT32, INT64, SharedType, TileType, Value
from lowbit.interp import values as V
from lowbit.interp.atomics import atomic
from lowbit.interp.memory import Buffer, GlobalViewValue, gather, scatter, tile_indices
from lowbit.interp.values import InterpError

__all__ = ["HANDLERS", "Block", "run_program"]

Slot = Scalar | np.ndarray | Buffer | GlobalViewValue
_F64 = dtype("f64")
_F32 = dtype("f32")


@dataclass
class Block:
    """The state of one block: its values, shared memory, async copy groups, grid position."""

    env: dict[Var | Value, Slot]
    pid: tuple[int, int, int]
    grid: tuple[int, int, int]
    pending: list[tuple[np.ndarray, tuple[slice, ...], np.ndarray]] = field(default_factory=list)
    groups: list[list[tuple[np.ndarray, tuple[slice, ...], np.ndarray]]] = field(default_factory=list)
    printer: Callable[[str], None] = print
    threads: int = 128
    deadline: float = math.inf  #: time.monotonic() past which the launch is stopped (the interpreter's watchdog)
    max_seconds: float = math.inf


def _where(op: O.Op) -> str:
    return f"{op.opname}" + (f" at {op.loc}" if op.loc is not None else "")


def _scalar(b: Block, e: Expr) -> Scalar:
    return evaluate(e, b.env)  # type: ignore[arg-type]


def _ints(b: Block, es: tuple[Expr, ...]) -> tuple[int, ...]:
    return tuple(int(_scalar(b, e)) for e in es)


def _tile(b: Block, v: Value) -> np.ndarray:
    return b.env[v]  # type: ignore[return-value]


def _set(b: Block, v: Var | Value, x: Slot) -> None:
    b.env[v] = x


def _ttype(v: Value) -> TileType:
    assert isinstance(v.type, TileType)  # noqa: S101 (ops validated at construction)
    return v.type


def _global_view(b: Block, op: O.GlobalView) -> None:
    buf = b.env[op.ptr]
    assert isinstance(buf, Buffer)  # noqa: S101
    _set(b, op.result, GlobalViewValue(buf, op.result.type.dtype, _ints(b, op.shape), _ints(b, op.strides)))


def _alloc(b: Block, op: O.AllocShared) -> None:
    t = op.result.type
    assert isinstance(t, SharedType)  # noqa: S101
    # Uninitialised shared memory: all-ones bit patterns (NaN for floats) make reads-before-writes visible.
    codes = np.full(t.shape, (1 << min(t.dtype.bits, 64)) - 1, dtype=np.uint64)
    _set(b, op.result, V.from_codes(codes, t.dtype))


def _shared_view(b: Block, op: O.SharedView) -> None:
    idx = _ints(b, op.indices)
    shape = op.buf.type.shape  # type: ignore[union-attr]
    if any(not 0 <= i < n for i, n in zip(idx, shape)):
        raise InterpError(f"{_where(op)}: index {list(idx)} is outside the leading extents {list(shape[:len(idx)])} "
                          "of the shared buffer")  # fmt: skip
    _set(b, op.result, _tile(b, op.buf)[idx])  # a numpy view: writes through it land in the buffer


def _atomic(b: Block, op: O.Atomic) -> None:
    view = b.env[op.dst]
    assert isinstance(view, GlobalViewValue)  # noqa: S101
    x = _tile(b, op.value)
    ok = np.ones(x.shape, bool) if op.mask is None else _tile(b, op.mask)
    cmp = None if op.compare is None else _tile(b, op.compare)
    old = atomic(view, _ints(b, op.offsets), op.kind, x, ok, cmp, _where(op))
    if op.result is not None:
        _set(b, op.result, old)


def _load_global(b: Block, op: O.LoadGlobal) -> None:
    view = b.env[op.src]
    assert isinstance(view, GlobalViewValue)  # noqa: S101
    t = _ttype(op.result)
    lin, ok = tile_indices(view, _ints(b, op.offsets), t.shape)
    if op.mask is not None:
        ok = ok & _tile(b, op.mask)
    loaded = V.from_codes(gather(view, lin, ok, _where(op)), t.dtype)
    src = V.storage_dtype(t.dtype)
    fill = V.from_scalar(op.other, INT64 if isinstance(op.other, int) else _F64, t.dtype, ())
    _set(b, op.result, np.where(ok, loaded, fill).astype(src))


def _store_global(b: Block, op: O.StoreGlobal) -> None:
    view = b.env[op.dst]
    assert isinstance(view, GlobalViewValue)  # noqa: S101
    t = _ttype(op.value)
    lin, ok = tile_indices(view, _ints(b, op.offsets), t.shape)
    if op.mask is not None:
        ok = ok & _tile(b, op.mask)
    scatter(view, lin, ok, V.to_codes(_tile(b, op.value), t.dtype), _where(op))


def _region(b: Block, buf: Value, offsets: tuple[int, ...], shape: tuple[int, ...], op: O.Op) -> tuple[slice, ...]:
    bshape = buf.type.shape  # type: ignore[union-attr]
    if any(o < 0 or o + n > m for o, n, m in zip(offsets, shape, bshape)):
        raise InterpError(f"{_where(op)}: tile {list(shape)} at {list(offsets)} is outside the shared buffer {list(bshape)}")
    return tuple(slice(o, o + n) for o, n in zip(offsets, shape))


def _load_shared(b: Block, op: O.LoadShared) -> None:
    t = _ttype(op.result)
    region = _region(b, op.src, _ints(b, op.offsets), t.shape, op)
    _set(b, op.result, _tile(b, op.src)[region].copy())


def _store_shared(b: Block, op: O.StoreShared) -> None:
    t = _ttype(op.value)
    region = _region(b, op.dst, _ints(b, op.offsets), t.shape, op)
    _tile(b, op.dst)[region] = _tile(b, op.value)


def _pair_table(b: Block, op: O.PairTable) -> None:
    """Unit ``(i | j * n) * copies + r`` (every copy ``r``) = ``entries[i] | entries[j] << 16`` (width 16), or the
    two words ``entries[i], entries[j]`` (width 32)."""
    e = np.asarray(op.entries, dtype=np.uint64)
    n = len(e)
    i, j = np.arange(n * n) % n, np.arange(n * n) // n
    if op.width == 16:
        units = (e[i] | e[j] << np.uint64(16))[:, None]
    else:
        units = np.stack([e[i], e[j]], axis=1)
    w = np.repeat(units, op.copies, axis=0).reshape(-1)
    _tile(b, op.dst)[...] = V.from_codes(w, INT32)


def _copy_async(b: Block, op: O.CopyAsync) -> None:
    view = b.env[op.src]
    assert isinstance(view, GlobalViewValue)  # noqa: S101
    shape = op.dst.type.shape  # type: ignore[union-attr]
    lin, ok = tile_indices(view, _ints(b, op.offsets), shape)
    if op.mask is not None:
        ok = ok & _tile(b, op.mask)
    data = V.from_codes(gather(view, lin, ok, _where(op)), view.dtype)
    b.pending.append((_tile(b, op.dst), tuple(slice(0, n) for n in shape), data))


def _commit(b: Block, op: O.CommitGroup) -> None:
    b.groups.append(b.pending)
    b.pending = []


def _wait(b: Block, op: O.WaitGroup) -> None:
    while len(b.groups) > op.pending:
        for dst, region, data in b.groups.pop(0):
            dst[region] = data


def _full(b: Block, op: O.Full) -> None:
    t = _ttype(op.result)
    _set(b, op.result, V.from_scalar(_scalar(b, op.value), op.value.dtype, t.dtype, t.shape))


def _arange(b: Block, op: O.Arange) -> None:
    n = _ttype(op.result).shape[0]
    _set(b, op.result, np.arange(op.start, op.start + n, dtype=np.int64))


def _cast(b: Block, op: O.Cast) -> None:
    _set(b, op.result, V.cast(_tile(b, op.x), _ttype(op.x).dtype, _ttype(op.result).dtype))


def _dequant(b: Block, op: O.Dequant) -> None:
    """The f32 chain a ``dequant`` stands for, step by step (see :class:`lowbit.ir.ops.Dequant`)."""
    f32 = _F32
    where = _where(op)
    v = V.cast(_tile(b, op.codes), _ttype(op.codes).dtype, f32)
    if op.factor != 1.0:
        v = V.binary("mul", v, np.full_like(v, op.factor), f32, where)
    if op.zero is not None:
        v = V.binary("sub", v, V.cast(_tile(b, op.zero), _ttype(op.zero).dtype, f32), f32, where)
    if op.scale is not None:
        v = V.binary("mul", v, V.cast(_tile(b, op.scale), _ttype(op.scale).dtype, f32), f32, where)
    _set(b, op.result, V.cast(v, f32, _ttype(op.result).dtype))


def _view(b: Block, op: O.View) -> None:
    x = _ttype(op.x)
    _set(b, op.result, V.view_bits(_tile(b, op.x), x.dtype, _ttype(op.result).dtype, op.axis % len(x.shape)))


def _unary(b: Block, op: O.ElementwiseUnary) -> None:
    _set(b, op.result, V.unary(op.op, _tile(b, op.x), _ttype(op.x).dtype))


def _binary(b: Block, op: O.ElementwiseBinary) -> None:
    _set(b, op.result, V.binary(op.op, _tile(b, op.a), _tile(b, op.b), _ttype(op.a).dtype, _where(op)))


def _where_op(b: Block, op: O.Where) -> None:
    _set(b, op.result, np.where(_tile(b, op.cond), _tile(b, op.a), _tile(b, op.b)))


def _fma(b: Block, op: O.Fma) -> None:
    # Rounded once to the dtype (exactly, as fma.rn): see lowbit.interp.values.fma.
    _set(b, op.result, V.fma(*(_tile(b, v) for v in (op.a, op.b, op.c)), _ttype(op.result).dtype))


def _dot(b: Block, op: O.Dot) -> None:
    ta, tc = _ttype(op.a), _ttype(op.c)
    a, bb, c = _tile(b, op.a), _tile(b, op.b), _tile(b, op.c)
    if ta.dtype.name in O.DOT_FP8:  # codes: their values (exact in f32)
        a, bb = (V.cast(x, ta.dtype, _F32).astype(np.float32) for x in (a, bb))
    elif ta.dtype.name.startswith("bipolar"):  # codes: the odd integers they stand for
        a, bb = (np.asarray(ta.dtype.decode(np.asarray(x).astype(np.uint64)), np.float64).astype(np.int64)
                 for x in (a, bb))  # fmt: skip
    if ta.dtype.is_float:
        # Products of f16/bf16 are exact in f32; the sum is accumulated in f32 (order unspecified,
        # as on tensor cores), then rounded to the accumulator's type.
        acc = a.astype(np.float32) @ bb.astype(np.float32) + c.astype(np.float32)
        _set(b, op.result, acc.astype(V.storage_dtype(tc.dtype)))
    else:
        acc = a.astype(np.int64) @ bb.astype(np.int64) + c.astype(np.int64)
        _set(b, op.result, V.wrap(acc, tc.dtype))


def _reduce(b: Block, op: O.Reduce) -> None:
    t = _ttype(op.x)
    x = _tile(b, op.x)
    if op.kind == "sum":
        out = x.sum(axis=op.axis, keepdims=True, dtype=np.int64 if t.dtype.is_int else x.dtype)
    elif t.dtype.is_float:  # PTX min/max (NaN yields the other, -0.0 < +0.0), folded along the axis
        out = np.take(x, [0], axis=op.axis)
        for i in range(1, x.shape[op.axis]):
            out = V.float_minmax(op.kind, out, np.take(x, [i], axis=op.axis), t.dtype)
    else:
        out = (np.maximum if op.kind == "max" else np.minimum).reduce(x, axis=op.axis, keepdims=True)
    _set(b, op.result, V.wrap(out, t.dtype) if t.dtype.is_int else out.astype(x.dtype))


def _lookup(b: Block, op: O.Lookup) -> None:
    table, idx = _tile(b, op.table), _tile(b, op.index).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= table.shape[0]):
        raise InterpError(f"{_where(op)}: index {int(idx.max())} outside a table of {table.shape[0]} entries")
    _set(b, op.result, table[idx])


def _broadcast(b: Block, op: O.Broadcast) -> None:
    _set(b, op.result, np.broadcast_to(_tile(b, op.x), _ttype(op.result).shape).copy())


def _reshape(b: Block, op: O.Reshape) -> None:
    _set(b, op.result, _tile(b, op.x).reshape(_ttype(op.result).shape))


def _convert_layout(b: Block, op: O.ConvertLayout) -> None:
    _set(b, op.result, _tile(b, op.x))  # layouts say where values sit, never what they are


def _permute(b: Block, op: O.Permute) -> None:
    _set(b, op.result, np.ascontiguousarray(np.transpose(_tile(b, op.x), op.order)))


def _slice(b: Block, op: O.Slice) -> None:
    shape = _ttype(op.result).shape
    _set(b, op.result, _tile(b, op.x)[tuple(slice(s, s + n) for s, n in zip(op.starts, shape))].copy())


def _thread_index(b: Block, op: O.ThreadIndex) -> None:
    t = _ttype(op.result)
    lay = t.layout
    if lay.num_threads != b.threads:  # type: ignore[union-attr]
        raise InterpError(f"{_where(op)}: the layout spans {lay.num_threads} threads, the block has {b.threads}")  # type: ignore[union-attr]
    out = np.zeros(t.shape, np.int64)
    for thread in range(b.threads):
        for slot in range(lay.local_size):  # type: ignore[union-attr]
            out[lay.coords(thread, slot)] = thread % 32 if op.kind == "lane" else thread // 32  # type: ignore[union-attr]
    _set(b, op.result, out)


def _carry(b: Block, x: Expr | Value) -> Slot:
    return _scalar(b, x) if isinstance(x, Expr) else b.env[x]


def _for(b: Block, op: O.For) -> None:
    start, stop, step = (int(_scalar(b, e)) for e in (op.start, op.stop, op.step))
    if step <= 0:
        where = str(op.loc) if op.loc is not None else "for"
        raise InterpError(f"{where}: range step must be positive, got {step}")
    vals = [_carry(b, x) for x in op.inits]
    for i in range(start, stop, step):
        if time.monotonic() > b.deadline:
            _timed_out(b, f"in the loop at {op.loc or 'for'} (iteration {(i - start) // step} of "
                          f"range({start}, {stop}, {step}))")  # fmt: skip
        _set(b, op.var, i)
        for a, v in zip(op.args, vals):
            _set(b, a, v)
        execute(b, op.body)
        vals = [_carry(b, y) for y in op.yields]
    for r, v in zip(op.results, vals):
        _set(b, r, v)


def _if(b: Block, op: O.If) -> None:
    taken = bool(_scalar(b, op.cond))
    execute(b, op.then_body if taken else op.else_body)
    ys = op.then_yields if taken else op.else_yields
    vals = [_carry(b, y) for y in ys]
    for r, v in zip(op.results, vals):
        _set(b, r, v)


def _print(b: Block, op: O.Print) -> None:
    parts = [str(_carry(b, v)) for v in op.values]
    b.printer(f"[pid {b.pid[0]},{b.pid[1]},{b.pid[2]}] {op.prefix}" + (" " + " ".join(parts) if parts else ""))


def _program_id(b: Block, op: O.ProgramId) -> None:
    _set(b, op.result, b.pid[op.axis])


def _num_programs(b: Block, op: O.NumPrograms) -> None:
    _set(b, op.result, b.grid[op.axis])


def _noop(b: Block, op: O.Op) -> None:
    return None


HANDLERS: dict[type[O.Op], Callable[[Block, O.Op], None]] = {
    O.ProgramId: _program_id,
    O.NumPrograms: _num_programs,
    O.GlobalView: _global_view,
    O.AllocShared: _alloc,
    O.FreeShared: _noop,
    O.LoadGlobal: _load_global,
    O.StoreGlobal: _store_global,
    O.LoadShared: _load_shared,
    O.StoreShared: _store_shared,
    O.PairTable: _pair_table,
    O.CopyAsync: _copy_async,
    O.CommitGroup: _commit,
    O.WaitGroup: _wait,
    O.Barrier: _noop,
    O.Full: _full,
    O.Arange: _arange,
    O.Cast: _cast,
    O.View: _view,
    O.Dequant: _dequant,
    O.ElementwiseUnary: _unary,
    O.ElementwiseBinary: _binary,
    O.Where: _where_op,
    O.Fma: _fma,
    O.Dot: _dot,
    O.Reduce: _reduce,
    O.Lookup: _lookup,
    O.Broadcast: _broadcast,
    O.Reshape: _reshape,
    O.ConvertLayout: _convert_layout,
    O.Permute: _permute,
    O.Slice: _slice,
    O.ThreadIndex: _thread_index,
    O.For: _for,
    O.If: _if,
    O.Print: _print,
    O.SharedView: _shared_view,
    O.Atomic: _atomic,
}  # type: ignore[dict-item]


def execute(b: Block, body: tuple[O.Op, ...]) -> None:
    for op in body:
        try:
            HANDLERS[type(op)](b, op)
        except InterpError:
            raise
        except LowbitError as exc:
            raise InterpError(f"{_where(op)}: {exc}") from None


def run_program(
    prog: Program,
    grid: tuple[int, int, int],
    args: Mapping[str, Slot],
    printer: Callable[[str], None] = print,
    max_seconds: float | None = None,
) -> None:
    """Run ``prog`` on every block of ``grid`` with parameter values ``args`` (already bound).

    ``max_seconds`` (default :data:`lowbit.config.INTERP_MAX_SECONDS`) bounds the launch's wall time: past it,
    the next block or loop iteration raises :class:`InterpError` saying where it stopped."""
    base: dict[Var | Value, Slot] = {p.value: args[p.name] for p in prog.params}
    seconds = config.INTERP_MAX_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + seconds
    for z, y, x in _block_ids(grid):
        block = Block(dict(base), (x, y, z), grid, printer=printer, threads=32 * prog.num_warps,
                      deadline=deadline, max_seconds=seconds)  # fmt: skip
        if time.monotonic() > deadline:
            _timed_out(block, f"before block {(x, y, z)} of the grid {grid}")
        execute(block, prog.body)


def _block_ids(grid: tuple[int, int, int]):
    """Block ids in launch order, generated lazily (``itertools.product`` would first materialise a
    ``range(2**31 - 1)`` -- a legal grid -- as a tuple: 16 GiB)."""
    for z in range(grid[2]):
        for y in range(grid[1]):
            for x in range(grid[0]):
                yield z, y, x


def _timed_out(b: Block, where: str) -> None:
    raise InterpError(f"watchdog: the interpreter ran longer than {b.max_seconds:g} s; stopped {where}, block "
                      f"{b.pid}; raise the budget with kernel.interpret[grid](..., max_seconds=...) "
                      "(math.inf: no limit)")  # fmt: skip
