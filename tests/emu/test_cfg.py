"""Tests of lowbit.emu.cfg: blocks, edges and immediate post-dominators.

The reference is the definition itself: ``a`` post-dominates ``b`` iff the
exit cannot be reached from ``b`` once ``a`` is removed; the immediate
post-dominator is the strict post-dominator that every other strict
post-dominator post-dominates.  It is computed by brute-force reachability,
independently of the Cooper-Harvey-Kennedy code under test.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.emu.cfg import CFG, build_cfg
from lowbit.emu.parser import parse
from lowbit.errors import UnsupportedPTXError

HEADER = ".version 8.0\n.target sm_80\n.address_size 64\n"


def cfg_of(body: str) -> tuple[CFG, object]:
    text = HEADER + ".visible .entry k()\n{\n.reg .pred %p<9>;\n.reg .b32 %r<9>;\n" + body + "\n}\n"
    fn = parse(text).entry("k")
    return build_cfg(fn), fn


def _reaches_exit(succs: list[list[int]], start: int, removed: int, exit_node: int) -> bool:
    if start == removed:
        return False
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        if node == exit_node:
            return True
        for s in succs[node]:
            if s != removed and s not in seen:
                seen.add(s)
                stack.append(s)
    return False


def brute_ipdom(cfg: CFG) -> list[int]:
    """ipdom by definition, on the same (augmented) edges."""
    exit_node = cfg.exit
    succs = [list(b.successors) + ([exit_node] if b.index in cfg.augmented else []) for b in cfg.blocks]
    succs.append([])
    nodes = range(exit_node + 1)
    pdom = {b: {a for a in nodes if not _reaches_exit(succs, b, a, exit_node)} for b in range(exit_node)}
    for b in range(exit_node):
        pdom[b].add(exit_node)
        pdom[b].add(b)
    pdom[exit_node] = {exit_node}
    result = []
    for b in range(exit_node):
        strict = pdom[b] - {b}
        (imm,) = [a for a in strict if all(o in pdom[a] for o in strict)]
        result.append(imm)
    return result


def check(cfg: CFG) -> None:
    assert list(cfg.ipdom) == brute_ipdom(cfg)
    for b in cfg.blocks:
        for s in b.successors:
            assert s == cfg.exit or b.index in cfg.predecessors[s]


def block_named(cfg: CFG, fn, label: str) -> int:
    return cfg.block_of[fn.labels[label]]


# ----------------------------------------------------------------------------- hand-written shapes


def test_straight_line_is_one_block():
    cfg, _ = cfg_of("mov.b32 %r1, 1;\nadd.s32 %r1, %r1, 1;\nret;")
    assert len(cfg.blocks) == 1 and cfg.blocks[0].successors == (cfg.exit,)
    assert cfg.ipdom == (cfg.exit,) and cfg.reconvergence_pc(0) == 3 == cfg.ipdom_instruction(2)


def test_if_then_reconverges_at_join():
    cfg, fn = cfg_of("""
    setp.lt.s32 %p1, %r1, 4;
    @%p1 bra $L_join;
    add.s32 %r2, %r2, 1;
$L_join:
    st.global.b32 [%r3], %r2;
    ret;""".replace("[%r3]", "[0]"))
    assert [b.successors for b in cfg.blocks] == [(2, 1), (2,), (cfg.exit,)]
    assert cfg.ipdom[0] == block_named(cfg, fn, "$L_join")
    assert cfg.reconvergence_pc(1) == fn.labels["$L_join"]
    check(cfg)


def test_nested_if_else():
    cfg, fn = cfg_of("""
    @%p1 bra $L_else;
    @%p2 bra $L_inner_else;
    add.s32 %r1, %r1, 1;
    bra.uni $L_inner_join;
$L_inner_else:
    add.s32 %r1, %r1, 2;
$L_inner_join:
    add.s32 %r1, %r1, 3;
    bra.uni $L_join;
$L_else:
    add.s32 %r1, %r1, 4;
