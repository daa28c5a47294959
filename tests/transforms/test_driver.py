"""``lowbit.compiler.driver``: compile() stages, caching, constexpr defaults, target choice, emulator argument binding."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler import driver
from lowbit.compiler.cache import CompileCache
from lowbit.errors import LaunchError, LowbitError
from tests.conftest import require_tool


@lowbit.kernel
def scale(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("f16"), n: lowbit.int32, s: lowbit.f32,
          B: lowbit.constexpr = 64, REQUIRED: lowbit.constexpr = 1):  # fmt: skip
    i = lowbit.program_id(0) * B
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (i,), (B,))
    lowbit.store(lowbit.global_view(o_ptr, (n,)), lowbit.cast(x * s * REQUIRED, lowbit.f16), (i,))


@lowbit.kernel
def needs_value(x_ptr: lowbit.ptr("f32"), B: lowbit.constexpr):
    lowbit.store(lowbit.global_view(x_ptr, (B,)), lowbit.zeros((B,), lowbit.f32), (0,))


@lowbit.kernel
def to_fp8(x_ptr: lowbit.ptr("f32"), o_ptr: lowbit.ptr("e4m3fn"), n: lowbit.int32):
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (0,), (128,))
    lowbit.store(lowbit.global_view(o_ptr, (n,)), lowbit.cast(x, lowbit.e4m3fn), (0,))


def test_compile_keeps_every_stage(cache: CompileCache) -> None:
    require_tool("ptxas")
    ck = driver.compile(scale, arch="sm_80", cache=cache)
    assert ck.kernel_name == "scale" and ck.arch == "sm_80"
    assert ck.vm.startswith("kernel @scale(") and 'constexprs(B="64", REQUIRED="1")' in ck.vm
    assert "threads 128" in ck.simt and re.search(r"define ptx_kernel void @\"?scale", ck.llvm)
    assert ".entry scale" in ck.ptx and ck.cubin and ck.resources.spill_stores == 0
    assert [(p.name, p.kind) for p in ck.params] == [("x_ptr", "pointer"), ("o_ptr", "pointer"), ("n", "scalar"), ("s", "scalar")]
    entry = ck.ptx[ck.ptx.index(".entry scale"):]
    ptx_params = re.findall(r"\.param \.(\w+)", entry[: entry.index(")")])
    assert ptx_params == ["u64", "u64", "u32", "f32"]  # the PTX order is the VM order
    assert ck.threads_per_block == 128 and ck.shared_bytes == 0


def test_compile_is_cached_by_program_options_and_arch(cache: CompileCache, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    real = driver._build
    monkeypatch.setattr(driver, "_build", lambda prog, arch, opts=None: builds.append(arch) or real(prog, arch, opts))
    a = driver.compile(scale, arch="sm_86", cache=cache, B=32)
    b = driver.compile(scale, arch="sm_86", cache=cache, B=32)
    assert a.ptx == b.ptx and builds == ["sm_86"]
    driver.compile(scale, arch="sm_86", cache=cache, B=64 + 64)  # another specialisation: another entry
    driver.compile(scale, arch="sm_90", cache=cache, B=32)  # another target: another entry
    assert builds == ["sm_86", "sm_86", "sm_90"]


def test_missing_constexpr_without_default_is_named(cache: CompileCache) -> None:
    with pytest.raises(LowbitError, match="'B'"):
        driver.compile(needs_value, cache=cache)
    assert driver.compile(needs_value, cache=cache, B=32).kernel_name == "needs_value"


def test_fp8_kernels_default_to_sm_89(cache: CompileCache) -> None:
    assert driver.compile(to_fp8, cache=cache).arch == "sm_89"
    assert driver.compile(scale, cache=cache).arch == "sm_80"


def test_fp8_cast_runs_on_the_emulator(cache: CompileCache) -> None:
    x = (np.random.default_rng(1).standard_normal(100) * 100).astype(np.float32)
    o = np.full(100, 0xAB, np.uint8)
    ck = driver.compile(to_fp8, cache=cache)
    driver.run_on_emulator(ck, 1, [x, o, 100])
    want = np.asarray(lowbit.e4m3fn.encode(x.astype(np.float64), saturate=True), dtype=np.uint8)
    np.testing.assert_array_equal(o, want)


def test_run_on_emulator_binds_arguments_and_names_bad_ones(cache: CompileCache) -> None:
    ck = driver.compile(scale, cache=cache)
    x = np.arange(100, dtype=np.float32)
    o = np.full(100, np.nan, np.float16)
    driver.run_on_emulator(ck, (2,), [x, o, 100, 0.5])
    np.testing.assert_array_equal(o, (x * 0.5).astype(np.float16))
    o2 = np.full(100, np.nan, np.float16)
    driver.run_on_emulator(ck, (2,), {"x_ptr": x, "o_ptr": o2, "n": 100, "s": 0.5})
    np.testing.assert_array_equal(o2, o)
    with pytest.raises(LaunchError, match="takes 4 arguments"):
        driver.run_on_emulator(ck, (2,), [x, o, 100])
    with pytest.raises(LaunchError, match="'o_ptr'"):
        driver.run_on_emulator(ck, (2,), [x, o.astype(np.float32), 100, 0.5])
    with pytest.raises(LaunchError, match="'n'"):
        driver.run_on_emulator(ck, (2,), [x, o, 2**40, 0.5])
    with pytest.raises(LaunchError, match="'s'"):
        driver.run_on_emulator(ck, (2,), [x, o, 100, "half"])
