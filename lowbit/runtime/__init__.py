"""lowbit's GPU runtime: load compiled kernels through the CUDA driver and launch them (docs/runtime.md).

The public surface is small:

* :func:`status` -- whether this process can launch on a GPU, and if not why
  (no cuda-python, no driver: ``cuInit`` raises, no device); never a crash;
* :func:`load` ``(compiled, device=0) -> GPUKernel`` -- a compiled kernel
  loaded on a device (cubin when the device runs it, else the PTX through the
  driver JIT), memoised per compile-cache key and device;
  ``GPUKernel(grid, *args, stream=None)`` binds and launches;
* :func:`launch` ``(compiled, grid, args, stream=None)`` -- the same in one call;
* :class:`DeviceArray` -- lowbit's own device buffer (``from_numpy``,
  ``empty``, ``numpy``), for machines without torch;
* :class:`CudaError` -- a driver call failed (a ``LaunchError`` naming the call
  and the driver's message).

``kernel[grid](...)`` reaches this package by itself when its arguments are
device arrays (:func:`lowbit.launch.select_backend`).  ``cuda.bindings`` is
imported on first use, torch never (a torch tensor argument means torch is
already imported).
"""

from __future__ import annotations

from lowbit.runtime.driver import CudaError, DeviceInfo, GPUStatus, status

__all__ = ["CudaError", "DeviceArray", "DeviceInfo", "GPUKernel", "GPUStatus", "device_for", "launch",
           "launch_bound", "load", "status"]  # fmt: skip

_LAZY = {"DeviceArray": "device_array", "GPUKernel": "launcher", "device_for": "launcher", "launch": "launcher",
         "launch_bound": "launcher", "load": "launcher"}  # fmt: skip


def __getattr__(name: str) -> object:
    # the launcher imports the compiler driver (and through it the binder and IR): only when a launch needs it
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        return getattr(importlib.import_module(f"lowbit.runtime.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lowbit.runtime' has no attribute {name!r}")
