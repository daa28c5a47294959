"""CPU side of the GPU fidelity harness (issue 4 item 7): bundle PTX, inputs, references and emulator outputs.

``bundle.py --all OUT_DIR`` collects the whole corpus (``corpus.py``: the
fixtures, the compiled examples for sm_80/sm_90, the hand-built SIMT kernels,
Triton's W4A16 baseline, the PTX instruction families and every mma.sync
shape), runs each case on ``lowbit.emu.launch``, checks the emulator against
the case's independent numpy reference, and writes one ``<case>.npz`` per
case plus ``manifest.json``.  ``--tier full`` adds the exhaustive sweeps.
``bundle.py [--out DIR] [NAME ...]`` bundles fixtures by name (the original
interface).

Bundle format (everything ``run_gpu.py`` needs, numpy + cuda-bindings only):

========================  ================================================
``format``                2
``name``, ``source``      case name; fixture / example / simt / triton / isa / mma
``ptx``                   the PTX text (0-d unicode array)
``kernel``                ``.entry`` name
``target``                the PTX ``.target`` (e.g. ``sm_89``)
``grid``, ``block``       int64[3]
``shared_bytes``          dynamic shared memory bytes
``arg_kind``              per parameter: ``"array"`` or ``"scalar"``
``arg_dtype``             per parameter: numpy dtype name
``arg<i>``                initial value of parameter ``i`` (array, or 0-d for a scalar)
``out_index``             parameter indices of the compared outputs
``out_name``              their names
``out_compare``           ``"exact"`` (bit-exact) or ``"close"``
``out_rtol``, ``out_atol`` tolerances for ``"close"``
``out_nan_any``           bool: any NaN matches any NaN
``out_fmt``               float format for ulp reporting (f16/bf16/f32/f64, "" = dtype)
``tol<i>``                optional per-element absolute tolerance (float64) for output ``i``
``mask<i>``               optional bool: False = not compared (ISA-undefined)
``ref<i>``                numpy reference output for parameter ``i``
``emu<i>``                emulator output for parameter ``i`` (absent if the emulator failed)
``emu_status``            ``"ok"`` or the emulator's error message
``emu_vs_ref``            ``"match"`` or the mismatch
``xfail``                 non-empty: the emulator is known to disagree (the reason)
========================  ================================================
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (ROOT, HERE):
    if str(p) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(p))

import corpus  # noqa: E402

DEFAULT_OUT = HERE / "bundles"


def _arrays(case: corpus.Case, status: str, emu: dict | None, verdict: str) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {
        "format": np.array(2),
        "name": np.array(case.name),
        "source": np.array(case.source),
        "ptx": np.array(case.ptx),
        "kernel": np.array(case.kernel),
        "target": np.array(case.target),
        "grid": np.array(case.grid, np.int64),
        "block": np.array(case.block, np.int64),
        "shared_bytes": np.array(case.shared_bytes, np.int64),
        "arg_kind": np.array(["array" if isinstance(a, np.ndarray) and a.ndim > 0 else "scalar" for a in case.args]),
        "arg_dtype": np.array([np.asarray(a).dtype.name for a in case.args]),
        "out_index": np.array([o.index for o in case.outs], np.int64),
        "out_name": np.array([o.name or str(o.index) for o in case.outs]),
        "out_compare": np.array([o.mode for o in case.outs]),
        "out_rtol": np.array([o.rtol for o in case.outs], np.float64),
        "out_atol": np.array([o.atol for o in case.outs], np.float64),
        "out_nan_any": np.array([o.nan_any for o in case.outs], bool),
        "out_fmt": np.array([o.fmt for o in case.outs] or [""]),
        "emu_status": np.array(status),
        "emu_vs_ref": np.array(verdict),
        "xfail": np.array(case.xfail),
    }
    if not case.outs:
        data["out_fmt"] = np.array([], "<U1")
    for i, v in enumerate(case.args):
        data[f"arg{i}"] = np.asarray(v)
    for o in case.outs:
        data[f"ref{o.index}"] = np.asarray(o.ref)
        if o.tol is not None:
            data[f"tol{o.index}"] = np.asarray(o.tol, np.float64)
        if o.mask is not None:
            data[f"mask{o.index}"] = np.asarray(o.mask, bool)
        if emu is not None:
            data[f"emu{o.index}"] = np.asarray(emu[o.index])
    return data


def bundle_one(case: corpus.Case, out_dir: Path, run_emulator: bool = True) -> dict:
    """Run ``case`` on the emulator, check it against its reference, write ``out_dir/<name>.npz``."""
    status, emu, seconds, verdict = "not run", None, 0.0, "-"
    if run_emulator:
        t0 = time.perf_counter()
        try:
            emu = corpus.run_emulator(case)
            status = "ok"
        except Exception as exc:  # recorded, not fatal: the GPU run still compares with the reference
            status = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - t0
        if emu is not None:
            bad = corpus.check(case, emu)
            verdict = "match" if not bad else "MISMATCH: " + "; ".join(bad)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{case.name}.npz"
    np.savez_compressed(path, **_arrays(case, status, emu, verdict))
    return {"name": case.name, "source": case.source, "target": case.target, "emulator": status,
            "seconds": round(seconds, 3), "emu_vs_numpy": verdict, "xfail": case.xfail,
            "bytes": path.stat().st_size, "rules": sorted({o.mode for o in case.outs})}


def bundle_case(name: str, out_dir: Path, run_emulator: bool = True) -> dict:
    """Bundle one committed fixture by name (the original interface)."""
    import corpus_kernels

    return bundle_one(corpus_kernels.fixture_case(name), out_dir, run_emulator)


def _row_bad(row: dict) -> bool:
    if row["xfail"]:
        return False
    return row["emulator"] not in ("ok", "not run") or row["emu_vs_numpy"].startswith("MISMATCH")


def bundle_all(out_dir: Path, tier: str = "default", sources: list[str] | None = None, only: str | None = None,
               run_emulator: bool = True, verbose: bool = True) -> dict:
    """Bundle the whole corpus; writes ``manifest.json`` and returns it."""
    rows, errors = [], []
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.npz"):
        old.unlink()
    t0 = time.perf_counter()
    for sname in corpus.source_names():
        if sources and sname not in sources:
            continue
        try:
            for case in corpus.collect(tier, [sname], only):
                row = bundle_one(case, out_dir, run_emulator)
                rows.append(row)
                if verbose:
                    mark = "BAD" if _row_bad(row) else ("xfail" if row["xfail"] else "ok")
                    print(f"{row['name']:44s} {row['target']:6s} {mark:5s} {row['seconds']:7.2f}s "
                          f"{row['emulator'][:60] if row['emulator'] != 'ok' else ''}"
                          f"{'' if row['emu_vs_numpy'] in ('match', '-') else row['emu_vs_numpy'][:160]}")
        except Exception as exc:  # one broken source (a compiler mid-edit) must not lose the others
            errors.append({"source": sname, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
            print(f"SOURCE {sname} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
    manifest = {
        "format": 2, "tier": tier, "seconds": round(time.perf_counter() - t0, 1),
        "cases": rows, "source_errors": errors,
        "total_bytes": sum(r["bytes"] for r in rows),
        "counts": {"cases": len(rows), "bad": sum(_row_bad(r) for r in rows), "xfail": sum(bool(r["xfail"]) for r in rows)},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="bundle the emulator corpus + emulator outputs for run_gpu.py")
    ap.add_argument("names", nargs="*", help="fixtures by name (without --all)")
    ap.add_argument("--all", type=Path, metavar="OUT_DIR", help="bundle the whole corpus into OUT_DIR")
    ap.add_argument("--tier", choices=("default", "full"), default="full",
                    help="with --all: 'full' (default) includes the exhaustive sweeps")
    ap.add_argument("--source", action="append", help="with --all: only these sources (repeatable)")
    ap.add_argument("--only", help="with --all: only cases whose name contains this")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-emulator", action="store_true", help="bundle inputs and references only")
    a = ap.parse_args(argv)
    if a.all:
        m = bundle_all(a.all, a.tier, a.source, a.only, run_emulator=not a.no_emulator)
        print(f"{m['counts']['cases']} cases, {m['counts']['bad']} bad, {m['counts']['xfail']} xfail, "
              f"{m['total_bytes'] / 2**20:.1f} MiB in {a.all} ({m['seconds']} s); source errors: "
              f"{[e['source'] for e in m['source_errors']] or 'none'}")
        return 1 if m["counts"]["bad"] or m["source_errors"] else 0
    import corpus_kernels
    from tests.emu.fixtures import recipes

    bad = 0
    for name in a.names or recipes.names():
        row = bundle_one(corpus_kernels.fixture_case(name), a.out, run_emulator=not a.no_emulator)
        print(f"{row['name']:24s} emulator={row['emulator'][:80]:24s} {row['seconds']:7.2f}s  vs numpy: {row['emu_vs_numpy']}")
        bad += _row_bad(row)
    print(f"bundles in {a.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
