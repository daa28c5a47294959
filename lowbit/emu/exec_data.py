"""Executors that move data: mov, ld, st, cvta, atom/red, cp.async, ldmatrix, and the no-ops.

PTX ISA sections: mov 9.7.9.1 (incl. vector pack/unpack), ld 9.7.9.8, st
9.7.9.10, cvta 9.7.9.18, atom 9.7.13.5 and red 9.7.13.6 (scalar, packed
f16x2/bf16x2 and the sm_90 ``.v2/.v4/.v8`` vector forms), cp.async 9.7.9.25,
ldmatrix 9.7.14.5.15; membar/fence 9.7.13.4, prefetch 9.7.9.15,
createpolicy 9.7.9.17, discard 9.7.9.16 have no effect on emulated data.

Loads and stores resolve the address per active thread, go through
:class:`~lowbit.emu.access.MemUnit` (which checks them), and write each
destination element into its register with the width rules of
:mod:`lowbit.emu.decode`.  Data stored under the active mask must be defined;
the address always must be.
"""

from __future__ import annotations

import numpy as np

from lowbit.arch import TARGETS
from lowbit.emu import fparith
from lowbit.emu import ptx_ast as A
from lowbit.emu.decode import (
    UINT, and_defined, bits_of, fetch, is_signed, operands_flat, reg_name, store, type_of,
)
from lowbit.emu.exec_ctrl import _check_members, _names
from lowbit.emu.machine import Op
from lowbit.emu.memory import LOCAL_WINDOW, SHARED_WINDOW
from lowbit.emu.sanitizer import fault
from lowbit.emu.stats import shared_access_key
from lowbit.errors import UnsupportedPTXError

SPACES = ("global", "shared", "local", "param", "const")


def _space(ins):
    for x in ins.modifiers:
        if x in SPACES:
            return "global" if x == "const" else x
        if x.startswith("shared::"):
            if x != "shared::cta":
                raise UnsupportedPTXError(f"PTX line {ins.line}: .{x} (distributed shared memory) is not supported")
            return "shared"
    return "generic"


def _nvec(ins):
    for x in ins.modifiers:
        if x in ("v2", "v4", "v8"):
            return int(x[1])
    return 1


def _idx(m, act):
    return m.all_idx if act is None else np.flatnonzero(act)


def address(m, addr: A.Address, space: str, ins):
    """A closure ``(idx, op) -> int64 addresses`` of the active threads ``idx`` (checks definedness)."""
    if not isinstance(addr, A.Address):
        raise UnsupportedPTXError(f"PTX line {ins.line}: expected an address operand in `{ins.text}`")
    off = addr.offset
    if addr.base is None:
        return lambda idx, op: np.full(idx.size, off, np.int64)
    if isinstance(addr.base, A.Symbol):
        a = m.symbol_address(addr.base.name) + off
        kind = m.symbol_space.get(addr.base.name)
        if space == "generic" and kind == "shared":
            a += SHARED_WINDOW
        elif space == "generic" and kind == "local":
            a += LOCAL_WINDOW
        return lambda idx, op: np.full(idx.size, a, np.int64)
    rb = m.reg_bits.get(reg_name(addr.base), 64)
    f = fetch(m, addr.base, "u64" if rb == 64 else "u32")

    def get(idx, op):
        v, d = f()
        if d is not True:
            bad = ~d[idx]
            if bad.any():
                raise fault(m, "undefined value", f"address register {reg_name(addr.base)} is undefined",
                            idx[bad], op)
        return v[idx].astype(np.int64) + off

    return get


def _gather_sources(fs, idx, op, m, what="stored"):
    vals, defs = [], []
    for f in fs:
        v, d = f()
        vals.append(v[idx])
        if d is not True and m.checks:
            bad = ~d[idx]
            if bad.any():
                raise fault(m, "undefined value", f"an undefined value is {what} to memory", idx[bad], op)
    return np.stack(vals, 1)


