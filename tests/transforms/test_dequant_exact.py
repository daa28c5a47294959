"""The dequantisation rule and its packed lowering are bit-identical to the interpreter, for every code.

``wx_matmul`` itself is run with A = the identity (M = K), so C *is* the
dequantised weight tile, rounded once to A's dtype -- exactly, since every
value is of that dtype and the f32 accumulator adds zeros to one product
``1 * w``.  Every code sits in every position (codes cycle with the row
and the column), every zero code appears (column n's zero is code
``n mod 2**B``), and the scales cycle through {2**-14, 1, 8, 60000} and
random values (60000 * (c - z) overflows to inf: both sides must agree on
that too).  The compiled kernel (PTX on the emulator) must equal the
reference interpreter bit for bit -- the interpreter runs the f32 chain as
written, the compiled kernel the ``dequant`` op's packed form -- at a
specialised shape (K = N = 128: every divisibility fact) and an
unspecialised one (K = 136: two groups, the last of 8 rows; N = 40).  The
PTX of the main loop must contain the fused form: no per-element
conversion from an integer, no f32 arithmetic on the weight path.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest

import lowbit
from lowbit.compiler import compile_program
from lowbit.kernels.wx_matmul import tile_config, wx_matmul
from lowbit.ops._fold import finite_twin
from lowbit.ops.layouts import pack_codes, pack_zeros
from tests.transforms.ptx_loops import main_loop, mix

SCALES = (2.0**-14, 1.0, 8.0, 60000.0)
INTS = ("uint1", "uint2", "int2", "uint4", "int4", "uint8", "int8")
FLOATS = ("e2m1", "e4m3", "e5m2")
DEFAULT = [(f, "f16") for f in ("uint1", "uint2", "uint4", "int4", "uint8", "e2m1", "e4m3", "e5m2")] + [
    (f, "bf16") for f in ("uint4", "int4", "uint8", "int8", "e2m1")
]
FULL = [(f, a) for f in INTS + FLOATS for a in ("f16", "bf16") if (f, a) not in DEFAULT]
#: Codebooks (issue 13: nf4 and user tables of <= 16 entries), each through its pair table
#: (lowbit.transforms._lower_codebook) or the per-slot chain (3-bit codes, which straddle words): random 16- and 8-entry
#: tables (f32 values: the f32-entry form), a 16-entry table of f16 *and* bf16 values (the half form for both),
#: and a 4-entry table of 3 distinct values with 1 + 2**-9, an f16 value but no bf16 one (half form into f16,
#: the f32-entry form into bf16).
_RNG = np.random.default_rng(13)
CODEBOOKS = {
    "nf4": lowbit.dtype("nf4"),
    "cb16_random": lowbit.codebook(np.sort(_RNG.uniform(-1.5, 1.5, 16))),
    "cb8_random": lowbit.codebook(_RNG.uniform(-3.0, 3.0, 8)),
    "cb16_exact": lowbit.codebook(np.arange(-8, 8) / 4.0),
    "cb4_three": lowbit.codebook([-0.75, 0.0, 1.0 + 2.0**-9, 0.0]),
}
CB_CASES = [(f, a) for f in CODEBOOKS for a in ("f16", "bf16")]
#: what the packed form may not contain inside the main loop (issue 13): integer -> float conversions per
#: element, and f32 arithmetic or f32 -> f16 rounding on the weight path (the mma's f32 accumulators are not
#: arithmetic instructions).  8-bit codes into bf16 are the named exception (their magic does not fit bf16): they
#: may use F32_MAGIC_OPS, never a conversion from an integer.
FORBIDDEN = ("cvt.rn.f16.u32", "cvt.rn.f16.s32", "cvt.rn.f32.u32", "cvt.rn.f32.s32", "cvt.rn.bf16.u32",
             "cvt.rn.bf16.s32", "mul.rn.f32", "mul.f32", "sub.f32", "sub.rn.f32", "fma.rn.f32",
             "cvt.rn.f16x2.f32", "cvt.rn.bf16x2.f32")  # fmt: skip
INT_TO_FLOAT = ("cvt.rn.f16.u32", "cvt.rn.f16.s32", "cvt.rn.f32.u32", "cvt.rn.f32.s32", "cvt.rn.bf16.u32",
                "cvt.rn.bf16.s32", "cvt.rn.f32.u8", "cvt.rn.f32.s8", "cvt.rn.f32.u16", "cvt.rn.f32.s16")  # fmt: skip
#: the f32 ops the 8-bit -> bf16 form may use: the sub of the magic (and zero), the product by the scale's f32 value
#: where c - z is not a bf16 value, the one rounding pack per pair
F32_MAGIC_OPS = ("sub.rn.f32", "mul.rn.f32", "cvt.rn.bf16x2.f32")


def _np(act: str) -> type:
    return np.float16 if act == "f16" else ml_dtypes.bfloat16


def _dtype(fmt: str):  # noqa: ANN202
    return CODEBOOKS[fmt] if fmt in CODEBOOKS else lowbit.dtype(fmt)


def _codes(dt, k: int, n: int, finite: bool = True) -> np.ndarray:  # noqa: ANN001
    """(k, n) codes cycling with the row and the column: every code in every position (``finite``: the codes
    whose value is not finite replaced by 0)."""
    B = dt.bits
    rows, cols = np.meshgrid(np.arange(k), np.arange(n), indexing="ij")
    codes = ((rows + 3 * cols + rows // (1 << B)) % (1 << B)).astype(np.uint8)
    if finite:
        codes = np.where(np.isfinite(np.asarray(dt.decode(codes.astype(np.uint64)), np.float64)), codes, 0)
    return codes.astype(np.uint8)


def _problem(fmt: str, act: str, k: int, n: int, seed: int, finite: bool = False):  # noqa: ANN202
    """Codes, zeros and scales; ``finite``: only codes with finite values and scales that cannot overflow
    (the identity-matmul check multiplies every weight by zeros: an inf would make NaNs of its column)."""
    dt = _dtype(fmt)
    B = dt.bits
    codes = _codes(dt, k, n, finite)
    groups = -(-k // 128)
    rng = np.random.default_rng(seed)
    fixed = (2.0**-14, 1.0, 2.0**-10, 0.5) if finite else SCALES  # (e5m2's 57344 * 8 would overflow)
    grid = np.array(fixed + tuple(rng.uniform(2.0**-10, 1.0 if finite else 4.0, 4)))
    scales = np.stack([np.roll(grid, g)[np.arange(n) % len(grid)] for g in range(groups)]).astype(_np(act))
    zero = "int" if fmt in INTS + PLANE_INTS else "none"
    zcodes = ((np.arange(groups)[:, None] * 5 + np.arange(n)[None, :]) % (1 << B)).astype(np.uint8)
    zwords = lowbit.pack(zcodes.reshape(-1), B, axis=0) if zero == "int" else None
    words = lowbit.pack(codes, B, axis=0)
    return dt, zero, words, scales, zwords


@lowbit.kernel(num_warps=4)
def dequant_tile(w_ptr: lowbit.ptr("uint32"), s_ptr: lowbit.ptr(A), z_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr(A),
                 K: lowbit.int32, N: lowbit.int32, W: lowbit.constexpr = lowbit.uint4,
                 ZERO: lowbit.constexpr = "int", A: lowbit.constexpr = lowbit.f16, BN: lowbit.constexpr = 32,
                 BK: lowbit.constexpr = 128, ZW: lowbit.constexpr = None):  # fmt: skip
    """The wx_matmul dequantisation chain on one K step, stored as it comes (the store's layout, not mma's);
    ``ZW``: the zeros' dtype (default the codes')."""
    n0 = lowbit.program_id(0) * BN
    words = lowbit.load(lowbit.global_view(w_ptr, (K * W.bits // 32, N)), (0, n0), (BK * W.bits // 32, BN))
    v = lowbit.cast(lowbit.view(words, W, axis=0), lowbit.f32)
    s = lowbit.cast(lowbit.load(lowbit.global_view(s_ptr, (1, N)), (0, n0), (1, BN)), lowbit.f32)
    if ZERO == "int":
        zt = W if ZW is None else ZW
        z = lowbit.cast(lowbit.load(lowbit.global_view(z_ptr, (1, N), dtype=zt), (0, n0), (1, BN)), lowbit.f32)
        wt = (v - z) * s
    else:
        wt = v * s
    lowbit.store(lowbit.global_view(o_ptr, (K, N)), lowbit.cast(wt, A), (0, n0))


@pytest.mark.parametrize("n", [128, 40], ids=["specialised", "unspecialised"])
@pytest.mark.parametrize("fmt, act", DEFAULT + CB_CASES)
def test_every_code_zero_and_scale_bit_identical(fmt: str, act: str, n: int) -> None:
    """Every code x every zero code x scales {2**-14, 1, 8, 60000, random}: inf and NaN results included."""
    k = 128
    dt, zero, words, scales, zwords = _problem(fmt, act, k, n, seed=n)
    cx = dict(W=dt, ZERO=zero, A=lowbit.dtype(act))
    outs = []
    for launch in (dequant_tile.interpret, dequant_tile):
        o = np.full((k, n), np.nan, dtype=_np(act))
        z = zwords if zwords is not None else words
        launch[(-(-n // 32),)](words.copy(), scales[:1].copy(), z.copy(), o, k, n, **cx)
        outs.append(o.view(np.uint16))
    np.testing.assert_array_equal(outs[1], outs[0], err_msg=f"{fmt} -> {act}")
    assert len(np.unique(outs[0])) > (1 << dt.bits)
    prog = dequant_tile.specialize(**cx)
    from lowbit.transforms import Options, lower_vm  # noqa: PLC0415

    assert any(type(op).__name__ == "Dequant" for op in lower_vm(prog, Options(arch="sm_80")).body)


@pytest.mark.parametrize("n", [128, 40], ids=["specialised", "unspecialised"])
@pytest.mark.parametrize("fmt, zw", [("uint8", "int8"), ("int8", "uint8")])
def test_8bit_codes_with_zeros_of_the_other_sign_into_bf16(fmt: str, zw: str, n: int) -> None:
    """uint8 codes with int8 zeros (and int8 with uint8): c - z reaches +-383, no bf16 value, so the f32-magic
    form multiplies by the scale in f32 before its one rounding -- still bit-identical, every code x zero x scale."""
    k = 128
    dt, zero, words, scales, zwords = _problem(fmt, "bf16", k, n, seed=n + 1)
    cx = dict(W=dt, ZERO=zero, A=lowbit.bf16, ZW=lowbit.dtype(zw))
    outs = []
    for launch in (dequant_tile.interpret, dequant_tile):
        o = np.full((k, n), np.nan, dtype=_np("bf16"))
        launch[(-(-n // 32),)](words.copy(), scales[:1].copy(), zwords.copy(), o, k, n, **cx)
        outs.append(o.view(np.uint16))
    np.testing.assert_array_equal(outs[1], outs[0], err_msg=f"{fmt} codes, {zw} zeros -> bf16")
    assert len(np.unique(outs[0])) > 256
    prog = dequant_tile.specialize(**cx)
    ptx = compile_program(prog, "sm_80").ptx
    assert re.search(r"cvt\.rn\.bf16x2\.f32", ptx) and "mul.rn.f32" in ptx
    assert not re.search(r"cvt(\.\w+)*\.f32\.[us]\d+\s", ptx), "an integer -> float conversion in the dequant"


#: the 8-entry random table's 3-bit codes take the per-slot chain, the slowest tile to emulate (~10 s each):
#: the default tier keeps one of its four cases, the full tier runs them all
_SLOW = {("cb8_random", "f16", "specialised"), ("cb8_random", "bf16", "specialised"),
         ("cb8_random", "bf16", "unspecialised")}  # fmt: skip
_TILE_CASES = [pytest.param(f, a, shape, id=f"{f}-{a}-{sid}", marks=pytest.mark.full if (f, a, sid) in _SLOW else ())
               for f, a in DEFAULT + CB_CASES
               for shape, sid in (((128, 128), "specialised"), ((136, 40), "unspecialised"))]  # fmt: skip


@pytest.mark.parametrize("fmt, act, shape", _TILE_CASES)
def test_dequantised_tile_bit_identical(fmt: str, act: str, shape: tuple[int, int]) -> None:
    _run(fmt, act, shape)


@pytest.mark.full
@pytest.mark.parametrize("shape", [(128, 128), (136, 40)], ids=["specialised", "unspecialised"])
@pytest.mark.parametrize("fmt, act", FULL)
def test_dequantised_tile_bit_identical_full(fmt: str, act: str, shape: tuple[int, int]) -> None:
    _run(fmt, act, shape)


#: Bit-plane codes (issue 13's layout versions 2 and 3, :mod:`lowbit.ops.layouts`): widths that split into planes
#: (3 -> 2+1, 5 -> 4+1, 6 -> 4+2, 7 -> 4+2+1), integers with zeros and floats whose sign and top exponent bits
#: sit in the narrow planes; kernel order (3) puts both codes of an f16x2 pair at bits s and s + 16 of each
#: plane word, so the packed form merges planes with shifts and lop3 alone (no prmt).
PLANE_INTS = ("uint3", "int3", "uint5", "int5", "uint6", "int6", "uint7", "int7")
PLANE_FLOATS = ("e3m2", "e2m3", "f5e2m2")
PLANES = [(f, a, 3) for f in PLANE_INTS + PLANE_FLOATS for a in ("f16", "bf16")]
PLANES_DEFAULT = [c for c in PLANES if c[0] in ("uint3", "int5", "uint6", "uint7", "e3m2", "e2m3")]


@pytest.mark.parametrize("shape", [(128, 128), (136, 40)], ids=["specialised", "unspecialised"])
@pytest.mark.parametrize("fmt, act, layout", PLANES_DEFAULT + [("uint6", "f16", 2), ("e2m3", "bf16", 2)])
def test_plane_layouts_bit_identical(fmt: str, act: str, layout: int, shape: tuple[int, int]) -> None:
    """Every code x zero x scale of the plane formats, read from bit planes (kernel order and version 2)."""
    _run(fmt, act, shape, layout)


@pytest.mark.full
@pytest.mark.parametrize("shape", [(128, 128), (136, 40)], ids=["specialised", "unspecialised"])
@pytest.mark.parametrize("fmt, act, layout", [c for c in PLANES if c not in PLANES_DEFAULT])
def test_plane_layouts_bit_identical_full(fmt: str, act: str, layout: int, shape: tuple[int, int]) -> None:
    _run(fmt, act, shape, layout)


def _run(fmt: str, act: str, shape: tuple[int, int], layout: int = 1) -> None:
    """wx_matmul with A = I: C is the dequantised tile, made in the mma B fragments (finite weights)."""
    k, n = shape
    dt, zero, words, scales, zwords = _problem(fmt, act, k, n, seed=k + n, finite=True)
    if layout != 1:
        words = pack_codes(_codes(dt, k, n), dt.bits, layout)
        if zwords is not None:  # the layout's zeros (version 3, widths 3, 5, 6, 7: one byte a zero)
            g = -(-k // 128)
            zwords = pack_zeros(lowbit.unpack(zwords, dt.bits, g * n).reshape(g, n), dt.bits, layout)
    a = np.eye(k, dtype=_np(act))
    bm, bn, bk = tile_config(dt.bits, 128, k, layout)
    cx = dict(W=dt, GROUP=128, ZERO=zero, S=lowbit.dtype(act), A=lowbit.dtype(act), LAYOUT=layout, BM=bm, BN=bn, BK=bk)
    grid = (-(-k // bm), -(-n // bn))
    outs = []
    for launch in (wx_matmul.interpret, wx_matmul):
        c = np.full((k, n), np.nan, dtype=_np(act))
        z = zwords if zwords is not None else words
        spare = np.zeros(1, dtype=_np(act))
        launch[grid](a, words.copy(), scales.copy(), z.copy(), spare, spare.copy(), c, k, n, k, **cx)
        outs.append(c.view(np.uint16))
    ref, got = outs
    bad = np.nonzero(ref != got)
    assert ref.shape == got.shape and not len(bad[0]), (
        f"{fmt} -> {act}: {len(bad[0])} of {ref.size} weights differ, first at (k, n) = "
        f"({bad[0][0]}, {bad[1][0]}): interpreter {ref[bad][0]:#06x}, compiled {got[bad][0]:#06x}"
    )
    assert len(np.unique(ref)) > (1 << dt.bits)  # codes x zeros x scales: many distinct weights, not a constant
    prog = wx_matmul.specialize(**cx)
    ptx = compile_program(prog, "sm_80").ptx
    body = main_loop(ptx)
    m = mix(body)
    if fmt in CODEBOOKS:
        _check_codebook_loop(fmt, act, m)
        return
    if act == "bf16" and dt.bits == 8 and dt.is_int:
        _check_f32_magic_loop(fmt, m)
    else:
        used = {op: c for op, c in m.items() if any(op == f or op.startswith(f + ".") for f in FORBIDDEN)}
        twin = finite_twin(dt, act)
        if used and twin is not None:
            # e5m2 into bf16: its infinities and NaNs have no packed form (the per-slot chain keeps them exact);
            # lowbit.ops reads a weight without such codes through the NaN-free twin, whose loop must be clean
            tw = dict(cx, W=twin)
            used = {op: c for op, c in mix(main_loop(compile_program(wx_matmul.specialize(**tw), "sm_80").ptx)).items()
                    if any(op == f or op.startswith(f + ".") for f in FORBIDDEN)}  # fmt: skip
            assert not used, f"{fmt} -> {act}: even its NaN-free twin's main loop converts or computes in f32: {used}"
            return
        assert not used, f"{fmt} -> {act}: the main loop still converts or computes in f32: {used}"
    prmt = sum(c for op, c in m.items() if op.startswith("prmt"))
    if layout == 3:  # kernel order: every pair is at bits s and s + 16 of its plane words already
        assert prmt == 0, f"{fmt} -> {act}: {prmt} byte permutes in the kernel-order main loop"
    else:
        assert prmt, f"{fmt} -> {act}: no byte permutes in the main loop"


def _check_f32_magic_loop(fmt: str, m: dict) -> None:
    """8-bit codes into bf16 (zeros of the codes' own dtype): per code one prmt into the f32 magic and one f32 sub,
    per pair one rounding pack and one bf16x2 product by the scale pair (c - z, in [-255, 255], is a bf16 value);
    no conversion from an integer, no other f32 arithmetic."""
    conv = {op: c for op, c in m.items() if re.match(r"cvt(\.\w+)*\.(f16|bf16|f32|f64)\.[us]\d+$", op)}
    assert not conv, f"{fmt} -> bf16: the main loop converts integers to floats: {conv}"
    f32 = {op: c for op, c in m.items() if any(op == f or op.startswith(f + ".") for f in FORBIDDEN)}
    assert set(f32) <= set(F32_MAGIC_OPS), f"{fmt} -> bf16: f32 arithmetic beyond the magic form: {f32}"
    packs, subs = m.get("cvt.rn.bf16x2.f32", 0), m.get("sub.rn.f32", 0)
    assert packs > 0 and subs == 2 * packs, m
    assert "mul.rn.f32" not in m and m.get("fma.rn.bf16x2", 0) == packs, f"{fmt} -> bf16: not the pair form: {m}"
    assert sum(c for op, c in m.items() if op.startswith("prmt")) >= 2 * packs, m


def _codebook_form(fmt: str, act: str) -> str:
    """The form the compiler should pick (an independent statement of the rule, not a call of it): the half
    pair table when every entry is exact in ``act``, the f32-entry table otherwise, the chain for 3-bit codes
    in layout 1 (codes straddle words: no pair index)."""
    dt = CODEBOOKS[fmt]
    if dt.bits == 3:
        return "chain"
    t = np.asarray(dt.table, dtype=np.float32)
    return "half" if np.array_equal(t.astype(_np(act)).astype(np.float32), t) else "single"


def _check_codebook_loop(fmt: str, act: str, m: dict) -> None:
    """The main loop of a codebook's wx_matmul: table lookups and the scale, no select chain."""
    form = _codebook_form(fmt, act)
    selects = sum(c for op, c in m.items() if op.startswith("selp"))
    lds = {op: c for op, c in m.items() if op.startswith("ld.shared")}
    if form == "chain":
        assert selects >= 64, f"{fmt} -> {act}: expected the per-slot chain, got {m}"
        return
    want = "ld.shared.b32" if form == "half" else "ld.shared.v2"
    assert sum(c for op, c in lds.items() if op.startswith(want)) >= 4, f"{fmt} -> {act}: no {want} lookups: {m}"
    assert selects < 16, f"{fmt} -> {act}: the main loop still selects per code: {m}"
    if CODEBOOKS[fmt].bits == 4:  # a pair of 4-bit codes is a byte of the word: one prmt picks it
        assert any(op.startswith("prmt") for op in m), f"{fmt} -> {act}: no byte permutes in the main loop"
    if form == "half":
        used = {op: c for op, c in m.items() if any(op == f or op.startswith(f + ".") for f in FORBIDDEN)}
        assert not used, f"{fmt} -> {act}: the half-table form computes in f32: {used}"
    else:  # two f32 muls and one rounding pack per pair, nothing converted from an integer
        assert not any(op.startswith(("cvt.rn.f32.u32", "cvt.rn.f32.s32")) for op in m), m


def test_codebook_table_is_built_once_before_the_loop() -> None:
    """One pair_table + barrier at the program's start, read by the dequant in the loop; none for 3-bit codes."""
    from lowbit.transforms import Options, lower_vm  # noqa: PLC0415

    for fmt, want in (("nf4", 256 * 2), ("cb16_exact", 256), ("cb4_three", 16), ("cb8_random", 0)):
        cx = dict(W=CODEBOOKS[fmt], GROUP=128, ZERO="none", S=lowbit.f16, A=lowbit.f16, BM=16, BN=32, BK=32)
        body = lower_vm(wx_matmul.specialize(**cx), Options(arch="sm_80")).body
        kinds = [type(op).__name__ for op in body]
        if not want:  # 3-bit codes straddle words: no pair index, so no table either
            assert "PairTable" not in kinds
            continue
        assert kinds[:3] == ["AllocShared", "PairTable", "Barrier"], kinds[:4]
        assert body[0].result.type.shape == (want,) and kinds.count("PairTable") == 1
        loop = next(op for op in body if type(op).__name__ == "For")
        deq = [op for op in loop.body if type(op).__name__ == "Dequant"]
        assert deq and all(op.table is body[0].result for op in deq)
