"""The one place where ``lowbit.ops`` launches a kernel on a GPU: :func:`launch_cuda`, on :mod:`lowbit.runtime`.

Every GPU launch of the ops layer (``torch.ops.lowbit.matmul`` on CUDA
tensors, ``lowbit.ops.matmul(..., backend="auto")`` with CUDA tensors, and
the kernel families that follow) goes through :func:`launch_cuda`.  It
follows the recipe of docs/runtime.md ("For lowbit.ops"):

* per **specialisation** (kernel + constexprs) the VM program and its
  :class:`~lowbit.binder.Binder` are built once (:class:`_Specialisation`);
* per call the binder checks the arguments (dtype, contiguity, size against
  the kernel's views, one device, alignment) and returns the divisibility
  facts they allow; the **variant** -- the program specialised on those
  facts, compiled for the device's target and loaded -- is found by
  (device, facts) in a dict;
* the first call of a variant (the warm-up) compiles it, or finds it in the
  carried cache on a machine that cannot compile, and loads the module
  (``cuModuleLoadData``); later calls only pack the parameter buffer and
  call ``cuLaunchKernel`` (:meth:`lowbit.runtime.GPUKernel.launch_bound`)
  on **torch's current stream** (the capture stream inside
  ``torch.cuda.graph``);
* nothing on this path synchronises the host or allocates device memory:
  the binder reads shapes, dtypes, strides, devices and ``data_ptr()``,
  outputs come from the caller's ``torch.empty`` (torch's caching
  allocator), and the runtime packs into a per-thread buffer allocated once;
* every driver result is checked: a failure is a
  :class:`~lowbit.runtime.CudaError` (a ``LaunchError``) naming the call.

A variant first met while torch is capturing a CUDA graph is refused with a
``LaunchError`` (loading a module is not a stream operation a graph can
record, and on a GPU machine a miss in the carried cache needs a clear
message, not a broken capture): run the op once before capturing.

What has run where: the whole path (dispatch, binding, variant choice,
loading, packing, the stream, ``cuLaunchKernel`` executed on the emulator)
runs in CI on the stand-in driver ``tests/runtime/fake_driver.py`` with
CPU tensors that report ``cuda:0`` (tests/ops/fake_cuda.py).  The real
``cuda.bindings`` calls, torch's real CUDA stream handle and graph capture
run only on a GPU (``benchmarks/gpu_check_ops.py``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from lowbit.binder import Binder, Bound
from lowbit.errors import LaunchError

__all__ = ["launch_cuda", "loaded_variants", "runtime_available"]


def runtime_available() -> bool:
    """Whether this process can launch on a GPU (:func:`lowbit.runtime.status`; False without a driver or device)."""
    from lowbit import runtime  # noqa: PLC0415 - cuda-python is probed on first use only

    return runtime.status().available


@dataclass
class _Specialisation:
    """One (kernel, constexprs): its program and binder (built once) and its loaded variants by (device, facts)."""

    kernel: object
    constexprs: tuple[tuple[str, object], ...]
    program: object
    binder: Binder
    variants: dict[tuple[str, tuple[str, ...]], object] = field(default_factory=dict)


_LOCK = threading.Lock()
#: (kernel, constexprs) -> specialisation; and the same by id() of the caller's constexpr tuple (the fast path:
#: lowbit.ops passes the memoised LaunchPlan's tuple, so a call needs no hashing of dtypes)
_SPECS: dict[tuple[object, tuple[tuple[str, object], ...]], _Specialisation] = {}
_BY_ID: dict[int, _Specialisation] = {}
_REGISTERED: list[bool] = []


def _registered() -> None:
    """Ask the runtime to clear the loaded variants whenever it clears its own module cache (driver switches)."""
    from lowbit.runtime import launcher  # noqa: PLC0415 - imports the compiler driver: only at the first launch

    launcher.clear_with_modules(_clear)
    _REGISTERED.append(True)


def _clear() -> None:
    with _LOCK:
        for spec in _SPECS.values():
            spec.variants.clear()


def _specialisation(kernel: object, cx: tuple[tuple[str, object], ...]) -> _Specialisation:
    with _LOCK:
        spec = _SPECS.get((kernel, cx))
        if spec is None:
            prog = kernel.specialize(**dict(cx))  # type: ignore[attr-defined]
            spec = _SPECS[(kernel, cx)] = _Specialisation(kernel, cx, prog, Binder.of(prog))
            _BY_ID[id(cx)] = spec  # spec keeps cx alive, so this id cannot be reused while the entry exists
    if not _REGISTERED:
        _registered()
    return spec


def _capturing(bound: Bound) -> bool:
    if not bound.torch:
        return False
    torch = sys.modules["torch"]
    try:
        return bool(torch.cuda.is_current_stream_capturing())
    except Exception:  # noqa: BLE001 - a torch without CUDA cannot be capturing
        return False


def _load(spec: _Specialisation, bound: Bound, key: tuple[str, tuple[str, ...]]) -> object:
    """The warm-up of a variant: specialise on the facts, compile (or find it carried), load the module."""
    from lowbit import runtime  # noqa: PLC0415

    name = getattr(spec.kernel, "__name__", repr(spec.kernel))
    if _capturing(bound):
        raise LaunchError(
            f"kernel {name}: first launch of the variant for facts {sorted(bound.facts)} on {bound.device} during "
            "CUDA graph capture; loading a module cannot be captured: run the op once with the same shapes "
            "before torch.cuda.graph(...)"
        )
    if not bound.device.startswith("cuda:"):
        raise LaunchError(f"kernel {name}: the GPU path needs CUDA tensors, but the arguments are on {bound.device} "
                          "(CPU tensors take the reference path)")  # fmt: skip
    with _LOCK:
        got = spec.variants.get(key)
        if got is not None:
            return got
        dev = runtime.device_for(bound)  # LaunchError: no usable GPU, or an ordinal the driver does not see
        prog = spec.kernel.with_facts(spec.program, bound.facts)  # type: ignore[attr-defined]
        compiled = spec.kernel.compiled(prog, dev.target_for(prog))  # type: ignore[attr-defined]
        got = spec.variants[key] = runtime.load(compiled, dev)
        return got


def launch_cuda(kernel: object, grid: tuple[int, ...], args: tuple[object, ...],
                constexprs: Mapping[str, object] | tuple[tuple[str, object], ...]) -> None:  # fmt: skip
    """Launch ``kernel[grid](*args, **constexprs)`` on torch's current CUDA stream; nothing is synchronised.

    ``args`` are in the kernel's parameter order: CUDA tensors for pointers
    (outputs already allocated by the caller with ``torch.empty``), Python
    ints for sizes.  ``constexprs`` select the specialisation: a mapping, or
    a tuple of (name, value) pairs -- pass the same tuple object every time
    (``LaunchPlan.constexprs``) and the specialisation is found by identity.

    What this keeps, so that ``torch.compile`` and CUDA-graph capture work
    (the caller keeps its side: no tensor value read on the host, outputs
    from torch's allocator, the grid and sizes plain ints from shapes):

    * **no host synchronisation**: no ``.item()``, ``.cpu()``, ``.tolist()``,
      ``cuCtxSynchronize``, ``cuStreamSynchronize`` or blocking copy between
      entry and the driver launch; argument checks read only shapes, dtypes,
      strides, devices and ``data_ptr()``;
    * **launch on ``torch.cuda.current_stream()``** (the capture stream during
      ``torch.cuda.graph``), inside the device's primary context (torch's);
    * **no device allocation**: no ``cuMemAlloc`` on this path;
    * **module loading before capture**: the first call of a variant loads
      it; during capture that is refused with a ``LaunchError``;
    * every CUDA result is checked: a failure is a ``LaunchError`` naming
      the driver call.

    Raises :class:`LaunchError` for bad arguments (naming the kernel
    parameter), host arguments, no usable GPU, or a variant that a machine
    without a compiler does not find in its carried cache.
    """
    if isinstance(constexprs, tuple):
        spec = _BY_ID.get(id(constexprs))
        if spec is None or spec.constexprs is not constexprs or spec.kernel is not kernel:
            spec = _specialisation(kernel, constexprs)
    else:
        spec = _specialisation(kernel, tuple(constexprs.items()))
    bound = spec.binder.bind_values(args)
    key = (bound.device, tuple(bound.facts))  # the binder lists facts in parameter order: one key per fact set
    gk = spec.variants.get(key)
    if gk is None:
        gk = _load(spec, bound, key)
    gk.launch_bound(grid, bound)  # type: ignore[attr-defined]


def loaded_variants(kernel: object) -> dict[tuple[tuple[str, object], ...], dict[tuple[str, tuple[str, ...]], object]]:
    """The variants of ``kernel`` loaded so far: constexprs -> {(device, facts): GPUKernel} (tests, reports)."""
    with _LOCK:
        return {s.constexprs: dict(s.variants) for s in _SPECS.values() if s.kernel is kernel and s.variants}
