"""Names, identity and errors: dtype(t.name) == t, pickling, hashing, clear refusals."""

from __future__ import annotations

import pickle
import sys

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lowbit.dtypes as d
from lowbit.dtypes import BipolarType, DType, FloatType, IntType, dtype
from lowbit.errors import DTypeError, LowbitError
from tests.dtypes.formats import NOT_IN_ML_DTYPES, all_float_splits, scalar_builtins

CONSTANTS = [
    *(f"int{n}" for n in (*range(1, 9), 16, 32, 64)),
    *(f"uint{n}" for n in (*range(1, 9), 16, 32, 64)),
    "f16", "bf16", "f32", "f64", "e4m3fn", "e5m2", "e3m2", "e2m3", "e2m1", "e8m0", "ue4m3", "nf4",
]


@pytest.mark.parametrize("name", CONSTANTS)
def test_module_constants_are_the_named_builtins(name: str) -> None:
    t = getattr(d, name)
    assert isinstance(t, DType) and t.name == name == str(t)
    assert dtype(name) is t and t in d.builtin_types()


def test_builtin_names_roundtrip_and_are_unique() -> None:
    types = scalar_builtins()
    assert len({t.name for t in types}) == len(types)
    for t in types:
        assert dtype(t.name) == t
        assert dtype(t) is t


@pytest.mark.parametrize("t", all_float_splits()[::7] + [dtype(n) for n in NOT_IN_ML_DTYPES], ids=str)
def test_generic_names_roundtrip(t: FloatType) -> None:
    assert dtype(t.name) == t


@given(
    e=st.integers(1, 11),
    m=st.integers(0, 52),
    nan=st.sampled_from(["none", "fn", "ieee", "fnuz"]),
    signed=st.booleans(),
    bias_shift=st.integers(-3, 3),
)
def test_random_splits_roundtrip(e: int, m: int, nan: str, signed: bool, bias_shift: int) -> None:
    try:
        t = FloatType(e, m, bias=(1 << (e - 1)) - 1 + bias_shift, nan=nan, signed=signed)
    except DTypeError:
        return  # invalid combinations are refused; the round trip is about the valid ones
    assert dtype(t.name) == t
    assert pickle.loads(pickle.dumps(t)) == t


def test_aliases_and_equalities() -> None:
    assert d.e4m3 is d.e4m3fn and dtype("e4m3") is d.e4m3fn and dtype("E4M3") is d.e4m3fn
    assert dtype("f6e3m2") == d.e3m2 and dtype("f4e2m1") == d.e2m1 and dtype("f6e2m3") == d.e2m3
    assert dtype("f8e4m3fn") == d.e4m3fn and dtype("f8e5m2ieee") == d.e5m2
    assert dtype("uf8e8m0fn") == d.e8m0 and dtype("uf7e4m3fn") == d.ue4m3
    assert dtype("f16e5m10ieee") == d.f16 and dtype("f16e8m7ieee") == d.bf16
    # all-finite f8e4m3 is not e4m3fn (which reserves S.1111.111 for NaN), nor ml_dtypes' IEEE e4m3
    assert dtype("f8e4m3") != d.e4m3fn and dtype("f8e4m3").max == 480.0
    assert dtype("float8_e4m3") != d.e4m3fn and dtype("float8_e4m3").has_inf
    assert dtype("f8e4m3") != dtype("float8_e4m3")
    assert FloatType(2, 1) == d.e2m1 and FloatType(2, 1, bias=1) == d.e2m1
    assert hash(FloatType(4, 3, nan="fn")) == hash(d.e4m3fn)
    assert IntType(4, True) == d.int4 and IntType(4, True) != IntType(4, False)
    assert BipolarType(3) == dtype("bipolar3") and BipolarType(3) != d.int3
    assert {d.e2m1: 1}[dtype("f4e2m1")] == 1
    assert dtype("f4e2m1b2").name == "f4e2m1b2" and dtype("f4e2m1b-1").bias == -1


def test_numpy_and_ml_dtypes_objects() -> None:
    assert dtype(np.float16) is d.f16 and dtype(np.dtype("float32")) is d.f32
    assert dtype(ml_dtypes.bfloat16) is d.bf16 and dtype(ml_dtypes.float8_e4m3fn) is d.e4m3fn
    assert dtype(ml_dtypes.int4) is d.int4 and dtype(np.uint8) is d.uint8
    assert dtype(ml_dtypes.float8_e4m3fnuz) == FloatType(4, 3, bias=8, nan="fnuz")


@pytest.mark.parametrize("t", scalar_builtins() + [dtype(n) for n in NOT_IN_ML_DTYPES] + [BipolarType(5)], ids=str)
def test_pickle_hash_eq(t: DType) -> None:
    u = pickle.loads(pickle.dumps(t))
    assert u == t and hash(u) == hash(t) and u.name == t.name
    with pytest.raises(AttributeError):
        t.bits = 3  # type: ignore[misc]  # frozen


