"""How the interpreter holds VM values in numpy, and the element-wise semantics on them.

Storage of a register tile (and a shared buffer) by dtype:

* integers made by ``IntType`` (int1..int64, uint1..uint64): their *values*,
  in int64 (uint64 for uint64); every op wraps the result into the dtype;
* f16 / bf16 / f32 / f64: numpy float16 / ml_dtypes.bfloat16 / float32 /
  float64, so numpy's IEEE arithmetic is the arithmetic;
* ``bool``: numpy bool;
* every other format (fp8/fp6/fp4, e8m0, codebooks, bipolar ints): its
  unsigned *codes* (they take no arithmetic, only moves, casts and views).

These are the vectorised forms of the scalar laws in
:mod:`lowbit.ir.semantics`; ``tests/interp`` checks them against each other.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from lowbit.dtypes import DType, IntType
from lowbit.errors import DTypeError, LowbitError
from lowbit.ir.types import is_arith, is_bool

__all__ = [
    "InterpError",
    "binary",
    "cast",
    "from_codes",
    "from_scalar",
    "storage_dtype",
    "to_codes",
    "unary",
    "view_bits",
    "wrap",
]

_FLOATS = {"f16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16), "f32": np.dtype(np.float32), "f64": np.dtype(np.float64)}
_FLOAT_BITS = {"f16": np.uint16, "bf16": np.uint16, "f32": np.uint32, "f64": np.uint64}


class InterpError(LowbitError, RuntimeError):
    """The interpreter met something the VM leaves undefined (out-of-bounds access, division by zero...)."""


def _is_value_int(dt: DType) -> bool:
    return isinstance(dt, IntType)


def storage_dtype(dt: DType) -> np.dtype:
    """The numpy dtype that holds a tile of ``dt`` in the interpreter."""
    if is_bool(dt):
        return np.dtype(np.bool_)
    if _is_value_int(dt):
        return np.dtype(np.uint64 if (dt.bits == 64 and not dt.is_signed) else np.int64)
    if dt.name in _FLOATS:
        return _FLOATS[dt.name]
    return np.dtype(dt.code_dtype)


def wrap(x: np.ndarray, dt: DType) -> np.ndarray:
    """Integer values ``x`` reduced modulo ``2**bits`` into ``dt``'s range (two's complement)."""
    if dt.bits == 64:
        return x.astype(storage_dtype(dt))
    x = x.astype(np.int64)
    mask = np.int64((1 << dt.bits) - 1)
    v = x & mask
    if dt.is_signed:
        half = np.int64(1 << (dt.bits - 1))
        v = np.where(v >= half, v - np.int64(1 << dt.bits), v)
    return v


def to_codes(x: np.ndarray, dt: DType) -> np.ndarray:
    """The unsigned bit patterns (uint64) of storage array ``x`` of dtype ``dt``."""
    if is_bool(dt):
        return x.astype(np.uint64)
    if _is_value_int(dt):
        if dt.bits == 64:
            return x.view(np.uint64) if x.dtype == np.int64 else x.astype(np.uint64)
        return (x.astype(np.int64) & np.int64((1 << dt.bits) - 1)).astype(np.uint64)
    if dt.name in _FLOATS:
        return np.ascontiguousarray(x).view(_FLOAT_BITS[dt.name]).astype(np.uint64)
    return x.astype(np.uint64)


def from_codes(codes: np.ndarray, dt: DType) -> np.ndarray:
    """Storage array of dtype ``dt`` whose bit patterns are ``codes`` (unsigned ints)."""
    codes = codes.astype(np.uint64)
    if is_bool(dt):
        return codes != 0
    if _is_value_int(dt):
        if dt.bits == 64:
            return codes.view(np.int64) if dt.is_signed else codes
        return wrap(codes.astype(np.int64), dt)
    if dt.name in _FLOATS:
        return codes.astype(_FLOAT_BITS[dt.name]).view(_FLOATS[dt.name])
    return codes.astype(storage_dtype(dt))


def _real(x: np.ndarray, dt: DType) -> np.ndarray:
    """Values as int64/uint64 (integers, bools) or float64/float storage (floats, decoded codes)."""
    if is_bool(dt):
        return x.astype(np.int64)
    if _is_value_int(dt) or dt.name in _FLOATS:
        return x
    return dt.decode(x)


def cast(x: np.ndarray, src: DType, dst: DType) -> np.ndarray:
    """Convert storage array ``x`` from ``src`` to ``dst`` by the rules of :mod:`lowbit.ir.semantics`."""
    if src == dst:
        return x.copy()
    v = _real(x, src)
    if is_bool(dst):
        return v != 0
    with np.errstate(all="ignore"):
        if _is_value_int(dst):
            if v.dtype.kind not in "iub":  # any float storage, ml_dtypes' bfloat16 (kind 'V') included
                f = np.trunc(v.astype(np.float64))
                f = np.clip(np.nan_to_num(f, nan=0.0), float(dst.min), float(dst.max))
                # float64 cannot hold the 64-bit maxima exactly: clip again after converting.
                if dst.bits == 64:
                    big = f >= 2.0**63 if dst.is_signed else f >= 2.0**64
                    out = f.astype(storage_dtype(dst))
                    return np.where(big, np.array(dst.max, dtype=storage_dtype(dst)), out)
                return f.astype(np.int64)
            return wrap(v, dst)
        if dst.name in _FLOATS:
            if v.dtype.kind in "iu":
                v = v.astype(np.float64)
            return v.astype(_FLOATS[dst.name])
        try:
            return dst.encode(v.astype(np.float64), saturate=True).astype(storage_dtype(dst))
        except DTypeError as exc:
            raise InterpError(f"cast {src.name} -> {dst.name}: {exc}") from None


def from_scalar(value: int | float | bool, src: DType, dst: DType, shape: tuple[int, ...]) -> np.ndarray:
    """A tile of ``shape`` filled with scalar ``value`` (of dtype ``src``) converted to ``dst``."""
    if is_bool(src):
        arr = np.array(bool(value))
    elif src.is_int:
        arr = np.array(int(value), dtype=storage_dtype(src))
    else:
        arr = np.array(value, dtype=storage_dtype(src))
    return np.broadcast_to(cast(arr, src, dst), shape).copy()


def view_bits(x: np.ndarray, src: DType, dst: DType, axis: int) -> np.ndarray:
    """Reinterpret the bits of ``x`` along ``axis`` as ``dst`` elements, LSB-first (``lowbit.pack`` order)."""
    codes = np.moveaxis(to_codes(x, src), axis, -1)
    lead, n = codes.shape[:-1], codes.shape[-1]
    bits = ((codes[..., None] >> np.arange(src.bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint64)
    bits = bits.reshape(*lead, n * src.bits // dst.bits, dst.bits)
    out = (bits << np.arange(dst.bits, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
    return from_codes(np.moveaxis(out, -1, axis), dst)


def _int_div(a: np.ndarray, b: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    if (b == 0).any():
        raise InterpError(f"{where}: integer division by zero")
    q = np.abs(a) // np.abs(b)
    q = np.where((a < 0) != (b < 0), -q, q)
    return q, a - b * q


def binary(op: str, a: np.ndarray, b: np.ndarray, dt: DType, where: str) -> np.ndarray:
    """Element-wise ``a op b`` for operands of dtype ``dt`` (comparisons give bool)."""
    cmp = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}
    if op in cmp:
        return cmp[op](a, b)
    if is_bool(dt):
        return {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[op](a, b)
    if not is_arith(dt):
        raise InterpError(f"{where}: {op} on {dt.name}")
    if dt.is_float:
        with np.errstate(all="ignore"):
            fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide, "min": np.fmin, "max": np.fmax}[op]
            return fn(a, b).astype(storage_dtype(dt))
    if op in ("div", "mod"):
        q, r = _int_div(a, b, where)
        return wrap(q if op == "div" else r, dt)
    if op in ("shl", "shr"):
        n = b.astype(np.int64)
        big = (n < 0) | (n >= dt.bits)
        safe = np.where(big, 0, n).astype(a.dtype)
        if op == "shl":
            return wrap(np.where(big, 0, a << safe), dt)
        fill = np.where(a < 0, -1, 0) if dt.is_signed else 0
        return wrap(np.where(big, fill, a >> safe), dt)
    with np.errstate(all="ignore"):
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.minimum, "max": np.maximum,
              "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op]  # fmt: skip
        return wrap(fn(a, b), dt)


def unary(op: str, x: np.ndarray, dt: DType) -> np.ndarray:
    """Element-wise unary ``op`` (see :class:`lowbit.ir.ops.ElementwiseUnary`)."""
    if op == "not":
        return np.logical_not(x) if is_bool(dt) else wrap(np.invert(x), dt)
    sd = storage_dtype(dt)
    with np.errstate(all="ignore"):
        if dt.is_int:
            return wrap(-x if op == "neg" else np.abs(x), dt)
        f64 = x.astype(np.float64)
        out = {
            "neg": lambda: -f64,
            "abs": lambda: np.abs(f64),
            "exp2": lambda: np.exp2(f64),
            "log2": lambda: np.log2(f64),
            "sqrt": lambda: np.sqrt(f64),
            "rsqrt": lambda: 1.0 / np.sqrt(f64),
            "round_rn": lambda: np.rint(f64),
            "round_rz": lambda: np.trunc(f64),
            "round_rd": lambda: np.floor(f64),
            "round_ru": lambda: np.ceil(f64),
        }[op]()
        return out.astype(sd)
