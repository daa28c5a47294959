"""Errors a kernel author sees: ``file:line:col``, the source line and a caret.

Inside the compiler, refusals are raised as :class:`Fail` (just a message).
The frontend's single wrapping point (``Frontend.visit``) turns the first
``Fail`` (or :class:`~lowbit.errors.IRError` from an op constructor) into a
:class:`SourceError` stamped with the innermost AST node being compiled; the
public entry points re-raise it with a fresh traceback so that no lowbit
compiler frame is shown.  Columns are 1-based, as in compiler messages.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass

from lowbit.errors import DSLError

__all__ = ["Fail", "SourceError", "SourceInfo", "format_located"]


class Fail(Exception):
    """A refusal inside the DSL compiler; located by the frontend's wrapping point."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SourceInfo:
    """Where a parsed function's text came from: file, first line, indentation removed by dedent."""

    filename: str
    line_offset: int  # file line of the parsed text's line 1, minus 1
    col_offset: int  # columns removed by dedent

    def locate(self, lineno: int, col: int) -> tuple[int, int]:
        """(1-based file line, 1-based column) of an AST position."""
        return lineno + self.line_offset, col + self.col_offset + 1


def format_located(reason: str, filename: str, line: int, col: int) -> str:
    """``file:line:col: reason``, then the source line and a caret under the column."""
    text = linecache.getline(filename, line).rstrip("\n")
    caret = ""
    if text:
        caret = f"\n    {text.strip()}\n    {' ' * (col - 1 - (len(text) - len(text.lstrip())))}^"
    return f"{filename}:{line}:{col}: {reason}{caret}"


class SourceError(DSLError):
    """A mistake in a kernel, at ``filename:line:col``; ``reason`` is the bare message."""

    def __init__(self, reason: str, filename: str, line: int, col: int) -> None:
        self.reason = reason
        self.filename = filename
        self.line = line
        self.col = col
        super().__init__(format_located(reason, filename, line, col))

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.line}:{self.col}"
