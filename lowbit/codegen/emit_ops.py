"""The per-op table of SIMT -> LLVM translation (regions are in :mod:`lowbit.codegen.emit`).

Each function below handles one SIMT op class and emits exactly what
``docs/simt.md`` lists for it; none of them chooses between alternatives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from lowbit.codegen.emit_cache import TABLE as CACHE_TABLE
from lowbit.codegen.emit_cache import hinted_cp_async, hinted_load
from lowbit.codegen.llvm_types import I1, I32T, overload_suffix, lltype
from lowbit.errors import CodegenError
from lowbit.ir.simt import ops as O

if TYPE_CHECKING:
    from lowbit.codegen.emit import _Emitter

_ICMP = {"eq": "==", "ne": "!=", "slt": "<", "sle": "<=", "sgt": ">", "sge": ">=",
         "ult": "<", "ule": "<=", "ugt": ">", "uge": ">="}  # fmt: skip
_FCMP = {"oeq": "==", "one": "!=", "olt": "<", "ole": "<=", "ogt": ">", "oge": ">=", "ord": "ord",
         "ueq": "==", "une": "!=", "ult": "<", "ule": "<=", "ugt": ">", "uge": ">=", "uno": "uno"}  # fmt: skip
_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "sdiv": "sdiv", "udiv": "udiv", "srem": "srem",
           "urem": "urem", "and": "and_", "or": "or_", "xor": "xor", "shl": "shl", "lshr": "lshr",
           "ashr": "ashr", "fadd": "fadd", "fsub": "fsub", "fmul": "fmul", "fdiv": "fdiv"}  # fmt: skip
_BINARY_INTRINSIC = {"smin": "llvm.smin", "smax": "llvm.smax", "umin": "llvm.umin", "umax": "llvm.umax",
                     "fmin": "llvm.minnum", "fmax": "llvm.maxnum"}  # fmt: skip
_UNARY_INTRINSIC = {"popc": "llvm.ctpop", "brev": "llvm.bitreverse", "fabs": "llvm.fabs", "sqrt": "llvm.sqrt",
                    "frint": "llvm.roundeven", "ftrunc": "llvm.trunc", "ffloor": "llvm.floor",
                    "fceil": "llvm.ceil"}  # fmt: skip
_APPROX = {"exp2.approx": "llvm.nvvm.ex2.approx.f", "log2.approx": "llvm.nvvm.lg2.approx.f",
           "rsqrt.approx": "llvm.nvvm.rsqrt.approx.f"}  # fmt: skip
_CVT_PACK = {"f16x2.rn": "llvm.nvvm.ff2f16x2.rn", "bf16x2.rn": "llvm.nvvm.ff2bf16x2.rn",
             "e4m3x2.rn": "llvm.nvvm.ff.to.e4m3x2.rn", "e5m2x2.rn": "llvm.nvvm.ff.to.e5m2x2.rn"}  # fmt: skip
#: the unpacking intrinsics all take an i16 (for e2m1x2 LLVM narrows it to the .b8 operand PTX wants)
_CVT_UNPACK = {f"{k}.f16x2": f"llvm.nvvm.{k}.to.f16x2.rn" for k in ("e4m3x2", "e5m2x2", "e2m1x2", "e2m3x2", "e3m2x2")}


def _sreg(em: _Emitter, op: O.SReg) -> None:
    em.bind(op.result, em.call(f"llvm.nvvm.read.ptx.sreg.{op.name}", I32T, []))


def _binary(em: _Emitter, op: O.Binary) -> None:
    a, b = em.val(op.a), em.val(op.b)
    if op.op in _BINARY:
        v = getattr(em.b, _BINARY[op.op])(a, b)
    elif op.op in _BINARY_INTRINSIC:
        v = em.overloaded(_BINARY_INTRINSIC[op.op], a.type, [a, b])
    else:  # mulhi.s / mulhi.u: the high half of the double-width product (LLVM selects mul.hi)
        t = a.type
        wide = ir.IntType(t.width * 2) if isinstance(t, ir.IntType) else None
        if wide is None:
            raise CodegenError(f"{op.op} takes scalar integers")
        ext = em.b.sext if op.op == "mulhi.s" else em.b.zext
        prod = em.b.mul(ext(a, wide), ext(b, wide))
        v = em.b.trunc(em.b.lshr(prod, ir.Constant(wide, t.width)), t)
    em.bind(op.result, v)


def _unary(em: _Emitter, op: O.Unary) -> None:
    x = em.val(op.x)
    b = em.b
    if op.op == "not":
        v = b.not_(x)
    elif op.op == "neg":
        v = b.neg(x)
    elif op.op == "fneg":
        v = b.fneg(x)
    elif op.op in ("abs", "clz"):  # llvm.abs / llvm.ctlz take an i1 "poison on INT_MIN / zero": false
        v = em.overloaded("llvm.abs" if op.op == "abs" else "llvm.ctlz", x.type, [x, ir.Constant(I1, 0)])
    elif op.op in _APPROX:
        v = em.call(_APPROX[op.op], x.type, [x])
    else:
        v = em.overloaded(_UNARY_INTRINSIC[op.op], x.type, [x])
    em.bind(op.result, v)


def _fma(em: _Emitter, op: O.Fma) -> None:
    a = em.val(op.a)
    em.bind(op.result, em.overloaded("llvm.fma", a.type, [a, em.val(op.b), em.val(op.c)]))


def _cmp(em: _Emitter, op: O.Cmp) -> None:
    a, b = em.val(op.a), em.val(op.b)
    if op.kind == "icmp":
        fn = em.b.icmp_unsigned if op.pred[0] == "u" else em.b.icmp_signed
        v = fn(_ICMP[op.pred], a, b)
    else:
        fn = em.b.fcmp_unordered if op.pred[0] == "u" else em.b.fcmp_ordered
        v = fn(_FCMP[op.pred], a, b)
    em.bind(op.result, v)


def _select(em: _Emitter, op: O.Select) -> None:
    em.bind(op.result, em.b.select(em.val(op.cond), em.val(op.a), em.val(op.b)))


def _cast(em: _Emitter, op: O.Cast) -> None:
    x, to = em.val(op.x), lltype(op.result.type)
    if op.kind == "ptrtoint":
        v = em.b.ptrtoint(x, to)
    elif op.kind in ("fptosi.sat", "fptoui.sat"):
        name = f"llvm.{op.kind}.{overload_suffix(to)}.{overload_suffix(x.type)}"
        v = em.call(name, to, [x])
    else:
        v = getattr(em.b, op.kind)(x, to)
    em.bind(op.result, v)


def _half_of_word(x: ir.Value) -> tuple[ir.Value, int] | None:
    """``(w, lane)`` when the 16-bit float ``x`` is ``bitcast(trunc(w & 0xffff))`` (lane 0), ``bitcast(trunc(w >> 16))``
    (lane 1) or ``bitcast(trunc(w))`` (lane 0) of an i32 ``w``: the half's bits are lane ``lane`` of ``w``."""
    if not (isinstance(x, ir.CastInstr) and x.opname == "bitcast" and isinstance(x.operands[0], ir.CastInstr)):
        return None
    t = x.operands[0]
    if t.opname != "trunc" or t.type != ir.IntType(16) or t.operands[0].type != I32T:
        return None
    w = t.operands[0]
    if isinstance(w, ir.Instruction) and w.opname in ("and", "lshr") and isinstance(w.operands[1], ir.Constant):
        k = w.operands[1].constant
        if w.opname == "and" and k == 0xFFFF:
            return w.operands[0], 0
        if w.opname == "lshr" and k == 16:
            return w.operands[0], 1
    return w, 0


