"""The generic weight-only GEMM: ``C = A @ dequant(W) (+ bias)``, one kernel for every weight format.

``A`` is (M, K) f16 or bf16, ``W`` a (K, N) weight stored as a
:class:`lowbit.ops.QuantizedWeight` (codes packed along K in the layout
``LAYOUT``), ``C`` is (M, N) in A's dtype.  The same source serves every
format lowbit has, chosen by constexprs, so that one signature stays while
the compiler issues make it fast (issue 13's dequantisation rules rewrite
the body's ``cast(view(words, W), ...)``, ``- zero``, ``* scale`` sequence):

=================  ==========================================================
constexpr          meaning
=================  ==========================================================
``W``              element format of the codes: int1..int8, uint1..uint8, any
                   float of <= 8 bits (e2m1, e4m3fn, e5m2, e3m2, f5e2m2...),
                   a codebook (nf4 or a user table); for MX/NVFP4 the element
``GROUP``          rows of K sharing one scale (and zero); -1: one per column;
                   the block (32 MX, 16 NVFP4) for block-scaled formats
``ZERO``           ``"none"`` (w = v*s), ``"int"`` (w = (v - z)*s, z an integer
                   code of ``W``), ``"float"`` (w = v*s - z, z a float of ``S``)
                   -- the conventions of :func:`lowbit.quantize`
``S``              scale storage: f16, bf16, f32; or e8m0 (MX) / ue4m3 (NVFP4)
                   block-scale codes
``A``              activation and output dtype: f16 or bf16
``ELEM_EXP``       a power of two applied to every element (MXINT8: -6)
``FOLD``           float formats only: fold the exponent-bias correction into the
                   scales (``s * 2**F`` rounded to A, ``v * 2**-F``, F = A's bias -
                   W's) -- exact, and then the same result, only when every
                   ``s * 2**F`` is an A value (the packer checks:
                   :meth:`lowbit.ops.QuantizedWeight.facts`); it saves one
                   multiply per weight pair in the packed dequantisation
``ACC_EXP``        with FOLD: the part of the fold exponent F that the f32
                   accumulator takes instead of the scales (``acc * 2**ACC_EXP``
                   after the loop; the scales take ``2**(F - ACC_EXP)``) -- for
                   NVFP4, whose ue4m3 scales (up to 448) cannot take all of
                   F = 14; :func:`lowbit.ops._fold.block_fold` proves it exact
``TENSOR_SCALE``   multiply by NVFP4's per-tensor f32 scale (read from memory)
``HAS_BIAS``       add ``bias`` (N,) of dtype A
``LAYOUT``         layout version of the packed codes (1: ``lowbit.pack``'s
                   LSB-first order along K; 2: bit planes; 3: kernel
                   order, below); later versions are new branches
``BM, BN, BK``     the block tile; :func:`tile_config` picks them
=================  ==========================================================

Memory (all C-contiguous): ``w`` is ``ceil(K*bits/32)`` x N uint32 words,
code ``(k, n)`` at bit ``k*bits`` of column n's word stream (layout 1), or
(layout 2, :mod:`lowbit.ops.layouts`) the code's bit planes of widths
``w_p`` in ``lowbit.packing.plane_widths(bits)`` (3 -> 2+1, 5 -> 4+1,
6 -> 4+2, 7 -> 4+2+1; the widest holds the low bits) stacked along the rows,
plane p a ``ceil(K*w_p/32)`` x N layout-1 packing of its ``w_p``-bit codes
starting at row ``sum(ceil(K*w_q/32) for q < p)``: a K step reads each
plane's whole words, none straddles, and the code is
``plane_0 | plane_1 << w_0 | ...``, then decoded as layout 1 decodes it; or
(layout 3) the planes of layout 2, each ``ceil(K/128)*4*w_p`` rows in kernel
order (:func:`kernel_order_code`, :mod:`lowbit.ops.layouts`: a thread's
words hold exactly its mma B fragments' codes; K steps of whole 128-row
chunks); ``s`` is
``(G, N)``, G = ``ceil(K/GROUP)`` (1 per channel); int zeros are one dense
LSB-first stream of G*N codes of ``W`` bits, row-major ``(g, n)``, in
uint32 words (GPTQ's ``qzeros`` layout once its off-by-one is undone) --
except in layout 3 for widths 3, 5, 6, 7, where each zero code takes a
byte (4 a word, row-major ``(g, n)``: a thread's adjacent zeros are one
aligned word, never a straddling run; :func:`lowbit.ops.layouts.zero_bits`);
float zeros are ``(G, N)`` of ``S``; ``ts`` is one f32; ``bias`` is (N,).

Numerics.  The weight is dequantised in f32 and rounded **once** to A's
dtype: ``cast((cast(c, f32) - cast(z, f32)) * cast(s, f32), A)``.
:mod:`lowbit.ops` launches a codebook format (nf4, user tables) as the
codebook whose values are rounded to A (:func:`lowbit.ops._fold.codebook_in`:
one more rounding, of the table, as half-precision LUT kernels hold it), and
an "fn" float format whose weight has no NaN code as its NaN-free twin
(:func:`lowbit.ops._fold.finite_twin`: the same value for every code present).  For
integer codes and small floats with f16/bf16 scales the f32 product is
exact (<= 9 significant bits times <= 11), so this is bit-identical to the
packed f16x2/bf16x2 ``(c - z) * s`` sequence issue 13 will emit -- the form
is chosen so that rewrite changes no result.  ``dot`` accumulates in f32;
the tensor scale and the bias are applied to the f32 accumulator, which is
then rounded once to A's dtype.

Pointers that a configuration does not use are never read, and their
declared dtypes let a caller pass arrays it already has instead of
allocating: ``z`` is uint32 unless ``ZERO="float"`` (pass ``w``), ``ts`` is
of dtype A unless ``TENSOR_SCALE`` (pass ``c``), ``bias`` is of dtype A.

Launch options: 4 warps and ``num_stages=3`` -- the K loop's shared-memory
tiles become a 3-deep ``cp.async`` ring and its register tiles (scales,
zeros, layout 3's weight words) are prefetched a step ahead, in ping-pong
pairs of K steps (:mod:`lowbit.transforms.pipeline`); this is what
:mod:`lowbit.ops` launches and what ``benchmarks/bench_formats.py`` measures.
"""

