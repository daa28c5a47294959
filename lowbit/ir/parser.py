"""The ``.lbir`` parser: text (grammar ``lbir.lark``) back to a VM program.

Every op but ``for``/``if`` is read generically from its class's
description (:class:`~lowbit.ir.op_base.OpSpec`: positional operands, then
``{name=value}`` for optional operands and attributes, then the result's
type).  Every op is rebuilt through its validating constructor, so a parsed
program is as well-typed as a built one; names must be defined before use
and are scoped like the verifier's scopes (a loop body sees its block
arguments; a loop's results are bound after its body).  Errors are
:class:`IRError` s with the line and column of the text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import lark

from lowbit.dtypes import DType
from lowbit.errors import IRError, LayoutError
from lowbit.ir import ops as O
from lowbit.ir.expr import Binary, Cast, Const, Expr, Select, Unary, Var
from lowbit.ir.printer import BINARY_SYMBOLS
from lowbit.ir.program import Param, Program
from lowbit.layout import parse as parse_layout
from lowbit.ir.types import BOOL, INT32, GlobalType, Layout, PointerType, SharedType, TileType, Value, resolve_dtype

__all__ = ["parse"]

_SYMBOL_OPS = {sym: op for op, sym in BINARY_SYMBOLS.items()}
Tree = lark.Tree
Token = lark.Token


@functools.cache
def _lark() -> lark.Lark:
    grammar = (Path(__file__).with_name("lbir.lark")).read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True)


def _layout(tok: Token | None) -> Layout | None:
    if tok is None:
        return None
    try:
        return parse_layout(str(tok)[1:-1])
    except LayoutError as exc:
        raise IRError(f"bad layout {tok}: {exc}") from None


class _Reader:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Var | Value]] = [{}]

    # ----------------------------------------------------------------- names
    def bind(self, tok: Token, v: Var | Value) -> None:
        name = str(tok)
        if any(name in s for s in self.scopes):
            raise self.err(tok, f"{name} is defined twice")
        self.scopes[-1][name] = v

    def look(self, tok: Token) -> Var | Value:
        name = str(tok)
        for s in reversed(self.scopes):
            if name in s:
                return s[name]
        raise self.err(tok, f"{name} is not defined here")

    def value(self, tok: Token) -> Value:
        v = self.look(tok)
        if not isinstance(v, Value):
            raise self.err(tok, f"{tok} is a scalar, a value was expected")
        return v

    @staticmethod
    def err(node: Token | Tree, message: str) -> IRError:
        line = getattr(node, "line", None) or getattr(getattr(node, "meta", None), "line", "?")
        col = getattr(node, "column", None) or getattr(getattr(node, "meta", None), "column", "?")
        return IRError(f"lbir:{line}:{col}: {message}")

    # ----------------------------------------------------------------- types
    @staticmethod
    def dtype(tok: Token) -> DType:
        return resolve_dtype(str(tok))

    def type_(self, t: Tree | Token) -> TileType | SharedType | GlobalType | PointerType | DType:
        if isinstance(t, Token):
            return self.dtype(t)
        if t.data in ("tile_type", "shared_type"):
            dt, shape, lay = t.children
            dims = tuple(int(x) for x in shape.children)
            cls = TileType if t.data == "tile_type" else SharedType
            return cls(self.dtype(dt), dims, _layout(lay))
        if t.data == "global_type":
            return GlobalType(self.dtype(t.children[0]), int(t.children[1]))
        if t.data == "ptr_type":
            return PointerType(self.dtype(t.children[0]))
        raise self.err(t, f"unknown type {t.data}")

    # ----------------------------------------------------------------- exprs
    def expr(self, t: Tree | Token) -> Expr:
        if isinstance(t, Token):
            raise self.err(t, f"unexpected token {t}")
        k = t.data
        c = t.children
        if k == "var":
            v = self.look(c[0])
            if not isinstance(v, Var):
                raise self.err(c[0], f"{c[0]} is not a scalar")
            return v
        if k == "int_const":
            return Const(int(c[0]), INT32)
        if k in ("typed_int_const", "float_const"):
            num, _, dt = str(c[0]).rpartition(":")
            return Const(int(num) if k == "typed_int_const" else float(num), self.dtype(Token("NAME", dt)))
        if k == "true_const":
            return Const(True, BOOL)
        if k == "false_const":
            return Const(False, BOOL)
        if k == "binexpr":
            return Binary(_SYMBOL_OPS[str(c[1])], self.expr(c[0]), self.expr(c[2]))
        if k == "castexpr":
            return Cast(self.expr(c[1]), self.dtype(c[0]))
        if k == "call":
            fn, args = str(c[0]), [self.expr(a) for a in c[1:]]
            want = {"neg": 1, "not": 1, "abs": 1, "min": 2, "max": 2, "select": 3}[fn]
            if len(args) != want:
                raise self.err(t, f"{fn} takes {want} operands")
            if fn == "select":
                return Select(*args)
            return Binary(fn, *args) if fn in ("min", "max") else Unary(fn, args[0])
        raise self.err(t, f"unknown expression {k}")

    def item(self, t: Tree) -> Expr | Value:
        if t.data == "var":
            v = self.look(t.children[0])
            return v if isinstance(v, Value) else self.expr(t)
        return self.expr(t)

    def exprs(self, t: Tree) -> tuple[Expr, ...]:
        return tuple(self.expr(c) for c in t.children if c is not None)

    # ------------------------------------------------------------------ ops
    def block(self, stmts: list[Tree]) -> tuple[O.Op, ...]:
        out = []
        for s in stmts:
            fn = PARSERS.get(s.data)
            if fn is None:
                raise self.err(s, f"unknown statement {s.data}")
            try:
                out.append(fn(self, s))
            except IRError as exc:
                if str(exc).startswith("lbir:"):
                    raise
                raise self.err(s, str(exc)) from None
        return tuple(out)


def _loc(t: Tree) -> O.Loc | None:
    for c in reversed(t.children):
        if isinstance(c, Tree) and c.data == "loc":
            f, line, col = c.children
            return O.Loc(json.loads(str(f)), int(line), int(col))
    return None


def _args(t: Tree) -> list[Tree | Token | None]:
    return [c for c in t.children if not (isinstance(c, Tree) and c.data == "loc")]


def _attr(r: _Reader, t: Tree) -> object:
    k, c = t.data, t.children
    if k == "int_attr":
        return int(c[0])
    if k == "float_attr":
        return float(c[0])
    if k == "str_attr":
        return json.loads(str(c[0]))
    if k in ("true_attr", "false_attr"):
        return k == "true_attr"
    if k == "tuple_attr":
        return tuple(_attr(r, x) for x in c if x is not None)
    if k == "layout_attr":
        return _layout(c[0])
    if k == "ref_attr":
        return r.value(c[0])
    raise r.err(t, f"unknown attribute value {k}")


def _operand(r: _Reader, t: Tree) -> object:
    if isinstance(t, Tree) and t.data == "group":
        return tuple(_operand(r, x) for x in t.children if x is not None)
    return r.item(t)


def _defaults_to_none(cls: type, name: str) -> bool:
    """Whether field ``name`` of op class ``cls`` may be None (its annotation admits it)."""
    ann = str(cls.__dataclass_fields__[name].type)  # type: ignore[attr-defined]
    return "None" in ann


def _parse_generic(r: _Reader, t: Tree) -> O.Op:
    """``[%r =] mnemonic(operands) [{...}] [: type]``, mapped onto the op class's description."""
    res_tok, mnem, args, attrs, ty, _ = t.children
    found = O.by_mnemonic(str(mnem))
    if found is None:
        raise r.err(mnem, f"unknown op {mnem}")
    cls, kwargs = found
    spec = cls.spec
    kw: dict[str, object] = dict(kwargs)
    operands = [x for x in args.children if x is not None]
    if len(operands) != len(spec.operands):
        raise r.err(mnem, f"{mnem} takes {len(spec.operands)} operands ({', '.join(spec.operands)}), got {len(operands)}")
    for name, o in zip(spec.operands, operands):
        kw[name] = _operand(r, o)
    for a in attrs.children if attrs is not None else ():
        name, val = str(a.children[0]), a.children[1]
        if name not in spec.optional and (name not in spec.attrs or name == spec.mnemonic_attr):
            raise r.err(a, f"{mnem} has no attribute {name!r}")
        kw[name] = _attr(r, val)
    result = None
    optional_result = spec.results and _defaults_to_none(cls, spec.results[0])
    if spec.results and optional_result and res_tok is None and ty is None:
        kw[spec.results[0]] = None  # an op whose result is optional (atomic without old values)
    elif spec.results:
        if res_tok is None or ty is None:
            raise r.err(mnem, f"{mnem} defines a result: write '%r = {mnem}(...) : type'")
        rt = r.type_(ty)
        result = Var(str(res_tok)[1:], rt) if isinstance(rt, DType) else Value(rt)  # type: ignore[arg-type]
        kw[spec.results[0]] = result
    elif res_tok is not None or ty is not None:
        raise r.err(mnem, f"{mnem} defines no result")
    op = cls(**kw, loc=_loc(t))  # type: ignore[call-arg]
    if result is not None:
        r.bind(res_tok, result)
    return op