def _pack(em: _Emitter, op: O.Pack) -> None:
    t = op.result.type
    if len(op.elems) == 2 and op.elems[0] is op.elems[1] and t.elem.name in ("f16", "bf16"):  # type: ignore[attr-defined]
        # a 16-bit float splat taken from a half of a 32-bit word (a scale of a packed pair): shuffle that half of
        # the word viewed as two lanes -- NVPTX's unpack of the word (shared by both halves' splats) and a
        # re-pack, where the scalar lshr/trunc/insert chain cost up to four moves a splat
        got = _half_of_word(em.val(op.elems[0]))
        if got is not None:
            w, lane = got
            vt = lltype(t)
            pair = em.b.bitcast(w, vt)
            em.bind(op.result, em.b.shuffle_vector(pair, ir.Constant(vt, ir.Undefined),
                                                   ir.Constant(ir.VectorType(I32T, 2), [lane, lane])))
            return
    v: ir.Value = ir.Constant(lltype(op.result.type), ir.Undefined)
    for i, e in enumerate(op.elems):
        v = em.b.insert_element(v, em.val(e), ir.Constant(I32T, i))
    em.bind(op.result, v)


def _extract(em: _Emitter, op: O.Extract) -> None:
    em.bind(op.result, em.b.extract_element(em.val(op.vec), ir.Constant(I32T, op.index)))


