"""The hardware form of float dequantisation (``cvt.rn.f16x2.<f>x2``) is bit-identical to the interpreter.

Same method as :mod:`tests.transforms.test_dequant_exact` (whose kernels and
problems this reuses): the interpreter runs the f32 chain as written, the
compiled kernel -- PTX for the named target, on the emulator -- the packed
form the lowering chose.  ``dequant_tile`` covers every code (NaN and
infinity codes included) times scales {2**-14, 1, 8, 60000, random};
``wx_matmul`` with A = I covers the mma B fragments of layouts 1, 2 and 3.
Each case also says which form the cost rule must pick (``True``: the
hardware ``cvt``), checked on the main loop's PTX, and the rule itself is
checked on the trial costs the lowering computed.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import lowbit
from lowbit.compiler import compile_program
from lowbit.codegen.ptxas import assemble
from lowbit.kernels.wx_matmul import tile_config, wx_matmul
from lowbit.ops._fold import fold_exponent
from lowbit.ops.layouts import pack_codes
from lowbit.transforms import Options, lower
from lowbit.transforms import _dequant_floats as F
from tests.transforms.ptx_loops import main_loop, mix
from tests.transforms.test_dequant_exact import FORBIDDEN, _codes, _problem, dequant_tile

KIND = {"e4m3fn": "e4m3x2", "e5m2": "e5m2x2", "e2m1": "e2m1x2", "e2m3": "e2m3x2", "e3m2": "e3m2x2"}
ML = {"e4m3x2": ml_dtypes.float8_e4m3fn, "e5m2x2": ml_dtypes.float8_e5m2, "e2m1x2": ml_dtypes.float4_e2m1fn,
      "e2m3x2": ml_dtypes.float6_e2m3fn, "e3m2x2": ml_dtypes.float6_e3m2fn}  # fmt: skip


# ----------------------------------------------------------------------------------------------- which formats qualify


@pytest.mark.parametrize("kind", sorted(F._HW))
def test_the_instruction_table_is_the_ocp_format(kind: str) -> None:
    """What the lowering assumes ``cvt`` gives for each code equals ml_dtypes' decoding (independent reference)."""
    got = F._hw_table(kind)
    want = np.arange(len(got)).astype(np.uint8).view(ML[kind]).astype(np.float64)
    fin = ~np.isnan(want)
    assert np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got[fin]), np.signbit(want[fin]))


def test_which_formats_targets_and_factors_get_the_instruction() -> None:
    e4m3 = lowbit.dtype("e4m3fn")
    assert F.hw_kind(e4m3, "f16", 1.0, "sm_89") == "e4m3x2"
    assert F.hw_kind(e4m3, "f16", 2.0**-8, "sm_90a") == "e4m3x2"  # FOLD's factor: every value * 2**-8 is an f16
    assert F.hw_kind(e4m3, "f16", 2.0**-20, "sm_89") is None  # 2**-9 * 2**-20 is below f16's smallest subnormal
    assert F.hw_kind(e4m3, "f16", 1.0, "sm_86") is None and F.hw_kind(e4m3, "f16", 1.0, "sm_80") is None
    assert F.hw_kind(e4m3, "bf16", 1.0, "sm_100a") is None  # no bf16x2 destination on any target
    assert F.hw_kind(lowbit.dtype("e5m2"), "f16", 1.0, "sm_90") == "e5m2x2"
    for fmt in ("e2m1", "e2m3", "e3m2"):
        assert F.hw_kind(lowbit.dtype(fmt), "f16", 1.0, "sm_100a") == KIND[fmt]
        assert F.hw_kind(lowbit.dtype(fmt), "f16", 1.0, "sm_120a") == KIND[fmt]
        assert F.hw_kind(lowbit.dtype(fmt), "f16", 1.0, "sm_90a") is None
        assert F.hw_kind(lowbit.dtype(fmt), "f16", 1.0, "sm_89") is None
    # same fields, other meaning: e4m3fn's NaN-free twin reads 0x7f as 480, which cvt makes NaN
    from lowbit.ops._fold import finite_twin  # noqa: PLC0415

    twin = finite_twin(e4m3, "f16")
    assert twin is not None and F.hw_kind(twin, "f16", 1.0, "sm_89") is None
    assert F.hw_kind(lowbit.FloatType(4, 3, bias=8, nan="fn"), "f16", 1.0, "sm_89") is None  # another bias


