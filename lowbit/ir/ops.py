"""VM instructions: one frozen dataclass per op, each validating itself and describing its fields.

The one namespace of op classes; they live by kind in
:mod:`~lowbit.ir.ops_memory` (queries, global and shared memory, async
copies, barriers), :mod:`~lowbit.ir.ops_compute` (element-wise math, casts,
views, dot, reduce, layout conversion and re-arrangements) and
:mod:`~lowbit.ir.ops_control` (``for``, ``if``, ``print``).  The base class
and the field description every consumer reads (:class:`OpSpec`) are in
:mod:`~lowbit.ir.op_base`.

Conventions
* Results are :class:`~lowbit.ir.types.Value` s (tiles, shared buffers,
  global views) or :class:`~lowbit.ir.expr.Var` s (scalars).
* Scalars (offsets, bounds, loop limits) are :class:`~lowbit.ir.expr.Expr`.
* ``loc`` (keyword-only, optional) is the DSL source position to blame.

The meaning of each op is in ``docs/dsl.md`` and, executably, in
:mod:`lowbit.interp`.
"""

from __future__ import annotations

from lowbit.ir.op_base import Carried, CarriedIn, Effect, Loc, Op, OpSpec, Region, check_spec
from lowbit.ir.ops_compute import (
    ARITH_UNARY, BINARY_TILE_OPS, DOT_FP8, REDUCE_KINDS, THREAD_INDEX_KINDS, Arange, Broadcast, Cast, ConvertLayout, Dequant,
    Dot,
    ElementwiseBinary, ElementwiseUnary, Fma, Full, Lookup, Permute, Reduce, Reshape, Slice, ThreadIndex, View,
    Where, view_shape,
)  # fmt: skip
from lowbit.ir.ops_atomic import ATOMIC_DTYPES, ATOMIC_KINDS, Atomic
from lowbit.ir.ops_control import For, If, Print
from lowbit.ir.ops_memory import (
    L1_EVICTION, L2_EVICTION, LOAD_SHARED_VIA, PREFETCH_SIZES, AllocShared, Barrier, CommitGroup, CopyAsync,
    FreeShared, GlobalView, LoadGlobal, LoadShared, NumPrograms, PairTable, ProgramId, SharedView, StoreGlobal,
    StoreShared, WaitGroup,
)  # fmt: skip

__all__ = [
    "ARITH_UNARY", "ATOMIC_DTYPES", "ATOMIC_KINDS", "BINARY_TILE_OPS", "DOT_FP8", "L1_EVICTION", "L2_EVICTION",
    "LOAD_SHARED_VIA", "OP_CLASSES", "PREFETCH_SIZES", "REDUCE_KINDS", "THREAD_INDEX_KINDS", "AllocShared", "Atomic",
    "Arange", "Barrier", "Broadcast", "Carried", "CarriedIn", "Cast", "CommitGroup",
    "ConvertLayout", "CopyAsync", "Dequant", "Dot", "Effect", "ElementwiseBinary", "ElementwiseUnary", "Fma", "For",
    "FreeShared", "Full", "GlobalView", "If", "LoadGlobal", "LoadShared", "Loc", "Lookup", "NumPrograms", "Op",
    "OpSpec", "PairTable", "Permute", "Print", "ProgramId", "Reduce", "Region", "Reshape", "SharedView", "Slice", "StoreGlobal", "StoreShared",
    "ThreadIndex", "View", "WaitGroup", "Where", "by_mnemonic", "view_shape",
]  # fmt: skip

#: Every instruction class.  The interpreter and the lowering have one handler per class; the verifier,
#: printer, parser and rewriter read each class's :class:`OpSpec`.
OP_CLASSES: tuple[type[Op], ...] = (
    ProgramId, NumPrograms, GlobalView, AllocShared, FreeShared, LoadGlobal, StoreGlobal,
    LoadShared, StoreShared, CopyAsync, CommitGroup, WaitGroup, Barrier, Full, Arange, Cast,
    View, ElementwiseUnary, ElementwiseBinary, Where, Fma, Dot, Reduce, Lookup, Broadcast,
    Reshape, ConvertLayout, Permute, Slice, ThreadIndex, For, If, Print, SharedView, Atomic, Dequant,
    PairTable,
)  # fmt: skip

for _cls in OP_CLASSES:
    check_spec(_cls)


def _mnemonics() -> dict[str, tuple[type[Op], dict[str, str]]]:
    out: dict[str, tuple[type[Op], dict[str, str]]] = {}
    for cls in OP_CLASSES:
        attr = cls.spec.mnemonic_attr
        names = {ElementwiseUnary: (*ARITH_UNARY, "not"), ElementwiseBinary: BINARY_TILE_OPS}.get(cls)  # type: ignore[call-overload]
        if attr is None:
            out[cls.opname] = (cls, {})
        else:
            for n in names:
                out[n] = (cls, {attr: n})
    return out


_BY_MNEMONIC = _mnemonics()


def by_mnemonic(name: str) -> tuple[type[Op], dict[str, str]] | None:
    """The op class printed as ``name`` and the attributes the mnemonic sets (``add`` -> binary, op="add")."""
    return _BY_MNEMONIC.get(name)
