"""Exhaustive: for every format of <= 8 bits, ``encode(decode(all codes)) == codes``.

NaN codes are the documented exception: NaN payloads are not kept, so a NaN
code comes back as the canonical NaN of its sign (e4m3fn 0x7F/0xFF, e5m2
0x7E/0xFE, fnuz 0x80, e8m0 0xFF); formats with one NaN per sign therefore
round-trip completely.  -0 comes back as -0.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.dtypes import BipolarType, FloatType, IntType, codebook
from tests.dtypes.formats import NOT_IN_ML_DTYPES, all_float_splits, named, small_builtins

EXTRA = [
    *named(NOT_IN_ML_DTYPES),
    *(BipolarType(n) for n in range(1, 9)),
    codebook(np.linspace(-1.5, 2.0, 8)),
    codebook([0.5, -0.5]),
    codebook(np.random.default_rng(0).standard_normal(256)),
]
DEFAULT = small_builtins() + EXTRA


def _roundtrip(t) -> None:
    codes = np.arange(1 << t.bits, dtype=np.uint16).astype(t.code_dtype)
    vals = t.decode(codes)
    assert vals.dtype == np.float64 and vals.shape == codes.shape
    np.testing.assert_array_equal(t.values(), vals)
    nan = np.isnan(vals)
    back = t.encode(vals[~nan])
    assert back.dtype == t.code_dtype
    np.testing.assert_array_equal(back, codes[~nan])
    zero = vals[~nan] == 0
    assert (np.signbit(vals[~nan][zero]) == np.signbit(t.decode(back[zero]))).all()
    if nan.any():
        canonical = t.encode(vals[nan])
        sign_bit = 1 << (t.bits - 1) if t.is_signed else 0
        want = np.where(np.signbit(vals[nan]) & (t.nan != "fnuz"), t.nan_code | sign_bit, t.nan_code)
        np.testing.assert_array_equal(canonical, want)
        if t.nan in ("fn", "fnuz"):  # one NaN per sign: the NaN codes round-trip too
            np.testing.assert_array_equal(canonical, codes[nan])


@pytest.mark.parametrize("t", DEFAULT, ids=str)
def test_roundtrip_every_code(t) -> None:
    _roundtrip(t)


@pytest.mark.full
@pytest.mark.parametrize("t", all_float_splits(), ids=str)
def test_roundtrip_every_split(t: FloatType) -> None:
    _roundtrip(t)


def test_distinct_values_for_distinct_codes() -> None:
    # Apart from +-0 and NaNs, no two codes of a float/int format share a value.
    for t in small_builtins():
        if isinstance(t, (FloatType, IntType)):
            v = t.values()
            v = v[~np.isnan(v)] + 0.0
            assert len(np.unique(v)) == len(v) - (t.is_signed and isinstance(t, FloatType) and t.nan != "fnuz")
