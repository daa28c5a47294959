"""Per-thread values of VM dtypes in SIMT registers, and the scalar semantics on them.

Representation (one SIMT register per VM element):

* ``bool`` -> ``pred``;
* integers of up to 32 bits (int1..int32, uint1..uint32) -> ``i32`` holding
  the *value*, normalised: sign-extended for signed types, zero-extended for
  unsigned ones, so comparisons and divisions can use the full register;
  64-bit integers -> ``i64``;
* f16 / bf16 / f32 / f64 -> the register type of the same name;
* every other format (fp8/fp6/fp4, e8m0, codebooks) -> ``i32`` holding the
  unsigned *code* (they take no arithmetic, only moves, casts and views).

Every function here implements one row of :mod:`lowbit.ir.semantics` on
registers: integer ops wrap to the dtype (re-normalising after each op),
shifts by >= the width give 0 or the sign fill, float->int truncates and
clips, float->small float is the format's ``encode(x, saturate=True)``
written as integer arithmetic on the f32 bit pattern.
"""

from __future__ import annotations

import math

import numpy as np

from lowbit.dtypes import DType, FloatType, IntType, dtype
from lowbit.errors import CodegenError
from lowbit.ir import semantics as sem
from lowbit.ir.simt import Builder, Const, Operand
from lowbit.ir.simt.types import BF16, F16, F32, F64, I16, I32, I64, PRED, ScalarType
from lowbit.ir.types import is_bool

__all__ = ["binary", "code_of", "const_value", "convert", "from_code", "is_code", "normalize", "reg_type", "unary"]

IEEE = {"f16": F16, "bf16": BF16, "f32": F32, "f64": F64}


def is_int(dt: DType) -> bool:
    return isinstance(dt, IntType)


def is_code(dt: DType) -> bool:
    """Formats held as codes: no arithmetic (small floats, codebooks...)."""
    return not (is_bool(dt) or is_int(dt) or dt.name in IEEE)


def reg_type(dt: DType) -> ScalarType:
    if is_bool(dt):
        return PRED
    if dt.name in IEEE:
        return IEEE[dt.name]
    if dt.bits > 64 or (is_code(dt) and dt.bits > 32):
        raise CodegenError(f"{dt.name} ({dt.bits} bits) has no register representation")
    return I64 if dt.bits > 32 else I32


def _wide(t: ScalarType) -> int:
    return t.bits


def normalize(b: Builder, x: Operand, dt: DType) -> Operand:
    """Reduce an integer register to ``dt``'s canonical value (wrap modulo 2**bits)."""
    if not is_int(dt) or dt.bits in (32, 64):
        return x
    w = _wide(x.type)
    if dt.is_signed:
        s = Const(w - dt.bits, x.type)
        return b.binary("ashr", b.binary("shl", x, s), s)
    return b.binary("and", x, Const((1 << dt.bits) - 1, x.type))


def _float_const(value: float, dt: DType) -> Const:
    """``value`` rounded to IEEE ``dt`` (nearest even; overflow to inf) as a constant."""
    if math.isnan(value):
        return Const(math.nan, IEEE[dt.name])
    if dt.name == "f64":
        return Const(float(value), F64)
    if dt.name == "f32":
        with np.errstate(all="ignore"):
            return Const(float(np.float32(value)), F32)
    d = dtype(dt.name)
    return Const(float(d.decode(d.encode(np.float64(value)))), IEEE[dt.name])


def const_value(value: int | float | bool, dt: DType) -> Const:
    """The register constant for ``value`` converted to ``dt`` by the VM's cast rules."""
    if is_bool(dt):
        return Const(int(bool(value)), PRED)
    if isinstance(value, bool):
        value = int(value)
    if is_int(dt):
        v = sem.float_to_int(value, dt.bits, dt.is_signed) if isinstance(value, float) else sem.wrap_int(value, dt.bits, dt.is_signed)
        return Const(sem.wrap_int(v, reg_type(dt).bits, True), reg_type(dt))
    if dt.name in IEEE:
        return _float_const(float(value), dt)
    code = int(np.asarray(dt.encode(np.float64(value), saturate=True)).reshape(()))
    return Const(code, I32)


# --------------------------------------------------------------------------- arithmetic

