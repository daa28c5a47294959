"""Whole models: ``quantize_model`` and loading GPTQ / AWQ / AutoRound state dicts into QuantLinear layers.

``quantize_model(model, wtype="uint4", skip=["lm_head", "*.gate"])`` replaces
every ``nn.Linear`` (in place) by a :class:`QuantLinear` of the same
weight, except those whose qualified name matches a ``skip`` entry
(an exact name, a dotted prefix, or an ``fnmatch`` pattern).

``load_quantized(model, state_dict, config)`` takes a float model skeleton,
a checkpoint's state dict and its ``quantization_config`` (the dict found
in a Hugging Face ``config.json``: ``quant_method`` "gptq" / "awq" /
"auto-round", ``bits``, ``group_size``, ``desc_act``, ``sym``,
``checkpoint_format``...), converts each layer that has a ``qweight`` with
:mod:`lowbit.ops.checkpoints`, puts a QuantLinear in its place and loads
every other tensor into the model; a tensor the model does not have, or a
parameter the checkpoint lacks, is a :class:`~lowbit.errors.CheckpointError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

import torch
from torch import nn

from lowbit.errors import CheckpointError, QuantizeError
from lowbit.nn.linear import QuantLinear
from lowbit.ops.checkpoints import from_awq, from_gptq

__all__ = ["convert_checkpoint", "load_quantized", "quantize_model"]

_QUANT_SUFFIXES = ("qweight", "qzeros", "scales", "g_idx")


def quantize_model(
    model: nn.Module,
    wtype: object = "uint4",
    group_size: int | None = None,
    zero: str | None = None,
    scale_dtype: str = "f16",
    skip: Iterable[str] = (),
) -> nn.Module:
    """Replace the ``nn.Linear`` layers of ``model`` by QuantLinear (in place); returns ``model``."""
    patterns = tuple(skip)
    if isinstance(model, nn.Linear):
        raise QuantizeError("quantize_model: pass the parent module; use QuantLinear.from_linear for a single layer")
    targets = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, nn.Linear)]
    for name, mod in targets:
        if _skipped(name, patterns):
            continue
        _set_module(model, name, QuantLinear.from_linear(mod, wtype, group_size, zero, scale_dtype))
    return model


def _skipped(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") or fnmatchcase(name, p) for p in patterns)


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def convert_checkpoint(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, object],
                       layout: int | str = 1) -> dict[str, QuantLinear]:  # fmt: skip
    """``{layer prefix: QuantLinear}`` for every layer of a quantized state dict (``prefix.qweight`` keys), their
    weights in ``layout`` (1, the checkpoint's own stream, or 3 / "kernel": :func:`lowbit.ops.from_gptq`)."""
    method = str(config.get("quant_method", "")).lower().replace("_", "-")
    if method not in ("gptq", "awq", "auto-round", "autoround"):
        raise CheckpointError(f"quantization_config: quant_method must be gptq, awq or auto-round, got {method!r}")
    bits = config.get("bits", config.get("w_bit"))
    group_size = config.get("group_size", config.get("q_group_size"))
    if not isinstance(bits, int) or not isinstance(group_size, int):
        raise CheckpointError(f"quantization_config needs integer 'bits' and 'group_size', got {bits!r}, {group_size!r}")
    layers: dict[str, QuantLinear] = {}
    for key in state_dict:
        if not key.endswith(".qweight"):
            continue
        prefix = key[: -len(".qweight")]
        qzeros = state_dict.get(f"{prefix}.qzeros")
        scales = _required(state_dict, f"{prefix}.scales")
        try:
            if method == "awq":
                qw = from_awq(state_dict[key], _required(state_dict, f"{prefix}.qzeros"), scales, bits=bits,
                              group_size=group_size, layout=layout)  # fmt: skip
            else:
                fmt = str(config.get("checkpoint_format", "gptq"))
                fmt = "gptq" if fmt in ("gptq", "auto-gptq", "auto_gptq") else fmt
                qw = from_gptq(state_dict[key], qzeros, scales, state_dict.get(f"{prefix}.g_idx"), bits=bits,
                               group_size=group_size, checkpoint_format=fmt, layout=layout)  # fmt: skip
        except CheckpointError as exc:
            raise CheckpointError(f"layer {prefix!r}: {exc}") from None
        layers[prefix] = QuantLinear.from_quantized_weight(qw, state_dict.get(f"{prefix}.bias"))
    return layers


def load_quantized(model: nn.Module, state_dict: Mapping[str, torch.Tensor], config: Mapping[str, object],
                   layout: int | str = 1) -> nn.Module:  # fmt: skip
    """Put the checkpoint's quantized layers into ``model`` (in place), their weights in ``layout``
    (:func:`convert_checkpoint`), and load the rest; returns ``model``."""
    layers = convert_checkpoint(state_dict, config, layout)
    for prefix, layer in layers.items():
        try:
            old = model.get_submodule(prefix)
        except AttributeError:
            raise CheckpointError(f"the checkpoint has a quantized layer {prefix!r} that the model does not have") from None
        if not isinstance(old, nn.Linear | QuantLinear):
            raise CheckpointError(f"{prefix!r} is a {type(old).__name__} in the model, not a Linear")
        if (old.in_features, old.out_features) != (layer.in_features, layer.out_features):
            raise CheckpointError(
                f"{prefix!r}: the model's layer is {old.in_features} -> {old.out_features}, "
                f"the checkpoint's {layer.in_features} -> {layer.out_features}"
            )
        _set_module(model, prefix, layer)
    rest = {k: v for k, v in state_dict.items()
            if not (k.rpartition(".")[0] in layers and k.rpartition(".")[2] in (*_QUANT_SUFFIXES, "bias"))}  # fmt: skip
    expected = {k for k in model.state_dict() if k.rpartition(".")[0] not in layers}
    unexpected = sorted(set(rest) - expected)
    missing = sorted(expected - set(rest))
    if unexpected or missing:
        raise CheckpointError(f"state dict does not match the model: unexpected {unexpected[:5]}, missing {missing[:5]}")
    model.load_state_dict(rest, strict=False)
    return model


def _required(sd: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"the state dict has no {key!r}")
    return sd[key]
