"""``launch()``: validate a kernel launch like the CUDA driver, build the machine, run it.

Validation (CUDA driver API ``cuLaunchKernel`` rules, restated in issue 4):

* arguments match the ``.entry`` parameters one for one; a numpy array is a
  device buffer (a pointer parameter, ``.u64``/``.b64``/``.s64``), ``None`` is
  a null pointer, a numpy scalar is a value parameter and must have the
  parameter's width and kind (``.u32``/``.s32``/``.b32`` take ``np.int32`` or
  ``np.uint32``, ``.f32`` takes ``np.float32``...); an array parameter
  (``.param .b8 p[16]``) takes an array or ``bytes`` of exactly its size.
  Errors name the parameter.
* block dims: at most (1024, 1024, 64) and 1024 threads in all, exactly
  ``.reqntid`` and at most ``.maxntid`` when the kernel declares them; grid
  dims at most (2^31-1, 65535, 65535).
* shared memory: static at most the target's 48 KiB default; dynamic
  ``shared_bytes`` at most ``default_max_shared - static`` unless the caller
  opts in with ``max_dynamic_shared`` (the analogue of
  ``cudaFuncAttributeMaxDynamicSharedMemorySize``), which itself may not
  exceed ``max_shared_per_block_optin - static`` of the PTX's ``.target``
  (:mod:`lowbit.arch`).
"""

from __future__ import annotations

import numpy as np

from lowbit import config
from lowbit.arch import MAX_BLOCK, MAX_BLOCK_THREADS, MAX_GRID, target as arch_target
from lowbit.emu import ptx_ast as A
from lowbit.emu.access import MemUnit
from lowbit.emu.cfg import build_cfg
from lowbit.emu.inline import inline_calls
from lowbit.emu.exec_alu import BUILDERS as ALU, CC
from lowbit.emu.exec_ctrl import BUILDERS as CTRL
from lowbit.emu.exec_data import BUILDERS as DATA
from lowbit.emu.machine import Machine
from lowbit.emu.memory import GlobalHeap
from lowbit.emu.stats import Stats
from lowbit.errors import ArchError, LaunchError, UnsupportedPTXError

BUILDERS = {**ALU, **DATA, **CTRL}

_SCALAR_KINDS = {  # PTX param type -> accepted numpy dtypes
    **{f"{k}{w}": (np.dtype(f"int{w}"), np.dtype(f"uint{w}")) for k in "usb" for w in (8, 16, 32, 64)},
    "f16": (np.dtype(np.float16),), "f32": (np.dtype(np.float32),), "f64": (np.dtype(np.float64),),
    "bf16": (np.dtype(np.uint16),),
}


def _dims(x, what) -> tuple[int, int, int]:
    t = (x,) if isinstance(x, (int, np.integer)) else tuple(x) if isinstance(x, (tuple, list)) else None
    if (t is None or not 1 <= len(t) <= 3
            or any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1 for v in t)):  # fmt: skip
        raise LaunchError(f"{what} must be 1 to 3 positive integers, got {x!r}")
    return tuple(int(v) for v in t) + (1,) * (3 - len(t))


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _param_bytes(func, args, heap, address_size):
    if len(args) != len(func.params):
        names = ", ".join(p.name for p in func.params)
        raise LaunchError(f"kernel {func.name} takes {len(func.params)} arguments ({names}), got {len(args)}")
    out = bytearray()
    offsets = {}
    for p, a in zip(func.params, args):
        size = p.size
        off = _align(len(out), p.align or A.TYPE_SIZES[p.type] or 1)
        out.extend(b"\0" * (off - len(out)))
        offsets[p.name] = off
        if p.dims:
            raw = bytes(a) if isinstance(a, (bytes, bytearray)) else (
                a.tobytes() if isinstance(a, np.ndarray) else None)
            if raw is None or len(raw) != size:
                raise LaunchError(f"parameter {p.name} is a {size}-byte .param array; pass bytes or an array of "
                                  f"exactly {size} bytes, got {type(a).__name__}")
            out.extend(raw)
            continue
        if isinstance(a, np.ndarray) or a is None:
            if A.TYPE_SIZES[p.type] * 8 != address_size or p.type.startswith("f"):
                raise LaunchError(f"parameter {p.name} is .{p.type}, not a pointer: pass a numpy scalar "
                                  f"(got {'None' if a is None else 'an array'})")
            addr = 0 if a is None else heap.add_array(a, p.name)
            out.extend(addr.to_bytes(size, "little"))
            continue
        if not isinstance(a, np.generic):
            raise LaunchError(f"parameter {p.name} (.{p.type}) needs a numpy scalar such as "
                              f"np.{_SCALAR_KINDS[p.type][0].name}(...), got {type(a).__name__} {a!r}")
        ok = _SCALAR_KINDS.get(p.type, ())
        if np.dtype(type(a)) not in ok:
            want = " or ".join(f"np.{d.name}" for d in ok)
            raise LaunchError(f"parameter {p.name} is .{p.type}: pass {want}, got np.{np.dtype(type(a)).name}")
        out.extend(np.asarray(a).tobytes())
    return bytes(out), offsets


