"""Per-format table (issue 13): ``lowbit/kernels/wx_matmul.py`` for every weight format, on the CPU.

For each format the kernel is built exactly as ``lowbit.ops`` launches it:
the constexprs of :func:`lowbit.ops._launch.plan` for a weight from
:func:`lowbit.ops.quantize_weight`, the tile overridden by ``--tile``
(default 16x128x128, num_warps 4, num_stages 3; BK is raised to the
smallest legal K step -- ``BK*bits`` whole words, nesting with the group --
when the requested one is not legal), specialised on the divisibility facts
``kernel[grid]`` would detect for the real arguments
(:func:`lowbit.launch.specialization_facts` on
:func:`lowbit.ops._launch.kernel_arguments`, 256-byte aligned like device
allocations), compiled for sm_80 (``--arch`` names another target).  Reported per format:

(a) static: main-loop SASS thread-instructions per weight at M=16, N=K=4096
    (``shared/tools/sass_loop_stats.py``; a loop nested in the main loop
    makes the figure a lower bound and is flagged), its top opcodes, and
    ptxas's registers and spill bytes;
(b) emulated: issue slots and active thread-instructions per weight from
    :class:`lowbit.emu.Stats` at (16, 4096, ``--emu-k``), emulating the
    first ``--blocks`` column(s) of blocks over the full K loop (every block
    is interior, so per-weight figures over them equal the grid's); the
    emulated columns are checked against a float64 dequantise-then-matmul
    with the bound of tests/ops/reference.py;
(c) weight-array bytes per weight (qweight nbytes / (K*N)) against bits/8;
(d) PTX facts of the main loop: per-element ``cvt`` from an integer type,
    and f32 arithmetic (the mma accumulators are f32 but are not arithmetic);
(e) the Triton baseline's uint4 issue slots per weight at the same emulated
    shape (``benchmarks/bench_decode.py``'s ``run_triton``, best of its
    configurations), and lowbit uint4's ratio to it.

Convention: integer formats (signed or not) have integer zero points
(``zero="int"``), group 128; floats, codebooks and block-scaled formats
are symmetric (``zero="none"``), group 128 or the block of the scaled type
(MX 32, NVFP4 16).  Scales of the activation dtype (f16; bf16 with --act bf16).

    python -m benchmarks.bench_formats [--formats uint4,e2m1] [--act bf16] [--tile 16x128x128]
        [--emu-k 512] [--blocks 1] [--layout auto|1|2|3] [--no-triton] [--out X.md] [--json X.json]

``--layout`` stores every weight in that ``QuantizedWeight`` layout version
(3: kernel order, whose K step is a multiple of 128 rows); the default,
``auto``, is :func:`weight_layout`'s choice per format.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks import decode_report as report

ARCH = "sm_80"
SHAPE = (16, 4096, 4096)  # M, N, K of the static table
GROUP = 128
NUM_WARPS, NUM_STAGES = 4, 3
DEFAULT_TILE = (16, 128, 128)
FORMATS = ("uint1", "uint2", "uint3", "uint4", "int4", "uint5", "uint6", "uint7", "uint8",
           "e2m1", "e3m2", "e2m3", "e4m3", "e5m2", "f5e2m2", "nf4", "mxfp4", "nvfp4")  # fmt: skip
#: issue 13's targets
STATIC_TARGET_UINT4, STATIC_TARGET = 4.1, 5.0
TRITON_RATIO_TARGET = 0.25
BYTES_TOLERANCE = 0.02
#: the emulator watchdog's budgets, raised explicitly (the defaults bound a test launch)
EMU_LIMITS = {"max_steps": 1 << 40, "max_seconds": 4 * 3600.0}

# -- PTX facts of the main loop ----------------------------------------------------------------

#: cvt to a float type from an integer type: cvt.rn.f16.u32, cvt.rn.f32.s32, cvt.rn.bf16.u8 ...
_INT_TO_FLOAT = re.compile(r"^cvt(\.\w+)*\.(f16|bf16|f32|f64)(x2)?\.[us](8|16|32|64)$")
#: f32 arithmetic, and f32 -> f16/bf16 rounding (a trip through f32 on the weight path)
_F32_ARITH = re.compile(r"^(add|sub|mul|fma|mad|div|rcp|neg|abs|min|max|ex2|lg2)(\.\w+)*\.f32$")
_F32_ROUND = re.compile(r"^cvt(\.\w+)*\.(f16|bf16)(x2)?\.f32$")


def main_loop_opcodes(ptx: str) -> Counter:
    """Opcode counts of the PTX's main (outermost) loop; empty when there is no loop."""
    from tests.transforms.ptx_loops import main_loop, mix

    return mix(main_loop(ptx))


