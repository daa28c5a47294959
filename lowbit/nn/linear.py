"""``QuantLinear``: an ``nn.Linear`` whose weight is a :class:`~lowbit.ops.QuantizedWeight`.

``forward(x)`` is one call of ``torch.ops.lowbit.matmul`` (traced as one node
by ``torch.compile``; CPU tensors take the reference path, CUDA tensors the
``wx_matmul`` kernel).  The weight lives in buffers named after the
QuantizedWeight fields -- ``qweight``, ``scales``, ``zeros``, ``perm``,
``tensor_scale`` (those the format uses) -- plus ``bias``, so a
``state_dict`` holds only contiguous tensors that share no storage
(safetensors-friendly).  The format, group size and zero convention are
constructor arguments, as ``in_features``/``out_features`` are for
``nn.Linear``: build the module, then ``load_state_dict``.  So is the
``qweight`` layout version (``layout=1`` "lsb", the default, 2 "planes" or 3
"kernel", see :mod:`lowbit.ops.layouts`): a state dict does not record it,
and a version-2 ``qweight`` loads only into a module built with ``layout=2``
(for widths 3, 5, 6, 7 the two versions have the same shape whenever K is a
multiple of 32, so the module's argument is what tells them apart).  The
buffers' shapes follow the version: in version 3 the integer ``zeros`` of
widths 3, 5, 6, 7 take one byte each (``(ceil(G*N/4),)`` words).

``module.half()`` / ``.to(torch.bfloat16)`` convert ``bias`` only: the
quantization buffers keep their stored dtypes (a scale rounded to another
type would change the weight), while device moves apply to all.

The weight's dequantisation facts (FOLD, the NaN-free twin: see
:meth:`lowbit.ops.QuantizedWeight.facts`) are kept on the module and passed
to the op as Python constants, per activation dtype: taken from the
QuantizedWeight in :meth:`QuantLinear.from_quantized_weight` /
:meth:`~QuantLinear.from_linear` (decided there on the host), decided again
from the buffers after ``load_state_dict`` and whenever a quantization
buffer is replaced or changed in place (torch's version counters; checked
by an eager ``forward``, which then reads the buffers once: on a GPU one
synchronisation), and carried over device moves (the values do not change;
``to_empty`` drops them).  Under ``torch.compile`` the facts decided so far
are constants of the graph; when none are, the op runs without them (the
same results: the unchecked kernel is always correct).
"""

from __future__ import annotations

import torch
from torch import nn

from lowbit.errors import LowbitError, QuantizeError
from lowbit.ops import torch_ops  # noqa: F401 - registers torch.ops.lowbit.matmul
from lowbit.ops.layouts import resolve_layout
from lowbit.ops.qweight import QuantizedWeight, default_config, quantize_weight, resolve_wtype, tensor_specs

__all__ = ["QuantLinear"]

_QUANT_BUFFERS = ("qweight", "scales", "zeros", "perm", "tensor_scale")
_TORCH_SCALE = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
_TORCH_DTYPES = {**_TORCH_SCALE, "uint32": torch.int32, "uint8": torch.uint8, "int64": torch.int64}
_ACTIVATIONS = {torch.float16: "f16", torch.bfloat16: "bf16"}


