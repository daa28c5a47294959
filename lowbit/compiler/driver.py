"""The compile driver: DSL kernel -> VM -> SIMT -> LLVM -> PTX (-> cubin), cached on disk; and an emulator launcher.

``compile(kernel, arch="sm_80", **constexprs)`` specialises the kernel
(missing constexprs take their declared defaults, else an error naming
them), runs the pass pipeline (:mod:`lowbit.transforms`), emits PTX through
LLVM (:mod:`lowbit.codegen`) and assembles it with ptxas when ptxas exists
(PTX is still produced when it does not).  Every stage's text is kept on the
returned :class:`CompiledKernel`.  Results are cached in
:class:`~lowbit.compiler.cache.CompileCache` under
``cache_key(canonical .lbir, options, arch)`` (the key also covers lowbit's
own source and the LLVM/ptxas versions).

``run_on_emulator(compiled, grid, args)`` binds user arguments (numpy
arrays, Python numbers) to the PTX parameters and runs the PTX on
:mod:`lowbit.emu` with its checks on.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lowbit import interp
from lowbit.codegen.emit import compile_kernel
from lowbit.compiler.cache import CompileCache, cache_key
from lowbit.dtypes import DType
from lowbit.errors import CodegenError, DSLError, EmulatorError, LaunchError, ToolchainError
from lowbit.ir.printer import print_program
from lowbit.ir.program import Program
from lowbit.ir.simt import print_kernel
from lowbit.ir.types import PointerType
from lowbit.transforms import Options, lower

__all__ = ["CompiledKernel", "ParamSpec", "compile", "compile_program", "needs_fp8", "run_on_emulator"]

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


def _build(prog: Program, arch: str) -> dict[str, bytes]:
    from lowbit.codegen.ptxas import assemble  # noqa: PLC0415 - ptxas is optional

    kernel = lower(prog, Options(arch=arch))
    ck = compile_kernel(kernel, arch)
    shared = sum(-(-buf.size // 16) * 16 for buf in kernel.shared if buf.size is not None)
    meta = {"threads": kernel.threads, "shared": shared, "name": kernel.name}
    out = {"simt": print_kernel(kernel).encode(), "llvm": ck.llvm_ir.encode(), "ptx": ck.ptx.encode()}
    try:
        asm = assemble(ck.ptx, arch)
        out["cubin"] = asm.cubin
        out["ptxas_log"] = asm.log.encode()
    except ToolchainError:
        pass
    out["meta"] = json.dumps(meta).encode()
    return out


def compile_program(prog: Program, arch: str | None = None, cache: CompileCache | None = None) -> CompiledKernel:
    """Compile an already specialised VM program (cached)."""
    from lowbit.codegen.ptxas import parse_report  # noqa: PLC0415

    arch = arch or ("sm_89" if needs_fp8(prog) else "sm_80")
    opts = Options(arch=arch)
    vm = print_program(prog)
    key = cache_key(vm, opts.as_dict(), arch)
    arts = (cache or CompileCache()).get_or_build(key, lambda: _build(prog, arch))
    meta = json.loads(arts["meta"].decode())
    log = arts.get("ptxas_log", b"").decode()
    resources = parse_report(log).get(meta["name"]) if log else None
    return CompiledKernel(
        kernel_name=meta["name"], arch=arch, vm=vm, simt=arts["simt"].decode(), llvm=arts["llvm"].decode(),
        ptx=arts["ptx"].decode(), cubin=arts.get("cubin"), resources=resources, params=_params(prog),
        threads_per_block=meta["threads"], shared_bytes=meta["shared"], ptxas_log=log,
    )  # fmt: skip


def compile(kernel: object, arch: str | None = None, cache: CompileCache | None = None, **constexprs: object) -> CompiledKernel:  # noqa: A001
    """``lowbit.compile(kernel, arch="sm_80", **constexprs)``: DSL -> PTX (+ cubin when ptxas exists)."""
    specialize = getattr(kernel, "specialize", None)
    if specialize is None:
        raise LaunchError(f"lowbit.compile needs a @lowbit.kernel, got {type(kernel).__name__}")
    try:
        prog = specialize(**constexprs)
    except (DSLError, LaunchError) as exc:
        raise exc.with_traceback(None) from None
    try:
        return compile_program(prog, arch, cache)
    except CodegenError as exc:
        raise exc.with_traceback(None) from None


# ------------------------------------------------------------------------------------------ emulator


def _vm_program(compiled: CompiledKernel) -> Program:
    from lowbit.ir.parser import parse  # noqa: PLC0415

    return parse(compiled.vm)


def run_on_emulator(compiled: CompiledKernel, grid: object, args: Sequence[object] | Mapping[str, object],
                    checks: bool = True) -> object:
    """Launch ``compiled`` on the PTX emulator; arrays in ``args`` are updated in place. Returns its Stats."""
    from lowbit import emu  # noqa: PLC0415

    names = [p.name for p in compiled.params]
    if isinstance(args, Mapping):
        unknown = [k for k in args if k not in names]
        if unknown:
            raise LaunchError(f"{compiled.kernel_name} has no parameter {unknown[0]!r}")
        by_name = dict(args)
    else:
        if len(args) != len(names):
            raise LaunchError(f"{compiled.kernel_name} takes {len(names)} arguments ({', '.join(names)}), "
                              f"but {len(args)} were given")  # fmt: skip
        by_name = dict(zip(names, args))
    prog = _vm_program(compiled)
    bound = interp.bind_args(prog, by_name)  # checks arity, array dtypes and scalar ranges, naming the argument
    ptx_args: list[object] = []
    for p in compiled.params:
        if p.kind == "pointer":
            ptx_args.append(by_name[p.name])
            continue
        v = bound[p.name]
        if p.dtype == "bf16":
            from lowbit.dtypes import dtype  # noqa: PLC0415

            ptx_args.append(np.uint16(int(np.asarray(dtype("bf16").encode(float(v))).reshape(()))))
        elif p.dtype == "bool":
            ptx_args.append(np.int32(bool(v)))
        else:
            ptx_args.append(np.dtype(p.ptx_type).type(v))
    g = interp.normalize_grid(grid)
    try:
        return emu.launch(compiled.ptx, compiled.kernel_name, g, compiled.threads_per_block, ptx_args, checks=checks)
    except EmulatorError as exc:
        raise type(exc)(_name_arguments(str(exc), compiled)) from None


def _name_arguments(message: str, compiled: CompiledKernel) -> str:
    """Say which user argument a PTX parameter (``<kernel>_param_<i>``) in an emulator message is."""
    names = [p.name for p in compiled.params]

    def sub(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return f"argument '{names[i]}' ({m.group(0)})" if i < len(names) else m.group(0)

    return re.sub(rf"\b{re.escape(compiled.kernel_name)}_param_(\d+)\b", sub, message)

