"""lowbit against ml_dtypes wherever ml_dtypes has the same format.

Decode must agree on every code (NaN with NaN, -0 with -0).  Encode must agree
bit for bit on 100,000 float32 inputs per format -- random bit patterns (NaN,
inf, subnormals, huge), values spread over the format's range, every exact
tie (midpoint of adjacent values) and the float32 neighbours of each tie --
in the mode that matches ml_dtypes: ``saturate=False``, and for e8m0
``rounding="rn_up"``.  float32 inputs are exact in float64, so ml_dtypes'
float32 path rounds once, like lowbit; float64 inputs are where the two part
(tests/dtypes/test_differences.py).
"""

from __future__ import annotations

import zlib

import ml_dtypes
import numpy as np
import pytest

from lowbit.dtypes import dtype

# (lowbit name, ml_dtypes type)
PAIRS = [
    ("e4m3fn", ml_dtypes.float8_e4m3fn),
    ("e5m2", ml_dtypes.float8_e5m2),
    ("e3m2", ml_dtypes.float6_e3m2fn),
    ("e2m3", ml_dtypes.float6_e2m3fn),
    ("e2m1", ml_dtypes.float4_e2m1fn),
    ("e8m0", ml_dtypes.float8_e8m0fnu),
    # ml_dtypes' other float8 types, reached through lowbit's name grammar
    ("float8_e4m3", ml_dtypes.float8_e4m3),
    ("float8_e3m4", ml_dtypes.float8_e3m4),
    ("float8_e4m3fnuz", ml_dtypes.float8_e4m3fnuz),
    ("float8_e5m2fnuz", ml_dtypes.float8_e5m2fnuz),
    ("float8_e4m3b11fnuz", ml_dtypes.float8_e4m3b11fnuz),
]
N = 100_000


def _ml_codes(x: np.ndarray, mlt: type) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):  # signalling NaNs, overflow
        return x.astype(mlt).view(np.uint8)


@pytest.mark.parametrize("name, mlt", PAIRS, ids=[p[0] for p in PAIRS])
def test_decode_agrees_on_every_code(name: str, mlt: type) -> None:
    t = dtype(name)
    codes = np.arange(1 << t.bits, dtype=np.uint8)
    want = codes.view(mlt).astype(np.float64)
    got = t.decode(codes)
    np.testing.assert_array_equal(got, want)  # NaN == NaN here
    assert (np.signbit(got) == np.signbit(want)).all()


def _inputs(t, rng: np.random.Generator) -> np.ndarray:
    """100,000 float32 inputs: bit patterns, in-range spread, ties and their neighbours."""
    vals = np.unique(t.values()[np.isfinite(t.values())])
    top = float(vals[-1])
    # Ties, including the one between max and the first overflowing value.
    pos = np.unique(np.abs(vals))
    if t.mantissa:
        pos = np.append(pos, top + (top - pos[-2]) if t.nan == "none" else top)
    grid = np.append(pos, top * 2)
    ties = ((grid[:-1] + grid[1:]) / 2).astype(np.float32)
    assert ((grid[:-1] + grid[1:]) / 2 == ties).all()  # exact in float32
    n5 = N // 5 + 300  # NaNs are dropped below for formats without NaN
    bits = rng.integers(0, 2**32, n5, dtype=np.uint64).astype(np.uint32).view(np.float32)
    spread = (rng.uniform(-1.25, 1.25, n5) * top).astype(np.float32)
    lo = np.log2(t.smallest_subnormal or t.smallest_normal) - 2
    logu = (2.0 ** rng.uniform(lo, np.log2(top) + 1, n5) * rng.choice([-1, 1], n5)).astype(np.float32)
    tie = rng.choice(ties, n5) * rng.choice(np.array([-1, 1], dtype=np.float32), n5)
    near = np.nextafter(tie, rng.choice(np.array([-np.inf, np.inf], dtype=np.float32), n5))
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, top, -top], dtype=np.float32)
    x = np.concatenate([bits, spread, logu, tie, near, specials]).astype(np.float32)
    if not t.has_nan:
        x = x[~np.isnan(x)]  # lowbit raises on NaN for these (test_differences)
    return x


@pytest.mark.parametrize("name, mlt", PAIRS, ids=[p[0] for p in PAIRS])
def test_encode_agrees_on_100k_float32(name: str, mlt: type) -> None:
    t = dtype(name)
    # crc32, not hash(): str hashes are salted per process, and CI inputs must not vary by run
    x = _inputs(t, np.random.default_rng(zlib.crc32(name.encode())))
    assert x.size >= N
    rounding = "rn_up" if name == "e8m0" else None
    got = t.encode(x, saturate=False, rounding=rounding)
    want = _ml_codes(x, mlt)
    if not t.has_nan:
        pass
    elif t.nan == "fnuz" or t.mantissa == 0:
        pass  # one NaN code: compare exactly
    else:
        # ml_dtypes keeps the NaN's sign like lowbit; payloads collapse to the canonical NaN.
        nan = np.isnan(x)
        assert (got[nan] == (want[nan] & 0x80 | t.nan_code)).all()
    if name == "e8m0":
        # ml_dtypes rounds float32 subnormals in (2**-127, 1.5 * 2**-127) *up* to 2**-126;
        # the nearest value is 2**-127 (checked against frexp in test_differences).
        quirk = (x > 2.0**-127) & (x < 1.5 * 2.0**-127)
        assert (got[quirk] == 0).all() and (want[quirk] == 1).all()
        got, want = got[~quirk], want[~quirk]
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(float(x[i]), int(got[i]), int(want[i])) for i in bad[:5]]


def test_bf16_and_f16_agree_with_float32_casts() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[~np.isnan(x)]
    np.testing.assert_array_equal(
        dtype("bf16").encode(x), x.astype(ml_dtypes.bfloat16).view(np.uint16)
    )
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(dtype("f16").encode(x), x.astype(np.float16).view(np.uint16))
    codes = np.arange(2**16, dtype=np.uint16)
    with np.errstate(invalid="ignore"):  # signalling-NaN patterns
        want = codes.view(ml_dtypes.bfloat16).astype(np.float64)
    np.testing.assert_array_equal(dtype("bf16").decode(codes), want)


@pytest.mark.parametrize("name, mlt", [("int2", ml_dtypes.int2), ("int4", ml_dtypes.int4),
                                       ("uint2", ml_dtypes.uint2), ("uint4", ml_dtypes.uint4)])
def test_int_decode_agrees(name: str, mlt: type) -> None:
    # ml_dtypes is the reference for sub-byte integer *decode* only (its casts wrap).
    t = dtype(name)
    codes = np.arange(1 << t.bits, dtype=np.uint8)
    np.testing.assert_array_equal(t.decode(codes), codes.view(mlt).astype(np.float64))
