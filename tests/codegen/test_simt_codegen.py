"""SIMT -> LLVM -> PTX: hand-built kernels compile for every target, assemble without spills and
run on the emulator against numpy; golden PTX; byte-identical output from fresh workers.

Regenerate the golden PTX after a reviewed codegen change with
``LOWBIT_REGEN_GOLDEN=1 pytest tests/codegen/test_simt_codegen.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from lowbit.codegen import intrinsics
from lowbit.codegen.emit import compile_kernel, to_llvm
from lowbit.codegen.llvm import LLVMWorker
from lowbit.codegen.llvm_types import DATA_LAYOUT
from lowbit.codegen.ptxas import assemble
from lowbit.emu import launch
from lowbit.errors import CodegenError
from lowbit.ir.simt import parse_kernel
from tests.codegen.simt_kernels import CASES, UNPACK_U4, VADD, Case
from tests.conftest import require_tool

ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90")
GOLDEN = Path(__file__).with_name("golden")


@pytest.fixture(scope="module")
def worker():
    w = LLVMWorker()
    yield w
    w.close()


def _check(case: Case, args: list, out_index: int) -> None:
    got, want = args[out_index], case.reference(args)
    if case.exact:
        assert got.dtype == want.dtype or np.can_cast(want.dtype, got.dtype)
        np.testing.assert_array_equal(got, want.astype(got.dtype))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(args[0].shape[-1]))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kernel_compiles_assembles_and_runs(case: Case, arch: str, worker: LLVMWorker) -> None:
    kernel = parse_kernel(case.text)
    compiled = compile_kernel(kernel, arch, worker=worker)
    assert f".target {arch}" in compiled.ptx and f".reqntid {case.block}" in compiled.ptx
    require_tool("ptxas")
    res = assemble(compiled.ptx, arch).resources[case.name]
    assert res.spill_stores == 0 and res.spill_loads == 0 and res.stack_frame == 0, str(res)
    rng = np.random.default_rng(sum(map(ord, case.name + arch)))
    for n in (1, 37 + 64 * ARCHS.index(arch), 301):  # odd sizes: tails in the last block
        args, grid, out_index = case.make(rng, n)
        launch(compiled.ptx, case.name, grid, case.block, args)
        _check(case, args, out_index)


def test_instruction_selection_reaches_the_ptx(worker: LLVMWorker) -> None:
    """What the SIMT program chose is what the PTX does (codegen only translates)."""
    by_name = {c.name: compile_kernel(parse_kernel(c.text), "sm_80", worker=worker).ptx for c in CASES}
    unpack = by_name["unpack_u4"]
    assert unpack.count("lop3.b32") == 4 and unpack.count("prmt.b32") == 4
    assert unpack.count(".rn.f16x2") == 4  # one packed subtraction per pair (LLVM writes it as add of -1024)
    assert "st.global.v4.b32" in unpack
    assert "cp.async.cg.shared.global" in by_name["async_swap"] and "cp.async.wait_group" in by_name["async_swap"]
    assert "ld.shared.v4.b32" in by_name["async_swap"] and "st.global.v4.b32" in by_name["async_swap"]
    ignore = by_name["async_ignore"]  # the predicate operand, which needs PTX ISA 7.5
    assert re.search(r"cp\.async\.cg\.shared\.global \[%rd\d+\], \[%rd\d+\], 16, %p\d+;", ignore)
    assert ".version 7.5" in ignore and ".version 7.0" in by_name["async_swap"]
    assert "shfl.sync.bfly.b32" in by_name["block_sum"] and "shfl.sync.down.b32" in by_name["block_sum"]
    assert "bar.sync" in by_name["block_reverse"]
    assert "fma.rn.f32" in by_name["rowdot"] and "mul.lo.s64" in by_name["rowdot"]  # the i64 row offset


@pytest.mark.parametrize(("name", "text"), [("vadd", VADD), ("unpack_u4", UNPACK_U4)])
def test_golden_ptx(name: str, text: str, worker: LLVMWorker) -> None:
    ptx = compile_kernel(parse_kernel(text), "sm_80", worker=worker).ptx
    path = GOLDEN / f"{name}.sm_80.ptx"
    if os.environ.get("LOWBIT_REGEN_GOLDEN"):
        path.write_text(ptx)
    assert path.exists(), f"no golden file {path}; run with LOWBIT_REGEN_GOLDEN=1"
    assert ptx == path.read_text(), f"PTX for {name} changed; review the diff and regenerate with LOWBIT_REGEN_GOLDEN=1"


def test_identical_input_gives_identical_ptx_from_fresh_workers() -> None:
    texts = [c.text for c in CASES]
    runs = []
    for _ in range(2):
        w = LLVMWorker()
        try:
            runs.append([compile_kernel(parse_kernel(t), "sm_89", worker=w).ptx for t in texts])
        finally:
            w.close()
    assert runs[0] == runs[1]
    assert to_llvm(parse_kernel(VADD)) == to_llvm(parse_kernel(VADD))


def test_data_layout_matches_llvm() -> None:
    import llvmlite.binding as llvm

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    tm = llvm.Target.from_triple("nvptx64-nvidia-cuda").create_target_machine(cpu="sm_80", features="+ptx70")
    assert str(tm.target_data) == DATA_LAYOUT


FP8 = """\
kernel @fp8(%x: ptr.global[f32], %out: ptr.global[int16]) threads 32 {
  %tid: i32 = sreg tid.x
  %p: ptr.global = gep f32x2 %x, %tid
  %v: f32x2 = load %p align 8
  %lo: f32 = extract %v, 0
  %hi: f32 = extract %v, 1
  %q: i16 = cvt_pack.e4m3x2.rn %lo, %hi
  %po: ptr.global = gep i16 %out, %tid
  store %po, %q align 2
}
"""


def test_target_gated_ops_are_refused_by_name(worker: LLVMWorker) -> None:
    kernel = parse_kernel(FP8)
    with pytest.raises(CodegenError, match=r"llvm\.nvvm\.ff\.to\.e4m3x2\.rn \(cvt\.e4m3x2\) is not available on sm_80"):
        compile_kernel(kernel, "sm_80", worker=worker)
    ptx = compile_kernel(kernel, "sm_89", ptx_version=(8, 1), worker=worker).ptx
    assert "cvt.rn.satfinite.e4m3x2.f32" in ptx
    # llvmlite quotes names (@"llvm.nvvm.prmt"); the table check must still see them
    with pytest.raises(CodegenError, match="not in lowbit's table"):
        intrinsics.check_module('declare i32 @"llvm.nvvm.prmt.typo"(i32)', __import__("lowbit.arch").arch.target("sm_80"), (7, 0))


def test_fp8_pack_order_on_the_emulator(worker: LLVMWorker) -> None:
    """cvt_pack puts ``lo`` in the low byte (the intrinsic's operands are (hi, lo))."""
    ptx = compile_kernel(parse_kernel(FP8), "sm_89", ptx_version=(8, 1), worker=worker).ptx
    x = np.array([1.0, -2.0] * 32, np.float32)
    out = np.zeros(32, np.int16)
    launch(ptx, "fp8", 1, 32, [x, out])
    # e4m3: 1.0 = 0x38, -2.0 = 0xC0
    assert np.all(out.view(np.uint16) == 0xC038)


def test_unknown_intrinsic_call_is_a_codegen_error(worker: LLVMWorker) -> None:
    text = "kernel @k(%n: i32) threads 32 {\n  %r: i32 = call @llvm.nvvm.made.up(%n)\n}\n"
    with pytest.raises(CodegenError, match=r"llvm\.nvvm\.made\.up is not in lowbit's table"):
        compile_kernel(parse_kernel(text), "sm_80", worker=worker)
