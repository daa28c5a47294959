"""Integer formats: two's-complement/unsigned ``IntType`` and ``BipolarType``.

``IntType(bits, signed)`` covers int1..int64 and uint1..uint64 (any width
1..64).  Signed codes are two's complement, so int1 is {-1, 0} and the int4
value -1 is code 15.  Encoding rounds half to even (numpy ``rint``) and then
clips to the range -- the behaviour of PTX ``cvt.rni.sat`` and of GPTQ/AWQ
quantizers, and deliberately *not* ml_dtypes' truncate-and-wrap casts
(``int4(8) == -8`` there; 7 here).  NaN raises.  Integer inputs are clipped
exactly without a detour through float64.

``BipolarType(bits)``: bit i of the code, b_i, stands for (2 b_i - 1) * 2**i,
so the values are the odd integers -(2**n - 1) .. 2**n - 1 -- the operand
format of the arbitrary-precision tensor-core work (APT-LLM, arXiv
2409.17870 / 2508.19087), where a bipolar GEMM becomes AND/XOR-popcount
GEMMs.  Code c has value 2c - (2**n - 1); encoding picks the nearest odd
integer, an even integer input (a tie) goes to the even code, and the result
is clipped to the range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lowbit.dtypes.base import DType, _as_real_array, _first_nan_error
from lowbit.errors import DTypeError

__all__ = ["IntType", "BipolarType"]


def _check_width(owner: str, bits: object, lo: int, hi: int) -> int:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool):
        raise DTypeError(f"{owner}: bits must be an int, got {bits!r}")
    if not lo <= bits <= hi:
        raise DTypeError(f"{owner}: bit width {bits} is out of range {lo}..{hi}")
    return int(bits)


@dataclass(frozen=True, repr=False)
class IntType(DType):
    """A ``bits``-wide two's-complement (signed) or unsigned integer."""

    bits: int
    signed: bool = True

    is_float = False
    is_int = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", _check_width("IntType", self.bits, 1, 64))
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def name(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"

    @property
    def is_signed(self) -> bool:
        return self.signed

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def decode_int(self, codes: object) -> np.ndarray:
        """Exact integer values of ``codes`` (int64, or uint64 for uint64)."""
        c = self._check_codes(codes)
        if not self.signed:
            return c if self.bits == 64 else c.astype(np.int64)
        if self.bits == 64:
            return c.view(np.int64)
        top = np.uint64(1 << (self.bits - 1))
        return np.where(c >= top, c.astype(np.int64) - (1 << self.bits), c.astype(np.int64))

    def decode(self, codes: object) -> np.ndarray:
        """Values as float64 (exact up to 2**53; use ``decode_int`` for wide ints)."""
        return self.decode_int(codes).astype(np.float64)

    def encode(self, x: object, saturate: bool = False, rounding: str | None = None) -> np.ndarray:
        """Round half to even, clip to [min, max], return two's-complement codes.

        Integer formats always saturate; ``saturate`` is accepted for a
        uniform signature.  NaN raises :class:`DTypeError` naming its index.
        """
        where = f"{self.name}.encode"
        self._check_rounding_none(rounding)
        arr = _as_real_array(x, where)
        lo, hi = self.min, self.max
        if arr.dtype.kind == "f":
            err = _first_nan_error(arr, where, self.name)
            if err is not None:
                raise err
            r = np.rint(arr)
            # Compare in float64 against exact powers of two, then convert only in-range values.
            below, above = r <= float(lo), r >= float(hi)
            inside = np.where(below | above, 0.0, r)
            if self.signed:
                v = inside.astype(np.int64)
                v = np.where(below, np.int64(lo), np.where(above, np.int64(hi), v))
                return self._twos(v)
            v = inside.astype(np.uint64)
            return np.where(below, np.uint64(lo), np.where(above, np.uint64(hi), v)).astype(
                self.code_dtype
            )
        if arr.dtype.kind == "u":
            v = np.minimum(arr, np.uint64(hi))
            return (v.view(np.int64) if self.signed else v).astype(np.uint64).astype(self.code_dtype)
        # int64 input
        if self.signed:
            return self._twos(np.clip(arr, lo, hi))
        v = np.where(arr < 0, 0, arr).astype(np.uint64)
        return np.minimum(v, np.uint64(hi)).astype(self.code_dtype)

    def _twos(self, v: np.ndarray) -> np.ndarray:
        """Two's-complement code of in-range int64 values."""
        mask = np.uint64((1 << self.bits) - 1) if self.bits < 64 else np.uint64(2**64 - 1)
        return (np.asarray(v, dtype=np.int64).view(np.uint64) & mask).astype(self.code_dtype)


@dataclass(frozen=True, repr=False)
class BipolarType(DType):
    """Bits b_i mean sum (2 b_i - 1) 2**i: the odd integers in [-(2**n-1), 2**n-1]."""

    bits: int

    is_float = False
    is_int = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", _check_width("BipolarType", self.bits, 1, 32))

    @property
    def name(self) -> str:
        return f"bipolar{self.bits}"

    @property
    def is_signed(self) -> bool:
        return True

    @property
    def min(self) -> int:
        return -((1 << self.bits) - 1)

    @property
    def max(self) -> int:
        return (1 << self.bits) - 1

    def decode(self, codes: object) -> np.ndarray:
        c = self._check_codes(codes).astype(np.int64)
        return (2 * c - ((1 << self.bits) - 1)).astype(np.float64)

    def encode(self, x: object, saturate: bool = False, rounding: str | None = None) -> np.ndarray:
        """Nearest odd integer (an even-integer tie goes to the even code), clipped.

        NaN raises :class:`DTypeError`; the format always saturates.
        """
        where = f"{self.name}.encode"
        self._check_rounding_none(rounding)
        arr = _as_real_array(x, where)
        top = float(1 << self.bits)
        if arr.dtype.kind in "iu":
            arr = np.clip(arr, -(1 << self.bits), 1 << self.bits).astype(np.float64)
        else:
            err = _first_nan_error(arr, where, self.name)
            if err is not None:
                raise err
            arr = np.clip(arr, -top, top)  # exact; outside this every value clips anyway
        f = np.floor(arr)
        odd = np.mod(f, 2.0) == 1.0
        # x in [f, f+1) with f odd: f is nearest.  f even: f+1 is nearest unless x == f,
        # a tie between f-1 and f+1, resolved to the even code.
        nearest = np.where(odd, f, f + 1.0)
        offset = float((1 << self.bits) - 1)
        code = (nearest + offset) / 2.0  # exact: small integers
        tie = ~odd & (arr == f)
        code = np.where(tie & (np.mod(code, 2.0) == 1.0), code - 1.0, code)
        code = np.clip(code, 0.0, offset)
        return code.astype(np.int64).astype(self.code_dtype)
