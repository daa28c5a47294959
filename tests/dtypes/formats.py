"""Format lists shared by the dtype tests."""

from __future__ import annotations

from lowbit.dtypes import FloatType, builtin_types, dtype
from tests.dtypes.reference import RefFloat

# Float formats ml_dtypes does not have, checked against the Fraction reference.
NOT_IN_ML_DTYPES = [
    "f5e2m2",
    "f3e1m1",
    "f4e2m1b2",
    "f4e2m1b0",
    "f4e2m1b-1",
    "f8e4m3",
    "f7e3m3",
    "f8e2m5",
    "f8e5m2",
    "ue4m3",
    "uf5e3m2",
    "f6e2m3b3fn",
    "f7e4m2ieee",
    "f5e3m1b4fnuz",
    "f4e2m1fn",
]


def scalar_builtins() -> list:
    """Built-in scalar formats (block-scaled ones belong to tests/dtypes/test_scaled.py)."""
    from lowbit.dtypes import DType

    return [t for t in builtin_types() if isinstance(t, DType)]


def small_builtins() -> list:
    return [t for t in scalar_builtins() if t.bits <= 8]


def all_float_splits() -> list[FloatType]:
    """Every float format of <= 8 bits with a mantissa, in every NaN convention,
    signed and unsigned, with the default bias and two others."""
    out = []
    for signed in (True, False):
        for e in range(1, 8):
            for m in range(1, 8):
                if e + m + int(signed) > 8:
                    continue
                for nan in ("none", "fn", "ieee", "fnuz"):
                    if nan == "ieee" and e < 2:
                        continue
                    if nan == "fnuz" and not signed:
                        continue
                    default = (1 << (e - 1)) - 1
                    for bias in sorted({default, 0, default + 2}):
                        out.append(FloatType(e, m, bias=bias, nan=nan, signed=signed))
    return out


def ref_of(t: FloatType) -> RefFloat:
    return RefFloat(t.exponent, t.mantissa, t.bias, t.nan, t.signed)


def named(names: list[str]) -> list:
    return [dtype(n) for n in names]
