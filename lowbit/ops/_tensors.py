"""numpy arrays and torch tensors side by side, without importing torch unless one is present.

lowbit's weight containers hold either kind.  A torch tensor is recognised
by its type's module (so ``import lowbit.ops`` never imports torch); when
one is present torch is already imported and may be used.  torch has no
uint32, so packed words travel as int32 in torch and uint32 in numpy, bit
for bit; bf16 crosses through int16 bit views (numpy has no native bf16;
ml_dtypes' bfloat16 is the numpy side).
"""

from __future__ import annotations

import functools
import sys

import ml_dtypes
import numpy as np

__all__ = ["dtype_name", "is_torch", "numpy_of", "shape_of", "torch_of"]

_NP_NAMES = {
    np.dtype(np.float16): "f16",
    np.dtype(ml_dtypes.bfloat16): "bf16",
    np.dtype(np.float32): "f32",
    np.dtype(np.float64): "f64",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int8): "int8",
    np.dtype(np.int16): "int16",
    np.dtype(np.uint32): "uint32",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
}
_TORCH_NAMES = {
    "torch.float16": "f16", "torch.bfloat16": "bf16", "torch.float32": "f32", "torch.float64": "f64",
    "torch.uint8": "uint8", "torch.int8": "int8", "torch.int16": "int16", "torch.int32": "int32",
    "torch.int64": "int64",
}  # fmt: skip


_TENSOR_TYPES: set[type] = set()  # tensor classes seen so far: the launch path checks a set, not a string


def is_torch(x: object) -> bool:
    """True for a ``torch.Tensor`` or a subclass (torch is not imported here: a tensor means it already is)."""
    t = type(x)
    if t in _TENSOR_TYPES:
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        _TENSOR_TYPES.add(t)
        return True
    return False


@functools.cache
def _torch_names() -> dict[object, str]:
    import torch  # noqa: PLC0415 - only called once a tensor was seen

    return {getattr(torch, k.removeprefix("torch.")): v for k, v in _TORCH_NAMES.items()}


def dtype_name(x: object) -> str:
    """lowbit's name of an array's element type (``"f16"``, ``"uint32"``...), or its own name if unknown."""
    if is_torch(x):
        return _torch_names().get(x.dtype) or str(x.dtype)
    dt = np.asarray(x).dtype
    return _NP_NAMES.get(dt, str(dt))


def shape_of(x: object) -> tuple[int, ...]:
    return tuple(x.shape)


def numpy_of(x: object) -> np.ndarray:
    """A numpy array with the same bits (int32 words stay int32; bf16 becomes ml_dtypes.bfloat16).

    Torch tensors are copied to the host (a synchronisation on a GPU: never
    call this on a launch path).
    """
    if not is_torch(x):
        return np.asarray(x)
    import torch  # noqa: PLC0415 - present because x is a tensor

    t = x.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.contiguous().numpy()


def torch_of(x: np.ndarray, device: object = None):  # noqa: ANN201 - a torch.Tensor
    """A torch tensor with the same bits as ``x`` (uint32 words become int32), on ``device``."""
    import torch  # noqa: PLC0415 - the caller asked for torch

    a = np.ascontiguousarray(x)
    if a.dtype == np.uint32:
        a = a.view(np.int32)
    if a.dtype == np.dtype(ml_dtypes.bfloat16):
        t = torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    else:
        t = torch.from_numpy(a.copy())
    return t if device is None else t.to(device)
