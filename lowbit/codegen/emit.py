"""SIMT kernel -> LLVM IR text (through ``llvmlite.ir``) -> PTX.

Codegen only translates: each SIMT op becomes one LLVM instruction, one
intrinsic call or one inline-asm statement, chosen by the op alone (the
table is in ``docs/simt.md``).  Structured regions become LLVM's canonical
shapes: a ``for`` is preheader -> header (phis for the induction variable and
the carried registers, ``icmp slt``) -> body -> latch -> header / exit, an
``if`` a diamond with phis at the join, a masked load or store a branch
around the access (LLVM turns it into a predicated ``@p ld``/``@p st``).

Determinism: LLVM value names come from register names, intrinsic
declarations are created in first-use order, and the module is printed by
llvmlite, so identical kernels give identical LLVM text and (through
:func:`lowbit.codegen.llvm.emit_ptx`) byte-identical PTX.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from lowbit.arch import Target, target as get_target
from lowbit.codegen.emit_cache import min_ptx
from lowbit.codegen.llvm import LLVMWorker, emit_ptx
from lowbit.codegen.emit_ops import emit_op
from lowbit.codegen.llvm_types import DATA_LAYOUT, TRIPLE, overload_suffix, lltype
from lowbit.errors import CodegenError
from lowbit.ir.simt import ops as O
from lowbit.ir.simt.control import For, If
from lowbit.ir.simt.kernel import Kernel
from lowbit.ir.simt.printer import op_head
from lowbit.ir.simt.types import Const, Operand, Reg, Space
from lowbit.ir.simt.verifier import verify



class _Emitter:
    def __init__(self, kernel: Kernel, tgt: Target) -> None:
        self.kernel, self.tgt = kernel, tgt
        self.module = ir.Module(name=kernel.name)
        self.module.triple = TRIPLE
        self.module.data_layout = DATA_LAYOUT
        self.values: dict[int, ir.Value] = {}
        self.shared: dict[str, ir.GlobalVariable] = {}
        self.decls: dict[str, ir.Function] = {}
        params = [lltype(p.reg.type) for p in kernel.params]
        self.fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), params), kernel.name)
        self.fn.calling_convention = "ptx_kernel"
        for p, arg in zip(kernel.params, self.fn.args):
            arg.name = p.reg.name
            self.values[id(p.reg)] = arg
        for buf in kernel.shared:
            size = 0 if buf.dynamic or buf.size is None else buf.size
            gv = ir.GlobalVariable(self.module, ir.ArrayType(ir.IntType(8), size), buf.name, addrspace=Space.SHARED.value)
            gv.align = buf.align
            if buf.dynamic:
                gv.linkage = "external"
            else:
                gv.linkage = "internal"
                gv.initializer = ir.Constant(ir.ArrayType(ir.IntType(8), size), ir.Undefined)
            gv.type = ir.PointerType(addrspace=Space.SHARED.value)  # used as an opaque ptr addrspace(3)
            self.shared[buf.name] = gv
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))

    # ---------------------------------------------------------------- helpers
    def val(self, v: Operand) -> ir.Value:
        if isinstance(v, Const):
            return ir.Constant(lltype(v.type), v.value)
        try:
            return self.values[id(v)]
        except KeyError:
            raise CodegenError(f"register {v} has no value (was the kernel verified?)") from None

    def bind(self, reg: Reg, value: ir.Value) -> None:
        if isinstance(value, ir.Instruction) and value.name.startswith("."):  # llvmlite's automatic name
            value.name = reg.name
        self.values[id(reg)] = value

    def declare(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        fnty = ir.FunctionType(ret, args)
        fn = self.decls.get(name)
        if fn is None:
            fn = ir.Function(self.module, fnty, name)
            self.decls[name] = fn
        elif fn.function_type != fnty:
            raise CodegenError(f"intrinsic {name} is called with two signatures: {fn.function_type} and {fnty}")
        return fn

    def call(self, name: str, ret: ir.Type, args: list[ir.Value]) -> ir.Value:
        return self.b.call(self.declare(name, ret, [a.type for a in args]), args)

    def overloaded(self, base: str, t: ir.Type, args: list[ir.Value]) -> ir.Value:
        return self.call(f"{base}.{overload_suffix(t)}", t, args)

    def block(self, hint: str) -> ir.Block:
        return self.fn.append_basic_block(hint)

    # ---------------------------------------------------------------- regions
    def region(self, ops: tuple[O.Op, ...]) -> None:
        for op in ops:
            try:
                self.op(op)
            except CodegenError as exc:
                msg = str(exc)
                raise CodegenError(msg if msg.startswith("simt ") else f"simt `{op_head(op)}`: {msg}") from None

    def emit_for(self, op: For) -> None:
        b = self.b
        pre = b.block
        header, body, exit_ = self.block(f"{op.iv.name}.head"), self.block(f"{op.iv.name}.body"), self.block(f"{op.iv.name}.exit")
        start, stop, step = self.val(op.start), self.val(op.stop), self.val(op.step)
        inits = [self.val(v) for v in op.inits]
        b.branch(header)
        b.position_at_end(header)
        iv = b.phi(lltype(op.iv.type), name=op.iv.name)
        iv.add_incoming(start, pre)
        phis = []
        for c, init in zip(op.carried, inits):
            phi = b.phi(lltype(c.type), name=c.name)
            phi.add_incoming(init, pre)
            phis.append(phi)
        self.values[id(op.iv)] = iv
        for c, phi in zip(op.carried, phis):
            self.values[id(c)] = phi
        b.cbranch(b.icmp_signed("<", iv, stop), body, exit_)
        b.position_at_end(body)
        self.region(op.body)
        yields = [self.val(y) for y in op.yields]
        nxt = b.add(iv, step, name=f"{op.iv.name}.next")
        latch = b.block
        b.branch(header)
        iv.add_incoming(nxt, latch)
        for phi, y in zip(phis, yields):
            phi.add_incoming(y, latch)
        b.position_at_end(exit_)
        for r, phi in zip(op.results_, phis):
            self.values[id(r)] = phi

    def emit_if(self, op: If) -> None:
        b = self.b
        cond = self.val(op.cond)
        then_bb, else_bb, join = self.block("then"), self.block("else"), self.block("join")
        b.cbranch(cond, then_bb, else_bb)
        sides = []
        for bb, ops, yields in ((then_bb, op.then_body, op.then_yields), (else_bb, op.else_body, op.else_yields)):
            b.position_at_end(bb)
            self.region(ops)
            vals = [self.val(y) for y in yields]
            sides.append((b.block, vals))
            b.branch(join)
        b.position_at_end(join)
        for i, r in enumerate(op.results_):
            phi = b.phi(lltype(r.type), name=r.name)
            for bb, vals in sides:
                phi.add_incoming(vals[i], bb)
            self.values[id(r)] = phi

    # ---------------------------------------------------------------- ops
    def op(self, op: O.Op) -> None:
        if isinstance(op, For):
            self.emit_for(op)
        elif isinstance(op, If):
            self.emit_if(op)
        else:
            emit_op(self, op)

    def finish(self) -> str:
        self.b.ret_void()
        text = str(self.module)
        # llvmlite knows no string attributes: .reqntid comes from LLVM 22's "nvvm.reqntid" function attribute
        head = f'define ptx_kernel void @"{self.kernel.name}"('
        at = text.index(head)
        brace = text.index("\n{", at)
        attrs = f'attributes #0 = {{ "nvvm.reqntid"="{self.kernel.threads}" }}\n'
        return text[:brace] + " #0" + text[brace:] + "\n" + attrs


@dataclass(frozen=True)
class CompiledKernel:
    """Every stage's text for one kernel and target."""

    name: str
    arch: str
    llvm_ir: str
    optimized_ir: str
    ptx: str


