"""Whole-kernel checks for SIMT programs: what no single op's constructor can see.

* SSA: every register is defined exactly once (parameters, op results, loop
  induction variables and carried values), and its name is unique in the kernel;
* scoping: an operand is defined earlier in its own region or an enclosing
  one (a loop body's registers are invisible after the loop);
* shared buffers: unique names, at most one dynamic buffer, every
  ``shared_addr`` names a declared buffer, static shared memory fits 48 KiB
  (the launch limit without opt-in) -- larger plans use the dynamic buffer;
* parameters: unique registers.

Errors are :class:`~lowbit.errors.IRError` quoting the offending op's line.
"""

from __future__ import annotations

from lowbit.errors import IRError
from lowbit.ir.simt import ops as O
from lowbit.ir.simt.control import For, If
from lowbit.ir.simt.kernel import Kernel
from lowbit.ir.simt.printer import op_head
from lowbit.ir.simt.types import Operand, Reg

STATIC_SHARED_LIMIT = 48 * 1024


class _Checker:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.names: dict[str, Reg] = {}

    def fail(self, op: O.Op | None, message: str) -> IRError:
        where = f"`{op_head(op)}`" if op is not None else f"kernel @{self.kernel.name}"
        return IRError(f"simt verifier: {where}: {message}")

    def define(self, reg: Reg, scope: set[int], op: O.Op | None) -> None:
        prev = self.names.get(reg.name)
        if prev is reg:
            raise self.fail(op, f"register {reg} is defined twice")
        if prev is not None:
            raise self.fail(op, f"register name {reg} is already used by another register")
        self.names[reg.name] = reg
        scope.add(id(reg))

    def use(self, v: Operand, scope: set[int], op: O.Op, what: str) -> None:
        if isinstance(v, Reg) and id(v) not in scope:
            raise self.fail(op, f"{what} {v} is not defined before this point (or not in scope)")

    def region(self, ops: tuple[O.Op, ...], yields: tuple[Operand, ...], scope: set[int], owner: O.Op | None) -> None:
        for op in ops:
            self.op(op, scope)
        for y in yields:
            if owner is not None:
                self.use(y, scope, owner, "yielded value")

    def op(self, op: O.Op, scope: set[int]) -> None:
        for v in op.operands:
            self.use(v, scope, op, "operand")
        if isinstance(op, O.SharedAddr) and self.kernel.buffer(op.buffer) is None:
            raise self.fail(op, f"no shared buffer @{op.buffer} is declared")
        if isinstance(op, (For, If)):
            for defs, body, yields in op.regions:
                inner = set(scope)
                for r in defs:
                    self.define(r, inner, op)
                self.region(body, yields, inner, op)
        for r in op.results:
            self.define(r, scope, op)


def verify(kernel: Kernel) -> Kernel:
    """Check ``kernel``; return it unchanged or raise :class:`IRError` naming the op."""
    if not isinstance(kernel, Kernel):
        raise IRError(f"simt verifier: expected a Kernel, got {type(kernel).__name__}")
    checker = _Checker(kernel)
    scope: set[int] = set()
    for p in kernel.params:
        checker.define(p.reg, scope, None)
    seen: set[str] = set()
    for b in kernel.shared:
        if b.name in seen:
            raise checker.fail(None, f"shared buffer @{b.name} is declared twice")
        seen.add(b.name)
    if sum(b.dynamic for b in kernel.shared) > 1:
        raise checker.fail(None, "at most one dynamic shared buffer")
    static = 0
    for b in kernel.shared:
        if not b.dynamic:
            static = (static + b.align - 1) // b.align * b.align + b.size
    if static > STATIC_SHARED_LIMIT:
        raise checker.fail(None, f"static shared memory {static} B exceeds {STATIC_SHARED_LIMIT} B; use a dynamic buffer")
    checker.region(kernel.body, (), scope, None)
    return kernel
