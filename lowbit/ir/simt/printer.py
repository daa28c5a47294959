"""The SIMT text form: one op a line, every result with its type, constants as ``value:type``.

::

    kernel @scale(%x: ptr.global[f32], %n: i32) threads 128 {
      shared @buf size 512 align 16
      %t: i32 = sreg tid.x
      %p: ptr.global = gep f32 %x, %t
      %v: f32 = load %p align 4 mask %ok else 0.0:f32
      %s: f32 = for %i: i32 = 0:i32 to %n step 1:i32 iter(%acc: f32 = 0.0:f32) {
        %a2: f32 = fadd %acc, %v
        yield %a2
      }
      store %p, %s align 4
    }

Output is deterministic and :mod:`lowbit.ir.simt.parser` reads it back, so
``print(parse(print(k))) == print(k)``: pass tests compare texts.
"""

from __future__ import annotations

from lowbit.ir.simt import ops as O
from lowbit.ir.simt.control import For, If
from lowbit.ir.simt.kernel import Kernel, Param, SharedBuffer
from lowbit.ir.simt.types import Const, Operand, Reg

INDENT = "  "


def operand(v: Operand | None) -> str:
    if isinstance(v, (Reg, Const)):
        return str(v)
    raise TypeError(f"not an operand: {v!r}")


def _defs(regs: tuple[Reg, ...]) -> str:
    return ", ".join(f"{r}: {r.type}" for r in regs)


def _args(*vals: Operand) -> str:
    return ", ".join(operand(v) for v in vals)


def _access(op: O.Load | O.Store) -> str:
    text = f" align {op.align}"
    if op.mask is not None:
        text += f" mask {operand(op.mask)}"
        if isinstance(op, O.Load):
            text += f" else {operand(op.other)}"
    return text + _hints(op)


def _hints(op: O.Op) -> str:
    text = ""
    if getattr(op, "policy", None) is not None:
        text += f" policy {operand(op.policy)}"  # type: ignore[attr-defined]
    if getattr(op, "prefetch", 0):
        text += f" prefetch {op.prefetch}"  # type: ignore[attr-defined]
    return text


def op_rhs(op: O.Op) -> str:
    """The text right of ``=`` (the whole line for ops without results); regions not included."""
    match op:
        case O.SReg():
            return f"sreg {op.name}"
        case O.Binary():
            return f"{op.op} {_args(op.a, op.b)}"
        case O.Unary():
            return f"{op.op} {_args(op.x)}"
        case O.Fma():
            return f"fma {_args(op.a, op.b, op.c)}"
        case O.Cmp():
            return f"{op.kind} {op.pred} {_args(op.a, op.b)}"
        case O.Select():
            return f"select {_args(op.cond, op.a, op.b)}"
        case O.Cast():
            return f"{op.kind} {_args(op.x)}"
        case O.Pack():
            return f"pack {_args(*op.elems)}"
        case O.Extract():
            return f"extract {_args(op.vec)}, {op.index}"
        case O.Gep():
            return f"gep {op.elem} {_args(op.base, op.index)}"
        case O.SharedAddr():
            return f"shared_addr @{op.buffer}"
        case O.Load():
            return f"load{'.' + op.l1 if op.l1 else ''} {_args(op.ptr)}{_access(op)}"
        case O.Store():
            return f"store {_args(op.ptr, op.value)}{_access(op)}"
        case O.AtomicAdd():
            return f"atomic_add {_args(op.ptr, op.value)}"
        case O.AtomicBits():
            return f"atomic_{op.kind} {_args(op.ptr, op.value)}"
        case O.CpAsync():
            extra = "" if op.src_size is None else f" src_size {operand(op.src_size)}"
            extra += "" if op.ignore_src is None else f" ignore_src {operand(op.ignore_src)}"
            return f"cp_async.{op.cache}.{op.size} {_args(op.dst, op.src)}{extra}{_hints(op)}"
        case O.CreatePolicy():
            return f"createpolicy.{op.priority}"
        case O.Atomic():
            vals = (op.ptr, op.value) if op.compare is None else (op.ptr, op.compare, op.value)
            return f"atom.{op.kind}.{op.type} {_args(*vals)}"
        case O.CpAsyncCommit():
            return "cp_async_commit"
        case O.CpAsyncWait():
            return f"cp_async_wait {op.pending}"
        case O.Barrier():
            return "barrier"
        case O.Trap():
            return f"trap_if {operand(op.cond)}, {op.code}"
        case O.Shfl():
            return f"shfl.{op.mode} {_args(op.value, op.lane, op.clamp, op.member_mask)}"
        case O.Vote():
            return f"vote.{op.mode} {_args(op.pred, op.member_mask)}"
        case O.Lop3():
            return f"lop3 {_args(op.a, op.b, op.c)}, 0x{op.lut:02x}"
        case O.Prmt():
            return f"prmt {_args(op.a, op.b, op.selector)}"
        case O.CvtPack():
            return f"cvt_pack.{op.kind} {_args(op.lo, op.hi)}"
        case O.CvtUnpack():
            return f"cvt_unpack.{op.kind} {_args(op.x)}"
        case O.Call():
            return f"call @{op.name}({_args(*op.args)})"
        case For():
            head = f"for {op.iv}: {op.iv.type} = {_args(op.start)} to {_args(op.stop)} step {_args(op.step)}"
            if op.carried:
                head += " iter(" + ", ".join(f"{c}: {c.type} = {operand(i)}" for c, i in zip(op.carried, op.inits)) + ")"
            return head
        case If():
            return f"if {_args(op.cond)}"
    raise TypeError(f"no printer for {type(op).__name__}")


def op_head(op: O.Op) -> str:
    """One line naming ``op``: results, ``=``, the op (what errors quote)."""
    rhs = op_rhs(op)
    return f"{_defs(op.results)} = {rhs}" if op.results else rhs


def _region(ops: tuple[O.Op, ...], yields: tuple[Operand, ...], depth: int, out: list[str]) -> None:
    for op in ops:
        _op(op, depth, out)
    if yields:
        out.append(INDENT * depth + "yield " + _args(*yields))


def _op(op: O.Op, depth: int, out: list[str]) -> None:
    pad = INDENT * depth
    if isinstance(op, For):
        out.append(pad + op_head(op) + " {")
        _region(op.body, op.yields, depth + 1, out)
        out.append(pad + "}")
    elif isinstance(op, If):
        out.append(pad + op_head(op) + " {")
        _region(op.then_body, op.then_yields, depth + 1, out)
        if op.else_body or op.else_yields:
            out.append(pad + "} else {")
            _region(op.else_body, op.else_yields, depth + 1, out)
        out.append(pad + "}")
    else:
        out.append(pad + op_head(op))


def _param(p: Param) -> str:
    return f"{p.reg}: {p.reg.type}" + (f"[{p.elem}]" if p.elem is not None else "")


def _shared(b: SharedBuffer) -> str:
    size = f"size {b.size}" if b.size is not None else ""
    if b.dynamic:
        size = "dynamic" + (" " + size if size else "")
    return f"shared @{b.name} {size} align {b.align}"


def print_kernel(k: Kernel) -> str:
    """The canonical text of ``k`` (ends with a newline)."""
    out = [f"kernel @{k.name}(" + ", ".join(_param(p) for p in k.params) + f") threads {k.threads} {{"]
    out += [INDENT + _shared(b) for b in k.shared]
    for op in k.body:
        _op(op, 1, out)
    out.append("}")
    return "\n".join(out) + "\n"
