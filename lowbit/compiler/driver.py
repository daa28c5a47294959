"""The compile driver: DSL kernel -> VM -> SIMT -> LLVM -> PTX (-> cubin), cached on disk; and an emulator launcher.

``compile(kernel, arch="sm_80", **constexprs)`` specialises the kernel
(missing constexprs take their declared defaults, else an error naming
them), runs the pass pipeline (:mod:`lowbit.transforms`), emits PTX through
LLVM (:mod:`lowbit.codegen`) and assembles it with ptxas when ptxas exists
(PTX is still produced when it does not).  Every stage's text is kept on the
returned :class:`CompiledKernel`.  Results are cached in
:class:`~lowbit.compiler.cache.CompileCache` under
``cache_key(canonical .lbir, options, arch)`` (the key also covers lowbit's
own source and the LLVM/ptxas versions), and the key is recorded in the
specialisation index (:mod:`lowbit.compiler.specs`).

A process that cannot compile (no lark, or not the pinned llvmlite: a GPU
machine) never imports the passes or LLVM: it finds the entry through the
specialisation index, by the key stored when it was built; a miss is a
:class:`~lowbit.errors.LaunchError` naming the specialisation.

``run_on_emulator(compiled, grid, args)`` checks the arguments with the
compiled program's :class:`~lowbit.binder.Binder` (built once, never by
re-parsing text) and runs the PTX, parsed once per compiled kernel, on
:mod:`lowbit.emu` with its checks on.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lowbit.binder import Binder, Bound, require_host
from lowbit.compiler.budget import check_tile_budget
from lowbit.compiler.cache import CompileCache, cache_key, toolchain_versions
from lowbit.compiler.specs import SpecIndex, compiler_status, spec_id
from lowbit.dtypes import DType
from lowbit.errors import (
    EmulatorError, LaunchError, LowbitError, ToolchainError, ToolchainWarning,
)  # fmt: skip
from lowbit.ir.loops import TRAP_RANGE_STEP, runtime_step_loops, trap_code_at
from lowbit.ir.printer import print_program
from lowbit.ir.program import Program
from lowbit.ir.types import PointerType
from lowbit.transforms.options import Options

__all__ = ["CompiledKernel", "ParamSpec", "compile", "compile_program", "dynamic_shared_bytes", "needs_fp8",
           "run_on_emulator"]

_FP8 = ("e4m3fn", "e5m2")


@dataclass(frozen=True)
class ParamSpec:
    """One PTX parameter: its name, ``"pointer"`` or ``"scalar"``, the lowbit dtype and the PTX numpy type."""

    name: str
    kind: str
    dtype: str
    ptx_type: str  # numpy scalar type name for scalars ("int32", "float32"...), "u64" for pointers


@dataclass(frozen=True)
class CompiledKernel:
    """Every stage of one compilation."""

    kernel_name: str
    arch: str
    vm: str
    simt: str
    llvm: str
    ptx: str
    cubin: bytes | None
    resources: object | None
    params: tuple[ParamSpec, ...]
    threads_per_block: int
    shared_bytes: int
    ptxas_log: str = ""
    #: dynamic shared memory a launch passes (above the target's 48 KiB default: the opt-in size the runtime
    #: sets as CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES); 0 when the kernel's shared memory is static
    dynamic_shared_bytes: int = 0
    #: the compile-cache key the artifacts were stored under, and the specialisation id that finds it
    key: str = ""
    spec: str = ""
    #: the specialised program (signature and views for the binder); not part of equality
    program: Program | None = field(default=None, compare=False, repr=False)
    #: what instruction selection chose, one line per decision (which mma for each dot, ldmatrix reads...)
    report: tuple[str, ...] = ()

    @property
    def binder(self) -> Binder:
        if self.program is None:
            raise LaunchError(f"{self.kernel_name}: this CompiledKernel carries no program to bind arguments with")
        return Binder.of(self.program)

    @property
    def dynamic_shared(self) -> int:
        """Dynamic shared memory bytes a launch must pass (0 unless the PTX declares ``.extern .shared``)."""
        return self.dynamic_shared_bytes or dynamic_shared_bytes(self.ptx, self.shared_bytes)

    @property
    def max_dynamic_shared(self) -> int | None:
        """The opt-in a launch must set (``cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)``), or None below
        the target's default limit."""
        from lowbit.arch import target  # noqa: PLC0415

        n = self.dynamic_shared
        return n if n > target(self.arch).default_max_shared else None