def _scatter(m, writers, vals, dfd, idx, act):
    """Write column j of ``vals (n, k)`` to ``writers[j]`` for threads ``idx``."""
    for j, w in enumerate(writers):
        if w is None:
            continue
        if act is None:
            v = vals[:, j]
            d = True if dfd is True else dfd[:, j]
        else:
            v = np.zeros(m.T, vals.dtype)
            v[idx] = vals[:, j]
            if dfd is True:
                d = True
            else:
                d = np.ones(m.T, bool)
                d[idx] = dfd[:, j]
        w(v, d, act)


def _call_param(m, space, addr) -> bool:
    """``ld``/``st.param`` on a call-site argument variable (per-thread local memory, see
    :mod:`lowbit.emu.inline`) rather than on a kernel parameter."""
    return (space == "param" and isinstance(addr, A.Address) and isinstance(addr.base, A.Symbol)
            and m.symbol_space.get(addr.base.name) == "local")


def _memory_type(ins, t: str) -> str:
    """``t`` when memory can hold it; a located error for ``.pred`` (ld/st/atom move bytes, a predicate has none)."""
    if not A.TYPE_SIZES.get(t):
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}`: .{t} is not a type memory holds")
    return t


def build_ld(m, ins):
    space = _space(ins)
    if _call_param(m, space, ins.operands[1]):
        space = "callparam"
    nvec = _nvec(ins)
    t = _memory_type(ins, type_of(ins))
    esize = A.TYPE_SIZES[t]
    dsts = operands_flat(ins.operands[0])
    writers = [None if isinstance(o, A.Sink) else store(m, o, t) for o in dsts]
    addr = ins.operands[1]
    if space == "param":
        if not (isinstance(addr, A.Address) and isinstance(addr.base, A.Symbol)):
            raise UnsupportedPTXError(f"PTX line {ins.line}: ld.param through a register is not supported")
        base = m.symbol_address(addr.base.name) + addr.offset
        raw = m.param_bytes[base : base + esize * nvec].ljust(esize * nvec, b"\0")
        consts = [np.full(m.T, int.from_bytes(raw[j * esize:(j + 1) * esize], "little"), UINT[esize * 8])
                  for j in range(nvec)]

        def run_param(act):
            for w, c in zip(writers, consts):
                if w is not None:
                    w(c, True, act)
        return Op(ins, run=run_param, klass="memory", dsts=_names(*dsts))
    get = address(m, addr, space, ins)
    mem = m.mem

    def run(act):
        idx = _idx(m, act)
        if idx.size == 0:
            return
        a = get(idx, op)
        vals, dfd = mem.load(space, a, idx, esize, nvec, op)
        _scatter(m, writers, vals, dfd, idx, act)

    op = Op(ins, run=run, klass="memory", dsts=_names(*dsts))
    return op


def build_st(m, ins):
    space = _space(ins)
    t = _memory_type(ins, type_of(ins))
    srcs = operands_flat(ins.operands[1])
    fs = [fetch(m, o, t) for o in srcs]
    mem = m.mem
    if _call_param(m, space, ins.operands[0]):
        # passing an argument is a register move on the GPU: an undefined value
        # may be passed (it stays undefined in the callee), so no check here
        get = address(m, ins.operands[0], "local", ins)

        def run_arg(act):
            idx = _idx(m, act)
            if idx.size == 0:
                return
            got = [f() for f in fs]
            vals = np.stack([v[idx] for v, _ in got], 1)
            dfd = np.stack([np.broadcast_to(d, (m.T,))[idx] for _, d in got], 1)
            mem.store("callparam", get(idx, op), idx, vals, op, defined=True if dfd.all() else dfd)

        op = Op(ins, run=run_arg, klass="memory")
        return op
    get = address(m, ins.operands[0], space, ins)

    def run(act):
        idx = _idx(m, act)
        if idx.size == 0:
            return
        a = get(idx, op)
        vals = _gather_sources(fs, idx, op, m)
        mem.store(space, a, idx, vals, op)

    op = Op(ins, run=run, klass="memory")
    return op


def build_mov(m, ins):
    t = type_of(ins)
    dst, src = ins.operands[0], ins.operands[1]
    b = bits_of(t)
    if isinstance(src, A.Vector):  # pack: element 0 in the low bits
        k = len(src.elements)
        eb = b // k
        et = f"b{eb}"
        fs = [fetch(m, o, et) for o in src.elements]
        w = store(m, dst, t)
        dt = UINT[b]

        name = reg_name(dst) if isinstance(dst, A.Register) else None

        def run_pack(act):
            out, ds = None, []
            for j, f in enumerate(fs):
                v, d = f()
                part = v.astype(dt) << dt(eb * j)
                out = part if out is None else out | part
                ds.append(d)
            old = m.D.get(name, True) if name is not None else True
            w(out, and_defined(*ds), act)
            if name is not None and m.checks and any(d is not True for d in ds) and any(
                    d is True or np.any(d) for d in ds):  # some element defined, some not: remember which
                per = [d if act is None else np.where(act, d, old) for d in ds]
                m.parts[name] = (m.R[name], eb, per)
        return Op(ins, run=run_pack, klass="logic", dsts=_names(dst))
    if isinstance(dst, A.Vector):  # unpack
        k = len(dst.elements)
        eb = b // k
        et = f"b{eb}"
        f = fetch(m, src, t)
        ws = [store(m, o, et) for o in dst.elements]
        edt = UINT[eb]
        mask = (1 << eb) - 1

        src_name = reg_name(src) if isinstance(src, A.Register) else None

        def run_unpack(act):
            v, d = f()
            part = m.parts.get(src_name) if m.parts and src_name is not None else None
            per = part[2] if part is not None and part[0] is m.R[src_name] and part[1] == eb else None
            for j, w in enumerate(ws):  # a pack's defined elements stay defined (LLVM leaves unused lanes unset)
                w(((v >> v.dtype.type(eb * j)) & v.dtype.type(mask)).astype(edt), d if per is None else per[j], act)
        return Op(ins, run=run_unpack, klass="logic", dsts=_names(dst))
    f = fetch(m, src, t)
    w = store(m, dst, t)

    def run(act):
        v, d = f()
        w(v, d, act)
    return Op(ins, run=run, klass="logic", dsts=_names(dst))


def build_cvta(m, ins):
    to = "to" in ins.modifiers
    space = next((x for x in ins.modifiers if x in ("global", "shared", "local", "const", "param")), None)
    if space is None or space == "param":
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented")
    t = type_of(ins)
    f = fetch(m, ins.operands[1], t)
    w = store(m, ins.operands[0], t)
    shift = {"shared": SHARED_WINDOW, "local": LOCAL_WINDOW}.get(space, 0)
    dt = UINT[bits_of(t)]
    low = np.uint64(0xFFFFFFFF)

    def run(act):
        v, d = f()
        if shift:
            x = v.astype(np.uint64)
            x = (x - np.uint64(shift)) & low if to else (x & low) + np.uint64(shift)
            v = x.astype(dt)
        w(v, d, act)
    return Op(ins, run=run, klass="logic", dsts=_names(ins.operands[0]))


def build_noop(m, ins):
    def run(act):
        return None
    return Op(ins, run=run, klass="other")


def build_createpolicy(m, ins):
    w = store(m, ins.operands[0], "b64")
    zero = np.zeros(m.T, np.uint64)
    return Op(ins, run=lambda act: w(zero, True, act), klass="other", dsts=_names(ins.operands[0]))


# ---------------------------------------------------------------- atomics
_FLOAT_ATOM = ("f32", "f64", "f16", "bf16", "f16x2", "bf16x2")


def _atom_fn(kind, t, ins):
    """``fn(old, x, c, glob) -> new`` for one atomic operation; ``glob`` marks global-memory elements.

    ``atom/red.add.f32`` on *global* memory flushes subnormal inputs and
    results to sign-preserving zero, on shared memory it does not (PTX ISA
    9.7.13.5: "Current implementation of atom.add.f32 on global memory
    flushes subnormal inputs and results ..."); the f16/bf16 forms carry
    ``.noftz`` and never flush.
    """
    b = bits_of(t)
    if t in _FLOAT_ATOM:
        if kind == "add":
            if t == "f32":
                def add_f32(old, x, c, glob):
                    plain = fparith.add(t, old, x)
                    if not glob.any():
                        return plain
                    return np.where(glob, fparith.add(t, old, x, ftz=True), plain)
                return add_f32
            return lambda old, x, c, glob: fparith.add(t, old, x)
        if kind in ("min", "max"):
            f = fparith.fmin if kind == "min" else fparith.fmax
            return lambda old, x, c, glob: f(t, old, x)
        if kind == "exch":
            return lambda old, x, c, glob: x
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented")
    dt = UINT[b]
    sdt = {32: np.int32, 64: np.int64}.get(b)
    signed = is_signed(t)
    table = {
        "add": lambda o, x, c, g: (o + x).astype(dt),
        "and": lambda o, x, c, g: o & x,
        "or": lambda o, x, c, g: o | x,
        "xor": lambda o, x, c, g: o ^ x,
        "exch": lambda o, x, c, g: x,
        "cas": lambda o, x, c, g: np.where(o == x, c, o),
        "inc": lambda o, x, c, g: np.where(o >= x, dt(0), o + dt(1)).astype(dt),
        "dec": lambda o, x, c, g: np.where((o == 0) | (o > x), x, o - dt(1)).astype(dt),
    }
    if kind in ("min", "max"):
        f = np.minimum if kind == "min" else np.maximum
        if signed:
            return lambda o, x, c, g: f(o.view(sdt), x.view(sdt)).view(dt)
        return lambda o, x, c, g: f(o, x)
    if kind not in table:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented")
    return table[kind]


def _require_sm(m, ins, sm: int, ptx: tuple[int, int], what: str) -> None:
    """Refuse ``what`` in PTX whose .target is below ``sm_<sm>`` or whose .version is below ``ptx``."""
    if m.module.sm < sm or tuple(m.module.version) < ptx:
        raise UnsupportedPTXError(
            f"PTX line {ins.line}: `{ins.full_opcode}`: {what} needs sm_{sm}+ and PTX ISA {ptx[0]}.{ptx[1]}+; "
            f"this PTX is .target {m.module.target} .version {m.module.version[0]}.{m.module.version[1]}")


def _check_vector_atom(m, ins, kind, t, nvec):
    """PTX ISA 8.1 vector atom/red (sm_90): .global only; f32 .add in v2/v4; f16/bf16 .add/.min/.max
    .noftz in v2/v4/v8; f16x2/bf16x2 .add/.min/.max .noftz in v2/v4.  Each element is a separate atomic."""
    _require_sm(m, ins, 90, (8, 1), "a vector atomic")
    if t == "f32":
        ok = kind == "add" and nvec in (2, 4)
    elif t in ("f16", "bf16"):
        ok = kind in ("add", "min", "max") and "noftz" in ins.modifiers and nvec in (2, 4, 8)
    elif t in ("f16x2", "bf16x2"):
        ok = kind in ("add", "min", "max") and "noftz" in ins.modifiers and nvec in (2, 4)
    else:
        ok = False
    if not ok:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not a vector atomic of the PTX "
                                  "ISA (f32 .add .v2/.v4; f16/bf16 .noftz .v2/.v4/.v8; f16x2/bf16x2 .noftz .v2/.v4)")
    if _space(ins) not in ("global", "generic"):
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}`: vector atomics exist for .global only")


