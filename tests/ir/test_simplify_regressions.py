"""Cases the derandomized CI profile found; each once simplified to a wrong value."""

from lowbit.ir.expr import Binary, Const, Var, evaluate
from lowbit.ir.simplifier import simplify
from lowbit.ir.types import INT32


def test_int_and_one_is_not_bool_and_true() -> None:
    # `(x + x) & 1` was rewritten to `x + x` by the bool rule `b and true = b`, because True == 1 in Python
    x = Var("x", INT32)
    e = Binary("and", Binary("add", x, x), Const(1, INT32))
    for value in (-3, -1, 0, 1, 2, 7, 2**31 - 1):
        assert evaluate(simplify(e), {x: value}) == evaluate(e, {x: value}) == 0  # 2x is even, wrapped or not
    y = Var("y", INT32)
    f = Binary("or", y, Const(0, INT32))  # x | 0 = x does hold for ints
    assert evaluate(simplify(f), {y: -5}) == -5
