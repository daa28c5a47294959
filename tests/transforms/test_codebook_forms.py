"""Codebook lookups in every form (issue 13, "codebooks"): the register table read with prmt, the shared pair table
as f16x2 (``half``) or f32 (``single``) entries, unreplicated or in copies against bank conflicts -- each
bit-identical to the interpreter, the choice among them the cost model's, the bank model's table counts right.

The kernels are ``wx_matmul`` with A = the identity (C *is* the dequantised tile, made in the mma B fragments,
as tests/transforms/test_dequant_exact.py checks it) and ``dequant_tile`` (the chain stored as it comes), compiled
with ``Options.codebook`` forcing a form and run on the emulator; the interpreter runs the f32 chain as written.
Codes are uniformly random so that every one of the 256 code pairs occurs (asserted): a wrong word of a replicated
table, a wrong byte of a register table or a wrong top-bit mask shows.  Tables: nf4 as ``lowbit.ops`` launches it
(rounded to the activation dtype, ``_fold.codebook_in``), a random 16-entry table rounded to f16 (exact in f16, not
in bf16: there the half and register forms do not apply and the model's f32-entry form is used), an exact table of
quarter steps, and a random f32 table (f32 entries only).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import lowbit
from lowbit.binder import Binder
from lowbit.compiler import compile_program
from lowbit.compiler.driver import run_bound_on_emulator
from lowbit.kernels.wx_matmul import tile_config, wx_matmul
from lowbit.ops._fold import codebook_in
from lowbit.ops.layouts import pack_codes
from lowbit.transforms import Options, lower_vm
from lowbit.transforms import _lower_codebook as cb
from tests.transforms.ptx_loops import instructions, main_loop, mix

_RNG = np.random.default_rng(1313)
TABLES = {
    "nf4_f16": codebook_in(lowbit.dtype("nf4"), "f16"),
    "nf4_bf16": codebook_in(lowbit.dtype("nf4"), "bf16"),
    "cb16_f16": lowbit.codebook(np.sort(_RNG.uniform(-2.0, 2.0, 16)).astype(np.float16).astype(np.float64)),
    "cb16_exact": lowbit.codebook(np.arange(-8, 8) / 4.0),
    "cb16_f32": lowbit.codebook(np.sort(_RNG.uniform(-1.5, 1.5, 16))),
}


def _np(act: str) -> type:
    return np.float16 if act == "f16" else ml_dtypes.bfloat16


def _launch(kernel, grid: tuple, args: tuple, cx: dict, codebook: str):  # noqa: ANN001,ANN202
    """``kernel[grid](*args, **cx)`` on the emulator, compiled with ``Options.codebook = codebook``."""
    runtime, cxb = kernel.bind(args, dict(cx))
    prog = kernel.compiler.specialize(None, None, **cxb)
    bound = Binder.of(prog).bind(runtime)
    prog = kernel.with_facts(prog, bound.facts)
    ck = compile_program(prog, "sm_80", codebook=codebook)
    run_bound_on_emulator(ck, grid, bound)
    return ck


def _form_of(dt, act: str, force: str) -> cb.Choice | None:  # noqa: ANN001
    return cb.choose(dt, act, None, lowbit.dtype(act), 1.0, force=force)


def _identity_run(name: str, act: str, layout: int, force: str, shape: tuple[int, int] = (136, 40)) -> str:
    """wx_matmul with A = I on random codes: the compiled kernel (form ``force``) equals the interpreter bit for
    bit.  Returns the main loop's PTX."""
    dt = TABLES[name]
    k, n = shape
    rng = np.random.default_rng(k * n + layout)
    codes = rng.integers(0, 16, size=(k, n)).astype(np.uint8)
    pairs = set((codes[0::2][: k // 2] | codes[1::2][: k // 2] << 4).reshape(-1).tolist())
    assert len(pairs) == 256, "every code pair occurs"
    words = pack_codes(codes, 4, layout) if layout != 1 else lowbit.pack(codes, 4, axis=0)
    groups = -(-k // 128)
    grid_s = np.array([2.0**-14, 1.0, 8.0, 0.5, *rng.uniform(2.0**-10, 1.0, 4)])
    scales = np.stack([np.roll(grid_s, g)[np.arange(n) % len(grid_s)] for g in range(groups)]).astype(_np(act))
    a = np.eye(k, dtype=_np(act))
    bm, bn, bk = tile_config(4, 128, k, layout)
    cx = {"W": dt, "GROUP": 128, "ZERO": "none", "S": lowbit.dtype(act), "A": lowbit.dtype(act), "LAYOUT": layout,
          "BM": bm, "BN": bn, "BK": bk}  # fmt: skip
    grid = (-(-k // bm), -(-n // bn))
    spare = np.zeros(1, dtype=_np(act))
    ref = np.full((k, n), np.nan, dtype=_np(act))
    wx_matmul.interpret[grid](a, words.copy(), scales.copy(), words.copy(), spare, spare.copy(), ref, k, n, k, **cx)
    got = np.full((k, n), np.nan, dtype=_np(act))
    ck = _launch(wx_matmul, grid, (a, words.copy(), scales.copy(), words.copy(), spare, spare.copy(), got, k, n, k),
                 cx, force)  # fmt: skip
    r, g = ref.view(np.uint16), got.view(np.uint16)
    bad = np.nonzero(r != g)
    assert not len(bad[0]), (f"{name} -> {act}, layout {layout}, {force}: {len(bad[0])} of {r.size} weights differ, "
                             f"first at {bad[0][0], bad[1][0]}: interpreter {r[bad][0]:#06x}, compiled {g[bad][0]:#06x}")
    assert len(np.unique(r)) > 64
    return main_loop(ck.ptx)


def _check_loop(body: str, choice: cb.Choice) -> None:
    m = mix(body)
    lds = sum(c for op, c in m.items() if op.startswith("ld.shared.b32"))
    v2 = sum(c for op, c in m.items() if op.startswith("ld.shared.v2"))
    assert sum(c for op, c in m.items() if op.startswith("selp")) < 16, m
    if choice.form == "reg":
        assert lds == 0 and v2 == 0 and m.get("prmt.b32", 0) >= 32, m  # no table lookups: prmt reads registers
    elif choice.form == "half":
        assert lds >= 8, m
    else:
        assert v2 >= 8, m


CASES = [
    ("nf4_f16", "f16", 1, "reg"), ("nf4_f16", "f16", 3, "reg"), ("nf4_bf16", "bf16", 1, "reg"),
    ("nf4_bf16", "bf16", 3, "reg"), ("cb16_exact", "bf16", 3, "reg"), ("cb16_f16", "f16", 1, "reg"),
    ("nf4_f16", "f16", 1, "half:32"), ("nf4_f16", "f16", 3, "half:2"), ("nf4_bf16", "bf16", 1, "half:8"),
    ("cb16_f32", "f16", 1, "single:4"), ("cb16_f32", "bf16", 3, "single:2"), ("cb16_f16", "bf16", 1, "reg"),
    ("nf4_f16", "f16", 3, "auto"), ("cb16_f32", "f16", 3, "auto"),
]  # fmt: skip


@pytest.mark.parametrize("name, act, layout, force", CASES)
def test_forms_bit_identical_every_code_pair(name: str, act: str, layout: int, force: str) -> None:
    choice = _form_of(TABLES[name], act, force)
    assert choice is not None
    if force != "auto":  # the forced form where it is exact (cb16_f16 into bf16: not exact, the model's form)
        exact = cb.entries(TABLES[name], act, 1.0, "half") is not None
        want = force.split(":")[0]
        assert choice.form == (want if exact or want == "single" else "single"), choice[:2]
    _check_loop(_identity_run(name, act, layout, force), choice)


@pytest.mark.parametrize("force, copies", [("half:4", 4), ("single:2", 2), ("half", 1), ("reg", 0)])
def test_replicated_table_is_built_in_copies(force: str, copies: int) -> None:
    """The prologue's pair_table has the copies asked for and a buffer of that size; the register form has none."""
    dt = TABLES["nf4_f16"] if force != "single:2" else TABLES["cb16_f32"]
    cx = {"W": dt, "GROUP": 128, "ZERO": "none", "S": lowbit.f16, "A": lowbit.f16, "BM": 16, "BN": 32, "BK": 32}
    body = lower_vm(wx_matmul.specialize(**cx), Options(arch="sm_80", codebook=force)).body
    tables = [op for op in body if type(op).__name__ == "PairTable"]
    loop = next(op for op in body if type(op).__name__ == "For")
    deq = [op for op in loop.body if type(op).__name__ == "Dequant"]
    assert deq
    if not copies:
        assert not tables and all(op.lookup == "reg" and op.table is None for op in deq)
        return
    assert len(tables) == 1 and tables[0].copies == copies
    words = 256 * (1 if force.startswith("half") else 2) * copies
    assert tables[0].dst.type.shape == (words,) and all(op.table is tables[0].dst for op in deq)


# ----------------------------------------------------------------------------------------------- the cost model


def _argmin(c: dict, n: int = 16) -> tuple[str, int]:
    size = {"reg": 0, "chain": 0, "half": 4, "single": 8}
    return min(c, key=lambda k: (c[k], size[k[0]] * n * n * k[1], k[1]))


def test_choice_is_the_models_for_nf4_in_both_orders_and_a_user_table() -> None:
    f16, bf16 = lowbit.f16, lowbit.bf16
    for order in ("adjacent", "split"):
        for t, act in ((TABLES["nf4_f16"], f16), (TABLES["nf4_bf16"], bf16)):
            c = cb.costs(16, zero=False, scale=True, factor=False, half_ok=True, order=order)
            assert ("reg", 1) in c and ("half", 1) in c and ("single", 1) in c
            got = cb.choose(t, act.name, None, act, 1.0, order=order)
            assert got[:2] == _argmin(c) == ("half", 1), (order, c)
            # the numbers the docstring states: index + load + mul + E[wavefronts]; the register table's 5.5 + 1
            assert c[("half", 1)] == pytest.approx(cb.INDEX_COST[order] + 2 + 3.128, abs=0.01)
            assert c[("reg", 1)] == cb.SELECTOR_COST[order] + 5.5 + 1
    # a user table of f32 values: no 16-bit form is exact -> the f32-entry table, unreplicated
    t = TABLES["cb16_f32"]
    c = cb.costs(16, zero=False, scale=True, factor=False, half_ok=False)
    assert ("reg", 1) not in c and ("half", 1) not in c
    assert cb.choose(t, "f16", None, f16, 1.0)[:2] == _argmin(c) == ("single", 1)
    # exact into f16, not into bf16 (random f16 values need 11 significant bits)
    assert cb.choose(TABLES["cb16_f16"], "f16", None, f16, 1.0)[:2] == ("half", 1)
    assert cb.choose(TABLES["cb16_f16"], "bf16", None, bf16, 1.0)[:2] == ("single", 1)
    # a zero point rules the 16-bit forms out
    assert cb.choose(TABLES["nf4_f16"], "f16", lowbit.f16, f16, 1.0)[:2] == ("single", 1)


def test_the_wavefront_weight_moves_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a wavefront costs what an SM's four issue slots cost, the register table wins (no shared memory);
    where the byte cap allows 32 copies, conflict-free lookups win over one copy."""
    monkeypatch.setattr(cb, "WF_WEIGHT", 4.0)
    assert cb.choose(TABLES["nf4_f16"], "f16", None, lowbit.f16, 1.0)[:2] == ("reg", 1)
    monkeypatch.setattr(cb, "WF_WEIGHT", 1.0)
    monkeypatch.setattr(cb, "TABLE_BYTES_MAX", 32768)
    c = cb.costs(16, zero=False, scale=True, factor=False, half_ok=True, max_bytes=32768)
    assert c[("half", 32)] == pytest.approx(1 + 1 + 1 + 1 + 1.0)
    assert cb.choose(TABLES["nf4_f16"], "f16", None, lowbit.f16, 1.0)[:2] == ("half", 32) == _argmin(c)


def test_forced_forms_and_bad_names() -> None:
    t = TABLES["nf4_f16"]
    assert cb.choose(t, "f16", None, lowbit.f16, 1.0, force="reg").form == "reg"
    assert cb.choose(t, "f16", None, lowbit.f16, 1.0, force="half:32")[:2] == ("half", 32)  # beyond the byte cap
    assert cb.choose(t, "f16", None, lowbit.f16, 1.0, force="single")[:2] == ("single", 1)
    assert cb.choose(t, "f16", None, lowbit.f16, 1.0, force="chain") is None
    # not exact: the model's choice instead
    assert cb.choose(TABLES["cb16_f32"], "f16", None, lowbit.f16, 1.0, force="reg")[:2] == ("single", 1)
    for bad in ("regs", "half:3", "reg:2", "single:64", ""):
        with pytest.raises(lowbit.errors.LowbitError, match="codebook form"):
            Options(codebook=bad)
    assert "codebook" not in Options().as_dict() and Options(codebook="reg").as_dict()["codebook"] == "reg"


# ----------------------------------------------------------------------------------------------- the bank model


def test_table_wavefronts_model() -> None:
    from lowbit.arch import banks  # noqa: PLC0415

    # one entry for the whole warp: one word, broadcast; in 32 copies: 32 words in 32 banks
    assert banks.table_wavefronts([5] * 32, 4) == 1 and banks.table_wavefronts([5] * 32, 4, 32) == 1
    # entries 32 apart: one bank, eight distinct words (a 256-word table has eight a bank)
    assert banks.table_wavefronts([32 * (i % 8) for i in range(32)], 4) == 8
    for copies in (1, 2, 4, 8, 16, 32):
        assert banks.table_unit(7, 37, copies) == 7 * copies + 37 % copies
        for ebytes in (4, 8):
            worst = banks.worst_table_wavefronts(256, ebytes, copies)
            lanes = banks.phase_lanes(ebytes)
            # the adversary: the lanes of each copy on different entries of one bank of that copy
            stride = 32 * 4 // ebytes // copies if copies * ebytes <= 128 else 1  # entries per bank round
            adv = [stride * (lane // copies % 64) % 256 for lane in range(32)]
            got = banks.table_wavefronts(adv, ebytes, copies)
            assert got == worst, (copies, ebytes, got, worst)
            assert worst == (32 // lanes) * min(max(1, lanes // copies), 256 * copies * ebytes // 128)
            rng = np.random.default_rng(copies * ebytes)
            assert all(banks.table_wavefronts(rng.integers(0, 256, 32).tolist(), ebytes, copies) <= worst
                       for _ in range(50))  # fmt: skip
    # 32 copies of the half table: every lane its own bank -> conflict-free for any codes
    assert banks.expected_table_wavefronts(256, 4, 32) == 1.0
    assert 2.9 < banks.expected_table_wavefronts(256, 4, 1) < 3.4
    with pytest.raises(lowbit.errors.ArchError, match="copies"):
        banks.table_wavefronts([0] * 32, 4, 3)


# ----------------------------------------------------------------------------------------------- lowbit.ops end to end


@pytest.mark.parametrize("layout", [1, 3])
@pytest.mark.parametrize("fmt", ["nf4", "user16"])
@pytest.mark.parametrize("act", ["f16", "bf16"])
def test_matmul_codebooks_match_float64(fmt: str, layout: int, act: str) -> None:
    """``lowbit.ops.matmul`` on the emulator (the form the model picks: the half pair table) against float64,
    odd shapes (M = 3, K = 288: a short last group, N = 136), nf4 and a random 16-entry user table."""
    from lowbit import ops  # noqa: PLC0415
    from tests.ops.reference import dequantize_reference, gemm_bound  # noqa: PLC0415

    rng = np.random.default_rng(layout * 7 + len(fmt) + len(act))
    k, n, m = 288, 136, 3
    wt = lowbit.dtype("nf4") if fmt == "nf4" else lowbit.codebook(np.sort(rng.standard_normal(16)))
    qw = ops.quantize_weight(rng.standard_normal((k, n)) * 0.5, wt, layout=layout)
    a = rng.standard_normal((m, k)).astype(_np(act))
    c = ops.matmul(a, qw, None, backend="emulator")
    ref, bound = gemm_bound(a, dequantize_reference(qw), None)
    err = np.abs(c.astype(np.float64) - ref)
    assert np.isfinite(c.astype(np.float64)).all()
    assert (err <= bound).all(), f"{fmt} layout {layout} -> {act}: |C - ref| exceeds the bound by {np.max(err - bound):.3g}"
    assert np.max(np.abs(ref)) > 1.0  # not a trivially small product


@pytest.mark.parametrize("n", [128, 40], ids=["specialised", "unspecialised"])
@pytest.mark.parametrize("name, act, force", [("nf4_f16", "f16", "reg"), ("nf4_bf16", "bf16", "reg"),
                                              ("cb16_exact", "f16", "half:4"), ("cb16_f32", "bf16", "single:2")])
def test_dequant_tile_forms_bit_identical(name: str, act: str, force: str, n: int) -> None:
    """The chain stored as it comes (codes at the same bits in every thread, not the mma fragments' per-thread
    bytes), every code pair, scales from 2**-14 to 65504 (inf results for entries beyond 1 into f16), each form."""
    from tests.transforms.test_dequant_exact import dequant_tile  # noqa: PLC0415

    dt, k = TABLES[name], 128
    rng = np.random.default_rng(n + len(force))
    codes = rng.integers(0, 16, size=(k, n)).astype(np.uint8)
    assert len(set((codes[0::2] | codes[1::2] << 4).reshape(-1).tolist())) == 256
    words = lowbit.pack(codes, 4, axis=0)
    scales = np.array([[2.0**-14, 1.0, 8.0, 65504.0, *rng.uniform(0.001, 4.0, 4)][i % 8] for i in range(n)],
                      dtype=_np(act))[None, :]  # fmt: skip
    cx = {"W": dt, "ZERO": "none", "A": lowbit.dtype(act)}
    ref = np.full((k, n), np.nan, dtype=_np(act))
    dequant_tile.interpret[(-(-n // 32),)](words.copy(), scales.copy(), words.copy(), ref, k, n, **cx)
    got = np.full((k, n), np.nan, dtype=_np(act))
    ck = _launch(dequant_tile, (-(-n // 32),), (words.copy(), scales.copy(), words.copy(), got, k, n), cx, force)
    np.testing.assert_array_equal(got.view(np.uint16), ref.view(np.uint16), err_msg=f"{name} -> {act}, {force}")
    assert len(np.unique(ref.view(np.uint16))) > 64
    if act == "f16" and np.max(np.abs(dt.table)) > 1.0:
        assert np.isinf(ref.astype(np.float32)).any()
    _check_loop_any(ck.ptx, _form_of(dt, act, force))


def _check_loop_any(ptx: str, choice: cb.Choice) -> None:
    """The whole kernel (dequant_tile has no loop): the form's lookups and no select chain."""
    m = mix(instructions(ptx))
    lds = sum(c for op, c in m.items() if op.startswith("ld.shared.b32"))
    v2 = sum(c for op, c in m.items() if op.startswith("ld.shared.v2"))
    if choice.form == "reg":
        assert lds == 0 and v2 == 0 and m.get("prmt.b32", 0) >= 16, m
    elif choice.form == "half":
        assert lds >= 4, m
    else:
        assert v2 >= 4, m
