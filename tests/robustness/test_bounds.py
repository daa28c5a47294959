"""Robustness: everything is bounded (issue 9, item 1).

The emulator's watchdog (steps and wall time, defaults in :mod:`lowbit.config`), the hardware grid limits
on every backend, a runtime ``range`` step <= 0 on both paths, and the tile budget before lowering.  Each
case asserts the exception type and what the message names, and that the failure came back quickly.
"""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest

import lowbit
from lowbit import config, emu
from lowbit.compiler.budget import tile_registers
from lowbit.errors import CompileError, DSLError, EmulatorError, LaunchError
from lowbit.interp import InterpError
from lowbit.ir.types import TileType

# A loop whose counter keeps changing (so the spin detector never fires): 2^32 iterations unless stopped.
SPIN_PTX = """.version 7.0
.target sm_80
.address_size 64
.visible .entry spin(.param .u64 p)
{
  .reg .b32 %r<4>;
  .reg .pred %q;
  .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [p];
  mov.u32 %r1, 0;
$L1:
  add.u32 %r1, %r1, 1;
  setp.ne.u32 %q, %r1, 0;
  @%q bra $L1;
  st.global.u32 [%rd1], %r1;
  ret;
}
"""

COUNT_PTX = SPIN_PTX.replace("setp.ne.u32 %q, %r1, 0", "setp.ne.u32 %q, %r1, 100").replace("spin", "count")


@lowbit.kernel
def looped(x: lowbit.ptr("f32"), n: lowbit.int32, s: lowbit.int32):
    acc = lowbit.zeros((128,), lowbit.float32)
    for i in range(0, n, s):  # LOOP-LINE
        acc = acc + 1.0
    lowbit.store(lowbit.global_view(x, (128,)), acc, (0,))


def _line_of(marker: str) -> int:
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return i
    raise AssertionError(marker)


LOOP_LINE = _line_of("# LOOP-LINE")


# ------------------------------------------------------------------------------------------ watchdog


def test_the_watchdog_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "EMU_STEPS_BASE", 5000)
    monkeypatch.setattr(config, "EMU_STEPS_PER_THREAD", 10)
    out = np.zeros(1, np.uint32)
    t0 = time.monotonic()
    with pytest.raises(EmulatorError) as info:
        emu.launch(SPIN_PTX, "spin", 1, 32, [out])
    assert time.monotonic() - t0 < 30
    msg = str(info.value)
    budget = 5000 + 10 * 32
    assert msg.startswith(f"watchdog: the launch executed more than {budget} steps")
    assert "spinning in the loop at PTX lines 12-14 (back edge `@%q bra $L1;`)" in msg
    assert "raise the budget with max_steps=" in msg
    assert out[0] == 0  # nothing copied back


def test_the_default_step_budget_scales_with_the_grid() -> None:
    assert config.emu_step_budget(1, 32) == config.EMU_STEPS_BASE + 32 * config.EMU_STEPS_PER_THREAD
    assert config.emu_step_budget(8, 128) - config.emu_step_budget(1, 128) == 7 * 128 * config.EMU_STEPS_PER_THREAD


@pytest.mark.parametrize("budget", [1000, 20_000])
def test_an_explicit_step_budget_is_exact(budget: int) -> None:
    with pytest.raises(EmulatorError, match=rf"executed more than {budget} steps \({budget + 1} steps\)"):
        emu.launch(SPIN_PTX, "spin", 1, 32, [np.zeros(1, np.uint32)], max_steps=budget)


def test_the_wall_time_budget_ends_a_spinning_launch() -> None:
    t0 = time.monotonic()
    with pytest.raises(EmulatorError, match=r"watchdog: the launch ran longer than 0\.3 s .*max_seconds="):
        emu.launch(SPIN_PTX, "spin", 1, 32, [np.zeros(1, np.uint32)], max_seconds=0.3, max_steps=math.inf)
    assert time.monotonic() - t0 < 10


def test_a_launch_inside_its_budget_completes() -> None:
    out = np.zeros(1, np.uint32)
    st = emu.launch(COUNT_PTX, "count", 1, 32, [out], max_steps=400)
    assert out[0] == 100 and st is not None


@pytest.mark.parametrize("bad", [0, -5, "many", None.__class__, True])
def test_a_bad_budget_is_a_launch_error(bad: object) -> None:
    with pytest.raises(LaunchError, match=r"max_steps must be a positive number \(math.inf: no limit\)"):
        emu.launch(COUNT_PTX, "count", 1, 32, [np.zeros(1, np.uint32)], max_steps=bad)


