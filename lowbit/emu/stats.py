"""What a launch executed: instruction counts, issue slots, memory traffic per buffer, bank conflicts.

Three instruction counts, by opcode (the first dotted component, ``"ld"``)
and by class (:data:`CLASSES`):

* *thread*-instructions: one per active thread per executed instruction
  (a lane whose guard predicate is false, or that sits on the other side of
  a divergent branch, is not active);
* *warp*-instructions: one per warp with at least one active lane;
* *issue slots*: 32 per warp that issues the instruction -- every warp with
  a lane at that pc, including warps whose lanes are all predicated off
  (``@%p`` false: the instruction still issues on the GPU) and the idle
  lanes of partial or divergent warps -- so masked-off lanes are not free.

Global traffic is also counted per *buffer*: the mapped region an access
falls in, named by its kernel parameter (or module variable), so a
benchmark can say how many bytes came from the weight array alone.

Shared-memory wavefronts follow the single bank model of
:mod:`lowbit.arch.banks`; :func:`warp_wavefronts` is its vectorised form over
many warps at once and is tested against :func:`lowbit.arch.banks.wavefronts`.
They are kept in total and per *access kind* (:func:`shared_access_key`:
``"ldmatrix.x4"``, ``"cp.async.cg.16"``, or the full opcode such as
``"ld.shared.v4.u32"``), with the requests (warp-level instructions) that
caused them, so ``ldmatrix.xN`` can be checked to cost N wavefronts a request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lowbit.arch import banks

#: Instruction classes reported in :attr:`Stats.by_class`.
CLASSES = ("arith", "convert", "logic", "memory", "control", "sync", "collective", "mma", "other")


@dataclass
class Stats:
    """Counters of one launch (all integers, except ``seconds``)."""

    thread_instructions: int = 0
    warp_instructions: int = 0
    issue_slots: int = 0  # 32 x warp-instructions issued, masked-off and predicated-off lanes included
    by_opcode: Counter = field(default_factory=Counter)  # thread-instructions per opcode
    by_class: Counter = field(default_factory=Counter)  # thread-instructions per class
    warp_by_opcode: Counter = field(default_factory=Counter)
    issue_by_opcode: Counter = field(default_factory=Counter)  # issue slots per opcode
    issue_by_class: Counter = field(default_factory=Counter)  # issue slots per class
    global_bytes_read: int = 0
    global_bytes_written: int = 0
    #: global bytes per buffer, keyed by kernel parameter name (module variables by their name; one
    #: array passed as several parameters is one buffer, keyed "p=q"); see :meth:`argument_traffic`
    global_read_by_buffer: Counter = field(default_factory=Counter)
    global_written_by_buffer: Counter = field(default_factory=Counter)
    #: distinct 32-byte sectors each warp instruction touched, per buffer (what crosses to L2/DRAM: lanes of
    #: one warp reading the same word count once); see :meth:`argument_sectors`
    global_sectors_read_by_buffer: Counter = field(default_factory=Counter)
    global_sectors_written_by_buffer: Counter = field(default_factory=Counter)
    local_bytes_read: int = 0  # .local (stack, spills), generic addresses into it included
    local_bytes_written: int = 0
    shared_bytes_read: int = 0
    shared_bytes_written: int = 0
    shared_wavefronts: int = 0
    shared_requests: int = 0  # warp-level shared-memory instructions (ld/st/atom/ldmatrix/cp.async)
    shared_wavefronts_by_opcode: Counter = field(default_factory=Counter)  # keyed by shared_access_key
    shared_requests_by_opcode: Counter = field(default_factory=Counter)
    mma: int = 0  # warp-level mma.sync instructions
    barriers: int = 0  # completed block barriers (per block)
    #: the entry's parameter names in order (what :meth:`argument_traffic` renames by position)
    params: tuple[str, ...] = ()
    #: whether the sanitizer (racecheck, cp.async pending checks, definedness) was on; memcheck always is
    checks: bool = True
    seconds: float = 0.0

    @property
    def bank_conflict_factor(self) -> float:
        """Average wavefronts per shared request (1.0 means conflict-free)."""
        return self.shared_wavefronts / self.shared_requests if self.shared_requests else 0.0

    def wavefronts_per_request(self, key: str) -> float:
        """Average wavefronts of one request of the access kind ``key`` (0.0 if it never ran)."""
        req = self.shared_requests_by_opcode.get(key, 0)
        return self.shared_wavefronts_by_opcode.get(key, 0) / req if req else 0.0

    def argument_traffic(self, names: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
        """``{buffer: (bytes read, bytes written)}`` of global memory, every buffer the launch mapped.

        Keys are the PTX parameter names; with ``names`` (one per parameter,
        in order -- e.g. a compiler's user-level argument names) each
        parameter name is replaced by the name at its position.  Buffers
        that were never touched have ``(0, 0)``.
        """
        return self._per_buffer(self.global_read_by_buffer, self.global_written_by_buffer, names, "argument_traffic")

    def argument_sectors(self, names: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
        """``{buffer: (32-byte sectors read, sectors written)}``, counted once per warp instruction.

        Where :meth:`argument_traffic` adds every lane's bytes (32 lanes
        reading one word are 128 bytes), this counts what the memory system
        moves: the distinct sectors each warp instruction touches.  Sixteen
        lanes sharing a scale word cost one sector, a warp reading 512
        contiguous bytes costs 16.  ``names`` renames as in
        :meth:`argument_traffic`.
        """
        return self._per_buffer(self.global_sectors_read_by_buffer, self.global_sectors_written_by_buffer, names,
                                "argument_sectors")

    def _per_buffer(self, read: Counter, written: Counter, names, who: str) -> dict[str, tuple[int, int]]:
        if names is not None and len(names) != len(self.params):
            raise ValueError(f"{who}: {len(names)} names for {len(self.params)} parameters")
        rename = dict(zip(self.params, names)) if names is not None else {}
        out = {}
        for key in dict.fromkeys([*self.global_read_by_buffer, *self.global_written_by_buffer]):
            new = "=".join(rename.get(part, part) for part in key.split("="))
            out[new] = (read.get(key, 0), written.get(key, 0))
        return out

    def summary(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in self.by_opcode.most_common(8))
        per = ", ".join(f"{k} {r}/{w}" for k, (r, w) in self.argument_traffic().items() if r or w)
        return (
            f"{self.thread_instructions} thread-instr ({self.warp_instructions} warp-instr, "
            f"{self.issue_slots} issue slots) in {self.seconds:.3f}s{'' if self.checks else ' (checks off)'}; "
            f"global r/w {self.global_bytes_read}/{self.global_bytes_written} B ({per}); "
            f"local r/w {self.local_bytes_read}/{self.local_bytes_written} B; "
            f"shared r/w {self.shared_bytes_read}/{self.shared_bytes_written} B, "
            f"{self.shared_wavefronts} wavefronts / {self.shared_requests} requests; mma {self.mma}; top: {top}"
        )


def shared_access_key(opcode: str, modifiers: Sequence[str], size: int | None = None) -> str:
    """The key of :attr:`Stats.shared_wavefronts_by_opcode` for one instruction.

    ``ldmatrix`` -> ``"ldmatrix.x{1,2,4}"`` (plus ``".trans"``), ``cp.async``
    -> ``"cp.async.{ca,cg}.{size}"`` (its copy size is an operand, not a
    modifier), anything else its full dotted opcode (``"ld.shared.v4.u32"``).
    """
    if opcode == "ldmatrix":
        num = next((x for x in modifiers if x in ("x1", "x2", "x4")), "x?")
        return f"ldmatrix.{num}" + (".trans" if "trans" in modifiers else "")
    if opcode == "cp" and "async" in modifiers and size is not None:
        cache = next((x for x in modifiers if x in ("ca", "cg")), "ca")
        return f"cp.async.{cache}.{size}"
    return ".".join((opcode, *modifiers))


def warp_wavefronts(warp: np.ndarray, lane: np.ndarray, addr: np.ndarray, access_bytes: int) -> tuple[int, int]:
    """Total wavefronts and number of warp requests for one instruction's shared accesses.

    ``warp``, ``lane`` and ``addr`` give, for each active thread, its (global)
    warp number, lane and byte address; ``access_bytes`` is the per-thread
    width.  The rule is :func:`lowbit.arch.banks.wavefronts` per warp: lanes
    are cut into phases of :func:`~lowbit.arch.banks.phase_lanes` lanes, and a
    phase costs the largest number of distinct 32-bit words in one bank.
    """
    if warp.size == 0:
        return 0, 0
    step = banks.phase_lanes(access_bytes)
    phase = warp.astype(np.int64) * (banks.WARP_SIZE // step) + lane.astype(np.int64) // step
    nwords = max(1, access_bytes // banks.BANK_BYTES)
    first = addr.astype(np.int64) // banks.BANK_BYTES
    words = (first[:, None] + np.arange(nwords)).reshape(-1)
    phases = np.repeat(phase, nwords)
    # distinct (phase, word) pairs, then count words per (phase, bank) and take the max per phase.
    # One sort and run boundaries instead of np.unique: numpy 2's hash-based unique is several
    # times slower here, and this runs for every shared access of every launch.
    key = np.sort(phases * (1 << 34) + words)
    key = key[_run_starts(key)]
    ph = key >> 34
    bank = (key & ((1 << 34) - 1)) % banks.NUM_BANKS
    starts = _run_starts(ph)
    inv = np.cumsum(starts) - 1
    nph = int(inv[-1]) + 1
    counts = np.bincount(inv * banks.NUM_BANKS + bank, minlength=nph * banks.NUM_BANKS)
    total = int(counts.reshape(nph, banks.NUM_BANKS).max(axis=1).sum())
    warp_of_phase = ph[starts] // (banks.WARP_SIZE // step)  # sorted, like the phases
    return total, int(np.count_nonzero(_run_starts(warp_of_phase)))


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values in a sorted, non-empty array."""
    out = np.empty(sorted_keys.size, dtype=bool)
    out[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=out[1:])
    return out


def ldmatrix_wavefronts(warp: np.ndarray, lane: np.ndarray, addr: np.ndarray) -> tuple[int, int]:
    """Wavefronts of ``ldmatrix``: each 8-row matrix is one phase of 16-byte rows (lane // 8 picks it)."""
    return warp_wavefronts(warp, lane, addr, banks.LDMATRIX_ROW_BYTES)