_ICMP = {"eq": ("eq", "eq"), "ne": ("ne", "ne"), "lt": ("slt", "ult"), "le": ("sle", "ule"), "gt": ("sgt", "ugt"), "ge": ("sge", "uge")}
_FCMP = {"eq": "oeq", "ne": "une", "lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge"}


def binary(b: Builder, op: str, x: Operand, y: Operand, dt: DType) -> Operand:
    """``x op y`` on values of dtype ``dt`` (comparisons give pred)."""
    if is_bool(dt):
        if op in ("and", "or", "xor"):
            return b.binary(op, x, y)
        if op == "ne":
            return b.binary("xor", x, y)
        if op == "eq":
            return b.unary("not", b.binary("xor", x, y))
        raise CodegenError(f"{op} is not defined on bool")
    if dt.name in IEEE:
        if op in _FCMP:
            return b.cmp(_FCMP[op], x, y)
        fop = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv", "min": "fmin", "max": "fmax"}.get(op)
        if fop is None:
            raise CodegenError(f"{op} is not defined on {dt.name}")
        return b.binary(fop, x, y)
    if not is_int(dt):
        raise CodegenError(f"{op} is not defined on {dt.name} (cast it first)")
    signed = dt.is_signed
    if op in _ICMP:
        return b.cmp(_ICMP[op][0 if signed else 1], x, y)
    t = x.type
    if op in ("add", "sub", "mul"):
        return normalize(b, b.binary(op, x, y), dt)
    if op in ("div", "mod"):
        return _int_div(b, op, x, y, dt)
    if op in ("min", "max"):
        return b.binary(("s" if signed else "u") + op, x, y)
    if op in ("and", "or", "xor"):
        return b.binary(op, x, y)
    if op in ("shl", "shr"):
        big = b.cmp("uge", y, Const(dt.bits, t))  # negative amounts are huge unsigned: also "big"
        amt = b.binary("and", y, Const(t.bits - 1, t))
        if op == "shl":
            return b.select(big, Const(0, t), normalize(b, b.binary("shl", x, amt), dt))
        if signed:
            return b.select(big, b.binary("ashr", x, Const(t.bits - 1, t)), b.binary("ashr", x, amt))
        return b.select(big, Const(0, t), b.binary("lshr", x, amt))
    raise CodegenError(f"unknown binary op {op!r}")


def _int_div(b: Builder, op: str, x: Operand, y: Operand, dt: DType) -> Operand:
    """Truncating ``x // y`` / ``x % y`` with the table's values where PTX's are unspecified (and LLVM's
    undefined): ``x // 0`` all ones (unsigned) or -1 / +1 by the sign of x, ``x % 0 == x``, MIN // -1 == MIN."""
    t, signed = x.type, dt.is_signed
    zero = b.cmp("eq", y, Const(0, t))
    bad = zero
    if signed and dt.bits in (32, 64):  # MIN / -1 overflows the register (narrower types fit in an i32)
        minv = Const(-(1 << (t.bits - 1)), t)
        bad = b.binary("or", zero, b.binary("and", b.cmp("eq", x, minv), b.cmp("eq", y, Const(-1, t))))
    safe = b.select(bad, Const(1, t), y)  # x / 1 == x: MIN // -1 is MIN, MIN % -1 is 0 (x % 1)
    name = ("s" if signed else "u") + ("div" if op == "div" else "rem")
    r = b.binary(name, x, safe)
    if op == "div":
        if signed:
            fill = b.select(b.cmp("slt", x, Const(0, t)), Const(1, t), Const(-1, t))
        else:
            fill = Const((1 << dt.bits) - 1, t)
        r = b.select(zero, fill, r)
    else:
        r = b.select(zero, x, r)
    return normalize(b, r, dt)


def _via_f32(b: Builder, x: Operand, dt: DType, fn) -> Operand:  # noqa: ANN001 - a local callback
    if dt.name == "f32":
        return fn(x)
    return _float_to_float(b, fn(_float_to_float(b, x, dt, dtype("f32"))), dtype("f32"), dt)