def test_the_interpreter_has_a_wall_time_watchdog_too() -> None:
    """A loop of 2**31 - 1 iterations would run for hours on the interpreter; max_seconds ends it at the loop."""
    x = np.full(128, 7.0, np.float32)
    t0 = time.monotonic()
    with pytest.raises(InterpError, match=rf"watchdog: the interpreter ran longer than 0\.3 s; stopped in the loop at "
                                          rf".*test_bounds\.py:{LOOP_LINE}:\d+ \(iteration \d+ of range\(0, 2147483647, 1\)\), "
                                          r"block \(0, 0, 0\); raise the budget with .*max_seconds="):  # fmt: skip
        looped.interpret[(1,)](x, 2**31 - 1, 1, max_seconds=0.3)
    assert time.monotonic() - t0 < 10
    assert (x == 7.0).all()  # all or nothing: nothing was written back
    looped.interpret[(1,)](x, 5, 1, max_seconds=30)  # inside its budget: runs to the end
    assert (x == 5.0).all()


def test_the_interpreter_watchdog_also_stops_a_huge_grid_between_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from lowbit import config

    monkeypatch.setattr(config, "INTERP_MAX_SECONDS", 0.3)  # the default, lowered for the test
    x = np.full(128, 7.0, np.float32)
    with pytest.raises(InterpError, match=r"ran longer than 0\.3 s; stopped (before block|in the loop)"):
        looped.interpret[(2**31 - 1,)](x, 3, 1)
    assert (x == 7.0).all()


@pytest.mark.parametrize("bad", [0, -1.5, "soon", True])
def test_a_bad_interpreter_budget_is_a_launch_error(bad: object) -> None:
    with pytest.raises(LaunchError, match=r"max_seconds must be a positive number \(math.inf: no limit\)"):
        looped.interpret[(1,)](np.zeros(128, np.float32), 3, 1, max_seconds=bad)


def test_kernel_launches_take_the_watchdog_options() -> None:
    x = np.zeros(128, np.float32)
    with pytest.raises(EmulatorError) as info:
        looped[(1,)](x, 1 << 30, 1, max_steps=5000)
    msg = str(info.value)
    assert "watchdog: the launch executed more than 5000 steps" in msg and "spinning in the loop at PTX lines" in msg
    assert not x.any()
    with pytest.raises(EmulatorError, match=r"ran longer than 0\.2 s"):
        looped[(1,)](x, 1 << 30, 1, max_seconds=0.2, max_steps=math.inf)
    looped[(1,)](x, 7, 1, max_steps=10_000)  # the options are not kernel arguments
    assert np.all(x == 7)


def test_watchdog_options_cannot_be_parameter_names() -> None:
    with pytest.raises(DSLError, match="'max_steps' is a launch option of every kernel"):
        @lowbit.kernel
        def bad(x: lowbit.ptr("f32"), max_steps: lowbit.int32):
            pass


def test_too_many_threads_for_the_emulator_is_a_launch_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "EMU_MAX_THREADS", 1 << 12)
    with pytest.raises(LaunchError, match=r"is 8192 threads; the emulator holds every thread at once and runs at "
                                          r"most 4096 \(lowbit.config.EMU_MAX_THREADS\)"):
        emu.launch(COUNT_PTX, "count", 256, 32, [np.zeros(1, np.uint32)])


# ------------------------------------------------------------------------------------------ grid limits


@lowbit.kernel
def fill(x: lowbit.ptr("f32")):
    lowbit.store(lowbit.global_view(x, (128,)), lowbit.zeros((128,), lowbit.float32) + 1.0, (0,))


@pytest.mark.parametrize(
    ("grid", "axis", "value", "limit"),
    [((2**31,), "x", 2**31, 2**31 - 1), ((1, 65536), "y", 65536, 65535), ((1, 1, 65536), "z", 65536, 65535),
     ((3, 70000, 2), "y", 70000, 65535)],
)
@pytest.mark.parametrize("path", ["interpreter", "emulator"])
def test_the_hardware_grid_limits_hold_on_every_path(grid, axis, value, limit, path) -> None:
    x = np.zeros(128, np.float32)
    launcher = fill.interpret[grid] if path == "interpreter" else fill[grid]
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match=rf"dimension {axis} is {value}, above the hardware limit {limit} "
                                          r"\(grid limits: x < 2\^31, y and z < 65536\)"):
        launcher(x)
    assert time.monotonic() - t0 < 5 and not x.any()


@pytest.mark.parametrize("grid", [0, (0,), (1, -1), (), (1, 2, 3, 4), 1.5, "4"])
def test_malformed_grids_are_refused(grid: object) -> None:
    with pytest.raises(LaunchError, match="the grid must be a positive int or a tuple of 1 to 3 positive ints"):
        fill.interpret[grid](np.zeros(128, np.float32))


