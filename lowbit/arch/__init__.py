"""Targets and the shared-memory bank model (a leaf: standard library only).

Every package may import this; it imports nothing of lowbit but ``errors``.
"""

from lowbit.arch import banks
from lowbit.arch.targets import DEFAULT_TARGET, TARGETS, Feature, Support, Target, target

#: The hardware's launch limits on every target lowbit supports (CUDA C Programming Guide, "Technical
#: Specifications per Compute Capability"): grid dimensions (x, y, z) and threads per block.
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_BLOCK = (1024, 1024, 64)
MAX_BLOCK_THREADS = 1024

__all__ = ["DEFAULT_TARGET", "MAX_BLOCK", "MAX_BLOCK_THREADS", "MAX_GRID", "TARGETS", "Feature", "Support", "Target",
           "banks", "target"]
