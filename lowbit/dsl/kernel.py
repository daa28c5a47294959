"""``@lowbit.kernel`` and ``@lowbit.func`` objects: source → VM program, one per constexpr set.

A :class:`KernelFunction` reads its function's source once, learns its
parameters (annotations are read from the syntax tree, so they may mention
constexpr parameters: ``x: lowbit.ptr(T)``) and compiles a
:class:`~lowbit.ir.program.Program` for each distinct set of constexpr
values, cached.  Runtime sizes (M, N, K) stay :class:`~lowbit.ir.expr.Var`
s; only constexprs specialise.  Launching lives outside this package
(:mod:`lowbit.launch`), so that the DSL knows nothing of backends.

A :class:`Func` is inlined at each call site, compiled in the caller's
builder with its own source positions.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from lowbit.dtypes import DType
from lowbit.dsl import builtins as B
from lowbit.dsl.builder import Builder, DValue, describe
from lowbit.dsl.diagnostics import Fail, SourceError, SourceInfo
from lowbit.dsl.frontend import Frontend
from lowbit.errors import DSLError, LaunchError
from lowbit.ir.expr import Var
from lowbit.ir.program import MAX_STAGES, Param, Program
from lowbit.ir.types import PointerType, Value, scalar_ok
from lowbit.ir.verifier import verify

__all__ = ["LAUNCH_OPTIONS", "Func", "KernelFunction", "ParamInfo", "constexpr_key"]

#: Keywords of ``kernel[grid](...)`` that are options, never kernel arguments: ``num_warps``/``num_stages``
#: (compile options, also of ``lowbit.compile``) and the emulator watchdog's ``max_steps``/``max_seconds``
#: (:mod:`lowbit.config`; ignored by the interpreter and the GPU).
LAUNCH_OPTIONS = ("num_warps", "num_stages", "max_steps", "max_seconds")


@dataclass(frozen=True)
class Parsed:
    tree: ast.FunctionDef
    src: SourceInfo


def _parse(fn: Callable[..., object]) -> Parsed:
    try:
        lines, first = inspect.getsourcelines(fn)
        filename = inspect.getsourcefile(fn) or "<unknown>"
    except (OSError, TypeError) as exc:
        raise DSLError(f"cannot read the source of {getattr(fn, '__name__', fn)!r}: {exc}") from None
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    indent = len(lines[0]) - len(lines[0].lstrip()) if dedented != text else 0
    tree = ast.parse(dedented)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise DSLError(f"{fn!r} is not a plain function definition")
    return Parsed(node, SourceInfo(filename, first - 1, indent))


def _namespace(fn: Callable[..., object]) -> dict[str, object]:
    """The names a function body can see: its module globals, then its closure (read once per compile)."""
    names = dict(fn.__globals__)  # type: ignore[attr-defined]
    try:
        names.update(inspect.getclosurevars(fn).nonlocals)
    except (TypeError, ValueError):  # pragma: no cover - an empty closure cell
        pass
    return names


#: The kinds of module-global (or closure) values a kernel may read as compile-time constants: their
#: values are part of the specialisation key (docs/dsl.md, "Module globals").
GLOBAL_CONSTANT_KINDS = (bool, int, float, str, DType)


def _read_names(tree: ast.AST) -> tuple[str, ...]:
    """Every plain name the function body reads (``ast.Name`` in load context), sorted."""
    return tuple(sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}))


def _constant_key(value: object) -> object | None:
    """A key for a global constant's value (NaN-safe), or None when the value is not a constant kind."""
    if isinstance(value, tuple):
        parts = [_constant_key(v) for v in value]
        return None if any(p is None for p in parts) else ("tuple", tuple(parts))
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, GLOBAL_CONSTANT_KINDS):
        return (type(value).__name__, value)
    return None


