"""The CUDA driver, through ``cuda.bindings.driver`` (cuda-python, the ``gpu`` extra), every result checked.

Only this module touches the bindings.  :class:`Driver` wraps a module with
the driver API's Python signatures (each call returns ``(CUresult, *values)``);
the real one is ``cuda.bindings.driver``, tests pass a stand-in with the same
names to check the call sequence without a GPU.  Every non-success result is
a :class:`CudaError` -- a :class:`~lowbit.errors.LaunchError` naming the call
and carrying the driver's own name and message for the code.

No GPU is a normal state, detected once per process by :func:`status`:
``cuda.bindings`` not installed, ``cuInit`` raising (cuda-python raises
``DynamicLibNotFoundError`` when there is no driver library: an exception, not
a ``CUresult``), ``cuInit`` failing (``CUDA_ERROR_NO_DEVICE``...), or zero
devices.  Each is a :class:`GPUStatus` with ``available=False`` and the
reason; nothing crashes.

Contexts: lowbit always works in the device's **primary context**
(``cuDevicePrimaryCtxRetain``), made current on the calling thread when it
is not already.  That is torch's context (torch uses the primary context),
so modules lowbit loads and memory it allocates are usable from torch, CuPy
and the CUDA runtime alike; without torch it is simply the context lowbit
retains.  (A private ``cuCtxCreate`` context would isolate lowbit's modules
and buffers from every other library on the device: rejected.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lowbit.errors import LaunchError

__all__ = ["CudaError", "DeviceInfo", "Driver", "GPUStatus", "get_driver", "status", "use_driver"]


class CudaError(LaunchError):
    """A CUDA driver call failed: ``call`` is the function, ``code`` the driver's name for the result."""

    def __init__(self, message: str, call: str = "", code: str = "") -> None:
        super().__init__(message)
        self.call, self.code = call, code


@dataclass(frozen=True)
class DeviceInfo:
    ordinal: int
    name: str
    cc: tuple[int, int]
    multiprocessors: int
    max_shared_optin: int
    total_memory: int

    @property
    def sm(self) -> int:
        return self.cc[0] * 10 + self.cc[1]


@dataclass(frozen=True)
class GPUStatus:
    """Whether this process can launch on a GPU, and if not, why (one line)."""

    available: bool
    reason: str
    driver_version: str = ""
    bindings_version: str = ""
    devices: tuple[DeviceInfo, ...] = ()

    def __str__(self) -> str:
        if not self.available:
            return f"no GPU ({self.reason})"
        names = ", ".join(f"{d.ordinal}: {d.name} (sm_{d.sm}, {d.multiprocessors} SMs)" for d in self.devices)
        return f"{len(self.devices)} GPU(s) [{names}], CUDA driver {self.driver_version}, cuda-bindings {self.bindings_version}"


