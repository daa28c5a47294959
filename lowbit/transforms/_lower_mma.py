"""Lowering of a selected ``dot`` to ``mma.sync``, and of an ``ldmatrix`` read of a shared tile.

A selected ``dot`` (``inst = "mma.<shape>.<acc>.<ab>"``) has its operands in
the block fragment layouts of :mod:`lowbit.transforms._mma`: each thread's
slots are its mma tiles one after another (``local(tm, tk)`` then the A
fragment, ``local(tk, tn)`` then B, ``local(tm, tn)`` then C/D), and a
fragment's slots, packed LSB-first into 32-bit words (the tile's words
form), are exactly the instruction's registers (PTX ISA 9.7.14.5: "a0, a1,
... low to high").  So for every K step and every (M, N) tile of the warp
one ``mma.sync.aligned.<shape>.row.col`` reads A's and B's words and the
accumulator's registers and defines the new accumulator -- no data moves.

``ldmatrix``: each lane computes the address of the matrix row it supplies
from its own coordinates (``_ldmatrix`` proved the pattern over every thread),
and the four registers it receives are four words of the tile.
"""

from __future__ import annotations

from lowbit.dtypes import dtype
from lowbit.ir import ops as V
from lowbit.ir.simt import Const, Operand
from lowbit.ir.simt import ops as S
from lowbit.ir.simt.types import F16, F32, I32, VectorType
from lowbit.transforms._context import Ctx, SBuf, fail
from lowbit.transforms._lower_compute import put_tile
from lowbit.transforms._mma import plan_of_inst
from lowbit.transforms._tiles import scalars, words

__all__ = ["lower_dot", "lower_ldmatrix"]

_H2 = VectorType(F16, 2)
#: (shape, ab, acc) -> (intrinsic, A/B register type, C/D register type, C/D registers per tile)
_INTRINSICS = {
    ("m16n8k16", "f16", "f32"): ("llvm.nvvm.mma.m16n8k16.row.col.f32.f32", _H2, F32, 4),
    ("m16n8k16", "f16", "f16"): ("llvm.nvvm.mma.m16n8k16.row.col.f16.f16", _H2, _H2, 2),
    ("m16n8k16", "bf16", "f32"): ("llvm.nvvm.mma.m16n8k16.row.col.bf16", I32, F32, 4),
    ("m16n8k32", "int8", "int32"): ("llvm.nvvm.mma.m16n8k32.row.col.s8", I32, I32, 4),
    ("m16n8k32", "uint8", "int32"): ("llvm.nvvm.mma.m16n8k32.row.col.u8", I32, I32, 4),
    ("m16n8k64", "int4", "int32"): ("llvm.nvvm.mma.m16n8k64.row.col.s4", I32, I32, 4),
    ("m16n8k64", "uint4", "int32"): ("llvm.nvvm.mma.m16n8k64.row.col.u4", I32, I32, 4),
    ("m16n8k32", "e4m3fn", "f32"): ("llvm.nvvm.mma.m16n8k32.row.col.f32.e4m3.e4m3.f32", I32, F32, 4),
    ("m16n8k32", "e5m2", "f32"): ("llvm.nvvm.mma.m16n8k32.row.col.f32.e5m2.e5m2.f32", I32, F32, 4),
    ("m16n8k256", "uint1", "int32"): ("llvm.nvvm.mma.and.popc.m16n8k256.row.col.b1", I32, I32, 4),
    ("m16n8k256", "int1", "int32"): ("llvm.nvvm.mma.and.popc.m16n8k256.row.col.b1", I32, I32, 4),
    ("m16n8k256", "bipolar1", "int32"): ("llvm.nvvm.mma.xor.popc.m16n8k256.row.col.b1", I32, I32, 4),
}
_AND_POPC = "llvm.nvvm.mma.and.popc.m16n8k256.row.col.b1"


