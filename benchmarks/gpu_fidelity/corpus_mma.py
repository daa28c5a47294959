"""mma.sync cases: every m16n8 shape/type the emulator implements, random fragments, numpy references.

Each warp loads its A, B, C registers from global memory ([warp][lane][reg]),
runs one ``mma.sync.aligned`` and stores D.  The reference places the
elements with the PTX ISA's fragment tables (9.7.14.5.x, typed here from the
ISA: a_i/b_i/c_i -> (row, col)), computes D = A B + C in int64 (integer and
b1 shapes: bit-exact, .satfinite clamps, else wraps) or float64 (float shapes:
tolerance ``(K + 2) 2^-22 (|A||B| + |C|)`` + one rounding of D, since the
hardware's accumulation order and intermediate precision are unspecified).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from corpus import HEADER, Case, Out, source

NW = 2  # warps per case
BITS = {"f16": 16, "bf16": 16, "tf32": 32, "s8": 8, "u8": 8, "s4": 4, "u4": 4, "e4m3": 8, "e5m2": 8, "b1": 1}

# (shape, atype, btype, ctype/dtype, extra) -- what lowbit/emu/mma.py implements
COMBOS = [
    ("m16n8k16", "f16", "f16", "f32", ""), ("m16n8k16", "f16", "f16", "f16", ""), ("m16n8k16", "bf16", "bf16", "f32", ""),
    ("m16n8k8", "f16", "f16", "f32", ""), ("m16n8k8", "f16", "f16", "f16", ""), ("m16n8k8", "bf16", "bf16", "f32", ""),
    ("m16n8k8", "tf32", "tf32", "f32", ""), ("m16n8k4", "tf32", "tf32", "f32", ""),
    ("m16n8k16", "s8", "s8", "s32", ""), ("m16n8k16", "u8", "s8", "s32", ""), ("m16n8k16", "s8", "s8", "s32", "satfinite"),
    ("m16n8k32", "s8", "s8", "s32", ""), ("m16n8k32", "u8", "u8", "s32", ""), ("m16n8k32", "s8", "u8", "s32", "satfinite"),
    ("m16n8k32", "s4", "s4", "s32", ""), ("m16n8k32", "u4", "s4", "s32", "satfinite"),
    ("m16n8k64", "s4", "s4", "s32", ""), ("m16n8k64", "u4", "u4", "s32", ""), ("m16n8k64", "s4", "u4", "s32", "satfinite"),
    ("m16n8k32", "e4m3", "e4m3", "f32", ""), ("m16n8k32", "e5m2", "e5m2", "f32", ""), ("m16n8k32", "e4m3", "e5m2", "f32", ""),
    ("m16n8k128", "b1", "b1", "s32", "and.popc"), ("m16n8k128", "b1", "b1", "s32", "xor.popc"),
    ("m16n8k256", "b1", "b1", "s32", "and.popc"), ("m16n8k256", "b1", "b1", "s32", "xor.popc"),
]


def _k(shape: str) -> int:
    return int(shape.split("k")[1])


def a_pos(k: int, bits: int, lane: int, i: int) -> tuple[int, int]:
    g, t = lane >> 2, lane % 4
    per = 32 // bits
    if bits == 32 and k == 8:  # tf32 m16n8k8: a0 (g,t) a1 (g+8,t) a2 (g,t+4) a3 (g+8,t+4)
        return (g if i in (0, 2) else g + 8), (t if i < 2 else t + 4)
    half = 2 * per
    row = g if (i < per or 2 * per <= i < 3 * per) else g + 8
    col = t * per + (i % per) + (4 * per if i >= half else 0)
    return row, col


def b_pos(k: int, bits: int, lane: int, i: int) -> tuple[int, int]:
    g, t = lane >> 2, lane % 4
    per = 32 // bits
    if bits == 32 and k == 8:  # tf32 m16n8k8: b0 (t, g) b1 (t+4, g)
        return (t if i == 0 else t + 4), g
    return t * per + (i % per) + (4 * per if i >= per else 0), g


def c_pos(lane: int, i: int) -> tuple[int, int]:
    g, t = lane >> 2, lane % 4
    return (g if i < 2 else g + 8), t * 2 + (i & 1)


def _pack(codes: np.ndarray, pos, nregs: int, bits: int, k: int) -> np.ndarray:
    """(NW, rows, cols) element codes -> (NW, 32, nregs) uint32 registers."""
    per = 32 // bits
    regs = np.zeros((codes.shape[0], 32, nregs), np.uint64)
    for lane in range(32):
        for i in range(nregs * per):
            r, c = pos(k, bits, lane, i)
            regs[:, lane, i // per] |= (codes[:, r, c].astype(np.uint64) & np.uint64((1 << bits) - 1)) << np.uint64((i % per) * bits)
    return regs.astype(np.uint32)


def _values(codes: np.ndarray, ty: str) -> np.ndarray:
    if ty in ("s8", "u8", "s4", "u4", "b1"):
        v = codes.astype(np.int64)
        if ty[0] == "s":
            w = BITS[ty]
            v = np.where(v >= 1 << (w - 1), v - (1 << w), v)
        return v
    if ty == "f16":
        return codes.astype(np.uint16).view(np.float16).astype(np.float64)
    if ty == "bf16":
        return codes.astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float64)
    if ty == "tf32":
        return codes.astype(np.uint32).view(np.float32).astype(np.float64)
    dt = ml_dtypes.float8_e4m3fn if ty == "e4m3" else ml_dtypes.float8_e5m2
    return codes.astype(np.uint8).view(dt).astype(np.float64)


def _codes(rng, ty: str, shape) -> np.ndarray:
    if ty in ("s8", "u8", "s4", "u4", "b1"):
        return rng.integers(0, 1 << BITS[ty], shape).astype(np.uint32)
    if ty == "tf32":  # tf32 values: f32 with the low 13 mantissa bits clear
        return (rng.standard_normal(shape).astype(np.float32).view(np.uint32) & np.uint32(0xFFFFE000))
    if ty in ("f16", "bf16"):
        dt = np.float16 if ty == "f16" else ml_dtypes.bfloat16
        return rng.standard_normal(shape).astype(dt).view(np.uint16).astype(np.uint32)
    dt = ml_dtypes.float8_e4m3fn if ty == "e4m3" else ml_dtypes.float8_e5m2
    return (rng.standard_normal(shape) * 4).astype(dt).view(np.uint8).astype(np.uint32)  # finite: no NaN/inf codes


def _ptx(name: str, shape: str, at: str, bt: str, ct: str, extra: str, na: int, nb: int, nc: int, nd: int) -> str:
    target, version = ("sm_89", "8.4") if at in ("e4m3", "e5m2") else ("sm_80", "8.0")
    sat = ".satfinite" if extra == "satfinite" else ""
    tail = "." + extra if extra and extra != "satfinite" else ""
    if at == "b1":
        ins = f"mma.sync.aligned.{shape}.row.col.s32.b1.b1.s32{tail}"
    else:
        ins = f"mma.sync.aligned.{shape}.row.col{sat}.{ct}.{at}.{bt}.{ct}"
    regs = lambda base, n: ", ".join(f"%r{base + j}" for j in range(n))  # noqa: E731
    loads = []
    for p, base, n in (("pa", 0, na), ("pb", 8, nb), ("pc", 12, nc)):
        loads += [f"    ld.param.u64 %rd1, [{p}];", "    cvta.to.global.u64 %rd1, %rd1;",
                  f"    mul.wide.u32 %rd2, %r40, {4 * n};", "    add.s64 %rd1, %rd1, %rd2;"]
        loads += [f"    ld.global.b32 %r{base + j}, [%rd1+{4 * j}];" for j in range(n)]
    stores = ["    ld.param.u64 %rd1, [pd];", "    cvta.to.global.u64 %rd1, %rd1;", f"    mul.wide.u32 %rd2, %r40, {4 * nd};",
              "    add.s64 %rd1, %rd1, %rd2;"] + [f"    st.global.b32 [%rd1+{4 * j}], %r{20 + j};" for j in range(nd)]
    return HEADER.format(version=version, target=target) + f"""
