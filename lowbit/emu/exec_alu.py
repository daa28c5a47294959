"""Arithmetic, logic, conversion and mma: decode modifiers into calls of S's pure functions.

The semantics live in :mod:`lowbit.emu.intops` (integer/bit corners, PTX ISA
9.7.1, 9.7.2, 9.7.8), :mod:`lowbit.emu.fparith` (correctly rounded float
arithmetic and the approximate functions, 9.7.3, 9.7.4), :mod:`lowbit.emu.cvt`
(9.7.9.21) and :mod:`lowbit.emu.mma` (9.7.14).  This module only decides
*which* function an instruction means, fetches operands as raw bits of the
right width and writes the result; definedness of a result is the AND of its
operands' (a value divided by zero is also undefined: the ISA leaves it
machine-specific).
"""

from __future__ import annotations

import numpy as np

from lowbit.emu import cvt as C
from lowbit.emu import fparith as F
from lowbit.emu import intops as I
from lowbit.emu import ptx_ast as A
from lowbit.emu.decode import UINT, and_defined, bits_of, fetch, is_signed, operands_flat, store, type_of
from lowbit.emu.exec_ctrl import _check_members, _names
from lowbit.emu.exec_data import _require
from lowbit.emu.machine import Op
from lowbit.errors import UnsupportedPTXError

RND = ("rn", "rz", "rm", "rp")
FLOATS = ("f16", "bf16", "f32", "f64", "f16x2", "bf16x2")
CC = "%__cc"


def _rnd(ins, default="rn"):
    return next((x for x in ins.modifiers if x in RND), default)


def _unsupported(ins):
    return UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented by the emulator")


