"""QuantizedWeight layout version 2 ("planes"): bit planes, repack, and wx_matmul reading them.

The planes are checked against their definition (bit j of a code lands in
the plane whose bit range holds j), the packed words against the bit-by-bit
extraction of tests/ops/reference.py, ``repack`` by its inverse on every
format at odd K and N, and the kernel by equality with its layout-1 result
(same tiles, same order of sums: bit for bit) and the float64 bound.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest

import lowbit
import lowbit.ops as ops
from lowbit.errors import LaunchError, PackError, QuantizeError
from lowbit.ops import _launch
from lowbit.packing import join_planes, plane_widths, split_planes
from tests.conftest import require_tool
from tests.ops.reference import dequantize_reference, extract_codes, extract_weight_codes
from tests.ops.test_wx_matmul_emulator import _check

INTS = tuple(f"{s}int{b}" for b in range(1, 9) for s in ("u", ""))
FLOATS = ("e2m1", "e3m2", "e2m3", "f5e2m2", "e4m3", "e5m2", "nf4", "mxfp4", "mxfp6_e3m2", "nvfp4")
SHAPES = ((288, 136), (136, 7), (40, 136), (40, 7))


def _w(k: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n)) * 0.5


# -- planes ------------------------------------------------------------------------------


def test_plane_widths_are_the_binary_form_widest_first() -> None:
    expected = {1: (1,), 2: (2,), 3: (2, 1), 4: (4,), 5: (4, 1), 6: (4, 2), 7: (4, 2, 1), 8: (8,)}
    for bits, widths in expected.items():
        assert plane_widths(bits) == widths
        assert sum(widths) == bits and list(widths) == sorted(set(widths), reverse=True)
        assert all(32 % w == 0 for w in widths)
    for bad in (0, 9, 2.0, True):
        with pytest.raises(PackError, match="bits must be an integer"):
            plane_widths(bad)


@pytest.mark.parametrize("bits", range(1, 9))
def test_split_then_join_is_the_identity_and_follows_the_definition(bits: int) -> None:
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 1 << bits, size=(37, 5), dtype=np.int64)
    planes = split_planes(codes, bits)
    assert len(planes) == len(plane_widths(bits))
    offset = 0
    for plane, w in zip(planes, plane_widths(bits), strict=True):
        assert plane.dtype == np.uint8 and plane.shape == codes.shape and int(plane.max(initial=0)) < 1 << w
        for j in range(w):  # bit j of the plane is bit offset + j of the code
            np.testing.assert_array_equal((plane >> j) & 1, (codes >> (offset + j)) & 1)
        offset += w
    joined = join_planes(planes, bits)
    assert joined.dtype == np.uint8
    np.testing.assert_array_equal(joined, codes)
    np.testing.assert_array_equal(join_planes(list(planes), bits), codes)


def test_split_and_join_refuse_bad_input() -> None:
    with pytest.raises(PackError, match=r"code 8 at index \(1,\) is outside \[0, 8\)"):
        split_planes(np.array([1, 8]), 3)
    with pytest.raises(PackError, match="integer array"):
        split_planes(np.array([1.0]), 3)
    two, one = split_planes(np.array([5, 2]), 3)
    with pytest.raises(PackError, match=r"3-bit codes have 2 planes of widths \(2, 1\), got 1"):
        join_planes((two,), 3)
    with pytest.raises(PackError, match=r"plane 1 \(1 bits\)"):
        join_planes((two, one + 1), 3)
    with pytest.raises(PackError, match="different shapes"):
        join_planes((two, one[:1]), 3)


# -- the packed words ----------------------------------------------------------------------


@pytest.mark.parametrize("k,n", SHAPES)
@pytest.mark.parametrize("bits", range(1, 9))
def test_version_2_words_match_the_definition_and_the_byte_formula(bits: int, k: int, n: int) -> None:
    qw = ops.quantize_weight(_w(k, n, bits), f"uint{bits}")
    v2 = qw.repack(2)
    words = v2.qweight
    widths = plane_widths(bits)
    rows = [-(-k * w // 32) for w in widths]
    assert words.shape == (sum(rows), n) and words.dtype == np.uint32
    assert words.nbytes == 4 * n * sum(rows)
    if k % 32 == 0:
        assert words.nbytes == k * n * bits // 8 == qw.qweight.nbytes
    assert words.nbytes - qw.qweight.nbytes <= 4 * n * (len(widths) - 1)
    if len(widths) == 1:  # one plane: version 2 is version 1's bytes
        assert words.tobytes() == qw.qweight.tobytes()
    # plane p: rows from sum(rows[:p]), its codes bit o_p.. of the code, nothing straddles a word
    codes, r0, offset = qw.codes().astype(np.int64), 0, 0
    for w, r in zip(widths, rows, strict=True):
        np.testing.assert_array_equal(extract_codes(words[r0 : r0 + r], w, k), (codes >> offset) & ((1 << w) - 1))
        r0, offset = r0 + r, offset + w
    np.testing.assert_array_equal(extract_weight_codes(words, bits, k, 2), codes)
    np.testing.assert_array_equal(v2.codes(), qw.codes())


# -- repack --------------------------------------------------------------------------------


def _same_bits(x: ops.QuantizedWeight, y: ops.QuantizedWeight) -> None:
    assert x.layout == y.layout and x.wtype == y.wtype and x.shape == y.shape
    tx, ty = x.numpy().tensors(), y.numpy().tensors()
    assert tx.keys() == ty.keys()
    for f in tx:
        assert tx[f].dtype == ty[f].dtype and tx[f].shape == ty[f].shape, f
        assert tx[f].tobytes() == ty[f].tobytes(), f


@pytest.mark.parametrize("k,n", SHAPES[:3])
@pytest.mark.parametrize("fmt", INTS + FLOATS)
def test_repack_inverse_on_every_format(fmt: str, k: int, n: int) -> None:
    kw = {"zero": "int"} if fmt == "int1" else {}  # int1 has no positive value: no symmetric quantization
    qw = ops.quantize_weight(_w(k, n, len(fmt) + k + n), fmt, **kw)
    before = {f: v.copy() for f, v in qw.tensors().items()}
    v2 = qw.repack(2)
    assert v2 is not qw and v2.layout == 2 and v2.layout_name == "planes" and qw.layout == 1
    for f, v in qw.tensors().items():  # self is untouched
        np.testing.assert_array_equal(v, before[f])
    np.testing.assert_array_equal(v2.codes(), qw.codes())
    np.testing.assert_array_equal(v2.dequantize(), qw.dequantize())
    np.testing.assert_array_equal(dequantize_reference(v2), dequantize_reference(qw))
    _same_bits(v2.repack(1), qw)
    _same_bits(v2.repack("lsb"), qw)
    _same_bits(ops.quantize_weight(_w(k, n, len(fmt) + k + n), fmt, layout="planes", **kw), v2)
    _same_bits(qw.repack(1), qw)
    assert qw.repack(1) is not qw


def test_repack_keeps_torch_storage_and_device() -> None:
    torch = __import__(require_tool("torch"))
    qw = ops.quantize_weight(torch.from_numpy(_w(136, 7, 1)).float(), "uint5", perm=np.arange(136)[::-1].copy())
    assert qw.is_torch
    before = qw.qweight.clone()
    v2 = qw.repack(2)
    assert v2.is_torch and v2.qweight.dtype == torch.int32 and str(v2.device) == "cpu" and v2.layout == 2
    assert torch.equal(qw.qweight, before)
    back = v2.repack(1)
    assert back.is_torch and torch.equal(back.qweight, qw.qweight)
    _same_bits(back, qw)
    _same_bits(v2.numpy(), qw.numpy().repack(2))
    assert torch.equal(v2.dequantize(), qw.dequantize())


def test_quant_linear_holds_a_version_2_weight() -> None:
    torch = __import__(require_tool("torch"))
    from lowbit.nn import QuantLinear  # noqa: PLC0415 - needs torch

    qw = ops.quantize_weight(_w(136, 40, 2), "uint3").to("cpu")
    v2 = qw.repack(2)
    mod = QuantLinear.from_quantized_weight(v2)
    assert mod.layout == 2 and mod.qweight.shape == v2.qweight.shape and "layout=2" in repr(mod)
    _same_bits(mod.quantized_weight(), v2)
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 136))).half()
    assert torch.equal(mod(x), QuantLinear.from_quantized_weight(qw)(x))
    fresh = QuantLinear(136, 40, False, wtype="uint3", layout="planes")
    fresh.load_state_dict(mod.state_dict())
    _same_bits(fresh.quantized_weight(), v2)
    with pytest.raises(RuntimeError, match="size mismatch for qweight"):  # 14 rows of planes, 13 of layout 1
        QuantLinear(136, 40, False, wtype="uint3").load_state_dict(mod.state_dict())


# -- errors --------------------------------------------------------------------------------


def test_a_qweight_of_the_wrong_shape_for_its_layout_is_refused() -> None:
    qw = ops.quantize_weight(_w(136, 7, 4), "uint3")  # layout 1: 13 rows; layout 2: 9 + 5 = 14
    with pytest.raises(QuantizeError, match=r"qweight has shape \(13, 7\), expected \(14, 7\) \(layout 2, 'planes'"):
        dataclasses.replace(qw, layout=2)
    v2 = qw.repack(2)
    with pytest.raises(QuantizeError, match=r"qweight has shape \(14, 7\), expected \(13, 7\) \(layout 1, 'lsb'"):
        dataclasses.replace(v2, layout=1)
    a = np.zeros((1, 136), np.float16)
    with pytest.raises(LaunchError, match=r"argument 'qweight'.*\(14, 7\) int32 words in layout 2"):
        _launch.check_operands(a, qw.qweight, qw.scales, qw.zeros, None, None, qw.wtype, 128, "int", 2)


def test_an_unknown_layout_is_refused_naming_the_version() -> None:
    qw = ops.quantize_weight(_w(64, 8, 5), "uint4")
    with pytest.raises(QuantizeError, match=r"QuantizedWeight: unknown layout version 4; known: 1 \('lsb'\), 2 "
                                            r"\('planes'\), 3 \('kernel'\)"):
        dataclasses.replace(qw, layout=4)
    with pytest.raises(QuantizeError, match="QuantizedWeight.repack: unknown layout version 'marlin'"):
        qw.repack("marlin")
    with pytest.raises(QuantizeError, match="quantize_weight: unknown layout version 0"):
        ops.quantize_weight(_w(64, 8, 5), "uint4", layout=0)
    with pytest.raises(QuantizeError, match="unknown layout version True"):
        qw.repack(True)
    with pytest.raises(LaunchError, match="weight layout version 4 is not supported"):
        _launch.plan(lowbit.uint4, 128, "int", "f16", "f16", False, 4, True)


def test_power_of_two_widths_share_the_version_1_kernel() -> None:
    """Same bytes, same specialisation: plan() gives a version-2 uint4 the LAYOUT=1 constexprs."""
    p1 = _launch.plan(lowbit.uint4, 128, "int", "f16", "f16", False, 1, True)
    assert _launch.plan(lowbit.uint4, 128, "int", "f16", "f16", False, 2, True) == p1
    assert _launch.plan(lowbit.uint3, 128, "int", "f16", "f16", False, 2, True).kwargs()["LAYOUT"] == 2


# -- the kernel ----------------------------------------------------------------------------


def _v1_v2(fmt: str, m: int, k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    qw = ops.quantize_weight(rng.standard_normal((k, n)) * 0.5, fmt)
    a = rng.standard_normal((m, k)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float16)
    c2 = _check(qw.repack(2), a, bias)  # the float64 bound
    c1 = ops.matmul(a, qw, bias, backend="emulator")
    assert c2.tobytes() == c1.tobytes(), f"{fmt}: layout 2 differs from layout 1"


@pytest.mark.parametrize("fmt, m", [pytest.param(f, m, id=f"{f}-{m}", marks=pytest.mark.full if m == 3 and f != "uint6" else ())
                                    for f in ("uint3", "int5", "uint6", "uint7") for m in (1, 3)])  # fmt: skip (M=3 of the slow three: full tier)
def test_kernel_reads_planes_bit_for_bit_as_version_1(fmt: str, m: int) -> None:
    _v1_v2(fmt, m, 288, 136, seed=zlib.crc32(f"{fmt}/{m}".encode()))


def test_kernel_reads_planes_when_k_is_not_a_multiple_of_the_step() -> None:
    """K=136: the last K step's rows run past the 2-bit plane into the 1-bit plane; they must read as zeros."""
    _v1_v2("uint3", 3, 136, 40, seed=21)