def dynamic_shared_bytes(ptx: str, shared_bytes: int) -> int:
    """``shared_bytes`` when the PTX takes its shared memory dynamically (``.extern .shared``), else 0."""
    return shared_bytes if re.search(r"^\s*\.extern\s+\.shared\b", ptx, re.M) else 0


def _dtypes_in(obj: object, seen: set[int]) -> Iterator[DType]:
    """Every dtype reachable from an IR object (ops, values, types, expressions, nested bodies)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, DType):
        yield obj
    elif isinstance(obj, tuple | list):
        for item in obj:
            yield from _dtypes_in(item, seen)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _dtypes_in(getattr(obj, f.name), seen)


def needs_fp8(prog: Program) -> bool:
    """Whether the program touches an FP8 format anywhere (its default target is then sm_89)."""
    seen: set[int] = set()
    found = _dtypes_in((tuple(p.value for p in prog.params), prog.body), seen)
    return any(getattr(t, "name", None) in _FP8 for t in found)


def _np_scalar(dt_name: str) -> str:
    return {"int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64", "f32": "float32",
            "f16": "float16", "f64": "float64", "bool": "int32", "bf16": "uint16"}[dt_name]  # fmt: skip


def _params(prog: Program) -> tuple[ParamSpec, ...]:
    out = []
    for p in prog.params:
        if isinstance(p.value.type if hasattr(p.value, "type") else None, PointerType):
            out.append(ParamSpec(p.name, "pointer", p.value.type.dtype.name, "u64"))  # type: ignore[union-attr]
        else:
            dt = p.value.dtype  # type: ignore[union-attr]
            out.append(ParamSpec(p.name, "scalar", dt.name, _np_scalar(dt.name)))
    return tuple(out)


def _build(prog: Program, arch: str, opts: Options | None = None) -> dict[str, bytes]:
    # the passes, LLVM and the SIMT printer load only when something is compiled (not on a GPU machine)
    from lowbit.codegen.emit import compile_kernel  # noqa: PLC0415
    from lowbit.codegen.ptxas import assemble  # noqa: PLC0415 - ptxas is optional
    from lowbit.ir.simt import print_kernel  # noqa: PLC0415
    from lowbit.transforms import lower  # noqa: PLC0415

    from lowbit.transforms import PIPELINE, lower_vm  # noqa: PLC0415
    from lowbit.transforms.report import selection_report  # noqa: PLC0415

    opts = opts or Options(arch=arch)
    selected = lower_vm(prog, opts)
    kernel = PIPELINE[-1].run(selected, opts)
    ck = compile_kernel(kernel, arch)
    shared = sum(-(-buf.size // 16) * 16 for buf in kernel.shared if not buf.dynamic)
    dynamic = sum(buf.size or 0 for buf in kernel.shared if buf.dynamic)
    meta = {"threads": kernel.threads, "shared": shared, "dynamic_shared": dynamic, "name": kernel.name,
            "report": selection_report(selected, arch)}  # fmt: skip
    out = {"simt": print_kernel(kernel).encode(), "llvm": ck.llvm_ir.encode(), "ptx": ck.ptx.encode()}
    try:
        asm = assemble(ck.ptx, arch)
        out["cubin"] = asm.cubin
        out["ptxas_log"] = asm.log.encode()
    except ToolchainError as exc:  # no cubin: fine without ptxas; a ptxas that misbehaved is said once
        if not str(exc).startswith("ptxas not found"):
            warnings.warn(f"{exc}; {prog.name} is kept as PTX without a cubin", ToolchainWarning, stacklevel=2)
    out["meta"] = json.dumps(meta).encode()
    return out


def compile_program(prog: Program, arch: str | None = None, cache: CompileCache | None = None,
                    tensor_cores: bool = True, codebook: str = "auto") -> CompiledKernel:  # fmt: skip
    """Compile an already specialised VM program (cached; found by its specialisation where nothing compiles).

    ``tensor_cores=False`` lowers every ``dot`` with the FMA scheme (for comparisons and debugging);
    ``codebook`` forces a codebook lookup form (:attr:`lowbit.transforms.Options.codebook`).
    """
    arch = arch or ("sm_80" if not needs_fp8(prog) else "sm_89")
    check_tile_budget(prog)  # before any pass: a runaway tile is an error at its line, not minutes of lowering
    opts = Options(arch=arch, tensor_cores=tensor_cores, codebook=codebook)
    vm = print_program(prog)
    cache = cache or CompileCache()
    sid = spec_id(vm, opts.as_dict(), arch)
    index = SpecIndex(cache.root)
    holds = {"kernel": prog.name, "arch": arch}  # what the entry must hold, besides recording its own key
    can_compile, why = compiler_status()
    if can_compile:
        key = cache_key(vm, opts.as_dict(), arch)
        arts = cache.get_or_build(key, lambda: _build(prog, arch, opts), holds)
        llvm_v, ptxas_v = toolchain_versions()
        if not cache.disabled:
            index.record(sid, key, {"kernel": prog.name, "arch": arch, "built_with": {"llvm": llvm_v, "ptxas": ptxas_v}})
    else:
        rec = index.lookup(sid)
        arts = cache.get(rec["key"], holds) if rec is not None else None  # type: ignore[arg-type]
        if arts is None:
            raise LaunchError(
                f"kernel {prog.name} ({describe_specialization(prog, arch)}) is not in the carried cache "
                f"{cache.root} ({'entry missing or corrupt' if rec else 'no such specialisation'}: specialisation "
                f"{sid[:16]}), and this machine cannot compile ({why}); prepare it where lowbit compiles"
            )  # fmt: skip
        key = str(rec["key"])  # type: ignore[index]
    from lowbit.codegen.ptxas import parse_report  # noqa: PLC0415 - plain text parsing, no tools

    meta = json.loads(arts["meta"].decode())
    log = arts.get("ptxas_log", b"").decode()
    resources = parse_report(log).get(meta["name"]) if log else None
    return CompiledKernel(
        kernel_name=meta["name"], arch=arch, vm=vm, simt=arts["simt"].decode(), llvm=arts["llvm"].decode(),
        ptx=arts["ptx"].decode(), cubin=arts.get("cubin"), resources=resources, params=_params(prog),
        threads_per_block=meta["threads"], shared_bytes=meta["shared"], ptxas_log=log, key=key, spec=sid,
        program=prog, report=tuple(meta.get("report", ())), dynamic_shared_bytes=int(meta.get("dynamic_shared", 0)),
    )  # fmt: skip


def describe_specialization(prog: Program, arch: str) -> str:
    """One line naming a specialisation: target, constexprs, num_warps, facts."""
    cx = ", ".join(f"{n}={v}" for n, v in prog.constexprs)
    facts = ", ".join(f"{n}:div({d})" for n, d in sorted(prog.facts.items()))
    stages = f", num_stages={prog.num_stages}" if prog.num_stages != 1 else ""
    return f"{arch}, num_warps={prog.num_warps}{stages}" + (f", {cx}" if cx else "") + (f", facts {facts}" if facts else "")


def compile(kernel: object, arch: str | None = None, cache: CompileCache | None = None, *,  # noqa: A001
            tensor_cores: bool = True, **constexprs: object) -> CompiledKernel:  # fmt: skip
    """``lowbit.compile(kernel, arch="sm_80", **constexprs)``: DSL -> PTX (+ cubin when ptxas exists).

    ``tensor_cores=False`` lowers every ``dot`` with the per-thread FMA scheme (comparisons, debugging).
    """
    specialize = getattr(kernel, "specialize", None)
    if specialize is None:
        raise LaunchError(f"lowbit.compile needs a @lowbit.kernel, got {type(kernel).__name__}")
    try:
        prog = specialize(**constexprs)
        return compile_program(prog, arch, cache, tensor_cores=tensor_cores)
    except LowbitError as exc:
        raise exc.with_traceback(None) from None


# ------------------------------------------------------------------------------------------ emulator


@dataclass(frozen=True)
class _EmulatorPlan:
    """What every emulator launch of one compiled kernel reuses: the parsed PTX and per-parameter converters."""

    module: object
    convert: tuple[Callable[[object], object] | None, ...]  # None: a pointer (the array itself)
    #: what the plan was made from: a plan is reused only for the same kernel name and PTX text
    kernel_name: str = ""
    ptx: str = ""

    def serves(self, compiled: CompiledKernel) -> bool:
        return self.kernel_name == compiled.kernel_name and (self.ptx is compiled.ptx or self.ptx == compiled.ptx)


_PLANS: dict[str, _EmulatorPlan] = {}
_PLANS_LOCK = threading.Lock()


def _scalar_converter(dt_name: str, ptx_type: str) -> Callable[[object], object]:
    """A bound Python scalar (already in the parameter's format) -> the numpy scalar the PTX parameter takes."""
    from lowbit.dtypes import dtype  # noqa: PLC0415

    width = {"8": np.uint8, "16": np.uint16, "32": np.uint32, "64": np.uint64}[re.sub(r"\D", "", ptx_type) or "32"]
    if dt_name == "bf16":
        bf16 = dtype("bf16")
        return lambda v: np.uint16(int(np.asarray(bf16.encode(float(v))).reshape(())))  # type: ignore[arg-type]
    if dt_name == "bool":
        return lambda v: width(bool(v))
    if ptx_type.startswith("f"):
        ft = {"f16": np.float16, "f32": np.float32, "f64": np.float64}[ptx_type]
        return lambda v: ft(v)
    if dt_name == "f16":  # an f16 scalar in a .b16 parameter: its bits
        return lambda v: np.float16(v).view(np.uint16)
    signed = dt_name.startswith("int")
    nt = np.dtype(f"{'int' if signed else 'uint'}{np.dtype(width).itemsize * 8}").type
    return lambda v: nt(v)


def _as_param(conv: Callable[[object], object], entry_param: object) -> Callable[[object], object]:
    """LLVM passes some scalars (f16, bf16) as a ``.param .b8 p[2]`` array: give the emulator their bytes."""
    if getattr(entry_param, "dims", None):
        return lambda v: np.asarray(conv(v)).tobytes()
    return conv


def _emulator_plan(compiled: CompiledKernel) -> _EmulatorPlan:
    key = compiled.key or compiled.ptx
    plan = _PLANS.get(key)
    if plan is not None and plan.serves(compiled):
        return plan
    from lowbit.emu.parser import parse as parse_ptx  # noqa: PLC0415

    with _PLANS_LOCK:
        plan = _PLANS.get(key)
        if plan is None or not plan.serves(compiled):
            module = parse_ptx(compiled.ptx)
            try:
                entry = module.entry(compiled.kernel_name)
            except KeyError as exc:
                raise LaunchError(str(exc.args[0])) from None
            if len(entry.params) != len(compiled.params):
                raise LaunchError(f"{compiled.kernel_name}: the PTX has {len(entry.params)} parameters, the program "
                                  f"{len(compiled.params)}")  # fmt: skip
            conv = tuple(None if p.kind == "pointer" else _as_param(_scalar_converter(p.dtype, e.type), e)
                         for p, e in zip(compiled.params, entry.params))  # fmt: skip
            plan = _PLANS[key] = _EmulatorPlan(module, conv, compiled.kernel_name, compiled.ptx)
    return plan


def _by_name(compiled: CompiledKernel, args: Sequence[object] | Mapping[str, object]) -> dict[str, object]:
    names = [p.name for p in compiled.params]
    if isinstance(args, Mapping):
        unknown = [k for k in args if k not in names]
        if unknown:
            raise LaunchError(f"{compiled.kernel_name} has no parameter {unknown[0]!r}")
        return dict(args)
    if len(args) != len(names):
        raise LaunchError(f"{compiled.kernel_name} takes {len(names)} arguments ({', '.join(names)}), "
                          f"but {len(args)} were given")  # fmt: skip
    return dict(zip(names, args))


def run_on_emulator(compiled: CompiledKernel, grid: object, args: Sequence[object] | Mapping[str, object],
                    checks: bool = True, *, max_steps: float | None = None,
                    max_seconds: float | None = None) -> object:  # fmt: skip
    """Launch ``compiled`` on the PTX emulator; arrays in ``args`` are updated in place. Returns its Stats.

    ``max_steps``/``max_seconds``: the watchdog's budgets (None: :mod:`lowbit.config`'s defaults).
    """
    bound = compiled.binder.bind(_by_name(compiled, args))  # every check, naming the argument; nothing parsed
    return run_bound_on_emulator(compiled, grid, bound, checks, max_steps=max_steps, max_seconds=max_seconds)


def run_bound_on_emulator(compiled: CompiledKernel, grid: object, bound: Bound, checks: bool = True, *,
                          max_steps: float | None = None, max_seconds: float | None = None) -> object:  # fmt: skip
    """Launch already bound arguments (``Kernel.launch`` binds once for facts, backend and checks)."""
    from lowbit import emu, interp  # noqa: PLC0415

    require_host(bound, "emulator")
    plan = _emulator_plan(compiled)
    ptx_args = [v if c is None else c(v) for v, c in zip(bound.values, plan.convert)]
    g = interp.normalize_grid(grid)
    try:
        return emu.launch(plan.module, compiled.kernel_name, g, compiled.threads_per_block, ptx_args,
                          shared_bytes=compiled.dynamic_shared, max_dynamic_shared=compiled.max_dynamic_shared,
                          checks=checks, max_steps=max_steps, max_seconds=max_seconds)  # fmt: skip
    except EmulatorError as exc:
        msg = _explain_trap(_name_arguments(str(exc), compiled), compiled)
        raise type(exc)(_locate_spin(msg, compiled)) from None


def _ptx_loops(ptx: str) -> list[tuple[int, frozenset[int]]]:
    """The loops of PTX text, in the order of their heads: (head label's line, the lines of its back edges).

    A loop is a label some later branch jumps back to; several back edges to one label are one loop.
    """
    labels: dict[str, int] = {}
    branches: list[tuple[int, str]] = []
    for n, line in enumerate(ptx.splitlines(), 1):
        text = line.split("//", 1)[0].strip()
        if m := re.match(r"^([\w$.]+):", text):
            labels[m.group(1)] = n
        elif m := re.search(r"\bbra(?:\.uni)?\s+([\w$.]+)\s*;", text):
            branches.append((n, m.group(1)))
    backs: dict[int, set[int]] = {}
    for n, t in branches:
        if t in labels and labels[t] < n:
            backs.setdefault(labels[t], set()).add(n)
    return [(head, frozenset(lines)) for head, lines in sorted(backs.items())]


def _locate_spin(message: str, compiled: CompiledKernel) -> str:
    """Add the DSL loop to a watchdog message, when the PTX loops and the kernel's loops match one to one.

    LLVM keeps loops in program order but may unroll (constant trip counts) or duplicate them, so the
    match is made only when the counts agree, and says it is by position.
    """
    m = re.match(r"watchdog: .*spinning in the loop at PTX lines (\d+)-(\d+)", message)
    if m is None or compiled.program is None:
        return message
    from lowbit.ir import ops as V  # noqa: PLC0415
    from lowbit.ir.rewrite import walk  # noqa: PLC0415

    vm_loops = [op for op in walk(compiled.program.body) if isinstance(op, V.For)]
    ptx_loops = _ptx_loops(compiled.ptx)
    back = int(m.group(2))
    index = next((i for i, (_, lines) in enumerate(ptx_loops) if back in lines), None)
    if index is None or len(ptx_loops) != len(vm_loops) or vm_loops[index].loc is None:
        return message
    return (f"{vm_loops[index].loc}: the kernel's loop {index + 1} of {len(vm_loops)} (matched by position) "
            f"did not finish -- {message}")


def _explain_trap(message: str, compiled: CompiledKernel) -> str:
    """A ``trap`` the compiler planted (:mod:`lowbit.ir.loops`) said as the user's mistake, at their line."""
    m = re.match(r"trap: .* at PTX line (\d+):", message)
    if m is None or compiled.program is None:
        return message
    code = trap_code_at(compiled.ptx, int(m.group(1)))
    if code is None or code < TRAP_RANGE_STEP:
        return message
    loops = runtime_step_loops(compiled.program.body)
    i = code - TRAP_RANGE_STEP
    if 0 <= i < len(loops) and loops[i] is not None:
        where = str(loops[i])
    else:  # pragma: no cover - a table that does not match the program (should not happen)
        where = f"{compiled.kernel_name}: one of the loops at " + ", ".join(str(loc) for loc in loops)
    return (f"{where}: range step must be positive, got a step <= 0 at run time (the compiled loop's guard "
            f"trapped; on a GPU this is a trap) [{message}]")


def _name_arguments(message: str, compiled: CompiledKernel) -> str:
    """Say which user argument a PTX parameter (``<kernel>_param_<i>``) in an emulator message is."""
    names = [p.name for p in compiled.params]

    def sub(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return f"argument '{names[i]}' ({m.group(0)})" if i < len(names) else m.group(0)

    return re.sub(rf"\b{re.escape(compiled.kernel_name)}_param_(\d+)\b", sub, message)

