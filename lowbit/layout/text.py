"""The compact text form of every layout kind, and its parser.

Each layout's ``to_text()`` (also its ``str()``) is one line without spaces;
:func:`parse` reads any of them back (``parse(x.to_text()) == x``), so the IR
printer and parser can embed layouts verbatim.  (The readable form is each
layout's ``describe()``; it is not parsed.)  Grammar::

    layout    := register | memory | swizzled | swizzle | strided
    register  := "R[" dims "|t=" digits "|l=" digits "]"
    dims      := dim ("," dim)*          dim := INT ("." INT)*   (modes, most significant first; "1" = no mode)
    digits    := "" | digit ("." digit)*  digit := "m" INT | "r" INT   (mode id / replication)
    strided   := tuple ":" tuple         tuple := INT | "(" tuple ("," tuple)* ")"
    swizzle   := "Sw<" INT "," INT "," INT ">"
    swizzled  := swizzle "o" strided
    memory    := "M[b" INT "|" strided ("|" swizzle)? "]"
"""

from __future__ import annotations

import re

from lowbit.errors import LayoutError
from lowbit.layout.register import RegisterLayout
from lowbit.layout.strided import IntTuple, Layout
from lowbit.layout.subbyte import MemoryLayout
from lowbit.layout.swizzle import Swizzle, SwizzledLayout

AnyLayout = RegisterLayout | Layout | Swizzle | SwizzledLayout | MemoryLayout

_REGISTER = re.compile(r"R\[([0-9.,]+)\|t=([mr0-9.]*)\|l=([m0-9.]*)\]")
_SWIZZLE = re.compile(r"Sw<(\d+),(\d+),(\d+)>")
_MEMORY = re.compile(r"M\[b(\d+)\|([^|\]]+)(?:\|(Sw<\d+,\d+,\d+>))?\]")


def to_text(layout: AnyLayout) -> str:
    """The compact text of any layout (same as ``layout.to_text()``)."""
    if not isinstance(layout, (RegisterLayout, Layout, Swizzle, SwizzledLayout, MemoryLayout)):
        raise LayoutError(f"to_text(): not a layout: {layout!r}", layout)
    return layout.to_text()


def parse(text: str) -> AnyLayout:
    """Parse the text form of any layout kind (see the module grammar)."""
    if not isinstance(text, str):
        raise LayoutError(f"parse() takes a string, got {type(text).__name__}", text)
    s = text.strip()
    try:
        if s.startswith("R["):
            return _register(s)
        if s.startswith("M["):
            m = _MEMORY.fullmatch(s)
            if not m:
                raise ValueError("malformed memory layout")
            sw = _swizzle(m.group(3)) if m.group(3) else None
            return MemoryLayout(_strided(m.group(2)), int(m.group(1)), sw)
        if s.startswith("Sw<"):
            m = _SWIZZLE.match(s)
            if not m:
                raise ValueError("malformed swizzle")
            sw = _swizzle(m.group(0))
            rest = s[m.end() :]
            if not rest:
                return sw
            if not rest.startswith("o"):
                raise ValueError("expected 'o' after a swizzle")
            return SwizzledLayout(sw, _strided(rest[1:]))
        return _strided(s)
    except LayoutError:
        raise
    except (ValueError, IndexError) as exc:
        raise LayoutError(f"cannot parse layout text {text!r}: {exc}", text) from exc


def _swizzle(s: str) -> Swizzle:
    m = _SWIZZLE.fullmatch(s)
    if not m:
        raise ValueError(f"malformed swizzle {s!r}")
    return Swizzle(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _digits(s: str, allow_rep: bool) -> tuple[int, ...]:
    if not s:
        return ()
    out = []
    for part in s.split("."):
        if part.startswith("m") and part[1:].isdigit():
            out.append(int(part[1:]))
        elif allow_rep and part.startswith("r") and part[1:].isdigit() and int(part[1:]) > 1:
            out.append(-int(part[1:]))
        else:
            raise ValueError(f"bad digit {part!r}")
    return tuple(out)


def _register(s: str) -> RegisterLayout:
    m = _REGISTER.fullmatch(s)
    if not m:
        raise ValueError("malformed register layout")
    modes = []
    for dim in m.group(1).split(","):
        sizes = tuple(int(x) for x in dim.split("."))
        modes.append(() if sizes == (1,) else sizes)
    return RegisterLayout(tuple(modes), _digits(m.group(2), True), _digits(m.group(3), False))


def _strided(s: str) -> Layout:
    if s.count(":") != 1:
        raise ValueError("a strided layout is shape:stride")
    a, b = s.split(":")
    return Layout(_int_tuple(a), _int_tuple(b))


def _int_tuple(s: str) -> IntTuple:
    pos = 0

    def value() -> IntTuple:
        nonlocal pos
        if pos < len(s) and s[pos] == "(":
            pos += 1
            items = [value()]
            while pos < len(s) and s[pos] == ",":
                pos += 1
                items.append(value())
            if pos >= len(s) or s[pos] != ")":
                raise ValueError(f"expected ')' at {pos} in {s!r}")
            pos += 1
            return tuple(items)
        m = re.compile(r"\d+").match(s, pos)
        if not m:
            raise ValueError(f"expected an integer at {pos} in {s!r}")
        pos = m.end()
        return int(m.group(0))

    out = value()
    if pos != len(s):
        raise ValueError(f"trailing text {s[pos:]!r}")
    return out


__all__ = ["AnyLayout", "parse", "to_text"]
