"""SIMT instructions: one frozen dataclass per op, each checking its own operand types.

Every op is per-thread unless it says otherwise (``shfl``, ``vote``,
``barrier`` and the ``cp_async`` group ops involve the warp or the block).
Constructors raise :class:`~lowbit.errors.IRError` naming the op, so an
ill-typed op cannot exist; what one op cannot see (SSA definitions, scoping,
yields against results, shared-buffer names) the verifier checks.

The instruction-selection ops (``lop3``, ``prmt``, ``cvt_pack``,
``cvt_unpack``, ``call`` of an NVVM intrinsic) exist so that every choice is
made by a transform and is visible here: codegen translates each op to one
LLVM instruction, intrinsic call or inline-asm statement and decides nothing.
Structured control flow (:class:`For`, :class:`If`) lives in
:mod:`lowbit.ir.simt.control`.  The text form of each op is in
``docs/simt.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.errors import IRError
from lowbit.ir.simt.types import (
    F16,
    F32,
    I16,
    I32,
    I64,
    PRED,
    BF16,
    Const,
    Operand,
    PtrType,
    Reg,
    ScalarType,
    Space,
    Type,
    VectorType,
)


@dataclass(frozen=True, eq=False)
class Op:
    """Base of all SIMT instructions (compared by identity)."""

    opname = "op"

    @property
    def results(self) -> tuple[Reg, ...]:
        return ()

    @property
    def operands(self) -> tuple[Operand, ...]:
        return ()

    def fail(self, message: str) -> IRError:
        return IRError(f"simt {self.opname}: {message}")

    def want(self, v: object, what: str) -> Type:
        if not isinstance(v, (Reg, Const)):
            raise self.fail(f"{what} must be a register or constant, got {type(v).__name__}")
        return v.type

    def want_reg(self, v: object, what: str) -> Reg:
        if not isinstance(v, Reg):
            raise self.fail(f"{what} must be a register, got {type(v).__name__}")
        return v

    def same(self, a: Type, b: Type, what: str) -> None:
        if a != b:
            raise self.fail(f"{what}: {a} and {b} differ")


def _is_int_like(t: Type) -> bool:
    return isinstance(t, (ScalarType, VectorType)) and t.is_int


def _is_float_like(t: Type) -> bool:
    return isinstance(t, (ScalarType, VectorType)) and t.is_float


SREGS = tuple(f"{r}.{c}" for r in ("tid", "ntid", "ctaid", "nctaid") for c in "xyz") + ("laneid", "warpid")


@dataclass(frozen=True, eq=False)
class SReg(Op):
    """Read a special register (``tid.x``, ``ctaid.y``, ``laneid``...): an i32."""

    result: Reg
    name: str
    opname = "sreg"

    def __post_init__(self) -> None:
        if self.name not in SREGS:
            raise self.fail(f"unknown special register {self.name!r}")
        self.same(self.want_reg(self.result, "result").type, I32, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)


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

    def __post_init__(self) -> None:
        t = self.want(self.a, "a")
        self.same(t, self.want(self.b, "b"), "operands")
        self.same(self.want_reg(self.result, "result").type, t, "result")
        if self.op in INT_BINARY:
            if not (_is_int_like(t) or t == PRED and self.op in ("and", "or", "xor")):
                raise self.fail(f"{self.op} needs integer operands, got {t}")
        elif self.op in FLOAT_BINARY:
            if not _is_float_like(t):
                raise self.fail(f"{self.op} needs float operands, got {t}")
        else:
            raise self.fail(f"unknown binary op {self.op!r}")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.a, self.b)


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

    def __post_init__(self) -> None:
        t = self.want(self.x, "x")
        self.same(self.want_reg(self.result, "result").type, t, "result")
        if self.op in INT_UNARY:
            ok = _is_int_like(t) or t == PRED and self.op == "not"
        elif self.op in FLOAT_UNARY:
            ok = _is_float_like(t)
        elif self.op in APPROX_UNARY:
            ok = t == F32
        else:
            raise self.fail(f"unknown unary op {self.op!r}")
        if not ok:
            raise self.fail(f"{self.op} does not take {t}")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Fma(Op):
    """``result = a * b + c`` rounded once (``fma.rn``), floats or float vectors."""

    result: Reg
    a: Operand
    b: Operand
    c: Operand
    opname = "fma"

    def __post_init__(self) -> None:
        t = self.want(self.a, "a")
        if not _is_float_like(t):
            raise self.fail(f"fma needs float operands, got {t}")
        self.same(t, self.want(self.b, "b"), "operands")
        self.same(t, self.want(self.c, "c"), "operands")
        self.same(self.want_reg(self.result, "result").type, t, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.a, self.b, self.c)


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

    def __post_init__(self) -> None:
        t = self.want(self.a, "a")
        self.same(t, self.want(self.b, "b"), "operands")
        self.same(self.want_reg(self.result, "result").type, PRED, "result")
        if not isinstance(t, ScalarType) or t.is_pred and self.pred not in ("eq", "ne"):
            raise self.fail(f"cannot compare {t} with {self.pred}")
        allowed = FCMP if t.is_float else ICMP
        if self.pred not in allowed:
            raise self.fail(f"{'fcmp' if t.is_float else 'icmp'} has no predicate {self.pred!r}")

    @property
    def kind(self) -> str:
        return "fcmp" if self.a.type.is_float else "icmp"

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.a, self.b)


@dataclass(frozen=True, eq=False)
class Select(Op):
    """``result = cond ? a : b`` (PTX ``selp``)."""

    result: Reg
    cond: Operand
    a: Operand
    b: Operand
    opname = "select"

    def __post_init__(self) -> None:
        self.same(self.want(self.cond, "cond"), PRED, "cond")
        t = self.want(self.a, "a")
        self.same(t, self.want(self.b, "b"), "operands")
        self.same(self.want_reg(self.result, "result").type, t, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.cond, self.a, self.b)


CASTS = ("trunc", "zext", "sext", "fptrunc", "fpext", "sitofp", "uitofp", "fptosi.sat", "fptoui.sat", "bitcast",
         "ptrtoint")  # fmt: skip


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

    def __post_init__(self) -> None:
        s = self.want(self.x, "x")
        d = self.want_reg(self.result, "result").type
        if self.kind not in CASTS:
            raise self.fail(f"unknown cast {self.kind!r}")
        if self.kind == "ptrtoint":  # the address as a number (alignment tests): global/local are 64-bit
            if not isinstance(s, PtrType) or d != I64:
                raise self.fail(f"ptrtoint converts a pointer to i64, got {s} -> {d}")
            return
        if self.kind == "bitcast":
            if isinstance(s, PtrType) or isinstance(d, PtrType) or s.bits != d.bits or s.is_pred:
                raise self.fail(f"bitcast {s} -> {d} needs equal widths and no pointers/predicates")
            return
        if not isinstance(s, ScalarType) or not isinstance(d, ScalarType):
            raise self.fail(f"{self.kind} converts scalars, got {s} -> {d}")
        ok = {
            "trunc": s.is_int and (d.is_int or d.is_pred) and d.bits < s.bits,
            "zext": (s.is_int or s.is_pred) and d.is_int and d.bits > s.bits,
            "sext": (s.is_int or s.is_pred) and d.is_int and d.bits > s.bits,
            "fptrunc": s.is_float and d.is_float and d.bits < s.bits,
            "fpext": s.is_float and d.is_float and d.bits > s.bits,
            "sitofp": s.is_int and d.is_float,
            "uitofp": (s.is_int or s.is_pred) and d.is_float,
            "fptosi.sat": s.is_float and d.is_int,
            "fptoui.sat": s.is_float and d.is_int,
        }[self.kind]
        if not ok:
            raise self.fail(f"{self.kind} cannot convert {s} to {d}")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Pack(Op):
    """Build a vector from its lanes, lane 0 first."""

    result: Reg
    elems: tuple[Operand, ...]
    opname = "pack"

    def __post_init__(self) -> None:
        t = self.want_reg(self.result, "result").type
        if not isinstance(t, VectorType):
            raise self.fail(f"result must be a vector, got {t}")
        if not isinstance(self.elems, tuple) or len(self.elems) != t.count:
            raise self.fail(f"{t} needs {t.count} lanes, got {len(self.elems) if isinstance(self.elems, tuple) else self.elems!r}")
        for i, e in enumerate(self.elems):
            self.same(self.want(e, f"lane {i}"), t.elem, f"lane {i}")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return self.elems


@dataclass(frozen=True, eq=False)
class Extract(Op):
    """``result = vec[index]`` with a constant lane index."""

    result: Reg
    vec: Operand
    index: int
    opname = "extract"

    def __post_init__(self) -> None:
        t = self.want(self.vec, "vec")
        if not isinstance(t, VectorType):
            raise self.fail(f"operand must be a vector, got {t}")
        if not isinstance(self.index, int) or not 0 <= self.index < t.count:
            raise self.fail(f"lane {self.index!r} is out of range for {t}")
        self.same(self.want_reg(self.result, "result").type, t.elem, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.vec,)


# --------------------------------------------------------------------------- addresses and memory


@dataclass(frozen=True, eq=False)
class Gep(Op):
    """``result = base + index * sizeof(elem)`` bytes; an i32 index is sign-extended first.

    Offsets that can pass 2^31 bytes must be computed in i64 by the lowering.
    """

    result: Reg
    base: Operand
    index: Operand
    elem: Type
    opname = "gep"

    def __post_init__(self) -> None:
        b = self.want(self.base, "base")
        if not isinstance(b, PtrType):
            raise self.fail(f"base must be a pointer, got {b}")
        if self.want(self.index, "index") not in (I32, I64):
            raise self.fail(f"index must be i32 or i64, got {self.index.type}")
        if not isinstance(self.elem, (ScalarType, VectorType)) or self.elem == PRED:
            raise self.fail(f"element type must be a non-predicate scalar or vector, got {self.elem!r}")
        self.same(self.want_reg(self.result, "result").type, b, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.base, self.index)


@dataclass(frozen=True, eq=False)
class SharedAddr(Op):
    """The address of the kernel's shared buffer ``@buffer`` (static or dynamic)."""

    result: Reg
    buffer: str
    opname = "shared_addr"

    def __post_init__(self) -> None:
        self.same(self.want_reg(self.result, "result").type, PtrType(Space.SHARED), "result")
        if not isinstance(self.buffer, str) or not self.buffer:
            raise self.fail(f"buffer name must be a string, got {self.buffer!r}")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)


