"""Whether a weight's scales can take its float codes' exponent-bias correction (``wx_matmul``'s ``FOLD``).

The packed dequantisation of a float format ``eXmY`` reads each code as the
f16/bf16 whose fields are the code's fields: that is the code's value times
``2**-F`` (``F`` = the target's exponent bias minus the format's).  Folding
``2**F`` into the scale -- once per group, rounded to the activation dtype --
saves one multiply per weight pair, and gives exactly the unfolded result
when every folded scale is a finite value of that dtype.  That is a fact
about the scale *values*, so it is checked here on the host, once per
weight and activation dtype, not assumed by the kernel.
"""

from __future__ import annotations

import numpy as np

import lowbit

__all__ = ["fold_exponent", "fold_ok"]


def fold_exponent(wtype: object, act: str) -> int | None:
    """``F`` for a float element format and activation dtype ``act``; None when folding does not apply."""
    elem = wtype.element if isinstance(wtype, lowbit.ScaledType) else wtype
    if not getattr(elem, "is_float", False) or getattr(elem, "table", None) is not None or elem.bits > 8:
        return None
    bias = getattr(elem, "bias", None)
    if bias is None:
        return None
    return (15 if act == "f16" else 127) - int(bias)


def fold_ok(wtype: object, scales: np.ndarray, scale_dtype: object, act: str) -> bool:
    """Whether every ``scale * 2**F`` is exactly a finite ``act`` value (``scales`` as stored, numpy)."""
    import ml_dtypes  # noqa: PLC0415

    f = fold_exponent(wtype, act)
    if f is None:
        return False
    sdt = lowbit.dtype(scale_dtype) if isinstance(scale_dtype, str) else scale_dtype
    raw = np.asarray(scales)
    if sdt.name in ("f16", "bf16", "f32"):
        v = raw.astype(np.float64)
    else:  # block-scale codes (e8m0, ue4m3) stored one per byte
        v = np.asarray(sdt.decode(raw.astype(np.uint64)), dtype=np.float64)
    folded = v * 2.0**f
    np_dt = np.float16 if act == "f16" else ml_dtypes.bfloat16
    with np.errstate(all="ignore"):
        back = folded.astype(np_dt).astype(np.float64)
    return bool(np.all(np.isfinite(folded)) and np.array_equal(back, folded))
