"""QuantizedWeight layout version 3 ("kernel"): mma-fragment order, repack, and wx_matmul reading it.

The order is checked against the PTX ISA's m16n8k16 B fragment (each
thread's word holds only rows of its own lane quad position, the two rows
of a fragment pair in the two halves at the same place), the packed words
against the code-by-code extraction of tests/ops/reference.py, ``repack`` by
its inverse between all three versions on every format at odd K and N, the
kernel by equality with its layout-1 result (same K order of the mma sums:
bit for bit) and the float64 bound, and its PTX for what the layout is for:
no prmt, no shuffle, no shared-memory round trip of the weight words.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter

import numpy as np
import pytest

import lowbit
import lowbit.ops as ops
from lowbit.errors import LaunchError, QuantizeError
from lowbit.ops import _launch
from lowbit.ops.layouts import kernel_order_rows, pack_codes, qweight_rows, unpack_codes
from tests.conftest import require_tool
from tests.ops.reference import dequantize_reference, extract_kernel_order, extract_weight_codes
from tests.ops.test_wx_matmul_emulator import _check

INTS = tuple(f"{s}int{b}" for b in range(1, 9) for s in ("u", ""))
FLOATS = ("e2m1", "e3m2", "e4m3", "e5m2", "nf4", "mxfp4", "mxfp6_e3m2", "nvfp4")
SHAPES = ((288, 136), (136, 7), (40, 9), (256, 3))


def _w(k: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n)) * 0.5


def _same_bits(a: ops.QuantizedWeight, b: ops.QuantizedWeight) -> None:
    assert a.layout == b.layout and a.shape == b.shape
    for f, v in b.numpy().tensors().items():
        np.testing.assert_array_equal(a.numpy().tensors()[f], v, err_msg=f)


# -- the order -----------------------------------------------------------------------------


@pytest.mark.parametrize("w", [1, 2, 4, 8])
def test_each_word_holds_one_threads_b_fragment_pairs(w: int) -> None:
    """PTX ISA, mma.m16n8k16 .f16 B fragment: lane l holds rows 2(l%4) + {0, 1} and 2(l%4) + 8 + {0, 1} of
    each 16-row step, the pairs in the two halves of b0 and b1.  Row r = t*w + q of a chunk must hold only
    lane-quad t's rows; code i (low half) and i + P/2 (high half) the two rows of one pair."""
    rows = kernel_order_rows(w)
    p = 32 // w
    assert rows.shape == (4 * w, p)
    assert sorted(rows.ravel().tolist()) == list(range(128))  # a permutation of the chunk
    for r in range(4 * w):
        t = r // w
        assert set(((rows[r] % 16) % 8) // 2) == {t}  # only lane-quad t's rows
        lo, hi = rows[r, : p // 2], rows[r, p // 2 :]
        np.testing.assert_array_equal(hi, lo + 1)  # same pair: rows 2t+8h+16s and +1, at bits j*w and j*w + 16
        assert (lo % 2 == 0).all()
    with pytest.raises(QuantizeError, match="plane width 3 is not 1, 2, 4 or 8"):
        kernel_order_rows(3)


@pytest.mark.parametrize("k,n", SHAPES)
@pytest.mark.parametrize("bits", range(1, 9))
def test_version_3_words_match_the_definition_and_the_byte_formula(bits: int, k: int, n: int) -> None:
    rng = np.random.default_rng(bits * 1000 + k + n)
    codes = rng.integers(0, 1 << bits, (k, n)).astype(np.uint8)
    words = pack_codes(codes, bits, 3)
    assert words.dtype == np.uint32 and words.flags.c_contiguous
    assert words.shape == (qweight_rows(k, bits, 3), n) == (-(-k // 128) * 4 * bits, n)
    np.testing.assert_array_equal(extract_weight_codes(words, bits, k, 3), codes)  # reference (and zero padding)
    np.testing.assert_array_equal(unpack_codes(words, bits, k, 3), codes)
    if k % 128 == 0:
        assert words.nbytes == k * n * bits // 8 == pack_codes(codes, bits, 1).nbytes
    # column n's words are column n's codes: slicing columns shards the weight
    np.testing.assert_array_equal(pack_codes(codes[:, 1:], bits, 3), words[:, 1:])


def test_one_word_by_hand() -> None:
    """uint4, lane quad 1, word 0 of chunk 0: codes of rows 2, 10, 18, 26 (low half) and 3, 11, 19, 27 (high)."""
    codes = np.zeros((128, 1), np.uint8)
    want = {2: 1, 10: 2, 18: 3, 26: 4, 3: 5, 11: 6, 19: 7, 27: 8}
    for r, v in want.items():
        codes[r, 0] = v
    words = pack_codes(codes, 4, 3)
    assert hex(int(words[4, 0])) == hex(0x87654321)  # row t*w + q = 1*4 + 0
    assert int(np.count_nonzero(words)) == 1
    np.testing.assert_array_equal(extract_kernel_order(words, 4, 128), codes)


# -- repack --------------------------------------------------------------------------------


@pytest.mark.parametrize("k,n", SHAPES[:3])
@pytest.mark.parametrize("fmt", INTS + FLOATS)
def test_repack_between_every_version_is_inverted(fmt: str, k: int, n: int) -> None:
    kw = {"zero": "int"} if fmt == "int1" else {}
    qw = ops.quantize_weight(_w(k, n, len(fmt) + k + n), fmt, **kw)
    before = {f: v.copy() for f, v in qw.tensors().items()}
    v3 = qw.repack(3)
    assert v3 is not qw and v3.layout == 3 and v3.layout_name == "kernel" and qw.layout == 1
    for f, v in qw.tensors().items():
        np.testing.assert_array_equal(v, before[f])
    np.testing.assert_array_equal(v3.codes(), qw.codes())
    np.testing.assert_array_equal(dequantize_reference(v3), dequantize_reference(qw))
    np.testing.assert_array_equal(v3.dequantize(), qw.dequantize())
    _same_bits(v3.repack(1), qw)
    _same_bits(v3.repack("planes"), qw.repack(2))
    _same_bits(qw.repack(2).repack("kernel"), v3)
    _same_bits(v3.repack(2).repack(3), v3)
    _same_bits(ops.quantize_weight(_w(k, n, len(fmt) + k + n), fmt, layout="kernel", **kw), v3)


def test_repack_keeps_torch_storage_and_the_permutation() -> None:
    torch = __import__(require_tool("torch"))
    perm = np.random.default_rng(2).permutation(136)
    qw = ops.quantize_weight(torch.from_numpy(_w(136, 7, 1)).float(), "uint4", perm=perm)
    v3 = qw.repack(3)
    assert v3.is_torch and v3.qweight.dtype == torch.int32 and v3.layout == 3
    np.testing.assert_array_equal(v3.perm.numpy(), perm)
    _same_bits(v3.repack(1), qw)
    _same_bits(v3.numpy(), qw.numpy().repack(3))
    assert torch.equal(v3.dequantize(), qw.dequantize())


# -- errors --------------------------------------------------------------------------------


def test_a_qweight_of_the_wrong_shape_for_version_3_is_refused() -> None:
    qw = ops.quantize_weight(_w(136, 7, 4), "uint4")  # layout 1: 17 rows; layout 3: 2 chunks * 16 = 32
    with pytest.raises(QuantizeError, match=r"qweight has shape \(17, 7\), expected \(32, 7\) \(layout 3, 'kernel', "
                                            r"for K=136 codes of 4 bits\)"):  # fmt: skip
        dataclasses.replace(qw, layout=3)
    v3 = qw.repack(3)
    a = np.zeros((1, 136), np.float16)
    with pytest.raises(LaunchError, match=r"argument 'qweight'.*\(32, 7\) int32 words in layout 3"):
        _launch.check_operands(a, qw.qweight, qw.scales, qw.zeros, None, None, qw.wtype, 128, "int", 3)
    assert _launch.check_operands(a, v3.qweight, v3.scales, v3.zeros, None, None, qw.wtype, 128, "int", 3) == (1, 7, 136)


def test_the_plan_steps_by_whole_chunks() -> None:
    for g, bk in ((128, 128), (32, 128), (64, 128), (-1, 128), (256, 128), (96, 384)):
        p = _launch.plan(lowbit.uint4, g, "int", "f16", "f16", False, 3, True)
        assert p.kwargs()["LAYOUT"] == 3 and p.block == (16, 128, bk), (g, p.block)
    assert _launch.plan(lowbit.uint3, 128, "int", "f16", "f16", False, 3, False).block == (32, 128, 128)


# -- the kernel ----------------------------------------------------------------------------


def _v1_v3(fmt: str, m: int, k: int, n: int, seed: int, **kw: object) -> None:
    rng = np.random.default_rng(seed)
    qw = ops.quantize_weight(rng.standard_normal((k, n)) * 0.5, fmt, **kw)
    a = rng.standard_normal((m, k)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float16)
    c3 = _check(qw.repack(3), a, bias)  # the float64 bound
    c1 = ops.matmul(a, qw, bias, backend="emulator")
    assert c3.tobytes() == c1.tobytes(), f"{fmt}: layout 3 differs from layout 1"


@pytest.mark.parametrize("m", [1, 3, 67])
@pytest.mark.parametrize("fmt", ["uint4", "int4", "e2m1"])
def test_kernel_reads_version_3_bit_for_bit_as_version_1(fmt: str, m: int) -> None:
    _v1_v3(fmt, m, 288, 136, seed=zlib.crc32(f"{fmt}/{m}".encode()))


@pytest.mark.parametrize("fmt", ["uint1", "uint2", "uint3", "uint6", "uint8", "int8", "e4m3", "nf4", "mxfp4", "nvfp4"])
def test_kernel_reads_version_3_for_every_kind_of_format(fmt: str) -> None:
    _v1_v3(fmt, 3, 288, 40, seed=zlib.crc32(fmt.encode()))


@pytest.mark.parametrize("fmt", ["int5", "uint7", "e3m2", "e2m3"])
def test_kernel_reads_version_3_planes_of_every_kind(fmt: str) -> None:
    """The plane formats' kernel-order unpack (shifts and lop3, the floats' respaced words): 4+1, 4+2+1 integers
    with zeros, and the 6-bit floats whose sign and top exponent bit sit in the 2-bit plane."""
    _v1_v3(fmt, 3, 288, 136, seed=zlib.crc32(f"planes/{fmt}".encode()))


@pytest.mark.full
@pytest.mark.parametrize("k,n", [(136, 136), (40, 7), (288, 7)])
@pytest.mark.parametrize("fmt", ["uint3", "int3", "uint5", "int6", "int7", "e3m2", "e2m3", "f5e2m2", "mxfp6_e3m2",
                                 "mxfp6_e2m3", "bipolar3"])  # fmt: skip
def test_kernel_reads_version_3_planes_for_floats_codebooks_and_odd_shapes(fmt: str, k: int, n: int) -> None:
    _v1_v3(fmt, 3, k, n, seed=k + n)


@pytest.mark.parametrize("kw", [{"group_size": 32}, {"group_size": -1}, {"zero": "float"}, {"scale_dtype": "bf16"}],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))  # fmt: skip
def test_kernel_reads_version_3_with_other_groups_and_zeros(kw: dict) -> None:
    _v1_v3("uint4", 3, 200, 9, seed=31, **kw)  # K = 200: the last chunk is padding past row 200


def test_act_order_with_version_3() -> None:
    rng = np.random.default_rng(13)
    w = rng.standard_normal((288, 40))
    perm = rng.permutation(288)
    qw = ops.quantize_weight(w, "uint4", perm=perm, layout=3)
    a = rng.standard_normal((3, 288)).astype(np.float16)
    c = _check(qw, a, None)
    assert not np.allclose(ops.matmul(a, dataclasses.replace(qw, perm=None), backend="emulator"), c, atol=0.5)


def test_the_uint4_kernel_unpacks_without_prmt_shuffles_or_a_shared_round_trip() -> None:
    """Built as lowbit.ops launches it (bench_formats.build: the launch's divisibility facts), 16x128x128."""
    from benchmarks import bench_formats as bf

    got = {}
    for layout in (1, 3):
        qw = bf.quantize("uint4", 1024, 256, 0)
        b = bf.build(qw.repack(layout) if layout != 1 else qw, 16, "f16", (16, 128, 128))
        assert b.constexprs["LAYOUT"] == layout
        steps = bf.k_steps_per_iteration(b.compiled.ptx)  # the pipelined loop runs K steps in pairs
        got[layout] = Counter({o: n / steps for o, n in bf.main_loop_opcodes(b.compiled.ptx).items()})  # a K step's
    ops3 = got[3]
    assert not any(o.startswith(("prmt", "shfl", "st.shared", "ld.shared")) for o in ops3), ops3
    assert ops3["ld.global.v4.b32"] == 4  # the thread's 16 words (128 codes) as four 16-byte loads
    assert ops3["ldmatrix.sync.aligned.m8n8.x4.shared.b16"] == 8  # A still goes through shared memory
    assert ops3["lop3.b32"] == 64  # one lop3 a pair of codes: 128 codes a thread, 64 pairs
    assert got[1]["prmt.b32"] == 64 and got[1]["ld.shared.v4.b32"] == 16  # (what layout 1 needs)
