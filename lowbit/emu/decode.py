"""Pre-decoding: turn an instruction's operands into fetch and write closures once.

Python dispatch per executed instruction is the emulator's cost, so every
operand is resolved before the launch runs: a register becomes a closure that
reads ``machine.R[name]`` (its raw bits, ``uint{8,16,32,64}`` or ``bool`` for
predicates, one element per thread) and ``machine.D[name]`` (definedness:
``True`` when every thread's value is defined, else a bool array); an
immediate becomes a constant array of the instruction's width; a special
register a precomputed array.

Operand width rules (PTX ISA 5.4 "Operand type checking" and the notes on
"destination register wider than the instruction type"): a register wider
than the instruction type is read through its low bits; a value written to a
wider register is zero-extended (sign-extended for signed types); a narrower
register receives the low bits.
"""

from __future__ import annotations

import numpy as np

from lowbit.emu import ptx_ast as A
from lowbit.errors import UnsupportedPTXError

UINT = {1: np.uint8, 8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
SINT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}
TYPES = frozenset(A.TYPE_SIZES)


def type_of(instr: A.Instruction, default: str | None = None) -> str:
    """The instruction's (last) type modifier, e.g. ``"f32"`` of ``add.rn.f32``."""
    for m in reversed(instr.modifiers):
        if m in TYPES:
            return m
    if default is None:
        raise UnsupportedPTXError(f"PTX line {instr.line}: no type in `{instr.text}`")
    return default


def types_of(instr: A.Instruction) -> list[str]:
    """All type modifiers in source order (``cvt.rn.f16.f32`` -> ``["f16", "f32"]``)."""
    return [m for m in instr.modifiers if m in TYPES]


def bits_of(t: str) -> int:
    return 1 if t == "pred" else A.TYPE_SIZES[t] * 8


def is_signed(t: str) -> bool:
    return t[0] == "s"


def is_float(t: str) -> bool:
    return t[0] == "f" or t.startswith("bf") or t in ("tf32", "e4m3", "e5m2")


def reg_bits(machine, name: str) -> int:
    return machine.reg_bits[name]


def _float_imm_bits(op: A.FloatImmediate, t: str) -> int:
    """A float literal converted to type ``t`` (f32/f64/f16 by value, raw bits otherwise)."""
    if t in ("f64", "f32", "f16"):
        src = np.array([op.bits], np.uint64 if op.width == 64 else np.uint32)
        val = src.view(np.float64 if op.width == 64 else np.float32)
        want = {"f64": np.float64, "f32": np.float32, "f16": np.float16}[t]
        return int(val.astype(want).view(UINT[bits_of(t)])[0])
    return op.bits


def const_bits(op, t: str) -> int:
    """The raw bits of an immediate operand for type ``t``."""
    b = bits_of(t)
    if isinstance(op, A.FloatImmediate):
        return _float_imm_bits(op, t) & ((1 << b) - 1)
    if is_float(t) and t in ("f32", "f64", "f16"):
        return _float_imm_bits(A.FloatImmediate(int(np.float64(op.value).view(np.uint64)), 64), t)
    return op.value & ((1 << b) - 1)


def fetch(machine, op, t: str):
    """A closure ``() -> (bits, defined)`` reading ``op`` as type ``t`` for every thread."""
    R, D = machine.R, machine.D
    b = bits_of(t)
    if isinstance(op, A.Register):
        name = reg_name(op)
        if name not in machine.reg_bits:
            raise UnsupportedPTXError(f"register {name} is not declared")
        rb = machine.reg_bits[name]
        if rb == b or (b == 1 and rb == 1):
            return lambda: (R[name], D[name])
        if rb == 1:
            dt = UINT[b]
            return lambda: (R[name].astype(dt), D[name])
        dt = UINT[b]
        return lambda: (R[name].astype(dt), D[name])
    if isinstance(op, (A.Immediate, A.FloatImmediate)):
        if b == 1:
            arr = np.full(machine.T, bool(op.value), bool)
        else:
            arr = np.full(machine.T, const_bits(op, t), UINT[b])
        return lambda: (arr, True)
    if isinstance(op, A.SpecialRegister):
        getter = machine.special(op.name, op.component)
        dt = UINT[b]
        return lambda: (getter().astype(dt, copy=False), True)
    if isinstance(op, (A.Symbol, A.SymbolOffset)):
        sym, off = (op.symbol, op.offset) if isinstance(op, A.SymbolOffset) else (op, 0)
        arr = np.full(machine.T, (machine.symbol_address(sym.name) + off) & ((1 << b) - 1), UINT[b])
        return lambda: (arr, True)
    if isinstance(op, A.Negated):
        inner = fetch(machine, op.operand, "pred")
        return lambda: (lambda v, d: (~v, d))(*inner())
    raise UnsupportedPTXError(f"operand {op!r} cannot be read as .{t}")


def reg_name(op: A.Register) -> str:
    return op.name if op.component is None else f"{op.name}.{op.component}"


def store(machine, op, t: str):
    """A closure ``(bits, defined, act)`` writing a value of type ``t`` into register ``op``.

    ``act`` is ``None`` (every thread) or a bool mask; inactive threads keep
    their old value and definedness.
    """
    R, D = machine.R, machine.D
    if isinstance(op, A.Sink):
        return lambda v, d, act: None
    if not isinstance(op, A.Register):
        raise UnsupportedPTXError(f"cannot write to operand {op!r}")
    name = reg_name(op)
    if name not in machine.reg_bits:
        raise UnsupportedPTXError(f"register {name} is not declared")
    rb = machine.reg_bits[name]
    b = bits_of(t)
    if rb == 1 and b != 1:
        raise UnsupportedPTXError(f"register {name} is a .pred: a .{t} value cannot be written into it")
    if rb == b or rb == 1:
        conv = None
    elif rb > b and is_signed(t):
        sd, ud = SINT[b], UINT[rb]
        sw = SINT[rb]
        def conv(v):
            return v.view(sd).astype(sw).view(ud)
    else:
        ud = UINT[rb]
        def conv(v):
            return v.astype(ud)

    def write(v, d, act):
        if conv is not None:
            v = conv(v)
        if act is None:
            R[name] = v
            D[name] = d
        else:
            R[name] = np.where(act, v, R[name])
            old = D[name]
            if not (d is True and old is True):
                D[name] = np.where(act, d, old)

    return write


def and_defined(*ds):
    """Definedness of a value computed from values with definedness ``ds`` (per thread AND)."""
    out = True
    for d in ds:
        if d is True:
            continue
        out = d if out is True else (out & d)
    return out


def operands_flat(op) -> tuple:
    """The elements of a vector operand, or the operand alone."""
    return op.elements if isinstance(op, A.Vector) else (op,)
