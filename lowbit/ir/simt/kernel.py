"""A SIMT kernel: parameters, block size, shared buffers and a body of ops.

The kernel is one PTX ``.entry``: ``threads`` becomes ``.reqntid`` (a 1-D
block; the VM's ``num_warps * 32``), each static :class:`SharedBuffer` an
``.shared`` array of ``size`` bytes aligned to ``align``, the dynamic buffer
(at most one) an ``.extern .shared`` array whose size is given at launch.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.dtypes import dtype as lookup_dtype
from lowbit.errors import DTypeError, IRError
from lowbit.ir.simt.ops import Op
from lowbit.ir.simt.types import PRED, PtrType, Reg, ScalarType, Space


@dataclass(frozen=True)
class Param:
    """A kernel parameter: a register holding a scalar or a global pointer.

    ``elem`` names the lowbit dtype a pointer's buffer holds (``"f16"``,
    ``"uint4"``...): documentation for readers and the launch layer; the
    ops address bytes and say themselves what they load.
    """

    reg: Reg
    elem: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.reg, Reg):
            raise IRError(f"simt kernel: parameter must be a register, got {self.reg!r}")
        t = self.reg.type
        if isinstance(t, PtrType):
            if t.space is not Space.GLOBAL:
                raise IRError(f"simt kernel: pointer parameter {self.reg} must point to global memory, got {t}")
            if self.elem is not None:
                try:
                    canonical = lookup_dtype(self.elem).name
                except DTypeError as exc:
                    raise IRError(f"simt kernel: parameter {self.reg}: {exc}") from None
                object.__setattr__(self, "elem", canonical)
        else:
            if not isinstance(t, ScalarType) or t == PRED:
                raise IRError(f"simt kernel: parameter {self.reg} must be a non-predicate scalar or pointer, got {t}")
            if self.elem is not None:
                raise IRError(f"simt kernel: scalar parameter {self.reg} cannot have an element dtype")


@dataclass(frozen=True)
class SharedBuffer:
    """``@name``: ``size`` bytes of shared memory aligned to ``align``; ``dynamic``: an ``.extern .shared``
    array sized at launch -- ``size`` is then the bytes a launch must pass (``None``: not known here)."""

    name: str
    size: int | None
    align: int = 16
    dynamic: bool = False

    def __post_init__(self) -> None:
        if self.size is None:
            object.__setattr__(self, "dynamic", True)
        if not isinstance(self.name, str) or not self.name.replace("_", "a").replace(".", "a").isalnum():
            raise IRError(f"simt kernel: bad shared buffer name {self.name!r}")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise IRError(f"simt kernel: shared buffer @{self.name} needs a positive size, got {self.size!r}")
        if not isinstance(self.align, int) or self.align < 1 or self.align & (self.align - 1) or self.align > 1024:
            raise IRError(f"simt kernel: shared buffer @{self.name} align must be a power of two <= 1024")


@dataclass(frozen=True, eq=False)
class Kernel:
    """One ``.entry``: ``name``, parameters, ``threads`` per block, shared buffers, body."""

    name: str
    params: tuple[Param, ...]
    threads: int
    shared: tuple[SharedBuffer, ...]
    body: tuple[Op, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.replace("_", "a").isalnum() or self.name[0].isdigit():
            raise IRError(f"simt kernel: bad kernel name {self.name!r}")
        if not isinstance(self.threads, int) or not 1 <= self.threads <= 1024:
            raise IRError(f"simt kernel @{self.name}: threads per block must be 1..1024, got {self.threads!r}")
        for field in ("params", "shared", "body"):
            if not isinstance(getattr(self, field), tuple):
                raise IRError(f"simt kernel @{self.name}: {field} must be a tuple")

    @property
    def dynamic_shared(self) -> SharedBuffer | None:
        return next((b for b in self.shared if b.dynamic), None)

    def buffer(self, name: str) -> SharedBuffer | None:
        return next((b for b in self.shared if b.name == name), None)
