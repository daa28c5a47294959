"""The public ``lowbit`` namespace: what ``from lowbit.api import *`` gives ``lowbit/__init__.py``.

Kernel authors write ``import lowbit`` and use ``@lowbit.kernel``,
``lowbit.ptr("f16")``, ``lowbit.load``, ``lowbit.dot``, ``lowbit.uint4``...
Everything here is re-exported from the package that owns it.
"""

from __future__ import annotations

from lowbit.dsl import func
from lowbit.dsl.builtins import (
    abs, arange, atomic_add, atomic_cas, atomic_max, atomic_min, barrier, broadcast, cast, cdiv, commit, constexpr, convert_layout, copy_async, dot, exp2,
    expand_dims, fma, free, full, global_view, lane_id, load, log2, lookup, maximum, minimum,
    num_programs, permute, print, program_id, ptr, reduce, reshape, round, rsqrt, shared, sqrt,
    static_assert, static_range, store, transpose, view, wait, warp_id, where, zeros,
)  # fmt: skip
from lowbit.dtypes import (
    bf16, dtype, e2m1, e2m3, e3m2, e4m3fn, e5m2, e8m0, f16, f32, f64, int1, int2, int3, int4,
    int5, int6, int7, int8, int16, int32, int64, nf4, uint1, uint2, uint3, uint4, uint5, uint6,
    uint7, uint8, uint16, uint32, uint64,
)  # fmt: skip
from lowbit.ir.types import BOOL as bool_
from lowbit.launch import Kernel, interpret, kernel
from lowbit.packing import join_planes, pack, plane_widths, split_planes, unpack

float16 = f16
bfloat16 = bf16
float32 = f32
float64 = f64

__all__ = [
    # kernels and launching
    "Kernel", "kernel", "func", "interpret",
    # parameter annotations and compile-time control
    "ptr", "constexpr", "static_range", "static_assert", "print",
    # tile operations
    "program_id", "num_programs", "cdiv", "global_view", "load", "store", "shared", "free",
    "copy_async", "commit", "wait", "barrier", "zeros", "full", "arange", "cast", "view", "round",
    "where", "fma", "minimum", "maximum", "abs", "exp2", "log2", "sqrt", "rsqrt", "dot", "reduce",
    "lookup", "broadcast", "expand_dims", "reshape", "permute", "transpose", "convert_layout",
    "lane_id", "warp_id", "atomic_add", "atomic_max", "atomic_min", "atomic_cas",
    # dtypes
    "dtype", "bool_", "int1", "int2", "int3", "int4", "int5", "int6", "int7", "int8", "int16",
    "int32", "int64", "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7", "uint8",
    "uint16", "uint32", "uint64", "f16", "bf16", "f32", "f64", "float16", "bfloat16", "float32",
    "float64", "e4m3fn", "e5m2", "e3m2", "e2m3", "e2m1", "e8m0", "nf4",
    # host-side packing
    "pack", "unpack", "plane_widths", "split_planes", "join_planes",
]  # fmt: skip
