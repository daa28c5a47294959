"""Python ``ast`` → VM ops: one ``visit_X`` per supported node, everything else refused.

The frontend walks a kernel's (or an inlined ``@lowbit.func``'s) syntax tree
with an environment of *DSL values* (see :mod:`lowbit.dsl.builder`).
Constexprs are ordinary Python values and fold as Python folds them (with
C's truncating ``//`` and ``%``), so ``if`` on a constexpr and
``lowbit.static_range`` choose code at compile time; runtime scalars and
tiles become ops.  ``for`` over ``range`` becomes a VM loop whose carried
values are the names the body reassigns; ``if`` on a runtime bool becomes a
VM ``if`` whose results are the names either branch assigns.

The single wrapping point is :meth:`Frontend.visit`: a
:class:`~lowbit.dsl.diagnostics.Fail` (or an IR/dtype error) raised while
compiling a node becomes a :class:`~lowbit.dsl.diagnostics.SourceError` at
that node -- the innermost one, because inner ``visit`` calls catch first.
"""

from __future__ import annotations

import ast
import builtins as pybuiltins
import operator
import types
from collections.abc import Callable

from lowbit.dtypes import DType
from lowbit.dsl import builtins as B
from lowbit.dsl.builder import Builder, DValue, describe, is_constexpr
from lowbit.dsl.diagnostics import Fail, SourceError, SourceInfo
from lowbit.errors import LowbitError
from lowbit.ir import ops as O
from lowbit.ir import semantics as sem
from lowbit.ir.expr import Const, Expr, Var
from lowbit.ir.types import BOOL, INT32, INT64, SharedType, TileType, Value, is_bool, resolve_dtype

__all__ = ["Frontend", "assigned_names"]

_BINOPS: dict[type[ast.operator], tuple[str, str]] = {
    ast.Add: ("add", "+"), ast.Sub: ("sub", "-"), ast.Mult: ("mul", "*"), ast.Div: ("div", "/"),
    ast.FloorDiv: ("div", "//"), ast.Mod: ("mod", "%"), ast.BitAnd: ("and", "&"), ast.BitOr: ("or", "|"),
    ast.BitXor: ("xor", "^"), ast.LShift: ("shl", "<<"), ast.RShift: ("shr", ">>"),
}  # fmt: skip
_CMPOPS: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Eq: ("eq", "=="), ast.NotEq: ("ne", "!="), ast.Lt: ("lt", "<"),
    ast.LtE: ("le", "<="), ast.Gt: ("gt", ">"), ast.GtE: ("ge", ">="),
}  # fmt: skip
_PY_CMP = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}
_SYNTAX_NAMES = {
    "While": "while loop", "Lambda": "lambda", "ListComp": "list comprehension", "DictComp": "dict comprehension",
    "SetComp": "set comprehension", "GeneratorExp": "generator expression", "Try": "try statement",
    "With": "with statement", "FunctionDef": "nested function definition", "ClassDef": "class definition",
    "Global": "global statement", "Nonlocal": "nonlocal statement", "Delete": "del statement",
    "Import": "import statement", "ImportFrom": "import statement", "Raise": "raise statement",
    "Break": "break", "Continue": "continue", "Dict": "dict literal", "Set": "set literal",
    "Starred": "starred expression", "Yield": "yield", "Await": "await", "JoinedStr": "f-string",
    "NamedExpr": "assignment expression", "AnnAssign": "annotated assignment", "Assert": "assert statement",
    "Match": "match statement", "AsyncFunctionDef": "async function",
}  # fmt: skip
_SYNTAX_HINTS = {"Assert": " (use lowbit.static_assert)", "While": " (use for ... in range(...))"}
_PY_ALLOWED = {"range", "min", "max", "len", "int", "float", "bool", "abs"}


def assigned_names(stmts: list[ast.stmt]) -> list[str]:
    """Names (re)bound anywhere in ``stmts``, in first-seen order."""
    out: list[str] = []
    for s in stmts:
        for node in ast.walk(s):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in out:
                out.append(node.id)
    return out


def _c_int_op(op: str, x: int, y: int) -> int:
    if op in ("div", "mod") and y == 0:
        raise Fail("integer division by zero in a constant expression")
    return {"div": sem.trunc_div, "mod": sem.trunc_mod}[op](x, y)


