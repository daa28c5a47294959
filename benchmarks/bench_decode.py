"""Decode benchmark (issues 11, 12, 13): W4A16 GEMM cost per weight element, lowbit vs Triton, on the CPU.

Both sides run the exact PTX a GPU would run, on lowbit's emulator, and are
counted by :class:`lowbit.emu.Stats`:

* lowbit: ``examples/04_w4a16_matmul.py``, specialised the way ``kernel[grid]``
  specialises it (:func:`lowbit.launch.specialization_facts`: 16-byte aligned
  pointers, sizes that are multiples of 16), compiled for sm_80;
* Triton: ``benchmarks/baselines/triton_w4a16.py`` compiled for sm_80 with
  ``num_stages=3``, given the same facts as ``tt.divisibility=16`` (what
  Triton's JIT would specialise on for these arguments).

Each side takes the best (fewest issue slots) of the one committed list
:data:`CONFIGS` of (BM, BN, BK, num_warps); a configuration a side cannot
build or launch on sm_80 (shared memory over the opt-in limit, a compile
error) is listed with its reason.  Reported per weight element: issue slots
(32 per warp-instruction issued: masked-off and predicated-off lanes are not
free), active-lane thread-instructions, and bytes read from the weight array
alone (the ideal is bits/8 = 0.5; the target is <= 1.1x).  ``--prefill``
adds M=256 (issue 12) reported per multiply-accumulate, with shared-memory
wavefronts per ``ldmatrix`` / 16-byte ``cp.async`` request.

**What is emulated.** Not the whole grid: every block of the first
``--blocks`` (default 2) columns of blocks, i.e. blocks (m, n) for all m in
``0..M/BM-1`` and n in ``0..blocks-1``, over the full K loop.  Every shape
here tiles exactly (M, N, K are multiples of BM, BN, BK: the benchmark
refuses otherwise), so every block is an interior block doing the same
instructions on different addresses, and per-weight figures over the
emulated blocks equal the full grid's (``tests/test_bench_decode.py`` checks
that 2 columns of blocks cost exactly twice one).  The emulated columns of C
are checked against a float64 dequantise-then-matmul.

``--static`` instead reads each side's cubin with
``shared/tools/sass_loop_stats.py`` (nvdisasm from ``lowbit install-tools``):
SASS instructions in the main loop x threads / (BK x BN) weights per iteration.

The lowering is being rebuilt: the report says which path lowbit's PTX
takes (tensor cores when it contains ``mma.sync``, else the FMA path), so
the same command can be re-run unchanged when tensor cores land.

    python -m benchmarks.bench_decode [--prefill] [--static | --with-static] [--blocks 2]
        [--configs 16x32x32x4,...] [--shapes 16x4096x4096,...] [--out benchmarks/results/X.md] [--json X.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import decode_report as report
from benchmarks.decode_problem import Problem, make_problem

ROOT = Path(__file__).resolve().parents[1]
ARCH, SM = "sm_80", 80
TRITON_STAGES = 3
LOWBIT_STAGES = 3  # the same pipeline depth on both sides (lowbit's cp.async ring, Triton's num_stages)
GROUP = 128

#: (BM, BN, BK, num_warps): the one list both sides choose from.  BK divides the group (128) for both
#: kernels; a configuration with BM > M is skipped for that shape (it would only compute padding rows).
CONFIGS: tuple[tuple[int, int, int, int], ...] = (
    (16, 32, 32, 4),  # example 04's defaults
    (16, 64, 64, 4),
    (16, 128, 32, 4),
    (16, 64, 128, 4),
    (16, 128, 128, 4),  # issue 11's tensor-core shape for example 04
    (16, 256, 64, 8),
    (64, 64, 64, 4),  # prefill
    (64, 128, 32, 4),
)
DECODE_SHAPES = ((16, 4096, 4096), (16, 2048, 8192))
PREFILL_SHAPES = ((256, 4096, 4096),)


@dataclass
class Measurement:
    """One side x configuration x shape: what ran, on which blocks, and its Stats (or why it did not)."""

    side: str
    config: tuple[int, int, int, int]
    shape: tuple[int, int, int]
    grid: tuple[int, int] = (0, 0)  # the emulated blocks
    full_grid: tuple[int, int] = (0, 0)
    stats: object | None = None
    traffic: dict = field(default_factory=dict)  # lane bytes per argument
    sectors: dict = field(default_factory=dict)  # 32-byte sectors per warp instruction per argument
    correct: bool | None = None
    path: str = ""
    shared_bytes: int = 0
    seconds: float = 0.0
    error: str = ""
    cubin: bytes | None = None
    facts: dict = field(default_factory=dict)
    k_steps: int = 1  # K steps one main-loop iteration runs (lowbit's pipeline pairs loops with prefetched tiles)

    @property
    def ok(self) -> bool:
        return not self.error and self.stats is not None

    @property
    def weights(self) -> int:
        """Weight elements the emulated blocks consume (every row of blocks consumes each once)."""
        return self.shape[2] * self.grid[1] * self.config[1]

    @property
    def macs(self) -> int:
        return self.shape[0] * self.weights

    def wavefronts(self, prefix: str) -> float:
        """Wavefronts per request over the shared access kinds starting with ``prefix`` (0 if none ran)."""
        st = self.stats
        req = sum(v for k, v in st.shared_requests_by_opcode.items() if k.startswith(prefix))
        wf = sum(v for k, v in st.shared_wavefronts_by_opcode.items() if k.startswith(prefix))
        return wf / req if req else 0.0


#: The emulator watchdog's budgets for these launches, raised explicitly (the defaults, lowbit.config's
#: EMU_STEPS_* and EMU_MAX_SECONDS, bound a test launch): a decode shape runs full K loops of many blocks.
EMU_LIMITS = {"max_steps": 1 << 40, "max_seconds": 4 * 3600.0}


def _load_example04():
    spec = importlib.util.spec_from_file_location("ex04_w4a16", ROOT / "examples" / "04_w4a16_matmul.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _lowbit_path(ptx: str) -> str:
    return "tensor cores (mma.sync)" if "mma.sync" in ptx else "FMA path (no mma.sync in the PTX)"


def _emulated_grid(shape, config, blocks: int) -> tuple[tuple[int, int], tuple[int, int]]:
    m, n, k = shape
    bm, bn, bk, _ = config
    if m % bm or n % bn or k % bk:
        raise SystemExit(f"shape {shape} does not tile exactly by {config}: the block subset would miss edge blocks")
    full = (m // bm, n // bn)
    return (full[0], min(blocks, full[1])), full


def run_lowbit(prob: Problem, config, blocks: int, checks: bool = True, emulate: bool = True,
               stages: int = LOWBIT_STAGES) -> Measurement:
    """Example 04 on the emulator, specialised on the facts ``kernel[grid]`` would detect for these arrays."""
    from lowbit.compiler import run_on_emulator
    from lowbit.errors import LowbitError
    from lowbit.launch import specialization_facts

    bm, bn, bk, nw = config
    meas = Measurement("lowbit", config, prob.shape)
    meas.grid, meas.full_grid = _emulated_grid(prob.shape, config, blocks)
    kern = _load_example04().w4a16_matmul
    args = prob.lowbit_args()
    try:
        prog = kern.specialize(nw, stages, BM=bm, BN=bn, BK=bk, GROUP=GROUP)
        meas.facts = specialization_facts(prog, args)  # what kernel[grid](**args) would specialise on
        compiled = kern.compiled(kern.with_facts(prog, meas.facts), ARCH)
    except LowbitError as exc:
        meas.error = f"compile: {str(exc).splitlines()[0]}"
        return meas
    meas.path, meas.shared_bytes, meas.cubin = _lowbit_path(compiled.ptx), compiled.shared_bytes, compiled.cubin
    meas.k_steps = report.k_steps_per_iteration(compiled.ptx)
    if not emulate:
        return meas
    t0 = time.perf_counter()
    try:
        meas.stats = run_on_emulator(compiled, meas.grid, args, checks=checks, **EMU_LIMITS)
    except LowbitError as exc:
        meas.error = f"emulator: {str(exc).splitlines()[0]}"
        return meas
    meas.seconds = time.perf_counter() - t0
    meas.traffic = meas.stats.argument_traffic([p.name for p in compiled.params])
    meas.sectors = meas.stats.argument_sectors([p.name for p in compiled.params])
    meas.correct = prob.check(args["c_ptr"], meas.grid[1] * bn)
    return meas


def run_triton(prob: Problem, config, blocks: int, facts: dict, checks: bool = True,
               emulate: bool = True) -> Measurement:
    """The Triton baseline's PTX (num_stages=3, ``facts`` as tt.divisibility) on the emulator."""
    from benchmarks.baselines import triton_w4a16 as T
    from lowbit import emu
    from lowbit.arch import target
    from lowbit.emu.parser import parse
    from lowbit.errors import LowbitError

    bm, bn, bk, nw = config
    meas = Measurement("triton", config, prob.shape)
    meas.grid, meas.full_grid = _emulated_grid(prob.shape, config, blocks)
    divisible = tuple(name for name, d in facts.items() if d % 16 == 0 and name in T.SIGNATURE)
    meas.facts = {name: 16 for name in divisible}
    try:
        k = T.compile_for(arch=SM, num_warps=nw, num_stages=TRITON_STAGES,
                          constexprs={"BM": bm, "BN": bn, "BK": bk, "GROUP": GROUP}, divisible=divisible)
    except Exception as exc:  # noqa: BLE001 - Triton raises many types; the reason is reported, not hidden
        meas.error = f"triton compile: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return meas
    md = k.metadata
    meas.path, meas.shared_bytes, meas.cubin = "tensor cores (mma.sync)" if "mma.sync" in k.asm["ptx"] else "FMA", \
        md.shared, k.asm.get("cubin")
    tgt = target(ARCH)
    if md.shared > tgt.max_shared_per_block_optin:
        meas.error = f"needs {md.shared} B shared memory > {ARCH}'s {tgt.max_shared_per_block_optin} B opt-in limit"
        return meas
    if not emulate:
        return meas
    module = parse(k.asm["ptx"])
    params = module.entry(md.name).params
    scratch = [np.zeros(256, np.uint8) for _ in params[8:]]  # Triton's trailing global/profile scratch pointers
    args = prob.triton_args()
    t0 = time.perf_counter()
    try:
        meas.stats = emu.launch(module, md.name, (*meas.grid, 1), 32 * nw, [*args, *scratch],
                                shared_bytes=md.shared, checks=checks, **EMU_LIMITS,
                                max_dynamic_shared=md.shared if md.shared > tgt.default_max_shared else None)
    except LowbitError as exc:
        meas.error = f"emulator: {str(exc).splitlines()[0]}"
        return meas
    meas.seconds = time.perf_counter() - t0
    names = [n for n, t in T.SIGNATURE.items() if t != "constexpr"]
    names += [f"scratch{i}" for i in range(len(params) - len(names))]
    meas.traffic = meas.stats.argument_traffic(names)
    meas.sectors = meas.stats.argument_sectors(names)
    meas.correct = prob.check(args[4], meas.grid[1] * bn)
    return meas


