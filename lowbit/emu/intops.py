"""Integer and bit instructions of the PTX ISA whose corners need care.

Sections: 9.7.1 "Integer Arithmetic Instructions", 9.7.2 "Extended-Precision
Integer Arithmetic" (add.cc/addc/sub.cc/subc), 9.7.8 "Logic and Shift"
(shl/shr/shf/lop3), 9.7.1.x bit-field instructions (bfe/bfi/brev/popc/clz/
bfind), 9.7.9.x prmt.  Values are unsigned numpy arrays holding the bit
patterns (uint16/32/64 by ``bits``), vectorised over any shapes; ``signed``
selects the .s type's interpretation.  Results are bit patterns of the same
width unless stated.

    mul(a, b, bits, signed, mode)            mode: "lo" | "hi" | "wide" (wide -> 2*bits)
    mad(a, b, c, bits, signed, mode, sat=False)   .sat only for mad.hi.sat.s32
    mul24(a, b, signed, mode) / mad24(a, b, c, signed, mode, sat=False)
    div(a, b, bits, signed), rem(a, b, bits, signed)
    add_sat(a, b) / sub_sat(a, b)            add.sat.s32 / sub.sat.s32
    add_cc(a, b, bits, carry_in=None, sub=False) -> (d, carry_out)
    mad_cc(a, b, c, bits, signed, mode, carry_in=None) -> (d, carry_out)   mad.cc / madc
    shl(a, n, bits), shr(a, n, bits, signed)
    shf(a, b, n, left, mode)                  mode: "wrap" | "clamp" (32-bit)
    bfe(a, pos, length, bits, signed), bfi(a, b, pos, length, bits)
    brev(a, bits), popc(a, bits), clz(a, bits), bfind(a, bits, signed, shiftamt=False)
    lop3(a, b, c, lut), prmt(a, b, sel, mode=None)
    dp4a(a, b, c, a_signed, b_signed), dp2a(a, b, c, a_signed, b_signed, hi)
    min_(a, b, bits, signed), max_(a, b, bits, signed), abs_(a, bits), neg(a, bits)

Corner cases, each from the ISA text:
* shl/shr: "Shift amounts greater than the register width N are clamped to N"
  (the amount is an unsigned 32-bit value): shl -> 0, shr.u -> 0, shr.s ->
  all sign bits.
* shf.l/.r (32-bit funnel shift): ``.clamp`` uses min(n, 32), ``.wrap`` uses
  n & 31.
* bfe: pos = b & 0xff, len = c & 0xff; the field is bits pos..pos+len-1 that
  lie inside the operand; bits beyond come from the sign bit (bfe.s) or 0; the
  sign bit is a[min(pos+len-1, msb)] and len = 0 gives 0.
* bfi: pos = c & 0xff, len = d & 0xff; inserts a's low bits, bits past the
  msb are dropped; len = 0 or pos > msb leaves b unchanged.
* bfind: position of the most significant 1 (.u) or non-sign bit (.s);
  0xffffffff when none (a = 0, or -1 for .s); ``.shiftamt`` returns msb - pos.
* clz of 0 is the width; popc/clz/bfind results are u32.
* div/rem: truncate toward zero, the remainder has the dividend's sign.
  Division by zero is "unspecified, machine-specific" in the ISA; this module
  returns what current GPUs produce -- all ones for div.u, -1 for div.s with
  a >= 0 and +1 for a < 0, and ``a`` for rem (the compiled reciprocal
  sequence's result) -- and M should mark such results undefined.  MIN / -1
  wraps to MIN, rem gives 0.
* mul24: operands are the low 24 bits (sign-extended for .s); .lo is bits
  31..0 of the 48-bit product, .hi bits 47..16.
* add.cc/sub.cc: the carry flag; for subtraction it is the *borrow*
  (``subc d = a - b - CF``), as PTX's multiword arithmetic defines it.
* mad.cc/madc (9.7.2.5-6): ``t = a * b`` (signed or unsigned by the type),
  then ``d = t<lo or hi half> + c (+ CF for madc)``; the carry out is that of
  the *unsigned* addition of the bit patterns (the signedness only picks the
  product's high half).  No ``.wide`` form exists.
"""

from __future__ import annotations

import numpy as np

from lowbit.errors import UnsupportedPTXError

_U = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
_S = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}


def _u(a, bits):
    return np.asarray(a).astype(_U[bits])


def _s(a, bits):
    return _u(a, bits).view(_S[bits])


