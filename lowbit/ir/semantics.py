"""The semantics tables of lowbit's VM: one definition, shared by everyone.

The interpreter (``lowbit.interp``), the later VM→SIMT lowering and the
format codecs must agree on what ``a // b`` means for negative ``a``, what
an int32 overflow gives and what a float→int cast does with 1e10.  This
module is that agreement, written as pure-Python scalar functions (the
*law*); the interpreter vectorises them with numpy and its tests check the
vector versions against these.  Everything follows C / PTX, not Python:

=====================  ==========================================================
operation              meaning
=====================  ==========================================================
``a // b`` (ints)      quotient truncated toward zero (``div.s32``): -7 // 2 == -3
``a % b``  (ints)      remainder with the sign of ``a`` (``rem.s32``): -7 % 2 == -1
division by zero       tiles: a defined value (see :data:`OPS`: ``x // 0`` is all ones
                       for unsigned types, -1 for ``x >= 0`` and +1 for ``x < 0`` signed;
                       ``x % 0 == x``); scalar expressions: an error in the interpreter;
                       float: IEEE (±inf / NaN)
int arithmetic         wraps modulo 2**bits (two's complement): int32 max + 1 == int32 min
shifts                 an amount >= bits (or negative) gives 0, or the sign fill for an
                       arithmetic ``>>`` of a negative value (PTX ``shl``/``shr`` clamp)
float → int cast       truncate toward zero, then clip to the target range; NaN → 0
                       (PTX ``cvt.rzi.sat``)
int → int cast         keep the low ``bits`` bits (wrap), sign per the target type
float → float cast     round to nearest even; overflow → ±inf for IEEE types (f32→f16);
                       to a float of at most 8 bits: the format's
                       ``encode(x, saturate=True)``, NaN → +MAX_NORM where the format
                       has no NaN (``.satfinite``; host-side ``encode`` raises instead)
``lowbit.round(x, m)`` explicit rounding of a float to an integral float:
                       ``rn`` (nearest even), ``rz`` (toward zero), ``rd`` (floor),
                       ``ru`` (ceil)
addresses              int64
=====================  ==========================================================

The element-wise rows in full -- every op, every cast, their edges (signed
zeros, NaN bits, subnormals, ties, wrap, shifts) -- are the data tables
:data:`OPS`, :data:`CASTS` and :data:`GENERAL` at the end of this module;
:func:`markdown` renders them for ``docs/dsl.md`` and
``tests/robustness/test_differential.py`` runs every row through both the
interpreter and the compiled path (PTX on the emulator), bit for bit.

Type promotion for binary ops (:func:`promote`) is the table in
``docs/dsl.md``; in short: equal types stay; two different integer types of
at most 16 bits give int32; otherwise the widest integer wins, unsigned if an
operand of that width is unsigned (C's rule); floats promote to the wider of
f16/bf16/f32 (f16 with bf16 gives f32); an integer never silently meets a float
and formats of at most 8 bits (fp8, fp4, codebooks) take no arithmetic: cast
them first.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from lowbit.dtypes import DType, dtype
from lowbit.errors import DTypeError, IRError

__all__ = [
    "ARITH_FLOATS",
    "CANONICAL_NAN",
    "CASTS",
    "GENERAL",
    "NAN_BITS_KEPT",
    "OPS",
    "SWEEP_DTYPES",
    "CastRule",
    "OpRule",
    "applies",
    "dtype_class",
    "float_max",
    "float_min",
    "int_div_by_zero",
    "kernel_nan_code",
    "markdown",
    "float_to_int",
    "promote",
    "round_f32",
    "shift_left",
    "shift_right",
    "trunc_div",
    "trunc_mod",
    "wrap_int",
]

#: Float types that take arithmetic (everything narrower is storage-only).
ARITH_FLOATS = ("f16", "bf16", "f32", "f64")


def wrap_int(value: int, bits: int, signed: bool) -> int:
    """``value`` reduced modulo ``2**bits`` into the signed or unsigned range."""
    mask = (1 << bits) - 1
    v = int(value) & mask
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def trunc_div(a: int, b: int) -> int:
    """Integer quotient rounded toward zero (C, PTX ``div``); ``b != 0``."""
    if b == 0:
        raise IRError("integer division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def trunc_mod(a: int, b: int) -> int:
    """Remainder of :func:`trunc_div`: ``a == b * trunc_div(a, b) + trunc_mod(a, b)``."""
    return a - b * trunc_div(a, b)


def shift_left(a: int, n: int, bits: int, signed: bool) -> int:
    """``a << n`` in a ``bits``-wide register; amounts >= bits give 0 (PTX ``shl`` clamps)."""
    if n < 0 or n >= bits:
        return 0
    return wrap_int(a << n, bits, signed)


def shift_right(a: int, n: int, bits: int, signed: bool) -> int:
    """``a >> n``: arithmetic for signed types, logical for unsigned; amounts clamp at ``bits``."""
    if n < 0 or n >= bits:
        return -1 if (signed and a < 0) else 0
    return wrap_int(a >> n, bits, signed)


def float_to_int(x: float, bits: int, signed: bool) -> int:
    """PTX ``cvt.rzi.sat``: truncate toward zero, clip to the range, NaN → 0."""
    if math.isnan(x):
        return 0
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if math.isinf(x):
        return hi if x > 0 else lo
    return max(lo, min(hi, int(x)))


def round_f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even); overflow gives ±inf."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _float_rank(t: DType) -> int:
    return {"f16": 1, "bf16": 1, "f32": 2, "f64": 3}.get(t.name, 0)


def promote(a: DType, b: DType) -> DType:
    """The result type of a binary arithmetic op on operands of types ``a`` and ``b``.

    Raises :class:`IRError` when the pair does not promote (int with float,
    a format of at most 8 bits that is not an integer, bool with a number).
    """
    if a == b:
        return a
    if a.name == "bool" or b.name == "bool":
        raise IRError(f"cannot combine {a.name} and {b.name}: bool only combines with bool")
    if a.is_int and b.is_int:
        if a.bits <= 16 and b.bits <= 16:
            return dtype("int32")
        width = max(a.bits, b.bits, 32)
        unsigned = any((t.bits == width and not t.is_signed) for t in (a, b))
        return dtype(f"uint{width}" if unsigned else f"int{width}")
    if a.is_float and b.is_float and _float_rank(a) and _float_rank(b):
        if _float_rank(a) == _float_rank(b):  # f16 with bf16: neither holds the other
            return dtype("f32")
        return a if _float_rank(a) > _float_rank(b) else b
    raise IRError(
        f"cannot combine {a.name} and {b.name} in arithmetic; cast one of them explicitly "
        "(integers never meet floats implicitly, and formats of at most 8 bits must be cast "
        "to f16/bf16/f32 first)"
    )


# ----------------------------------------------------------------------------- edge laws


#: The NaN every float result that is a NaN carries (sign 0, every payload bit set), as NVIDIA GPUs
#: produce for f32/f16/bf16 arithmetic and as the emulator produces for f64 too.
CANONICAL_NAN = {"f16": 0x7FFF, "bf16": 0x7FFF, "f32": 0x7FFFFFFF, "f64": 0x7FFFFFFFFFFFFFFF}


def float_min(x: float, y: float) -> float:
    """PTX ``min.f``: a NaN operand yields the other, -0.0 is below +0.0 (both NaN: NaN)."""
    if math.isnan(x) or math.isnan(y):
        return y if math.isnan(x) else x
    if x == y == 0.0:
        return x if math.copysign(1.0, x) < 0 else y
    return min(x, y)


def float_max(x: float, y: float) -> float:
    """PTX ``max.f``: a NaN operand yields the other, +0.0 is above -0.0 (both NaN: NaN)."""
    if math.isnan(x) or math.isnan(y):
        return y if math.isnan(x) else x
    if x == y == 0.0:
        return x if math.copysign(1.0, x) > 0 else y
    return max(x, y)


def kernel_nan_code(dt: DType) -> int:
    """The code a NaN casts to inside a kernel: the format's NaN, else its +MAX_NORM (largest entry)."""
    import numpy as np  # noqa: PLC0415 - the scalar laws above stay numpy-free

    try:
        return int(np.asarray(dt.encode(np.array([math.nan]), saturate=True)).reshape(-1)[0])
    except DTypeError:  # the format has no NaN
        return int(np.asarray(dt.encode(np.array([math.inf]), saturate=True)).reshape(-1)[0])


