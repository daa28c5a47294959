"""lowbit's own device buffer: a C-contiguous array in GPU memory, for machines and scripts without torch.

It exposes ``__cuda_array_interface__`` (version 3), so the binder treats it
like any device array and CuPy or Numba can read it.  Memory comes from
``cuMemAlloc`` in the device's primary context (torch's context too) and is
freed when the object is (or by :meth:`free`).  Copies are synchronous:
:meth:`numpy` first waits for the context's work (a host read is a
synchronisation point anyway), :meth:`from_numpy` returns when the data is on
the device.  Not for the hot path of a torch program: there, pass torch
tensors (torch's caching allocator, torch's stream).
"""

from __future__ import annotations

import math

import numpy as np

from lowbit.errors import LaunchError
from lowbit.runtime.driver import get_driver

__all__ = ["DeviceArray"]


class DeviceArray:
    """``DeviceArray.from_numpy(a)``, ``DeviceArray.empty(shape, dtype)``; ``.numpy()`` copies back."""

    def __init__(self, shape: tuple[int, ...], dtype: object, device: int = 0) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)  # type: ignore[call-overload]
        self.device_ordinal = int(device)
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize
        drv = get_driver()
        drv.activate(self.device_ordinal)
        self._drv = drv
        self.ptr = int(drv.check(drv.d.cuMemAlloc(max(self.nbytes, 1)), "cuMemAlloc"))  # type: ignore[attr-defined, arg-type]
        #: what the binder reads (device, dtype, bytes, address): no interface dict per launch
        self.__lowbit_array__: tuple[str, np.dtype, int, int] | None = (
            f"cuda:{self.device_ordinal}", self.dtype, self.nbytes, self.ptr)

    @classmethod
    def empty(cls, shape: tuple[int, ...] | int, dtype: object, device: int = 0) -> DeviceArray:
        return cls((shape,) if isinstance(shape, int) else tuple(shape), dtype, device)

    @classmethod
    def from_numpy(cls, array: np.ndarray, device: int = 0) -> DeviceArray:
        if not isinstance(array, np.ndarray):
            raise LaunchError(f"DeviceArray.from_numpy needs a numpy array, got {type(array).__name__}")
        host = np.ascontiguousarray(array)
        out = cls(host.shape, host.dtype, device)
        if host.nbytes:
            out._drv.check(out._drv.d.cuMemcpyHtoD(out.ptr, host.ctypes.data, host.nbytes), "cuMemcpyHtoD")  # type: ignore[attr-defined]
        return out

    def numpy(self) -> np.ndarray:
        """A host copy (after the context's pending work)."""
        if self.ptr is None:
            raise LaunchError("this DeviceArray was freed")
        host = np.empty(self.shape, self.dtype)
        drv = self._drv
        drv.activate(self.device_ordinal)
        drv.check(drv.d.cuCtxSynchronize(), "cuCtxSynchronize")  # type: ignore[attr-defined]
        if self.nbytes:
            drv.check(drv.d.cuMemcpyDtoH(host.ctypes.data, self.ptr, self.nbytes), "cuMemcpyDtoH")  # type: ignore[attr-defined]
        return host

    def copy_from(self, array: np.ndarray) -> None:
        """Overwrite the contents with a host array of the same shape and dtype."""
        host = np.ascontiguousarray(array)
        if host.shape != self.shape or host.dtype != self.dtype:
            raise LaunchError(f"copy_from: {host.dtype}{list(host.shape)} into {self.dtype}{list(self.shape)}")
        if self.nbytes:
            self._drv.check(self._drv.d.cuMemcpyHtoD(self.ptr, host.ctypes.data, self.nbytes), "cuMemcpyHtoD")  # type: ignore[attr-defined]

    @property
    def __cuda_array_interface__(self) -> dict[str, object]:
        if self.ptr is None:
            raise LaunchError("this DeviceArray was freed")
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False), "version": 3,
                "strides": None, "stream": None}  # fmt: skip

    def free(self) -> None:
        if getattr(self, "ptr", None) is not None:
            ptr, self.ptr = self.ptr, None
            self.__lowbit_array__ = None
            try:
                self._drv.d.cuMemFree(ptr)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - at interpreter exit the driver may already be gone
                pass

    def __del__(self) -> None:
        self.free()

    def __repr__(self) -> str:
        return f"DeviceArray({self.dtype}{list(self.shape)} on cuda:{self.device_ordinal})"
