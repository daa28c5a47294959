"""Targets and the shared-memory bank model (a leaf: standard library only).

Every package may import this; it imports nothing of lowbit but ``errors``.
"""

from lowbit.arch import banks
from lowbit.arch.targets import DEFAULT_TARGET, TARGETS, Feature, Support, Target, target

__all__ = ["DEFAULT_TARGET", "TARGETS", "Feature", "Support", "Target", "banks", "target"]