def int_div_by_zero(a: int, bits: int, signed: bool) -> tuple[int, int]:
    """``(a // 0, a % 0)`` on tiles: what NVIDIA GPUs' division sequence gives (all ones / ±1, and ``a``)."""
    if not signed:
        return (1 << bits) - 1, a
    return (1 if a < 0 else -1), a


# ----------------------------------------------------------------------------- the table, as data


@dataclass(frozen=True)
class OpRule:
    """One element-wise op: its VM name, how a kernel writes it, the operand classes it is defined on.

    ``on`` lists :func:`dtype_class` names (``int``, ``float``, ``bool``; ``any`` for every
    dtype); ``result`` is ``same`` or ``bool``.  ``gpu_exact`` is False for PTX's
    approximate units (``ex2/lg2.approx``): the interpreter and the emulator give the
    correctly rounded f32 value, the hardware is within its documented error.
    """

    op: str
    arity: int
    dsl: str
    on: tuple[str, ...]
    meaning: str
    result: str = "same"
    gpu_exact: bool = True


@dataclass(frozen=True)
class CastRule:
    """``cast(x, dst)`` for a source class and a destination class (:func:`dtype_class` names)."""

    src: tuple[str, ...]
    dst: tuple[str, ...]
    meaning: str


_I, _F, _B = ("int",), ("float",), ("bool",)

