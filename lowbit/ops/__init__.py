"""lowbit's operator API: quantized weights and the operations on them.

* :class:`QuantizedWeight`, :func:`quantize_weight` -- a (K, N) weight packed
  in a versioned layout, with scales, zeros and an optional act-order
  permutation, as numpy arrays or torch tensors (:mod:`lowbit.ops.qweight`);
* :func:`matmul` -- ``a @ W + bias`` on the reference, the emulator or the
  GPU (:mod:`lowbit.ops.matmul`);
* :mod:`lowbit.ops.checkpoints` -- GPTQ / AWQ / AutoRound tensors to a
  QuantizedWeight;
* :mod:`lowbit.ops.torch_ops` -- ``torch.ops.lowbit.matmul`` (imported on
  demand: importing :mod:`lowbit.ops` does not import torch).
"""

from __future__ import annotations

from lowbit.ops.checkpoints import from_awq, from_gptq
from lowbit.ops.matmul import BACKENDS, matmul
from lowbit.ops.qweight import LAYOUTS, QuantizedWeight, quantize_weight

__all__ = ["BACKENDS", "LAYOUTS", "QuantizedWeight", "from_awq", "from_gptq", "matmul", "quantize_weight"]