class QuantLinear(nn.Module):
    """``y = x @ W + bias`` with W (in_features x out_features) quantized; x of dtype f16/bf16 (f32 on CPU)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        wtype: object = "uint4",
        group_size: int | None = None,
        zero: str | None = None,
        scale_dtype: str = "f16",
        act_order: bool = False,
        layout: int | str = 1,
        dtype: torch.dtype = torch.float16,
        device: object = None,
    ) -> None:
        super().__init__()
        fmt = resolve_wtype(wtype)
        self.group_size, self.zero = default_config(fmt, group_size, zero)
        if scale_dtype not in _TORCH_SCALE:
            raise QuantizeError(f"QuantLinear: scale_dtype must be one of {sorted(_TORCH_SCALE)}, got {scale_dtype!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.wtype = fmt
        self.layout = resolve_layout(layout, "QuantLinear")
        # Zero-filled buffers of the right shapes and dtypes: from_quantized_weight / load_state_dict fill them.
        specs = tensor_specs(fmt, self.in_features, self.out_features, self.group_size, self.zero, scale_dtype,
                             act_order, self.layout)  # fmt: skip
        for name in _QUANT_BUFFERS:
            if name in specs:
                shape, dt = specs[name]
                self.register_buffer(name, torch.zeros(shape, dtype=_TORCH_DTYPES[dt], device=device))
            else:
                self.register_buffer(name, None)
        self.register_buffer("bias", torch.zeros(self.out_features, dtype=dtype, device=device) if bias else None)
        self._drop_facts()  # decided when the buffers get their values (from_quantized_weight, load, forward)

    # -- dequantisation facts -------------------------------------------------------------
    def _drop_facts(self) -> None:
        object.__setattr__(self, "_facts", None)  # {act: DequantFacts}, or None: not decided for these values
        object.__setattr__(self, "_facts_watch", ())  # (name, buffer, version) they were decided at

    def _set_facts(self, facts: dict | None) -> dict | None:
        b = self._buffers
        watch = tuple((n, b[n], None if b[n].is_inference() else b[n]._version)
                      for n in _QUANT_BUFFERS if b[n] is not None)  # fmt: skip (a buffer set later: __setattr__)
        object.__setattr__(self, "_facts", facts)
        object.__setattr__(self, "_facts_watch", watch if facts is not None else ())
        return facts

    def refresh_facts(self) -> dict | None:
        """Decide the dequantisation facts from the buffers' values (one host copy: a sync on a GPU).

        Returns ``{act: DequantFacts}``, or None where the values cannot be read (meta tensors) or are
        not a valid weight (then the op runs without facts, which is always correct).
        """
        b = self._buffers
        if any(b[n] is not None and b[n].device.type == "meta" for n in _QUANT_BUFFERS):
            return self._set_facts(None)
        try:
            qw = self.quantized_weight(facts=False)
        except LowbitError:
            return self._set_facts(None)
        return self._set_facts(qw._decide_facts())

    def _current_facts(self) -> dict | None:
        """The facts if they describe the buffers as they are now (eager: the same buffers, unchanged counters)."""
        facts = self._facts
        if facts is None:
            return None
        b = self._buffers
        for name, t, version in self._facts_watch:
            if b[name] is not t or (version is not None and t._version != version):
                return None
        return facts

    def __setattr__(self, name: str, value: object) -> None:
        if name in _QUANT_BUFFERS:
            self._drop_facts()  # a replaced buffer: its values are new
        super().__setattr__(name, value)

    def register_buffer(self, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        if name in _QUANT_BUFFERS:
            self._drop_facts()
        super().register_buffer(name, tensor, persistent)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # noqa: ANN002,ANN003 - nn.Module's hook
        super()._load_from_state_dict(*args, **kwargs)
        self.refresh_facts()  # decided once per load, so a torch.compile after loading has them

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_quantized_weight(cls, qw: QuantizedWeight, bias: torch.Tensor | None = None) -> QuantLinear:
        """A QuantLinear holding ``qw`` (its (K, N) = (in_features, out_features)) and an optional bias."""
        k, n = qw.shape
        scale = qw.scale_format.name if qw.scale_format.name in _TORCH_SCALE else "f16"
        mod = cls(k, n, bias is not None, wtype=qw.wtype, group_size=qw.group_size, zero=qw.zero,
                  scale_dtype=scale, act_order=qw.perm is not None, layout=qw.layout,
                  dtype=bias.dtype if bias is not None else torch.float16)  # fmt: skip
        facts = qw._facts_table()  # decided on the host when qw was packed (else now, once)
        t = qw if qw.is_torch else qw.to("cpu")
        for name, value in t.tensors().items():
            setattr(mod, name, value.detach().clone().contiguous())
        if bias is not None:
            mod.bias = bias.detach().clone().contiguous()
        mod.to(t.device)
        mod._set_facts(facts)  # the buffers hold qw's values
        return mod

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        wtype: object = "uint4",
        group_size: int | None = None,
        zero: str | None = None,
        scale_dtype: str = "f16",
        perm: object = None,
        layout: int | str = 1,
    ) -> QuantLinear:
        """Quantize ``linear`` (torch's (N, K) weight is transposed to lowbit's (K, N))."""
        if not isinstance(linear, nn.Linear):
            raise QuantizeError(f"QuantLinear.from_linear: expected an nn.Linear, got {type(linear).__name__}")
        w = linear.weight.detach()
        qw = quantize_weight(w.T.contiguous(), wtype, group_size=group_size, zero=zero, scale_dtype=scale_dtype,
                             perm=perm, layout=layout)  # fmt: skip
        b = None if linear.bias is None else linear.bias.detach()
        if b is not None and b.dtype not in (torch.float16, torch.bfloat16, torch.float32):
            b = b.float()
        return cls.from_quantized_weight(qw, b)

    # -- use ------------------------------------------------------------------------------
    def quantized_weight(self, facts: bool = True) -> QuantizedWeight:
        """The weight as a torch-backed QuantizedWeight (the buffers themselves; validated), with the module's
        dequantisation facts when they describe the buffers as they are (``facts=False``: none passed on)."""
        qw = QuantizedWeight(
            wtype=self.wtype, shape=(self.in_features, self.out_features), group_size=self.group_size,
            zero=self.zero, layout=self.layout, **{n: getattr(self, n) for n in _QUANT_BUFFERS},
        )  # fmt: skip
        current = self._current_facts() if facts else None
        if current is not None:
            qw._adopt_facts(current)
        return qw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        fold = finite = False
        act = _ACTIVATIONS.get(x.dtype)
        if act is not None:
            if torch.compiler.is_compiling():  # version counters are not readable: the facts decided so far
                facts = self._facts
            else:
                facts = self._current_facts()
                if facts is None:
                    facts = self.refresh_facts()
            if facts is not None:
                fold, finite = facts[act]
        return torch.ops.lowbit.matmul(
            x, self.qweight, self.scales, self.zeros, self.perm, self.tensor_scale,
            self.wtype.name, self.group_size, self.zero, self.layout, bias, fold, finite,
        )  # fmt: skip

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001,ANN202 - nn.Module's hook
        # Device moves reach every buffer; dtype conversions (half(), to(bf16)) must not touch the
        # quantization buffers, so each keeps its stored dtype and only follows the device.
        kept = {n: getattr(self, n) for n in _QUANT_BUFFERS if getattr(self, n) is not None}
        facts = self._current_facts()
        super()._apply(fn, recurse)
        for name, old in kept.items():
            new = self._buffers[name]
            if new is not None and new.dtype != old.dtype:
                self._buffers[name] = old.to(device=new.device)
        # A move or a dtype conversion keeps the values, so the facts stay; to_empty's buffers are uninitialised.
        self._set_facts(None if "to_empty" in getattr(fn, "__qualname__", "") else facts)
        return self

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"wtype={self.wtype.name}, group_size={self.group_size}, zero={self.zero!r}, "
                f"act_order={self.perm is not None}"
                + (f", layout={self.layout}" if self.layout != 1 else ""))  # fmt: skip