def unary(b: Builder, op: str, x: Operand, dt: DType) -> Operand:
    if op == "not":
        return b.unary("not", x) if is_bool(dt) else normalize(b, b.unary("not", x), dt)
    if is_int(dt):
        if op == "neg":
            return normalize(b, b.unary("neg", x), dt)
        if op == "abs":  # an unsigned value is its own magnitude (uint32 >= 2**31 is negative in an i32)
            return x if not dt.is_signed else normalize(b, b.unary("abs", x), dt)
        raise CodegenError(f"{op} is not defined on {dt.name}")
    if op == "neg":
        return b.unary("fneg", x)
    if op == "abs":
        return b.unary("fabs", x)
    simple = {"exp2": "exp2.approx", "log2": "log2.approx", "sqrt": "sqrt", "round_rn": "frint",
              "round_rz": "ftrunc", "round_rd": "ffloor", "round_ru": "fceil"}  # fmt: skip
    if dt.name == "f64" and op != "exp2" and op != "log2":  # f64 has its own sqrt.rn, cvt.rni..., div.rn
        if op == "rsqrt":
            return b.binary("fdiv", Const(1.0, F64), b.unary("sqrt", x))
        return b.unary(simple[op], x)
    if op in simple:
        return _via_f32(b, x, dt, lambda v: b.unary(simple[op], v))
    if op == "rsqrt":
        return _via_f32(b, x, dt, lambda v: b.binary("fdiv", Const(1.0, F32), b.unary("sqrt", v)))
    raise CodegenError(f"unknown unary op {op!r}")


# --------------------------------------------------------------------------- bits


def code_of(b: Builder, x: Operand, dt: DType, wide: bool) -> Operand:
    """The unsigned bit pattern of ``x`` in an i32 (or, ``wide``, i64) register."""
    t = I64 if wide else I32
    if is_bool(dt):
        c = b.cast("zext", x, I32)
    elif dt.name in ("f16", "bf16"):
        c = b.cast("zext", b.cast("bitcast", x, I16), I32)
    elif dt.name == "f32":
        c = b.cast("bitcast", x, I32)
    elif dt.name == "f64":
        c = b.cast("bitcast", x, I64)
    elif dt.bits < 32:
        c = b.binary("and", x, Const((1 << dt.bits) - 1, x.type))
    else:
        c = x
    if c.type == t:
        return c
    return b.cast("zext", c, t) if wide else b.cast("trunc", c, t)


def from_code(b: Builder, c: Operand, dt: DType) -> Operand:
    """The register value whose bit pattern is the (zero-extended) code ``c``."""
    if dt.name == "f64" or (is_int(dt) and dt.bits > 32):
        c64 = c if c.type == I64 else b.cast("zext", c, I64)
        return b.cast("bitcast", c64, F64) if dt.name == "f64" else c64
    c32 = c if c.type == I32 else b.cast("trunc", c, I32)
    if is_bool(dt):
        return b.cmp("ne", c32, Const(0, I32))
    if dt.name in ("f16", "bf16"):
        return b.cast("bitcast", b.cast("trunc", c32, I16), IEEE[dt.name])
    if dt.name == "f32":
        return b.cast("bitcast", c32, F32)
    if is_int(dt):
        return normalize(b, c32, dt)
    return b.binary("and", c32, Const((1 << dt.bits) - 1, I32)) if dt.bits < 32 else c32


# --------------------------------------------------------------------------- conversions


def _float_to_float(b: Builder, x: Operand, src: DType, dst: DType) -> Operand:
    if src.name == dst.name:
        return x
    s, d = IEEE[src.name], IEEE[dst.name]
    if s.bits == d.bits:  # f16 <-> bf16: exact through f32, then one rounding
        return b.cast("fptrunc", b.cast("fpext", x, F32), d)
    return b.cast("fpext" if d.bits > s.bits else "fptrunc", x, d)


def _int_to_float(b: Builder, x: Operand, src: DType, dst: DType) -> Operand:
    return b.cast("sitofp" if src.is_signed else "uitofp", x, IEEE[dst.name])


def _float_to_int(b: Builder, x: Operand, src: DType, dst: IntType) -> Operand:
    if src.name in ("f16", "bf16"):
        x = b.cast("fpext", x, F32)  # exact
    t = reg_type(dst)
    if dst.bits in (32, 64):
        return b.cast("fptosi.sat" if dst.is_signed else "fptoui.sat", x, t)
    v = b.cast("fptosi.sat", x, I32)  # trunc toward zero, NaN -> 0; then clip to the narrow range
    lo = -(1 << (dst.bits - 1)) if dst.is_signed else 0
    hi = (1 << (dst.bits - 1)) - 1 if dst.is_signed else (1 << dst.bits) - 1
    return b.binary("smin", b.binary("smax", v, Const(lo, I32)), Const(hi, I32))


