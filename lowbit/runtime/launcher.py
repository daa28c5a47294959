"""Loaded kernels and the launch path: load once per (compiled kernel, device), then bind + pack + ``cuLaunchKernel``.

:class:`GPUKernel` is one compiled kernel loaded on one device (cubin, else
PTX through the driver JIT: :mod:`lowbit.runtime.images`).  Everything a
launch can know in advance is computed at load: the function handle, its
register count and thread limit (a block the registers cannot hold is
refused here, not by ``CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES``), the dynamic
shared-memory attribute, the PTX parameter layout as one ``struct.Struct``,
and a per-thread packed parameter buffer with its ``void*[]`` array.  A
launch is then: bind (the shared :class:`~lowbit.binder.Binder`), one
``pack_into``, the stream, one ``cuLaunchKernel`` -- no allocation, no host
synchronisation, no module load, so it can be captured in a CUDA graph once
the kernel has launched once outside the capture.

:data:`MODULES` is the in-memory loaded-module cache, keyed by the
compile-cache key the kernel was stored under and the device ordinal, and
guarded by a lock (two threads loading one kernel load it once).  The disk
layer under it is the compile cache and its specialisation index
(:mod:`lowbit.compiler.specs`): what a GPU machine loads is what a build
machine compiled.

Streams: an explicit ``stream=`` wins (an ``int`` handle, a
``torch.cuda.Stream``, anything with ``__cuda_stream__``); else, when a torch
CUDA tensor is among the arguments, torch's current stream for the device
(read per launch, so ``with torch.cuda.stream(s):`` and graph capture see the
launch where torch's own ops would go); else the legacy default stream (0).
"""

from __future__ import annotations

import struct
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lowbit.arch import MAX_GRID
from lowbit.binder import Binder, Bound
from lowbit.compiler.driver import CompiledKernel, needs_fp8
from lowbit.errors import LaunchError
from lowbit.ir.program import Program
from lowbit.runtime import images
from lowbit.runtime.driver import CudaError, DeviceInfo, Driver, get_driver, status

__all__ = ["MODULES", "GPUDevice", "GPUKernel", "clear_modules", "clear_with_modules", "device_for", "launch",
           "launch_bound", "load"]

#: load failures after which the next image (PTX after cubin) is tried
_FALLBACK = {"CUDA_ERROR_NO_BINARY_FOR_GPU", "CUDA_ERROR_INVALID_IMAGE", "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
             "CUDA_ERROR_INVALID_PTX", "CUDA_ERROR_INVALID_SOURCE", "CUDA_ERROR_JIT_COMPILER_NOT_FOUND"}  # fmt: skip
_DEFAULT_SHARED = 48 * 1024
_GRID_MAX = MAX_GRID  # the hardware limits, shared with the interpreter and the emulator


@dataclass(frozen=True)
class GPUDevice:
    """A device lowbit can launch on."""

    info: DeviceInfo

    @property
    def ordinal(self) -> int:
        return self.info.ordinal

    def target_for(self, prog: Program) -> str:
        """The target a program is compiled for on this device (the newest portable one it runs; memoised)."""
        key = (self.info.sm, prog.name)
        per = _TARGETS.get(prog)
        if per is None:
            per = _TARGETS[prog] = {}
        got = per.get(key)
        if got is None:
            got = per[key] = images.target_for(self.info.sm, needs_fp8(prog), prog.name)
        return got


_TARGETS: weakref.WeakKeyDictionary[Program, dict[tuple[int, str], str]] = weakref.WeakKeyDictionary()
_DEVICES: dict[str, GPUDevice] = {}


def device_for(bound: Bound | str | int) -> GPUDevice:
    """The GPU the bound arguments live on (or ``"cuda:N"``, or an ordinal); a LaunchError when there is none."""
    where = bound.device if isinstance(bound, Bound) else (f"cuda:{bound}" if isinstance(bound, int) else bound)
    got = _DEVICES.get(where)
    if got is not None:
        return got
    if not where.startswith("cuda:"):
        raise LaunchError(f"the arguments are on {where}, not on a CUDA device")
    st = status()
    if not st.available:
        raise LaunchError(f"the arguments are on {where}, but no GPU is usable here: {st.reason}")
    ordinal = int(where.split(":", 1)[1])
    for info in st.devices:
        if info.ordinal == ordinal:
            got = _DEVICES[where] = GPUDevice(info)
            return got
    raise LaunchError(f"the arguments are on {where}, but the driver sees {len(st.devices)} device(s)")


