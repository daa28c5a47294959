"""SIMT memory ops: address arithmetic, loads and stores, atomics, asynchronous copies.

Per-thread, except that ``cp_async_commit`` / ``cp_async_wait`` act on the
thread's own groups of copies (PTX ``cp.async.commit_group`` /
``wait_group``).  Re-exported by :mod:`lowbit.ir.simt.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.simt.base import Op, check_access
from lowbit.ir.simt.types import F32, I32, I64, PRED, Const, Operand, PtrType, Reg, ScalarType, Space, Type, VectorType

__all__ = ["ATOMIC_BITS", "ATOMIC_KINDS", "L1_EVICTION", "L2_PRIORITIES", "PREFETCH_SIZES", "Atomic", "AtomicAdd",
           "AtomicBits", "CpAsync", "CpAsyncCommit", "CpAsyncWait", "CreatePolicy", "Gep", "Load", "SharedAddr",
           "Store"]  # fmt: skip

#: Cache hints (PTX ISA 9.7.9.8 ld, 9.7.9.25 cp.async, 9.7.9.17 createpolicy): L1 eviction priorities,
#: the L2 priorities a ``createpolicy.fractional`` policy can carry, L2 prefetch sizes in bytes.
L1_EVICTION = ("evict_normal", "evict_unchanged", "evict_first", "evict_last", "no_allocate")
L2_PRIORITIES = ("evict_normal", "evict_first", "evict_last", "evict_unchanged")
PREFETCH_SIZES = (0, 64, 128, 256)


def _check_hints(op: Op, l1: str, policy: Operand | None, prefetch: int) -> None:
    if l1 and l1 not in L1_EVICTION:
        raise op.fail(f"unknown L1 eviction priority {l1!r} (one of {', '.join(L1_EVICTION)})")
    if policy is not None and op.want(policy, "policy") != I64:
        raise op.fail(f"a cache policy is an i64 register (createpolicy), got {policy.type}")
    if prefetch not in PREFETCH_SIZES:
        raise op.fail(f"L2 prefetch size must be 64, 128 or 256 bytes, got {prefetch!r}")


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
    result_fields, operand_fields = ("result",), ("base", "index")

    def __post_init__(self) -> None:
        b = self.want(self.base, "base")
        if not isinstance(b, PtrType):
            raise self.fail(f"base must be a pointer, got {b}")
        if self.want(self.index, "index") not in (I32, I64):
            raise self.fail(f"index must be i32 or i64, got {self.index.type}")
        if not isinstance(self.elem, (ScalarType, VectorType)) or self.elem == PRED:
            raise self.fail(f"element type must be a non-predicate scalar or vector, got {self.elem!r}")
        self.same(self.result_type(), b, "result")


@dataclass(frozen=True, eq=False)
class SharedAddr(Op):
    """The address of the kernel's shared buffer ``@buffer`` (static or dynamic)."""

    result: Reg
    buffer: str
    opname = "shared_addr"
    result_fields = ("result",)

    def __post_init__(self) -> None:
        self.same(self.result_type(), PtrType(Space.SHARED), "result")
        if not isinstance(self.buffer, str) or not self.buffer:
            raise self.fail(f"buffer name must be a string, got {self.buffer!r}")


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
    l1: str = ""
    policy: Operand | None = None
    prefetch: int = 0
    opname = "load"
    result_fields, operand_fields = ("result",), ("ptr", "mask", "other", "policy")

    def __post_init__(self) -> None:
        t = self.result_type()
        check_access(self, self.ptr, t, self.align)
        if (self.mask is None) != (self.other is None):
            raise self.fail("a masked load needs both mask and other")
        if self.mask is not None:
            self.expect(PRED, "mask")
            self.expect(t, "other")
        _check_hints(self, self.l1, self.policy, self.prefetch)
        if self.hinted and self.ptr.type != PtrType(Space.GLOBAL):
            raise self.fail("cache hints (l1, policy, prefetch) apply to global loads only")

    @property
    def hinted(self) -> bool:
        return bool(self.l1) or self.policy is not None or bool(self.prefetch)


@dataclass(frozen=True, eq=False)
class Store(Op):
    """``*ptr = value`` where ``mask`` (if any) is true."""

    ptr: Operand
    value: Operand
    align: int
    mask: Operand | None = None
    opname = "store"
    operand_fields = ("ptr", "value", "mask")

    def __post_init__(self) -> None:
        check_access(self, self.ptr, self.want(self.value, "value"), self.align)
        if self.mask is not None:
            self.expect(PRED, "mask")


class _Atomic(Op):
    """What the atomics share: ``result = old *ptr`` of the value's type, through a global or shared pointer."""

    result_fields, operand_fields = ("result",), ("ptr", "value")

    def check(self, types: tuple[Type, ...], what: str) -> None:
        t = self.want(self.value, "value")  # type: ignore[attr-defined]
        if t not in types:
            raise self.fail(f"{what}, got {t}")
        p = self.want(self.ptr, "address")  # type: ignore[attr-defined]
        if not isinstance(p, PtrType) or p.space is Space.LOCAL:
            raise self.fail(f"address must be a global or shared pointer, got {p}")
        self.same(self.result_type(), t, "result")