def _check_access(op: Op, ptr: Operand, t: Type, align: int) -> None:
    p = op.want(ptr, "address")
    if not isinstance(p, PtrType):
        raise op.fail(f"address must be a pointer, got {p}")
    if not isinstance(t, (ScalarType, VectorType)) or t == PRED:
        raise op.fail(f"cannot access memory as {t}")
    if not isinstance(align, int) or align < 1 or align & (align - 1) or align > 16:
        raise op.fail(f"align must be a power of two from 1 to 16, got {align!r}")


@dataclass(frozen=True, eq=False)
class Load(Op):
    """``result = *ptr`` (``align`` bytes guaranteed), or ``other`` where ``mask`` is false.

    With a mask, a masked-off thread does not touch memory (the address may
    be out of bounds): PTX ``@p ld``.  Vector results are one vector access
    (``ld.v4.b32`` for i32x4).
    """

    result: Reg
    ptr: Operand
    align: int
    mask: Operand | None = None
    other: Operand | None = None
    opname = "load"

    def __post_init__(self) -> None:
        t = self.want_reg(self.result, "result").type
        _check_access(self, self.ptr, t, self.align)
        if (self.mask is None) != (self.other is None):
            raise self.fail("a masked load needs both mask and other")
        if self.mask is not None:
            self.same(self.want(self.mask, "mask"), PRED, "mask")
            self.same(self.want(self.other, "other"), t, "other")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.ptr,) + (() if self.mask is None else (self.mask, self.other))


