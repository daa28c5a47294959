"""SIMT ops that involve the whole warp or block: the barrier, shuffles and votes.

Every thread named in a ``member_mask`` (every thread of the block, for the
barrier) must execute the op.  Re-exported by :mod:`lowbit.ir.simt.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.ir.simt.base import Op
from lowbit.ir.simt.types import F32, I32, PRED, Operand, Reg

__all__ = ["SHFL_MODES", "VOTE_MODES", "Barrier", "Shfl", "Trap", "Vote"]

SHFL_MODES = ("idx", "up", "down", "bfly")
VOTE_MODES = ("all", "any", "uni", "ballot")


@dataclass(frozen=True, eq=False)
class Barrier(Op):
    """Block-wide barrier (``bar.sync 0``): every thread of the block must reach it."""

    opname = "barrier"


@dataclass(frozen=True, eq=False)
class Trap(Op):
    """``@cond trap``: a thread whose ``cond`` holds aborts the launch (PTX ``trap``; the GPU reports an error).

    ``code`` says why, for the launch layer to explain the abort: it is written next to the ``trap`` in the
    PTX (``// lowbit trap <code>``); :data:`TRAP_RANGE_STEP` + i is runtime-step loop ``i``'s guard
    (:func:`lowbit.ir.loops.runtime_step_loops`).
    """

    cond: Operand
    code: int
    opname = "trap_if"
    result_fields, operand_fields = (), ("cond",)

    def __post_init__(self) -> None:
        self.expect(PRED, "cond")
        if not isinstance(self.code, int) or self.code < 0:
            raise self.fail(f"the trap code must be a non-negative int, got {self.code!r}")


@dataclass(frozen=True, eq=False)
class Shfl(Op):
    """``shfl.sync.<mode>.b32``: ``lane`` is the source lane / delta / xor mask, ``clamp`` PTX's ``c`` operand."""

    result: Reg
    mode: str
    value: Operand
    lane: Operand
    clamp: Operand
    member_mask: Operand
    opname = "shfl"
    result_fields, operand_fields = ("result",), ("value", "lane", "clamp", "member_mask")

    def __post_init__(self) -> None:
        self.known(self.mode, SHFL_MODES, "shuffle mode")
        t = self.want(self.value, "value")
        if t not in (I32, F32):
            raise self.fail(f"shuffles move i32 or f32, got {t}")
        self.expect(I32, "lane", "clamp", "member_mask")
        self.same(self.result_type(), t, "result")


@dataclass(frozen=True, eq=False)
class Vote(Op):
    """``vote.sync.<mode>``: ``ballot`` gives an i32 of lane bits, the others a pred."""

    result: Reg
    mode: str
    pred: Operand
    member_mask: Operand
    opname = "vote"
    result_fields, operand_fields = ("result",), ("pred", "member_mask")

    def __post_init__(self) -> None:
        self.known(self.mode, VOTE_MODES, "vote mode")
        self.expect(PRED, "pred")
        self.expect(I32, "member_mask")
        self.same(self.result_type(), I32 if self.mode == "ballot" else PRED, "result")
