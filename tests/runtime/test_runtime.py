"""The GPU runtime without a GPU: the no-driver path, image and target choice, and the whole launch path on a
stand-in driver that executes the packed launch on the emulator (tests/runtime/fake_driver.py)."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit import runtime
from lowbit.errors import LaunchError
from lowbit.runtime import images
from lowbit.runtime.driver import CudaError, use_driver
from tests.conftest import require_module
from tests.runtime.fake_driver import LAUNCH_FAILED, NO_DEVICE, FakeDriver

ROOT = Path(__file__).resolve().parents[2]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"rt_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VADD = _example("01_vector_add").vector_add
CAST = _example("02_uint4_cast").uint4_to_f16


# --------------------------------------------------------------------------- no GPU


def test_no_driver_is_a_status_not_a_crash() -> None:
    require_module("cuda.bindings.driver")
    st = runtime.status(refresh=True)
    if st.available:  # pragma: no cover - a GPU machine
        pytest.skip("this machine has a GPU")
    assert not st.available and "cuInit raised" in st.reason and str(st).startswith("no GPU (")
    with pytest.raises(LaunchError, match="no GPU to launch on: cuInit raised"):
        runtime.DeviceArray.empty(4, np.float32)


def test_missing_cuda_python_is_a_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)
    try:
        st = runtime.status(refresh=True)
        assert not st.available and "cuda-python is not installed" in st.reason
    finally:
        monkeypatch.undo()
        runtime.status(refresh=True)


def test_cuinit_failing_is_a_status() -> None:
    with use_driver(FakeDriver(init_result=NO_DEVICE)) as st:
        assert not st.available and st.reason == "cuInit: CUDA_ERROR_NO_DEVICE: fake driver error 100"


# --------------------------------------------------------------------------- pure choices


@pytest.mark.parametrize("kind, target, sm, ok", [
    ("cubin", "sm_80", 80, True), ("cubin", "sm_80", 86, True), ("cubin", "sm_86", 80, False),
    ("cubin", "sm_80", 90, False), ("cubin", "sm_90a", 90, True), ("cubin", "sm_90a", 100, False),
    ("ptx", "sm_80", 90, True), ("ptx", "sm_90", 89, False), ("ptx", "sm_90a", 100, False), ("ptx", "sm_89", 120, True),
])  # fmt: skip
def test_binary_and_ptx_compatibility_rules(kind: str, target: str, sm: int, ok: bool) -> None:
    assert images.runs_on(kind, target, sm) is ok


def test_image_choice_prefers_the_cubin_then_the_ptx() -> None:
    ptx = ".version 7.8\n.target sm_80\n.address_size 64\n"
    assert [k for k, _ in images.choose_images("k", "sm_80", ptx, b"CUBIN", 86)] == ["cubin", "ptx"]
    assert [k for k, _ in images.choose_images("k", "sm_80", ptx, b"CUBIN", 90)] == ["ptx"]
    assert [k for k, _ in images.choose_images("k", "sm_80", ptx, None, 80)] == ["ptx"]
    with pytest.raises(LaunchError, match=r"compiled for sm_80 \(PTX .target sm_80\); a device of compute capability 7.5 runs neither"):
        images.choose_images("k", "sm_80", ptx, b"CUBIN", 75)


def test_target_for_a_device() -> None:
    assert images.target_for(90, False) == "sm_90" and images.target_for(87, False) == "sm_86"
    assert images.target_for(100, False) == "sm_90" and images.target_for(89, True) == "sm_89"
    with pytest.raises(LaunchError, match="needs a GPU of sm_89 or newer \\(it uses FP8\\); this device is sm_86"):
        images.target_for(86, True, "k")
    with pytest.raises(LaunchError, match="needs a GPU of sm_80 or newer; this device is sm_75"):
        images.target_for(75, False, "k")


def test_entry_params_read_lowbit_and_foreign_ptx() -> None:
    ck = lowbit.compile(CAST)
    ps = images.entry_params(ck.ptx, ck.kernel_name)
    assert [(p.type, p.size, p.align) for p in ps] == [("u64", 8, 8), ("u64", 8, 8), ("u32", 4, 4), ("u32", 4, 4),
                                                       ("f32", 4, 4)]  # fmt: skip
    foreign = ".visible .entry t(\n .param .align 8 .b8 t_param_0[16],\n .param .u16 t_param_1\n)\n{ ret; }"
    assert [(p.name, p.size, p.align) for p in images.entry_params(foreign, "t")] == [("t_param_0", 16, 8),
                                                                                       ("t_param_1", 2, 2)]
    with pytest.raises(LaunchError, match="the PTX has no .entry nope"):
        images.entry_params(ck.ptx, "nope")


# --------------------------------------------------------------------------- the launch path on the stand-in


def test_launch_loads_once_falls_back_to_ptx_and_computes_on_device() -> None:
    fake = FakeDriver(cc=(9, 0))
    with use_driver(fake) as st:
        assert st.available and st.devices[0].sm == 90 and st.driver_version == "13.0"
        ck = lowbit.compile(VADD, arch="sm_90")
        rng = np.random.default_rng(7)
        n = 1000
        x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
        dx, dy = runtime.DeviceArray.from_numpy(x), runtime.DeviceArray.from_numpy(y)
        dout = runtime.DeviceArray.from_numpy(np.full(n, np.nan, np.float32))
        k = runtime.load(ck)
        assert k.image == "ptx" and "CUDA_ERROR_NO_BINARY_FOR_GPU" in k.image_errors[0]  # the fake refuses cubins
        for _ in range(2):
            k((8,), dx, dy, dout, n)
        np.testing.assert_array_equal(dout.numpy(), x + y)
        assert runtime.load(ck) is k
        assert fake.calls.count("cuModuleLoadDataEx") == 1 and fake.calls.count("cuLaunchKernel") == 2
        seq = [c for c in fake.calls if c != "cuLaunchKernel"]
        assert seq[:3] == ["cuInit", "cuDevicePrimaryCtxRetain", "cuCtxSetCurrent"]
        assert seq[-3:] == ["cuModuleLoadData", "cuModuleLoadDataEx", "cuModuleGetFunction"]
        last = fake.launches[-1]
        assert last["grid"] == (8, 1, 1) and last["block"] == (128, 1, 1) and last["stream"] == 0
        assert [int.from_bytes(b, "little") for b in last["raw"]] == [dx.ptr, dy.ptr, dout.ptr, n]


def test_kernel_grid_with_device_arrays_runs_on_the_gpu_compiled_for_the_device() -> None:
    with use_driver(FakeDriver(cc=(8, 6), accept_cubin=False)):
        rows, cols = 37, 100
        rng = np.random.default_rng(3)
        codes = rng.integers(0, 16, (rows, cols), dtype=np.uint8)
        words = lowbit.pack(codes, 4, axis=-1)
        dw = runtime.DeviceArray.from_numpy(words)
        dout = runtime.DeviceArray.from_numpy(np.full((rows, cols), np.nan, np.float16))
        CAST[(3, 2)](dw, dout, rows, cols, 0.375)  # an f32 scalar packed by the runtime
        assert CAST.last_launch.backend == "gpu"
        want = ((codes.astype(np.float64) - 8.0) * 0.375).astype(np.float16)
        np.testing.assert_array_equal(dout.numpy(), want)
        (prog, ck), = [v for v in CAST._compiled.values() if v[1].arch == "sm_86"]
        assert ck.arch == "sm_86" and prog.facts.get("words_ptr") == 16  # device buffers are 256-byte aligned


def test_cubin_is_used_when_the_device_runs_it() -> None:
    fake = FakeDriver(cc=(8, 0), accept_cubin=True, run=False)
    with use_driver(fake):
        ck = lowbit.compile(VADD, arch="sm_80")
        if ck.cubin is None:
            pytest.skip("no ptxas: no cubin")  # CI has ptxas (lowbit install-tools)
        k = runtime.load(ck)
        assert k.image == "cubin" and "cuModuleLoadDataEx" not in fake.calls


def test_driver_errors_name_the_call_and_device_limits_are_checked_at_load() -> None:
    fake = FakeDriver(cc=(9, 0))
    with use_driver(fake):
        ck = lowbit.compile(VADD, arch="sm_90")
        d = [runtime.DeviceArray.empty(300, np.float32) for _ in range(3)]
        k = runtime.load(ck)
        fake.fail_launch = LAUNCH_FAILED
        with pytest.raises(CudaError) as exc:
            k((3,), *d, 300)
        assert exc.value.call == "cuLaunchKernel" and exc.value.code == "CUDA_ERROR_LAUNCH_FAILED"
        assert str(exc.value) == ("cuLaunchKernel failed: CUDA_ERROR_LAUNCH_FAILED: fake driver error 719 "
                                  "(kernel vector_add, grid (3, 1, 1), block (128, 1, 1))")
        with pytest.raises(LaunchError, match=r"grid \(0,\): dimension 0 must be an int in 1..2147483647"):
            k((0,), *d, 300)
        with pytest.raises(LaunchError, match="argument 'x_ptr': the kernel views it as f32\\[400\\]"):
            k((4,), *d, 400)
    with use_driver(FakeDriver(cc=(9, 0), max_threads=64)):
        with pytest.raises(LaunchError, match="needs 128 threads per block, but with 40 registers per thread "
                                              "Fake GPU runs at most 64: use fewer warps"):
            runtime.load(lowbit.compile(VADD, arch="sm_90"))
    with use_driver(FakeDriver(cc=(7, 5))):
        d = [runtime.DeviceArray.empty(300, np.float32) for _ in range(3)]
        with pytest.raises(LaunchError, match="needs a GPU of sm_80 or newer; this device is sm_75"):
            VADD[(3,)](*d, 300)


def test_two_threads_loading_one_kernel_load_it_once() -> None:
    fake = FakeDriver(cc=(9, 0), run=False)
    with use_driver(fake):
        ck = lowbit.compile(VADD, arch="sm_90")
        got: list[object] = []
        start = threading.Barrier(4)

        def worker() -> None:
            start.wait()
            got.append(runtime.load(ck))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(k) for k in got}) == 1 and fake.calls.count("cuModuleLoadDataEx") == 1


def test_stream_handles() -> None:
    from lowbit.binder import Bound
    from lowbit.runtime.launcher import _stream_handle

    b = Bound("cuda:0", (), {}, False)

    class TorchLike:
        cuda_stream = 1234

    class Protocol:
        def __cuda_stream__(self):
            return (0, 99)

    assert _stream_handle(None, b, 0) == 0 and _stream_handle(5, b, 0) == 5
    assert _stream_handle(TorchLike(), b, 0) == 1234 and _stream_handle(Protocol(), b, 0) == 99
    with pytest.raises(LaunchError, match="stream must be an int handle"):
        _stream_handle("default", b, 0)


def test_the_gpu_suites_device_array_test_runs_on_the_stand_in() -> None:
    """tests/runtime/test_gpu.py itself has not run on hardware: at least its DeviceArray path runs here."""
    from tests.runtime import test_gpu

    with use_driver(FakeDriver(cc=(9, 0))):
        test_gpu.test_device_arrays_and_a_size_specialised_on_div16()


def test_the_real_bindings_accept_the_argument_types_lowbit_passes() -> None:
    """Without a driver, cuda-bindings marshal every argument before failing to load libcuda: a TypeError here
    would be a bug the first GPU session would hit (one was: the JIT log buffer must be bytes-like)."""
    d = require_module("cuda.bindings.driver")
    if runtime.status().available:  # pragma: no cover - on a GPU these bogus handles would really be used
        pytest.skip("a GPU is present")
    from types import SimpleNamespace

    from lowbit.binder import Bound
    from lowbit.runtime.driver import Driver
    from lowbit.runtime.launcher import GPUKernel, _Buffers, _param_struct

    drv = Driver(d)
    drv._tls.ordinal = 0  # "already current": go straight to the call under test
    ck = lowbit.compile(VADD, arch="sm_90")
    k = object.__new__(GPUKernel)  # the real methods on hand-set state (no device to load on)
    k.drv, k.name, k.compiled, k.device = drv, ck.kernel_name, ck, SimpleNamespace(ordinal=0)
    k._struct, k._offsets, k._convs = _param_struct(ck)
    k._tls, k._where, k.function, k.block, k.dynamic_shared = _Buffers(), "cuda:0", d.CUfunction(0), (128, 1, 1), 0
    bound = Bound("cuda:0", (1 << 40, 1 << 40, 1 << 40, 300), {}, False)
    host = np.zeros(16, np.uint8)
    calls = {
        "ptx": lambda: k._load_image("ptx", ck.ptx.encode() + b"\0"),
        "cubin": lambda: k._load_image("cubin", ck.cubin or b"\0" * 16),
        "launch": lambda: k.launch_bound((3,), bound),
        "launch on a stream": lambda: k.launch_bound((3, 2), bound, stream=1234),
        "function attribute": lambda: d.cuFuncGetAttribute(d.CUfunction_attribute.CU_FUNC_ATTRIBUTE_NUM_REGS, k.function),
        "dynamic smem": lambda: d.cuFuncSetAttribute(
            k.function, d.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100_000),
        "copy in": lambda: d.cuMemcpyHtoD(1 << 40, host.ctypes.data, host.nbytes),
        "copy out": lambda: d.cuMemcpyDtoH(host.ctypes.data, 1 << 40, host.nbytes),
        "free": lambda: d.cuMemFree(1 << 40),
    }
    for what, call in calls.items():
        with pytest.raises(Exception) as exc:
            call()
        assert type(exc.value).__name__ == "DynamicLibNotFoundError", (what, exc.value)
