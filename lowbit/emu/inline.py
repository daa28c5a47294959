"""Calls to ``.func`` device functions, inlined at load time (PTX ISA 9.7.12.2 ``call``, 9.7.12.4 ``ret``).

LLVM emits a ``call`` for every ``noinline`` function, and Triton sometimes
for libdevice-like helpers.  The PTX calling sequence (ISA 5.1.6.2 "Kernel
Function Parameters" / "Device Function Parameters") is::

    { .param .b32 param0;  .param .b32 retval0;
      st.param.b32 [param0], %r1;
      call.uni (retval0), mix, (param0);
      ld.param.b32 %r2, [retval0]; }

The emulator has no call stack: before decoding, :func:`inline_calls` pastes
each callee's body in place of its ``call``, which gives exactly the
semantics of a call for every program without recursion (a choice: a stack of
per-call register frames would cost a frame switch per call and per return in
a machine whose registers are arrays over the whole grid, and divergent
threads could then sit in different frames; LLVM output for the GPU is
almost never recursive).  Per call site:

* the callee's registers, labels and ``.local``/``.param`` variables are
  renamed ``<name>@inl<k>`` (``@`` cannot occur in a PTX identifier and the
  parser's scope renaming uses ``@<digits>``, so nothing clashes);
* a ``.param`` formal parameter or return value becomes the caller's
  argument variable (the call-site ``.param`` declarations, which the
  machine keeps in per-thread local memory); a ``.reg`` formal gets a
  ``mov`` from the argument, a ``.reg`` return a ``mov`` back; a register or
  immediate passed for a ``.param`` formal is stored into a fresh variable;
* ``ret`` in the callee becomes a ``bra`` to the instruction after the
  inlined body (keeping its guard), so divergent returns reconverge there
  by the usual post-dominator rule; ``exit`` stays ``exit``;
* a guarded ``@p call`` becomes ``@!p bra`` around the inlined body.

Refused by name: recursion (directly or through other functions), indirect
calls through a register (``call (r), %rd1, (a), proto``), and calls to
functions without a body (``.extern .func`` such as ``vprintf``).
Function-scope ``.shared`` variables of a callee are static (one per
kernel, not per call) and are added once.
"""

from __future__ import annotations

from dataclasses import replace

from lowbit.emu import ptx_ast as A
from lowbit.errors import UnsupportedPTXError


def inline_calls(module: A.Module, fn: A.Function) -> A.Function:
    """``fn`` with every ``call`` replaced by the callee's body; ``fn`` itself if it makes no call."""
    if fn.body is None or not any(ins.opcode == "call" for ins in fn.body):
        return fn
    return _Inliner(module, fn).run()


