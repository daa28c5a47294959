"""Read the SIMT text form back into a :class:`~lowbit.ir.simt.kernel.Kernel`.

The lark grammar (``simt.lark``, LALR) gives every simple op the same shape;
:func:`_build` turns (opcode words, @symbol, operands, clauses, result
registers) into the op's dataclass, whose constructor then checks types.
Registers are created at their definition and looked up by name at each use;
an unknown name, a syntax error or an ill-typed op is an
:class:`~lowbit.errors.IRError` with the line number.  The result is verified.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from lowbit.errors import IRError
from lowbit.ir.simt import ops as O
from lowbit.ir.simt.control import For, If
from lowbit.ir.simt.kernel import Kernel, Param, SharedBuffer
from lowbit.ir.simt.types import Const, Operand, Reg, ScalarType, Type, parse_type
from lowbit.ir.simt.verifier import verify

Item = Operand | int


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("simt.lark")).read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _line(node: Tree | Token) -> int:
    if isinstance(node, Token):
        return node.line or 0
    return getattr(node.meta, "line", 0) if not node.meta.empty else 0


def _number(text: str, t: ScalarType) -> int | float:
    if t.is_float:
        return float(text)
    return int(text, 0) if not text.lstrip("-").startswith("0x") else int(text, 16)


class _Reader:
    def __init__(self) -> None:
        self.regs: dict[str, Reg] = {}

    # ---------------------------------------------------------------- values
    def define(self, name_tok: Token, type_tok: Token) -> Reg:
        name = str(name_tok)[1:]
        if name in self.regs:
            raise IRError(f"line {name_tok.line}: register %{name} is defined twice")
        reg = Reg(name, parse_type(str(type_tok)))
        self.regs[name] = reg
        return reg

    def item(self, node: Tree) -> Item:
        if node.data == "reg":
            tok = node.children[0]
            reg = self.regs.get(str(tok)[1:])
            if reg is None:
                raise IRError(f"line {tok.line}: register {tok} is not defined")
            return reg
        if node.data == "const":
            number, type_tok = node.children
            t = parse_type(str(type_tok))
            if not isinstance(t, ScalarType):
                raise IRError(f"line {type_tok.line}: constants are scalars, got {t}")
            return Const(_number(str(number.children[0]), t), t)
        return _number(str(node.children[0]), ScalarType("i64"))  # imm

    def operand(self, node: Tree) -> Operand:
        v = self.item(node)
        if isinstance(v, int):
            raise IRError(f"line {_line(node)}: {v} needs a type here (write {v}:i32)")
        return v

    def defs(self, node: Tree | None) -> tuple[Reg, ...]:
        if node is None:
            return ()
        return tuple(self.define(*d.children) for d in node.children)

    # ---------------------------------------------------------------- statements
    def body(self, node: Tree) -> tuple[tuple[O.Op, ...], tuple[Operand, ...]]:
        *stmts, y = node.children
        ops = tuple(self.stmt(s) for s in stmts)
        yields = () if y is None else tuple(self.operand(c) for c in y.children)
        return ops, yields

    def stmt(self, node: Tree) -> O.Op:
        try:
            return getattr(self, node.data)(node)
        except IRError as exc:
            msg = str(exc)
            raise IRError(msg if msg.startswith("line ") else f"line {_line(node)}: {msg}") from None

    def simple(self, node: Tree) -> O.Op:
        defs_node, instr = node.children
        results = self.defs(defs_node)
        words_and_rest = instr.children
        words = [str(c) for c in words_and_rest if isinstance(c, Token) and c.type == "WORD"]
        rest = [c for c in words_and_rest if not (isinstance(c, Token) and c.type == "WORD")]
        gname, args_node, *clauses = rest
        args = () if args_node is None else tuple(self.item(c) for c in args_node.children if c is not None)
        named = {c.data: self.operand_or_imm(c.children[0]) for c in clauses}
        return _build(words, None if gname is None else str(gname)[1:], args, named, results)

    def operand_or_imm(self, node: Tree) -> Item:
        return self.item(node)

    def for_stmt(self, node: Tree) -> O.Op:
        defs_node, iv_tok, iv_type, start, stop, step, iter_node, body = node.children
        start_v, stop_v, step_v = (self.operand(x) for x in (start, stop, step))
        inits: list[Operand] = []
        if iter_node is not None:
            inits = [self.operand(a.children[2]) for a in iter_node.children]
        iv = self.define(iv_tok, iv_type)
        carried = () if iter_node is None else tuple(self.define(*a.children[:2]) for a in iter_node.children)
        ops, yields = self.body(body)
        results = self.defs(defs_node)
        return For(iv, start_v, stop_v, step_v, carried, tuple(inits), ops, yields, results)

    def if_then(self, node: Tree) -> O.Op:
        defs_node, cond, body = node.children
        c = self.operand(cond)
        ops, yields = self.body(body)
        return If(c, ops, yields, (), (), self.defs(defs_node))

    def if_else(self, node: Tree) -> O.Op:
        defs_node, cond, then_body, else_body = node.children
        c = self.operand(cond)
        t_ops, t_y = self.body(then_body)
        e_ops, e_y = self.body(else_body)
        return If(c, t_ops, t_y, e_ops, e_y, self.defs(defs_node))

    # ---------------------------------------------------------------- kernel
    def kernel(self, node: Tree) -> Kernel:
        name, *rest = node.children
        params: list[Param] = []
        shared: list[SharedBuffer] = []
        body: list[O.Op] = []
        threads = 0
        for c in rest:
            if c is None:
                continue
            if isinstance(c, Token):  # the INT after "threads"
                threads = int(str(c), 0)
            elif c.data == "param":
                reg_tok, type_tok, elem = c.children
                params.append(Param(self.define(reg_tok, type_tok), None if elem is None else str(elem)))
            elif c.data == "shared_static":
                n, size, align = c.children
                shared.append(SharedBuffer(str(n)[1:], int(str(size), 0), int(str(align), 0)))
            elif c.data == "shared_dynamic":
                n, size, align = c.children
                shared.append(SharedBuffer(str(n)[1:], None if size is None else int(str(size), 0),
                                           int(str(align), 0), dynamic=True))  # fmt: skip
            else:
                body.append(self.stmt(c))
        return Kernel(str(name)[1:], tuple(params), threads, tuple(shared), tuple(body))


def _one(results: tuple[Reg, ...], what: str) -> Reg:
    if len(results) != 1:
        raise IRError(f"{what} defines exactly one register, got {len(results)}")
    return results[0]


def _none(results: tuple[Reg, ...], what: str) -> None:
    if results:
        raise IRError(f"{what} defines no register")


def _ints(args: tuple[Item, ...], n: int, what: str) -> tuple[Operand, ...]:
    if len(args) != n or any(isinstance(a, int) for a in args):
        raise IRError(f"{what} takes {n} typed operands, got {len(args)}")
    return args  # type: ignore[return-value]


def _build(words: list[str], gname: str | None, args: tuple[Item, ...], named: dict[str, Item],
           results: tuple[Reg, ...]) -> O.Op:
    """Construct the op spelt ``words``... (see printer.op_rhs for each form)."""
    head, extra = words[0], words[1:]
    l1 = ""
    if head.startswith("load."):
        head, l1 = "load", head[5:]
    if extra and head not in ("sreg", "icmp", "fcmp", "gep"):
        raise IRError(f"unexpected word {extra[0]!r} after {head}")
    allowed = {"load": {"align", "mask", "other", "policy", "prefetch"}, "store": {"align", "mask"}}.get(head, set())
    if head.startswith("cp_async."):
        allowed = {"src_size", "policy", "prefetch", "ignore_src"}
    if set(named) - allowed:
        raise IRError(f"{head} does not take {', '.join(sorted(set(named) - allowed))}")
    if head in O.INT_BINARY or head in O.FLOAT_BINARY:
        return O.Binary(_one(results, head), head, *_ints(args, 2, head))
    if head in O.INT_UNARY or head in O.FLOAT_UNARY or head in O.APPROX_UNARY:
        return O.Unary(_one(results, head), head, *_ints(args, 1, head))
    if head in O.CASTS:
        return O.Cast(_one(results, head), head, *_ints(args, 1, head))
    if head == "sreg":
        if len(extra) != 1 or args:
            raise IRError("sreg takes one register name")
        return O.SReg(_one(results, head), extra[0])
    if head in ("icmp", "fcmp"):
        if len(extra) != 1:
            raise IRError(f"{head} needs a predicate")
        op = O.Cmp(_one(results, head), extra[0], *_ints(args, 2, head))
        if op.kind != head:
            raise IRError(f"{head} used on {op.a.type} operands (write {op.kind})")
        return op
    if head == "gep":
        if len(extra) != 1:
            raise IRError("gep needs an element type")
        elem: Type = parse_type(extra[0])
        return O.Gep(_one(results, head), *_ints(args, 2, head), elem)
    simple = {"fma": (O.Fma, 3), "select": (O.Select, 3), "prmt": (O.Prmt, 3), "atomic_add": (O.AtomicAdd, 2)}
    if head in simple:
        cls, n = simple[head]
        return cls(_one(results, head), *_ints(args, n, head))
    if head in ("atomic_and", "atomic_or"):
        return O.AtomicBits(_one(results, head), head[7:], *_ints(args, 2, head))
    if head == "pack":
        return O.Pack(_one(results, head), _ints(args, len(args), head))
    if head == "extract":
        if len(args) != 2 or not isinstance(args[1], int):
            raise IRError("extract takes a vector and a lane number")
        return O.Extract(_one(results, head), args[0], args[1])  # type: ignore[arg-type]
    if head == "shared_addr":
        if gname is None or args:
            raise IRError("shared_addr takes one @buffer")
        return O.SharedAddr(_one(results, head), gname)
    if head in ("load", "store"):
        align = named.get("align")
        if not isinstance(align, int):
            raise IRError(f"{head} needs `align N`")
        mask = named.get("mask")
        if head == "load":
            return O.Load(_one(results, head), *_ints(args, 1, head), align, mask, named.get("other"), l1,  # type: ignore[arg-type]
                          named.get("policy"), int(named.get("prefetch", 0)))  # type: ignore[arg-type]
        _none(results, head)
        return O.Store(*_ints(args, 2, head), align, mask)  # type: ignore[arg-type]
    if head.startswith("cp_async."):
        _none(results, "cp_async")
        parts = head.split(".")
        if len(parts) != 3 or not parts[2].isdigit():
            raise IRError(f"cp_async is spelt cp_async.<ca|cg>.<bytes>, got {head}")
        return O.CpAsync(*_ints(args, 2, head), int(parts[2]), parts[1], named.get("src_size"),  # type: ignore[arg-type]
                         named.get("policy"), int(named.get("prefetch", 0)),  # type: ignore[arg-type]
                         named.get("ignore_src"))  # type: ignore[arg-type]
    if head.startswith("createpolicy."):
        return O.CreatePolicy(_one(results, "createpolicy"), head[13:])
    if head.startswith("atom."):
        parts = head.split(".")
        if len(parts) != 3:
            raise IRError(f"atom is spelt atom.<kind>.<type>, got {head}")
        n = 3 if parts[1] == "cas" else 2
        ops = _ints(args, n, head)
        if n == 3:
            return O.Atomic(_one(results, "atom"), parts[1], parts[2], ops[0], ops[2], ops[1])
        return O.Atomic(_one(results, "atom"), parts[1], parts[2], ops[0], ops[1])
    if head in ("cp_async_commit", "barrier"):
        _none(results, head)
        if args:
            raise IRError(f"{head} takes no operands")
        return O.CpAsyncCommit() if head == "cp_async_commit" else O.Barrier()
    if head == "trap_if":
        _none(results, head)
        if len(args) != 2 or not isinstance(args[1], int) or isinstance(args[0], int):
            raise IRError("trap_if takes a predicate and a code")
        return O.Trap(args[0], args[1])  # type: ignore[arg-type]
    if head == "cp_async_wait":
        _none(results, head)
        if len(args) != 1 or not isinstance(args[0], int):
            raise IRError("cp_async_wait takes a number of pending groups")
        return O.CpAsyncWait(args[0])
    if head.startswith("shfl."):
        return O.Shfl(_one(results, "shfl"), head[5:], *_ints(args, 4, head))
    if head.startswith("vote."):
        return O.Vote(_one(results, "vote"), head[5:], *_ints(args, 2, head))
    if head == "lop3":
        if len(args) != 4 or not isinstance(args[3], int):
            raise IRError("lop3 takes three i32 operands and a lut")
        return O.Lop3(_one(results, head), *_ints(args[:3], 3, head), args[3])
    if head.startswith("cvt_pack."):
        return O.CvtPack(_one(results, "cvt_pack"), head[9:], *_ints(args, 2, head))
    if head.startswith("cvt_unpack."):
        return O.CvtUnpack(_one(results, "cvt_unpack"), head[11:], *_ints(args, 1, head))
    if head == "call":
        if gname is None:
            raise IRError("call needs an @intrinsic")
        return O.Call(results, gname, _ints(args, len(args), head))
    raise IRError(f"unknown SIMT op {head!r}")


def parse_kernel(text: str) -> Kernel:
    """Parse and verify one SIMT kernel."""
    try:
        tree = _lark().parse(text if text.endswith("\n") else text + "\n")
    except UnexpectedInput as exc:
        raise IRError(f"simt parse error at line {exc.line}, column {exc.column}: {exc.get_context(text).strip()}") from None
    kernel = _Reader().kernel(tree.children[-1])
    return verify(kernel)
