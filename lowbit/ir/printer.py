"""The ``.lbir`` printer: a VM program as canonical, deterministic text.

The text is the compile-cache key and the format of pass tests, so it is
canonical: parameters keep their names, every other value is named
``%0, %1, ...`` in order of appearance, whatever its hint; scalar
expressions are printed fully parenthesised; floats with ``repr`` (exact
round trip).  Source locations are printed only with ``locs=True`` (so the
cache key does not change when a comment moves a line).  The grammar is
``lbir.lark``; :func:`lowbit.ir.parser.parse` reads it back and
``print(parse(print(p))) == print(p)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from lowbit.errors import IRError
from lowbit.ir import ops as O
from lowbit.ir.expr import Binary, Cast, Const, Expr, Select, Unary, Var
from lowbit.ir.program import Program
from lowbit.ir.types import GlobalType, PointerType, SharedType, TileType, Value, is_bool

__all__ = ["BINARY_SYMBOLS", "PRINTERS", "format_type", "print_program"]

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


def _scalar_literal(x: int | float | bool) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x) if isinstance(x, int) else _float(x)


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
            fn = PRINTERS.get(type(op))
            if fn is None:
                raise IRError(f"no printer for op class {type(op).__name__}")
            fn(self, op, indent)

    def res(self, op: O.Op, v: Value) -> str:
        return self.define(v)

    def typed(self, v: Value) -> str:
        return format_type(v.type)


def _carried_type(x: Var | Value) -> str:
    return x.dtype.name if isinstance(x, Var) else format_type(x.type)


def _simple(mnemonic: str, operands: Callable[[_Printer, O.Op], str]) -> Callable[[_Printer, O.Op, int], None]:
    """A printer for ``%r = mnemonic operands : type`` (or, without a result, ``mnemonic operands``)."""

    def show(p: _Printer, op: O.Op, indent: int) -> None:
        body = operands(p, op)
        result = getattr(op, "result", None)
        if isinstance(result, Value):
            p.emit(indent, f"{p.define(result)} = {mnemonic}{' ' + body if body else ''} : {format_type(result.type)}{p.loc(op)}")
        elif isinstance(result, Var):
            p.emit(indent, f"{p.define(result)} = {mnemonic} {body}{p.loc(op)}")
        else:
            p.emit(indent, f"{mnemonic}{' ' + body if body else ''}{p.loc(op)}")

    return show


def _mask(p: _Printer, m: Value | None) -> str:
    return "" if m is None else f" mask {p.ref(m)}"


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


def _print_print(p: _Printer, op: O.Print, indent: int) -> None:
    vals = "".join(", " + p.item(v) for v in op.values)
    p.emit(indent, f"print {json.dumps(op.prefix)}{vals}{p.loc(op)}")


PRINTERS: dict[type[O.Op], Callable[[_Printer, O.Op], None] | Callable[[_Printer, O.Op, int], None]] = {
    O.ProgramId: _simple("program_id", lambda p, op: str(op.axis)),
    O.NumPrograms: _simple("num_programs", lambda p, op: str(op.axis)),
    O.GlobalView: _simple("global_view", lambda p, op: f"{p.ref(op.ptr)} shape {p.exprs(op.shape)} strides {p.exprs(op.strides)}"),
    O.AllocShared: _simple("alloc_shared", lambda p, op: ""),
    O.FreeShared: _simple("free_shared", lambda p, op: p.ref(op.buf)),
    O.LoadGlobal: _simple("load_global", lambda p, op: f"{p.ref(op.src)} {p.exprs(op.offsets)}{_mask(p, op.mask)} other {_scalar_literal(op.other)}"),
    O.StoreGlobal: _simple("store_global", lambda p, op: f"{p.ref(op.dst)} {p.exprs(op.offsets)} {p.ref(op.value)}{_mask(p, op.mask)}"),
    O.LoadShared: _simple("load_shared", lambda p, op: f"{p.ref(op.src)} {p.exprs(op.offsets)}"),
    O.StoreShared: _simple("store_shared", lambda p, op: f"{p.ref(op.dst)} {p.exprs(op.offsets)} {p.ref(op.value)}"),
    O.CopyAsync: _simple("copy_async", lambda p, op: f"{p.ref(op.dst)} {p.ref(op.src)} {p.exprs(op.offsets)}{_mask(p, op.mask)}"),
    O.CommitGroup: _simple("commit", lambda p, op: ""),
    O.WaitGroup: _simple("wait", lambda p, op: str(op.pending)),
    O.Barrier: _simple("barrier", lambda p, op: ""),
    O.Full: _simple("full", lambda p, op: p.expr(op.value)),
    O.Arange: _simple("arange", lambda p, op: str(op.start)),
    O.Cast: _simple("cast", lambda p, op: p.ref(op.x)),
    O.View: _simple("view", lambda p, op: f"{p.ref(op.x)} axis {op.axis}"),
    O.ElementwiseUnary: lambda p, op, indent: _simple(op.op, lambda p, op: p.ref(op.x))(p, op, indent),
    O.ElementwiseBinary: lambda p, op, indent: _simple(op.op, lambda p, op: f"{p.ref(op.a)}, {p.ref(op.b)}")(p, op, indent),
    O.Where: _simple("where", lambda p, op: f"{p.ref(op.cond)}, {p.ref(op.a)}, {p.ref(op.b)}"),
    O.Fma: _simple("fma", lambda p, op: f"{p.ref(op.a)}, {p.ref(op.b)}, {p.ref(op.c)}"),
    O.Dot: _simple("dot", lambda p, op: f"{p.ref(op.a)}, {p.ref(op.b)}, {p.ref(op.c)}"),
    O.Reduce: _simple("reduce", lambda p, op: f"{op.kind} {p.ref(op.x)} axis {op.axis}"),
    O.Lookup: _simple("lookup", lambda p, op: f"{p.ref(op.table)}, {p.ref(op.index)}"),
    O.Broadcast: _simple("broadcast", lambda p, op: p.ref(op.x)),
    O.Reshape: _simple("reshape", lambda p, op: p.ref(op.x)),
    O.For: _print_for,
    O.If: _print_if,
    O.Print: _print_print,
}  # fmt: skip


def print_program(prog: Program, locs: bool = False) -> str:
    """The canonical ``.lbir`` text of ``prog`` (with source locations when ``locs``)."""
    p = _Printer(locs)
    params = []
    for prm in prog.params:
        p.names[id(prm.value)] = f"%{prm.name}"
        t = prm.value.dtype.name if isinstance(prm.value, Var) else format_type(prm.value.type)
        params.append(f"%{prm.name}: {t}" + (f" div({prm.divisibility})" if prm.divisibility > 1 else ""))
    attrs = [f"num_warps={prog.num_warps}"]
    if prog.constexprs:
        attrs.append("constexprs(" + ", ".join(f"{n}={json.dumps(v)}" for n, v in prog.constexprs) + ")")
    if prog.grid is not None:
        attrs.append("grid(" + ", ".join(p.expr(e) for e in prog.grid) + ")")
    p.emit(0, f"kernel @{prog.name}({', '.join(params)}) {' '.join(attrs)} {{")
    p.block(prog.body, 1)
    p.emit(0, "}")
    return "\n".join(p.lines) + "\n"
