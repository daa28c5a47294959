"""A VM program: one kernel's parameters, launch geometry and body.

The program is the unit everything works on: the DSL produces one per
constexpr specialisation, the interpreter runs it, the printer turns it into
the canonical ``.lbir`` text (the compile-cache key), passes map programs to
programs.  Immutable: a pass builds a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.errors import IRError
from lowbit.ir.expr import Expr, Var
from lowbit.ir.ops import Op
from lowbit.ir.types import PointerType, Value, scalar_ok

__all__ = ["Param", "Program"]


@dataclass(frozen=True)
class Param:
    """A kernel parameter: a pointer (a :class:`Value` of :class:`PointerType`) or a scalar :class:`Var`."""

    name: str
    value: Var | Value

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise IRError(f"parameter name {self.name!r} is not an identifier")
        if isinstance(self.value, Value):
            if not isinstance(self.value.type, PointerType):
                raise IRError(f"parameter {self.name!r}: only pointers and scalars may be parameters")
        elif not (isinstance(self.value, Var) and scalar_ok(self.value.dtype)):
            raise IRError(f"parameter {self.name!r} must be a pointer or a scalar")


@dataclass(frozen=True, eq=False)
class Program:
    """One specialised kernel.

    ``constexprs`` records the compile-time values that produced it, as
    (name, text) pairs, so the printed program (the cache key) tells two
    specialisations apart.  ``grid`` is optional launch geometry written in
    the scalar parameters (``None``: the launcher gives the grid).
    """

    name: str
    params: tuple[Param, ...]
    body: tuple[Op, ...]
    constexprs: tuple[tuple[str, str], ...] = ()
    num_warps: int = 4
    grid: tuple[Expr, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise IRError(f"kernel name {self.name!r} is not an identifier")
        if self.num_warps not in (1, 2, 4, 8, 16, 32):
            raise IRError(f"kernel {self.name}: num_warps must be a power of two in 1..32, got {self.num_warps}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise IRError(f"kernel {self.name}: duplicate parameter names {names}")
        if self.grid is not None and not 1 <= len(self.grid) <= 3:
            raise IRError(f"kernel {self.name}: the grid has 1 to 3 dimensions")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise IRError(f"kernel {self.name} has no parameter {name!r}")