@pytest.mark.full
@pytest.mark.parametrize("k,n", [(136, 136), (40, 7), (288, 7)])
@pytest.mark.parametrize("fmt", ["uint3", "int3", "uint5", "int6", "int7", "e3m2", "e2m3", "f5e2m2", "mxfp6_e3m2",
                                 "bipolar3"])  # fmt: skip
def test_kernel_reads_planes_for_floats_codebooks_and_odd_shapes(fmt: str, k: int, n: int) -> None:
    _v1_v2(fmt, 3, k, n, seed=k + n)


def test_the_torch_op_and_its_fake_read_version_2_shapes() -> None:
    torch = __import__(require_tool("torch"))
    from lowbit.ops import torch_ops  # noqa: PLC0415 - registers torch.ops.lowbit.matmul

    v2 = ops.quantize_weight(_w(136, 40, 6), "uint3", layout=2).to("cpu")  # 14 rows, layout 1 has 13
    a = torch.from_numpy(np.random.default_rng(6).standard_normal((3, 136))).half()
    result = torch.library.opcheck(torch.ops.lowbit.matmul.default, (a, *torch_ops.weight_operands(v2), None))
    assert all(v == "SUCCESS" for v in result.values()), result
    # the fake (torch.compile's shape function) checks the row count of layout 2
    with torch._subclasses.fake_tensor.FakeTensorMode(allow_non_fake_inputs=True):
        bad = torch.empty((13, 40), dtype=torch.int32)
        with pytest.raises(RuntimeError, match="qweight has 13 rows, K=136 codes of 3 bits need 14 in layout 2"):
            torch.ops.lowbit.matmul(torch.empty((3, 136), dtype=torch.float16), bad,
                                    *torch_ops.weight_operands(v2)[1:], None)  # fmt: skip


