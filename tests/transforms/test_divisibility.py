"""The divisibility law: evaluate(e) % divisibility(e) == 0 in every environment that satisfies the facts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lowbit.ir import ops as O
from lowbit.ir.expr import Binary, Cast, Const, Select, Unary, Var, evaluate
from lowbit.ir.program import Param, Program
from lowbit.ir.types import INT32, INT64
from lowbit.transforms._divisibility import Divisibility

K, N, P = Var("K", INT32), Var("N", INT32), Var("pid", INT32)
ITER = Var("k", INT32)


def _exprs():  # noqa: ANN202
    leaf = st.sampled_from([K, N, P, ITER]) | st.integers(-300, 300).map(lambda v: Const(v, INT32))

    def grow(children):  # noqa: ANN001, ANN202
        return st.one_of(
            st.tuples(st.sampled_from(["add", "sub", "mul", "min", "max", "and"]), children, children)
            .map(lambda t: Binary(t[0], t[1], t[2])),
            st.tuples(children, st.sampled_from([1, 2, 4, 8, 16])).map(lambda t: Binary("div", t[0], Const(t[1], INT32))),
            st.tuples(children, st.integers(0, 5)).map(lambda t: Binary("shl", t[0], Const(t[1], INT32))),
            children.map(lambda e: Unary("neg", e)),
            children.map(lambda e: Cast(Cast(e, INT64), INT32)),
            st.tuples(children, children, children).map(lambda t: Select(Binary("lt", t[0], t[1]), t[1], t[2])),
        )

    return st.recursive(leaf, grow, max_leaves=6)


def _program() -> Program:
    loop = O.For(var=ITER, start=Const(32, INT32), stop=K, step=Const(64, INT32), inits=(), args=(), body=(),
                 yields=(), results=())  # fmt: skip
    return Program("k", (Param("K", K, 16), Param("N", N, 1), Param("pid", P, 1)), (loop,))


@given(_exprs(), st.integers(-(2**20), 2**20), st.integers(-(2**20), 2**20), st.integers(0, 1000), st.integers(0, 40))
def test_divisibility_law(e, k: int, n: int, pid: int, i: int) -> None:  # noqa: ANN001
    div = Divisibility(_program())
    env = {K: k * 16, N: n, P: pid, ITER: 32 + 64 * i}
    assert int(evaluate(e, env)) % div(e) == 0


def test_facts_and_loops() -> None:
    div = Divisibility(_program())
    assert div(K) == 16 and div(N) == 1 and div(ITER) == 32
    assert div(Binary("mul", P, Const(128, INT32))) == 128 and div(Binary("div", ITER, Const(8, INT32))) == 4
