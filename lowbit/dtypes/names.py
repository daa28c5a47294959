"""Names of formats: the built-ins, the grammar for the rest, and ``dtype()``.

Grammar (canonical names first; ``dtype(t.name) == t`` for every type)::

    int<n> | uint<n>                 n in 1..64          IntType(n, signed)
    bipolar<n>                       n in 1..32          BipolarType(n)
    [u]f<bits>e<E>m<M>[b<bias>][fn|ieee|fnuz]            FloatType(E, M, bias, nan, signed)
    nf4 | cb<b>_<hash8>                                  CodebookType

In the float form ``u`` marks an unsigned format (``bits == E + M``; signed
formats have ``bits == 1 + E + M``), ``b<bias>`` a bias other than the
default ``2**(E-1) - 1`` (it may be negative: ``b-2``) and the suffix the NaN
convention (none: every code finite, as OCP FP6/FP4).  Built-in floats have
short canonical names that the long form also reaches (``f8e4m3fn`` ->
``e4m3fn``, ``f6e3m2`` -> ``e3m2``, ``uf8e8m0fn`` -> ``e8m0``).  Note that
``f8e4m3`` (every code finite, max 480) is a different type from ``e4m3fn``
(max 448, NaN at S.1111.111), and that the alias ``e4m3`` means e4m3fn (as
PTX's ``.e4m3`` does) while ml_dtypes' name ``float8_e4m3`` means its
IEEE-like type, ``f8e4m3ieee``.

Block-scaled names (mxfp8, mxfp4, nvfp4, ...) are looked up in
``lowbit.dtypes.scaled.SCALED_TYPES`` at call time.
"""

from __future__ import annotations

import difflib
import importlib
import re

import numpy as np

from lowbit.dtypes.base import DType
from lowbit.dtypes.codebook import NF4_VALUES, CodebookType, lookup_codebook
from lowbit.dtypes.floats import FloatType
from lowbit.dtypes.integers import BipolarType, IntType
from lowbit.errors import DTypeError

__all__ = ["dtype", "builtin_types", "BUILTINS", "ALIASES", "scaled_types"]

_INTS = [IntType(n, s) for s in (True, False) for n in (*range(1, 9), 16, 32, 64)]
_FLOATS = [
    FloatType(8, 23, nan="ieee"),  # f32
    FloatType(5, 10, nan="ieee"),  # f16
    FloatType(8, 7, nan="ieee"),  # bf16
    FloatType(11, 52, nan="ieee"),  # f64
    FloatType(4, 3, nan="fn"),  # e4m3fn: OCP MX FP8 E4M3, PTX .e4m3
    FloatType(5, 2, nan="ieee"),  # e5m2: OCP MX FP8 E5M2, PTX .e5m2
    FloatType(3, 2),  # e3m2: OCP MX FP6
    FloatType(2, 3),  # e2m3: OCP MX FP6
    FloatType(2, 1),  # e2m1: OCP MX FP4
    FloatType(8, 0, nan="fn", signed=False),  # e8m0: OCP MX scale
    FloatType(4, 3, nan="fn", signed=False),  # ue4m3: NVFP4 scale
]
_CODEBOOKS = [CodebookType(NF4_VALUES)]

#: Every built-in scalar format by canonical name.
BUILTINS: dict[str, DType] = {t.name: t for t in (*_INTS, *_FLOATS, *_CODEBOOKS)}

#: Other spellings: PTX's ``e4m3``, numpy/torch/ml_dtypes names.
ALIASES: dict[str, str] = {
    "e4m3": "e4m3fn",
    "half": "f16",
    "float16": "f16",
    "fp16": "f16",
    "float32": "f32",
    "fp32": "f32",
    "float": "f32",
    "float64": "f64",
    "fp64": "f64",
    "double": "f64",
    "bfloat16": "bf16",
    "float8_e4m3fn": "e4m3fn",
    "float8_e5m2": "e5m2",
    "float6_e3m2fn": "e3m2",
    "float6_e2m3fn": "e2m3",
    "float4_e2m1fn": "e2m1",
    "float8_e8m0fnu": "e8m0",
    "ue8m0": "e8m0",
    # ml_dtypes' other float8 types, by their lowbit grammar names.
    "float8_e4m3": "f8e4m3ieee",
    "float8_e3m4": "f8e3m4ieee",
    "float8_e4m3fnuz": "f8e4m3b8fnuz",
    "float8_e5m2fnuz": "f8e5m2b16fnuz",
    "float8_e4m3b11fnuz": "f8e4m3b11fnuz",
}

