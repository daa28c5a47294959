"""lowbit.dtypes: one exact numpy model of every number format lowbit handles.

A format is an immutable, hashable value (:class:`DType`) mapping unsigned
``bits``-wide codes to real numbers: ``decode(codes) -> float64`` and
``encode(x, saturate=False, rounding=None) -> codes``.  Everything later in
lowbit -- packing, quantization, kernels, the PTX emulator's conversions --
relies on these definitions being right to the bit, so each is checked
exhaustively against ml_dtypes where it has the type and against exact
``fractions.Fraction`` references where it does not (tests/dtypes).

* :class:`IntType` -- int1..int64, uint1..uint64 (two's complement codes).
* :class:`FloatType` -- f64, f32, f16, bf16, FP8 e4m3fn/e5m2, FP6 e3m2/e2m3,
  FP4 e2m1 (OCP Microscaling spec v1.0), the scale types e8m0 and ue4m3, and
  any other sign/exponent/mantissa split (``f5e2m2``, ``f3e1m1``...).
* :class:`BipolarType` -- odd integers sum (2 b_i - 1) 2**i.
* :class:`CodebookType` -- NF4 and any table of 2**b floats (:func:`codebook`).
* block-scaled MX/NVFP4 formats live in :mod:`lowbit.dtypes.scaled`.

Names follow the grammar in :mod:`lowbit.dtypes.names`; ``dtype(t.name) == t``.
Rounding, saturation and NaN rules, and every deliberate difference from
ml_dtypes and from the OCP MX reference code, are in docs/formats.md.
"""

from __future__ import annotations

from lowbit.dtypes.base import DType
from lowbit.dtypes.codebook import NF4_VALUES, CodebookType, codebook
from lowbit.dtypes.floats import FloatType
from lowbit.dtypes.integers import BipolarType, IntType
from lowbit.dtypes.names import BUILTINS, builtin_types, dtype
from lowbit.dtypes.table import format_table

int1, int2, int3, int4, int5, int6, int7, int8 = (BUILTINS[f"int{n}"] for n in range(1, 9))
uint1, uint2, uint3, uint4, uint5, uint6, uint7, uint8 = (BUILTINS[f"uint{n}"] for n in range(1, 9))
int16, int32, int64 = BUILTINS["int16"], BUILTINS["int32"], BUILTINS["int64"]
uint16, uint32, uint64 = BUILTINS["uint16"], BUILTINS["uint32"], BUILTINS["uint64"]
f16, bf16, f32, f64 = BUILTINS["f16"], BUILTINS["bf16"], BUILTINS["f32"], BUILTINS["f64"]
e4m3fn = BUILTINS["e4m3fn"]
e4m3 = e4m3fn  # PTX's .e4m3 is the OCP "fn" variant (ml_dtypes' float8_e4m3 is not)
e5m2 = BUILTINS["e5m2"]
e3m2, e2m3, e2m1 = BUILTINS["e3m2"], BUILTINS["e2m3"], BUILTINS["e2m1"]
e8m0, ue4m3 = BUILTINS["e8m0"], BUILTINS["ue4m3"]
nf4 = BUILTINS["nf4"]

__all__ = [
    "DType",
    "IntType",
    "FloatType",
    "BipolarType",
    "CodebookType",
    "codebook",
    "dtype",
    "builtin_types",
    "format_table",
    "NF4_VALUES",
    *(f"int{n}" for n in (*range(1, 9), 16, 32, 64)),
    *(f"uint{n}" for n in (*range(1, 9), 16, 32, 64)),
    "f16",
    "bf16",
    "f32",
    "f64",
    "e4m3fn",
    "e4m3",
    "e5m2",
    "e3m2",
    "e2m3",
    "e2m1",
    "e8m0",
    "ue4m3",
    "nf4",
]