.visible .entry {name}(.param .u64 pa, .param .u64 pb, .param .u64 pc, .param .u64 pd)
{{
    .reg .b32 %r<48>;
    .reg .b64 %rd<8>;
    mov.u32 %r40, %tid.x;
{chr(10).join(loads)}
    {ins} {{{regs(20, nd)}}}, {{{regs(0, na)}}}, {{{regs(8, nb)}}}, {{{regs(12, nc)}}};
{chr(10).join(stores)}
    ret;
}}
"""


def mma_case(shape: str, at: str, bt: str, ct: str, extra: str, seed: int) -> Case:
    k = _k(shape)
    bits = BITS[at]
    na, nb = k * bits // 64, k * bits // 128
    nc = 4 if ct in ("f32", "s32") else 2
    rng = np.random.default_rng(seed)
    acodes, bcodes = _codes(rng, at, (NW, 16, k)), _codes(rng, bt, (NW, k, 8))
    A = _pack(acodes, a_pos, na, bits, k)
    B = _pack(bcodes.transpose(0, 1, 2), b_pos, nb, bits, k)
    av, bv = _values(acodes, at), _values(bcodes, bt)
    # C
    if ct == "s32":
        cv = rng.integers(-(2**31), 2**31, (NW, 16, 8)) if extra == "satfinite" else rng.integers(-1000, 1000, (NW, 16, 8))
        cbits = (cv & 0xFFFFFFFF).astype(np.uint32)
    elif ct == "f32":
        cv = rng.standard_normal((NW, 16, 8)).astype(np.float32)
        cbits = cv.view(np.uint32)
        cv = cv.astype(np.float64)
    else:
        c16 = rng.standard_normal((NW, 16, 8)).astype(np.float16)
        cbits = c16.view(np.uint16).astype(np.uint32)
        cv = c16.astype(np.float64)
    C = np.zeros((NW, 32, nc), np.uint32)
    for lane in range(32):
        for i in range(4):
            r, c = c_pos(lane, i)
            if nc == 4:
                C[:, lane, i] = cbits[:, r, c]
            else:
                C[:, lane, i // 2] |= cbits[:, r, c] << np.uint32(16 * (i % 2))
    # reference D
    rule: dict = {}
    if at == "b1":
        op = np.bitwise_and if extra.startswith("and") else np.bitwise_xor
        d = op(acodes[:, :, None, :].astype(np.int64), bcodes.transpose(0, 2, 1)[:, None, :, :].astype(np.int64)).sum(-1) + cv
        dbits = (d & 0xFFFFFFFF).astype(np.uint32)
    elif ct == "s32":
        d = np.einsum("wmk,wkn->wmn", av, bv) + cv
        if extra == "satfinite":
            d = np.clip(d, -(2**31), 2**31 - 1)
        dbits = (d & 0xFFFFFFFF).astype(np.uint32)
    else:
        d = np.einsum("wmk,wkn->wmn", av, bv) + cv
        mag = np.einsum("wmk,wkn->wmn", np.abs(av), np.abs(bv)) + np.abs(cv)
        if ct == "f32":
            d32 = d.astype(np.float32)
            dbits = d32.view(np.uint32)
            tol = (k + 2) * 2.0**-22 * mag + np.abs(d32.astype(np.float64) - d)
        else:
            d16 = d.astype(np.float16)
            dbits = d16.view(np.uint16).astype(np.uint32)
            tol = (k + 2) * 2.0**-22 * mag + 2.0**-10 * np.abs(d) + 2.0**-24
        rule = {"tol": tol}
    # D registers -> (NW, 32, nd) ref; for f16 D the compared array is the f16 elements in register order
    nd = nc
    if ct == "f16":
        ref = np.zeros((NW, 32, 4), np.float16)
        tolr = np.zeros((NW, 32, 4))
        for lane in range(32):
            for i in range(4):
                r, c = c_pos(lane, i)
                ref[:, lane, i] = dbits[:, r, c].astype(np.uint16).view(np.float16)
                tolr[:, lane, i] = rule["tol"][:, r, c]
        out = Out(3, ref, mode="close", tol=tolr, name="d")
        dinit = np.full((NW, 32, 4), np.nan, np.float16)
    else:
        ref = np.zeros((NW, 32, 4), np.uint32)
        tolr = np.zeros((NW, 32, 4))
        for lane in range(32):
            for i in range(4):
                r, c = c_pos(lane, i)
                ref[:, lane, i] = dbits[:, r, c]
                if rule:
                    tolr[:, lane, i] = rule["tol"][:, r, c]
        if ct == "f32":
            out = Out(3, ref.view(np.float32), mode="close", tol=tolr, name="d")
            dinit = np.full((NW, 32, 4), np.nan, np.float32)
        else:
            out = Out(3, ref, name="d")
            dinit = np.full((NW, 32, 4), 0xDEADBEEF, np.uint32)
    name = f"mma_{shape}_{ct}_{at}_{bt}" + (f"_{extra.replace('.', '_')}" if extra else "")
    ptx = _ptx(name, shape, at, bt, ct, extra, na, nb, nc, nd)
    return Case(name=name, ptx=ptx, kernel=name, grid=(1, 1, 1), block=(32 * NW, 1, 1), args=[A, B, C, dinit],
                outs=[out], source="mma")


@source("mma")
def mma(tier: str):
    if tier == "exhaustive":
        return
    for j, combo in enumerate(COMBOS):
        yield mma_case(*combo, seed=1000 + j)
