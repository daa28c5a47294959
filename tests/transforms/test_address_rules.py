"""Address and bounds rules of the memory lowering, checked in the PTX main loop and on the emulator.

* Whole-unit bounds (:func:`lowbit.transforms._lower_memory.whole_units`): a tile dimension whose offset and
  view extent are multiples of a power of two ``D`` at least the tile's extent is tested once per tile, not
  once per distinct coordinate -- exact, since the tile is then all in bounds or all out.
* Stage pointers (:func:`lowbit.transforms._lower_shared._pointer`): the address of a swizzled stage's byte is
  a loop-invariant per-thread pointer plus the stage offset, one 64-bit add per access.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lowbit
from lowbit.compiler.cache import CompileCache
from tests.transforms.harness import both, compiled
from benchmarks.decode_report import k_steps_per_iteration
from tests.transforms.ptx_loops import main_loop


@lowbit.kernel(num_warps=4)
def next_chunks(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("uint32"), N: lowbit.int32, K: lowbit.int32,
                BN: lowbit.constexpr = 128, AHEAD: lowbit.constexpr = 128):  # fmt: skip
    """o[r, n] = sum over K steps k of w[(k + AHEAD) // 128 * 16 + r, n]: 16-row chunks of a
    ``cdiv(K, 128) * 16``-row view, read one step ahead as a pipeline prefetches (past the end in the last step)."""
    n0 = lowbit.program_id(0) * BN
    w = lowbit.global_view(w_ptr, (lowbit.cdiv(K, 128) * 16, N))
    acc = lowbit.zeros((16, BN), lowbit.uint32)
    for k in range(0, K, 128):
        acc = acc + lowbit.load(w, ((k + AHEAD) // 128 * 16, n0), (16, BN))
    lowbit.store(lowbit.global_view(o_ptr, (16, N)), acc, (0, n0))


def _next_chunks_reference(w: np.ndarray, k: int, ahead: int) -> np.ndarray:
    rows = w.shape[0]
    out = np.zeros((16, w.shape[1]), np.uint32)
    for kk in range(0, k, 128):
        r = (kk + ahead) // 128 * 16
        if r < rows:
            out += w[r:r + 16]
    return out


_REG = r"%[a-z]+\d+"


def _defs(lines: list[str]) -> set[str]:
    """Registers an instruction of ``lines`` writes (its first operand; vector loads' braces too)."""
    out: set[str] = set()
    for line in lines:
        s = re.sub(r"^@!?%\w+\s+", "", line)
        parts = s.split(None, 1)
        if len(parts) < 2 or parts[0].startswith(("st.", "cp.async", "bar", "bra", "mma", "ldmatrix")):
            if parts and parts[0].startswith("ldmatrix"):
                out.update(re.findall(_REG, parts[1].split("}")[0]))
            continue
        head = parts[1].split("}")[0] if parts[1].startswith("{") else parts[1].split(",")[0]
        out.update(re.findall(_REG, head))
    return out


def _row_tests(ptx: str) -> list[str]:
    return [x for x in main_loop(ptx) if re.match(r"setp\.(lt|ge)\.u32", x)]


@pytest.mark.parametrize(("n", "k"), [(200, 384), (128, 100), (56, 1000), (300, 128)])
@pytest.mark.parametrize("ahead", [0, 128])
def test_whole_chunk_loads_equal_numpy_on_odd_shapes(n: int, k: int, ahead: int, cache: CompileCache) -> None:
    rows = -(-k // 128) * 16
    rng = np.random.default_rng(n * 7 + k)
    w = rng.integers(0, 1 << 20, (rows, n)).astype(np.uint32)
    o = np.full((16, n), 0xDEADBEEF, np.uint32)
    grid = (-(-n // 128),)
    [(_, got)] = both(next_chunks, cache, grid, [w, o, n, k], [1], AHEAD=ahead)
    np.testing.assert_array_equal(got, _next_chunks_reference(w, k, ahead))


def test_a_tile_of_whole_chunks_is_bounds_tested_once_per_step(cache: CompileCache) -> None:
    """Each thread reads 4 rows of the 16-row chunk; the rows share one compare (it was one per row)."""
    ck = compiled(next_chunks, cache)
    assert len(_row_tests(ck.ptx)) == 1, _row_tests(ck.ptx)


def test_a_row_offset_not_proven_whole_is_still_tested_per_row(cache: CompileCache) -> None:
    """The control: offsets that are multiples of 8 only, for a 16-row tile that may then straddle the view's
    end, keep a compare per row (and equal numpy where the tile straddles)."""

    @lowbit.kernel(num_warps=4)
    def half_chunks(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("uint32"), N: lowbit.int32, K: lowbit.int32):
        w = lowbit.global_view(w_ptr, (lowbit.cdiv(K, 128) * 16, N))
        acc = lowbit.zeros((16, 128), lowbit.uint32)
        for k in range(0, K, 128):
            acc = acc + lowbit.load(w, ((k + 128) // 128 * 8, 0), (16, 128))  # multiples of 8 only: not whole
        lowbit.store(lowbit.global_view(o_ptr, (16, N)), acc, (0, 0))

    ck = compiled(half_chunks, cache)
    assert len(_row_tests(ck.ptx)) > 1
    k, n = 300, 128
    rows = -(-k // 128) * 16
    w = np.random.default_rng(3).integers(0, 1 << 20, (rows, n)).astype(np.uint32)
    o = np.zeros((16, n), np.uint32)
    [(_, got)] = both(half_chunks, cache, (1,), [w, o, n, k], [1])
    want = np.zeros((16, n), np.uint32)
    for kk in range(0, k, 128):
        r = (kk + 128) // 128 * 8
        part = np.zeros((16, n), np.uint32)
        part[:max(0, min(16, rows - r))] = w[r:r + 16]
        want += part
    np.testing.assert_array_equal(got, want)


def test_the_uint4_kernel_addresses_each_ldmatrix_with_one_add_of_the_stage_offset() -> None:
    """wx_matmul's swizzled A stages (uint4, layout 3, as lowbit.ops launches it): each of the 8 ldmatrix
    addresses is a per-thread pointer made before the loop plus the one stage offset of the step (it was an
    i32 add, a widening and a 64-bit add each)."""
    from benchmarks import bench_formats as bf

    qw = bf.quantize("uint4", 1024, 256, 0, 3)
    ptx = bf.build(qw, 16, "f16", (16, 128, 128)).compiled.ptx
    loop, steps = main_loop(ptx), k_steps_per_iteration(ptx)  # the pipelined loop runs K steps in pairs
    inside = _defs(loop)
    defs = {}
    for line in loop:
        m = re.match(rf"(\w[\w.]*)\s+({_REG}),\s*({_REG}),\s*({_REG});", line)
        if m:
            defs[m.group(2)] = (m.group(1), m.group(3), m.group(4))
    in_loop_parts = set()
    addrs = [re.search(rf"\[({_REG})\]", x).group(1) for x in loop if x.startswith("ldmatrix")]
    assert len(addrs) == 8 * steps
    for a in addrs:
        opc, x, y = defs[a]
        assert opc == "add.s64", (a, defs[a])
        parts = {r for r in (x, y) if r in inside}
        assert len(parts) <= 1, (a, defs[a])
        in_loop_parts |= parts
    assert len(in_loop_parts) == steps, in_loop_parts  # one stage offset a K step


def test_lop3_constants_are_immediates_not_movs_in_the_loop() -> None:
    """uint4's dequantisation lop3s take their masks and magic numbers as immediates: as "r" operands each was
    a mov.b32 that LLVM rematerialised inside the loop."""
    from benchmarks import bench_formats as bf

    qw = bf.quantize("uint4", 1024, 256, 0, 3)
    ptx = bf.build(qw, 16, "f16", (16, 128, 128)).compiled.ptx
    loop, steps = main_loop(ptx), k_steps_per_iteration(ptx)  # the pipelined loop runs K steps in pairs
    lops = [x for x in loop if x.startswith("lop3")]
    assert len(lops) == 64 * steps
    for x in lops:
        assert re.fullmatch(r"lop3\.b32 %r\d+, %r\d+, 0x[0-9a-f]{8}, 0x[0-9a-f]{8}, 0x[0-9a-f]{2};", x), x


def test_scale_splats_take_one_unpack_per_word_and_one_move_per_splat() -> None:
    """uint4's f16 scales arrive two to a 32-bit word; each weight pair multiplies by one scale in both lanes.
    Each word is unpacked once and each splat is one move: 3 moves a word, 6 for the thread's two words (the
    scalar lshr/trunc/insert chain took 6 a word)."""
    from benchmarks import bench_formats as bf

    qw = bf.quantize("uint4", 1024, 256, 0, 3)
    ptx = bf.build(qw, 16, "f16", (16, 128, 128)).compiled.ptx
    loop, steps = main_loop(ptx), k_steps_per_iteration(ptx)  # the pipelined loop runs K steps in pairs
    moves = [x for x in loop if x.startswith("mov.b32") and "{" in x]
    assert len(moves) == 6 * steps, moves


def test_each_global_access_is_one_add_of_the_steps_term_to_a_hoisted_pointer() -> None:
    """uint4 layout 3: the 4 word loads, 2 cp.async (A) and the scale load each add one in-loop term -- the
    same for every access to one tensor -- to a pointer made before the loop (the words' third and fourth
    loads added the thread's column block in the loop, A's row term joined k's in the loop)."""
    from benchmarks import bench_formats as bf

    qw = bf.quantize("uint4", 1024, 256, 0, 3)
    ptx = bf.build(qw, 16, "f16", (16, 128, 128)).compiled.ptx
    loop, steps = main_loop(ptx), k_steps_per_iteration(ptx)  # the pipelined loop runs K steps in pairs
    inside = _defs(loop)
    defs = {}
    for line in loop:
        m = re.match(rf"(\w[\w.]*)\s+({_REG}),\s*({_REG}),\s*({_REG});", line)
        if m:
            defs[m.group(2)] = (m.group(1), m.group(3), m.group(4))

    def in_loop_terms(lines: list[str], pattern: str) -> set[str]:
        terms: set[str] = set()
        for x in lines:
            if not re.match(pattern, re.sub(r"^@!?%\w+\s+", "", x)):
                continue
            addr = re.findall(rf"\[({_REG})\]", x)[-1]
            opc, a, b = defs[addr]
            assert opc == "add.s64", (x, defs[addr])
            parts = {r for r in (a, b) if r in inside}
            assert len(parts) == 1, (x, defs[addr])
            terms |= parts
        return terms

    assert len(in_loop_terms(loop, r"ld\.global\.v4\.b32")) == steps  # one term a K step
    assert len(in_loop_terms(loop, r"cp\.async\.cg")) == steps
    for term in in_loop_terms(loop, r"cp\.async\.cg"):  # k * 2 bytes: one instruction from the step's counter
        [made] = [x for x in loop if re.match(rf"\S+\s+{re.escape(term)},", x)]
        assert made.startswith(("mul.wide.s32", "shl.b64")), made


@lowbit.kernel(num_warps=1)
def packed_rows(z_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("int32"), G: lowbit.int32, N: lowbit.int32,
                BN: lowbit.constexpr = 64, W: lowbit.constexpr = lowbit.uint4):  # fmt: skip
    """o[0, n] = sum over rows g of the W code z[g, n] (a dense LSB-first stream of G x N codes)."""
    n0 = lowbit.program_id(0) * BN
    zv = lowbit.global_view(z_ptr, (G, N), dtype=W)
    acc = lowbit.zeros((1, BN), lowbit.int32)
    for g in range(G):
        acc = acc + lowbit.cast(lowbit.load(zv, (g, n0), (1, BN)), lowbit.int32)
    lowbit.store(lowbit.global_view(o_ptr, (1, N)), acc, (0, n0))


@pytest.mark.parametrize("bits", [4, 3, 2])
@pytest.mark.parametrize(("g", "n"), [(7, 80), (1, 208), (13, 64), (5, 16)])
def test_packed_rows_in_whole_bytes_equal_numpy(g: int, n: int, bits: int, cache: CompileCache) -> None:
    """With N a multiple of 16 (the launch's fact) each row of 4-, 3- or 2-bit codes is whole bytes
    (N * bits / 8, made as (N >> 3) * 3 or N >> 2...): the row's byte is a multiple of the row index, no
    bit-offset shift in the loop; N not a multiple of the 64-code tile leaves a masked tail."""
    from lowbit.compiler import compile_program, run_on_emulator  # noqa: PLC0415

    w = {4: lowbit.uint4, 3: lowbit.uint3, 2: lowbit.uint2}[bits]
    bn = 128 if bits == 2 else 64  # 2-bit: 4 codes a thread, one byte
    prog = packed_rows.specialize(W=w, BN=bn).with_facts({"z_ptr": 16, "o_ptr": 16, "N": 16})
    ck = compile_program(prog, "sm_80", cache)
    loop = main_loop(ck.ptx)
    if bits != 3:  # (3-bit codes load one by one: the per-element path, no whole-byte rule)
        assert not [x for x in loop if x.startswith(("shr.s64", "shr.u64"))], loop
    rng = np.random.default_rng(g * 31 + n + bits)
    codes = rng.integers(0, 1 << bits, (g, n)).astype(np.uint32)
    flat = codes.reshape(-1)
    words = np.zeros(-(-flat.size * bits // 32) + 1, np.uint32)
    for i, v in enumerate(flat):
        bit = i * bits
        words[bit // 32] |= np.uint32((int(v) << (bit % 32)) & 0xFFFFFFFF)
        if bit % 32 + bits > 32:
            words[bit // 32 + 1] |= np.uint32(int(v) >> (32 - bit % 32))
    o = np.full((1, n), -1, np.int32)
    run_on_emulator(ck, (-(-n // bn),), [words, o, g, n])
    np.testing.assert_array_equal(o[0], codes.sum(axis=0).astype(np.int32))
