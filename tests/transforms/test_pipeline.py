"""Software pipelining (issue 12 item 5): ``num_stages`` turns a K loop's shared staging into a cp.async ring.

What the PTX must show at sm_80 with ``num_stages=3`` (examples 03 and 04):
16-byte ``cp.async.cg.shared.global`` copies, ``cp.async.wait_group 1``,
exactly one ``bar.sync`` per K step, ``ldmatrix`` from a swizzled ring;
example 03's C stores are all ``st.global.v4``.  The emulator's Stats
show the ISA minimum for every ``ldmatrix.xN`` (N wavefronts) and 16-byte
``cp.async`` (4 wavefronts) request, with racecheck and the cp.async checks
on.  Planted bugs -- the loop's barrier deleted, or ``wait_group S-1``
instead of ``S-2`` -- are named by the emulator.  Emulator and interpreter
agree for ``num_stages`` 1-4 at K in {0, 16, (S-1)*BK-8, 1000} on odd M/N.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit import emu
from lowbit.codegen.emit import compile_kernel
from lowbit.compiler import compile_program, run_on_emulator
from lowbit.errors import EmulatorError
from lowbit.ir import ops as O
from lowbit.ir.rewrite import Rewriter, walk
from lowbit.layout.swizzle import Swizzle
from lowbit.toolchain import require_tool
from lowbit.transforms import PIPELINE, Options, lower_vm
from tests.transforms.ptx_loops import main_loop, mix

ROOT = Path(__file__).resolve().parents[2]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


EX03, EX04 = _example("03_matmul_f16"), _example("04_w4a16_matmul")
ALL = ("a_ptr", "b_ptr", "w_ptr", "s_ptr", "z_ptr", "c_ptr", "N", "K")


def _aligned(prog):  # the facts a launch on 16-byte aligned arrays with N, K multiples of 16 detects
    return prog.with_facts({p.name: 16 for p in prog.params if p.name in ALL})


def _ex03(stages: int):
    return _aligned(EX03.matmul_f16.specialize(num_stages=stages, BM=64, BN=64, BK=32))


def _ex04(stages: int):
    return _aligned(EX04.w4a16_matmul.specialize(num_stages=stages, BM=16, BN=128, BK=128))


# ------------------------------------------------------------------------------------------------ the PTX


@pytest.mark.parametrize("which", ["03", "04"])
def test_three_stages_copy_16_bytes_wait_for_one_group_and_sync_once_per_k_step(which: str) -> None:
    prog = _ex03(3) if which == "03" else _ex04(3)
    ck = compile_program(prog, "sm_80")
    loop = mix(main_loop(ck.ptx))
    steps = 2 if which == "04" else 1  # 04 carries prefetched scales and zeros: unrolled into ping-pong pairs
    assert loop["bar.sync"] == steps and loop["cp.async.wait_group"] == steps and loop["cp.async.commit_group"] == steps
    assert re.search(r"cp\.async\.wait_group\s+1;", ck.ptx)
    copies = [ln for ln in main_loop(ck.ptx) if ln.startswith("cp.async.") and "group" not in ln]
    assert copies and all(ln.startswith("cp.async.cg.shared.global") and re.search(r",\s*16,", ln) for ln in copies)
    # 03: A (64x32) and B (32x64) f16 = 8 KiB a step, 128 threads x 16 B = 2 KiB a round: 4 copies a thread;
    # 04: A (16x128 f16, 4 KiB) and the words (16x128 uint32, 8 KiB): 6
    assert len(copies) == (4 if which == "03" else 6) * steps
    assert loop["ldmatrix.sync.aligned.m8n8.x4.shared.b16"] + loop["ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"] > 0
    assert "ld.global" not in " ".join(ln for ln in main_loop(ck.ptx) if "ld.global" in ln and "v4" in ln)
    sel = lower_vm(prog, Options("sm_80"))
    rings = [op.result.type for op in sel.body if isinstance(op, O.AllocShared)]
    read = [op for op in walk(sel.body) if isinstance(op, O.LoadShared) and op.via]
    assert read and all(isinstance(op.src.type.layout, Swizzle) and op.src.type.layout.bits > 0 for op in read)
    assert any(t.shape[0] == 3 for t in rings)  # a 3-stage ring per staged operand
    if which == "03":
        stores = [ln for ln in ck.ptx.splitlines() if "st.global" in ln]
        assert stores and all("st.global.v4" in ln for ln in stores)


def test_one_stage_is_the_unpipelined_loop() -> None:
    ck1, ck3 = compile_program(_ex03(1), "sm_80"), compile_program(_ex03(3), "sm_80")
    assert "cp.async" not in ck1.ptx and mix(main_loop(ck1.ptx))["bar.sync"] == 4  # two round trips, two each
    assert "cp.async" in ck3.ptx and "num_stages=3" in ck3.vm and "num_stages" not in ck1.vm


def test_the_scales_and_zeros_are_prefetched_a_step_ahead() -> None:
    sel = lower_vm(_ex04(3), Options("sm_80"))
    loop = next(op for op in sel.body if isinstance(op, O.For))
    carried = [a for a in loop.args if getattr(a, "type", None) is not None and hasattr(a.type, "shape")]
    shapes = sorted((a.type.dtype.name, a.type.shape) for a in carried)
    assert ("f16", (1, 128)) in shapes and ("uint8", (1, 128)) in shapes  # the next group's scales and zeros
    first = [op for op in sel.body if isinstance(op, O.LoadGlobal)]
    assert len(first) == 2  # the first step's, before the loop


# ------------------------------------------------------------------------------------------------ Stats


def test_stats_show_the_isa_minimum_wavefronts_with_every_check_on() -> None:
    require_tool("ptxas")
    m, n, k = 64, 128, 256
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c = np.full((m, n), np.nan, np.float32)
    ck = compile_program(_aligned(EX03.matmul_f16.specialize(num_stages=3, BM=64, BN=64, BK=32)), "sm_80")
    st = run_on_emulator(ck, (1, 2), [a, b, c, m, n, k])
    assert st.checks
    assert np.all(np.abs(c - EX03.reference(a, b)) <= EX03.tolerance(a, b))
    for key in ("ldmatrix.x4", "ldmatrix.x4.trans"):
        req = st.shared_requests_by_opcode[key]
        assert req > 0 and st.shared_wavefronts_by_opcode[key] == 4 * req, key
    req = st.shared_requests_by_opcode["cp.async.cg.16"]
    assert req > 0 and st.shared_wavefronts_by_opcode["cp.async.cg.16"] == 4 * req


# ------------------------------------------------------------------------------------------------ planted bugs


class _Plant(Rewriter):
    """Delete the pipelined loop's barrier, or make its wait leave one group more in flight."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what, self.depth, self.done = what, 0, False

    def visit(self, op: O.Op) -> None:
        if isinstance(op, O.For):
            self.depth += 1
            self.emit(self.copy(op))
            self.depth -= 1
            return
        if self.depth and not self.done:
            if self.what == "barrier" and isinstance(op, O.Barrier):
                self.done = True
                return
            if self.what == "wait" and isinstance(op, O.WaitGroup):
                self.done = True
                self.emit(op.replace(pending=op.pending + 1))
                return
        self.emit(self.copy(op))


