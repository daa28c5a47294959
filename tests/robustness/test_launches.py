"""Robustness: launch-side errors (issue 9, item 5).

Scalars are range-checked and named; a launch that fails leaves the caller's arrays exactly as they were
(no partial copy-back, on the interpreter or the emulator); read-only arrays are fine for parameters the
kernel only reads; every lowbit error reaches the user as itself, with a short traceback.
"""

from __future__ import annotations

import traceback

import numpy as np
import pytest

import lowbit
from lowbit import emu
from lowbit.errors import EmulatorError, LaunchError, LowbitError
from lowbit.interp import InterpError


@lowbit.kernel
def axpb(x: lowbit.ptr("f32"), out: lowbit.ptr("f32"), a: lowbit.f32, n: lowbit.int32, h: lowbit.f16,
         u: lowbit.uint32, flag: lowbit.bool_):
    v = lowbit.load(lowbit.global_view(x, (n,)), (0,), (128,))
    r = v * a + h
    if flag:
        r = r + 1.0
    lowbit.store(lowbit.global_view(out, (n,)), r, (0,))


def _args(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"x": np.arange(128, dtype=np.float32), "out": np.zeros(128, np.float32), "a": 2.0,
                               "n": 128, "h": 0.5, "u": 7, "flag": False}
    base.update(over)
    return base


PATHS = ["interpreter", "emulator"]


def _launch(path: str, kernel=axpb, grid=(1,), **kw: object) -> None:
    (kernel.interpret if path == "interpreter" else kernel)[grid](**kw)


