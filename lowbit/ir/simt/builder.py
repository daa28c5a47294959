"""Build SIMT kernels from Python: fresh register names, regions as ``with`` blocks.

The VM -> SIMT lowering (and tests) write code like::

    b = Builder("scale", threads=128)
    x, n = b.param("x", PTR_GLOBAL, elem="f32"), b.param("n", I32)
    tid = b.sreg("tid.x")
    with b.for_(b.i32(0), n, b.i32(1), inits=[b.f32(0.0)]) as loop:
        acc = b.binary("fadd", loop.carried[0], b.f32(1.0))
        loop.yield_(acc)
    total = loop.results[0]
    kernel = b.finish()

Ops are immutable, so a region's op is created when its ``with`` block
ends; ``loop.results`` exist from then on.  :meth:`Builder.finish` verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lowbit.errors import IRError
from lowbit.ir.simt import ops as O
from lowbit.ir.simt.control import For, If
from lowbit.ir.simt.kernel import Kernel, Param, SharedBuffer
from lowbit.ir.simt.types import F32, I32, I64, PRED, PTR_SHARED, Const, Operand, Reg, ScalarType, Type
from lowbit.ir.simt.verifier import verify


@dataclass
class LoopScope:
    iv: Reg
    carried: tuple[Reg, ...]
    yields: tuple[Operand, ...] = ()
    results: tuple[Reg, ...] = ()

    def yield_(self, *values: Operand) -> None:
        self.yields = tuple(values)


@dataclass
class IfScope:
    then_ops: list[O.Op] = field(default_factory=list)
    else_ops: list[O.Op] = field(default_factory=list)
    then_yields: tuple[Operand, ...] = ()
    else_yields: tuple[Operand, ...] = ()
    in_else: bool = False
    results: tuple[Reg, ...] = ()

    def yield_(self, *values: Operand) -> None:
        if self.in_else:
            self.else_yields = tuple(values)
        else:
            self.then_yields = tuple(values)


class Builder:
    """Appends ops to the innermost open region; names registers ``hint``, ``hint.1``, ``hint.2``..."""

    def __init__(self, name: str, threads: int) -> None:
        self.name, self.threads = name, threads
        self.params: list[Param] = []
        self.shared: list[SharedBuffer] = []
        self._stack: list[list[O.Op]] = [[]]
        self._used: dict[str, int] = {}

    # ---------------------------------------------------------------- registers and constants
    def reg(self, t: Type, hint: str = "r") -> Reg:
        n = self._used.get(hint)
        self._used[hint] = 0 if n is None else n + 1
        return Reg(hint if n is None else f"{hint}.{n + 1}", t)

    @staticmethod
    def i32(v: int) -> Const:
        return Const(v, I32)

    @staticmethod
    def i64(v: int) -> Const:
        return Const(v, I64)

    @staticmethod
    def f32(v: float) -> Const:
        return Const(v, F32)

    def emit(self, op: O.Op) -> O.Op:
        self._stack[-1].append(op)
        return op

    # ---------------------------------------------------------------- trial builds
    def mark(self) -> tuple[int, int, dict[str, int]]:
        """A point to :meth:`rollback` to (a transform that builds two forms to compare their cost)."""
        return len(self._stack), len(self._stack[-1]), dict(self._used)

    def region(self) -> tuple[O.Op, ...]:
        """The ops emitted so far into the innermost open region (a loop body while one is open)."""
        return tuple(self._stack[-1])

    def rollback(self, mark: tuple[int, int, dict[str, int]]) -> list[O.Op]:
        """Drop the ops emitted since ``mark`` (returned) and free their register names, so that building again
        gives the same names as if nothing had been tried."""
        depth, n, used = mark
        if len(self._stack) != depth:
            raise IRError("simt builder: rollback across an open region")
        dropped = self._stack[-1][n:]
        del self._stack[-1][n:]
        self._used = dict(used)
        return dropped

    # ---------------------------------------------------------------- kernel header
    def param(self, name: str, t: Type, elem: str | None = None) -> Reg:
        r = self.reg(t, name)
        self.params.append(Param(r, elem))
        return r

    def shared_buffer(self, name: str, size: int | None, align: int = 16) -> Reg:
        """Declare a buffer and return its address (a ``shared_addr`` at the current point)."""
        self.shared.append(SharedBuffer(name, size, align))
        return self.shared_addr(name)

    # ---------------------------------------------------------------- ops (one helper per op)
    def op(self, cls: type[O.Op], result_type: Type | None, *args: object, hint: str = "r") -> Reg | None:
        """Any op whose first field is its one result (or which has none: ``result_type=None``)."""
        if result_type is None:
            self.emit(cls(*args))  # type: ignore[call-arg]
            return None
        return self._def(cls, result_type, *args, hint=hint)

    def _def(self, cls: type[O.Op], t: Type, *args: object, hint: str) -> Reg:
        """Emit ``cls(r, *args)`` for a fresh register ``r: t`` named after ``hint``; return ``r``."""
        r = self.reg(t, hint)
        self.emit(cls(r, *args))  # type: ignore[call-arg]
        return r

    def sreg(self, name: str) -> Reg:
        return self._def(O.SReg, I32, name, hint=name.replace(".", "_"))

    def binary(self, op: str, a: Operand, b: Operand, hint: str = "r") -> Reg:
        return self._def(O.Binary, a.type, op, a, b, hint=hint)

    def unary(self, op: str, x: Operand, hint: str = "r") -> Reg:
        return self._def(O.Unary, x.type, op, x, hint=hint)

    def fma(self, a: Operand, b: Operand, c: Operand, hint: str = "r") -> Reg:
        return self._def(O.Fma, a.type, a, b, c, hint=hint)

    def cmp(self, pred: str, a: Operand, b: Operand, hint: str = "p") -> Reg:
        return self._def(O.Cmp, PRED, pred, a, b, hint=hint)

    def select(self, cond: Operand, a: Operand, b: Operand, hint: str = "r") -> Reg:
        return self._def(O.Select, a.type, cond, a, b, hint=hint)

    def cast(self, kind: str, x: Operand, to: Type, hint: str = "r") -> Reg:
        return self._def(O.Cast, to, kind, x, hint=hint)

    def gep(self, base: Operand, index: Operand, elem: Type, hint: str = "addr") -> Reg:
        return self._def(O.Gep, base.type, base, index, elem, hint=hint)

    def shared_addr(self, name: str) -> Reg:
        return self._def(O.SharedAddr, PTR_SHARED, name, hint=name)

    def load(self, t: Type, ptr: Operand, align: int, mask: Operand | None = None,
             other: Operand | None = None, hint: str = "v", l1: str = "", policy: Operand | None = None,
             prefetch: int = 0) -> Reg:  # fmt: skip
        return self._def(O.Load, t, ptr, align, mask, other, l1, policy, prefetch, hint=hint)

    def store(self, ptr: Operand, value: Operand, align: int, mask: Operand | None = None) -> None:
        self.emit(O.Store(ptr, value, align, mask))

    def shfl(self, mode: str, value: Operand, lane: Operand, clamp: int = 31, hint: str = "r") -> Reg:
        return self._def(O.Shfl, value.type, mode, value, lane, Const(clamp, I32), Const(-1, I32), hint=hint)

    def lop3(self, a: Operand, b: Operand, c: Operand, lut: int, hint: str = "r") -> Reg:
        return self._def(O.Lop3, I32, a, b, c, lut, hint=hint)

    # ---------------------------------------------------------------- regions
    def for_(self, start: Operand, stop: Operand, step: Operand, inits: list[Operand] | tuple[Operand, ...] = (),
             hint: str = "i") -> _ForContext:
        return _ForContext(self, start, stop, step, tuple(inits), hint)

    def if_(self, cond: Operand) -> _IfContext:
        return _IfContext(self, cond)

    def else_(self, scope: IfScope) -> None:
        scope.in_else = True
        scope.then_ops = self._stack.pop()
        self._stack.append(scope.else_ops)

    def finish(self) -> Kernel:
        if len(self._stack) != 1:
            raise IRError("simt builder: a region is still open")
        return verify(Kernel(self.name, tuple(self.params), self.threads, tuple(self.shared), tuple(self._stack[0])))


class _ForContext:
    def __init__(self, b: Builder, start: Operand, stop: Operand, step: Operand, inits: tuple[Operand, ...],
                 hint: str) -> None:
        self.b, self.start, self.stop, self.step, self.inits = b, start, stop, step, inits
        iv_type = start.type if isinstance(start.type, ScalarType) else I32
        self.scope = LoopScope(b.reg(iv_type, hint), tuple(b.reg(v.type, "carry") for v in inits))

    def __enter__(self) -> LoopScope:
        self.b._stack.append([])
        return self.scope

    def __exit__(self, exc_type: object, *rest: object) -> None:
        body = self.b._stack.pop()
        if exc_type is not None:
            return
        s = self.scope
        s.results = tuple(self.b.reg(c.type, "loop") for c in s.carried)
        self.b.emit(For(s.iv, self.start, self.stop, self.step, s.carried, self.inits, tuple(body), s.yields,
                        s.results))


class _IfContext:
    def __init__(self, b: Builder, cond: Operand) -> None:
        self.b, self.cond, self.scope = b, cond, IfScope()

    def __enter__(self) -> IfScope:
        self.b._stack.append(self.scope.then_ops)
        return self.scope

    def __exit__(self, exc_type: object, *rest: object) -> None:
        ops = self.b._stack.pop()
        if exc_type is not None:
            return
        s = self.scope
        if not s.in_else:
            s.then_ops = ops
        s.results = tuple(self.b.reg(v.type, "sel") for v in s.then_yields)
        self.b.emit(If(self.cond, tuple(s.then_ops), s.then_yields, tuple(s.else_ops), s.else_yields, s.results))
