"""The numbered examples: golden .lbir text, and interpreter results against independent float64 references.

Shapes are not multiples of the tiles (M=37, N=100, K=136); every output is
NaN-poisoned before each run; integer paths must match exactly, float paths
within a bound derived from K and the accumulator type.  The references here
are written independently of the examples' own checks.

Regenerate the goldens after an intended IR change with
``python -m tests.test_examples`` (then review the diff).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import lowbit
from lowbit.ir.parser import parse
from lowbit.ir.printer import print_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
GOLDEN = Path(__file__).resolve().parent / "golden"
M, N, K = 37, 100, 136
#: command-line arguments of the default-tier run: 05's default list has five formats, two keep the tier fast
#: (every format runs under ``-m full`` below)
ARGS = {"05_wx_matmul": ["uint4,e2m1"]}


def load(name: str) -> ModuleType:
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"lowbit_example_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def kernel_of(mod: ModuleType) -> lowbit.Kernel:
    kernels = [v for v in vars(mod).values() if isinstance(v, lowbit.Kernel)]
    assert len(kernels) == 1
    return kernels[0]


def test_the_four_examples_exist() -> None:
    assert [p.stem for p in EXAMPLES][:4] == ["01_vector_add", "02_uint4_cast", "03_matmul_f16", "04_w4a16_matmul"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_golden_lbir(path: Path) -> None:
    prog = kernel_of(load(path.stem)).specialize()  # every constexpr has a default
    text = print_program(prog)
    golden = (GOLDEN / f"{path.stem}.lbir").read_text()
    assert text == golden, f"{path.stem}: the printed program changed; review and regenerate the golden"
    assert print_program(parse(golden)) == golden


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_from_the_command_line(path: Path) -> None:
    proc = subprocess.run([sys.executable, str(path), *ARGS.get(path.stem, [])], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("True")


def test_vector_add_exact() -> None:
    k = kernel_of(load("01_vector_add"))
    rng = np.random.default_rng(10)
    for n in (1, 127, 1000):
        x, y = rng.standard_normal((2, n)).astype(np.float32)
        out = np.full(n, np.nan, np.float32)
        k.interpret[(-(-n // 128),)](x, y, out, n)
        np.testing.assert_array_equal(out, (x.astype(np.float64) + y).astype(np.float32))


def test_uint4_cast_exact() -> None:
    k = kernel_of(load("02_uint4_cast"))
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 16, (M, N), dtype=np.uint8)
    words = lowbit.pack(codes, 4, axis=-1)
    out = np.full((M, N), np.nan, np.float16)
    k.interpret[(-(-M // 16), -(-N // 64))](words, out, M, N, 0.5)
    want = np.array([[(int(c) - 8) * 0.5 for c in row] for row in codes])
    np.testing.assert_array_equal(out.astype(np.float64), want)


def _matmul64(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float64 A @ W as an explicit loop over K (independent of numpy's matmul)."""
    acc = np.zeros((a.shape[0], w.shape[1]))
    for t in range(a.shape[1]):
        acc += np.outer(a[:, t].astype(np.float64), w[t].astype(np.float64))
    return acc


