"""Parse PTX text into the :mod:`lowbit.emu.ptx_ast` tree.

``parse(text) -> Module`` runs in three steps:

1. **Strip** comments and the debug directives the emulator ignores
   (``.loc``, ``.file``, ``.section { ... }``, ``.pragma``), replacing each by
   as many newlines as it spanned so line numbers stay those of the input.
   Triton's DWARF sections are most of its PTX; removing them with one regex
   is far cheaper than parsing them.
2. **Parse** with the LALR(1) grammar ``ptx.lark`` and an inline transformer
   (no parse tree is built).  The lark object is built once per process.
3. **Resolve** each function: expand ``%r<N>`` declarations, rename
   registers/labels/params declared inside ``{ }`` scopes (inline asm, call
   sequences) to ``name@k``, classify bare identifiers as registers, labels or
   symbols, resolve branch targets to instruction indices, and reject the
   Hopper/Blackwell-only families (PTX ISA 9.7.15 wgmma, 9.7.13.15 mbarrier,
   9.7.9.25 cp.async.bulk / TMA, 9.7.16 tcgen05) by name and line.

Sources: PTX ISA 9.0, chapters 4 (syntax), 5 (state spaces and types),
6 (operands) and 11 (directives).
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput, VisitError

from lowbit.emu.ptx_ast import (
    TYPE_SIZES,
    Address,
    CallArgs,
    FloatImmediate,
    Function,
    Guard,
    Immediate,
    Instruction,
    LabelRef,
    Module,
    Negated,
    Operand,
    Param,
    PredicatePair,
    Register,
    RegisterDecl,
    Sink,
    SpecialRegister,
    Symbol,
    SymbolOffset,
    VariableDecl,
    Vector,
)
from lowbit.errors import EmulatorError, UnsupportedPTXError


class PTXSyntaxError(EmulatorError):
    """The text is not PTX this parser understands; the message names line and column."""


# ----------------------------------------------------------------------------- step 1: strip

_STRIP_RE = re.compile(
    r'"(?:[^"\\\n]|\\.)*"'  # a string literal: kept (comment markers inside are not comments)
    r"|//[^\n]*"  # line comment
    r"|/\*.*?\*/"  # block comment
    r'|\.section\b[^{;]*\{(?:[^}"/]|"[^"\n]*"|//[^\n]*|/(?!/))*\}'  # DWARF section
    r"|\.(?:loc|file)\b[^\n]*"  # debug line info (no semicolon, one line)
    r'|\.pragma\b(?:[^;"]|"[^"\n]*")*;',  # .pragma "nounroll";
    re.DOTALL,
)


def _blank(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.startswith('"'):
        return text
    return "\n" * text.count("\n") or " "


def strip_debug(text: str) -> str:
    """Remove comments and ``.loc/.file/.section/.pragma``, keeping every line in place."""
    return _STRIP_RE.sub(_blank, text)


# ----------------------------------------------------------------------------- step 2: parse

# Special registers (PTX ISA chapter 10).  A %-name not declared by .reg and
# not in this set is an undeclared register, an error.
_SPECIAL_VECTOR = {"%tid", "%ntid", "%ctaid", "%nctaid", "%cluster_ctaid", "%cluster_nctaid",
                   "%clusterid", "%nclusterid"}
_SPECIAL_SCALAR = {
    "%laneid", "%warpid", "%nwarpid", "%smid", "%nsmid", "%gridid", "%clock", "%clock_hi",
    "%clock64", "%lanemask_eq", "%lanemask_le", "%lanemask_lt", "%lanemask_ge", "%lanemask_gt",
    "%globaltimer", "%globaltimer_lo", "%globaltimer_hi", "%dynamic_smem_size",
    "%total_smem_size", "%aggr_smem_size", "%cluster_ctarank", "%cluster_nctarank",
    "%is_explicit_cluster", "%current_graph_exec",
    *(f"%pm{i}" for i in range(8)), *(f"%pm{i}_64" for i in range(8)),
    *(f"%envreg{i}" for i in range(32)), *(f"%reserved_smem_offset_{s}" for s in ("begin", "end", "cap")),
    "%reserved_smem_offset_0", "%reserved_smem_offset_1",
}


def parse_int(text: str) -> int:
    """The value of a PTX integer literal (ISA 4.5.1): hex, binary, octal, decimal, ``U`` suffix."""
    t = text.rstrip("Uu")
    neg = t.startswith("-")
    t = t.lstrip("-")
    if t[:2] in ("0x", "0X"):
        v = int(t[2:], 16)
    elif t[:2] in ("0b", "0B"):
        v = int(t[2:], 2)
    elif len(t) > 1 and t[0] == "0":
        v = int(t, 8)
    else:
        v = int(t)
    return -v if neg else v


def parse_float(text: str) -> FloatImmediate:
    """A ``0fXXXXXXXX`` / ``0dXXXXXXXXXXXXXXXX`` literal, or a decimal one stored as f64 bits."""
    if text[:2] in ("0f", "0F"):
        return FloatImmediate(int(text[2:], 16), 32)
    if text[:2] in ("0d", "0D"):
        return FloatImmediate(int(text[2:], 16), 64)
    return FloatImmediate(struct.unpack("<Q", struct.pack("<d", float(text)))[0], 64)


@dataclass
class _Ident:
    """A bare identifier whose kind (register, label, symbol, sink) is decided in step 3."""

    name: str


@dataclass
class _RawInstr:
    guard: Token | None
    opcode: Token
    operands: tuple
    start: int
    end: int


@dataclass
class _RegName:
    name: str
    count: int | None
    line: int


@dataclass
class _RawRegs:
    attrs: tuple
    names: tuple[tuple[str, int | None], ...]
    line: int


@dataclass
class _RawVar:
    space: str
    attrs: tuple
    name: str
    dims: tuple[int | None, ...]
    init: object
    line: int
    linkage: tuple[str, ...] = ()


@dataclass
class _RawFunc:
    kind: str
    name: str
    returns: tuple
    params: tuple
    perf: tuple
    body: list | None
    line: int
    linkage: tuple[str, ...] = ()


@dataclass
class _Scope:
    stmts: list


@dataclass
class _Label:
    name: str
    line: int


class _Build(Transformer):
    """Inline (tree-less) transformer: turns each rule into a raw Python value."""

    # --- module directives
    def version(self, children):
        major, _, minor = str(children[0]).partition(".")
        return ("version", (int(major), int(minor or 0)))

    def target(self, children):
        return ("target", tuple(str(c) for c in children))

    def address_size(self, children):
        return ("address_size", parse_int(children[0]))

    def linkages(self, children):
        return tuple(str(c)[1:] for c in children)

    def linked(self, children):
        linkage, item = children
        item.linkage = linkage
        return item

    def local_var(self, children):
        return self.linked(children)

    # --- declarations
    def attr(self, children):
        if len(children) == 2:
            return ("align", parse_int(children[1]))
        tok = children[0]
        return ("space", str(tok)[1:]) if tok.type == "SPACE" else ("word", str(tok)[1:])

    def array(self, children):
        return None if children[0] is None else parse_int(children[0])

    def _split_decl(self, children):
        attrs, dims, name = [], [], None
        for c in children:
            if isinstance(c, tuple):
                attrs.append(c)
            elif isinstance(c, Token):
                name = c
            else:
                dims.append(c)
        return tuple(attrs), name, tuple(dims)

    def var_tail(self, children):
        space, rest, init = children[0], children[1:-1], children[-1]
        attrs, name, dims = self._split_decl(rest)
        return _RawVar(str(space)[1:], attrs, str(name), dims, init, space.line)

    def initializer(self, children):
        return children[0]

    def init_int(self, children):
        return parse_int(children[0])

    def init_float(self, children):
        return parse_float(str(children[0]))

    def init_list(self, children):
        return list(children)

    def init_symbol(self, children):
        return _Ident(str(children[0]))

    def reg_name(self, children):
        tok, count = children
        return _RegName(str(tok), None if count is None else parse_int(count), tok.line)

    def reg_decl(self, children):
        attrs = tuple(c for c in children if isinstance(c, tuple))
        names = tuple((c.name, c.count) for c in children if isinstance(c, _RegName))
        return _RawRegs(attrs, names, next(c.line for c in children if isinstance(c, _RegName)))

    def param_decl(self, children):
        kind = str(children[0])[1:]
        attrs, name, dims = self._split_decl(children[1:])
        return (kind, attrs, str(name), dims)

    def params(self, children):
        return ("params", tuple(c for c in children if c is not None))

    def ret_params(self, children):
        return ("returns", tuple(children))

    def perf(self, children):
        return ("perf", str(children[0])[1:], tuple(parse_int(c) for c in children[1:] if c is not None))

    def func_tail(self, children):
        kind_tok = children[0]
        name = next(str(c) for c in children[1:] if isinstance(c, Token) and c.type in ("IDENT",))
        returns: tuple = ()
        params: tuple = ()
        perf = []
        body = None
        for c in children[1:]:
            if isinstance(c, tuple) and c[0] == "returns":
                returns = c[1]
            elif isinstance(c, tuple) and c[0] == "params":
                params = c[1]
            elif isinstance(c, tuple) and c[0] == "perf":
                perf.append(c[1:])
            elif isinstance(c, list):
                body = c
        return _RawFunc(str(kind_tok)[1:], name, returns, params, tuple(perf), body, kind_tok.line)

    # --- bodies
    def body(self, children):
        return list(children)

    def scope(self, children):
        return _Scope(list(children))

    def label(self, children):
        tok = children[0]
        return _Label(str(tok)[:-1], tok.line)

    def operands(self, children):
        return tuple(children)

    def instruction(self, children):
        guard = children[0] if children[0].type == "GUARD" else None
        rest = children[1:] if guard is not None else children
        opcode, semi = rest[0], rest[-1]
        operands = rest[1] if len(rest) == 3 else ()
        start = (guard or opcode).start_pos
        return _RawInstr(guard, opcode, operands, start, semi.end_pos)

    # --- operands
    def op_reg(self, children):
        return _reg(str(children[0]))

    def op_pred_pair(self, children):
        second = children[1]
        return PredicatePair(_reg(str(children[0])), _reg(str(second)) if second.type == "REG" else _Ident(str(second)))

    def op_not(self, children):
        return Negated(_reg(str(children[0])))

    def op_ident(self, children):
        return _Ident(str(children[0]))

    def op_sym_offset(self, children):
        return SymbolOffset(_Ident(str(children[0])), parse_int(children[1]))  # type: ignore[arg-type]

    def op_int(self, children):
        return Immediate(parse_int(children[0]))

    def op_float(self, children):
        return parse_float(str(children[0]))

    def op_decfloat(self, children):
        return parse_float(str(children[0]))

    def op_vector(self, children):
        return Vector(tuple(children))

    def op_call_args(self, children):
        return CallArgs(tuple(c for c in children if c is not None))

    def op_address(self, children):
        return children[0]

    def addr_base(self, children):
        base, off = children[0], children[1] if len(children) > 1 else None
        b = _reg(str(base)) if base.type == "REG" else _Ident(str(base))
        return Address(b, 0 if off is None else parse_int(off))  # type: ignore[arg-type]

    def addr_abs(self, children):
        return Address(None, parse_int(children[0]))


def _reg(text: str) -> Register:
    name, dot, comp = text.partition(".")
    return Register(name, comp if dot else None)


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("ptx.lark")).read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", transformer=_Build(), maybe_placeholders=True)


# ----------------------------------------------------------------------------- step 3: resolve

# Families rejected at parse time (issue 4 item 1): (opcode, required leading modifiers).
_REJECTED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("wgmma", (), "wgmma (Hopper warpgroup MMA)"),
    ("mbarrier", (), "mbarrier (asynchronous barriers)"),
    ("tcgen05", (), "tcgen05 (Blackwell tensor memory)"),
    ("cp", ("async", "bulk"), "cp.async.bulk (bulk / TMA copy)"),
    ("cp", ("reduce", "async", "bulk"), "cp.reduce.async.bulk (bulk / TMA reduction)"),
    ("cp", ("async", "mbarrier"), "cp.async.mbarrier (mbarrier-tracked cp.async)"),
    ("tensormap", (), "tensormap (TMA descriptor)"),
    ("prefetch", ("tensormap",), "prefetch.tensormap (TMA descriptor)"),
)


def _check_supported(opcode: str, mods: tuple[str, ...], line: int, text: str) -> None:
    for op, lead, what in _REJECTED:
        if opcode == op and (mods[: len(lead)] == lead or (op == "prefetch" and lead[0] in mods)):
            raise UnsupportedPTXError(
                f"PTX line {line}: {what} is not supported by the emulator: {text!r} "
                "(such kernels are ptxas-checked only)"
            )


# The same families found by a regex before lark runs, because their operand
# syntax (TMA's ``[tensorMap, {x, y}]``) is outside the grammar and must give
# the "unsupported" error, not a syntax error.
_REJECTED_RE = re.compile(
    r"(?:^|[;{}])\s*(?:@!?%?[\w$]+\s+)?"
    r"((?:wgmma|mbarrier|tcgen05|tensormap|cp\.async\.bulk|cp\.reduce\.async\.bulk|cp\.async\.mbarrier"
    r"|prefetch(?:\.\w+)*\.tensormap)\b[^;]*;?)",
    re.M,
)


def _prescan_rejected(clean: str) -> None:
    m = _REJECTED_RE.search(clean)
    if m is not None:
        line = clean.count("\n", 0, m.start(1)) + 1
        text = " ".join(m.group(1).split())
        opcode, *mods = text.split()[0].rstrip(";").split(".")
        _check_supported(opcode, tuple(mods), line, text)


@dataclass
class _FScope:
    parent: _FScope | None
    ident: int
    names: dict[str, str] = field(default_factory=dict)

    def lookup(self, name: str) -> str | None:
        s: _FScope | None = self
        while s is not None:
            got = s.names.get(name)
            if got is not None:
                return got
            s = s.parent
        return None


def _decl_type(attrs: tuple, what: str, line: int) -> tuple[str, int, int | None]:
    """(type, vector width, align) from declaration attributes (ptr attributes excluded)."""
    typ, vec, align = None, 1, None
    for kind, value in attrs:
        if kind == "align":
            align = value if align is None else align
        elif kind == "word" and value in ("v2", "v4", "v8"):
            vec = int(value[1:])
        elif kind == "word" and value == "ptr":
            break  # .ptr .space .align N describe the pointee
        elif kind == "word":
            typ = value
    if typ is None or typ not in TYPE_SIZES:
        raise PTXSyntaxError(f"PTX line {line}: {what} has no known type (attributes {attrs})")
    return typ, vec, align


def _init_bytes(init: object, typ: str, size: int | None, line: int) -> bytes:
    elem = TYPE_SIZES[typ]
    values = init if isinstance(init, list) else [init]
    flat: list = []
    while values:
        v = values.pop(0)
        if isinstance(v, list):
            values[:0] = v
        else:
            flat.append(v)
    out = bytearray()
    for v in flat:
        if isinstance(v, _Ident):
            raise UnsupportedPTXError(f"PTX line {line}: address-of initializer {v.name!r} is not supported")
        if isinstance(v, FloatImmediate):
            if typ.startswith("f") and v.width != elem * 8:
                fmt = {2: "<e", 4: "<f", 8: "<d"}[elem]
                src = struct.unpack("<f" if v.width == 32 else "<d", v.bits.to_bytes(v.width // 8, "little"))[0]
                out += struct.pack(fmt, src)
            else:
                out += (v.bits & ((1 << (8 * elem)) - 1)).to_bytes(elem, "little")
        else:
            out += (v & ((1 << (8 * elem)) - 1)).to_bytes(elem, "little")
    if size is not None:
        if len(out) > size:
            raise PTXSyntaxError(f"PTX line {line}: initializer has {len(out)} bytes for a {size}-byte variable")
        out += bytes(size - len(out))
    return bytes(out)


def _variable(raw: _RawVar) -> VariableDecl:
    typ, vec, align = _decl_type(raw.attrs, f"variable {raw.name!r}", raw.line)
    linkage = next((lk for lk in raw.linkage if lk != "extern"), None)
    decl = VariableDecl(raw.name, raw.space, typ, align, raw.dims, vec, "extern" in raw.linkage, linkage, None, raw.line)
    if raw.init is not None:
        decl = VariableDecl(raw.name, raw.space, typ, align, raw.dims, vec, decl.extern, linkage,
                            _init_bytes(raw.init, typ, decl.size, raw.line), raw.line)
    return decl


def _param(raw: tuple, line: int) -> Param:
    _kind, attrs, name, dims = raw
    typ, _vec, align = _decl_type(attrs, f"parameter {name!r}", line)
    ptr_space = ptr_align = None
    seen_ptr = False
    for kind, value in attrs:
        if kind == "word" and value == "ptr":
            seen_ptr = True
        elif seen_ptr and kind == "space":
            ptr_space = value
        elif seen_ptr and kind == "align":
            ptr_align = value
    return Param(name, typ, align, tuple(d for d in dims if d is not None), ptr_space, ptr_align)


#: Registers one function may declare (``.reg .b32 %r<N>`` counts N).  LLVM's largest kernels declare
#: tens of thousands; a corrupt or hostile count would otherwise allocate without bound.
MAX_REGISTERS = 1 << 18


class _FunctionResolver:
    """Step 3 for one function: flatten scopes, rename, resolve operands."""

    def __init__(self, raw: _RawFunc, text: str) -> None:
        self.raw = raw
        self.text = text
        self.registers: dict[str, RegisterDecl] = {}
        self.labels: dict[str, int] = {}
        self.shared: list[VariableDecl] = []
        self.local: list[VariableDecl] = []
        self.flat: list[tuple[_RawInstr, _FScope]] = []
        self.nscopes = 0
        self.nregs = 0

    def _declare(self, scope: _FScope, name: str) -> str:
        new = name if scope.ident == 0 else f"{name}@{scope.ident}"
        scope.names[name] = new
        return new

    def _flatten(self, stmts: list, scope: _FScope) -> None:
        for s in stmts:
            if isinstance(s, _RawInstr):
                self.flat.append((s, scope))
            elif isinstance(s, _Label):
                if s.name in scope.names:
                    raise PTXSyntaxError(f"PTX line {s.line}: label `{s.name}` is defined twice "
                                         f"in function {self.raw.name}")  # fmt: skip
                new = self._declare(scope, s.name)
                self.labels[new] = len(self.flat)
            elif isinstance(s, _RawRegs):
                self._regs(s, scope)
            elif isinstance(s, _RawVar):
                decl = _variable(s)
                new = self._declare(scope, decl.name)
                decl = VariableDecl(new, decl.space, decl.type, decl.align, decl.dims, decl.vector,
                                    decl.extern, decl.linkage, decl.init, decl.line)
                (self.shared if decl.space == "shared" else self.local).append(decl)
            elif isinstance(s, _Scope):
                self.nscopes += 1
                self._flatten(s.stmts, _FScope(scope, self.nscopes))

    def _regs(self, s: _RawRegs, scope: _FScope) -> None:
        line = s.line
        typ, vec, _align = _decl_type(s.attrs, "register declaration", line)
        for name, count in s.names:
            self.nregs += 1 if count is None else count
            if self.nregs > MAX_REGISTERS:
                raise PTXSyntaxError(f"PTX line {line}: function {self.raw.name} declares more than {MAX_REGISTERS} "
                                     f"registers (`{name}<{count}>`); the emulator refuses such a function")  # fmt: skip
            bases = [name] if count is None else [f"{name}{i}" for i in range(count)]
            for b in bases:
                new = self._declare(scope, b)
                self.registers[new] = RegisterDecl(new, typ, vec, line)

    def run(self) -> Function:
        raw = self.raw
        top = _FScope(None, 0)
        params = tuple(_param(p, raw.line) for p in raw.params)
        returns = tuple(_param(p, raw.line) for p in raw.returns)
        for p in (*params, *returns):
            top.names[p.name] = p.name
        for p in (*raw.params, *raw.returns):
            if p[0] == "reg":
                self.registers[p[2]] = RegisterDecl(p[2], _decl_type(p[1], p[2], raw.line)[0], 1, raw.line)
        directives = {name: vals for name, vals in raw.perf}
        body: tuple[Instruction, ...] | None = None
        if raw.body is not None:
            self._flatten(raw.body, top)
            body = tuple(self._instruction(ri, sc) for ri, sc in self.flat)

        def dims3(key: str) -> tuple[int, int, int] | None:
            v = directives.get(key)
            return None if v is None else tuple((*v, 1, 1, 1)[:3])  # type: ignore[return-value]

        linkage = next((lk for lk in raw.linkage), None)
        return Function(raw.name, raw.kind, params, returns, linkage, dims3("reqntid"), dims3("maxntid"),
                        directives, self.registers, tuple(self.shared), tuple(self.local), body,
                        self.labels, raw.line)

    # --- operands
    def _instruction(self, ri: _RawInstr, scope: _FScope) -> Instruction:
        line = ri.opcode.line
        text = " ".join(self.text[ri.start : ri.end].split())
        opcode, *mods = str(ri.opcode).split(".")
        modifiers = tuple(mods)
        _check_supported(opcode, modifiers, line, text)
        guard = None
        if ri.guard is not None:
            g = str(ri.guard)[1:]
            neg = g.startswith("!")
            name = g.lstrip("!")
            reg = self._resolve_reg(Register(name), scope, line, text) if name.startswith("%") else None
            if reg is None or not isinstance(reg, Register):
                got = self._resolve_ident(_Ident(name), scope, line, text)
                if not isinstance(got, Register):
                    raise PTXSyntaxError(f"PTX line {line}: guard {name!r} is not a declared predicate: {text!r}")
                reg = got
            decl = self.registers.get(reg.name)
            if decl is not None and decl.type != "pred":
                raise PTXSyntaxError(f"PTX line {line}: guard {reg.name} is a .{decl.type} register, not a .pred: "
                                     f"{text!r}")  # fmt: skip
            guard = Guard(reg.name, neg)
        ops = tuple(self._operand(o, scope, line, text) for o in ri.operands)
        if opcode == "bra":
            if not ops:
                raise PTXSyntaxError(f"PTX line {line}: bra needs a label operand: {text!r}")
            for op in ops:
                if type(op) is Symbol:  # not a label of this function (a variable, a function, or nothing)
                    raise PTXSyntaxError(f"PTX line {line}: branch to undefined label `{op.name}`: {text!r}")
        return Instruction(opcode, modifiers, ops, guard, line, text)

    def _operand(self, o: object, scope: _FScope, line: int, text: str) -> Operand:
        if isinstance(o, Register):
            return self._resolve_reg(o, scope, line, text)
        if isinstance(o, _Ident):
            return self._resolve_ident(o, scope, line, text)
        if isinstance(o, (Immediate, FloatImmediate)):
            return o
        if isinstance(o, Address):
            base = o.base
            if base is None:
                return o
            if isinstance(base, _Ident):
                nb = self._resolve_ident(base, scope, line, text)
            else:
                nb = self._resolve_reg(base, scope, line, text)
            if not isinstance(nb, (Register, Symbol)):
                raise PTXSyntaxError(f"PTX line {line}: bad address base {nb}: {text!r}")
            return Address(nb, o.offset)
        if isinstance(o, Vector):
            return Vector(tuple(self._operand(e, scope, line, text) for e in o.elements))
        if isinstance(o, CallArgs):
            return CallArgs(tuple(self._operand(e, scope, line, text) for e in o.elements))
        if isinstance(o, Negated):
            r = self._resolve_reg(o.operand, scope, line, text)
            if not isinstance(r, Register):
                raise PTXSyntaxError(f"PTX line {line}: '!' applies to predicate registers only: {text!r}")
            return Negated(r)
        if isinstance(o, PredicatePair):
            a = self._operand(o.first, scope, line, text)
            b = self._operand(o.second, scope, line, text)
            if not isinstance(a, Register) or not isinstance(b, (Register, Sink)):
                raise PTXSyntaxError(f"PTX line {line}: bad predicate pair: {text!r}")
            return PredicatePair(a, b)
        if isinstance(o, SymbolOffset):
            sym = self._resolve_ident(o.symbol, scope, line, text)  # type: ignore[arg-type]
            if type(sym) is not Symbol:
                raise PTXSyntaxError(f"PTX line {line}: '+offset' needs a variable name: {text!r}")
            return SymbolOffset(sym, o.offset)
        raise PTXSyntaxError(f"PTX line {line}: unexpected operand {o!r}: {text!r}")  # pragma: no cover

    def _resolve_reg(self, r: Register, scope: _FScope, line: int, text: str) -> Register | SpecialRegister:
        new = scope.lookup(r.name)
        if new is not None and new in self.registers:
            return Register(new, r.component)
        if r.name in _SPECIAL_VECTOR:
            if r.component is None:
                raise PTXSyntaxError(f"PTX line {line}: {r.name} needs a component (.x/.y/.z): {text!r}")
            return SpecialRegister(r.name, r.component)
        if r.name in _SPECIAL_SCALAR:
            return SpecialRegister(r.name, r.component)
        raise PTXSyntaxError(f"PTX line {line}: register {r.name} is not declared: {text!r}")

    def _resolve_ident(self, o: _Ident, scope: _FScope, line: int, text: str) -> Operand:
        if o.name == "_":
            return Sink()
        new = scope.lookup(o.name)
        if new is not None:
            if new in self.registers:
                return Register(new)
            if new in self.labels:
                return LabelRef(new, self.labels[new])
            return Symbol(new)
        if o.name in self.labels:  # pragma: no cover - labels are always in some scope
            return LabelRef(o.name, self.labels[o.name])
        return Symbol(o.name)


def _check_symbols(fn: Function, module_names: set[str]) -> None:
    """Every name an instruction uses as a variable, parameter or function is declared somewhere."""
    names = module_names | {p.name for p in (*fn.params, *fn.returns)} | {v.name for v in (*fn.shared, *fn.local)}

    def walk(op: object) -> list[str]:
        if type(op) is Symbol:
            return [op.name]
        if isinstance(op, SymbolOffset):
            return [op.symbol.name]
        if isinstance(op, Address) and type(op.base) is Symbol:
            return [op.base.name]
        if isinstance(op, Vector | CallArgs):
            return [n for e in op.elements for n in walk(e)]
        return []

    for ins in fn.body or ():
        for op in ins.operands:
            for name in walk(op):
                if name not in names:
                    raise PTXSyntaxError(f"PTX line {ins.line}: `{name}` is not declared (no register, label, "
                                         f"variable, parameter or function of function {fn.name} has that name): "
                                         f"{ins.text!r}")  # fmt: skip


def parse(text: str | bytes) -> Module:
    """Parse a PTX module (text, or bytes of ASCII/UTF-8 text as a file holds them).

    Raises :class:`PTXSyntaxError` (an :class:`~lowbit.errors.EmulatorError`)
    naming line and column for text outside the grammar or an undeclared
    register, and :class:`~lowbit.errors.UnsupportedPTXError` for the
    Hopper/Blackwell-only instruction families.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PTXSyntaxError(f"PTX given as bytes is not ASCII/UTF-8 text (byte {exc.start}: "
                                 f"{bytes(text)[exc.start:exc.start + 1]!r}); is it a cubin?") from None  # fmt: skip
    if not isinstance(text, str):
        raise PTXSyntaxError(f"PTX must be text (str, or bytes of ASCII/UTF-8), got {type(text).__name__}")
    if "\0" in text:
        raise PTXSyntaxError(f"PTX text contains a NUL character at offset {text.index(chr(0))}")
    clean = strip_debug(text)
    _prescan_rejected(clean)
    try:
        items = _lark().parse(clean)
    except UnexpectedInput as exc:
        lines = clean.splitlines()
        src = lines[exc.line - 1].strip() if 0 < exc.line <= len(lines) else ""
        raise PTXSyntaxError(f"PTX syntax error at line {exc.line}, column {exc.column}: {src!r}") from None
    except VisitError as exc:  # an error raised inside a transformer callback
        orig = exc.orig_exc
        if isinstance(orig, EmulatorError):
            raise orig from None
        raise PTXSyntaxError(f"PTX could not be parsed: {orig}") from None
    children = items.children if hasattr(items, "children") else items
    version: tuple[int, int] | None = None
    target: tuple[str, ...] = ()
    address_size = 64
    variables: list[VariableDecl] = []
    raw_funcs: list[_RawFunc] = []
    for item in children:
        if isinstance(item, tuple):
            if item[0] == "version":
                version = item[1]
            elif item[0] == "target":
                target = item[1]
            elif item[0] == "address_size":
                address_size = item[1]
        elif isinstance(item, _RawVar):
            variables.append(_variable(item))
        elif isinstance(item, _RawFunc):
            raw_funcs.append(item)
    if version is None:
        raise PTXSyntaxError("PTX module has no .version directive")
    if not target:
        raise PTXSyntaxError("PTX module has no .target directive")
    functions: dict[str, Function] = {}
    for rf in raw_funcs:
        fn = _FunctionResolver(rf, clean).run()
        if fn.body is None and rf.name in functions:
            continue  # a prototype after the definition
        functions[rf.name] = fn
    known = {v.name for v in variables} | set(functions)
    for fn in functions.values():
        _check_symbols(fn, known)
    return Module(version, target[0], target[1:], address_size, tuple(variables), functions)


__all__ = ["PTXSyntaxError", "parse", "parse_float", "parse_int", "strip_debug"]
