"""Binary floating-point formats of any split: f64 down to 1-bit exponents.

``FloatType(exponent, mantissa, bias=None, nan="none", signed=True)``
describes a code laid out, from the most significant bit, as
``[sign] exponent mantissa``.  With exponent field E and mantissa field M:

* ``E == 0`` (subnormal): ``M * 2**(1 - bias - mantissa)``;
* otherwise (normal): ``(1 + M / 2**mantissa) * 2**(E - bias)``;
* exponent-only formats (``mantissa == 0``, e.g. OCP E8M0) have no zero and
  no subnormals: every exponent field is the normal ``2**(E - bias)``.

``bias`` defaults to ``2**(exponent-1) - 1``.  ``nan`` says which codes are
not finite (the OCP MX spec v1.0 section 5.3 and IEEE 754 conventions):

==========  ==============================================================
``"none"``  every code is finite (OCP FP6/FP4; the default for a split)
``"fn"``    no infinities; the one magnitude with every exponent and
            mantissa bit set is NaN (e4m3fn: S.1111.111, ue4m3 0x7F, e8m0 0xFF)
``"ieee"``  IEEE 754: exponent all ones is inf (M == 0) or NaN (M != 0)
``"fnuz"``  no infinities, no negative zero; the code 1000...0 is NaN
            (ml_dtypes' float8_*fnuz, AMD MI300)
==========  ==============================================================

Encoding is exact: the float64 bit pattern of the input is split into an
integer significand and exponent, and the significand is shifted to the
target quantum with integer round-half-to-even, so the input is rounded
*once* (float32/float16 inputs widen to float64 exactly first).  Overflow is
decided on the rounded value with an unbounded exponent, as IEEE 754 does.
The policies (saturation, NaN, unsigned formats, e8m0 rounding modes) are in
``FloatType.encode`` and docs/formats.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowbit.dtypes.base import DType, _as_float64, _first_nan_error
from lowbit.errors import DTypeError

__all__ = ["FloatType", "NAN_CONVENTIONS", "E8M0_ROUNDINGS"]

NAN_CONVENTIONS = ("none", "fn", "ieee", "fnuz")
E8M0_ROUNDINGS = ("rz", "rp", "rn_up")

_U1 = np.uint64(1)
_F64_FRAC = np.uint64((1 << 52) - 1)
_F64_HIDDEN = np.uint64(1 << 52)
_F64_ABS = np.uint64((1 << 63) - 1)

# Canonical short names of built-in floats, keyed by (exponent, mantissa, bias, nan, signed).
_BUILTIN_NAMES: dict[tuple[int, int, int, str, bool], str] = {
    (11, 52, 1023, "ieee", True): "f64",
    (8, 23, 127, "ieee", True): "f32",
    (5, 10, 15, "ieee", True): "f16",
    (8, 7, 127, "ieee", True): "bf16",
    (4, 3, 7, "fn", True): "e4m3fn",
    (5, 2, 15, "ieee", True): "e5m2",
    (3, 2, 3, "none", True): "e3m2",
    (2, 3, 1, "none", True): "e2m3",
    (2, 1, 1, "none", True): "e2m1",
    (8, 0, 127, "fn", False): "e8m0",
    (4, 3, 7, "fn", False): "ue4m3",
}


@dataclass(frozen=True, repr=False)
class FloatType(DType):
    """A sign/exponent/mantissa float; see the module docstring for the layout."""

    exponent: int
    mantissa: int
    bias: int | None = None
    nan: str = "none"
    signed: bool = True

    is_float = True
    is_int = False

    def __post_init__(self) -> None:
        e, m = self.exponent, self.mantissa
        for field, value in (("exponent", e), ("mantissa", m)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise DTypeError(f"FloatType: {field} must be an int, got {value!r}")
        if not 1 <= e <= 11:
            raise DTypeError(f"FloatType: exponent width {e} is out of range 1..11")
        if not 0 <= m <= 52:
            raise DTypeError(f"FloatType: mantissa width {m} is out of range 0..52")
        if self.nan not in NAN_CONVENTIONS:
            raise DTypeError(f"FloatType: nan={self.nan!r} is not one of {NAN_CONVENTIONS}")
        object.__setattr__(self, "exponent", int(e))
        object.__setattr__(self, "mantissa", int(m))
        object.__setattr__(self, "signed", bool(self.signed))
        bias = (1 << (e - 1)) - 1 if self.bias is None else self.bias
        if not isinstance(bias, (int, np.integer)) or isinstance(bias, bool):
            raise DTypeError(f"FloatType: bias must be an int, got {bias!r}")
        object.__setattr__(self, "bias", int(bias))
        bits = self.bits
        where = f"FloatType({e}, {m}, bias={bias}, nan={self.nan!r}, signed={self.signed})"
        if bits < 2 or bits > 64:
            raise DTypeError(f"{where}: {bits} bits is out of range 2..64")
        if m == 0:
            if self.signed or self.nan != "fn":
                raise DTypeError(
                    f"{where}: an exponent-only format (mantissa 0) must be unsigned with "
                    "nan='fn', like OCP E8M0"
                )
        if self.nan == "ieee" and (e < 2 or m < 1):
            raise DTypeError(f"{where}: nan='ieee' needs >= 2 exponent and >= 1 mantissa bits")
        if self.nan == "fnuz" and not self.signed:
            raise DTypeError(f"{where}: nan='fnuz' puts NaN in the sign bit; it needs signed=True")
        lowest = self.emin - m
        if self.emax > 1023 or lowest < -1074 or (m == 0 and self.emin < -1022):
            raise DTypeError(
                f"{where}: values span 2**{lowest}..2**{self.emax + 1}, beyond float64; "
                "lowbit decodes to float64 exactly"
            )

    # -- identity ----------------------------------------------------------
    @property
    def bits(self) -> int:  # type: ignore[override]
        return int(self.signed) + self.exponent + self.mantissa

    @property
    def name(self) -> str:
        key = (self.exponent, self.mantissa, self.bias, self.nan, self.signed)
        if key in _BUILTIN_NAMES:
            return _BUILTIN_NAMES[key]
        text = f"{'' if self.signed else 'u'}f{self.bits}e{self.exponent}m{self.mantissa}"
        if self.bias != (1 << (self.exponent - 1)) - 1:
            text += f"b{self.bias}"
        return text + ("" if self.nan == "none" else self.nan)

    @property
    def is_signed(self) -> bool:
        return self.signed

    # -- structure -----------------------------------------------------------
    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal (``-bias`` for exponent-only formats)."""
        return -self.bias if self.mantissa == 0 else 1 - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite value."""
        top = (1 << self.exponent) - 1  # largest exponent field
        if self.nan == "ieee" or (self.nan == "fn" and self.mantissa == 0):
            top -= 1
        return top - self.bias

    @property
    def has_inf(self) -> bool:
        return self.nan == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.nan != "none"

    @property
    def _mag_bits(self) -> int:
        return self.exponent + self.mantissa

    @property
    def max_code(self) -> int:
        """Code of the largest finite value (positive sign)."""
        full = (1 << self._mag_bits) - 1
        if self.nan == "fn":
            return full - 1
        if self.nan == "ieee":
            return ((1 << self.exponent) - 1 << self.mantissa) - 1
        return full

    @property
    def nan_code(self) -> int | None:
        """The canonical (positive, quiet) NaN code, or None when there is no NaN."""
        if self.nan == "fn":
            return (1 << self._mag_bits) - 1
        if self.nan == "ieee":
            return ((1 << self.exponent) - 1 << self.mantissa) | (1 << (self.mantissa - 1))
        if self.nan == "fnuz":
            return 1 << (self.bits - 1)
        return None

    @property
    def inf_code(self) -> int | None:
        """Code of +inf (IEEE formats only)."""
        return ((1 << self.exponent) - 1 << self.mantissa) if self.nan == "ieee" else None

    # -- range -------------------------------------------------------------
    @property
    def max(self) -> float:
        return float(self.decode(np.uint64(self.max_code)))

    @property
    def min(self) -> float:
        if self.signed:
            return -self.max
        return float(2.0**self.emin) if self.mantissa == 0 else 0.0

    @property
    def smallest_normal(self) -> float:
        return float(2.0**self.emin)

    @property
    def smallest_subnormal(self) -> float | None:
        return float(2.0 ** (self.emin - self.mantissa)) if self.mantissa else None

    # -- decode --------------------------------------------------------------
    def decode(self, codes: object) -> np.ndarray:
        c = self._check_codes(codes)
        e, m = self.exponent, self.mantissa
        mag = c & np.uint64((1 << (e + m)) - 1)
        big_e = (mag >> np.uint64(m)).astype(np.int64)
        if m == 0:
            val = np.ldexp(1.0, big_e - self.bias)
        else:
            frac = (mag & np.uint64((1 << m) - 1)).astype(np.float64)
            normal = np.ldexp(frac + 2.0**m, np.maximum(big_e, 1) - self.bias - m)
            val = np.where(big_e == 0, np.ldexp(frac, self.emin - m), normal)
        if self.signed:
            val = np.where((c >> np.uint64(e + m)) != 0, -val, val)
        if self.nan == "ieee":
            top = big_e == (1 << e) - 1
            val = np.where(top, np.copysign(np.where(frac == 0, np.inf, np.nan), val), val)
        elif self.nan == "fn":
            val = np.where(mag == np.uint64((1 << (e + m)) - 1), np.copysign(np.nan, val), val)
        elif self.nan == "fnuz":
            val = np.where(c == np.uint64(1 << (self.bits - 1)), -np.nan, val)
        return np.asarray(val, dtype=np.float64)

    # -- encode --------------------------------------------------------------
    def encode(self, x: object, saturate: bool = False, rounding: str | None = None) -> np.ndarray:
        """Codes of ``x``: exact value rounded once to nearest, ties to even.

        * ``saturate=False``: IEEE-like overflow (inf for ``nan='ieee'``, the
          NaN code for ``'fn'``/``'fnuz'``); ``saturate=True`` clamps finite
          overflow and +-inf to +-max (PTX ``cvt...satfinite``, OCP MX).
          Formats without NaN/inf (``nan='none'``) always saturate.
        * NaN input gives the NaN code (sign kept for ``'fn'``/``'ieee'``);
          formats without NaN raise :class:`DTypeError` naming the first NaN.
        * The sign of zero is kept (``'fnuz'`` has no -0: it gives +0).
        * Unsigned formats: a negative input that rounds to zero gives +0;
          any other negative input is out of range: 0 with ``saturate=True``
          or ``nan='none'``, else the NaN code.
        * ``rounding``: exponent-only formats (e8m0) only, see ``_encode_exp_only``.
        """
        where = f"{self.name}.encode"
        xf = np.asarray(_as_float64(x, where), order="C")
        if self.mantissa == 0:
            return self._encode_exp_only(xf, saturate, rounding)
        self._check_rounding_none(rounding)
        e, m = self.exponent, self.mantissa
        u = xf.view(np.uint64)
        neg = (u >> np.uint64(63)) != 0
        mag = u & _F64_ABS
        e64 = (mag >> np.uint64(52)).astype(np.int64)
        frac = mag & _F64_FRAC
        is_nan = (e64 == 2047) & (frac != 0)
        is_inf = (e64 == 2047) & (frac == 0)
        if not self.has_nan and is_nan.any():
            raise _first_nan_error(xf, where, self.name)  # type: ignore[misc]
        # |x| = sig * 2**(ex - 52), exactly.
        sig = np.where(e64 > 0, frac | _F64_HIDDEN, frac)
        ex = np.where(e64 > 0, e64 - 1023, -1022)
        # Target quantum 2**(te - m); te is the binade of x, or emin below it.
        te = np.maximum(ex, self.emin)
        shift = np.minimum(te - m - ex + 52, 63).astype(np.uint64)
        n = _shift_round_half_even(sig, shift)
        te = np.minimum(te, self.emax + 2)  # anything that large overflows anyway
        # Carry-safe layout: a rounded significand of 2**(m+1) bumps the exponent field.
        magcode = ((te - self.emin).astype(np.uint64) << np.uint64(m)) + n
        overflow = (magcode > np.uint64(self.max_code)) & ~is_nan
        overflow |= is_inf
        if saturate or self.nan == "none":
            over_code = self.max_code
        elif self.nan == "ieee":
            over_code = self.inf_code
        else:
            over_code = self.nan_code
        magcode = np.where(overflow, np.uint64(over_code), magcode)
        return self._apply_sign(magcode, neg, is_nan, saturate)

    def _apply_sign(
        self, magcode: np.ndarray, neg: np.ndarray, is_nan: np.ndarray, saturate: bool
    ) -> np.ndarray:
        """Combine magnitude codes with signs, NaNs and the unsigned/fnuz rules."""
        sign_bit = np.uint64(1 << (self.exponent + self.mantissa))
        if self.signed:
            if self.nan == "fnuz":
                code = np.where(neg & (magcode != 0), magcode | sign_bit, magcode)
                code = np.where(magcode == np.uint64(self.nan_code), magcode, code)
                code = np.where(is_nan, np.uint64(self.nan_code), code)
            else:
                code = np.where(neg, magcode | sign_bit, magcode)
                if self.nan_code is not None:
                    nan_code = np.where(neg, np.uint64(self.nan_code) | sign_bit, np.uint64(self.nan_code))
                    code = np.where(is_nan, nan_code, code)
        else:
            below = neg & (magcode != 0) & ~is_nan
            low = 0 if (saturate or self.nan == "none") else self.nan_code
            code = np.where(below, np.uint64(low), np.where(neg & ~is_nan, np.uint64(0), magcode))
            if self.nan_code is not None:
                code = np.where(is_nan, np.uint64(self.nan_code), code)
        return np.asarray(code).astype(self.code_dtype)

    def _encode_exp_only(self, xf: np.ndarray, saturate: bool, rounding: str | None) -> np.ndarray:
        """Exponent-only (E8M0-like) encoding: a power of two per value.

        ``rounding``: ``"rz"`` (default; the OCP MX spec's floor(log2) and PTX
        ``cvt.rz...ue8m0x2``), ``"rp"`` (PTX ``cvt.rp``, round up) or
        ``"rn_up"`` (nearest, ties -- 1.5 * 2**k -- upward, as ml_dtypes).
        Zero, negative values, +-inf and NaN give the NaN code (no zero or
        sign exists; an inf scale is as invalid as a NaN one); values below the
        smallest (2**-bias) give code 0; overflow gives the NaN code, or the
        largest code with ``saturate=True``.
        """
        mode = "rz" if rounding is None else rounding
        if mode not in E8M0_ROUNDINGS:
            raise DTypeError(
                f"{self.name}.encode: rounding={rounding!r}; expected one of {E8M0_ROUNDINGS}"
            )
        u = xf.view(np.uint64)
        neg = (u >> np.uint64(63)) != 0
        mag = u & _F64_ABS
        e64 = (mag >> np.uint64(52)).astype(np.int64)
        frac = mag & _F64_FRAC
        k = e64 - 1023  # floor(log2 x) for normal x; float64 subnormals fall below range
        if mode == "rp":
            k = k + (frac != 0)
        elif mode == "rn_up":
            k = k + (frac >= np.uint64(1 << 51))
        code = k + self.bias
        max_code, nan_code = self.max_code, self.nan_code
        code = np.where(code < 0, 0, code)
        code = np.where(code > max_code, max_code if saturate else nan_code, code)
        invalid = neg | (mag == 0) | (e64 == 2047)
        code = np.where(invalid, nan_code, code)
        return np.asarray(code).astype(self.code_dtype)


def _shift_round_half_even(sig: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``sig / 2**shift`` rounded to nearest, ties to even (uint64, shift <= 63)."""
    q = sig >> shift
    rem = sig & ((_U1 << shift) - _U1)
    half = _U1 << (np.maximum(shift, _U1) - _U1)
    up = (rem > half) | ((rem == half) & ((q & _U1) == _U1) & (shift > 0))
    return q + up.astype(np.uint64)
