"""Codebook formats: NF4 and user tables, against a brute-force Fraction nearest search."""

from __future__ import annotations

import pickle
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.dtypes import CodebookType, codebook, dtype, nf4
from lowbit.errors import DTypeError
from tests.dtypes.reference import midpoints, nearest_in_table

# QLoRA (Dettmers et al. 2023) NF4 table, as printed in bitsandbytes.
QLORA_NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]


def test_nf4_table() -> None:
    assert nf4.values().tolist() == QLORA_NF4
    assert nf4.bits == 4 and nf4.name == "nf4" and dtype("nf4") is nf4
    assert codebook(QLORA_NF4) == nf4 and codebook(QLORA_NF4).name == "nf4"
    assert (nf4.min, nf4.max, nf4.is_signed) == (-1.0, 1.0, True)


def _check(cb: CodebookType, xs: list[float]) -> None:
    table = [Fraction(v) for v in cb.table]
    got = cb.encode(np.asarray(xs, dtype=np.float64)).tolist()
    want = [nearest_in_table(table, Fraction(x), "lower") if np.isfinite(x)
            else (int(np.argmin(cb.table)) if x < 0 else int(np.argmax(cb.table))) for x in xs]
    assert got == want, (cb.table, xs)


def _tie_points(cb: CodebookType) -> list[float]:
    out = []
    for m in midpoints([Fraction(v) for v in cb.table]):
        f = float(m)
        out += [f, np.nextafter(f, np.inf), np.nextafter(f, -np.inf)]
    return out + list(cb.table)


def test_nf4_ties_and_random() -> None:
    rng = np.random.default_rng(3)
    _check(nf4, _tie_points(nf4) + rng.uniform(-1.2, 1.2, 2000).tolist() + [np.inf, -np.inf, 1e300])


@settings(max_examples=60)
@given(
    table=st.integers(1, 5).flatmap(
        lambda b: st.lists(st.one_of(st.floats(-100, 100), st.sampled_from([0.1, 0.2, 0.3, -0.0, 1.0])),
                           min_size=2**b, max_size=2**b)),
    extra=st.lists(st.floats(-200, 200), max_size=20),
)
def test_random_codebooks_match_reference(table: list[float], extra: list[float]) -> None:
    # Unsorted tables, duplicated entries and midpoints float64 cannot hold (0.1/0.2) included.
    cb = codebook(table)
    _check(cb, _tie_points(cb) + extra)
    np.testing.assert_array_equal(cb.decode(np.arange(len(table))), [v + 0.0 for v in table])
    assert dtype(cb.name) == cb


def test_ties_go_to_lower_code() -> None:
    cb = codebook([3.0, 1.0, 2.0, 1.0])  # unsorted, duplicate 1.0
    # 2.5 is halfway between 2.0 (code 2) and 3.0 (code 0): the lower code wins.
    assert cb.encode([1.0, 1.5, 2.5, 0.0, 9.0]).tolist() == [1, 1, 0, 1, 0]
    # The midpoint of 0.1 and 0.2 is not a float64: 0.15 lies below it, the next float above.
    cb2 = codebook([0.1, 0.2])
    assert (Fraction(0.1) + Fraction(0.2)) / 2 < Fraction(0.15000000000000002)
    assert cb2.encode([0.15, 0.15000000000000002]).tolist() == [0, 1]


def test_identity_name_hash_pickle() -> None:
    a = codebook([0.0, 1.0, 2.0, 4.0])
    b = CodebookType((0.0, 1.0, 2.0, 4.0))
    assert a == b and hash(a) == hash(b) and a.name == b.name
    assert a.name.startswith("cb2_") and len(a.name) == 12
    assert codebook([0.0, 1.0, 2.0, 5.0]).name != a.name
    assert codebook([-0.0, 1.0]) == codebook([0.0, 1.0])
    assert pickle.loads(pickle.dumps(a)) == a
    assert dtype(a.name) is not None and repr(a) == f"dtype({a.name!r})"


def test_user_codebook_name_only_in_creating_process() -> None:
    a = codebook([0.0, 1.0, 3.0, 7.5])
    code = (
        "import pickle, sys\n"
        "from lowbit.dtypes import dtype\n"
        "from lowbit.errors import DTypeError\n"
        f"name = {a.name!r}\n"
        "try:\n    dtype(name)\nexcept DTypeError as e:\n    print('ERR', e)\n"
        "t = pickle.loads(sys.stdin.buffer.read())\n"
        "print('OK', dtype(name) == t, t.name == name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(a), capture_output=True, check=True)
    text = out.stdout.decode()
    assert "ERR" in text and "not created in this process" in text
    assert "OK True True" in text


@pytest.mark.parametrize(
    "values, match",
    [
        ([1.0, 2.0, 3.0], "2\\*\\*b entries"),
        ([1.0], "2\\*\\*b entries"),
        ([0.0] * 512, "2\\*\\*b entries"),
        ([1.0, np.nan], "finite"),
        ([1.0, np.inf], "finite"),
        ([[1.0, 2.0]], "one-dimensional"),
        (["a", "b"], "floats"),
    ],
)
def test_bad_tables(values: object, match: str) -> None:
    with pytest.raises(DTypeError, match=match):
        codebook(values)


def test_codebook_nan_and_rounding_arguments() -> None:
    with pytest.raises(DTypeError, match="NaN at index 0"):
        nf4.encode([np.nan])
    with pytest.raises(DTypeError, match="rounding"):
        nf4.encode([0.0], rounding="rz")
