"""The ``.lbir`` printer: a VM program as canonical, deterministic text.

The text is the compile-cache key and the format of pass tests, so it is
canonical: parameters keep their names, every other value is named
``%0, %1, ...`` in order of appearance, whatever its hint; scalar
expressions are printed fully parenthesised; floats with ``repr`` (exact
round trip).  Source locations are printed only with ``locs=True`` (so the
cache key does not change when a comment moves a line).  Each op prints from its class's description
(:class:`~lowbit.ir.op_base.OpSpec`) as
``%r = mnemonic(operands) {optional operands, attributes} : type``; only
``for`` and ``if`` have syntax of their own.  The grammar is
``lbir.lark``; :func:`lowbit.ir.parser.parse` reads it back and
``print(parse(print(p))) == print(p)``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable

from lowbit.errors import IRError
from lowbit.ir import ops as O
from lowbit.ir.expr import Binary, Cast, Const, Expr, Select, Unary, Var
from lowbit.ir.program import Program
from lowbit.ir.types import GlobalType, PointerType, SharedType, TileType, Value, is_bool

__all__ = ["BINARY_SYMBOLS", "attr_text", "format_type", "print_program"]

BINARY_SYMBOLS = {
    "add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "and": "&", "or": "|", "xor": "^",
    "shl": "<<", "shr": ">>", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
}  # fmt: skip


def format_type(t: TileType | SharedType | GlobalType | PointerType) -> str:
    if isinstance(t, TileType | SharedType):
        kind = "tile" if isinstance(t, TileType) else "shared"
        lay = f", `{t.layout.to_text()}`" if t.layout is not None else ""
        return f"{kind}<{t.dtype.name}, [{', '.join(map(str, t.shape))}]{lay}>"
    return str(t)


def _float(x: float) -> str:
    return repr(float(x))


class _Printer:
    def __init__(self, locs: bool) -> None:
        self.names: dict[int, str] = {}
        self.counter = 0
        self.locs = locs
        self.lines: list[str] = []

    def define(self, v: Var | Value) -> str:
        name = f"%{self.counter}"
        self.counter += 1
        self.names[id(v)] = name
        return name

    def ref(self, v: Var | Value) -> str:
        try:
            return self.names[id(v)]
        except KeyError:
            label = v.name if isinstance(v, Var) else (v.hint or str(v.type))
            raise IRError(f"cannot print: {label} is used before it is defined") from None

    def expr(self, e: Expr) -> str:
        if isinstance(e, Var):
            return self.ref(e)
        if isinstance(e, Const):
            if is_bool(e.dtype):
                return "true" if e.value else "false"
            if e.dtype.is_float:
                return f"{_float(e.value)}:{e.dtype.name}"  # type: ignore[arg-type]
            return str(e.value) if e.dtype.name == "int32" else f"{e.value}:{e.dtype.name}"
        if isinstance(e, Binary):
            if e.op in ("min", "max"):
                return f"{e.op}({self.expr(e.a)}, {self.expr(e.b)})"
            return f"({self.expr(e.a)} {BINARY_SYMBOLS[e.op]} {self.expr(e.b)})"
        if isinstance(e, Unary):
            return f"{e.op}({self.expr(e.a)})"
        if isinstance(e, Select):
            return f"select({self.expr(e.cond)}, {self.expr(e.a)}, {self.expr(e.b)})"
        if isinstance(e, Cast):
            return f"cast<{e.dtype.name}>({self.expr(e.a)})"
        raise IRError(f"cannot print scalar expression {e!r}")

    def item(self, x: Expr | Value) -> str:
        return self.expr(x) if isinstance(x, Expr) else self.ref(x)

    def exprs(self, es: tuple[Expr, ...]) -> str:
        return "[" + ", ".join(self.expr(e) for e in es) + "]"

    def loc(self, op: O.Op) -> str:
        if not self.locs or op.loc is None:
            return ""
        return f" loc({json.dumps(op.loc.file)}:{op.loc.line}:{op.loc.col})"

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("  " * indent + text)

    def block(self, body: tuple[O.Op, ...], indent: int) -> None:
        for op in body:
            _REGION_PRINTERS.get(type(op), _print_generic)(self, op, indent)


def _carried_type(x: Var | Value) -> str:
    return x.dtype.name if isinstance(x, Var) else format_type(x.type)


def attr_text(x: object) -> str:
    """An attribute value as ``.lbir`` text (ints, floats, strings, bools, int tuples, layouts)."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return _float(x)
    if isinstance(x, str):
        return json.dumps(x)
    if isinstance(x, tuple):
        return "[" + ", ".join(attr_text(y) for y in x) + "]"
    to_text = getattr(x, "to_text", None)
    if callable(to_text):
        return f"`{to_text()}`"
    raise IRError(f"cannot print attribute value {x!r}")


