"""Layout 3's integer zeros for widths 3, 5, 6, 7: one byte a zero (:func:`lowbit.ops.layouts.zero_bits`).

The words are checked against the byte-by-byte extraction of
tests/ops/reference.py (``extract_zeros``, written from the layout's
definition), ``repack`` by its inverse between all three versions, the
shape checks of every consumer (QuantizedWeight, the launch, QuantLinear's
buffers), the kernel on the emulator against the float64 reference at
shapes that are not multiples of the tile, and its PTX for what the format
is for: one aligned 32-bit load of a thread's zeros a K step, no byte loads.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest

import lowbit
import lowbit.ops as ops
from lowbit.errors import LaunchError, QuantizeError
from lowbit.ops import _launch
from lowbit.ops.layouts import pack_zeros, unpack_zeros, zero_bits, zero_words
from lowbit.ops.qweight import tensor_specs
from tests.conftest import require_tool
from tests.ops.reference import dequantize_reference, extract_zeros
from tests.ops.test_wx_matmul_emulator import _check

STRADDLING = ("uint3", "uint5", "uint6", "uint7")


def _w(k: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n)) * 0.5


def _same_bits(a: ops.QuantizedWeight, b: ops.QuantizedWeight) -> None:
    assert a.layout == b.layout and a.shape == b.shape
    ta, tb = a.numpy().tensors(), b.numpy().tensors()
    assert ta.keys() == tb.keys()
    for f, v in tb.items():
        np.testing.assert_array_equal(ta[f], v, err_msg=f)


# -- the format ----------------------------------------------------------------------------


def test_zero_bits_is_a_byte_only_for_straddling_widths_in_version_3() -> None:
    for bits in range(1, 9):
        for layout in (1, 2, 3):
            want = 8 if layout == 3 and bits in (3, 5, 6, 7) else bits
            assert zero_bits(bits, layout) == want, (bits, layout)
            assert zero_words(5, 7, bits, layout) == -(-35 * want // 32)


@pytest.mark.parametrize("g,n", [(1, 1), (3, 7), (4, 136), (2, 5)])
@pytest.mark.parametrize("bits", range(1, 9))
def test_zero_words_match_the_definition_and_invert(bits: int, g: int, n: int) -> None:
    z = np.random.default_rng(bits * 100 + g + n).integers(0, 1 << bits, (g, n)).astype(np.uint8)
    for layout in (1, 2, 3):
        words = pack_zeros(z, bits, layout)
        assert words.dtype == np.uint32 and words.shape == (zero_words(g, n, bits, layout),)
        np.testing.assert_array_equal(extract_zeros(words, bits, g, n, layout), z)  # the reference's decoding
        back = unpack_zeros(words, bits, g, n, layout)
        assert back.dtype == np.uint8
        np.testing.assert_array_equal(back, z)
    if bits in (3, 5, 6, 7):  # version 3 by hand: byte i % 4 of word i // 4, i = g*N + n
        words = pack_zeros(z, bits, 3)
        flat = z.reshape(-1)
        for i in range(flat.size):
            assert (int(words[i // 4]) >> (8 * (i % 4))) & 0xFF == flat[i]
        assert not np.any(words.view(np.uint8)[flat.size :])  # the last word's unused bytes are 0
    else:
        np.testing.assert_array_equal(pack_zeros(z, bits, 3), pack_zeros(z, bits, 1))


def test_zero_words_refuse_bad_input() -> None:
    with pytest.raises(QuantizeError, match=r"zero codes must be integers in \[0, 128\) for 7-bit codes"):
        pack_zeros(np.array([[1, 128]]), 7, 3)
    with pytest.raises(QuantizeError, match=r"expected \(G, N\) zero codes, got shape \(3,\)"):
        pack_zeros(np.array([1, 2, 3]), 7, 3)
    with pytest.raises(QuantizeError, match="a byte holds 200, not a 7-bit zero code"):
        unpack_zeros(np.array([200], np.uint32), 7, 1, 1, 3)


# -- repack and validation -------------------------------------------------------------------


@pytest.mark.parametrize("k,n", [(288, 136), (136, 7), (40, 9)])
@pytest.mark.parametrize("fmt", [*STRADDLING, "int3", "int7", "uint4", "uint2"])
def test_repack_converts_the_zeros_both_ways(fmt: str, k: int, n: int) -> None:
    qw = ops.quantize_weight(_w(k, n, zlib.crc32(f"{fmt}/{k}/{n}".encode())), fmt, zero="int", group_size=32)
    bits, g = qw.bits, qw.num_groups
    before = {f: v.copy() for f, v in qw.tensors().items()}
    v3 = qw.repack(3)
    for f, v in qw.tensors().items():  # the source is not changed
        np.testing.assert_array_equal(v, before[f])
    z = qw.zero_codes()
    np.testing.assert_array_equal(v3.zero_codes(), z)
    np.testing.assert_array_equal(extract_zeros(v3.zeros, bits, g, n, 3), z)
    if bits in (3, 5, 6, 7):
        assert v3.zeros.shape == (-(-g * n // 4),)
        np.testing.assert_array_equal(v3.zeros.view(np.uint8)[: g * n], z.reshape(-1))
    else:  # a power of two: the same stream, shared
        assert v3.zeros is qw.zeros
    np.testing.assert_array_equal(dequantize_reference(v3), dequantize_reference(qw))
    np.testing.assert_array_equal(v3.dequantize(), qw.dequantize())
    _same_bits(v3.repack(1), qw)  # inverse, bit for bit (zeros included)
    _same_bits(v3.repack(2), qw.repack(2))
    _same_bits(qw.repack(2).repack(3), v3)
    _same_bits(ops.quantize_weight(_w(k, n, zlib.crc32(f"{fmt}/{k}/{n}".encode())), fmt, zero="int", group_size=32,
                                   layout=3), v3)  # fmt: skip
    _same_bits(ops.QuantizedWeight.from_quantized_tensor(v3.to_quantized_tensor(), layout=3), v3)


def test_repack_converts_torch_zeros_on_their_device() -> None:
    torch = __import__(require_tool("torch"))
    qw = ops.quantize_weight(torch.from_numpy(_w(136, 9, 5)).float(), "uint7")
    v3 = qw.repack(3)
    assert v3.is_torch and v3.zeros.dtype == torch.int32 and v3.zeros.shape == (-(-2 * 9 // 4),)
    _same_bits(v3.repack(1), qw)
    _same_bits(v3.numpy(), qw.numpy().repack(3))
    assert torch.equal(v3.dequantize(), qw.dequantize())


def test_every_consumer_checks_the_zeros_shape_of_its_layout() -> None:
    qw = ops.quantize_weight(_w(136, 9, 6), "uint7")  # G = 2: v1 ceil(18*7/32) = 4 words, v3 ceil(18/4) = 5
    v3 = qw.repack(3)
    assert qw.zeros.shape == (4,) and v3.zeros.shape == (5,)
    with pytest.raises(QuantizeError, match=r"zeros has shape \(4,\), expected \(5,\) \(layout 3: 2x9 zeros of 8 bits\)"):
        dataclasses.replace(v3, zeros=qw.zeros)
    with pytest.raises(QuantizeError, match=r"zeros has shape \(5,\), expected \(4,\) \(layout 1: 2x9 zeros of 7 bits\)"):
        dataclasses.replace(qw, zeros=v3.zeros)
    a = np.zeros((1, 136), np.float16)
    with pytest.raises(LaunchError, match=r"argument 'zeros': expected \(5,\) words \(2x9 zeros of 8 bits in layout 3\)"):
        _launch.check_operands(a, v3.qweight, v3.scales, qw.zeros, None, None, qw.wtype, 128, "int", 3)
    assert _launch.check_operands(a, v3.qweight, v3.scales, v3.zeros, None, None, qw.wtype, 128, "int", 3) == (1, 9, 136)
    for layout, words in ((1, 4), (2, 4), (3, 5)):
        assert tensor_specs(lowbit.uint7, 136, 9, 128, "int", layout=layout)["zeros"] == ((words,), "uint32")
    assert tensor_specs(lowbit.uint4, 136, 9, 128, "int", layout=3)["zeros"] == ((3,), "uint32")


def test_quantlinear_buffers_and_state_dict_in_version_3() -> None:
    torch = __import__(require_tool("torch"))
    from lowbit.nn import QuantLinear

    qw = ops.quantize_weight(_w(136, 9, 7), "uint5", layout=3)
    mod = QuantLinear(136, 9, bias=False, wtype="uint5", layout=3)
    assert tuple(mod.zeros.shape) == qw.zeros.shape == (5,)
    mod.load_state_dict(QuantLinear.from_quantized_weight(qw).state_dict())
    _same_bits(mod.quantized_weight(), qw)
    with pytest.raises(RuntimeError, match="zeros"):  # a version-1 state dict into a version-3 module
        mod.load_state_dict(QuantLinear.from_quantized_weight(qw.repack(1)).state_dict())
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 136))).half()
    ref = x.double() @ torch.from_numpy(dequantize_reference(qw))
    assert torch.allclose(mod(x).double(), ref, atol=0.05, rtol=0.01)


# -- the kernel ----------------------------------------------------------------------------


_SHAPES = ((392, 137, 128), (392, 140, 64), (200, 9, 32), (136, 260, -1))
_CASES = [pytest.param(f, *s, marks=() if i == j else pytest.mark.full)
          for i, f in enumerate(STRADDLING) for j, s in enumerate(_SHAPES)]  # fmt: skip (one shape a format by default)


@pytest.mark.parametrize("fmt,k,n,group", _CASES)
def test_kernel_reads_byte_zeros_against_float64(fmt: str, k: int, n: int, group: int) -> None:
    """N and K not multiples of the 128x128 tile, several groups (one per K step, two, four, or per channel)."""
    rng = np.random.default_rng(zlib.crc32(f"{fmt}/{k}/{n}/{group}".encode()))
    qw = ops.quantize_weight(rng.standard_normal((k, n)) * 0.5, fmt, group_size=group, layout=3)
    assert qw.zeros.shape == (-(-qw.num_groups * n // 4),)
    z = qw.zero_codes()
    assert len(np.unique(z)) > 2  # distinct zeros per group and column: a misplaced one shows
    a = rng.standard_normal((3, k)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float16)
    c3 = _check(qw, a, bias)
    assert c3.tobytes() == ops.matmul(a, qw.repack(1), bias, backend="emulator").tobytes()  # same sums, bit for bit


def test_kernel_reads_byte_zeros_of_signed_codes_and_bf16() -> None:
    rng = np.random.default_rng(11)
    qw = ops.quantize_weight(rng.standard_normal((200, 9)) * 0.5, "int5", zero="int", scale_dtype="bf16", layout=3)
    assert qw.zeros.shape == (5,)
    import ml_dtypes

    _check(qw, rng.standard_normal((3, 200)).astype(ml_dtypes.bfloat16), None)


@pytest.mark.parametrize("act", ["f16", "bf16"])
@pytest.mark.parametrize("fmt", [*STRADDLING, "uint4"])
def test_zero_loads_in_the_main_loop_are_whole_aligned_words(fmt: str, act: str) -> None:
    """Built as lowbit.ops launches it, 16x128x128: a thread's 4 adjacent zeros are one ld.global.b32 a K step
    (a 7-bit stream took 8 ld.global.b8), and the integer dequantisation still has no int -> float cvt."""
    from benchmarks import bench_formats as bf

    qw = bf.quantize(fmt, 1024, 256, 0, act=act).repack(3)
    b = bf.build(qw, 16, act, (16, 128, 128))
    steps = bf.k_steps_per_iteration(b.compiled.ptx)
    loads = {o: n / steps for o, n in bf.main_loop_opcodes(b.compiled.ptx).items() if o.startswith("ld.global")}
    bits = qw.bits
    assert loads.pop("ld.global.v4.b32") == bits  # the thread's 4*bits weight words, 16 bytes at a time
    assert loads.pop("ld.global.v2.b32") == 1  # its 4 f16 scales
    assert loads == ({"ld.global.b16": 1} if fmt == "uint4" else {"ld.global.b32": 1}), loads  # its 4 zeros
    facts = bf.ptx_facts(b.compiled.ptx)
    assert not facts["int_to_float_cvt"] and not facts["f32_arith"], facts