def _int_to_int(b: Builder, x: Operand, src: DType, dst: DType) -> Operand:
    s, d = reg_type(src), reg_type(dst)
    if s.bits > d.bits:
        x = b.cast("trunc", x, d)
    elif s.bits < d.bits:
        x = b.cast("sext" if src.is_signed else "zext", x, d)
    return normalize(b, x, dst)


def _decoded_values(dt: DType) -> np.ndarray:
    return np.asarray(dt.decode(np.arange(1 << dt.bits, dtype=np.uint64)), dtype=np.float64)


def _table_to(b: Builder, code: Operand, src: DType, dst: DType) -> Operand:
    """A <= 4-bit code format (or a non-float one of <= 8 bits: codebooks, bipolar) to anything: a select
    chain over its 2**bits codes (constants folded here)."""
    vals = _decoded_values(src)
    out: Operand | None = None
    for c, v in enumerate(vals):
        k = _python_cast(float(v), dst)
        out = k if out is None else b.select(b.cmp("eq", code, Const(c, I32)), k, out)
    assert out is not None  # noqa: S101
    return out


def _python_cast(v: float, dst: DType) -> Const:
    if is_bool(dst):
        return Const(int(v != 0), PRED)  # NaN != 0 is true, as numpy says
    if is_int(dst):
        return const_value(sem.float_to_int(v, dst.bits, dst.is_signed), dst)
    return const_value(v, dst)


def _decode_float(b: Builder, code: Operand, src: FloatType) -> Operand:
    """A small float's code -> its exact f32 value (field arithmetic plus the format's special codes)."""
    e, m, bias = src.exponent, src.mantissa, src.bias
    if (1 - bias - m + 127) < 1 or ((1 << e) - 1 - bias - m + 127) > 255:  # 255: inf/NaN codes, overridden below
        raise CodegenError(f"cast from {src.name}: exponent range does not fit f32 arithmetic")
    mag = b.binary("and", code, Const((1 << (e + m)) - 1, I32))
    ef = b.binary("lshr", mag, Const(m, I32))
    mf = b.binary("and", mag, Const((1 << m) - 1, I32))
    zero = b.cmp("eq", ef, Const(0, I32))
    full = b.select(zero, mf, b.binary("or", mf, Const(1 << m, I32)))
    eeff = b.select(zero, Const(1, I32), ef)
    sbits = b.binary("shl", b.binary("add", eeff, Const(127 - bias - m, I32)), Const(23, I32))
    val = b.binary("fmul", b.cast("uitofp", full, F32), b.cast("bitcast", sbits, F32))
    formula = np.zeros(1 << src.bits)
    for c in range(1 << src.bits):
        mg = c & ((1 << (e + m)) - 1)
        ee, mm = mg >> m, mg & ((1 << m) - 1)
        f = (mm if ee == 0 else mm + (1 << m)) * 2.0 ** (max(ee, 1) - bias - m)
        formula[c] = -f if (src.signed and c >> (e + m) & 1) else f
    if src.signed:
        neg = b.cmp("ne", b.binary("and", code, Const(1 << (e + m), I32)), Const(0, I32))
        val = b.select(neg, b.unary("fneg", val), val)
    true = _decoded_values(src)
    special = [c for c in range(1 << src.bits) if not (formula[c] == true[c] or (math.isnan(true[c]) and math.isnan(formula[c])))]
    if len(special) > 8:
        raise CodegenError(f"cast from {src.name}: too many special codes ({len(special)})")
    for c in special:
        val = b.select(b.cmp("eq", code, Const(c, I32)), _float_const(float(true[c]), dtype("f32")), val)
    return val


