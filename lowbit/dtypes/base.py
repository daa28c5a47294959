"""The abstract :class:`DType` and the input checks every scalar format shares.

A lowbit dtype is an immutable *value* (a frozen dataclass, hashable, compared
by value, picklable) describing how an unsigned bit pattern -- a *code* --
maps to a real number.  Codes always travel as unsigned integers: the int4
value -1 is code ``0b1111 == 15``; the e2m1 value -0.5 is code ``0b1001``.
Packing codes into words is a separate step (``lowbit.pack``).

Every format answers ``decode(codes) -> float64`` and
``encode(x, saturate=False, rounding=None) -> codes``.  The checks here turn
user input into numpy arrays once, so that each format's codec only deals
with well-typed arrays, and every refusal is a :class:`~lowbit.errors.DTypeError`
naming the argument, the format and (for bad elements) the first bad index.
"""

from __future__ import annotations

import abc

import numpy as np

from lowbit.errors import DTypeError

__all__ = ["DType"]


def _code_dtype_for(bits: int) -> np.dtype:
    """The narrowest unsigned numpy dtype that holds a ``bits``-wide code."""
    for width, dt in ((8, np.uint8), (16, np.uint16), (32, np.uint32), (64, np.uint64)):
        if bits <= width:
            return np.dtype(dt)
    raise DTypeError(f"a code of {bits} bits does not fit in 64 bits")


class DType(abc.ABC):
    """A scalar number format: ``bits``-wide codes and their real values.

    Subclasses are frozen dataclasses; equality and hashing come from their
    fields, so two separately built types with the same fields are the same
    type (``FloatType(2, 1) == lowbit.dtypes.e2m1``).
    """

    bits: int

    # -- identity ---------------------------------------------------------
    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Canonical name; ``lowbit.dtypes.dtype(t.name) == t``."""

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"dtype({self.name!r})"

    # -- classification ---------------------------------------------------
    is_float: bool = False
    is_int: bool = False

    @property
    @abc.abstractmethod
    def is_signed(self) -> bool:
        """True when the format has negative values."""

    @property
    def code_dtype(self) -> np.dtype:
        """Unsigned numpy dtype that holds one code (uint8 for <= 8 bits)."""
        return _code_dtype_for(self.bits)

    # -- range ------------------------------------------------------------
    @property
    @abc.abstractmethod
    def min(self) -> float | int:
        """Most negative finite value (0 or the smallest value for unsigned formats)."""

    @property
    @abc.abstractmethod
    def max(self) -> float | int:
        """Largest finite value."""

    @property
    def smallest_subnormal(self) -> float | None:
        """Smallest positive subnormal (floats with subnormals); None otherwise."""
        return None

    # -- codec ------------------------------------------------------------
    @abc.abstractmethod
    def decode(self, codes: object) -> np.ndarray:
        """Real values (float64) of the unsigned codes ``codes``."""

    @abc.abstractmethod
    def encode(self, x: object, saturate: bool = False, rounding: str | None = None) -> np.ndarray:
        """Codes (``code_dtype``) of the values ``x``, rounded per the format's rule."""

    def values(self) -> np.ndarray:
        """``decode`` of every code, indexed by code (formats of <= 8 bits only)."""
        if self.bits > 8:
            raise DTypeError(
                f"{self.name}.values(): only formats of at most 8 bits enumerate their "
                f"values ({self.name} has {self.bits} bits)"
            )
        return self.decode(np.arange(1 << self.bits, dtype=self.code_dtype))

    # -- shared argument checks ---------------------------------------------
    def _check_codes(self, codes: object) -> np.ndarray:
        """``codes`` as an unsigned integer array, every element in ``[0, 2**bits)``."""
        arr = np.asarray(codes)
        if arr.dtype.kind not in "iu":
            raise DTypeError(
                f"{self.name}.decode: codes must be an integer array, got dtype {arr.dtype}"
            )
        if arr.dtype.kind == "i":
            neg = arr < 0
            if neg.any():
                idx = _first_index(neg)
                raise DTypeError(
                    f"{self.name}.decode: code {arr[idx]} at index {idx} is negative; "
                    f"codes are unsigned bit patterns in [0, 2**{self.bits})"
                )
            arr = arr.astype(np.uint64)
        else:
            arr = arr.astype(np.uint64, copy=False)
        if self.bits < 64:
            big = arr >= np.uint64(1 << self.bits)
            if big.any():
                idx = _first_index(big)
                raise DTypeError(
                    f"{self.name}.decode: code {arr[idx]} at index {idx} does not fit in "
                    f"{self.bits} bits"
                )
        return arr

    def _check_rounding_none(self, rounding: str | None) -> None:
        if rounding not in (None, "rn"):
            raise DTypeError(
                f"{self.name}.encode: rounding={rounding!r} is not supported; this format "
                "always rounds to nearest, ties to even (only exponent-only formats such "
                "as e8m0 take rounding='rz'|'rp'|'rn_up')"
            )