$L_join:
    ret;""")
    check(cfg)
    outer, inner = cfg.block_of[0], cfg.block_of[1]
    assert cfg.ipdom[outer] == block_named(cfg, fn, "$L_join")
    assert cfg.ipdom[inner] == block_named(cfg, fn, "$L_inner_join")


def test_early_exit_reconverges_at_exit():
    cfg, fn = cfg_of("""
    @%p1 bra $L_out;
    @%p2 ret;
    add.s32 %r1, %r1, 1;
$L_out:
    add.s32 %r1, %r1, 2;
    ret;""")
    check(cfg)
    guarded_ret = cfg.block_of[1]
    assert set(cfg.blocks[guarded_ret].successors) == {cfg.exit, cfg.block_of[2]}
    # the guarded ret may skip $L_out, so the first branch's threads only meet at the exit
    assert cfg.ipdom[0] == cfg.exit and cfg.reconvergence_pc(0) == len(fn.body)


def test_loop_with_latch_above_header():
    # LLVM's block order: the latch (and a rotated loop's exit test) above the body.
    cfg, fn = cfg_of("""
    mov.b32 %r1, 0;
    bra.uni $L_header;
$L_latch:
    add.s32 %r1, %r1, 1;
    setp.lt.s32 %p1, %r1, %r2;
    @%p1 bra $L_header;
    bra.uni $L_exit;
$L_header:
    @%p2 bra $L_skip;
    add.s32 %r3, %r3, 1;
$L_skip:
    bra.uni $L_latch;
$L_exit:
    ret;""")
    check(cfg)
    header, latch = block_named(cfg, fn, "$L_header"), block_named(cfg, fn, "$L_latch")
    assert cfg.blocks[latch].start < cfg.blocks[header].start
    assert cfg.ipdom[header] == block_named(cfg, fn, "$L_skip")  # the if inside the loop
    # the loop-exit branch in the latch reconverges at the `bra.uni $L_exit` just below it
    assert cfg.reconvergence_pc(fn.labels["$L_latch"]) == fn.labels["$L_header"] - 1
    assert cfg.ipdom[cfg.ipdom[latch]] == block_named(cfg, fn, "$L_exit")
    # reconvergence of the inner if is *below* the branch; min-PC scheduling would run the latch first
    assert cfg.reconvergence_pc(fn.labels["$L_header"]) == fn.labels["$L_skip"]


def test_infinite_loop_is_augmented():
    cfg, fn = cfg_of("""
    @%p1 bra $L_spin;
    ret;
