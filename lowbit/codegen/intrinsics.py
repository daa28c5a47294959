"""The table of NVVM intrinsics lowbit may emit, and the check run before LLVM sees a module.

Each row is (pattern, feature): ``pattern`` matches the intrinsic's full name;
``feature`` is the name of a feature in :mod:`lowbit.arch`'s target table
(which says, per target, whether it exists and from which PTX version), or
``None`` for intrinsics every supported target (sm_80+, PTX 7.0+) has.

Why a table: LLVM aborts the process on an intrinsic the target cannot select
and turns a misspelt name into an ``.extern .func`` that only ptxas rejects
(TOOLCHAIN.md, "Hazards").  Checking names against this list first turns both
into a :class:`~lowbit.errors.CodegenError` naming the intrinsic.  A new
intrinsic is added here together with a test that LLVM selects it.
"""

from __future__ import annotations

import re

from lowbit.arch import Target
from lowbit.errors import CodegenError

# (regex over the full intrinsic name, arch feature or None for the sm_80 / PTX 7.0 baseline)
TABLE: tuple[tuple[str, str | None], ...] = (
    (r"llvm\.nvvm\.read\.ptx\.sreg\.(tid|ntid|ctaid|nctaid)\.[xyz]", None),
    (r"llvm\.nvvm\.read\.ptx\.sreg\.(laneid|warpid|nwarpid|clock|clock64|lanemask_\w+)", None),
    (r"llvm\.nvvm\.barrier\.cta\.sync\.aligned\.all", None),
    (r"llvm\.nvvm\.barrier0", None),
    (r"llvm\.nvvm\.bar\.warp\.sync", None),
    (r"llvm\.nvvm\.(membar|fence)\.\w+", None),
    (r"llvm\.nvvm\.shfl\.sync\.(idx|up|down|bfly)\.(i32|f32)", None),
    (r"llvm\.nvvm\.vote\.(all|any|uni|ballot)\.sync", None),
    (r"llvm\.nvvm\.prmt", None),
    (r"llvm\.nvvm\.ff2(f16|bf16)x2\.(rn|rz)(\.relu)?", "cvt.f16x2"),
    (r"llvm\.nvvm\.(ex2|lg2|rcp|sqrt|rsqrt|sin|cos)\.approx(\.ftz)?\.f(32)?", None),
    (r"llvm\.nvvm\.(fmin|fmax)(\.ftz)?(\.nan)?\.(f|f16|f16x2|bf16|bf16x2)", None),
    (r"llvm\.nvvm\.cp\.async\.(ca|cg)\.shared\.global\.(4|8|16)", "cp.async"),
    (r"llvm\.nvvm\.cp\.async\.(commit\.group|wait\.group|wait\.all)", "cp.async"),
    (r"llvm\.nvvm\.ldmatrix\.sync\.aligned\.m8n8\.x(1|2|4)(\.trans)?\.b16", "ldmatrix"),
    (r"llvm\.nvvm\.mma\.m16n8k16\.row\.col\.(f32\.f32|f16\.f16|f32\.f16|f16\.f32)", "mma.m16n8k16.f16"),
    (r"llvm\.nvvm\.mma\.m16n8k16\.row\.col\.bf16", "mma.m16n8k16.bf16"),
    (r"llvm\.nvvm\.mma\.m16n8k32\.row\.col\.(satfinite\.)?(s8|s8\.u8)", "mma.m16n8k32.s8"),
    (r"llvm\.nvvm\.mma\.m16n8k32\.row\.col\.(satfinite\.)?(u8|u8\.s8)", "mma.m16n8k32.u8"),
    (r"llvm\.nvvm\.mma\.m16n8k64\.row\.col\.(satfinite\.)?(s4|s4\.u4)", "mma.m16n8k64.s4"),
    (r"llvm\.nvvm\.mma\.m16n8k64\.row\.col\.(satfinite\.)?(u4|u4\.s4)", "mma.m16n8k64.u4"),
    (r"llvm\.nvvm\.mma\.and\.popc\.m16n8k256\.row\.col\.b1", "mma.m16n8k256.b1.and"),
    (r"llvm\.nvvm\.mma\.xor\.popc\.m16n8k256\.row\.col\.b1", "mma.m16n8k256.b1.xor"),
    (r"llvm\.nvvm\.mma\.m16n8k32\.row\.col\.f32\.e4m3\.(e4m3|e5m2)\.f32", "mma.m16n8k32.e4m3"),
    (r"llvm\.nvvm\.mma\.m16n8k32\.row\.col\.f32\.e5m2\.(e4m3|e5m2)\.f32", "mma.m16n8k32.e5m2"),
    (r"llvm\.nvvm\.(e4m3x2|e5m2x2)\.to\.f16x2\.rn(\.relu)?", "cvt.e4m3x2"),
    (r"llvm\.nvvm\.ff\.to\.(e4m3x2|e5m2x2)\.rn(\.relu)?", "cvt.e4m3x2"),
    (r"llvm\.nvvm\.ff\.to\.e2m1x2\.rn(\.relu)?\.satfinite", "cvt.e2m1x2"),
    (r"llvm\.nvvm\.ff\.to\.e2m3x2\.rn(\.relu)?\.satfinite", "cvt.e2m3x2"),
    (r"llvm\.nvvm\.ff\.to\.e3m2x2\.rn(\.relu)?\.satfinite", "cvt.e3m2x2"),
    (r"llvm\.nvvm\.(e2m1x2|e2m3x2|e3m2x2)\.to\.f16x2\.rn(\.relu)?", "cvt.e2m1x2"),
    (r"llvm\.nvvm\.ff\.to\.ue8m0x2\.(rz|rp)(\.satfinite)?", "cvt.ue8m0x2"),
    (r"llvm\.nvvm\.ue8m0x2\.to\.bf16x2", "cvt.ue8m0x2"),
)

