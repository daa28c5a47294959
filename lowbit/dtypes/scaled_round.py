"""Round ``x / s`` to a format's grid *once*, exactly, for a non-power-of-two scale ``s``.

Block and group quantization divide each value by a scale and round the
quotient to the element format.  When the scale is a power of two (the MX
formats' E8M0) the float64 quotient is exact and the element's own
``encode`` does the rounding.  When it is not (NVFP4's ue4m3 x f32 scale, the
f16/bf16/f32 group scales of :mod:`lowbit.quant`) the float64 quotient is
already rounded, and rounding it again to the element grid could round twice
-- a value just above a tie could land exactly on the tie in float64 and then
go to even.  lowbit promises one rounding from the exact input (ties to
even), so these helpers repair the float64 result:

* the float64 quotient ``q = fl(x/s)`` is monotone in ``x``, so it lies on the
  same side of every grid midpoint ``m`` as the exact quotient, *or exactly on
  ``m``* (``m`` is a float64, so ``fl`` cannot jump over it).  Only those
  ``q == m`` elements are ambiguous;
* for them the exact sign of ``x - m*s`` decides: ``m*s`` is exact in float64
  because ``m`` has at most ~10 significant bits and ``s`` at most 24+4 (an
  f32 times a ue4m3), far below 53.

Used by :mod:`lowbit.dtypes.scaled` (NVFP4) and :mod:`lowbit.quant`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["round_half_even_div", "round_to_grid", "two_sum"]


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knuth's error-free sum: ``a + b == hi + lo`` exactly (float64, no overflow)."""
    hi = a + b
    bb = hi - a
    lo = (a - (hi - bb)) + (b - bb)
    return hi, lo


def round_half_even_div(x: np.ndarray, s: np.ndarray, x_lo: np.ndarray | None = None) -> np.ndarray:
    """The integer nearest to ``(x + x_lo) / s``, ties to even, as float64; computed exactly.

    ``x``, ``s`` (positive, finite) and the optional low part ``x_lo`` (from
    :func:`two_sum`, so that ``x + x_lo`` is an exact sum of two floats)
    broadcast together.  The result is exact whenever ``h*s`` is exact in
    float64 for the half-integers ``h`` involved (|h| < 2**20 and ``s`` of at
    most 32 significant bits -- every f16/bf16/f32 scale).
    """
    q = x / s
    r = np.rint(q)
    half = np.abs(q - np.floor(q)) == 0.5  # q sits exactly on a tie in float64
    if half.any():
        d = x - q * s  # q*s is exact (q a half-integer); the difference is exact by Sterbenz
        if x_lo is not None:
            d = d + x_lo  # fl() keeps the sign of the exact remainder
        r = np.where(half & (d > 0), q + 0.5, np.where(half & (d < 0), q - 0.5, r))
    return r


@lru_cache(maxsize=64)
def _grid(dtype: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted finite values, their codes, midpoints) of a <= 8-bit format."""
    vals = dtype.values()  # type: ignore[attr-defined]
    codes = np.arange(vals.size)
    keep = np.isfinite(vals)
    vals, codes = vals[keep], codes[keep]
    # One entry per value: for 0 keep the +0 code (the code with the smallest pattern).
    order = np.lexsort((codes, vals))
    vals, codes = vals[order], codes[order]
    first = np.concatenate(([True], vals[1:] != vals[:-1]))
    vals, codes = vals[first], codes[first]
    mids = (vals[:-1] + vals[1:]) / 2
    for arr in (vals, codes, mids):
        arr.setflags(write=False)
    return vals, codes, mids


def round_to_grid(x: np.ndarray, s: np.ndarray, dtype: object) -> np.ndarray:
    """Codes of ``dtype`` nearest to ``x / s`` (ties to the even code, saturating at the ends).

    ``dtype`` is a scalar format of at most 8 bits (e2m1, e4m3fn, int4...);
    its finite values form the grid.  ``s`` must be positive and finite and
    broadcast against ``x``; ``x`` must be finite.  A zero result keeps the
    sign of ``x`` where the format has a negative zero.  The decision is made
    on the exact quotient (see the module docstring), not on ``fl(x/s)``.
    """
    vals, codes, mids = _grid(dtype)
    q = x / s
    k = np.searchsorted(mids, q, side="left")  # number of midpoints < q
    n = vals.size
    # Every midpoint below q is below the exact quotient; the one midpoint that
    # may be miscounted is mids[k] == q with the exact quotient above it.
    k = np.where((k < n - 1) & (x > mids[np.minimum(k, n - 2)] * s), k + 1, k)
    # Now k counts the midpoints strictly below the exact quotient; a tie sits on mids[k].
    kk = np.minimum(k, n - 2)
    tie = (k < n - 1) & (x == mids[kk] * s)
    odd = (codes[kk] & 1) == 1  # the lower neighbour's code is odd: ties go up
    k = np.where(tie & odd, k + 1, k)
    out = codes[k]
    zero = vals[k] == 0
    if zero.any():
        neg = zero & np.signbit(x)
        if neg.any():
            negzero = dtype.encode(np.array([-0.0]))[0]  # type: ignore[attr-defined]
            out = np.where(neg, negzero, out)
    return out.astype(dtype.code_dtype)  # type: ignore[attr-defined]
