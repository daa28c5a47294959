"""Whether a weight's scales can take its float codes' exponent-bias correction (``wx_matmul``'s ``FOLD``).

The packed dequantisation of a float format ``eXmY`` reads each code as the
f16/bf16 whose fields are the code's fields: that is the code's value times
``2**-F`` (``F`` = the target's exponent bias minus the format's).  Folding
``2**F`` into the scale -- once per group, rounded to the activation dtype --
saves one multiply per weight pair, and gives exactly the unfolded result
when every folded scale is a finite value of that dtype.  That is a fact
about the scale *values*, so it is checked here on the host, once per
weight and activation dtype, not assumed by the kernel.

The same goes for the codes: an "fn" format such as e4m3fn spends its
all-ones code on NaN, which the packed field move turns into a finite
number, so its lowering spends two instructions per pair on a carry test
that puts the NaN back.  Weights that hold no NaN code (quantize_weight
never writes one) are read as the format's *finite twin* -- the same
fields and bias, no NaN -- which gives every code present the same value
and lowers without the fix-up (:func:`finite_twin`, :func:`codes_finite`).

Both are decided once per weight (:func:`weight_facts`, for every activation
dtype the kernel takes) and carried by the weight as :class:`DequantFacts`
(:meth:`lowbit.ops.QuantizedWeight.facts`), so no launch scans values.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import lowbit

__all__ = [
    "ACTIVATIONS", "NO_FACTS", "DequantFacts", "block_fold", "codebook_in", "codes_finite", "finite_twin",
    "fold_exponent", "fold_ok", "host_facts", "read_finite", "weight_facts",
]  # fmt: skip

#: the activation dtypes wx_matmul takes (the facts depend on them)
ACTIVATIONS = ("f16", "bf16")


class DequantFacts(NamedTuple):
    """What the host checked on one weight's values for one activation dtype (``plan(..., fold, finite)``).

    ``fold``: every folded scale ``scale * 2**F`` is exactly a finite (for e8m0: normal) value of the
    activation dtype, so ``wx_matmul`` may run with ``FOLD`` (:func:`fold_ok`; zero="none" only).
    ``finite``: the format has a cheaper NaN-free twin for this activation dtype and no code of the
    weight is a NaN or infinity code, so its codes may be read through the twin (:func:`read_finite`).
    ``(False, False)`` is always correct: the kernel then checks nothing and computes the same values.
    """

    fold: bool = False
    finite: bool = False


#: the facts that need no check (an f32 activation, a weight not checked)
NO_FACTS = DequantFacts(False, False)



def fold_exponent(wtype: object, act: str) -> int | None:
    """``F`` for a float element format and activation dtype ``act``; None when folding does not apply."""
    elem = wtype.element if isinstance(wtype, lowbit.ScaledType) else wtype
    if not getattr(elem, "is_float", False) or getattr(elem, "table", None) is not None or elem.bits > 8:
        return None
    bias = getattr(elem, "bias", None)
    if bias is None:
        return None
    return (15 if act == "f16" else 127) - int(bias)


def fold_ok(wtype: object, scales: np.ndarray, scale_dtype: object, act: str) -> bool:
    """Whether every ``scale * 2**F`` is exactly a finite ``act`` value (``scales`` as stored, numpy).

    For e8m0 scales (MX) the folded values must also be normal ``act`` values: wx_matmul then builds
    them from the exponent alone, in integers.
    """
    import ml_dtypes  # noqa: PLC0415

    f = fold_exponent(wtype, act)
    if f is None:
        return False
    sdt = lowbit.dtype(scale_dtype) if isinstance(scale_dtype, str) else scale_dtype
    raw = np.asarray(scales)
    if sdt.name in ("f16", "bf16", "f32"):
        v = raw.astype(np.float64)
    else:  # block-scale codes (e8m0, ue4m3) stored one per byte
        v = np.asarray(sdt.decode(raw.astype(np.uint64)), dtype=np.float64)
    folded = v * 2.0**f
    np_dt = np.float16 if act == "f16" else ml_dtypes.bfloat16
    with np.errstate(all="ignore"):
        back = folded.astype(np_dt).astype(np.float64)
    ok = bool(np.all(np.isfinite(folded)) and np.array_equal(back, folded))
    if ok and sdt.name == "e8m0":  # wx_matmul builds these as A bits from the exponent alone: normal values only
        ok = bool(np.all(folded >= (2.0**-14 if act == "f16" else 2.0**-126)))
    return ok


def finite_twin(elem: object, act: str) -> object | None:
    """The NaN-free twin of a float element format when reading codes through it lowers cheaper; else None.

    The twin has the same exponent, mantissa, bias and sign and no NaN or
    infinity codes; it decodes every finite code of ``elem`` to the same
    value (checked on the whole table).  Only for formats whose special
    codes the packed field move cannot keep: an exponent narrower than the
    target's (an all-ones exponent is then an ordinary target exponent:
    e4m3fn's NaN into f16 or bf16, e5m2's infinities and NaNs into bf16),
    with fields that fit the target's.  e5m2 into f16 keeps its specials
    (f16's top byte) and gets no twin.
    """
    if not isinstance(elem, lowbit.FloatType) or elem.bits > 8 or elem.nan == "none":
        return None
    te, tm = (5, 10) if act == "f16" else (8, 7)
    if elem.exponent >= te or elem.mantissa > tm:
        return None
    twin = lowbit.FloatType(elem.exponent, elem.mantissa, elem.bias, nan="none", signed=elem.signed)
    codes = np.arange(1 << elem.bits, dtype=np.uint64)
    a = np.asarray(elem.decode(codes), dtype=np.float64)
    b = np.asarray(twin.decode(codes), dtype=np.float64)
    finite = np.isfinite(a)
    if not np.array_equal(a[finite], b[finite]) or not np.array_equal(np.signbit(a[finite]), np.signbit(b[finite])):
        return None
    return twin


def codes_finite(qweight: np.ndarray, elem: object, k: int, layout: int) -> bool:
    """Whether no code of the packed weight is a NaN or infinity code of ``elem`` (numpy words, on the host)."""
    from lowbit.ops.layouts import unpack_codes  # noqa: PLC0415

    codes = np.arange(1 << elem.bits, dtype=np.uint64)
    bad = np.flatnonzero(~np.isfinite(np.asarray(elem.decode(codes), dtype=np.float64)))
    if bad.size == 0:
        return True
    words = np.ascontiguousarray(qweight)
    if elem.bits == 8 and layout == 1:  # whole bytes: no unpacking (a row's padding bytes past K are zeros)
        present = words.view(np.uint8)
    else:
        present = unpack_codes(words, elem.bits, k, layout)
    return not bool(np.isin(present, bad.astype(present.dtype)).any())


def read_finite(qw: object, act: str) -> bool:
    """Whether ``wx_matmul`` may read this (numpy) weight's codes through the NaN-free twin (plan(finite=)).

    Scans the codes only for formats that have a cheaper twin (e4m3fn into f16 or bf16).
    """
    wtype = qw.wtype
    elem = wtype.element if isinstance(wtype, lowbit.ScaledType) else wtype
    if finite_twin(elem, act) is None:
        return False
    return codes_finite(qw.qweight, elem, qw.shape[0], qw.layout)


def codebook_in(elem: object, act: str) -> object | None:
    """A codebook with its values rounded to ``act`` (round to nearest even), when some value is not an ``act`` value.

    ``wx_matmul`` reads a codebook's codes through this table: its values are
    then ``act`` values, the product with an ``act`` scale is exact in f32
    and rounded once to ``act``, so the dequantisation lowers to one shared
    table read of an f16x2/bf16x2 pair and one packed multiply, with no f32
    in the main loop (what FLUTE-style kernels do, holding the table in
    half precision).  The cost is one extra rounding of each table value
    (at most half an ulp of ``act`` each: nf4's 16 values are 3 exact and 13
    rounded in f16).  None for non-codebooks and for tables already exact.
    """
    if not isinstance(elem, lowbit.CodebookType):
        return None
    values = np.asarray(elem.table, dtype=np.float64)
    rounded = np.asarray(lowbit.dtype(act).decode(lowbit.dtype(act).encode(values)), dtype=np.float64)
    if np.array_equal(rounded, values):
        return None
    return lowbit.CodebookType(tuple(float(v) for v in rounded))


def block_fold(wtype: object, act: str) -> int | None:
    """For a block-scaled float format whose scale format is narrower than a byte (NVFP4's ue4m3): the part
    ``ACC_EXP`` of the fold exponent ``F`` that goes to the f32 accumulator, the rest ``F - ACC_EXP`` going
    to the scales; None when no split is exact for *every* element and scale code (so no host check).

    ``F`` itself rarely fits the scales (448 * 2**14 is no f16), but the product needs only ``2**-ACC_EXP``
    of headroom: ``wx_matmul`` then computes ``round_A(v * s * 2**-ACC_EXP)``, which is
    ``round_A(v * s) * 2**-ACC_EXP`` exactly when both are exact or neither leaves A's normal range, and multiplies the
    f32 accumulator by ``2**ACC_EXP`` (exact) -- the unfolded result, one multiply fewer per weight pair.
    """
    import ml_dtypes  # noqa: PLC0415

    if not isinstance(wtype, lowbit.ScaledType):
        return None
    elem, sfmt = wtype.element, wtype.scale
    f = fold_exponent(wtype, act)
    if f is None or sfmt.bits % 8 == 0:
        return None
    np_dt = np.float16 if act == "f16" else ml_dtypes.bfloat16
    tiny = 2.0**-14 if act == "f16" else 2.0**-126
    with np.errstate(all="ignore"):
        sv = np.asarray(sfmt.decode(np.arange(1 << sfmt.bits, dtype=np.uint64)), np.float64)
        ev = np.asarray(elem.decode(np.arange(1 << elem.bits, dtype=np.uint64)), np.float64)
        sv, ev = sv[np.isfinite(sv)], ev[np.isfinite(ev)] * 2.0**wtype.element_exp
        prod = np.abs(np.multiply.outer(ev, sv)).ravel()
        prod = prod[prod != 0]

        def exact(x: np.ndarray) -> bool:
            back = x.astype(np_dt).astype(np.float64)
            return bool(np.all(np.isfinite(back)) and np.array_equal(back, x))

        for acc in range(0, f + 1):  # the least headroom that works
            pe = f - acc
            if not exact(sv * 2.0**pe):
                continue
            w = prod * 2.0**-acc
            if exact(prod) and exact(w):  # no rounding at all: the scaled product is the product, scaled
                return acc
            normal = bool(np.all(prod * 2.0**-acc >= tiny)) and bool(np.all(np.isfinite(prod.astype(np_dt))))
            if normal:  # rounding inside A's normal range is scale-invariant
                return acc
    return None


def host_facts(qw: object, act: str) -> DequantFacts:
    """``(fold, finite)`` for :func:`lowbit.ops._launch.plan`: what the host checks on a (numpy) weight's values.

    This scans the values; launches use the weight's own record instead (:meth:`QuantizedWeight.facts
    <lowbit.ops.QuantizedWeight.facts>`), which :func:`weight_facts` fills once.
    """
    fold = qw.zero == "none" and fold_ok(qw.wtype, qw.scales, qw.scale_format, act)
    return DequantFacts(bool(fold), bool(read_finite(qw, act)))


def weight_facts(qw: object) -> dict[str, DequantFacts]:
    """:func:`host_facts` for every activation dtype of ``wx_matmul`` (a numpy weight; its codes scanned at most once)."""
    elem = qw.wtype.element if isinstance(qw.wtype, lowbit.ScaledType) else qw.wtype
    finite = None  # codes_finite, computed only if some activation dtype has a twin
    out = {}
    for act in ACTIVATIONS:
        fold = qw.zero == "none" and fold_ok(qw.wtype, qw.scales, qw.scale_format, act)
        twin = False
        if finite_twin(elem, act) is not None:
            if finite is None:
                finite = codes_finite(qw.qweight, elem, qw.shape[0], qw.layout)
            twin = finite
        out[act] = DequantFacts(bool(fold), bool(twin))
    return out