_COMPILED = tuple((re.compile(pattern + r"\Z"), feature) for pattern, feature in TABLE)
_DECLARED = re.compile(r"@\"?(llvm\.nvvm\.[\w.]+)")  # llvmlite quotes every name: @"llvm.nvvm.prmt"


def lookup(name: str) -> str | None:
    """The arch feature an intrinsic needs (None: baseline).  Raises for names not in the table."""
    for pattern, feature in _COMPILED:
        if pattern.match(name):
            return feature
    raise CodegenError(
        f"intrinsic {name} is not in lowbit's table of verified NVVM intrinsics (lowbit/codegen/intrinsics.py); "
        "a misspelt name would reach ptxas as an undefined .extern .func"
    )


def check(name: str, tgt: Target, ptx: tuple[int, int]) -> None:
    """Raise :class:`CodegenError` unless ``tgt`` at PTX ``ptx`` can select intrinsic ``name``."""
    feature = lookup(name)
    if feature is None:
        return
    info = tgt.feature(feature)
    if not tgt.supports(feature):
        raise CodegenError(f"intrinsic {name} ({feature}) is not available on {tgt.name}")
    if ptx < info.min_ptx:
        raise CodegenError(
            f"intrinsic {name} ({feature}) needs PTX ISA {info.min_ptx[0]}.{info.min_ptx[1]} on {tgt.name}, "
            f"the module targets {ptx[0]}.{ptx[1]}"
        )


def needed_ptx(llvm_ir: str, tgt: Target) -> tuple[int, int]:
    """The lowest PTX ISA version that has every intrinsic of the module on ``tgt`` (at least its default)."""
    ptx = tgt.default_ptx
    for name in set(_DECLARED.findall(llvm_ir)):
        feature = lookup(name)
        if feature is not None and tgt.supports(feature):
            ptx = max(ptx, tgt.feature(feature).min_ptx)
    return min(ptx, tgt.max_ptx)


def check_module(llvm_ir: str, tgt: Target, ptx: tuple[int, int]) -> None:
    """Check every NVVM intrinsic an LLVM IR module mentions."""
    for name in sorted(set(_DECLARED.findall(llvm_ir))):
        check(name, tgt, ptx)