def build_atom(m, ins):
    is_red = ins.opcode == "red"
    space = _space(ins)
    t = _memory_type(ins, type_of(ins))
    kind = next((x for x in ins.modifiers if x in ("add", "min", "max", "and", "or", "xor", "exch", "cas",
                                                     "inc", "dec")), None)
    if kind is None:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented")
    nvec = _nvec(ins)
    if nvec > 1:
        _check_vector_atom(m, ins, kind, t, nvec)
    elif t in ("bf16", "bf16x2"):
        _require_sm(m, ins, 90, (7, 8), "a bf16 atomic")
    fn = _atom_fn(kind, t, ins)
    ops = ins.operands
    if is_red:
        dsts, addr_op, srcs = (), ops[0], ops[1:]
    else:
        dsts, addr_op, srcs = operands_flat(ops[0]), ops[1], ops[2:]
    writers = [None if isinstance(o, A.Sink) else store(m, o, t) for o in dsts]
    srcs = [e for o in srcs for e in operands_flat(o)][: nvec if nvec > 1 else None]
    fs = [fetch(m, o, t) for o in srcs]
    get = address(m, addr_op, space, ins)
    esize = A.TYPE_SIZES[t]
    mem = m.mem

    def run(act):
        idx = _idx(m, act)
        if idx.size == 0:
            return
        a = get(idx, op)
        xs = _gather_sources(fs, idx, op, m, "used as an atomic operand")
        if nvec > 1:  # separate atomics on adjacent elements (ISA: no atomicity across the vector)
            mem.check_aligned(space, a, esize * nvec, idx, op)
            a = (a[:, None] + np.arange(nvec) * esize).reshape(-1)
            who = np.repeat(idx, nvec)
            x, c = xs.reshape(-1), None
        else:
            who = idx
            x = xs[:, 0]
            c = xs[:, 1] if xs.shape[1] > 1 else None
        if space == "global":
            glob = np.ones(a.size, bool)
        elif space == "generic":
            glob = a < SHARED_WINDOW
            if nvec > 1 and not glob.all():
                raise fault(m, "memcheck", "a vector atomic through a generic address that is not global "
                            "(vector atomics exist for .global only)", np.unique(who[~glob]), op)
        else:
            glob = np.zeros(a.size, bool)
        old_all = np.zeros(a.size, x.dtype)
        todo = np.arange(a.size)
        while todo.size:  # one round per multiplicity: a legal serialisation in thread order
            _, first = np.unique(a[todo], return_index=True)
            sel = todo[first]
            old, _ = mem.load(space, a[sel], who[sel], esize, 1, op, atomic=True)
            old = old[:, 0]
            new = fn(old, x[sel], None if c is None else c[sel], glob[sel])
            mem.store(space, a[sel], who[sel], np.asarray(new, old.dtype)[:, None], op, atomic=True)
            old_all[sel] = old
            todo = np.setdiff1d(todo, sel, assume_unique=True)
        if writers:
            _scatter(m, writers, old_all.reshape(idx.size, -1), True, idx, act)

    op = Op(ins, run=run, klass="memory", dsts=() if is_red else _names(*dsts))
    return op


