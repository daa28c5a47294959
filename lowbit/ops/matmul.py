"""``lowbit.ops.matmul(a, qw, bias=None, backend="auto")``: ``a @ W (+ bias)`` for a QuantizedWeight W.

``a`` is (..., K) -- a numpy array or a torch tensor, f16 or bf16 (f32 too
on the reference path) -- and the result is (..., N) of a's dtype and kind.

Backends:

* ``"reference"`` -- dequantise W (exact, float64, rounded once to f32) and
  multiply in f32, then round once to a's dtype.  numpy for numpy inputs,
  torch for torch inputs (any device).
* ``"emulator"`` -- the ``wx_matmul`` kernel (:mod:`lowbit.kernels.wx_matmul`)
  compiled to PTX and run on lowbit's PTX emulator: the exact code a GPU
  would run.  Torch inputs are copied to the host and back.
* ``"auto"`` -- torch tensors go through ``torch.ops.lowbit.matmul`` (CPU
  tensors: the reference; CUDA tensors: the GPU kernel through
  :func:`lowbit.ops._device.launch_cuda`, which needs the GPU runtime);
  numpy arrays take the reference.

Both kernel paths (emulator and GPU) launch the same specialisation for the
same weight: the one :func:`lowbit.ops._launch.plan` gives for the weight's
format and its dequantisation facts for a's dtype
(:meth:`QuantizedWeight.facts`: FOLD and the NaN-free twin, decided once
per weight, never by scanning values on a call).

A recorded K permutation (act-order) permutes a's columns: ``a[..., perm] @
W_stored``.  Bad arguments raise :class:`~lowbit.errors.LaunchError` naming
the argument; inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from lowbit.errors import LaunchError
from lowbit.ops import _launch
from lowbit.ops._tensors import dtype_name, is_torch, numpy_of, shape_of, torch_of
from lowbit.ops.qweight import QuantizedWeight

__all__ = ["BACKENDS", "matmul", "reference_numpy", "reference_torch", "run_emulator"]

BACKENDS = ("auto", "reference", "emulator")
_REFERENCE_DTYPES = ("f16", "bf16", "f32")


def matmul(a: object, qw: QuantizedWeight, bias: object = None, backend: str = "auto") -> object:
    """``a @ W + bias`` with W = ``qw`` (see the module docstring for the backends).

    The kernel paths launch ``wx_matmul`` specialised on ``qw.facts(a's dtype)`` (see
    :meth:`QuantizedWeight.facts`); the reference path needs none.
    """
    if backend not in BACKENDS:
        raise LaunchError(f"lowbit.ops.matmul: backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(qw, QuantizedWeight):
        raise LaunchError(f"argument 'qw': expected a lowbit.ops.QuantizedWeight, got {type(qw).__name__}")
    _check_common(a, qw, bias)
    if is_torch(a):
        if backend == "auto":
            return _torch_op(a, qw, bias)
        if backend == "reference":
            return reference_torch(a, qw, bias)
        out = run_emulator(numpy_of(a), qw, None if bias is None else numpy_of(bias))
        return torch_of(out, a.device)
    if qw.is_torch or is_torch(bias):
        raise LaunchError("argument 'qw'/'bias': torch tensors with a numpy 'a'; use one kind (qw.numpy())")
    if backend == "emulator":
        return run_emulator(np.asarray(a), qw, bias)
    return reference_numpy(np.asarray(a), qw, bias)


def _check_common(a: object, qw: QuantizedWeight, bias: object) -> None:
    if not (is_torch(a) or isinstance(a, np.ndarray)):
        raise LaunchError(f"argument 'a': expected a numpy array or a torch tensor, got {type(a).__name__}")
    k, n = qw.shape
    sh = shape_of(a)
    if len(sh) < 1 or sh[-1] != k:
        raise LaunchError(f"argument 'a': the last dimension must be K={k} (the weight is {k} x {n}), got shape {sh}")
    if dtype_name(a) not in _REFERENCE_DTYPES:
        raise LaunchError(f"argument 'a': expected f16, bf16 or f32 activations, got {dtype_name(a)}")
    if bias is not None:
        if not (is_torch(bias) or isinstance(bias, np.ndarray)) or shape_of(bias) != (n,):
            raise LaunchError(f"argument 'bias': expected an ({n},) array, got {getattr(bias, 'shape', bias)!r}")
        if is_torch(bias) != is_torch(a):
            raise LaunchError("argument 'bias': a numpy array and a torch tensor mixed; use one kind")


# -- reference ---------------------------------------------------------------------------


def _weight_f32(qw: QuantizedWeight) -> np.ndarray:
    """The (K, N) weight in original row order, exact in float64, rounded once to float32."""
    w = qw.numpy().dequantize()
    return np.ascontiguousarray(w.astype(np.float32))


def reference_numpy(a: np.ndarray, qw: QuantizedWeight, bias: object = None) -> np.ndarray:
    """Dequantise-then-matmul in float32 (numpy), rounded once to a's dtype."""
    k, n = qw.shape
    a2 = np.asarray(a).reshape(-1, k).astype(np.float32)
    out = a2 @ _weight_f32(qw)
    if bias is not None:
        out = out + np.asarray(bias).astype(np.float32)
    return out.astype(np.asarray(a).dtype).reshape(shape_of(a)[:-1] + (n,))


