"""Every scalar SIMT op's meaning, checked end to end: SIMT -> LLVM -> PTX -> emulator vs numpy.

One generated kernel applies each integer / float / compare / cast op to
per-thread inputs (random values mixed with the edge cases: 0, -1, INT_MIN,
NaN, +-inf, -0.0, ties) and stores every result's bits in its own row.  The
numpy references are written from the op definitions in docs/simt.md, not
from the codegen table, so a wrong mapping (signed vs unsigned, ordered vs
unordered, minnum vs min) shows up as a mismatching row.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from lowbit.codegen.emit import compile_kernel
from lowbit.emu import launch
from lowbit.ir.simt import parse_kernel

I32_MIN = np.int64(-(2**31))


def _i(v: np.ndarray) -> np.ndarray:
    """Wrap int64 values to int32 (two's complement)."""
    return ((v.astype(np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


def _u(v: np.ndarray) -> np.ndarray:
    return v.astype(np.int64) & 0xFFFFFFFF


def _sdiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.int64), b.astype(np.int64)
    return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))


def _clz(a: np.ndarray) -> np.ndarray:
    u = _u(a)
    return np.array([32 - int(x).bit_length() for x in u])


def _brev(a: np.ndarray) -> np.ndarray:
    return np.array([int(f"{int(x):032b}"[::-1], 2) for x in _u(a)])


def _f(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32).view(np.int32)


def _sat_int(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    t = np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=hi, neginf=lo))
    return np.clip(t, lo, hi).astype(np.int64)


