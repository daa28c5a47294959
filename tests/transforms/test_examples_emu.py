"""Every example compiles (sm_80/86/89/90), ptxas accepts it with 0 spills, and it runs on the emulator like the interpreter.

Shapes are not multiples of the tiles (M=37, N=100, K=136), inputs random,
outputs NaN-poisoned.  Integer paths (02) must match bit for bit; float
paths within the bound stated per example (dot order differs from the
interpreter's matmul; the per-element bound is derived from K).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import run_on_emulator
from tests.transforms.harness import both, compiled

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("[0-9][0-9]_*.py"))
M, N, K = 37, 100, 136


def load(name: str) -> tuple[ModuleType, object]:
    spec = importlib.util.spec_from_file_location(f"lowbit_example_t_{name}", ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, next(v for v in vars(mod).values() if isinstance(v, lowbit.Kernel))


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@pytest.mark.parametrize("arch", ["sm_86", "sm_89", "sm_90"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_assembles_for_every_target(name: str, arch: str, cache: CompileCache) -> None:
    _, k = load(name)
    ck = compiled(k, cache, arch=arch)
    assert f".target {arch}" in ck.ptx
    assert ".extern .func" not in ck.ptx


def test_01_vector_add(cache: CompileCache) -> None:
    _, k = load("01_vector_add")
    rng = np.random.default_rng(10)
    n = 1000
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, np.float32)
    [(want, got)] = both(k, cache, (cdiv(n, 128),), [x, y, out, n], [2])
    np.testing.assert_array_equal(got, x + y)  # one correctly rounded f32 add


def test_02_uint4_cast(cache: CompileCache) -> None:
    _, k = load("02_uint4_cast")
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 16, size=(M, N), dtype=np.uint8)
    words = lowbit.pack(codes, 4, axis=-1)
    out = np.full((M, N), np.nan, np.float16)
    [(_, got)] = both(k, cache, (cdiv(M, 16), cdiv(N, 64)), [words, out, M, N, 0.25], [1])
    np.testing.assert_array_equal(got.astype(np.float64), (codes - 8.0) * 0.25)


def test_03_matmul_f16(cache: CompileCache) -> None:
    _, k = load("03_matmul_f16")
    rng = np.random.default_rng(12)
    a = rng.standard_normal((M, K)).astype(np.float16)
    b = rng.standard_normal((K, N)).astype(np.float16)
    c = np.full((M, N), np.nan, np.float32)
    # f16 products are exact in f32; two different K-long f32 summation orders differ by <= 2*K*2^-24*sum|ab|.
    mag = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    ck = compiled(k, cache)
    ci = c.copy()
    k.interpret[(cdiv(M, 32), cdiv(N, 32))](a, b, ci, M, N, K)
    run_on_emulator(ck, (cdiv(M, 32), cdiv(N, 32)), [a, b, c, M, N, K])
    assert not np.isnan(c).any()
    assert np.all(np.abs(c.astype(np.float64) - ci) <= 2 * K * 2.0**-24 * mag + 1e-30)
    ref = (a.astype(np.float64)[:, :, None] * b.astype(np.float64)[None]).sum(1)
    assert np.all(np.abs(c - ref) <= 2 * K * 2.0**-24 * mag + 1e-30)


def test_04_w4a16_matmul(cache: CompileCache) -> None:
    mod, k = load("04_w4a16_matmul")
    rng = np.random.default_rng(13)
    a = rng.standard_normal((M, K)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((K, N)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    scales = np.array(q.scales, dtype=np.float16)
    zeros = np.array(q.zeros, dtype=np.uint8)
    c = np.full((M, N), np.nan, np.float16)
    ci = c.copy()
    ck = compiled(k, cache)
    grid = (cdiv(M, 16), cdiv(N, 32))
    k.interpret[grid](a, words.copy(), scales.copy(), zeros.copy(), ci, M, N, K)
    run_on_emulator(ck, grid, [a, words.copy(), scales.copy(), zeros.copy(), c, M, N, K])
    assert not np.isnan(c).any()
    ref, mag = mod.reference(a, q)
    # Independent float64 bound: dequantised weights are rounded once to f16, K f32 additions, final f16 rounding.
    bound = 2.0 * ((2.0**-11 + K * 2.0**-24) * mag + 2.0**-11 * np.abs(ref)) + 2.0**-24
    assert np.all(np.abs(c.astype(np.float64) - ref) <= bound)
    # Against the interpreter: the same f16 weights, the f32 sums differ only in order; one final f16 rounding each.
    assert np.all(np.abs(c.astype(np.float64) - ci.astype(np.float64)) <= 2 * K * 2.0**-24 * mag + 2.0**-10 * np.abs(ref) + 2.0**-24)


@pytest.mark.full
@pytest.mark.parametrize("shape", [(1, 1, 8), (16, 32, 128), (65, 33, 257), (100, 7, 300)])
def test_matmul_examples_over_shapes(shape: tuple[int, int, int], cache: CompileCache) -> None:
    """03 and 04 on more shapes (edges smaller and larger than a tile), emulator vs interpreter."""
    m, n, k = shape
    rng = np.random.default_rng(m * n * k)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    _, k3 = load("03_matmul_f16")
    c, ci = np.full((m, n), np.nan, np.float32), np.full((m, n), np.nan, np.float32)
    grid = (cdiv(m, 32), cdiv(n, 32))
    k3.interpret[grid](a, b, ci, m, n, k)
    run_on_emulator(compiled(k3, cache), grid, [a, b, c, m, n, k])
    mag = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert np.all(np.abs(c.astype(np.float64) - ci) <= 2 * k * 2.0**-24 * mag + 1e-30)
    mod, k4 = load("04_w4a16_matmul")
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words, scales, zeros = lowbit.pack(q.codes, 4, axis=0), np.array(q.scales, np.float16), np.array(q.zeros, np.uint8)
    c4 = np.full((m, n), np.nan, np.float16)
    grid = (cdiv(m, 16), cdiv(n, 32))
    run_on_emulator(compiled(k4, cache), grid, [a, words, scales, zeros, c4, m, n, k])
    ref, mag4 = mod.reference(a, q)
    bound = 2.0 * ((2.0**-11 + k * 2.0**-24) * mag4 + 2.0**-11 * np.abs(ref)) + 2.0**-24
    assert np.all(np.abs(c4.astype(np.float64) - ref) <= bound)
