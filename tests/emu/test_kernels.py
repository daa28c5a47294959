"""End to end: PTX written by others (Triton 3.9, LLVM via llvmlite) runs and matches numpy.

The committed fixtures (``tests/emu/fixtures``, P's corpus) run with every
check on; the Triton kernels are also recompiled from source here so that
what runs is today's Triton output, not only the committed text.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit.emu as emu
from lowbit.errors import EmulatorError
from tests.conftest import require_tool
from tests.emu.fixtures import recipes


@pytest.mark.parametrize("name", recipes.names())
def test_fixture_matches_numpy(name):
    case = recipes.load(name)
    args = case.make_args()
    st = emu.launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes)
    case.check(args)
    assert st.thread_instructions > 0
    if "matmul" in name:
        assert st.mma > 0 and st.by_opcode["cp"] > 0 and st.by_opcode["ldmatrix"] > 0


def test_matmul_fixture_also_runs_without_checks():
    case = recipes.load("triton_matmul_f16")
    args = case.make_args()
    emu.launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes, checks=False)
    case.check(args)


def test_triton_vector_add_with_n_beyond_the_buffers_is_caught():
    case = recipes.load("triton_vector_add")
    args = case.make_args()
    n_index = next(i for i, a in enumerate(args) if isinstance(a, np.int32))
    args[n_index] = np.int32(int(args[n_index]) + 5)
    with pytest.raises(EmulatorError, match="memcheck: out-of-bounds global load"):
        emu.launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes)


def test_triton_matmul_with_too_little_shared_memory_is_caught():
    case = recipes.load("triton_matmul_f16")
    args = case.make_args()
    with pytest.raises(EmulatorError, match="out-of-bounds shared"):
        emu.launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes // 2)


@pytest.mark.parametrize("name", ["triton_vector_add", "triton_row_softmax", "triton_matmul_f16",
                                  "triton_matmul_fp8"])
def test_fresh_triton_compile_runs_and_matches(name, tmp_path):
    require_tool("triton")
    from tests.emu import gen_fixtures

    gen_fixtures.write_case(name, tmp_path)
    case = recipes.load(name, tmp_path)
    if "matmul" in name:
        assert "cp.async" in case.ptx
    args = case.make_args()
    emu.launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes)
    case.check(args)
