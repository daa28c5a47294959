"""Instruction selection for the memory ops issue 12 added: stage views, global atomics, wide epilogue stores.

Mixed into :class:`lowbit.transforms.select_instructions._Select` (which
dispatches ``_<OpClass>`` methods):

* ``shared_view``: recorded, so shared vector widths also divide the view's
  size (every stage then starts aligned to the access);
* ``atomic``: an unused old-values result is dropped (the atomics become
  ``red``); a used one needs every element held by exactly one thread, so a
  replicated operand layout is converted to an injective one (padded where
  the tile has fewer elements than the block has threads) and the old
  values converted back.
"""

from __future__ import annotations

import math

from lowbit.ir import ops as O
from lowbit.ir.program import Program
from lowbit.ir.rewrite import walk
from lowbit.ir.types import TileType, Value, is_bool
from lowbit.layout.construct import blocked
from lowbit.layout.register import RegisterLayout
from lowbit.transforms._layout_rules import memory_layout

__all__ = ["MemorySelect", "injective_layout", "used_values"]


def used_values(prog: Program) -> set[int]:
    """Ids of every value some op reads (operands, loop inits, region yields)."""
    out: set[int] = set()
    for op in walk(prog.body):
        for u in op.uses():
            if isinstance(u, Value):
                out.add(id(u))
        for r in op.regions():
            for y in r.yields:
                if isinstance(y, Value):
                    out.add(id(y))
    return out


def injective_layout(shape: tuple[int, ...], threads: int) -> RegisterLayout | None:
    """A coalesced layout of ``shape`` in which no element is held twice (padding the last dimension when the
    tile is smaller than the block), or None."""
    lay = memory_layout(shape, 32, threads)
    if lay.is_injective:
        return lay
    rest = math.prod(shape[:-1])
    last = 1
    while last < shape[-1] or rest * last < threads:
        last *= 2
    lay = blocked(shape[:-1] + (last,), threads, pad=True)
    return lay if lay.is_injective else None


class MemorySelect:
    """The ``_SharedView`` and ``_Atomic`` cases of instruction selection (see the module docstring)."""

    def init_memory(self, prog: Program) -> None:
        self.stage_views: set[int] = set()
        self.used = used_values(prog)
        self.loop_depth = 0

    def wide_store(self, op: O.StoreGlobal, vec: int) -> O.Op:
        """``op`` with its vector width -- or, in an epilogue, the value converted to 16-byte runs first."""
        t = op.value.type
        bits = t.dtype.bits  # type: ignore[union-attr]
        lay = t.layout  # type: ignore[union-attr]
        if self.loop_depth or op.mask is not None or is_bool(t.dtype) or vec * bits >= 128:  # type: ignore[union-attr]
            return op.replace(vec=vec)
        target = memory_layout(t.shape, bits, self.T)  # type: ignore[attr-defined, union-attr]
        if target == lay:
            return op.replace(vec=vec)
        probe = Value(TileType(t.dtype, t.shape, target))  # type: ignore[union-attr]
        wide = self.global_vec(op.dst, probe, op.offsets, None)  # type: ignore[attr-defined]
        if wide * bits < 128 or wide <= vec:
            return op.replace(vec=vec)
        return op.replace(value=self.convert(op.value, target, op.loc), vec=wide)  # type: ignore[attr-defined]

    def _SharedView(self, op: O.SharedView) -> None:  # noqa: N802 - dispatched by op class name
        self.stage_views.add(id(op.result))
        self.emit(op)  # type: ignore[attr-defined]

    def _Atomic(self, op: O.Atomic) -> None:  # noqa: N802
        if op.result is not None and id(op.result) not in self.used:
            op = op.replace(result=None)  # type: ignore[assignment]
        lay = op.value.type.layout  # type: ignore[union-attr]
        if op.result is None or lay.is_injective:  # type: ignore[union-attr]
            self.emit(op)  # type: ignore[attr-defined]
            return
        t = op.value.type
        inj = injective_layout(t.shape, self.T)  # type: ignore[attr-defined, union-attr]
        if inj is None:
            self.emit(op)  # type: ignore[attr-defined]  (the lowering names the problem)
            return
        conv = self.convert  # type: ignore[attr-defined]
        v = conv(op.value, inj, op.loc)
        m = conv(op.mask, inj, op.loc) if op.mask is not None else None
        c = conv(op.compare, inj, op.loc) if op.compare is not None else None
        r = Value(TileType(t.dtype, t.shape, inj), op.result.hint)  # type: ignore[union-attr]
        self.emit(O.Atomic(result=r, kind=op.kind, dst=op.dst, value=v, offsets=op.offsets, mask=m, compare=c,  # type: ignore[attr-defined]
                           loc=op.loc))  # fmt: skip
        self.bind(op.result, conv(r, lay, op.loc))  # type: ignore[attr-defined]