def _first_index(mask: np.ndarray) -> tuple[int, ...] | int:
    """Index (an int for 1-D or 0-D arrays, else a tuple) of the first True in ``mask``."""
    flat = int(np.flatnonzero(mask)[0])
    if mask.ndim <= 1:
        return flat
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _as_real_array(x: object, where: str) -> np.ndarray:
    """``x`` as an exact float64 array, or an integer array when it holds integers.

    Accepts Python numbers and (nested) lists, and numpy float16/32/64 or
    integer arrays.  Floats widen to float64 exactly; integer arrays are
    returned as int64/uint64 so integer formats can clip them without going
    through float64.  Booleans, complex, strings, objects and extended
    precision floats are refused because no exact float64 view of them exists.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{where}: cannot convert input to an array ({exc})") from None
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype.itemsize > 8:
            raise DTypeError(
                f"{where}: input dtype {arr.dtype} is wider than float64; convert it "
                "to float64 first (lowbit rounds exact float64 values)"
            )
        with np.errstate(invalid="ignore"):  # float32 signalling NaNs widen quietly
            return arr.astype(np.float64, copy=False)
    if kind == "V" or arr.dtype.name.startswith(("float8", "float6", "float4", "bfloat16")):
        # ml_dtypes' extension types (bfloat16, float8_*): every value is exact in float64.
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if kind == "i":
        return arr.astype(np.int64, copy=False)
    if kind == "u":
        return arr.astype(np.uint64, copy=False)
    raise DTypeError(
        f"{where}: input dtype {arr.dtype} is not a real number type "
        "(expected Python floats/ints or a numpy float16/32/64 or integer array)"
    )


def _as_float64(x: object, where: str) -> np.ndarray:
    """Like :func:`_as_real_array` but always float64; integers must convert exactly."""
    arr = _as_real_array(x, where)
    if arr.dtype.kind in "iu":
        out = arr.astype(np.float64)
        if arr.size and arr.dtype.itemsize == 8:
            # float64 holds integers exactly only up to 2**53.
            back_ok = np.abs(out) < 2.0**63
            inexact = np.zeros(arr.shape, dtype=bool)
            inexact[back_ok] = out[back_ok].astype(arr.dtype) != arr[back_ok]
            inexact |= ~back_ok
            if inexact.any():
                idx = _first_index(inexact)
                raise DTypeError(
                    f"{where}: integer {arr[idx]} at index {idx} is not exactly a float64; "
                    "round it first (lowbit rounds exact values once)"
                )
        return out
    return arr


def _first_nan_error(x: np.ndarray, where: str, fmt: str) -> DTypeError | None:
    """A DTypeError naming the first NaN in ``x``, or None when there is none."""
    nan = np.isnan(x)
    if not nan.any():
        return None
    idx = _first_index(nan)
    return DTypeError(
        f"{where}: NaN at index {idx}; {fmt} has no NaN encoding (check the input "
        "for NaN before encoding)"
    )
