"""SIMT instructions: one frozen dataclass per op, each checking its own operand types.

Every op is per-thread unless it says otherwise (``shfl``, ``vote``,
``barrier`` and the ``cp_async`` group ops involve the warp or the block).
Constructors raise :class:`~lowbit.errors.IRError` naming the op, so an
ill-typed op cannot exist; what one op cannot see (SSA definitions, scoping,
yields against results, shared-buffer names) the verifier checks.

This module holds the arithmetic, comparison, conversion and vector ops and
is the one namespace for every op class; the others live by kind in
:mod:`~lowbit.ir.simt.memory` (addresses, loads/stores, atomics, cp.async),
:mod:`~lowbit.ir.simt.collective` (barrier, shfl, vote) and
:mod:`~lowbit.ir.simt.isel` (``lop3``, ``prmt``, ``cvt_pack``,
``cvt_unpack``, ``call``: the instruction-selection ops, which exist so that
every choice is made by a transform and is visible here -- codegen
translates each op to one LLVM instruction, intrinsic call or inline-asm
statement and decides nothing).  Structured control flow (:class:`For`,
:class:`If`) lives in :mod:`lowbit.ir.simt.control`.  The text form of each
op is in ``docs/simt.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.simt.base import Op, is_float_like, is_int_like
from lowbit.ir.simt.collective import SHFL_MODES, VOTE_MODES, Barrier, Shfl, Trap, Vote
from lowbit.ir.simt.isel import CVT_PACK, CVT_UNPACK, Call, CvtPack, CvtUnpack, Lop3, Prmt
from lowbit.ir.simt.memory import (
    ATOMIC_BITS, ATOMIC_KINDS, Atomic, AtomicAdd, AtomicBits, CpAsync, CpAsyncCommit, CpAsyncWait, CreatePolicy, Gep,
    Load, SharedAddr, Store,
)  # fmt: skip
from lowbit.ir.simt.types import F32, I32, I64, PRED, Operand, PtrType, Reg, ScalarType, VectorType

__all__ = [
    "APPROX_UNARY", "ATOMIC_BITS", "ATOMIC_KINDS", "Atomic", "CreatePolicy", "CASTS", "CVT_PACK", "CVT_UNPACK", "FCMP", "FLOAT_BINARY", "FLOAT_UNARY",
    "ICMP", "INT_BINARY", "INT_UNARY", "SHFL_MODES", "SREGS", "VOTE_MODES",
    "AtomicAdd", "AtomicBits", "Barrier", "Binary", "Call", "Cast", "Cmp", "CpAsync", "CpAsyncCommit",
    "CpAsyncWait", "CvtPack", "CvtUnpack", "Extract", "Fma", "Gep", "Load", "Lop3", "Op", "Pack", "Prmt",
    "SReg", "Select", "SharedAddr", "Shfl", "Store", "Trap", "Unary", "Vote",
]  # fmt: skip

SREGS = tuple(f"{r}.{c}" for r in ("tid", "ntid", "ctaid", "nctaid") for c in "xyz") + ("laneid", "warpid")


@dataclass(frozen=True, eq=False)
class SReg(Op):
    """Read a special register (``tid.x``, ``ctaid.y``, ``laneid``...): an i32."""

    result: Reg
    name: str
    opname = "sreg"
    result_fields = ("result",)

    def __post_init__(self) -> None:
        if self.name not in SREGS:
            raise self.fail(f"unknown special register {self.name!r}")
        self.same(self.result_type(), I32, "result")


INT_BINARY = ("add", "sub", "mul", "sdiv", "udiv", "srem", "urem", "and", "or", "xor", "shl", "lshr", "ashr",
              "smin", "smax", "umin", "umax", "mulhi.s", "mulhi.u")  # fmt: skip
FLOAT_BINARY = ("fadd", "fsub", "fmul", "fdiv", "fmin", "fmax")


@dataclass(frozen=True, eq=False)
class Binary(Op):
    """``result = a <op> b`` on equal types (ints, floats or vectors of them, lane by lane).

    ``and``/``or``/``xor`` also combine predicates.  Integer ops are LLVM's: ``shl``/``lshr``/``ashr`` by >= the bit width are
    undefined (the lowering masks the amount); ``sdiv``/``srem`` truncate
    toward zero; division by zero is undefined.  ``mulhi.s``/``mulhi.u`` give
    the high half of the double-width product.  ``fmin``/``fmax`` return the
    non-NaN operand (PTX ``min.f32``).
    """

    result: Reg
    op: str
    a: Operand
    b: Operand
    opname = "binary"
    result_fields, operand_fields = ("result",), ("a", "b")

    def __post_init__(self) -> None:
        t = self.agree("a", "b")
        self.same(self.result_type(), t, "result")
        self.known(self.op, INT_BINARY + FLOAT_BINARY, "binary op")
        if self.op in INT_BINARY and not (is_int_like(t) or t == PRED and self.op in ("and", "or", "xor")):
            raise self.fail(f"{self.op} needs integer operands, got {t}")
        if self.op in FLOAT_BINARY and not is_float_like(t):
            raise self.fail(f"{self.op} needs float operands, got {t}")


INT_UNARY = ("not", "neg", "abs", "popc", "clz", "brev")
FLOAT_UNARY = ("fneg", "fabs", "sqrt", "frint", "ftrunc", "ffloor", "fceil")  # frint: ties to even
APPROX_UNARY = ("exp2.approx", "log2.approx", "rsqrt.approx")  # f32 only: ex2/lg2/rsqrt.approx.f32


@dataclass(frozen=True, eq=False)
class Unary(Op):
    """``result = op(x)``.  ``sqrt`` is IEEE (``sqrt.rn``); ``*.approx`` are PTX's approximate f32 units."""

    result: Reg
    op: str
    x: Operand
    opname = "unary"
    result_fields, operand_fields = ("result",), ("x",)

    def __post_init__(self) -> None:
        t = self.want(self.x, "x")
        self.same(self.result_type(), t, "result")
        self.known(self.op, INT_UNARY + FLOAT_UNARY + APPROX_UNARY, "unary op")
        if self.op in INT_UNARY:
            ok = is_int_like(t) or t == PRED and self.op == "not"
        elif self.op in FLOAT_UNARY:
            ok = is_float_like(t)
        else:
            ok = t == F32
        if not ok:
            raise self.fail(f"{self.op} does not take {t}")


