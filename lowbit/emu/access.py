"""Checked memory accesses: address resolution, memcheck, racecheck, cp.async hazards, shadows.

:class:`MemUnit` is the single path by which executors touch memory, so
every access is checked the same way (issue 4, item 5):

* the address must be defined, inside a mapped region (global), inside the
  launch's shared size or the thread's local size, and aligned to the access
  size (PTX ISA 5.1 / 6.4.1: "the address must be naturally aligned");
* shared accesses go through :class:`~lowbit.emu.sanitizer.RaceState` (plain
  loads and stores, and atomics, which race only with plain accesses of other
  warps) and are refused while a ``cp.async`` to the same bytes is pending;
* shared/local loads return the per-element definedness from the shadow.

Generic addresses are split by window (:mod:`lowbit.emu.memory`).  Stats
count bytes and, for shared memory, bank wavefronts.  Space ``"callparam"``
is local memory holding a call's ``.param`` arguments
(:mod:`lowbit.emu.inline`); its bytes are not counted as local traffic
(ptxas passes arguments in registers).
"""

from __future__ import annotations

import numpy as np

from lowbit.emu.memory import GLOBAL_BASE, LOCAL_WINDOW, SHARED_WINDOW, WINDOW_SIZE, ShadowSpace
from lowbit.emu.sanitizer import AsyncCopies, RaceState, fault
from lowbit.emu.stats import warp_wavefronts