def _parse_for(r: _Reader, t: Tree) -> O.Op:
    names, var_tok, vdt, start, stop, step, it, *rest = t.children
    body_stmts = [c for c in rest if isinstance(c, Tree) and c.data not in ("loc", "yield_")]
    yld = next((c for c in rest if isinstance(c, Tree) and c.data == "yield_"), None)
    bounds = [r.expr(x) for x in (start, stop, step)]
    var = Var(str(var_tok)[1:], r.dtype(vdt))
    args: list[Var | Value] = []
    inits: list[Expr | Value] = []
    r.scopes.append({})
    r.bind(var_tok, var)
    for c in it.children if it is not None else ():
        name, ty, init = c.children
        inits.append(_outer_item(r, init))  # inits are read in the enclosing scope
        ty_v = r.type_(ty)
        a: Var | Value = Var(str(name)[1:], ty_v) if isinstance(ty_v, DType) else Value(ty_v)
        r.bind(name, a)
        args.append(a)
    body = r.block(body_stmts)
    yields = tuple(r.item(y) for y in yld.children) if yld is not None else ()
    r.scopes.pop()
    results = _bind_results(r, names, args)
    return O.For(var=var, start=bounds[0], stop=bounds[1], step=bounds[2], inits=tuple(inits), args=tuple(args),
                 body=body, yields=yields, results=results, loc=_loc(t))  # fmt: skip


