"""The dequantisation rule of ``select_instructions``: the chain that turns weight codes into f16/bf16 becomes one op.

A weight-only GEMM writes its dequantisation as ordinary tile arithmetic,
``cast(((cast(codes, f32) * factor) - zero) * scale, f16)`` (every step
exact in f32), or directly in the activation dtype,
``(cast(codes, f16) - cast(z, f16)) * s``.  Element by element that is a
conversion and three f32 operations per weight; as one
:class:`~lowbit.ir.ops.Dequant` the lowering sees the whole chain and the
layout of the codes, and emits two or more weights per instruction
(:mod:`lowbit.transforms._lower_dequant`).

Matched, from the root (the final ``cast`` to f16/bf16, or the f16/bf16
``mul`` of the second form):

* ``mul(d, s)`` / ``mul(s, d)`` -- ``s`` is the scale; ``d`` is
* ``sub(v, z)`` -- ``z`` is the zero point -- or ``v`` itself; ``v`` is
* ``mul(cast(codes, f32), full(2**k))`` -- the element factor -- or ``cast(codes, f32)``;

where ``codes`` are of a format of at most 8 bits.  Zero and scale are
taken back through the shape ops (``broadcast``, ``reshape``) to before
their exact widening ``cast`` to f32, which is re-done on the narrow
values: the op reads the zero codes and the f16 scales, not their f32
copies.  The second form (f16 or bf16 arithmetic) is matched only where it
means exactly what the f32 chain means: integer codes and integer zeros of
at most 8 bits (``c - z`` is then an integer of at most 9 bits, exact in
either dtype) and a scale already of the result dtype (the product is
rounded once either way).

Codebook codes (nf4, user tables of at most 16 entries) may get a pair
table: when :func:`lowbit.transforms._lower_codebook.choose` picks a form,
the ``dequant`` reads a shared buffer that ``alloc_shared``, ``pair_table``
and one ``barrier`` fill at the start of the program (one per table,
shared by every ``dequant`` that wants it): the main loop only reads it.

Nothing else changes: ops of the chain that nothing else reads are
deleted afterwards (they are pure), the others stay.
"""

from __future__ import annotations

import math

from lowbit.dtypes import DType, IntType
from lowbit.ir import ops as O
from lowbit.ir.op_base import Effect, Region
from lowbit.ir.program import Program
from lowbit.ir.rewrite import Rewriter, walk
from lowbit.ir.types import INT32, SharedType, TileType, Value, is_bool

__all__ = ["run"]

_TARGETS = ("f16", "bf16")


def _results(op: O.Op) -> list[object]:
    out: list[object] = []
    for name in op.spec.results:
        v = getattr(op, name)
        out.extend(v if isinstance(v, tuple) else (v,))
    return out


def _inputs(op: O.Op) -> list[Value]:
    out: list[Value] = []

    def note(v: Value) -> Value:
        out.append(v)
        return v

    op.map_values(note, lambda e: e)
    for r in op.regions():
        out.extend(y for y in r.yields if isinstance(y, Value))
    return out


def _exact_in_f32(dt: DType) -> bool:
    """Whether every value of ``dt`` is an f32 (the widening cast loses nothing)."""
    if is_bool(dt):
        return False
    if dt.is_int:
        return dt.bits <= 24
    return dt.is_float and dt.bits <= 16 and getattr(dt, "table", None) is None


def _pow2(x: object) -> float | None:
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if f > 0 and math.isfinite(f) and f == 2.0 ** round(math.log2(f)):
        return f
    return None