# ----------------------------------------------------------------------------------------------- bit identity

#: (format, target, hardware form expected in the main loop)
TILE_CASES = [("e4m3fn", "sm_89", True), ("e5m2", "sm_89", True), ("e2m1", "sm_100a", True)]


def _spy(monkeypatch: pytest.MonkeyPatch) -> list:
    log: list = []
    real = F._trial_cost

    def spy(ctx, make, words):  # noqa: ANN001, ANN202
        c = real(ctx, make, words)
        log.append(c)
        return c

    monkeypatch.setattr(F, "_trial_cost", spy)
    return log


def _check_form(prog, arch: str, fmt: str, hw: bool, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: ANN001
    """The lowering's choice follows the rule (fewer instructions; a tie keeps the bit path) and the PTX shows it."""
    log = _spy(monkeypatch)
    kernel = lower(prog, Options(arch=arch))
    assert log and len(log) % 2 == 0, log  # every float dequant priced both forms
    wins = [hwc is not None and (bits is None or hwc < bits) for bits, hwc in zip(log[::2], log[1::2])]
    assert all(w == hw for w in wins), f"{fmt} on {arch}: trial costs (bits, hw) {log}"
    assert kernel is not None
    monkeypatch.undo()
    ptx = compile_program(prog, arch).ptx
    op = f"cvt.rn.f16x2.{KIND[fmt]}"
    assert (op in ptx) == hw, f"{fmt} on {arch}: {op} {'missing' if hw else 'present'}"
    return ptx


@pytest.mark.parametrize("fmt, arch, hw", TILE_CASES)
def test_every_code_and_scale_bit_identical(fmt: str, arch: str, hw: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every code (NaN and inf codes included) x scales {2**-14, 1, 8, 60000, random}: interpreter == PTX."""
    k, n = 128, 40
    dt, zero, words, scales, _ = _problem(fmt, "f16", k, n, seed=n)
    cx = dict(W=dt, ZERO=zero, A=lowbit.f16)
    outs = []
    for launch in (dequant_tile.interpret, dequant_tile.on(arch)):
        o = np.full((k, n), np.nan, dtype=np.float16)
        launch[(-(-n // 32),)](words.copy(), scales[:1].copy(), words.copy(), o, k, n, **cx)
        outs.append(o.view(np.uint16))
    np.testing.assert_array_equal(outs[1], outs[0], err_msg=f"{fmt} on {arch}")
    assert len(np.unique(outs[0])) > (1 << dt.bits)
    if np.isnan(np.asarray(dt.decode(np.arange(1 << dt.bits, dtype=np.uint64)), np.float64)).any():
        assert np.isnan(outs[0].view(np.float16)).any()  # the NaN codes were there
    _check_form(dequant_tile.specialize(**cx), arch, fmt, hw, monkeypatch)


#: (format, target, layout, FOLD, hardware form expected) for wx_matmul with A = I
MM_CASES = [
    ("e4m3fn", "sm_89", 1, False, True),
    ("e4m3fn", "sm_89", 1, True, True),  # FOLD: the factor 2**-8 is one exact mul after the cvt
    ("e5m2", "sm_89", 1, False, False),  # a tie (one op a pair on the codes each): the bit path stays
    ("e4m3fn", "sm_89", 3, False, True),
    ("e5m2", "sm_90", 3, False, False),  # kernel order: e5m2's fields are f16's top byte, the bit path is cheaper
    ("e2m1", "sm_100a", 1, False, True),
    ("e2m1", "sm_100a", 3, True, False),  # kernel order + FOLD: the nibble merge plus the mul cost more
    ("e2m3", "sm_100a", 2, False, True),
    ("e3m2", "sm_120a", 2, True, True),
    ("e3m2", "sm_100a", 3, False, False),
]


@pytest.mark.parametrize("fmt, arch, layout, fold, hw", MM_CASES)
def test_wx_matmul_tile_bit_identical(fmt: str, arch: str, layout: int, fold: bool, hw: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """wx_matmul with A = I: C is the dequantised tile made in the mma B fragments; interpreter == PTX."""
    k, n = 136, 40  # two groups, the last of 8 rows; N not a multiple of the tile
    dt, zero, words, scales, _ = _problem(fmt, "f16", k, n, seed=k + n, finite=True)
    if layout != 1:
        words = pack_codes(_codes(dt, k, n), dt.bits, layout)
    a = np.eye(k, dtype=np.float16)
    bm, bn, bk = tile_config(dt.bits, 128, k, layout)
    cx = dict(W=dt, GROUP=128, ZERO=zero, S=lowbit.f16, A=lowbit.f16, LAYOUT=layout, BM=bm, BN=bn, BK=bk, FOLD=fold)
    if fold:  # the kernel takes s * 2**F (exact here: s <= 1, F <= 14) and reads each code as v * 2**-F
        assert np.isfinite(scales.astype(np.float64) * 2.0 ** fold_exponent(dt, "f16")).all()
    grid = (-(-k // bm), -(-n // bn))
    outs = []
    for launch in (wx_matmul.interpret, wx_matmul.on(arch)):
        c = np.full((k, n), np.nan, dtype=np.float16)
        spare = np.zeros(1, dtype=np.float16)
        launch[grid](a, words.copy(), scales.copy(), words.copy(), spare, spare.copy(), c, k, n, k, **cx)
        outs.append(c.view(np.uint16))
    ref, got = outs
    bad = np.nonzero(ref != got)
    assert not len(bad[0]), f"{fmt} on {arch}, layout {layout}: {len(bad[0])} of {ref.size} weights differ"
    assert len(np.unique(ref)) > (1 << dt.bits)
    ptx = _check_form(wx_matmul.specialize(**cx), arch, fmt, hw, monkeypatch)
    m = mix(main_loop(ptx))
    used = {op: c for op, c in m.items() if any(op == f or op.startswith(f + ".") for f in FORBIDDEN)}
    assert not used, f"{fmt} on {arch}: the main loop converts or computes in f32: {used}"


# ----------------------------------------------------------------------------------------------- ptxas, sm_80


@pytest.mark.parametrize("fmt, arch", [("e4m3fn", "sm_89"), ("e5m2", "sm_90"), ("e4m3fn", "sm_90a"),
                                       ("e2m1", "sm_100a"), ("e2m1", "sm_120a"), ("e2m3", "sm_100a")])  # fmt: skip
def test_ptxas_accepts_the_hardware_form(fmt: str, arch: str, ptxas_path: str) -> None:
    dt = lowbit.dtype(fmt)
    layout = 2 if dt.bits == 6 else 1
    bm, bn, bk = tile_config(dt.bits, 128, 128, layout)
    cx = dict(W=dt, GROUP=128, ZERO="none", S=lowbit.f16, A=lowbit.f16, LAYOUT=layout, BM=bm, BN=bn, BK=bk)
    prog = wx_matmul.specialize(**cx)
    if fmt == "e5m2":  # wx_matmul keeps e5m2's bit path (a tie); dequant_tile's store layout takes the cvt
        prog = dequant_tile.specialize(W=dt, ZERO="none", A=lowbit.f16)
    ptx = compile_program(prog, arch).ptx
    assert f"cvt.rn.f16x2.{KIND[fmt]}" in ptx
    asm = assemble(ptx, arch)
    assert asm.cubin, asm.log


def test_targets_without_the_instruction_keep_the_bit_path() -> None:
    """sm_80/sm_86 (no FP8 cvt) and sm_90a (no FP4/FP6 cvt): the lowering never tries the hardware form."""
    for fmt, arch in (("e4m3fn", "sm_80"), ("e4m3fn", "sm_86"), ("e2m1", "sm_90a"), ("e2m1", "sm_89")):
        dt = lowbit.dtype(fmt)
        bm, bn, bk = tile_config(dt.bits, 128, 128, 1)
        cx = dict(W=dt, GROUP=128, ZERO="none", S=lowbit.f16, A=lowbit.f16, BM=bm, BN=bn, BK=bk)
        ptx = compile_program(wx_matmul.specialize(**cx), arch).ptx
        assert "cvt.rn.f16x2.e" not in ptx, (fmt, arch)


# ----------------------------------------------------------------------------------------------- lowbit.ops end to end

#: (format, target, layout): quantize_weight + matmul(backend="emulator") compiled for that target
#: (format, target, layout, hardware form expected): quantize_weight + matmul(backend="emulator") for that target.
#: The weights hold no NaN code, so e4m3 is read through its NaN-free twin (no hardware form: its 0x7f is a finite
#: 480, cvt's NaN); e5m2's B fragments are a tie (the bit path stays).
OPS_CASES = [("e5m2", "sm_89", 1, False), ("e4m3", "sm_90", 1, False), ("e2m1", "sm_100a", 1, True),
             ("mxfp4", "sm_120a", 1, True), ("e2m3", "sm_100a", 2, True), ("e3m2", "sm_100a", 2, True)]  # fmt: skip


@pytest.mark.parametrize("fmt, arch, layout, hw", OPS_CASES)
def test_matmul_on_the_target_matches_float64(fmt: str, arch: str, layout: int, hw: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Odd shapes (M = 3, N = 136, K = 288), random weights: C within the rounding bound of the float64 product."""
    import lowbit.ops as ops  # noqa: PLC0415
    from lowbit.ops import _launch  # noqa: PLC0415
    from tests.ops.reference import dequantize_reference, gemm_bound  # noqa: PLC0415

    rng = np.random.default_rng(abs(hash((fmt, arch))) % 2**32)
    qw = ops.quantize_weight(rng.standard_normal((288, 136)) * 0.5, fmt, layout=layout)
    a = rng.standard_normal((3, 288)).astype(np.float16)
    real = _launch.kernel()
    monkeypatch.setattr(_launch, "kernel", lambda: real.on(arch))
    c = ops.matmul(a, qw, backend="emulator")
    ref, bound = gemm_bound(a, dequantize_reference(qw), None)
    err = np.abs(c.astype(np.float64) - ref)
    assert np.isfinite(c.astype(np.float64)).all() and (err <= bound).all(), f"{fmt} on {arch}: max excess {np.max(err - bound)}"
    ptx = compile_program(real.last_launch.program, arch).ptx
    assert ("cvt.rn.f16x2.e" in ptx) == hw, fmt


def test_a_rolled_back_trial_leaves_no_trace() -> None:
    """Builder.mark/rollback (the trial builds' basis): the ops go, and building again reuses the same names."""
    from lowbit.ir.simt.builder import Builder  # noqa: PLC0415
    from lowbit.ir.simt.types import I32, Const  # noqa: PLC0415

    b = Builder("k", 32)
    x = b.binary("add", Const(1, I32), Const(2, I32), "x")
    m = b.mark()
    y = b.binary("mul", x, x, "y")
    dropped = b.rollback(m)
    assert [op.result for op in dropped] == [y]
    again = b.binary("shl", x, Const(1, I32), "y")
    assert again.name == y.name and b.finish().body[-1].result is again and len(b.finish().body) == 2


# ----------------------------------------------------------------------------------------------- every placement


def _forced_hw_run(kernel, arch: str, grid: tuple, args: list, cx: dict, tmp_path, monkeypatch) -> str:  # noqa: ANN001
    """Run ``kernel`` on the emulator compiled for ``arch`` with the bit path unavailable (the hardware form wherever
    it applies), through a private compile cache so that nothing forced reaches another test; returns the PTX."""
    from lowbit.binder import Binder  # noqa: PLC0415
    from lowbit.compiler.cache import CompileCache  # noqa: PLC0415
    from lowbit.compiler.driver import run_bound_on_emulator  # noqa: PLC0415

    runtime, cxb = kernel.bind(tuple(args), dict(cx))
    prog = kernel.compiler.specialize(None, None, **cxb)
    bound = Binder.of(prog).bind(runtime)
    prog = kernel.with_facts(prog, bound.facts)
    with monkeypatch.context() as mp:
        mp.setattr(F, "float_map", lambda *a: None)
        ck = compile_program(prog, arch, cache=CompileCache(tmp_path / "forced"))
    run_bound_on_emulator(ck, grid, bound)
    return ck.ptx


#: placements the cost rule does not pick in the cases above: kernel order for 4- and 6-bit codes (the nibble merge,
#: the byte permute and FP6's mask), e5m2's side-by-side B-fragment pairs, and bit planes with FOLD's factor
FORCED = [("e2m1", "sm_100a", 3, False), ("e2m3", "sm_100a", 3, False), ("e3m2", "sm_120a", 3, True),
          ("e5m2", "sm_89", 1, False), ("e5m2", "sm_90", 3, True), ("e2m1", "sm_100a", 2, True)]  # fmt: skip


@pytest.mark.parametrize("fmt, arch, layout, fold", FORCED)
def test_every_operand_placement_bit_identical(fmt: str, arch: str, layout: int, fold: bool, tmp_path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    k, n = 136, 40
    dt, zero, words, scales, _ = _problem(fmt, "f16", k, n, seed=k + n + layout, finite=True)
    if layout != 1:
        words = pack_codes(_codes(dt, k, n), dt.bits, layout)
    a = np.eye(k, dtype=np.float16)
    bm, bn, bk = tile_config(dt.bits, 128, k, layout)
    cx = dict(W=dt, GROUP=128, ZERO=zero, S=lowbit.f16, A=lowbit.f16, LAYOUT=layout, BM=bm, BN=bn, BK=bk, FOLD=fold)
    grid = (-(-k // bm), -(-n // bn))
    spare = np.zeros(1, dtype=np.float16)
    ref = np.full((k, n), np.nan, dtype=np.float16)
    wx_matmul.interpret[grid](a, words.copy(), scales.copy(), words.copy(), spare, spare.copy(), ref, k, n, k, **cx)
    got = np.full((k, n), np.nan, dtype=np.float16)
    args = [a, words.copy(), scales.copy(), words.copy(), spare, spare.copy(), got, k, n, k]
    ptx = _forced_hw_run(wx_matmul, arch, grid, args, cx, tmp_path, monkeypatch)
    assert f"cvt.rn.f16x2.{KIND[fmt]}" in ptx
    bad = np.nonzero(ref.view(np.uint16) != got.view(np.uint16))
    assert not len(bad[0]), f"{fmt} on {arch}, layout {layout}: {len(bad[0])} of {ref.size} weights differ"
    assert len(np.unique(ref)) > (1 << dt.bits)


@lowbit.kernel(num_warps=4)
def cast_tile(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("f16"), K: lowbit.int32, N: lowbit.int32,
              W: lowbit.constexpr = lowbit.uint4, BN: lowbit.constexpr = 32, BK: lowbit.constexpr = 128):  # fmt: skip
    """``cast(codes, f16)`` with no scale: the cvt's own result is stored (NaN and infinity bits included)."""
    n0 = lowbit.program_id(0) * BN
    words = lowbit.load(lowbit.global_view(w_ptr, (K * W.bits // 32, N)), (0, n0), (BK * W.bits // 32, BN))
    lowbit.store(lowbit.global_view(o_ptr, (K, N)), lowbit.cast(lowbit.view(words, W, axis=0), lowbit.f16), (0, n0))


@pytest.mark.parametrize("fmt, arch", [("e4m3fn", "sm_89"), ("e5m2", "sm_90a"), ("e2m1", "sm_100a")])
def test_a_plain_cast_keeps_nan_and_inf_bits(fmt: str, arch: str) -> None:
    dt = lowbit.dtype(fmt)
    k, n = 128, 32
    words = lowbit.pack(_codes(dt, k, n, finite=False), dt.bits, axis=0)
    outs = []
    for launch in (cast_tile.interpret, cast_tile.on(arch)):
        o = np.full((k, n), 1.0, np.float16)
        launch[(1,)](words.copy(), o, k, n, W=dt)
        outs.append(o.view(np.uint16))
    np.testing.assert_array_equal(outs[1], outs[0], err_msg=f"{fmt} on {arch}")
    values = np.asarray(dt.decode(np.arange(1 << dt.bits, dtype=np.uint64)), np.float64)
    assert np.isnan(outs[0].view(np.float16)).any() == np.isnan(values).any()
    assert np.isinf(outs[0].view(np.float16)).any() == np.isinf(values).any()
    assert f"cvt.rn.f16x2.{KIND[fmt]}" in compile_program(cast_tile.specialize(W=dt), arch).ptx
