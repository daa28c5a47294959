"""``lowbit run``: launch a kernel on random inputs (GPU or emulator) and check it against the interpreter.

Inputs are sized by the kernel's own views (:meth:`~lowbit.binder.Binder.required_bytes`):
every pointer gets exactly the bytes its parameter-sized views need, so the
integer scalars that size them must be given (``-D M=64``); float scalars
default to a random value, bools to False.  Every buffer starts random
(outputs too, so an element a backend forgets to write shows up), the
interpreter and the backend each get their own copy, and afterwards every
buffer is compared:

* integer and raw-bit buffers, and every buffer the kernel does not write:
  bit for bit;
* float buffers the kernel writes: ``|got - ref| <= 64 ulp(max |ref|)`` of the
  format -- the two sides may sum in another order, so this is a sanity check
  of one launch, not a proof (the tests compare against float64 references).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from lowbit.binder import Binder, PointerSlot, ScalarSlot, element_dtype
from lowbit.errors import LaunchError
from lowbit.ir.expr import convert

__all__ = ["BufferCheck", "CheckReport", "Inputs", "aligned_copy", "compare_all", "eval_grid", "make_inputs", "run_check"]

_MANTISSA = {"float16": 10, "bfloat16": 7, "float32": 23, "float64": 52, "float8_e4m3fn": 3, "float8_e5m2": 2}


def eval_grid(text: str, names: Mapping[str, object]) -> tuple[int, ...]:
    """``"cdiv(M, 16), cdiv(N, 32)"`` -> (3, 4): ints, the kernel's scalars/constexprs, + - * // %, cdiv, min, max."""
    try:
        tree = ast.parse(f"({text},)", mode="eval")
    except SyntaxError:
        raise LaunchError(f"--grid {text!r} is not an expression list (e.g. 'cdiv(M, 16), 4')") from None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            v = names.get(node.id)
            if not isinstance(v, int) or isinstance(v, bool):
                raise LaunchError(f"--grid: {node.id!r} is not an integer argument or constexpr of the kernel")
            return v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise LaunchError(f"--grid: cannot evaluate {ast.unparse(node)!r} (ints, names, + - * // %, cdiv/min/max)")

    dims = tuple(ev(e) for e in tree.body.elts)  # type: ignore[attr-defined]
    if not 1 <= len(dims) <= 3 or any(d < 1 for d in dims):
        raise LaunchError(f"--grid {text!r} gives {dims}: 1 to 3 positive dimensions")
    return dims


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}  # fmt: skip
_FUNCS = {"cdiv": lambda a, b: -(-a // b), "min": min, "max": max}


@dataclass(frozen=True)
class BufferCheck:
    name: str
    dtype: str
    elements: int
    written: bool
    equal: int
    ok: bool
    max_abs_err: float | None = None
    rule: str = "bit-exact"


@dataclass(frozen=True)
class CheckReport:
    kernel: str
    backend: str
    arch: str
    grid: tuple[int, ...]
    scalars: dict[str, object]
    buffers: tuple[BufferCheck, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.buffers)

    def lines(self) -> list[str]:
        sc = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.scalars.items())
        out = [f"{self.kernel} on the {self.backend} ({self.arch}), grid {self.grid}, {sc}"]
        for b in self.buffers:
            err = "" if b.max_abs_err is None else f", max |err| {b.max_abs_err:.3g}"
            role = "written" if b.written else "read   "
            out.append(f"  {b.name:12s} {b.dtype:>9s}[{b.elements}] {role} {b.equal}/{b.elements} equal "
                       f"({b.rule}{err}) {'ok' if b.ok else 'MISMATCH'}")
        out.append(f"{self.kernel}: {'PASS' if self.ok else 'FAIL'} ({self.backend} against the interpreter)")
        return out


def _random(rng: np.random.Generator, dt: np.dtype, count: int) -> np.ndarray:
    if dt.kind == "b":
        return rng.integers(0, 2, count).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(int(info.min), int(info.max), count, dtype=dt, endpoint=True)
    if dt.name in _MANTISSA:
        return rng.standard_normal(count).astype(dt)
    return rng.integers(0, 256, count * dt.itemsize, dtype=np.uint8).view(dt)


def _compare(name: str, got: np.ndarray, ref: np.ndarray, written: bool) -> BufferCheck:
    exact = got.view(np.uint8) == ref.view(np.uint8)
    per = exact.reshape(got.size, -1).all(axis=1) if got.size else exact
    equal = int(per.sum())
    mant = _MANTISSA.get(got.dtype.name)
    if not written or mant is None:
        return BufferCheck(name, got.dtype.name, got.size, written, equal, equal == got.size)
    g, r = got.astype(np.float64), ref.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(r)
    finite = np.isfinite(r)
    scale = float(np.abs(r[finite]).max()) if finite.any() else 1.0
    bound = 64 * 2.0**-mant * max(scale, 2.0**-14)
    err = np.where(both_nan, 0.0, np.abs(g - r))
    with np.errstate(invalid="ignore"):
        ok = bool(np.all(both_nan | (err <= bound) | (g == r)))
    return BufferCheck(name, got.dtype.name, got.size, written, equal, ok, float(np.nanmax(err)) if err.size else 0.0,
                       "within 64 ulp of max |ref|")  # fmt: skip


@dataclass(frozen=True)
class Inputs:
    """A launch's random inputs: the program, scalars, host buffers by name (256-byte aligned), grid, constexprs."""

    prog: object
    scalars: dict[str, object]
    host: dict[str, np.ndarray]
    grid: tuple[int, ...]
    constexprs: dict[str, object]

    def args(self, arrays: Mapping[str, object] | None = None) -> list[object]:
        """Arguments in parameter order, with ``arrays`` (default: the host buffers) for the pointers."""
        arrays = self.host if arrays is None else arrays
        return [arrays[n] if n in arrays else self.scalars[n] for n in Binder.of(self.prog).names]  # type: ignore[arg-type]


def aligned_copy(a: np.ndarray, alignment: int = 256) -> np.ndarray:
    """A copy of ``a`` whose data starts on an ``alignment``-byte boundary (like a device allocation)."""
    raw = np.empty(a.nbytes + alignment, np.uint8)
    start = (-raw.ctypes.data) % alignment
    out = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def make_inputs(kernel: object, defines: Mapping[str, object], grid_text: str, num_warps: int | None = None,
                seed: int = 0) -> Inputs:
    """Random inputs for ``kernel`` sized by its views (see the module docstring)."""
    params = kernel.compiler.params  # type: ignore[attr-defined]
    cx_names = {p.name for p in params if p.is_constexpr}
    known = {p.name for p in params}
    unknown = sorted(set(defines) - known)
    if unknown:
        raise LaunchError(f"{kernel.__name__} has no parameter or constexpr {unknown[0]!r} "  # type: ignore[attr-defined]
                          f"(it has: {', '.join(p.name for p in params)})")  # fmt: skip
    cx = {k: v for k, v in defines.items() if k in cx_names}
    prog = kernel.specialize(num_warps, **cx)  # type: ignore[attr-defined]
    binder = Binder.of(prog)
    rng = np.random.default_rng(seed)
    scalars: dict[str, object] = {}
    missing = []
    for slot in binder.slots:
        if not isinstance(slot, ScalarSlot):
            continue
        dt = slot.var.dtype
        if slot.name in defines:
            scalars[slot.name] = defines[slot.name]
        elif dt.is_int and dt.name != "bool":
            missing.append(slot.name)
        else:
            scalars[slot.name] = False if dt.name == "bool" else convert(float(rng.uniform(0.5, 2.0)), dt)
    if missing:
        raise LaunchError(f"give the integer arguments {', '.join(missing)} with -D (e.g. -D {missing[0]}=64): "
                          "they size the buffers")  # fmt: skip
    need = binder.required_bytes(scalars)
    host: dict[str, np.ndarray] = {}
    for slot in binder.slots:
        if isinstance(slot, PointerSlot):
            got = need[slot.name]
            if got is None:
                raise LaunchError(f"cannot size argument '{slot.name}': none of its views is a function of the "
                                  "kernel's scalar arguments alone")  # fmt: skip
            dt = element_dtype(slot.dtype) or np.dtype(np.uint8)
            host[slot.name] = aligned_copy(_random(rng, dt, max(1, math.ceil(got[0] / dt.itemsize))))
    bound_cx = kernel.compiler.bind_constexprs(cx)  # type: ignore[attr-defined]
    grid = eval_grid(grid_text, {**bound_cx, **scalars})
    return Inputs(prog, scalars, host, grid, cx)


def compare_all(prog: object, got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> tuple[BufferCheck, ...]:
    """Every buffer of a launch against the reference (the rules of the module docstring)."""
    binder = Binder.of(prog)  # type: ignore[arg-type]
    written = set(binder.written)
    return tuple(_compare(n, got[n], ref[n], n in written) for n in binder.names if n in ref)


def run_check(kernel: object, grid_text: str, defines: Mapping[str, object], backend: str = "auto",
              arch: str | None = None, num_warps: int | None = None, seed: int = 0) -> CheckReport:
    """Random inputs sized by the views, one launch on ``backend`` (auto/gpu/emulator), compared with the interpreter."""
    from lowbit import runtime  # noqa: PLC0415

    inp = make_inputs(kernel, defines, grid_text, num_warps, seed)
    nw = inp.prog.num_warps  # type: ignore[attr-defined]
    ref = {k: v.copy() for k, v in inp.host.items()}
    kernel.interpret[inp.grid](*inp.args(ref), num_warps=nw, **inp.constexprs)  # type: ignore[attr-defined]
    if backend == "auto":
        backend = "gpu" if runtime.status().available else "emulator"
    if backend not in ("gpu", "emulator"):
        raise LaunchError(f"--backend must be auto, gpu or emulator, got {backend!r}")
    target = kernel.on(arch) if arch else kernel  # type: ignore[attr-defined]
    if backend == "gpu":
        dev = {k: runtime.DeviceArray.from_numpy(v) for k, v in inp.host.items()}
        target[inp.grid](*inp.args(dev), num_warps=nw, **inp.constexprs)
        got = {k: d.numpy() for k, d in dev.items()}
    else:
        got = {k: aligned_copy(v) for k, v in inp.host.items()}
        target[inp.grid](*inp.args(got), num_warps=nw, **inp.constexprs)
    ran = kernel.last_launch  # type: ignore[attr-defined]
    used_arch = next(ck.arch for p, ck in kernel._compiled.values() if p is ran.program)  # type: ignore[attr-defined]
    return CheckReport(inp.prog.name, backend, used_arch, inp.grid, inp.scalars, compare_all(inp.prog, got, ref))  # type: ignore[attr-defined]
