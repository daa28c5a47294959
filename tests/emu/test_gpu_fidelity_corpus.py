"""The GPU fidelity corpus (benchmarks/gpu_fidelity/corpus*.py) passes on the emulator first.

Every case -- fixtures, compiled examples, hand-built SIMT kernels, Triton's
W4A16, the PTX instruction families and every mma.sync shape -- runs on
``lowbit.emu`` and must match its independent numpy reference under its own
rule; cases marked ``xfail`` (known emulator disagreements, reason in the
corpus) must still fail, so a fix is noticed.  The whole corpus bundles well
under the device tool's 64 MiB carry limit and ``run_gpu.py --check-only``
accepts it.  The exhaustive sweeps (all 65536 f16 / fp8x2 inputs) run under
``-m full``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_fidelity"
if str(HARNESS) not in sys.path:
    sys.path.insert(0, str(HARNESS))

import bundle  # noqa: E402
import corpus  # noqa: E402
import run_gpu  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SOURCES = ("fixture", "example", "simt", "triton", "isa", "mma")


@pytest.fixture(scope="module")
def default_cases() -> list[corpus.Case]:
    return list(corpus.collect("default"))


def _run_and_check(case: corpus.Case) -> list[str]:
    try:
        outs = corpus.run_emulator(case)
    except Exception as exc:  # noqa: BLE001
        return [f"{case.name}: emulator raised {type(exc).__name__}: {exc}"]
    return corpus.check(case, outs)


def test_corpus_covers_every_source_and_family(default_cases):
    names = [c.name for c in default_cases]
    by_source = {s: sum(c.source == s for c in default_cases) for s in SOURCES}
    missing = [s for s, n in by_source.items() if n == 0 and s != "triton"]
    assert not missing, by_source
    for family in ("cvt_f16x2_e4m3x2", "cvt_e5m2x2_f16x2", "cvt_e4m3x2_f32", "cvt_rz_bf16_f32", "cvt_rm_f16_f32",
                   "cvt_rpi_s64_f32", "fma_rn_f32", "fma_rn_bf16x2", "mul_hi_s32", "div_s32", "lop3_96", "prmt_b32",
                   "bfe_s32", "bfi_b32", "shfl_sync_up", "ldmatrix_x4_trans", "mma_m16n8k32_f32_e4m3_e5m2",
                   "mma_m16n8k64_s32_s4_u4_satfinite", "example_04_w4a16_matmul_sm_90", "simt_unpack_u4_sm_90"):
        assert family in names, family
    targets = {c.target for c in default_cases}
    assert {"sm_80", "sm_89", "sm_90"} <= targets, targets


@pytest.mark.parametrize("src", SOURCES)
def test_corpus_passes_on_the_emulator(default_cases, src):
    cases = [c for c in default_cases if c.source == src]
    if not cases:
        pytest.skip(f"no {src} cases here (triton not installed?)")
    failures, unexpected_pass = [], []
    for case in cases:
        bad = _run_and_check(case)
        if case.xfail:
            if not bad:
                unexpected_pass.append(f"{case.name} (xfail: {case.xfail})")
        elif bad:
            failures += bad
    assert not failures, "\n".join(failures)
    assert not unexpected_pass, "xfail cases now pass -- remove the mark:\n" + "\n".join(unexpected_pass)


def test_references_can_fail(default_cases):
    """A one-ulp / one-bit change of an emulator output is caught by each kind of rule."""
    picks = {"cvt_rn_f16_f32": 0, "mma_m16n8k16_f32_f16_f16": 0, "example_03_matmul_f16_sm_80": 0, "shfl_sync_bfly": 0}
    for case in default_cases:
        if case.name not in picks:
            continue
        outs = corpus.run_emulator(case)
        assert not corpus.check(case, outs)
        o = case.outs[0]
        got = np.array(outs[o.index], copy=True)
        flat = got.reshape(-1).view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[got.dtype.itemsize])
        if o.mode == "close":  # push one element just past its bound
            i = int(np.flatnonzero(np.isfinite(o.ref.reshape(-1).astype(np.float64)))[0])
            bound = o.tol.reshape(-1)[i] if o.tol is not None else o.atol + o.rtol * abs(float(o.ref.reshape(-1)[i]))
            vals = got.reshape(-1)
            vals[i] = o.ref.reshape(-1)[i] + got.dtype.type(4 * bound + 1e-3)
        else:
            flat[0] ^= 1
        assert corpus.check(case, {o.index: got}), case.name
        picks[case.name] += 1
    assert all(picks.values()), picks


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas not installed")
def test_every_case_assembles_for_its_target(default_cases, tmp_path):
    """What the GPU driver's JIT will see assembles with ptxas for the PTX's own .target."""
    bad = []
    for case in default_cases:
        f = tmp_path / f"{case.name}.ptx"
        f.write_text(case.ptx)
        r = subprocess.run(["ptxas", f"-arch={case.target}", str(f), "-o", str(tmp_path / "x.cubin")],
                           capture_output=True, text=True)
        if r.returncode:
            bad.append(f"{case.name}: {r.stderr.strip()[:200]}")
    assert not bad, "\n".join(bad)


def test_bundle_all_then_check_only(tmp_path):
    out = tmp_path / "bundles"
    m = bundle.bundle_all(out, "default", verbose=False)
    assert not m["source_errors"], m["source_errors"]
    assert m["counts"]["bad"] == 0, [r for r in m["cases"] if bundle._row_bad(r)]
    assert m["counts"]["cases"] >= 150
    assert m["total_bytes"] < 16 * 2**20, m["total_bytes"]  # the device tool carries 64 MiB in all
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["counts"] == m["counts"]
    assert run_gpu.main(["--check-only", str(out), "--json", str(tmp_path / "r.json"), "--md", str(tmp_path / "r.md")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert len(rep["kernels"]) == m["counts"]["cases"]
    assert rep["counts"].get("pass", 0) + rep["counts"].get("error", 0) == m["counts"]["cases"]
    md = (tmp_path / "r.md").read_text()
    assert "| mma_m16n8k16_f32_f16_f16 | sm_80 | close/tol | pass |" in md
    # a masked (ISA-undefined) element may differ; an unmasked one may not
    b = run_gpu.load_bundle(out / "div_u32_undefined.npz")
    assert "mask2" in b and not b["mask2"].any()
    path = out / "cvt_rn_f16_f32.npz"
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data["emu1"] = data["emu1"].copy()
    data["emu1"][5] ^= 1
    np.savez(path, **data)
    assert run_gpu.main(["--check-only", str(path)]) == 1


def test_skip_reason_by_target():
    fp8 = ".version 8.1\n.target sm_89\n.address_size 64\n"
    assert run_gpu.skip_reason(fp8, 80) and "sm_89" in run_gpu.skip_reason(fp8, 80)
    assert run_gpu.skip_reason(fp8, 89) is None and run_gpu.skip_reason(fp8, 90) is None
    arch_specific = ".target sm_90a\n"
    assert run_gpu.skip_reason(arch_specific, 90) is None and run_gpu.skip_reason(arch_specific, 100)
    assert run_gpu.skip_reason(".target sm_80\n", 80) is None


def test_compare_reports_ulp_mask_and_nan_any():
    want = np.array([1.0, 2.0, np.nan, 4.0], np.float32)
    got = want.copy()
    got[1] = np.nextafter(np.float32(2), np.float32(3))
    got.view(np.uint32)[3] += 3
    r = run_gpu.compare(got, want, "close", 1e-6, 0)
    assert r["ok"] and r["max_ulp"] == 3
    r = run_gpu.compare(got, want, "exact", 0, 0)
    assert not r["ok"] and r["first_index"] == 1 and r["bad"] == 2
    assert run_gpu.compare(got, want, "exact", 0, 0, mask=np.array([True, False, True, False]))["ok"]
    other_nan = want.copy()
    other_nan.view(np.uint32)[2] = 0x7FC00001
    assert not run_gpu.compare(other_nan, want, "exact", 0, 0)["ok"]
    assert run_gpu.compare(other_nan, want, "exact", 0, 0, nan_any=True)["ok"]
    bf = np.array([0x3F80, 0x4000], np.uint16)  # bf16 1.0, 2.0 stored as uint16
    bf2 = bf.copy()
    bf2[1] += 1
    r = run_gpu.compare(bf2, bf, "close", 0, 0, tol=np.array([0.0, 0.02]), fmt="bf16")
    assert r["ok"] and r["max_ulp"] == 1 and r["max_abs_err"] == pytest.approx(2.0**-6)


@pytest.mark.full
def test_exhaustive_sweeps_pass_on_the_emulator():
    cases = list(corpus.collect("exhaustive"))
    assert len(cases) >= 4 and all(c.args[0].size == 65536 for c in cases)
    failures = [m for c in cases for m in _run_and_check(c)]
    assert not failures, "\n".join(failures)


def test_gpu_path_with_a_fake_driver(tmp_path, monkeypatch):
    """The GPU half's bookkeeping (skip by .target, per-rule comparison, reports) with a stand-in driver
    on an 'sm_80' device that returns the emulator's outputs, one of them off by one bit."""
    out = tmp_path / "b"
    for case in corpus.collect("default", ["isa", "mma"]):
        if case.name in ("cvt_rn_f16_f32", "cvt_f16x2_e4m3x2", "mma_m16n8k16_f32_f16_f16", "lop3_96"):
            bundle.bundle_one(case, out)

    class FakeDriver:
        name, cc, driver_version, bindings_version = "Fake GPU", 80, "13.0", "test"

        def __init__(self):
            pass

        def run(self, b, launch=True):
            outs = {int(i): np.array(b[f"emu{int(i)}"], copy=True) for i in b["out_index"]}
            if str(b["name"]) == "lop3_96":
                outs[3].view(np.uint32)[9] ^= 4
            return outs, 1e-5

    monkeypatch.setattr(run_gpu, "Driver", FakeDriver)
    rc = run_gpu.main([str(out), "--out-dir", str(tmp_path / "res"), "--save-outputs", str(tmp_path / "g.npz")])
    assert rc == 1
    rep = json.loads(next((tmp_path / "res").glob("gpu_fidelity_fake_gpu_*.json")).read_text())
    k = rep["kernels"]
    assert k["cvt_f16x2_e4m3x2"]["verdict"] == "skip" and "sm_89" in k["cvt_f16x2_e4m3x2"]["skipped"]
    assert k["cvt_rn_f16_f32"]["verdict"] == "pass" and k["mma_m16n8k16_f32_f16_f16"]["verdict"] == "pass"
    bad = k["lop3_96"]["outputs"]["d0"]["gpu_vs_emu"]
    assert k["lop3_96"]["verdict"] == "fail" and bad["first_index"] == 9 and bad["bad"] == 1
    assert rep["counts"] == {"skip": 1, "pass": 2, "fail": 1}
    md = next((tmp_path / "res").glob("*.md")).read_text()
    assert "| lop3_96 | sm_80 | exact | fail | BAD | BAD | ok |" in md
    with np.load(tmp_path / "g.npz") as z:
        assert "lop3_96.3" in z.files
