"""lowbit: a Python kernel compiler for arbitrary-bit low-precision GPU computation."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from lowbit import errors  # noqa: F401  (leaf, always available)
from lowbit.errors import LowbitError  # noqa: F401
