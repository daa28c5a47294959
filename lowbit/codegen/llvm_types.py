"""SIMT types as ``llvmlite.ir`` types, the NVPTX triple and data layout.

llvmlite 0.50 has no ``bfloat`` type; :class:`BFloatType` adds it (LLVM
spells bf16 constants ``0xR`` + the 16 bits).  Pointers are opaque
``ptr addrspace(N)`` with N the SIMT memory space's NVPTX address space.
"""

from __future__ import annotations

import struct

import llvmlite.ir as ir

from lowbit.errors import CodegenError
from lowbit.ir.simt.types import PtrType, ScalarType, Type, VectorType

TRIPLE = "nvptx64-nvidia-cuda"
# What LLVM 22's NVPTX target machine reports for nvptx64 (tested in tests/codegen/test_emit_basics.py).
DATA_LAYOUT = "e-p6:32:32-i64:64-i128:128-i256:256-v16:16-v32:32-n16:32:64"


class BFloatType(ir.types._BaseFloatType):
    """LLVM's ``bfloat`` (bf16)."""

    null = "0.0"
    intrinsic_name = "bf16"

    def __str__(self) -> str:
        return "bfloat"

    def format_constant(self, value: float) -> str:
        bits = struct.unpack("<I", struct.pack("<f", value))[0]
        if bits & 0xFFFF:
            raise CodegenError(f"{value!r} is not a bf16 value")
        return f"0xR{bits >> 16:04X}"


BFloatType._create_instance()

_SCALARS: dict[str, ir.Type] = {
    "pred": ir.IntType(1),
    "i8": ir.IntType(8),
    "i16": ir.IntType(16),
    "i32": ir.IntType(32),
    "i64": ir.IntType(64),
    "f16": ir.HalfType(),
    "bf16": BFloatType(),
    "f32": ir.FloatType(),
    "f64": ir.DoubleType(),
}


def lltype(t: Type) -> ir.Type:
    """The LLVM type of a SIMT type."""
    if isinstance(t, ScalarType):
        return _SCALARS[t.name]
    if isinstance(t, VectorType):
        return ir.VectorType(_SCALARS[t.elem.name], t.count)
    if isinstance(t, PtrType):
        return ir.PointerType(addrspace=t.space.value)
    raise CodegenError(f"no LLVM type for {t!r}")


I1, I32T = ir.IntType(1), ir.IntType(32)


def overload_suffix(t: ir.Type) -> str:
    """LLVM's mangling of an overloaded intrinsic's type: i32, f32, v2f16, bf16."""
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{overload_suffix(t.element)}"
    if isinstance(t, ir.IntType):
        return f"i{t.width}"
    return {"half": "f16", "float": "f32", "double": "f64", "bfloat": "bf16"}[str(t)]
