"""Stats on compilers' kernels: traffic per argument, issue slots, shared wavefronts of real PTX.

The expected traffic is what the kernel must move, computed from the shapes
and the block grid (each block reads its rows of A once per K step, masked
tails read nothing); the expected issue slots of branch-free PTX are its
instruction count times the warps.  Triton's matmul stages operands with
16-byte ``cp.async`` and reads them with ``ldmatrix.x4`` from a swizzled
buffer, so both cost exactly the PTX ISA minimum: 4 wavefronts a request.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import lowbit
import lowbit.emu as emu
from lowbit.compiler import compile_program, run_on_emulator
from lowbit.launch import specialization_facts
from lowbit.emu.parser import parse
from lowbit.runtime.check import aligned_copy
from tests.emu.fixtures import recipes

ROOT = Path(__file__).resolve().parents[2]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _launch_fixture(name: str):
    case = recipes.load(name)
    args = case.make_args()
    st = emu.launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes)
    case.check(args)
    named = {a["name"]: (a, v) for a, v in zip(case.meta["args"], args)}
    return case, st, st.argument_traffic([a["name"] for a in case.meta["args"]]), named


def test_triton_vector_add_traffic_excludes_the_masked_tail_and_every_warp_issues_every_instruction() -> None:
    case, st, traffic, named = _launch_fixture("triton_vector_add")
    n = int(named["n"][1])
    assert n % (case.block[0] * 2) != 0  # the fixture has a masked tail
    assert traffic == {"x": (4 * n, 0), "y": (4 * n, 0), "out": (0, 4 * n), "global_scratch": (0, 0),
                       "profile_scratch": (0, 0)}
    body = parse(case.ptx).entry(case.kernel).body
    assert not any(ins.opcode == "bra" for ins in body)  # straight-line: every warp runs every instruction
    warps = case.grid[0] * case.block[0] // 32
    assert st.issue_slots == 32 * warps * len(body)
    assert st.thread_instructions < st.issue_slots  # the tail's predicated-off lanes are not active


def test_triton_matmul_traffic_and_wavefronts() -> None:
    case, st, traffic, named = _launch_fixture("triton_matmul_f16")
    m, n, k = (int(named[x][1]) for x in ("M", "N", "K"))
    grid_m, grid_n = case.grid[0], case.grid[1]
    assert traffic["a"] == (grid_n * m * k * 2, 0)  # each column of blocks reads all of A once; tails masked
    assert traffic["b"] == (grid_m * k * n * 2, 0)
    assert traffic["c"] == (0, m * n * 4)
    for key in ("cp.async.cg.16", "ldmatrix.x4", "ldmatrix.x4.trans"):
        assert st.shared_requests_by_opcode[key] > 0
        assert st.wavefronts_per_request(key) == 4.0, key
    assert st.shared_bytes_written >= 16 * st.shared_requests_by_opcode["cp.async.cg.16"]
    assert st.issue_slots >= 32 * st.warp_instructions >= st.thread_instructions


def test_lowbit_vector_add_traffic_by_user_argument_names() -> None:
    ex01 = _example("01_vector_add")
    n, block = 1000, 128
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.zeros(n, np.float32)
    compiled = lowbit.compile(ex01.vector_add, BLOCK=block)
    st = run_on_emulator(compiled, (-(-n // block),), [x, y, out, n])
    np.testing.assert_array_equal(out, x + y)
    assert st.argument_traffic([p.name for p in compiled.params]) == {
        "x_ptr": (4 * n, 0), "y_ptr": (4 * n, 0), "out_ptr": (0, 4 * n)}
    assert st.issue_slots >= 32 * st.warp_instructions >= st.thread_instructions


def _footprint_sectors(words: np.ndarray, grid: tuple[int, int], bn: int) -> int:
    """32-byte sectors of ``words`` each block must read at least once, summed over the blocks."""
    rows, n = words.shape
    per_column = []
    for bj in range(grid[1]):
        lo, hi = bj * bn, min(n, (bj + 1) * bn)
        r = np.arange(rows)[:, None] * n
        per_column.append(np.unique(((r + np.arange(lo, hi)[None, :]) * 4) // 32).size)
    return grid[0] * sum(per_column)


@pytest.mark.parametrize("tensor_cores", [False, True])
@pytest.mark.parametrize("m, n, k, bm, bn, bk", [(37, 100, 136, 16, 32, 32), (16, 128, 256, 16, 64, 64)])
def test_lowbit_w4a16_reads_each_weight_word_once_per_row_of_blocks(m, n, k, bm, bn, bk, tensor_cores) -> None:
    ex04 = _example("04_w4a16_matmul")
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    s, z = np.ascontiguousarray(q.scales, np.float16), np.ascontiguousarray(q.zeros, np.uint8)
    c = np.zeros((m, n), np.float16)
    a, words, s, z, c = (aligned_copy(x) for x in (a, words, s, z, c))  # as device allocations: sectors depend on it
    args = dict(a_ptr=a, w_ptr=words, s_ptr=s, z_ptr=z, c_ptr=c, M=m, N=n, K=k)
    prog = ex04.w4a16_matmul.specialize(BM=bm, BN=bn, BK=bk)
    prog = prog.with_facts(specialization_facts(prog, args))  # what a launch on these arrays compiles
    compiled = compile_program(prog, tensor_cores=tensor_cores)
    grid = (-(-m // bm), -(-n // bn))
    st = run_on_emulator(compiled, grid, args)
    ref, mag = ex04.reference(a, q)
    assert np.all(np.abs(c.astype(np.float64) - ref) <= ex04.tolerance(ref, mag, k))
    names = [p.name for p in compiled.params]
    traffic, sectors = st.argument_traffic(names), st.argument_sectors(names)
    footprint = _footprint_sectors(words, grid, bn)
    if tensor_cores:
        # mma fragments give the same word to the 4 lanes of a quad (a gathered view): lanes repeat bytes,
        # the memory system does not -- aligned rows cost exactly the footprint; rows of 400 bytes (N = 100:
        # no 16-byte fact, scalar loads) let one warp read a sector in two instructions
        assert traffic["w_ptr"][0] >= grid[0] * words.nbytes
        assert footprint <= sectors["w_ptr"][0] <= (footprint if n % 64 == 0 else 1.5 * footprint)
    else:
        assert traffic["w_ptr"] == (grid[0] * words.nbytes, 0)  # K tail and N tail masked: no byte twice
    assert traffic["a_ptr"] == (grid[1] * a.nbytes, 0)
    assert traffic["c_ptr"] == (0, c.nbytes)
    steps = -(-k // bk)
    # a group's scales/zeros row is needed once per K step by each block (at least)
    assert traffic["s_ptr"][0] >= grid[0] * steps * n * 2 and traffic["s_ptr"][1] == 0
    assert traffic["z_ptr"][0] >= grid[0] * steps * n and traffic["z_ptr"][1] == 0
