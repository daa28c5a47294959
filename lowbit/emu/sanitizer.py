"""The emulator's bug catchers: error reports, racecheck and cp.async visibility.

A lockstep emulator that certifies a broken pipeline is worse than none, so
the machine checks what a GPU would punish (issue 4, item 5):

* :func:`fault` builds every :class:`~lowbit.errors.EmulatorError` the same
  way: what went wrong, the first offending block/thread (and how many threads
  in all), and the PTX line and text.
* :class:`RaceState` is a shared-memory race detector in the spirit of
  ``compute-sanitizer --tool racecheck``: between two barriers of a block,
  a byte written by one warp and read or written by another warp (or read by
  one warp and then written by another) is a race.  Accesses of one warp are
  ordered by the warp itself and are never reported (PTX ISA 8.x memory
  consistency model: threads of a warp executing one instruction are not
  racing with each other in the sense that matters to CUDA programs).
  Atomics (``atom``/``red`` on shared memory): two atomics never race with
  each other (their atomicity orders them), but an atomic by one warp to a
  byte that another warp *plainly* wrote or read since the last barrier, or a
  plain access to a byte another warp updated atomically, is a race -- the
  plain access is not atomic with respect to the atomic one and which comes
  first is timing-dependent.  This is the hazard ``compute-sanitizer
  --tool racecheck`` reports between plain and atomic shared accesses.
* :class:`AsyncCopies` holds the outstanding ``cp.async`` copies per thread and
  group (PTX ISA 9.7.9.25 "cp.async", "cp.async.commit_group",
  "cp.async.wait_group"): a copy's data lands in shared memory only when the
  issuing thread waits for its group; until then the destination bytes are
  *pending*, and any access to them raises.
"""

from __future__ import annotations

import numpy as np

from lowbit.errors import EmulatorError


def where_text(machine, threads: np.ndarray, op=None) -> str:
    """``block (..) thread (..)[; N threads]`` for the first of ``threads`` and the PTX line of ``op``."""
    threads = np.asarray(threads).reshape(-1)
    parts = []
    if threads.size:
        t = int(threads[0])
        parts.append(machine.describe_thread(t))
        if threads.size > 1:
            parts.append(f"{threads.size} threads in all")
    text = "; ".join(parts)
    if op is not None:
        text += f" at PTX line {op.line}: `{op.text}`"
    return text


def fault(machine, kind: str, message: str, threads, op=None, cls=EmulatorError) -> EmulatorError:
    """An error ``kind: message (block .., thread ..) at PTX line N: `text```."""
    return cls(f"{kind}: {message} ({where_text(machine, threads, op)})")


