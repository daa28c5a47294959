"""The compile driver (DSL -> VM -> SIMT -> PTX -> cubin) and its on-disk cache.

* :func:`compile` (``lowbit.compile``): a ``@lowbit.kernel`` and constexprs
  -> :class:`CompiledKernel` with every stage's text, the cubin and the
  ptxas resource report (:mod:`lowbit.compiler.driver`);
* :func:`run_on_emulator`: run a compiled kernel on the PTX emulator;
* :mod:`lowbit.compiler.cache`: the on-disk cache the driver uses.

The driver is imported lazily so that ``lowbit.compiler.cache`` stays light.
"""

from __future__ import annotations

__all__ = ["CompiledKernel", "ParamSpec", "compile", "compile_program", "run_on_emulator"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from lowbit.compiler import driver  # noqa: PLC0415

        return getattr(driver, name)
    raise AttributeError(f"module 'lowbit.compiler' has no attribute {name!r}")