def _gep(em: _Emitter, op: O.Gep) -> None:
    em.bind(op.result, em.b.gep(em.val(op.base), [em.val(op.index)], source_etype=lltype(op.elem)))


def _shared_addr(em: _Emitter, op: O.SharedAddr) -> None:
    em.values[id(op.result)] = em.shared[op.buffer]


def _guarded(em: _Emitter, mask: ir.Value, hint: str) -> tuple[ir.Block, ir.Block, ir.Block]:
    """Branch on ``mask`` into a new block; returns (block before, guarded block, join block)."""
    before = em.b.block
    body, join = em.block(f"{hint}.on"), em.block(f"{hint}.join")
    em.b.cbranch(mask, body, join)
    em.b.position_at_end(body)
    return before, body, join


def _load(em: _Emitter, op: O.Load) -> None:
    if op.hinted:  # L1/L2 cache hints exist only as PTX text
        hinted_load(em, op)
        return
    t = lltype(op.result.type)
    ptr = em.val(op.ptr)
    if op.mask is None:
        em.bind(op.result, em.b.load(ptr, typ=t, align=op.align))
        return
    other = em.val(op.other)
    before, body, join = _guarded(em, em.val(op.mask), op.result.name)
    loaded = em.b.load(ptr, typ=t, align=op.align)
    em.b.branch(join)
    em.b.position_at_end(join)
    phi = em.b.phi(t, name=op.result.name)
    phi.add_incoming(loaded, body)
    phi.add_incoming(other, before)
    em.values[id(op.result)] = phi


def _store(em: _Emitter, op: O.Store) -> None:
    ptr, value = em.val(op.ptr), em.val(op.value)
    if op.mask is None:
        em.b.store(value, ptr, align=op.align)
        return
    _, _, join = _guarded(em, em.val(op.mask), "store")
    em.b.store(value, ptr, align=op.align)
    em.b.branch(join)
    em.b.position_at_end(join)


def _atomic_add(em: _Emitter, op: O.AtomicAdd) -> None:
    kind = "fadd" if op.value.type.is_float else "add"
    em.bind(op.result, em.b.atomic_rmw(kind, em.val(op.ptr), em.val(op.value), "monotonic"))


def _atomic_bits(em: _Emitter, op: O.AtomicBits) -> None:
    # atomicrmw and/or monotonic on addrspace(1)/(3) -> atom.{global,shared}.{and,or}.b32 (red when unused)
    em.bind(op.result, em.b.atomic_rmw(op.kind, em.val(op.ptr), em.val(op.value), "monotonic"))


def _cp_async(em: _Emitter, op: O.CpAsync) -> None:
    if not em.tgt.supports("cp.async"):
        raise CodegenError(f"cp.async is not available on {em.tgt.name}")
    if op.policy is not None or op.prefetch or op.ignore_src is not None:  # (no intrinsic takes ignore-src either)
        hinted_cp_async(em, op)
        return
    dst, src = em.val(op.dst), em.val(op.src)
    if op.src_size is None:
        em.call(f"llvm.nvvm.cp.async.{op.cache}.shared.global.{op.size}", ir.VoidType(), [dst, src])
        return
    # zero-fill form: no intrinsic takes src-size (TOOLCHAIN.md), so inline asm with a memory clobber
    fnty = ir.FunctionType(ir.VoidType(), [dst.type, src.type, I32T])
    text = f"cp.async.{op.cache}.shared.global [$0], [$1], {op.size}, $2;"
    em.b.asm(fnty, text, "l,l,r,~{memory}", [dst, src, em.val(op.src_size)], True)


def _commit(em: _Emitter, op: O.CpAsyncCommit) -> None:
    if not em.tgt.supports("cp.async"):
        raise CodegenError(f"cp.async is not available on {em.tgt.name}")
    em.call("llvm.nvvm.cp.async.commit.group", ir.VoidType(), [])


def _wait(em: _Emitter, op: O.CpAsyncWait) -> None:
    if not em.tgt.supports("cp.async"):
        raise CodegenError(f"cp.async is not available on {em.tgt.name}")
    em.call("llvm.nvvm.cp.async.wait.group", ir.VoidType(), [ir.Constant(I32T, op.pending)])


def _barrier(em: _Emitter, op: O.Barrier) -> None:
    em.call("llvm.nvvm.barrier.cta.sync.aligned.all", ir.VoidType(), [ir.Constant(I32T, 0)])


