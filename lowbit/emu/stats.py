"""What a launch executed: instruction counts, memory traffic, bank conflicts, mma count.

Counts are *thread*-instructions (one per active thread per executed
instruction) and *warp*-instructions (one per warp with at least one active
lane), by opcode (the first dotted component, ``"ld"``) and by class.
Shared-memory wavefronts follow the single bank model of
:mod:`lowbit.arch.banks`; :func:`warp_wavefronts` is its vectorised form over
many warps at once and is tested against :func:`lowbit.arch.banks.wavefronts`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from lowbit.arch import banks

#: Instruction classes reported in :attr:`Stats.by_class`.
CLASSES = ("arith", "convert", "logic", "memory", "control", "sync", "collective", "mma", "other")


@dataclass
class Stats:
    """Counters of one launch (all integers)."""

    thread_instructions: int = 0
    warp_instructions: int = 0
    by_opcode: Counter = field(default_factory=Counter)  # thread-instructions per opcode
    by_class: Counter = field(default_factory=Counter)  # thread-instructions per class
    warp_by_opcode: Counter = field(default_factory=Counter)
    global_bytes_read: int = 0
    global_bytes_written: int = 0
    local_bytes_read: int = 0  # .local (stack, spills), generic addresses into it included
    local_bytes_written: int = 0
    shared_bytes_read: int = 0
    shared_bytes_written: int = 0
    shared_wavefronts: int = 0
    shared_requests: int = 0  # warp-level shared-memory instructions (ld/st/atom/ldmatrix, cp.async writes)
    #: the same two, per instruction form ("ld.shared.v4.b32", "cp.async.cg.shared.global", "ldmatrix...x4...")
    shared_wavefronts_by_opcode: Counter = field(default_factory=Counter)
    shared_requests_by_opcode: Counter = field(default_factory=Counter)
    #: whether the sanitizer (racecheck, cp.async checks, definedness) was on for this launch
    checks: bool = True
    mma: int = 0  # warp-level mma.sync instructions
    barriers: int = 0  # completed block barriers (per block)
    seconds: float = 0.0

    @property
    def bank_conflict_factor(self) -> float:
        """Average wavefronts per shared request (1.0 means conflict-free)."""
        return self.shared_wavefronts / self.shared_requests if self.shared_requests else 0.0

    def summary(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in self.by_opcode.most_common(8))
        return (
            f"{self.thread_instructions} thread-instr ({self.warp_instructions} warp-instr) in "
            f"{self.seconds:.3f}s; global r/w {self.global_bytes_read}/{self.global_bytes_written} B; "
            f"local r/w {self.local_bytes_read}/{self.local_bytes_written} B; "
            f"shared r/w {self.shared_bytes_read}/{self.shared_bytes_written} B, "
            f"{self.shared_wavefronts} wavefronts / {self.shared_requests} requests; mma {self.mma}; top: {top}"
        )


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