def lowbit_facts(prob: Problem) -> dict[str, int]:
    """The specialisation facts ``kernel[grid]`` detects for this problem's arrays and sizes."""
    from lowbit.launch import specialization_facts

    kern = _load_example04().w4a16_matmul
    return specialization_facts(kern.specialize(), prob.lowbit_args())


def _parse_list(text: str, n: int) -> list[tuple[int, ...]]:
    out = []
    for item in text.split(","):
        vals = tuple(int(v) for v in item.lower().split("x"))
        if len(vals) != n:
            raise SystemExit(f"{item!r}: expected {n} numbers joined by 'x'")
        out.append(vals)
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's current default, stated (it warns otherwise)
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--prefill", action="store_true", help="also M=256 (issue 12), per multiply-accumulate")
    ap.add_argument("--static", action="store_true", help="only the static SASS count, no emulation")
    ap.add_argument("--with-static", action="store_true", help="emulate and add the static SASS count")
    ap.add_argument("--blocks", type=int, default=2, help="columns of blocks to emulate (all rows of each)")
    ap.add_argument("--configs", help="BMxBNxBKxWARPS,... (default: the committed CONFIGS)")
    ap.add_argument("--shapes", help="MxNxK,... (default: the decode shapes, plus prefill with --prefill)")
    ap.add_argument("--stages", type=int, default=LOWBIT_STAGES, help="lowbit's num_stages (default: Triton's, 3)")
    ap.add_argument("--no-checks", action="store_true", help="emulate without racecheck/definedness (faster)")
    ap.add_argument("--sass-tool", type=Path, help="path of sass_loop_stats.py (default: shared/tools/)")
    ap.add_argument("--out", type=Path, help="write the markdown report here")
    ap.add_argument("--json", type=Path, help="write every measurement as JSON here")
    args = ap.parse_args(argv)
    configs = _parse_list(args.configs, 4) if args.configs else list(CONFIGS)
    shapes = _parse_list(args.shapes, 3) if args.shapes else list(DECODE_SHAPES) + (
        list(PREFILL_SHAPES) if args.prefill else [])
    measured: list[Measurement] = []
    static_rows: list[dict] = []
    seen_static: set = set()
    for shape in shapes:
        prob = make_problem(*shape, seed=sum(shape))
        facts = lowbit_facts(prob)
        for cfg in configs:
            if cfg[0] > shape[0]:
                continue
            emulate = not args.static
            lb = run_lowbit(prob, cfg, args.blocks, checks=not args.no_checks, emulate=emulate, stages=args.stages)
            tr = run_triton(prob, cfg, args.blocks, facts, checks=not args.no_checks, emulate=emulate)
            for meas in (lb, tr):
                print(report.progress_line(meas), flush=True)
                measured.append(meas)
                key = (meas.side, cfg, tuple(sorted(meas.facts.items())))  # the cubin does not depend on M, N, K
                if (args.static or args.with_static) and key not in seen_static:
                    seen_static.add(key)
                    static_rows.append(report.static_row(meas, args.sass_tool))
                    print("   ", report.static_line(static_rows[-1]), flush=True)
    text = report.markdown(measured if not args.static else [], static_rows, shapes, configs, args)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"measurements": [report.as_dict(m) for m in measured if not args.static],
                                         "static": static_rows}, indent=1))
    bad = [m for m in measured if m.ok and m.correct is False]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
