"""From (activations, QuantizedWeight fields, bias) to one ``wx_matmul`` launch: grid, arguments, constexprs.

Shared by the emulator backend (numpy arrays) and the GPU path (torch CUDA
tensors), so both launch the same specialisation with the same arguments.
Everything here is host work on shapes and dtypes only -- no element is
read, nothing is allocated, nothing synchronises -- because the GPU path
calls it inside CUDA-graph capture.  The per-configuration part (the
constexpr dict and tile shape) is memoised, so a decode step costs a dict
lookup, a few shape checks and a tuple.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import lowbit
from lowbit.errors import LaunchError
from lowbit.kernels.wx_matmul import LAYOUTS, tile_config, wx_matmul
from lowbit.ops._fold import block_fold, codebook_in, finite_twin
from lowbit.ops._tensors import dtype_name, shape_of
from lowbit.ops.layouts import LAYOUTS as WEIGHT_LAYOUTS
from lowbit.ops.layouts import qweight_rows, zero_bits, zero_words

__all__ = ["ACTIVATION_DTYPES", "LaunchPlan", "check_operands", "kernel_arguments", "plan"]

ACTIVATION_DTYPES = ("f16", "bf16")


@dataclass(frozen=True)
class LaunchPlan:
    """One specialisation of ``wx_matmul``: its constexprs and block tile (BM, BN, BK)."""

    constexprs: tuple[tuple[str, object], ...]
    block: tuple[int, int, int]

    def grid(self, m: int, n: int) -> tuple[int, int]:
        return (-(-m // self.block[0]), -(-n // self.block[1]))

    def kwargs(self) -> dict[str, object]:
        return dict(self.constexprs)


@functools.lru_cache(maxsize=4096)
def plan(wtype: object, group_size: int, zero: str, scale: str, act: str, has_bias: bool, layout: int,
         decode: bool, fold: bool = False, finite: bool = False) -> LaunchPlan:  # fmt: skip
    """The plan for a weight format / group / zero convention, scale and activation dtypes.

    ``decode`` is M <= 16 (a 16-row block tile instead of 32).  ``fold``: the scales take the float codes'
    exponent-bias correction (``wx_matmul``'s FOLD); only when :func:`lowbit.ops._fold.fold_ok` said so
    for these scale values.  ``finite``: the codes hold no NaN code (:func:`lowbit.ops._fold.codes_finite`),
    so a format with one is read as its NaN-free twin where that lowers cheaper (:func:`~lowbit.ops._fold.finite_twin`).
    """
    if layout not in LAYOUTS:
        names = ", ".join(f"{v} ({WEIGHT_LAYOUTS[v]!r})" for v in LAYOUTS)
        raise LaunchError(f"wx_matmul: weight layout version {layout!r} is not supported (it reads {names})")
    if act not in ACTIVATION_DTYPES:
        raise LaunchError(f"argument 'a': wx_matmul takes f16 or bf16 activations, got {act}")
    scaled = isinstance(wtype, lowbit.ScaledType)
    elem = wtype.element if scaled else wtype
    group = wtype.block if scaled else group_size
    bm, bn, bk = tile_config(int(elem.bits), group, 1 if decode else 17, layout)
    bits = int(elem.bits)
    twin = finite_twin(elem, act) if finite else None
    if twin is not None:
        elem = twin
    acc_exp = None if fold or zero != "none" else block_fold(wtype, act)  # NVFP4: fold split with the accumulator
    table = codebook_in(elem, act)  # a codebook is read with its values rounded to the activation dtype
    if table is not None:
        elem = table
    if bits & (bits - 1) == 0 and layout == 2:  # one plane: version 2 of widths 1, 2, 4, 8 is version 1's bytes,
        layout = 1  # and its kernel
    cx = (
        ("W", elem),
        ("GROUP", group),
        ("ZERO", zero),
        ("S", wtype.scale if scaled else lowbit.dtype(scale)),
        ("A", lowbit.dtype(act)),
        ("ELEM_EXP", wtype.element_exp if scaled else 0),
        ("FOLD", bool(fold) or acc_exp is not None),
        ("ACC_EXP", 0 if fold or acc_exp is None else acc_exp),
        ("TENSOR_SCALE", bool(scaled and wtype.has_tensor_scale)),
        ("HAS_BIAS", bool(has_bias)),
        ("LAYOUT", layout),
        ("BM", bm),
        ("BN", bn),
        ("BK", bk),
    )
    return LaunchPlan(cx, (bm, bn, bk))


def check_operands(a2d: object, qweight: object, scales: object, zeros: object, tensor_scale: object,
                   bias: object, wtype: object, group_size: int, zero: str,
                   layout: int = 1) -> tuple[int, int, int]:  # fmt: skip
    """Shapes and dtypes of the launch operands (never their values); returns (M, N, K).

    Raises :class:`LaunchError` naming the argument.
    """
    if len(shape_of(a2d)) != 2:
        raise LaunchError(f"argument 'a': expected a 2-D (M, K) operand, got shape {shape_of(a2d)}")
    m, k = shape_of(a2d)
    if len(shape_of(qweight)) != 2:
        raise LaunchError(f"argument 'qweight': expected (words, N), got shape {shape_of(qweight)}")
    n = shape_of(qweight)[1]
    scaled = isinstance(wtype, lowbit.ScaledType)
    bits = int((wtype.element if scaled else wtype).bits)
    words = qweight_rows(k, bits, layout)
    if shape_of(qweight)[0] != words or dtype_name(qweight) not in ("int32", "uint32"):
        raise LaunchError(
            f"argument 'qweight': K={k} codes of {bits} bits need ({words}, {n}) int32 words in layout {layout}, "
            f"got {shape_of(qweight)} {dtype_name(qweight)} (does a's last dimension match the weight's K?)"
        )
    glen = k if group_size == -1 else group_size
    groups = -(-k // glen)
    if shape_of(scales) != (groups, n):
        raise LaunchError(f"argument 'scales': expected ({groups}, {n}), got {shape_of(scales)}")
    if zero != "none" and zeros is None:
        raise LaunchError(f"argument 'zeros': zero={zero!r} needs a zeros tensor, got None")
    if zero == "int" and shape_of(zeros) != (zero_words(groups, n, bits, layout),):
        raise LaunchError(f"argument 'zeros': expected ({zero_words(groups, n, bits, layout)},) words "
                          f"({groups}x{n} zeros of {zero_bits(bits, layout)} bits in layout {layout}), "
                          f"got {shape_of(zeros)}")  # fmt: skip
    if zero == "float" and (shape_of(zeros) != (groups, n) or dtype_name(zeros) != dtype_name(scales)):
        raise LaunchError(f"argument 'zeros': expected ({groups}, {n}) {dtype_name(scales)}, "
                          f"got {shape_of(zeros)} {dtype_name(zeros)}")  # fmt: skip
    if scaled and wtype.has_tensor_scale and (tensor_scale is None or shape_of(tensor_scale) != (1,)
                                              or dtype_name(tensor_scale) != "f32"):  # fmt: skip
        raise LaunchError(f"argument 'tensor_scale': {wtype.name} needs a (1,) float32 tensor scale")
    if bias is not None and (shape_of(bias) != (n,) or dtype_name(bias) != dtype_name(a2d)):
        raise LaunchError(f"argument 'bias': expected ({n},) {dtype_name(a2d)}, got {shape_of(bias)} {dtype_name(bias)}")
    return m, n, k


def kernel_arguments(p: LaunchPlan, a2d: object, qweight: object, scales: object, zeros: object,
                     tensor_scale: object, bias: object, out: object, spare_a: object,
                     m: int, n: int, k: int) -> tuple[object, ...]:  # fmt: skip
    """``wx_matmul``'s runtime arguments in parameter order.

    Unused pointers get arrays the caller already has, of the dtype the
    kernel declares for them (see :mod:`lowbit.kernels.wx_matmul`):
    ``qweight`` for ``z`` without zeros, ``spare_a`` (an array of A's dtype:
    the output on the GPU, a scratch array on the emulator, which copies
    buffers) for ``ts`` and ``bias`` when they are unused.
    """
    cx = dict(p.constexprs)
    z = zeros if cx["ZERO"] != "none" else qweight
    ts = tensor_scale if cx["TENSOR_SCALE"] else spare_a
    b = bias if cx["HAS_BIAS"] else spare_a
    return (a2d, qweight, scales, z, ts, b, out, m, n, k)


def kernel() -> lowbit.Kernel:
    """The kernel every plan launches."""
    return wx_matmul
