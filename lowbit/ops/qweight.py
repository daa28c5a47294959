"""``QuantizedWeight``: a quantized (K, N) weight in the form the kernels read, and ``quantize_weight``.

It extends :class:`lowbit.QuantizedTensor` (same (K, N) orientation, same
quantization rules, see :mod:`lowbit.quant`) with what a deployed weight
needs: codes *packed* in a named, versioned layout, an optional K
permutation (GPTQ's act-order), and storage that is either numpy arrays or
torch tensors -- plain tensors a ``state_dict`` (and safetensors) can hold.

Fields (numpy dtype / torch dtype):

* ``qweight`` -- ``(rows, N)`` uint32 / int32 words in layout ``layout``
  (:mod:`lowbit.ops.layouts` defines them):

  - version 1 (``"lsb"``, the default): ``lowbit.pack(codes, bits,
    axis=0)``, code ``(k, n)`` at bit ``k*bits`` of column n's word stream
    (the order GPTQ's ``qweight`` already uses for 2, 3, 4 and 8 bits);
    ``rows = ceil(K*bits/32)``;
  - version 2 (``"planes"``, FP6-LLM's bit planes): the code split into
    planes of power-of-two widths ``lowbit.packing.plane_widths(bits)``
    (3 -> 2+1, 5 -> 4+1, 6 -> 4+2, 7 -> 4+2+1; the widest holds the low
    bits), each packed as version 1 packs (``lowbit.pack(plane, w, axis=0)``)
    and stacked along the rows, widest first: plane p starts at row
    ``sum(ceil(K*w_q/32) for q < p)``, ``rows = sum_p ceil(K*w_p/32)``, so
    no load straddles a word.  The array has ``4*N*rows`` bytes:
    ``K*N*bits/8`` exactly when K is a multiple of 32, at most
    ``4*N*(planes - 1)`` more otherwise.  Widths 1, 2, 4, 8 have one plane:
    their version 2 is byte-identical to version 1.

  - version 3 (``"kernel"``, Marlin-style pre-permutation): the planes of
    version 2, each rearranged so that the words one ``wx_matmul`` thread
    loads hold exactly the codes of its mma B fragments, two rows of a
    fragment pair in the two halves of one word; K is zero-padded to a
    multiple of 128, ``rows = ceil(K/128)*4*bits`` (version 1's bytes when
    K is a multiple of 128), column n's words stay in column n.  The
    formula is in :mod:`lowbit.ops.layouts`.

  :meth:`QuantizedWeight.repack` converts between versions (a new weight;
  ``repack(2).repack(1)`` is the original bit for bit).
* ``scales`` -- ``(G, N)``, G = ``ceil(K/group)`` (1 per channel): f16, bf16
  or f32; for MX/NVFP4 the uint8 block-scale codes (e8m0 / ue4m3).
* ``zeros`` -- ``zero="int"``: the (G, N) integer zero *codes* of the
  element type as one dense LSB-first stream, row-major, packed in
  uint32 / int32 words of ``zbits``-bit fields, shape
  ``(ceil(G*N*zbits/32),)``: ``zbits = bits``, except in version 3 for
  widths 3, 5, 6, 7, where each zero takes a byte (``zbits = 8``, so that a
  thread's zeros never straddle words; :func:`lowbit.ops.layouts.zero_bits`);
  ``zero="float"``: (G, N) floats of the scales' dtype; ``"none"``: None.
* ``perm`` -- None, or (K,) int64: stored row k is row ``perm[k]`` of the
  original weight, so ``A @ W == A[:, perm] @ W_stored``.
* ``tensor_scale`` -- NVFP4's per-tensor scale as a (1,) float32 array, else None.

Metadata: ``wtype`` (a lowbit format: ``uint4``, ``e2m1``, ``nf4``, a
codebook, ``mxfp4``, ``nvfp4``...), ``shape`` (K, N), ``group_size`` (-1:
per channel; the block for MX/NVFP4), ``zero`` ("none" | "int" | "float"),
``layout`` (the version number, 1, 2 or 3; the constructor also takes the
names "lsb" / "planes" / "kernel").  Construction validates every shape and dtype and
raises :class:`~lowbit.errors.QuantizeError` naming the field.

Dequantisation facts (:meth:`QuantizedWeight.facts`): per activation dtype
(f16, bf16), whether ``wx_matmul`` may fold the float codes' exponent-bias
correction into the scales (FOLD) and whether the codes may be read
through the format's NaN-free twin (no NaN code present); see
:mod:`lowbit.ops._fold`.  They are facts about the *values*, decided on
the host once per weight and carried by it, so that no launch reads a
value (the torch op takes them as Python constants, which
``torch.compile`` bakes into the graph):

* the constructors that pack -- :func:`quantize_weight`,
  :meth:`QuantizedWeight.from_quantized_tensor`, the checkpoint imports
  (:mod:`lowbit.ops.checkpoints`) -- decide them at once, on the host copy,
  before any device move;
* a QuantizedWeight built directly from arrays decides them on first use
  (``facts()``: one host copy for device tensors, i.e. one synchronisation),
  then keeps them;
* :meth:`~QuantizedWeight.to`, :meth:`~QuantizedWeight.numpy` and
  :meth:`~QuantizedWeight.repack` pass them on (the values are the same);
  ``dataclasses.replace`` with new arrays builds a weight that decides its own.

The container is frozen and its numpy arrays are stored read-only (views:
the caller's arrays keep their flags); torch tensors are watched through
torch's in-place version counter, so a tensor changed in place makes the
next eager ``facts()`` decide again.  (An array changed in place through
a reference kept outside the container is not seen: build a new weight
instead, and so is one of an inference tensor, which has no version
counter.  Under ``torch.compile`` the facts already decided are used as
they are, or none when none are.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

import lowbit
from lowbit.errors import QuantizeError
from lowbit.ops._fold import ACTIVATIONS, NO_FACTS, DequantFacts, weight_facts
from lowbit.ops._tensors import dtype_name, is_torch, numpy_of, shape_of, torch_of
from lowbit.ops.layouts import (
    LAYOUTS, pack_codes, pack_zeros, qweight_rows, resolve_layout, unpack_codes, unpack_zeros, zero_bits, zero_words,
)  # fmt: skip

__all__ = [
    "LAYOUTS", "QuantizedWeight", "ZERO_CONVENTIONS", "default_config", "quantize_weight", "resolve_wtype",
    "tensor_specs",
]  # fmt: skip

ZERO_CONVENTIONS = ("none", "int", "float")
_SCALE_NAMES = ("f16", "bf16", "f32")
_TENSOR_FIELDS = ("qweight", "scales", "zeros", "perm", "tensor_scale")


def resolve_wtype(wtype: object) -> object:
    """A weight format from a name or a format object (``"uint4"``, ``lowbit.nf4``, ``"mxfp4"``...)."""
    if isinstance(wtype, lowbit.ScaledType | lowbit.DType):
        fmt = wtype
    elif isinstance(wtype, str):
        try:
            fmt = lowbit.dtype(wtype)
        except lowbit.errors.LowbitError as exc:
            raise QuantizeError(f"unknown weight format {wtype!r}: {exc}") from None
    else:
        raise QuantizeError(f"wtype must be a format name or a lowbit format, got {type(wtype).__name__}")
    if not isinstance(fmt, lowbit.ScaledType) and (fmt.bits > 8 or fmt.name in ("f16", "bf16", "f32", "f64")):
        raise QuantizeError(f"weight format {fmt.name} is not a format of at most 8 bits")
    return fmt


def default_config(fmt: object, group_size: int | None, zero: str | None) -> tuple[int, str]:
    """``(group_size, zero)`` with the defaults filled in: 128 (the block for MX/NVFP4); "int" for
    unsigned integer formats, "none" otherwise."""
    if isinstance(fmt, lowbit.ScaledType):
        if group_size not in (None, fmt.block):
            raise QuantizeError(f"{fmt.name} has a fixed block of {fmt.block} along K; got group_size={group_size!r}")
        group_size = fmt.block
    elif group_size is None:
        group_size = 128
    if zero is None:
        zero = "int" if (isinstance(fmt, lowbit.IntType) and not fmt.is_signed) else "none"
    if zero not in ZERO_CONVENTIONS:
        raise QuantizeError(f"zero must be one of {ZERO_CONVENTIONS}, got {zero!r}")
    return group_size, zero


def tensor_specs(fmt: object, k: int, n: int, group_size: int, zero: str, scale_dtype: str = "f16",
                 act_order: bool = False, layout: int = 1) -> dict[str, tuple[tuple[int, ...], str]]:  # fmt: skip
    """``{field: (shape, dtype name)}`` of a (k, n) QuantizedWeight's arrays (numpy names: words are uint32)."""
    scaled = isinstance(fmt, lowbit.ScaledType)
    bits = int((fmt.element if scaled else fmt).bits)
    g = -(-k // (k if group_size == -1 else group_size))
    version = resolve_layout(layout)
    specs = {"qweight": ((qweight_rows(k, bits, version), n), "uint32"), "scales": ((g, n), "uint8" if scaled else scale_dtype)}
    if zero == "int":
        specs["zeros"] = ((zero_words(g, n, bits, version),), "uint32")
    elif zero == "float":
        specs["zeros"] = ((g, n), scale_dtype)
    if act_order:
        specs["perm"] = ((k,), "int64")
    if scaled and fmt.has_tensor_scale:
        specs["tensor_scale"] = ((1,), "f32")
    return specs


@dataclass(frozen=True, eq=False)
class QuantizedWeight:
    """A quantized (K, N) weight: packed codes, scales, zeros, permutation (see the module docstring)."""

    wtype: object
    shape: tuple[int, int]
    group_size: int
    zero: str
    qweight: object
    scales: object
    zeros: object = None
    perm: object = None
    tensor_scale: object = None
    layout: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "wtype", resolve_wtype(self.wtype))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        _validate(self)
        for f in _TENSOR_FIELDS:  # numpy fields read-only: a view, so the caller's array keeps its flags
            v = getattr(self, f)
            if isinstance(v, np.ndarray) and v.flags.writeable:
                v = v.view()
                v.flags.writeable = False
                object.__setattr__(self, f, v)
        object.__setattr__(self, "_facts", None)  # (watched tensors and versions, {act: DequantFacts}) once decided

    # -- dequantisation facts ------------------------------------------------------------
    def facts(self, act: str) -> DequantFacts:
        """``(fold, finite)`` for activations of dtype ``act`` ("f16" / "bf16"; anything else: both False).

        What :func:`lowbit.ops._launch.plan` takes as ``fold`` / ``finite``: decided on the values once
        (see the module docstring) and returned from the record after that -- no value is read then,
        so a call costs a dict lookup (plus, for torch tensors, a read of their version counters).
        Meta tensors, and a weight first asked while ``torch.compile`` traces, get ``(False, False)``:
        the unchecked launch, always correct.
        """
        if act not in ACTIVATIONS:
            return NO_FACTS
        table = self._facts_table()
        return NO_FACTS if table is None else table[act]

    def _facts_table(self) -> dict[str, DequantFacts] | None:
        """``{act: DequantFacts}`` for the values as they are (decided now if not yet); None if unreadable."""
        table = self._current_facts()
        if table is not None or (self.is_torch and (_compiling() or self.qweight.device.type == "meta")):
            return table
        return self._decide_facts()

    def _current_facts(self) -> dict[str, DequantFacts] | None:
        """The facts decided so far if they still describe the values (never decides)."""
        cached = self._facts
        if cached is None:
            return None
        watch, table = cached
        if watch and not _compiling():  # numpy is read-only; while tracing, version counters cannot be read
            for t, version in watch:
                if t._version != version:
                    return None  # changed in place since
        return table

    def _watch(self) -> tuple[tuple[object, int], ...]:
        """(tensor, version counter) of each torch field (numpy fields are read-only; inference tensors have no
        counter and are not watched)."""
        if not self.is_torch:
            return ()
        return tuple((t, t._version) for t in self.tensors().values() if not t.is_inference())

    def _decide_facts(self) -> dict[str, DequantFacts]:
        watch = self._watch()
        facts = weight_facts(self._host())
        object.__setattr__(self, "_facts", (watch, facts))
        return facts

    def _adopt_facts(self, facts: dict[str, DequantFacts]) -> QuantizedWeight:
        """Record ``facts`` as decided for the values as they are now (callers that know them: moves, QuantLinear)."""
        object.__setattr__(self, "_facts", (self._watch(), facts))
        return self

    def _decided(self) -> QuantizedWeight:
        """``self`` with its facts decided (the packing constructors call this before any device move)."""
        self._facts_table()
        return self

    def _pass_facts(self, new: QuantizedWeight) -> QuantizedWeight:
        """``new`` (the same values as ``self``: moved, converted or repacked) with ``self``'s facts, if decided."""
        table = self._current_facts() if new is not self else None
        if table is not None:
            new._adopt_facts(table)
        return new

    # -- description -----------------------------------------------------------------
    @property
    def element(self) -> lowbit.DType:
        """The dtype of one code (the element type of a block-scaled format)."""
        return self.wtype.element if isinstance(self.wtype, lowbit.ScaledType) else self.wtype

    @property
    def bits(self) -> int:
        return int(self.element.bits)

    @property
    def group_length(self) -> int:
        """Rows of K per group (K for per-channel)."""
        return self.shape[0] if self.group_size == -1 else self.group_size

    @property
    def num_groups(self) -> int:
        return -(-self.shape[0] // self.group_length)

    @property
    def scale_format(self) -> lowbit.DType:
        """The scale's format: f16 / bf16 / f32, or e8m0 / ue4m3 codes for block-scaled weights."""
        if isinstance(self.wtype, lowbit.ScaledType):
            return self.wtype.scale
        return lowbit.dtype(dtype_name(self.scales))

    @property
    def layout_name(self) -> str:
        return LAYOUTS[self.layout]

    @property
    def is_torch(self) -> bool:
        return is_torch(self.qweight)

    @property
    def device(self) -> object:
        """The torch device of the tensors, or ``"numpy"``."""
        return self.qweight.device if self.is_torch else "numpy"

    def __repr__(self) -> str:
        k, n = self.shape
        extra = (", act-order" if self.perm is not None else "") + (f" on {self.device}" if self.is_torch else "")
        return (
            f"QuantizedWeight({self.wtype.name}, K={k}, N={n}, group_size={self.group_size}, zero={self.zero!r}, "
            f"scales={self.scale_format.name}, layout={self.layout_name}/v{self.layout}{extra})"
        )

    # -- conversions -----------------------------------------------------------------
    def tensors(self) -> dict[str, object]:
        """The non-None arrays by field name: what a ``state_dict`` holds."""
        return {f: getattr(self, f) for f in _TENSOR_FIELDS if getattr(self, f) is not None}

    def numpy(self) -> QuantizedWeight:
        """The same weight backed by numpy arrays (int32 words become uint32), with its facts.

        A numpy weight is returned as is; a torch weight's arrays are copies (never views of the tensors, which
        torch could change in place behind the numpy weight's facts).
        """
        return self._pass_facts(self._host())

    def _host(self) -> QuantizedWeight:
        """:meth:`numpy` without the facts (what they are decided on)."""
        if not self.is_torch:
            return self
        # A CPU tensor's numpy() shares its memory, which torch may change in place: copy, so that the numpy
        # weight's values (and facts) are its own.  Other devices are copied to the host anyway.
        out = {f: numpy_of(v).copy() if v.device.type == "cpu" else numpy_of(v) for f, v in self.tensors().items()}
        for f in ("qweight", "zeros"):
            if f in out and out[f].dtype == np.int32:
                out[f] = out[f].view(np.uint32)
        return replace(self, **out)

    def to(self, device: object) -> QuantizedWeight:
        """The same weight as torch tensors on ``device`` (``"cpu"``, ``"cuda"``...), with the same facts."""
        if self.is_torch:
            return self._pass_facts(replace(self, **{f: v.to(device) for f, v in self.tensors().items()}))
        return self._pass_facts(replace(self, **{f: torch_of(v, device) for f, v in self.tensors().items()}))

    def codes(self) -> np.ndarray:
        """The (K, N) unsigned codes in *stored* row order (numpy uint8), whatever the layout."""
        return unpack_codes(numpy_of(self.qweight), self.bits, self.shape[0], self.layout)

    def repack(self, layout: int | str) -> QuantizedWeight:
        """The same weight with ``qweight`` in layout ``layout`` (1 / "lsb", 2 / "planes", 3 / "kernel"); a new object.

        ``self`` is never modified; the result has the same kind of storage
        (numpy, or torch on the same device) and shares the other fields'
        arrays with ``self`` (they are the same in every layout); ``qweight``
        is a new array unless the layout is already ``layout`` (then the
        result shares every array), and so are integer ``zeros`` where the
        two versions store them differently (one byte a zero in version 3 for
        widths 3, 5, 6, 7: :mod:`lowbit.ops.layouts`).  For widths 1, 2, 4, 8
        versions 1 and 2 are the same bytes.  Any round trip (``qw.repack(3).repack(1)``...)
        equals ``qw`` bit for bit.
        """
        version = resolve_layout(layout, "QuantizedWeight.repack")
        if version == self.layout:
            return self._pass_facts(replace(self))
        new = {"qweight": pack_codes(self.codes(), self.bits, version), "layout": version}
        if self.zero == "int" and zero_bits(self.bits, version) != zero_bits(self.bits, self.layout):
            new["zeros"] = pack_zeros(self.zero_codes(), self.bits, version)
        if self.is_torch:
            new.update({f: torch_of(v, self.device) for f, v in new.items() if f != "layout"})
        return self._pass_facts(replace(self, **new))  # the same codes and zeros: the same facts

    def zero_codes(self) -> np.ndarray | None:
        """The (G, N) integer zero codes (``zero="int"``), else None."""
        if self.zero != "int":
            return None
        return unpack_zeros(numpy_of(self.zeros), self.bits, self.num_groups, self.shape[1], self.layout)

    def to_quantized_tensor(self) -> lowbit.QuantizedTensor:
        """The :class:`lowbit.QuantizedTensor` of the *stored* rows (the permutation is not applied)."""
        if self.zero == "float":
            zeros = numpy_of(self.zeros)
        else:
            zeros = self.zero_codes()
        ts = None if self.tensor_scale is None else np.float32(numpy_of(self.tensor_scale).reshape(-1)[0])
        return lowbit.QuantizedTensor(
            codes=_frozen(self.codes()),
            scales=_frozen(numpy_of(self.scales)),
            zeros=None if zeros is None else _frozen(zeros),
            dtype=self.wtype,
            group_size=self.group_size,
            shape=self.shape,
            zero=None if self.zero == "none" else self.zero,
            tensor_scale=ts,
        )

    @classmethod
    def from_quantized_tensor(cls, q: lowbit.QuantizedTensor, perm: object = None,
                              layout: int | str = 1) -> QuantizedWeight:  # fmt: skip
        """Pack a :class:`lowbit.QuantizedTensor` (whose rows are already in ``perm`` order, if given) in ``layout``."""
        version = resolve_layout(layout, "from_quantized_tensor")
        if not isinstance(q, lowbit.QuantizedTensor):
            raise QuantizeError(f"from_quantized_tensor: expected a lowbit.QuantizedTensor, got {type(q).__name__}")
        if q.group_types is not None:
            raise QuantizeError("from_quantized_tensor: per-group format tags (group_types) are not supported")
        fmt = q.dtype
        bits = int((fmt.element if isinstance(fmt, lowbit.ScaledType) else fmt).bits)
        zero = q.zero or "none"
        if zero == "int":
            zeros = pack_zeros(np.asarray(q.zeros), bits, version)
        elif zero == "float":
            zeros = np.ascontiguousarray(q.zeros)
        else:
            zeros = None
        ts = None if q.tensor_scale is None else np.array([q.tensor_scale], dtype=np.float32)
        return cls(
            wtype=fmt,
            shape=q.shape,
            group_size=q.group_size,
            zero=zero,
            qweight=pack_codes(q.codes, bits, version),
            scales=np.ascontiguousarray(q.scales),
            zeros=zeros,
            perm=None if perm is None else np.asarray(perm, dtype=np.int64).copy(),
            tensor_scale=ts,
            layout=version,
        )._decided()

    def dequantize(self) -> object:
        """The (K, N) weight in the *original* row order: float64 numpy, or float32 torch on the weight's device."""
        w = self.to_quantized_tensor().dequantize(np.float64)
        if self.perm is not None:
            out = np.empty_like(w)
            out[numpy_of(self.perm)] = w
            w = out
        if self.is_torch:
            return torch_of(w.astype(np.float32), self.device)
        return w


def quantize_weight(
    w: object,
    wtype: object,
    group_size: int | None = None,
    zero: str | None = None,
    scale_dtype: str = "f16",
    perm: object = None,
    layout: int | str = 1,
) -> QuantizedWeight:
    """Quantize a (K, N) weight (numpy array or torch tensor; pass ``linear.weight.T``) into a QuantizedWeight.

    ``wtype``: any format of at most 8 bits or a block-scaled one.
    ``group_size``: rows of K per group (default 128, -1 per channel; MX and
    NVFP4 have their fixed block).  ``zero``: "int" (integer zero points,
    GPTQ/AWQ style), "float" or "none" (symmetric); the default is "int"
    for unsigned integer formats and "none" for everything else.
    ``scale_dtype``: f16, bf16 or f32.  ``perm``: an optional (K,)
    permutation (act-order): rows are reordered by it *before* grouping and
    the permutation is recorded.  ``layout``: the ``qweight`` layout
    version, 1 / "lsb" (default), 2 / "planes" or 3 / "kernel" (see the module docstring).
    A torch input gives a torch-backed result
    on its device; ``w`` is never modified.  Rules: :mod:`lowbit.quant`.
    """
    fmt = resolve_wtype(wtype)
    version = resolve_layout(layout, "quantize_weight")
    is_scaled = isinstance(fmt, lowbit.ScaledType)
    try:
        group_size, zero = default_config(fmt, group_size, zero)
    except QuantizeError as exc:
        raise QuantizeError(f"quantize_weight: {exc}") from None
    device = w.device if is_torch(w) else None
    arr = numpy_of(w)
    if arr.ndim != 2:
        raise QuantizeError(f"quantize_weight: w must be 2-D (K, N) = (in_features, out_features), got shape {arr.shape}")
    p = None
    if perm is not None:
        p = _check_perm(numpy_of(perm), arr.shape[0], "quantize_weight: perm")
        arr = arr[p]
    if is_scaled:
        q = lowbit.quantize(arr, fmt, group_size=group_size, symmetric=(zero == "none"))
    else:
        q = lowbit.quantize(
            arr, fmt, group_size=group_size, symmetric=(zero == "none"),
            zero="int" if zero == "none" else zero, scale_dtype=scale_dtype,
        )  # fmt: skip
    qw = QuantizedWeight.from_quantized_tensor(q, perm=p, layout=version)  # its facts decided here, on the host
    return qw if device is None else qw.to(device)


# -- validation --------------------------------------------------------------------------


def _validate(qw: QuantizedWeight) -> None:
    fmt = qw.wtype
    k, n = qw.shape if len(qw.shape) == 2 else (0, 0)
    if len(qw.shape) != 2 or k < 1 or n < 1:
        raise QuantizeError(f"QuantizedWeight: shape must be (K, N) with K, N >= 1, got {qw.shape}")
    object.__setattr__(qw, "layout", resolve_layout(qw.layout, "QuantizedWeight"))
    if qw.zero not in ZERO_CONVENTIONS:
        raise QuantizeError(f"QuantizedWeight: zero must be one of {ZERO_CONVENTIONS}, got {qw.zero!r}")
    scaled = isinstance(fmt, lowbit.ScaledType)
    gs = qw.group_size
    if not isinstance(gs, int) or isinstance(gs, bool) or (gs != -1 and gs < 1):
        raise QuantizeError(f"QuantizedWeight: group_size must be a positive integer or -1, got {gs!r}")
    if scaled and gs != fmt.block:
        raise QuantizeError(f"QuantizedWeight: {fmt.name} has blocks of {fmt.block} along K, got group_size={gs}")
    if scaled and qw.zero != "none":
        raise QuantizeError(f"QuantizedWeight: {fmt.name} is symmetric; zero must be 'none', got {qw.zero!r}")
    if qw.zero == "int" and not isinstance(qw.element, lowbit.IntType):
        raise QuantizeError(f"QuantizedWeight: integer zero points need an integer format, got {fmt.name}")
    kinds = {is_torch(v) for v in qw.tensors().values()}
    if len(kinds) > 1:
        raise QuantizeError("QuantizedWeight: mix of numpy arrays and torch tensors; use one kind for every field")
    if kinds == {True}:
        devices = {str(v.device) for v in qw.tensors().values()}
        if len(devices) > 1:
            raise QuantizeError(f"QuantizedWeight: tensors on different devices {sorted(devices)}")
    bits = qw.bits
    g = qw.num_groups
    words = ("uint32", "int32")
    _check(qw.qweight, "qweight", (qweight_rows(k, bits, qw.layout), n), words,
           f" (layout {qw.layout}, {LAYOUTS[qw.layout]!r}, for K={k} codes of {bits} bits)")
    if scaled:
        _check(qw.scales, "scales", (g, n), ("uint8",))
    else:
        _check(qw.scales, "scales", (g, n), _SCALE_NAMES)
    if qw.zero == "int":
        _check(qw.zeros, "zeros", (zero_words(g, n, bits, qw.layout),), words,
               f" (layout {qw.layout}: {g}x{n} zeros of {zero_bits(bits, qw.layout)} bits)")
    elif qw.zero == "float":
        _check(qw.zeros, "zeros", (g, n), (dtype_name(qw.scales),))
    elif qw.zeros is not None:
        raise QuantizeError("QuantizedWeight: zero='none' takes no zeros")
    if qw.perm is not None:
        _check(qw.perm, "perm", (k,), ("int64",))
        _check_perm(numpy_of(qw.perm), k, "QuantizedWeight: perm")
    needs_ts = scaled and fmt.has_tensor_scale
    if needs_ts:
        _check(qw.tensor_scale, "tensor_scale", (1,), ("f32",))
    elif qw.tensor_scale is not None:
        raise QuantizeError(f"QuantizedWeight: {fmt.name} has no tensor scale, but tensor_scale was given")


def _check(x: object, field: str, shape: tuple[int, ...], dtypes: tuple[str, ...], why: str = "") -> None:
    if x is None:
        raise QuantizeError(f"QuantizedWeight: {field} is required here, got None")
    if not (is_torch(x) or isinstance(x, np.ndarray)):
        raise QuantizeError(f"QuantizedWeight: {field} must be a numpy array or a torch tensor, got {type(x).__name__}")
    if shape_of(x) != shape:
        raise QuantizeError(f"QuantizedWeight: {field} has shape {shape_of(x)}, expected {shape}{why}")
    if dtype_name(x) not in dtypes:
        raise QuantizeError(f"QuantizedWeight: {field} has dtype {dtype_name(x)}, expected one of {dtypes}")
    contiguous = x.is_contiguous() if is_torch(x) else x.flags.c_contiguous
    if not contiguous:
        raise QuantizeError(f"QuantizedWeight: {field} must be contiguous")


def _check_perm(p: np.ndarray, k: int, where: str) -> np.ndarray:
    p = np.asarray(p)
    if p.shape != (k,) or not np.issubdtype(p.dtype, np.integer):
        raise QuantizeError(f"{where} must be a ({k},) integer permutation of range(K), got shape {p.shape} dtype {p.dtype}")
    if not np.array_equal(np.sort(p), np.arange(k)):
        raise QuantizeError(f"{where} is not a permutation of range({k})")
    return p.astype(np.int64)


def _compiling() -> bool:
    """Whether torch.compile is tracing (tensor values, version counters included, are not readable then)."""
    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.compiler.is_compiling())


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a
