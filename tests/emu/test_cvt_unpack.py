"""``cvt.rn.f16x2.<f>x2`` as the dequantisation emits it, executed by the emulator from PTX text.

Every code in both halves (8-bit pairs: every (hi, lo) byte pair of 256 x 256; the FP6/FP4 pairs: every
pair), compared with ml_dtypes; the LLVM spelling of the e2m1 form (a ``.b8`` register declared in a
``{ }`` scope, filled by ``cvt.u8.u16``); and the refusal, at its PTX line, on targets or PTX versions
without the instruction (what ptxas does: see tests/transforms/test_dequant_hwcvt.py for ptxas itself).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lowbit.errors import UnsupportedPTXError
from tests.emu.ptxkit import kernel, line_of, run

ML = {"e4m3x2": ml_dtypes.float8_e4m3fn, "e5m2x2": ml_dtypes.float8_e5m2, "e2m1x2": ml_dtypes.float4_e2m1fn,
      "e2m3x2": ml_dtypes.float6_e2m3fn, "e3m2x2": ml_dtypes.float6_e3m2fn}  # fmt: skip
BITS = {"e4m3x2": 8, "e5m2x2": 8, "e2m1x2": 4, "e2m3x2": 6, "e3m2x2": 6}
WHERE = {"e4m3x2": ("sm_89", "8.1"), "e5m2x2": ("sm_90", "7.8"), "e2m1x2": ("sm_100a", "8.6"),
         "e2m3x2": ("sm_120a", "8.7"), "e3m2x2": ("sm_100a", "8.6")}  # fmt: skip
PARAMS = ".param .u64 src, .param .u64 dst"


def _body(kind: str) -> str:
    if kind == "e2m1x2":  # as LLVM 22 prints llvm.nvvm.e2m1x2.to.f16x2.rn: the i16 narrowed into a .b8
        conv = "{\n    .reg .b8 %e2m1x2_in;\n    cvt.u8.u16 %e2m1x2_in, %h1;\n" \
               "    cvt.rn.f16x2.e2m1x2 %r5, %e2m1x2_in;\n    }"
    else:
        conv = f"cvt.rn.f16x2.{kind} %r5, %h1;"
    return f"""
    ld.param.u64 %rd1, [src];
    ld.param.u64 %rd2, [dst];
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mad.lo.u32 %r4, %r1, %r2, %r3;
    mul.wide.u32 %rd3, %r4, 2;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.u16 %h1, [%rd4];
    {conv}
    mul.wide.u32 %rd5, %r4, 4;
    add.s64 %rd6, %rd2, %rd5;
    st.global.u32 [%rd6], %r5;
    ret;
"""


def _f16_bits(kind: str, codes: np.ndarray) -> np.ndarray:
    """ml_dtypes' value of each code as f16 bits; a NaN code as the canonical f16 NaN 0x7fff (the emulator's
    documented assumption for the hardware, lowbit.emu.cvt)."""
    v = codes.astype(np.uint8).view(ML[kind]).astype(np.float32)
    return np.where(np.isnan(v), 0x7FFF, v.astype(np.float16).view(np.uint16)).astype(np.uint32)


@pytest.mark.parametrize("kind", sorted(ML))
def test_every_pair_both_halves_vs_ml_dtypes(kind: str) -> None:
    b = BITS[kind]
    lane = 4 if b == 4 else 8
    n = 1 << b
    hi, lo = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    hi, lo = hi.reshape(-1).astype(np.uint32), lo.reshape(-1).astype(np.uint32)
    src = ((hi << lane) | lo).astype(np.uint16)
    if b == 4:  # the byte's operand only: garbage above it must not matter
        src = src | np.uint16(0xA500)
    dst = np.zeros(src.size, np.uint32)
    target, version = WHERE[kind]
    run(kernel(_body(kind), PARAMS, target=target, version=version), src.size // 256, 256, [src, dst])
    np.testing.assert_array_equal(dst >> 16, _f16_bits(kind, hi), err_msg=f"{kind}: upper half")
    np.testing.assert_array_equal(dst & 0xFFFF, _f16_bits(kind, lo), err_msg=f"{kind}: lower half")


@pytest.mark.parametrize("kind, target, version", [
    ("e4m3x2", "sm_86", "8.1"), ("e5m2x2", "sm_80", "8.1"),
    ("e2m1x2", "sm_90a", "8.6"), ("e2m3x2", "sm_89", "8.6"), ("e3m2x2", "sm_90", "8.6"),
])  # fmt: skip
def test_refused_on_targets_without_it_at_its_line(kind: str, target: str, version: str) -> None:
    ptx = kernel(_body(kind), PARAMS, target=target, version=version)
    line = line_of(ptx, f"cvt.rn.f16x2.{kind}")
    with pytest.raises(UnsupportedPTXError, match=rf"PTX line {line}: .*needs a target with cvt\.{kind}"):
        run(ptx, 1, 32, [np.zeros(32, np.uint16), np.zeros(32, np.uint32)])


def test_refused_below_its_ptx_version() -> None:
    ptx = kernel(_body("e4m3x2"), PARAMS, target="sm_89", version="8.0")  # sm_89 has it from PTX ISA 8.1
    with pytest.raises(UnsupportedPTXError, match=r"needs PTX ISA 8\.1"):
        run(ptx, 1, 32, [np.zeros(32, np.uint16), np.zeros(32, np.uint32)])