# ------------------------------------------------------------------------------------------ scalar checks


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"a": 1e300}, r"argument 'a': 1e\+300 is outside the f32 range \(finite values of magnitude up to "
                       r"3\.4028234663852886e\+38\); it would become inf"),
        ({"a": -1e39}, r"argument 'a': -1e\+39 is outside the f32 range .* it would become -inf"),
        ({"a": 10**400}, r"argument 'a': 100000000000\.\.\.\(401 digits\) is outside the f32 range"),
        ({"h": 65520.0}, r"argument 'h': 65520\.0 is outside the f16 range \(finite values of magnitude up to "
                         r"65504\.0\)"),
        ({"n": 2**31}, r"argument 'n': 2147483648 does not fit in int32 \(range -2147483648\.\.2147483647\)"),
        ({"n": -(2**31) - 1}, r"argument 'n': -2147483649 does not fit in int32"),
        ({"u": -1}, r"argument 'u': -1 does not fit in uint32 \(range 0\.\.4294967295\)"),
        ({"u": 2**32}, r"argument 'u': 4294967296 does not fit in uint32"),
        ({"n": 1.5}, r"argument 'n': expected an int for int32, got 1\.5"),
        ({"n": True}, r"argument 'n': expected an int for int32, got True"),
        ({"n": None}, r"argument 'n': expected an int for int32, got None"),
        ({"n": "128"}, r"argument 'n': expected an int for int32, got '128'"),
        ({"a": None}, r"argument 'a': expected a number for f32, got None"),
        ({"a": True}, r"argument 'a': expected a number for f32, got True"),
        ({"a": 1 + 2j}, r"argument 'a': expected a number for f32, got \(1\+2j\)"),
        ({"flag": "yes"}, r"argument 'flag': expected a bool, got 'yes'"),
        ({"flag": None}, r"argument 'flag': expected a bool, got None"),
        ({"x": [1.0, 2.0]}, r"argument 'x': expected an array for ptr<f32>"),
        ({"x": None}, r"argument 'x': expected an array for ptr<f32>"),
        ({"x": np.zeros(128, np.float64)}, r"argument 'x': array dtype float64 does not hold f32 elements"),
        ({"x": np.zeros((128, 2), np.float32)[:, 0]}, r"argument 'x': the array must be C-contiguous"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
def test_a_bad_argument_is_named(path: str, over: dict, message: str) -> None:
    args = _args(**over)
    out_before = args["out"].copy()  # type: ignore[union-attr]
    with pytest.raises(LaunchError, match=message):
        _launch(path, **args)
    assert np.array_equal(args["out"], out_before)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("a", [3.4028234663852886e38, float("inf"), -float("inf"), 1e-45])
def test_edge_but_representable_scalars_are_accepted(path: str, a: float) -> None:
    args = _args(a=a, x=np.ones(128, np.float32), h=0.0)
    _launch(path, **args)
    assert np.array_equal(args["out"], np.full(128, np.float32(a) * np.float32(1.0)))  # type: ignore[arg-type]


def test_f16_and_bool_scalars_mean_the_same_on_both_paths() -> None:
    outs = []
    for path in PATHS:
        args = _args(h=0.333, flag=True, u=2**32 - 1)
        _launch(path, **args)
        outs.append(args["out"])
    expected = np.arange(128, dtype=np.float32) * 2 + np.float32(np.float16(0.333)) + 1
    assert np.array_equal(outs[0], expected) and np.array_equal(outs[1], expected)


# ------------------------------------------------------------------------------------------ inputs never modified


@lowbit.kernel
def write_then_fail(x: lowbit.ptr("f32"), out: lowbit.ptr("f32"), n: lowbit.int32, s: lowbit.int32):
    v = lowbit.load(lowbit.global_view(x, (128,)), (0,), (128,))
    lowbit.store(lowbit.global_view(out, (128,)), v + 1.0, (0,))  # lands before the failure below
    lowbit.store(lowbit.global_view(x, (128,)), v * 0.0, (0,))
    for i in range(0, n, s):
        v = v + 1.0
    lowbit.store(lowbit.global_view(out, (128,)), v, (0,))


@pytest.mark.parametrize("path", PATHS)
def test_a_failed_launch_leaves_every_array_untouched(path: str) -> None:
    x, out = np.arange(128, dtype=np.float32), np.full(128, -1.0, np.float32)
    with pytest.raises((InterpError, EmulatorError), match="range step must be positive"):
        _launch(path, write_then_fail, x=x, out=out, n=4, s=0)
    assert np.array_equal(x, np.arange(128, dtype=np.float32)) and np.all(out == -1.0)


def test_a_watchdog_stop_leaves_every_array_untouched() -> None:
    x, out = np.arange(128, dtype=np.float32), np.full(128, -1.0, np.float32)
    with pytest.raises(EmulatorError, match="watchdog"):
        write_then_fail[(1,)](x, out, 1 << 30, 1, max_steps=3000)
    assert np.array_equal(x, np.arange(128, dtype=np.float32)) and np.all(out == -1.0)


def test_a_memory_fault_leaves_every_array_untouched() -> None:
    ptx = """.version 7.0
.target sm_80
.address_size 64
.visible .entry k(.param .u64 p, .param .u64 q)
{
  .reg .b64 %rd<4>;
  .reg .b32 %r<2>;
  ld.param.u64 %rd1, [p];
  ld.param.u64 %rd2, [q];
  mov.u32 %r1, 42;
  st.global.u32 [%rd1], %r1;
  st.global.u32 [%rd2+4096], %r1;
  ret;
}
"""
    p, q = np.zeros(4, np.uint32), np.zeros(4, np.uint32)
    with pytest.raises(EmulatorError, match=r"memcheck: out-of-bounds global store of 4 bytes .*nearest buffer: q .* at PTX line 12"):
        emu.launch(ptx, "k", 1, 1, [p, q])
    assert not p.any() and not q.any()


def test_a_successful_launch_still_updates_in_place_and_aliases() -> None:
    @lowbit.kernel
    def inc(x: lowbit.ptr("f32"), y: lowbit.ptr("f32")):
        v = lowbit.load(lowbit.global_view(x, (128,)), (0,), (128,))
        lowbit.store(lowbit.global_view(y, (128,)), v + 1.0, (0,))

    for path in PATHS:
        x = np.arange(128, dtype=np.float32)
        _launch(path, inc, x=x, y=x)  # one array passed twice is one buffer
        assert np.array_equal(x, np.arange(128, dtype=np.float32) + 1)


@pytest.mark.parametrize("path", PATHS)
def test_read_only_arrays_are_fine_for_read_only_parameters(path: str) -> None:
    args = _args()
    args["x"].flags.writeable = False  # type: ignore[union-attr]
    _launch(path, **args)
    assert np.array_equal(args["out"], np.arange(128, dtype=np.float32) * 2 + 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", PATHS)
def test_a_read_only_array_for_a_written_parameter_is_named(path: str) -> None:
    args = _args()
    args["out"].flags.writeable = False  # type: ignore[union-attr]
    with pytest.raises(LaunchError, match="argument 'out': the array is read-only, but the kernel stores to it"):
        _launch(path, **args)


# ------------------------------------------------------------------------------------------ clean errors


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("call", "raised"),
    [
        (lambda launch: launch(**_args(n=2**40)), LaunchError),
        (lambda launch: launch(**_args(s=1)), LaunchError),  # no such parameter
        (lambda launch: launch(), LaunchError),
    ],
    ids=["bad-scalar", "unknown-name", "missing"],
)
def test_errors_reach_the_user_with_a_short_traceback(path: str, call, raised: type) -> None:
    launcher = axpb.interpret[(1,)] if path == "interpreter" else axpb[(1,)]
    with pytest.raises(raised) as info:
        call(launcher)
    frames = traceback.extract_tb(info.value.__traceback__)
    inside = [f for f in frames if "/lowbit/" in f.filename.replace("\\", "/")]
    assert len(inside) <= 1, [f"{f.filename}:{f.lineno}" for f in inside]  # the user's call and one lowbit line
    assert isinstance(info.value, LowbitError)


def test_a_kernel_called_without_a_grid_says_how() -> None:
    with pytest.raises(LaunchError, match=r"launch axpb with a grid: axpb\[grid\]\(\.\.\.\)"):
        axpb(**_args())
