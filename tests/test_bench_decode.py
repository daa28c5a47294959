"""benchmarks/bench_decode.py on a small shape: the block-subset scaling it relies on, facts, output.

The benchmark emulates a few columns of blocks and divides by the weights
they consume; that is exact only if every interior block costs the same, so
two columns must cost exactly twice one, on both sides.  The facts lowbit
specialises on must reach Triton (16-byte ``cp.async`` only appears when
Triton knows the pointers are 16-byte aligned).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import require_tool

SHAPE = (16, 256, 256)
CFG = (16, 64, 64, 4)


@pytest.fixture(scope="module")
def bench():
    require_tool("triton")
    from benchmarks import bench_decode
    from benchmarks.decode_problem import make_problem

    prob = make_problem(*SHAPE, seed=5)
    return bench_decode, prob, bench_decode.lowbit_facts(prob)


def test_two_columns_of_blocks_cost_exactly_twice_one(bench) -> None:
    bd, prob, facts = bench
    for run in (lambda b: bd.run_lowbit(prob, CFG, b), lambda b: bd.run_triton(prob, CFG, b, facts)):
        one, two = run(1), run(2)
        assert one.ok and two.ok and one.correct and two.correct, (one.error, two.error)
        assert two.grid == (1, 2) and one.weights * 2 == two.weights == SHAPE[2] * 2 * CFG[1]
        for attr in ("issue_slots", "thread_instructions", "warp_instructions", "shared_wavefronts", "mma"):
            assert getattr(two.stats, attr) == 2 * getattr(one.stats, attr), (one.side, attr)
        assert {k: 2 * r for k, (r, _) in one.traffic.items()} == {k: r for k, (r, _) in two.traffic.items()}


def test_lowbit_facts_reach_triton_and_weight_bytes_are_counted_per_argument(bench) -> None:
    bd, prob, facts = bench
    names = ("a_ptr", "w_ptr", "s_ptr", "z_ptr", "c_ptr", "M", "N", "K")
    assert {n: facts.get(n) for n in names} == dict.fromkeys(names, 16)
    lb, tr = bd.run_lowbit(prob, CFG, 2), bd.run_triton(prob, CFG, 2, facts)
    assert tr.facts == dict.fromkeys(names, 16)
    assert tr.stats.shared_requests_by_opcode["cp.async.cg.16"] > 0  # vector copies need the alignment facts
    k, n = SHAPE[2], 2 * CFG[1]
    assert lb.sectors["w_ptr"] == (k * n // 2 // 32, 0)  # lowbit reads every 4-bit code once
    assert lb.traffic["w_ptr"][0] >= k * n // 2  # (lanes of an mma quad share a word)
    assert tr.traffic["w_ptr"][0] >= k * n // 2 and tr.sectors["w_ptr"][0] >= k * n // 2 // 32
    assert lb.traffic["c_ptr"] == tr.traffic["c_ptr"] == (0, SHAPE[0] * n * 2)
    assert lb.stats.checks and tr.stats.checks


def test_a_shape_that_does_not_tile_is_refused(bench) -> None:
    bd, prob, _ = bench
    with pytest.raises(SystemExit, match="does not tile exactly"):
        bd._emulated_grid((16, 100, 256), CFG, 2)


def test_main_writes_the_report_with_both_sides_and_their_ratio(bench, tmp_path) -> None:
    bd, _, _ = bench
    out, js = tmp_path / "r.md", tmp_path / "r.json"
    rc = bd.main(["--shapes", "16x128x256", "--configs", "16x64x64x4", "--blocks", "1", "--out", str(out),
                  "--json", str(js)])
    assert rc == 0
    text = out.read_text()
    assert "lowbit / Triton issue slots" in text and "| 16x128x256 | lowbit | 16x64x64 w4 |" in text
    data = json.loads(js.read_text())["measurements"]
    assert {m["side"] for m in data} == {"lowbit", "triton"} and all(m["correct"] for m in data)
    assert all(m["issue_slots_per_weight"] >= m["thread_instr_per_weight"] > 0 for m in data)


def test_static_mode_counts_sass_of_both_cubins(bench, tmp_path) -> None:
    require_tool("nvdisasm")
    require_tool("ptxas")
    bd, _, _ = bench
    js = tmp_path / "s.json"
    assert bd.main(["--static", "--shapes", "16x128x256", "--configs", "16x32x32x4", "--json", str(js)]) == 0
    rows = json.loads(js.read_text())["static"]
    assert [r["side"] for r in rows] == ["lowbit", "triton"]
    for r in rows:
        weights = r["k_steps"] * 32 * 32  # lowbit's loop runs example 04's K steps in pairs (prefetched scales)
        assert r["loop_body"] > 0 and r["thread_instr_per_weight"] == round(r["loop_body"] * 128 / weights, 3)
    assert [r["k_steps"] for r in rows] == [2, 1]


def test_a_cubin_without_a_loop_the_tool_can_read_is_an_error_not_zero(tmp_path) -> None:
    """sass_loop_stats reports loop_body 0 when it finds no backward branch it can resolve; that 0 would pass
    every per-weight target, so the row carries an error and no figure (bench_formats then shows n/a)."""
    from types import SimpleNamespace

    from benchmarks import decode_report

    require_tool("nvdisasm")
    fake = tmp_path / "sass_loop_stats.py"  # the tool's JSON for a kernel whose loop it could not find
    fake.write_text("import json\nprint(json.dumps([{'kernel': 'k', 'total': 1608, 'loop_body': 0, "
                    "'inner_loops': 0, 'thread_instr_per_weight': 0.0, 'loop_ops': {}}]))\n")
    m = SimpleNamespace(side="lowbit", shape=[16, 128, 128], config=(16, 128, 128, 4), path="", error="",
                        cubin=b"not read by the stand-in", k_steps=2)
    row = decode_report.static_row(m, fake)
    assert "no main loop" in row["error"] and "thread_instr_per_weight" not in row and "loop_body" not in row
    assert decode_report.static_line(row).startswith("static: n/a (sass_loop_stats found no main loop")
