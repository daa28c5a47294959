"""``format_table()``: the text table ``lowbit info formats`` prints.

One row per built-in format with its bits, finite range, smallest subnormal
and a few decoded values, all computed from the formats themselves (nothing
here is typed in by hand, so the table cannot drift from the code).
"""

from __future__ import annotations

import math

import numpy as np

from lowbit.dtypes.base import DType
from lowbit.dtypes.codebook import CodebookType
from lowbit.dtypes.floats import FloatType
from lowbit.dtypes.integers import BipolarType, IntType
from lowbit.dtypes.names import builtin_types

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
    if hasattr(t, "element_name") and hasattr(t, "block"):  # block-scaled (lowbit.dtypes.scaled)
        return f"{t.element_name} x {getattr(t, 'scale_name', '?')} per {t.block}"
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


def _row(t: DType) -> tuple[str, ...]:
    def attr(name: str) -> str:
        try:
            return _num(getattr(t, name))
        except Exception:  # noqa: BLE001 - a block-scaled type may not define it
            return "-"

    try:
        examples = _examples(t)
    except Exception:  # noqa: BLE001
        examples = "-"
    return (t.name, _kind(t), str(t.bits), attr("min"), attr("max"), attr("smallest_subnormal"), examples)


def format_table() -> str:
    """A fixed-width text table of every built-in format (scalar, then block-scaled)."""
    rows = [_row(t) for t in builtin_types()]
    widths = [max(len(r[i]) for r in (_HEADER, *rows)) for i in range(len(_HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(_HEADER, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