def alu(m, ins, src_types, dst_type, fn, klass="arith", extra_def=None):
    """An op computing ``dst = fn(*srcs)`` with sources fetched as ``src_types``."""
    if len(ins.operands) != 1 + len(src_types):
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` takes {1 + len(src_types)} operands "
                                  f"(a destination and {len(src_types)} sources), got {len(ins.operands)}: "
                                  f"`{ins.text}`")  # fmt: skip
    fs = [fetch(m, o, t) for o, t in zip(ins.operands[1:], src_types)]
    w = store(m, ins.operands[0], dst_type)

    def run(act):
        got = [f() for f in fs]
        vals = [g[0] for g in got]
        r = fn(*vals)
        d = and_defined(*(g[1] for g in got))
        if extra_def is not None and m.checks:  # checks=False: keep the value the GPU would produce
            d = and_defined(d, extra_def(*vals))
        w(r, d, act)

    return Op(ins, run=run, klass=klass, dsts=_names(ins.operands[0]))


# ---------------------------------------------------------------- integer
def _int_binary(m, ins, t):
    op, mods, b, s = ins.opcode, ins.modifiers, bits_of(t), is_signed(t)
    dt = UINT.get(b)
    if t == "pred":
        f = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}.get(op)
        if f is None:
            raise _unsupported(ins)
        return alu(m, ins, [t, t], t, f, "logic")
    if op in ("add", "sub") and ("cc" in mods):
        return _carry(m, ins, t, op == "sub", False)
    if op == "add":
        if "sat" in mods:
            return alu(m, ins, [t, t], t, I.add_sat)
        return alu(m, ins, [t, t], t, lambda a, c: a + c)
    if op == "sub":
        if "sat" in mods:
            return alu(m, ins, [t, t], t, I.sub_sat)
        return alu(m, ins, [t, t], t, lambda a, c: a - c)
    if op == "mul":
        mode = next((x for x in mods if x in ("lo", "hi", "wide")), "lo")
        dtt = (("s" if s else "u") + str(2 * b)) if mode == "wide" else t
        return alu(m, ins, [t, t], dtt, lambda a, c: I.mul(a, c, b, s, mode))
    if op in ("min", "max"):
        f = I.min_ if op == "min" else I.max_
        return alu(m, ins, [t, t], t, lambda a, c: f(a, c, b, s))
    if op in ("div", "rem"):
        f = I.div if op == "div" else I.rem
        return alu(m, ins, [t, t], t, lambda a, c: f(a, c, b, s), extra_def=lambda a, c: c != 0)
    if op in ("and", "or", "xor"):
        f = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op]
        return alu(m, ins, [t, t], t, f, "logic")
    if op in ("shl", "shr"):
        if op == "shl":
            return alu(m, ins, [t, "u32"], t, lambda a, n: I.shl(a, n, b), "logic")
        return alu(m, ins, [t, "u32"], t, lambda a, n: I.shr(a, n, b, s), "logic")
    if op == "mul24":
        mode = next((x for x in mods if x in ("lo", "hi")), "lo")
        return alu(m, ins, [t, t], t, lambda a, c: I.mul24(a, c, s, mode))
    raise _unsupported(ins)


def _carry(m, ins, t, sub, use_in, mad_mode=None):
    """add.cc/addc/sub.cc/subc, and with ``mad_mode`` ("lo"/"hi") mad.cc/madc: CC.CF in and out."""
    b = bits_of(t)
    nsrc = 3 if mad_mode else 2
    fs = [fetch(m, o, t) for o in ins.operands[1 : 1 + nsrc]]
    w = store(m, ins.operands[0], t)
    write_cc = "cc" in ins.modifiers
    wc = store(m, A.Register(CC), "u32")
    R = m.R
    s = is_signed(t)

    def run(act):
        got = [f() for f in fs]
        cin = R[CC].astype(UINT[b]) if use_in else None
        if mad_mode:
            d, cout = I.mad_cc(got[0][0], got[1][0], got[2][0], b, s, mad_mode, carry_in=cin)
        else:
            d, cout = I.add_cc(got[0][0], got[1][0], b, carry_in=cin, sub=sub)
        dd = and_defined(*(g[1] for g in got), m.D[CC] if use_in else True)
        w(np.asarray(d).astype(UINT[b]), dd, act)
        if write_cc:
            wc(np.asarray(cout).astype(np.uint32), dd, act)

    return Op(ins, run=run, klass="arith", dsts=_names(ins.operands[0]))


def build_int_or_float(m, ins):
    t = type_of(ins)
    op = ins.opcode
    if op in ("addc", "subc"):
        return _carry(m, ins, t, op == "subc", True)
    if op == "madc" or (op == "mad" and "cc" in ins.modifiers):
        mode = next((x for x in ins.modifiers if x in ("lo", "hi", "wide")), "lo")
        if mode == "wide" or t not in ("u32", "s32", "u64", "s64"):
            raise _unsupported(ins)
        return _carry(m, ins, t, False, op == "madc", mad_mode=mode)
    if t in FLOATS:
        return _float(m, ins, t)
    if op in ("mad", "mad24"):
        mods = ins.modifiers
        b, s = bits_of(t), is_signed(t)
        mode = next((x for x in mods if x in ("lo", "hi", "wide")), "lo")
        sat = "sat" in mods
        if op == "mad24":
            return alu(m, ins, [t, t, t], t, lambda a, c, e: I.mad24(a, c, e, s, mode, sat))
        dtt = (("s" if s else "u") + str(2 * b)) if mode == "wide" else t
        return alu(m, ins, [t, t, dtt], dtt, lambda a, c, e: I.mad(a, c, e, b, s, mode, sat))
    if op in ("abs", "neg", "not", "cnot", "popc", "clz", "brev", "bfind"):
        return _int_unary(m, ins, t)
    return _int_binary(m, ins, t)


def _int_unary(m, ins, t):
    op, b, s = ins.opcode, bits_of(t), is_signed(t)
    if t == "pred" and op == "not":
        return alu(m, ins, [t], t, np.logical_not, "logic")
    if op == "abs":
        return alu(m, ins, [t], t, lambda a: I.abs_(a, b))
    if op == "neg":
        return alu(m, ins, [t], t, lambda a: I.neg(a, b))
    if op == "not":
        return alu(m, ins, [t], t, np.invert, "logic")
    if op == "cnot":
        return alu(m, ins, [t], t, lambda a: (a == 0).astype(a.dtype), "logic")
    if op == "popc":
        return alu(m, ins, [t], "u32", lambda a: I.popc(a, b), "logic")
    if op == "clz":
        return alu(m, ins, [t], "u32", lambda a: I.clz(a, b), "logic")
    if op == "brev":
        return alu(m, ins, [t], t, lambda a: I.brev(a, b), "logic")
    sh = "shiftamt" in ins.modifiers
    return alu(m, ins, [t], "u32", lambda a: I.bfind(a, b, s, sh), "logic")


def build_bits(m, ins):
    op, mods = ins.opcode, ins.modifiers
    t = type_of(ins, "b32")
    b, s = bits_of(t), is_signed(t)
    if b not in (8, 16, 32, 64) or t[0] not in "bus":  # .pred, .f32, ...: not a type of the bit instructions
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}`: .{t} is not an integer or bit type "
                                  f"that {op} takes: `{ins.text}`")  # fmt: skip
    if op == "bfe":
        return alu(m, ins, [t, "u32", "u32"], t, lambda a, p, n: I.bfe(a, p, n, b, s), "logic")
    if op == "bfi":
        return alu(m, ins, [t, t, "u32", "u32"], t, lambda a, c, p, n: I.bfi(a, c, p, n, b), "logic")
    if op == "shf":
        left = "l" in mods
        mode = "clamp" if "clamp" in mods else "wrap"
        return alu(m, ins, ["b32", "b32", "u32"], "b32", lambda a, c, n: I.shf(a, c, n, left, mode), "logic")
    if op == "lop3":
        lut = ins.operands[4]
        if not isinstance(lut, A.Immediate):
            raise _unsupported(ins)
        fs = [fetch(m, o, "b32") for o in ins.operands[1:4]]
        w = store(m, ins.operands[0], "b32")
        v = lut.value

        def run(act):
            got = [f() for f in fs]
            w(I.lop3(got[0][0], got[1][0], got[2][0], v), and_defined(*(g[1] for g in got)), act)
        return Op(ins, run=run, klass="logic", dsts=_names(ins.operands[0]))
    if op == "prmt":
        mode = next((x for x in mods if x in ("f4e", "b4e", "rc8", "ecl", "ecr", "rc16")), None)
        return alu(m, ins, ["b32", "b32", "b32"], "b32", lambda a, c, e: I.prmt(a, c, e, mode), "logic")
    if op in ("dp4a", "dp2a"):
        tys = [x for x in mods if x in ("u32", "s32")]
        sa, sb = tys[0] == "s32", tys[1] == "s32"
        dt = "s32" if (sa or sb) else "u32"
        if op == "dp4a":
            return alu(m, ins, ["b32", "b32", dt], dt, lambda a, c, e: I.dp4a(a, c, e, sa, sb))
        hi = "hi" in mods
        return alu(m, ins, ["b32", "b32", dt], dt, lambda a, c, e: I.dp2a(a, c, e, sa, sb, hi))
    raise _unsupported(ins)