# ---------------------------------------------------------------- cp.async
def build_cp_async(m, ins):
    mods = ins.modifiers
    if "commit_group" in mods:
        def run_commit(act):
            m.mem.copies.commit(_idx(m, act))
        return Op(ins, run=run_commit, klass="sync")
    if "wait_group" in mods or "wait_all" in mods:
        keep = ins.operands[0].value if "wait_group" in mods else None

        def run_wait(act):
            if keep is None:
                m.mem.copies.commit(_idx(m, act))
            m.mem.async_wait(m.exists if act is None else act, keep, op)
        op = Op(ins, run=run_wait, klass="sync")
        return op
    if "bulk" in mods or "mbarrier" in mods:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` (Hopper bulk copy) is not supported")
    _require(m, ins, "cp.async")
    dst_op, src_op, size_op = ins.operands[:3]
    cp = size_op.value
    if cp not in (4, 8, 16):
        raise UnsupportedPTXError(f"PTX line {ins.line}: cp.async size {cp} (must be 4, 8 or 16)")
    src_size = ignore = None
    if len(ins.operands) > 3:
        extra = ins.operands[3]
        kind = m.reg_bits.get(reg_name(extra)) if isinstance(extra, A.Register) else 32
        if kind == 1:  # ignore-src predicate: when true, the destination is zero-filled
            ignore = fetch(m, extra, "pred")
        elif kind in (8, 16, 32):
            src_size = fetch(m, extra, "u32")
    get_dst = address(m, dst_op, "shared", ins)
    get_src = address(m, src_op, "global", ins)

    def run(act):
        idx = _idx(m, act)
        if idx.size == 0:
            return
        dst = get_dst(idx, op)
        n = np.full(idx.size, cp, np.int64)
        if src_size is not None:
            v, d = src_size()
            if d is not True and (~d[idx]).any():
                raise fault(m, "undefined value", "cp.async src-size is undefined", idx[~d[idx]], op)
            n = np.minimum(v[idx].astype(np.int64), cp)
        if ignore is not None:
            p, _ = ignore()
            n = np.where(p[idx], 0, n)
        data = np.zeros((idx.size, cp), np.uint8)
        full = n == cp
        if full.any():
            src = get_src(idx[full], op)
            es = min(cp, 8)
            got, _ = m.mem.load("global", src, idx[full], es, cp // es, op)
            data[full] = np.ascontiguousarray(got).view(np.uint8).reshape(-1, cp)
        # src-size < cp-size: only the first src-size bytes are read (the rest is zero-filled, never touched),
        # so a copy at the end of a buffer reads nothing past it (PTX ISA 9.7.9.25)
        part = (n > 0) & ~full
        if part.any():
            src = get_src(idx[part], op)
            rows = np.flatnonzero(part)
            for j in range(cp - 1):  # byte j of every partial copy that reads at least j + 1 bytes
                on = n[part] > j
                if not on.any():
                    break
                got, _ = m.mem.load("global", src[on] + j, idx[part][on], 1, 1, op)
                data[rows[on], j] = np.asarray(got).reshape(-1).astype(np.uint8)
        m.mem.async_issue(dst, idx, data, op)

    op = Op(ins, run=run, klass="memory")
    op.key = shared_access_key(ins.opcode, ins.modifiers, cp)
    return op


# ---------------------------------------------------------------- ldmatrix
def _require(m, ins, feature):
    """Refuse a feature the module's .target / .version cannot have (ptxas would)."""
    known = any(feature in t.features for t in TARGETS.values())
    if not known:
        return
    try:
        from lowbit.arch import target
        tgt = target(m.module.target)
    except Exception:
        return
    if not tgt.supports(feature):
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` needs a target with {feature}; "
                                  f"this PTX is for .target {m.module.target}")
    need = tgt.feature(feature).min_ptx
    if tuple(m.module.version) < need:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` needs PTX ISA "
                                  f"{need[0]}.{need[1]}; this module is .version "
                                  f"{m.module.version[0]}.{m.module.version[1]}")


def build_ldmatrix(m, ins):
    from lowbit.emu import mma as S

    _require(m, ins, "ldmatrix")
    num = next(int(x[1:]) for x in ins.modifiers if x in ("x1", "x2", "x4"))
    trans = "trans" in ins.modifiers
    if "m8n8" not in ins.modifiers or "b16" not in ins.modifiers:
        raise UnsupportedPTXError(f"PTX line {ins.line}: `{ins.full_opcode}` is not implemented")
    dsts = operands_flat(ins.operands[0])
    ws = [store(m, o, "b32") for o in dsts]
    get = address(m, ins.operands[1], "shared", ins)
    mem = m.mem
    used_lanes = 8 * num

    def run(act):
        wids, _ = _check_members(m, act, None, op, "ldmatrix")
        lanes = (wids[:, None] * 32 + np.arange(used_lanes)).reshape(-1)
        a = get(lanes, op)
        if np.any(a >= SHARED_WINDOW):
            a = a - SHARED_WINDOW
        rows, dfd = mem.load("shared", a, lanes, 4, 4, op)  # one 16-byte row per lane
        full = np.zeros((wids.size, 32, 16), np.uint8)
        full[:, :used_lanes] = np.ascontiguousarray(rows).view(np.uint8).reshape(wids.size, used_lanes, 16)
        out = S.ldmatrix(full, num, trans=trans)  # (nw, 32, num)
        d = True
        if dfd is not True:
            dw = dfd.reshape(wids.size, -1).all(1)
            d = np.zeros(m.T, bool)
            d.reshape(-1, 32)[wids] = dw[:, None]
        for j, w in enumerate(ws):
            v = np.zeros(m.T, np.uint32)
            v.reshape(-1, 32)[wids] = out[:, :, j]
            w(v, d, act)

    op = Op(ins, run=run, klass="memory", dsts=_names(*dsts))
    return op


BUILDERS = {
    "ld": build_ld, "ldu": build_ld, "st": build_st, "mov": build_mov, "cvta": build_cvta,
    "atom": build_atom, "red": build_atom, "cp": build_cp_async, "ldmatrix": build_ldmatrix,
    "membar": build_noop, "fence": build_noop, "prefetch": build_noop, "prefetchu": build_noop,
    "discard": build_noop, "applypriority": build_noop, "nanosleep": build_noop, "pmevent": build_noop,
    "createpolicy": build_createpolicy,
}
