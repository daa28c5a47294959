"""Op constructors refuse ill-typed ops; the verifier reports every scoping problem with op and location;
the promotion table is the documented one."""

from __future__ import annotations

import pytest

from lowbit.dtypes import dtype
from lowbit.errors import IRError
from lowbit.ir import ops as O
from lowbit.ir import semantics as sem
from lowbit.ir.expr import Binary, Const, Var
from lowbit.ir.program import Param, Program
from lowbit.ir.types import BOOL, INT32, GlobalType, PointerType, SharedType, TileType, Value
from lowbit.ir.verifier import problems, verify

F16, F32, U32, U4 = dtype("f16"), dtype("f32"), dtype("uint32"), dtype("uint4")
LOC = O.Loc("k.py", 7, 3)


def tile(dt, *shape) -> Value:
    return Value(TileType(dt, tuple(shape)))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: O.ElementwiseBinary(result=tile(F16, 4), op="add", a=tile(F16, 4), b=tile(F32, 4), loc=LOC),
         "binary at k.py:7:3: operands differ"),
        (lambda: O.ElementwiseBinary(result=tile(dtype("e4m3fn"), 4), op="add", a=tile(dtype("e4m3fn"), 4),
                                     b=tile(dtype("e4m3fn"), 4)), "add is not defined on e4m3fn"),
        (lambda: O.ElementwiseBinary(result=tile(F16, 4), op="lt", a=tile(F16, 4), b=tile(F16, 4)),
         "does not match the inferred tile<bool, [4]>"),
        (lambda: O.Dot(result=tile(F32, 4, 4), a=tile(F16, 4, 8), b=tile(F16, 4, 4), c=tile(F32, 4, 4)),
         "shapes do not chain"),
        (lambda: O.Dot(result=tile(F16, 4, 4), a=tile(F16, 4, 8), b=tile(F16, 8, 4), c=tile(dtype("int32"), 4, 4)),
         "accumulator of a f16 dot must be f32 or f16"),
        (lambda: O.View(result=tile(dtype("uint3"), 4, 10), x=tile(U32, 4, 1), axis=1),
         "is not a whole number of uint3"),
        (lambda: O.View(result=tile(U4, 4, 8), x=tile(U32, 4, 1), axis=0), "does not match the inferred tile<uint4, [32, 1]>"),
        (lambda: O.Reduce(result=tile(F32, 1, 4), x=tile(F32, 4, 4), kind="mean", axis=0), "cannot reduce f32 with 'mean'"),
        (lambda: O.Broadcast(result=tile(F32, 4, 4), x=tile(F32, 2, 4)), "cannot broadcast [2, 4] to [4, 4]"),
        (lambda: O.Reshape(result=tile(F32, 5), x=tile(F32, 2, 2)), "cannot reshape [2, 2]"),
        (lambda: O.Lookup(result=tile(F16, 4), table=tile(F16, 4, 4), index=tile(U4, 4)), "table must be a 1-D tile"),
        (lambda: O.Arange(result=tile(F32, 4)), "1-D int32 tile"),
        (lambda: O.Where(result=tile(F32, 4), cond=tile(INT32, 4), a=tile(F32, 4), b=tile(F32, 4)), "condition must be a bool tile"),
        (lambda: O.Fma(result=tile(INT32, 4), a=tile(INT32, 4), b=tile(INT32, 4), c=tile(INT32, 4)), "float tiles"),
        (lambda: O.ElementwiseUnary(result=tile(INT32, 4), op="exp2", x=tile(INT32, 4)), "exp2 is not defined on int32"),
        (lambda: O.LoadGlobal(result=tile(F16, 4, 4), src=Value(GlobalType(F16, 2)), offsets=(Const(0, INT32),)),
         "offsets needs 2 index expressions"),
        (lambda: O.LoadGlobal(result=tile(F16, 4, 4), src=Value(GlobalType(F16, 2)), offsets=(Const(0, INT32),) * 2,
                              mask=tile(BOOL, 4)), "mask shape [4] does not match the tile shape [4, 4]"),
        (lambda: O.StoreGlobal(dst=Var("n", INT32), value=tile(F16, 4), offsets=(Const(0, INT32),)),
         "destination must be a global view"),
        (lambda: O.LoadShared(result=tile(F16, 8, 8), src=Value(SharedType(F16, (4, 8))), offsets=(Const(0, INT32),) * 2),
         "larger than the buffer"),
        (lambda: O.GlobalView(result=Value(GlobalType(F16, 1)), ptr=tile(F16, 4), shape=(Const(4, INT32),),
                              strides=(Const(1, INT32),)), "the base must be a pointer parameter"),
        (lambda: O.WaitGroup(pending=-1), "non-negative"),
        (lambda: O.If(cond=Const(1, INT32), then_body=(), then_yields=(), else_body=(), else_yields=(), results=()),
         "condition must be a bool scalar"),
        (lambda: O.For(var=Var("i", INT32), start=Const(0, INT32), stop=Const(4, INT32), step=Const(1, INT32),
                       inits=(Const(0, INT32),), args=(Var("k", INT32),), body=(), yields=(tile(F32, 4),),
                       results=(Var("r", INT32),)), "carried value #0 changes type"),
    ],
)
def test_constructors_refuse(build, message) -> None:
    with pytest.raises(IRError) as exc:
        build()
    assert message in str(exc.value)


