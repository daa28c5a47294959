"""Block-scaled composite formats: MXFP8/6/4, MXINT8 (OCP MX v1.0) and NVFP4.

A block-scaled tensor is a tensor of small *element* codes plus one *scale*
code per block of ``block`` consecutive elements along one axis; the value of
element ``i`` of block ``b`` is ``decode_elem(P_i) * 2**element_exp * X_b``
(times a per-tensor float32 scale for NVFP4).

Formats (OCP Microscaling Formats (MX) Specification v1.0, Sept 2023, §5
"Microscaling (MX) formats", Table 1 of concrete MX-compliant formats):

=============  =========  ======  =====  ======================================
name           element    scale   block  notes
=============  =========  ======  =====  ======================================
mxfp8_e4m3     e4m3fn     e8m0    32     alias ``mxfp8``
mxfp8_e5m2     e5m2       e8m0    32
mxfp6_e3m2     e3m2       e8m0    32
mxfp6_e2m3     e2m3       e8m0    32
mxfp4          e2m1       e8m0    32
mxint8         int8       e8m0    32     element value = code * 2**-6 (§5.3.4)
nvfp4          e2m1       ue4m3   16     plus a per-tensor float32 scale
=============  =========  ======  =====  ======================================

**MX conversion** (spec §6.3, "Conversion from vector of scalar elements to
MX format"), for each block ``V_1..V_k``::

    shared_exp = floor(log2(max_i |V_i|)) - emax_elem
    X          = 2**shared_exp               (scale code = shared_exp + 127, §5.4.1 E8M0)
    P_i        = quantize_to_element_format(V_i / X)

with ``emax_elem`` the exponent of the element's largest normal (8 e4m3fn,
15 e5m2, 4 e3m2, 2 e2m3, 2 e2m1, 0 int8 x 2**-6).  Because of the floor,
``V_i / X`` can exceed the element's max; normals then **saturate** to ±max
(as the spec says).  ``V_i / X`` is exact in float64 (a power-of-two scale),
so each element is rounded once, by the element format's own ``encode``:
**round to nearest, ties to even**.  The MX reference library
(microsoft/microxcaling) rounds ties *away from zero* by default; lowbit
follows IEEE/PTX ``cvt.rn`` instead (tests show the two differ on ties).
MXINT8 elements round half to even and clip to the int8 range
``[-128, 127]``, so ``-2.0`` (code 0x80) is reachable; microxcaling clamps
symmetrically to ±127/64.

lowbit's policies where the spec leaves room (all tested):

* **Tail block.** When the axis length ``n`` is not a multiple of the block,
  the last block is shorter (``n % block`` elements) and gets its own scale
  from its own elements -- the same result as padding with zeros, which is
  what the reference does.  ``scales.shape[axis] == ceil(n / block)``.
* **All-zero block** (``max|V| == 0``): ``floor(log2 0) = -inf`` clamps to
  the smallest scale ``2**-127``: scale code **0x00**, elements encode
  (signed) zero.  (microxcaling substitutes FP32_MIN_NORMAL for 0, which
  gives 0x00 for the float elements and 0x01 for int8.)
* **Scale range.** ``shared_exp`` is clamped to [-127, 127] (codes
  0x00..0xFE); above 127 (float64 inputs beyond ~2**(127+emax_elem)) the
  elements saturate.  microxcaling returns a NaN scale there instead.
* **NaN / ±inf** anywhere in a block: scale code **0xFF** (E8M0 NaN) and
  element codes 0; such a block dequantizes to NaN, as spec §5.4.1 says of a
  NaN scale.

**NVFP4** (NVIDIA's 4-bit format: e2m1 elements, one ue4m3 scale per 16,
one float32 scale per tensor; the two-level recipe of NVIDIA's
TensorRT-Model-Optimizer and the Blackwell ``mma ... block_scale`` docs):

* ``tensor_scale = float32(amax / (6 * 448))`` with ``amax`` taken over the
  whole tensor's blocks that hold no NaN/inf (1.0 when amax is 0; clamped
  into float32's positive range);
* per block, ``scale_code = ue4m3.encode(block_amax / (6 * tensor_scale),
  saturate=True)`` (one float64 division, then round to nearest even);
* ``P_i`` = the e2m1 code nearest to ``V_i / (decode(scale_code) *
  tensor_scale)``, ties to even, saturating at ±6, rounded once from the
  exact quotient (:func:`lowbit.dtypes.scaled_round.round_to_grid`).  A block
  whose scale rounds to 0 (its amax is below 2**-10 * 6 * tensor_scale)
  stores zero elements; an all-zero block has scale code 0x00; a NaN/inf
  block has scale code 0x7F (ue4m3 NaN) and dequantizes to NaN.

``dequantize`` returns **float64**: every product ``element * scale *
tensor_scale`` is exact in float64, so the result is the exact value of the
codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowbit.dtypes.scaled_round import round_to_grid
from lowbit.errors import QuantizeError

__all__ = ["SCALED_TYPES", "ScaledType"]

_E8M0_BIAS = 127
_E8M0_NAN = 0xFF


def _lookup(name: str):  # -> DType
    # Imported lazily: lowbit.dtypes' registry imports this module to resolve
    # "mxfp4" & co., so a module-level import would be circular.
    from lowbit.dtypes import dtype

    return dtype(name)


@dataclass(frozen=True)
class ScaledType:
    """A block-scaled format: ``element`` codes sharing one ``scale`` code per ``block``.

    Fields are names (so the value is trivially hashable and picklable);
    ``element`` and ``scale`` resolve them to DTypes.  ``element_exp`` is an
    implicit power of two applied to every element (MXINT8: -6).
    ``has_tensor_scale`` adds NVFP4's per-tensor float32 scale.
    """

    name: str
    element_name: str
    scale_name: str
    block: int
    element_exp: int = 0
    has_tensor_scale: bool = False

    def __post_init__(self) -> None:
        for field in ("name", "element_name", "scale_name"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field):
                raise QuantizeError(f"ScaledType.{field} must be a non-empty string, got {getattr(self, field)!r}")
        if not isinstance(self.block, int) or isinstance(self.block, bool) or self.block < 1:
            raise QuantizeError(f"ScaledType {self.name}: block must be a positive integer, got {self.block!r}")

    # -- description --------------------------------------------------------
    @property
    def element(self):  # -> DType
        """The element format (e.g. e2m1)."""
        return _lookup(self.element_name)

    @property
    def scale(self):  # -> DType
        """The scale format (e8m0 for MX, ue4m3 for NVFP4)."""
        return _lookup(self.scale_name)

    @property
    def bits(self) -> int:
        """Bits per element code (the scale is stored separately)."""
        return int(self.element.bits)

    @property
    def code_dtype(self) -> np.dtype:
        """numpy dtype of the element codes."""
        return self.element.code_dtype

    @property
    def bits_per_element(self) -> float:
        """Storage cost per element including the block scale, stored one byte each (mxfp4: 4.25)."""
        return self.bits + 8 * self.scale.code_dtype.itemsize / self.block

    @property
    def is_mx(self) -> bool:
        """True for the OCP MX family (power-of-two E8M0 scale, §6.3 conversion)."""
        return self.scale_name == "e8m0"

    @property
    def emax_elem(self) -> int:
        """Exponent of the element's largest normal value, including ``element_exp``."""
        _, e = np.frexp(float(self.element.max))
        return int(e) - 1 + self.element_exp

    # -- range (what a block can hold; NVFP4: per unit tensor scale) ------------
    @property
    def max(self) -> float:
        """Largest finite value a block can hold: ``element.max * 2**element_exp * scale.max``.

        MX: ``elem_max * 2**127`` (mxfp4: 6 * 2**127).  NVFP4: ``6 * 448 =
        2688`` per unit tensor scale (the float32 tensor scale multiplies it).
        Exact in float64 (a product of powers of two and short significands).
        """
        return float(self.element.max) * 2.0**self.element_exp * float(self.scale.max)

    @property
    def min(self) -> float:
        """Most negative finite value: ``element.min * 2**element_exp * scale.max``.

        ``-max`` for the float elements; MXINT8 reaches ``-128/64 * 2**127 = -2**128``
        (its int8 elements include -128).
        """
        return float(self.element.min) * 2.0**self.element_exp * float(self.scale.max)

    @property
    def smallest_subnormal(self) -> float | None:
        """Smallest positive value: the element's smallest subnormal times the smallest positive scale.

        MX floats: ``element.smallest_subnormal * 2**-127`` (mxfp4: 2**-128);
        NVFP4: ``0.5 * 2**-9 = 2**-10`` per unit tensor scale; None for
        MXINT8, whose integer elements have no subnormals (its smallest
        positive value is ``2**-6 * 2**-127``).
        """
        sub = self.element.smallest_subnormal
        if sub is None:
            return None
        tiny_scale = self.scale.smallest_subnormal or float(self.scale.min)  # e8m0: 2**-127 (code 0)
        return float(sub) * 2.0**self.element_exp * float(tiny_scale)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"dtype({self.name!r})"

    # -- quantize -------------------------------------------------------------
    def quantize(self, x: object, axis: int = -1) -> tuple:
        """Quantize ``x`` in blocks along ``axis``.

        Returns ``(codes, scales)`` -- or ``(codes, scales, tensor_scale)``
        when ``has_tensor_scale`` (NVFP4) -- where ``codes`` has ``x``'s shape
        (``code_dtype``), ``scales`` has ``x``'s shape with ``axis`` of length
        ``ceil(n / block)`` (uint8 scale codes) and ``tensor_scale`` is a
        ``numpy.float32``.  ``x`` (any real array, widened to float64
        exactly) is not modified.
        """
        xf = _as_float64(x, f"{self.name}.quantize")
        ax = _axis(axis, xf.ndim, f"{self.name}.quantize")
        blocks, n = _to_blocks(xf, ax, self.block)
        finite = np.isfinite(blocks).all(axis=-1)
        clean = np.where(finite[..., None], blocks, 0.0)
        amax = np.abs(clean).max(axis=-1, initial=0.0)
        if self.is_mx:
            scales, codes = self._quantize_mx(clean, amax, finite)
            tensor_scale = None
        else:
            tensor_scale = self._tensor_scale(amax) if self.has_tensor_scale else np.float32(1.0)
            scales, codes = self._quantize_float_scale(clean, amax, finite, float(tensor_scale))
        codes = _from_blocks(codes, n, ax)
        scales = np.ascontiguousarray(np.moveaxis(scales, -1, ax))
        if self.has_tensor_scale:
            return codes, scales, tensor_scale
        return codes, scales

    def _quantize_mx(self, clean: np.ndarray, amax: np.ndarray, finite: np.ndarray):
        _, e = np.frexp(amax)  # amax = m * 2**e, m in [0.5, 1): floor(log2 amax) = e - 1
        shared = np.where(amax > 0, e.astype(np.int64) - 1 - self.emax_elem, -_E8M0_BIAS)
        shared = np.clip(shared, -_E8M0_BIAS, _E8M0_BIAS)
        scales = (shared + _E8M0_BIAS).astype(np.uint8)
        scales[~finite] = _E8M0_NAN
        # V / X (and the int8 element's 2**6) is a power-of-two scaling: exact in float64.
        scaled = np.ldexp(clean, (-shared - self.element_exp)[..., None])
        codes = self.element.encode(scaled, saturate=True)
        return scales, codes

    def _tensor_scale(self, amax: np.ndarray) -> np.float32:
        tensor_amax = float(amax.max(initial=0.0))
        if tensor_amax == 0.0:
            return np.float32(1.0)
        f32 = np.finfo(np.float32)
        ts = tensor_amax / (self._elem_max() * float(self.scale.max))
        ts = min(max(ts, float(f32.smallest_subnormal)), float(f32.max))
        return np.float32(ts)

    def _elem_max(self) -> float:
        return float(self.element.max) * 2.0**self.element_exp

    def _quantize_float_scale(self, clean: np.ndarray, amax: np.ndarray, finite: np.ndarray, ts: float):
        scale = self.scale
        target = amax / (self._elem_max() * ts)
        scales = scale.encode(target, saturate=True).astype(np.uint8)
        eff = scale.decode(scales) * ts  # exact: ue4m3 (4 significant bits) x float32
        usable = eff > 0
        grid_scale = np.where(usable, eff, 1.0)[..., None] * 2.0**self.element_exp
        codes = round_to_grid(clean, grid_scale, self.element)
        zero_codes = self.element.encode(clean * 0.0, saturate=True)  # signed zeros
        codes = np.where(usable[..., None], codes, zero_codes).astype(self.code_dtype)
        scales[~finite] = scale.encode(np.array([np.nan]), saturate=False)[0]
        return scales, codes

    # -- dequantize -------------------------------------------------------------
    def dequantize(
        self, codes: object, scales: object, tensor_scale: object = None, axis: int = -1
    ) -> np.ndarray:
        """float64 values of block-quantized data (exact); NaN where a block's scale is NaN.

        ``tensor_scale`` is required for NVFP4 and refused otherwise.
        """
        where = f"{self.name}.dequantize"
        c = _as_int(codes, "codes", where)
        s = _as_int(scales, "scales", where)
        ax = _axis(axis, c.ndim, where)
        n = c.shape[ax]
        nb = -(-n // self.block)
        expected = c.shape[:ax] + (nb,) + c.shape[ax + 1 :]
        if s.shape != expected:
            raise QuantizeError(
                f"{where}: scales have shape {s.shape}, expected {expected} for codes of shape "
                f"{c.shape} in blocks of {self.block} along axis {ax}"
            )
        if self.has_tensor_scale:
            if tensor_scale is None:
                raise QuantizeError(f"{where}: {self.name} needs the tensor_scale returned by quantize")
            ts = float(np.float32(tensor_scale))
        else:
            if tensor_scale is not None:
                raise QuantizeError(f"{where}: {self.name} has no tensor scale, got tensor_scale={tensor_scale!r}")
            ts = 1.0
        values = self.element.decode(c) * 2.0**self.element_exp
        block_scale = np.repeat(self.scale.decode(s), self.block, axis=ax)
        block_scale = np.take(block_scale, np.arange(n), axis=ax)
        return values * block_scale * ts


# -- helpers ----------------------------------------------------------------------------


def _as_float64(x: object, where: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiuV" or (arr.dtype.kind == "f" and arr.itemsize > 8):
        raise QuantizeError(f"{where}: expected a real float or integer array, got dtype {arr.dtype}")
    try:
        out = arr.astype(np.float64)  # a copy: the caller's array is never touched
    except (TypeError, ValueError) as exc:
        raise QuantizeError(f"{where}: cannot convert dtype {arr.dtype} to float64 ({exc})") from None
    if out.ndim == 0:
        raise QuantizeError(f"{where}: expected an array with at least one dimension")
    return out


def _as_int(x: object, what: str, where: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iu":
        raise QuantizeError(f"{where}: {what} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise QuantizeError(f"{where}: {what} must have at least one dimension")
    return arr


def _axis(axis: object, ndim: int, where: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -ndim <= axis < ndim:
        raise QuantizeError(f"{where}: axis {axis!r} is out of range for an array with {ndim} dimension(s)")
    return int(axis) % ndim


def _to_blocks(x: np.ndarray, ax: int, block: int) -> tuple[np.ndarray, int]:
    """``x`` with ``ax`` moved last and split into zero-padded blocks: shape (..., nb, block)."""
    moved = np.moveaxis(x, ax, -1)
    n = moved.shape[-1]
    nb = -(-n // block)
    padded = np.zeros(moved.shape[:-1] + (nb * block,), dtype=np.float64)
    padded[..., :n] = moved
    return padded.reshape(moved.shape[:-1] + (nb, block)), n


def _from_blocks(blocks: np.ndarray, n: int, ax: int) -> np.ndarray:
    flat = blocks.reshape(blocks.shape[:-2] + (-1,))[..., :n]
    return np.ascontiguousarray(np.moveaxis(flat, -1, ax))


SCALED_TYPES: dict[str, ScaledType] = {
    t.name: t
    for t in (
        ScaledType("mxfp8_e4m3", "e4m3fn", "e8m0", 32),
        ScaledType("mxfp8_e5m2", "e5m2", "e8m0", 32),
        ScaledType("mxfp6_e3m2", "e3m2", "e8m0", 32),
        ScaledType("mxfp6_e2m3", "e2m3", "e8m0", 32),
        ScaledType("mxfp4", "e2m1", "e8m0", 32),
        ScaledType("mxint8", "int8", "e8m0", 32, element_exp=-6),
        ScaledType("nvfp4", "e2m1", "ue4m3", 16, has_tensor_scale=True),
    )
}
SCALED_TYPES["mxfp8"] = SCALED_TYPES["mxfp8_e4m3"]
"""Every block-scaled format by name; ``mxfp8`` is an alias of ``mxfp8_e4m3``."""
