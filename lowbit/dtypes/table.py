"""``format_table()``: the text table ``lowbit info formats`` prints.

One row per built-in format with its bits, finite range, smallest subnormal
and a few decoded values, all computed from the formats themselves (nothing
here is typed in by hand, so the table cannot drift from the code).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lowbit.dtypes.base import DType
from lowbit.dtypes.codebook import CodebookType
from lowbit.dtypes.floats import FloatType
from lowbit.dtypes.integers import BipolarType, IntType
from lowbit.dtypes.names import builtin_types

if TYPE_CHECKING:  # the module itself is looked up lazily, as lowbit.dtypes.names does
    from lowbit.dtypes.scaled import ScaledType

__all__ = ["format_table"]

_HEADER = ("name", "kind", "bits", "min", "max", "min subnormal", "example values")


def _num(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    f = float(v)  # type: ignore[arg-type]
    if f == 0 or 1e-4 <= abs(f) < 1e6:
        return f"{f:.6g}"
    frac, exp = math.frexp(f)
    if abs(frac) == 0.5:
        return f"{'-' if f < 0 else ''}2^{exp - 1}"
    return f"{f:.4g}"


def _kind(t: DType) -> str:
    if isinstance(t, FloatType):
        parts = ["float" if t.signed else "ufloat", f"bias {t.bias}"]
        if t.nan != "none":
            parts.append({"fn": "NaN", "ieee": "inf/NaN", "fnuz": "NaN=-0"}[t.nan])
        return ", ".join(parts)
    if isinstance(t, IntType):
        return "int" if t.signed else "uint"
    if isinstance(t, BipolarType):
        return "bipolar"
    if isinstance(t, CodebookType):
        return "codebook"
    if _is_scaled(t):
        tensor = " x f32" if t.has_tensor_scale else ""
        return f"{t.element_name} x {t.scale_name} per {t.block}{tensor}"
    return type(t).__name__


def _examples(t: DType) -> str:
    if t.bits <= 8:
        vals = t.values()
        vals = np.unique(vals[np.isfinite(vals)] + 0.0)  # + 0.0 folds -0 into 0
        if t.is_signed and isinstance(t, FloatType):
            vals = vals[vals >= 0]  # symmetric: the positive half says it all
        shown = [_num(float(v)) for v in vals]
        if len(shown) > 8:
            shown = [*shown[:5], "...", *shown[-2:]]
        return ", ".join(shown)
    if isinstance(t, FloatType):
        one = int(t.encode(1.0))
        nxt = t.decode(np.uint64(one + 1))
        return f"1, 1 + {_num(float(nxt[()]) - 1.0)}, ..."
    return "..., -1, 0, 1, ..." if t.is_signed else "0, 1, 2, ..."


def _is_scaled(t: object) -> bool:
    return hasattr(t, "element_name") and hasattr(t, "block")  # lowbit.dtypes.scaled.ScaledType


def _scaled_row(t: ScaledType) -> tuple[str, ...]:
    """A block-scaled format's row: ranges as element value x largest/smallest scale.

    MX: the element's range times ``2**127`` (the largest E8M0 scale), the
    element's smallest subnormal times ``2**-127``.  NVFP4: per unit tensor
    scale ``T`` (its per-tensor float32 scale multiplies every value).
    Computed from the element and scale formats, so it cannot drift.
    """
    elem, scale = t.element, t.scale
    unit = 2.0 ** t.element_exp
    per_t = " x T" if t.has_tensor_scale else ""
    if t.is_mx:
        top = f" x {_num(float(scale.max))}"

        def rng(v: float) -> str:
            return f"{_num(v * unit)}{top}"

        sub = elem.smallest_subnormal
        smallest = "-" if sub is None else _num(float(sub) * unit * float(scale.min))
        what = "int8 / 64" if t.element_exp else f"{elem.name} value"
        examples = f"{what} x 2^k, k in -127..127 per block of {t.block}"
        return (t.name, _kind(t), str(t.bits), rng(float(elem.min)), rng(float(elem.max)), smallest, examples)
    smallest = t.smallest_subnormal
    examples = f"{elem.name} value x {scale.name} (0..{_num(float(scale.max))}) per {t.block}{per_t}"
    return (
        t.name,
        _kind(t),
        str(t.bits),
        _num(t.min) + per_t,
        _num(t.max) + per_t,
        ("-" if smallest is None else _num(smallest)) + per_t,
        examples,
    )


def _row(t: DType) -> tuple[str, ...]:
    if _is_scaled(t):
        return _scaled_row(t)  # type: ignore[arg-type]
    smallest = t.smallest_subnormal
    return (
        t.name,
        _kind(t),
        str(t.bits),
        _num(t.min),
        _num(t.max),
        "-" if smallest is None else _num(smallest),
        _examples(t),
    )


def format_table() -> str:
    """A fixed-width text table of every built-in format (scalar, then block-scaled)."""
    rows = [_row(t) for t in builtin_types()]
    widths = [max(len(r[i]) for r in (_HEADER, *rows)) for i in range(len(_HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(_HEADER, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