def lower_dot(ctx: Ctx, op: V.Dot) -> None:
    ta, tc = op.a.type, op.c.type
    p = plan_of_inst(op.inst, ta.dtype, tc.dtype, ta.shape, op.b.type.shape, ctx.T // 32, ctx.arch,  # type: ignore[union-attr]
                     op.interleave)  # fmt: skip
    key = (p.shape, p.ab.name, p.acc.name)
    if key not in _INTRINSICS:
        raise fail(op, f"no mma intrinsic for {op.inst}")
    name, abt, ct, nc = _INTRINSICS[key]
    b = ctx.b
    tm, tn, tk = p.tiles
    wa, wb = words(ctx, ctx.tile(op.a, op)), words(ctx, ctx.tile(op.b, op))
    na, nb = len(wa) // (tm * tk), len(wb) // (tk * tn)  # registers per A / B fragment (4 and 2)
    c = ctx.tile(op.c, op)
    acc: list[Operand]
    acc = list(words(ctx, c)) if ct == _H2 else list(scalars(ctx, c))
    order = None
    if c.layout != p.c_inst and ct != _H2:  # slots reordered (interleaved 32-bit C): to the instruction's order
        from lowbit.transforms._mma import slot_order  # noqa: PLC0415

        order = slot_order(p.c_inst, c.layout)
        acc = [acc[i] for i in order]
    per = len(acc) // (tm * tn)  # accumulator registers per C tile
    if per != nc or na != 4 or nb != 2:
        raise fail(op, f"{op.inst}: fragment registers {na}/{nb}/{per} do not match the instruction")

    def reg(x: Operand, t) -> Operand:  # noqa: ANN001
        return x if t == I32 else b.cast("bitcast", x, t, "fr")

    if p.ab.name == "bipolar1":
        acc = _bipolar_dot(ctx, p, wa, wb, acc, ta.shape[1])
        tk = 0  # (done)
    for ks in range(tk):
        for i in range(tm):
            av = [reg(x, abt) for x in wa[(i * tk + ks) * na:(i * tk + ks + 1) * na]]
            for j in range(tn):
                bv = [reg(x, abt) for x in wb[(ks * tn + j) * nb:(ks * tn + j + 1) * nb]]
                base = (i * tn + j) * per
                cv = [reg(x, ct) if ct == _H2 else x for x in acc[base:base + per]]
                outs = tuple(b.reg(ct, "d") for _ in range(per))
                b.emit(S.Call(outs, name, tuple(av + bv + cv)))
                acc[base:base + per] = [b.cast("bitcast", o, I32, "d") if ct == _H2 else o for o in outs]
    if order is not None:
        back: list[Operand] = [Const(0, I32)] * len(acc)
        for s, i in enumerate(order):
            back[i] = acc[s]
        acc = back
    if ct == _H2:
        put_tile(ctx, op.result, wrds=acc)
    else:
        put_tile(ctx, op.result, scal=acc)


