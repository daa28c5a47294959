"""The guarded LLVM driver: hazards become CodegenError, the worker survives, output is deterministic."""

from __future__ import annotations

import pytest

from lowbit.arch import TARGETS, target
from lowbit.codegen import intrinsics
from lowbit.codegen.llvm import LLVMWorker, emit_ptx
from lowbit.codegen.ptxas import assemble
from lowbit.errors import CodegenError

STORE_TID = r"""
target triple = "nvptx64-nvidia-cuda"
declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()
define ptx_kernel void @k(ptr addrspace(1) %p) {
  %t = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %q = getelementptr i32, ptr addrspace(1) %p, i32 %t
  %v = mul i32 %t, 3
  store i32 %v, ptr addrspace(1) %q
  ret void
}
"""

# An e4m3 mma: selectable only from sm_89 with PTX 8.4.
FP8_MMA = r"""
target triple = "nvptx64-nvidia-cuda"
declare {float, float, float, float} @llvm.nvvm.mma.m16n8k32.row.col.f32.e4m3.e4m3.f32(i32, i32, i32, i32, i32, i32, float, float, float, float)
define ptx_kernel void @k(ptr addrspace(1) %p, i32 %a, i32 %b) {
  %r = call {float, float, float, float} @llvm.nvvm.mma.m16n8k32.row.col.f32.e4m3.e4m3.f32(i32 %a, i32 %a, i32 %a, i32 %a, i32 %b, i32 %b, float 0.0, float 0.0, float 0.0, float 0.0)
  %x = extractvalue {float, float, float, float} %r, 0
  store float %x, ptr addrspace(1) %p
  ret void
}
"""


@pytest.fixture(scope="module")
def worker():
    w = LLVMWorker()
    yield w
    w.close()


@pytest.mark.parametrize("arch", ["sm_80", "sm_86", "sm_89", "sm_90"])
def test_emits_ptx_for_each_target(worker: LLVMWorker, arch: str) -> None:
    res = emit_ptx(STORE_TID, arch, worker=worker)
    t = target(arch)
    assert f".target {arch}" in res.ptx
    assert ".version %d.%d" % t.default_ptx in res.ptx
    assert ".visible .entry k(" in res.ptx
    assert "mul.lo.s32" in res.ptx or "mul.lo.b32" in res.ptx or "shl" in res.ptx


def test_identical_input_gives_identical_ptx(worker: LLVMWorker) -> None:
    first = emit_ptx(STORE_TID, "sm_80", worker=worker).ptx
    fresh = LLVMWorker()
    try:
        assert emit_ptx(STORE_TID, "sm_80", worker=fresh).ptx == first
    finally:
        fresh.close()


def test_intrinsic_not_on_target_is_refused_before_llvm(worker: LLVMWorker) -> None:
    with pytest.raises(CodegenError, match=r"mma\.m16n8k32\.row\.col\.f32\.e4m3.*not available on sm_80"):
        emit_ptx(FP8_MMA, "sm_80", worker=worker)
    with pytest.raises(CodegenError, match="needs PTX ISA 8.4 on sm_89"):
        emit_ptx(FP8_MMA, "sm_89", ptx_version=(7, 8), worker=worker)  # an explicit version too low
    for version in ((8, 4), None):  # by default the module's PTX version rises to what its intrinsics need
        ptx = emit_ptx(FP8_MMA, "sm_89", ptx_version=version, worker=worker).ptx
        assert "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32" in ptx and ".version 8.4" in ptx


def test_llvm_abort_is_a_codegen_error_and_the_worker_recovers(worker: LLVMWorker) -> None:
    # Bypass the in-process table to provoke LLVM itself: the e4m3 mma cannot be selected for sm_80,
    # which LLVM reports by aborting the process.  Only the worker may die.
    with pytest.raises(CodegenError, match="LLVM failed") as exc:
        worker.request({"llvm_ir": FP8_MMA, "cpu": "sm_80", "ptx": [7, 0], "opt": 3})
    assert "status" in str(exc.value)
    assert ".entry k" in emit_ptx(STORE_TID, "sm_80", worker=worker).ptx


def test_bad_ir_is_reported_not_fatal(worker: LLVMWorker) -> None:
    with pytest.raises(CodegenError, match="LLVM rejected"):
        emit_ptx("define void @f( {", "sm_80", worker=worker)


def test_ptx_version_bounds() -> None:
    with pytest.raises(CodegenError, match="below sm_90's minimum 7.8"):
        emit_ptx(STORE_TID, "sm_90", ptx_version=(7, 0))
    with pytest.raises(CodegenError, match="above 9.0"):
        emit_ptx(STORE_TID, "sm_80", ptx_version=(9, 1))


def test_unknown_or_misspelt_intrinsics_are_refused() -> None:
    with pytest.raises(CodegenError, match="not in lowbit's table"):
        intrinsics.lookup("llvm.nvvm.mma.m16n8k16.row.col.f32.f16.typo")
    assert intrinsics.lookup("llvm.nvvm.ldmatrix.sync.aligned.m8n8.x4.trans.b16") == "ldmatrix"
    assert intrinsics.lookup("llvm.nvvm.read.ptx.sreg.tid.x") is None
    # every feature the table names exists in the arch table for at least one target
    features = {f for _, f in intrinsics.TABLE if f is not None}
    for feature in features:
        assert any(t.supports(feature) for t in TARGETS.values()), feature


def test_ptxas_assembles_llvm_output_and_reports(worker: LLVMWorker, ptxas_path: str) -> None:
    ptx = emit_ptx(STORE_TID, "sm_80", worker=worker).ptx
    out = assemble(ptx, "sm_80")
    assert out.cubin[:4] == b"\x7fELF"
    res = out.resources["k"]
    assert res.arch == "sm_80" and 1 <= res.registers <= 32
    assert res.spills == 0 and res.shared_bytes == 0
    with pytest.raises(CodegenError, match="ptxas rejected"):
        assemble(ptx.replace("ret;", "bogus.instruction;"), "sm_80")


MISSPELT = """
target triple = "nvptx64-nvidia-cuda"
declare i32 @llvm.nvvm.read.ptx.sreg.tid.xx()
define ptx_kernel void @k(ptr addrspace(1) %p) {
  %t = call i32 @llvm.nvvm.read.ptx.sreg.tid.xx()
  store i32 %t, ptr addrspace(1) %p
  ret void
}
"""


def test_ptx_with_an_extern_llvm_function_is_rejected(worker: LLVMWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last guard: with the table check out of the way, LLVM turns a misspelt intrinsic into an .extern .func."""
    with pytest.raises(CodegenError, match="not in lowbit's table"):
        emit_ptx(MISSPELT, "sm_80", worker=worker)
    monkeypatch.setattr(intrinsics, "check_module", lambda *a: None)
    monkeypatch.setattr(intrinsics, "needed_ptx", lambda ir, tgt: tgt.default_ptx)
    with pytest.raises(CodegenError, match=r"unresolved intrinsic call in the PTX: \.extern \.func .*llvm\.nvvm\.read\.ptx\.sreg\.tid\.xx"):
        emit_ptx(MISSPELT, "sm_80", worker=worker)