@pytest.mark.parametrize("what, message", [("barrier", "race"), ("wait", "cp.async")])
def test_a_planted_bug_in_the_pipeline_is_named_by_the_emulator(what: str, message: str) -> None:
    require_tool("ptxas")
    opts = Options("sm_80")
    prog = _ex03(3)
    sel = lower_vm(prog, opts)
    planted = _Plant(what).run(sel)
    kern = PIPELINE[-1].run(planted, opts)
    ptx = compile_kernel(kern, "sm_80").ptx
    m, n, k = 64, 64, 256
    rng = np.random.default_rng(4)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c = np.zeros((m, n), np.float32)
    args = [a, b, c, np.int32(m), np.int32(n), np.int32(k)]
    with pytest.raises(EmulatorError, match=message):
        emu.launch(ptx, kern.name, (1, 1), 128, args)
    # and the unplanted kernel runs clean
    good = compile_kernel(PIPELINE[-1].run(sel, opts), "sm_80").ptx
    emu.launch(good, kern.name, (1, 1), 128, args)
    assert np.all(np.abs(c - EX03.reference(a, b)) <= EX03.tolerance(a, b))


# ------------------------------------------------------------------------------------------------ results


def _ks(stages: int, bk: int) -> list[int]:
    return [0, 16, max(8, (stages - 1) * bk - 8), 1000]