def globals_key(fn: Callable[..., object], names: tuple[str, ...], skip: frozenset[str] = frozenset(),
                seen: set[int] | None = None) -> tuple[object, ...]:  # fmt: skip
    """The current values of the constant globals (and closure variables) ``fn`` reads by ``names``.

    Values of :data:`GLOBAL_CONSTANT_KINDS` (and tuples of them) are read at every specialisation, so a
    changed value recompiles; ``@lowbit.func`` helpers the function calls contribute theirs too.  Other
    values (modules, functions, arrays) are code or data the DSL refuses or reads by attribute.
    """
    seen = set() if seen is None else seen
    if id(fn) in seen:
        return ()
    seen.add(id(fn))
    code = getattr(fn, "__code__", None)
    cells = dict(zip(code.co_freevars, getattr(fn, "__closure__", None) or ())) if code is not None else {}
    g = getattr(fn, "__globals__", {})
    out: list[object] = []
    for name in names:
        if name in skip:
            continue
        if name in cells:
            try:
                value = cells[name].cell_contents
            except ValueError:  # an empty cell
                continue
        elif name in g:
            value = g[name]
        else:
            continue
        if isinstance(value, Func):
            out.extend(value.globals_key(seen))
            continue
        k = _constant_key(value)
        if k is not None:
            out.append((getattr(fn, "__qualname__", "?"), name, k))
    return tuple(out)


@dataclass(frozen=True)
class ParamInfo:
    """A kernel parameter as declared: name, whether it is a constexpr, its default (if any)."""

    name: str
    is_constexpr: bool
    has_default: bool
    default: object = None


def constexpr_key(value: object, name: str) -> object:
    """A hashable cache key for a constexpr value (dtypes, numbers, strings, tuples, layouts)."""
    if isinstance(value, list):
        value = tuple(value)
    try:
        hash(value)
    except TypeError:
        raise LaunchError(f"constexpr '{name}' must be hashable (a number, dtype, string or tuple), got {value!r}") from None
    return (type(value).__name__, value)


def _constexpr_text(value: object) -> str:
    if isinstance(value, DType):
        return value.name
    to_text = getattr(value, "to_text", None)  # layouts print their one-line text form
    return to_text() if callable(to_text) else repr(value)


class Func:
    """A ``@lowbit.func`` helper: inlined into kernels at every call."""

    def __init__(self, fn: Callable[..., object]) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._parsed: Parsed | None = None
        self._names: tuple[str, ...] | None = None

    def globals_key(self, seen: set[int]) -> tuple[object, ...]:
        """The constant globals this helper reads (see :func:`globals_key`)."""
        if self._names is None:
            if self._parsed is None:
                self._parsed = _parse(self.fn)
            a = self._parsed.tree.args
            self._names = _read_names(self._parsed.tree)
            self._params = frozenset(x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs))
        return globals_key(self.fn, self._names, self._params, seen)

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise DSLError(f"@lowbit.func {self.__name__} can only be called inside a kernel")

    def __lowbit_inline__(self, b: Builder, args: list[DValue], kwargs: dict[str, DValue], depth: int) -> DValue:
        if self._parsed is None:
            self._parsed = _parse(self.fn)
        sig = inspect.signature(self.fn)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise Fail(f"{self.__name__}(): {exc}") from None
        bound.apply_defaults()
        fe = Frontend(b, self._parsed.src, _namespace(self.fn), dict(bound.arguments), depth)
        fe.block(self._parsed.tree.body, allow_return=True)
        return fe.returned