def _wide_mul64(a, b, signed):
    """Full 128-bit product of 64-bit operands as (hi, lo) uint64 via 32-bit limbs."""
    au, bu = _u(a, 64), _u(b, 64)
    m32 = np.uint64(0xFFFFFFFF)
    a0, a1, b0, b1 = au & m32, au >> np.uint64(32), bu & m32, bu >> np.uint64(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> np.uint64(32)) + (p01 & m32) + (p10 & m32)
    lo = (p00 & m32) | ((mid & m32) << np.uint64(32))
    hi = p11 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32))
    if signed:  # two's complement correction: subtract b<<64 if a<0, a<<64 if b<0
        hi = hi - np.where(_s(a, 64) < 0, bu, np.uint64(0)) - np.where(_s(b, 64) < 0, au, np.uint64(0))
    return hi, lo


def mul(a, b, bits, signed, mode):
    """``mul.{lo,hi,wide}.{s,u}{16,32,64}``; wide doubles the width (not for 64)."""
    if bits == 64:
        if mode == "wide":
            raise UnsupportedPTXError("mul.wide.{s,u}64 is not a PTX instruction")
        hi, lo = _wide_mul64(a, b, signed)
        return hi if mode == "hi" else lo
    if signed:
        p = _s(a, bits).astype(np.int64) * _s(b, bits).astype(np.int64)
    else:
        p = _u(a, bits).astype(np.uint64) * _u(b, bits).astype(np.uint64)
    p = p.astype(np.uint64)
    if mode == "lo":
        return p.astype(_U[bits])
    if mode == "hi":
        return (p >> np.uint64(bits)).astype(_U[bits])
    if mode == "wide":
        return p.astype(_U[2 * bits])
    raise UnsupportedPTXError(f"mul.{mode} is not a PTX mode")


def mad(a, b, c, bits, signed, mode, sat=False):
    """``mad.{lo,hi,wide}{.sat}``: product (lo/hi/wide part) + c; .sat only for mad.hi.sat.s32."""
    p = mul(a, b, bits, signed, mode)
    w = 2 * bits if mode == "wide" else bits
    if sat:
        if not (mode == "hi" and signed and bits == 32):
            raise UnsupportedPTXError("mad .sat exists only as mad.hi.sat.s32")
        return add_sat(p, c)
    return (p.astype(_U[w]) + _u(c, w)).astype(_U[w])


def mul24(a, b, signed, mode):
    """``mul24.{lo,hi}.{s,u}32``: 24x24-bit product; .hi is bits 47..16."""
    if signed:
        x = (_u(a, 32).astype(np.int64) << 40) >> 40
        y = (_u(b, 32).astype(np.int64) << 40) >> 40
        p = (x * y).astype(np.uint64)
    else:
        p = (_u(a, 32) & np.uint32(0xFFFFFF)).astype(np.uint64) * (_u(b, 32) & np.uint32(0xFFFFFF)).astype(np.uint64)
    if mode == "lo":
        return p.astype(np.uint32)
    if mode == "hi":
        return (p >> np.uint64(16)).astype(np.uint32)
    raise UnsupportedPTXError(f"mul24.{mode} is not a PTX mode")


def mad24(a, b, c, signed, mode, sat=False):
    """``mad24.{lo,hi}{.sat}``; .sat only for mad24.hi.sat.s32."""
    p = mul24(a, b, signed, mode)
    if sat:
        if not (mode == "hi" and signed):
            raise UnsupportedPTXError("mad24 .sat exists only as mad24.hi.sat.s32")
        return add_sat(p, c)
    return p + _u(c, 32)


def _magnitudes(a, b, bits):
    """Signed operands -> (|a|, |b| as uint64 (|MIN| = 2**(bits-1) fits), a < 0, b < 0)."""
    x, y = _s(a, bits).astype(np.int64), _s(b, bits).astype(np.int64)
    ux = np.where(x < 0, np.uint64(0) - x.astype(np.uint64), x.astype(np.uint64))
    uy = np.where(y < 0, np.uint64(0) - y.astype(np.uint64), y.astype(np.uint64))
    return ux, uy, x < 0, y < 0