def _run03(stages: int, m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(stages * 10_000 + k)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c_emu, c_int = np.full((m, n), np.nan, np.float32), np.full((m, n), np.nan, np.float32)
    grid = (-(-m // 32), -(-n // 32))
    EX03.matmul_f16[grid](a, b, c_emu, m, n, k, BM=32, BN=32, BK=32, num_stages=stages)
    assert EX03.matmul_f16.last_launch.program.num_stages == stages
    EX03.matmul_f16.interpret[grid](a, b, c_int, m, n, k, BM=32, BN=32, BK=32, num_stages=stages)
    bound = EX03.tolerance(a, b)
    ref = EX03.reference(a, b)
    assert np.all(np.abs(c_emu - ref) <= bound) and np.all(np.abs(c_int - ref) <= bound)
    assert np.all(np.abs(c_emu.astype(np.float64) - c_int) <= 2 * bound)


def _run04(stages: int, m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(stages * 10_000 + k + 1)
    a = rng.standard_normal((m, k)).astype(np.float16)
    if k == 0:  # nothing to quantize: empty weights, C = 0
        words, s, z = np.zeros((0, n), np.uint32), np.zeros((0, n), np.float16), np.zeros((0, n), np.uint8)
        ref, mag = np.zeros((m, n)), np.zeros((m, n))
    else:
        q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
        words = lowbit.pack(q.codes, 4, axis=0)
        s, z = np.ascontiguousarray(q.scales, np.float16), np.ascontiguousarray(q.zeros, np.uint8)
        ref, mag = EX04.reference(a, q)
    c_emu, c_int = np.full((m, n), np.nan, np.float16), np.full((m, n), np.nan, np.float16)
    grid = (-(-m // 16), -(-n // 32))
    cx = dict(BM=16, BN=32, BK=32, num_stages=stages)
    EX04.w4a16_matmul[grid](a, words, s, z, c_emu, m, n, k, **cx)
    EX04.w4a16_matmul.interpret[grid](a, words, s, z, c_int, m, n, k, **cx)
    bound = EX04.tolerance(ref, mag, k)
    assert np.all(np.abs(c_emu.astype(np.float64) - ref) <= bound)
    assert np.all(np.abs(c_int.astype(np.float64) - ref) <= bound)


@pytest.mark.parametrize("stages", [1, 3])
@pytest.mark.parametrize("which", ["03", "04"])
def test_pipelined_kernels_equal_the_interpreter(which: str, stages: int) -> None:
    require_tool("ptxas")
    for k in _ks(stages, 32):
        (_run03 if which == "03" else _run04)(stages, 37, 40, k)


@pytest.mark.full
@pytest.mark.parametrize("stages", [1, 2, 3, 4])
@pytest.mark.parametrize("which", ["03", "04"])
def test_every_depth_equals_the_interpreter(which: str, stages: int) -> None:
    for m, n in ((37, 100), (16, 64), (5, 33)):
        for k in _ks(stages, 32):
            (_run03 if which == "03" else _run04)(stages, m, n, k)
