"""Control-flow graph of a PTX function: basic blocks and immediate post-dominators.

The machine runs divergent threads with active masks and reconverges them at
the *immediate post-dominator* of the branch that split them (the classic
SIMT stack rule; issue 4 item 3).  Reconverging at "the smallest PC" is wrong
for LLVM output, whose loop latches often sit *above* the loop header (see
``tests/emu/fixtures/llvm_loop_branch.ptx``), so post-dominators are computed
from the graph.

Blocks: a leader is instruction 0, every label target, and every instruction
after a branch/``ret``/``exit``/``trap``.  Successors: an unguarded ``bra``
goes to its target; a guarded one to its target and the fall-through; an
unguarded ``ret``/``exit``/``trap`` to the virtual exit, a guarded one to the
exit and the fall-through; falling off the end of the body is ``ret``.

Post-dominators use the Cooper-Harvey-Kennedy iterative algorithm ("A Simple,
Fast Dominance Algorithm", 2001) on the reversed graph rooted at the virtual
exit.  A block from which the exit cannot be reached (an infinite loop, a
spin that only another thread can break) has no post-dominator in the strict
sense; such blocks are given an extra edge to the exit first (the usual
augmentation), so every block has an ipdom and threads that leave such a
loop reconverge no later than the end of the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.emu.ptx_ast import Function, Instruction, LabelRef
from lowbit.errors import UnsupportedPTXError

#: Opcodes that end a block and never fall through when unguarded.
_RETURNS = frozenset({"ret", "exit", "trap"})


@dataclass(frozen=True)
class BasicBlock:
    """Instructions ``body[start:end]``; ``successors`` are block indices (``CFG.exit`` for the exit)."""

    index: int
    start: int
    end: int
    successors: tuple[int, ...]


@dataclass(frozen=True)
class CFG:
    """Blocks of one function plus the virtual exit node ``exit == len(blocks)``.

    ``ipdom[b]`` is the immediate post-dominator of block ``b`` (a block index,
    or ``exit``); ``block_of[pc]`` the block holding instruction ``pc``;
    ``predecessors[b]`` the blocks with an edge to ``b``; ``augmented`` the
    blocks that could not reach the exit and got an artificial edge to it.
    """

    blocks: tuple[BasicBlock, ...]
    ipdom: tuple[int, ...]
    block_of: tuple[int, ...]
    predecessors: tuple[tuple[int, ...], ...]
    augmented: frozenset[int]
    body_length: int

    @property
    def exit(self) -> int:
        return len(self.blocks)

    def start_pc(self, block: int) -> int:
        """First instruction of ``block``; ``body_length`` for the exit node."""
        return self.body_length if block == self.exit else self.blocks[block].start

    def reconvergence_pc(self, pc: int) -> int:
        """Where threads that diverge at the branch ``pc`` meet again: the ipdom's first instruction."""
        return self.start_pc(self.ipdom[self.block_of[pc]])

    def ipdom_instruction(self, pc: int) -> int:
        """Alias of :meth:`reconvergence_pc` (for a block's last instruction it is the
        instruction-level immediate post-dominator; ``body_length`` means the exit)."""
        return self.reconvergence_pc(pc)

    def join_table(self) -> tuple[int, ...]:
        """Per instruction: the reconvergence pc of a branch ending its block there, ``-1`` for none.

        ``-1`` also stands for "only at the exit": threads that part at such a
        branch never meet again -- each part runs until it exits -- so the
        machine sets no join for them (a join at the end of the body would
        keep finished threads live, and ``barrier.sync`` counts live threads).
        Only branches consult this table; other instructions get ``-1``.
        """
        out = [-1] * self.body_length
        for b in self.blocks:
            r = self.start_pc(self.ipdom[b.index])
            out[b.end - 1] = -1 if r >= self.body_length else r
        return tuple(out)

    def postdominates(self, a: int, b: int) -> bool:
        """True when every path from block ``b`` to the exit passes through ``a`` (reflexive)."""
        node = b
        while True:
            if node == a:
                return True
            if node == self.exit:
                return False
            node = self.ipdom[node]


def _branch_target(ins: Instruction, body_length: int) -> int:
    targets = [op for op in ins.operands if isinstance(op, LabelRef)]
    if len(targets) != 1:
        raise UnsupportedPTXError(f"PTX line {ins.line}: branch without a single label target: {ins.text!r}")
    return targets[0].target if targets[0].target >= 0 else body_length