def div(a, b, bits, signed):
    """``div.{s,u}{16,32,64}``: truncating; see the module docstring for b = 0."""
    if signed:
        ux, uy, xn, yn = _magnitudes(a, b, bits)
        zero = uy == 0
        q = ux // np.where(zero, np.uint64(1), uy)
        q = np.where(xn != yn, np.uint64(0) - q, q)  # MIN / -1 wraps to MIN
        q = np.where(zero, np.where(xn, np.uint64(1), np.uint64(2**64 - 1)), q)
        return q.astype(_U[bits])
    x, y = _u(a, bits), _u(b, bits)
    zero = y == 0
    q = x // np.where(zero, 1, y).astype(x.dtype)
    return np.where(zero, _U[bits](np.iinfo(_U[bits]).max), q).astype(_U[bits])


def rem(a, b, bits, signed):
    """``rem.{s,u}``: remainder with the sign of the dividend; rem by 0 returns a."""
    if signed:
        ux, uy, xn, _ = _magnitudes(a, b, bits)
        zero = uy == 0
        r = ux % np.where(zero, np.uint64(1), uy)
        r = np.where(xn, np.uint64(0) - r, r)
        return np.where(zero, _u(a, bits), r.astype(_U[bits])).astype(_U[bits])
    x, y = _u(a, bits), _u(b, bits)
    zero = y == 0
    return np.where(zero, x, x % np.where(zero, 1, y).astype(x.dtype)).astype(_U[bits])


def add_sat(a, b):
    """``add.sat.s32``: clamp to [INT32_MIN, INT32_MAX]."""
    s = _s(a, 32).astype(np.int64) + _s(b, 32).astype(np.int64)
    return np.clip(s, -(2**31), 2**31 - 1).astype(np.int32).view(np.uint32)


def sub_sat(a, b):
    """``sub.sat.s32``."""
    s = _s(a, 32).astype(np.int64) - _s(b, 32).astype(np.int64)
    return np.clip(s, -(2**31), 2**31 - 1).astype(np.int32).view(np.uint32)


def add_cc(a, b, bits, carry_in=None, sub=False):
    """add.cc/addc/sub.cc/subc: returns (d, carry_out) with carry a bool array."""
    x, y = _u(a, bits), _u(b, bits)
    cin = np.zeros(np.broadcast(x, y).shape, bool) if carry_in is None else np.asarray(carry_in, bool)
    c = cin.astype(_U[bits])
    if sub:
        d = x - y - c
        borrow = (x < y) | ((x == y) & cin)
        return d.astype(_U[bits]), borrow
    d1 = x + y
    d = d1 + c
    carry = (d1 < x) | ((d == 0) & cin & (d1 == _U[bits](np.iinfo(_U[bits]).max)))
    return d.astype(_U[bits]), carry


def mad_cc(a, b, c, bits, signed, mode, carry_in=None):
    """mad{.lo,.hi}.cc / madc{.lo,.hi}{.cc}: returns (d, carry_out) with carry a bool array."""
    if mode not in ("lo", "hi"):
        raise UnsupportedPTXError(f"mad.cc/madc have .lo and .hi forms only, not .{mode}")
    return add_cc(mul(a, b, bits, signed, mode), c, bits, carry_in=carry_in)


def shl(a, n, bits):
    """``shl.b{16,32,64}``: amounts >= width give 0."""
    n = np.asarray(n).astype(np.uint32)
    x = _u(a, bits)
    return np.where(n >= bits, _U[bits](0), x << np.minimum(n, bits - 1).astype(_U[bits])).astype(_U[bits])


def shr(a, n, bits, signed):
    """``shr.{b,u,s}``: amounts >= width give 0 (.u/.b) or the sign fill (.s)."""
    n = np.asarray(n).astype(np.uint32)
    if signed:  # an amount clamped to width-1 already yields all sign bits
        return (_s(a, bits) >> np.minimum(n, bits - 1).astype(_S[bits])).view(_U[bits])
    x = _u(a, bits)
    return np.where(n >= bits, _U[bits](0), x >> np.minimum(n, bits - 1).astype(_U[bits])).astype(_U[bits])


def shf(a, b, n, left, mode):
    """``shf.{l,r}.{wrap,clamp}.b32 d, a, b, n``: funnel shift of the 64-bit b:a."""
    n = np.asarray(n).astype(np.uint32)
    n = n & np.uint32(31) if mode == "wrap" else np.minimum(n, np.uint32(32))
    v = (_u(b, 32).astype(np.uint64) << np.uint64(32)) | _u(a, 32).astype(np.uint64)
    if left:
        return ((v << n.astype(np.uint64)) >> np.uint64(32)).astype(np.uint32)
    return (v >> n.astype(np.uint64)).astype(np.uint32)


