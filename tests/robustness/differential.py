"""The differential sweep's kernels, value sets and runner: every row of ``lowbit.ir.semantics`` through both paths.

One kernel per (op, dtype) and per (cast source, cast destination): its
inputs are the raw codes of edge values (signed zeros, min subnormals,
maxima, infinities, NaNs of several payloads, rounding ties, wrap and shift
edges) and of a few random values, packed LSB-first into uint64 words (any
element width), loaded with ``global_view(..., dtype=T)``; outputs come back
as codes the same way and are compared *bit for bit*.  The interpreter runs
``kernel.interpret[grid]``; the compiled path is ``kernel[grid]`` on numpy
arrays, i.e. DSL -> PTX on the emulator (with its memory and definedness
checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import lowbit
from lowbit.dtypes import DType, dtype
from lowbit.ir import semantics as sem

B = 256  # elements per block: 2 per thread with 4 warps; the grid covers the value set
BOOL = "bool"


# ------------------------------------------------------------------------------------------- kernels


@lowbit.kernel
def k_unary(x_ptr: lowbit.ptr("uint64"), o_ptr: lowbit.ptr("uint64"), n: lowbit.int32,
            OP: lowbit.constexpr = "neg", T: lowbit.constexpr = lowbit.f32):  # fmt: skip
    s = lowbit.program_id(0) * 256
    if T == lowbit.uint1 and OP == "not_bool":
        x = lowbit.load(lowbit.global_view(x_ptr, (n,), dtype=lowbit.uint1), (s,), (256,)) != 0
        lowbit.store(lowbit.global_view(o_ptr, (n,), dtype=lowbit.uint8), lowbit.cast(~x, lowbit.uint8), (s,))
    else:
        x = lowbit.load(lowbit.global_view(x_ptr, (n,), dtype=T), (s,), (256,))
        if OP == "neg":
            r = -x
        elif OP == "abs":
            r = lowbit.abs(x)
        elif OP == "not":
            r = ~x
        elif OP == "exp2":
            r = lowbit.exp2(x)
        elif OP == "log2":
            r = lowbit.log2(x)
        elif OP == "sqrt":
            r = lowbit.sqrt(x)
        elif OP == "rsqrt":
            r = lowbit.rsqrt(x)
        elif OP == "round_rn":
            r = lowbit.round(x, "rn")
        elif OP == "round_rz":
            r = lowbit.round(x, "rz")
        elif OP == "round_rd":
            r = lowbit.round(x, "rd")
        else:
            r = lowbit.round(x, "ru")
        lowbit.store(lowbit.global_view(o_ptr, (n,), dtype=T), r, (s,))


@lowbit.kernel
def k_binary(a_ptr: lowbit.ptr("uint64"), b_ptr: lowbit.ptr("uint64"), o_ptr: lowbit.ptr("uint64"), n: lowbit.int32,
             OP: lowbit.constexpr = "add", T: lowbit.constexpr = lowbit.f32, IS_BOOL: lowbit.constexpr = False):  # fmt: skip
    s = lowbit.program_id(0) * 256
    if IS_BOOL:
        a = lowbit.load(lowbit.global_view(a_ptr, (n,), dtype=lowbit.uint1), (s,), (256,)) != 0
        b = lowbit.load(lowbit.global_view(b_ptr, (n,), dtype=lowbit.uint1), (s,), (256,)) != 0
    else:
        a = lowbit.load(lowbit.global_view(a_ptr, (n,), dtype=T), (s,), (256,))
        b = lowbit.load(lowbit.global_view(b_ptr, (n,), dtype=T), (s,), (256,))
    if OP == "add":
        r = a + b
    elif OP == "sub":
        r = a - b
    elif OP == "mul":
        r = a * b
    elif OP == "div":
        if T.is_float:
            r = a / b
        else:
            r = a // b
    elif OP == "mod":
        r = a % b
    elif OP == "min":
        r = lowbit.minimum(a, b)
    elif OP == "max":
        r = lowbit.maximum(a, b)
    elif OP == "and":
        r = a & b
    elif OP == "or":
        r = a | b
    elif OP == "xor":
        r = a ^ b
    elif OP == "shl":
        r = a << b
    elif OP == "shr":
        r = a >> b
    elif OP == "eq":
        r = a == b
    elif OP == "ne":
        r = a != b
    elif OP == "lt":
        r = a < b
    elif OP == "le":
        r = a <= b
    elif OP == "gt":
        r = a > b
    else:
        r = a >= b
    if IS_BOOL or OP in ("eq", "ne", "lt", "le", "gt", "ge"):
        lowbit.store(lowbit.global_view(o_ptr, (n,), dtype=lowbit.uint8), lowbit.cast(r, lowbit.uint8), (s,))
    else:
        lowbit.store(lowbit.global_view(o_ptr, (n,), dtype=T), r, (s,))


@lowbit.kernel
def k_ternary(c_ptr: lowbit.ptr("uint64"), a_ptr: lowbit.ptr("uint64"), b_ptr: lowbit.ptr("uint64"),
              o_ptr: lowbit.ptr("uint64"), n: lowbit.int32, OP: lowbit.constexpr = "where",
              T: lowbit.constexpr = lowbit.f32):  # fmt: skip
    s = lowbit.program_id(0) * 256
    a = lowbit.load(lowbit.global_view(a_ptr, (n,), dtype=T), (s,), (256,))
    b = lowbit.load(lowbit.global_view(b_ptr, (n,), dtype=T), (s,), (256,))
    if OP == "where":
        c = lowbit.load(lowbit.global_view(c_ptr, (n,), dtype=lowbit.uint1), (s,), (256,)) != 0
        r = lowbit.where(c, a, b)
    else:
        c = lowbit.load(lowbit.global_view(c_ptr, (n,), dtype=T), (s,), (256,))
        r = lowbit.fma(a, b, c)
    lowbit.store(lowbit.global_view(o_ptr, (n,), dtype=T), r, (s,))


@lowbit.kernel
def k_cast(x_ptr: lowbit.ptr("uint64"), o_ptr: lowbit.ptr("uint64"), n: lowbit.int32,
           S: lowbit.constexpr = lowbit.f32, D: lowbit.constexpr = lowbit.f16,
           SRC_BOOL: lowbit.constexpr = False, DST_BOOL: lowbit.constexpr = False):  # fmt: skip
    s = lowbit.program_id(0) * 256
    if SRC_BOOL:
        x = lowbit.load(lowbit.global_view(x_ptr, (n,), dtype=lowbit.uint1), (s,), (256,)) != 0
    else:
        x = lowbit.load(lowbit.global_view(x_ptr, (n,), dtype=S), (s,), (256,))
    if DST_BOOL:
        r = lowbit.cast(lowbit.cast(x, D), lowbit.uint8)
        lowbit.store(lowbit.global_view(o_ptr, (n,), dtype=lowbit.uint8), r, (s,))
    else:
        lowbit.store(lowbit.global_view(o_ptr, (n,), dtype=D), lowbit.cast(x, D), (s,))


# ------------------------------------------------------------------------------------------ packing


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes (< 2**bits) LSB-first into uint64 words, zero padded."""
    codes = np.asarray(codes, np.uint64)
    if bits == 64:
        return codes.copy()
    bitmat = (codes[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    flat = bitmat.astype(np.uint8).reshape(-1)
    flat = np.concatenate([flat, np.zeros(-flat.size % 64, np.uint8)])
    return np.packbits(flat, bitorder="little").view(np.uint64).copy()


def unpack(words: np.ndarray, bits: int, n: int) -> np.ndarray:
    if bits == 64:
        return words[:n].astype(np.uint64)
    flat = np.unpackbits(np.ascontiguousarray(words).view(np.uint8), bitorder="little")[: n * bits]
    bitmat = flat.reshape(n, bits).astype(np.uint64)
    return (bitmat << np.arange(bits, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


# ------------------------------------------------------------------------------------------- values


def dt_of(name: str) -> DType:
    return lowbit.ir.types.BOOL if name == BOOL else dtype(name)


def bits_of(name: str) -> int:
    return 1 if name == BOOL else dtype(name).bits


def _float_codes(dt: DType, values: list[float]) -> list[int]:
    """Round f64 values into IEEE ``dt`` (nearest even, overflow to inf) and give their codes."""
    from lowbit.interp.values import storage_dtype, to_codes  # noqa: PLC0415

    with np.errstate(all="ignore"):
        v = np.asarray(values, np.float64)
        if dt.name == "bf16":  # ml_dtypes rounds f64 through f32; round once here
            out = [int(dt.encode(np.array([x]))[0]) if np.isfinite(x) else None for x in v]
            arr = np.array(v).astype(np.float32).astype(storage_dtype(dt))
            codes = to_codes(arr, dt)
            return [int(c) if o is None else o for c, o in zip(codes, out)]
        return [int(c) for c in to_codes(v.astype(storage_dtype(dt)), dt)]


def _ieee_fields(name: str) -> tuple[int, int]:
    return {"f16": (5, 10), "bf16": (8, 7), "f32": (8, 23), "f64": (11, 52)}[name]


def float_edges(name: str) -> list[int]:
    """Edge codes of an IEEE type: zeros, subnormals, normals' ends, inf, NaNs of several payloads, ties."""
    e, m = _ieee_fields(name)
    sign = 1 << (e + m)
    inf = ((1 << e) - 1) << m
    raw = [0, 1, 2, 3, (1 << m) - 1, 1 << m, (1 << m) + 1, inf - 1, inf, inf | (1 << (m - 1)), inf | 1,
           inf | ((1 << m) - 1), inf | (1 << (m - 1)) | 5]  # fmt: skip
    raw += [c | sign for c in raw]
    p = m + 1
    vals = [1.0, 1.5, 2.5, 3.5, 0.5, 0.75, 0.25, 5.0, 6.0, 7.0, 1.0 + 2.0**-m, 1.0 + 2.0**-(m + 1), 2.0**p,
            2.0**p - 1, 2.0**p + 2, 2.0**(p - 1) + 0.5, 2.0**31, 2.0**31 - 2.0**(31 - m), 2.0**32, 2.0**63, 2.0**64,
            127.5, 128.0, 255.5, 256.0, 65504.0, 65520.0, 448.0, 464.0, 57344.0, 61440.0, 3.0e38, 0.7, 1e-3]
    vals += [-v for v in vals]
    return sorted(set(raw) | set(_float_codes(dtype(name), vals)))


def int_edges(dt: DType) -> list[int]:
    n, signed = dt.bits, dt.is_signed
    lo, hi = (-(1 << (n - 1)), (1 << (n - 1)) - 1) if signed else (0, (1 << n) - 1)
    cand = [0, 1, 2, 3, -1, -2, -3, lo, lo + 1, hi, hi - 1, hi // 2, lo // 2, n - 1, n, n + 1, 2 * n, 7, 8,
            15, 16, 31, 32, 33, 63, 64, 65, -n, -7]  # fmt: skip
    return sorted({sem.wrap_int(v, n, False) for v in cand if lo <= v <= hi})


def edges(name: str) -> list[int]:
    """The edge codes of dtype ``name`` (every code of a format of at most 8 bits that is not an int)."""
    if name == BOOL:
        return [0, 1]
    dt = dtype(name)
    if name in sem.ARITH_FLOATS:
        return float_edges(name)
    if sem.dtype_class(dt) == "int":
        return int_edges(dt)
    return list(range(1 << dt.bits))


def random_codes(rng: np.random.Generator, bits: int, k: int) -> np.ndarray:
    return rng.integers(0, 1 << bits, k, dtype=np.uint64) if bits < 64 else rng.integers(0, 2**63, k, dtype=np.uint64) * 2 + rng.integers(0, 2, k, dtype=np.uint64)


def _pad(n: int) -> int:
    return max(B, -(-n // B) * B)


def operand_sets(name: str, arity: int, rng: np.random.Generator, full: bool) -> list[np.ndarray]:
    """``arity`` code arrays of one length (a multiple of B): all pairs of edges plus random ones."""
    e = np.asarray(edges(name), np.uint64)
    bits = bits_of(name)
    if arity == 1:
        cols = [e]
    elif arity == 2:
        cap = 64 if full else 40
        if e.size > cap:  # formats with many edges: every edge against a sample of the others
            sub = np.concatenate([e[:: max(1, e.size // cap)], e[-4:]])
        else:
            sub = e
        a, b = np.meshgrid(e, sub, indexing="ij")
        cols = [a.reshape(-1), b.reshape(-1)]
    else:
        k = max(e.size * 4, B)
        cols = [rng.choice(e, k) for _ in range(3)]
    n = cols[0].size
    extra = (4 if full else 1) * B
    total = _pad(n + extra)
    return [np.concatenate([c, random_codes(rng, bits, total - n)]) for c in cols]


def cast_inputs(src: str, rng: np.random.Generator, full: bool) -> np.ndarray:
    """Source codes for casts: the source's edges, every value that is an edge of some destination
    (bounds, codes, midpoints between codes: ties) rounded into the source, and their neighbours."""
    codes = set(edges(src))
    if src in sem.ARITH_FLOATS:
        vals: list[float] = []
        for d in sem.SWEEP_DTYPES:
            dt = dtype(d)
            cls = sem.dtype_class(dt)
            if cls == "int":
                lo, hi = float(dt.min), float(dt.max)
                vals += [lo - 1, lo - 0.5, lo, hi, hi + 0.5, hi + 1]
            elif cls in ("small_float", "codebook", "bipolar"):
                v = np.asarray(dt.decode(np.arange(1 << dt.bits, dtype=np.uint64)), np.float64)
                v = np.unique(v[np.isfinite(v)])
                mids = (v[:-1] + v[1:]) / 2
                vals += list(v) + list(mids) + [float(v.max()) * 1.0625, float(v.max()) * 1.125]
                if full:
                    vals += list(-v) + list(-mids)
        base = _float_codes(dtype(src), vals)
        e, m = _ieee_fields(src)
        top = (1 << (e + m + 1)) - 1
        for c in base:
            codes |= {c, max(c - 1, 0), min(c + 1, top)}
    out = np.asarray(sorted(codes), np.uint64)
    total = _pad(out.size + B)
    return np.concatenate([out, random_codes(rng, bits_of(src), total - out.size)])


# ------------------------------------------------------------------------------------------- runner


def is_nan_code(codes: np.ndarray, name: str) -> np.ndarray:
    e, m = _ieee_fields(name)
    mag = codes & np.uint64((1 << (e + m)) - 1)
    return mag > np.uint64(((1 << e) - 1) << m)


@dataclass
class Case:
    """One kernel of the sweep: what it runs and on how many values."""

    kind: str  # "unary" | "binary" | "ternary" | "cast"
    op: str
    dt: str  # the operand dtype (the source for casts)
    dst: str = ""  # casts only
    inputs: list[np.ndarray] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.inputs[0].size

    @property
    def out_bits(self) -> int:
        if self.kind == "cast":
            return 8 if self.dst == BOOL else bits_of(self.dst)
        if self.dt == BOOL or self.op in ("eq", "ne", "lt", "le", "gt", "ge"):
            return 8
        return bits_of(self.dt)

    def label(self) -> str:
        return f"cast {self.dt}->{self.dst}" if self.kind == "cast" else f"{self.op} {self.dt}"


def cases(full: bool = False, seed: int = 0) -> list[Case]:
    """Every (op, dtype) the table defines and every (source, destination) cast: one kernel each."""
    rng = np.random.default_rng(seed)
    out: list[Case] = []
    names = [*sem.SWEEP_DTYPES, BOOL]
    for rule in sem.OPS:
        for name in names:
            if not sem.applies(rule, dt_of(name)):
                continue
            if rule.op == "where" and name == BOOL:
                continue  # bool tiles do not load/store; where on them is covered by casts' masks
            kind = {1: "unary", 2: "binary", 3: "ternary"}[rule.arity]
            out.append(Case(kind, rule.op, name, inputs=operand_sets(name, rule.arity, rng, full)))
    for src in names:
        xs = cast_inputs(src, rng, full)
        for dst in names:
            if src != dst:
                out.append(Case("cast", "cast", src, dst, inputs=[xs]))
    return out


def expected_kernels() -> int:
    """The sweep's size computed from the table alone (so nothing silently drops out)."""
    names = [*sem.SWEEP_DTYPES, BOOL]
    n_ops = sum(1 for r in sem.OPS for d in names if sem.applies(r, dt_of(d)) and not (r.op == "where" and d == BOOL))
    return n_ops + len(names) * (len(names) - 1)


def _args(case: Case) -> tuple[list[object], dict[str, object]]:
    n = case.n
    words_out = np.full(-(-n * case.out_bits // 64), 0xA5A5A5A5A5A5A5A5, np.uint64)  # poisoned
    if case.kind == "cast":
        ins = [pack(case.inputs[0], bits_of(case.dt))]
        cx = {"S": dt_of(case.dt) if case.dt != BOOL else lowbit.uint1, "D": dt_of(case.dst),
              "SRC_BOOL": case.dt == BOOL, "DST_BOOL": case.dst == BOOL}  # fmt: skip
        return [*ins, words_out, n], cx
    T = lowbit.uint1 if case.dt == BOOL else dt_of(case.dt)
    if case.kind == "ternary":
        cbits = 1 if case.op == "where" else bits_of(case.dt)
        c = case.inputs[2] & np.uint64(1) if case.op == "where" else case.inputs[2]
        ins = [pack(c, cbits), pack(case.inputs[0], bits_of(case.dt)), pack(case.inputs[1], bits_of(case.dt))]
        return [*ins, words_out, n], {"OP": case.op, "T": T}
    ins = [pack(x, bits_of(case.dt)) for x in case.inputs]
    cx: dict[str, object] = {"OP": case.op if not (case.dt == BOOL and case.op == "not") else "not_bool", "T": T}
    if case.kind == "binary":
        cx["IS_BOOL"] = case.dt == BOOL
    return [*ins, words_out, n], cx


KERNELS = {"unary": k_unary, "binary": k_binary, "ternary": k_ternary, "cast": k_cast}


@dataclass
class Outcome:
    case: Case
    want: np.ndarray | None  # interpreter codes
    got: np.ndarray | None  # compiled codes
    error: str = ""

    @property
    def bad(self) -> np.ndarray:
        if self.want is None or self.got is None:
            return np.arange(self.case.n)
        differ = self.want != self.got
        out = self.case.dst if self.case.kind == "cast" else self.case.dt
        if out in sem.ARITH_FLOATS and self.case.op not in sem.NAN_BITS_KEPT and self.case.out_bits > 8:
            differ &= ~(is_nan_code(self.want, out) & is_nan_code(self.got, out))  # any NaN is that NaN
        return np.nonzero(differ)[0]

    def describe(self, limit: int = 6) -> str:
        if self.error:
            return f"{self.case.label()}: {self.error}"
        lines = [f"{self.case.label()}: {self.bad.size} of {self.case.n} differ"]
        for i in self.bad[:limit]:
            ins = ", ".join(hex(int(x[i])) for x in self.case.inputs)
            lines.append(f"    in ({ins}) interp {hex(int(self.want[i]))} compiled {hex(int(self.got[i]))}")
        return "\n".join(lines)


def run(case: Case) -> Outcome:
    """The case through the interpreter and through ``kernel[grid]`` (the emulator); codes of both outputs."""
    k = KERNELS[case.kind]
    args, cx = _args(case)
    grid = (case.n // B,)
    outs = []
    for launch in (k.interpret[grid], k[grid]):
        a = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        try:
            launch(*a, **cx)
        except lowbit.LowbitError as exc:
            return Outcome(case, None, None, f"{'interpreter' if not outs else 'compiled'}: {type(exc).__name__}: "
                                             f"{str(exc).splitlines()[0][:300]}")  # fmt: skip
        outs.append(unpack(a[-2], case.out_bits, case.n))
    return Outcome(case, outs[0], outs[1])

