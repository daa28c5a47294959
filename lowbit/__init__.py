"""lowbit: a Python kernel compiler for arbitrary-bit low-precision GPU computation.

The public namespace: number formats (``lowbit.dtype("uint3")``,
``lowbit.codebook(values)``, ``lowbit.e2m1`` ...), bit packing
(``lowbit.pack`` / ``lowbit.unpack``) and weight quantization
(``lowbit.quantize`` / ``lowbit.dequantize``; ``lowbit.quantize_weight`` and
``lowbit.QuantizedWeight`` from :mod:`lowbit.ops`, loaded on first use).
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from lowbit import errors  # noqa: F401
from lowbit.dtypes import (  # noqa: F401
    BipolarType,
    CodebookType,
    DType,
    FloatType,
    IntType,
    bf16,
    codebook,
    dtype,
    e2m1,
    e2m3,
    e3m2,
    e4m3,
    e4m3fn,
    e5m2,
    e8m0,
    f16,
    f32,
    nf4,
    ue4m3,
)
from lowbit.dtypes.scaled import SCALED_TYPES, ScaledType  # noqa: F401
from lowbit.errors import LowbitError  # noqa: F401
from lowbit.api import *  # noqa: F401,F403  (the DSL, launch, interpreter, int1..uint8, pack/unpack)
from lowbit.quant import QuantizedTensor, dequantize, quantize  # noqa: F401


def __getattr__(name: str) -> object:
    # lowbit.compile / lowbit.CompiledKernel load the compiler (LLVM driver, passes) only when used
    if name in ("compile", "CompiledKernel"):
        from lowbit import compiler

        return getattr(compiler, name)
    if name in ("quantize_weight", "QuantizedWeight"):
        # lowbit.ops never imports torch by itself; loading it lazily keeps `import lowbit` light
        from lowbit.ops import qweight

        return getattr(qweight, name)
    raise AttributeError(f"module 'lowbit' has no attribute {name!r}")