def bfe(a, pos, length, bits, signed):
    """``bfe.{u,s}{32,64} d, a, b, c``: extract len bits from pos (see module docstring)."""
    pos = np.asarray(pos).astype(np.int64) & 0xFF
    ln = np.asarray(length).astype(np.int64) & 0xFF
    x = _u(a, bits).astype(np.uint64)
    msb = bits - 1
    sh = np.minimum(pos, msb).astype(np.uint64)
    field = np.where(pos > msb, np.uint64(0), x >> sh)
    take = np.minimum(ln, np.maximum(bits - pos, 0))  # bits that lie inside the operand
    mask = np.where(take >= 64, np.uint64(2**64 - 1), (np.uint64(1) << np.minimum(take, 63).astype(np.uint64)) - np.uint64(1))
    field = field & mask
    if signed:
        sidx = np.minimum(pos + ln - 1, msb)
        sbit = np.where(ln == 0, 0, (x >> np.maximum(sidx, 0).astype(np.uint64)) & np.uint64(1)).astype(bool)
        field = np.where(sbit, field | ~mask, field)
        field = np.where(ln == 0, np.uint64(0), field)
    return field.astype(_U[bits])


def bfi(a, b, pos, length, bits):
    """``bfi.b{32,64} f, a, b, c, d``: insert a's low len bits into b at pos."""
    pos = np.asarray(pos).astype(np.int64) & 0xFF
    ln = np.asarray(length).astype(np.int64) & 0xFF
    x, y = _u(a, bits).astype(np.uint64), _u(b, bits).astype(np.uint64)
    take = np.minimum(ln, np.maximum(bits - pos, 0))
    mask = np.where(take >= 64, np.uint64(2**64 - 1), (np.uint64(1) << np.minimum(take, 63).astype(np.uint64)) - np.uint64(1))
    sh = np.minimum(pos, 63).astype(np.uint64)
    r = (y & ~(mask << sh)) | ((x & mask) << sh)
    return np.where(take == 0, y, r).astype(_U[bits])


def brev(a, bits):
    """``brev.b{32,64}``: reverse the bit order."""
    x = _u(a, bits).astype(np.uint64)
    r = np.zeros_like(x)
    for i in range(bits):  # loop over bit positions, vectorised over threads
        r |= ((x >> np.uint64(i)) & np.uint64(1)) << np.uint64(bits - 1 - i)
    return r.astype(_U[bits])


def popc(a, bits):
    """``popc.b{32,64}`` -> u32."""
    x = _u(a, bits).astype(np.uint64)
    return np.bitwise_count(x).astype(np.uint32)


def clz(a, bits):
    """``clz.b{32,64}`` -> u32; clz(0) = width."""
    x = _u(a, bits).astype(np.uint64)
    n = np.zeros(x.shape, np.uint32)
    for s in (32, 16, 8, 4, 2, 1):
        big = x >= (np.uint64(1) << np.uint64(s))
        x = np.where(big, x >> np.uint64(s), x)
        n += big.astype(np.uint32) * np.uint32(s)
    length = n + (x > 0).astype(np.uint32)
    return (np.uint32(bits) - length).astype(np.uint32)


def bfind(a, bits, signed, shiftamt=False):
    """``bfind{.shiftamt}.{u,s}{32,64}`` -> u32; 0xffffffff when there is no such bit."""
    x = _u(a, bits)
    if signed:
        x = np.where(_s(a, bits) < 0, ~x, x)
    pos = (bits - 1) - clz(x, bits).astype(np.int64)
    none = pos < 0
    r = (bits - 1) - pos if shiftamt else pos
    return np.where(none, np.uint32(0xFFFFFFFF), np.asarray(r).astype(np.uint32)).astype(np.uint32)


def lop3(a, b, c, lut):
    """``lop3.b32 d, a, b, c, immLut``: bit i of d is lut[(a_i<<2)|(b_i<<1)|c_i]."""
    x, y, z = _u(a, 32), _u(b, 32), _u(c, 32)
    lut = int(lut) & 0xFF
    r = np.zeros(np.broadcast(x, y, z).shape, np.uint32)
    for i in range(8):  # the eight minterms of the truth table
        if lut >> i & 1:
            r |= (x if i & 4 else ~x) & (y if i & 2 else ~y) & (z if i & 1 else ~z)
    return r