def ptx_facts(ptx: str) -> dict[str, dict[str, int]]:
    """The main loop's int -> float ``cvt`` and f32 weight-path instructions, counted per opcode."""
    ops = main_loop_opcodes(ptx)
    return {
        "int_to_float_cvt": {k: v for k, v in sorted(ops.items()) if _INT_TO_FLOAT.match(k)},
        "f32_arith": {k: v for k, v in sorted(ops.items()) if _F32_ARITH.match(k) or _F32_ROUND.match(k)},
    }


def allowed_f32(name: str, act: str) -> bool:
    """The issue's two exceptions: 8-bit integers into bf16 (through the f32 magic) and e8m0 into f16."""
    return (name in ("uint8", "int8") and act == "bf16") or (name.startswith("mx") and act == "f16")


# -- one format ----------------------------------------------------------------------------------


@dataclass
class FormatResult:
    """Everything measured for one format (missing parts carry their reason in ``errors``)."""

    name: str
    bits: int = 0
    zero: str = ""
    group: int = 0
    layout: int = 0
    tile: tuple[int, int, int] = (0, 0, 0)
    facts: dict = field(default_factory=dict)
    static: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    emu: dict = field(default_factory=dict)
    bytes_per_weight: float = 0.0
    bytes_ratio: float = 0.0
    ptx: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        d = dict(vars(self))
        d["tile"] = list(self.tile)
        return d


def weight_format(name: str) -> object:
    from lowbit.ops.qweight import resolve_wtype

    return resolve_wtype(name)


def element_bits(fmt: object) -> int:
    import lowbit

    return int((fmt.element if isinstance(fmt, lowbit.ScaledType) else fmt).bits)


def zero_convention(fmt: object) -> str:
    """``"int"`` for integer formats, ``"none"`` for floats, codebooks and block-scaled formats."""
    import lowbit

    return "int" if isinstance(fmt, lowbit.IntType) else "none"


def weight_layout(fmt: object, layout: int | None = None) -> int:
    """The layout each format is measured in: ``layout`` when given (``--layout``); else bit planes (version 2)
    for widths that are not powers of two, whose codes would straddle words in version 1; version 1 otherwise
    (for those the two are identical)."""
    if layout is not None:
        return layout
    bits = element_bits(fmt)
    return 1 if bits & (bits - 1) == 0 else 2


def legal_bk(bits: int, group: int, want: int, layout: int = 1) -> int:
    """``want`` if it covers whole words of codes and nests with the group, else the smallest legal BK above it
    (layout 3: also whole 128-row chunks)."""
    bk = want
    while (bk * bits) % 32 or not (group == -1 or group % bk == 0 or bk % group == 0) or (layout == 3 and bk % 128):
        bk += 1
    return bk


