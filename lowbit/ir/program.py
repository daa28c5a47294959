"""A VM program: one kernel's parameters, launch geometry and body.

The program is the unit everything works on: the DSL produces one per
constexpr specialisation, the interpreter runs it, the printer turns it into
the canonical ``.lbir`` text (the compile-cache key), passes map programs to
programs.  Immutable: a pass builds a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lowbit.errors import IRError
from lowbit.ir.expr import Expr, Var
from lowbit.ir.ops import Op
from lowbit.ir.types import PointerType, Value, scalar_ok

__all__ = ["MAX_STAGES", "SPECIALIZED_DIVISIBILITY", "Param", "Program"]


#: The divisibility a launch can promise about an argument (Triton's "multiple of 16" facts):
#: the pointer's byte address, or the integer's value, is a multiple of it.  One value beside
#: "nothing known" keeps the number of variants per argument at two.
SPECIALIZED_DIVISIBILITY = 16


#: The deepest software pipeline a program may ask for (stages of a shared-memory ring).
MAX_STAGES = 8

@dataclass(frozen=True)
class Param:
    """A kernel parameter: a pointer (a :class:`Value` of :class:`PointerType`) or a scalar :class:`Var`.

    ``divisibility`` is a specialisation fact: the launch promises that the
    pointer's byte address (or the integer scalar's value) is a multiple of
    it.  1 promises nothing.  Passes may rely on it (16-byte vector accesses,
    unmasked tails); the launch layer checks it for every call that runs the
    specialised program, and it is printed in the ``.lbir`` text, so it is
    part of the compile-cache key.
    """

    name: str
    value: Var | Value
    divisibility: int = 1

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise IRError(f"parameter name {self.name!r} is not an identifier")
        if isinstance(self.value, Value):
            if not isinstance(self.value.type, PointerType):
                raise IRError(f"parameter {self.name!r}: only pointers and scalars may be parameters")
        elif not (isinstance(self.value, Var) and scalar_ok(self.value.dtype)):
            raise IRError(f"parameter {self.name!r} must be a pointer or a scalar")
        d = self.divisibility
        if not isinstance(d, int) or isinstance(d, bool) or d < 1 or d & (d - 1):
            raise IRError(f"parameter {self.name!r}: divisibility must be a power of two >= 1, got {d!r}")
        if d > 1 and isinstance(self.value, Var) and not self.value.dtype.is_int:
            raise IRError(f"parameter {self.name!r}: only pointers and integer scalars take a divisibility fact")


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
    #: software-pipeline depth of the K loops whose loads feed shared memory (1: no pipelining); a compile
    #: option like ``num_warps``, printed (when not 1) so it keys the cache
    num_stages: int = 1

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise IRError(f"kernel name {self.name!r} is not an identifier")
        if self.num_warps not in (1, 2, 4, 8, 16, 32):
            raise IRError(f"kernel {self.name}: num_warps must be a power of two in 1..32, got {self.num_warps}")
        if not isinstance(self.num_stages, int) or isinstance(self.num_stages, bool) or not 1 <= self.num_stages <= MAX_STAGES:
            raise IRError(f"kernel {self.name}: num_stages must be an int in 1..{MAX_STAGES}, got {self.num_stages!r}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise IRError(f"kernel {self.name}: duplicate parameter names {names}")
        if self.grid is not None and not 1 <= len(self.grid) <= 3:
            raise IRError(f"kernel {self.name}: the grid has 1 to 3 dimensions")

    def with_facts(self, facts: Mapping[str, int]) -> Program:
        """The same program with each named parameter's ``divisibility`` set (others: 1).

        The body is shared (values are the same objects), so this is cheap;
        the result prints differently, so it compiles and caches separately.
        """
        unknown = sorted(set(facts) - {p.name for p in self.params})
        if unknown:
            raise IRError(f"kernel {self.name} has no parameter {unknown[0]!r}")
        params = tuple(Param(p.name, p.value, int(facts.get(p.name, 1))) for p in self.params)
        return Program(self.name, params, self.body, self.constexprs, self.num_warps, self.grid, self.num_stages)

    @property
    def facts(self) -> dict[str, int]:
        """The parameters with a divisibility fact (> 1), by name."""
        return {p.name: p.divisibility for p in self.params if p.divisibility > 1}

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise IRError(f"kernel {self.name} has no parameter {name!r}")