# (SIMT text producing %r from %a, %b (i32) and %x, %y (f32), numpy reference returning int32 bits)
Row = tuple[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]]
ROWS: list[Row] = [
    ("%r: i32 = add %a, %b", lambda a, b, x, y: _i(a.astype(np.int64) + b)),
    ("%r: i32 = sub %a, %b", lambda a, b, x, y: _i(a.astype(np.int64) - b)),
    ("%r: i32 = mul %a, %b", lambda a, b, x, y: _i(a.astype(np.int64) * b)),
    ("%r: i32 = sdiv %a, %bz", lambda a, b, x, y: _i(_sdiv(a, _bz(a, b)))),
    ("%r: i32 = srem %a, %bz", lambda a, b, x, y: _i(a - _sdiv(a, _bz(a, b)) * _bz(a, b))),
    ("%r: i32 = udiv %a, %bz", lambda a, b, x, y: _i(_u(a) // _u(_bz(a, b)))),
    ("%r: i32 = urem %a, %bz", lambda a, b, x, y: _i(_u(a) % _u(_bz(a, b)))),
    ("%r: i32 = and %a, %b", lambda a, b, x, y: a & b),
    ("%r: i32 = or %a, %b", lambda a, b, x, y: a | b),
    ("%r: i32 = xor %a, %b", lambda a, b, x, y: a ^ b),
    ("%r: i32 = shl %a, %s", lambda a, b, x, y: _i(_u(a) << (b & 31))),
    ("%r: i32 = lshr %a, %s", lambda a, b, x, y: _i(_u(a) >> (b & 31))),
    ("%r: i32 = ashr %a, %s", lambda a, b, x, y: a >> (b & 31)),
    ("%r: i32 = smin %a, %b", lambda a, b, x, y: np.minimum(a, b)),
    ("%r: i32 = smax %a, %b", lambda a, b, x, y: np.maximum(a, b)),
    ("%r: i32 = umin %a, %b", lambda a, b, x, y: _i(np.minimum(_u(a), _u(b)))),
    ("%r: i32 = umax %a, %b", lambda a, b, x, y: _i(np.maximum(_u(a), _u(b)))),
    ("%r: i32 = mulhi.s %a, %b", lambda a, b, x, y: _i((a.astype(np.int64) * b) >> 32)),
    ("%r: i32 = mulhi.u %a, %b", lambda a, b, x, y: _i((_u(a) * _u(b)) >> 32)),
    ("%r: i32 = not %a", lambda a, b, x, y: ~a),
    ("%r: i32 = neg %a", lambda a, b, x, y: _i(-a.astype(np.int64))),
    ("%r: i32 = abs %a", lambda a, b, x, y: _i(np.abs(a.astype(np.int64)))),
    ("%r: i32 = popc %a", lambda a, b, x, y: np.array([bin(int(v)).count("1") for v in _u(a)], np.int32)),
    ("%r: i32 = clz %a", lambda a, b, x, y: _clz(a).astype(np.int32)),
    ("%r: i32 = brev %a", lambda a, b, x, y: _i(_brev(a))),
    ("%r: f32 = fadd %x, %y", lambda a, b, x, y: _f(x + y)),
    ("%r: f32 = fsub %x, %y", lambda a, b, x, y: _f(x - y)),
    ("%r: f32 = fmul %x, %y", lambda a, b, x, y: _f(x * y)),
    ("%r: f32 = fdiv %x, %y", lambda a, b, x, y: _f(x / y)),
    ("%r: f32 = fmin %x, %y", lambda a, b, x, y: _f(np.fmin(x, y))),
    ("%r: f32 = fmax %x, %y", lambda a, b, x, y: _f(np.fmax(x, y))),
    ("%r: f32 = fneg %x", lambda a, b, x, y: _f(-x)),
    ("%r: f32 = fabs %x", lambda a, b, x, y: _f(np.abs(x))),
    ("%r: f32 = sqrt %ax", lambda a, b, x, y: _f(np.sqrt(np.abs(x)))),
    ("%r: f32 = frint %x", lambda a, b, x, y: _f(np.rint(x))),
    ("%r: f32 = ftrunc %x", lambda a, b, x, y: _f(np.trunc(x))),
    ("%r: f32 = ffloor %x", lambda a, b, x, y: _f(np.floor(x))),
    ("%r: f32 = fceil %x", lambda a, b, x, y: _f(np.ceil(x))),
    ("%r: f32 = sitofp %a", lambda a, b, x, y: _f(a.astype(np.float32))),
    ("%r: f32 = uitofp %a", lambda a, b, x, y: _f(_u(a).astype(np.float32))),
    ("%r: i32 = fptosi.sat %x", lambda a, b, x, y: _i(_sat_int(x, -(2**31), 2**31 - 1))),
    ("%r: i32 = fptoui.sat %x", lambda a, b, x, y: _i(_sat_int(x, 0, 2**32 - 1))),
    ("%h: f16 = fptrunc %x\n  %hb: i16 = bitcast %h\n  %r: i32 = zext %hb",
     lambda a, b, x, y: np.where(np.isnan(x), 0x7FFF, x.astype(np.float16).view(np.uint16))),  # PTX canonical NaN
    ("%h: f16 = fptrunc %x\n  %r: f32 = fpext %h", lambda a, b, x, y: _f(x.astype(np.float16).astype(np.float32))),
    ("%t8: i8 = trunc %a\n  %r: i32 = sext %t8", lambda a, b, x, y: a.astype(np.int8).astype(np.int32)),
    ("%t8: i8 = trunc %a\n  %r: i32 = zext %t8", lambda a, b, x, y: a.astype(np.uint8).astype(np.int32)),
    ("%r: i32 = select %lt, %a, %b", lambda a, b, x, y: np.where(a < b, a, b)),
    ("%r: i32 = lop3 %a, %b, %s, 0xca", lambda a, b, x, y: (a & b) | (~a & (b & 31))),  # a ? b : s, bitwise
    ("%r: i32 = prmt %a, %b, 0x3715:i32", lambda a, b, x, y: _prmt(a, b, 0x3715)),
]  # fmt: skip

ICMP = {"eq": np.equal, "ne": np.not_equal, "slt": np.less, "sle": np.less_equal, "sgt": np.greater,
        "sge": np.greater_equal}  # fmt: skip
UCMP = {"ult": np.less, "ule": np.less_equal, "ugt": np.greater, "uge": np.greater_equal}
FCMP = {"oeq": np.equal, "one": np.not_equal, "olt": np.less, "ole": np.less_equal, "ogt": np.greater,
        "oge": np.greater_equal}  # fmt: skip


def _bz(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b with zeros (and the INT_MIN / -1 overflow pair) replaced by 7: what the kernel divides by."""
    bad = (b == 0) | ((a == I32_MIN) & (b == -1))
    return np.where(bad, 7, b).astype(np.int32)


def _prmt(a: np.ndarray, b: np.ndarray, sel: int) -> np.ndarray:
    src = np.stack([_u(a), _u(b)], 1)  # bytes 0-3 from a, 4-7 from b
    out = np.zeros(len(a), np.int64)
    for k in range(4):
        s = (sel >> (4 * k)) & 7
        out |= ((src[:, s // 4] >> (8 * (s % 4))) & 0xFF) << (8 * k)
    return _i(out)


for _p, _fn in ICMP.items():
    ROWS.append((f"%c: pred = icmp {_p} %a, %b\n  %r: i32 = zext %c", lambda a, b, x, y, f=_fn: f(a, b).astype(np.int32)))
for _p, _fn in UCMP.items():
    ROWS.append((f"%c: pred = icmp {_p} %a, %b\n  %r: i32 = zext %c",
                 lambda a, b, x, y, f=_fn: f(_u(a), _u(b)).astype(np.int32)))
for _p, _fn in FCMP.items():
    ROWS.append((f"%c: pred = fcmp {_p} %x, %y\n  %r: i32 = zext %c",
                 lambda a, b, x, y, f=_fn: (f(x, y) & ~np.isnan(x) & ~np.isnan(y)).astype(np.int32)))
    u = "u" + _p[1:]
    ROWS.append((f"%c: pred = fcmp {u} %x, %y\n  %r: i32 = zext %c",
                 lambda a, b, x, y, f=_fn: (f(x, y) | np.isnan(x) | np.isnan(y)).astype(np.int32)))
ROWS.append(("%c: pred = fcmp uno %x, %y\n  %r: i32 = zext %c", lambda a, b, x, y: (np.isnan(x) | np.isnan(y)).astype(np.int32)))
ROWS.append(("%c: pred = fcmp ord %x, %y\n  %r: i32 = zext %c", lambda a, b, x, y: ~(np.isnan(x) | np.isnan(y)) & 1))

PRELUDE = """\
  %tid: i32 = sreg tid.x
  %bid: i32 = sreg ctaid.x
  %base: i32 = mul %bid, 64:i32
  %i: i32 = add %base, %tid
  %ok: pred = icmp slt %i, %n
  if %ok {
    %pa: ptr.global = gep i32 %ai, %i
    %a: i32 = load %pa align 4
    %pb: ptr.global = gep i32 %bi, %i
    %b: i32 = load %pb align 4
    %px: ptr.global = gep f32 %xi, %i
    %x: f32 = load %px align 4
    %py: ptr.global = gep f32 %yi, %i
    %y: f32 = load %py align 4
    %s: i32 = and %b, 31:i32
    %ax: f32 = fabs %x
    %lt: pred = icmp slt %a, %b
    %z: pred = icmp eq %b, 0:i32
    %m1: pred = icmp eq %b, -1:i32
    %mn: pred = icmp eq %a, -2147483648:i32
    %ov: pred = and %m1, %mn
    %bad: pred = or %z, %ov
    %bz: i32 = select %bad, 7:i32, %b
"""


def _kernel_text() -> str:
    lines = ["kernel @ops(%ai: ptr.global[int32], %bi: ptr.global[int32], %xi: ptr.global[f32], "
             "%yi: ptr.global[f32], %out: ptr.global[int32], %n: i32) threads 64 {", PRELUDE.rstrip("\n")]
    for k, (body, _) in enumerate(ROWS):
        text = re.sub(r"%(r|c|h|hb|t8)\b", lambda m, k=k: f"%{m.group(1)}_{k}", body)
        lines += ["    " + line.strip() for line in text.splitlines()]
        bits = f"%r_{k}"
        if f"%r_{k}: f32" in text:
            lines.append(f"    %bits{k}: i32 = bitcast %r_{k}")
            bits = f"%bits{k}"
        lines += [f"    %row{k}: i32 = mul %n, {k}:i32", f"    %at{k}: i32 = add %row{k}, %i",
                  f"    %o{k}: ptr.global = gep i32 %out, %at{k}", f"    store %o{k}, {bits} align 4"]
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _inputs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    a = rng.integers(-(2**31), 2**31, n, dtype=np.int64).astype(np.int32)
    b = rng.integers(-(2**31), 2**31, n, dtype=np.int64).astype(np.int32)
    special = np.array([0, -1, 1, -(2**31), 2**31 - 1, 7, -7, 255, 256, 65535], np.int64).astype(np.int32)
    a[: len(special)], b[len(special) : 2 * len(special)] = special, special
    b[:5] = [0, -1, 1, 3, 0]  # a divisor of 0 and the INT_MIN / -1 pair are replaced in the kernel
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 10, n)).astype(np.float32)
    y = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(np.float32)
    fs = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, 1.5, 2.5, -2.5, 3e9, -3e9, 5e9, 1e-40, 70000.0, 65520.0],
                  np.float32)  # fmt: skip
    x[: len(fs)] = fs
    y[len(fs) : 2 * len(fs)], y[2 * len(fs) : 3 * len(fs)] = fs, fs[::-1]
    x[2 * len(fs) : 3 * len(fs)] = fs
    return a, b, x, y


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_scalar_ops_match_numpy_on_the_emulator(arch: str) -> None:
    kernel = parse_kernel(_kernel_text())
    ptx = compile_kernel(kernel, arch).ptx
    rng = np.random.default_rng(20261107)
    n = 203
    a, b, x, y = _inputs(rng, n)
    out = np.full((len(ROWS), n), 0x5EAD5EAD, np.int32)
    launch(ptx, "ops", -(-n // 64), 64, [a, b, x, y, out, np.int32(n)])
    with np.errstate(all="ignore"):
        for k, (body, ref) in enumerate(ROWS):
            want = np.asarray(ref(a, b, x, y)).astype(np.int32)
            got = out[k]
            if "f32 =" in body.splitlines()[-1]:  # float rows: equal bits, any NaN equal to any NaN
                gf, wf = got.view(np.float32), want.view(np.float32)
                same = (got == want) | (np.isnan(gf) & np.isnan(wf))
            else:
                same = got == want
            bad = np.nonzero(~same)[0]
            assert bad.size == 0, f"row {k} `{body}`: first mismatches at {bad[:5]}: got {got[bad[:5]]}, want {want[bad[:5]]}"
