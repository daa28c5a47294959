"""SIMT types and operand values: registers, constants, pointers in memory spaces.

A SIMT program is per-thread code, so its types are those of one PTX
register: predicates, signless integers (signedness lives on the ops that
care: ``sdiv``/``udiv``, ``icmp slt``/``icmp ult``, ``sext``/``zext``), the
float formats the hardware computes in, small vectors of them (for 16-byte
memory accesses and packed ``f16x2`` math) and untyped pointers tagged with a
memory space.  Sub-byte and exotic formats (uint4, e2m1, NF4...) do not exist
at this level: the lowering has already turned them into shifts, masks and
conversions on i32 / i16 words.

Types are frozen values compared by value; :class:`Reg` (a virtual register)
is compared by identity, as an SSA value is one definition.
"""

from __future__ import annotations

import enum
import math
import re
import struct
from dataclasses import dataclass

from lowbit.errors import IRError

SCALAR_NAMES = ("pred", "i8", "i16", "i32", "i64", "f16", "bf16", "f32", "f64")
_BITS = {"pred": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "f16": 16, "bf16": 16, "f32": 32, "f64": 64}


class Space(enum.Enum):
    """Memory spaces a pointer can point into (the LLVM NVPTX address space is the value)."""

    GLOBAL = 1
    SHARED = 3
    LOCAL = 5

    @property
    def text(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class ScalarType:
    """One register's worth: ``pred`` (i1), ``i8``..``i64`` (signless), ``f16``, ``bf16``, ``f32``, ``f64``."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in SCALAR_NAMES:
            raise IRError(f"unknown SIMT scalar type {self.name!r} (one of {', '.join(SCALAR_NAMES)})")

    @property
    def bits(self) -> int:
        return _BITS[self.name]

    @property
    def is_float(self) -> bool:
        return self.name[0] in "fb"

    @property
    def is_int(self) -> bool:
        return self.name[0] == "i"

    @property
    def is_pred(self) -> bool:
        return self.name == "pred"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class VectorType:
    """``count`` (2, 4 or 8) lanes of a non-predicate scalar, at most 128 bits: ``f16x2``, ``i32x4``."""

    elem: ScalarType
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.elem, ScalarType) or self.elem.is_pred:
            raise IRError(f"vector element must be a non-predicate scalar type, got {self.elem}")
        if self.count not in (2, 4, 8) or self.count * self.elem.bits > 128:
            raise IRError(f"vector {self.elem}x{self.count}: need 2, 4 or 8 lanes and at most 128 bits")

    @property
    def bits(self) -> int:
        return self.elem.bits * self.count

    @property
    def is_float(self) -> bool:
        return self.elem.is_float

    @property
    def is_int(self) -> bool:
        return self.elem.is_int

    is_pred = False

    def __str__(self) -> str:
        return f"{self.elem}x{self.count}"


@dataclass(frozen=True)
class PtrType:
    """An untyped (byte) pointer into ``space``; loads and stores say what they access."""

    space: Space

    is_float = False
    is_int = False
    is_pred = False
    bits = 64

    def __str__(self) -> str:
        return f"ptr.{self.space.text}"


Type = ScalarType | VectorType | PtrType
ValueType = ScalarType | VectorType  # what registers that are not pointers hold

PRED, I8, I16, I32, I64 = (ScalarType(n) for n in ("pred", "i8", "i16", "i32", "i64"))
F16, BF16, F32, F64 = (ScalarType(n) for n in ("f16", "bf16", "f32", "f64"))
PTR_GLOBAL, PTR_SHARED, PTR_LOCAL = PtrType(Space.GLOBAL), PtrType(Space.SHARED), PtrType(Space.LOCAL)

_TYPE_RE = re.compile(r"(pred|i8|i16|i32|i64|f16|bf16|f32|f64)(?:x(\d+))?\Z")


def parse_type(text: str) -> Type:
    """The type spelled ``text`` (``i32``, ``f16x2``, ``ptr.shared``)."""
    if text.startswith("ptr."):
        try:
            return PtrType(Space[text[4:].upper()])
        except KeyError:
            raise IRError(f"unknown memory space in pointer type {text!r}") from None
    m = _TYPE_RE.match(text)
    if m is None:
        raise IRError(f"unknown SIMT type {text!r}")
    scalar = ScalarType(m.group(1))
    return scalar if m.group(2) is None else VectorType(scalar, int(m.group(2)))


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


@dataclass(frozen=True, eq=False)
class Reg:
    """A virtual register: defined exactly once (SSA), printed ``%name``; compared by identity."""

    name: str
    type: Type

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise IRError(f"bad register name {self.name!r} (letters, digits, '_' and '.', not starting with a digit)")
        if not isinstance(self.type, (ScalarType, VectorType, PtrType)):
            raise IRError(f"register %{self.name} needs a SIMT type, got {self.type!r}")

    def __str__(self) -> str:
        return f"%{self.name}"

    def __repr__(self) -> str:
        return f"Reg(%{self.name}: {self.type})"


def _float_fits(value: float, t: ScalarType) -> bool:
    if math.isnan(value) or math.isinf(value) or t.name == "f64":
        return True
    if t.name == "f32":
        return struct.unpack("<f", struct.pack("<f", value))[0] == value
    if t.name == "f16":
        try:
            return struct.unpack("<e", struct.pack("<e", value))[0] == value
        except OverflowError:
            return False
    # bf16: an f32 whose low 16 bits are zero
    try:
        bits = struct.unpack("<I", struct.pack("<f", value))[0]
    except OverflowError:
        return False
    return bits & 0xFFFF == 0 and struct.unpack("<f", struct.pack("<f", value))[0] == value


@dataclass(frozen=True)
class Const:
    """An immediate scalar operand, printed ``value:type`` (``-1:i32``, ``0.5:f16``, ``1:pred``).

    Integers are stored in their signed form (``0xFFFFFFFF:i32`` is ``-1:i32``)
    so that equal bits are equal constants; floats must be exactly
    representable in their type (the printer then never rounds).
    """

    value: int | float
    type: ScalarType

    def __post_init__(self) -> None:
        t = self.type
        if not isinstance(t, ScalarType):
            raise IRError(f"constants are scalars, got type {t!r}")
        if t.is_float:
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
                raise IRError(f"{t} constant needs a float, got {self.value!r}")
            value = float(self.value)
            if not _float_fits(value, t):
                raise IRError(f"{value!r} is not exactly representable as {t}")
            object.__setattr__(self, "value", value)
            return
        if isinstance(self.value, bool):
            object.__setattr__(self, "value", int(self.value))
        if not isinstance(self.value, int):
            raise IRError(f"{t} constant needs an integer, got {self.value!r}")
        if t.is_pred:
            if self.value not in (0, 1):
                raise IRError(f"pred constant must be 0 or 1, got {self.value}")
            return
        lo, hi = -(1 << (t.bits - 1)), 1 << t.bits
        if not lo <= self.value < hi:
            raise IRError(f"{self.value} does not fit in {t}")
        signed = self.value - (1 << t.bits) if self.value >= 1 << (t.bits - 1) else self.value
        object.__setattr__(self, "value", signed)

    def __str__(self) -> str:
        v = self.value
        if self.type.is_float:
            text = "nan" if math.isnan(v) else repr(v)
        else:
            text = str(v)
        return f"{text}:{self.type}"


Operand = Reg | Const


def const(value: int | float, t: ScalarType | str) -> Const:
    """Shorthand: ``const(1, "i32")``."""
    return Const(value, t if isinstance(t, ScalarType) else ScalarType(t))
