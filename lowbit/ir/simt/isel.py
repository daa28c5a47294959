"""Instruction-selection ops: what a transform chose, spelt out so that codegen only translates.

``lop3`` and ``prmt`` (bit tricks LLVM never selects by itself), the packed
conversions ``cvt_pack`` / ``cvt_unpack``, and ``call`` of an NVVM
intrinsic (checked against codegen's table per target).  Re-exported by
:mod:`lowbit.ir.simt.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.simt.base import Op
from lowbit.ir.simt.types import BF16, F16, F32, I16, I32, Operand, PtrType, Reg, VectorType

__all__ = ["CVT_PACK", "CVT_UNPACK", "Call", "CvtPack", "CvtUnpack", "Lop3", "Prmt"]


@dataclass(frozen=True, eq=False)
class Lop3(Op):
    """``lop3.b32 result, a, b, c, lut``: any 3-input bitwise function, ``lut`` = f(0xF0, 0xCC, 0xAA)."""

    result: Reg
    a: Operand
    b: Operand
    c: Operand
    lut: int
    opname = "lop3"
    result_fields, operand_fields = ("result",), ("a", "b", "c")

    def __post_init__(self) -> None:
        self.expect(I32, "a", "b", "c")
        if not isinstance(self.lut, int) or not 0 <= self.lut <= 0xFF:
            raise self.fail(f"lut must be an int in 0..255, got {self.lut!r}")
        self.same(self.result_type(), I32, "result")


@dataclass(frozen=True, eq=False)
class Prmt(Op):
    """``prmt.b32 result, a, b, selector``: pick 4 bytes of the 8 bytes {b, a} (default mode)."""

    result: Reg
    a: Operand
    b: Operand
    selector: Operand
    opname = "prmt"
    result_fields, operand_fields = ("result",), ("a", "b", "selector")

    def __post_init__(self) -> None:
        self.expect(I32, "a", "b", "selector")
        self.same(self.result_type(), I32, "result")


# kind -> (result type, arch feature or None)
CVT_PACK = {
    "f16x2.rn": (VectorType(F16, 2), "cvt.f16x2"),
    "bf16x2.rn": (VectorType(BF16, 2), "cvt.f16x2"),
    "e4m3x2.rn": (I16, "cvt.e4m3x2"),
    "e5m2x2.rn": (I16, "cvt.e4m3x2"),
}
#: kind -> result type: the packed small-float pair (i16, lane 0 in the low byte; e2m1x2: the low byte, lane 0 in
#: its low nibble) to f16x2.  PTX ISA cvt: ``.f16x2.{e4m3x2,e5m2x2}`` sm_89 (PTX 8.1) / sm_90 (7.8);
#: ``.f16x2.{e2m1x2,e2m3x2,e3m2x2}`` sm_100a / sm_120a (8.6).  There is no bf16x2 destination (ptxas 13 rejects
#: ``cvt.rn.bf16x2.e4m3x2`` on every target); the target gate is codegen's intrinsic table.
CVT_UNPACK = {f"{k}.f16x2": VectorType(F16, 2) for k in ("e4m3x2", "e5m2x2", "e2m1x2", "e2m3x2", "e3m2x2")}


@dataclass(frozen=True, eq=False)
class CvtPack(Op):
    """Two f32 -> one packed pair (lane 0 from ``lo``): ``cvt.rn.f16x2.f32``, ``.bf16x2``, ``.satfinite.e4m3x2``..."""

    result: Reg
    kind: str
    lo: Operand
    hi: Operand
    opname = "cvt_pack"
    result_fields, operand_fields = ("result",), ("lo", "hi")

    def __post_init__(self) -> None:
        self.known(self.kind, tuple(CVT_PACK), "packed conversion", listed=True)
        self.expect(F32, "lo", "hi")
        self.same(self.result_type(), CVT_PACK[self.kind][0], "result")


@dataclass(frozen=True, eq=False)
class CvtUnpack(Op):
    """One packed small-float pair (i16, lane 0 in the low byte or nibble) -> f16x2: ``cvt.rn.f16x2.e4m3x2``..."""

    result: Reg
    kind: str
    x: Operand
    opname = "cvt_unpack"
    result_fields, operand_fields = ("result",), ("x",)

    def __post_init__(self) -> None:
        self.known(self.kind, tuple(CVT_UNPACK), "packed conversion", listed=True)
        self.expect(I16, "x")
        self.same(self.result_type(), CVT_UNPACK[self.kind], "result")


@dataclass(frozen=True, eq=False)
class Call(Op):
    """Call NVVM intrinsic ``name`` (``llvm.nvvm.*``, checked against codegen's table per target).

    Several results mean the intrinsic returns a struct of those types
    (``ldmatrix`` x4: four i32; ``mma``: the D fragment).  This is also the
    seam for ``mma.sync`` / ``ldmatrix`` until they get ops of their own.
    """

    results_: tuple[Reg, ...]
    name: str
    args: tuple[Operand, ...]
    opname = "call"
    result_fields, operand_fields = ("results_",), ("args",)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.startswith("llvm.nvvm."):
            raise self.fail(f"only llvm.nvvm.* intrinsics may be called, got {self.name!r}")
        if not isinstance(self.results_, tuple) or not isinstance(self.args, tuple):
            raise self.fail("results and args must be tuples")
        for r in self.results_:
            if isinstance(self.want_reg(r, "result").type, PtrType):
                raise self.fail("intrinsic results cannot be pointers")
        for i, a in enumerate(self.args):
            self.want(a, f"argument {i}")
