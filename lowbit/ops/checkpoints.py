"""GPTQ, AWQ and AutoRound checkpoint tensors -> :class:`~lowbit.ops.QuantizedWeight`.

Conventions (docs/ops.md has the sources):

* **GPTQ** (AutoGPTQ ``qlinear_cuda_old.py`` / ``qlinear_cuda.py`` pack and
  dequantise, GPTQModel, exllama): ``qweight`` int32 ``(K*bits/32, N)``
  packed along K LSB-first -- for 2, 4, 8 bits 32/bits codes per word, for
  3 bits a dense 3-bit stream over three words (AutoGPTQ's 10 + 1 + 10 + 1
  + 10 split is exactly that stream), so it *is* lowbit's layout 1 and is
  kept as is; ``qzeros`` int32 ``(G, N*bits/32)`` packed the same way along
  N, holding ``z - 1`` (the historical off-by-one of checkpoint format
  "gptq" v1; kernels add 1 back; format "gptq_v2" stores ``z``); ``scales``
  ``(G, N)`` f16; ``g_idx`` (K,) int32, the group of each input row.
  Value: ``W[k, n] = scales[g_idx[k], n] * (q[k, n] - z[g_idx[k], n])``.
  With act-order (``desc_act``) ``g_idx`` is not ``k // group_size``: the
  rows are sorted by group (stably), the codes repacked in that order and
  the permutation recorded, so each group is again a contiguous run of
  ``group_size`` rows.
* **symmetric GPTQ / AutoRound without qzeros**: the implicit zero is
  ``2**(bits-1)`` (8 for 4 bits); ``q - 8`` is the signed int4 value whose
  code is ``q ^ 8``, so the weight becomes a symmetric ``int<bits>``
  QuantizedWeight -- the same values, no zero tensor.
* **AWQ** (AutoAWQ ``WQLinear_GEMM``, ``awq/utils/packing_utils.py``): 4-bit,
  ``qweight`` int32 ``(K, N/8)`` packed along **N** in the interleaved
  order ``[0, 2, 4, 6, 1, 3, 5, 7]`` (nibble i of a word holds column
  ``ORDER[i]`` of its 8), ``qzeros`` ``(G, N/8)`` packed the same way and
  stored as is (no off-by-one), ``scales`` ``(G, N)`` f16; groups are
  contiguous runs of ``group_size`` rows.  Value ``(q - z) * s``.

Torch inputs give a torch-backed (CPU) result; numpy inputs a numpy-backed
one; either carries its dequantisation facts, decided here on the host
(:meth:`~lowbit.ops.QuantizedWeight.facts`; integer formats have none to
check).  Inputs are not modified.  Problems raise
:class:`~lowbit.errors.CheckpointError` naming the tensor.
"""

from __future__ import annotations

import numpy as np

import lowbit
from lowbit.errors import CheckpointError, QuantizeError
from lowbit.ops._tensors import is_torch, numpy_of
from lowbit.ops.layouts import resolve_layout
from lowbit.ops.qweight import QuantizedWeight

__all__ = ["AWQ_ORDER", "GPTQ_FORMATS", "from_awq", "from_gptq"]

#: AWQ's interleaving of the 8 columns of one int32 word: nibble i holds column AWQ_ORDER[i].
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
#: "gptq" stores z - 1 (v1); "gptq_v2" stores z.
GPTQ_FORMATS = ("gptq", "gptq_v2")