def _layout(vars_, start=0):
    """Offsets for variables laid out in order with their alignment; returns (offsets, end)."""
    offs, pos = {}, start
    for v in vars_:
        pos = _align(pos, v.align or v.element_size or 1)
        offs[v.name] = pos
        pos += v.size or 0
    return offs, pos


def build(module, func, grid, block, args, shared_bytes, max_dynamic_shared, trace, checks, max_steps,
          max_seconds=None):
    if func.body is None:
        raise LaunchError(f"{func.name} has no body")
    func = inline_calls(module, func)
    grid, block = _dims(grid, "grid"), _dims(block, "block")
    nthreads = block[0] * block[1] * block[2]
    if any(b > most for b, most in zip(block, MAX_BLOCK)) or nthreads > MAX_BLOCK_THREADS:
        raise LaunchError(f"block {block} exceeds the limits {MAX_BLOCK} / {MAX_BLOCK_THREADS} threads")
    if any(g > most for g, most in zip(grid, MAX_GRID)):
        raise LaunchError(f"grid {grid} exceeds the limits (2^31-1, 65535, 65535)")
    total = grid[0] * grid[1] * grid[2] * ((nthreads + 31) // 32 * 32)
    if total > config.EMU_MAX_THREADS:
        raise LaunchError(f"grid {grid} x block {block} is {total} threads; the emulator holds every thread at once "
                          f"and runs at most {config.EMU_MAX_THREADS} (lowbit.config.EMU_MAX_THREADS): launch fewer "
                          "blocks, or run on a GPU")
    if func.reqntid is not None and tuple(func.reqntid) != block:
        raise LaunchError(f"kernel {func.name} has .reqntid {func.reqntid}; the block must be exactly that, "
                          f"got {block}")
    if func.maxntid is not None and nthreads > np.prod(func.maxntid):
        raise LaunchError(f"kernel {func.name} has .maxntid {func.maxntid}; block {block} is larger")
    try:
        tgt = arch_target(module.target)
    except ArchError:
        tgt = arch_target("sm_80")
    shared_vars = [v for v in module.variables if v.space == "shared"] + list(func.shared)
    static = [v for v in shared_vars if v.size is not None]
    extern = [v for v in shared_vars if v.size is None]
    soffs, static_end = _layout(static)
    if static_end > tgt.default_max_shared:
        raise LaunchError(f"static shared memory {static_end} B exceeds {tgt.default_max_shared} B")
    dyn_start = _align(static_end, max([v.align or 16 for v in extern], default=16))
    for v in extern:
        soffs[v.name] = dyn_start
    if max_dynamic_shared is not None and max_dynamic_shared > tgt.max_shared_per_block_optin - static_end:
        raise LaunchError(f"max_dynamic_shared {max_dynamic_shared} B exceeds the {tgt.name} opt-in limit "
                          f"{tgt.max_shared_per_block_optin} B minus {static_end} B static")
    limit = max_dynamic_shared if max_dynamic_shared is not None else tgt.default_max_shared - static_end
    if shared_bytes < 0 or shared_bytes > limit:
        hint = "" if max_dynamic_shared is not None else " (pass max_dynamic_shared= to opt in to more)"
        raise LaunchError(f"dynamic shared memory {shared_bytes} B exceeds the limit {limit} B{hint}")
    shared_size = (dyn_start + shared_bytes) if extern else static_end

    stats = Stats(params=tuple(p.name for p in func.params), checks=bool(checks))
    if max_steps is None:
        max_steps = config.emu_step_budget(grid[0] * grid[1] * grid[2], nthreads)
    if max_seconds is None:
        max_seconds = config.EMU_MAX_SECONDS
    for name, v in (("max_steps", max_steps), ("max_seconds", max_seconds)):
        if (why := config.budget_problem(name, v)) is not None:
            raise LaunchError(why)
    m = Machine(module, func, grid, block, checks=checks, trace=trace, stats=stats, max_steps=max_steps,
                max_seconds=max_seconds)
    heap = GlobalHeap()
    m.symbol_space = {}
    for v in module.variables:
        if v.space in ("global", "const"):
            m.symbols[v.name] = heap.add_bytes(v.size or 0, v.name, v.init, writable=v.space == "global")
            m.symbol_space[v.name] = "global"
    m.param_bytes, poffs = _param_bytes(func, list(args), heap, module.address_size)
    heap.finalize()
    for name, off in poffs.items():
        m.symbols[name] = off
        m.symbol_space[name] = "param"
    for name, off in soffs.items():
        m.symbols[name] = off
        m.symbol_space[name] = "shared"
    loffs, local_size = _layout(func.local)
    for name, off in loffs.items():
        m.symbols[name] = off
        m.symbol_space[name] = "local"
    m.dynamic_smem = shared_bytes
    m.shared_size = shared_size
    m.mem = MemUnit(m, heap, shared_size, local_size)
    m.on_barrier = m.mem.reset_race
    for name, decl in func.registers.items():
        bits = 1 if decl.type == "pred" else A.TYPE_SIZES[decl.type] * 8
        if decl.vector > 1:
            for c in "xyzw"[: decl.vector]:
                m.declare(f"{name}.{c}", bits)
        else:
            m.declare(name, bits)
    m.declare(CC, 32)
    m.ops = [_decode(m, ins) for ins in func.body]
    m.reconv = build_cfg(func).join_table()
    return m


def _decode(m, ins):
    builder = BUILDERS.get(ins.opcode)
    if builder is None:
        raise UnsupportedPTXError(f"PTX line {ins.line}: instruction `{ins.full_opcode}` is not implemented by "
                                  f"the emulator (`{ins.text}`)")
    try:
        return builder(m, ins)
    except UnsupportedPTXError as e:
        msg = str(e)
        raise UnsupportedPTXError(msg if "PTX line" in msg else f"PTX line {ins.line}: {msg} (`{ins.text}`)") from None
    except (StopIteration, IndexError, KeyError, AttributeError, TypeError, ValueError) as e:
        raise UnsupportedPTXError(f"PTX line {ins.line}: cannot decode `{ins.text}` ({type(e).__name__}: {e})") from e


def launch(ptx, kernel, grid, block, args, shared_bytes=0, max_dynamic_shared=None, trace=None, checks=True,
           max_steps=None, max_seconds=None) -> Stats:
    """Run ``kernel`` of ``ptx`` (text or a parsed Module) on the CPU; arrays in ``args`` are updated in place.

    ``grid``/``block``: an int or up to three ints.  ``trace=(block, thread)``
    (ints, linear, or coordinate tuples) prints that thread's executed
    instructions and the values they wrote.  ``checks=False`` turns off the
    sanitizer (racecheck, cp.async pending checks, definedness); memcheck
    stays on.

    The watchdog is always on: ``max_steps`` bounds the number of executed
    (group-)instructions (default :func:`lowbit.config.emu_step_budget` of the
    grid: ``EMU_STEPS_BASE + EMU_STEPS_PER_THREAD x blocks x threads``) and
    ``max_seconds`` the launch's wall time (default
    :data:`lowbit.config.EMU_MAX_SECONDS`); ``math.inf`` lifts either.  Running
    out is an :class:`~lowbit.errors.EmulatorError` naming the loop's PTX lines.

    The caller's arrays are written back only when the launch completes: after
    a fault or the watchdog they hold exactly what they held before.
    Returns :class:`~lowbit.emu.stats.Stats`.
    """
    if isinstance(ptx, A.Module):
        module = ptx
    else:
        from lowbit.emu.parser import parse

        module = parse(ptx)
    try:
        func = module.entry(kernel)
    except KeyError as e:
        raise LaunchError(str(e.args[0])) from None
    m = build(module, func, grid, block, args, int(shared_bytes), max_dynamic_shared, trace, checks, max_steps,
              max_seconds)
    try:
        with np.errstate(all="ignore"):
            m.run()
    finally:
        m.mem.flush_stats()
    m.mem.heap.copy_back()  # only after a complete launch: a fault leaves the caller's arrays untouched
    return m.stats


__all__ = ["build", "launch"]
