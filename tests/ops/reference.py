"""Independent float64 references and error bounds for the weight-only GEMM tests.

The dequantisation here is written from the format definitions, not from
lowbit's code paths: codes are extracted from the packed words bit by bit
(column by column, without ``lowbit.unpack``; layout 2's bit planes and
layout 3's kernel order are located and recombined from the layouts'
definitions, not lowbit's helpers), decoded with the dtype's ``decode`` (checked against ml_dtypes and the spec tables in tests/dtypes),
and combined with the scales, zeros, block scales and tensor scale by the
formula of each convention.
"""

from __future__ import annotations

import numpy as np

import lowbit


def extract_codes(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """(ceil(count*bits/32), N) uint32 words -> (count, N) codes: bit j of code i is stream bit i*bits + j."""
    w = np.asarray(words).astype(np.uint64)
    out = np.zeros((count, w.shape[1]), dtype=np.int64)
    for i in range(count):
        for j in range(bits):
            bit = i * bits + j
            out[i] |= ((w[bit // 32] >> np.uint64(bit % 32)) & np.uint64(1)).astype(np.int64) << j
    return out


def extract_kernel_order(words: np.ndarray, w: int, count: int) -> np.ndarray:
    """A layout-3 plane of width ``w`` -> (count, N) codes, from the layout's definition, code by code.

    Chunk c of 128 rows, lane quad position t (0..3) and word q (0..w-1) are row ``c*4w + t*w + q``; its
    code at bit ``i*w`` (P = 32/w codes) is half ``e = i // (P/2)`` of pair ``j = i % (P/2)``, the mma
    16-row step ``q*P/4 + j//2``, its upper 8 rows when ``j`` is odd: row ``2t + e`` of those 8.
    """
    x = np.asarray(words).astype(np.uint64)
    p = 32 // w
    out = np.zeros((-(-count // 128) * 128, x.shape[1]), dtype=np.int64)
    seen = np.zeros(out.shape[0], dtype=bool)
    for row in range(x.shape[0]):
        c, rest = divmod(row, 4 * w)
        t, q = divmod(rest, w)
        for i in range(p):
            e, j = divmod(i, p // 2)
            step, upper = divmod(j, 2)
            k = c * 128 + (q * (p // 4) + step) * 16 + upper * 8 + 2 * t + e
            assert not seen[k]
            seen[k] = True
            out[k] = ((x[row] >> np.uint64(i * w)) & np.uint64((1 << w) - 1)).astype(np.int64)
    assert seen.all()
    assert not out[count:].any(), "padding rows must hold zero codes"
    return out[:count]


def extract_weight_codes(words: np.ndarray, bits: int, count: int, layout: int) -> np.ndarray:
    """``qweight`` -> (count, N) codes for layout 1 (one LSB-first stream), 2 (bit planes) or 3 (kernel order).

    Layout 2: planes of the powers of two in ``bits`` (8, 4, 2, 1 present in
    its binary form), widest first, stacked along the rows; plane p takes
    ``ceil(count*w_p/32)`` rows and holds code bits ``[o_p, o_p + w_p)``, o_p
    the sum of the earlier planes' widths.

    Layout 3 (kernel order): the same planes, each ``ceil(count/128)*4*w_p``
    rows, decoded by :func:`extract_kernel_order`.
    """
    w = np.asarray(words)
    if layout == 1:
        assert w.shape[0] == -(-count * bits // 32)
        return extract_codes(w, bits, count)
    assert layout in (2, 3), layout
    out = np.zeros((count, w.shape[1]), dtype=np.int64)
    row = shift = 0
    for width in (8, 4, 2, 1):
        if bits & width:
            if layout == 2:
                rows = -(-count * width // 32)
                out |= extract_codes(w[row : row + rows], width, count) << shift
            else:
                rows = -(-count // 128) * 4 * width
                out |= extract_kernel_order(w[row : row + rows], width, count) << shift
            row, shift = row + rows, shift + width
    assert row == w.shape[0] and shift == bits
    return out


def extract_zeros(words: np.ndarray, bits: int, groups: int, n: int, layout: int) -> np.ndarray:
    """Integer ``zeros`` words -> the (groups, n) zero codes, row-major (g, n).

    One LSB-first stream of ``bits``-bit fields, except layout 3 for widths that are not a power of two
    (3, 5, 6, 7): one zero per byte, zero ``i = g*n + col`` in bits ``[8*(i % 4), 8*(i % 4) + 8)`` of word
    ``i // 4``, whose bits above ``bits`` must be 0.
    """
    w = np.asarray(words).reshape(-1)
    if layout == 3 and bits not in (1, 2, 4, 8):
        assert w.shape == (-(-groups * n // 4),), (w.shape, groups, n)
        i = np.arange(groups * n)
        byte = (w.astype(np.uint64)[i // 4] >> (np.uint64(8) * (i % 4).astype(np.uint64))) & np.uint64(0xFF)
        assert int(byte.max(initial=0)) < 1 << bits, "the bits of a zero byte above the code width must be 0"
        return byte.astype(np.int64).reshape(groups, n)
    assert w.shape == (-(-groups * n * bits // 32),), (w.shape, groups, n, bits)
    return extract_codes(w.reshape(-1, 1), bits, groups * n).reshape(groups, n)


def dequantize_reference(qw: lowbit.ops.QuantizedWeight) -> np.ndarray:
    """The (K, N) weight in original row order, float64, from the packed fields."""
    q = qw.numpy()
    k, n = q.shape
    scaled = isinstance(q.wtype, lowbit.ScaledType)
    elem = q.wtype.element if scaled else q.wtype
    codes = extract_weight_codes(q.qweight, elem.bits, k, q.layout)
    v = elem.decode(codes.astype(np.uint64))
    glen = k if q.group_size == -1 else q.group_size
    g = np.arange(k) // glen
    if scaled:
        s = q.wtype.scale.decode(q.scales.astype(np.uint64)) * 2.0**q.wtype.element_exp
    else:
        s = q.scales.astype(np.float64)
    if q.zero == "int":
        groups = s.shape[0]
        z = extract_zeros(q.zeros, elem.bits, groups, n, q.layout)
        w = (v - elem.decode(z.astype(np.uint64))[g]) * s[g]
    elif q.zero == "float":
        w = v * s[g] - q.zeros.astype(np.float64)[g]
    else:
        w = v * s[g]
    if q.tensor_scale is not None:
        w = w * float(q.tensor_scale[0])
    if q.perm is not None:
        out = np.empty_like(w)
        out[q.perm] = w
        w = out
    return w


def unit_roundoff(act: np.dtype) -> float:
    return 2.0**-11 if np.dtype(act) == np.float16 else 2.0**-8


def gemm_bound(a: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(reference, bound) for the kernel's C = round_A(sum_k a_k * round_A(w_k) + bias) with f32 accumulation.

    Each weight is rounded once to A's dtype (unit roundoff u; an f32 step
    before it adds 2**-23 relative; subnormals add 2**-25 absolute for f16),
    K products are accumulated in f32 (K * 2**-24 relative to sum |a||w|),
    the tensor scale / bias are applied in f32 and the result is rounded
    once more (u relative).
    """
    u = unit_roundoff(a.dtype)
    a64 = a.astype(np.float64)
    k = a.shape[1]
    ref = a64 @ w
    mag = np.abs(a64) @ np.abs(w)
    sub = np.abs(a64).sum(axis=1, keepdims=True) * 2.0**-25
    if bias is not None:
        ref = ref + bias.astype(np.float64)
        mag = mag + np.abs(bias.astype(np.float64))
    bound = (u + 2.0**-23 + (k + 2) * 2.0**-24) * mag + sub + u * np.abs(ref) + 2.0**-24
    return ref, bound
