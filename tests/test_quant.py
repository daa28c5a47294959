"""lowbit.quant: group-wise quantization of a (K, N) weight along K.

Checked against references written here: exact Fraction rounding of each
element from the *stored* scale, the documented scale rules, the error
bounds, and exact reproduction of representable inputs.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lowbit.dtypes import dtype
from lowbit.dtypes.scaled import SCALED_TYPES
from lowbit.errors import LowbitError, QuantizeError
from lowbit.quant import QuantizedTensor, dequantize, quantize
from tests.dtypes.test_scaled import FLOAT_FORMATS, float_grid, nearest_even

STORE = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "f32": np.float32}
UNIT_ROUNDOFF = {"f16": 2.0**-11, "bf16": 2.0**-8, "f32": 2.0**-24}


def weight(k: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((k, n)) * rng.uniform(0.01, 3, size=(1, n))).astype(np.float32)


def per_element(q: QuantizedTensor, arr: np.ndarray) -> np.ndarray:
    """A (G, N) per-group array expanded to (K, N)."""
    return np.repeat(np.asarray(arr).astype(np.float64), q.group_length, axis=0)[: q.shape[0]]


def group_reduce(w: np.ndarray, glen: int, fn) -> np.ndarray:
    k = w.shape[0]
    return np.stack([fn(w[g : g + glen].astype(np.float64), axis=0) for g in range(0, k, glen)])


def next_down(x: np.ndarray, store) -> np.ndarray:
    return np.nextafter(x.astype(store), np.zeros((), dtype=store)).astype(np.float64)


def rne(x: Fraction) -> int:
    return round(x)  # Python rounds Fractions half to even


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("scale_dtype", ["f16", "bf16", "f32"])
def test_symmetric_int_reference_and_bound(bits, scale_dtype):
    k, n, glen = 100, 5, 32  # a tail group of 4 rows
    w = weight(k, n, bits)
    q = quantize(w, f"int{bits}", group_size=glen, scale_dtype=scale_dtype)
    assert q.codes.shape == (k, n) and q.scales.shape == (4, n) and q.zeros is None
    assert q.scales.dtype == np.dtype(STORE[scale_dtype]) and q.symmetric and q.group_types is None
    qmax = 2 ** (bits - 1) - 1
    s = q.scales.astype(np.float64)
    target = group_reduce(w, glen, lambda a, axis: np.abs(a).max(axis=axis)) / qmax
    # the scale is the smallest stored value >= amax / qmax
    assert (s >= target).all() and (next_down(s, STORE[scale_dtype]) < target).all()
    vals = dtype(f"int{bits}").decode(q.codes)
    se = per_element(q, s)
    for i in range(0, k, 7):
        for j in range(n):
            ref = max(-qmax - 1, min(qmax, rne(Fraction(float(w[i, j])) / Fraction(float(se[i, j])))))
            assert vals[i, j] == ref, (i, j)
    deq = dequantize(q)
    np.testing.assert_array_equal(deq, vals * se)
    assert (np.abs(w - deq) <= se / 2).all()
    assert dequantize(q, np.float32).dtype == np.float32


@pytest.mark.parametrize("name", ["uint4", "uint3", "int4", "uint8"])
@pytest.mark.parametrize("zero", ["int", "float"])
def test_asymmetric_reference_and_bound(name, zero):
    k, n, glen = 70, 6, 64
    w = weight(k, n, 3)
    w[:, 0] = np.abs(w[:, 0]) + 0.5  # an all-positive column: the range still includes 0
    fmt = dtype(name)
    q = quantize(w, name, group_size=glen, symmetric=False, zero=zero)
    lo, hi = fmt.min, fmt.max
    s = q.scales.astype(np.float64)
    wmin = np.minimum(group_reduce(w, glen, np.min), 0)
    wmax = np.maximum(group_reduce(w, glen, np.max), 0)
    target = (wmax - wmin) / (hi - lo)
    assert (s >= target).all() and (next_down(s, np.float16) < target).all()
    vals = fmt.decode(q.codes)
    se = per_element(q, s)
    deq = dequantize(q)
    if zero == "int":
        assert q.zeros.dtype == fmt.code_dtype
        z = fmt.decode(q.zeros)
        zr = np.array([[rne(Fraction(lo) - Fraction(float(a)) / Fraction(float(b))) for a, b in zip(r1, r2)]
                       for r1, r2 in zip(wmin, s)])
        np.testing.assert_array_equal(z, np.clip(zr, lo, hi))
        ze = per_element(q, z)
        ref = np.vectorize(lambda a, b, c: max(lo, min(hi, rne(Fraction(float(a)) / Fraction(float(b))) + int(c))))(w, se, ze)
        np.testing.assert_array_equal(vals, ref)
        np.testing.assert_array_equal(deq, (vals - ze) * se)
        assert (np.abs(w - deq) <= se / 2).all()
    else:
        assert q.zeros.dtype == np.float16
        zf = q.zeros.astype(np.float64)
        np.testing.assert_array_equal(zf, (lo * s - wmin).astype(np.float16).astype(np.float64))
        ze = per_element(q, zf)
        ref = np.vectorize(
            lambda a, b, c: max(lo, min(hi, rne((Fraction(float(a)) + Fraction(float(c))) / Fraction(float(b)))))
        )(w, se, ze)
        np.testing.assert_array_equal(vals, ref)
        np.testing.assert_array_equal(deq, vals * se - ze)
        assert (np.abs(w - deq) <= se / 2 + np.abs(ze) * UNIT_ROUNDOFF["f16"]).all()


def test_float_zero_rounds_the_exact_sum_once():
    # column: wmin -0.25, wmax 3.5 -> s = 3.75 / 15 = 0.25, z = 0.25 (both exact in f16).
    # w = 0.375 + 2**-54: w + z = 0.625 + 2**-54 (not a float64), exact quotient 2.5 + 2**-52 -> 3;
    # the float64 sum rounds to 0.625, a tie that would go to 2.
    w = np.array([[-0.25], [3.5], [0.375 + 2.0**-54], [0.375]])
    q = quantize(w, "uint4", group_size=-1, symmetric=False, zero="float")
    assert q.scales.astype(float).tolist() == [[0.25]] and q.zeros.astype(float).tolist() == [[0.25]]
    assert q.codes[:, 0].tolist() == [0, 15, 3, 2]


@pytest.mark.parametrize("name", ["e2m1", "e3m2", "e2m3", "e4m3fn", "e5m2"])
def test_float_elements_reference(name):
    k, n, glen = 96, 3, 32
    w = weight(k, n, 17)
    q = quantize(w, name, group_size=glen)
    fmt = dtype(name)
    grid = float_grid(*FLOAT_FORMATS[name])
    s = q.scales.astype(np.float64)
    target = group_reduce(w, glen, lambda a, axis: np.abs(a).max(axis=axis)) / fmt.max
    assert (s >= target).all() and (next_down(s, np.float16) < target).all()
    se = per_element(q, s)
    vals = fmt.decode(q.codes)
    for i in range(0, k, 5):
        for j in range(n):
            ref, _ = nearest_even(grid, Fraction(float(w[i, j])) / Fraction(float(se[i, j])))
            assert vals[i, j] == float(ref), (i, j)
    np.testing.assert_array_equal(dequantize(q), vals * se)


def test_codebook_elements():
    w = weight(64, 4, 23)
    q = quantize(w, "nf4", group_size=64)
    table = np.array(dtype("nf4").values())
    s = q.scales.astype(np.float64)
    deq = dequantize(q)
    # every value is the table entry nearest to w / s
    ratio = w / s
    best = np.abs(ratio[..., None] - table).min(axis=-1)
    np.testing.assert_allclose(np.abs(deq / s - ratio), best, atol=1e-12)


@pytest.mark.parametrize(
    "name, kwargs",
    [("int4", {}), ("uint4", {"symmetric": False}), ("uint4", {"symmetric": False, "zero": "float"}),
     ("e2m1", {}), ("int8", {"scale_dtype": "bf16"})],
)
def test_exactly_representable_inputs_reproduce(name, kwargs):
    rng = np.random.default_rng(4)
    fmt = dtype(name)
    k, n = 64, 5
    if fmt.is_int and kwargs.get("symmetric", True):
        qmax = fmt.max
        grid = rng.integers(-qmax, qmax + 1, size=(k, n)).astype(float)
        grid[0], grid[32] = qmax, -qmax  # every group reaches amax
    elif fmt.is_int:
        grid = rng.integers(fmt.min, fmt.max + 1, size=(k, n)).astype(float) - 5  # zero = 5
        grid[0], grid[32], grid[1], grid[33] = fmt.max - 5, fmt.max - 5, fmt.min - 5, fmt.min - 5
    else:
        vals = fmt.values()
        grid = rng.choice(vals, size=(k, n))
        grid[0], grid[32] = fmt.max, -fmt.max
    scale = 2.0 ** rng.integers(-8, 4, size=(1, n))
    w = grid * scale
    q = quantize(w, name, group_size=32, **kwargs)
    np.testing.assert_array_equal(dequantize(q), w)


def test_per_channel_and_tail_groups():
    w = weight(300, 4, 8)
    q = quantize(w, "int4", group_size=-1)
    assert q.scales.shape == (1, 4) and q.group_size == -1 and q.group_length == 300
    target = np.abs(w.astype(np.float64)).max(axis=0) / 7
    s = q.scales.astype(np.float64)[0]
    assert (s >= target).all() and (next_down(s, np.float16) < target).all()
    assert (np.abs(w - dequantize(q)) <= s / 2).all()
    q128 = quantize(w, "int4")  # default group 128: groups of 128, 128, 44
    assert q128.scales.shape == (3, 4) and q128.group_size == 128
    tail = quantize(w[256:], "int4", group_size=128)
    np.testing.assert_array_equal(q128.scales[2], tail.scales[0])
    np.testing.assert_array_equal(q128.codes[256:], tail.codes)
    np.testing.assert_array_equal(dequantize(q128)[256:], dequantize(tail))


@pytest.mark.parametrize(
    "name, kwargs",
    [("int4", {}), ("uint4", {"symmetric": False}), ("int3", {"symmetric": False, "zero": "float"}),
     ("e2m1", {}), ("nf4", {}), ("mxfp4", {}), ("nvfp4", {})],
)
def test_all_zero_group_is_finite_and_exact(name, kwargs):
    w = weight(64, 3, 2)
    w[:32, 1] = 0.0
    q = quantize(w, name, **({"group_size": 32} if name not in SCALED_TYPES else {}), **kwargs)
    deq = dequantize(q)
    assert (deq[:32, 1] == 0).all()
    if name not in SCALED_TYPES:
        assert q.scales[0, 1] == 1.0 and np.isfinite(q.scales.astype(float)).all() and (q.scales.astype(float) > 0).all()


def test_block_scaled_types_delegate_along_k():
    w = weight(80, 3, 5)
    for name in ("mxfp4", "mxfp8", "mxint8"):
        t = SCALED_TYPES[name]
        q = quantize(w, name)
        codes, scales = t.quantize(w, axis=0)
        np.testing.assert_array_equal(q.codes, codes)
        np.testing.assert_array_equal(q.scales, scales)
        assert q.group_size == 32 and q.scales.shape == (3, 3) and q.tensor_scale is None
        np.testing.assert_array_equal(dequantize(q), t.dequantize(codes, scales, axis=0))
    q = quantize(w, SCALED_TYPES["nvfp4"], group_size=16)
    codes, scales, ts = SCALED_TYPES["nvfp4"].quantize(w, axis=0)
    assert q.tensor_scale == ts and q.scales.shape == (5, 3)
    np.testing.assert_array_equal(dequantize(q), SCALED_TYPES["nvfp4"].dequantize(codes, scales, ts, axis=0))


def test_input_untouched_and_outputs_read_only():
    w = weight(40, 3, 1)
    before = w.copy()
    w.setflags(write=False)
    q = quantize(w, "uint4", group_size=32, symmetric=False)
    np.testing.assert_array_equal(w, before)
    for arr in (q.codes, q.scales, q.zeros):
        assert not arr.flags.writeable
    with pytest.raises(Exception):
        q.codes = q.codes  # frozen dataclass


def test_tiny_and_huge_groups():
    w = np.array([[1e-30, 1e-9], [-3e-30, 2e-9]])
    q = quantize(w, "int4", group_size=-1)
    assert (q.scales.astype(float) > 0).all()
    assert (np.abs(dequantize(q) - w) <= per_element(q, q.scales) / 2).all()
    with pytest.raises(QuantizeError, match=r"group 0, column 0 .* overflows f16; use scale_dtype='f32'"):
        quantize(np.array([[1e6], [1.0]]), "int4", group_size=-1)
    q = quantize(np.array([[1e6], [1.0]]), "int4", group_size=-1, scale_dtype="f32")
    assert abs(dequantize(q)[0, 0] - 1e6) <= q.scales[0, 0] / 2


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_weight_names_first_index(bad):
    w = weight(16, 4, 0)
    w[9, 2] = bad
    w[12, 3] = np.nan
    with pytest.raises(QuantizeError, match=r"w\[9, 2\] = .* is not finite"):
        quantize(w, "int4", group_size=8)


@pytest.mark.parametrize(
    "args, kwargs, pattern",
    [
        (("int4",), {"group_size": 0}, "group_size must be a positive integer or -1"),
        (("int4",), {"group_size": -2}, "group_size must be a positive integer or -1"),
        (("int4",), {"zero": "none", "symmetric": False}, "zero must be 'int' or 'float'"),
        (("int4",), {"scale_dtype": "f8"}, "scale_dtype must be one of"),
        (("uint4",), {}, "symmetric quantization needs a signed type"),
        (("int1",), {}, "no positive value"),
        (("e2m1",), {"symmetric": False}, "only symmetric=True"),
        (("mxfp4",), {"group_size": 64}, "fixed block of 32"),
        (("mxfp4",), {"symmetric": False}, "symmetric by definition"),
        (("int16",), {}, "has 16 bits"),
        (("notaformat",), {}, "unknown format name"),
        (("e8m0",), {}, "no negative values"),
    ],
)
def test_argument_errors(args, kwargs, pattern):
    with pytest.raises(QuantizeError, match=pattern) as info:
        quantize(weight(32, 2, 0), *args, **kwargs)
    assert isinstance(info.value, LowbitError)


def test_weight_shape_and_dtype_errors():
    with pytest.raises(QuantizeError, match=r"must be 2-D \(K, N\)"):
        quantize(np.ones(8), "int4")
    with pytest.raises(QuantizeError, match="K >= 1"):
        quantize(np.ones((0, 3)), "int4")
    with pytest.raises(QuantizeError, match="real float or integer array"):
        quantize(np.ones((4, 4), dtype=complex), "int4")
    with pytest.raises(QuantizeError, match="expected a QuantizedTensor"):
        dequantize(np.ones((2, 2)))
    q = quantize(weight(32, 2, 0), "int4", group_size=16)
    with pytest.raises(QuantizeError, match="group_types"):  # reserved: refused, never silently ignored
        dequantize(dataclasses.replace(q, group_types=np.zeros((2, 2), dtype=np.uint8)))


def test_ties_round_half_to_even():
    # amax 7 -> s = 1 (int4); amax 15 with wmin 0 -> s = 1, z = 0 (uint4)
    col = np.array([7.0, 2.5, -2.5, 3.5, 0.5, -0.5, -1.5, 6.5])
    q = quantize(col[:, None], "int4", group_size=-1)
    assert q.scales[0, 0] == 1.0
    assert dequantize(q)[:, 0].tolist() == [7.0, 2.0, -2.0, 4.0, 0.0, -0.0, -2.0, 6.0]
    col = np.array([15.0, 2.5, 3.5, 0.5, 14.5, 0.0])
    for zero in ("int", "float"):
        q = quantize(col[:, None], "uint4", group_size=-1, symmetric=False, zero=zero)
        assert q.scales[0, 0] == 1.0
        assert q.codes[:, 0].tolist() == [15, 2, 4, 0, 14, 0]