@dataclass(frozen=True, eq=False)
class AtomicAdd(_Atomic):
    """``result = atomic { old = *ptr; *ptr = old + value; old }`` (relaxed, device scope): i32/f32."""

    result: Reg
    ptr: Operand
    value: Operand
    opname = "atomic_add"

    def __post_init__(self) -> None:
        self.check((I32, I64, F32), "atomic add takes i32, i64 or f32")


ATOMIC_BITS = ("and", "or")


@dataclass(frozen=True, eq=False)
class AtomicBits(_Atomic):
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
        self.known(self.kind, ATOMIC_BITS, "atomic bit operation", listed=True)
        self.check((I32, I64), f"atomic {self.kind} takes i32 or i64")


@dataclass(frozen=True, eq=False)
class CpAsync(Op):
    """Start copying ``size`` bytes global ``src`` -> shared ``dst`` (PTX ``cp.async.{ca,cg}``).

    ``src_size`` (an i32 register or constant, 0..size) reads only that many
    bytes and zero-fills the rest; 0 reads nothing, which is how a masked-off
    copy is written.  ``ignore_src`` (a predicate, PTX ISA 7.5's ``ignore-src``
    operand) is the all-or-nothing form: where it is true nothing is read and
    all ``size`` bytes are zero-filled, else all are copied; it takes no
    ``src_size``.  ``cg`` (bypass L1) exists only for 16 bytes.
    """

    dst: Operand
    src: Operand
    size: int
    cache: str = "cg"
    src_size: Operand | None = None
    policy: Operand | None = None
    prefetch: int = 0
    ignore_src: Operand | None = None
    opname = "cp_async"
    operand_fields = ("dst", "src", "src_size", "policy", "ignore_src")

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
            self.expect(I32, "src_size")
            if isinstance(self.src_size, Const) and not 0 <= self.src_size.value <= self.size:
                raise self.fail(f"src_size {self.src_size.value} is outside 0..{self.size}")
        if self.ignore_src is not None:
            if self.src_size is not None:
                raise self.fail("ignore_src and src_size exclude each other (ignore_src copies all or nothing)")
            if self.want(self.ignore_src, "ignore_src") != PRED:
                raise self.fail(f"ignore_src must be a predicate, got {self.ignore_src.type}")
        _check_hints(self, "", self.policy, self.prefetch)


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
class CreatePolicy(Op):
    """An L2 cache policy (i64) giving every line it is used with eviction priority ``priority``.

    PTX ``createpolicy.fractional.L2::<priority>.b64 r, 1.0`` (9.7.9.17); loads and cp.async pass it with
    ``.L2::cache_hint``.
    """

    result: Reg
    priority: str
    opname = "createpolicy"
    result_fields = ("result",)

    def __post_init__(self) -> None:
        self.known(self.priority, L2_PRIORITIES, "L2 eviction priority", listed=True)
        self.same(self.result_type(), I64, "result")


#: kind -> the value register type per element type (f16x2: two f16 in an i32, the bits as loaded)
ATOMIC_KINDS = {
    "add": {"s32": I32, "u32": I32, "f32": F32, "f16": ScalarType("f16"), "f16x2": I32},
    "max": {"s32": I32, "u32": I32},
    "min": {"s32": I32, "u32": I32},
    "cas": {"b32": I32},
}


@dataclass(frozen=True, eq=False)
class Atomic(Op):
    """``result = atomic { old = *ptr; *ptr = old <kind> value; old }`` (relaxed, gpu scope; global or shared).

    ``type`` is the PTX element type (``s32``, ``u32``, ``f32``, ``f16``, ``f16x2``; ``b32`` for ``cas``,
    which also takes ``compare``: ``*ptr = old == compare ? value : old``).  f16 and f16x2 adds are
    ``.noftz``; f32 adds on global memory flush subnormals (PTX ISA 9.7.13.5).
    """

    result: Reg
    kind: str
    type: str
    ptr: Operand
    value: Operand
    compare: Operand | None = None
    opname = "atom"
    result_fields, operand_fields = ("result",), ("ptr", "compare", "value")

    def __post_init__(self) -> None:
        self.known(self.kind, tuple(ATOMIC_KINDS), "atomic operation", listed=True)
        self.known(self.type, tuple(ATOMIC_KINDS[self.kind]), f"atomic {self.kind} type", listed=True)
        t = ATOMIC_KINDS[self.kind][self.type]
        self.expect(t, "value")
        p = self.want(self.ptr, "address")
        if not isinstance(p, PtrType) or p.space is Space.LOCAL:
            raise self.fail(f"address must be a global or shared pointer, got {p}")
        if (self.compare is not None) != (self.kind == "cas"):
            raise self.fail("cas takes a compare operand, and only cas")
        if self.compare is not None:
            self.expect(t, "compare")
        self.same(self.result_type(), t, "result")
