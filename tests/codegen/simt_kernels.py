"""Hand-written SIMT kernels (text form) with numpy references, shared by the codegen tests.

Each :class:`Case` is one kernel: its SIMT text, how to build random inputs
for an odd size, the launch geometry, and an independent numpy reference.
Outputs are poisoned (NaN / a sentinel) before every run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

VADD = """\
// out[i] = x[i] + y[i] for i < n; the last block's tail threads do nothing
kernel @vadd(%x: ptr.global[f32], %y: ptr.global[f32], %out: ptr.global[f32], %n: i32) threads 128 {
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %base: i32 = mul %bid, 128:i32
  %i: i32 = add %base, %tid
  %ok: pred = icmp slt %i, %n
  %px: ptr.global = gep f32 %x, %i
  %a: f32 = load %px align 4 mask %ok else 0.0:f32
  %py: ptr.global = gep f32 %y, %i
  %b: f32 = load %py align 4 mask %ok else 0.0:f32
  %c: f32 = fadd %a, %b
  %po: ptr.global = gep f32 %out, %i
  store %po, %c align 4 mask %ok
}
"""

DOT = """\
// out[r] = sum_k a[r, k] * b[k]: one row per thread, a loop-carried f32 accumulator,
// row offsets in i64 (r * k can pass 2^31 elements)
kernel @rowdot(%a: ptr.global[f32], %b: ptr.global[f32], %out: ptr.global[f32], %rows: i32, %k: i32) threads 64 {
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %base: i32 = mul %bid, 64:i32
  %r: i32 = add %base, %tid
  %ok: pred = icmp slt %r, %rows
  if %ok {
    %r64: i64 = sext %r
    %k64: i64 = sext %k
    %off: i64 = mul %r64, %k64
    %row: ptr.global = gep f32 %a, %off
    %sum: f32 = for %j: i32 = 0:i32 to %k step 1:i32 iter(%acc: f32 = 0.0:f32) {
      %pa: ptr.global = gep f32 %row, %j
      %va: f32 = load %pa align 4
      %pb: ptr.global = gep f32 %b, %j
      %vb: f32 = load %pb align 4
      %acc2: f32 = fma %va, %vb, %acc
      yield %acc2
    }
    %po: ptr.global = gep f32 %out, %r
    store %po, %sum align 4
  }
}
"""

REVERSE = """\
// each block reverses its 128-element chunk through shared memory; the tail block's
// missing elements read as -1 and its out-of-range threads store nothing
kernel @block_reverse(%x: ptr.global[int32], %out: ptr.global[int32], %n: i32) threads 128 {
  shared @tile size 512 align 16
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %base: i32 = mul %bid, 128:i32
  %i: i32 = add %base, %tid
  %ok: pred = icmp slt %i, %n
  %px: ptr.global = gep i32 %x, %i
  %v: i32 = load %px align 4 mask %ok else -1:i32
  %sh: ptr.shared = shared_addr @tile
  %mine: ptr.shared = gep i32 %sh, %tid
  store %mine, %v align 4
  barrier
  %rt: i32 = sub 127:i32, %tid
  %theirs: ptr.shared = gep i32 %sh, %rt
  %w: i32 = load %theirs align 4
  %po: ptr.global = gep i32 %out, %i
  store %po, %w align 4 mask %ok
}
"""

BLOCK_SUM = """\
// out[block] = sum of the block's 256 inputs (missing ones are 0): butterfly shuffles within
// each warp, one partial per warp in shared memory, a barrier, then warp 0 reduces the partials
kernel @block_sum(%x: ptr.global[int32], %out: ptr.global[int32], %n: i32) threads 256 {
  shared @partial size 32 align 16
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %lane: i32 = sreg laneid
  %base: i32 = mul %bid, 256:i32
  %i: i32 = add %base, %tid
  %ok: pred = icmp slt %i, %n
  %px: ptr.global = gep i32 %x, %i
  %v: i32 = load %px align 4 mask %ok else 0:i32
  %s1: i32 = shfl.bfly %v, 16:i32, 31:i32, -1:i32
  %v1: i32 = add %v, %s1
  %s2: i32 = shfl.bfly %v1, 8:i32, 31:i32, -1:i32
  %v2: i32 = add %v1, %s2
  %s3: i32 = shfl.bfly %v2, 4:i32, 31:i32, -1:i32
  %v3: i32 = add %v2, %s3
  %s4: i32 = shfl.bfly %v3, 2:i32, 31:i32, -1:i32
  %v4: i32 = add %v3, %s4
  %s5: i32 = shfl.bfly %v4, 1:i32, 31:i32, -1:i32
  %v5: i32 = add %v4, %s5
  %warp: i32 = lshr %tid, 5:i32
  %sh: ptr.shared = shared_addr @partial
  %first: pred = icmp eq %lane, 0:i32
  %slot: ptr.shared = gep i32 %sh, %warp
  store %slot, %v5 align 4 mask %first
  barrier
  %w0: pred = icmp ult %tid, 32:i32
  if %w0 {
    %has: pred = icmp ult %lane, 8:i32
    %mine: ptr.shared = gep i32 %sh, %lane
    %p: i32 = load %mine align 4 mask %has else 0:i32
    %t1: i32 = shfl.down %p, 4:i32, 31:i32, -1:i32
    %p1: i32 = add %p, %t1
    %t2: i32 = shfl.down %p1, 2:i32, 31:i32, -1:i32
    %p2: i32 = add %p1, %t2
    %t3: i32 = shfl.down %p2, 1:i32, 31:i32, -1:i32
    %p3: i32 = add %p2, %t3
    %po: ptr.global = gep i32 %out, %bid
    store %po, %p3 align 4 mask %first
  }
}
"""

CP_ASYNC = """\
// 16-byte chunks global -> shared with cp.async (zero-filled past n), wait, barrier, then each
// thread writes the chunk of thread 63 - tid: out[4 t + e] = x[4 (63 - t) + e] (0 past n)
kernel @async_swap(%x: ptr.global[f32], %out: ptr.global[f32], %n: i32) threads 64 {
  shared @stage size 1024 align 16
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %base: i32 = mul %bid, 256:i32
  %t4: i32 = shl %tid, 2:i32
  %e0: i32 = add %base, %t4
  %left: i32 = sub %n, %e0
  %lo: i32 = smax %left, 0:i32
  %cnt: i32 = smin %lo, 4:i32
  %bytes: i32 = shl %cnt, 2:i32
  %some: pred = icmp sgt %cnt, 0:i32
  %e0s: i32 = select %some, %e0, 0:i32
  %src: ptr.global = gep f32 %x, %e0s
  %sh: ptr.shared = shared_addr @stage
  %dst: ptr.shared = gep f32x4 %sh, %tid
  cp_async.cg.16 %dst, %src src_size %bytes
  cp_async_commit
  cp_async_wait 0
  barrier
  %rt: i32 = sub 63:i32, %tid
  %from: ptr.shared = gep f32x4 %sh, %rt
  %v: f32x4 = load %from align 16
  %whole: pred = icmp sge %left, 4:i32
  %po: ptr.global = gep f32 %out, %e0
  if %whole {
    store %po, %v align 16
  } else {
    %any: pred = icmp sgt %left, 0:i32
    %v0: f32 = extract %v, 0
    store %po, %v0 align 4 mask %any
    %has1: pred = icmp sgt %left, 1:i32
    %v1: f32 = extract %v, 1
    %p1: ptr.global = gep f32 %po, 1:i32
    store %p1, %v1 align 4 mask %has1
    %has2: pred = icmp sgt %left, 2:i32
    %v2: f32 = extract %v, 2
    %p2: ptr.global = gep f32 %po, 2:i32
    store %p2, %v2 align 4 mask %has2
  }
}
"""

UNPACK_U4 = """\
// uint4 codes packed LSB-first in uint32 words -> f16: out[8 j + i] = (w[j] >> 4 i) & 15.
// lop3 builds f16x2 (1024 + q_i, 1024 + q_{i+4}) from the magic exponent 0x6400, one packed
// f16x2 subtraction removes the 1024, prmt reorders the halves, one 16-byte store per word.
kernel @unpack_u4(%w: ptr.global[uint32], %out: ptr.global[f16], %nw: i32) threads 128 {
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %base: i32 = mul %bid, 128:i32
  %j: i32 = add %base, %tid
  %ok: pred = icmp slt %j, %nw
  %pw: ptr.global = gep i32 %w, %j
  %word: i32 = load %pw align 4 mask %ok else 0:i32
  %magic: f16x2 = pack 1024.0:f16, 1024.0:f16
  %t1: i32 = lshr %word, 4:i32
  %t2: i32 = lshr %word, 8:i32
  %t3: i32 = lshr %word, 12:i32
  %h0: i32 = lop3 %word, 983055:i32, 1677747200:i32, 0xea
  %h1: i32 = lop3 %t1, 983055:i32, 1677747200:i32, 0xea
  %h2: i32 = lop3 %t2, 983055:i32, 1677747200:i32, 0xea
  %h3: i32 = lop3 %t3, 983055:i32, 1677747200:i32, 0xea
  %f0: f16x2 = bitcast %h0
  %f1: f16x2 = bitcast %h1
  %f2: f16x2 = bitcast %h2
  %f3: f16x2 = bitcast %h3
  %g0: f16x2 = fsub %f0, %magic
  %g1: f16x2 = fsub %f1, %magic
  %g2: f16x2 = fsub %f2, %magic
  %g3: f16x2 = fsub %f3, %magic
  %i0: i32 = bitcast %g0
  %i1: i32 = bitcast %g1
  %i2: i32 = bitcast %g2
  %i3: i32 = bitcast %g3
  %q01: i32 = prmt %i0, %i1, 21520:i32
  %q23: i32 = prmt %i2, %i3, 21520:i32
  %q45: i32 = prmt %i0, %i1, 30258:i32
  %q67: i32 = prmt %i2, %i3, 30258:i32
  %vec: i32x4 = pack %q01, %q23, %q45, %q67
  %po: ptr.global = gep i32x4 %out, %j
  store %po, %vec align 16 mask %ok
}
"""


CP_ASYNC_IGNORE = """\
// all-or-nothing 16-byte copies (cp.async's ignore-src predicate): a thread's chunk is copied when it lies
// wholly below n, else zero-filled without a read -- its address, past the end of x, is never clamped
kernel @async_ignore(%x: ptr.global[f32], %out: ptr.global[f32], %n: i32) threads 64 {
  shared @stage size 1024 align 16
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %base: i32 = mul %bid, 256:i32
  %t4: i32 = shl %tid, 2:i32
  %e0: i32 = add %base, %t4
  %end: i32 = add %e0, 4:i32
  %skip: pred = icmp sgt %end, %n
  %src: ptr.global = gep f32 %x, %e0
  %sh: ptr.shared = shared_addr @stage
  %dst: ptr.shared = gep f32x4 %sh, %tid
  cp_async.cg.16 %dst, %src ignore_src %skip
  cp_async_commit
  cp_async_wait 0
  barrier
  %v: f32x4 = load %dst align 16
  %po: ptr.global = gep f32 %out, %e0
  store %po, %v align 16
}
"""


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    block: int
    # rng, size -> (args for launch, grid, index of the output array in args)
    make: Callable[[np.random.Generator, int], tuple[list, int, int]]
    reference: Callable[[list], np.ndarray]
    exact: bool = True


def _vadd(rng: np.random.Generator, n: int) -> tuple[list, int, int]:
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, np.float32)
    return [x, y, out, np.int32(n)], -(-n // 128), 2


def _dot(rng: np.random.Generator, n: int) -> tuple[list, int, int]:
    rows, k = n, 2 * (n % 7) + 9
    a, b = rng.standard_normal((rows, k)).astype(np.float32), rng.standard_normal(k).astype(np.float32)
    out = np.full(rows, np.nan, np.float32)
    return [a, b, out, np.int32(rows), np.int32(k)], -(-rows // 64), 2


def _dot_ref(args: list) -> np.ndarray:
    a, b = args[0].astype(np.float64), args[1].astype(np.float64)
    return np.array([sum(a[r, j] * b[j] for j in range(a.shape[1])) for r in range(a.shape[0])])


def _reverse(rng: np.random.Generator, n: int) -> tuple[list, int, int]:
    x = rng.integers(-(2**31), 2**31, n, dtype=np.int64).astype(np.int32)
    out = np.full(n, 0x5EAD5EAD, np.int32)
    return [x, out, np.int32(n)], -(-n // 128), 1


def _reverse_ref(args: list) -> np.ndarray:
    x, n = args[0], len(args[0])
    out = np.empty(n, np.int32)
    for i in range(n):
        blk, t = divmod(i, 128)
        src = blk * 128 + 127 - t
        out[i] = x[src] if src < n else -1
    return out


def _block_sum(rng: np.random.Generator, n: int) -> tuple[list, int, int]:
    x = rng.integers(-(2**31), 2**31, n, dtype=np.int64).astype(np.int32)
    blocks = -(-n // 256)
    return [x, np.full(blocks, 0x5EAD5EAD, np.int32), np.int32(n)], blocks, 1


def _block_sum_ref(args: list) -> np.ndarray:
    x = args[0].astype(np.int64)
    sums = [int(x[b : b + 256].sum()) for b in range(0, len(x), 256)]
    return np.array([(s + 2**31) % 2**32 - 2**31 for s in sums], np.int64).astype(np.int32)  # i32 wraps


def _cp_async(rng: np.random.Generator, n: int) -> tuple[list, int, int]:
    blocks = -(-n // 256)
    x = np.zeros(blocks * 256 + 4, np.float32)  # reads stay inside; elements past n are never read
    x[:n] = rng.standard_normal(n).astype(np.float32)
    x[n:] = np.nan
    return [x, np.full(n, np.nan, np.float32), np.int32(n)], blocks, 1


def _cp_async_ref(args: list) -> np.ndarray:
    x, n = args[0], len(args[1])
    out = np.empty(n, np.float32)
    for i in range(n):
        blk, r = divmod(i, 256)
        t, e = divmod(r, 4)
        src = blk * 256 + 4 * (63 - t) + e
        out[i] = x[src] if src < n else 0.0
    return out


def _cp_ignore(rng: np.random.Generator, n: int) -> tuple[list, int, int]:
    blocks = -(-n // 256)
    x = rng.standard_normal(n).astype(np.float32)  # exactly n: a read of an ignored chunk would leave it
    return [x, np.full(blocks * 256, np.nan, np.float32), np.int32(n)], blocks, 1


def _cp_ignore_ref(args: list) -> np.ndarray:
    x, out = args[0], np.zeros(len(args[1]), np.float32)
    whole = len(x) // 4 * 4
    out[:whole] = x[:whole]
    return out


def _unpack(rng: np.random.Generator, n: int) -> tuple[list, int, int]:
    w = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    return [w, np.full(8 * n, np.nan, np.float16), np.int32(n)], -(-n // 128), 1


def _unpack_ref(args: list) -> np.ndarray:
    w = args[0].astype(np.uint64)
    codes = (w[:, None] >> (4 * np.arange(8, dtype=np.uint64))[None, :]) & 15
    return codes.reshape(-1).astype(np.float16)


CASES = (
    Case("vadd", VADD, 128, _vadd, lambda a: a[0] + a[1]),
    Case("rowdot", DOT, 64, _dot, _dot_ref, exact=False),
    Case("block_reverse", REVERSE, 128, _reverse, _reverse_ref),
    Case("block_sum", BLOCK_SUM, 256, _block_sum, _block_sum_ref),
    Case("async_swap", CP_ASYNC, 64, _cp_async, _cp_async_ref),
    Case("async_ignore", CP_ASYNC_IGNORE, 64, _cp_ignore, _cp_ignore_ref),
    Case("unpack_u4", UNPACK_U4, 128, _unpack, _unpack_ref),
)
