"""torch custom ops: ``torch.ops.lowbit.matmul`` (one op per kernel family as they land).

Registered when this module is imported -- ``lowbit.nn`` and
``lowbit.ops.matmul`` on torch tensors import it; ``import lowbit`` and
``import lowbit.ops`` do not.

``lowbit::matmul(Tensor a, Tensor qweight, Tensor scales, Tensor? zeros,
Tensor? perm, Tensor? tensor_scale, str wtype, int group_size, str zero,
int layout, Tensor? bias=None, bool fold=False, bool finite=False) -> Tensor``
computes ``a @ W + bias`` for the QuantizedWeight whose fields are given
(``wtype`` by name: ``"uint4"``, ``"nf4"``, ``"mxfp4"``, a codebook's
``cb<b>_<hash>`` name...; K is a's last dimension).

``fold`` / ``finite`` are the weight's dequantisation facts for a's dtype,
``QuantizedWeight.facts(act)`` (:mod:`lowbit.ops._fold`): Python constants
decided once per weight on the host, so the op never reads a value to
choose its kernel and ``torch.compile`` traces them as constants.  They
are promises about the values: ``lowbit.ops.matmul`` and ``QuantLinear``
pass the weight's own; the defaults (False, False) are correct for every
weight (the kernel then checks nothing itself, one multiply more per pair,
and "fn" formats keep the exact NaN path).  The CPU reference ignores them.

Implementations:

* CPU: the reference dequantise-then-matmul (:func:`lowbit.ops.matmul.reference_torch`);
* CUDA: ``wx_matmul`` through :func:`lowbit.ops._device.launch_cuda`, with
  the host work of :func:`prepare_cuda` (shapes and dtypes only, no sync);
* FakeTensor / meta (``torch.library.register_fake``): the output's shape
  and dtype, so ``torch.compile`` traces the op as one graph node.

Why ``torch.library.Library`` (``define`` + ``impl``) and not the
``torch.library.custom_op`` decorator: both give a dispatcher op that
``opcheck`` and ``torch.compile`` accept (the fake is the same
``register_fake``), but ``custom_op`` wraps every call in Python layers
(an autograd ``Function``, a redispatch, an aliasing check): measured with
``benchmarks/bench_dispatch.py`` on the whole CUDA path (op entry to
``cuLaunchKernel`` on the stand-in driver), ``custom_op`` adds about 55% to
the host time of a call (docs/ops.md has the figures; both APIs exist in the
GPU machines' torch 2.11), and a decode step's 15 us host budget has no room
for it.  The op has no autograd kernel (inference weights): a backward
through it is torch's "not implemented" error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
from torch import Tensor

import lowbit
from lowbit.errors import LaunchError
from lowbit.ops import _launch
from lowbit.ops._device import launch_cuda
from lowbit.ops._tensors import _TORCH_NAMES
from lowbit.ops.matmul import reference_torch
from lowbit.ops.layouts import qweight_rows, resolve_layout, zero_words
from lowbit.ops.qweight import QuantizedWeight, resolve_wtype

__all__ = ["SCHEMA", "activation_name", "prepare_cuda", "weight_operands"]

SCHEMA = (
    "matmul(Tensor a, Tensor qweight, Tensor scales, Tensor? zeros, Tensor? perm, Tensor? tensor_scale, "
    "str wtype, int group_size, str zero, int layout, Tensor? bias=None, bool fold=False, bool finite=False) -> Tensor"
)


_DTYPE_NAMES = {getattr(torch, k.removeprefix("torch.")): v for k, v in _TORCH_NAMES.items()}


@functools.lru_cache(maxsize=256)
def _format(name: str) -> object:
    return resolve_wtype(name)


def activation_name(dt: torch.dtype) -> str:
    """lowbit's name of a torch dtype ("f16", "bf16", "f32"...): the ``act`` of ``QuantizedWeight.facts``."""
    return _DTYPE_NAMES.get(dt, str(dt))


def weight_operands(qw: QuantizedWeight) -> tuple[object, ...]:
    """The op's weight arguments for ``qw``: (qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout)."""
    return (qw.qweight, qw.scales, qw.zeros, qw.perm, qw.tensor_scale, qw.wtype.name, qw.group_size, qw.zero, qw.layout)


def _matmul_cpu(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias=None,  # noqa: ANN001,ANN202
                fold=False, finite=False):  # noqa: ANN001
    """CPU: the reference (the QuantizedWeight is validated, values included; the facts do not matter to it)."""
    qw = QuantizedWeight(
        wtype=_format(wtype), shape=(int(a.shape[-1]), int(qweight.shape[1])), group_size=group_size, zero=zero,
        qweight=qweight, scales=scales, zeros=zeros, perm=perm, tensor_scale=tensor_scale, layout=layout,
    )  # fmt: skip
    return reference_torch(a, qw, bias)


