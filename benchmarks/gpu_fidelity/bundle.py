"""CPU side of the GPU fidelity harness (issue 4 item 7): bundle PTX, inputs and emulator outputs.

For every fixture in ``tests/emu/fixtures/`` (or the names given) this runs the
kernel in ``lowbit.emu.launch`` and writes one ``<name>.npz`` holding
everything ``run_gpu.py`` needs, so that the GPU side needs only numpy and
cuda-bindings (no lark, no lowbit):

========================  ================================================
``ptx``                   the PTX text (0-d unicode array)
``kernel``                ``.entry`` name
``grid``, ``block``       int64[3]
``shared_bytes``          dynamic shared memory bytes
``arg_kind``              per parameter: ``"array"`` or ``"scalar"``
``arg_dtype``             per parameter: numpy dtype name
``arg<i>``                initial value of parameter ``i`` (array, or 0-d for a scalar)
``out_index``             parameter indices of the outputs
``out_name``              their names
``out_compare``           ``"exact"`` (bit-exact) or ``"close"``
``out_rtol``, ``out_atol`` tolerances for ``"close"``
``ref<i>``                numpy reference output for parameter ``i``
``emu<i>``                emulator output for parameter ``i`` (absent if the emulator failed)
``emu_status``            ``"ok"`` or the emulator's error message
========================  ================================================

Usage: ``.venv/bin/python benchmarks/gpu_fidelity/bundle.py [--out DIR] [NAME ...]``
(default ``benchmarks/gpu_fidelity/bundles``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from tests.emu.fixtures import recipes  # noqa: E402

DEFAULT_OUT = Path(__file__).with_name("bundles")


def bundle_case(name: str, out_dir: Path, run_emulator: bool = True) -> dict:
    """Write ``out_dir/<name>.npz``; returns a summary row."""
    case = recipes.load(name)
    args = case.make_args()
    initial = [np.array(a, copy=True) for a in args]
    expected = case.expected()
    status = "not run"
    seconds = 0.0
    if run_emulator:
        from lowbit.emu import launch

        t0 = time.perf_counter()
        try:
            launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes)
            status = "ok"
        except Exception as exc:  # recorded, not fatal: the GPU run still compares with numpy
            status = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - t0
    outs = case.outputs
    data: dict[str, np.ndarray] = {
        "ptx": np.array(case.ptx),
        "kernel": np.array(case.kernel),
        "grid": np.array(case.grid, np.int64),
        "block": np.array(case.block, np.int64),
        "shared_bytes": np.array(case.shared_bytes, np.int64),
        "arg_kind": np.array([a["kind"] for a in case.meta["args"]]),
        "arg_dtype": np.array([np.asarray(v).dtype.name for v in initial]),
        "out_index": np.array([o["index"] for o in outs.values()], np.int64),
        "out_name": np.array(list(outs)),
        "out_compare": np.array([o["compare"] for o in outs.values()]),
        "out_rtol": np.array([o.get("rtol", 0.0) for o in outs.values()], np.float64),
        "out_atol": np.array([o.get("atol", 0.0) for o in outs.values()], np.float64),
        "emu_status": np.array(status),
    }
    for i, v in enumerate(initial):
        data[f"arg{i}"] = np.asarray(v)
    for oname, o in outs.items():
        data[f"ref{o['index']}"] = expected[oname]
        if status == "ok":
            data[f"emu{o['index']}"] = np.asarray(args[o["index"]])
    emu_vs_ref = "-"
    if status == "ok":
        try:
            case.check(args)
            emu_vs_ref = "match"
        except AssertionError as exc:
            emu_vs_ref = f"MISMATCH: {exc}"
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / f"{name}.npz", **data)
    return {"name": name, "emulator": status, "seconds": round(seconds, 3), "emu_vs_numpy": emu_vs_ref}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="bundle fixtures + emulator outputs for run_gpu.py")
    ap.add_argument("names", nargs="*", help="fixtures (default: all in tests/emu/fixtures)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-emulator", action="store_true", help="bundle inputs and references only")
    a = ap.parse_args(argv)
    bad = 0
    for name in a.names or recipes.names():
        row = bundle_case(name, a.out, run_emulator=not a.no_emulator)
        print(f"{row['name']:24s} emulator={row['emulator'][:80]:24s} {row['seconds']:7.2f}s  vs numpy: {row['emu_vs_numpy']}")
        bad += row["emulator"] not in ("ok", "not run") or row["emu_vs_numpy"].startswith("MISMATCH")
    print(f"bundles in {a.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