def test_types_are_values_and_ops_are_identities() -> None:
    assert TileType(F16, (4, 8)) == TileType(dtype("f16"), (4, 8))
    assert hash(TileType(F16, (4, 8))) == hash(TileType(F16, (4, 8)))
    a = O.Barrier()
    assert a != O.Barrier() and a == a
    with pytest.raises(IRError, match="non-positive"):
        TileType(F16, (4, 0))


def _prog(body, params=()) -> Program:
    return Program("k", tuple(params), tuple(body))


def test_verifier_reports_every_problem_with_op_and_location() -> None:
    n = Var("n", INT32)
    stranger = tile(F32, 4)  # never defined
    t = tile(F32, 4)
    inner = tile(F32, 4)
    buf = Value(SharedType(F16, (4,)))
    body = [
        O.Full(result=t, value=n, loc=O.Loc("k.py", 3, 5)),
        O.Cast(result=tile(F16, 4), x=stranger, loc=O.Loc("k.py", 4, 9)),
        O.For(var=Var("i", INT32), start=Const(0, INT32), stop=n, step=Const(1, INT32), inits=(), args=(),
              body=(O.Full(result=inner, value=n),), yields=(), results=()),  # fmt: skip
        O.Cast(result=tile(F16, 4), x=inner, loc=O.Loc("k.py", 6, 1)),  # defined only inside the loop
        O.Full(result=t, value=n, loc=O.Loc("k.py", 7, 1)),  # t defined twice
        O.AllocShared(result=buf),
        O.FreeShared(buf=buf),
        O.LoadShared(result=tile(F16, 4), src=buf, offsets=(Const(0, INT32),), loc=O.Loc("k.py", 9, 2)),
        O.FreeShared(buf=buf, loc=O.Loc("k.py", 10, 2)),
    ]
    found = problems(_prog(body, [Param("n", n)]))
    assert found == [
        "cast at k.py:4:9: operand tile<f32, [4]> is used where it is not defined",
        "cast at k.py:6:1: operand tile<f32, [4]> is used where it is not defined",
        "full at k.py:7:1: tile<f32, [4]> is defined more than once",
        "load_shared at k.py:9:2: shared buffer shared<f16, [4]> is used after free_shared",
        "free_shared at k.py:10:2: shared buffer shared<f16, [4]> is used after free_shared",
        "free_shared at k.py:10:2: shared buffer freed twice",
    ]
    with pytest.raises(IRError, match="kernel k does not verify"):
        verify(_prog(body, [Param("n", n)]))


def test_verifier_checks_grid_expressions() -> None:
    n, m = Var("n", INT32), Var("m", INT32)
    prog = Program("k", (Param("n", n),), (), grid=(Binary("add", m, Const(1, INT32)),))
    assert problems(prog) == ["grid of k: m is not a scalar parameter"]
    assert problems(Program("k", (Param("n", n),), (), grid=(n,))) == []


def test_program_checks() -> None:
    with pytest.raises(IRError, match="num_warps"):
        Program("k", (), (), num_warps=3)
    with pytest.raises(IRError, match="duplicate parameter"):
        Program("k", (Param("a", Var("a", INT32)), Param("a", Var("b", INT32))), ())
    with pytest.raises(IRError, match="only pointers and scalars"):
        Param("t", tile(F32, 4))
    Param("p", Value(PointerType(F16)))


@pytest.mark.parametrize(
    "a, b, want",
    [
        ("f16", "f32", "f32"), ("f16", "f16", "f16"), ("bf16", "f16", "f32"), ("bf16", "f32", "f32"),
        ("uint4", "int32", "int32"), ("uint4", "int8", "int32"), ("uint4", "uint4", "uint4"),
        ("int32", "int64", "int64"), ("uint32", "int32", "uint32"), ("uint32", "int64", "int64"),
        ("uint64", "int64", "uint64"), ("int16", "uint8", "int32"),
    ],
)  # fmt: skip
def test_promotion_table(a: str, b: str, want: str) -> None:
    assert sem.promote(dtype(a), dtype(b)).name == want
    assert sem.promote(dtype(b), dtype(a)).name == want


@pytest.mark.parametrize("a, b", [("f16", "int32"), ("e4m3fn", "f16"), ("nf4", "f32"), ("uint8", "f32")])
def test_promotion_refuses_implicit_int_float_and_storage_formats(a: str, b: str) -> None:
    with pytest.raises(IRError, match="cast one of them explicitly"):
        sem.promote(dtype(a), dtype(b))