@pytest.mark.parametrize("tiles", [dict(), dict(BM=16, BN=64, BK=16)])
def test_matmul_f16_within_k_bound(tiles: dict) -> None:
    k = kernel_of(load("03_matmul_f16"))
    rng = np.random.default_rng(12)
    a = rng.standard_normal((M, K)).astype(np.float16)
    b = rng.standard_normal((K, N)).astype(np.float16)
    c = np.full((M, N), np.nan, np.float32)
    bm, bn = tiles.get("BM", 32), tiles.get("BN", 32)
    k.interpret[(-(-M // bm), -(-N // bn))](a, b, c, M, N, K, **tiles)
    ref = _matmul64(a, b)
    # f16 products are exact in f32; K additions in f32 each err by <= 2**-24 of the partial sum.
    bound = K * 2.0**-24 * _matmul64(np.abs(a), np.abs(b))
    assert np.all(np.abs(c - ref) <= bound)
    # the check has teeth: a wrong K edge (dropping the last 8 columns of A) fails it
    assert not np.all(np.abs(_matmul64(a[:, :-8], b[:-8]) - ref) <= bound)


def _dequant64(q) -> np.ndarray:
    g = np.arange(q.codes.shape[0]) // 128
    return (q.codes.astype(np.float64) - q.zeros[g].astype(np.float64)) * q.scales[g].astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1])
def test_w4a16_matches_dequantise_then_matmul(seed: int) -> None:
    k = kernel_of(load("04_w4a16_matmul"))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((K, N)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    assert words.shape == (K // 8, N) and words.dtype == np.uint32
    scales = np.array(q.scales, dtype=np.float16)
    zeros = np.array(q.zeros, dtype=np.uint8)
    assert scales.shape == zeros.shape == (-(-K // 128), N)
    c = np.full((M, N), np.nan, np.float16)
    k.interpret[(-(-M // 16), -(-N // 32))](a, words, scales, zeros, c, M, N, K)
    w = _dequant64(q)
    ref = _matmul64(a, w)
    mag = _matmul64(np.abs(a), np.abs(w))
    # w rounded once to f16 in the kernel (2**-11), K f32 additions, the output rounded to f16.
    bound = (2.0**-11 + K * 2.0**-24) * mag + 2.0**-11 * np.abs(ref) + 2.0**-24
    assert np.all(np.abs(c.astype(np.float64) - ref) <= bound)
    # teeth: the same check rejects a result computed with one group's zero off by one
    w_bad = w.copy()
    w_bad[128:] -= q.scales[1].astype(np.float64)
    assert not np.all(np.abs(_matmul64(a, w_bad) - ref) <= bound)


@pytest.mark.full
@pytest.mark.parametrize("m, n, k", [(75, 230, 1000), (129, 61, 392)])
def test_w4a16_large_shapes_many_groups(m: int, n: int, k: int) -> None:
    """Many quantization groups, the last one partial (K % 128 != 0), no dimension a multiple of a tile."""
    kern = kernel_of(load("04_w4a16_matmul"))
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    c = np.full((m, n), np.nan, np.float16)
    kern.interpret[(-(-m // 16), -(-n // 32))](a, words, np.array(q.scales, np.float16),
                                               np.array(q.zeros, np.uint8), c, m, n, k)
    w = _dequant64(q)
    ref, mag = _matmul64(a, w), _matmul64(np.abs(a), np.abs(w))
    bound = (2.0**-11 + k * 2.0**-24) * mag + 2.0**-11 * np.abs(ref) + 2.0**-24
    assert np.all(np.abs(c.astype(np.float64) - ref) <= bound)


@pytest.mark.full
def test_matmul_f16_large_shape() -> None:
    kern = kernel_of(load("03_matmul_f16"))
    m, n, k = 130, 250, 520
    rng = np.random.default_rng(13)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c = np.full((m, n), np.nan, np.float32)
    kern.interpret[(-(-m // 32), -(-n // 32))](a, b, c, m, n, k)
    bound = k * 2.0**-24 * _matmul64(np.abs(a), np.abs(b))
    assert np.all(np.abs(c - _matmul64(a, b)) <= bound)


WX_FORMATS = ("uint1", "uint2", "uint3", "uint4", "int4", "uint5", "uint6", "uint7", "uint8", "e2m1", "e3m2",
              "e2m3", "e4m3", "e5m2", "f5e2m2", "nf4", "mxfp4", "nvfp4")  # fmt: skip


def _wx_case(fmt: str, seed: int):
    """Example 05's operation on its odd shape, checked here with tests/ops/reference.py's independent
    dequantisation and bound (not the example's own)."""
    import lowbit.ops as ops
    from tests.ops.reference import dequantize_reference, gemm_bound

    mod = load("05_wx_matmul")
    rng = np.random.default_rng(seed)
    qw = ops.quantize_weight(rng.standard_normal((mod.K, mod.N)) * 0.5, fmt)
    a = rng.standard_normal((mod.M, mod.K)).astype(np.float16)
    w = dequantize_reference(qw)
    np.testing.assert_array_equal(mod.dequantize64(qw), w)  # the example's float64 weight is the exact one
    ref, bound = gemm_bound(a, w, None)
    c = ops.matmul(a, qw, backend="emulator")
    assert c.shape == (mod.M, mod.N) and c.dtype == np.float16
    assert np.all(np.abs(c.astype(np.float64) - ref) <= bound), fmt
    return mod, qw, a, w


@pytest.mark.parametrize("fmt", ["uint4", "e2m1"])
def test_wx_matmul_example_matches_float64(fmt: str) -> None:
    mod, qw, a, w = _wx_case(fmt, seed=21)
    assert mod.run(fmt) and mod.run(fmt, "reference")
    # teeth: the example's bound rejects C computed with the first group's weights off by a tenth of their size
    ref, tol = mod.bound(a, w)
    w_bad = w.copy()
    w_bad[:128] *= 1.1
    assert not np.all(np.abs(a.astype(np.float64) @ w_bad - ref) <= tol)


@pytest.mark.full
@pytest.mark.parametrize("fmt", WX_FORMATS)
def test_wx_matmul_example_every_format(fmt: str) -> None:
    mod, *_ = _wx_case(fmt, seed=22)
    assert mod.run(fmt, "emulator", seed=23) and mod.run(fmt, "reference", seed=23)


def _write_goldens() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for path in EXAMPLES:
        (GOLDEN / f"{path.stem}.lbir").write_text(print_program(kernel_of(load(path.stem)).specialize()))
        print(f"wrote {GOLDEN / (path.stem + '.lbir')}")


if __name__ == "__main__":
    _write_goldens()
