"""Stats on hand-written PTX: issue slots, traffic per buffer, shared wavefronts per access kind.

Every expected number is computed here from the kernel's text and launch
geometry (which warps reach which instruction, how many bytes each lane
moves) or from :mod:`lowbit.arch.banks` on the same addresses -- never read
back from the emulator.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.arch import banks
from lowbit.emu.stats import Stats, shared_access_key
from tests.emu.ptxkit import kernel, run

ADD_PARAMS = ".param .u64 x, .param .u64 y, .param .u64 out, .param .u32 n"
ADD_PROLOGUE = """
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [y];
    ld.param.u64 %rd3, [out];
    ld.param.u32 %r1, [n];
    mov.u32 %r2, %tid.x;
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mad.lo.s32 %r5, %r3, %r4, %r2;
"""
ADDRESSES = """
    mul.wide.u32 %rd4, %r5, 4;
    add.s64 %rd5, %rd1, %rd4;
    add.s64 %rd6, %rd2, %rd4;
    add.s64 %rd7, %rd3, %rd4;
"""
# a 48-thread block is one full warp and one warp of 16 lanes: both issue whole-warp slots
GRID, BLOCK = 5, 48


def _geometry(n: int) -> tuple[int, int, int]:
    """(threads, warps, warps holding at least one index < n) of the GRID x BLOCK launch."""
    gid = np.arange(GRID)[:, None] * BLOCK + np.arange(BLOCK)[None, :]
    warp = (np.arange(BLOCK) // 32)[None, :].repeat(GRID, 0) + 2 * np.arange(GRID)[:, None]
    return GRID * BLOCK, GRID * 2, len(np.unique(warp[gid < n]))


def _add_args(n: int, size: int):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(size).astype(np.float32)
    y = rng.standard_normal(size).astype(np.float32)
    return x, y, np.zeros(size, np.float32)


@pytest.mark.parametrize("n", [100, 1, 240, 97])
def test_predicated_vector_add_counts_issue_slots_and_traffic(n: int) -> None:
    body = ADD_PROLOGUE + "    setp.lt.u32 %p1, %r5, %r1;\n" + ADDRESSES + """
    @%p1 ld.global.f32 %f1, [%rd5];
    @%p1 ld.global.f32 %f2, [%rd6];
    @%p1 add.f32 %f3, %f1, %f2;
    @%p1 st.global.f32 [%rd7], %f3;
    ret;
"""
    plain, guarded = 14, 4  # 8 prologue + setp + 4 address + ret; the four @%p1 instructions
    x, y, out = _add_args(n, n)
    st = run(kernel(body, ADD_PARAMS), GRID, BLOCK, [x, y, out, np.uint32(n)])
    np.testing.assert_array_equal(out, x + y)
    threads, warps, busy = _geometry(n)
    assert st.thread_instructions == threads * plain + n * guarded
    assert st.warp_instructions == warps * plain + busy * guarded
    # every warp issues every instruction: a guard that is false for all its lanes does not skip the slot
    assert st.issue_slots == 32 * warps * (plain + guarded)
    assert st.issue_by_class["memory"] == 32 * warps * 7  # four ld.param, two ld.global, one st.global
    assert sum(st.issue_by_class.values()) == st.issue_slots
    assert sum(st.issue_by_opcode.values()) == st.issue_slots
    assert st.issue_by_opcode["ld"] == 32 * warps * 6
    assert sum(st.by_class.values()) == st.thread_instructions
    assert st.argument_traffic() == {"x": (4 * n, 0), "y": (4 * n, 0), "out": (0, 4 * n)}
    assert (st.global_bytes_read, st.global_bytes_written) == (8 * n, 4 * n)


@pytest.mark.parametrize("n", [100, 33, 0])
def test_branching_vector_add_issues_the_body_only_in_warps_that_take_it(n: int) -> None:
    body = ADD_PROLOGUE + "    setp.ge.u32 %p1, %r5, %r1;\n    @%p1 bra DONE;\n" + ADDRESSES + """
    ld.global.f32 %f1, [%rd5];
    ld.global.f32 %f2, [%rd6];
    add.f32 %f3, %f1, %f2;
    st.global.f32 [%rd7], %f3;
DONE:
    ret;