def to_llvm(kernel: Kernel, arch: str | Target = "sm_80") -> str:
    """The LLVM IR module text for ``kernel`` (verified first)."""
    verify(kernel)
    em = _Emitter(kernel, get_target(arch))
    em.region(kernel.body)
    return em.finish()


def compile_kernel(
    kernel: Kernel,
    arch: str | Target = "sm_80",
    ptx_version: tuple[int, int] | None = None,
    opt_level: int = 3,
    worker: LLVMWorker | None = None,
) -> CompiledKernel:
    """SIMT -> LLVM IR -> (LLVM -O``opt_level``) -> PTX for ``arch``."""
    tgt = get_target(arch)
    text = to_llvm(kernel, tgt)
    if ptx_version is None:  # the target's default, raised to what the intrinsics and the qualifiers need
        from lowbit.codegen.intrinsics import needed_ptx  # noqa: PLC0415

        ptx_version = min(max(min_ptx(kernel.body, tgt.default_ptx), needed_ptx(text, tgt)), tgt.max_ptx)
    res = emit_ptx(text, tgt, ptx_version=ptx_version, opt_level=opt_level, worker=worker)
    return CompiledKernel(kernel.name, tgt.name, text, res.optimized_ir, res.ptx)


__all__ = ["CompiledKernel", "compile_kernel", "to_llvm"]
