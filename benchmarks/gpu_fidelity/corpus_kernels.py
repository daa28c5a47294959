"""Corpus sources made of whole kernels: fixtures, compiled examples, hand-built SIMT kernels, Triton W4A16.

References are the sources' own independent ones: the fixtures' recipes
(numpy, from the kernels' meaning), the examples' ``reference``/``tolerance``
helpers (float64 explicit sums), ``tests/codegen/simt_kernels.py``'s numpy
references, and for Triton's W4A16 the float64 dequantise-then-matmul of its
test.  None uses the emulator.
"""

from __future__ import annotations

import os
import types

import numpy as np
from corpus import ROOT, Case, Out, dim3, load_module, source

EXAMPLE_ARCHS = ("sm_80", "sm_90")


# ----------------------------------------------------------------------------- committed fixtures


def fixture_case(name: str) -> Case:
    from tests.emu.fixtures import recipes

    fx = recipes.load(name)
    args = fx.make_args()
    expected = fx.expected()
    outs = []
    for oname, o in fx.outputs.items():
        outs.append(Out(index=o["index"], ref=np.asarray(expected[oname]), mode=o["compare"],
                        rtol=float(o.get("rtol", 0.0)), atol=float(o.get("atol", 0.0)), name=oname))
    return Case(name=name, ptx=fx.ptx, kernel=fx.kernel, grid=dim3(fx.grid), block=dim3(fx.block), args=args,
                outs=outs, shared_bytes=int(fx.shared_bytes), source="fixture",
                meta={"arg_names": [a["name"] for a in fx.meta["args"]]})


@source("fixture")
def fixtures(tier: str):
    if tier == "exhaustive":
        return
    from tests.emu.fixtures import recipes

    for name in recipes.names():
        yield fixture_case(name)


# ----------------------------------------------------------------------------- compiled examples


def _capture_example(path, arch: str):
    """Run the example's ``run()`` with the emulator launch replaced by a recorder; returns (module, launch)."""
    import lowbit
    import lowbit.emu

    mod = load_module(path, f"fidelity_example_{path.stem}")
    rec: list = []

    def record(ptx, kernel, grid, block, args, shared_bytes=0, **kw):
        rec.append(dict(ptx=ptx, kernel=kernel, grid=grid, block=block, shared_bytes=shared_bytes,
                        args=[np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]))

    mod._launcher = lambda kernel, backend: kernel.on(arch)  # compile for `arch`, run on the (recording) emulator
    real = lowbit.emu.launch
    lowbit.emu.launch = record
    try:
        mod.run()
    finally:
        lowbit.emu.launch = real
    if len(rec) != 1:
        raise RuntimeError(f"{path.name}: expected one launch, saw {len(rec)}")
    if not isinstance(rec[0]["ptx"], str):  # the launcher hands the emulator the PTX parsed once: take its text
        kernel = next(v for v in vars(mod).values() if isinstance(v, lowbit.Kernel) and v.last_launch is not None)
        rec[0]["ptx"] = kernel.compiled(kernel.last_launch.program, arch).ptx
    return mod, rec[0]


def _unpack_u4(words: np.ndarray, axis: int, count: int) -> np.ndarray:
    w = words.astype(np.uint64)
    shifts = (4 * np.arange(8, dtype=np.uint64))
    if axis == -1:
        codes = (w[..., None] >> shifts) & 15  # (R, W, 8)
        return codes.reshape(w.shape[0], -1)[:, :count].astype(np.uint8)
    codes = (w[:, None, :] >> shifts[None, :, None]) & 15  # (K/8, 8, N)
    return codes.reshape(-1, w.shape[1])[:count].astype(np.uint8)


def _example_refs(stem: str, mod, args: list) -> list[Out]:
    if stem.startswith("01"):
        x, y = args[0], args[1]
        return [Out(2, (x.astype(np.float64) + y.astype(np.float64)).astype(np.float32), name="out")]
    if stem.startswith("02"):
        words, out, rows, cols, scale = args
        codes = _unpack_u4(words, -1, int(cols))
        ref = ((codes.astype(np.float64) - 8.0) * float(scale)).astype(np.float16)
        return [Out(1, ref, name="out")]
    if stem.startswith("03"):
        a, b = args[0], args[1]
        ref64 = mod.reference(a, b)
        ref = ref64.astype(np.float32)
        tol = mod.tolerance(a, b) + np.abs(ref.astype(np.float64) - ref64)
        return [Out(2, ref, mode="close", tol=tol, name="c")]
    if stem.startswith("04"):
        a, words, scales, zeros, c, m, n, k = args
        codes = _unpack_u4(words, 0, int(k))
        q = types.SimpleNamespace(codes=codes, zeros=zeros, scales=scales)
        ref64, mag = mod.reference(a, q)
        ref = ref64.astype(np.float16)
        tol = mod.tolerance(ref64, mag, int(k)) + np.abs(ref.astype(np.float64) - ref64)
        return [Out(4, ref, mode="close", tol=tol, name="c")]
    raise KeyError(stem)