def test_classification_and_code_dtypes() -> None:
    assert d.e2m1.code_dtype == np.uint8 and d.f16.code_dtype == np.uint16
    assert d.f32.code_dtype == np.uint32 and d.f64.code_dtype == np.uint64
    assert d.e8m0.smallest_subnormal is None and d.int4.smallest_subnormal is None
    assert d.e8m0.min == 2.0**-127 and d.e8m0.max == 2.0**127 and not d.e8m0.is_signed
    assert d.ue4m3.bits == 7 and d.ue4m3.max == 448 and d.ue4m3.nan_code == 0x7F
    assert d.nf4.is_float is False and d.nf4.is_int is False
    with pytest.raises(DTypeError, match="at most 8 bits"):
        d.f16.values()


# -- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, match",
    [
        ("e4m4", "did you mean"),
        ("int4x", "unknown format name"),
        ("nf5", "did you mean 'nf4'"),
        ("int0", "bit width 0 is out of range 1..64"),
        ("int65", "out of range 1..64"),
        ("bipolar0", "out of range 1..32"),
        ("f9e4m3", "= 8, not 9"),
        ("uf8e4m3", "= 7, not 8"),
        ("f14e12m1", "exponent width 12"),
        ("f5e1m3ieee", "ieee"),
        ("uf5e2m3fnuz", "fnuz"),
        ("f8e7m0", "exponent-only"),
        ("cb4_0123abcd", "not created in this process"),
        ("", "unknown format name"),
    ],
)
def test_bad_names(name: str, match: str) -> None:
    with pytest.raises(DTypeError, match=match):
        dtype(name)


@pytest.mark.parametrize("bad", [None, 3, 2.5, object()])
def test_dtype_of_non_names(bad: object) -> None:
    with pytest.raises(DTypeError, match="expected a format name"):
        dtype(bad)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: IntType(0), "out of range"),
        (lambda: IntType(True), "must be an int"),
        (lambda: IntType(4.0), "must be an int"),
        (lambda: FloatType(0, 3), "exponent width 0"),
        (lambda: FloatType(4, 60), "mantissa width 60"),
        (lambda: FloatType(4, 3, nan="maybe"), "nan='maybe'"),
        (lambda: FloatType(11, 52, bias=0, nan="ieee"), "beyond float64"),
        (lambda: FloatType(4, 3, bias=1.5), "bias must be an int"),
        (lambda: BipolarType(33), "out of range"),
    ],
)
def test_bad_constructors(build, match: str) -> None:
    with pytest.raises(DTypeError, match=match):
        build()


@pytest.mark.parametrize("t", [d.e4m3fn, d.int4, d.nf4, BipolarType(3), d.e8m0], ids=str)
def test_bad_inputs(t: DType) -> None:
    for bad in (np.array([1 + 2j]), np.array(["1.0"]), np.array([True]), np.array([1.0], dtype=np.longdouble)):
        with pytest.raises(DTypeError, match=r"input dtype"):
            t.encode(bad)
    with pytest.raises(DTypeError, match="codes must be an integer array"):
        t.decode(np.array([1.0]))
    with pytest.raises(DTypeError, match=r"code -1 at index 1 is negative"):
        t.decode([0, -1])
    with pytest.raises(DTypeError, match=r"does not fit in \d bits"):
        t.decode([0, 1, 1 << t.bits])
    assert issubclass(DTypeError, LowbitError)


def test_inexact_integer_input_to_float_format() -> None:
    with pytest.raises(DTypeError, match="not exactly a float64"):
        d.e4m3fn.encode(np.array([2**53 + 1], dtype=np.int64))
    assert d.e4m3fn.encode(np.array([2**53], dtype=np.int64)).tolist() == [0x7F]


def test_scaled_names_fall_through_when_module_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lowbit.dtypes.scaled", None)
    with pytest.raises(DTypeError, match="unknown format name 'mxfp4'"):
        dtype("mxfp4")
    assert all(isinstance(t, DType) for t in d.builtin_types())


def test_scaled_names_resolve_when_present() -> None:
    scaled = pytest.importorskip("lowbit.dtypes.scaled")
    for name, t in scaled.SCALED_TYPES.items():
        assert dtype(name) is t and dtype(t) is t


def test_format_table_lists_every_builtin() -> None:
    text = d.format_table()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["name", "kind", "bits"]
    names = {line.split()[0] for line in lines[2:]}
    assert {t.name for t in scalar_builtins()} <= names
    row = next(line for line in lines if line.startswith("e2m1 "))
    assert "0, 0.5, 1, 1.5, 2, 3, 4, 6" in row and " 6 " in row and "-6" in row
    row = next(line for line in lines if line.startswith("e4m3fn "))
    assert "448" in row and "0.00195312" in row
    # block-scaled rows give their ranges too (OCP MX v1.0: element range x E8M0 2**-127..2**127;
    # NVFP4: e2m1 x ue4m3 per unit tensor scale T), never "-"
    cells = {line.split()[0]: [c.strip() for c in line.split("  ") if c.strip()] for line in lines[2:]}
    assert cells["mxfp4"][3:6] == ["-6 x 2^127", "6 x 2^127", "2^-128"]
    assert cells["mxfp8_e4m3"][3:6] == ["-448 x 2^127", "448 x 2^127", "2^-136"]
    assert cells["mxint8"][3:6] == ["-2 x 2^127", "1.98438 x 2^127", "-"]
    assert cells["nvfp4"][3:5] == ["-2688 x T", "2688 x T"]
    for name in ("mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3"):
        assert "2^127" in cells[name][4] and cells[name][5].startswith("2^-")
