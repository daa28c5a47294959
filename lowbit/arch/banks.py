"""The shared-memory bank model: the one place lowbit says what a bank conflict costs.

The layout analysis, the compiler's passes and the emulator's ``Stats`` all ask
this module, so they cannot disagree.

Model (NVIDIA CUDA C++ Programming Guide, "Shared Memory" sections for compute
capability 5.x and later, which 8.x/9.x/10.x/12.x keep):

* Shared memory has 32 banks; successive 32-bit words map to successive banks
  (bank = (byte_address // 4) % 32).
* A warp's request is served in *phases*: accesses of at most 4 bytes per
  thread are one phase of 32 lanes; 8-byte accesses are two half-warp phases
  (lanes 0-15, 16-31); 16-byte accesses are four quarter-warp phases of 8
  lanes.  ``ldmatrix`` reads one 16-byte row per address, 8 addresses per
  8x8 matrix, so each matrix is one 8-address phase (PTX ISA, "Warp-level
  matrix load instruction: ldmatrix").
* Within a phase, lanes that touch the *same* 32-bit word are served together
  (broadcast / multicast); lanes that touch *different* words in the same bank
  are serialised.  A phase costs ``max over banks of (distinct words in that
  bank)`` wavefronts (at least 1 if any lane is active); a request costs the
  sum over its phases.

Table lookups (the codebook pair tables of
:mod:`lowbit.transforms._lower_codebook`): :func:`table_wavefronts` of one
warp's lookup in a table replicated in interleaved copies
(:func:`table_unit`), :func:`worst_table_wavefronts` its bound, and
:func:`expected_table_wavefronts` its mean over uniformly random codes --
what the codebook cost model charges.

This is a model, not a measurement: real hardware merges some phases (e.g. an
8-byte access whose half-warps touch disjoint banks can complete in one pass).
It is deliberately the simple, documented rule so that analysis and emulator
agree; a GPU session can cross-check it against Nsight Compute's
``l1tex__data_pipe_lsu_wavefronts_mem_shared`` counters.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from lowbit.errors import ArchError

NUM_BANKS = 32
BANK_BYTES = 4
WARP_SIZE = 32
LDMATRIX_ROW_BYTES = 16
LDMATRIX_ROWS = 8

_VALID_WIDTHS = (1, 2, 4, 8, 16)


def bank_of(byte_address: int) -> int:
    """The bank that serves ``byte_address``."""
    return (byte_address // BANK_BYTES) % NUM_BANKS


def phase_lanes(access_bytes: int) -> int:
    """Lanes served per phase for a per-thread access of ``access_bytes`` (1, 2, 4, 8 or 16)."""
    if access_bytes not in _VALID_WIDTHS:
        raise ArchError(f"shared-memory access width must be one of {_VALID_WIDTHS} bytes, got {access_bytes}")
    if access_bytes <= 4:
        return 32
    return 32 * 4 // access_bytes  # 8 bytes -> 16 lanes, 16 bytes -> 8 lanes


def _phase_cost(addresses: Sequence[int | None], access_bytes: int) -> int:
    words_per_bank: dict[int, set[int]] = {}
    for addr in addresses:
        if addr is None:
            continue
        if addr < 0:
            raise ArchError(f"negative shared-memory address {addr}")
        if addr % access_bytes:
            raise ArchError(f"address {addr:#x} is not aligned to the {access_bytes}-byte access width")
        first = addr // BANK_BYTES
        last = (addr + access_bytes - 1) // BANK_BYTES
        for word in range(first, last + 1):
            words_per_bank.setdefault(word % NUM_BANKS, set()).add(word)
    return max((len(w) for w in words_per_bank.values()), default=0)


def wavefronts(addresses: Sequence[int | None], access_bytes: int) -> int:
    """Wavefronts one warp-wide shared-memory access costs.

    ``addresses[lane]`` is the byte address lane ``lane`` accesses (``None``
    for an inactive lane); at most 32 lanes.  ``access_bytes`` is the
    per-thread width (1, 2, 4, 8 or 16).  Returns 0 when no lane is active.
    """
    if len(addresses) > WARP_SIZE:
        raise ArchError(f"a warp has {WARP_SIZE} lanes, got {len(addresses)} addresses")
    step = phase_lanes(access_bytes)
    return sum(_phase_cost(addresses[i : i + step], access_bytes) for i in range(0, len(addresses), step))


def ldmatrix_wavefronts(row_addresses: Sequence[int], num: int) -> int:
    """Wavefronts of one ``ldmatrix.sync.aligned.m8n8.x{num}`` (num in 1, 2, 4).

    ``row_addresses`` holds the 8*num row addresses supplied by lanes
    0..8*num-1 (lane 8*i+r gives row r of matrix i).  Each row is 16 bytes and
    must be 16-byte aligned; each matrix is one 8-address phase.
    """
    if num not in (1, 2, 4):
        raise ArchError(f"ldmatrix reads 1, 2 or 4 matrices, got .x{num}")
    if len(row_addresses) != LDMATRIX_ROWS * num:
        raise ArchError(f"ldmatrix .x{num} needs {LDMATRIX_ROWS * num} row addresses, got {len(row_addresses)}")
    return sum(
        _phase_cost(row_addresses[i : i + LDMATRIX_ROWS], LDMATRIX_ROW_BYTES)
        for i in range(0, len(row_addresses), LDMATRIX_ROWS)
    )


def table_unit(entry: int, lane: int, copies: int) -> int:
    """The unit (``entry_bytes``-sized slot) that ``lane`` reads for ``entry`` of a table replicated ``copies``
    times, copies interleaved: unit ``entry * copies + lane % copies``.  Copy ``r`` then sits in the banks
    ``r (mod copies)`` (4-byte units; 8-byte units: ``2r, 2r + 1 (mod 2 copies)``): lanes of different copies
    never share a bank, so a phase's conflicts are among the ``phase lanes / copies`` lanes of one copy."""
    return entry * copies + lane % copies