def _grid(grid: object) -> tuple[int, int, int]:
    if type(grid) is tuple and len(grid) == 2:  # the common case (lowbit.ops' 2-D grids), checked without a loop
        x, y = grid
        if type(x) is int and type(y) is int and 0 < x <= _GRID_MAX[0] and 0 < y <= _GRID_MAX[1]:
            return x, y, 1
    dims = (grid,) if isinstance(grid, int | np.integer) else grid
    if not isinstance(dims, tuple | list) or not 1 <= len(dims) <= 3:
        raise LaunchError(f"the grid must be a positive int or a tuple of 1 to 3 positive ints, got {grid!r}")
    out = [1, 1, 1]
    for i, d in enumerate(dims):
        if not isinstance(d, int | np.integer) or isinstance(d, bool) or not 1 <= d <= _GRID_MAX[i]:
            raise LaunchError(f"grid {tuple(dims)!r}: dimension {i} must be an int in 1..{_GRID_MAX[i]}")
        out[i] = int(d)
    return out[0], out[1], out[2]


def _bf16_bits(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0] >> 16  # v is already a bf16 value: the low half is zero


_SCALAR_FORMATS = {"int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q",
                   "uint64": "Q", "f16": "e", "f32": "f", "f64": "d", "bf16": "H"}  # fmt: skip


def _param_struct(compiled: CompiledKernel) -> tuple[struct.Struct, tuple[int, ...], tuple[tuple[int, object], ...]]:
    """The packed parameter buffer's layout: (struct, slot offsets, converters by index), checked against the PTX."""
    ptx_params = images.entry_params(compiled.ptx, compiled.kernel_name)
    if len(ptx_params) != len(compiled.params):
        raise LaunchError(f"{compiled.kernel_name}: the PTX has {len(ptx_params)} parameters, the program "
                          f"{len(compiled.params)}")  # fmt: skip
    fmt, pos, offsets, convs = "<", 0, [], []
    for i, (spec, pp) in enumerate(zip(compiled.params, ptx_params)):
        pad = -pos % pp.align
        fmt += "x" * pad
        pos += pad
        offsets.append(pos)
        if spec.kind == "pointer":
            if pp.size != 8:
                raise LaunchError(f"{compiled.kernel_name}: pointer '{spec.name}' is a .{pp.type} PTX parameter")
            fmt += "Q"
        elif spec.dtype == "bool":
            fmt += {1: "B", 2: "H", 4: "I", 8: "Q"}[pp.size]
            convs.append((i, int))
        else:
            code = _SCALAR_FORMATS.get(spec.dtype)
            if code is None or struct.calcsize("<" + code) != pp.size:
                raise LaunchError(f"{compiled.kernel_name}: scalar '{spec.name}' ({spec.dtype}) does not fit its "
                                  f".{pp.type} PTX parameter")  # fmt: skip
            fmt += code
            if spec.dtype == "bf16":
                convs.append((i, _bf16_bits))
        pos += pp.size
    return struct.Struct(fmt), tuple(offsets), tuple(convs)


class _Buffers(threading.local):
    """This thread's packed parameters and the ``void*[]`` array pointing into them (allocated once)."""

    data: np.ndarray
    params: np.ndarray
    address: int