class Driver:
    """The driver calls lowbit makes, checked; one per process (:func:`get_driver`)."""

    def __init__(self, d: object) -> None:
        self.d = d
        self._primary: dict[int, object] = {}
        self._devices: dict[int, object] = {}
        self._lock = threading.Lock()
        self._tls = threading.local()
        attr = d.CUdevice_attribute  # type: ignore[attr-defined]
        self._attr = attr

    # ----------------------------------------------------------------------- results

    def error_text(self, err: object) -> tuple[str, str]:
        try:
            _, name = self.d.cuGetErrorName(err)  # type: ignore[attr-defined]
            _, msg = self.d.cuGetErrorString(err)  # type: ignore[attr-defined]
            return (name.decode() if isinstance(name, bytes) else str(name)), (msg.decode() if isinstance(msg, bytes) else str(msg))
        except Exception:  # noqa: BLE001 - an unknown code still gets reported
            return f"CUresult {int(err)}", ""  # type: ignore[call-overload]

    def fail(self, err: object, call: str, detail: str = "") -> CudaError:
        name, msg = self.error_text(err)
        extra = f" ({detail})" if detail else ""
        return CudaError(f"{call} failed: {name}: {msg}{extra}", call, name)

    def check(self, result: object, call: str) -> object:
        """Raise :class:`CudaError` unless ``result[0]`` is success; return the single value (or tuple, or None)."""
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err):  # type: ignore[call-overload]
            raise self.fail(err, call)
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    # ----------------------------------------------------------------------- devices and contexts

    def device(self, ordinal: int) -> object:
        dev = self._devices.get(ordinal)
        if dev is None:
            dev = self._devices[ordinal] = self.check(self.d.cuDeviceGet(ordinal), "cuDeviceGet")  # type: ignore[attr-defined]
        return dev

    def attribute(self, name: str, ordinal: int) -> int:
        return int(self.check(self.d.cuDeviceGetAttribute(getattr(self._attr, name), self.device(ordinal)),  # type: ignore[attr-defined, arg-type]
                              f"cuDeviceGetAttribute({name})"))  # fmt: skip

    def info(self, ordinal: int) -> DeviceInfo:
        raw = self.check(self.d.cuDeviceGetName(256, self.device(ordinal)), "cuDeviceGetName")  # type: ignore[attr-defined]
        name = bytes(raw).split(b"\0", 1)[0].decode(errors="replace")  # type: ignore[arg-type]
        cc = (self.attribute("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR", ordinal),
              self.attribute("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR", ordinal))  # fmt: skip
        total = int(self.check(self.d.cuDeviceTotalMem(self.device(ordinal)), "cuDeviceTotalMem"))  # type: ignore[attr-defined, arg-type]
        return DeviceInfo(ordinal, name, cc, self.attribute("CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT", ordinal),
                          self.attribute("CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN", ordinal), total)  # fmt: skip

    def activate(self, ordinal: int) -> None:
        """Make ``ordinal``'s primary context current on this thread (cheap when it already is)."""
        if getattr(self._tls, "ordinal", None) == ordinal:
            return
        ctx = self._primary.get(ordinal)
        if ctx is None:
            with self._lock:
                ctx = self._primary.get(ordinal)
                if ctx is None:
                    ctx = self._primary[ordinal] = self.check(
                        self.d.cuDevicePrimaryCtxRetain(self.device(ordinal)), "cuDevicePrimaryCtxRetain")  # type: ignore[attr-defined]
        current = self.check(self.d.cuCtxGetCurrent(), "cuCtxGetCurrent")  # type: ignore[attr-defined]
        if current is None or int(current) != int(ctx):  # type: ignore[call-overload]
            self.check(self.d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")  # type: ignore[attr-defined]
        self._tls.ordinal = ordinal


# --------------------------------------------------------------------------- the process's driver

_LOCK = threading.Lock()
_STATE: dict[str, object] = {}


def _probe(d: object | None, import_error: str = "") -> tuple[GPUStatus, Driver | None]:
    if d is None:
        return GPUStatus(False, import_error or "cuda-python is not installed (pip install 'lowbit[gpu]')"), None
    try:
        (err,) = d.cuInit(0)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - no driver library: cuda-python raises instead of returning a code
        return GPUStatus(False, f"cuInit raised {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"), None
    drv = Driver(d)
    try:
        if int(err):
            name, msg = drv.error_text(err)
            return GPUStatus(False, f"cuInit: {name}: {msg}"), None
        count = int(drv.check(d.cuDeviceGetCount(), "cuDeviceGetCount"))  # type: ignore[attr-defined, arg-type]
        if count == 0:
            return GPUStatus(False, "the CUDA driver sees no device"), None
        v = int(drv.check(d.cuDriverGetVersion(), "cuDriverGetVersion"))  # type: ignore[attr-defined, arg-type]
        devices = tuple(drv.info(i) for i in range(count))
    except CudaError as exc:
        return GPUStatus(False, str(exc)), None
    try:
        import cuda.bindings as cb  # noqa: PLC0415

        bv = str(getattr(cb, "__version__", "?"))
    except ImportError:
        bv = "stand-in driver"
    return GPUStatus(True, "", f"{v // 1000}.{(v % 1000) // 10}", bv, devices), drv


def _load() -> tuple[GPUStatus, Driver | None]:
    try:
        from cuda.bindings import driver as d  # noqa: PLC0415 - the optional `gpu` extra
    except ImportError as exc:
        return _probe(None, f"cuda-python is not installed ({exc}; pip install 'lowbit[gpu]')")
    return _probe(d)


def status(refresh: bool = False) -> GPUStatus:
    """This process's GPU status (probed once; ``refresh=True`` probes again)."""
    with _LOCK:
        if refresh or "status" not in _STATE:
            override = _STATE.get("override")
            _STATE["status"], _STATE["driver"] = _probe(override) if override is not None else _load()
        return _STATE["status"]  # type: ignore[return-value]


def get_driver() -> Driver:
    """The process's driver, or a :class:`LaunchError` saying why there is no GPU."""
    drv = _STATE.get("driver")
    if drv is None:
        st = status()
        drv = _STATE.get("driver")
        if drv is None:
            raise LaunchError(f"no GPU to launch on: {st.reason}")
    return drv  # type: ignore[return-value]


class use_driver:
    """``with use_driver(fake):`` run lowbit's runtime on a stand-in driver module (tests), then restore."""

    def __init__(self, d: object) -> None:
        self.d = d

    def __enter__(self) -> GPUStatus:
        with _LOCK:
            self.saved = dict(_STATE)
            _STATE.clear()
            _STATE["override"] = self.d
        from lowbit.runtime import launcher  # noqa: PLC0415

        launcher.clear_modules()
        return status()

    def __exit__(self, *exc: object) -> None:
        from lowbit.runtime import launcher  # noqa: PLC0415

        launcher.clear_modules()
        with _LOCK:
            _STATE.clear()
            _STATE.update(self.saved)