def table_wavefronts(codes: Sequence[int | None], entry_bytes: int, copies: int = 1) -> int:
    """Wavefronts of one warp's lookup of ``codes[lane]`` (None: inactive) in a table of ``entry_bytes`` entries
    replicated ``copies`` times (:func:`table_unit`)."""
    if copies < 1 or copies & (copies - 1) or copies > WARP_SIZE:
        raise ArchError(f"a table's copies must be a power of two up to {WARP_SIZE}, got {copies}")
    addrs = [None if c is None else table_unit(c, lane, copies) * entry_bytes for lane, c in enumerate(codes)]
    return wavefronts(addrs, entry_bytes)


def worst_table_wavefronts(entries: int, entry_bytes: int, copies: int = 1) -> int:
    """The most wavefronts a warp's lookup can take (every lane active): per phase, the lanes of one copy
    (``phase lanes / copies``, at least 1) all in different words of one bank -- bounded by the distinct
    words one bank holds of one copy."""
    lanes = phase_lanes(entry_bytes)
    per_bank = max(1, entries * copies * entry_bytes // BANK_BYTES // NUM_BANKS)  # words of the table in a bank
    k = min(max(1, lanes // copies), per_bank)
    return (WARP_SIZE // lanes) * k


def expected_table_wavefronts(entries: int, entry_bytes: int, copies: int = 1, samples: int = 1024) -> float:
    """The mean wavefronts of a warp's lookup of independent, uniformly random entries (every lane active):
    the average of :func:`table_wavefronts` over ``samples`` fixed pseudo-random warps (the same every call)."""
    key = (entries, entry_bytes, copies, samples)
    if key not in _EXPECTED:
        rng = random.Random(12345)
        warps = ([rng.randrange(entries) for _ in range(WARP_SIZE)] for _ in range(samples))
        _EXPECTED[key] = sum(table_wavefronts(codes, entry_bytes, copies) for codes in warps) / samples
    return _EXPECTED[key]


_EXPECTED: dict[tuple[int, int, int, int], float] = {}


__all__ = [
    "BANK_BYTES",
    "LDMATRIX_ROWS",
    "LDMATRIX_ROW_BYTES",
    "NUM_BANKS",
    "WARP_SIZE",
    "bank_of",
    "expected_table_wavefronts",
    "ldmatrix_wavefronts",
    "phase_lanes",
    "table_unit",
    "table_wavefronts",
    "wavefronts",
    "worst_table_wavefronts",
]
