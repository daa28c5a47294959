"""The one argument binder: every bad argument is a LaunchError naming it, raised before anything runs,
with the same message on every backend, and the inputs left exactly as they were."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit.binder import Binder
from lowbit.errors import LaunchError
from tests.conftest import require_module

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"binder_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VADD = _example("01_vector_add").vector_add
W4 = _example("04_w4a16_matmul").w4a16_matmul
M, N, K = 37, 100, 136


class FakeCUDAArray:
    """A device array by protocol only (no memory behind it): enough to make the binder say 'cuda:0'."""

    def __init__(self, shape: tuple[int, ...], dtype: object, address: int = 1 << 40, strides: tuple | None = None):
        self.dtype = np.dtype(dtype)
        self.__cuda_array_interface__ = {"shape": shape, "typestr": self.dtype.str, "data": (address, False),
                                         "version": 3, "strides": strides}


def _vadd_args(n: int = 300) -> list[object]:
    rng = np.random.default_rng(n)
    return [rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32),
            np.full(n, np.nan, np.float32), n]


def _w4_args() -> list[object]:
    rng = np.random.default_rng(4)
    return [rng.standard_normal((M, K)).astype(np.float16), rng.integers(0, 2**32, (K // 8, N), dtype=np.uint32),
            rng.standard_normal((2, N)).astype(np.float16), rng.integers(0, 16, (2, N), dtype=np.uint8),
            np.full((M, N), np.nan, np.float16), M, N, K]


def _snapshot(args: list[object]) -> list[object]:
    return [a.tobytes() if isinstance(a, np.ndarray) else a for a in args]


def _unchanged(args: list[object], snap: list[object]) -> bool:
    return all(a.tobytes() == s for a, s in zip(args, snap) if isinstance(a, np.ndarray))


def _launchers(kernel: object, grid: tuple[int, ...]):
    return {"interpreter": kernel.interpret[grid], "emulator": kernel[grid]}


# --------------------------------------------------------------------------- numpy: bad arguments

BAD_NUMPY = {
    "not an array": (VADD, lambda a: a.__setitem__(0, [1.0] * 300),
                     "argument 'x_ptr': expected an array for ptr<f32> (a numpy array, a torch tensor or a device "
                     "array), got list"),
    "wrong float width": (VADD, lambda a: a.__setitem__(1, a[1].astype(np.float64)),
                          "argument 'y_ptr': array dtype float64 does not hold f32 elements (expected float32)"),
    "ints for floats": (VADD, lambda a: a.__setitem__(0, np.zeros(300, np.int32)),
                        "argument 'x_ptr': array dtype int32 does not hold f32 elements (expected float32)"),
    "strided view": (VADD, lambda a: a.__setitem__(0, np.zeros(600, np.float32)[::2]),
                     "argument 'x_ptr': the array must be C-contiguous (np.ascontiguousarray / tensor.contiguous())"),
    "read-only output": (VADD, lambda a: a[2].setflags(write=False),
                         "argument 'out_ptr': the array is read-only, but the kernel stores to it"),
    "too short": (VADD, lambda a: a.__setitem__(2, np.zeros(299, np.float32)),
                  "argument 'out_ptr': the kernel views it as f32[300] with strides [1], which needs 1200 bytes, "
                  "but the array has 1196"),
    "int32 overflow": (VADD, lambda a: a.__setitem__(3, 2**31),
                       "argument 'n': 2147483648 does not fit in int32 (range -2147483648..2147483647)"),
    "float for an int": (VADD, lambda a: a.__setitem__(3, 300.0), "argument 'n': expected an int for int32, got 300.0"),
    "mixed devices": (VADD, lambda a: a.__setitem__(1, FakeCUDAArray((300,), np.float32)),
                      "argument 'y_ptr' is on cuda:0 but 'x_ptr' is on host: every array argument must be on one device"),
    "packed words too few": (W4, lambda a: a.__setitem__(1, a[1][:-1].copy()),
                             "argument 'w_ptr': the kernel views it as uint32[17, 100] with strides [100, 1], which "
                             "needs 6800 bytes, but the array has 6400"),
    "zeros as floats": (W4, lambda a: a.__setitem__(3, a[3].astype(np.float32)[:, :]),
                        "argument 'z_ptr': array dtype float32 does not hold uint8 elements (expected uint8)"),
    "scales one group short": (W4, lambda a: a.__setitem__(2, a[2][:1].copy()),
                               "argument 's_ptr': the kernel views it as f16[2, 100] with strides [100, 1], which "
                               "needs 400 bytes, but the array has 200"),
    "f16 output as int16": (W4, lambda a: a.__setitem__(4, np.zeros((M, N), np.int16)),
                            "argument 'c_ptr': array dtype int16 does not hold f16 elements (expected float16)"),
}


@pytest.mark.parametrize("case", sorted(BAD_NUMPY))
def test_bad_numpy_argument_is_refused_identically_everywhere(case: str) -> None:
    kernel, mutate, message = BAD_NUMPY[case]
    grid = (3,) if kernel is VADD else (3, 4)
    for backend, launch in _launchers(kernel, grid).items():
        args = _vadd_args() if kernel is VADD else _w4_args()
        mutate(args)
        snap = _snapshot(args)
        with pytest.raises(LaunchError) as exc:
            launch(*args)
        assert str(exc.value) == message, backend
        assert _unchanged(args, snap), backend


def test_specialised_programs_refuse_arguments_without_their_facts() -> None:
    prog = VADD.specialize().with_facts({"x_ptr": 16, "n": 16})
    b = Binder.of(prog)
    raw = np.zeros(1300, np.uint8)
    off = (-raw.ctypes.data) % 16 + 4
    x = raw[off : off + 1280].view(np.float32)
    args = {"x_ptr": x, "y_ptr": np.zeros(320, np.float32), "out_ptr": np.zeros(320, np.float32), "n": 320}
    with pytest.raises(LaunchError, match=r"argument 'x_ptr': the kernel was specialised on a 16-byte aligned address, "
                                          r"but the array starts at 0x[0-9a-f]*4$"):
        b.bind(args)
    with pytest.raises(LaunchError, match="argument 'n': the kernel was specialised on a multiple of 16, got 300"):
        b.bind({**args, "n": 300})


def test_read_only_inputs_are_fine_and_facts_are_detected() -> None:
    x, y, out, n = _vadd_args(304)
    x.setflags(write=False)
    y.setflags(write=False)
    bound = Binder.of(VADD.specialize()).bind({"x_ptr": x, "y_ptr": y, "out_ptr": out, "n": n})
    assert bound.device == "host" and bound.values[0] is x and bound.values[3] == 304
    assert bound.facts["n"] == 16 and Binder.of(VADD.specialize()).written == ("out_ptr",)
    VADD[(3,)](x, y, out, n)
    np.testing.assert_array_equal(out, x + y)


def test_one_binder_per_program_and_no_vm_text_parsed_per_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y, out, n = _vadd_args(200)
    VADD[(2,)](x, y, out, n)  # compiled (and its PTX parsed) once
    prog = VADD.last_launch.program
    assert Binder.of(prog) is Binder.of(prog)
    import lowbit.emu.parser
    import lowbit.ir.parser

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("a launch parsed text")

    monkeypatch.setattr(lowbit.ir.parser, "parse", refuse)
    monkeypatch.setattr(lowbit.emu.parser, "parse", refuse)
    for _ in range(2):
        out[:] = np.nan
        VADD[(2,)](x, y, out, n)
        np.testing.assert_array_equal(out, x + y)
        ck = VADD.compiled(VADD.last_launch.program, None)
        out[:] = np.nan
        lowbit.compiler.run_on_emulator(ck, (2,), [x, y, out, n])
        np.testing.assert_array_equal(out, x + y)


def test_a_device_array_without_a_gpu_is_an_error_naming_the_device() -> None:
    from lowbit import runtime

    if runtime.status().available:  # pragma: no cover - a GPU machine
        pytest.skip("a GPU is present")
    args = [FakeCUDAArray((300,), np.float32) for _ in range(3)] + [300]
    assert lowbit.launch.select_backend(VADD, dict(zip(("x_ptr", "y_ptr", "out_ptr", "n"), args))) == "gpu"
    with pytest.raises(LaunchError, match="the arguments are on cuda:0, but no GPU is usable here: "):
        VADD[(3,)](*args)
    with pytest.raises(LaunchError, match="the interpreter runs on host arrays .* but the arguments are on cuda:0"):
        VADD.interpret[(3,)](*args)


def test_a_strided_device_array_is_refused() -> None:
    b = Binder.of(VADD.specialize())
    good = [FakeCUDAArray((300,), np.float32, 1 << 40) for _ in range(3)]
    bound = b.bind_values([*good, 300])
    assert bound.device == "cuda:0" and bound.values[:3] == (1 << 40,) * 3 and bound.facts["x_ptr"] == 16
    with pytest.raises(LaunchError, match="argument 'y_ptr': the array must be C-contiguous"):
        b.bind_values([good[0], FakeCUDAArray((300,), np.float32, 1 << 40, strides=(8,)), good[2], 300])
    with pytest.raises(LaunchError, match="argument 'out_ptr': array dtype float16 does not hold f32"):
        b.bind_values([good[0], good[1], FakeCUDAArray((600,), np.float16), 300])


# --------------------------------------------------------------------------- torch


def _torch():
    return require_module("torch")


def test_torch_cpu_tensors_run_in_place_on_every_host_backend() -> None:
    torch = _torch()
    g = torch.Generator().manual_seed(0)
    n = 300
    for backend, launch in _launchers(VADD, (3,)).items():
        x, y = torch.randn(n, generator=g), torch.randn(n, generator=g)
        out = torch.full((n,), float("nan"))
        launch(x, y, out, n)
        assert torch.equal(out, x + y), backend
    # bf16 / f16 tensors through example 04 (f16) on the emulator, against the interpreter
    a = _w4_args()
    ta = [torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in a]
    W4[(3, 4)](*ta)
    ref = [v.copy() if isinstance(v, np.ndarray) else v for v in a]
    ref[4][:] = np.nan
    W4.interpret[(3, 4)](*ref)
    got = ta[4].numpy().astype(np.float64)
    assert not np.isnan(got).any()  # written in place through the tensor
    np.testing.assert_allclose(got, ref[4].astype(np.float64), rtol=2**-10, atol=2**-14)  # f32 sums in another order


def _torch_bad_cases(torch):
    n = 300
    return {
        "f16 tensor for f32": (lambda a: a.__setitem__(0, a[0].half()),
                               "argument 'x_ptr': array dtype torch.float16 does not hold f32 elements (expected float32)"),
        "transposed": (lambda a: a.__setitem__(2, torch.zeros(2, n // 2).t()),
                       "argument 'out_ptr': the array must be C-contiguous (np.ascontiguousarray / tensor.contiguous())"),
        "meta tensor": (lambda a: a.__setitem__(1, torch.zeros(n, device="meta")),
                        "argument 'y_ptr': a meta tensor has no data to launch on"),
        "sparse": (lambda a: a.__setitem__(0, torch.zeros(n).to_sparse()),
                   "argument 'x_ptr': a torch.sparse_coo tensor; pass a dense (strided) tensor"),
        "tensor scalar": (lambda a: a.__setitem__(3, torch.tensor(n)),
                          "argument 'n': a tensor for the int32 scalar; pass a Python number (reading a device tensor "
                          "would synchronise)"),
        "too short": (lambda a: a.__setitem__(2, torch.zeros(n - 8)),
                      "argument 'out_ptr': the kernel views it as f32[300] with strides [1], which needs 1200 bytes, "
                      "but the array has 1168"),
        "bool tensor": (lambda a: a.__setitem__(1, torch.zeros(n, dtype=torch.bool)),
                        "argument 'y_ptr': array dtype torch.bool does not hold f32 elements (expected float32)"),
    }


@pytest.mark.parametrize("case", ["f16 tensor for f32", "transposed", "meta tensor", "sparse", "tensor scalar",
                                  "too short", "bool tensor"])
def test_bad_torch_argument_is_refused_identically_everywhere(case: str) -> None:
    torch = _torch()
    mutate, message = _torch_bad_cases(torch)[case]
    for backend, launch in _launchers(VADD, (3,)).items():
        g = torch.Generator().manual_seed(1)
        args = [torch.randn(300, generator=g), torch.randn(300, generator=g), torch.full((300,), 5.0), 300]
        mutate(args)
        snap = [a.clone() if isinstance(a, torch.Tensor) and a.layout is torch.strided and a.device.type == "cpu" else None
                for a in args]
        with pytest.raises(LaunchError) as exc:
            launch(*args)
        assert str(exc.value) == message, backend
        for a, s in zip(args, snap):
            if s is not None:
                assert torch.equal(a, s), backend