def _operand(p: _Printer, x: object) -> str:
    if isinstance(x, tuple):
        return "[" + ", ".join(_operand(p, y) for y in x) + "]"
    return p.item(x)  # type: ignore[arg-type]


@functools.cache
def _defaults(cls: type) -> dict[str, object]:
    """Attributes with a default: printed only when they differ from it (the parser fills it back in)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def _print_generic(p: _Printer, op: O.Op, indent: int) -> None:
    """``[%r =] mnemonic(operands) [{optional operands and attributes}] [: type]`` from the op's description."""
    spec = op.spec
    args = ", ".join(_operand(p, getattr(op, n)) for n in spec.operands)
    kws = [f"{n}={p.ref(v)}" for n in spec.optional if (v := getattr(op, n)) is not None]
    defaults = _defaults(type(op))
    kws += [f"{n}={attr_text(getattr(op, n))}" for n in spec.attrs
            if n != spec.mnemonic_attr and not (n in defaults and _same(getattr(op, n), defaults[n]))]  # fmt: skip
    text = f"{op.mnemonic}({args})" + (" {" + ", ".join(kws) + "}" if kws else "")
    (res,) = op.defs() or (None,)
    if res is not None:
        text = f"{p.define(res)} = {text} : {_carried_type(res)}"
    p.emit(indent, text + p.loc(op))


def _print_for(p: _Printer, op: O.For, indent: int) -> None:
    results = ", ".join(p.define(r) for r in op.results)
    var = p.define(op.var)
    carried = ", ".join(f"{p.define(a)}: {_carried_type(a)} = {p.item(i)}" for a, i in zip(op.args, op.inits))
    head = f"{results} = " if results else ""
    p.emit(
        indent,
        f"{head}for {var}: {op.var.dtype.name} = {p.expr(op.start)} to {p.expr(op.stop)} step {p.expr(op.step)}"
        f"{' iter(' + carried + ')' if carried else ''}{p.loc(op)} {{",
    )
    p.block(op.body, indent + 1)
    if op.yields:
        p.emit(indent + 1, "yield " + ", ".join(p.item(y) for y in op.yields))
    p.emit(indent, "}")


def _print_if(p: _Printer, op: O.If, indent: int) -> None:
    # Results are named before the branches so that every name is defined where it first appears.
    cond = p.expr(op.cond)
    results = ", ".join(p.define(r) for r in op.results)
    types = ", ".join(_carried_type(r) for r in op.results)
    head = f"{results} = " if results else ""
    p.emit(indent, f"{head}if {cond}{' -> (' + types + ')' if types else ''}{p.loc(op)} {{")
    p.block(op.then_body, indent + 1)
    if op.then_yields:
        p.emit(indent + 1, "yield " + ", ".join(p.item(y) for y in op.then_yields))
    p.emit(indent, "} else {")
    p.block(op.else_body, indent + 1)
    if op.else_yields:
        p.emit(indent + 1, "yield " + ", ".join(p.item(y) for y in op.else_yields))
    p.emit(indent, "}")


#: Ops with regions print their own syntax; every other op prints from its description.
_REGION_PRINTERS: dict[type[O.Op], Callable[[_Printer, O.Op, int], None]] = {
    O.For: _print_for,  # type: ignore[dict-item]
    O.If: _print_if,  # type: ignore[dict-item]
}


def print_program(prog: Program, locs: bool = False) -> str:
    """The canonical ``.lbir`` text of ``prog`` (with source locations when ``locs``)."""
    p = _Printer(locs)
    params = []
    for prm in prog.params:
        p.names[id(prm.value)] = f"%{prm.name}"
        t = prm.value.dtype.name if isinstance(prm.value, Var) else format_type(prm.value.type)
        params.append(f"%{prm.name}: {t}" + (f" div({prm.divisibility})" if prm.divisibility > 1 else ""))
    attrs = [f"num_warps={prog.num_warps}"] + ([f"num_stages={prog.num_stages}"] if prog.num_stages != 1 else [])
    if prog.constexprs:
        attrs.append("constexprs(" + ", ".join(f"{n}={json.dumps(v)}" for n, v in prog.constexprs) + ")")
    if prog.grid is not None:
        attrs.append("grid(" + ", ".join(p.expr(e) for e in prog.grid) + ")")
    p.emit(0, f"kernel @{prog.name}({', '.join(params)}) {' '.join(attrs)} {{")
    p.block(prog.body, 1)
    p.emit(0, "}")
    return "\n".join(p.lines) + "\n"