"""
    x, y, out = _add_args(n, max(n, 1))
    st = run(kernel(body, ADD_PARAMS), GRID, BLOCK, [x, y, out, np.uint32(n)])
    np.testing.assert_array_equal(out[:n], (x + y)[:n])
    threads, warps, busy = _geometry(n)
    head, tail = 10, 8  # prologue + setp + bra; addresses + loads + add + store
    # the partial warp at the boundary issues the body once for all its lanes; every warp issues ret once
    assert st.issue_slots == 32 * (warps * head + busy * tail + warps)
    assert st.thread_instructions == threads * 9 + (threads - n) + n * tail + threads
    assert st.argument_traffic() == {"x": (4 * n, 0), "y": (4 * n, 0), "out": (0, 4 * n)}


def test_one_array_passed_twice_is_one_buffer_named_by_both_parameters() -> None:
    body = ADD_PROLOGUE + ADDRESSES + """
    ld.global.f32 %f1, [%rd5];
    ld.global.f32 %f2, [%rd6];
    add.f32 %f3, %f1, %f2;
    st.global.f32 [%rd7], %f3;
    ret;
"""
    n = 64
    x = np.arange(n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    st = run(kernel(body, ADD_PARAMS), 2, 32, [x, x, out, np.uint32(n)])
    np.testing.assert_array_equal(out, 2 * x)
    assert st.argument_traffic() == {"x=y": (8 * n, 0), "out": (0, 4 * n)}
    assert st.argument_traffic(["a", "b", "c", "n"]) == {"a=b": (8 * n, 0), "c": (0, 4 * n)}
    assert st.params == ("x", "y", "out", "n")
    with pytest.raises(ValueError, match="3 names for 4 parameters"):
        st.argument_traffic(["a", "b", "c"])


def test_module_variables_and_atomics_are_counted_per_buffer() -> None:
    ptx = """.version 8.0
.target sm_80
.address_size 64
.global .align 4 .u32 table[4] = {5, 6, 7, 8};
.visible .entry k(.param .u64 counter)
{
    .reg .b32 %r<8>;
    .reg .b64 %rd<8>;
    ld.param.u64 %rd1, [counter];
    mov.u32 %r1, %tid.x;
    and.b32 %r2, %r1, 3;
    mul.wide.u32 %rd2, %r2, 4;
    mov.u64 %rd3, table;
    add.s64 %rd4, %rd3, %rd2;
    ld.global.u32 %r3, [%rd4];
    atom.global.add.u32 %r4, [%rd1], %r3;
    ret;
}
"""
    counter = np.zeros(1, np.uint32)
    st = run(ptx, 1, 64, [counter])
    assert int(counter[0]) == 16 * (5 + 6 + 7 + 8)
    # 64 table reads of 4 bytes; each atomic reads and writes its 4 bytes
    assert st.argument_traffic() == {"table": (256, 0), "counter": (256, 256)}


# --------------------------------------------------------------------------- shared memory

LDMATRIX = """
    mov.u32 %r1, %tid.x;
    mov.u32 %r3, smem;
    mul.lo.s32 %r4, %r1, {stride};
    add.s32 %r5, %r3, %r4;
    mov.b32 %r6, 1;
    st.shared.v4.u32 [%r5], {{%r6, %r6, %r6, %r6}};
    bar.sync 0;
    ldmatrix.sync.aligned.m8n8.x{num}{trans}.shared.b16 {{{dsts}}}, [%r5];
    ret;
"""


@pytest.mark.parametrize("num", [1, 2, 4])
@pytest.mark.parametrize("stride", [16, 128, 48])
@pytest.mark.parametrize("trans", ["", ".trans"])
def test_ldmatrix_wavefronts_per_request_follow_the_bank_model(num: int, stride: int, trans: str) -> None:
    dsts = ", ".join(f"%r{10 + i}" for i in range(num))
    body = LDMATRIX.format(stride=stride, num=num, trans=trans, dsts=dsts)
    st = run(kernel(body, shared=".shared .align 16 .b8 smem[8192];"), 2, 64, [])
    # each lane of the block gives its own row (thread t: t * stride); warp 1's rows are warp 0's shifted
    rows = [[(32 * w + lane) * stride for lane in range(8 * num)] for w in range(2)]
    per_warp = [banks.ldmatrix_wavefronts(r, num) for r in rows]
    if stride == 16:  # consecutive 16-byte rows: each 8x8 matrix is one conflict-free wavefront
        assert per_warp == [num, num]
    if stride == 128:  # every row of a matrix in banks 0-3: 8 wavefronts a matrix
        assert per_warp == [8 * num, 8 * num]
    key = f"ldmatrix.x{num}{trans}"
    assert st.shared_requests_by_opcode[key] == 4  # 2 blocks x 2 warps
    assert st.shared_wavefronts_by_opcode[key] == 2 * sum(per_warp)
    # the stores are their own access kind, priced by the same model
    stores = sum(banks.wavefronts([(32 * w + lane) * stride for lane in range(32)], 16) for w in range(2))
    assert st.shared_requests_by_opcode["st.shared.v4.u32"] == 4
    assert st.shared_wavefronts_by_opcode["st.shared.v4.u32"] == 2 * stores
    assert st.shared_wavefronts == 2 * (sum(per_warp) + stores) and st.shared_requests == 8


CP_ASYNC = """
    ld.param.u64 %rd1, [src];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd2, %r1, {size};
    add.s64 %rd3, %rd1, %rd2;
    mov.u32 %r3, smem;
    mul.lo.s32 %r4, %r1, {stride};
    add.s32 %r5, %r3, %r4;
    cp.async.{cache}.shared.global [%r5], [%rd3], {size};
    cp.async.commit_group;
    cp.async.wait_group 0;
    bar.sync 0;
    ld.shared.u32 %r6, [%r5];
    ret;