class _Label:
    """A label definition in the flattened output (resolved to an index at the end)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Inliner:
    def __init__(self, module: A.Module, fn: A.Function) -> None:
        self.module = module
        self.fn = fn
        self.registers = dict(fn.registers)
        self.local = list(fn.local)
        self.shared = list(fn.shared)
        self.shared_names = {v.name for v in fn.shared}
        self.calls = 0
        self.out: list = []

    def run(self) -> A.Function:
        ident = _Renamer({}, {}, {}, "")
        self._emit(self.fn, ident, None, (self.fn.name,))
        labels: dict[str, int] = {}
        body: list[A.Instruction] = []
        for item in self.out:
            if isinstance(item, _Label):
                labels[item.name] = len(body)
            else:
                body.append(item)
        body = [_retarget(ins, labels) for ins in body]
        return replace(self.fn, registers=self.registers, local=tuple(self.local), shared=tuple(self.shared),
                       body=tuple(body), labels=labels)

    # ------------------------------------------------------------------ one function body
    def _emit(self, fn: A.Function, ren: "_Renamer", ret_label: str | None, stack: tuple[str, ...]) -> None:
        at: dict[int, list[str]] = {}
        for name, pc in fn.labels.items():
            at.setdefault(pc, []).append(name)
        for pc, ins in enumerate(fn.body):
            for name in at.get(pc, ()):
                self.out.append(_Label(ren.label(name)))
            ins = ren.instruction(ins)
            if ins.opcode == "call":
                self._call(ins, stack)
            elif ins.opcode == "ret" and ret_label is not None:
                self.out.append(A.Instruction("bra", ("uni",) if ins.guard is None else (),
                                              (A.LabelRef(ret_label),), ins.guard, ins.line,
                                              f"{ins.text} (return from {fn.name}, inlined)"))
            else:
                self.out.append(ins)
        for name in at.get(len(fn.body), ()):
            self.out.append(_Label(ren.label(name)))

    # ------------------------------------------------------------------ one call site
    def _call(self, ins: A.Instruction, stack: tuple[str, ...]) -> None:
        where = f"PTX line {ins.line}: `{ins.text}`"
        ops = list(ins.operands)
        rets: tuple = ()
        if ops and isinstance(ops[0], A.CallArgs):
            rets = ops.pop(0).elements
        if not ops or not isinstance(ops[0], A.Symbol):
            raise UnsupportedPTXError(f"{where}: indirect call through a register is not supported "
                                      "(the emulator inlines calls to named .func functions)")
        name = ops.pop(0).name
        args = ops.pop(0).elements if ops and isinstance(ops[0], A.CallArgs) else ()
        if ops:
            raise UnsupportedPTXError(f"{where}: call with a prototype or jump table is not supported")
        callee = self.module.functions.get(name)
        if callee is None or callee.kind != "func":
            raise UnsupportedPTXError(f"{where}: call to {name!r}, which is not a .func of this module")
        if callee.body is None:
            raise UnsupportedPTXError(f"{where}: call to {name}, an external function without a body "
                                      "(e.g. vprintf or __assertfail); the emulator cannot run it")
        if name in stack:
            chain = " -> ".join((*stack[stack.index(name):], name))
            raise UnsupportedPTXError(f"{where}: recursive call ({chain}); the emulator inlines calls at "
                                      "load time and cannot run recursion")
        if len(args) != len(callee.params) or len(rets) != len(callee.returns):
            raise UnsupportedPTXError(f"{where}: {name} takes {len(callee.params)} arguments and returns "
                                      f"{len(callee.returns)} values; the call passes {len(args)} and "
                                      f"{len(rets)}")
        self.calls += 1
        suffix = f"@inl{self.calls}"
        skip = f"$skip{suffix}"
        if ins.guard is not None:
            inv = A.Guard(ins.guard.register, not ins.guard.negated)
            self.out.append(A.Instruction("bra", (), (A.LabelRef(skip),), inv, ins.line,
                                          f"{ins.text} (guard of the inlined call)"))
        regs = {r: r + suffix for r in callee.registers}
        for r, decl in callee.registers.items():
            self.registers[r + suffix] = replace(decl, name=r + suffix)
        syms: dict[str, str] = {}
        for v in callee.local:
            syms[v.name] = v.name + suffix
            self.local.append(replace(v, name=v.name + suffix))
        for v in callee.shared:
            new = f"{v.name}@{name}"
            syms[v.name] = new
            if new not in self.shared_names:
                self.shared_names.add(new)
                self.shared.append(replace(v, name=new))
        labels = {lab: lab + suffix for lab in callee.labels}
        after: list[A.Instruction] = []
        for formal, actual, is_ret in [(p, a, False) for p, a in zip(callee.params, args)] + \
                                      [(p, a, True) for p, a in zip(callee.returns, rets)]:
            if formal.name in callee.registers:  # a .reg formal: copy in (or back out)
                t = f"b{A.TYPE_SIZES[formal.type] * 8}" if formal.type != "pred" else "pred"
                reg = A.Register(regs[formal.name])
                mov = A.Instruction("mov", (t,), (actual, reg) if is_ret else (reg, actual), None, ins.line,
                                    f"{ins.text} (.reg {'return' if is_ret else 'argument'} {formal.name})")
                (after if is_ret else self.out).append(mov)
            elif isinstance(actual, A.Symbol):
                syms[formal.name] = actual.name
            elif not is_ret and isinstance(actual, (A.Register, A.Immediate, A.FloatImmediate)):
                var = formal.name + suffix
                syms[formal.name] = var
                self.local.append(A.VariableDecl(var, "param", formal.type, formal.align, formal.dims))
                t = f"b{A.TYPE_SIZES[formal.type] * 8}"
                self.out.append(A.Instruction("st", ("param", t), (A.Address(A.Symbol(var)), actual), None,
                                              ins.line, f"{ins.text} (argument {formal.name})"))
            else:
                raise UnsupportedPTXError(f"{where}: cannot pass {actual!r} for {name}'s "
                                          f"{'return value' if is_ret else 'parameter'} {formal.name}")
        ret_label = f"$ret{suffix}"
        self._emit(callee, _Renamer(regs, syms, labels, suffix), ret_label, (*stack, name))
        self.out.append(_Label(ret_label))
        self.out.extend(after)
        self.out.append(_Label(skip))


class _Renamer:
    """Rewrites one function's operands into the kernel's namespace."""

    def __init__(self, regs: dict, syms: dict, labels: dict, suffix: str) -> None:
        self.regs, self.syms, self.labels, self.suffix = regs, syms, labels, suffix

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    def instruction(self, ins: A.Instruction) -> A.Instruction:
        if not self.suffix:
            return ins
        guard = ins.guard
        if guard is not None:
            guard = A.Guard(self.regs.get(guard.register, guard.register), guard.negated)
        return replace(ins, operands=tuple(self.operand(o) for o in ins.operands), guard=guard)

    def operand(self, o):
        if isinstance(o, A.Register):
            return A.Register(self.regs.get(o.name, o.name), o.component)
        if isinstance(o, A.LabelRef):
            return A.LabelRef(self.label(o.name))
        if isinstance(o, A.Symbol):
            return A.Symbol(self.syms.get(o.name, o.name))
        if isinstance(o, A.Address):
            return A.Address(None if o.base is None else self.operand(o.base), o.offset)
        if isinstance(o, A.SymbolOffset):
            return A.SymbolOffset(self.operand(o.symbol), o.offset)
        if isinstance(o, A.Negated):
            return A.Negated(self.operand(o.operand))
        if isinstance(o, A.PredicatePair):
            return A.PredicatePair(self.operand(o.first), self.operand(o.second))
        if isinstance(o, A.Vector):
            return A.Vector(tuple(self.operand(e) for e in o.elements))
        if isinstance(o, A.CallArgs):
            return A.CallArgs(tuple(self.operand(e) for e in o.elements))
        return o


def _retarget(ins: A.Instruction, labels: dict[str, int]) -> A.Instruction:
    """Point every label operand at its index in the flattened body."""
    if not any(isinstance(o, A.LabelRef) for o in ins.operands):
        return ins
    ops = tuple(A.LabelRef(o.name, labels[o.name]) if isinstance(o, A.LabelRef) else o for o in ins.operands)
    return replace(ins, operands=ops)


__all__ = ["inline_calls"]