def reference_torch(a: object, qw: QuantizedWeight, bias: object = None) -> object:
    """Dequantise-then-matmul in float32 (torch, on a's device), rounded once to a's dtype."""
    import torch  # noqa: PLC0415 - a is a torch tensor

    k, n = qw.shape
    w = torch.from_numpy(_weight_f32(qw)).to(a.device)
    out = torch.matmul(a.reshape(-1, k).to(torch.float32), w)
    if bias is not None:
        out = out + bias.to(torch.float32)
    return out.to(a.dtype).reshape(tuple(a.shape[:-1]) + (n,))


# -- emulator ----------------------------------------------------------------------------


def run_emulator(a: np.ndarray, qw: QuantizedWeight, bias: np.ndarray | None = None) -> np.ndarray:
    """The ``wx_matmul`` PTX on lowbit's emulator (numpy in, numpy out)."""
    q = qw.numpy()
    k, n = q.shape
    act = dtype_name(a)
    if act not in _launch.ACTIVATION_DTYPES:
        raise LaunchError(f"argument 'a': the wx_matmul kernel takes f16 or bf16 activations, got {act}")
    a2 = np.array(np.asarray(a).reshape(-1, k), copy=True)  # the launcher wants writable, contiguous arrays
    if q.perm is not None:
        a2 = np.ascontiguousarray(a2[:, q.perm])
    b = None if bias is None else np.array(np.asarray(bias).astype(a2.dtype), copy=True)
    m = a2.shape[0]
    fold, finite = qw.facts(act)  # FOLD and the NaN-free twin: decided once per weight, not on this call
    p = _launch.plan(q.wtype, q.group_size, q.zero, q.scale_format.name, act, b is not None, q.layout, m <= 16, fold,
                     finite)  # fmt: skip
    args = _copies(q)
    out = np.full((m, n), np.nan, dtype=a2.dtype)  # poisoned: an element the kernel does not store shows
    _launch.check_operands(a2, args["qweight"], args["scales"], args["zeros"], args["tensor_scale"], b,
                           q.wtype, q.group_size, q.zero, q.layout)  # fmt: skip
    spare = np.zeros(1, dtype=a2.dtype)  # for unused pointers: never read, never aliasing `out`
    run_args = _launch.kernel_arguments(p, a2, args["qweight"], args["scales"], args["zeros"], args["tensor_scale"],
                                        b, out, spare, m, n, k)  # fmt: skip
    if m:
        _launch.kernel()[p.grid(m, n)](*run_args, **p.kwargs())
    return out.reshape(shape_of(a)[:-1] + (n,))


def _copies(q: QuantizedWeight) -> dict[str, np.ndarray | None]:
    return {f: (None if getattr(q, f) is None else np.array(getattr(q, f), copy=True))
            for f in ("qweight", "scales", "zeros", "tensor_scale")}  # fmt: skip


# -- torch custom op -----------------------------------------------------------------------


def _torch_op(a: object, qw: QuantizedWeight, bias: object) -> object:
    import torch  # noqa: PLC0415 - a is a torch tensor

    from lowbit.ops import torch_ops  # noqa: PLC0415,F401 - registers torch.ops.lowbit.*

    if not qw.is_torch or str(qw.device) != str(a.device):
        raise LaunchError(
            f"argument 'qw': its tensors are on {qw.device}, a is on {a.device}; move the weight with qw.to(a.device)"
        )
    fold, finite = qw.facts(torch_ops.activation_name(a.dtype))
    return torch.ops.lowbit.matmul(a, *torch_ops.weight_operands(qw), bias, fold, finite)
