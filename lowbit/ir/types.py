"""Types of VM values: register tiles, shared and global tensors, pointers.

A VM tensor lives in one memory space and has a dtype (any
:mod:`lowbit.dtypes` type, down to one bit), a shape and a layout:

* :class:`TileType` -- a register tile, a value of static shape; its
  register layout is optional (``None``: the compiler infers one later);
* :class:`SharedType` -- a shared-memory buffer of static shape (allocated
  by ``alloc_shared``); its shared layout (strides, swizzle) is optional too;
* :class:`GlobalType` -- a strided view over a kernel pointer whose shape and
  strides are runtime scalar expressions (M, N, K stay runtime values);
* :class:`PointerType` -- a kernel pointer parameter to elements of a dtype.

Types are frozen values compared by value (usable as dict keys).
:class:`Value` is an SSA value of one of these types, compared by identity.
``bool`` is a VM-only dtype (comparison results, masks) defined here because
the number formats of :mod:`lowbit.dtypes` have no truth values.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Protocol

from lowbit.dtypes import DType, IntType, dtype
from lowbit.errors import DTypeError, IRError

__all__ = [
    "BOOL",
    "INT32",
    "INT64",
    "BoolType",
    "GlobalType",
    "Layout",
    "PointerType",
    "SharedType",
    "TileType",
    "Type",
    "Value",
    "is_arith",
    "is_bool",
    "resolve_dtype",
    "scalar_ok",
]


@dataclass(frozen=True, repr=False)
class BoolType(DType):
    """Truth values of comparisons and masks (one bit, code 1 is true)."""

    bits: int = 1
    is_float = False
    is_int = False

    @property
    def name(self) -> str:
        return "bool"

    @property
    def is_signed(self) -> bool:
        return False

    @property
    def min(self) -> int:
        return 0

    @property
    def max(self) -> int:
        return 1

    # The codec is numpy's through lowbit.dtypes' helpers (the IR itself does not import numpy).
    def decode(self, codes: object) -> object:
        return self._check_codes(codes).astype(float)

    def encode(self, x: object, saturate: bool = False, rounding: str | None = None) -> object:
        bits = dtype("f64").encode(x)  # exact IEEE bit patterns (uint64 codes)
        return ((bits << 1) != 0).astype("uint8")  # +-0 is false, everything else (NaN too) true


BOOL = BoolType()
INT32 = dtype("int32")
INT64 = dtype("int64")

#: Scalar expressions and kernel scalar parameters take these dtypes.
_SCALAR_NAMES = ("bool", "int32", "int64", "uint32", "uint64", "f16", "bf16", "f32", "f64")


def resolve_dtype(name_or_type: str | DType) -> DType:
    """A dtype from its name (``"f16"``, ``"uint4"``, ``"bool"``) or itself."""
    if isinstance(name_or_type, DType):
        return name_or_type
    if name_or_type == "bool":
        return BOOL
    try:
        return dtype(name_or_type)
    except DTypeError as exc:
        text = str(exc).removeprefix(f"unknown format name {name_or_type!r}; ")  # do not say it twice
        raise IRError(f"unknown dtype {name_or_type!r}: {text}") from None


def is_bool(t: DType) -> bool:
    return isinstance(t, BoolType)


def scalar_ok(t: DType) -> bool:
    """True when ``t`` may be the dtype of a scalar expression."""
    return t.name in _SCALAR_NAMES


def is_arith(t: DType) -> bool:
    """True when elementwise arithmetic is defined on ``t`` (ints and f16/bf16/f32/f64)."""
    return isinstance(t, IntType) or t.name in ("f16", "bf16", "f32", "f64")


class Layout(Protocol):
    """What the IR needs of a :mod:`lowbit.layout` layout: a value with a one-line text form."""

    def to_text(self) -> str: ...

    def __hash__(self) -> int: ...


def _check_shape(shape: tuple[int, ...], what: str) -> None:
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise IRError(f"{what} shape must be a tuple of ints, got {shape!r}")
    if any(s <= 0 for s in shape):
        raise IRError(f"{what} shape {list(shape)} has a non-positive extent")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


@dataclass(frozen=True)
class TileType:
    """A register tile: ``dtype``, static ``shape`` (rank >= 1), optional register layout.

    The layout's shape may exceed the tile's along some dimensions (a
    *padded* layout: a tile of 5 x 20 spread over 128 threads as if it were
    8 x 32); its coordinates outside the tile are phantom elements, which the
    lowering never loads from or stores to memory and leaves out of
    reductions.
    """

    dtype: DType
    shape: tuple[int, ...]
    layout: Layout | None = None

    def __post_init__(self) -> None:
        _check_shape(self.shape, "tile")
        if not self.shape:
            raise IRError("a tile has rank >= 1 (scalars are expressions)")
        lshape = getattr(self.layout, "shape", None)
        if self.layout is not None and isinstance(lshape, tuple) and (
                len(lshape) != len(self.shape) or any(a < b for a, b in zip(lshape, self.shape))):  # fmt: skip
            raise IRError(f"layout {self.layout} has shape {list(lshape)}, which does not cover the tile "
                          f"{list(self.shape)}")  # fmt: skip

    @property
    def padded(self) -> bool:
        """Whether the layout covers more than the tile (phantom elements)."""
        lshape = getattr(self.layout, "shape", None)
        return lshape is not None and tuple(lshape) != self.shape

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def with_dtype(self, dt: DType) -> TileType:
        return TileType(dt, self.shape, None)

    def __str__(self) -> str:
        lay = f", {self.layout.to_text()}" if self.layout is not None else ""
        return f"tile<{self.dtype.name}, {_shape_text(self.shape)}{lay}>"


@dataclass(frozen=True)
class SharedType:
    """A shared-memory buffer of static ``shape`` with an optional shared layout."""

    dtype: DType
    shape: tuple[int, ...]
    layout: Layout | None = None

    def __post_init__(self) -> None:
        _check_shape(self.shape, "shared")

    def __str__(self) -> str:
        lay = f", {self.layout.to_text()}" if self.layout is not None else ""
        return f"shared<{self.dtype.name}, {_shape_text(self.shape)}{lay}>"


@dataclass(frozen=True)
class GlobalType:
    """A strided global view of rank ``ndim`` whose elements are ``dtype``."""

    dtype: DType
    ndim: int

    def __post_init__(self) -> None:
        if self.ndim < 1:
            raise IRError("a global view has rank >= 1")

    def __str__(self) -> str:
        return f"global<{self.dtype.name}, {self.ndim}>"


@dataclass(frozen=True)
class PointerType:
    """A kernel parameter pointing at global memory holding ``dtype`` elements."""

    dtype: DType

    def __str__(self) -> str:
        return f"ptr<{self.dtype.name}>"


Type = TileType | SharedType | GlobalType | PointerType


@dataclass(frozen=True, eq=False)
class Value:
    """An SSA value (tile, shared buffer, global view, pointer), compared by identity.

    ``hint`` is a readable name (the DSL variable) used only in messages; the
    printer names values canonically by definition order.
    """

    type: Type
    hint: str = ""

    def __repr__(self) -> str:
        return f"Value({self.hint or '?'}: {self.type})"