def _outer_item(r: _Reader, t: Tree) -> Expr | Value:
    saved = r.scopes.pop()  # the loop scope: inits must not see the loop's own names
    try:
        return r.item(t)
    finally:
        r.scopes.append(saved)


def _bind_results(r: _Reader, names: Tree | None, like: list[Var | Value] | list[DType | TileType]) -> tuple[Var | Value, ...]:
    toks = names.children if names is not None else []
    if len(toks) != len(like):
        raise r.err(names if names is not None else Token("X", ""), f"{len(toks)} result names for {len(like)} carried values")
    out: list[Var | Value] = []
    for tok, x in zip(toks, like):
        if isinstance(x, Var):
            v: Var | Value = Var(str(tok)[1:], x.dtype)
        elif isinstance(x, Value):
            v = Value(x.type)
        elif isinstance(x, DType):
            v = Var(str(tok)[1:], x)
        else:
            v = Value(x)
        r.bind(tok, v)
        out.append(v)
    return tuple(out)


def _parse_if(r: _Reader, t: Tree) -> O.Op:
    names, cond, restypes, *rest = t.children
    parts = [c for c in rest if not (isinstance(c, Tree) and c.data == "loc")]
    then_b, then_y, else_b, else_y = parts
    c = r.expr(cond)
    branches = []
    for b, y in ((then_b, then_y), (else_b, else_y)):
        r.scopes.append({})
        ops = r.block(list(b.children))
        ys = tuple(r.item(x) for x in y.children) if y is not None else ()
        r.scopes.pop()
        branches.append((ops, ys))
    types = [r.type_(x) for x in restypes.children if not (isinstance(x, Token) and x.type == "ARROW")] if restypes is not None else []
    results = _bind_results(r, names, types)  # type: ignore[arg-type]
    return O.If(cond=c, then_body=branches[0][0], then_yields=branches[0][1], else_body=branches[1][0],
                else_yields=branches[1][1], results=results, loc=_loc(t))  # fmt: skip


PARSERS: dict[str, Callable[[_Reader, Tree], O.Op]] = {
    "op_stmt": _parse_generic,
    "for_op": _parse_for,
    "if_op": _parse_if,
}
def parse(text: str) -> Program:
    """The program written in ``text`` (the ``.lbir`` form)."""
    try:
        tree = _lark().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise IRError(f"lbir:{exc.line}:{exc.column}: syntax error: {str(exc).splitlines()[0]}") from None
    r = _Reader()
    c = tree.children
    name = str(c[0])
    i = 1
    params: list[Param] = []
    while i < len(c) and (c[i] is None or (isinstance(c[i], Tree) and c[i].data == "param")):
        if c[i] is not None:
            tok, ty, div = c[i].children
            t = r.type_(ty)
            v: Var | Value = Var(str(tok)[1:], t) if isinstance(t, DType) else Value(t, str(tok)[1:])  # type: ignore[arg-type]
            r.bind(tok, v)
            params.append(Param(str(tok)[1:], v, 1 if div is None else int(div)))
        i += 1
    num_warps = int(c[i])
    i += 1
    constexprs: tuple[tuple[str, str], ...] = ()
    grid: tuple[Expr, ...] | None = None
    num_stages = 1
    stmts = []
    for x in c[i:]:
        if isinstance(x, Tree) and x.data == "stages":
            num_stages = int(x.children[0])
        elif isinstance(x, Tree) and x.data == "constexprs":
            constexprs = tuple((str(cx.children[0]), json.loads(str(cx.children[1]))) for cx in x.children if cx is not None)
        elif isinstance(x, Tree) and x.data == "grid":
            grid = tuple(r.expr(e) for e in x.children)
        elif isinstance(x, Tree):
            stmts.append(x)
    body = r.block(stmts)
    return Program(name, tuple(params), body, constexprs, num_warps, grid, num_stages)
