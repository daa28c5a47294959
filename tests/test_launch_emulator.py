"""kernel[grid](...) compiles to PTX and runs it on the emulator; errors reach the user clean."""

from __future__ import annotations

import importlib.util
import traceback
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit.errors import CodegenError, LaunchError

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_backend_is_the_emulator() -> None:
    ex = _example("01_vector_add")
    k = ex.vector_add
    assert lowbit.launch.select_backend(k, {}) == "emulator"
    rng = np.random.default_rng(1)
    n = 1000
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, np.float32)
    k[(-(-n // 128),)](x, y, out, n)
    np.testing.assert_array_equal(out, x + y)
    # compiled once per constexpr set and target
    assert len(k._compiled) == 1
    out2 = np.full(n, np.nan, np.float32)
    k[(-(-n // 128),)](x, y, out2, n)
    assert len(k._compiled) == 1
    np.testing.assert_array_equal(out2, x + y)


def test_on_picks_the_target() -> None:
    ex = _example("01_vector_add")
    n = 77
    x, y = np.arange(n, dtype=np.float32), np.ones(n, np.float32)
    out = np.full(n, np.nan, np.float32)
    ex.vector_add.on("sm_90")[(1,)](x, y, out, n)
    np.testing.assert_array_equal(out, x + 1)
    (prog, compiled) = next(iter(ex.vector_add._compiled.values()))
    assert compiled.arch == "sm_90" and ".target sm_90" in compiled.ptx


def test_a_too_short_array_is_refused_before_launch_naming_the_argument() -> None:
    ex = _example("01_vector_add")
    n = 300
    x, y = np.zeros(n, np.float32), np.zeros(n, np.float32)
    out = np.full(n - 50, 7.0, np.float32)  # too short for n: the view out[n] needs 1200 bytes
    with pytest.raises(LaunchError) as exc:
        ex.vector_add[(2,)](x, y, out, n)
    assert str(exc.value) == ("argument 'out_ptr': the kernel views it as f32[300] with strides [1], which needs "
                              "1200 bytes, but the array has 1000")
    assert np.all(out == 7.0)  # nothing ran
    frames = traceback.extract_tb(exc.value.__traceback__)
    assert all("lowbit/compiler" not in f.filename and "lowbit/binder" not in f.filename for f in frames)


def test_emulator_catches_an_out_of_bounds_launch_at_the_argument(tmp_path: Path) -> None:
    """A view sized by the grid (not by parameters) is beyond the binder: the emulator's memcheck names the argument."""
    src = tmp_path / "grid_sized.py"
    src.write_text(
        "import lowbit\n\n"
        "@lowbit.kernel(num_warps=1)\n"
        "def k(out_ptr: lowbit.ptr('f32')):\n"
        "    n = lowbit.num_programs(0) * 32\n"
        "    t = lowbit.full((32,), 1.0, lowbit.f32)\n"
        "    lowbit.store(lowbit.global_view(out_ptr, (n,)), t, (lowbit.program_id(0) * 32,))\n"
    )
    spec = importlib.util.spec_from_file_location("grid_sized", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = np.zeros(40, np.float32)  # two blocks write 64 elements
    with pytest.raises(lowbit.LowbitError) as exc:
        module.k[(2,)](out)
    assert "out-of-bounds global store" in str(exc.value) and "argument 'out_ptr'" in str(exc.value)
    frames = traceback.extract_tb(exc.value.__traceback__)
    assert all("lowbit/compiler" not in f.filename and "lowbit/emu" not in f.filename for f in frames)


def test_unlowerable_op_is_an_error_at_the_users_line(tmp_path: Path) -> None:
    src = tmp_path / "subbyte_store.py"
    src.write_text(
        "import lowbit\n\n"
        "@lowbit.kernel(num_warps=1)\n"
        "def k(x: lowbit.ptr('uint3'), n: lowbit.int32):\n"
        "    t = lowbit.zeros((32,), lowbit.uint3)\n"
        "    lowbit.store(lowbit.global_view(x, (n,)), t, (0,))\n"
    )
    spec = importlib.util.spec_from_file_location("subbyte_store", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises((CodegenError, LaunchError)) as exc:
        module.k[(1,)](np.zeros(12, np.uint8), 32)
    assert f"{src}:6:" in str(exc.value)


def test_an_op_inside_a_loop_is_blamed_at_its_own_line_only(tmp_path: Path) -> None:
    src = tmp_path / "nested.py"
    src.write_text(
        "import lowbit\n\n"
        "@lowbit.kernel(num_warps=1)\n"
        "def k(x: lowbit.ptr('uint3'), n: lowbit.int32):\n"
        "    for i in range(0, n, 32):\n"
        "        t = lowbit.zeros((32,), lowbit.uint3)\n"
        "        lowbit.store(lowbit.global_view(x, (n,)), t, (i,))\n"
    )
    spec = importlib.util.spec_from_file_location("nested", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(CodegenError) as exc:
        module.k[(1,)](np.zeros(12, np.uint8), 32)
    msg = str(exc.value)
    assert msg.startswith(f"{src}:7:9: cannot lower store_global") and f"{src}:5:" not in msg
    frames = traceback.extract_tb(exc.value.__traceback__)
    assert all("lowbit/transforms" not in f.filename and "lowbit/compiler" not in f.filename for f in frames)
