"""The one launch layer: ``kernel[grid](*args, **constexprs)`` and which backend runs it.

The rule (the only place it is decided):

1. ``kernel.interpret[grid](...)`` and ``lowbit.interpret(kernel, grid, ...)``
   always run the numpy reference interpreter (:mod:`lowbit.interp`).
2. ``kernel[grid](...)`` runs :func:`select_backend`'s choice, made from the
   arguments alone: device arrays (CUDA torch tensors, lowbit's
   :class:`~lowbit.runtime.DeviceArray`, anything with
   ``__cuda_array_interface__``) run on the GPU through :mod:`lowbit.runtime`
   (compiled for the device's target, launched on torch's current stream when
   the arrays are torch tensors); host arrays (numpy, CPU tensors) run the
   exact PTX on :mod:`lowbit.emu` with memcheck, racecheck and definedness
   checks on.  The kernel is compiled (DSL -> PTX, cached in memory per
   specialisation and on disk by :mod:`lowbit.compiler`) for the default
   target -- sm_80, or sm_89 when the kernel uses FP8; on the GPU, the
   device's -- and ``kernel.on("sm_90")[grid](...)`` picks the target.  No
   environment variable and no global switch changes this; a device array
   with no usable GPU is an error naming the argument, and a kernel the
   compiler cannot lower is an error at the user's line, never a silent
   fall-back to the interpreter.

Arguments bind like a Python call over the kernel's parameters (constexprs
included; missing constexprs take their defaults).  ``num_warps=`` and
``num_stages=`` are launch options (compile options, never kernel arguments), and so are the emulator
watchdog's ``max_steps=`` and ``max_seconds=`` (defaults in :mod:`lowbit.config`).  Every backend
checks them with the same :class:`~lowbit.binder.Binder` (dtype, contiguity,
size where the kernel's views say it, alignment facts, one device) before
anything runs; pointer arguments are updated in place.

Specialisation: a compiled launch detects, per argument, the facts the passes
may exploit -- a pointer whose address is a multiple of 16 bytes, an integer
scalar that is a multiple of 16 (:data:`~lowbit.ir.program.SPECIALIZED_DIVISIBILITY`)
-- and compiles (and caches) the program specialised on them
(:meth:`~lowbit.ir.program.Program.with_facts`); any other call runs the
unspecialised variant, which is correct for every argument.  ``kernel.last_launch``
records which program ran.  Errors are
:class:`~lowbit.errors.DSLError` (located at the kernel's line),
:class:`~lowbit.errors.LaunchError` or :class:`~lowbit.errors.CodegenError`;
all are re-raised here with a fresh traceback so the user sees their call,
one line of this module and the message -- never the compiler's frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lowbit import interp
from lowbit.binder import HOST, Binder, device_of
from lowbit.dsl.diagnostics import format_located
from lowbit.dsl.kernel import LAUNCH_OPTIONS, KernelFunction
from lowbit.errors import DSLError, LaunchError, LowbitError
from lowbit.ir.program import Program

__all__ = ["Kernel", "LaunchRecord", "LaunchSignatureError", "interpret", "kernel", "select_backend",
           "specialization_facts"]

Backend = Literal["interpreter", "emulator", "gpu"]
#: Every error lowbit raises on purpose is the user's to read: re-raised with a fresh traceback (their call, one
#: line of this module, the message), never the compiler's frames.
_USER_ERRORS = (LowbitError,)


class LaunchSignatureError(LaunchError, DSLError):
    """Wrong launch arguments (arity, unknown names), located at the kernel's ``def``.

    Both a :class:`LaunchError` (a bad call) and a :class:`DSLError` (it carries a
    source location like every kernel mistake)."""

    def __init__(self, reason: str, filename: str, line: int, col: int) -> None:
        self.reason, self.filename, self.line, self.col = reason, filename, line, col
        super().__init__(format_located(reason, filename, line, col))


@dataclass(frozen=True)
class LaunchRecord:
    """What one ``kernel[grid](...)`` ran: the backend and the specialised program (its facts, num_warps)."""

    backend: str
    program: Program

    @property
    def facts(self) -> dict[str, int]:
        return self.program.facts

    @property
    def num_warps(self) -> int:
        return self.program.num_warps


def specialization_facts(prog: Program, args: dict[str, object]) -> dict[str, int]:
    """The divisibility facts these arguments give each parameter of ``prog`` (they are checked too)."""
    return Binder.of(prog).bind(args).facts


def select_backend(kernel: Kernel, args: dict[str, object]) -> Backend:
    """Which backend runs ``kernel[grid](...)`` for these arguments (see the module docstring).

    Any device array among them means the GPU; mixed devices are refused by
    the binder afterwards, naming both arguments.
    """
    for value in args.values():
        where = device_of(value)
        if where is not None and where != HOST:
            return "gpu"
    return "emulator"


class Kernel:
    """``@lowbit.kernel``: compile per constexpr set (cached) and launch over a grid."""

    def __init__(self, fn: Callable[..., object], num_warps: int = 4, num_stages: int = 1) -> None:
        try:
            self.compiler = KernelFunction(fn, num_warps, num_stages)
        except DSLError as exc:
            raise exc.with_traceback(None) from None
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self._compiled: dict[tuple[int, str | None], tuple[Program, object]] = {}
        self._specialized: dict[tuple[int, tuple[tuple[str, int], ...]], Program] = {}
        #: what the last ``kernel[grid](...)`` ran (None before the first launch)
        self.last_launch: LaunchRecord | None = None

    def __repr__(self) -> str:
        return f"<lowbit.kernel {self.__name__}>"

    def __getitem__(self, grid: object) -> Launcher:
        return Launcher(self, grid, None)

    def on(self, arch: str) -> _TargetIndexer:
        """``kernel.on("sm_90")[grid](...)``: compile for ``arch``; the arguments pick the backend."""
        return _TargetIndexer(self, arch)

    def compiled(self, prog: Program, arch: str | None) -> object:
        """The compiled kernel for a specialised program (memoised; the disk cache sits behind it)."""
        key = (id(prog), arch)
        got = self._compiled.get(key)
        if got is None:
            from lowbit.compiler import compile_program  # noqa: PLC0415 - keeps `import lowbit` light

            got = self._compiled[key] = (prog, compile_program(prog, arch))
        return got[1]

    @property
    def interpret(self) -> _InterpretIndexer:
        """``kernel.interpret[grid](*args, **constexprs)``: always the reference interpreter."""
        return _InterpretIndexer(self)

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise LaunchError(f"launch {self.__name__} with a grid: {self.__name__}[grid](...)")

    def specialize(self, num_warps: int | None = None, num_stages: int | None = None, **constexprs: object) -> Program:
        """The VM program for these constexprs (defaults fill the rest), for ``num_warps`` warps and a
        ``num_stages``-deep software pipeline."""
        try:
            return self.compiler.specialize(num_warps, num_stages, **constexprs)
        except LowbitError as exc:
            raise exc.with_traceback(None) from None

    def with_facts(self, prog: Program, facts: dict[str, int]) -> Program:
        """``prog`` specialised on ``facts`` (memoised, so its compiled form is too)."""
        if not facts:
            return prog
        key = (id(prog), tuple(sorted(facts.items())))
        got = self._specialized.get(key)
        if got is None:
            got = self._specialized[key] = prog.with_facts(facts)
        return got

    def bind(self, args: tuple[object, ...], kwargs: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        """Split a launch's arguments into (runtime arguments, constexprs) by parameter name."""
        params = self.compiler.params
        file, line, col = self.compiler.location
        runtime = [p.name for p in params if not p.is_constexpr]
        cx = [p.name for p in params if p.is_constexpr]
        if len(args) > len(params):
            raise LaunchSignatureError(
                f"{self.__name__} takes {len(runtime)} arguments ({', '.join(runtime)})"
                + (f" and constexprs ({', '.join(cx)})" if cx else "")
                + f", but {len(args)} were given",
                file, line, col,
            )  # fmt: skip
        values: dict[str, object] = {p.name: a for p, a in zip(params, args)}
        for k, v in kwargs.items():
            if k not in {p.name for p in params}:
                raise LaunchSignatureError(f"{self.__name__} has no parameter '{k}'", file, line, col)
            if k in values:
                raise LaunchSignatureError(f"{self.__name__}: argument '{k}' given twice", file, line, col)
            values[k] = v
        missing = [n for n in runtime if n not in values]
        if missing:
            raise LaunchSignatureError(
                f"{self.__name__} takes {len(runtime)} arguments ({', '.join(runtime)}); "
                f"missing {', '.join(repr(m) for m in missing)}",
                file, line, col,
            )  # fmt: skip
        return {n: values[n] for n in runtime}, {n: values[n] for n in cx if n in values}

    def launch(
        self, grid: object, args: tuple[object, ...], kwargs: dict[str, object], backend: Backend | None,
        arch: str | None = None,
    ) -> None:
        options = {k: kwargs.pop(k) for k in LAUNCH_OPTIONS if k in kwargs}
        runtime, cx = self.bind(args, kwargs)
        prog = self.compiler.specialize(options.get("num_warps"), options.get("num_stages"), **cx)
        if callable(grid):
            grid = grid({**runtime, **self.compiler.bind_constexprs(cx)})
        chosen = backend or select_backend(self, runtime)
        if chosen == "interpreter":
            # the compiled path's tile budget holds here too: one meaning (a program no block can hold is refused on
            # both paths, at its line) and no MemoryError from a runaway constexpr tile
            from lowbit.compiler.budget import check_tile_budget  # noqa: PLC0415

            check_tile_budget(prog)
            interp.run(prog, grid, runtime, max_seconds=options.get("max_seconds"))
        else:
            bound = Binder.of(prog).bind(runtime)  # every argument check, and the facts, before compiling
            prog = self.with_facts(prog, bound.facts)
            if chosen == "emulator":
                from lowbit.compiler.driver import run_bound_on_emulator  # noqa: PLC0415

                run_bound_on_emulator(self.compiled(prog, arch), grid, bound, max_steps=options.get("max_steps"),
                                      max_seconds=options.get("max_seconds"))
            else:
                from lowbit import runtime as gpu  # noqa: PLC0415 - cuda-python only when a GPU launch happens

                device = gpu.device_for(bound)
                gpu.launch_bound(self.compiled(prog, arch or device.target_for(prog)), grid, bound)
        self.last_launch = LaunchRecord(chosen, prog)