class MemUnit:
    def __init__(self, m, heap, shared_size: int, local_size: int) -> None:
        self.m = m
        self.heap = heap
        self.S = (shared_size + 15) // 16 * 16
        self.shared_size = shared_size
        self.shared = ShadowSpace(m.nb * self.S)
        self.L = (local_size + 15) // 16 * 16
        self.local_size = local_size
        self.local = ShadowSpace(m.T * self.L) if local_size else None
        self.race = RaceState(self.shared.data.size) if m.checks else None
        self.pending = np.zeros(self.shared.data.size, np.int16) if m.checks else None
        self.copies = AsyncCopies(m.T)
        self.stats = m.stats

    # ------------------------------------------------------------------ helpers
    def _split(self, addr):
        """Space per element of a generic address: 0 global, 1 shared, 2 local."""
        sp = np.zeros(addr.shape, np.int8)
        sp[(addr >= SHARED_WINDOW) & (addr < SHARED_WINDOW + WINDOW_SIZE)] = 1
        sp[(addr >= LOCAL_WINDOW) & (addr < LOCAL_WINDOW + WINDOW_SIZE)] = 2
        return sp

    def _align(self, addr, nbytes, idx, op, space):
        if nbytes > 1:
            bad = (addr % nbytes) != 0
            if bad.any():
                i = int(np.argmax(bad))
                raise fault(self.m, "memcheck", f"misaligned {space} access of {nbytes} bytes at address "
                            f"{int(addr[i]):#x}", idx[bad], op)

    def _shared_bytes(self, addr, idx, nbytes, op, write):
        bad = (addr < 0) | (addr + nbytes > self.shared_size)
        if bad.any():
            i = int(np.argmax(bad))
            raise fault(self.m, "memcheck", f"out-of-bounds shared {'store' if write else 'load'} of {nbytes} bytes "
                        f"at shared address {int(addr[i]):#x} (the block has {self.shared_size} bytes)",
                        idx[bad], op)
        self._align(addr, nbytes, idx, op, "shared")
        flat = self.m.block_of[idx] * self.S + addr
        return flat

    def _hazards(self, flat, idx, nbytes, op, write, atomic=False, race=True):
        """cp.async pending bytes and racecheck for shared bytes ``flat[:, None] + arange(nbytes)``.

        ``atomic``: the access is half of an atomic read-modify-write (checked
        and recorded once, on the write half); ``race=False`` skips racecheck
        (a cp.async is checked when it completes, not when it is issued).
        """
        m = self.m
        if not m.checks:
            return
        bidx = flat[:, None] + np.arange(nbytes)
        if self.copies.records:
            pend = self.pending[bidx].any(1)
            if pend.any():
                i = int(np.argmax(pend))
                raise fault(m, "cp.async", f"shared bytes at {int(flat[i] % self.S):#x} are "
                            f"{'written' if write else 'read'} while a cp.async to them is still in flight "
                            "(no cp.async.wait_group/wait_all covers it yet)", idx[pend], op)
        if not race or (atomic and not write):
            return
        warps = np.broadcast_to(m.warp_of[idx][:, None], bidx.shape)
        if atomic:
            hit = self.race.atomic_access(bidx, warps)
        else:
            hit = (self.race.write if write else self.race.read)(bidx, warps)
        if hit is not None:
            pos, other = hit
            t = int(idx[pos // nbytes])
            me = int(m.warp_of[t]) % m.wpb
            blk = m.describe_thread(t).split(" thread")[0]
            verb = "atomically updates" if atomic else ("writes" if write else "reads")
            who = f"warp {other % m.wpb}" if other >= 0 else "atomics of several other warps"
            how = "plainly accessed" if atomic else "accessed"
            raise fault(m, "race", f"shared-memory race in {blk}: warp {me} {verb} shared address "
                        f"{int(bidx.reshape(-1)[pos] % self.S):#x} which {who} {how} since the last barrier "
                        "(missing bar.sync?)", [t], op)

    def _local_flat(self, addr, idx, nbytes, op):
        if self.local is None or ((addr < 0) | (addr + nbytes > self.local_size)).any():
            bad = (addr < 0) | (addr + nbytes > self.local_size)
            raise fault(self.m, "memcheck", f"out-of-bounds local access of {nbytes} bytes at local address "
                        f"{int(addr[np.argmax(bad)]):#x} (the thread has {self.local_size} bytes)", idx[bad], op)
        self._align(addr, nbytes, idx, op, "local")
        return idx * self.L + addr

    def _global_off(self, addr, idx, nbytes, op, write):
        ok = self.heap.check(addr, nbytes, write)
        if not ok.all():
            bad = ~ok
            i = int(np.argmax(bad))
            a = int(addr[i])
            raise fault(self.m, "memcheck", f"out-of-bounds global {'store' if write else 'load'} of {nbytes} bytes "
                        f"at address {a:#x} (nearest buffer: {self.heap.region_name(a)})", idx[bad], op)
        self._align(addr, nbytes, idx, op, "global")
        return addr - GLOBAL_BASE

    # ------------------------------------------------------------------ public
    def load(self, space, addr, idx, esize, nvec, op, atomic=False):
        """``(values (n, nvec), defined True | (n, nvec) bool)`` for threads ``idx`` at int64 ``addr``."""
        nbytes = esize * nvec
        if space == "generic":
            sp = self._split(addr)
            kinds = np.unique(sp)
            if kinds.size == 1:
                return self.load(("global", "shared", "local")[kinds[0]], self._unwindow(addr, kinds[0]),
                                 idx, esize, nvec, op, atomic)
            vals = np.zeros((idx.size, nvec), self.heap.view[esize].dtype)
            dfd = np.ones((idx.size, nvec), bool)
            for k in kinds:
                s = sp == k
                v, d = self.load(("global", "shared", "local")[k], self._unwindow(addr[s], k), idx[s],
                                 esize, nvec, op, atomic)
                vals[s] = v
                dfd[s] = d
            return vals, dfd
        st = self.stats
        if space == "global":
            off = self._global_off(addr, idx, nbytes, op, False)
            if st is not None:
                st.global_bytes_read += idx.size * nbytes
            return self.heap.read(off, esize, nvec), True
        if space == "shared":
            flat = self._shared_bytes(addr, idx, nbytes, op, False)
            self._hazards(flat, idx, nbytes, op, False, atomic)
            if st is not None:
                self._bank_stats(idx, addr, nbytes, op)
                st.shared_bytes_read += idx.size * nbytes
            vals = self.shared.read(flat, esize, nvec)
            return vals, self._defined(self.shared, flat, esize, nvec)
        if space == "local" or space == "callparam":
            flat = self._local_flat(addr, idx, nbytes, op)
            if st is not None and space == "local":
                st.local_bytes_read += idx.size * nbytes
            return self.local.read(flat, esize, nvec), self._defined(self.local, flat, esize, nvec)
        raise fault(self.m, "unsupported", f"load from .{space} through an address register", idx, op)

    def store(self, space, addr, idx, values, op, atomic=False, defined=True):
        """Write ``values (n, nvec)`` (uint of the element width) for threads ``idx``.

        ``defined`` (``True`` or an ``(n, nvec)`` bool array) goes to the
        definedness shadow; only call arguments (``"callparam"``) store
        undefined values -- every other store refuses them before it gets here.
        """
        esize = values.dtype.itemsize
        nvec = values.shape[1]
        nbytes = esize * nvec
        self.m.epoch += 1
        if space == "generic":
            sp = self._split(addr)
            for k in np.unique(sp):
                s = sp == k
                self.store(("global", "shared", "local")[k], self._unwindow(addr[s], k), idx[s], values[s], op, atomic)
            return
        st = self.stats
        if space == "global":
            off = self._global_off(addr, idx, nbytes, op, True)
            if st is not None:
                st.global_bytes_written += idx.size * nbytes
            self.heap.write(off, esize, values)
        elif space == "shared":
            flat = self._shared_bytes(addr, idx, nbytes, op, True)
            self._hazards(flat, idx, nbytes, op, True, atomic)
            if st is not None:
                self._bank_stats(idx, addr, nbytes, op)
                st.shared_bytes_written += idx.size * nbytes
            self.shared.write(flat, esize, values)
            self.shared.defined[flat[:, None] + np.arange(nbytes)] = True
        elif space == "local" or space == "callparam":
            flat = self._local_flat(addr, idx, nbytes, op)
            if st is not None and space == "local":
                st.local_bytes_written += idx.size * nbytes
            self.local.write(flat, esize, values)
            byte_def = True if defined is True else np.repeat(defined, esize, axis=1)
            self.local.defined[flat[:, None] + np.arange(nbytes)] = byte_def
        else:
            raise fault(self.m, "memcheck", f"store to the read-only .{space} space", idx, op)

    def check_aligned(self, space, addr, nbytes, idx, op):
        """memcheck's alignment rule alone, for an access made of smaller ones (vector atomics)."""
        self._align(addr, nbytes, idx, op, space)

    def _unwindow(self, addr, k):
        return addr if k == 0 else addr - (SHARED_WINDOW if k == 1 else LOCAL_WINDOW)

    @staticmethod
    def _defined(space, flat, esize, nvec):
        d = space.defined[flat[:, None] + np.arange(esize * nvec)].reshape(flat.size, nvec, esize).all(2)
        return True if d.all() else d

    def _bank_stats(self, idx, addr, nbytes, op):
        if nbytes in (1, 2, 4, 8, 16):
            wf, req = warp_wavefronts(self.m.warp_of[idx], self.m.lane[idx], addr, nbytes)
            st = self.stats
            st.shared_wavefronts += wf
            st.shared_requests += req
            words = op.text.split()
            form = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words[0] if words else "?")
            st.shared_wavefronts_by_opcode[form] += wf
            st.shared_requests_by_opcode[form] += req

    # ------------------------------------------------------------------ cp.async
    def async_issue(self, dst_addr, idx, data, op):
        """Queue ``data (n, k)`` bytes for shared ``dst_addr`` (offsets) of threads ``idx``."""
        k = data.shape[1]
        flat = self._shared_bytes(dst_addr, idx, k, op, True)
        if self.stats is not None:
            self.stats.shared_bytes_written += idx.size * k
            self._bank_stats(idx, dst_addr, k, op)  # the copy's shared write, priced like a store of k bytes
        if not self.m.checks:
            self.shared.data[flat[:, None] + np.arange(k)] = data
            self.shared.defined[flat[:, None] + np.arange(k)] = True
            self.m.epoch += 1
            return
        self._hazards(flat, idx, k, op, True, race=False)
        bidx = flat[:, None] + np.arange(k)
        np.add.at(self.pending, bidx.reshape(-1), 1)
        self.copies.issue(idx, bidx, data, self.m.warp_of[idx])

    def async_wait(self, mask, keep, op):
        """Complete the copies of threads in ``mask`` older than the newest ``keep`` groups (None: all)."""
        if not self.m.checks:
            return
        for bidx, data, warps in self.copies.complete(mask, keep):
            flatb = bidx.reshape(-1)
            np.subtract.at(self.pending, flatb, 1)
            hit = self.race.write(bidx, np.broadcast_to(warps[:, None], bidx.shape))
            if hit is not None:
                pos, other = hit
                raise fault(self.m, "race", f"a cp.async completing at this wait writes shared address "
                            f"{int(flatb[pos] % self.S):#x} which warp {other % self.m.wpb} accessed since the last "
                            "barrier", np.flatnonzero(mask)[:1], op)
            self.shared.data[flatb] = data.reshape(-1)
            self.shared.defined[flatb] = True
            self.m.epoch += 1

    def reset_race(self, complete_blocks):
        if self.race is None:
            return
        if complete_blocks.all():
            self.race.reset()
            return
        for b in np.flatnonzero(complete_blocks):
            self.race.reset(int(b) * self.S, (int(b) + 1) * self.S)