OPS: tuple[OpRule, ...] = (
    OpRule("add", 2, "a + b", _I + _F, "ints wrap modulo 2**bits; floats IEEE, round to nearest even"),
    OpRule("sub", 2, "a - b", _I + _F, "as add"),
    OpRule("mul", 2, "a * b", _I + _F, "ints: the low bits of the product (wrap); floats IEEE"),
    OpRule("div", 2, "a // b (ints), a / b (floats)", _I + _F,
           "ints truncate toward zero; x // 0 is all ones (unsigned) or -1 for x >= 0 and +1 for "
           "x < 0 (signed); MIN // -1 == MIN (wrap); floats IEEE (x / 0 = ±inf, 0 / 0 = NaN)"),
    OpRule("mod", 2, "a % b", _I, "the sign of a; x % 0 == x; MIN % -1 == 0"),
    OpRule("min", 2, "minimum(a, b)", _I + _F,
           "floats as PTX min: a NaN operand yields the other, both NaN give NaN, -0.0 < +0.0 "
           "(minimum(-0.0, +0.0) == -0.0)"),
    OpRule("max", 2, "maximum(a, b)", _I + _F, "as min; maximum(-0.0, +0.0) == +0.0"),
    OpRule("and", 2, "a & b", _I + _B, "bitwise on the value's two's complement bits"),
    OpRule("or", 2, "a | b", _I + _B, "bitwise"),
    OpRule("xor", 2, "a ^ b", _I + _B, "bitwise"),
    OpRule("shl", 2, "a << b", _I, "an amount >= bits or negative gives 0; the result wraps"),
    OpRule("shr", 2, "a >> b", _I,
           "arithmetic for signed, logical for unsigned; an amount >= bits or negative gives the "
           "sign fill (-1 for a negative signed a) or 0"),
    OpRule("eq", 2, "a == b", _I + _F + _B, "floats: false if either is NaN; -0.0 == +0.0", "bool"),
    OpRule("ne", 2, "a != b", _I + _F + _B, "floats: true if either is NaN", "bool"),
    OpRule("lt", 2, "a < b", _I + _F, "floats: false if either is NaN", "bool"),
    OpRule("le", 2, "a <= b", _I + _F, "as lt", "bool"),
    OpRule("gt", 2, "a > b", _I + _F, "as lt", "bool"),
    OpRule("ge", 2, "a >= b", _I + _F, "as lt", "bool"),
    OpRule("neg", 1, "-a", _I + _F, "ints wrap (-MIN == MIN); floats flip the sign bit (NaN bits kept)"),
    OpRule("abs", 1, "abs(a)", _I + _F, "ints wrap (abs(MIN) == MIN); floats clear the sign bit (NaN bits kept)"),
    OpRule("not", 1, "~a", _I + _B, "bitwise complement (bool: logical not)"),
    OpRule("exp2", 1, "exp2(a)", _F,
           "evaluated in f32 (f16/bf16/f64 operands are converted to f32 and the result back): "
           "ex2.approx.f32, exp2(-inf) == +0, exp2(+inf) == +inf", gpu_exact=False),
    OpRule("log2", 1, "log2(a)", _F,
           "in f32 as exp2: lg2.approx.f32, log2(±0) == -inf, log2(x < 0) == NaN", gpu_exact=False),
    OpRule("sqrt", 1, "sqrt(a)", _F,
           "correctly rounded (sqrt.rn); f16/bf16 in f32, f64 in f64; sqrt(-0.0) == -0.0, sqrt(x < 0) == NaN"),
    OpRule("rsqrt", 1, "rsqrt(a)", _F,
           "1 / sqrt(a), each step correctly rounded (f32: sqrt.rn then div.rn; f64 in f64); "
           "rsqrt(±0) == ±inf"),
    OpRule("round_rn", 1, 'round(a, "rn")', _F, "to an integral value, ties to even (2.5 -> 2.0, -0.5 -> -0.0)"),
    OpRule("round_rz", 1, 'round(a, "rz")', _F, "toward zero (-0.7 -> -0.0)"),
    OpRule("round_rd", 1, 'round(a, "rd")', _F, "toward -inf"),
    OpRule("round_ru", 1, 'round(a, "ru")', _F, "toward +inf (-0.7 -> -0.0)"),
    OpRule("where", 3, "where(c, a, b)", ("any",), "a's element where c, else b's, bits unchanged (NaN payloads too)"),
    OpRule("fma", 3, "fma(a, b, c)", _F, "a * b + c rounded once (round to nearest even)"),
)