class RaceState:
    """Per shared-memory byte: the last writing warp and the warps that read it since the last barrier.

    ``writer[b] = -1`` when no warp wrote byte ``b`` since the barrier;
    ``reader[b]`` is one warp that read it (``-1`` none) and ``multi[b]`` says
    that at least two different warps read it.  Warps are numbered globally
    (block * warps_per_block + warp); bytes are flat (block * shared_size + offset).
    """

    #: ``atomic[b]`` when atomics of two or more different warps touched byte ``b``
    SEVERAL = -2

    def __init__(self, nbytes: int) -> None:
        self.writer = np.full(nbytes, -1, np.int32)
        self.reader = np.full(nbytes, -1, np.int32)
        self.multi = np.zeros(nbytes, bool)
        self.atomic = np.full(nbytes, -1, np.int32)  # warp of the atomics since the barrier, or SEVERAL
        self.any_atomic = False  # lets plain accesses skip the atomic check when no atomic ran

    def reset(self, lo: int | None = None, hi: int | None = None) -> None:
        """Forget all accesses in bytes ``[lo, hi)`` (a barrier of the blocks owning them)."""
        self.writer[lo:hi] = -1
        self.reader[lo:hi] = -1
        self.multi[lo:hi] = False
        if self.any_atomic:
            self.atomic[lo:hi] = -1
            if lo is None:
                self.any_atomic = False

    def _atomic_clash(self, byte_idx, warps):
        """``(position, other_warp)`` of a byte another warp (``-1``: several) updated atomically, or None."""
        if not self.any_atomic:
            return None
        a = self.atomic[byte_idx]
        bad = (a == self.SEVERAL) | ((a >= 0) & (a != warps))
        if bad.any():
            i = int(np.argmax(bad.reshape(-1)))
            return i, max(int(a.reshape(-1)[i]), -1)
        return None

    def atomic_access(self, byte_idx: np.ndarray, warps: np.ndarray):
        """Record an atomic read-modify-write; return ``(position, other_warp)`` of a plain access by
        another warp since the barrier, else ``None``.  Each byte occurs at most once in ``byte_idx``."""
        w = self.writer[byte_idx]
        r = self.reader[byte_idx]
        bad = ((w >= 0) & (w != warps)) | ((r >= 0) & (r != warps)) | self.multi[byte_idx]
        if bad.any():
            i = int(np.argmax(bad.reshape(-1)))
            wi, ri = int(w.reshape(-1)[i]), int(r.reshape(-1)[i])
            return i, wi if wi >= 0 and wi != int(warps.reshape(-1)[i]) else ri
        a = self.atomic[byte_idx]
        self.atomic[byte_idx] = np.where((a == -1) | (a == warps), warps, self.SEVERAL)
        self.any_atomic = True
        return None

    def read(self, byte_idx: np.ndarray, warps: np.ndarray):
        """Record reads; return ``(position, other_warp)`` of the first race found, else ``None``."""
        w = self.writer[byte_idx]
        bad = (w >= 0) & (w != warps)
        if bad.any():
            i = int(np.argmax(bad.reshape(-1)))
            return i, int(w.reshape(-1)[i])
        hit = self._atomic_clash(byte_idx, warps)
        if hit is not None:
            return hit
        r = self.reader[byte_idx]
        first = r < 0
        self.reader[byte_idx[first]] = warps[first]
        again = self.reader[byte_idx]
        other = again != warps
        if other.any():
            self.multi[byte_idx[other]] = True
        return None

    def write(self, byte_idx: np.ndarray, warps: np.ndarray):
        """Record writes; return ``(position, other_warp)`` of the first race found, else ``None``."""
        w = self.writer[byte_idx]
        r = self.reader[byte_idx]
        bad = ((w >= 0) & (w != warps)) | ((r >= 0) & (r != warps)) | self.multi[byte_idx]
        if bad.any():
            i = int(np.argmax(bad.reshape(-1)))
            other = int(w.reshape(-1)[i]) if w.reshape(-1)[i] >= 0 and w.reshape(-1)[i] != warps.reshape(-1)[i] else int(r.reshape(-1)[i])
            return i, other
        hit = self._atomic_clash(byte_idx, warps)
        if hit is not None:
            return hit
        self.writer[byte_idx] = warps
        again = self.writer[byte_idx]
        clash = again != warps  # two warps wrote one byte in this very instruction
        if clash.any():
            i = int(np.argmax(clash.reshape(-1)))
            return i, int(again.reshape(-1)[i])
        return None


class AsyncCopies:
    """Outstanding ``cp.async`` copies, completed per thread by ``wait_group``/``wait_all``.

    Each issued instruction adds one record: the issuing threads, the group
    number each thread will commit it in (its commit count at issue time),
    the flat destination byte indices ``(n, size)`` and the bytes read from
    the source at issue (the source is read between issue and wait on a GPU;
    reading it at issue is one legal schedule).
    """

    def __init__(self, nthreads: int) -> None:
        self.committed = np.zeros(nthreads, np.int64)
        self.records: list[list] = []  # [threads, group, dst_bytes, data, warps]

    def issue(self, threads, dst_bytes, data, warps) -> None:
        self.records.append([threads, self.committed[threads].copy(), dst_bytes, data, warps])

    def commit(self, threads) -> None:
        self.committed[threads] += 1

    def complete(self, threads_mask: np.ndarray, keep_groups: int | None):
        """Pop the copies of threads in ``threads_mask`` whose group is older than the newest ``keep_groups``.

        ``keep_groups=None`` means ``wait_all`` (every copy, committed or not).
        Yields ``(dst_bytes, data, warps)`` for each completed part.
        """
        done = []
        kept = []
        for rec in self.records:
            threads, group, dst, data, warps = rec
            sel = threads_mask[threads]
            if keep_groups is not None:
                sel &= group < self.committed[threads] - keep_groups
            if sel.any():
                done.append((dst[sel], data[sel], warps[sel]))
                if not sel.all():
                    keep = ~sel
                    kept.append([threads[keep], group[keep], dst[keep], data[keep], warps[keep]])
            else:
                kept.append(rec)
        self.records = kept
        return done

    @property
    def outstanding(self) -> int:
        return sum(len(r[0]) for r in self.records)