"""


@pytest.mark.parametrize("size, stride, cache", [(16, 16, "cg"), (16, 32, "cg"), (16, 128, "cg"), (4, 4, "ca"),
                                                 (8, 8, "ca"), (4, 128, "ca")])
def test_cp_async_writes_cost_their_wavefronts_per_request(size: int, stride: int, cache: str) -> None:
    nthreads = 96  # three warps
    body = CP_ASYNC.format(size=size, stride=stride, cache=cache)
    src = np.arange(nthreads * size, dtype=np.uint8)
    st = run(kernel(body, ".param .u64 src", shared=".shared .align 16 .b8 smem[12288];"), 1, nthreads, [src])
    per_warp = [banks.wavefronts([(32 * w + lane) * stride for lane in range(32)], size) for w in range(3)]
    if (size, stride) == (16, 16):  # 16-byte copies of consecutive rows: four quarter-warp wavefronts
        assert per_warp == [4, 4, 4]
    key = f"cp.async.{cache}.{size}"
    assert key == shared_access_key("cp", ("async", cache, "shared", "global"), size)
    assert st.shared_requests_by_opcode[key] == 3
    assert st.shared_wavefronts_by_opcode[key] == sum(per_warp)
    assert st.argument_traffic() == {"src": (nthreads * size, 0)}
    assert st.shared_bytes_written == nthreads * size


@pytest.mark.parametrize("stride, expected", [(4, 1), (8, 2), (12, 1), (128, 32), (256, 32), (16, 4)])
def test_deliberately_conflicting_shared_stores(stride: int, expected: int) -> None:
    body = f"""
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, smem;
    mul.lo.s32 %r3, %r1, {stride};
    add.s32 %r4, %r2, %r3;
    st.shared.u32 [%r4], %r1;
    ret;
"""
    st = run(kernel(body, shared=".shared .align 4 .b8 smem[16384];"), 3, 64, [])
    assert banks.wavefronts([lane * stride for lane in range(32)], 4) == expected
    assert st.shared_requests_by_opcode == {"st.shared.u32": 6}
    assert st.shared_wavefronts_by_opcode == {"st.shared.u32": 6 * expected}


def test_a_shared_atomic_is_one_request() -> None:
    body = """
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, smem;
    shl.b32 %r3, %r1, 2;
    add.s32 %r4, %r2, %r3;
    st.shared.u32 [%r4], %r1;
    bar.sync 0;
    atom.shared.add.u32 %r5, [%r4], 1;
    ret;
"""
    st = run(kernel(body, shared=".shared .align 4 .b8 smem[256];"), 1, 64, [])
    assert st.shared_requests_by_opcode["atom.shared.add.u32"] == 2
    assert st.shared_wavefronts_by_opcode["atom.shared.add.u32"] == 2


def test_stats_record_whether_checks_were_on() -> None:
    body = "    mov.u32 %r1, %tid.x;\n    ret;\n"
    assert run(kernel(body), 1, 32, []).checks is True
    assert run(kernel(body), 1, 32, [], checks=False).checks is False
    assert Stats().checks is True
    assert "checks off" in run(kernel(body), 1, 32, [], checks=False).summary()


def test_access_keys() -> None:
    assert shared_access_key("ldmatrix", ("sync", "aligned", "m8n8", "x2", "trans", "shared", "b16")) == "ldmatrix.x2.trans"
    assert shared_access_key("ld", ("shared", "v4", "u32")) == "ld.shared.v4.u32"
    assert shared_access_key("cp", ("async", "commit_group")) == "cp.async.commit_group"
