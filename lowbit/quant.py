"""Group-wise weight quantization in numpy: the host side of every W_q GEMM.

A weight is laid out **(K, N)** = in_features x out_features, the orientation
of ``C = A @ W`` (torch's ``Linear.weight`` is the transpose: pass
``weight.T``).  Groups run along K (axis 0): rows ``[g*G, (g+1)*G)`` of one
column share a scale (and zero point), so ``scales`` has shape
``(ceil(K/G), N)``; the last group is shorter when ``K % G != 0``.
``group_size=-1`` means one group per output channel (G = K).

Rules, per group of values ``w`` (all computed in float64, the scale then
rounded *up* once to ``scale_dtype`` -- f16, bf16 or f32 -- and the codes
computed from that *stored* scale, so ``dequantize`` reproduces what was
rounded; rounding the scale up keeps every value inside the code range):

* **symmetric, signed integer** (int2..int8): ``s = amax / qmax`` with
  ``qmax = 2**(b-1) - 1``; ``q = clip(rne(w / s), -qmax - 1, qmax)``;
  ``w ~ q * s``.  Error ``|w - q*s| <= s/2`` for every element.
* **asymmetric, integer zeros** (``zero="int"``, GPTQ/AWQ):
  the range ``[lo, hi]`` of the integer type (uint4: 0..15), ``wmin =
  min(w, 0)``, ``wmax = max(w, 0)`` (0 stays exactly representable),
  ``s = (wmax - wmin) / (hi - lo)``, ``z = clip(rne(lo - wmin / s), lo, hi)``,
  ``q = clip(rne(w / s) + z, lo, hi)``; ``w ~ (q - z) * s``.  ``zeros`` holds
  ``z`` as a *code* of the dtype (pack it like the codes).
  Error ``|w - (q - z)*s| <= s/2``.
* **asymmetric, float zeros** (``zero="float"``): same ``s``,
  ``z = lo*s - wmin`` rounded to nearest in ``scale_dtype``,
  ``q = clip(rne((w + z) / s), lo, hi)``; ``w ~ q*s - z``.  Error at most
  ``s/2 + u*|z|`` (``u`` the unit roundoff of ``scale_dtype``: only the two
  end codes can feel z's rounding).
* **float and codebook element types** (e2m1, e4m3fn, e3m2, nf4...),
  symmetric only: ``s = amax / max|format|``; each code is the format's
  value nearest to ``w / s``, ties to the even code (saturating, which the
  rounded-up scale makes unnecessary).
* **block-scaled types** (mxfp4, mxfp8, nvfp4...): delegated to
  :meth:`lowbit.dtypes.scaled.ScaledType.quantize` along axis 0 with the
  format's own block (32 or 16); ``scales`` then holds the uint8 scale codes
  and ``tensor_scale`` NVFP4's float32 scale.

``rne`` -- round half to even -- is applied to the *exact* quotient, not to a
float64 quotient that was already rounded (see
:mod:`lowbit.dtypes.scaled_round`).  An all-zero group gets ``s = 1`` (finite,
nonzero) and dequantizes to exact zeros; a nonzero group whose scale would
underflow the scale type gets its smallest positive value, one that would
overflow it (f16 above 65504) raises.  NaN or inf anywhere in ``w`` raises
:class:`~lowbit.errors.QuantizeError` naming the first bad ``(k, n)``.

``QuantizedTensor.group_types`` is reserved for per-group format tags
(BitMoD, HPCA'25, picks a small float variant per group of 128): a
``(ceil(K/G), N)`` uint8 array indexing a tuple of formats.  It is always
``None`` today; kernels that honour it come later.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from lowbit.dtypes import DType, IntType, dtype as _dtype
from lowbit.dtypes.scaled import ScaledType
from lowbit.dtypes.scaled_round import round_half_even_div, round_to_grid, two_sum
from lowbit.errors import LowbitError, QuantizeError

__all__ = ["QuantizedTensor", "SCALE_DTYPES", "dequantize", "quantize"]

#: Storage types of group scales (and float zeros): lowbit name -> numpy dtype.
SCALE_DTYPES: dict[str, np.dtype] = {
    "f16": np.dtype(np.float16),
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "f32": np.dtype(np.float32),
}
_SCALE_ALIASES = {"float16": "f16", "half": "f16", "bfloat16": "bf16", "float32": "f32", "float": "f32"}


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """A quantized (K, N) weight.  Arrays are read-only; compare fields explicitly.

    * ``codes`` -- (K, N) unsigned codes of ``dtype`` (``dtype.code_dtype``);
      ready for :func:`lowbit.pack` along K.
    * ``scales`` -- (G, N) group scales in ``scale_dtype`` (numpy float16,
      ml_dtypes bfloat16 or float32); for block-scaled types the uint8 scale
      codes (e8m0 / ue4m3), with G = ceil(K / block).
    * ``zeros`` -- None when symmetric; (G, N) integer zero *codes* of
      ``dtype`` for ``zero="int"``; (G, N) ``scale_dtype`` floats for
      ``zero="float"``.
    * ``group_size`` -- the group length along K as requested (-1: per channel).
    * ``tensor_scale`` -- NVFP4's per-tensor float32 scale, else None.
    * ``group_types`` -- reserved for per-group format tags; None.
    """

    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None
    dtype: DType | ScaledType
    group_size: int
    shape: tuple[int, int]
    zero: str | None = None
    tensor_scale: np.float32 | None = None
    group_types: np.ndarray | None = None

    @property
    def symmetric(self) -> bool:
        return self.zeros is None

    @property
    def group_length(self) -> int:
        """Rows of K per group (K for per-channel, the block for block-scaled types)."""
        if isinstance(self.dtype, ScaledType):
            return self.dtype.block
        return self.shape[0] if self.group_size == -1 else self.group_size

    @property
    def num_groups(self) -> int:
        return int(self.scales.shape[0])

    def dequantize(self, out_dtype: object = np.float64) -> np.ndarray:
        """Shorthand for :func:`dequantize`."""
        return dequantize(self, out_dtype)


def quantize(
    w: object,
    dtype: object,
    group_size: int | None = None,
    symmetric: bool = True,
    zero: str = "int",
    scale_dtype: str = "f16",
) -> QuantizedTensor:
    """Quantize a (K, N) weight group-wise along K; see the module docstring for the rules.

    ``dtype`` is a format name or object (``"int4"``, ``"uint4"``, ``"e2m1"``,
    ``"nf4"``, ``"mxfp4"``...).  ``group_size`` is a positive group length
    along K or -1 (per output channel); None means 128, or the block of a
    block-scaled type (which admits no other).  ``zero`` ("int" or "float")
    matters only when ``symmetric=False``.  ``w`` is never modified.
    """
    fmt = dtype if isinstance(dtype, ScaledType) else _resolve(dtype)
    arr = _check_weight(w)
    k, n = arr.shape
    if isinstance(fmt, ScaledType):
        return _quantize_scaled(arr, fmt, group_size, symmetric)
    if group_size is None:
        group_size = 128
    if not isinstance(group_size, (int, np.integer)) or isinstance(group_size, bool) or (
        group_size != -1 and group_size < 1
    ):
        raise QuantizeError(f"quantize: group_size must be a positive integer or -1, got {group_size!r}")
    glen = k if group_size == -1 else int(group_size)
    store = _scale_storage(scale_dtype)
    if zero not in ("int", "float"):
        raise QuantizeError(f"quantize: zero must be 'int' or 'float', got {zero!r}")
    if fmt.bits > 8:
        raise QuantizeError(
            f"quantize: {fmt.name} has {fmt.bits} bits; group quantization targets formats of <= 8 bits"
        )
    groups, _ = _to_groups(arr, glen)  # (G, glen, N), zero padded
    if isinstance(fmt, IntType):
        codes, scales, zeros = _quantize_int(groups, fmt, symmetric, zero, store)
    else:
        if not symmetric:
            raise QuantizeError(f"quantize: {fmt.name} is not an integer format; only symmetric=True is supported")
        codes, scales = _quantize_float(groups, fmt, store)
        zeros = None
    codes = codes.reshape(-1, n)[:k]
    return QuantizedTensor(
        codes=_frozen(codes.astype(fmt.code_dtype)),
        scales=_frozen(scales),
        zeros=None if zeros is None else _frozen(zeros),
        dtype=fmt,
        group_size=int(group_size),
        shape=(k, n),
        zero=None if symmetric else zero,
    )


def dequantize(q: QuantizedTensor, out_dtype: object = np.float64) -> np.ndarray:
    """Values of a :class:`QuantizedTensor` as a (K, N) array (float64 by default, or float32).

    In float64 the integer and block-scaled results are exact; float zeros
    (``q*s - z``) are rounded once.
    """
    if not isinstance(q, QuantizedTensor):
        raise QuantizeError(f"dequantize: expected a QuantizedTensor, got {type(q).__name__}")
    if q.group_types is not None:
        # Reserved for per-group format tags (BitMoD); decoding them is not built yet, and
        # ignoring them would silently decode every group with q.dtype.
        raise QuantizeError(
            "dequantize: per-group format tags (group_types) are reserved and not supported yet; "
            "pass a QuantizedTensor with group_types=None"
        )
    out = np.dtype(out_dtype)
    if out not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise QuantizeError(f"dequantize: out_dtype must be float64 or float32, got {out}")
    fmt = q.dtype
    k, _ = q.shape
    if isinstance(fmt, ScaledType):
        extra = (q.tensor_scale,) if fmt.has_tensor_scale else ()
        return fmt.dequantize(q.codes, q.scales, *extra, axis=0).astype(out)
    s = _expand(q.scales.astype(np.float64), q.group_length, k)
    if isinstance(fmt, IntType):
        v = fmt.decode(q.codes)
        if q.zero == "int":
            res = (v - _expand(fmt.decode(q.zeros), q.group_length, k)) * s
        elif q.zero == "float":
            res = v * s - _expand(q.zeros.astype(np.float64), q.group_length, k)
        else:
            res = v * s
    else:
        res = fmt.decode(q.codes) * s
    return res.astype(out)


# -- per-format rules ---------------------------------------------------------------


def _quantize_int(groups: np.ndarray, fmt: IntType, symmetric: bool, zero: str, store: np.dtype):
    lo, hi = float(fmt.min), float(fmt.max)
    if symmetric:
        if not fmt.signed:
            raise QuantizeError(
                f"quantize: symmetric quantization needs a signed type, got {fmt.name}; "
                f"use int{fmt.bits}, or symmetric=False for {fmt.name} with a zero point"
            )
        qmax = hi
        if qmax < 1:
            raise QuantizeError(
                f"quantize: {fmt.name} has no positive value; symmetric quantization needs int2 or wider"
            )
        amax = np.abs(groups).max(axis=1)
        scales = _store_scale(amax / qmax, amax > 0, store)
        s = scales.astype(np.float64)[:, None, :]
        q = np.clip(round_half_even_div(groups, s), lo, hi)
        return fmt.encode(q), scales, None
    wmin = np.minimum(groups.min(axis=1), 0.0)
    wmax = np.maximum(groups.max(axis=1), 0.0)
    scales = _store_scale((wmax - wmin) / (hi - lo), wmax > wmin, store)
    s64 = scales.astype(np.float64)
    if zero == "int":
        num_hi, num_lo = two_sum(lo * s64, -wmin)  # lo*s - wmin exactly (lo*s is exact)
        z = np.clip(round_half_even_div(num_hi, s64, num_lo), lo, hi)  # rne(lo - wmin/s)
        q = np.clip(round_half_even_div(groups, s64[:, None, :]) + z[:, None, :], lo, hi)
        return fmt.encode(q), scales, fmt.encode(z)
    zf = _store_scale(lo * s64 - wmin, None, store, round_up=False)
    hi_part, lo_part = two_sum(groups, zf.astype(np.float64)[:, None, :])  # w + z, exactly
    q = np.clip(round_half_even_div(hi_part, s64[:, None, :], lo_part), lo, hi)
    return fmt.encode(q), scales, zf


def _quantize_float(groups: np.ndarray, fmt: DType, store: np.dtype):
    vals = fmt.values()
    fmax = float(np.abs(vals[np.isfinite(vals)]).max())
    if not fmt.is_signed or fmax == 0:
        raise QuantizeError(f"quantize: {fmt.name} has no negative values; group quantization needs a signed format")
    amax = np.abs(groups).max(axis=1)
    scales = _store_scale(amax / fmax, amax > 0, store)
    codes = round_to_grid(groups, scales.astype(np.float64)[:, None, :], fmt)
    return codes, scales


def _quantize_scaled(arr: np.ndarray, fmt: ScaledType, group_size: object, symmetric: bool) -> QuantizedTensor:
    if group_size not in (None, fmt.block):
        raise QuantizeError(
            f"quantize: {fmt.name} has a fixed block of {fmt.block} along K; got group_size={group_size!r}"
        )
    if not symmetric:
        raise QuantizeError(f"quantize: {fmt.name} is symmetric by definition; symmetric=False is not supported")
    out = fmt.quantize(arr, axis=0)
    return QuantizedTensor(
        codes=_frozen(out[0]),
        scales=_frozen(out[1]),
        zeros=None,
        dtype=fmt,
        group_size=fmt.block,
        shape=arr.shape,
        tensor_scale=out[2] if fmt.has_tensor_scale else None,
    )


# -- helpers --------------------------------------------------------------------------


def _resolve(x: object) -> DType:
    try:
        return _dtype(x)
    except LowbitError as exc:  # DTypeError: re-raise as the quantizer's error, same message
        raise QuantizeError(f"quantize: {exc}") from exc


def _check_weight(w: object) -> np.ndarray:
    arr = np.asarray(w)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiuV" or (arr.dtype.kind == "f" and arr.itemsize > 8):
        raise QuantizeError(f"quantize: w must be a real float or integer array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise QuantizeError(
            f"quantize: w must be 2-D (K, N) = (in_features, out_features) with K >= 1, got shape {arr.shape}"
        )
    try:
        arr = arr.astype(np.float64)  # a copy; bfloat16 / float8 widen exactly
    except (TypeError, ValueError) as exc:
        raise QuantizeError(f"quantize: cannot convert dtype {np.asarray(w).dtype} to float64 ({exc})") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        k, n = (int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
        raise QuantizeError(f"quantize: w[{k}, {n}] = {arr[k, n]} is not finite; quantization needs finite weights")
    return arr


def _scale_storage(scale_dtype: object) -> np.dtype:
    if isinstance(scale_dtype, str):
        key = _SCALE_ALIASES.get(scale_dtype.lower(), scale_dtype.lower())
        if key in SCALE_DTYPES:
            return SCALE_DTYPES[key]
    else:
        try:
            dt = np.dtype(scale_dtype)
        except TypeError:
            dt = None
        if dt in SCALE_DTYPES.values():
            return dt
    raise QuantizeError(f"quantize: scale_dtype must be one of {sorted(SCALE_DTYPES)}, got {scale_dtype!r}")


def _store_scale(x: np.ndarray, nonzero: np.ndarray | None, store: np.dtype, round_up: bool = True) -> np.ndarray:
    """Round ``x`` (float64) once to ``store``; ``nonzero`` groups get a positive, finite scale.

    Scales round *up* (to the next ``store`` value at or above ``x``), so a
    group's extreme value never lands outside the code range and the
    ``s/2`` error bound holds; where ``nonzero`` is False the scale is 1.0.
    ``nonzero=None, round_up=False`` stores a value to nearest as is (float
    zero points, which may be 0 or negative).
    """
    name = {np.dtype(np.float16): "f16", np.dtype(ml_dtypes.bfloat16): "bf16", np.dtype(np.float32): "f32"}[store]
    fmt = _dtype(name)
    if nonzero is not None:
        x = np.where(nonzero, x, 1.0)
    codes = fmt.encode(x, saturate=False)  # one rounding from float64 (ml_dtypes' bf16 cast rounds twice)
    if round_up:  # x >= 0 here: the next code up is the next larger value (or inf)
        codes = np.where(fmt.decode(codes) < x, codes + 1, codes).astype(codes.dtype)
    stored = codes.view(store)
    values = stored.astype(np.float64)
    over = ~np.isfinite(values)
    if over.any():
        g, col = (int(i) for i in np.unravel_index(int(np.argmax(over)), over.shape))
        raise QuantizeError(
            f"quantize: the scale of group {g}, column {col} ({float(x[g, col]):.6g}) overflows {name}; "
            "use scale_dtype='f32'"
        )
    if nonzero is not None:  # amax/qmax can underflow float64 itself (amax ~ 1e-323): still s > 0
        tiny = fmt.decode(np.array([1], dtype=fmt.code_dtype))[0]  # smallest positive subnormal
        stored = np.where(values == 0, np.asarray(tiny).astype(store), stored).astype(store)
    return stored


def _to_groups(arr: np.ndarray, glen: int) -> tuple[np.ndarray, int]:
    k, n = arr.shape
    g = max(1, -(-k // glen))
    padded = np.zeros((g * glen, n), dtype=np.float64)
    padded[:k] = arr
    return padded.reshape(g, glen, n), g


def _expand(per_group: np.ndarray, glen: int, k: int) -> np.ndarray:
    return np.repeat(per_group, glen, axis=0)[:k]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a
