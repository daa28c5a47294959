"""CPU tensors that report ``cuda:0``, launched through lowbit's real GPU path onto the stand-in driver.

``with FakeCuda() as fc:`` gives a session in which

* ``fc.tensor(t)`` is a copy of CPU tensor ``t`` whose ``is_cuda`` is True,
  ``get_device()`` 0 and ``device`` ``cuda:0`` (:class:`FakeCudaTensor`);
  every torch operation on such tensors runs on the CPU and returns
  FakeCudaTensors, and factory calls with ``device="cuda..."`` (``torch.empty``
  in the op) make them too;
* ``lowbit.runtime`` runs on :class:`~tests.runtime.fake_driver.LoggedFakeDriver`
  (``fc.driver``): every fake-CUDA tensor's memory is registered as device
  memory, so ``cuLaunchKernel`` reads the packed parameters, finds the
  buffers by address and runs the PTX on the emulator, writing the results
  into the tensors;
* torch's current stream is ``fc.stream`` (an int handle the test may
  change: ``torch._C._cuda_getCurrentRawStream`` is replaced), and
  ``torch.cuda.is_current_stream_capturing()`` returns ``fc.capturing``;
* ``torch.ops.lowbit.matmul`` with fake-CUDA arguments is routed to the
  implementation registered for the CUDA dispatch key (the dispatcher
  itself would pick the CPU kernel: the tensors are CPU tensors inside);
* every torch function or method called is recorded in ``fc.torch_calls``
  (name, whether a CPU device was named), and ``torch.cuda.synchronize``
  is recorded too, so a test can assert that a launch path does nothing
  that synchronises the host.

What is real here: lowbit's code from the op's CUDA implementation down to
the packed ``cuLaunchKernel`` (binder hot path for CUDA tensors, variant
choice, compile, module load, packing, stream choice) and the emulator
running the exact PTX.  What is pretended: the device, the stream handle,
the dispatcher's device choice, and the driver (``cuda.bindings`` and the
hardware never run here).
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from lowbit.runtime.driver import use_driver
from tests.runtime.fake_driver import LoggedFakeDriver

__all__ = ["SYNCING", "FakeCuda", "FakeCudaTensor"]

#: torch calls that read device memory on the host, i.e. synchronise (on a GPU) -- none may run on a launch path
SYNCING = frozenset({"item", "cpu", "tolist", "numpy", "__array__", "__bool__", "__int__", "__float__", "__index__",
                     "nonzero", "masked_select", "unique", "equal", "allclose", "any", "all", "synchronize",
                     "torch.cuda.synchronize"})  # fmt: skip
_CUDA = torch.device("cuda", 0)


class FakeCudaTensor(torch.Tensor):
    """A CPU tensor that says it is on cuda:0 (see the module docstring)."""

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return _CUDA

    def get_device(self) -> int:  # type: ignore[override]
        return 0


def _names_cpu(args: tuple, kwargs: dict) -> bool:
    for v in (*args, *kwargs.values()):
        if isinstance(v, torch.device) and v.type == "cpu" or isinstance(v, str) and v.startswith("cpu"):
            return True
    return False


def _wants_cuda(kwargs: dict) -> bool:
    dev = kwargs.get("device")
    return dev is not None and torch.device(dev).type == "cuda"


class FakeCuda:
    """The session (see the module docstring); ``run=False`` records launches without executing them."""

    def __init__(self, run: bool = True, stream: int = 0x5EED) -> None:
        self._mode = _Mode(self)
        self.driver = LoggedFakeDriver(cc=(9, 0), run=run)
        self.stream, self.capturing = stream, False
        self.torch_calls: list[tuple[str, bool]] = []
        self._alive: list[object] = []
        self._saved: dict[str, object] = {}

    # -- session --------------------------------------------------------------------------
    def __enter__(self) -> FakeCuda:
        self._use = use_driver(self.driver)
        self._use.__enter__()
        self._saved = {"raw": getattr(torch._C, "_cuda_getCurrentRawStream", None),
                       "sync": torch.cuda.synchronize, "capturing": torch.cuda.is_current_stream_capturing}  # fmt: skip
        torch._C._cuda_getCurrentRawStream = lambda ordinal: self.stream
        torch.cuda.synchronize = lambda *a, **k: self.torch_calls.append(("torch.cuda.synchronize", False))
        torch.cuda.is_current_stream_capturing = lambda: self.capturing
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)
        if self._saved["raw"] is None:
            del torch._C._cuda_getCurrentRawStream
        else:
            torch._C._cuda_getCurrentRawStream = self._saved["raw"]
        torch.cuda.synchronize = self._saved["sync"]
        torch.cuda.is_current_stream_capturing = self._saved["capturing"]
        self._use.__exit__(*exc)

    # -- tensors --------------------------------------------------------------------------
    def _register(self, t: torch.Tensor) -> torch.Tensor:
        with torch._C.DisableTorchFunction():
            st = t.untyped_storage()
            base, n = st.data_ptr(), st.nbytes()
        if n and base not in self.driver.mem:
            self.driver.mem[base] = np.ctypeslib.as_array((ctypes.c_uint8 * n).from_address(base))
            self._alive.append(st)  # the storage outlives the session: its address is never reused meanwhile
        return t

    def tensor(self, t: torch.Tensor | None) -> FakeCudaTensor | None:
        """A fake-CUDA copy of a CPU tensor (None stays None)."""
        if t is None:
            return None
        with torch._C.DisableTorchFunction():
            copy = t.detach().clone()
        return self._register(copy.as_subclass(FakeCudaTensor))

    def module(self, m: torch.nn.Module) -> torch.nn.Module:
        """``m`` with every parameter and buffer made fake-CUDA (in place, like ``m.cuda()``)."""
        return m._apply(self.tensor)

    def to(self, x: torch.nn.Module | torch.Tensor | None) -> object:
        """What ``x.cuda()`` would be: :meth:`module` for a module, :meth:`tensor` for a tensor."""
        return self.module(x) if isinstance(x, torch.nn.Module) else self.tensor(x)

    # -- what happened ----------------------------------------------------------------------
    def mark(self) -> tuple[int, int, int]:
        """Positions in the logs, to look at what one call did (:meth:`since`)."""
        return len(self.torch_calls), len(self.driver.log), len(self.driver.launches)

    def since(self, mark: tuple[int, int, int]) -> tuple[list[tuple[str, bool]], list[str], list[dict]]:
        """(torch calls, driver calls, launches) since ``mark``."""
        return self.torch_calls[mark[0]:], self.driver.log[mark[1]:], self.driver.launches[mark[2]:]


class _Mode(TorchFunctionMode):
    """The session's torch function mode: records calls, makes "CUDA" factories, routes the lowbit op."""

    def __init__(self, session: FakeCuda) -> None:
        super().__init__()
        self.s = session

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001,ANN204 - torch's protocol
        kwargs = kwargs or {}
        s = self.s
        name = getattr(func, "__name__", None) or str(func)
        s.torch_calls.append((name, _names_cpu(args, kwargs)))
        fake = any(isinstance(a, FakeCudaTensor) for a in (*args, *kwargs.values()))
        if fake and func in (torch.ops.lowbit.matmul.default, torch.ops.lowbit.matmul):
            from lowbit.ops import torch_ops  # noqa: PLC0415

            with self:  # the mode is off inside its own handler: the CUDA implementation runs under it again
                return torch_ops._matmul_cuda(*args, **kwargs)  # what the dispatcher runs for CUDA tensors
        if _wants_cuda(kwargs):  # a factory on "the GPU": make it on the CPU, as a fake-CUDA tensor
            out = func(*args, **{**kwargs, "device": "cpu"})
            return s._register(out.as_subclass(FakeCudaTensor))
        out = func(*args, **kwargs)
        for o in out if isinstance(out, tuple | list) else (out,):
            if isinstance(o, FakeCudaTensor):
                s._register(o)
        return out