@dataclass(frozen=True, eq=False)
class Fma(Op):
    """``result = a * b + c`` rounded once (``fma.rn``), floats or float vectors."""

    result: Reg
    a: Operand
    b: Operand
    c: Operand
    opname = "fma"
    result_fields, operand_fields = ("result",), ("a", "b", "c")

    def __post_init__(self) -> None:
        t = self.agree("a", "b", "c")
        if not is_float_like(t):
            raise self.fail(f"fma needs float operands, got {t}")
        self.same(self.result_type(), t, "result")


ICMP = ("eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge")
FCMP = ("oeq", "one", "olt", "ole", "ogt", "oge", "ord", "ueq", "une", "ult", "ule", "ugt", "uge", "uno")


@dataclass(frozen=True, eq=False)
class Cmp(Op):
    """``result: pred = a <pred> b``: ``icmp`` predicates on ints, ``fcmp`` (ordered ``o*`` / unordered ``u*``) on floats."""

    result: Reg
    pred: str
    a: Operand
    b: Operand
    opname = "cmp"
    result_fields, operand_fields = ("result",), ("a", "b")

    def __post_init__(self) -> None:
        t = self.agree("a", "b")
        self.same(self.result_type(), PRED, "result")
        if not isinstance(t, ScalarType) or t.is_pred and self.pred not in ("eq", "ne"):
            raise self.fail(f"cannot compare {t} with {self.pred}")
        if self.pred not in (FCMP if t.is_float else ICMP):
            raise self.fail(f"{self.kind} has no predicate {self.pred!r}")

    @property
    def kind(self) -> str:
        return "fcmp" if self.a.type.is_float else "icmp"


@dataclass(frozen=True, eq=False)
class Select(Op):
    """``result = cond ? a : b`` (PTX ``selp``)."""

    result: Reg
    cond: Operand
    a: Operand
    b: Operand
    opname = "select"
    result_fields, operand_fields = ("result",), ("cond", "a", "b")

    def __post_init__(self) -> None:
        self.expect(PRED, "cond")
        t = self.agree("a", "b")
        self.same(self.result_type(), t, "result")