# ---------------------------------------------------------------- float
def _float(m, ins, t):
    op, mods = ins.opcode, ins.modifiers
    ftz, sat, relu = "ftz" in mods, "sat" in mods, "relu" in mods
    rnd = _rnd(ins)
    if op in ("add", "sub", "mul"):
        f = {"add": F.add, "sub": F.sub, "mul": F.mul}[op]
        return alu(m, ins, [t, t], t, lambda a, b: f(t, a, b, rnd=rnd, ftz=ftz, sat=sat, relu=relu))
    if op in ("fma", "mad"):
        return alu(m, ins, [t, t, t], t, lambda a, b, c: F.fma(t, a, b, c, rnd=rnd, ftz=ftz, sat=sat, relu=relu))
    if op in ("min", "max"):
        f = F.fmin if op == "min" else F.fmax
        nan = "NaN" in mods
        return alu(m, ins, [t, t], t, lambda a, b: f(t, a, b, ftz=ftz, nan=nan, relu=relu))
    if op == "neg":
        return alu(m, ins, [t], t, lambda a: F.neg(t, a, ftz=ftz))
    if op == "abs":
        return alu(m, ins, [t], t, lambda a: F.abs_(t, a, ftz=ftz))
    if op == "div":
        if "full" in mods:
            return alu(m, ins, [t, t], t, lambda a, b: F.div_full(a, b, ftz=ftz))
        if "approx" in mods:
            return alu(m, ins, [t, t], t, lambda a, b: F.div_approx(a, b, ftz=ftz))
        return alu(m, ins, [t, t], t, lambda a, b: F.div(t, a, b, rnd=rnd, ftz=ftz))
    if op in ("rcp", "sqrt") and "approx" not in mods:
        f = F.rcp if op == "rcp" else F.sqrt
        return alu(m, ins, [t], t, lambda a: f(t, a, rnd=rnd, ftz=ftz))
    if op in ("rcp", "sqrt", "rsqrt", "ex2", "lg2", "sin", "cos", "tanh"):
        return alu(m, ins, [t], t, lambda a: F.approx(op, t, a, ftz=ftz))
    if op == "copysign":
        return alu(m, ins, [t, t], t, lambda a, b: F.copysign(t, a, b))
    raise _unsupported(ins)


def build_testp(m, ins):
    t = type_of(ins)
    kind = next(x for x in ins.modifiers if x in ("finite", "infinite", "number", "notanumber", "normal",
                                                  "subnormal"))
    return alu(m, ins, [t], "pred", lambda a: F.testp(t, kind, a), "logic")


# ---------------------------------------------------------------- cvt
_PACKED = ("e4m3x2", "e5m2x2", "e2m1x2", "e2m3x2", "e3m2x2", "ue8m0x2")
_WIDTH = {"e2m1x2": "b8", "e4m3x2": "b16", "e5m2x2": "b16", "e2m3x2": "b16", "e3m2x2": "b16", "ue8m0x2": "b16"}