def test_the_emulator_applies_the_block_limits() -> None:
    with pytest.raises(LaunchError, match=r"block \(2048, 1, 1\) exceeds the limits \(1024, 1024, 64\) / 1024 threads"):
        emu.launch(COUNT_PTX, "count", 1, 2048, [np.zeros(1, np.uint32)])
    with pytest.raises(LaunchError, match=r"grid \(1, 1, 65536\) exceeds the limits"):
        emu.launch(COUNT_PTX, "count", (1, 1, 65536), 32, [np.zeros(1, np.uint32)])


# ------------------------------------------------------------------------------------------ range step <= 0


@pytest.mark.parametrize("step", [0, -1, -(2**31)])
def test_a_nonpositive_runtime_step_is_an_error_at_the_loop_on_both_paths(step: int) -> None:
    where = f"{__file__}:{LOOP_LINE}:5: range step must be positive"
    x = np.full(128, 3.0, np.float32)
    with pytest.raises(InterpError) as a:
        looped.interpret[(1,)](x, 10, step)
    assert str(a.value) == f"{where}, got {step}"
    t0 = time.monotonic()
    with pytest.raises(EmulatorError) as b:
        looped[(1,)](x, 10, step)
    assert time.monotonic() - t0 < 30
    assert str(b.value).startswith(f"{where}, got a step <= 0 at run time (the compiled loop's guard trapped")
    assert "trap: the kernel executed `trap`" in str(b.value)
    assert np.all(x == 3.0)


def test_the_guard_also_fires_on_an_empty_loop() -> None:
    # the interpreter checks the step before the bounds; the compiled guard sits before the loop too
    x = np.zeros(128, np.float32)
    with pytest.raises(InterpError, match="range step must be positive, got 0"):
        looped.interpret[(1,)](x, 0, 0)
    with pytest.raises(EmulatorError, match="range step must be positive"):
        looped[(1,)](x, 0, 0)


def test_a_positive_runtime_step_runs_through_the_guard() -> None:
    x, y = np.zeros(128, np.float32), np.zeros(128, np.float32)
    looped.interpret[(1,)](x, 100, 7)
    looped[(1,)](y, 100, 7)
    assert np.all(x == len(range(0, 100, 7))) and np.array_equal(x, y)


def test_the_guard_is_a_trap_in_the_ptx_and_constant_steps_have_none() -> None:
    guarded = lowbit.compile(looped).ptx
    assert len(re.findall(r"\btrap;\s*// lowbit trap 1000", guarded)) == 1

    @lowbit.kernel
    def constant_step(x: lowbit.ptr("f32"), n: lowbit.int32, S: lowbit.constexpr = 4):
        acc = lowbit.zeros((128,), lowbit.float32)
        for i in range(0, n, S):
            acc = acc + 1.0
        for j in range(0, n):
            acc = acc + 2.0
        lowbit.store(lowbit.global_view(x, (128,)), acc, (0,))

    ptx = lowbit.compile(constant_step).ptx
    assert "trap" not in ptx
    x = np.zeros(128, np.float32)
    constant_step[(1,)](x, 10)
    assert np.all(x == 3 + 20)


def test_two_runtime_step_loops_are_told_apart() -> None:
    @lowbit.kernel
    def two(x: lowbit.ptr("f32"), n: lowbit.int32, s: lowbit.int32, t: lowbit.int32):
        acc = lowbit.zeros((128,), lowbit.float32)
        for i in range(0, n, s):
            acc = acc + 1.0
        for j in range(0, n, t):  # SECOND-LOOP
            acc = acc + 2.0
        lowbit.store(lowbit.global_view(x, (128,)), acc, (0,))

    line = _line_of("# SECOND-LOOP")
    x = np.zeros(128, np.float32)
    with pytest.raises(EmulatorError, match=rf"^{re.escape(__file__)}:{line}:9: range step must be positive"):
        two[(1,)](x, 10, 1, 0)
    with pytest.raises(InterpError, match=rf"^{re.escape(__file__)}:{line}:9: range step must be positive, got -2"):
        two.interpret[(1,)](x, 10, 1, -2)
    with pytest.raises(EmulatorError, match=rf":{line - 2}:9: range step must be positive"):
        two[(1,)](x, 10, 0, 1)


def test_a_constant_nonpositive_step_is_a_compile_time_error() -> None:
    with pytest.raises(DSLError, match="range step must be positive, got 0"):
        @lowbit.kernel
        def zero(x: lowbit.ptr("f32"), n: lowbit.int32):
            for i in range(0, n, 0):
                pass

        zero.specialize()


