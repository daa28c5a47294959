"""lane_id / warp_id, transpose / permute, static slices, convert_layout: interpreter = emulator, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.errors import DSLError, LowbitError
from lowbit.layout import register as R


@lowbit.kernel(num_warps=4)
def thread_ids(o_ptr: lowbit.ptr("int32")):
    # built inside the kernel: layout constructors run at compile time on constexpr arguments
    lay = lowbit.layout.product(lowbit.layout.spatial(16, 8), lowbit.layout.local(1, 4))
    ids = lowbit.lane_id((16, 32), lay) * 100 + lowbit.warp_id((16, 32), lay)
    lowbit.store(lowbit.global_view(o_ptr, (16, 32)), ids, (0, 0))


def _expected_ids(lay: R.RegisterLayout, threads: int) -> np.ndarray:
    out = np.full(lay.shape, -1, np.int64)
    for t in range(threads):
        for s in range(lay.local_size):
            out[lay.coords(t, s)] = (t % 32) * 100 + t // 32
    return out


def test_lane_and_warp_ids_follow_the_layout() -> None:
    lay = R.product(R.spatial(16, 8), R.local(1, 4))
    want = _expected_ids(lay, 128)
    for run in (thread_ids.interpret, thread_ids):
        o = np.full((16, 32), -7, np.int32)
        run[(1,)](o)
        np.testing.assert_array_equal(o, want)
    assert want[1, 0] == 800 and want[4, 0] == 1  # row 1: threads 8..15 of warp 0; row 4: warp 1


@lowbit.kernel
def shuffle_axes(x_ptr: lowbit.ptr("f32"), t_ptr: lowbit.ptr("f32"), p_ptr: lowbit.ptr("f32"), s_ptr: lowbit.ptr("f32")):
    x = lowbit.load(lowbit.global_view(x_ptr, (8, 16)), (0, 0), (8, 16))
    lowbit.store(lowbit.global_view(t_ptr, (16, 8)), lowbit.transpose(x), (0, 0))
    y = lowbit.reshape(x, (2, 4, 16))
    lowbit.store(lowbit.global_view(p_ptr, (16, 2, 4)), lowbit.permute(y, (2, 0, 1)), (0, 0, 0))
    lowbit.store(lowbit.global_view(s_ptr, (3, 5)), x[2:5, -6:-1] * 2.0, (0, 0))


def test_transpose_permute_and_slices() -> None:
    x = np.random.default_rng(4).standard_normal((8, 16)).astype(np.float32)
    outs = {}
    for name, run in (("interp", shuffle_axes.interpret), ("emu", shuffle_axes)):
        t, p, s = np.full((16, 8), np.nan, np.float32), np.full((16, 2, 4), np.nan, np.float32), np.full((3, 5), np.nan, np.float32)
        run[(1,)](x, t, p, s)
        outs[name] = (t, p, s)
    for t, p, s in outs.values():
        np.testing.assert_array_equal(t, x.T)
        np.testing.assert_array_equal(p, np.transpose(x.reshape(2, 4, 16), (2, 0, 1)))
        np.testing.assert_array_equal(s, x[2:5, 10:15] * 2)


_L1 = R.product(R.spatial(16, 8), R.local(1, 4))
_L2 = R.product(R.local(2, 2), R.spatial(8, 16))


@lowbit.kernel
def explicit_conversion(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f32")):
    a = lowbit.load(lowbit.global_view(x_ptr, (16, 32)), (0, 0), (16, 32), layout=_L1)
    b = lowbit.load(lowbit.global_view(x_ptr, (16, 32)), (0, 0), (16, 32), layout=_L2)
    lowbit.store(lowbit.global_view(o_ptr, (16, 32)), a + lowbit.convert_layout(b, _L1), (0, 0))


def test_convert_layout_resolves_two_user_layouts() -> None:
    x = np.arange(512, dtype=np.float32).reshape(16, 32)
    for run in (explicit_conversion.interpret, explicit_conversion):
        o = np.full((16, 32), np.nan, np.float32)
        run[(1,)](x, o)
        np.testing.assert_array_equal(o, 2 * x)


@pytest.mark.parametrize("body, message", [
    ("lowbit.store(v, x[0:20, :], (0, 0))", "slice 0:20 is outside axis 0 of extent 16"),
    ("lowbit.store(v, x[n:4, :], (0, 0))", "tile slice bounds must be constexpr ints"),
    ("lowbit.store(v, x[0:4:2, :], (0, 0))", "tile slices take no step"),
    ("lowbit.store(v, x[3], (0, 0))", "not single positions"),
    ("lowbit.store(v, lowbit.transpose(lowbit.reshape(x, (512,))), (0, 0))", "transpose takes a 2-D tile"),
    ("lowbit.store(v, lowbit.permute(x, (0, 0)), (0, 0))", "is not a permutation"),
    ("lowbit.store(v, lowbit.lane_id((16, 32), None), (0, 0))", "lane_id needs the register layout"),
])  # fmt: skip
def test_errors_point_at_the_line(tmp_path, body: str, message: str) -> None:  # noqa: ANN001
    src = tmp_path / "bad_kernel.py"
    src.write_text(
        "import lowbit\n\n"
        "@lowbit.kernel\n"
        "def bad(x_ptr: lowbit.ptr('f32'), n: lowbit.int32):\n"
        "    v = lowbit.global_view(x_ptr, (16, 32))\n"
        "    x = lowbit.load(v, (0, 0), (16, 32))\n"
        f"    {body}\n"
    )
    import importlib.util

    spec = importlib.util.spec_from_file_location("bad_kernel", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(DSLError) as exc:
        mod.bad.specialize()
    assert message in str(exc.value) and "bad_kernel.py:7:" in str(exc.value), str(exc.value)


def test_thread_index_needs_an_injective_layout() -> None:
    @lowbit.kernel
    def replicated(o_ptr: lowbit.ptr("int32")):
        lay = lowbit.layout.product(lowbit.layout.replicate(8), lowbit.layout.spatial(4, 4))
        lowbit.store(lowbit.global_view(o_ptr, (4, 4)), lowbit.lane_id((4, 4), lay), (0, 0))

    with pytest.raises(LowbitError, match="holds some element in several threads"):
        replicated.specialize()