CASTS: tuple[CastRule, ...] = (
    CastRule(_I, _I, "keep the low bits (wrap), sign per the target: cast(300, uint8) == 44, cast(255, int8) == -1"),
    CastRule(_I, _F, "round to nearest even (int64 -> f32 included); too large for f16/bf16 -> ±inf"),
    CastRule(_I, ("small_float", "codebook", "bipolar"), "the integer converted to f64 (exact below 2**53), "
             "then encoded as from a float below"),
    CastRule(_F, _I, "truncate toward zero, clip to the target's range, NaN -> 0 (cvt.rzi.sat)"),
    CastRule(_F, _F, "round to nearest even (f64 -> bf16 once, not through f32); overflow -> ±inf; NaN -> a NaN"),
    CastRule(_F, ("small_float",),
             "round to nearest even (from f64 and integers: one rounding of the exact value); "
             "overflow and ±inf -> ±MAX_NORM (.satfinite, also for e5m2); NaN -> the format's NaN "
             "code, or +MAX_NORM where it has none (e2m1, e2m3, e3m2: a kernel cannot raise); "
             "unsigned formats (e8m0, ue4m3): negatives -> their smallest code's value as encode"),
    CastRule(_F, ("codebook",), "the nearest entry (a tie to the lower entry); NaN -> the largest entry"),
    CastRule(_F, ("bipolar",), "the nearest odd integer, clipped to ±(2**n - 1); NaN -> +(2**n - 1)"),
    CastRule(("small_float", "codebook"), ("any",), "the code's exact value, then as from f64"),
    CastRule(("bipolar",), ("any",), "the odd integer the code stands for, then as from a float "
             "(so into integers it saturates: bipolar1 -1 -> uint8 0, not 255)"),
    CastRule(_B, ("any",), "False -> 0, True -> 1"),
    CastRule(("any",), _B, "x != 0 (NaN -> True)"),
)