_FLOAT_RE = re.compile(r"(u?)f(\d+)e(\d+)m(\d+)(?:b(-?\d+))?(fn|ieee|fnuz)?")
_INT_RE = re.compile(r"(u?)int(\d+)")
_BIPOLAR_RE = re.compile(r"bipolar(\d+)")
_CODEBOOK_RE = re.compile(r"cb(\d+)_[0-9a-f]{8}")


def scaled_types() -> dict[str, DType]:
    """The block-scaled formats (``lowbit.dtypes.scaled``), or {} if not available."""
    try:
        module = importlib.import_module("lowbit.dtypes.scaled")
    except ModuleNotFoundError as exc:
        if exc.name != "lowbit.dtypes.scaled":
            raise
        return {}
    return dict(getattr(module, "SCALED_TYPES", {}))


def builtin_types() -> list[DType]:
    """Every named built-in format (each once): integers, floats, NF4, then block-scaled."""
    out: list[DType] = []
    for t in (*BUILTINS.values(), *scaled_types().values()):
        if t not in out:
            out.append(t)
    return out


def dtype(x: object) -> DType:
    """The format named ``x`` (a name string, a DType, or a numpy/ml_dtypes dtype)."""
    if isinstance(x, DType):
        return x
    if x is None:
        raise DTypeError("dtype: expected a format name or a DType, got None")
    if not isinstance(x, str):
        if any(x is t for t in scaled_types().values()):
            return x  # type: ignore[return-value]  # a block-scaled format object
        try:
            x = np.dtype(x).name  # type: ignore[call-overload]
        except TypeError:
            raise DTypeError(f"dtype: expected a format name or a DType, got {x!r}") from None
    name = x.strip().lower()
    name = ALIASES.get(name, name)
    if name in BUILTINS:
        return BUILTINS[name]
    parsed = _parse(name, x)
    if parsed is not None:
        return parsed
    scaled = scaled_types()
    if name in scaled:
        return scaled[name]
    known = sorted({*BUILTINS, *ALIASES, *scaled})
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise DTypeError(
        f"unknown format name {x!r}{hint} (grammar: int<n>, uint<n>, bipolar<n>, "
        "[u]f<bits>e<E>m<M>[b<bias>][fn|ieee|fnuz], nf4; see lowbit.dtypes.names)"
    )


def _parse(name: str, original: str) -> DType | None:
    """A type from the grammar, None if ``name`` does not match any form."""
    if m := _INT_RE.fullmatch(name):
        return IntType(int(m.group(2)), signed=not m.group(1))
    if m := _BIPOLAR_RE.fullmatch(name):
        return BipolarType(int(m.group(1)))
    if m := _FLOAT_RE.fullmatch(name):
        unsigned, bits, e, mant, bias, nan = m.groups()
        bits, e, mant = int(bits), int(e), int(mant)
        want = e + mant + (0 if unsigned else 1)
        if bits != want:
            sign = "" if unsigned else "1 sign + "
            raise DTypeError(
                f"format name {original!r}: {sign}{e} exponent + {mant} mantissa bits = {want}, "
                f"not {bits}"
            )
        return FloatType(
            e, mant, bias=None if bias is None else int(bias), nan=nan or "none", signed=not unsigned
        )
    if m := _CODEBOOK_RE.fullmatch(name):
        found = lookup_codebook(name)
        if found is None:
            raise DTypeError(
                f"codebook {original!r} was not created in this process; build it with "
                "lowbit.dtypes.codebook(values) (the name is only a hash of the table)"
            )
        return found
    return None