class _Fuse(Rewriter):
    def __init__(self, prog: Program, codebook: str = "auto") -> None:
        super().__init__()
        self.codebook = codebook
        self.defs: dict[int, O.Op] = {}
        for op in walk(prog.body):
            for r in _results(op):
                self.defs[id(r)] = op
        self.plans: dict[int, list[O.Op]] = {}
        #: pair tables of codebook codes by (form, copies, entries), and the ops that fill them at the program's start
        self.tables: dict[tuple[str, int, tuple[int, ...]], Value] = {}
        self.prologue: list[O.Op] = []
        for op in walk(prog.body):
            plan = self._match(op)
            if plan is not None:
                self.plans[id(op)] = plan

    # ------------------------------------------------------------------ matching
    def _def(self, v: object, cls: type | tuple[type, ...]) -> O.Op | None:
        op = self.defs.get(id(v))
        return op if isinstance(op, cls) else None

    def _narrow(self, v: Value, new: list[O.Op], want: object = None) -> Value | None:
        """``v`` (an f32 or A tile) rebuilt before its exact widening cast, through broadcast/reshape; or None.

        ``want``: a predicate on the narrow dtype.  New shape ops go to ``new``.
        """
        op = self.defs.get(id(v))
        if isinstance(op, O.Cast):
            src = op.x.type.dtype  # type: ignore[union-attr]
            if _exact_in_f32(src) and (want is None or want(src)):  # type: ignore[operator]
                return op.x
            return None
        if isinstance(op, (O.Broadcast, O.Reshape)):
            inner = self._narrow(op.x, new, want)
            if inner is None:
                return None
            t = op.result.type
            r = Value(TileType(inner.type.dtype, t.shape, t.layout), op.result.hint)  # type: ignore[union-attr]
            new.append(type(op)(result=r, x=inner, loc=op.loc))
            return r
        return None

    def _match(self, root: O.Op) -> list[O.Op] | None:
        if isinstance(root, O.Cast) and root.result.type.dtype.name in _TARGETS:  # type: ignore[union-attr]
            if root.x.type.dtype.name != "f32":  # type: ignore[union-attr]
                return None
            return self._chain(root.x, root.result, root.loc, "f32")
        if isinstance(root, O.ElementwiseBinary) and root.op == "mul" and root.result.type.dtype.name in _TARGETS:  # type: ignore[union-attr]
            return self._chain(root.result, root.result, root.loc, root.result.type.dtype.name)  # type: ignore[union-attr]
        return None

    def _chain(self, top: Value, result: Value, loc: O.Loc | None, arith: str) -> list[O.Op] | None:
        a_dt = result.type.dtype  # type: ignore[union-attr]
        narrow_int = (lambda d: isinstance(d, IntType) and not is_bool(d) and d.bits <= 8) if arith != "f32" else None
        splits: list[tuple[Value | None, Value]] = []
        mul = self._def(top, O.ElementwiseBinary)
        if mul is not None and mul.op == "mul":
            splits += [(mul.b, mul.a), (mul.a, mul.b)]
        if arith == "f32":
            splits.append((None, top))
        for s_side, d in splits:
            new: list[O.Op] = []
            scale = None
            if s_side is not None and arith == "f32":
                scale = self._narrow(s_side, new, lambda dt: dt.is_float) or s_side
            elif s_side is not None:
                if s_side.type.dtype != a_dt:  # type: ignore[union-attr]
                    continue
                scale = s_side
            zero, v = None, d
            sub = self._def(d, O.ElementwiseBinary)
            if sub is not None and sub.op == "sub" and self._body(sub.a, arith) is not None:
                zero = self._narrow(sub.b, new, narrow_int)
                if zero is None and arith == "f32":
                    zero = sub.b  # an f32 zero stays f32
                if zero is not None:
                    v = sub.a
            body = self._body(v, arith)
            if body is None:
                continue
            codes, factor = body
            if arith != "f32" and not (narrow_int(codes.type.dtype) and zero is not None):  # type: ignore[misc,union-attr]
                continue  # (without a zero the f16 form is a cast and a mul: the cast lowering's job)
            if scale is None and zero is None and factor == 1.0:
                continue  # a bare cast: the cast lowering handles it
            table, lookup = self._table(codes, zero, scale, factor, a_dt.name)
            new.append(O.Dequant(result=result, codes=codes, zero=zero, scale=scale, factor=factor, table=table,
                                 lookup=lookup, loc=loc))  # fmt: skip
            return new
        return None

    def _codes(self, v: Value, arith: str) -> Value | None:
        """``codes`` when ``v`` is ``cast(codes)`` to ``arith`` from a format of at most 8 bits."""
        c = self._def(v, O.Cast)
        if c is None or c.result.type.dtype.name != arith:  # type: ignore[union-attr]
            return None
        src = c.x.type.dtype  # type: ignore[union-attr]
        return None if is_bool(src) or src.bits > 8 else c.x

    def _body(self, v: Value, arith: str) -> tuple[Value, float] | None:
        """``(codes, factor)`` when ``v`` is ``cast(codes)`` or (f32 only) ``cast(codes) * 2**k``."""
        codes = self._codes(v, arith)
        if codes is not None:
            return codes, 1.0
        m = self._def(v, O.ElementwiseBinary)
        if arith != "f32" or m is None or m.op != "mul":
            return None
        for c_side, k_side in ((m.a, m.b), (m.b, m.a)):
            codes = self._codes(c_side, arith)
            full = self._def(k_side, O.Full)
            f = _pow2(getattr(full.value, "value", None)) if full is not None else None
            if codes is not None and f is not None:
                return codes, f
        return None

    def _table(self, codes: Value, zero: Value | None, scale: Value | None, factor: float,
               dst: str) -> tuple[Value | None, str]:  # fmt: skip
        """``(table, lookup)`` of a codebook's codes (:mod:`~lowbit.transforms._lower_codebook`): the shared pair
        table (one per kind) or None, and ``"reg"`` for the register table (no buffer) or ``""``."""
        from lowbit.transforms import _lower_codebook as cb  # noqa: PLC0415

        def dt(v: Value | None) -> DType | None:
            return v.type.dtype if v is not None else None  # type: ignore[union-attr]

        got = cb.choose(dt(codes), dst, dt(zero), dt(scale), float(factor), force=self.codebook)  # type: ignore[arg-type]
        if got is None:
            return None, ""
        if got.form == "reg":
            return None, "reg"
        key = (got.form, got.copies, got.entries)
        if key not in self.tables:
            width = 16 if got.form == "half" else 32
            words = len(got.entries) ** 2 * width // 16 * got.copies
            buf = Value(SharedType(INT32, (words,)), f"cb_{got.form}")
            self.tables[key] = buf
            self.prologue += [O.AllocShared(result=buf),
                              O.PairTable(dst=buf, entries=got.entries, width=width, copies=got.copies)]  # fmt: skip
        return self.tables[key], ""

    # ------------------------------------------------------------------ rewriting
    def visit(self, op: O.Op) -> None:
        plan = self.plans.get(id(op))
        if plan is None:
            super().visit(op)
            return
        for new in plan:
            self.emit(self.copy(new))


