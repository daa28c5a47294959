"""The SIMT machine: threads, registers, scheduling with divergence, barriers, exits.

Every register is a numpy array over *all* threads of *all* blocks of the
launch (``machine.R[name]``, raw bits), with a definedness companion
(``machine.D[name]``: ``True`` or a bool array).  Threads are numbered
``block * P + thread`` where ``P`` is the block size rounded up to whole warps
(the padding lanes never exist), so ``reshape(-1, 32)`` gives warps.

Scheduling (PTX ISA 9.7.12 "Control flow", 9.7.13 "Parallel synchronization"):
a *group* is a set of threads at one pc that execute together; the launch
starts as one group.  A branch on which a group's threads disagree splits it;
the parts meet again at the branch's immediate post-dominator
(:meth:`lowbit.emu.cfg.CFG.join_table`), where a *join*
collects them.  A join releases its threads *per warp*: a warp continues as
soon as all its expected lanes arrived (threads of different warps, or
blocks, are never made to wait for each other there), so blocks or warps that
diverge on a spin loop or an inter-block flag are scheduled independently.
Exited threads leave every join and barrier.  ``bar.sync`` waits for all live
threads of the block (or for its thread count, in whole warps); ``bar.arrive``
only counts; ``bar.red`` also reduces a predicate (:meth:`Machine._barrier`).
Groups at the same pc and join stack are merged to keep batches large; the
scheduler runs the group nested deepest first (so stragglers catch up) and
yields a group that provably spins (its registers and all memory unchanged
over a cycle of back edges).  When nothing can run,
the launch raises "no forward progress" or reports a barrier deadlock
instead of hanging.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time

import numpy as np

from lowbit.emu.sanitizer import fault
from lowbit.emu.stats import shared_access_key
from lowbit.errors import EmulatorError

NORMAL, BRANCH, BARRIER, EXIT = range(4)
SPIN_PERIOD = 64  # back edges between spin checks
CLOCK_PERIOD = 4096  # steps between wall-clock reads of the watchdog


class Op:
    """One pre-decoded instruction: ``run(act)`` executes it for the active mask ``act``."""

    __slots__ = ("kind", "run", "line", "text", "opcode", "klass", "guard", "target", "dsts", "data", "key")

    def __init__(self, instr, kind=NORMAL, run=None, klass="other", dsts=(), target=-1, data=None):
        self.kind = kind
        self.run = run
        self.line = instr.line
        self.text = instr.text
        self.opcode = instr.opcode
        self.klass = klass
        self.guard = instr.guard
        self.target = target
        self.dsts = dsts
        self.data = data
        #: the access kind its shared-memory traffic is counted under (``stats.shared_access_key``)
        self.key = shared_access_key(instr.opcode, instr.modifiers)


class Join:
    """Where the parts of a split group reconverge (``pc``), and who is expected there."""

    __slots__ = ("pc", "expected", "arrived", "stack")

    def __init__(self, pc, expected, stack):
        self.pc = pc
        self.expected = expected
        self.arrived = np.zeros_like(expected)
        self.stack = stack


class Group:
    """Threads (``mask``) executing together at ``pc`` inside the joins of ``stack``."""

    __slots__ = ("pc", "mask", "stack", "full", "spin_epoch", "backedges", "snap", "bid", "spec")

    def __init__(self, pc, mask, stack):
        self.pc = pc
        self.mask = mask
        self.stack = stack
        self.full = bool(mask.all())
        self.spin_epoch = -1
        self.backedges = 0
        self.snap = None
        self.bid = 0
        self.spec = None  # waiting at a barrier: the instruction's BarrierSpec


class Machine:
    """State and scheduler of one launch; ``launch.py`` builds it, ``run()`` executes it."""

    def __init__(self, module, func, grid, block, *, checks=True, trace=None, stats=None, max_steps=None,
                 max_seconds=None):
        self.module = module
        self.func = func
        self.grid = grid
        self.block = block
        self.checks = checks
        self.stats = stats
        #: the watchdog (issue 9): a step budget and a wall-time budget; ``math.inf`` turns either off
        self.max_steps = max_steps if max_steps is not None else math.inf
        self.max_seconds = max_seconds if max_seconds is not None else math.inf
        self.deadline = math.inf
        self.nthreads = block[0] * block[1] * block[2]
        self.nb = grid[0] * grid[1] * grid[2]
        self.P = (self.nthreads + 31) // 32 * 32
        self.wpb = self.P // 32
        self.T = self.nb * self.P
        t = np.arange(self.T, dtype=np.int64)
        self.block_of = t // self.P
        self.tlin = t % self.P
        self.lane = (t % 32).astype(np.uint32)
        self.warp_of = (t // 32).astype(np.int32)  # global warp number
        self.exists = self.tlin < self.nthreads
        self.live = self.exists.copy()
        self.all_idx = t
        self.R: dict[str, np.ndarray] = {}
        self.D: dict = {}
        #: per-element definedness of registers written by a vector pack with some elements undefined:
        #: name -> (the value array written, element bits, [definedness per element]); valid while R[name] is it
        self.parts: dict = {}
        self.reg_bits: dict[str, int] = {}
        self.steps = 0
        self.epoch = 0  # bumped by every memory write: spin detection compares it
        self.trace_thread = None
        if trace is not None:
            self.trace_thread = self._trace_index(trace)
        self.out = sys.stdout
        self._specials: dict = {}
        self.symbols: dict[str, int] = {}
        self.bar_arrived: dict[int, np.ndarray] = {}
        self.bar_count: dict[int, int | None] = {}
        self.bar_pred: dict[int, np.ndarray] = {}  # bar.red: each arrived thread's predicate
        self.bar_waiting: list[Group] = []
        self.runnable: list[Group] = []
        self.ops: list[Op] = []
        self.reconv: list[int] = []

    # ------------------------------------------------------------------ geometry
    def describe_thread(self, t: int) -> str:
        b, th = divmod(int(t), self.P)
        gx, gy, _ = self.grid
        bx, by, _ = self.block
        bc = (b % gx, (b // gx) % gy, b // (gx * gy))
        tc = (th % bx, (th // bx) % by, th // (bx * by))
        return f"block ({bc[0]},{bc[1]},{bc[2]}) thread ({tc[0]},{tc[1]},{tc[2]})"

    def _trace_index(self, trace) -> int:
        blk, thr = trace
        gx, gy, _ = self.grid
        bx, by, _ = self.block
        if not isinstance(blk, int):
            blk = tuple(blk) + (0,) * (3 - len(tuple(blk)))
            blk = blk[0] + gx * (blk[1] + gy * blk[2])
        if not isinstance(thr, int):
            thr = tuple(thr) + (0,) * (3 - len(tuple(thr)))
            thr = thr[0] + bx * (thr[1] + by * thr[2])
        return blk * self.P + thr

    def declare(self, name: str, bits: int) -> None:
        self.reg_bits[name] = bits
        if bits == 1:
            self.R[name] = np.zeros(self.T, bool)
        else:
            self.R[name] = np.zeros(self.T, {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[bits])
        self.D[name] = np.zeros(self.T, bool) if self.checks else True

    def special(self, name: str, comp: str | None):
        """A closure returning special register ``name.comp`` for every thread (PTX ISA 10)."""
        key = (name, comp)
        if name in ("%clock", "%clock64", "%globaltimer", "%globaltimer_lo"):
            return lambda: np.full(self.T, self.steps, np.uint64)
        if key not in self._specials:
            self._specials[key] = self._special_array(name, comp)
        arr = self._specials[key]
        return lambda: arr

    def _special_array(self, name, comp):
        from lowbit.errors import UnsupportedPTXError

        axis = {"x": 0, "y": 1, "z": 2, None: 0}.get(comp, 0)
        bx, by, _ = self.block
        gx, gy, _ = self.grid
        th, b = self.tlin, self.block_of
        u32 = np.uint32
        if name == "%tid":
            v = (th % bx, (th // bx) % by, th // (bx * by))[axis]
        elif name == "%ntid":
            v = np.full(self.T, self.block[axis])
        elif name == "%ctaid":
            v = (b % gx, (b // gx) % gy, b // (gx * gy))[axis]
        elif name == "%nctaid":
            v = np.full(self.T, self.grid[axis])
        elif name == "%laneid":
            v = self.lane
        elif name == "%warpid":
            v = th // 32
        elif name == "%nwarpid":
            v = np.full(self.T, self.wpb)
        elif name in ("%lanemask_eq", "%lanemask_lt", "%lanemask_le", "%lanemask_gt", "%lanemask_ge"):
            one = np.uint64(1) << self.lane.astype(np.uint64)
            v = {"%lanemask_eq": one, "%lanemask_lt": one - 1, "%lanemask_le": (one << np.uint64(1)) - 1,
                 "%lanemask_gt": ~((one << np.uint64(1)) - 1), "%lanemask_ge": ~(one - 1)}[name]
            v = (v & np.uint64(0xFFFFFFFF))
        elif name in ("%smid", "%gridid", "%nsmid"):
            v = np.zeros(self.T) if name != "%nsmid" else np.ones(self.T)
        elif name == "%dynamic_smem_size":
            v = np.full(self.T, self.dynamic_smem)
        elif name == "%total_smem_size":
            v = np.full(self.T, self.shared_size)
        else:
            raise UnsupportedPTXError(f"special register {name}{'.' + comp if comp else ''} is not implemented")
        return np.asarray(v).astype(u32)

    def symbol_address(self, name: str) -> int:
        if name not in self.symbols:
            raise EmulatorError(f"unknown symbol {name!r}")
        return self.symbols[name]

    # ------------------------------------------------------------------ scheduling
    def run(self) -> None:
        t0 = time.perf_counter()
        self.deadline = t0 + self.max_seconds
        self.runnable = [Group(0, self.exists.copy(), ())]
        while self.runnable:
            g = self._pick()
            self._run_group(g)
        if self.live.any():
            self._deadlock()
        if self.stats is not None:
            self.stats.seconds += time.perf_counter() - t0

    def _pick(self) -> Group:
        best, key = 0, None
        for i, g in enumerate(self.runnable):
            k = (g.spin_epoch != self.epoch, len(g.stack), i)
            if key is None or k > key:
                best, key = i, k
        g = self.runnable.pop(best)
        if g.spin_epoch == self.epoch:
            self._no_progress(g)
        return g

    def push(self, g: Group) -> None:
        for o in self.runnable:
            if o.pc == g.pc and o.stack == g.stack:
                o.mask |= g.mask
                o.full = bool(o.mask.all())
                o.snap = None
                return
        self.runnable.append(g)

    def _run_group(self, g: Group) -> None:
        ops = self.ops
        n = len(ops)
        stats = self.stats
        tt = self.trace_thread
        issue = self._issue_slots(g) if stats is not None else 0  # g.mask changes only at an exit below
        while True:
            pc = g.pc
            if g.stack and pc == g.stack[-1].pc:
                self._arrive(g)
                return
            if pc >= n:
                self._exit(g, g.mask)
                return
            op = ops[pc]
            act = None if g.full else g.mask
            if stats is not None:  # issued before the guard is read: predicated-off warps cost a slot too
                stats.issue_slots += issue
                stats.issue_by_opcode[op.opcode] += issue
                stats.issue_by_class[op.klass] += issue
            if op.guard is not None:
                act = self._guarded(g, op, act)
                if act is False:
                    g.pc = pc + 1
                    continue
            self.steps += 1
            if self.steps > self.max_steps:
                raise self._watchdog(g, pc, f"executed more than {self.max_steps} steps", "max_steps")
            if not self.steps % CLOCK_PERIOD and time.perf_counter() > self.deadline:
                raise self._watchdog(g, pc, f"ran longer than {self.max_seconds:g} s", "max_seconds")
            if stats is not None:
                self._count(op, act)
            kind = op.kind
            if kind == NORMAL:
                op.run(act)
                if tt is not None and (g.mask[tt] if act is None else act[tt]):
                    self._trace(op)
                g.pc = pc + 1
            elif kind == BRANCH:
                if tt is not None and (g.mask[tt] if act is None else act[tt]):
                    self._trace(op)
                if act is None or op.guard is None:
                    g.pc = op.target
                else:
                    rest = g.mask & ~act
                    if not rest.any():
                        g.pc = op.target
                    else:
                        self._diverge(g, act, rest, op)
                        return
                if op.target <= pc and self._spinning(g):
                    self.runnable.append(g)
                    return
            elif kind == EXIT:
                if tt is not None and (g.mask[tt] if act is None else act[tt]):
                    self._trace(op)
                self._exit(g, g.mask if act is None else act)
                if not g.mask.any():
                    return
                g.pc = pc + 1
                if stats is not None:
                    issue = self._issue_slots(g)
            else:  # BARRIER
                if tt is not None and (g.mask[tt] if act is None else act[tt]):
                    self._trace(op)
                self._barrier(g, g.mask if act is None else act, op)
                return

    def _guarded(self, g, op, act):
        gd = op.guard
        p = self.R[gd.register]
        d = self.D[gd.register]
        if d is not True:
            bad = ~d if act is None else (act & ~d)
            if bad.any():
                raise fault(self, "undefined value", f"guard predicate {gd.register} is used before it is written",
                            np.flatnonzero(bad), op)
        gm = ~p if gd.negated else p
        a = gm & g.mask
        if not a.any():
            return False
        return a

    def _diverge(self, g, taken, rest, op):
        r = self.reconv[g.pc]
        stack = g.stack
        if r >= 0 and not (stack and stack[-1].pc == r):
            stack = stack + (Join(r, g.mask.copy(), stack),)
        self.push(Group(g.pc + 1, rest, stack))
        self.push(Group(op.target, taken.copy(), stack))

    def _arrive(self, g):
        j = g.stack[-1]
        j.arrived |= g.mask
        self._try_join(j)

    def _try_join(self, j: Join) -> None:
        waiting = j.expected & ~j.arrived
        if not waiting.any():
            rel = j.arrived
        else:
            done = j.arrived.reshape(-1, 32).any(1) & ~waiting.reshape(-1, 32).any(1)
            if not done.any():
                return
            rel = j.arrived & np.repeat(done, 32)
        if not rel.any():
            return
        rel = rel.copy()
        j.arrived &= ~rel
        j.expected &= ~rel
        self.push(Group(j.pc, rel, j.stack))

    def _exit(self, g, ex):
        ex = ex.copy()
        self.live &= ~ex
        g.mask = g.mask & ~ex
        g.full = False
        for j in g.stack:
            j.expected &= ~ex
        for j in reversed(g.stack):
            self._try_join(j)
        if self.bar_waiting:
            self._check_barriers()

    def _spinning(self, g) -> bool:
        g.backedges += 1
        c = g.backedges
        if c % SPIN_PERIOD:
            return False
        idx = np.flatnonzero(g.mask)
        h = hashlib.blake2b(digest_size=16)
        for name in sorted(self.R):
            h.update(self.R[name][idx].tobytes())
        state = (g.pc, self.epoch, h.digest())
        if g.snap is not None and g.snap == state:
            g.spin_epoch = self.epoch
            return True
        if g.snap is None or (c & (c - 1)) == 0:  # Brent: re-anchor at powers of two
            g.snap = state
        return False

    def _no_progress(self, g):
        op = self.ops[g.pc] if g.pc < len(self.ops) else None
        raise fault(self, "no forward progress",
                    "every runnable thread spins in a loop whose registers and memory no longer change",
                    np.flatnonzero(g.mask), op)

    def loop_at(self, pc: int) -> tuple[int, int] | None:
        """(head pc, back-edge pc) of the innermost loop containing ``pc``: a backward branch around it."""
        best = None
        for i, op in enumerate(self.ops):
            if op.kind == BRANCH and 0 <= op.target <= pc <= i and (best is None or i - op.target < best[1] - best[0]):
                best = (op.target, i)
        return best

    def _watchdog(self, g, pc, what, option) -> EmulatorError:
        """The watchdog's error: what ran out, and where the threads were spinning (the loop's PTX lines)."""
        loop = self.loop_at(pc)
        if loop is not None:
            head, back = self.ops[loop[0]], self.ops[loop[1]]
            where = (f"spinning in the loop at PTX lines {head.line}-{back.line} (back edge `{back.text}`)")
        else:
            where = "not in a loop"
        op = self.ops[pc] if pc < len(self.ops) else None
        return fault(self, "watchdog", f"the launch {what} ({self.steps} steps); {where}; raise the budget with "
                     f"{option}= if the kernel is meant to run this long", np.flatnonzero(g.mask), op)

    # ------------------------------------------------------------------ barriers
    def _barrier(self, g, arr, op):
        """``bar``/``barrier`` ``.sync``/``.arrive``/``.red`` by the threads ``arr`` of ``g`` (PTX ISA 9.7.13.1).

        A warp arrives once all its non-exited threads have; a barrier with a
        thread count completes when ``32 x arrived warps`` reaches it, one
        without when every live thread of the block arrived.  ``.arrive``
        threads go on at once; ``.sync``/``.red`` threads wait for completion,
        where ``.red`` threads receive the reduction of every arrived thread's
        predicate.  A warp arriving again before the barrier completed, or more
        warps arriving than the count admits, is undefined on the GPU (ISA:
        "care must be taken to keep a warp from executing more barrier
        instructions than intended") and raises.
        """
        spec = op.data
        bid, count = spec(arr)
        if spec.aligned:
            part = (arr.reshape(-1, 32).any(1)[:, None] & self.live.reshape(-1, 32)) & ~arr.reshape(-1, 32)
            if part.any():
                raise fault(self, "divergent barrier",
                            f"{op.opcode}.{spec.mode} (aligned) reached by only part of a warp; the other live "
                            "lanes did not arrive", np.flatnonzero(part.reshape(-1)), op)
        arrived = self.bar_arrived.get(bid)
        if arrived is None:
            arrived = self.bar_arrived[bid] = np.zeros(self.T, bool)
        again = arrived & arr
        if again.any():
            raise fault(self, "barrier", f"threads arrive at barrier {bid} a second time before it completed "
                        "(a bar.arrive followed by another barrier instruction on the same id)",
                        np.flatnonzero(again), op)
        arrived |= arr
        self.bar_count[bid] = count
        if spec.red is not None:
            if bid not in self.bar_pred:
                self.bar_pred[bid] = np.zeros(self.T, bool)
            self.bar_pred[bid][arr] = spec.pred(arr)[arr]
        if spec.mode == "arrive":
            self.push(Group(g.pc + 1, g.mask, g.stack))
        else:
            rest = g.mask & ~arr
            if rest.any():
                self.push(Group(g.pc + 1, rest, g.stack))
            w = Group(g.pc + 1, arr.copy(), g.stack)
            w.bid = bid
            w.spec = spec
            self.bar_waiting.append(w)
        self._check_barriers()

    def _check_barriers(self):
        for bid, arrived in self.bar_arrived.items():
            count = self.bar_count.get(bid)
            a = arrived.reshape(-1, 32)
            if count is None:
                missing = (self.live & ~arrived).reshape(self.nb, self.P).any(1)
                complete = arrived.reshape(self.nb, self.P).any(1) & ~missing
                rel = arrived
            else:
                warp_in = a.any(1) & ~(self.live.reshape(-1, 32) & ~a).any(1)
                nwarps = warp_in.reshape(self.nb, self.wpb).sum(1)
                complete = nwarps * 32 >= count
                over = complete & ((nwarps - 1) * 32 >= count)
                if over.any():
                    b = int(np.argmax(over))
                    raise fault(self, "barrier", f"{int(nwarps[b])} warps arrived at barrier {bid} whose thread "
                                f"count {count} admits {-(-count // 32)}; which of them pass is timing-dependent",
                                np.flatnonzero(arrived.reshape(self.nb, self.P)[b]) + b * self.P)
                rel = arrived & np.repeat(warp_in, 32)
            if not complete.any():
                continue
            cm = rel & np.repeat(complete, self.P)
            red = None
            if bid in self.bar_pred:
                pv = (self.bar_pred[bid] & cm).reshape(self.nb, self.P)
                ncm = cm.reshape(self.nb, self.P).sum(1)
                red = {"popc": pv.sum(1).astype(np.uint32), "or": pv.any(1),
                       "and": pv.sum(1) == ncm}
            arrived &= ~cm
            if self.stats is not None:
                self.stats.barriers += int(complete.sum())
            self.on_barrier(complete)
            keep = []
            for w in self.bar_waiting:
                if w.bid == bid:
                    part = w.mask & cm
                    if part.any():
                        spec = w.spec
                        if spec is not None and spec.red is not None:
                            spec.write(np.repeat(red[spec.red], self.P), part)
                        self.push(Group(w.pc, part, w.stack))
                        w.mask = w.mask & ~cm
                    if not w.mask.any():
                        continue
                keep.append(w)
            self.bar_waiting = keep
            if red is not None and not arrived.any():
                del self.bar_pred[bid]

    def on_barrier(self, complete_blocks: np.ndarray) -> None:
        """Hook: the blocks in ``complete_blocks`` passed a barrier (racecheck resets there)."""

    def _deadlock(self):
        stuck = np.flatnonzero(self.live)
        where = []
        for w in self.bar_waiting[:3]:
            if w.mask.any():
                op = self.ops[w.pc - 1]
                where.append(f"{int(w.mask.sum())} threads wait at line {op.line} `{op.text}`")
        msg = "; ".join(where) or "threads wait at a reconvergence point that others never reach"
        raise fault(self, "deadlock", f"no thread can run: {msg}; the other live threads of the block never arrive",
                    stuck)

    # ------------------------------------------------------------------ stats and trace
    def _issue_slots(self, g: Group) -> int:
        """32 x the warps with at least one lane in ``g`` (what one instruction of ``g`` occupies)."""
        if g.full:
            return self.T
        return 32 * int(np.count_nonzero(g.mask.reshape(-1, 32).any(1)))

    def _count(self, op, act):
        s = self.stats
        if act is None:
            n, w = self.T, self.T // 32
        else:
            n = int(np.count_nonzero(act))
            w = int(np.count_nonzero(act.reshape(-1, 32).any(1)))
        s.thread_instructions += n
        s.warp_instructions += w
        s.by_opcode[op.opcode] += n
        s.warp_by_opcode[op.opcode] += w
        s.by_class[op.klass] += n

    def _trace(self, op):
        t = self.trace_thread
        vals = []
        for name in op.dsts:
            v = self.R[name][t]
            d = self.D[name]
            ok = True if d is True else bool(d[t])
            vals.append(f"{name}={int(v):#x}" + ("" if ok else "(undef)"))
        print(f"[{self.describe_thread(t)}] line {op.line}: {op.text}" + ("  -> " + " ".join(vals) if vals else ""),
              file=self.out)
