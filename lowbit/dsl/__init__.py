"""The ``@lowbit.kernel`` language: Python functions on tiles, compiled to VM programs.

``KernelFunction`` turns a function into a program per constexpr set;
``Func`` is an inlined helper; :mod:`lowbit.dsl.builtins` holds the tile
functions.  Launching (``kernel[grid](...)``) is :mod:`lowbit.launch`'s job.
"""

from lowbit.dsl import builtins
from lowbit.dsl.diagnostics import SourceError
from lowbit.dsl.kernel import Func, KernelFunction

__all__ = ["Func", "KernelFunction", "SourceError", "builtins", "func"]


def func(fn: object) -> Func:
    """``@lowbit.func``: a helper inlined into the kernels that call it."""
    return Func(fn)  # type: ignore[arg-type]