class Frontend(ast.NodeVisitor):
    """Compiles statements of one function into the builder's current block."""

    def __init__(self, builder: Builder, src: SourceInfo, globals_: dict[str, object],
                 env: dict[str, DValue], inline_depth: int = 0) -> None:  # fmt: skip
        self.b = builder
        self.src = src
        self.globals = globals_
        self.env = env
        self.depth = inline_depth
        self.returned: DValue = None
        self.local_only: set[str] = set()  # names that existed only inside a loop or branch

    # ------------------------------------------------------------ the wrapping point
    def visit(self, node: ast.AST) -> DValue:
        saved = self.b.loc
        if hasattr(node, "lineno"):
            line, col = self.src.locate(node.lineno, node.col_offset)  # type: ignore[attr-defined]
            self.b.loc = O.Loc(self.src.filename, line, col)
        try:
            return super().visit(node)
        except SourceError:
            raise
        except Fail as exc:
            raise self._located(node, exc.message) from None
        except LowbitError as exc:
            raise self._located(node, str(exc)) from None
        finally:
            self.b.loc = saved

    def _located(self, node: ast.AST, message: str) -> SourceError:
        line, col = self.src.locate(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        return SourceError(message, self.src.filename, line, col)

    def generic_visit(self, node: ast.AST) -> DValue:
        kind = type(node).__name__
        raise Fail(f"unsupported syntax: {_SYNTAX_NAMES.get(kind, kind)}{_SYNTAX_HINTS.get(kind, '')}")

    # -------------------------------------------------------------------- statements
    def block(self, stmts: list[ast.stmt], allow_return: bool = False) -> None:
        for i, s in enumerate(stmts):
            misplaced = not (allow_return and i == len(stmts) - 1)
            if isinstance(s, ast.Return) and misplaced and not (self.depth == 0 and s.value is not None):
                line, col = self.src.locate(s.lineno, s.col_offset)
                raise SourceError("early return is not supported; return only as the last statement",
                                  self.src.filename, line, col)  # fmt: skip
            self.visit(s)

    def visit_Return(self, node: ast.Return) -> DValue:
        if self.depth == 0 and node.value is not None:
            raise Fail("a kernel cannot return a value; store results through a pointer with lowbit.store")
        self.returned = None if node.value is None else self.visit(node.value)
        return None

    def visit_Pass(self, node: ast.Pass) -> DValue:
        return None

    def visit_Expr(self, node: ast.Expr) -> DValue:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None  # a docstring or a comment string
        self.visit(node.value)
        return None

    def _bind(self, target: ast.expr, value: DValue) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
            self.local_only.discard(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            if not isinstance(value, tuple | list) or len(value) != len(target.elts):
                raise Fail(f"cannot unpack {describe(value)} into {len(target.elts)} names")
            for t, v in zip(target.elts, value):
                self._bind(t, v)
        else:
            raise Fail(f"cannot assign to a {type(target).__name__.lower()}; assign to a name")

    def visit_Assign(self, node: ast.Assign) -> DValue:
        # the name a value is first bound to names what it creates (a shared buffer's hint: the planner's messages)
        name = node.targets[0].id if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) else ""
        saved, self.b.name_hint = self.b.name_hint, name
        try:
            value = self.visit(node.value)
        finally:
            self.b.name_hint = saved
        for t in node.targets:
            self._bind(t, value)
        return None

    def visit_AugAssign(self, node: ast.AugAssign) -> DValue:
        if not isinstance(node.target, ast.Name):
            raise Fail("augmented assignment needs a name on the left")
        current = self.visit_Name(ast.Name(node.target.id, ast.Load()))
        self.env[node.target.id] = self._binop(node.op, current, self.visit(node.value))
        return None

    # ------------------------------------------------------------------------ if
    def visit_If(self, node: ast.If) -> DValue:
        cond = self.visit(node.test)
        if isinstance(cond, Value):
            raise Fail(f"if condition must be a scalar, got {describe(cond)}; use lowbit.where on tiles")
        if is_constexpr(cond):
            self.block(node.body if cond else node.orelse)
            return None
        c = self.b.expr(cond, "if condition")
        if not is_bool(c.dtype):
            c = self.b.scalar_binary("ne", c, 0, "!=")
        pre = dict(self.env)
        branches = []
        for body in (node.body, node.orelse):
            self.env = dict(pre)
            self.b.push()
            self.block(body)
            branches.append((self.b.pop(), self.env))
        self.env = pre
        names = [n for n in assigned_names(node.body + node.orelse)]
        results: list[Var | Value] = []
        yields: tuple[list[Expr | Value], list[Expr | Value]] = ([], [])
        for n in names:
            vt, ve = branches[0][1].get(n), branches[1][1].get(n)
            if n not in pre and (vt is None or ve is None):
                self.local_only.add(n)
                continue
            if vt is ve or (is_constexpr(vt) and is_constexpr(ve) and type(vt) is type(ve) and vt == ve):
                self.env[n] = vt
                continue
            slot, ins = self._merge(n, [vt, ve], "the two branches of this if give")
            results.append(slot)
            yields[0].append(ins[0])
            yields[1].append(ins[1])
            self.env[n] = slot
        self.b.make(O.If, cond=c, then_body=branches[0][0], then_yields=tuple(yields[0]),
                    else_body=branches[1][0], else_yields=tuple(yields[1]), results=tuple(results))  # fmt: skip
        return None

    def _merge(self, name: str, vals: list[DValue], what: str) -> tuple[Var | Value, list[Expr | Value]]:
        """A fresh slot holding one of ``vals`` and each value converted to the slot's type."""
        tiles = [v for v in vals if isinstance(v, Value)]
        if tiles:
            t0 = tiles[0].type
            ok = all(isinstance(v, Value) and isinstance(v.type, TileType) and isinstance(t0, TileType)
                     and (v.type.dtype, v.type.shape) == (t0.dtype, t0.shape) for v in vals)  # fmt: skip
            if not ok:
                raise Fail(f"'{name}' changes type: {what} {' and '.join(describe(v) for v in vals)}")
            return Value(t0, name), list(vals)  # type: ignore[arg-type]
        typed = [v.dtype for v in vals if isinstance(v, Expr)]
        if typed:
            dt = typed[0]
        elif all(isinstance(v, bool) for v in vals):
            dt = BOOL
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            dt = INT32
        elif all(isinstance(v, float | int) and not isinstance(v, bool) for v in vals):
            dt = resolve_dtype("f32")
        else:
            raise Fail(f"'{name}' changes type: {what} {' and '.join(describe(v) for v in vals)}")
        ins: list[Expr | Value] = []
        for v in vals:
            e = v if isinstance(v, Expr) else self._const_of(v, dt)
            if e is None or e.dtype != dt:
                raise Fail(f"'{name}' changes type: {what} {' and '.join(describe(v) for v in vals)}")
            ins.append(e)
        return Var(name, dt), ins

    @staticmethod
    def _const_of(v: DValue, dt: DType) -> Const | None:
        if isinstance(v, bool):
            return Const(v, BOOL) if is_bool(dt) else None
        if isinstance(v, int):
            return Const(v, dt) if dt.is_int else Const(float(v), dt) if dt.is_float else None
        if isinstance(v, float):
            return Const(v, dt) if dt.is_float else None
        return None

    # ----------------------------------------------------------------------- for
    def visit_For(self, node: ast.For) -> DValue:
        if node.orelse:
            raise Fail("unsupported syntax: for ... else")
        if not isinstance(node.target, ast.Name):
            raise Fail("the loop variable must be a single name")
        it = node.iter
        fn = self.visit(it.func) if isinstance(it, ast.Call) else None
        if fn is not pybuiltins.range and fn is not B.static_range:
            raise Fail("for loops iterate over range(...) or lowbit.static_range(...)")
        assert isinstance(it, ast.Call)  # noqa: S101
        if it.keywords:
            raise Fail("range() takes no keyword arguments")
        args = [self.visit(a) for a in it.args]
        if not 1 <= len(args) <= 3:
            raise Fail(f"range expects 1 to 3 arguments, got {len(args)}")
        if fn is B.static_range:
            bounds = [self.b.const_int(a, "static_range bound") for a in args]
            for i in range(*bounds):
                self.env[node.target.id] = i
                self.block(node.body)
            return None
        self._runtime_loop(node, args)
        return None

    def _runtime_loop(self, node: ast.For, args: list[DValue]) -> None:
        full = ([0] + args + [1])[:3] if len(args) == 1 else (args + [1])[:3]
        if is_constexpr(full[2]) and self.b.const_int(full[2], "range step") <= 0:
            raise Fail(f"range step must be positive, got {full[2]}")
        bounds = [self.b.index(a, "range bound") for a in full]
        dt = INT64 if any(e.dtype == INT64 for e in bounds) else INT32
        start, stop, step = (self.b.scalar_cast(e, dt) for e in bounds)
        target = node.target.id  # type: ignore[union-attr]
        pre = dict(self.env)
        candidates = [n for n in assigned_names(node.body) if n in pre and n != target]
        forced: set[str] = set()
        for _attempt in range(len(candidates) + 1):
            carry = [n for n in candidates
                     if isinstance(pre[n], Expr) or _is_tile(pre[n]) or n in forced]  # fmt: skip
            slots: dict[str, Var | Value] = {}
            for n in carry:
                slots[n], _ = self._merge(n, [pre[n]], "")
            var = Var(target, dt)
            self.env = dict(pre)
            self.env.update(slots)
            self.env[target] = var
            self.b.push()
            self.block(node.body)
            body = self.b.pop()
            after = self.env
            changed = {n for n in candidates if n not in carry and not _same(after.get(n), pre[n])}
            if not changed:
                break
            for n in changed:
                if not isinstance(pre[n], bool | int | float):
                    self.env = pre
                    raise Fail(f"'{n}' ({describe(pre[n])}) cannot be reassigned inside a loop")
            forced |= changed
        self.env = pre
        inits: list[Expr | Value] = []
        yields: list[Expr | Value] = []
        results: list[Var | Value] = []
        for n in carry:
            slot, y = slots[n], after.get(n)
            if isinstance(slot, Value):
                yv: Expr | Value | None = y if isinstance(y, Value) else None
                ok = isinstance(y, Value) and isinstance(y.type, TileType) and isinstance(slot.type, TileType) \
                    and (y.type.dtype, y.type.shape) == (slot.type.dtype, slot.type.shape)
                res: Var | Value = Value(slot.type, n)
                init = pre[n]
            else:
                yv = y if isinstance(y, Expr) else self._const_of(y, slot.dtype)
                ok = yv is not None and yv.dtype == slot.dtype
                res = Var(n, slot.dtype)
                init = pre[n] if isinstance(pre[n], Expr) else self._const_of(pre[n], slot.dtype)
            if not ok:
                self.env = pre
                before = describe(slot).replace(f" '{n}'", "")
                raise Fail(f"loop-carried value '{n}' changes type: {before} before the loop body, "
                           f"{describe(y)} after it")  # fmt: skip
            inits.append(init)  # type: ignore[arg-type]
            yields.append(yv)  # type: ignore[arg-type]
            results.append(res)
            self.env[n] = res
        for n in assigned_names(node.body):
            if n not in pre:
                self.local_only.add(n)
        self.b.make(O.For, var=var, start=start, stop=stop, step=step, inits=tuple(inits),
                    args=tuple(slots[n] for n in carry), body=body, yields=tuple(yields), results=tuple(results))  # fmt: skip

    # ---------------------------------------------------------------- expressions
    def visit_Constant(self, node: ast.Constant) -> DValue:
        if not isinstance(node.value, int | float | bool | str | type(None)):
            raise Fail(f"unsupported constant {node.value!r}")
        return node.value

    def visit_Name(self, node: ast.Name) -> DValue:
        if node.id in self.env:
            return self.env[node.id]
        if node.id in self.local_only:
            raise Fail(f"'{node.id}' is defined only inside a loop or one branch of an if")
        if node.id in self.globals:
            return self.globals[node.id]
        if node.id in _PY_ALLOWED:
            return getattr(pybuiltins, node.id)
        if node.id == "print":
            raise Fail("Python's print cannot run in a kernel; use lowbit.print")
        raise Fail(f"undefined name '{node.id}'")

    def visit_Tuple(self, node: ast.Tuple) -> DValue:
        return tuple(self.visit(e) for e in node.elts)

    def visit_List(self, node: ast.List) -> DValue:
        return tuple(self.visit(e) for e in node.elts)

    def visit_Attribute(self, node: ast.Attribute) -> DValue:
        obj = self.visit(node.value)
        name = node.attr
        if isinstance(obj, Value):
            t = obj.type
            if name == "dtype":
                return t.dtype
            if name in ("shape", "ndim") and hasattr(t, "shape"):
                return t.shape if name == "shape" else len(t.shape)  # type: ignore[union-attr]
            raise Fail(f"{describe(obj)} has no attribute '{name}' (tiles have .shape, .ndim and .dtype)")
        if isinstance(obj, Expr):
            if name == "dtype":
                return obj.dtype
            raise Fail(f"{describe(obj)} has no attribute '{name}'")
        if name.startswith("_"):
            raise Fail(f"private attribute '{name}' is not accessible in a kernel")
        try:
            return getattr(obj, name)
        except AttributeError:
            owner = obj.__name__ if isinstance(obj, types.ModuleType) else describe(obj)
            raise Fail(f"{owner} has no attribute '{name}'") from None

    def visit_Subscript(self, node: ast.Subscript) -> DValue:
        obj = self.visit(node.value)
        if isinstance(obj, Value) and isinstance(obj.type, TileType):
            return self._tile_subscript(obj, node)
        if isinstance(obj, Value) and isinstance(obj.type, SharedType):
            return self._shared_subscript(obj, node)
        idx = self.visit(node.slice)
        if is_constexpr(obj) and is_constexpr(idx) and isinstance(obj, tuple | list | str):
            try:
                return obj[idx]  # type: ignore[index]
            except (IndexError, TypeError) as exc:
                raise Fail(f"bad constant index: {exc}") from None
        raise Fail(f"cannot index {describe(obj)}")

    def _shared_subscript(self, obj: Value, node: ast.Subscript) -> DValue:
        """``buf[s]`` / ``buf[s, t]``: the sub-buffer at runtime indices of the leading dimensions (a stage)."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if any(isinstance(it, ast.Slice) for it in items):
            raise Fail("a shared buffer is indexed by scalars of its leading dimensions (buf[s]), not slices")
        t = obj.type
        if len(items) >= len(t.shape):  # type: ignore[union-attr]
            raise Fail(f"{len(items)} indices for a rank-{len(t.shape)} shared buffer: a view keeps at least one "  # type: ignore[union-attr]
                       "dimension (load or store a tile of it instead)")
        idx = tuple(self.b.index(self.visit(it), "shared buffer index") for it in items)
        for i, (e, n) in enumerate(zip(idx, t.shape)):  # type: ignore[union-attr]
            if isinstance(e, Const) and not 0 <= e.value < n:
                raise Fail(f"index {e.value} is outside dimension {i} of extent {n} of {describe(obj)}")
        r = self.b.new(SharedType(t.dtype, t.shape[len(idx):], t.layout), obj.hint)  # type: ignore[union-attr]
        self.b.make(O.SharedView, result=r, buf=obj, indices=idx)
        return r

    def _tile_subscript(self, obj: Value, node: ast.Subscript) -> DValue:
        """``x[a:b, :, None]``: constexpr slices (a static sub-tile), ``:`` and ``None`` (a new extent-1 axis)."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        src = obj.type.shape  # type: ignore[union-attr]
        starts, sizes, out_shape = [], [], []
        d = 0
        for it in items:
            if isinstance(it, ast.Constant) and it.value is None:
                out_shape.append(1)
                continue
            if d >= len(src):
                raise Fail(f"too many indices for {describe(obj)}")
            if not isinstance(it, ast.Slice):
                raise Fail("tiles are indexed with constexpr slices (x[0:16, :]) and None, not single positions")
            lo = 0 if it.lower is None else self.visit(it.lower)
            hi = src[d] if it.upper is None else self.visit(it.upper)
            if it.step is not None:
                raise Fail("tile slices take no step")
            if not (isinstance(lo, int) and isinstance(hi, int)) or isinstance(lo, bool) or isinstance(hi, bool):
                raise Fail(f"tile slice bounds must be constexpr ints, got {describe(lo)}:{describe(hi)}")
            lo, hi = (lo + src[d] if lo < 0 else lo), (hi + src[d] if hi < 0 else hi)
            if not 0 <= lo < hi <= src[d]:
                raise Fail(f"slice {lo}:{hi} is outside axis {d} of extent {src[d]}")
            starts.append(lo)
            sizes.append(hi - lo)
            out_shape.append(hi - lo)
            d += 1
        for n in src[d:]:
            starts.append(0)
            sizes.append(n)
            out_shape.append(n)
        v = obj
        if tuple(sizes) != tuple(src):
            v = self.b.new(TileType(obj.type.dtype, tuple(sizes)), obj.hint)  # type: ignore[union-attr]
            self.b.make(O.Slice, result=v, x=obj, starts=tuple(starts))
        return v if tuple(out_shape) == tuple(sizes) else self.b.reshape(v, tuple(out_shape))

    def visit_IfExp(self, node: ast.IfExp) -> DValue:
        cond = self.visit(node.test)
        if is_constexpr(cond):
            return self.visit(node.body if cond else node.orelse)
        return B.implementation(B.where)[0](self.b, cond, self.visit(node.body), self.visit(node.orelse))  # type: ignore[index]

    def _binop(self, op: ast.operator, x: DValue, y: DValue) -> DValue:
        if isinstance(op, ast.MatMult):
            return B.implementation(B.dot)[0](self.b, x, y, None, None)  # type: ignore[index]
        if type(op) not in _BINOPS:
            raise Fail(f"unsupported operator {type(op).__name__}")
        name, sym = _BINOPS[type(op)]
        if is_constexpr(x) and is_constexpr(y):
            if isinstance(x, int) and isinstance(y, int) and name in ("div", "mod"):
                return _c_int_op(name, x, y)
            try:
                return {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
                        "//": operator.floordiv, "%": operator.mod, "&": operator.and_, "|": operator.or_,
                        "^": operator.xor, "<<": operator.lshift, ">>": operator.rshift}[sym](x, y)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 (a Python error on user constants)
                raise Fail(f"constant expression {x!r} {sym} {y!r} failed: {exc}") from None
        if isinstance(x, Value) or isinstance(y, Value):
            return self.b.tile_binary(name, x, y, sym)
        return self.b.scalar_binary(name, x, y, sym)

    def visit_BinOp(self, node: ast.BinOp) -> DValue:
        return self._binop(node.op, self.visit(node.left), self.visit(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> DValue:
        x = self.visit(node.operand)
        if is_constexpr(x):
            fn: Callable[[object], object] = {ast.USub: operator.neg, ast.UAdd: operator.pos,
                                              ast.Invert: operator.invert, ast.Not: operator.not_}[type(node.op)]  # fmt: skip
            try:
                return fn(x)
            except TypeError as exc:
                raise Fail(str(exc)) from None
        if isinstance(node.op, ast.UAdd):
            return x
        if isinstance(x, Value):
            if isinstance(node.op, ast.Not):
                raise Fail("'not' on a tile; use '~' for element-wise negation")
            return self.b.unary("neg" if isinstance(node.op, ast.USub) else "not", self.b.tile(x, "operand"))
        if isinstance(node.op, ast.Not) and not is_bool(x.dtype):  # type: ignore[union-attr]
            return self.b.scalar_binary("eq", x, 0, "==")
        return self.b.scalar_unary("neg" if isinstance(node.op, ast.USub) else "not", x)

    def visit_BoolOp(self, node: ast.BoolOp) -> DValue:
        is_and = isinstance(node.op, ast.And)
        acc = self.visit(node.values[0])
        for v in node.values[1:]:
            if is_constexpr(acc):
                if bool(acc) != is_and:
                    return acc  # short circuit, as Python
                acc = self.visit(v)
                continue
            y = self.visit(v)
            if isinstance(acc, Value) or isinstance(y, Value):
                raise Fail("'and'/'or' on tiles; use '&' and '|'")
            acc = self.b.scalar_binary("and" if is_and else "or", self._truth(acc), self._truth(y), "and" if is_and else "or")
        return acc

    def _truth(self, x: DValue) -> Expr:
        e = self.b.expr(x, "condition")
        return e if is_bool(e.dtype) else self.b.scalar_binary("ne", e, 0, "!=")

    def visit_Compare(self, node: ast.Compare) -> DValue:
        if len(node.ops) != 1:
            raise Fail("unsupported syntax: chained comparison")
        x, y = self.visit(node.left), self.visit(node.comparators[0])
        op = node.ops[0]
        if isinstance(op, ast.Is | ast.IsNot | ast.In | ast.NotIn):
            if not (is_constexpr(x) and is_constexpr(y)):
                raise Fail("'is' and 'in' compare constexprs only")
            return {ast.Is: operator.is_, ast.IsNot: operator.is_not,
                    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}[type(op)](x, y)  # fmt: skip
        name, sym = _CMPOPS[type(op)]
        if is_constexpr(x) and is_constexpr(y):
            return _PY_CMP[name](x, y)
        if isinstance(x, Value) or isinstance(y, Value):
            return self.b.tile_binary(name, x, y, sym)
        return self.b.scalar_binary(name, x, y, sym)

    # ---------------------------------------------------------------------- calls
    def visit_Call(self, node: ast.Call) -> DValue:
        fn = self.visit(node.func)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise Fail("unsupported syntax: *args / **kwargs in a call")
        args = [self.visit(a) for a in node.args]
        kwargs = {k.arg: self.visit(k.value) for k in node.keywords}
        return self.call(fn, args, kwargs, node)

    def call(self, fn: object, args: list[DValue], kwargs: dict[str, DValue], node: ast.Call) -> DValue:
        builtin = B.implementation(fn)
        if builtin is not None:
            impl, sig = builtin
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise Fail(f"lowbit.{fn.__name__}(): {exc}") from None  # type: ignore[attr-defined]
            bound.apply_defaults()
            return impl(self.b, *bound.args, **bound.kwargs)
        inline = getattr(fn, "__lowbit_inline__", None)
        if inline is not None:
            if self.depth > 32:
                raise Fail("@lowbit.func calls nest more than 32 deep (recursion?)")
            return inline(self.b, args, kwargs, self.depth + 1)
        if getattr(fn, "__lowbit_constexpr_fn__", False):
            if not all(is_constexpr(a) for a in [*args, *kwargs.values()]):
                raise Fail(f"{fn.__name__}() takes constexpr arguments only")  # type: ignore[attr-defined]
            return fn(*args, **kwargs)  # type: ignore[operator]
        if fn in (pybuiltins.min, pybuiltins.max):
            if kwargs or len(args) < 2:
                raise Fail(f"{fn.__name__}() in a kernel takes two or more positional arguments")  # type: ignore[attr-defined]
            impl = B.implementation(B.minimum if fn is pybuiltins.min else B.maximum)[0]  # type: ignore[index]
            acc = args[0]
            for a in args[1:]:
                acc = impl(self.b, acc, a)
            return acc
        if fn is pybuiltins.len and len(args) == 1 and not kwargs:
            a = args[0]
            if isinstance(a, tuple | list | str):
                return len(a)
            if isinstance(a, Value) and isinstance(a.type, TileType):
                return a.type.shape[0]
            raise Fail(f"len() of {describe(a)}")
        if fn in (pybuiltins.int, pybuiltins.float, pybuiltins.bool, pybuiltins.abs):
            if len(args) == 1 and not kwargs and is_constexpr(args[0]):
                return fn(args[0])  # type: ignore[operator]
            if fn is pybuiltins.abs and len(args) == 1:
                return B.implementation(B.abs)[0](self.b, args[0])  # type: ignore[index]
            raise Fail(f"{fn.__name__}() of a runtime value; use lowbit.cast")  # type: ignore[attr-defined]
        if fn is pybuiltins.range:
            raise Fail("range() is only supported as the iterable of a for loop")
        if isinstance(fn, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
            raise Fail(f"calling a plain Python function '{fn.__name__}'; "
                       "decorate it with @lowbit.func to inline it into kernels")  # fmt: skip
        raise Fail(f"{describe(fn) if is_constexpr(fn) else 'this value'} is not callable in a kernel")


def _is_tile(v: DValue) -> bool:
    return isinstance(v, Value) and isinstance(v.type, TileType)


def _same(a: DValue, b: DValue) -> bool:
    if a is b:
        return True
    return is_constexpr(a) and is_constexpr(b) and type(a) is type(b) and a == b
