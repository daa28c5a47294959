"""Default row-major strides of a view: products of extents are computed in int64."""

import numpy as np

import lowbit
from lowbit.ir.expr import evaluate
from lowbit.ir.ops import GlobalView


@lowbit.kernel(num_warps=1)
def touch3(x: lowbit.ptr("f32"), A: lowbit.int32, B: lowbit.int32, C: lowbit.int32):
    v = lowbit.global_view(x, (A, B, C))
    t = lowbit.load(v, (0, 0, 0), (1, 1, 32))
    lowbit.store(v, t + 1.0, (0, 0, 0))


def _view(prog):
    return next(op for op in prog.body if isinstance(op, GlobalView))


def test_outer_stride_of_a_rank3_view_does_not_wrap() -> None:
    prog = touch3.specialize()
    view = _view(prog)
    params = {p.name: p.value for p in prog.params}
    env = {params["A"]: 2, params["B"]: 65536, params["C"]: 65536}
    strides = [evaluate(s, env) for s in view.strides]
    assert strides == [65536 * 65536, 65536, 1]  # 2^32: wraps to 0 in int32
    assert view.strides[0].dtype.name == "int64"
    assert view.strides[2].dtype.name == "int32"


def test_rank3_view_still_runs_on_small_shapes() -> None:
    x = np.arange(2 * 3 * 40, dtype=np.float32)
    want = x.copy()
    want[:32] += 1
    touch3.interpret[(1,)](x, 2, 3, 40)
    np.testing.assert_array_equal(x, want)
    y = np.arange(2 * 3 * 40, dtype=np.float32)
    touch3[(1,)](y, 2, 3, 40)
    np.testing.assert_array_equal(y, want)