def _dce(prog: Program) -> Program:
    """Delete pure ops none of whose results is read (repeatedly: a chain goes at once)."""
    while True:
        used: set[int] = set()
        for op in walk(prog.body):
            used.update(id(v) for v in _inputs(op))
        removed = False

        def keep(op: O.Op) -> bool:
            nonlocal removed
            res = [r for r in _results(op) if isinstance(r, Value)]
            dead = op.spec.effect is Effect.PURE and not op.regions() and res and not any(id(r) in used for r in res)
            removed |= bool(dead)
            return not dead

        def body(ops: tuple[O.Op, ...]) -> tuple[O.Op, ...]:
            out = []
            for op in ops:
                if not keep(op):
                    continue
                if op.regions():
                    regions = tuple(Region(r.args, body(r.body), r.yields) for r in op.regions())
                    op = op.replace(**op.region_changes(regions))
                out.append(op)
            return tuple(out)

        new_body = body(prog.body)
        if not removed:
            return prog
        prog = Program(prog.name, prog.params, new_body, prog.constexprs, prog.num_warps, prog.grid, prog.num_stages)


def run(prog: Program, codebook: str = "auto") -> Program:
    """``prog`` with every dequantisation chain replaced by a ``dequant`` (unchanged when there is none);
    ``codebook``: :attr:`lowbit.transforms.Options.codebook`."""
    f = _Fuse(prog, codebook)
    if not f.plans:
        return prog
    out = _dce(f.run(prog))
    if f.prologue:  # the codebook tables: filled once before anything else, read after one barrier
        body = (*f.prologue, O.Barrier(), *out.body)
        out = Program(out.name, out.params, body, out.constexprs, out.num_warps, out.grid, out.num_stages)
    return out
