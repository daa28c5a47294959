"""Reconvergence points: the immediate post-dominator of every branch instruction.

A warp that splits at a branch reconverges at the branch's immediate
post-dominator, the first instruction every path from the branch to the exit
must pass (the classic SIMT-stack rule).  Computing it from the control-flow
graph, rather than taking the minimum pc, matters because LLVM places loop
latches above their headers.

This works on the instruction graph (a node per instruction plus a virtual
exit) with the Cooper-Harvey-Kennedy iterative dominator algorithm on the
reversed graph.  P's ``lowbit.emu.cfg`` computes the same on basic blocks;
:func:`reconvergence_points` uses it when it offers ``build_cfg`` with an
``ipdom_instruction`` query, and this is the fallback otherwise.
"""

from __future__ import annotations


def successors(kinds, targets, guarded, n):
    """Successor lists per instruction; ``n`` is the virtual exit."""
    from lowbit.emu.machine import BRANCH, EXIT

    succ = []
    for i, k in enumerate(kinds):
        nxt = min(i + 1, n)
        if k == BRANCH:
            t = min(targets[i], n)
            succ.append([t, nxt] if guarded[i] else [t])
        elif k == EXIT:
            succ.append([n, nxt] if guarded[i] else [n])
        else:
            succ.append([nxt])
    succ.append([])
    return succ


def immediate_post_dominators(succ: list[list[int]]) -> list[int]:
    """``ipdom[i]`` for every node of a graph whose last node is the exit; ``-1`` if none."""
    n = len(succ) - 1
    preds: list[list[int]] = [[] for _ in succ]
    for i, ss in enumerate(succ):
        for s in ss:
            preds[s].append(i)
    # reverse postorder of the reversed graph, from the exit
    order, seen, stack = [], [False] * len(succ), [(n, 0)]
    seen[n] = True
    while stack:
        node, k = stack.pop()
        if k < len(preds[node]):
            stack.append((node, k + 1))
            p = preds[node][k]
            if not seen[p]:
                seen[p] = True
                stack.append((p, 0))
        else:
            order.append(node)
    order.reverse()
    rank = {v: i for i, v in enumerate(order)}
    idom = [-1] * len(succ)
    idom[n] = n

    def intersect(a, b):
        while a != b:
            while rank[a] > rank[b]:
                a = idom[a]
            while rank[b] > rank[a]:
                b = idom[b]
        return a

    changed = True
    while changed:
        changed = False
        for v in order[1:]:
            new = -1
            for s in succ[v]:  # successors are predecessors in the reversed graph
                if idom[s] != -1:
                    new = s if new == -1 else intersect(s, new)
            if new != idom[v]:
                idom[v] = new
                changed = True
    idom[n] = -1
    return [(-1 if d == n else d) for d in idom[:n]]


def reconvergence_points(ops) -> list[int]:
    """The reconvergence pc of every instruction (meaningful for branches); ``-1`` is the exit."""
    n = len(ops)
    succ = successors([o.kind for o in ops], [o.target for o in ops], [o.guard is not None for o in ops], n)
    return immediate_post_dominators(succ)
