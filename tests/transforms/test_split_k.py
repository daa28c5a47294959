"""Split-K for decode shapes: C (f32) = A (M, K, f16) @ B (K, N, f16) with K cut into S slices.

At decode (M <= 16) a GEMM has only N / BN output tiles -- far fewer blocks
than a GPU has SMs -- and each block walks all of K.  Split-K gives every
(tile, K slice) pair its own block, grid (M/BM, N/BN, S), so S times as many
blocks stream the weights, then combines the S partial tiles:

* ``splitk_atomic``: each block ``atomic_add``s its partial tile into C
  (zeroed first) -- one kernel; the order of the S f32 additions per element
  is unspecified (the emulator interleaves blocks differently from the
  interpreter), so it equals the interpreter within the K-derived f32 bound;
* ``splitk_partial`` + ``splitk_reduce``: each block stores its partial into
  a workspace W (S, M, N), a second kernel sums the S partials in order --
  deterministic: bit-identical to the interpreter.

M=16, N=256, K=4096 over 8 K slices (32 blocks of 128 threads), on the
emulator with racecheck and cp.async checks on, against the interpreter and
an independent float64 reference.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from tests.transforms.harness import both, compiled


@lowbit.kernel(num_warps=4)
def splitk_atomic(
    a_ptr: lowbit.ptr("f16"),
    b_ptr: lowbit.ptr("f16"),
    c_ptr: lowbit.ptr("f32"),
    M: lowbit.int32,
    N: lowbit.int32,
    K: lowbit.int32,
    BM: lowbit.constexpr = 16,
    BN: lowbit.constexpr = 64,
    BK: lowbit.constexpr = 32,
    SLICE: lowbit.constexpr = 512,
):
    m0, n0, k0 = lowbit.program_id(0) * BM, lowbit.program_id(1) * BN, lowbit.program_id(2) * SLICE
    a = lowbit.global_view(a_ptr, (M, K))
    b = lowbit.global_view(b_ptr, (K, N))
    acc = lowbit.zeros((BM, BN), lowbit.f32)
    for k in range(k0, k0 + SLICE, BK):  # a slice past K reads zeros (the views mask it)
        acc = lowbit.dot(lowbit.load(a, (m0, k), (BM, BK)), lowbit.load(b, (k, n0), (BK, BN)), acc)
    lowbit.atomic_add(lowbit.global_view(c_ptr, (M, N)), acc, (m0, n0))


@lowbit.kernel(num_warps=4)
def splitk_partial(
    a_ptr: lowbit.ptr("f16"),
    b_ptr: lowbit.ptr("f16"),
    w_ptr: lowbit.ptr("f32"),
    M: lowbit.int32,
    N: lowbit.int32,
    K: lowbit.int32,
    S: lowbit.int32,
    BM: lowbit.constexpr = 16,
    BN: lowbit.constexpr = 64,
    BK: lowbit.constexpr = 32,
    SLICE: lowbit.constexpr = 512,
):
    s = lowbit.program_id(2)
    m0, n0, k0 = lowbit.program_id(0) * BM, lowbit.program_id(1) * BN, s * SLICE
    a = lowbit.global_view(a_ptr, (M, K))
    b = lowbit.global_view(b_ptr, (K, N))
    acc = lowbit.zeros((BM, BN), lowbit.f32)
    for k in range(k0, k0 + SLICE, BK):
        acc = lowbit.dot(lowbit.load(a, (m0, k), (BM, BK)), lowbit.load(b, (k, n0), (BK, BN)), acc)
    lowbit.store(lowbit.global_view(w_ptr, (S, M, N)), lowbit.reshape(acc, (1, BM, BN)), (s, m0, n0))


@lowbit.kernel(num_warps=4)
def splitk_reduce(w_ptr: lowbit.ptr("f32"), c_ptr: lowbit.ptr("f32"), M: lowbit.int32, N: lowbit.int32,
                  S: lowbit.int32, BM: lowbit.constexpr = 16, BN: lowbit.constexpr = 64):  # fmt: skip
    m0, n0 = lowbit.program_id(0) * BM, lowbit.program_id(1) * BN
    w = lowbit.global_view(w_ptr, (S, M, N))
    acc = lowbit.zeros((1, BM, BN), lowbit.f32)
    for s in range(S):  # slice by slice, in order: the same sum on every run
        acc = acc + lowbit.load(w, (s, m0, n0), (1, BM, BN))
    lowbit.store(lowbit.global_view(c_ptr, (M, N)), lowbit.reshape(acc, (BM, BN)), (m0, n0))


def slice_length(k: int, slices: int, bk: int = 32) -> int:
    """K per slice: a multiple of BK, so every slice starts on a K step."""
    return -(-k // (slices * bk)) * bk


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 C = A @ B written as an explicit sum over K."""
    return (a.astype(np.float64)[:, :, None] * b.astype(np.float64)[None, :, :]).sum(axis=1)


def tolerance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Products of f16 are exact in f32; K f32 additions in any order add <= K * 2**-24 * sum|a||b|."""
    return 2.0 * a.shape[1] * 2.0**-24 * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))) + 1e-30


def _inputs(m: int, n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)


@pytest.mark.parametrize(("m", "n", "k", "slices"), [(16, 256, 4096, 8), (5, 100, 1000, 9)])
def test_split_k_with_atomics(m: int, n: int, k: int, slices: int, cache: CompileCache) -> None:
    a, b = _inputs(m, n, k, seed=k)
    c = np.zeros((m, n), np.float32)
    tol = tolerance(a, b)
    grid = (-(-m // 16), -(-n // 64), slices)
    [(want, got)] = both(splitk_atomic, cache, grid, [a, b, c, m, n, k], [2], exact=False, rtol=0.0,
                         atol=float(tol.max()), SLICE=slice_length(k, slices))  # fmt: skip
    assert np.all(np.abs(got - want) <= tol) and np.all(np.abs(got - reference(a, b)) <= tol)
    ck = compiled(splitk_atomic, cache, SLICE=slice_length(k, slices))
    assert re.search(r"(atom|red)\.global\.add\.f32", ck.ptx)


@pytest.mark.parametrize(("m", "n", "k", "slices"), [(16, 256, 4096, 8), (5, 100, 1000, 9)])
def test_split_k_with_a_workspace_is_deterministic(m: int, n: int, k: int, slices: int, cache: CompileCache) -> None:
    a, b = _inputs(m, n, k, seed=k + 1)
    w = np.full((slices, m, n), np.nan, np.float32)
    c = np.full((m, n), np.nan, np.float32)
    grid = (-(-m // 16), -(-n // 64))
    sl = slice_length(k, slices)
    [(w_int, w_emu)] = both(splitk_partial, cache, grid + (slices,), [a, b, w, m, n, k, slices], [2], exact=False,
                            rtol=0.0, atol=float(tolerance(a, b).max()), SLICE=sl)  # fmt: skip
    # the partials differ from the interpreter's only by the FMA scheme's order within a slice; from the same
    # partials, the ordered reduction is bit-exact
    [(_, got)] = both(splitk_reduce, cache, grid, [w_emu, c, m, n, slices], [1])
    assert np.all(np.abs(got - reference(a, b)) <= tolerance(a, b))
    seq = np.zeros((m, n), np.float32)
    for s in range(slices):  # the reduction's order, in numpy
        seq = seq + w_emu[s]
    np.testing.assert_array_equal(got, seq)