class KernelFunction:
    """The compile side of ``@lowbit.kernel``: parameters, constexpr defaults, cached programs."""

    def __init__(self, fn: Callable[..., object], num_warps: int = 4, num_stages: int = 1) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.num_warps = num_warps
        self.num_stages = num_stages
        self._parsed = _parse(fn)
        self._cache: dict[tuple[object, ...], Program] = {}
        self.params = self._declared_params()
        #: names the body reads that are not parameters: globals or closure variables
        self._free = tuple(n for n in _read_names(self._parsed.tree) if n not in {p.name for p in self.params})

    @property
    def location(self) -> tuple[str, int, int]:
        """(file, line, col) of the ``def``: where launch-argument errors point."""
        t = self._parsed.tree
        line, col = self._parsed.src.locate(t.lineno, t.col_offset)
        return self._parsed.src.filename, line, col

    def _frontend(self, env: dict[str, DValue]) -> Frontend:
        return Frontend(Builder(), self._parsed.src, _namespace(self.fn), env)

    def _declared_params(self) -> tuple[ParamInfo, ...]:
        a = self._parsed.tree.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            fe = self._frontend({})
            raise fe._located(self._parsed.tree, "kernel parameters must be plain positional parameters")
        sig = inspect.signature(self.fn)
        out = []
        for arg in a.args:
            if arg.arg in LAUNCH_OPTIONS:
                raise self._frontend({})._located(
                    arg, f"'{arg.arg}' is a launch option of every kernel and cannot be a parameter name")
            is_cx = False
            if arg.annotation is not None:
                try:
                    is_cx = self._frontend({}).visit(arg.annotation) is B.constexpr
                except SourceError:
                    is_cx = False  # refers to a constexpr parameter: resolved at specialisation
            p = sig.parameters[arg.arg]
            has = p.default is not inspect.Parameter.empty
            out.append(ParamInfo(arg.arg, is_cx, has, p.default if has else None))
        return tuple(out)

    def bind_constexprs(self, given: dict[str, object]) -> dict[str, object]:
        """Every constexpr's value: given ones, else defaults; an error names a missing or unknown one."""
        known = {p.name for p in self.params if p.is_constexpr}
        unknown = sorted(set(given) - known)
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            raise LaunchError(
                f"kernel {self.__name__} has no constexpr {unknown[0]!r} (its constexprs: {listed})"
            )
        out = {}
        for p in self.params:
            if not p.is_constexpr:
                continue
            if p.name in given:
                out[p.name] = given[p.name]
            elif p.has_default:
                out[p.name] = p.default
            else:
                raise LaunchError(f"kernel {self.__name__}: constexpr '{p.name}' has no value and no default")
        return out

    def specialize(self, num_warps: int | None = None, num_stages: int | None = None, **constexprs: object) -> Program:
        """The verified program for these constexpr values (missing ones take their defaults).

        ``num_warps`` and ``num_stages`` (default: the decorator's) are
        compile options, not constexprs: the same source compiles for any
        block size or pipeline depth a launch or a tuner asks for.
        """
        nw = self.num_warps if num_warps is None else num_warps
        if nw not in (1, 2, 4, 8, 16, 32) or isinstance(nw, bool):
            raise LaunchError(f"kernel {self.__name__}: num_warps must be a power of two in 1..32, got {nw!r}")
        ns = self.num_stages if num_stages is None else num_stages
        if not isinstance(ns, int) or isinstance(ns, bool) or not 1 <= ns <= MAX_STAGES:
            raise LaunchError(f"kernel {self.__name__}: num_stages must be an int in 1..{MAX_STAGES} "
                              f"(1: no software pipelining), got {ns!r}")  # fmt: skip
        values = self.bind_constexprs(constexprs)
        key = (nw, ns, *(constexpr_key(values[n], n) for n in sorted(values)), globals_key(self.fn, self._free))
        prog = self._cache.get(key)
        if prog is None:
            prog = self._compile(values, nw, ns)
            self._cache[key] = prog
        return prog

    def _compile(self, cx: dict[str, object], num_warps: int, num_stages: int = 1) -> Program:
        env: dict[str, DValue] = dict(cx)
        fe = self._frontend(env)
        params: list[Param] = []
        for arg, info in zip(self._parsed.tree.args.args, self.params):
            if info.is_constexpr:
                continue
            if arg.annotation is None:
                raise fe._located(arg, f"parameter '{arg.arg}' needs an annotation: lowbit.ptr(dtype), "
                                       "a scalar dtype such as lowbit.int32, or lowbit.constexpr")  # fmt: skip
            spec = fe.visit(arg.annotation)
            if isinstance(spec, B.PtrSpec) and spec.dtype is None:
                raise fe._located(arg.annotation, f"parameter '{arg.arg}': {spec.error}")
            if isinstance(spec, B.PtrSpec):
                value: Var | Value = Value(PointerType(spec.dtype), arg.arg)
            elif isinstance(spec, DType) and scalar_ok(spec):
                value = Var(arg.arg, spec)
            else:
                raise fe._located(arg.annotation, f"parameter '{arg.arg}': {describe(spec)} is not a parameter "
                                                  "type (use lowbit.ptr(dtype), a scalar dtype or lowbit.constexpr)")  # fmt: skip
            env[arg.arg] = value
            params.append(Param(arg.arg, value))
        fe.block(self._parsed.tree.body, allow_return=True)
        if len(fe.b.blocks) != 1:
            raise DSLError("internal error: unbalanced blocks after compiling the kernel")
        prog = Program(
            self.__name__,
            tuple(params),
            tuple(fe.b.blocks[0]),
            tuple((n, _constexpr_text(v)) for n, v in cx.items()),
            num_warps,
            num_stages=num_stages,
        )
        return verify(prog)
