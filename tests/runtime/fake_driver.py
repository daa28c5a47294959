"""A stand-in for ``cuda.bindings.driver`` that runs launches on lowbit's PTX emulator.

Same function names and return shapes as cuda-bindings (``(CUresult, *values)``),
so :class:`lowbit.runtime.driver.Driver` runs unchanged on it.  It keeps its own
"device memory" (numpy buffers at 256-byte aligned fake addresses), refuses
cubins unless told otherwise (so the PTX fallback is exercised), JIT-loads PTX
by parsing it, and executes ``cuLaunchKernel`` by reading the packed parameter
buffer through the ``void*[]`` array exactly as the driver would, mapping
device addresses back to its buffers and running the PTX on ``lowbit.emu``.
What it cannot check is the real bindings' marshalling and the hardware.
"""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import numpy as np

SUCCESS, INVALID_VALUE, NO_DEVICE, NO_BINARY, INVALID_HANDLE, LAUNCH_FAILED = 0, 1, 100, 209, 400, 719
NAMES = {0: "CUDA_SUCCESS", 1: "CUDA_ERROR_INVALID_VALUE", 100: "CUDA_ERROR_NO_DEVICE",
         209: "CUDA_ERROR_NO_BINARY_FOR_GPU", 400: "CUDA_ERROR_INVALID_HANDLE", 719: "CUDA_ERROR_LAUNCH_FAILED"}


def _enum(*names: str) -> SimpleNamespace:
    return SimpleNamespace(**{n: n for n in names})