def _encode_float(b: Builder, x: Operand, dst: FloatType) -> Operand:
    """f32 -> ``dst.encode(x, saturate=True)`` (nearest even, finite overflow and inf clamp to max)."""
    if dst.mantissa < 1 or not dst.signed or dst.nan not in ("none", "fn", "ieee"):
        raise CodegenError(f"casts to {dst.name} are not supported by the lowering yet")
    e, m = dst.exponent, dst.mantissa
    emin, emax = dst.emin, dst.emax
    bits = b.cast("bitcast", x, I32)
    neg = b.cmp("slt", bits, Const(0, I32))
    mag32 = b.binary("and", bits, Const(0x7FFFFFFF, I32))
    is_nan = b.cmp("ugt", mag32, Const(0x7F800000, I32))
    ex = b.binary("sub", b.binary("lshr", mag32, Const(23, I32)), Const(127, I32))
    te = b.binary("smin", b.binary("smax", ex, Const(emin, I32)), Const(emax + 2, I32))
    sbits = b.binary("shl", b.binary("sub", Const(m + 127, I32), te), Const(23, I32))
    a = b.cast("bitcast", mag32, F32)
    n = b.cast("fptoui.sat", b.unary("frint", b.binary("fmul", a, b.cast("bitcast", sbits, F32))), I32)
    magcode = b.binary("add", b.binary("shl", b.binary("sub", te, Const(emin, I32)), Const(m, I32)), n)
    over = b.binary("or", b.cmp("sgt", ex, Const(emax + 1, I32)), b.cmp("ugt", magcode, Const(dst.max_code, I32)))
    magcode = b.select(over, Const(dst.max_code, I32), magcode)
    if dst.nan_code is not None:
        magcode = b.select(is_nan, Const(dst.nan_code, I32), magcode)
    # a NaN gives the format's NaN code, or +MAX_NORM where it has none, whatever its sign (the table's rule)
    neg = b.binary("and", neg, b.unary("not", is_nan))
    sign = Const(1 << (e + m), I32)
    return b.select(neg, b.binary("or", magcode, sign), magcode)


def _key(bits: int) -> int:
    """An f64 bit pattern (as a signed int64) -> an int64 that orders like the value (-0 just below +0)."""
    return bits if bits >= 0 else bits ^ 0x7FFFFFFFFFFFFFFF


def _f64_key(v: float) -> int:
    return _key(int(np.array(v, np.float64).view(np.int64)))


def _unkey(k: int) -> float:
    bits = k if k >= 0 else k ^ 0x7FFFFFFFFFFFFFFF
    return float(np.array(bits, np.int64).view(np.float64))


_THRESHOLDS: dict[str, tuple[int, list[tuple[int, int]]]] = {}


def _thresholds(dst: DType) -> tuple[int, list[tuple[int, int]]]:
    """:func:`_find_thresholds`, computed once per format (by name) in a process."""
    found = _THRESHOLDS.get(dst.name)
    if found is None:
        found = _THRESHOLDS[dst.name] = _find_thresholds(dst)
    return found


def _find_thresholds(dst: DType) -> tuple[int, list[tuple[int, int]]]:
    """``dst.encode(x, saturate=True)`` over non-NaN f64 ``x`` as (first code, [(key, code from key on)]).

    Derived from ``encode`` itself, so every rounding rule (ties to even,
    ties to the lower codebook entry, e8m0's rz, saturation, the sign of
    zero) is reproduced exactly: between consecutive decoded values (and
    +-0, +-inf) the code changes at most once, found by bisection over the
    ordered f64 keys.
    """
    flip = np.int64(0x7FFFFFFFFFFFFFFF)

    def enc(keys: np.ndarray) -> np.ndarray:  # int64 keys -> codes, all at once
        bits = np.where(keys >= 0, keys, keys ^ flip)
        return np.asarray(dst.encode(bits.view(np.float64), saturate=True)).reshape(-1).astype(np.int64)

    vals = _decoded_values(dst)
    pts = {_f64_key(-math.inf), _f64_key(math.inf), _f64_key(0.0), _f64_key(-0.0)}
    pts |= {_f64_key(float(v)) for v in vals if not math.isnan(v)}
    keys = np.array(sorted(pts), np.int64)
    codes = enc(keys)
    change = np.nonzero(codes[1:] != codes[:-1])[0]
    lo, hi = keys[change], keys[change + 1]  # enc(lo) == codes[change] != enc(hi): bisect every interval at once
    cur = codes[change]
    u = np.uint64
    while True:
        gap = hi.view(u) - lo.view(u)
        open_ = gap > u(1)
        if not open_.any():
            break
        mid = (lo.view(u) + (gap >> u(1))).view(np.int64)
        same = enc(mid) == cur
        lo = np.where(open_ & same, mid, lo)
        hi = np.where(open_ & ~same, mid, hi)
    if (enc(hi) != codes[change + 1]).any():
        raise CodegenError(f"casts to {dst.name}: encode is not piecewise constant between its values")
    return int(codes[0]), [(int(k), int(c)) for k, c in zip(hi, codes[change + 1])]