$L_spin:
    bra.uni $L_spin;""")
    spin = block_named(cfg, fn, "$L_spin")
    assert spin in cfg.augmented and cfg.ipdom[spin] == cfg.exit
    check(cfg)


def test_label_at_end_and_empty_body():
    cfg, fn = cfg_of("@%p1 bra $L_end;\nadd.s32 %r1, %r1, 1;\n$L_end:")
    assert cfg.blocks[0].successors == (cfg.exit, 1) and cfg.ipdom == (cfg.exit, cfg.exit)
    cfg2, _ = cfg_of("")
    assert cfg2.blocks == () and cfg2.ipdom == ()


def test_postdominates_and_block_of():
    cfg, fn = cfg_of("@%p1 bra $L_a;\nadd.s32 %r1, %r1, 1;\n$L_a:\nret;")
    a = block_named(cfg, fn, "$L_a")
    assert cfg.postdominates(a, 0) and cfg.postdominates(cfg.exit, 0) and not cfg.postdominates(1, 0)
    assert cfg.block_of == (0, 1, 2)


def test_indirect_branch_is_unsupported():
    with pytest.raises(UnsupportedPTXError, match="brx.idx"):
        cfg_of("$L_t:\nbrx.idx %r1, $L_t;")


# ----------------------------------------------------------------------------- corpus and random programs


def _fixture_names():
    from tests.emu.fixtures import recipes

    return recipes.names()


@pytest.mark.parametrize("name", _fixture_names())
def test_fixture_cfgs_match_brute_force(name):
    from tests.emu.fixtures import recipes

    case = recipes.load(name)
    fn = parse(case.ptx).entry(case.kernel)
    cfg = build_cfg(fn)
    check(cfg)
    assert sum(b.end - b.start for b in cfg.blocks) == len(fn.body)


def test_llvm_loop_fixture_reconverges_below_the_branch():
    from tests.emu.fixtures import recipes

    case = recipes.load("llvm_loop_branch")
    fn = parse(case.ptx).entry(case.kernel)
    cfg = build_cfg(fn)
    # the odd/even branch in the loop body (`@%p6 bra`) meets again at the increment block
    (pc,) = [i for i, ins in enumerate(fn.body) if ins.opcode == "bra" and ins.guard and ins.guard.register == "%p6"]
    join = cfg.reconvergence_pc(pc)
    assert fn.body[join].full_opcode == "add.s32" and join < pc  # the join sits above the branch


@st.composite
def programs(draw):
    """Random bodies: n blocks, each a labelled add followed by a random terminator."""
    n = draw(st.integers(1, 8))
    lines = []
    for i in range(n):
        lines.append(f"$L{i}:")
        lines.append("add.s32 %r1, %r1, 1;")
        kind = draw(st.sampled_from(["fall", "bra", "cbra", "ret", "cret"]))
        target = draw(st.integers(0, n))  # n means the label at the very end
        if kind == "bra":
            lines.append(f"bra.uni $L{target};")
        elif kind == "cbra":
            lines.append(f"@%p1 bra $L{target};")
        elif kind == "ret":
            lines.append("ret;")
        elif kind == "cret":
            lines.append("@!%p2 ret;")
    lines.append(f"$L{n}:")
    return "\n".join(lines)


@settings(max_examples=150)
@given(programs())
def test_random_programs_match_brute_force(body):
    cfg, fn = cfg_of(body)
    check(cfg)
    for pc in range(len(fn.body)):
        assert cfg.blocks[cfg.block_of[pc]].start <= pc < cfg.blocks[cfg.block_of[pc]].end
    # the machine's join table (lowbit.emu.launch uses it): a branch's join is the
    # first instruction of its block's brute-force ipdom, -1 when that is the exit
    brute = brute_ipdom(cfg)
    table = cfg.join_table()
    assert len(table) == len(fn.body)
    for b in cfg.blocks:
        want = -1 if brute[b.index] == cfg.exit else cfg.blocks[brute[b.index]].start
        assert table[b.end - 1] == want
        assert all(table[pc] == -1 for pc in range(b.start, b.end - 1))


def test_parts_that_meet_only_at_the_exit_do_not_wait_for_each_other():
    # lanes 0-15 fall off the end of the body, lanes 16-31 wait at a
    # non-aligned barrier.sync for 32 threads... of which the first 16 have
    # exited.  With a join at the exit the first half would stay live and the
    # barrier would never complete; with none, the count drops to the live 16.
    import numpy as np

    from lowbit.emu import launch

    text = HEADER + """.visible .entry k(.param .u64 out)
{
.reg .pred %p<2>; .reg .b32 %r<4>; .reg .b64 %rd<4>;
ld.param.u64 %rd1, [out];
mov.u32 %r1, %tid.x;
mul.wide.u32 %rd2, %r1, 4;
add.s64 %rd3, %rd1, %rd2;
setp.lt.u32 %p1, %r1, 16;
@%p1 bra $L_lo;
barrier.sync 1;
st.global.u32 [%rd3], 7;
ret;
$L_lo:
st.global.u32 [%rd3], 3;
}
"""
    cfg = build_cfg(parse(text).entry("k"))
    branch = next(pc for pc, ins in enumerate(parse(text).entry("k").body) if ins.opcode == "bra")
    assert cfg.ipdom[cfg.block_of[branch]] == cfg.exit and cfg.join_table()[branch] == -1
    out = np.zeros(32, np.uint32)
    launch(text, "k", 1, 32, [out])
    assert out.tolist() == [3] * 16 + [7] * 16
