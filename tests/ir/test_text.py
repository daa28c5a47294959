"""The .lbir text form: print(parse(print(p))) == print(p), over random programs and the examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.errors import IRError
from lowbit.interp import HANDLERS
from lowbit.ir import ops as O
from lowbit.ir.parser import parse
from lowbit.ir.printer import print_program
from lowbit.ir.verifier import problems, verify
from tests.ir.random_programs import random_program


def _round_trip(prog, locs: bool = False) -> None:
    text = print_program(prog, locs=locs)
    again = parse(text)
    assert problems(again) == []
    assert print_program(again, locs=locs) == text


def test_generator_covers_every_op_class_per_100_programs() -> None:
    seen: set[type] = set()
    for seed in range(100):
        prog, used = random_program(seed)
        seen |= used
        verify(prog)
        _round_trip(prog)
    missing = {c.__name__ for c in O.OP_CLASSES} - {c.__name__ for c in seen}
    assert not missing, f"the random program generator never emitted {sorted(missing)}"


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1))
def test_round_trip_random_programs(seed: int) -> None:
    prog, _ = random_program(seed)
    _round_trip(prog)


def test_round_trip_keeps_locations() -> None:
    prog, _ = random_program(7)
    with_locs = O.Barrier(loc=O.Loc('dir/k "1".py', 12, 5))
    prog2 = type(prog)(prog.name, prog.params, prog.body + (with_locs,), prog.constexprs, prog.num_warps, prog.grid)
    text = print_program(prog2, locs=True)
    assert 'loc("dir/k \\"1\\".py":12:5)' in text
    _round_trip(prog2, locs=True)
    assert parse(text).body[-1].loc == O.Loc('dir/k "1".py', 12, 5)


def test_printing_is_deterministic_and_hint_free() -> None:
    a, _ = random_program(3)
    b, _ = random_program(3)  # separately built: different objects, same structure
    assert print_program(a) == print_program(b)


def test_every_op_class_is_described_and_has_an_interpreter_entry() -> None:
    import dataclasses

    for cls in O.OP_CLASSES:
        s = cls.spec
        described = s.results + s.operands + s.optional + s.attrs + s.region_fields
        fields = [f.name for f in dataclasses.fields(cls) if f.name != "loc"]
        assert sorted(described) == sorted(fields), cls.__name__
        assert cls in HANDLERS, f"no interpreter entry for {cls.__name__}"
        assert O.by_mnemonic(cls.opname if s.mnemonic_attr is None else "add" if cls is O.ElementwiseBinary
                             else "neg")[0] is cls  # fmt: skip
    assert set(HANDLERS) == set(O.OP_CLASSES)  # no stale entries


def test_a_new_op_needs_no_printer_parser_or_verifier_entry() -> None:
    """The description is the only table: a class defined here prints, parses back and verifies."""
    from dataclasses import dataclass

    from lowbit.ir.op_base import OpSpec, check_spec
    from lowbit.ir.types import TileType, Value
    from lowbit.dtypes import dtype

    @dataclass(frozen=True, eq=False)
    class Twice(O.Op):
        result: Value
        x: Value
        scale: int
        opname = "twice_for_test"
        spec = OpSpec(results=("result",), operands=("x",), attrs=("scale",))

    check_spec(Twice)
    from lowbit.ir import op_base
    assert Twice(result=Value(TileType(dtype("f32"), (4,))), x=Value(TileType(dtype("f32"), (4,))), scale=3).uses()
    assert op_base.Op.regions(Twice(result=Value(TileType(dtype("f32"), (4,))), x=Value(TileType(dtype("f32"), (4,))),
                                    scale=3)) == ()


@pytest.mark.parametrize(
    "text, message",
    [
        ("kernel @k() num_warps=4 {\n  %0 = cast(%9) : tile<f16, [4]>\n}\n", "%9 is not defined"),
        ("kernel @k() num_warps=4 {\n  %0 = arange() {start=0} : tile<f16, [4]>\n}\n", "1-D int32 tile"),
        ("kernel @k() num_warps=4 {\n  %0 = frobnicate\n}\n", "syntax error"),
        ("kernel @k() num_warps=4 {\n  %0 = frobnicate() : int32\n}\n", "unknown op frobnicate"),
        ("kernel @k() num_warps=4 {\n  %0 = arange() {begin=0} : tile<int32, [4]>\n}\n", "no attribute 'begin'"),
        ("kernel @k() num_warps=4 {\n  barrier() : int32\n}\n", "barrier defines no result"),
        ("kernel @k(%n: int32) num_warps=4 {\n  %0 = full(%n, %n) : tile<int32, [4]>\n}\n", "full takes 1 operands"),
        ("kernel @k(%n: int32) num_warps=4 {\n  %0 = full(%n) : tile<int32, [4]>\n  %1 = full(%n) : tile<int32, [4]>\n"
         "  %0 = add(%0, %1) : tile<int32, [4]>\n}\n", "defined twice"),
        ("kernel @k(%n: int32) num_warps=4 {\n  %0 = full(%n) : tile<f16, [4]>\n  %1 = full(%n) : tile<int32, [4]>\n"
         "  %2 = add(%0, %1) : tile<f16, [4]>\n}\n", "operands differ"),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(IRError, match="lbir:") as exc:
        parse(text)
    assert message in str(exc.value)


def test_parse_scopes_loop_bodies() -> None:
    text = (
        "kernel @k(%n: int32) num_warps=4 {\n"
        "  for %0: int32 = 0 to %n step 1 {\n"
        "    %1 = full(%0) : tile<int32, [4]>\n"
        "  }\n"
        "  %2 = cast(%1) : tile<f32, [4]>\n"
        "}\n"
    )
    with pytest.raises(IRError, match="%1 is not defined here"):
        parse(text)
