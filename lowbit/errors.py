"""lowbit's exception hierarchy.

Every error a user can provoke is a :class:`LowbitError`.  Subclasses say which
part of lowbit refused and carry *where* the problem is: a DSL source location
(``file:line:col``), the printed IR op, a kernel argument's name, a PTX line.
Nothing here imports anything but the standard library: every package may
raise these.
"""

from __future__ import annotations


class LowbitError(Exception):
    """Base class of every error lowbit raises on purpose."""


class DTypeError(LowbitError, ValueError):
    """A bad type name, bit width, codebook, or a value a format cannot take."""


class PackError(LowbitError, ValueError):
    """Packing or unpacking sub-byte codes failed (width, range, shape)."""


class QuantizeError(LowbitError, ValueError):
    """A quantization request that cannot be honoured (non-finite input, bad group size...)."""


class CheckpointError(QuantizeError):
    """A quantized checkpoint (GPTQ, AWQ, AutoRound tensors or config) that cannot be converted; names the tensor."""


class LayoutError(LowbitError, ValueError):
    """A layout operation's precondition failed.

    ``shapes`` holds the offending shapes (or layouts) so that callers and
    tests can inspect them without parsing the message.
    """

    def __init__(self, message: str, *shapes: object) -> None:
        super().__init__(message)
        self.shapes = tuple(shapes)


class ArchError(LowbitError, ValueError):
    """An unknown target, or a feature the target does not have."""


class ToolchainError(LowbitError, RuntimeError):
    """An external tool (ptxas, nvdisasm) is missing or failed."""


class IRError(LowbitError):
    """An ill-formed IR program; the message names the op and its source location."""


class DSLError(LowbitError):
    """A mistake in a ``@lowbit.kernel`` function, reported at the user's line."""


class CodegenError(LowbitError):
    """LLVM or ptxas refused what lowbit generated."""


class CompileError(CodegenError):
    """The program cannot be compiled for its target as written (e.g. its shared memory exceeds the budget)."""


class LaunchError(LowbitError, ValueError):
    """A kernel launch with wrong arguments, grid or shapes; names the argument."""


class UsageError(LaunchError):
    """A command-line mistake: a missing or unimportable file (named with its line), an unknown kernel,
    a bad ``-D`` or option, an output path that cannot be written."""


class EmulatorError(LowbitError):
    """The PTX emulator caught a fault (memcheck, race, undefined value...) or cannot run the PTX."""


class UnsupportedPTXError(EmulatorError):
    """The PTX uses an instruction or directive the emulator does not implement."""


class LowbitWarning(UserWarning):
    """Base class of every warning lowbit issues: something was degraded, nothing was wrong in the result."""


class CacheWarning(LowbitWarning):
    """The compile cache cannot be used (unwritable, not a directory...): lowbit compiles without it."""


class ToolchainWarning(LowbitWarning):
    """A tool that is present misbehaved (timeout, crash): lowbit went on without its output (e.g. no cubin)."""


__all__ = [name for name in dir() if name.endswith(("Error", "Warning")) and name not in ("UserWarning",)]