def build_cfg(fn: Function) -> CFG:
    """Basic blocks, edges and immediate post-dominators of ``fn`` (which must have a body)."""
    body = fn.body or ()
    n = len(body)
    for ins in body:
        if ins.opcode == "brx":
            raise UnsupportedPTXError(f"PTX line {ins.line}: indirect branch brx.idx is not supported: {ins.text!r}")

    leaders = {0} if n else set()
    for pc, ins in enumerate(body):
        if ins.opcode == "bra":
            leaders.add(_branch_target(ins, n))
            leaders.add(pc + 1)
        elif ins.opcode in _RETURNS:
            leaders.add(pc + 1)
    leaders.update(t for t in fn.labels.values())
    starts = sorted(x for x in leaders if x < n)
    index_of_start = {s: i for i, s in enumerate(starts)}
    nblocks = len(starts)
    exit_node = nblocks

    def block_at(pc: int) -> int:
        return exit_node if pc >= n else index_of_start[pc]

    blocks: list[BasicBlock] = []
    block_of = [0] * n
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < nblocks else n
        for pc in range(s, e):
            block_of[pc] = i
        last = body[e - 1]
        succ: list[int] = []
        if last.opcode == "bra":
            succ.append(block_at(_branch_target(last, n)))
            if last.guard is not None:
                succ.append(block_at(e))
        elif last.opcode in _RETURNS:
            succ.append(exit_node)
            if last.guard is not None:
                succ.append(block_at(e))
        else:
            succ.append(block_at(e))
        blocks.append(BasicBlock(i, s, e, tuple(dict.fromkeys(succ))))

    succs = [list(b.successors) for b in blocks]
    augmented = _augment(succs, exit_node)
    preds: list[list[int]] = [[] for _ in range(nblocks + 1)]
    for b, ss in enumerate(succs):
        for s in ss:
            preds[s].append(b)
    ipdom = _postdominators(succs, preds, exit_node)
    return CFG(
        tuple(blocks),
        tuple(ipdom[:nblocks]),
        tuple(block_of),
        tuple(tuple(p) for p in preds[:nblocks]),
        frozenset(augmented),
        n,
    )


def _augment(succs: list[list[int]], exit_node: int) -> list[int]:
    """Add an edge to the exit from every block that cannot reach it; returns those blocks."""
    preds: list[list[int]] = [[] for _ in range(exit_node + 1)]
    for b, ss in enumerate(succs):
        for s in ss:
            preds[s].append(b)
    reach = {exit_node}
    stack = [exit_node]
    while stack:
        for p in preds[stack.pop()]:
            if p not in reach:
                reach.add(p)
                stack.append(p)
    # Augment the last unreached block of each unreached region first; one
    # edge may make others reach the exit, so re-check in order.
    added = []
    for b in reversed(range(exit_node)):
        if b not in reach:
            succs[b].append(exit_node)
            added.append(b)
            stack = [b]
            reach.add(b)
            while stack:
                for p in preds[stack.pop()]:
                    if p not in reach:
                        reach.add(p)
                        stack.append(p)
    return sorted(added)


def _postdominators(succs: list[list[int]], preds: list[list[int]], exit_node: int) -> list[int]:
    """Cooper-Harvey-Kennedy on the reverse graph: a node's "predecessors" there are its successors."""
    # Post-order of the reverse graph by iterative DFS from the exit.
    order: list[int] = []
    seen = {exit_node}
    stack: list[tuple[int, int]] = [(exit_node, 0)]
    while stack:
        node, i = stack[-1]
        if i < len(preds[node]):
            stack[-1] = (node, i + 1)
            nxt = preds[node][i]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, 0))
        else:
            stack.pop()
            order.append(node)
    number = {node: k for k, node in enumerate(order)}
    idom: dict[int, int] = {exit_node: exit_node}

    def intersect(a: int, b: int) -> int:
        while a != b:
            while number[a] < number[b]:
                a = idom[a]
            while number[b] < number[a]:
                b = idom[b]
        return a

    changed = True
    while changed:
        changed = False
        for node in reversed(order):  # reverse post-order, root first
            if node == exit_node:
                continue
            new = None
            for s in succs[node]:
                if s in idom:
                    new = s if new is None else intersect(s, new)
            if new is not None and idom.get(node) != new:
                idom[node] = new
                changed = True
    return [idom[b] for b in range(exit_node)] + [exit_node]


__all__ = ["CFG", "BasicBlock", "build_cfg"]
