"""Lower a VM program to a SIMT kernel: every tile op becomes per-thread code that follows the tile's layout.

Requires: a verified VM program after ``plan_shared``: every register
          tile carries a layout over ``32 * num_warps`` threads, every op is
          register-local under those layouts (``convert_layout`` ops have a
          route, ``dot`` and cross-warp ``reduce`` are rewritten), loads and
          stores have their vector width, every shared buffer its offset.
Ensures:  a verified SIMT :class:`~lowbit.ir.simt.Kernel` with
          ``threads = 32 * num_warps``, one parameter per VM parameter in
          order (pointers -> ``ptr.global[dtype]``, scalars -> their register
          type; a ``bool`` scalar is passed as i32), the planned shared
          buffers as offsets in one area ``@smem`` (static, or dynamic above
          the target's 48 KiB default: :func:`plan_shared.storage`).  Every VM op is lowered or the pass
          raises :class:`~lowbit.errors.CodegenError` naming the op's DSL
          source line; ``print`` is dropped (interpreter only).  No shared
          memory is used that the VM program did not allocate.
Preserves: the program's meaning, bit-exactly on integer paths (the
          semantics tables of :mod:`lowbit.ir.semantics`), floats up to the
          documented differences: ``exp2``/``log2`` use the PTX
          approximations, ``dot`` and ``reduce`` sum in a different order.

How values are held: :mod:`lowbit.transforms._tiles` (one register per
slot, or packed words); how a layout becomes thread arithmetic:
:mod:`lowbit.transforms._context`.
"""

from __future__ import annotations

import re

from lowbit.errors import CodegenError, LowbitError
from lowbit.ir import ops as V
from lowbit.ir.expr import Expr, Var
from lowbit.ir.program import Program
from lowbit.ir.simt import Builder, Const, Kernel
from lowbit.ir.loops import TRAP_RANGE_STEP, runtime_step_loops
from lowbit.ir.rewrite import walk
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.kernel import SharedBuffer
from lowbit.ir.simt.types import I32, I64, PTR_GLOBAL
from lowbit.ir.types import PointerType, TileType, Value, is_bool
from lowbit.transforms import _values as vals
from lowbit.transforms._context import Ctx, fail
from lowbit.transforms._divisibility import Divisibility
from lowbit.transforms._lower_atomic import HANDLERS as ATOMIC
from lowbit.transforms._lower_codebook import HANDLERS as CODEBOOK
from lowbit.transforms._lower_compute import HANDLERS as COMPUTE
from lowbit.transforms._lower_memory import HANDLERS as MEMORY
from lowbit.transforms.plan_shared import storage
from lowbit.transforms._tiles import Tile, scalars, word_count, words
from lowbit.transforms.options import Options

__all__ = ["run"]

#: The start of a message that `fail` located at a DSL line (``file:line:col: cannot lower``).
_LOC = re.compile(r"^\S.*:\d+:\d+: cannot lower ")


def _carried_as_words(t: TileType) -> bool:
    """Loop-carried tiles of narrow types travel packed (f16 accumulators stay f16x2 words)."""
    return not is_bool(t.dtype) and t.dtype.bits < 32


def _flatten(ctx: Ctx, xs: tuple, shapes: tuple, op: V.Op) -> list:  # noqa: ANN001
    out = []
    for x, like in zip(xs, shapes):
        if isinstance(x, Expr):
            out.append(ctx.scalar(x))
        elif isinstance(x, Value) and isinstance(x.type, TileType):
            t = ctx.tile(x, op)
            if t.layout != like.type.layout:
                raise fail(op, f"a carried tile changes layout ({t.layout} vs {like.type.layout})")
            out.extend(words(ctx, t) if _carried_as_words(like.type) else scalars(ctx, t))
        else:
            raise fail(op, f"only scalars and register tiles can be carried, got {x!r}")
    return out


def _bind(ctx: Ctx, targets: tuple, regs: tuple, op: V.Op) -> None:  # noqa: ARG001
    i = 0
    for v in targets:
        if isinstance(v, Var):
            ctx.put(v, regs[i])
            i += 1
            continue
        t = v.type
        assert isinstance(t, TileType) and t.layout is not None  # noqa: S101
        if _carried_as_words(t):
            n = word_count(t.dtype, t.layout.local_size)
            ctx.put(v, Tile(t.dtype, t.layout, wrds=list(regs[i:i + n])))
        else:
            n = t.layout.local_size
            ctx.put(v, Tile(t.dtype, t.layout, scal=list(regs[i:i + n])))
        i += n


