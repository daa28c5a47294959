"""The compact text form of every layout kind parses back; values are hashable and picklable."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings

from lowbit.errors import LayoutError
from lowbit.layout import (
    Layout,
    MemoryLayout,
    Swizzle,
    SwizzledLayout,
    block_fragment,
    mma_fragment,
    parse,
    row_major,
    to_text,
)
from tests.layout.strategies import register_layouts, strided_layouts

EX = settings(max_examples=60)


def _roundtrip(x):
    text = to_text(x)
    assert " " not in text and "\n" not in text
    assert str(x) == x.describe()  # str() is the readable form; the IR uses to_text()
    back = parse(text)
    assert back == x and hash(back) == hash(x) and type(back) is type(x)
    assert pickle.loads(pickle.dumps(x)) == x


@EX
@given(register_layouts())
def test_register_roundtrip(lay):
    _roundtrip(lay)


@EX
@given(strided_layouts())
def test_strided_roundtrip(lay):
    _roundtrip(lay)
    _roundtrip(SwizzledLayout(Swizzle(2, 1, 3), lay))
    _roundtrip(MemoryLayout(lay, 4, Swizzle(3, 4, 3)))
    _roundtrip(MemoryLayout(lay, 3))


def test_examples():
    assert to_text(mma_fragment("m16n8k16", "C")) == "R[2.8,4.2|t=m1.m2|l=m0.m3]"
    assert parse("R[1,8|t=m0.r4|l=]").replication == 4
    assert to_text(SwizzledLayout(Swizzle(3, 3, 3), row_major(8, 64))) == "Sw<3,3,3>o(8,64):(64,1)"
    assert to_text(MemoryLayout(row_major(8, 64), 16, Swizzle(3, 4, 3))) == "M[b16|(8,64):(64,1)|Sw<3,4,3>]"
    assert parse("((2,4),3):((1,16),4)") == Layout(((2, 4), 3), ((1, 16), 4))
    assert parse("Sw<3,4,3>") == Swizzle(3, 4, 3)
    _roundtrip(block_fragment("m16n8k16", "A", (2, 2), (2, 1)))


@pytest.mark.parametrize(
    "text",
    ["", "R[2|t=m0]", "R[2|t=m1|l=]", "R[2|t=r1.m0|l=]", "(2,3):(1)", "(2,3:(1,2)", "8:1x", "Sw<3,4>",
     "Sw<3,4,3>x8:1", "M[b0|8:1]", "M[b4|8:1|Sw<1,2>]", "R[2|t=|l=m0.m0]"],
)
def test_parse_errors(text):
    with pytest.raises(LayoutError):
        parse(text)


def test_to_text_rejects_non_layouts():
    with pytest.raises(LayoutError):
        to_text("8:1")
