"""GPTQ / AWQ / AutoRound conversions against a straightforward dequantisation of each original format.

The checkpoints are built here, with packers written the way the original
libraries pack (loops over words and shifts, AutoGPTQ's 3-bit split spelled
out, AWQ's interleaved column order), and dequantised the way their
reference (PyTorch) paths do.  Nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit.ops as ops
from lowbit.errors import CheckpointError
from tests.conftest import IN_CI
from tests.ops.reference import dequantize_reference, gemm_bound

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


# -- packers in the original libraries' style -----------------------------------------------


def gptq_pack_rows(intweight: np.ndarray, bits: int) -> np.ndarray:
    """(K, N) codes -> (K*bits/32, N) int32, AutoGPTQ's loop (3 bits: 10 codes, a split one, 10, a split one, 10)."""
    iw = intweight.astype(np.uint32)
    q = np.zeros((iw.shape[0] // 32 * bits, iw.shape[1]), dtype=np.uint32)
    i = row = 0
    while row < q.shape[0]:
        if bits in (2, 4, 8):
            for j in range(i, i + 32 // bits):
                q[row] |= iw[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        else:
            for j in range(i, i + 10):
                q[row] |= iw[j] << (3 * (j - i))
            i += 10
            q[row] |= iw[i] << 30
            row += 1
            q[row] |= (iw[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                q[row] |= iw[j] << (3 * (j - i) + 1)
            i += 10
            q[row] |= iw[i] << 31
            row += 1
            q[row] |= (iw[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                q[row] |= iw[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return q.view(np.int32)


def gptq_pack_cols(zeros: np.ndarray, bits: int) -> np.ndarray:
    """(G, N) values -> (G, N*bits/32) int32 along N (the same loops on columns)."""
    return gptq_pack_rows(zeros.T, bits).T.copy()


def gptq_unpack_rows(q: np.ndarray, bits: int, k: int) -> np.ndarray:
    """AutoGPTQ's torch dequant extraction, written per element: code i at stream bits [i*bits, (i+1)*bits)."""
    u = q.view(np.uint32).astype(np.uint64)
    out = np.zeros((k, u.shape[1]), dtype=np.int64)
    for i in range(k):
        lo = i * bits
        word, off = divmod(lo, 32)
        v = u[word] >> np.uint64(off)
        if off + bits > 32:
            v |= u[word + 1] << np.uint64(32 - off)
        out[i] = (v & np.uint64((1 << bits) - 1)).astype(np.int64)
    return out


def gptq_reference(qweight, qzeros, scales, g_idx, bits, k, v1=True) -> np.ndarray:  # noqa: ANN001
    """W[k, n] = scales[g[k], n] * (q[k, n] - z[g[k], n]), z = field + 1 for format v1."""
    q = gptq_unpack_rows(qweight, bits, k)
    if qzeros is None:
        z = np.full(scales.shape, 1 << (bits - 1))
    else:
        z = gptq_unpack_rows(qzeros.T.copy(), bits, scales.shape[1]).T + (1 if v1 else 0)
    g = np.asarray(g_idx)
    return scales.astype(np.float64)[g] * (q - z[g])


def awq_pack(intw: np.ndarray) -> np.ndarray:
    """(R, N) 4-bit values -> (R, N/8) int32, AutoAWQ's WQLinear_GEMM loop with its order map."""
    iw = intw.astype(np.uint32)
    q = np.zeros((iw.shape[0], iw.shape[1] // 8), dtype=np.uint32)
    for col in range(iw.shape[1] // 8):
        for i in range(8):
            q[:, col] |= iw[:, col * 8 + AWQ_ORDER[i]] << (i * 4)
    return q.view(np.int32)


def awq_reference(qweight, qzeros, scales, group_size) -> np.ndarray:  # noqa: ANN001
    """AutoAWQ's dequantize_gemm: unpack nibbles, undo the order, (q - z) * s with groups repeated along K."""
    def unpack(x: np.ndarray) -> np.ndarray:
        u = x.view(np.uint32)
        nib = np.stack([(u >> np.uint32(4 * i)) & np.uint32(15) for i in range(8)], axis=-1).reshape(u.shape[0], -1)
        rev = np.arange(nib.shape[1]).reshape(-1, 8)[:, [0, 4, 1, 5, 2, 6, 3, 7]].reshape(-1)
        return nib[:, rev].astype(np.int64)

    q, z = unpack(qweight), unpack(qzeros)
    k = q.shape[0]
    return ((q - np.repeat(z, group_size, axis=0)[:k]) * np.repeat(scales.astype(np.float64), group_size, axis=0)[:k])


# -- builders -----------------------------------------------------------------------------------------


def make_gptq(k: int, n: int, bits: int, group: int, act_order: bool, seed: int, v1: bool = True):
    rng = np.random.default_rng(seed)
    glen = k if group == -1 else group
    groups = -(-k // glen)
    codes = rng.integers(0, 1 << bits, size=(k, n))
    z = rng.integers(1 if v1 else 0, 1 << bits, size=(groups, n))  # v1 cannot store z = 0 (see the error test)
    scales = (rng.random((groups, n)) * 0.02 + 0.001).astype(np.float16)
    if act_order:  # GPTQ: g_idx[perm[i]] = i // group
        perm = rng.permutation(k)
        g_idx = np.empty(k, dtype=np.int32)
        g_idx[perm] = np.arange(k) // glen
    else:
        g_idx = (np.arange(k) // glen).astype(np.int32)
    stored_z = z - 1 if v1 else z
    return gptq_pack_rows(codes, bits), gptq_pack_cols(stored_z, bits), scales, g_idx


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_matches_its_dequantisation_exactly(bits: int, act_order: bool) -> None:
    k, n, group = 256, 64, 64
    qweight, qzeros, scales, g_idx = make_gptq(k, n, bits, group, act_order, seed=bits + 10 * act_order)
    saved = [x.copy() for x in (qweight, qzeros, scales, g_idx)]
    qw = ops.from_gptq(qweight, qzeros, scales, g_idx, bits=bits, group_size=group)
    assert qw.wtype.name == f"uint{bits}" and qw.zero == "int" and (qw.perm is not None) == act_order
    ref = gptq_reference(qweight, qzeros, scales, g_idx, bits, k)
    np.testing.assert_array_equal(qw.dequantize(), ref)
    for x, y in zip((qweight, qzeros, scales, g_idx), saved):
        np.testing.assert_array_equal(x, y)
    if act_order:  # each group is a contiguous run of `group` stored rows
        np.testing.assert_array_equal(g_idx[qw.perm], np.arange(k) // group)


def test_gptq_3_bit_repacked_to_the_kernel_order_keeps_its_dequantisation() -> None:
    """Imports give layout 1; ``repack(3)`` turns the 3-bit zero stream into one byte a zero (and back)."""
    k, n, group = 256, 64, 64
    qweight, qzeros, scales, g_idx = make_gptq(k, n, 3, group, True, seed=21)
    qw = ops.from_gptq(qweight, qzeros, scales, g_idx, bits=3, group_size=group)
    v3 = qw.repack(3)
    assert qw.zeros.shape == (4 * 64 * 3 // 32,) and v3.zeros.shape == (4 * 64 // 4,)
    np.testing.assert_array_equal(v3.zeros.view(np.uint8), qw.zero_codes().reshape(-1))
    ref = gptq_reference(qweight, qzeros, scales, g_idx, 3, k)
    np.testing.assert_array_equal(v3.dequantize(), ref)
    np.testing.assert_array_equal(dequantize_reference(v3), ref)
    np.testing.assert_array_equal(v3.repack(1).zeros, qw.zeros)


def test_gptq_v2_per_channel_and_the_matmul() -> None:
    k, n = 192, 64  # AutoGPTQ packs whole words: K and N multiples of 32
    qweight, qzeros, scales, g_idx = make_gptq(k, n, 4, -1, True, seed=3, v1=False)
    qw = ops.from_gptq(qweight, qzeros, scales, g_idx, bits=4, group_size=-1, checkpoint_format="gptq_v2")
    w = gptq_reference(qweight, qzeros, scales, g_idx, 4, k, v1=False)
    np.testing.assert_array_equal(qw.dequantize(), w)
    a = np.random.default_rng(4).standard_normal((3, k)).astype(np.float16)
    c = ops.matmul(a, qw, backend="emulator")
    ref, bound = gemm_bound(a, w, None)
    assert (np.abs(c.astype(np.float64) - ref) <= bound).all()


@pytest.mark.parametrize("bits", [4, 8])
def test_symmetric_without_qzeros_uses_the_implicit_zero(bits: int) -> None:
    k, n = 128, 32
    qweight, _, scales, g_idx = make_gptq(k, n, bits, 32, True, seed=5)
    qw = ops.from_gptq(qweight, None, scales, g_idx, bits=bits, group_size=32)
    assert qw.wtype.name == f"int{bits}" and qw.zero == "none" and qw.zeros is None
    np.testing.assert_array_equal(qw.dequantize(), gptq_reference(qweight, None, scales, g_idx, bits, k))


def test_awq_matches_its_dequantisation_exactly() -> None:
    rng = np.random.default_rng(6)
    k, n, group = 256, 64, 128
    codes = rng.integers(0, 16, size=(k, n))
    zeros = rng.integers(0, 16, size=(k // group, n))
    scales = (rng.random((k // group, n)) * 0.02 + 0.001).astype(np.float16)
    qweight, qzeros = awq_pack(codes), awq_pack(zeros)
    qw = ops.from_awq(qweight, qzeros, scales, group_size=group)
    ref = awq_reference(qweight, qzeros, scales, group)
    np.testing.assert_array_equal(qw.dequantize(), ref)
    np.testing.assert_array_equal(qw.codes(), codes)  # the interleave is undone
    a = rng.standard_normal((2, k)).astype(np.float16)
    c = ops.matmul(a, qw, backend="emulator")
    r, bound = gemm_bound(a, ref, None)
    assert (np.abs(c.astype(np.float64) - r) <= bound).all()


def _same_fields(x: ops.QuantizedWeight, y: ops.QuantizedWeight) -> None:
    assert (x.layout, x.wtype.name, x.zero, x.group_size) == (y.layout, y.wtype.name, y.zero, y.group_size)
    assert x.facts("f16") == y.facts("f16") and x.facts("bf16") == y.facts("bf16")
    tx, ty = x.tensors(), y.tensors()
    assert tx.keys() == ty.keys()
    for name in tx:
        np.testing.assert_array_equal(tx[name], ty[name], err_msg=name)


@pytest.mark.parametrize("bits, act_order", [(3, True), (4, False)])
def test_gptq_imports_straight_into_the_kernel_order(bits: int, act_order: bool) -> None:
    """``layout=3`` / "kernel" gives what ``repack(3)`` of the default import gives, field for field, with the
    checkpoint's dequantisation; and the kernel reads it bit for bit as it reads the layout-1 import."""
    k, n, group = 256, 64, 64
    qweight, qzeros, scales, g_idx = make_gptq(k, n, bits, group, act_order, seed=30 + bits)
    saved = [x.copy() for x in (qweight, qzeros, scales, g_idx)]
    v1 = ops.from_gptq(qweight, qzeros, scales, g_idx, bits=bits, group_size=group)
    for layout in (3, "kernel"):
        v3 = ops.from_gptq(qweight, qzeros, scales, g_idx, bits=bits, group_size=group, layout=layout)
        _same_fields(v3, v1.repack(3))
    assert v3.layout == 3 and v1.layout == 1
    np.testing.assert_array_equal(v3.dequantize(), gptq_reference(qweight, qzeros, scales, g_idx, bits, k))
    for x, y in zip((qweight, qzeros, scales, g_idx), saved):
        np.testing.assert_array_equal(x, y)
    a = np.random.default_rng(bits).standard_normal((3, k)).astype(np.float16)
    assert ops.matmul(a, v3, backend="emulator").tobytes() == ops.matmul(a, v1, backend="emulator").tobytes()


def test_awq_and_symmetric_gptq_import_into_the_kernel_order() -> None:
    rng = np.random.default_rng(31)
    k, n, group = 256, 64, 128
    qweight, qzeros = awq_pack(rng.integers(0, 16, size=(k, n))), awq_pack(rng.integers(0, 16, size=(k // group, n)))
    scales = (rng.random((k // group, n)) * 0.02 + 0.001).astype(np.float16)
    v3 = ops.from_awq(qweight, qzeros, scales, group_size=group, layout="kernel")
    _same_fields(v3, ops.from_awq(qweight, qzeros, scales, group_size=group).repack(3))
    np.testing.assert_array_equal(v3.dequantize(), awq_reference(qweight, qzeros, scales, group))
    gq, _, gs, g_idx = make_gptq(128, 32, 4, 32, True, seed=32)
    sym = ops.from_gptq(gq, None, gs, g_idx, bits=4, group_size=32, layout=3)
    assert sym.layout == 3 and sym.zero == "none"
    np.testing.assert_array_equal(sym.dequantize(), gptq_reference(gq, None, gs, g_idx, 4, 128))


def test_conversion_errors_name_the_tensor() -> None:
    qweight, qzeros, scales, g_idx = make_gptq(64, 32, 4, 32, False, seed=7)
    bad_zero = gptq_pack_cols(np.full((2, 32), 15), 4)  # field 15 + 1 = 16: a zero of 0 stored as -1
    cases = [
        (lambda: ops.from_gptq(qweight, bad_zero, scales, bits=4, group_size=32), "off-by-one"),
        (lambda: ops.from_gptq(qweight, qzeros, scales, np.zeros(64, np.int32), bits=4, group_size=32), "g_idx gives group 0 64 rows"),
        (lambda: ops.from_gptq(qweight, qzeros, scales, np.full(64, 5, np.int32), bits=4, group_size=32), "g_idx values"),
        (lambda: ops.from_gptq(qweight, qzeros, scales[:1], bits=4, group_size=32), "scales has shape"),
        (lambda: ops.from_gptq(qweight, qzeros[:1], scales, bits=4, group_size=32), "qzeros has shape"),
        (lambda: ops.from_gptq(qweight.astype(np.int64), qzeros, scales, bits=4, group_size=32), "qweight must be"),
        (lambda: ops.from_gptq(qweight, qzeros, scales, bits=5, group_size=32), "bits must be"),
        (lambda: ops.from_gptq(qweight, qzeros, scales, bits=4, group_size=32, checkpoint_format="v3"), "checkpoint_format"),
        (lambda: ops.from_awq(qweight, qzeros, scales, bits=3, group_size=32), "only the 4-bit"),
        (lambda: ops.from_gptq(qweight, qzeros, scales, bits=4, group_size=32, layout="marlin"), "GPTQ: layout: unknown"),
        (lambda: ops.from_awq(qweight, qzeros, scales, group_size=32, layout=4), "AWQ: layout: unknown"),
    ]  # fmt: skip
    for call, match in cases:
        with pytest.raises(CheckpointError, match=match):
            call()


# -- state dicts into models (torch) ----------------------------------------------------------------


def _torch():  # noqa: ANN202
    return __import__("torch") if IN_CI else pytest.importorskip("torch")


@pytest.mark.parametrize("method, layout", [("gptq", 1), ("awq", 1), ("auto-round", 1), ("gptq", "kernel")])
def test_load_quantized_state_dict_into_a_model(method: str, layout: int | str) -> None:
    torch = _torch()
    from lowbit.nn import QuantLinear, load_quantized  # noqa: PLC0415

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.LayerNorm(64), torch.nn.Linear(64, 32))
    sd: dict[str, object] = {"1.weight": torch.randn(64), "1.bias": torch.randn(64)}
    weights = {}
    for i, (k, n) in ((0, (128, 64)), (2, (64, 32))):
        if method == "awq":
            rng = np.random.default_rng(i)
            codes, zeros = rng.integers(0, 16, size=(k, n)), rng.integers(0, 16, size=(k // 32, n))
            scales = (rng.random((k // 32, n)) * 0.05).astype(np.float16)
            tensors = {"qweight": awq_pack(codes), "qzeros": awq_pack(zeros), "scales": scales}
            weights[i] = awq_reference(tensors["qweight"], tensors["qzeros"], scales, 32)
        else:
            qweight, qzeros, scales, g_idx = make_gptq(k, n, 4, 32, True, seed=i)
            tensors = {"qweight": qweight, "scales": scales, "g_idx": g_idx}
            if method == "gptq":
                tensors["qzeros"] = qzeros
            weights[i] = gptq_reference(qweight, qzeros if method == "gptq" else None, scales, g_idx, 4, k)
        sd.update({f"{i}.{name}": torch.from_numpy(np.ascontiguousarray(v)) for name, v in tensors.items()})
        sd[f"{i}.bias"] = torch.randn(n, dtype=torch.float16)
    config = {"quant_method": method, "bits": 4, "group_size": 32, "desc_act": True, "sym": method != "gptq"}
    load_quantized(model, sd, config, layout=layout)
    assert isinstance(model[0], QuantLinear) and isinstance(model[2], QuantLinear)
    assert {model[i].quantized_weight().layout for i in (0, 2)} == {1 if layout == 1 else 3}
    assert torch.equal(model[1].weight, sd["1.weight"])
    for i in (0, 2):
        np.testing.assert_array_equal(model[i].quantized_weight().numpy().dequantize(), weights[i])
    x = torch.randn(3, 128, dtype=torch.float16)
    model[1].half()
    assert model(x).shape == (3, 32)
    with pytest.raises(CheckpointError, match="unexpected"):
        load_quantized(torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.LayerNorm(64), torch.nn.Linear(64, 32)),
                       {**sd, "9.weight": torch.zeros(1)}, config)  # fmt: skip
    with pytest.raises(CheckpointError, match="quant_method"):
        load_quantized(model, sd, {"quant_method": "hqq", "bits": 4, "group_size": 32})