def _encode_thresholds(b: Builder, x: Operand, dst: DType) -> Operand:
    """f64 ``x`` -> ``dst.encode(x, saturate=True)``: NaN's code, else a chain of key comparisons."""
    first, steps = _thresholds(dst)
    bits = b.cast("bitcast", x, I64)
    key = b.select(b.cmp("slt", bits, Const(0, I64)), b.binary("xor", bits, Const(0x7FFFFFFFFFFFFFFF, I64)), bits)
    out: Operand = Const(first, I32)
    for k, code in steps:
        out = b.select(b.cmp("sge", key, Const(k, I64)), Const(code, I32), out)
    nan_code = sem.kernel_nan_code(dst)  # the format's NaN, else its largest value (codebooks, bipolar)
    if nan_code != first:
        out = b.select(b.cmp("uno", x, x), Const(nan_code, I32), out)
    return out


def _fast_float_target(dst: DType) -> bool:
    return isinstance(dst, FloatType) and dst.mantissa >= 1 and dst.signed and dst.nan in ("none", "fn", "ieee")


def convert(b: Builder, x: Operand, src: DType, dst: DType) -> Operand:
    """``x`` (a ``src`` register) converted to ``dst`` by the VM's cast rules."""
    if src == dst:
        return x
    if is_code(src):
        if src.name.startswith("bipolar"):  # code c stands for 2c - (2**n - 1): two integer instructions
            wide = src.bits > 30
            it, name = (I64, "int64") if wide else (I32, "int32")
            c = b.cast("zext", x, I64) if wide and x.type != I64 else x
            v = b.binary("sub", b.binary("shl", c, Const(1, it)), Const((1 << src.bits) - 1, it))
            if is_int(dst) and (dst.min > src.min or dst.max < src.max):  # saturate, as from its float value
                lo, hi = max(dst.min, src.min), min(dst.max, src.max)
                v = b.binary("smin", b.binary("smax", v, Const(lo, it)), Const(hi, it))
            return convert(b, v, dtype(name), dst)
        if src.bits <= 4 or (not isinstance(src, FloatType) and src.bits <= 8):
            return _table_to(b, x, src, dst)
        if not isinstance(src, FloatType):
            raise CodegenError(f"casts from {src.name} ({src.bits}-bit codes) are not supported by the lowering yet")
        f = _decode_float(b, x, src)
        return f if dst.name == "f32" else convert(b, f, dtype("f32"), dst)
    if is_bool(dst):
        if is_bool(src):
            return x
        if src.name in IEEE:
            return b.cmp("une", x, Const(0.0, IEEE[src.name]))
        return b.cmp("ne", x, Const(0, x.type))
    if is_bool(src):
        if dst.name in IEEE:
            return b.cast("uitofp", x, IEEE[dst.name])
        if is_int(dst):
            return b.cast("zext", x, reg_type(dst))
        return convert(b, b.cast("uitofp", x, F32), dtype("f32"), dst)
    if is_code(dst):
        if _fast_float_target(dst) and src.name in ("f16", "bf16", "f32"):
            return _encode_float(b, _float_to_float(b, x, src, dtype("f32")), dst)
        # f64 and integer sources (one rounding from the exact value, as the interpreter's float64
        # encode), codebooks, e8m0 and other unsigned / fnuz formats: thresholds on the f64 value
        f = x if src.name == "f64" else (_float_to_float(b, x, src, dtype("f64")) if src.name in IEEE else
                                         _int_to_float(b, x, src, dtype("f64")))  # fmt: skip
        return _encode_thresholds(b, f, dst)
    if src.name in IEEE and dst.name in IEEE:
        return _float_to_float(b, x, src, dst)
    if src.name in IEEE:
        return _float_to_int(b, x, src, dst)  # type: ignore[arg-type]
    if dst.name in IEEE:
        return _int_to_float(b, x, src, dst)
    return _int_to_int(b, x, src, dst)