class GPUKernel:
    """A compiled kernel loaded on one device; call it as ``k(grid, *args, stream=None)``."""

    def __init__(self, compiled: CompiledKernel, device: GPUDevice, drv: Driver) -> None:
        self.compiled, self.device, self.drv = compiled, device, drv
        self.name = compiled.kernel_name
        self.binder: Binder = compiled.binder
        self._struct, self._offsets, self._convs = _param_struct(compiled)
        self._tls = _Buffers()
        self._where = f"cuda:{device.ordinal}"
        d = drv.d
        drv.activate(device.ordinal)
        tried: list[str] = []
        for kind, data in images.choose_images(self.name, compiled.arch, compiled.ptx, compiled.cubin, device.info.sm):
            try:
                self.module = self._load_image(kind, data)
                self.image = kind
                break
            except CudaError as exc:
                if exc.code not in _FALLBACK:
                    raise
                tried.append(f"{kind}: {exc}")
        else:
            raise LaunchError(f"kernel {self.name}: no image loads on {device.info.name}: " + "; ".join(tried))
        self.image_errors = tuple(tried)
        self.function = drv.check(d.cuModuleGetFunction(self.module, self.name.encode()), "cuModuleGetFunction")  # type: ignore[attr-defined]
        fa = d.CUfunction_attribute  # type: ignore[attr-defined]
        self.registers = int(drv.check(d.cuFuncGetAttribute(fa.CU_FUNC_ATTRIBUTE_NUM_REGS, self.function),  # type: ignore[attr-defined, arg-type]
                                       "cuFuncGetAttribute(NUM_REGS)"))  # fmt: skip
        self.max_threads = int(drv.check(d.cuFuncGetAttribute(fa.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, self.function),  # type: ignore[attr-defined, arg-type]
                                         "cuFuncGetAttribute(MAX_THREADS_PER_BLOCK)"))  # fmt: skip
        self.block = (compiled.threads_per_block, 1, 1)
        if compiled.threads_per_block > self.max_threads:
            raise LaunchError(f"kernel {self.name} needs {compiled.threads_per_block} threads per block, but with "
                              f"{self.registers} registers per thread {device.info.name} runs at most "
                              f"{self.max_threads}: use fewer warps")  # fmt: skip
        self.dynamic_shared = compiled.dynamic_shared
        if self.dynamic_shared > _DEFAULT_SHARED:
            if self.dynamic_shared > device.info.max_shared_optin:
                raise LaunchError(f"kernel {self.name} needs {self.dynamic_shared} bytes of dynamic shared memory; "
                                  f"{device.info.name} allows {device.info.max_shared_optin}")  # fmt: skip
            drv.check(d.cuFuncSetAttribute(self.function, fa.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,  # type: ignore[attr-defined]
                                           self.dynamic_shared), "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)")  # fmt: skip

    def __repr__(self) -> str:
        return f"<GPUKernel {self.name} {self.compiled.arch} ({self.image}) on {self._where}>"

    def _load_image(self, kind: str, data: bytes) -> object:
        d, drv = self.drv.d, self.drv
        image = np.frombuffer(data, np.uint8).copy()
        if kind == "cubin":
            return drv.check(d.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData(cubin)")  # type: ignore[attr-defined]
        log = bytearray(8192)  # the bindings pass a bytes-like object as the JIT's char* log buffer
        opts = [d.CUjit_option.CU_JIT_ERROR_LOG_BUFFER, d.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]  # type: ignore[attr-defined]
        result = d.cuModuleLoadDataEx(image.ctypes.data, len(opts), opts, [log, len(log)])  # type: ignore[attr-defined]
        err = result[0]
        if int(err):
            text = bytes(log).split(b"\0", 1)[0].decode(errors="replace").strip()
            raise drv.fail(err, "cuModuleLoadDataEx(ptx)", text[:400])
        return result[1]

    def _buffers(self) -> _Buffers:
        tls = self._tls
        if not hasattr(tls, "address"):
            tls.data = np.zeros(max(self._struct.size, 8), np.uint8)
            base = int(tls.data.ctypes.data)
            tls.params = np.array([base + off for off in self._offsets] or [0], np.uint64)
            tls.address = int(tls.params.ctypes.data)
        return tls

    def __call__(self, grid: object, *args: object, stream: object = None) -> None:
        """Bind ``args`` (parameter order) with this kernel's binder and launch; nothing is synchronised."""
        self.launch_bound(grid, self.binder.bind_values(args), stream)

    def launch_bound(self, grid: object, bound: Bound, stream: object = None) -> None:
        if bound.device != self._where:
            raise LaunchError(f"kernel {self.name} is loaded on {self._where}, but the arguments are on {bound.device}")
        gx, gy, gz = _grid(grid)
        values = bound.values
        if self._convs:
            values = list(values)
            for i, f in self._convs:
                values[i] = f(values[i])  # type: ignore[operator]
        buf = self._buffers()
        self._struct.pack_into(buf.data, 0, *values)
        handle = _stream_handle(stream, bound, self.device.ordinal)
        self.drv.activate(self.device.ordinal)
        err = self.drv.d.cuLaunchKernel(self.function, gx, gy, gz, self.block[0], 1, 1, self.dynamic_shared,  # type: ignore[attr-defined]
                                        handle, buf.address, 0)[0]  # fmt: skip
        if int(err):
            raise self.drv.fail(err, "cuLaunchKernel", f"kernel {self.name}, grid {(gx, gy, gz)}, block {self.block}")


def _stream_handle(stream: object, bound: Bound, ordinal: int) -> int:
    if stream is None:
        if not bound.torch:
            return 0
        torch = sys.modules["torch"]
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # the public call, without building a Stream
        return int(raw(ordinal)) if raw is not None else int(torch.cuda.current_stream(ordinal).cuda_stream)
    if isinstance(stream, int):
        return stream
    handle = getattr(stream, "cuda_stream", None)  # torch.cuda.Stream
    if handle is not None:
        return int(handle)
    proto = getattr(stream, "__cuda_stream__", None)  # the CUDA stream protocol: () -> (version, handle)
    if proto is not None:
        return int(proto()[1])
    try:
        return int(stream)  # type: ignore[call-overload]  # a cuda-bindings CUstream
    except (TypeError, ValueError):
        raise LaunchError(f"stream must be an int handle, a torch.cuda.Stream or have __cuda_stream__, "
                          f"got {type(stream).__name__}") from None  # fmt: skip


#: the loaded-module cache: (compile-cache key, device ordinal) -> GPUKernel
MODULES: dict[tuple[str, int], GPUKernel] = {}
_MODULES_LOCK = threading.Lock()
#: callbacks of caches built on loaded kernels (lowbit.ops keeps its variants by facts): cleared with MODULES
_DERIVED: list[Callable[[], None]] = []


def clear_with_modules(callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the loaded-module cache is cleared (a cache of GPUKernels must not outlive it)."""
    if callback not in _DERIVED:
        _DERIVED.append(callback)


def clear_modules() -> None:
    """Forget every loaded kernel and device (the driver changed: :class:`lowbit.runtime.driver.use_driver`)."""
    MODULES.clear()
    _DEVICES.clear()
    for callback in _DERIVED:
        callback()


def load(compiled: CompiledKernel, device: int | GPUDevice = 0) -> GPUKernel:
    """``compiled`` loaded on ``device`` (memoised per compile-cache key and device)."""
    dev = device if isinstance(device, GPUDevice) else device_for(int(device))
    key = (compiled.key or compiled.spec or compiled.ptx, dev.ordinal)
    got = MODULES.get(key)
    if got is None or not _serves(got, compiled):
        with _MODULES_LOCK:
            got = MODULES.get(key)
            if got is None or not _serves(got, compiled):  # a module loaded from another kernel: reload
                got = MODULES[key] = GPUKernel(compiled, dev, get_driver())
    return got


def _serves(loaded: GPUKernel, compiled: CompiledKernel) -> bool:
    """Whether a loaded module is ``compiled``'s: the same object, or the same kernel, PTX and cubin."""
    c = loaded.compiled
    return c is compiled or (c.kernel_name == compiled.kernel_name and c.ptx == compiled.ptx
                             and c.cubin == compiled.cubin)


def launch_bound(compiled: CompiledKernel, grid: object, bound: Bound, stream: object = None) -> None:
    """Launch arguments a binder already checked (``kernel[grid](...)`` binds once for facts and backend)."""
    load(compiled, device_for(bound)).launch_bound(grid, bound, stream)


def launch(compiled: CompiledKernel, grid: object, args: Sequence[object], stream: object = None) -> None:
    """Bind ``args`` (parameter order) with the compiled program's binder and launch on their device."""
    bound = compiled.binder.bind_values(tuple(args))
    launch_bound(compiled, grid, bound, stream)
