"""The one place where ``lowbit.ops`` launches a kernel on a GPU: :func:`launch_cuda`.

Every GPU launch of the ops layer (``torch.ops.lowbit.matmul`` on CUDA
tensors, ``lowbit.ops.matmul(..., backend="auto")`` with CUDA tensors, and
the kernel families that follow) goes through this function, so connecting
the driver runtime (``lowbit.runtime``, the runtime issue) is a change to
this file alone.  Until that runtime is merged it raises
:class:`~lowbit.errors.LaunchError`; it does not pretend to run.
"""

from __future__ import annotations

from lowbit.errors import LaunchError

__all__ = ["launch_cuda", "runtime_available"]


def runtime_available() -> bool:
    """Whether a GPU runtime is connected to :func:`launch_cuda` (False in this build)."""
    return False


def launch_cuda(kernel: object, grid: tuple[int, ...], args: tuple[object, ...], constexprs: dict[str, object]) -> None:
    """Launch ``kernel[grid](*args, **constexprs)`` on torch's current CUDA stream.

    ``args`` are in the kernel's parameter order: CUDA tensors for pointers
    (outputs already allocated by the caller with ``torch.empty``), Python
    ints for sizes.  ``constexprs`` select the specialisation.

    What the connection to ``lowbit.runtime`` must keep, so that
    ``torch.compile`` and CUDA-graph capture work (the caller already keeps
    its side: no tensor value is read on the host, outputs come from
    torch's allocator, the grid and sizes are plain ints from shapes):

    * **no host synchronisation**: no ``.item()``, ``.cpu()``, ``.tolist()``,
      ``cuCtxSynchronize``, ``cuStreamSynchronize`` or blocking copy between
      entry and the driver launch; argument checks read only shapes,
      dtypes, strides, devices and ``data_ptr()``;
    * **launch on ``torch.cuda.current_stream()``** (the capture stream
      during ``torch.cuda.graph``), inside torch's primary context;
    * **no allocation outside torch's caching allocator** on this path: no
      ``cuMemAlloc`` per call; a kernel needing scratch asks the caller for
      a torch tensor;
    * **module loading before capture**: the first call for a
      specialisation may compile (or load from the carried cache) and call
      ``cuModuleLoadData`` -- not capturable -- so it must happen on a
      warm-up call; later calls find the loaded function in memory by the
      specialisation key (kernel, constexprs, target) and only build the
      argument buffer and call ``cuLaunchKernel``;
    * **host time**: the target is <= 15 us from the custom op's entry to
      ``cuLaunchKernel`` (``benchmarks/bench_dispatch.py`` measures the parts
      that exist today); bind arguments from a per-specialisation binder
      built once, not by re-parsing the kernel;
    * every CUDA result is checked and a failure is a ``LaunchError`` naming
      the driver call.

    Today: raises :class:`LaunchError` -- the GPU runtime is not part of this build.
    """
    name = getattr(kernel, "__name__", repr(kernel))
    device = next((str(a.device) for a in args if hasattr(a, "device")), "a CUDA device")
    raise LaunchError(
        f"cannot launch {name} on {device}: the GPU runtime (lowbit.runtime) is not available in this build; "
        "run on CPU tensors (the reference path) or use lowbit.ops.matmul(..., backend='emulator')"
    )