def _for(ctx: Ctx, op: V.For) -> None:
    b = ctx.b
    start, stop, step = ctx.scalar(op.start), ctx.scalar(op.stop), ctx.scalar(op.step)
    if isinstance(step, Const) and step.value <= 0:
        raise fail(op, f"range step must be positive, got {step.value}")
    if not isinstance(step, Const):  # the interpreter's check, as a defined outcome: trap (lowbit.ir.loops)
        loops = ctx.step_loops  # type: ignore[attr-defined]
        index = loops.index(op.loc) if op.loc in loops else len(loops)
        b.emit(S.Trap(b.cmp("sle", step, Const(0, step.type), hint="bad_step"), TRAP_RANGE_STEP + index))
    inits = _flatten(ctx, op.inits, op.args, op)
    with b.for_(start, stop, step, inits, op.var.name) as loop:
        ctx.push()
        ctx.put(op.var, loop.iv)
        _bind(ctx, op.args, loop.carried, op)
        lower_body(ctx, op.body)
        loop.yield_(*_flatten(ctx, op.yields, op.args, op))
        ctx.pop()
    _bind(ctx, op.results, loop.results, op)


def _if(ctx: Ctx, op: V.If) -> None:
    b = ctx.b
    cond = ctx.scalar(op.cond)
    with b.if_(cond) as scope:
        ctx.push()
        lower_body(ctx, op.then_body)
        scope.yield_(*_flatten(ctx, op.then_yields, op.results, op))
        ctx.pop()
        if op.results or op.else_body:
            b.else_(scope)
            ctx.push()
            lower_body(ctx, op.else_body)
            scope.yield_(*_flatten(ctx, op.else_yields, op.results, op))
            ctx.pop()
    _bind(ctx, op.results, scope.results, op)


HANDLERS = {**COMPUTE, **MEMORY, **ATOMIC, **CODEBOOK, V.For: _for, V.If: _if, V.Print: lambda ctx, op: None}

#: The SIMT name of the block's one shared-memory area (every planned buffer is an offset in it).
SHARED_AREA = "smem"


def _l2_priorities(prog: Program) -> list[str]:
    """The L2 eviction priorities the program's loads and copies ask for, in first-use order."""
    seen: list[str] = []
    for op in walk(prog.body):
        p = getattr(op, "l2", "") if isinstance(op, V.LoadGlobal | V.CopyAsync) else ""
        if p and p not in seen:
            seen.append(p)
    return seen


def lower_body(ctx: Ctx, body: tuple[V.Op, ...]) -> None:
    for op in body:
        h = HANDLERS.get(type(op))
        if h is None:
            raise fail(op, "no lowering for this op")
        try:
            h(ctx, op)
        except CodegenError as exc:
            # Already located (by `fail`, or by an op nested in a loop/if body): keep the innermost line.
            if op.loc is None or _LOC.match(str(exc)):
                raise
            raise fail(op, str(exc)) from None
        except LowbitError as exc:  # an IR, layout or dtype error met while lowering: still the user's line
            raise fail(op, f"{type(exc).__name__}: {exc}") from None


def run(prog: Program, opts: Options) -> Kernel:
    threads = prog.num_warps * 32
    b = Builder(prog.name, threads)
    regs = []
    for p in prog.params:
        if isinstance(p.value, Value):
            t = p.value.type
            assert isinstance(t, PointerType)  # noqa: S101
            elem = None if is_bool(t.dtype) else t.dtype.name
            try:
                regs.append((p.value, b.param(p.name, PTR_GLOBAL, elem)))
            except Exception:  # noqa: BLE001 - a dtype the SIMT header cannot name (codebooks): leave it out
                regs.append((p.value, b.param(p.name, PTR_GLOBAL, None)))
        else:
            dt = p.value.dtype
            regs.append((p.value, b.param(p.name, I32 if is_bool(dt) else vals.reg_type(dt))))
    ctx = Ctx(b, threads, opts.arch)
    ctx.step_loops = runtime_step_loops(prog.body)  # type: ignore[attr-defined]
    ctx.divisibility = Divisibility(prog)
    area = storage(prog, opts.arch)
    if area.total:
        b.shared.append(SharedBuffer(SHARED_AREA, area.total, area.align, dynamic=area.dynamic))
        ctx.shared_area = SHARED_AREA
    for p in _l2_priorities(prog):  # once, at the entry: every hinted access in any scope uses the register
        ctx.policies[p] = b.op(S.CreatePolicy, I64, p, hint=f"l2_{p}")  # type: ignore[assignment]
    for v, r in regs:
        if isinstance(v, Var) and is_bool(v.dtype):
            r = b.cmp("ne", r, Const(0, I32))
        ctx.put(v, r)
    lower_body(ctx, prog.body)
    return b.finish()  # (finish verifies the kernel)