@dataclass(frozen=True, eq=False)
class Store(Op):
    """``*ptr = value`` where ``mask`` (if any) is true."""

    ptr: Operand
    value: Operand
    align: int
    mask: Operand | None = None
    opname = "store"

    def __post_init__(self) -> None:
        _check_access(self, self.ptr, self.want(self.value, "value"), self.align)
        if self.mask is not None:
            self.same(self.want(self.mask, "mask"), PRED, "mask")

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.ptr, self.value) + (() if self.mask is None else (self.mask,))


@dataclass(frozen=True, eq=False)
class AtomicAdd(Op):
    """``result = atomic { old = *ptr; *ptr = old + value; old }`` (relaxed, device scope): i32/f32."""

    result: Reg
    ptr: Operand
    value: Operand
    opname = "atomic_add"

    def __post_init__(self) -> None:
        t = self.want(self.value, "value")
        if t not in (I32, I64, F32):
            raise self.fail(f"atomic add takes i32, i64 or f32, got {t}")
        p = self.want(self.ptr, "address")
        if not isinstance(p, PtrType) or p.space is Space.LOCAL:
            raise self.fail(f"address must be a global or shared pointer, got {p}")
        self.same(self.want_reg(self.result, "result").type, t, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.ptr, self.value)


ATOMIC_BITS = ("and", "or")


