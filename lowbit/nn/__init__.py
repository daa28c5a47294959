"""torch modules on lowbit's quantized weights (importing this package imports torch).

* :class:`QuantLinear` -- ``nn.Linear`` with a QuantizedWeight; ``from_linear``;
* :func:`quantize_model` -- replace a model's Linear layers;
* :func:`load_quantized` / :func:`convert_checkpoint` -- GPTQ, AWQ and
  AutoRound state dicts into QuantLinear layers.
"""

from __future__ import annotations

from lowbit.nn.convert import convert_checkpoint, load_quantized, quantize_model
from lowbit.nn.linear import QuantLinear

__all__ = ["QuantLinear", "convert_checkpoint", "load_quantized", "quantize_model"]