def from_gptq(
    qweight: object,
    qzeros: object,
    scales: object,
    g_idx: object = None,
    *,
    bits: int,
    group_size: int,
    checkpoint_format: str = "gptq",
    layout: int | str = 1,
) -> QuantizedWeight:
    """A GPTQ layer's tensors as a QuantizedWeight (``qzeros=None``: symmetric with the implicit zero).

    ``layout``: the result's ``qweight`` layout version (1 / "lsb", the checkpoint's own stream, by default;
    3 / "kernel" is the order the kernel reads fastest): the same as ``from_gptq(...).repack(layout)``."""
    version = _layout(layout, "GPTQ")
    if bits not in (2, 3, 4, 8):
        raise CheckpointError(f"GPTQ: bits must be 2, 3, 4 or 8, got {bits!r}")
    if checkpoint_format not in GPTQ_FORMATS:
        raise CheckpointError(f"GPTQ: checkpoint_format must be one of {GPTQ_FORMATS}, got {checkpoint_format!r}")
    torch_in = is_torch(qweight)
    qw = _int32_words(qweight, "qweight", 2)
    rows, n = qw.shape
    if (rows * 32) % bits:
        raise CheckpointError(f"GPTQ: qweight has {rows} rows, not a whole number of {bits}-bit codes")
    k = rows * 32 // bits
    glen = _group_length(group_size, k)
    groups = -(-k // glen)
    s = _scales(scales, (groups, n))
    codes = lowbit.unpack(qw, bits, k, axis=0)
    perm = None
    if g_idx is not None:
        perm = _gptq_order(numpy_of(g_idx), k, glen, groups)
        if perm is not None:
            codes = codes[perm]
    if qzeros is None:  # implicit zero 2**(bits-1): (q - z) is the signed value whose code is q ^ z
        half = 1 << (bits - 1)
        out = QuantizedWeight(
            wtype=f"int{bits}", shape=(k, n), group_size=group_size, zero="none",
            qweight=lowbit.pack(codes ^ np.uint8(half), bits, axis=0), scales=s, perm=perm,
        )  # fmt: skip
        return _placed(out, torch_in, version)
    qz = _int32_words(qzeros, "qzeros", 2)
    if qz.shape != (groups, -(-n * bits // 32)):
        raise CheckpointError(f"GPTQ: qzeros has shape {qz.shape}, expected ({groups}, {-(-n * bits // 32)})")
    fields = lowbit.unpack(qz, bits, n, axis=1).astype(np.int64)
    z = fields + 1 if checkpoint_format == "gptq" else fields
    if z.max(initial=0) >= 1 << bits:
        g, col = (int(i) for i in np.unravel_index(int(np.argmax(z >= 1 << bits)), z.shape))
        raise CheckpointError(
            f"GPTQ: qzeros[{g}] column {col} holds {1 << bits} after the format's +1: a zero point of 0 stored "
            f"as -1 (the historical off-by-one, which also corrupts the neighbouring fields); uint{bits} zero "
            "codes cannot hold it. Re-export the layer as checkpoint_format='gptq_v2'"
        )
    out = QuantizedWeight(
        wtype=f"uint{bits}", shape=(k, n), group_size=group_size, zero="int",
        qweight=lowbit.pack(codes, bits, axis=0), scales=s,
        zeros=lowbit.pack(z.astype(np.uint8).reshape(-1), bits), perm=perm,
    )  # fmt: skip
    return _placed(out, torch_in, version)


def from_awq(qweight: object, qzeros: object, scales: object, *, bits: int = 4, group_size: int,
             layout: int | str = 1) -> QuantizedWeight:  # fmt: skip
    """An AWQ (GEMM) layer's tensors as a QuantizedWeight of uint4 with integer zeros (``layout``: as
    :func:`from_gptq`'s)."""
    version = _layout(layout, "AWQ")
    if bits != 4:
        raise CheckpointError(f"AWQ: only the 4-bit GEMM packing is supported, got bits={bits!r}")
    torch_in = is_torch(qweight)
    qw = _int32_words(qweight, "qweight", 2)
    k, words = qw.shape
    n = words * 8
    glen = _group_length(group_size, k)
    groups = -(-k // glen)
    s = _scales(scales, (groups, n))
    qz = _int32_words(qzeros, "qzeros", 2)
    if qz.shape != (groups, words):
        raise CheckpointError(f"AWQ: qzeros has shape {qz.shape}, expected ({groups}, {words})")
    codes = _awq_unpack(qw)
    z = _awq_unpack(qz)
    out = QuantizedWeight(
        wtype="uint4", shape=(k, n), group_size=group_size, zero="int",
        qweight=lowbit.pack(codes, 4, axis=0), scales=s, zeros=lowbit.pack(z.reshape(-1), 4),
    )  # fmt: skip
    return _placed(out, torch_in, version)


def _layout(layout: object, method: str) -> int:
    """The layout version ``layout`` names; a CheckpointError naming the method otherwise."""
    try:
        return resolve_layout(layout, f"{method}: layout")
    except QuantizeError as exc:
        raise CheckpointError(str(exc)) from None


def _placed(qw: QuantizedWeight, torch_in: bool, version: int) -> QuantizedWeight:
    """The imported weight in layout ``version`` with its dequantisation facts decided on these host arrays, as
    torch tensors if the checkpoint's were (``to`` carries the facts)."""
    qw = qw._decided()
    if version != qw.layout:
        qw = qw.repack(version)
    return qw.to("cpu") if torch_in else qw


def _awq_unpack(words: np.ndarray) -> np.ndarray:
    """(R, N/8) interleaved words -> (R, N) 4-bit codes in column order."""
    nib = lowbit.unpack(words, 4, words.shape[1] * 8, axis=1)  # nibble i of word w at column 8w + i
    inverse = np.argsort(np.asarray(AWQ_ORDER))  # column c of a word sits in nibble inverse[c]
    idx = (np.arange(words.shape[1])[:, None] * 8 + inverse[None, :]).reshape(-1)
    return np.ascontiguousarray(nib[:, idx])


def _gptq_order(g: np.ndarray, k: int, glen: int, groups: int) -> np.ndarray | None:
    """None when ``g_idx`` is the plain ``k // group``; else the stable sort of rows by group."""
    if g.shape != (k,) or not np.issubdtype(g.dtype, np.integer):
        raise CheckpointError(f"GPTQ: g_idx must be a ({k},) integer tensor, got shape {g.shape} dtype {g.dtype}")
    if g.min(initial=0) < 0 or g.max(initial=0) >= groups:
        raise CheckpointError(f"GPTQ: g_idx values must lie in [0, {groups}), got [{g.min()}, {g.max()}]")
    plain = np.arange(k) // glen
    if np.array_equal(g, plain):
        return None
    order = np.argsort(g, kind="stable")
    if not np.array_equal(g[order], plain):
        counts = np.bincount(g, minlength=groups)
        bad = int(np.argmax(counts != np.bincount(plain, minlength=groups)))
        raise CheckpointError(
            f"GPTQ: g_idx gives group {bad} {int(counts[bad])} rows; act-order needs every group to hold "
            f"group_size={glen} rows (the last one the remainder)"
        )
    return order.astype(np.int64)


def _group_length(group_size: object, k: int) -> int:
    if not isinstance(group_size, int) or isinstance(group_size, bool) or (group_size != -1 and group_size < 1):
        raise CheckpointError(f"group_size must be a positive integer or -1, got {group_size!r}")
    return k if group_size == -1 else group_size


def _int32_words(x: object, name: str, ndim: int) -> np.ndarray:
    arr = numpy_of(x)
    if arr.ndim != ndim or arr.dtype not in (np.dtype(np.int32), np.dtype(np.uint32)):
        raise CheckpointError(f"{name} must be a {ndim}-D int32 tensor, got shape {arr.shape} dtype {arr.dtype}")
    return np.ascontiguousarray(arr).view(np.uint32)


def _scales(x: object, shape: tuple[int, int]) -> np.ndarray:
    arr = numpy_of(x)
    if arr.shape != shape:
        raise CheckpointError(f"scales has shape {arr.shape}, expected {shape}")
    if arr.dtype.name not in ("float16", "bfloat16", "float32"):
        raise CheckpointError(f"scales must be f16, bf16 or f32, got {arr.dtype}")
    return np.array(arr, copy=True)