@dataclass(frozen=True, eq=False)
class AtomicBits(Op):
    """``result = atomic { old = *ptr; *ptr = old <kind> value; old }`` for ``kind`` in ``and``/``or``: i32/i64.

    Relaxed, device scope, global or shared (PTX ``atom.<space>.{and,or}.b32``).
    These are what a sub-byte global store is made of: for every word it
    touches, ``atomic_and(word, ~mask)`` then ``atomic_or(word, bits)``.  Two
    such pairs from different threads (or blocks) on one word interleave
    safely because their masks are disjoint: each atomic changes only its own
    thread's bits, so whatever the order, every thread's bits end as that
    thread's and-then-or left them and the other bits are untouched.  A plain
    load/modify/store would instead write back a neighbour's stale bits.
    A compare-and-swap loop would also be correct but needs a loop, a retry
    under contention and one more register per word; two unconditional
    atomics (``red`` when the result is unused) are shorter and exist on every
    target for 32-bit global words.
    """

    result: Reg
    kind: str
    ptr: Operand
    value: Operand
    opname = "atomic_bits"

    def __post_init__(self) -> None:
        if self.kind not in ATOMIC_BITS:
            raise self.fail(f"unknown atomic bit operation {self.kind!r} (one of {', '.join(ATOMIC_BITS)})")
        t = self.want(self.value, "value")
        if t not in (I32, I64):
            raise self.fail(f"atomic {self.kind} takes i32 or i64, got {t}")
        p = self.want(self.ptr, "address")
        if not isinstance(p, PtrType) or p.space is Space.LOCAL:
            raise self.fail(f"address must be a global or shared pointer, got {p}")
        self.same(self.want_reg(self.result, "result").type, t, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.ptr, self.value)


@dataclass(frozen=True, eq=False)
class CpAsync(Op):
    """Start copying ``size`` bytes global ``src`` -> shared ``dst`` (PTX ``cp.async.{ca,cg}``).

    ``src_size`` (an i32 register or constant, 0..size) reads only that many
    bytes and zero-fills the rest; 0 reads nothing, which is how a masked-off
    copy is written.  ``cg`` (bypass L1) exists only for 16 bytes.
    """

    dst: Operand
    src: Operand
    size: int
    cache: str = "cg"
    src_size: Operand | None = None
    opname = "cp_async"

    def __post_init__(self) -> None:
        if self.want(self.dst, "dst") != PtrType(Space.SHARED):
            raise self.fail(f"dst must be a shared pointer, got {self.dst.type}")
        if self.want(self.src, "src") != PtrType(Space.GLOBAL):
            raise self.fail(f"src must be a global pointer, got {self.src.type}")
        if self.size not in (4, 8, 16):
            raise self.fail(f"size must be 4, 8 or 16 bytes, got {self.size!r}")
        if self.cache not in ("ca", "cg") or self.cache == "cg" and self.size != 16:
            raise self.fail(f"cache {self.cache!r} with {self.size} bytes: cg needs 16, ca takes 4/8/16")
        if self.src_size is not None:
            self.same(self.want(self.src_size, "src_size"), I32, "src_size")
            if isinstance(self.src_size, Const) and not 0 <= self.src_size.value <= self.size:
                raise self.fail(f"src_size {self.src_size.value} is outside 0..{self.size}")

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.dst, self.src) + (() if self.src_size is None else (self.src_size,))


