"""``lowbit run`` on every example (emulator here), its errors, and ``lowbit info``'s GPU and cache lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lowbit import cli
from lowbit.errors import LaunchError
from lowbit.runtime.check import _compare, eval_grid

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"

RUNS = {
    "01_vector_add": ["--grid", "cdiv(n, 128)", "-D", "n=1000"],
    "02_uint4_cast": ["--grid", "cdiv(R, BR), cdiv(C, BC)", "-D", "R=37", "-D", "C=100", "-D", "BC=32"],
    "03_matmul_f16": ["--grid", "cdiv(M, BM), cdiv(N, BN)", "-D", "M=37", "-D", "N=100", "-D", "K=136"],
    "04_w4a16_matmul": ["--grid", "cdiv(M, BM), cdiv(N, BN)", "-D", "M=37", "-D", "N=100", "-D", "K=136"],
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_lowbit_run_each_example_on_the_emulator(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["run", str(EX / f"{name}.py"), "--backend", "emulator", *RUNS[name]])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0, "\n".join(out)
    assert " on the emulator (sm_80), grid " in out[0] and out[-1].endswith(": PASS (emulator against the interpreter)")
    rows = out[1:-1]
    assert rows and all(r.rstrip().endswith(" ok") for r in rows)
    assert any(" written " in r for r in rows) and any(" read " in r for r in rows)


def test_lowbit_run_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["run", str(EX / "04_w4a16_matmul.py"), "--grid", "1", "-D", "M=37"],
         "give the integer arguments N, K with -D (e.g. -D N=64): they size the buffers"),
        (["run", str(EX / "01_vector_add.py"), "--grid", "cdiv(n, 128)", "-D", "m=3"],
         "vector_add has no parameter or constexpr 'm' (it has: x_ptr, y_ptr, out_ptr, n, BLOCK)"),
        (["run", str(EX / "01_vector_add.py"), "--grid", "cdiv(q, 128)", "-D", "n=10"],
         "--grid: 'q' is not an integer argument or constexpr of the kernel"),
        (["run", str(EX / "01_vector_add.py"), "--grid", "0", "-D", "n=10"], "--grid '0' gives (0,): 1 to 3 positive"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("lowbit: error: ") and message in err and err.count("\n") == 1, err


def test_grid_expressions_and_the_comparison_rule() -> None:
    assert eval_grid("cdiv(M, 16), N // 32 + 1, max(1, K % 3)", {"M": 37, "N": 100, "K": 9}) == (3, 4, 1)
    with pytest.raises(LaunchError, match="cannot evaluate"):
        eval_grid("__import__('os')", {})
    ref = np.linspace(-1, 1, 64).astype(np.float32)
    assert _compare("c", ref.copy(), ref, True).ok
    off = ref.copy()
    off[3] += 0.01
    bad = _compare("c", off, ref, True)
    assert not bad.ok and bad.equal == 63 and bad.max_abs_err == pytest.approx(0.01, rel=1e-3)
    ints = np.arange(10, dtype=np.int32)
    assert not _compare("i", ints + (ints == 4), ints, True).ok  # integers: bit for bit
    assert not _compare("r", off, ref, False).ok  # an input the kernel must not touch: bit for bit


def test_info_shows_gpu_compiler_and_caches(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "\ngpu       " in out and "\ncompiler  available" in out and "compiled kernels (" in out and "specialisations" in out


def test_lowbit_run_on_the_gpu_path(capsys: pytest.CaptureFixture[str]) -> None:
    """--backend gpu: a clean one-line error without a GPU; the whole DeviceArray path on the stand-in driver."""
    from lowbit import runtime
    from lowbit.runtime.driver import use_driver
    from tests.runtime.fake_driver import FakeDriver

    argv = ["run", str(EX / "04_w4a16_matmul.py"), "--backend", "gpu", *RUNS["04_w4a16_matmul"]]
    if not runtime.status().available:
        assert cli.main(argv) == 2
        assert capsys.readouterr().err.startswith("lowbit: error: no GPU to launch on: ")
    with use_driver(FakeDriver(cc=(9, 0))):
        assert cli.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("w4a16_matmul on the gpu (sm_90), grid (3, 4)") and out[-1].endswith(": PASS (gpu against "
                                                                                                   "the interpreter)")