def prmt(a, b, sel, mode=None):
    """``prmt.b32{.mode} d, a, b, c``: byte permute of the 8-byte b:a (PTX ISA 9.7.9.x).

    Default mode: each of d's 4 bytes is chosen by a 4-bit selector nibble of
    c (bits 2..0 pick byte 0..7 of {b, a}; bit 3 replicates that byte's sign
    bit).  Modes f4e/b4e/rc8/ecl/ecr/rc16 use c[1:0] as in the ISA's table.
    """
    x, y = _u(a, 32).astype(np.uint64), _u(b, 32).astype(np.uint64)
    src = (y << np.uint64(32)) | x
    c = _u(sel, 32)
    shape = np.broadcast(x, y, c).shape

    def byte(i):
        return ((src >> (np.asarray(i).astype(np.uint64) * np.uint64(8))) & np.uint64(0xFF)).astype(np.uint32)

    if mode is None:
        out = np.zeros(shape, np.uint32)
        for k in range(4):
            nib = (c >> np.uint32(4 * k)) & np.uint32(0xF)
            v = byte(nib & np.uint32(7))
            v = np.where(nib & np.uint32(8), np.where(v & np.uint32(0x80), np.uint32(0xFF), np.uint32(0)), v)
            out |= v << np.uint32(8 * k)
        return out
    s = (c & np.uint32(3)).astype(np.int64)
    tables = {
        "f4e": [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]],
        "b4e": [[0, 7, 6, 5], [1, 0, 7, 6], [2, 1, 0, 7], [3, 2, 1, 0]],
        "rc8": [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]],
        "ecl": [[0, 1, 2, 3], [1, 1, 2, 3], [2, 2, 2, 3], [3, 3, 3, 3]],
        "ecr": [[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 2, 2], [0, 1, 2, 3]],
        "rc16": [[0, 1, 0, 1], [2, 3, 2, 3], [0, 1, 0, 1], [2, 3, 2, 3]],
    }
    if mode not in tables:
        raise UnsupportedPTXError(f"prmt.{mode} is not a PTX mode")
    t = np.array(tables[mode], dtype=np.int64)  # t[selector][dest byte]
    out = np.zeros(shape, np.uint32)
    for k in range(4):
        out |= byte(t[s, k]) << np.uint32(8 * k)
    return out


def _bytes(x, n, signed):
    x = _u(x, 32)
    w = 32 // n
    parts = []
    for i in range(n):
        v = ((x >> np.uint32(w * i)) & np.uint32((1 << w) - 1)).astype(np.int64)
        if signed:
            v = np.where(v >= 1 << (w - 1), v - (1 << w), v)
        parts.append(v)
    return parts


def dp4a(a, b, c, a_signed, b_signed):
    """``dp4a.atype.btype d, a, b, c``: c + sum of four byte products (32-bit wrap)."""
    acc = _u(c, 32).astype(np.int64)
    for x, y in zip(_bytes(a, 4, a_signed), _bytes(b, 4, b_signed)):
        acc = acc + x * y
    return acc.astype(np.uint64).astype(np.uint32)


def dp2a(a, b, c, a_signed, b_signed, hi):
    """``dp2a.{lo,hi}.atype.btype d, a, b, c``: two 16-bit a halves times bytes 0-1 (.lo) or 2-3 (.hi) of b."""
    acc = _u(c, 32).astype(np.int64)
    bs = _bytes(b, 4, b_signed)[2:] if hi else _bytes(b, 4, b_signed)[:2]
    for x, y in zip(_bytes(a, 2, a_signed), bs):
        acc = acc + x * y
    return acc.astype(np.uint64).astype(np.uint32)


def min_(a, b, bits, signed):
    """``min.{s,u}``."""
    f = _s if signed else _u
    return np.minimum(f(a, bits), f(b, bits)).view(_U[bits]) if signed else np.minimum(f(a, bits), f(b, bits))


def max_(a, b, bits, signed):
    """``max.{s,u}``."""
    f = _s if signed else _u
    return np.maximum(f(a, bits), f(b, bits)).view(_U[bits]) if signed else np.maximum(f(a, bits), f(b, bits))


def abs_(a, bits):
    """``abs.s``: |MIN| wraps to MIN."""
    return np.abs(_s(a, bits)).view(_U[bits])


def neg(a, bits):
    """``neg.s``: two's complement negation."""
    return (_U[bits](0) - _u(a, bits)).astype(_U[bits])
