"""05 -- one weight-only GEMM for every format: C = A (M, K) @ dequant(W (K, N)) with ``lowbit.ops``.

The idea: the user never writes a kernel per format.  ``lowbit.ops.quantize_weight(w, fmt)`` packs a
(K, N) weight in any format of at most 8 bits -- integers with zero points (uint4, uint3), small floats
(e2m1), a codebook (nf4), block-scaled MX/NVFP4 (mxfp4) -- into a ``QuantizedWeight``: codes packed
along K in uint32 words, group scales (and zeros).  ``lowbit.ops.matmul(a, qw, backend=...)`` then
launches the *one* generic kernel, ``lowbit/kernels/wx_matmul.py``, specialised by constexprs on the
format, group and zero convention: ``backend="emulator"`` runs its PTX on lowbit's emulator (no GPU
needed), ``"reference"`` is ops' float32 dequantise-then-matmul.  Each result is checked against a
float64 dequantise-then-matmul written here from the packed fields, on a shape that no tile divides.

Each format runs in two packed layouts: version 1 (``lowbit.pack``'s LSB-first order along K; bit planes
for 3/5/6/7-bit codes) and version 3, the kernel order (``layout="kernel"``), in which each thread's
words hold exactly its tensor-core fragments' codes, so the kernel dequantises them with no byte moves.

    python examples/05_wx_matmul.py [uint4,e2m1,...]
"""

import sys

import numpy as np

import lowbit
import lowbit.ops as ops
from lowbit.kernels.wx_matmul import wx_matmul  # the kernel lowbit.ops.matmul launches (compiled below)

FORMATS = ("uint4", "uint3", "e2m1", "nf4", "mxfp4")
M, N, K = 3, 72, 288  # K spans groups of 128 with a short last one; N is not a multiple of the 32-column tile


def dequantize64(qw: "ops.QuantizedWeight") -> np.ndarray:
    """The (K, N) weight in float64 from its fields: decode each code, then (v - z) * s per group."""
    k, n = qw.shape
    scaled = isinstance(qw.wtype, lowbit.ScaledType)
    elem = qw.wtype.element if scaled else qw.wtype
    v = elem.decode(qw.codes().astype(np.uint64))  # the exact value of each code (float64)
    g = np.arange(k) // qw.group_length
    if scaled:  # block scales are codes of an 8-bit-or-less format (e8m0, ue4m3)
        s = qw.wtype.scale.decode(qw.scales.astype(np.uint64)) * 2.0**qw.wtype.element_exp
    else:
        s = qw.scales.astype(np.float64)
    if qw.zero == "int":
        w = (v - elem.decode(qw.zero_codes().astype(np.uint64))[g]) * s[g]
    elif qw.zero == "float":
        w = v * s[g] - qw.zeros.astype(np.float64)[g]
    else:
        w = v * s[g]
    return w * (1.0 if qw.tensor_scale is None else float(qw.tensor_scale[0]))


def bound(a: np.ndarray, w: np.ndarray, roundings: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(float64 A @ W, its error bound) for f16 A: each weight rounded ``roundings`` times to f16 (2**-11
    relative each, 2**-25 absolute below f16's normals; a codebook's table is rounded to f16 first, then
    the product), once to f32 on the way (2**-24), K + 2 f32 additions/products (2**-24 each, relative
    to sum |a||w|), one final f16 rounding of C (2**-11 of |C|)."""
    a64 = a.astype(np.float64)
    ref, mag = a64 @ w, np.abs(a64) @ np.abs(w)
    sub = np.abs(a64).sum(axis=1, keepdims=True) * 2.0**-25 * roundings
    return ref, (roundings * 2.0**-10 / 2 + 2.0**-24 + (K + 2) * 2.0**-24) * mag + sub + 2.0**-11 * np.abs(ref) + 2.0**-24


def run(fmt: str, backend: str = "emulator", seed: int = 5, layout: str = "lsb") -> bool:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((K, N)) * 0.5
    if layout == "lsb" and lowbit.dtype(fmt).bits in (3, 5, 6, 7):
        layout = "planes"  # version 2: the bit-plane split, so that no code straddles a word
    qw = ops.quantize_weight(w, fmt, layout=layout)  # zero: "int" for uint*, "none" otherwise
    a = rng.standard_normal((M, K)).astype(np.float16)
    c = ops.matmul(a, qw, backend=backend)  # (M, N) f16
    ref, tol = bound(a, dequantize64(qw), 2 if isinstance(qw.wtype, lowbit.CodebookType) else 1)
    return bool(np.all(np.isfinite(c)) and np.all(np.abs(c.astype(np.float64) - ref) <= tol))


def main(formats: list[str]) -> bool:
    compiled = lowbit.compile(wx_matmul)  # the default specialisation (uint4, groups of 128): DSL -> PTX
    print(f"compiled {compiled.kernel_name} for {compiled.arch}: {len(compiled.ptx.splitlines())} lines of PTX")
    ok = True
    for fmt in formats:
        qw = ops.quantize_weight(np.zeros((K, N)), fmt)
        res = {backend: run(fmt, backend) for backend in ("reference", "emulator")}
        res["kernel order"] = run(fmt, "emulator", layout="kernel")
        print(f"{fmt:7s} {qw.bits}-bit codes, zero={qw.zero!r}, group {qw.group_size}, {qw.qweight.nbytes} B of codes: "
              f"reference {res['reference']}, emulator {res['emulator']}, emulator in kernel order {res['kernel order']}")
        ok = ok and all(res.values())
    print(f"wx_matmul on the emulator matches the float64 dequantise-then-matmul for {', '.join(formats)}: {ok}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1].split(",") if len(sys.argv) > 1 else list(FORMATS)) else 1)