class FakeDriver:
    CUdevice_attribute = _enum("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR", "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR",
                               "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT",
                               "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN")
    CUfunction_attribute = _enum("CU_FUNC_ATTRIBUTE_NUM_REGS", "CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK",
                                 "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES")
    CUjit_option = _enum("CU_JIT_ERROR_LOG_BUFFER", "CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES")

    def __init__(self, cc: tuple[int, int] = (9, 0), accept_cubin: bool = False, init_result: int = SUCCESS,
                 max_threads: int = 1024, run: bool = True, record: bool = True) -> None:
        self.cc, self.accept_cubin, self.init_result = cc, accept_cubin, init_result
        self.max_threads, self.run, self.record = max_threads, run, record
        self.calls: list[str] = []
        self.launches: list[dict] = []
        self.optin: dict[int, int] = {}  # function handle -> MAX_DYNAMIC_SHARED_SIZE_BYTES set on it
        self.mem: dict[int, np.ndarray] = {}
        self._next = 1 << 32
        self.modules: dict[int, tuple[str, object]] = {}
        self.functions: dict[int, tuple[int, str]] = {}
        self.current = 0
        self.fail_launch = 0

    # ------------------------------------------------------------------ errors / init / devices
    def cuGetErrorName(self, err):
        return SUCCESS, NAMES.get(int(err), f"CUDA_ERROR_{int(err)}").encode()

    def cuGetErrorString(self, err):
        return SUCCESS, f"fake driver error {int(err)}".encode()

    def cuInit(self, flags):
        self.calls.append("cuInit")
        return (self.init_result,)

    def cuDeviceGetCount(self):
        return SUCCESS, 1

    def cuDriverGetVersion(self):
        return SUCCESS, 13000

    def cuDeviceGet(self, i):
        return (SUCCESS, 0) if i == 0 else (INVALID_VALUE, None)

    def cuDeviceGetName(self, n, dev):
        return SUCCESS, b"Fake GPU\0\0"

    def cuDeviceTotalMem(self, dev):
        return SUCCESS, 1 << 30

    def cuDeviceGetAttribute(self, attr, dev):
        return SUCCESS, {"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR": self.cc[0],
                         "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR": self.cc[1],
                         "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT": 4,
                         "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN": 227 * 1024}[attr]

    def cuDevicePrimaryCtxRetain(self, dev):
        self.calls.append("cuDevicePrimaryCtxRetain")
        return SUCCESS, 77

    def cuCtxGetCurrent(self):
        return SUCCESS, self.current

    def cuCtxSetCurrent(self, ctx):
        self.calls.append("cuCtxSetCurrent")
        self.current = int(ctx)
        return (SUCCESS,)

    def cuCtxSynchronize(self):
        return (SUCCESS,)

    def cuStreamSynchronize(self, stream):
        return (SUCCESS,)

    # ------------------------------------------------------------------ memory
    def cuMemAlloc(self, n):
        addr = self._next
        self.mem[addr] = np.zeros(int(n), np.uint8)
        self._next += (int(n) + 4096 + 255) // 256 * 256
        return SUCCESS, addr

    def cuMemFree(self, ptr):
        return (SUCCESS,) if self.mem.pop(int(ptr), None) is not None else (INVALID_VALUE,)

    def _region(self, addr: int, n: int) -> np.ndarray:
        for base, buf in self.mem.items():
            if base <= addr and addr + n <= base + buf.size:
                return buf[addr - base : addr - base + n]
        raise AssertionError(f"fake driver: {n} bytes at {addr:#x} are not allocated")

    def cuMemcpyHtoD(self, dst, src, n):
        ctypes.memmove(self._region(int(dst), n).ctypes.data, int(src), n)
        return (SUCCESS,)

    def cuMemcpyDtoH(self, dst, src, n):
        ctypes.memmove(int(dst), self._region(int(src), n).ctypes.data, n)
        return (SUCCESS,)

    # ------------------------------------------------------------------ modules
    def cuModuleLoadData(self, image):
        self.calls.append("cuModuleLoadData")
        if not self.accept_cubin:
            return NO_BINARY, None
        h = len(self.modules) + 1
        self.modules[h] = ("cubin", None)
        return SUCCESS, h

    def cuModuleLoadDataEx(self, image, n, opts, values):
        self.calls.append("cuModuleLoadDataEx")
        text = ctypes.string_at(int(image)).decode()
        h = len(self.modules) + 1
        self.modules[h] = (text, None)  # parsed (with lark) only when a launch runs it
        return SUCCESS, h

    def cuModuleGetFunction(self, mod, name):
        self.calls.append("cuModuleGetFunction")
        if int(mod) not in self.modules:
            return INVALID_HANDLE, None
        h = 1000 + len(self.functions)
        self.functions[h] = (int(mod), name.decode())
        return SUCCESS, h

    def cuFuncGetAttribute(self, attr, fn):
        return SUCCESS, {"CU_FUNC_ATTRIBUTE_NUM_REGS": 40, "CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK": self.max_threads}[attr]

    def cuFuncSetAttribute(self, fn, attr, value):
        self.calls.append(f"cuFuncSetAttribute({attr}={value})")
        if attr == "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES":
            self.optin[int(fn)] = int(value)  # launches of fn may now pass that much dynamic shared memory
        return (SUCCESS,)

    # ------------------------------------------------------------------ launch
    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, smem, stream, params, extra):
        if not self.record:  # a no-op driver, for timing the host side of the launch path
            return (SUCCESS,)
        self.calls.append("cuLaunchKernel")
        if self.fail_launch:
            return (self.fail_launch,)
        mod, name = self.functions[int(fn)]
        text, _ = self.modules[mod]
        from lowbit.runtime.images import entry_params  # a regex: no lark

        sizes = [p.size for p in entry_params(text, name)]
        ptrs = (ctypes.c_uint64 * len(sizes)).from_address(int(params))
        raw = [ctypes.string_at(int(ptrs[i]), n) for i, n in enumerate(sizes)]
        self.launches.append(dict(name=name, grid=(gx, gy, gz), block=(bx, by, bz), smem=smem, stream=stream, raw=raw))
        if not self.run:
            return (SUCCESS,)
        from lowbit import emu
        from lowbit.emu.launch import _SCALAR_KINDS
        from lowbit.emu.parser import parse

        module = self.modules[mod][1]
        if module is None:  # parsed (with lark) once per loaded module
            module = parse(text)
            self.modules[mod] = (text, module)
        entry = module.entry(name)

        args = []
        for p, b in zip(entry.params, raw):
            if p.type in ("u64", "b64", "s64") and p.ptr_space is not None:
                addr = int.from_bytes(b, "little")
                base = max((k for k in self.mem if k <= addr), default=None)
                if base is None or addr - base > self.mem[base].size:
                    raise AssertionError(f"fake driver: pointer {p.name} = {addr:#x} is in no allocated buffer")
                args.append(self.mem[base][addr - base :])
            else:
                args.append(np.frombuffer(b, _SCALAR_KINDS[p.type][-1])[0])
        emu.launch(module, name, (gx, gy, gz), (bx, by, bz), args, shared_bytes=smem,
                   max_dynamic_shared=self.optin.get(int(fn)))
        return (SUCCESS,)


class LoggedFakeDriver(FakeDriver):
    """The stand-in driver with every ``cu*`` call appended to ``log`` (memory, copies and synchronisation
    included), so a test can assert what a launch path calls -- e.g. exactly one ``cuLaunchKernel`` and no
    ``cuMemAlloc`` / ``cuStreamSynchronize`` per op call.  A subclass, so timing runs on the plain stand-in do
    not pay for the logging."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.log: list[str] = []
        super().__init__(*args, **kwargs)

    def __getattribute__(self, name: str):
        attr = object.__getattribute__(self, name)
        if name.startswith("cu") and callable(attr):
            object.__getattribute__(self, "log").append(name)
        return attr