def _matmul_fake(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias=None,  # noqa: ANN001,ANN202
                 fold=False, finite=False):  # noqa: ANN001
    fmt = _format(wtype)
    bits = int((fmt.element if hasattr(fmt, "element") else fmt).bits)
    k = a.shape[-1]
    rows = qweight_rows(k, bits, resolve_layout(layout, "lowbit::matmul"))
    torch._check(qweight.dim() == 2, lambda: "lowbit::matmul: qweight must be 2-D (words, N)")
    torch._check(qweight.shape[0] == rows,
                 lambda: f"lowbit::matmul: qweight has {qweight.shape[0]} rows, K={k} codes of {bits} bits need "
                         f"{rows} in layout {layout}")  # fmt: skip
    return a.new_empty((*a.shape[:-1], qweight.shape[1]))


@dataclass(frozen=True)
class _CudaConfig:
    """One configuration of the CUDA path: its launch plan and the operand shapes it expects per (K, N)."""

    plan: _launch.LaunchPlan
    fmt: object
    bits: int
    group: int
    zero: str
    tensor_scale: bool
    has_bias: bool
    layout: int
    shapes: dict[tuple[int, int], tuple[tuple[int, ...], ...]] = field(default_factory=dict, compare=False)

    def expected(self, k: int, n: int) -> tuple[tuple[int, ...], ...]:
        """(qweight, scales, zeros) shapes for K x N (memoised; zeros () when the convention has none)."""
        got = self.shapes.get((k, n))
        if got is None:
            groups = -(-k // (k if self.group == -1 else self.group))
            zshape = {"int": (zero_words(groups, n, self.bits, self.layout),), "float": (groups, n)}.get(self.zero, ())
            got = self.shapes[(k, n)] = ((qweight_rows(k, self.bits, self.layout), n), (groups, n), zshape)
        return got


_CONFIGS: dict[tuple[object, ...], _CudaConfig] = {}
_WORDS = frozenset(d for d in (torch.int32, getattr(torch, "uint32", None)) if d is not None)


_SM: dict[int, int] = {}


def _device_sm(device: torch.device) -> int | None:
    """The compute capability (as 90 for 9.0) of a CUDA tensor's device, once per device; None off CUDA."""
    if device.type != "cuda":
        return None
    idx = device.index if device.index is not None else torch.cuda.current_device()
    got = _SM.get(idx)
    if got is None:
        try:
            major, minor = torch.cuda.get_device_capability(idx)
        except Exception:  # noqa: BLE001 - no usable CUDA here (the launch reports that, not this query)
            return None
        got = _SM[idx] = major * 10 + minor
    return got


def _cuda_config(wtype: str, group_size: int, zero: str, layout: int, sdt: torch.dtype, adt: torch.dtype,
                 has_bias: bool, decode: bool, fold: bool = False, finite: bool = False,
                 sm: int | None = None) -> _CudaConfig:  # fmt: skip
    key = (wtype, group_size, zero, layout, sdt, adt, has_bias, decode, fold, finite, sm)
    cfg = _CONFIGS.get(key)
    if cfg is None:
        fmt = _format(wtype)
        act = _DTYPE_NAMES.get(adt, str(adt))
        if (fold or finite) and sm is not None and not isinstance(fmt, lowbit.ScaledType):
            from lowbit.runtime.images import hardware_decode  # noqa: PLC0415

            if hardware_decode(sm, fmt, act):  # the device's cvt decodes the exact format: no fold, no twin
                fold = finite = False
        p = _launch.plan(fmt, group_size, zero, _DTYPE_NAMES.get(sdt, str(sdt)), act,
                         has_bias, layout, decode, bool(fold), bool(finite))  # fmt: skip
        cx = dict(p.constexprs)
        cfg = _CONFIGS[key] = _CudaConfig(p, fmt, int(cx["W"].bits), int(cx["GROUP"]), str(cx["ZERO"]),
                                          bool(cx["TENSOR_SCALE"]), has_bias, int(cx["LAYOUT"]))  # fmt: skip
    return cfg


def prepare_cuda(a: Tensor, qweight: Tensor, scales: Tensor, zeros: Tensor | None, perm: Tensor | None,
                 tensor_scale: Tensor | None, wtype: str, group_size: int, zero: str, layout: int,
                 bias: Tensor | None, fold: bool = False,
                 finite: bool = False) -> tuple[tuple[int, int], tuple[object, ...], tuple[tuple[str, object], ...], Tensor]:  # fmt: skip
    """Host work of a GPU launch: (grid, kernel arguments, constexprs, output).

    ``fold`` / ``finite``: the weight's dequantisation facts for a's dtype (``QuantizedWeight.facts``),
    part of the configuration key: the plan is :func:`lowbit.ops._launch.plan` with them, as the
    emulator backend's -- except on a device whose packed ``cvt`` decodes the weight's float format
    (e4m3/e5m2 into f16 from sm_89, :func:`lowbit.runtime.images.hardware_decode`): the instruction
    decodes the exact format, so the facts are dropped (they would add a multiply a pair, or the bit path).

    Reads shapes, dtypes and nothing else; allocates only the output (and
    the gathered activations when act-order), both through torch; works on
    tensors of any device (the benchmark times it on CPU tensors).  The
    configuration (plan, expected shapes per K x N) is memoised by the op's
    attributes and dtypes, so a call costs a dict lookup, a few shape
    comparisons, ``torch.empty`` and a tuple; the constexprs are the plan's
    ``(name, value)`` tuple, the same object for every call of one
    configuration (``launch_cuda`` finds the specialisation by it).  Any
    mismatch is reported by :func:`lowbit.ops._launch.check_operands`
    (``LaunchError`` naming the argument).
    """
    k = a.shape[-1]
    a2 = a if a.dim() == 2 else a.reshape(-1, k)
    if perm is not None:
        if perm.device != a.device:
            raise LaunchError(f"argument 'perm' is on {perm.device} but 'a' is on {a.device}")
        a2 = a2.index_select(1, perm)
    if not a2.is_contiguous():
        a2 = a2.contiguous()
    m = a2.shape[0]
    cfg = _cuda_config(wtype, group_size, zero, layout, scales.dtype, a.dtype, bias is not None, m <= 16, fold, finite,
                       _device_sm(a.device))  # fmt: skip
    n = qweight.shape[1] if qweight.dim() == 2 else -1  # -1: a mismatch, reported by check_operands
    qshape, sshape, zshape = cfg.expected(k, n)
    z, ts = zeros, tensor_scale
    if (qweight.shape != qshape or qweight.dtype not in _WORDS or scales.shape != sshape
            or (zshape and (z is None or z.shape != zshape or (cfg.zero == "float" and z.dtype != scales.dtype)))
            or (cfg.tensor_scale and (ts is None or ts.shape != (1,) or ts.dtype != torch.float32))
            or (bias is not None and (bias.shape != (n,) or bias.dtype != a.dtype))):  # fmt: skip
        _launch.check_operands(a2, qweight, scales, zeros, tensor_scale, bias, cfg.fmt, group_size, zero, layout)
        raise LaunchError("lowbit::matmul: the operands do not match the weight's format")  # pragma: no cover
    out = a2.new_empty((m, n))  # a.dtype on a.device, from torch's allocator (cheaper than torch.empty(device=))
    args = (a2, qweight, scales, z if zshape else qweight, ts if cfg.tensor_scale else out,
            bias if cfg.has_bias else out, out, m, n, k)  # fmt: skip
    p = cfg.plan
    return (-(-m // p.block[0]), -(-n // p.block[1])), args, p.constexprs, out


def _matmul_cuda(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero, layout, bias=None,  # noqa: ANN001,ANN202
                 fold=False, finite=False):  # noqa: ANN001
    """CUDA: ``wx_matmul`` on torch's current stream (devices of the kernel's operands: checked by its binder)."""
    grid, args, cx, out = prepare_cuda(a, qweight, scales, zeros, perm, tensor_scale, wtype, group_size, zero,
                                       layout, bias, fold, finite)  # fmt: skip
    if out.numel():  # M = 0 (or N = 0): nothing to launch, and a grid dimension of 0 is not a launch
        launch_cuda(_launch.kernel(), grid, args, cx)
    return out if a.dim() == 2 else out.reshape((*a.shape[:-1], out.shape[1]))


# The library object must stay alive for the registrations to stay.
_LIB = torch.library.Library("lowbit", "FRAGMENT")  # a fragment: later kernel families add ops to the namespace
_LIB.define(SCHEMA)
_LIB.impl("matmul", _matmul_cpu, "CPU")
_LIB.impl("matmul", _matmul_cuda, "CUDA")
torch.library.register_fake("lowbit::matmul", _matmul_fake, lib=_LIB)