def quantize(name: str, k: int, n: int, seed: int, layout: int | None = None, act: str = "f16") -> object:
    """A random (k, n) weight quantized in ``name`` by the convention above, arrays 256-byte aligned.

    Scales are of the activation dtype ``act`` (a bf16 model keeps bf16 scales; block-scaled formats have their own).
    """
    import dataclasses

    import lowbit.ops as ops
    from lowbit.runtime.check import aligned_copy

    fmt = weight_format(name)
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((k, n)) * 0.5).astype(np.float32)
    qw = ops.quantize_weight(w, fmt, zero=zero_convention(fmt), scale_dtype=act, layout=weight_layout(fmt, layout))
    return dataclasses.replace(qw, **{f: aligned_copy(v) for f, v in qw.tensors().items()})


@dataclass
class Build:
    """One specialisation of wx_matmul with the arguments it was specialised on."""

    plan: object
    constexprs: dict
    args: dict
    facts: dict
    compiled: object
    out: np.ndarray


def build(qw: object, m: int, act: str, tile: tuple[int, int, int], activations: np.ndarray | None = None) -> Build:
    """Compile ``wx_matmul`` as ``lowbit.ops`` would launch it for ``qw``, with ``tile``, on the launch's facts."""
    import ml_dtypes

    from lowbit.kernels.wx_matmul import wx_matmul
    from lowbit.launch import specialization_facts
    from lowbit.ops import _launch
    from lowbit.runtime.check import aligned_copy

    k, n = qw.shape
    fold, finite = qw.facts(act)  # the weight's own, as every lowbit.ops path launches with them
    p = _launch.plan(qw.wtype, qw.group_size, qw.zero, qw.scale_format.name, act, False, qw.layout, m <= 16, fold,
                     finite)  # fmt: skip
    cx = p.kwargs()
    bits, group = element_bits(qw.wtype), cx["GROUP"]
    cx.update(BM=tile[0], BN=tile[1], BK=legal_bk(bits, group, tile[2], cx["LAYOUT"]))
    npdt = np.float16 if act == "f16" else ml_dtypes.bfloat16
    a = aligned_copy(np.zeros((m, k), npdt) if activations is None else activations.astype(npdt))
    out = aligned_copy(np.full((m, n), np.nan, npdt))
    spare = aligned_copy(np.zeros(8, npdt))
    vals = _launch.kernel_arguments(p, a, qw.qweight, qw.scales, qw.zeros, qw.tensor_scale, None, out, spare, m, n, k)
    prog = wx_matmul.specialize(NUM_WARPS, NUM_STAGES, **cx)
    args = dict(zip([q.name for q in prog.params], vals))
    facts = specialization_facts(prog, args)  # what kernel[grid](**args) would specialise on
    compiled = wx_matmul.compiled(wx_matmul.with_facts(prog, facts), ARCH)
    return Build(p, cx, args, facts, compiled, out)


#: K steps one main-loop iteration runs (the pipeline runs loops with prefetched tiles in pairs)
k_steps_per_iteration = report.k_steps_per_iteration


def static_figures(b: Build, tool: Path | None, shape: tuple[int, int, int] = SHAPE) -> dict:
    """sass_loop_stats.py on the cubin (through bench_decode's helper): main-loop SASS per weight (an unrolled
    loop's iteration consumes ``k_steps`` x BK x BN weights)."""
    cx = b.constexprs
    meas = SimpleNamespace(side="lowbit", shape=list(shape), config=(cx["BM"], cx["BN"], cx["BK"], NUM_WARPS),
                           path="", error="" if b.compiled.cubin else "no cubin (run `lowbit install-tools`)",
                           cubin=b.compiled.cubin, k_steps=k_steps_per_iteration(b.compiled.ptx))  # fmt: skip
    row = report.static_row(meas, tool)
    return {k: row[k] for k in ("loop_body", "inner_loops", "thread_instr_per_weight", "top_ops", "error", "k_steps")
            if k in row}


def resources(b: Build) -> dict:
    r = b.compiled.resources
    if r is None:
        return {}
    return {"registers": r.registers, "spill_stores": r.spill_stores, "spill_loads": r.spill_loads,
            "stack": r.stack_frame, "shared": b.compiled.shared_bytes}  # fmt: skip