def _trap(em: _Emitter, op: O.Trap) -> None:
    # inline asm, not llvm.trap: the comment travels into the PTX next to the trap, so that the launch layer
    # can say why the kernel trapped (LLVM may merge or move llvm.trap calls; it keeps asm text as written)
    b = em.b
    trap_bb, cont = em.block("trap"), em.block("trap.cont")
    b.cbranch(em.val(op.cond), trap_bb, cont)
    b.position_at_end(trap_bb)
    b.asm(ir.FunctionType(ir.VoidType(), []), f"trap; // lowbit trap {op.code}", "~{memory}", [], True)
    b.branch(cont)
    b.position_at_end(cont)


def _shfl(em: _Emitter, op: O.Shfl) -> None:
    v = em.val(op.value)
    name = f"llvm.nvvm.shfl.sync.{op.mode}.{overload_suffix(v.type)}"
    args = [em.val(op.member_mask), v, em.val(op.lane), em.val(op.clamp)]
    em.bind(op.result, em.call(name, v.type, args))


def _vote(em: _Emitter, op: O.Vote) -> None:
    ret = I32T if op.mode == "ballot" else I1
    em.bind(op.result, em.call(f"llvm.nvvm.vote.{op.mode}.sync", ret, [em.val(op.member_mask), em.val(op.pred)]))


def _lop3(em: _Emitter, op: O.Lop3) -> None:
    # no lop3 intrinsic exists and LLVM never selects lop3 (TOOLCHAIN.md): pure inline asm, CSE-able
    # constant operands are written as immediates (PTX takes them in any source slot): an "r" operand would be
    # a mov.b32 of the constant, which LLVM rematerialises next to each use -- inside the loop
    fields, args = [], []
    for x in (em.val(op.a), em.val(op.b), em.val(op.c)):
        if isinstance(x, ir.Constant) and isinstance(x.constant, int):
            fields.append(f"0x{x.constant & 0xFFFFFFFF:08x}")
        else:
            args.append(x)
            fields.append(f"${len(args)}")
    fnty = ir.FunctionType(I32T, [I32T] * len(args))
    text = f"lop3.b32 $0, {', '.join(fields)}, 0x{op.lut:02x};"
    em.bind(op.result, em.b.asm(fnty, text, ",".join(["=r"] + ["r"] * len(args)), args, False))


def _prmt(em: _Emitter, op: O.Prmt) -> None:
    em.bind(op.result, em.call("llvm.nvvm.prmt", I32T, [em.val(op.a), em.val(op.b), em.val(op.selector)]))


def _cvt_pack(em: _Emitter, op: O.CvtPack) -> None:
    # cvt.rn.f16x2.f32 d, a, b puts a in the upper half: the intrinsic takes (hi, lo)
    args = [em.val(op.hi), em.val(op.lo)]
    em.bind(op.result, em.call(_CVT_PACK[op.kind], lltype(op.result.type), args))


def _cvt_unpack(em: _Emitter, op: O.CvtUnpack) -> None:
    em.bind(op.result, em.call(_CVT_UNPACK[op.kind], lltype(op.result.type), [em.val(op.x)]))


def _call(em: _Emitter, op: O.Call) -> None:
    rets = [lltype(r.type) for r in op.results_]
    ret = ir.VoidType() if not rets else rets[0] if len(rets) == 1 else ir.LiteralStructType(rets)
    v = em.call(op.name, ret, [em.val(a) for a in op.args])
    if len(rets) == 1:
        em.bind(op.results_[0], v)
    elif rets:
        for i, r in enumerate(op.results_):
            em.bind(r, em.b.extract_value(v, i))


_TABLE: dict[type, Callable] = {
    O.SReg: _sreg, O.Binary: _binary, O.Unary: _unary, O.Fma: _fma, O.Cmp: _cmp, O.Select: _select,
    O.Cast: _cast, O.Pack: _pack, O.Extract: _extract, O.Gep: _gep, O.SharedAddr: _shared_addr,
    O.Load: _load, O.Store: _store, O.AtomicAdd: _atomic_add, O.AtomicBits: _atomic_bits, O.CpAsync: _cp_async,
    O.CpAsyncCommit: _commit, O.CpAsyncWait: _wait, O.Barrier: _barrier, O.Trap: _trap, O.Shfl: _shfl, O.Vote: _vote,
    O.Lop3: _lop3, O.Prmt: _prmt, O.CvtPack: _cvt_pack, O.CvtUnpack: _cvt_unpack, O.Call: _call,
    **CACHE_TABLE,
}  # fmt: skip


def emit_op(em: _Emitter, op: O.Op) -> None:
    fn = _TABLE.get(type(op))
    if fn is None:
        raise CodegenError(f"no LLVM translation for SIMT op {type(op).__name__}")
    fn(em, op)
