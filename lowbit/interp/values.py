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

import math

import ml_dtypes
import numpy as np

from lowbit.dtypes import DType, IntType
from lowbit.errors import DTypeError, LowbitError
from lowbit.ir import semantics as sem
from lowbit.ir.types import is_arith, is_bool

__all__ = [
    "InterpError",
    "binary",
    "canonical_nan",
    "cast",
    "float_minmax",
    "fma",
    "from_codes",
    "from_scalar",
    "round_float",
    "storage_dtype",
    "to_codes",
    "unary",
    "view_bits",
    "wrap",
]

_FLOATS = {"f16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16), "f32": np.dtype(np.float32), "f64": np.dtype(np.float64)}
_FLOAT_BITS = {"f16": np.uint16, "bf16": np.uint16, "f32": np.uint32, "f64": np.uint64}


_F32 = np.dtype(np.float32)


def canonical_nan(x: np.ndarray, dt: DType) -> np.ndarray:
    """``x`` (IEEE storage of ``dt``) with every NaN replaced by the canonical NaN of the semantics table."""
    if dt.name not in _FLOATS:
        return x
    x = np.asarray(x, _FLOATS[dt.name])
    nan = np.isnan(x.astype(np.float32) if dt.name == "bf16" else x)
    if not nan.any():
        return x
    canon = np.array(sem.CANONICAL_NAN[dt.name], dtype=_FLOAT_BITS[dt.name]).view(_FLOATS[dt.name])
    return np.where(nan, canon, x)


def _round_odd_f32(v: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounded to odd: a later rounding to bf16 then rounds once (bf16 has 16 fewer bits)."""
    f = v.astype(np.float32)
    inexact = (f.astype(np.float64) != v) & np.isfinite(v)
    even = (f.view(np.uint32) & np.uint32(1)) == 0
    toward = np.nextafter(f, np.where(v > f.astype(np.float64), np.float32(np.inf), np.float32(-np.inf)))
    return np.where(inexact & even, toward, f)


def round_float(v: np.ndarray, dst: DType) -> np.ndarray:
    """float64 values rounded once (nearest even, overflow to ±inf) to IEEE ``dst``; NaN canonical."""
    v = np.asarray(v, np.float64)
    with np.errstate(all="ignore"):
        if dst.name == "bf16":  # ml_dtypes rounds float64 through float32 (twice): round to odd first
            out = _round_odd_f32(v).astype(_FLOATS["bf16"])
        else:
            out = v.astype(_FLOATS[dst.name])
    return canonical_nan(out, dst)


def _int_to_float(v: np.ndarray, dst: DType) -> np.ndarray:
    """Integer values (int64/uint64 storage) rounded once to IEEE ``dst``."""
    if dst.name in ("f32", "f64", "f16"):
        # numpy converts int64/uint64 straight to float32/float64 (one rounding); float16 holds only
        # integers below 65520 (exact in float64 on the way), larger ones overflow either way.
        return v.astype(_FLOATS[dst.name]) if dst.name != "f16" else v.astype(np.float64).astype(np.float16)
    big = (v > 2**53) | (v < -(2**53)) if v.dtype != np.uint64 else v > 2**53
    out = round_float(v.astype(np.float64), dst)
    if big.any():  # integers float64 cannot hold: round exactly, element by element (rare)
        for i in zip(*np.nonzero(big)):
            out[i] = _exact_int_to_bf16(int(v[i]))
    return out


def _exact_int_to_bf16(n: int) -> np.ndarray:
    mag = abs(n)
    shift = max(mag.bit_length() - 8, 0)  # keep 8 significant bits
    q, r = divmod(mag, 1 << shift)
    half = 1 << (shift - 1) if shift else 0
    if shift and (r > half or (r == half and q & 1)):
        q += 1
    value = math.ldexp(float(q), shift)
    return np.array(math.copysign(value, n) if n else 0.0, np.float32).astype(_FLOATS["bf16"])


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


def _encode_in_kernel(v: np.ndarray, dst: DType) -> np.ndarray:
    """``dst.encode(v, saturate=True)`` with NaN -> :func:`lowbit.ir.semantics.kernel_nan_code` (never raises)."""
    v = np.asarray(v, np.float64)
    nan = np.isnan(v)
    codes = np.asarray(dst.encode(np.where(nan, 0.0, v), saturate=True)).astype(storage_dtype(dst))
    if nan.any():
        codes = np.where(nan, np.array(sem.kernel_nan_code(dst), dtype=storage_dtype(dst)), codes)
    return codes


def cast(x: np.ndarray, src: DType, dst: DType) -> np.ndarray:
    """Convert storage array ``x`` from ``src`` to ``dst`` by the rules of :mod:`lowbit.ir.semantics`."""
    if src == dst:
        return x.copy()
    v = _real(x, src)
    if is_bool(dst):
        with np.errstate(invalid="ignore"):
            return v != 0  # NaN -> True
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
                return _int_to_float(v, dst)
            return round_float(v.astype(np.float64), dst)
        return _encode_in_kernel(v.astype(np.float64), dst)  # integers: through float64, as compiled


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


def _int_div(a: np.ndarray, b: np.ndarray, dt: DType) -> tuple[np.ndarray, np.ndarray]:
    """Truncating quotient and remainder; ``x // 0`` and ``x % 0`` as :func:`lowbit.ir.semantics.int_div_by_zero`."""
    zero = b == 0
    bb = np.where(zero, np.ones((), dtype=b.dtype), b)
    if dt.is_signed:  # on two's complement magnitudes in uint64: MIN's magnitude fits, MIN // -1 wraps to MIN
        u = np.uint64
        ua = np.where(a < 0, u(0) - a.astype(u), a.astype(u))
        ub = np.where(bb < 0, u(0) - bb.astype(u), bb.astype(u))
        qm = ua // ub
        q = np.where((a < 0) != (bb < 0), u(0) - qm, qm).view(np.int64)
        r = (a.astype(u) - bb.astype(u) * q.view(u)).view(np.int64)
        q = np.where(zero, np.where(a < 0, 1, -1).astype(np.int64), q)
    else:
        q = a // bb
        r = a - bb * q
        q = np.where(zero, np.array(dt.max, dtype=q.dtype), q)
    return q, np.where(zero, a, r)


def float_minmax(op: str, a: np.ndarray, b: np.ndarray, dt: DType) -> np.ndarray:
    """PTX ``min``/``max``: a NaN operand yields the other (both NaN: canonical NaN); -0.0 < +0.0."""
    with np.errstate(all="ignore"):
        x, y = a.astype(np.float64), b.astype(np.float64)
    neg_x, neg_y = np.signbit(x), np.signbit(y)
    if op == "min":
        pick_a = (x < y) | ((x == y) & (neg_x | ~neg_y))
    else:
        pick_a = (x > y) | ((x == y) & (~neg_x | neg_y))
    pick_a = np.where(np.isnan(y), True, np.where(np.isnan(x), False, pick_a))
    return canonical_nan(np.where(pick_a, a, b).astype(storage_dtype(dt)), dt)


def binary(op: str, a: np.ndarray, b: np.ndarray, dt: DType, where: str) -> np.ndarray:
    """Element-wise ``a op b`` for operands of dtype ``dt`` (comparisons give bool)."""
    cmp = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}
    if op in cmp:
        with np.errstate(invalid="ignore"):  # NaN operands compare false (ne: true), quietly
            return cmp[op](a, b)
    if is_bool(dt):
        return {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[op](a, b)
    if not is_arith(dt):
        raise InterpError(f"{where}: {op} on {dt.name}")
    if dt.is_float:
        if op in ("min", "max"):
            return float_minmax(op, a, b, dt)
        with np.errstate(all="ignore"):
            fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide}[op]
            return canonical_nan(fn(a, b).astype(storage_dtype(dt)), dt)
    if op in ("div", "mod"):
        q, r = _int_div(a, b, dt)
        return wrap(q if op == "div" else r, dt)
    if op in ("shl", "shr"):
        n = b.astype(np.int64)
        big = (n < 0) | (n >= dt.bits)
        if dt.bits == 64 and not dt.is_signed:
            big = b >= np.uint64(64)
        safe = np.where(big, 0, n).astype(a.dtype)
        if op == "shl":
            return wrap(np.where(big, 0, a << safe), dt)
        fill = np.where(a < 0, -1, 0) if dt.is_signed else 0
        return wrap(np.where(big, fill, a >> safe), dt)
    with np.errstate(all="ignore"):
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.minimum, "max": np.maximum,
              "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op]  # fmt: skip
        return wrap(fn(a, b), dt)


def _f32_math(op: str, x: np.ndarray) -> np.ndarray:
    """``op`` on float32 values, correctly rounded to float32 (the emulator's and the GPU's f32 units)."""
    f64 = x.astype(np.float64)
    if op == "exp2":
        return np.exp2(f64).astype(np.float32)
    if op == "log2":
        return np.log2(f64).astype(np.float32)
    if op == "sqrt":
        return np.sqrt(x.astype(np.float32))
    return (np.float32(1.0) / np.sqrt(x.astype(np.float32))).astype(np.float32)  # rsqrt: sqrt.rn, then div.rn


def unary(op: str, x: np.ndarray, dt: DType) -> np.ndarray:
    """Element-wise unary ``op`` (see :class:`lowbit.ir.ops.ElementwiseUnary`)."""
    if op == "not":
        return np.logical_not(x) if is_bool(dt) else wrap(np.invert(x), dt)
    sd = storage_dtype(dt)
    with np.errstate(all="ignore"):
        if dt.is_int:
            return wrap(-x if op == "neg" else np.abs(x), dt)
        if op in ("neg", "abs"):  # the sign bit only: NaN payloads stay
            codes = to_codes(x, dt)
            sign = np.uint64(1 << (dt.bits - 1))
            return from_codes(codes ^ sign if op == "neg" else codes & ~sign, dt)
        rounding = {"round_rn": np.rint, "round_rz": np.trunc, "round_rd": np.floor, "round_ru": np.ceil}
        if op in rounding:
            return canonical_nan(rounding[op](x.astype(np.float64)).astype(sd), dt)
        if dt.name == "f64" and op in ("sqrt", "rsqrt"):
            r = np.sqrt(x) if op == "sqrt" else 1.0 / np.sqrt(x)
        elif dt.name == "f32":
            r = _f32_math(op, x)
        else:  # f16, bf16 (sqrt, rsqrt, exp2, log2) and f64 (exp2, log2): evaluated in f32, rounded back
            r = round_float(_f32_math(op, round_float(x.astype(np.float64), dtype_of("f32"))).astype(np.float64), dt)
        return canonical_nan(np.asarray(r).astype(sd), dt)


def dtype_of(name: str) -> DType:
    from lowbit.dtypes import dtype  # noqa: PLC0415

    return dtype(name)


def fma(a: np.ndarray, b: np.ndarray, c: np.ndarray, dt: DType) -> np.ndarray:
    """``a * b + c`` rounded once to ``dt`` (nearest even); NaN canonical."""
    with np.errstate(all="ignore"):
        x, y, z = (v.astype(np.float64) for v in (a, b, c))
        if dt.name == "f64":
            out = _fma_f64(x, y, z)
        else:  # the product is exact in float64; the sum rounded to odd, then once to the type
            p = x * y
            s = p + z
            bb = s - p
            err = (p - (s - bb)) + (z - bb)  # TwoSum: s + err == p + z exactly (finite s)
            odd = (s.view(np.uint64) & np.uint64(1)) == 1
            fix = np.isfinite(s) & (err != 0) & ~odd
            s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
            out = s
        return canonical_nan(round_float(out, dt), dt)


def _fma_f64(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    from fractions import Fraction  # noqa: PLC0415

    out = x * y + z  # the special cases (inf, NaN) are right; finite ones are redone exactly
    flat_x, flat_y, flat_z, flat = x.reshape(-1), y.reshape(-1), z.reshape(-1), out.reshape(-1).copy()
    for i in range(flat.size):
        if math.isfinite(flat_x[i]) and math.isfinite(flat_y[i]) and math.isfinite(flat_z[i]):
            exact = Fraction(float(flat_x[i])) * Fraction(float(flat_y[i])) + Fraction(float(flat_z[i]))
            if exact == 0:
                p = float(flat_x[i]) * float(flat_y[i])
                flat[i] = p + float(flat_z[i])  # the IEEE sign of an exact zero sum
            else:
                try:
                    flat[i] = float(exact)
                except OverflowError:
                    flat[i] = math.inf if exact > 0 else -math.inf
    return flat.reshape(out.shape)