class Launcher:
    """``kernel[grid]``: call it with the kernel's arguments."""

    def __init__(self, kernel: Kernel, grid: object, backend: Backend | None, arch: str | None = None) -> None:
        self.kernel, self.grid, self.backend, self.arch = kernel, grid, backend, arch

    def __call__(self, *args: object, **kwargs: object) -> None:
        try:
            self.kernel.launch(self.grid, args, kwargs, self.backend, self.arch)
        except _USER_ERRORS as exc:
            raise exc.with_traceback(None) from None


class _TargetIndexer:
    def __init__(self, kernel: Kernel, arch: str) -> None:
        self.kernel, self.arch = kernel, arch

    def __getitem__(self, grid: object) -> Launcher:
        return Launcher(self.kernel, grid, None, self.arch)


class _InterpretIndexer:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def __getitem__(self, grid: object) -> Launcher:
        return Launcher(self.kernel, grid, "interpreter")


def kernel(fn: Callable[..., object] | None = None, *, num_warps: int = 4,
           num_stages: int = 1) -> Kernel | Callable[[Callable[..., object]], Kernel]:  # fmt: skip
    """``@lowbit.kernel`` or ``@lowbit.kernel(num_warps=8, num_stages=3)``.

    ``num_stages`` > 1 software-pipelines the K loops whose loads feed shared memory: that many K steps'
    copies in flight (``cp.async`` into a ring of stages); 1 (the default) issues each step's loads in it.
    """
    if fn is None:
        return lambda f: Kernel(f, num_warps, num_stages)
    return Kernel(fn, num_warps, num_stages)


def interpret(k: Kernel, grid: object, *args: object, **constexprs: object) -> None:
    """Run ``k`` on the reference interpreter: ``lowbit.interpret(kernel, grid, *args, **constexprs)``."""
    try:
        k.launch(grid, args, constexprs, "interpreter")
    except _USER_ERRORS as exc:
        raise exc.with_traceback(None) from None