CASTS = ("trunc", "zext", "sext", "fptrunc", "fpext", "sitofp", "uitofp", "fptosi.sat", "fptoui.sat", "bitcast",
         "ptrtoint")  # fmt: skip


def _converts(kind: str, s: ScalarType, d: ScalarType) -> bool:
    """Whether the scalar cast ``kind`` takes ``s`` to ``d`` (LLVM's rules for each cast instruction)."""
    int_or_pred = s.is_int or s.is_pred
    return {
        "trunc": s.is_int and (d.is_int or d.is_pred) and d.bits < s.bits,
        "zext": int_or_pred and d.is_int and d.bits > s.bits,
        "sext": int_or_pred and d.is_int and d.bits > s.bits,
        "fptrunc": s.is_float and d.is_float and d.bits < s.bits,
        "fpext": s.is_float and d.is_float and d.bits > s.bits,
        "sitofp": s.is_int and d.is_float,
        "uitofp": int_or_pred and d.is_float,
        "fptosi.sat": s.is_float and d.is_int,
        "fptoui.sat": s.is_float and d.is_int,
    }[kind]


@dataclass(frozen=True, eq=False)
class Cast(Op):
    """Convert ``x`` to the result type.

    ``fptrunc``/``sitofp``/``uitofp`` round to nearest even; ``fptosi.sat`` /
    ``fptoui.sat`` truncate toward zero and clamp to the range, NaN giving 0
    (PTX ``cvt.rzi.sat``); ``bitcast`` keeps the bits (equal widths, vectors included);
    ``ptrtoint`` gives a pointer's address as an i64 (shared: the offset in the window).
    """

    result: Reg
    kind: str
    x: Operand
    opname = "cast"
    result_fields, operand_fields = ("result",), ("x",)

    def __post_init__(self) -> None:
        s = self.want(self.x, "x")
        d = self.result_type()
        self.known(self.kind, CASTS, "cast")
        if self.kind == "ptrtoint":  # the address as a number (alignment tests): global/local are 64-bit
            if not isinstance(s, PtrType) or d != I64:
                raise self.fail(f"ptrtoint converts a pointer to i64, got {s} -> {d}")
        elif self.kind == "bitcast":
            if isinstance(s, PtrType) or isinstance(d, PtrType) or s.bits != d.bits or s.is_pred:
                raise self.fail(f"bitcast {s} -> {d} needs equal widths and no pointers/predicates")
        elif not isinstance(s, ScalarType) or not isinstance(d, ScalarType):
            raise self.fail(f"{self.kind} converts scalars, got {s} -> {d}")
        elif not _converts(self.kind, s, d):
            raise self.fail(f"{self.kind} cannot convert {s} to {d}")


@dataclass(frozen=True, eq=False)
class Pack(Op):
    """Build a vector from its lanes, lane 0 first."""

    result: Reg
    elems: tuple[Operand, ...]
    opname = "pack"
    result_fields, operand_fields = ("result",), ("elems",)

    def __post_init__(self) -> None:
        t = self.result_type()
        if not isinstance(t, VectorType):
            raise self.fail(f"result must be a vector, got {t}")
        if not isinstance(self.elems, tuple) or len(self.elems) != t.count:
            raise self.fail(f"{t} needs {t.count} lanes, got {len(self.elems) if isinstance(self.elems, tuple) else self.elems!r}")
        for i, e in enumerate(self.elems):
            self.same(self.want(e, f"lane {i}"), t.elem, f"lane {i}")


@dataclass(frozen=True, eq=False)
class Extract(Op):
    """``result = vec[index]`` with a constant lane index."""

    result: Reg
    vec: Operand
    index: int
    opname = "extract"
    result_fields, operand_fields = ("result",), ("vec",)

    def __post_init__(self) -> None:
        t = self.want(self.vec, "vec")
        if not isinstance(t, VectorType):
            raise self.fail(f"operand must be a vector, got {t}")
        if not isinstance(self.index, int) or not 0 <= self.index < t.count:
            raise self.fail(f"lane {self.index!r} is out of range for {t}")
        self.same(self.result_type(), t.elem, "result")