def _bipolar_dot(ctx: Ctx, p, wa: list[Operand], wb: list[Operand], acc: list[Operand], k: int) -> list[Operand]:  # noqa: ANN001
    """``c + a @ b`` for bipolar1 codes (bit 1: +1, bit 0: -1): each product is ``1 - 2 (a xor b)``, so the
    dot is ``c + K - 2 P`` with ``P`` the popcount of ``a xor b`` over K -- one ``mma.xor.popc`` per tile and
    step where native; else ``P = popc(a) + popc(b) - 2 popc(a and b)``, the row counts of A and the column
    counts of B being ``mma.and.popc`` with an all-ones B / A (each reused over the other dimension)."""
    from lowbit.arch import Support, target  # noqa: PLC0415

    b = ctx.b
    tm, tn, tk = p.tiles
    xor = target(ctx.arch).feature("mma.m16n8k256.b1.xor").support is Support.NATIVE
    zero, ones = [Const(0, I32)] * 4, Const(-1, I32)

    def mma(name: str, av: list[Operand], bv: list[Operand], cv: list[Operand]) -> list[Operand]:
        outs = tuple(b.reg(I32, "d") for _ in range(4))
        b.emit(S.Call(outs, name, tuple(av + bv + cv)))
        return list(outs)

    def a_of(i: int, ks: int) -> list[Operand]:
        return wa[(i * tk + ks) * 4:(i * tk + ks + 1) * 4]

    def b_of(ks: int, j: int) -> list[Operand]:
        return wb[(ks * tn + j) * 2:(ks * tn + j + 1) * 2]

    rows, cols = {}, {}
    if not xor:
        for i in range(tm):
            r = zero
            for ks in range(tk):
                r = mma(_AND_POPC, a_of(i, ks), [ones, ones], r)
            rows[i] = r
        for j in range(tn):
            s = zero
            for ks in range(tk):
                s = mma(_AND_POPC, [ones] * 4, b_of(ks, j), s)
            cols[j] = s
    out = list(acc)
    for i in range(tm):
        for j in range(tn):
            pc = zero
            for ks in range(tk):
                pc = mma(_INTRINSICS[("m16n8k256", "bipolar1", "int32")][0] if xor else _AND_POPC,
                         a_of(i, ks), b_of(ks, j), pc)  # fmt: skip
            base = (i * tn + j) * 4
            for r in range(4):
                if xor:  # c + K - 2 P
                    two_p = b.binary("shl", pc[r], Const(1, I32), "bp")
                else:  # P = rows + cols - 2 AND
                    both = b.binary("add", rows[i][r], cols[j][r], "bp")
                    two_p = b.binary("shl", b.binary("sub", both, b.binary("shl", pc[r], Const(1, I32), "bp"), "bp"),
                                     Const(1, I32), "bp")  # fmt: skip
                out[base + r] = b.binary("sub", b.binary("add", acc[base + r], Const(k, I32), "bp"), two_p, "bp")
    return out


def lower_ldmatrix(ctx: Ctx, op: V.LoadShared) -> None:
    """``ldmatrix.x4`` (x2/x1 for the last registers): four of the tile's words per instruction."""
    t = op.result.type
    lay = t.layout  # type: ignore[union-attr]
    buf = ctx.get(op.src, op)
    assert isinstance(buf, SBuf)  # noqa: S101
    from lowbit.transforms._lower_shared import element_pointer  # noqa: PLC0415

    trans = op.via == "ldmatrix.trans"
    bits = t.dtype.bits  # type: ignore[union-attr]
    e = 32 // bits
    nregs = lay.local_size // e
    b = ctx.b
    lane = ctx.lane()
    g, q4 = b.binary("lshr", lane, Const(2, I32), "lg"), b.binary("and", lane, Const(3, I32), "lq")
    m_of_lane = b.binary("lshr", lane, Const(3, I32), "lm")
    r_of_lane = b.binary("and", lane, Const(7, I32), "lr")
    out: list[Operand] = []
    for start in range(0, nregs, 4):
        group = list(range(start, min(start + 4, nregs)))
        num = len(group) if len(group) != 3 else 4
        while len(group) < num:
            group.append(group[-1])
        bases = []
        for q in group:  # this thread's coordinates of register q, minus its lane's part of the pattern
            row, col = ctx.coords(lay, q * e)
            if trans:
                row = b.binary("sub", row, b.binary("shl", q4, Const(1, I32)))
                col = b.binary("sub", col, g)
            else:
                row = b.binary("sub", row, g)
                col = b.binary("sub", col, b.binary("mul", q4, Const(e, I32)))
            bases.append((row, col))
        # lane l supplies row l % 8 of matrix l // 8 (its group member's base)
        row, col = bases[0]
        for k in range(1, len(bases)):
            pick = b.cmp("eq", m_of_lane, Const(k, I32), "lk")
            row, col = b.select(pick, bases[k][0], row), b.select(pick, bases[k][1], col)
        row = b.binary("add", row, r_of_lane)
        addr = element_pointer(ctx, buf, op.offsets, (row, col))  # (swizzles keep 16-byte rows whole)
        name = f"llvm.nvvm.ldmatrix.sync.aligned.m8n8.x{num}{'.trans' if trans else ''}.b16"
        regs = tuple(b.reg(I32, "lm") for _ in range(num))
        b.emit(S.Call(regs, name, (addr,)))
        out.extend(regs[:len(range(start, min(start + 4, nregs)))])
    put_tile(ctx, op.result, wrds=out)


_ = dtype