# ------------------------------------------------------------------------------------------ tile budget


@lowbit.kernel
def big_tile(x: lowbit.ptr("f32"), N: lowbit.constexpr):
    t = lowbit.zeros((N,), lowbit.float32)  # TILE-LINE
    lowbit.store(lowbit.global_view(x, (N,)), t + 1.0, (0,))


@pytest.mark.parametrize(("log2n", "need"), [(18, 2048), (20, 8192), (24, 131072)])
def test_a_runaway_tile_fails_fast_at_its_line(log2n: int, need: int) -> None:
    line = _line_of("# TILE-LINE")
    t0 = time.monotonic()
    with pytest.raises(CompileError) as info:
        lowbit.compile(big_tile, N=1 << log2n)
    assert time.monotonic() - t0 < 1.0
    msg = str(info.value)
    assert msg.startswith(f"{__file__}:{line}:9: the {1 << log2n} f32 tile ({1 << log2n} elements) needs {need} "
                          "registers per thread over 128 threads (4 warps), above the budget of 1024")
    assert "MAX_TILE_REGISTERS_PER_THREAD" in msg


def test_the_tile_budget_applies_to_kernel_launches_too() -> None:
    x = np.zeros(1 << 18, np.float32)
    with pytest.raises(CompileError, match="needs 2048 registers per thread"):
        big_tile[(1,)](x, N=1 << 18)
    assert not x.any()


def test_a_tile_inside_the_budget_compiles_and_runs() -> None:
    x = np.zeros(4096, np.float32)
    big_tile[(1,)](x, N=4096)
    assert np.all(x == 1.0)


def test_more_warps_or_narrower_types_cost_fewer_registers() -> None:
    f32, f16 = lowbit.dtype("f32"), lowbit.dtype("f16")
    assert tile_registers(TileType(f32, (1 << 17,)), 128) == 1024
    assert tile_registers(TileType(f32, (1 << 17,)), 256) == 512
    assert tile_registers(TileType(f16, (1 << 17,)), 128) == 512
    assert tile_registers(TileType(lowbit.dtype("uint4"), (100,)), 128) == 1


# ------------------------------------------------------------------------------------------ the spinning DSL loop


@lowbit.kernel
def nested(x: lowbit.ptr("f32"), n: lowbit.int32, m: lowbit.int32, s: lowbit.int32):
    acc = lowbit.zeros((128,), lowbit.float32)
    for i in range(0, n, s):  # OUTER-LOOP
        for j in range(0, m, s):  # INNER-LOOP
            acc = acc + 1.0
    for k in range(0, m, s):  # LAST-LOOP
        acc = acc * 0.5
    lowbit.store(lowbit.global_view(x, (128,)), acc, (0,))


@pytest.mark.parametrize(
    ("n", "m", "marker", "index"),
    [(2, 1 << 30, "# INNER-LOOP", 2), (1 << 30, 1, "# OUTER-LOOP", 1), (0, 1 << 30, "# LAST-LOOP", 3)],
    ids=["inner", "outer", "last"],
)
def test_the_watchdog_names_the_spinning_dsl_loop(n: int, m: int, marker: str, index: int) -> None:
    # runtime steps: LLVM keeps one PTX loop per DSL loop, so the loops match one to one
    x = np.zeros(128, np.float32)
    with pytest.raises(EmulatorError) as info:
        nested[(1,)](x, n, m, 1, max_steps=4000)
    msg = str(info.value)
    col = 9 if marker == "# INNER-LOOP" else 5
    assert msg.startswith(f"{__file__}:{_line_of(marker)}:{col}: the kernel's loop {index} of 3 (matched by position) "
                          "did not finish -- watchdog: the launch executed more than 4000 steps")
    assert not x.any()


@lowbit.kernel
def unrolled(x: lowbit.ptr("f32"), n: lowbit.int32):
    acc = lowbit.zeros((128,), lowbit.float32)
    for i in range(0, n):
        acc = acc + 1.0
    lowbit.store(lowbit.global_view(x, (128,)), acc, (0,))


def test_the_watchdog_claims_no_dsl_loop_when_llvm_reshaped_the_loops() -> None:
    # a unit step with a runtime trip count: LLVM unrolls it into a main loop and a remainder loop
    x = np.zeros(128, np.float32)
    with pytest.raises(EmulatorError) as info:
        unrolled[(1,)](x, 1 << 30, max_steps=4000)
    assert str(info.value).startswith("watchdog: the launch executed more than 4000 steps")
    assert "spinning in the loop at PTX lines" in str(info.value) and "matched by position" not in str(info.value)
