"""VM global atomics: element-wise read-modify-write of a tile into a global view (split-K's reduction).

Re-exported by :mod:`lowbit.ir.ops`.  One op, :class:`Atomic`, with a
``kind``:

* ``add`` on f32, f16, int32 and uint32 (f16 pairs become
  ``atom.add.noftz.f16x2`` where a thread owns two aligned neighbours);
* ``max`` / ``min`` on int32 and uint32;
* ``cas`` (compare-and-swap) on int32 and uint32: where the element equals
  ``compare`` it becomes ``value``.

Every element in bounds (and on ``mask``) is one atomic operation on its
own address (PTX ISA 9.7.13.5 ``atom``); atomics on *different* elements are
not ordered with one another, and when several elements of one launch hit
the same address (a stride-0 view, or several blocks: split-K) their order
is unspecified -- the interpreter applies them block by block, row-major
within a tile.  f32 ``add`` on global memory flushes subnormal inputs and
results to zero (9.7.13.5: "atom.add.f32 on global memory flushes
subnormal inputs and results to sign-preserving zero"); f16 ``add`` is
``.noftz``.  The optional ``result`` is the tile of old values (0 where an
element is out of bounds or masked off); without one the atomics are
``red`` reductions.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.expr import Expr
from lowbit.ir.op_base import Effect, Op, OpSpec
from lowbit.ir.op_base import global_type as _global
from lowbit.ir.op_base import mask_check as _mask
from lowbit.ir.types import Value

__all__ = ["ATOMIC_DTYPES", "ATOMIC_KINDS", "Atomic"]

ATOMIC_KINDS = ("add", "max", "min", "cas")

#: The element types each kind takes (what ``atom.global`` has on sm_80, PTX ISA 9.7.13.5).
ATOMIC_DTYPES = {
    "add": ("f32", "f16", "int32", "uint32"),
    "max": ("int32", "uint32"),
    "min": ("int32", "uint32"),
    "cas": ("int32", "uint32"),
}


@dataclass(frozen=True, eq=False)
class Atomic(Op):
    """``dst[offsets + i] = dst[...] <kind> value[i]`` atomically for every element ``i`` in bounds and on ``mask``."""

    result: Value | None
    kind: str
    dst: Value
    value: Value
    offsets: tuple[Expr, ...]
    mask: Value | None = None
    compare: Value | None = None
    opname = "atomic"
    spec = OpSpec(results=("result",), operands=("dst", "value", "offsets"), optional=("mask", "compare"),
                  attrs=("kind",), effect=Effect.WRITE)  # fmt: skip

    def __post_init__(self) -> None:
        if self.kind not in ATOMIC_KINDS:
            raise self.fail(f"kind must be one of {ATOMIC_KINDS}, got {self.kind!r}")
        g = _global(self, self.dst, "destination")
        self.index_exprs(self.offsets, "offsets", g.ndim)
        t = self.tile(self.value, "value")
        if t.dtype != g.dtype or len(t.shape) != g.ndim:
            raise self.fail(f"value {t} does not match the view {g}")
        if t.dtype.name not in ATOMIC_DTYPES[self.kind]:
            raise self.fail(f"atomic {self.kind} takes {', '.join(ATOMIC_DTYPES[self.kind])} elements, got {t.dtype.name}")
        _mask(self, self.mask, t.shape)
        if (self.compare is not None) != (self.kind == "cas"):
            raise self.fail("cas needs a compare tile, and only cas takes one")
        if self.compare is not None:
            c = self.tile(self.compare, "compare")
            if c.dtype != t.dtype or c.shape != t.shape:
                raise self.fail(f"compare {c} must match the value {t}")
        if self.result is not None:
            self.check_result(self.result, t)
