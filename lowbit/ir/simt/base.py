"""The base of every SIMT op: identity, its results and operands, and the checks constructors share.

An op names the dataclass fields that hold its results and its operands
(``result_fields`` / ``operand_fields``); ``results`` and ``operands`` read
them in that order, a tuple field contributing its items and ``None`` (an
absent optional operand) nothing.  The ``want*`` / ``expect`` helpers raise
:class:`~lowbit.errors.IRError` naming the op, so an ill-typed op cannot exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lowbit.errors import IRError
from lowbit.ir.simt.types import PRED, Const, Operand, PtrType, Reg, ScalarType, Type, VectorType

__all__ = ["Op", "check_access", "is_float_like", "is_int_like"]


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all SIMT instructions (compared by identity)."""

    opname: ClassVar[str] = "op"
    result_fields: ClassVar[tuple[str, ...]] = ()
    operand_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def results(self) -> tuple[Reg, ...]:
        return self._gather(self.result_fields)  # type: ignore[return-value]

    @property
    def operands(self) -> tuple[Operand, ...]:
        return self._gather(self.operand_fields)

    def _gather(self, names: tuple[str, ...]) -> tuple[Operand, ...]:
        out: list[Operand] = []
        for name in names:
            v = getattr(self, name)
            if isinstance(v, tuple):
                out.extend(v)
            elif v is not None:
                out.append(v)
        return tuple(out)

    def fail(self, message: str) -> IRError:
        return IRError(f"simt {self.opname}: {message}")

    def want(self, v: object, what: str) -> Type:
        if not isinstance(v, (Reg, Const)):
            raise self.fail(f"{what} must be a register or constant, got {type(v).__name__}")
        return v.type

    def want_reg(self, v: object, what: str) -> Reg:
        if not isinstance(v, Reg):
            raise self.fail(f"{what} must be a register, got {type(v).__name__}")
        return v

    def same(self, a: Type, b: Type, what: str) -> None:
        if a != b:
            raise self.fail(f"{what}: {a} and {b} differ")

    def expect(self, t: Type, *fields: str) -> None:
        """Each named field is a register or constant of type ``t``."""
        for name in fields:
            self.same(self.want(getattr(self, name), name), t, name)

    def agree(self, *fields: str) -> Type:
        """The named fields are registers or constants of one type; returns it."""
        t = self.want(getattr(self, fields[0]), fields[0])
        for name in fields[1:]:
            self.same(t, self.want(getattr(self, name), name), "operands")
        return t

    def result_type(self) -> Type:
        """The type of the ``result`` register (checked to be a register)."""
        return self.want_reg(self.result, "result").type  # type: ignore[attr-defined]

    def known(self, value: object, allowed: tuple[str, ...] | dict, what: str, listed: bool = False) -> None:
        """``value`` is one of ``allowed``, else ``unknown <what> 'value'`` (``listed``: and the choices)."""
        if value not in allowed:
            choices = f" (one of {', '.join(allowed)})" if listed else ""
            raise self.fail(f"unknown {what} {value!r}{choices}")


def is_int_like(t: Type) -> bool:
    return isinstance(t, (ScalarType, VectorType)) and t.is_int


def is_float_like(t: Type) -> bool:
    return isinstance(t, (ScalarType, VectorType)) and t.is_float


def check_access(op: Op, ptr: Operand, t: Type, align: int) -> None:
    """A memory access through ``ptr`` as ``t`` with ``align`` bytes guaranteed is well formed."""
    p = op.want(ptr, "address")
    if not isinstance(p, PtrType):
        raise op.fail(f"address must be a pointer, got {p}")
    if not isinstance(t, (ScalarType, VectorType)) or t == PRED:
        raise op.fail(f"cannot access memory as {t}")
    if not isinstance(align, int) or align < 1 or align & (align - 1) or align > 16:
        raise op.fail(f"align must be a power of two from 1 to 16, got {align!r}")
