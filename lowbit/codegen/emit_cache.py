"""SIMT -> LLVM for cache-hinted loads and copies, L2 policies and the value atomics.

LLVM has no way to state an L1 eviction priority or an L2 cache policy on a
load (and no ``createpolicy`` intrinsic), so these are inline asm, written
from the PTX ISA: ``ld`` 9.7.9.8 (``ld.global.L1::evict_first.L2::cache_hint
.L2::128B.v4.u32 {...}, [a], policy``), ``cp.async`` 9.7.9.25 (the policy
after ``src-size``), ``createpolicy`` 9.7.9.17, ``atom`` 9.7.13.5.  A hinted
load is ``volatile`` asm (it must not be merged with, or moved across,
other memory operations); a masked one keeps its ``other`` value in the
output registers (tied operands) and predicates the ``ld`` on the mask.
Atomics LLVM selects itself (``atomicrmw add/fadd/max/min``, ``cmpxchg``)
stay LLVM instructions; the ``.noftz`` f16 / f16x2 adds are asm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import llvmlite.ir as ir

from lowbit.codegen.llvm_types import I32T, lltype
from lowbit.errors import CodegenError
from lowbit.ir.simt import ops as O
from lowbit.ir.simt.types import PtrType, ScalarType, Space, VectorType

if TYPE_CHECKING:
    from lowbit.codegen.emit import _Emitter

__all__ = ["TABLE", "HINTS_PTX", "min_ptx"]

#: The PTX ISA version that has the eviction-priority and cache-hint qualifiers and createpolicy (7.4).
HINTS_PTX = (7, 4)
#: The PTX ISA version that has cp.async's ``ignore-src`` predicate operand (7.5).
IGNORE_SRC_PTX = (7, 5)

I16T, I64T = ir.IntType(16), ir.IntType(64)

# SIMT scalar -> (PTX type, asm constraint, LLVM type of the asm operand)
_SCALAR = {
    "i8": ("u8", "h", I16T), "i16": ("u16", "h", I16T), "f16": ("b16", "h", I16T), "bf16": ("b16", "h", I16T),
    "i32": ("u32", "r", I32T), "f32": ("f32", "f", ir.FloatType()), "i64": ("u64", "l", I64T),
    "f64": ("f64", "d", ir.DoubleType()),
}  # fmt: skip


def _qualifiers(l1: str, policy: bool, prefetch: int) -> str:
    q = f".L1::{l1}" if l1 else ""
    q += ".L2::cache_hint" if policy else ""
    return q + (f".L2::{prefetch}B" if prefetch else "")


def _to_asm(em: _Emitter, v: ir.Value, name: str) -> ir.Value:
    """A value of SIMT type ``name`` as its asm operand type (bits kept)."""
    want = _SCALAR[name][2]
    if v.type == want:
        return v
    if isinstance(v.type, ir.IntType):
        return em.b.zext(v, want)
    return em.b.bitcast(v, want)


def _from_asm(em: _Emitter, v: ir.Value, t: ir.Type) -> ir.Value:
    if v.type == t:
        return v
    if isinstance(t, ir.IntType):
        return em.b.trunc(v, t)
    return em.b.bitcast(v, t)


def hinted_load(em: _Emitter, op: O.Load) -> None:
    t = op.result.type
    if isinstance(t, VectorType):
        if t.elem.name != "i32" or t.count not in (2, 4):
            raise CodegenError(f"no hinted vector load of {t}")
        ptx, con, at, n, vec = "u32", "r", I32T, t.count, f".v{t.count}"
    elif isinstance(t, ScalarType) and t.name in _SCALAR:
        (ptx, con, at), n, vec = _SCALAR[t.name], 1, ""
    else:
        raise CodegenError(f"no hinted load of {t}")
    outs = ", ".join(f"${i}" for i in range(n))
    dst = f"{{{outs}}}" if n > 1 else outs
    ins: list[ir.Value] = [em.val(op.ptr)]
    cons = ["=" + con] * n + ["l"]
    masked = op.mask is not None
    if masked:
        ins.append(em.b.zext(em.val(op.mask), I32T))
        cons.append("r")
    if op.policy is not None:
        ins.append(em.val(op.policy))
        cons.append("l")
    addr, pol = f"${n}", (f", ${n + 1 + masked}" if op.policy is not None else "")
    ld = f"ld.global{_qualifiers(op.l1, op.policy is not None, op.prefetch)}{vec}.{ptx} {dst}, [{addr}]{pol};"
    if masked:
        other = em.val(op.other)
        parts = [em.b.extract_element(other, ir.Constant(I32T, i)) for i in range(n)] if n > 1 else [other]
        ins += [_to_asm(em, p, "i32" if n > 1 else t.name) for p in parts]  # type: ignore[union-attr]
        cons += [str(i) for i in range(n)]
        text = f"{{ .reg .pred %lbp; setp.ne.b32 %lbp, ${n + 1}, 0; @%lbp {ld} }}"
    else:
        text = ld
    ret = at if n == 1 else ir.LiteralStructType([at] * n)
    fnty = ir.FunctionType(ret, [v.type for v in ins])
    r = em.b.asm(fnty, text, ",".join(cons), ins, True)
    if n == 1:
        em.bind(op.result, _from_asm(em, r, lltype(t)))
        return
    v: ir.Value = ir.Constant(lltype(t), ir.Undefined)
    for i in range(n):
        v = em.b.insert_element(v, em.b.extract_value(r, i), ir.Constant(I32T, i))
    em.bind(op.result, v)


def hinted_cp_async(em: _Emitter, op: O.CpAsync) -> None:
    """``cp.async`` as asm: the cache qualifiers, then ``src-size`` (a register) or ``ignore-src`` (a predicate:
    constraint ``b``), then the policy (PTX ISA 9.7.9.25's operand order)."""
    dst, src = em.val(op.dst), em.val(op.src)
    if op.ignore_src is not None:
        ins, cons = [dst, src, em.val(op.ignore_src)], "l,l,b"
    else:
        size = em.val(op.src_size) if op.src_size is not None else ir.Constant(I32T, op.size)
        ins, cons = [dst, src, size], "l,l,r"
    pol = ""
    if op.policy is not None:
        ins.append(em.val(op.policy))
        cons += ",l"
        pol = ", $3"
    q = _qualifiers("", op.policy is not None, op.prefetch)
    text = f"cp.async.{op.cache}.shared.global{q} [$0], [$1], {op.size}, $2{pol};"
    em.b.asm(ir.FunctionType(ir.VoidType(), [v.type for v in ins]), text, cons + ",~{memory}", ins, True)


def _createpolicy(em: _Emitter, op: O.CreatePolicy) -> None:
    text = f"createpolicy.fractional.L2::{op.priority}.b64 $0, 1.0;"
    em.bind(op.result, em.b.asm(ir.FunctionType(I64T, []), text, "=l", [], False))


_RMW = {("add", "s32"): "add", ("add", "u32"): "add", ("add", "f32"): "fadd", ("max", "s32"): "max",
        ("max", "u32"): "umax", ("min", "s32"): "min", ("min", "u32"): "umin"}  # fmt: skip


def _space(op: O.Atomic) -> str:
    t = op.ptr.type
    assert isinstance(t, PtrType)  # noqa: S101 - checked by the op
    return ".global" if t.space is Space.GLOBAL else ".shared"


def _atomic(em: _Emitter, op: O.Atomic) -> None:
    ptr, val = em.val(op.ptr), em.val(op.value)
    rmw = _RMW.get((op.kind, op.type))
    if rmw is not None:
        em.bind(op.result, em.b.atomic_rmw(rmw, ptr, val, "monotonic"))
        return
    if op.kind == "cas":
        pair = em.b.cmpxchg(ptr, em.val(op.compare), val, "monotonic", "monotonic")
        em.bind(op.result, em.b.extract_value(pair, 0))
        return
    # f16 / f16x2 .noftz adds: no LLVM instruction keeps .noftz on every target; asm with the bits
    con, at = ("h", I16T) if op.type == "f16" else ("r", I32T)
    text = f"atom{_space(op)}.add.noftz.{op.type} $0, [$1], $2;"
    x = em.b.bitcast(val, at) if val.type != at else val
    r = em.b.asm(ir.FunctionType(at, [ptr.type, at]), text, f"={con},l,{con},~{{memory}}", [ptr, x], True)
    em.bind(op.result, r if lltype(op.result.type) == at else em.b.bitcast(r, lltype(op.result.type)))


TABLE = {O.CreatePolicy: _createpolicy, O.Atomic: _atomic}


def _hinted(op: O.Op) -> bool:
    if isinstance(op, O.Load):
        return op.hinted
    if isinstance(op, O.CpAsync):
        return op.policy is not None or bool(op.prefetch)
    return isinstance(op, O.CreatePolicy)


def _ops(body: tuple[O.Op, ...]):  # noqa: ANN202
    for op in body:
        yield op
        for _, inner, _ in getattr(op, "regions", ()):
            yield from _ops(inner)


def min_ptx(body: tuple[O.Op, ...], floor: tuple[int, int]) -> tuple[int, int]:
    """The lowest PTX version that has every qualifier the kernel uses (at least ``floor``, the target's)."""
    ops = list(_ops(body))
    out = max(floor, HINTS_PTX) if any(_hinted(op) for op in ops) else floor
    if any(isinstance(op, O.CpAsync) and op.ignore_src is not None for op in ops):
        out = max(out, IGNORE_SRC_PTX)
    return out