def test_quant_linear_and_the_torch_op_hold_a_version_3_weight() -> None:
    torch = __import__(require_tool("torch"))
    from lowbit.nn import QuantLinear  # noqa: PLC0415 - needs torch
    from lowbit.ops import torch_ops  # noqa: PLC0415 - registers torch.ops.lowbit.matmul

    qw = ops.quantize_weight(_w(136, 40, 8), "uint3").to("cpu")
    v3 = qw.repack(3)  # K padded to 256: 2 chunks x 4 x 3 = 24 rows (layout 1 has 13)
    assert tuple(v3.qweight.shape) == (24, 40)
    mod = QuantLinear.from_quantized_weight(v3)
    assert mod.layout == 3 and "layout=3" in repr(mod)
    _same_bits(mod.quantized_weight(), v3)
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((3, 136))).half()
    assert torch.equal(mod(x), QuantLinear.from_quantized_weight(qw)(x))
    fresh = QuantLinear(136, 40, False, wtype="uint3", layout="kernel")
    fresh.load_state_dict(mod.state_dict())
    _same_bits(fresh.quantized_weight(), v3)
    a = x
    result = torch.library.opcheck(torch.ops.lowbit.matmul.default, (a, *torch_ops.weight_operands(v3), None))
    assert all(v == "SUCCESS" for v in result.values()), result
    with torch._subclasses.fake_tensor.FakeTensorMode(allow_non_fake_inputs=True):
        bad = torch.empty((13, 40), dtype=torch.int32)
        with pytest.raises(RuntimeError, match="qweight has 13 rows.*24 in layout 3"):
            torch.ops.lowbit.matmul(torch.empty((3, 136), dtype=torch.float16), bad,
                                    *torch_ops.weight_operands(v3)[1:], None)  # fmt: skip