def build_cvt(m, ins):
    tys = [x for x in ins.modifiers if x in A.TYPE_SIZES or x in _PACKED]
    if len(tys) != 2:
        raise _unsupported(ins)
    dst, src = tys
    for pk in (dst, src):
        if pk in _PACKED:
            _require(m, ins, f"cvt.{pk}")
    mods = [x for x in ins.modifiers if x not in tys]
    fn = C.lookup(dst, src, mods)
    dw = _WIDTH.get(dst, dst)
    sw = _WIDTH.get(src, src)
    nsrc = len(ins.operands) - 1
    want = _arity(fn)
    if want is not None and want != nsrc:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` takes {want + 1} operands "
                                  f"(a destination and {want} source{'s' * (want != 1)}), got {nsrc + 1}: "
                                  f"`{ins.text}`")  # fmt: skip
    return alu(m, ins, [sw] * nsrc, dw, fn, "convert")


def _arity(fn) -> int | None:
    """Positional parameters a converter takes (None when it takes any number)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


# ---------------------------------------------------------------- mma
def build_mma(m, ins):
    from lowbit.emu import mma as S

    mods = ins.modifiers
    shape = next(x for x in mods if x.startswith("m") and "n" in x and "k" in x)
    types = [x for x in mods if x in A.TYPE_SIZES or x in ("s4", "u4", "b1", "e2m1", "e3m2", "e2m3")]
    if len(types) == 2:  # f64 / tf32-style spellings with two types: .dtype.ctype? keep as d, a=b, c
        types = [types[0], types[1], types[1], types[0]]
    if len(types) != 4:
        raise _unsupported(ins)
    dtype, atype, btype, ctype = types
    bop = None
    if "popc" in mods:
        bop = "and" if "and" in mods else "xor"
    sat = "satfinite" in mods
    feature = f"mma.{shape}.{atype}" + (f".{bop}" if bop else "")
    _require(m, ins, feature)
    if len(ins.operands) != 4:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` takes 4 operands (d, a, b, c), "
                                  f"got {len(ins.operands)}")  # fmt: skip
    groups = [operands_flat(o) for o in ins.operands]
    try:
        fc = S.fragment_coords(shape, atype)
    except UnsupportedPTXError as exc:
        raise UnsupportedPTXError(f"PTX line {ins.line}: {exc}") from None
    acc = {"f16": 2}.get(dtype, 4), {"f16": 2}.get(ctype, 4)
    for what, group, want in zip("dabc", groups, (acc[0], fc["na"], fc["nb"], acc[1])):
        if len(group) != want:
            raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` operand {what} needs {want} "
                                      f"registers, got {len(group)}")  # fmt: skip
    fa = [[fetch(m, o, "b32") for o in g] for g in groups[1:]]
    ws = [store(m, o, "b32") for o in groups[0]]

    def run(act):
        wids, _ = _check_members(m, act, None, op, "mma.sync")
        frags, dd = [], True
        for fl in fa:
            cols = []
            for f in fl:
                v, d = f()
                cols.append(v.reshape(-1, 32)[wids])
                if d is not True:
                    dd = and_defined(dd, d.reshape(-1, 32)[wids].all(1))
            frags.append(np.stack(cols, -1))
        out = S.mma_sync(shape, dtype, atype, btype, ctype, *frags, satfinite=sat,
                         bop=f"{bop}.popc" if bop else None)
        d = True
        if dd is not True:
            d = np.zeros(m.T, bool)
            d.reshape(-1, 32)[wids] = dd[:, None]
        for j, w in enumerate(ws):
            v = np.zeros(m.T, np.uint32)
            v.reshape(-1, 32)[wids] = out[:, :, j]
            w(v, d, act)
        if m.stats is not None:
            m.stats.mma += int(wids.size)

    op = Op(ins, run=run, klass="mma", dsts=_names(*groups[0]))
    return op


BUILDERS = {
    **{k: build_int_or_float for k in (
        "add", "sub", "mul", "mad", "mul24", "mad24", "div", "rem", "min", "max", "abs", "neg", "and", "or",
        "xor", "not", "cnot", "shl", "shr", "popc", "clz", "brev", "bfind", "fma", "rcp", "sqrt", "rsqrt",
        "ex2", "lg2", "sin", "cos", "tanh", "copysign", "addc", "subc", "madc")},
    "bfe": build_bits, "bfi": build_bits, "shf": build_bits, "lop3": build_bits, "prmt": build_bits,
    "dp4a": build_bits, "dp2a": build_bits, "testp": build_testp, "cvt": build_cvt, "mma": build_mma,
}
