"""The W4A16 problem bench_decode runs: random codes, group scales and zeros, and its float64 reference.

Codes, scales and integer zeros are drawn directly (not by quantizing a
float matrix: at K x N = 8192 x 2048 that would only cost time), in the
layout both kernels take: codes packed LSB-first along K into (K/8, N)
uint32 words (:func:`lowbit.pack`), f16 scales and uint8 zeros of shape
(K/128, N).  The reference is a float64 dequantise-then-matmul over the
columns the emulated blocks computed, with example 04's error bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUP = 128
BITS = 4


@dataclass(frozen=True)
class Problem:
    shape: tuple[int, int, int]
    a: np.ndarray  # (M, K) f16
    codes: np.ndarray  # (K, N) uint8 in [0, 16)
    words: np.ndarray  # (K/8, N) uint32
    scales: np.ndarray  # (K/GROUP, N) f16
    zeros: np.ndarray  # (K/GROUP, N) uint8

    def lowbit_args(self) -> dict[str, object]:
        """Fresh arguments for example 04 by name (C poisoned with NaN)."""
        m, n, k = self.shape
        c = _device(np.full((m, n), np.nan, np.float16))
        return {"a_ptr": self.a, "w_ptr": self.words, "s_ptr": self.scales, "z_ptr": self.zeros, "c_ptr": c,
                "M": m, "N": n, "K": k}

    def triton_args(self) -> list[object]:
        """Fresh arguments for the Triton baseline, in its parameter order (without the scratch pointers)."""
        m, n, k = self.shape
        c = _device(np.full((m, n), np.nan, np.float16))
        return [self.a, self.words, self.scales, self.zeros, c, np.int32(m), np.int32(n), np.int32(k)]

    def check(self, c: np.ndarray, ncols: int) -> bool:
        """Whether columns ``[0, ncols)`` of ``c`` equal the float64 reference within the bound."""
        g = np.arange(self.shape[2]) // GROUP
        w = (self.codes[:, :ncols].astype(np.float64) - self.zeros[g, :ncols]) * self.scales[g, :ncols].astype(np.float64)
        a64 = self.a.astype(np.float64)
        ref, mag = a64 @ w, np.abs(a64) @ np.abs(w)
        k = self.shape[2]
        # each dequantised weight rounds once to f16, K f32 additions, one f16 rounding of C (example 04)
        tol = 2.0 * ((2.0**-11 + k * 2.0**-24) * mag + 2.0**-11 * np.abs(ref)) + 2.0**-24
        got = c[:, :ncols].astype(np.float64)
        return bool(np.all(np.isfinite(got)) and np.all(np.abs(got - ref) <= tol))


def _device(x: np.ndarray) -> np.ndarray:
    """``x`` 256-byte aligned, as a device allocation is: the emulator keeps host addresses' residue mod 256,
    and sector counts depend on it."""
    from lowbit.runtime.check import aligned_copy

    return aligned_copy(np.ascontiguousarray(x))


def make_problem(m: int, n: int, k: int, seed: int = 0) -> Problem:
    import lowbit

    if k % GROUP:
        raise ValueError(f"K={k} must be a multiple of the group size {GROUP}")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float16)
    codes = rng.integers(0, 1 << BITS, (k, n), dtype=np.uint8)
    words = lowbit.pack(codes, BITS, axis=0)
    scales = (2.0 ** rng.uniform(-7, -3, (k // GROUP, n))).astype(np.float16)
    zeros = rng.integers(0, 1 << BITS, (k // GROUP, n), dtype=np.uint8)
    return Problem((m, n, k), _device(a), codes, _device(words), _device(scales), _device(zeros))