@dataclass(frozen=True, eq=False)
class CpAsyncCommit(Op):
    """Close the group of this thread's cp.async issued since the last commit."""

    opname = "cp_async_commit"


@dataclass(frozen=True, eq=False)
class CpAsyncWait(Op):
    """Wait until at most ``pending`` of this thread's committed groups are in flight."""

    pending: int
    opname = "cp_async_wait"

    def __post_init__(self) -> None:
        if not isinstance(self.pending, int) or not 0 <= self.pending < 8:
            raise self.fail(f"pending must be an int in 0..7, got {self.pending!r}")


@dataclass(frozen=True, eq=False)
class Barrier(Op):
    """Block-wide barrier (``bar.sync 0``): every thread of the block must reach it."""

    opname = "barrier"


# --------------------------------------------------------------------------- warp collectives

SHFL_MODES = ("idx", "up", "down", "bfly")
VOTE_MODES = ("all", "any", "uni", "ballot")


@dataclass(frozen=True, eq=False)
class Shfl(Op):
    """``shfl.sync.<mode>.b32``: ``lane`` is the source lane / delta / xor mask, ``clamp`` PTX's ``c`` operand."""

    result: Reg
    mode: str
    value: Operand
    lane: Operand
    clamp: Operand
    member_mask: Operand
    opname = "shfl"

    def __post_init__(self) -> None:
        if self.mode not in SHFL_MODES:
            raise self.fail(f"unknown shuffle mode {self.mode!r}")
        t = self.want(self.value, "value")
        if t not in (I32, F32):
            raise self.fail(f"shuffles move i32 or f32, got {t}")
        for what in ("lane", "clamp", "member_mask"):
            self.same(self.want(getattr(self, what), what), I32, what)
        self.same(self.want_reg(self.result, "result").type, t, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.value, self.lane, self.clamp, self.member_mask)


@dataclass(frozen=True, eq=False)
class Vote(Op):
    """``vote.sync.<mode>``: ``ballot`` gives an i32 of lane bits, the others a pred."""

    result: Reg
    mode: str
    pred: Operand
    member_mask: Operand
    opname = "vote"

    def __post_init__(self) -> None:
        if self.mode not in VOTE_MODES:
            raise self.fail(f"unknown vote mode {self.mode!r}")
        self.same(self.want(self.pred, "pred"), PRED, "pred")
        self.same(self.want(self.member_mask, "member_mask"), I32, "member_mask")
        self.same(self.want_reg(self.result, "result").type, I32 if self.mode == "ballot" else PRED, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.pred, self.member_mask)


# --------------------------------------------------------------------------- instruction selection


@dataclass(frozen=True, eq=False)
class Lop3(Op):
    """``lop3.b32 result, a, b, c, lut``: any 3-input bitwise function, ``lut`` = f(0xF0, 0xCC, 0xAA)."""

    result: Reg
    a: Operand
    b: Operand
    c: Operand
    lut: int
    opname = "lop3"

    def __post_init__(self) -> None:
        for what in ("a", "b", "c"):
            self.same(self.want(getattr(self, what), what), I32, what)
        if not isinstance(self.lut, int) or not 0 <= self.lut <= 0xFF:
            raise self.fail(f"lut must be an int in 0..255, got {self.lut!r}")
        self.same(self.want_reg(self.result, "result").type, I32, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.a, self.b, self.c)