@source("example")
def examples(tier: str):
    if tier == "exhaustive":
        return
    # examples 01-04 launch one kernel from run(); 05 goes through lowbit.ops (one launch per format) and is not
    # in the corpus yet
    for path in sorted(p for p in (ROOT / "examples").glob("0*.py") if p.stem[:2] in ("01", "02", "03", "04")):
        for arch in EXAMPLE_ARCHS:
            mod, rec = _capture_example(path, arch)
            args = rec["args"]
            yield Case(name=f"example_{path.stem}_{arch}", ptx=rec["ptx"], kernel=rec["kernel"], grid=dim3(rec["grid"]),
                       block=dim3(rec["block"]), args=args, outs=_example_refs(path.stem, mod, args),
                       shared_bytes=int(rec["shared_bytes"]), source="example")


# ----------------------------------------------------------------------------- hand-built SIMT kernels


@source("simt")
def simt(tier: str):
    if tier == "exhaustive":
        return
    from lowbit.codegen.emit import compile_kernel
    from lowbit.ir.simt import parse_kernel
    from tests.codegen.simt_kernels import CASES

    for arch in EXAMPLE_ARCHS:
        for c in CASES:
            ptx = compile_kernel(parse_kernel(c.text), arch).ptx
            rng = np.random.default_rng(sum(map(ord, c.name + arch)))
            args, grid, oi = c.make(rng, 301)
            want = np.asarray(c.reference(args))
            out = args[oi]
            if c.exact:
                o = Out(oi, want.astype(out.dtype), name="out")
            else:  # the codegen test's rule: rtol 1e-5, atol 1e-5 sqrt(k)
                o = Out(oi, want.astype(out.dtype), mode="close", rtol=1e-5, atol=1e-5 * float(np.sqrt(args[0].shape[-1])),
                        name="out")
            yield Case(name=f"simt_{c.name}_{arch}", ptx=ptx, kernel=c.name, grid=dim3(grid), block=dim3(c.block),
                       args=list(args), outs=[o], source="simt")


# ----------------------------------------------------------------------------- Triton W4A16 baseline


@source("triton")
def triton_w4a16(tier: str):
    if tier == "exhaustive":
        return
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # as tests/conftest.py pins it
    try:
        import triton  # noqa: F401
    except ImportError:
        return
    import lowbit
    from benchmarks.baselines.triton_w4a16 import CONSTEXPRS, compile_for

    compiled = compile_for(arch=80, num_warps=4, num_stages=1)
    m, n, k = 37, 100, 136
    rng = np.random.default_rng(m * 1000 + k)
    a = rng.standard_normal((m, k)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    scales = np.ascontiguousarray(q.scales, dtype=np.float16)
    zeros = np.ascontiguousarray(q.zeros, dtype=np.uint8)
    c = np.full((m, n), np.nan, dtype=np.float16)
    scratch = [np.zeros(256, np.uint8), np.zeros(256, np.uint8)]  # Triton's global/profile scratch pointers
    g = np.arange(k) // 128
    w = (q.codes.astype(np.float64) - q.zeros.astype(np.float64)[g]) * q.scales.astype(np.float64)[g]
    a64 = a.astype(np.float64)
    ref64, mag = a64 @ w, np.abs(a64) @ np.abs(w)
    ref = ref64.astype(np.float16)
    tol = 2.0 * ((2.0**-11 + k * 2.0**-24) * mag + 2.0**-11 * np.abs(ref64)) + 2.0**-24
    tol = tol + np.abs(ref.astype(np.float64) - ref64)
    bm, bn = CONSTEXPRS["BM"], CONSTEXPRS["BN"]
    yield Case(name="triton_w4a16_sm_80", ptx=compiled.asm["ptx"], kernel="w4a16_matmul",
               grid=(-(-m // bm), -(-n // bn), 1), block=(128, 1, 1),
               args=[a, words, scales, zeros, c, np.int32(m), np.int32(n), np.int32(k), *scratch],
               outs=[Out(4, ref, mode="close", tol=tol, name="c")], shared_bytes=int(compiled.metadata.shared),
               source="triton")
