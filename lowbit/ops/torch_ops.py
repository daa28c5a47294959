"""torch custom ops: ``torch.ops.lowbit.matmul`` (one op per kernel family as they land).

Registered when this module is imported -- ``lowbit.nn`` and
``lowbit.ops.matmul`` on torch tensors import it; ``import lowbit`` and
``import lowbit.ops`` do not.

``lowbit::matmul(Tensor a, Tensor qweight, Tensor scales, Tensor? zeros,
Tensor? perm, Tensor? tensor_scale, str wtype, int group_size, str zero,
int layout, Tensor? bias=None) -> Tensor`` computes ``a @ W + bias`` for the
QuantizedWeight whose fields are given (``wtype`` by name: ``"uint4"``,
``"nf4"``, ``"mxfp4"``, a codebook's ``cb<b>_<hash>`` name...; K is a's
last dimension):

* CPU: the reference dequantise-then-matmul (:func:`lowbit.ops.matmul.reference_torch`);
* CUDA: ``wx_matmul`` through :func:`lowbit.ops._device.launch_cuda`, with
  the host work of :func:`prepare_cuda` (shapes and dtypes only, no sync);
* FakeTensor / meta (``torch.library.register_fake``): the output's shape
  and dtype, so ``torch.compile`` traces the op as one graph node.

Why ``torch.library.Library`` (``define`` + ``impl``) and not the
``torch.library.custom_op`` decorator: both give a dispatcher op that
``opcheck`` and ``torch.compile`` accept (the fake is the same
``register_fake``), but ``custom_op`` wraps every call in Python layers
(an autograd ``Function``, a redispatch, an aliasing check): on the CPU build
machine a no-op kernel with this schema costs 13.8 us per call through
``custom_op`` and 3.1 us through ``Library.impl`` (torch 2.13, one thread,
benchmarks/results/dispatch_cpu_2026-12-02.md; both APIs exist in the GPU
machines' torch 2.11).  The 15 us host budget of a decode
step leaves no room for the difference.  The op has no autograd kernel
(inference weights): a backward through it is torch's "not implemented"
error.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from lowbit.errors import LaunchError
from lowbit.ops import _launch
from lowbit.ops._device import launch_cuda
from lowbit.ops._tensors import dtype_name
from lowbit.ops.matmul import reference_torch
from lowbit.ops.qweight import QuantizedWeight, resolve_wtype

__all__ = ["SCHEMA", "prepare_cuda", "weight_operands"]

SCHEMA = (
    "matmul(Tensor a, Tensor qweight, Tensor scales, Tensor? zeros, Tensor? perm, Tensor? tensor_scale, "
    "str wtype, int group_size, str zero, int layout, Tensor? bias=None) -> Tensor"
)


@functools.lru_cache(maxsize=256)
def _format(name: str) -> object:
    return resolve_wtype(name)


def weight_operands(qw: QuantizedWeight) -> tuple[object, ...]:
    """The op's weight arguments for ``qw``: (qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout)."""
    return (qw.qweight, qw.scales, qw.zeros, qw.perm, qw.tensor_scale, qw.wtype.name, qw.group_size, qw.zero, qw.layout)


def _matmul_cpu(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias=None):  # noqa: ANN001,ANN202
    """CPU: the reference (the QuantizedWeight is validated, values included)."""
    qw = QuantizedWeight(
        wtype=_format(wtype), shape=(int(a.shape[-1]), int(qweight.shape[1])), group_size=group_size, zero=zero,
        qweight=qweight, scales=scales, zeros=zeros, perm=perm, tensor_scale=tensor_scale, layout=layout,
    )  # fmt: skip
    return reference_torch(a, qw, bias)


def _matmul_fake(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias=None):  # noqa: ANN001,ANN202
    fmt = _format(wtype)
    bits = int((fmt.element if hasattr(fmt, "element") else fmt).bits)
    k = a.shape[-1]
    torch._check(qweight.dim() == 2, lambda: "lowbit::matmul: qweight must be 2-D (words, N)")
    torch._check(qweight.shape[0] == (k * bits + 31) // 32,
                 lambda: f"lowbit::matmul: qweight has {qweight.shape[0]} rows, K={k} codes of {bits} bits need "
                         f"{(k * bits + 31) // 32}")  # fmt: skip
    return a.new_empty((*a.shape[:-1], qweight.shape[1]))


def prepare_cuda(a: Tensor, qweight: Tensor, scales: Tensor, zeros: Tensor | None, perm: Tensor | None,
                 tensor_scale: Tensor | None, wtype: str, group_size: int, zero: str, layout: int,
                 bias: Tensor | None) -> tuple[tuple[int, int], tuple[object, ...], dict[str, object], Tensor]:  # fmt: skip
    """Host work of a GPU launch: (grid, kernel arguments, constexprs, output).

    Reads shapes, dtypes and nothing else; allocates only the output (and
    the gathered activations when act-order), both through torch; works on
    tensors of any device (the benchmark times it on CPU tensors).
    """
    fmt = _format(wtype)
    k = a.shape[-1]
    a2 = a.reshape(-1, k)
    if perm is not None:
        a2 = a2.index_select(1, perm)
    if not a2.is_contiguous():
        a2 = a2.contiguous()
    m, n, _ = _launch.check_operands(a2, qweight, scales, zeros, tensor_scale, bias, fmt, group_size, zero)
    p = _launch.plan(fmt, group_size, zero, dtype_name(scales), dtype_name(a), bias is not None, layout, m <= 16)
    out = torch.empty((m, n), dtype=a.dtype, device=a.device)
    args = _launch.kernel_arguments(p, a2, qweight, scales, zeros, tensor_scale, bias, out, out, m, n, k)
    return p.grid(m, n), args, p.kwargs(), out


def _matmul_cuda(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias=None):  # noqa: ANN001,ANN202
    devices = {t.device for t in (a, qweight, scales, zeros, perm, tensor_scale, bias) if t is not None}
    if len(devices) != 1:
        raise LaunchError(f"lowbit::matmul: tensors on several devices {sorted(map(str, devices))}")
    grid, args, cx, out = prepare_cuda(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero,
                                       layout, bias)  # fmt: skip
    launch_cuda(_launch.kernel(), grid, args, cx)
    return out.reshape((*a.shape[:-1], out.shape[1]))


# The library object must stay alive for the registrations to stay.
_LIB = torch.library.Library("lowbit", "FRAGMENT")  # a fragment: later kernel families add ops to the namespace
_LIB.define(SCHEMA)
_LIB.impl("matmul", _matmul_cpu, "CPU")
_LIB.impl("matmul", _matmul_cuda, "CUDA")
torch.library.register_fake("lowbit::matmul", _matmul_fake, lib=_LIB)
