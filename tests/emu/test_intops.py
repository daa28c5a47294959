"""lowbit.emu.intops against Python-integer references written from the ISA's pseudocode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.emu import intops as I
from lowbit.errors import UnsupportedPTXError

U = {16: np.uint16, 32: np.uint32, 64: np.uint64}


def sval(x, bits):
    x = int(x) & ((1 << bits) - 1)
    return x - (1 << bits) if x >> (bits - 1) else x


def rand(bits, n=200, seed=0):
    rng = np.random.default_rng(seed + bits)
    v = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
    v = v & np.uint64((1 << bits) - 1)
    corners = [0, 1, (1 << bits) - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1, 2]
    return np.concatenate([np.array(corners, np.uint64), v]).astype(U[bits])


@pytest.mark.parametrize("bits", [16, 32, 64])
@pytest.mark.parametrize("signed", [False, True])
def test_mul_div_rem(bits, signed):
    a, b = rand(bits), np.roll(rand(bits, seed=1), 3)
    conv = (lambda x: sval(x, bits)) if signed else int
    mask = (1 << bits) - 1
    lo, hi = I.mul(a, b, bits, signed, "lo"), I.mul(a, b, bits, signed, "hi")
    q, r = I.div(a, b, bits, signed), I.rem(a, b, bits, signed)
    for i in range(a.size):
        x, y = conv(a[i]), conv(b[i])
        p = x * y
        assert int(lo[i]) == p & mask and int(hi[i]) == (p >> bits) & mask
        if y != 0:
            qq = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)  # truncation toward zero
            assert int(q[i]) == qq & mask, (x, y)
            assert int(r[i]) == (x - qq * y) & mask
    if bits < 64:
        wide = I.mul(a, b, bits, signed, "wide")
        assert wide.dtype == U[2 * bits]
        assert all(int(w) == (conv(x) * conv(y)) & ((1 << 2 * bits) - 1) for w, x, y in zip(wide, a, b))


def test_div_by_zero_and_overflow():
    a = np.array([7, 0xFFFFFFF9, 0x80000000], np.uint32)
    z = np.zeros(3, np.uint32)
    assert list(I.div(a, z, 32, False)) == [0xFFFFFFFF] * 3
    assert list(I.div(a, z, 32, True).view(np.int32)) == [-1, 1, 1]
    assert list(I.rem(a, z, 32, False)) == list(a)
    m1 = np.array([0xFFFFFFFF], np.uint32)
    assert int(I.div(np.array([0x80000000], np.uint32), m1, 32, True)[0]) == 0x80000000  # MIN / -1 wraps
    assert int(I.rem(np.array([0x80000000], np.uint32), m1, 32, True)[0]) == 0


def test_mad_mul24_sat_carry():
    a = np.array([0x7FFFFFFF, 0x80000000, 5], np.uint32)
    assert list(I.add_sat(a, np.array([1, 0xFFFFFFFF, 3], np.uint32)).view(np.int32)) == [2**31 - 1, -(2**31), 8]
    assert list(I.sub_sat(a, np.array([0xFFFFFFFF, 1, 3], np.uint32)).view(np.int32)) == [2**31 - 1, -(2**31), 2]
    x, y = np.uint32(0x00FFFFFF), np.uint32(0x00FFFFFF)
    p = 0xFFFFFF * 0xFFFFFF
    assert int(I.mul24(x, y, False, "lo")) == p & 0xFFFFFFFF and int(I.mul24(x, y, False, "hi")) == (p >> 16) & 0xFFFFFFFF
    assert int(I.mul24(np.uint32(0xFFFFFFFF), np.uint32(3), True, "lo")) == (-3) & 0xFFFFFFFF  # low 24 bits sign-extended
    assert int(I.mad(np.uint32(3), np.uint32(4), np.uint32(5), 32, False, "lo")) == 17
    with pytest.raises(UnsupportedPTXError):
        I.mad(np.uint32(3), np.uint32(4), np.uint32(5), 32, False, "lo", sat=True)
    # 96-bit addition with add.cc / addc / addc
    rng = np.random.default_rng(0)
    xs, ys = [int(v) for v in rng.integers(0, 2**63, 50)], [int(v) for v in rng.integers(0, 2**63, 50)]
    xs = [v * 2**33 + 0xFFFFFFFF for v in xs]
    ys = [v * 2**33 + 1 for v in ys]
    for sub in (False, True):
        limbs = lambda vs, k: np.array([(v >> (32 * k)) & 0xFFFFFFFF for v in vs], np.uint32)  # noqa: E731
        d0, c = I.add_cc(limbs(xs, 0), limbs(ys, 0), 32, sub=sub)
        d1, c = I.add_cc(limbs(xs, 1), limbs(ys, 1), 32, carry_in=c, sub=sub)
        d2, c = I.add_cc(limbs(xs, 2), limbs(ys, 2), 32, carry_in=c, sub=sub)
        for i in range(50):
            want = (xs[i] - ys[i] if sub else xs[i] + ys[i]) & ((1 << 96) - 1)
            assert int(d0[i]) | int(d1[i]) << 32 | int(d2[i]) << 64 == want


@settings(max_examples=200)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_shifts_and_funnel(a, b, n):
    for n_ in (n, n % 70):
        shl = (a << n_) & 0xFFFFFFFF if n_ < 32 else 0  # ISA: amounts > width clamp to width
        assert int(I.shl(np.uint32(a), np.uint32(n_), 32)) == shl
        assert int(I.shr(np.uint32(a), np.uint32(n_), 32, False)) == (a >> n_ if n_ < 32 else 0)
        assert int(I.shr(np.uint32(a), np.uint32(n_), 32, True)) == (sval(a, 32) >> min(n_, 32)) & 0xFFFFFFFF
        v = (b << 32) | a
        for mode, k in (("wrap", n_ & 31), ("clamp", min(n_, 32))):
            assert int(I.shf(np.uint32(a), np.uint32(b), np.uint32(n_), True, mode)) == ((v << k) >> 32) & 0xFFFFFFFF
            assert int(I.shf(np.uint32(a), np.uint32(b), np.uint32(n_), False, mode)) == (v >> k) & 0xFFFFFFFF


def ref_bfe(a, pos, ln, bits, signed):
    # PTX ISA bfe pseudocode
    msb = bits - 1
    pos, ln = pos & 0xFF, ln & 0xFF
    if not signed or ln == 0:
        sbit = 0
    else:
        sbit = (a >> min(pos + ln - 1, msb)) & 1
    d = 0
    for i in range(bits):
        bit = (a >> (pos + i)) & 1 if (i < ln and pos + i <= msb) else sbit
        d |= bit << i
    return d


def ref_bfi(a, b, pos, ln, bits):
    pos, ln = pos & 0xFF, ln & 0xFF
    f = b
    for i in range(ln):
        if pos + i > bits - 1:
            break
        f = (f & ~(1 << (pos + i))) | (((a >> i) & 1) << (pos + i))
    return f


@settings(max_examples=200)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 300), st.integers(0, 300),
       st.sampled_from([32, 64]), st.booleans())
def test_bfe_bfi(a, b, pos, ln, bits, signed):
    a &= (1 << bits) - 1
    b &= (1 << bits) - 1
    assert int(I.bfe(U[bits](a), pos, ln, bits, signed)) == ref_bfe(a, pos, ln, bits, signed)
    assert int(I.bfi(U[bits](a), U[bits](b), pos, ln, bits)) == ref_bfi(a, b, pos, ln, bits)


@pytest.mark.parametrize("bits", [32, 64])
def test_bit_counting(bits):
    a = rand(bits)
    br, pc, cz = I.brev(a, bits), I.popc(a, bits), I.clz(a, bits)
    bu, bs, bsh = I.bfind(a, bits, False), I.bfind(a, bits, True), I.bfind(a, bits, False, shiftamt=True)
    for i, x in enumerate(map(int, a)):
        assert int(br[i]) == int(format(x, f"0{bits}b")[::-1], 2)
        assert int(pc[i]) == bin(x).count("1")
        assert int(cz[i]) == bits - x.bit_length()
        assert int(bu[i]) == (x.bit_length() - 1 if x else 0xFFFFFFFF)
        assert int(bsh[i]) == (bits - x.bit_length() if x else 0xFFFFFFFF)
        s = sval(x, bits)
        nonsign = (~s if s < 0 else s).bit_length() - 1
        assert int(bs[i]) == (nonsign if nonsign >= 0 else 0xFFFFFFFF)


@settings(max_examples=100)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_lop3(a, b, c, lut):
    want = 0
    for i in range(32):
        idx = ((a >> i & 1) << 2) | ((b >> i & 1) << 1) | (c >> i & 1)
        want |= ((lut >> idx) & 1) << i
    assert int(I.lop3(np.uint32(a), np.uint32(b), np.uint32(c), lut)) == want
    # the ISA's derivation of immLut: F(0xF0, 0xCC, 0xAA) == lut
    assert int(I.lop3(np.uint32(0xF0), np.uint32(0xCC), np.uint32(0xAA), lut)) & 0xFF == lut


def test_prmt_modes():
    a, b = np.uint32(0x33221100), np.uint32(0x77665544)
    # ISA example: default mode picks bytes by nibble; 0x8 bit replicates the sign
    assert int(I.prmt(a, b, np.uint32(0x3210))) == 0x33221100
    assert int(I.prmt(a, b, np.uint32(0x7654))) == 0x77665544
    assert int(I.prmt(np.uint32(0x00008000), b, np.uint32(0x0009))) == 0x000000FF
    byte = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]
    tables = {"f4e": lambda s: [s, s + 1, s + 2, s + 3], "b4e": lambda s: [s, s - 1, s - 2, s - 3],
              "rc8": lambda s: [s] * 4, "ecl": lambda s: [max(k, s) for k in range(4)],
              "ecr": lambda s: [min(k, s) for k in range(4)], "rc16": lambda s: [2 * (s & 1), 2 * (s & 1) + 1] * 2}
    for mode, sel in tables.items():
        for s in range(4):
            want = sum(byte[k % 8] << (8 * i) for i, k in enumerate(sel(s)))
            assert int(I.prmt(a, b, np.uint32(s), mode)) == want, (mode, s)


@settings(max_examples=100)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_dp4a_dp2a(a, b, c, sa, sb):
    def parts(x, w, signed):
        return [sval(x >> (w * i), w) if signed else (x >> (w * i)) & ((1 << w) - 1) for i in range(32 // w)]
    pa, pb = parts(a, 8, sa), parts(b, 8, sb)
    assert int(I.dp4a(np.uint32(a), np.uint32(b), np.uint32(c), sa, sb)) == (c + sum(x * y for x, y in zip(pa, pb))) & 0xFFFFFFFF
    ha = parts(a, 16, sa)
    for hi in (False, True):
        bb = pb[2:] if hi else pb[:2]
        assert int(I.dp2a(np.uint32(a), np.uint32(b), np.uint32(c), sa, sb, hi)) == (c + sum(x * y for x, y in zip(ha, bb))) & 0xFFFFFFFF