def columns_match(c: np.ndarray, a: np.ndarray, qw: object, ncols: int) -> tuple[bool, float]:
    """Whether C's first ``ncols`` columns equal a float64 dequantise-then-matmul within the kernel's bound
    (tests/ops/reference.py: an independent dequantisation and the bound derived from the roundings);
    also the worst |error| / bound."""
    from tests.ops.reference import dequantize_reference, gemm_bound

    ref, bound = gemm_bound(a, dequantize_reference(qw)[:, :ncols], None)
    got = np.asarray(c)[:, :ncols].astype(np.float64)
    if not np.isfinite(got).all():
        return False, float("inf")
    ratio = np.abs(got - ref) / bound
    return bool((ratio <= 1).all()), float(ratio.max())


def emulate(name: str, act: str, tile: tuple[int, int, int], emu_k: int, blocks: int, seed: int,
            checks: bool = True, static_facts: dict | None = None, mn: tuple[int, int] = SHAPE[:2],
            layout: int | None = None) -> dict:  # fmt: skip
    """Emulate the first ``blocks`` columns of blocks of (M, N, emu_k); per-weight Stats and the float64 check."""
    from lowbit.compiler import run_on_emulator

    m, n = mn
    qw = quantize(name, emu_k, n, seed, layout, act)
    rng = np.random.default_rng(seed + 1)
    b = build(qw, m, act, tile, rng.standard_normal((m, emu_k)))
    bm, bn, bk = b.constexprs["BM"], b.constexprs["BN"], b.constexprs["BK"]
    if m % bm or n % bn or emu_k % bk:
        raise SystemExit(f"(M, N, K) = ({m}, {n}, {emu_k}) does not tile exactly by {bm}x{bn}x{bk}: "
                         f"the emulated blocks would not be interior (pick --emu-k a multiple of {bk})")  # fmt: skip
    grid = (m // bm, min(blocks, n // bn))
    t0 = time.perf_counter()
    st = run_on_emulator(b.compiled, grid, b.args, checks=checks, **EMU_LIMITS)
    seconds = time.perf_counter() - t0
    ncols = grid[1] * bn
    weights = emu_k * ncols  # as bench_decode: per weight element of the problem (every row of blocks reads it)
    ok, worst = columns_match(b.out, b.args["a_ptr"], qw, ncols)
    return {
        "shape": [m, n, emu_k], "grid": list(grid), "weights": weights, "seconds": round(seconds, 2),
        "issue_slots_per_weight": st.issue_slots / weights,
        "thread_instr_per_weight": st.thread_instructions / weights,
        "mma_per_weight": st.mma / weights, "checks": st.checks, "correct": ok,
        "max_err_over_bound": worst,
        "same_facts_as_static": static_facts is None or b.facts == static_facts,
    }  # fmt: skip


def measure(name: str, act: str = "f16", tile: tuple[int, int, int] = DEFAULT_TILE, emu_k: int = 512,
            blocks: int = 1, seed: int = 0, static: bool = True, emulated: bool = True,
            sass_tool: Path | None = None, checks: bool = True,
            shape: tuple[int, int, int] = SHAPE, layout: int | None = None) -> FormatResult:  # fmt: skip
    """One format's row: build at ``shape`` for (a), (c), (d); emulate (M, N, ``emu_k``) for (b)."""
    from lowbit.errors import LowbitError

    t0 = time.perf_counter()
    res = FormatResult(name)
    fmt = weight_format(name)
    res.bits, res.zero = element_bits(fmt), zero_convention(fmt)
    m, n, k = shape
    try:
        qw = quantize(name, k, n, seed, layout, act)
        res.group, res.layout = qw.group_size, qw.layout
        res.bytes_per_weight = qw.qweight.nbytes / (k * n)
        res.bytes_ratio = res.bytes_per_weight / (res.bits / 8)
        b = build(qw, m, act, tile)
        res.tile = (b.constexprs["BM"], b.constexprs["BN"], b.constexprs["BK"])
        res.facts = b.facts
        res.resources = resources(b)
        res.ptx = ptx_facts(b.compiled.ptx)
        res.ptx["has_mma"] = "mma.sync" in b.compiled.ptx
        if static:
            res.static = static_figures(b, sass_tool, shape)
    except LowbitError as exc:
        res.errors.append(f"build: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    if emulated and not res.errors:
        try:
            res.emu = emulate(name, act, tile, emu_k, blocks, seed + 17, checks, res.facts or None, (m, n), layout)
        except LowbitError as exc:
            res.errors.append(f"emulator: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    res.seconds = round(time.perf_counter() - t0, 1)
    return res


def triton_uint4(emu_k: int, blocks: int, checks: bool = True, configs: list | None = None,
                 mn: tuple[int, int] = SHAPE[:2]) -> dict:  # fmt: skip
    """The Triton W4A16 baseline on the emulator at (M, N, emu_k): the best of bench_decode's configurations."""
    from benchmarks import bench_decode as bd
    from benchmarks.decode_problem import make_problem

    prob = make_problem(mn[0], mn[1], emu_k, seed=emu_k)
    facts = bd.lowbit_facts(prob)
    tried = []
    for cfg in configs or [c for c in bd.CONFIGS if c[0] <= mn[0] and mn[1] % c[1] == 0 and emu_k % c[2] == 0]:
        meas = bd.run_triton(prob, cfg, blocks, facts, checks=checks)
        row = {"config": list(cfg), "error": meas.error, "correct": meas.correct, "seconds": round(meas.seconds, 1)}
        if meas.ok:
            row["issue_slots_per_weight"] = meas.stats.issue_slots / meas.weights
            row["thread_instr_per_weight"] = meas.stats.thread_instructions / meas.weights
        tried.append(row)
    ok = [r for r in tried if r.get("correct") and "issue_slots_per_weight" in r]
    best = min(ok, key=lambda r: r["issue_slots_per_weight"]) if ok else None
    return {"shape": [mn[0], mn[1], emu_k], "best": best, "tried": tried}


# -- report ----------------------------------------------------------------------------------------


def _loop_body(s: dict) -> str:
    """The main loop's SASS count, per K step when an iteration runs several."""
    if "loop_body" not in s:
        return "n/a"
    steps = s.get("k_steps", 1)
    return str(s["loop_body"]) if steps == 1 else f"{s['loop_body']} ({steps} K steps: {s['loop_body'] / steps:g} a step)"


def static_target(name: str) -> float:
    return STATIC_TARGET_UINT4 if name == "uint4" else STATIC_TARGET


def _f(x: object, nd: int = 2) -> str:
    return f"{x:.{nd}f}" if isinstance(x, float | int) and not isinstance(x, bool) else "n/a"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "**over**")


def verdicts(r: FormatResult, act: str, triton: dict | None) -> dict[str, bool | None]:
    tpw = r.static.get("thread_instr_per_weight")
    v: dict[str, bool | None] = {
        "static": None if tpw is None else bool(tpw <= static_target(r.name) and not r.static.get("inner_loops")),
        "bytes": bool(r.bytes_ratio and abs(r.bytes_ratio - 1) <= BYTES_TOLERANCE) if r.bytes_ratio else None,
        "correct": r.emu.get("correct"),
        "no_int_cvt": None if not r.ptx else not r.ptx["int_to_float_cvt"],
        # an exception covers only its conversion (8-bit codes -> bf16, the e8m0 scale -> f16), not the rest of
        # the weight path: with f32 instructions present it is left to the reader (None), never counted as met
        "no_f32": None if not r.ptx or (r.ptx["f32_arith"] and allowed_f32(r.name, act)) else not r.ptx["f32_arith"],
    }
    if r.name == "uint4":
        v["triton_ratio"] = None
        t = (triton or {}).get("best")
        if t and r.emu.get("issue_slots_per_weight"):
            v["triton_ratio"] = r.emu["issue_slots_per_weight"] / t["issue_slots_per_weight"] <= TRITON_RATIO_TARGET
    return v


def progress_line(r: FormatResult) -> str:
    if r.errors:
        return f"{r.name:7s} n/a: {'; '.join(r.errors)}"
    s, e = r.static, r.emu
    warn = f" (+{s['inner_loops']} nested loop: lower bound)" if s.get("inner_loops") else ""
    return (f"{r.name:7s} BK={r.tile[2]:<4d} static thr/w {_f(s.get('thread_instr_per_weight'))}{warn}  "
            f"emu issue/w {_f(e.get('issue_slots_per_weight'))} thr/w {_f(e.get('thread_instr_per_weight'))}  "
            f"correct {e.get('correct')}  B/w {r.bytes_per_weight:.4f} ({r.bytes_ratio:.3f}x bits/8)  "
            f"int-cvt {sum(r.ptx.get('int_to_float_cvt', {}).values())} f32 {sum(r.ptx.get('f32_arith', {}).values())}"
            f"  regs {r.resources.get('registers', 'n/a')}  {r.seconds:.0f}s")  # fmt: skip


def markdown(rows: list[FormatResult], triton: dict | None, args: argparse.Namespace) -> str:
    act = args.act
    m, n, k = SHAPE
    out = [f"# bench_formats: wx_matmul per weight format ({ARCH}, {act} activations)", ""]
    out += report.environment() + [""]
    out += [f"Command: `python -m benchmarks.bench_formats {' '.join(sys.argv[1:])}`", "",
            "Convention: integer formats (uint*, int*) use integer zero points (`zero=\"int\"`), group 128; floats, "
            "codebooks (nf4) and block-scaled formats are symmetric (`zero=\"none\"`), group 128 or the scaled "
            f"type's block (MX 32, NVFP4 16). Scales {args.act} (the activation dtype). The kernel is `lowbit/kernels/wx_matmul.py` with the "
            f"constexprs `lowbit.ops` plans, tile --tile {'x'.join(map(str, args.tile))} (BK raised to the smallest "
            f"legal K step where needed), num_warps {NUM_WARPS}, num_stages {NUM_STAGES}, specialised on the facts "
            "`kernel[grid]` detects for the real (256-byte aligned) arguments.", "",
            f"Targets (issue 13): static SASS thread-instructions per weight <= {STATIC_TARGET_UINT4} at uint4 and "
            f"<= {STATIC_TARGET} for every other format, with no loop nested in the main loop; uint4 emulated issue "
            f"slots <= {TRITON_RATIO_TARGET}x Triton's; weight bytes within {BYTES_TOLERANCE:.0%} of bits/8; no "
            "per-element int -> float `cvt` and no f32 arithmetic in the main loop (except 8-bit -> bf16 and "
            "e8m0 -> f16).", "",
            f"Static: M x N x K = {m} x {n} x {k}, `shared/tools/sass_loop_stats.py` (main-loop SASS x threads / "
            f"(BK x BN)). Emulated: {m} x {n} x {args.emu_k}, the first {args.blocks} column(s) of blocks, full K "
            "loop, checks " + ("on" if not args.no_checks else "off") + "; per-weight figures over the emulated "
            "blocks' weights; the emulated columns checked against a float64 dequantise-then-matmul "
            "(tests/ops/reference.py's bound).", ""]  # fmt: skip
    out += ["| format | bits | zero | group | BK | static thr/w | target | nested loops | regs | spill B | "
            "emu issue/w | emu thr/w | correct | weight B/w | bits/8 | ratio | int->float cvt | f32 arith |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r.errors and not r.static:
            out.append(f"| {r.name} | {r.bits} | {r.zero} | {r.group} | | | | | | | | | | | | | | n/a: "
                       f"{'; '.join(r.errors)} |")  # fmt: skip
            continue
        v = verdicts(r, act, triton)
        s, e, res = r.static, r.emu, r.resources
        spill = res.get("spill_stores", 0) + res.get("spill_loads", 0) if res else "n/a"
        cvt = sum(r.ptx.get("int_to_float_cvt", {}).values())
        f32 = sum(r.ptx.get("f32_arith", {}).values())
        f32_note = " (an exception applies to part: see issue 13)" if f32 and allowed_f32(r.name, act) else ""
        correct = e.get("correct", "; ".join(r.errors) or "n/a")
        out.append(f"| {r.name} | {r.bits} | {r.zero} | {r.group} | {r.tile[2]} | "
                   f"{_f(s.get('thread_instr_per_weight'))} | <= {static_target(r.name)} {_mark(v['static'])} | "
                   f"{s.get('inner_loops', 'n/a')} | {res.get('registers', 'n/a')} | {spill} | "
                   f"{_f(e.get('issue_slots_per_weight'))} | {_f(e.get('thread_instr_per_weight'))} | {correct} | "
                   f"{r.bytes_per_weight:.4f} | {r.bits / 8:.4f} | {r.bytes_ratio:.3f} {_mark(v['bytes'])} | "
                   f"{cvt} {_mark(v['no_int_cvt'])} | {f32}{f32_note} {_mark(v['no_f32'])} |")  # fmt: skip
    out += ["", "## uint4 against the Triton baseline (emulated issue slots per weight, same run)", ""]
    uint4 = next((r for r in rows if r.name == "uint4" and r.emu), None)
    t = (triton or {}).get("best")
    if triton is None:
        out.append("Not run (--no-triton, or uint4 not among --formats).")
    elif t is None:
        out.append("Triton: no configuration ran correctly: " + "; ".join(
            f"{'x'.join(map(str, x['config']))}: {x['error'] or 'wrong result'}" for x in triton["tried"]))
    else:
        cfg = "x".join(map(str, t["config"][:3])) + f" w{t['config'][3]}"
        out.append(f"Triton (`benchmarks/baselines/triton_w4a16.py`, f16, best of {len(triton['tried'])} "
                   f"configurations: {cfg}) at {' x '.join(map(str, triton['shape']))}: "
                   f"{t['issue_slots_per_weight']:.3f} issue slots / weight, {t['thread_instr_per_weight']:.3f} "
                   "thread-instructions / weight.")  # fmt: skip
        if uint4:
            ratio = uint4.emu["issue_slots_per_weight"] / t["issue_slots_per_weight"]
            out += ["", f"lowbit uint4 / Triton issue slots: **{ratio:.2f}** (target <= {TRITON_RATIO_TARGET}: "
                        f"{'met' if ratio <= TRITON_RATIO_TARGET else 'not met'})."]  # fmt: skip
    out += ["", "## Details", "", "| format | layout | tile | main-loop SASS | top SASS opcodes | int->float cvt in the PTX main "
            "loop | f32 arithmetic in the PTX main loop | mma | emulated s | errors |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        top = ", ".join(f"{a} {b}" for a, b in list(r.static.get("top_ops", {}).items())[:6])
        cvt = ", ".join(f"`{a}` {b}" for a, b in r.ptx.get("int_to_float_cvt", {}).items()) or "none"
        f32 = ", ".join(f"`{a}` {b}" for a, b in r.ptx.get("f32_arith", {}).items()) or "none"
        errs = "; ".join(r.errors + ([r.static["error"]] if "error" in r.static else []))
        out.append(f"| {r.name} | {r.layout} | {'x'.join(map(str, r.tile))} | {_loop_body(r.static)} | {top} | {cvt} | "
                   f"{f32} | {r.ptx.get('has_mma', 'n/a')} | {r.emu.get('seconds', 'n/a')} | {errs} |")  # fmt: skip
    return "\n".join(out) + "\n"


def _tile(text: str) -> tuple[int, int, int]:
    vals = tuple(int(v) for v in text.lower().split("x"))
    if len(vals) != 3:
        raise SystemExit(f"--tile {text!r}: expected BMxBNxBK")
    return vals  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    global ARCH  # noqa: PLW0603 - the module's one target, read by build() and markdown(); --arch sets it
    import os

    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # as bench_decode: Triton's default, stated
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--formats", help=f"comma-separated subset of {','.join(FORMATS)} (or any format name)")
    ap.add_argument("--act", choices=("f16", "bf16"), default="f16")
    ap.add_argument("--tile", type=_tile, default=DEFAULT_TILE, help="BMxBNxBK (default 16x128x128)")
    ap.add_argument("--emu-k", type=int, default=512, help="K of the emulated problem (default 512)")
    ap.add_argument("--blocks", type=int, default=1, help="columns of blocks to emulate (default 1)")
    ap.add_argument("--layout", choices=("auto", "1", "2", "3"), default="auto",
                    help="QuantizedWeight layout version of every weight (default auto: 2 for 3/5/6/7 bits, else 1)")
    ap.add_argument("--no-static", action="store_true", help="skip the SASS count")
    ap.add_argument("--no-emulate", action="store_true", help="skip the emulator (static and PTX facts only)")
    ap.add_argument("--no-triton", action="store_true", help="skip the Triton baseline")
    ap.add_argument("--no-checks", action="store_true", help="emulate without racecheck/definedness (faster)")
    ap.add_argument("--sass-tool", type=Path, help="path of sass_loop_stats.py (default: shared/tools/)")
    ap.add_argument("--out", type=Path, help="write the markdown report here")
    ap.add_argument("--json", type=Path, help="write every result as JSON here")
    ap.add_argument("--arch", default=ARCH, help=f"target to compile for (default {ARCH}; e.g. sm_89, sm_100a)")
    args = ap.parse_args(argv)
    from lowbit.arch import target  # noqa: PLC0415

    ARCH = target(args.arch).name
    names = args.formats.split(",") if args.formats else list(FORMATS)
    layout = None if args.layout == "auto" else int(args.layout)
    rows = []
    for name in names:
        rows.append(measure(name, args.act, args.tile, args.emu_k, args.blocks, static=not args.no_static,
                            emulated=not args.no_emulate, sass_tool=args.sass_tool, checks=not args.no_checks,
                            layout=layout))
        print(progress_line(rows[-1]), flush=True)
    triton = None
    if not args.no_triton and not args.no_emulate and "uint4" in names:
        triton = triton_uint4(args.emu_k, args.blocks, checks=not args.no_checks)
        b = triton["best"]
        print(f"triton  uint4 issue/w {_f(b and b['issue_slots_per_weight'])} "
              f"({b and b['config']}; {len(triton['tried'])} configurations)", flush=True)
    text = markdown(rows, triton, args)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({
            "environment": report.environment(), "git": report._git_rev(), "argv": sys.argv[1:],
            "act": args.act, "tile": list(args.tile), "emu_k": args.emu_k, "blocks": args.blocks,
            "shape": list(SHAPE), "convention": {r.name: {"zero": r.zero, "group": r.group} for r in rows},
            "targets": {"static_uint4": STATIC_TARGET_UINT4, "static": STATIC_TARGET,
                        "triton_ratio": TRITON_RATIO_TARGET, "bytes_tolerance": BYTES_TOLERANCE},
            "formats": [dict(r.as_dict(), verdicts=verdicts(r, args.act, triton)) for r in rows],
            "triton_uint4": triton}, indent=1, default=str))  # fmt: skip
    wrong = [r for r in rows if r.emu.get("correct") is False]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