GENERAL: tuple[tuple[str, str], ...] = (
    ("NaN bits", "neg, abs and where move NaN bits unchanged (sign and payload), as loads, stores and "
                 "views do; every other op and every cast to f16/bf16/f32/f64 gives *a* NaN whose sign and "
                 "payload are not part of the meaning (the interpreter gives the canonical NaN: f32 0x7fffffff, "
                 "f16/bf16 0x7fff, f64 0x7fffffffffffffff, as the GPU's arithmetic does; a widening cast may "
                 "keep the payload). Casts to formats of at most 8 bits give the format's NaN code exactly. The "
                 "differential test compares raw bits, two NaNs of such a result counting as equal."),
    ("subnormals", "kept everywhere: lowbit never emits .ftz (f32 arithmetic, min/max, ex2/lg2, cvt); "
                   "the differential test checks the PTX has none. (Only atomic f32 adds flush, as "
                   "atom.add.f32 does.)"),
    ("rounding", "round to nearest, ties to even, for every op and cast (e8m0: toward zero, as its encode)"),
    ("f16 / bf16 arithmetic", "add, sub, mul, div, min, max, fma, comparisons are done in the type itself "
                              "(one rounding); exp2/log2/sqrt/rsqrt in f32"),
    ("storage formats", "fp8/fp6/fp4, e8m0, codebooks and bipolar take no arithmetic: only where, casts, "
                        "views, loads and stores"),
)

#: Ops whose NaN results keep their operand's exact bits (everything else: any NaN; see GENERAL).
NAN_BITS_KEPT = ("neg", "abs", "where")

#: Every dtype a kernel may hold in a tile, as the differential sweep runs them.
SWEEP_DTYPES: tuple[str, ...] = (
    *(f"int{n}" for n in (*range(1, 9), 16, 32, 64)), *(f"uint{n}" for n in (*range(1, 9), 16, 32, 64)),
    "f16", "bf16", "f32", "f64",
    "e4m3fn", "e5m2", "e3m2", "e2m3", "e2m1", "e8m0", "ue4m3", "nf4",
    "bipolar1", "bipolar2", "bipolar3", "bipolar4", "bipolar8",
)


def dtype_class(dt: DType) -> str:
    """``bool``, ``int``, ``float`` (f16/bf16/f32/f64), ``bipolar``, ``codebook`` or ``small_float``."""
    if dt.name == "bool":
        return "bool"
    if dt.name.startswith("bipolar"):
        return "bipolar"
    if dt.name in ARITH_FLOATS:
        return "float"
    if dt.is_int:
        return "int"
    return "small_float" if dt.is_float else "codebook"


def applies(rule: OpRule, dt: DType) -> bool:
    """Whether ``rule``'s op is defined on operands of ``dt``."""
    return "any" in rule.on or dtype_class(dt) in rule.on


def markdown() -> str:
    """The tables above as the Markdown of ``docs/dsl.md``'s "Semantics at the edges" section."""
    cell = lambda t: t.replace("|", "\\|")  # noqa: E731
    lines = ["| op | written | on | meaning at the edges |", "|---|---|---|---|"]
    for r in OPS:
        note = "" if r.gpu_exact else " (GPU: the approximate unit, within its documented error)"
        lines.append(f"| `{r.op}` | `{cell(r.dsl)}` | {', '.join(r.on)} | {cell(r.meaning)}{note} |")
    lines += ["", "| cast from | to | meaning |", "|---|---|---|"]
    lines += [f"| {', '.join(c.src)} | {', '.join(c.dst)} | {cell(c.meaning)} |" for c in CASTS]
    lines += ["", "| topic | rule |", "|---|---|"]
    lines += [f"| {t} | {cell(m)} |" for t, m in GENERAL]
    lines += ["", "Classes: int = int1..int64 and uint1..uint64; float = f16, bf16, f32, f64; small_float = "
              "fp8/fp6/fp4, e8m0, ue4m3; codebook = nf4 and other codebooks; bipolar = bipolar1..32."]
    return "\n".join(lines) + "\n"
