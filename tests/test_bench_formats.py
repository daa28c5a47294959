"""benchmarks/bench_formats.py on a small shape: every field is filled, the check works, the PTX facts are right.

Two formats (uint4: integer zeros; e2m1: symmetric float) at a static
shape of 16 x 256 x 256 and an emulated K of one K step, so the test runs
the same functions as the full table in seconds.  The PTX-facts function
is checked on hand-written PTX: the loop it reads and the opcodes it
counts, inside and outside that loop.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tests.conftest import require_tool

STATIC_SHAPE = (16, 256, 256)
EMU_K = 128


@pytest.fixture(scope="module")
def results():
    require_tool("ptxas")
    require_tool("nvdisasm")
    from benchmarks import bench_formats as bf

    return bf, {name: bf.measure(name, emu_k=EMU_K, shape=STATIC_SHAPE) for name in ("uint4", "e2m1")}


@pytest.mark.parametrize("name, zero, group", [("uint4", "int", 128), ("e2m1", "none", 128)])
def test_every_field_is_measured(results, name: str, zero: str, group: int) -> None:
    bf, rows = results
    r = rows[name]
    assert not r.errors, r.errors
    assert (r.bits, r.zero, r.group, r.tile) == (4, zero, group, (16, 128, 128))
    assert set(r.facts) >= {"a_ptr", "w_ptr", "s_ptr", "c_ptr", "M", "N", "K"} and r.facts["w_ptr"] == 16
    s = r.static
    assert s["thread_instr_per_weight"] > 0 and s["loop_body"] > 0 and isinstance(s["inner_loops"], int)
    assert s["top_ops"] and all(v > 0 for v in s["top_ops"].values())
    assert r.resources["registers"] > 0 and r.resources["spill_stores"] >= 0
    e = r.emu
    assert e["shape"] == [16, 256, EMU_K] and e["grid"] == [1, 1] and e["weights"] == EMU_K * 128
    assert e["correct"] is True and e["max_err_over_bound"] <= 1 and e["same_facts_as_static"]
    assert 0 < e["thread_instr_per_weight"] <= e["issue_slots_per_weight"]
    assert set(r.ptx) >= {"int_to_float_cvt", "f32_arith", "has_mma"}
    v = bf.verdicts(r, "f16", None)
    assert v["correct"] is True and v["bytes"] is True
    assert v["static"] == (s["thread_instr_per_weight"] <= bf.static_target(name) and not s["inner_loops"])


def test_weight_bytes_per_weight(results) -> None:
    bf, rows = results
    k, n = STATIC_SHAPE[2], STATIC_SHAPE[1]
    for r in rows.values():
        words = -(-k * r.bits // 32)  # uint32 words per column
        assert r.bytes_per_weight == words * 4 * n / (k * n) == 0.5
        assert r.bytes_ratio == r.bytes_per_weight / (r.bits / 8)
    # a width that does not divide a word: 3-bit codes, K = 256 -> 24 words per column = 0.375 B per weight
    qw = bf.quantize("uint3", 256, 8, seed=1)
    assert qw.qweight.shape == (24, 8) and qw.qweight.nbytes / (256 * 8) == 3 / 8


def test_the_float64_check_has_teeth(results) -> None:
    import lowbit.ops as ops

    bf, _ = results
    qw = bf.quantize("e2m1", 256, 64, seed=3)
    a = np.random.default_rng(4).standard_normal((5, 256)).astype(np.float16)
    c = ops.matmul(a, qw, backend="reference")
    assert bf.columns_match(c, a, qw, 64)[0]
    bad = c.copy()
    bad[2, 40] += np.float16(0.25) + abs(bad[2, 40]) * np.float16(0.05)
    assert not bf.columns_match(bad, a, qw, 64)[0]
    assert bf.columns_match(bad, a, qw, 40)[0]  # the bad column lies outside the checked ones
    nan = c.copy()
    nan[0, 0] = np.nan
    assert bf.columns_match(nan, a, qw, 64) == (False, float("inf"))


def test_legal_bk() -> None:
    from benchmarks.bench_formats import legal_bk

    assert legal_bk(4, 128, 128) == 128 and legal_bk(3, 128, 128) == 128 and legal_bk(4, 16, 128) == 128
    assert legal_bk(3, 128, 96) == 128  # 96 covers whole words of 3-bit codes but does not nest with 128
    assert legal_bk(5, 128, 100) == 128  # 100 x 5 bits is not whole words
    assert legal_bk(4, 32, 256) == 256 and legal_bk(6, -1, 20) == 32
    assert legal_bk(4, 32, 32, layout=3) == 128 and legal_bk(2, 128, 64, layout=3) == 128  # whole 128-row chunks


def test_the_layout_option_stores_every_weight_in_that_version() -> None:
    from benchmarks import bench_formats as bf

    assert bf.quantize("uint4", 256, 8, seed=1, layout=3).layout == 3
    assert bf.quantize("uint3", 256, 8, seed=1).layout == 2 and bf.quantize("uint4", 256, 8, seed=1).layout == 1
    b = bf.build(bf.quantize("uint2", 256, 128, seed=1, layout=3), 16, "f16", (16, 128, 64))
    assert b.constexprs["LAYOUT"] == 3 and b.constexprs["BK"] == 128


_LOOP = """
.visible .entry k(.param .u64 p)
{{
    {before}
$L__BB0_1:
    ld.global.u32 %r1, [%rd1];
    {inside}
    mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {{%f1, %f2, %f3, %f4}}, {{%r1, %r2, %r3, %r4}}, {{%r5, %r6}}, {{%f1, %f2, %f3, %f4}};
    @%p1 bra $L__BB0_1;
    {after}
    ret;
}}
"""


def test_ptx_facts_count_only_the_main_loop() -> None:
    from benchmarks.bench_formats import ptx_facts

    inside = _LOOP.format(before="mov.u32 %r9, 0;", inside="cvt.rn.f16.u32 %h1, %r1;", after="")
    assert ptx_facts(inside)["int_to_float_cvt"] == {"cvt.rn.f16.u32": 1}
    outside = _LOOP.format(before="cvt.rn.f16.u32 %h1, %r9;", inside="add.s32 %r1, %r1, 1;",
                           after="cvt.rn.f32.s32 %f9, %r9;\n    mul.f32 %f9, %f9, %f1;")  # fmt: skip
    assert ptx_facts(outside) == {"int_to_float_cvt": {}, "f32_arith": {}}  # the mma's f32 accumulators do not count
    mixed = _LOOP.format(before="", after="", inside="\n    ".join([
        "cvt.rn.f32.s32 %f5, %r1;", "@%p2 cvt.rn.f32.u8 %f6, %r1;", "mul.rn.f32 %f5, %f5, %f6;",
        "fma.rn.f32 %f5, %f5, %f6, %f6;", "sub.f32 %f6, %f5, %f6;", "cvt.rn.f16x2.f32 %r2, %f5, %f6;",
        "cvt.rn.bf16x2.f32 %r3, %f5, %f6;", "cvt.rn.f16.f32 %h2, %f5;", "sub.f16x2 %r2, %r2, %r3;",
        "cvt.u32.u16 %r4, %rs1;", "cvt.rn.f16x2.e4m3x2 %r5, %rs1;", "fma.rn.bf16x2 %r6, %r2, %r3, %r4;",
    ]))  # fmt: skip
    got = ptx_facts(mixed)
    assert got["int_to_float_cvt"] == {"cvt.rn.f32.s32": 1, "cvt.rn.f32.u8": 1}
    assert got["f32_arith"] == {"cvt.rn.bf16x2.f32": 1, "cvt.rn.f16.f32": 1, "cvt.rn.f16x2.f32": 1,
                                "fma.rn.f32": 1, "mul.rn.f32": 1, "sub.f32": 1}  # fmt: skip
    assert ptx_facts(".visible .entry k()\n{\n cvt.rn.f16.u32 %h1, %r1;\n ret;\n}\n")["int_to_float_cvt"] == {}


def test_markdown_has_a_row_per_format_and_the_convention(results) -> None:
    require_tool("triton")  # decode_report.environment() names Triton's version
    bf, rows = results
    args = argparse.Namespace(act="f16", tile=(16, 128, 128), emu_k=EMU_K, blocks=1, no_checks=False)
    text = bf.markdown(list(rows.values()), None, args)
    assert "| uint4 | 4 | int | 128 | 128 |" in text and "| e2m1 | 4 | none | 128 | 128 |" in text
    assert 'zero="int"' in text and 'zero="none"' in text and "git " in text
    assert "<= 4.1" in text and "<= 5.0" in text


def test_the_f32_exceptions_are_never_counted_as_met(results) -> None:
    import dataclasses

    bf, rows = results
    r = dataclasses.replace(rows["e2m1"], name="mxfp4", ptx={"int_to_float_cvt": {}, "f32_arith": {"mul.rn.f32": 3}})
    assert bf.verdicts(r, "f16", None)["no_f32"] is None  # e8m0 -> f16 may use f32, the rest of the path not
    assert bf.verdicts(dataclasses.replace(r, name="e2m1"), "f16", None)["no_f32"] is False
    assert bf.verdicts(dataclasses.replace(r, ptx={"int_to_float_cvt": {}, "f32_arith": {}}), "f16", None)["no_f32"]
    assert bf.allowed_f32("uint8", "bf16") and not bf.allowed_f32("uint8", "f16") and not bf.allowed_f32("e4m3", "bf16")