@dataclass(frozen=True, eq=False)
class Prmt(Op):
    """``prmt.b32 result, a, b, selector``: pick 4 bytes of the 8 bytes {b, a} (default mode)."""

    result: Reg
    a: Operand
    b: Operand
    selector: Operand
    opname = "prmt"

    def __post_init__(self) -> None:
        for what in ("a", "b", "selector"):
            self.same(self.want(getattr(self, what), what), I32, what)
        self.same(self.want_reg(self.result, "result").type, I32, "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.a, self.b, self.selector)


# kind -> (result type, arch feature or None)
CVT_PACK = {
    "f16x2.rn": (VectorType(F16, 2), "cvt.f16x2"),
    "bf16x2.rn": (VectorType(BF16, 2), "cvt.f16x2"),
    "e4m3x2.rn": (I16, "cvt.e4m3x2"),
    "e5m2x2.rn": (I16, "cvt.e4m3x2"),
}
CVT_UNPACK = {"e4m3x2.f16x2": VectorType(F16, 2), "e5m2x2.f16x2": VectorType(F16, 2)}


@dataclass(frozen=True, eq=False)
class CvtPack(Op):
    """Two f32 -> one packed pair (lane 0 from ``lo``): ``cvt.rn.f16x2.f32``, ``.bf16x2``, ``.satfinite.e4m3x2``..."""

    result: Reg
    kind: str
    lo: Operand
    hi: Operand
    opname = "cvt_pack"

    def __post_init__(self) -> None:
        if self.kind not in CVT_PACK:
            raise self.fail(f"unknown packed conversion {self.kind!r} (one of {', '.join(CVT_PACK)})")
        self.same(self.want(self.lo, "lo"), F32, "lo")
        self.same(self.want(self.hi, "hi"), F32, "hi")
        self.same(self.want_reg(self.result, "result").type, CVT_PACK[self.kind][0], "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.lo, self.hi)


@dataclass(frozen=True, eq=False)
class CvtUnpack(Op):
    """One packed 8-bit-float pair (i16, lane 0 in the low byte) -> f16x2: ``cvt.rn.f16x2.e4m3x2``."""

    result: Reg
    kind: str
    x: Operand
    opname = "cvt_unpack"

    def __post_init__(self) -> None:
        if self.kind not in CVT_UNPACK:
            raise self.fail(f"unknown packed conversion {self.kind!r} (one of {', '.join(CVT_UNPACK)})")
        self.same(self.want(self.x, "x"), I16, "x")
        self.same(self.want_reg(self.result, "result").type, CVT_UNPACK[self.kind], "result")

    @property
    def results(self) -> tuple[Reg, ...]:
        return (self.result,)

    @property
    def operands(self) -> tuple[Operand, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Call(Op):
    """Call NVVM intrinsic ``name`` (``llvm.nvvm.*``, checked against codegen's table per target).

    Several results mean the intrinsic returns a struct of those types
    (``ldmatrix`` x4: four i32; ``mma``: the D fragment).  This is also the
    seam for ``mma.sync`` / ``ldmatrix`` until they get ops of their own.
    """

    results_: tuple[Reg, ...]
    name: str
    args: tuple[Operand, ...]
    opname = "call"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.startswith("llvm.nvvm."):
            raise self.fail(f"only llvm.nvvm.* intrinsics may be called, got {self.name!r}")
        if not isinstance(self.results_, tuple) or not isinstance(self.args, tuple):
            raise self.fail("results and args must be tuples")
        for r in self.results_:
            if isinstance(self.want_reg(r, "result").type, PtrType):
                raise self.fail("intrinsic results cannot be pointers")
        for i, a in enumerate(self.args):
            self.want(a, f"argument {i}")

    @property
    def results(self) -> tuple[Reg, ...]:
        return self.results_

    @property
    def operands(self) -> tuple[Operand, ...]:
        return self.args