from __future__ import annotations

import math

import lowbit

__all__ = ["LAYOUTS", "LAYOUT_KERNEL", "LAYOUT_LSB", "LAYOUT_PLANES", "kernel_order_code", "plane_code", "scale_to_f32", "tile_config", "wx_matmul", "zero_code"]

#: Layout version 1: codes packed by ``lowbit.pack(codes, bits, axis=0)`` (LSB-first along K).
LAYOUT_LSB = 1
#: Layout version 2: power-of-two bit planes, each packed as version 1, stacked widest first.
LAYOUT_PLANES = 2
#: Layout version 3: kernel order (each thread's words hold its mma B fragments' codes; planes as version 2).
LAYOUT_KERNEL = 3
#: The layout versions the kernel reads.
LAYOUTS = (LAYOUT_LSB, LAYOUT_PLANES, LAYOUT_KERNEL)
#: The unsigned integer of each width 1..8 (index bits - 1): a code's bits, to view as the weight format.
_UINTS = (
    lowbit.uint1, lowbit.uint2, lowbit.uint3, lowbit.uint4, lowbit.uint5, lowbit.uint6, lowbit.uint7, lowbit.uint8,
)  # fmt: skip


@lowbit.func
def plane_code(w, r0, k, n0, WP, BK, BN):
    """The [BK, BN] int32 codes of one bit plane (``WP`` bits) for the K step at row ``k``.

    The plane's words start at row ``r0`` of the view ``w``, which **ends
    where the plane ends**; the K step's words are rows ``r0 + k*WP/32``
    on, ``BK*WP/32`` of them: whole words, because ``BK*bits % 32 == 0``
    (asserted) means BK is a multiple of ``32 / lowest set bit of bits``,
    and every plane width is a multiple of that bit.  Rows past the plane's
    end (the last K step of a K that is not a multiple of the step) belong
    to the next plane; they are outside this view, so they read zero codes
    as layout 1's rows past its end do -- the view's bound is the mask, and
    an unmasked load stays a plain (vector, pipelined) load.
    """
    words = lowbit.load(w, (r0 + k * WP // 32, n0), (BK * WP // 32, BN))
    return lowbit.cast(lowbit.view(words, _UINTS[WP - 1], axis=0), lowbit.int32)


@lowbit.func
def kernel_order_code(w, r0, k, n0, T, BK, BN):
    """The [BK, BN] codes (viewed as ``T``, of ``T.bits`` = the plane width) of one version-3 plane
    (:mod:`lowbit.ops.layouts`) for the K step at row ``k``, from the plane's rows starting at ``r0`` of ``w``.

    The step's words are ``BK/128 * 4 * WP`` rows (chunk c, lane quad position t, word q) whose bits hold
    the codes of rows ``128c + 16 (q P/4 + j//2) + 8 (j%2) + 2t + e`` at position ``i = e P/2 + j``.  The
    view splits each word into its P codes in place; the reshape, permute and reshape only rename which
    coordinate each register holds, so with the mma B fragment layout pulled back through them every
    thread loads exactly its own words (no replication, no shuffle) and the dequantisation finds each
    fragment pair in the two halves of one word.  Rows past the plane's end read zero codes.
    """
    WP = T.bits
    P = 32 // WP
    C = BK // 128
    words = lowbit.load(w, (r0 + k // 128 * 4 * WP, n0), (C * 4 * WP, BN))
    codes = lowbit.reshape(lowbit.view(words, T, axis=0), (C, 4, WP, 2, P // 4, 2, BN))  # (c, t, q, e, j//2, j%2, n)
    codes = lowbit.permute(codes, (0, 2, 4, 5, 1, 3, 6))  # (c, q, j//2, j%2, t, e, n): row-major is k's digits
    return lowbit.reshape(codes, (BK, BN))


@lowbit.func
def zero_code(z, W, ZB):
    """Integer zeros as values of ``W``: loaded as ``W`` already, or (``ZB``: layout 3's byte zeros, widths
    3, 5, 6, 7) bytes whose low ``W.bits`` bits are the code -- the cast to the code's unsigned width says so
    (it wraps: the bits above are 0 by the layout), so that the dequantisation sees a ``W.bits``-bit zero (its
    integer path needs ``M + z`` inside the magic's binade: bf16's holds 7 bits, not a byte), and the view
    reads the code as ``W`` (signed codes)."""
    if ZB:
        u = lowbit.cast(z, _UINTS[W.bits - 1])
        if W == _UINTS[W.bits - 1]:
            y = u
        else:
            y = lowbit.view(u, W)
    else:
        y = z
    return y


@lowbit.func
def scale_to_f32(x, F, A, PE):
    """Scales of format ``F`` as exact f32 values, times ``2**PE`` (FOLD's power of two; 0: none) rounded to ``A``.

    Everything happens once per scale, before the scales are broadcast along
    the group, and in ``A`` or in integers wherever the value is an ``A``
    value, so that the dequantisation rule finds an ``A``-typed scale behind
    one exact widening cast and the main loop does no f32 work for it:

    * ``F == A``: the loaded scale, times ``2**PE`` in ``A`` (exact when the
      packer said so: :meth:`lowbit.ops.QuantizedWeight.facts`);
    * e8m0 (MX; 2**(e - 127)) under FOLD, where the packer checked that every
      folded scale is a *normal* ``A`` value: its ``A`` bits are the biased
      exponent shifted into place, built in integers; without FOLD through
      f32, since 2**-127..2**127 does not fit f16 (issue 13's named
      exception);
    * other byte-wide formats (f32, the other 16-bit float) are cast to f32,
      and folded through f32;
    * an unsigned float narrower than a byte (NVFP4's ue4m3: 4 exponent, 3
      mantissa bits, bias 7), stored one code per byte: its bits shifted into
      ``A``'s exponent and mantissa fields are an ``A`` whose value is the
      code's times ``2**(F.bias - A.bias)`` -- for subnormal codes too, as
      ``A`` has the wider exponent -- so one multiply by the inverse power of
      two decodes it exactly (every code but the NaN code, which
      quantize_weight never produces from finite weights).
    """
    P2 = (1.0 * (1 << PE)) if PE >= 0 else 1.0 / (1 << -PE)
    if F == A:
        if PE == 0:
            y = lowbit.cast(x, lowbit.f32)
        else:
            y = lowbit.cast(x * P2, lowbit.f32)
    elif F.bits == 8 and F.mantissa == 0 and not F.signed and PE != 0:
        # e8m0 under FOLD: the packer checked that every 2**(e - 127 + PE) is a normal A value, so its A bits are
        # the biased exponent in A's exponent field -- one add and one shift per scale, in integers
        e = lowbit.cast(lowbit.view(x, lowbit.uint8), lowbit.int32)  # the code bits, not the value
        bits = (e + (A.bias - F.bias + PE)) << A.mantissa
        y = lowbit.cast(lowbit.view(lowbit.cast(bits, lowbit.uint16), A), lowbit.f32)
    elif F.bits % 8 == 0:
        y = lowbit.cast(x, lowbit.f32)
        if PE != 0:
            y = lowbit.cast(lowbit.cast(y * P2, A), lowbit.f32)
    else:
        lowbit.static_assert(not F.signed and F.exponent <= A.exponent and F.mantissa <= A.mantissa,
                             "sub-byte scale formats must be unsigned and fit the activation dtype's fields")
        h = lowbit.view(lowbit.cast(lowbit.cast(x, lowbit.int32) << (A.mantissa - F.mantissa), lowbit.uint16), A)
        D = A.bias - F.bias  # the decode's power of two, then the fold's: one multiply when 2**(D + PE) is an A
        if PE != 0 and D + PE >= 0 and D + PE <= A.bias:
            h = h * (1.0 * (1 << (D + PE)))
        else:
            h = h * (1.0 * (1 << D))
            if PE != 0:
                h = h * P2
        y = lowbit.cast(h, lowbit.f32)
    return y


@lowbit.kernel(num_warps=4, num_stages=3)
def wx_matmul(
    a_ptr: lowbit.ptr(A),
    w_ptr: lowbit.ptr("uint32"),
    s_ptr: lowbit.ptr(S if S.bits % 8 == 0 else lowbit.uint8),
    z_ptr: lowbit.ptr(S if ZERO == "float" else lowbit.uint32),
    ts_ptr: lowbit.ptr(lowbit.f32 if TENSOR_SCALE else A),
    bias_ptr: lowbit.ptr(A),
    c_ptr: lowbit.ptr(A),
    M: lowbit.int32,
    N: lowbit.int32,
    K: lowbit.int32,
    W: lowbit.constexpr = lowbit.uint4,
    GROUP: lowbit.constexpr = 128,
    ZERO: lowbit.constexpr = "int",
    S: lowbit.constexpr = lowbit.f16,
    A: lowbit.constexpr = lowbit.f16,
    ELEM_EXP: lowbit.constexpr = 0,
    FOLD: lowbit.constexpr = False,
    ACC_EXP: lowbit.constexpr = 0,
    TENSOR_SCALE: lowbit.constexpr = False,
    HAS_BIAS: lowbit.constexpr = False,
    LAYOUT: lowbit.constexpr = 1,
    BM: lowbit.constexpr = 16,
    BN: lowbit.constexpr = 32,
    BK: lowbit.constexpr = 32,
):
    lowbit.static_assert(LAYOUT == 1 or LAYOUT == 2 or LAYOUT == 3,
                         "wx_matmul reads layout versions 1 (lsb), 2 (planes) and 3 (kernel)")
    lowbit.static_assert(LAYOUT != 3 or BK % 128 == 0, "layout 3 (kernel order) needs K steps of 128-row chunks")
    lowbit.static_assert(A == lowbit.f16 or A == lowbit.bf16, "activations must be f16 or bf16")
    lowbit.static_assert(ZERO == "none" or ZERO == "int" or ZERO == "float", "ZERO is 'none', 'int' or 'float'")
    lowbit.static_assert(W.bits <= 8, "weight codes have at most 8 bits")
    lowbit.static_assert(not FOLD or (W.is_float and ZERO == "none"), "FOLD applies to float formats without zeros")
    lowbit.static_assert(ACC_EXP == 0 or FOLD, "ACC_EXP is part of FOLD")
    lowbit.static_assert(BK * W.bits % 32 == 0, "a K step must cover whole uint32 words of codes")
    lowbit.static_assert(GROUP == -1 or GROUP % BK == 0 or BK % GROUP == 0, "BK and GROUP must nest")
    m0 = lowbit.program_id(0) * BM
    n0 = lowbit.program_id(1) * BN
    groups = 1 if GROUP == -1 else lowbit.cdiv(K, GROUP)
    a = lowbit.global_view(a_ptr, (M, K))
    if LAYOUT == 1:
        w = lowbit.global_view(w_ptr, (lowbit.cdiv(K * W.bits, 32), N))
    elif LAYOUT == 3:  # 4 * bits rows of words per 128-row chunk of K (every plane together)
        w = lowbit.global_view(w_ptr, (lowbit.cdiv(K, 128) * 4 * W.bits, N))
    else:  # the planes (8 >> i bits for each bit of W.bits, widest first): plane i's view ends where it ends
        e8 = lowbit.cdiv(K * (W.bits & 8), 32)
        e4 = e8 + lowbit.cdiv(K * (W.bits & 4), 32)
        e2 = e4 + lowbit.cdiv(K * (W.bits & 2), 32)
        e1 = e2 + lowbit.cdiv(K * (W.bits & 1), 32)
        w8 = lowbit.global_view(w_ptr, (e8, N))
        w4 = lowbit.global_view(w_ptr, (e4, N))
        w2 = lowbit.global_view(w_ptr, (e2, N))
        w1 = lowbit.global_view(w_ptr, (e1, N))
    sv = lowbit.global_view(s_ptr, (groups, N))
    # integer zeros: W-bit fields, or one a byte in layout 3 for widths 3, 5, 6, 7 (:func:`zero_code` decodes them)
    ZB = ZERO == "int" and LAYOUT == 3 and W.bits & (W.bits - 1) != 0
    zv = lowbit.global_view(z_ptr, (groups, N), dtype=(lowbit.uint8 if ZB else W) if ZERO == "int" else None)
    acc = lowbit.zeros((BM, BN), lowbit.f32)
    for k in range(0, K, BK):
        ta = lowbit.load(a, (m0, k), (BM, BK))
        if LAYOUT == 1:
            words = lowbit.load(w, (k * W.bits // 32, n0), (BK * W.bits // 32, BN))
            v = lowbit.cast(lowbit.view(words, W, axis=0), lowbit.f32)  # [BK, BN] decoded codes, exact
        elif LAYOUT == 3 and W.bits & (W.bits - 1) == 0:  # one plane in kernel order: the codes are the format's own
            v = lowbit.cast(kernel_order_code(w, 0, k, n0, W, BK, BN), lowbit.f32)
        else:  # compose the code from its planes (the widest holds the low bits), then decode it as layout 1
            row = 0  # layout 3: the plane's first row of words
            shift = 0
            for i in lowbit.static_range(4):
                if W.bits & (8 >> i) != 0:
                    if LAYOUT == 3:  # each plane in kernel order
                        part = lowbit.cast(kernel_order_code(w, row, k, n0, _UINTS[(8 >> i) - 1], BK, BN), lowbit.int32)
                        row = row + lowbit.cdiv(K, 128) * 4 * (8 >> i)
                    elif i == 0:
                        part = plane_code(w8, 0, k, n0, 8, BK, BN)
                    elif i == 1:
                        part = plane_code(w4, e8, k, n0, 4, BK, BN)
                    elif i == 2:
                        part = plane_code(w2, e4, k, n0, 2, BK, BN)
                    else:
                        part = plane_code(w1, e2, k, n0, 1, BK, BN)
                    if shift == 0:
                        code = part
                    else:
                        code = code | (part << shift)
                    shift = shift + (8 >> i)
            v = lowbit.cast(lowbit.view(lowbit.cast(code, _UINTS[W.bits - 1]), W, axis=0), lowbit.f32)
        g = 0 if GROUP == -1 else k // GROUP
        EXP = ELEM_EXP
        PE = 0
        if FOLD:  # the scale takes 2**F once per group (A-rounded: exact when the packer said so), the codes 2**-F
            F = (15 if A == lowbit.f16 else 127) - W.bias
            PE = F - ACC_EXP
            EXP = ELEM_EXP - F
        if GROUP == -1 or GROUP >= BK:  # one group for the whole K step: [1, BN] broadcasts
            s = scale_to_f32(lowbit.load(sv, (g, n0), (1, BN)), S, A, PE)
            if ZERO != "none":
                z = lowbit.cast(zero_code(lowbit.load(zv, (g, n0), (1, BN)), W, ZB), lowbit.f32)
        else:  # BK // GROUP groups in this step: each row of scales repeats GROUP times along K
            ng = BK // GROUP
            # rows past G (layout 3's last K step reads past the padded K): a finite scale (f16/bf16/e8m0 1.0, ue4m3 code 0x38 = 1.0)
            s = scale_to_f32(lowbit.load(sv, (g, n0), (ng, BN), other=(1.0 if S.bits % 8 == 0 else 0x38)), S, A, PE)
            s = lowbit.reshape(lowbit.broadcast(lowbit.reshape(s, (ng, 1, BN)), (ng, GROUP, BN)), (BK, BN))
            if ZERO != "none":
                z = lowbit.cast(zero_code(lowbit.load(zv, (g, n0), (ng, BN)), W, ZB), lowbit.f32)
                z = lowbit.reshape(lowbit.broadcast(lowbit.reshape(z, (ng, 1, BN)), (ng, GROUP, BN)), (BK, BN))
        if EXP != 0:
            v = v * ((1 << EXP) if EXP > 0 else 1.0 / (1 << -EXP))  # a power of two: exact
        if ZERO == "int":
            wt = (v - z) * s
        elif ZERO == "float":
            wt = v * s - z
        else:
            wt = v * s
        acc = lowbit.dot(ta, lowbit.cast(wt, A), acc)
    if ACC_EXP != 0:  # the fold's rest: a power of two, exact on the f32 accumulator
        acc = acc * ((1 << ACC_EXP) if ACC_EXP > 0 else 1.0 / (1 << -ACC_EXP))
    if TENSOR_SCALE:
        acc = acc * lowbit.load(lowbit.global_view(ts_ptr, (1, 1)), (0, 0), (1, 1))
    if HAS_BIAS:
        acc = acc + lowbit.cast(lowbit.load(lowbit.global_view(bias_ptr, (1, N)), (0, n0), (1, BN)), lowbit.f32)
    lowbit.store(lowbit.global_view(c_ptr, (M, N)), lowbit.cast(acc, A), (m0, n0))


def tile_config(bits: int, group: int, m: int, layout: int = LAYOUT_LSB) -> tuple[int, int, int]:
    """``(BM, BN, BK)`` for ``bits``-wide codes in groups of ``group`` rows (-1: per channel) at M = ``m``.

    BK is the smallest K step that covers whole uint32 words (``BK*bits``
    a multiple of 32) and nests with the group (one divides the other), at
    least 32 rows; BM is 16 at decode sizes (M <= 16) and 32 above.  Layout
    3 (kernel order) steps by whole 128-row chunks and takes BN = 128, so
    that each warp holds 4 adjacent columns a thread (its words load as
    16-byte vectors).  Raises ``lowbit.errors.LaunchError`` when no K step up
    to 1024 rows fits.
    """
    word = 128 if layout == LAYOUT_KERNEL else 32 // math.gcd(bits, 32)  # rows per whole number of words
    bk = None
    for cand in range(word, 1025, word):
        if cand >= min(32, group if group > 0 else 32) and (group == -1 or group % cand == 0 or cand % group == 0):
            bk = cand
            break
    if bk is None:
        raise lowbit.errors.LaunchError(
            f"wx_matmul: no K step covers whole words of {bits}-bit codes and nests with group_size={group} "
            f"(it must divide or be divided by a multiple of {word} rows up to 1024)"
        )
    return (16 if m <= 16 else 32), (128 if layout == LAYOUT_KERNEL else 32), bk

