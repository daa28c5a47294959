"""VM -> SIMT passes, one a file, run in the order of :data:`PIPELINE`.

Each pass is ``run(prog, opts)``; every one but the last maps a VM
:class:`~lowbit.ir.program.Program` to a VM program, the last
(``lower_simt``) maps it to a SIMT :class:`~lowbit.ir.simt.Kernel`.
:func:`lower` runs them all, verifying between passes when
``opts.verify`` is set (the default: tests and the driver both do): the
IR verifier after every pass, and the layout verifier
(:mod:`~lowbit.transforms.verify_layouts`) once layouts exist.
"""

from __future__ import annotations

from lowbit.ir.program import Program
from lowbit.ir.simt import Kernel
from lowbit.ir.verifier import verify as verify_vm
from lowbit.transforms import (
    infer_layouts, lower_simt, pipeline, plan_shared, select_instructions, specialize, verify_layouts,
)  # fmt: skip
from lowbit.transforms.options import Options

__all__ = ["PIPELINE", "Options", "lower", "lower_vm"]

#: The passes in order, each with the reason it sits where it does.
PIPELINE = (
    # 1. Specialise first: fold the scalar arithmetic so every later pass sees offsets in their simplest form
    #    (what divides an offset decides vector widths).
    specialize,
    # 2. Layouts next: every later decision (vector width, conversion route, which instruction) depends on
    #    where each element sits; inference makes every op register-local and every layout change an
    #    explicit convert_layout.
    infer_layouts,
    # 3. Select instructions once layouts are fixed: routes for conversions, dot and cross-warp reductions
    #    written out as VM ops, vector widths on memory ops.  After it every byte of shared traffic is an
    #    explicit VM op.
    select_instructions,
    # 4. Software pipelining (num_stages > 1): select's shared-memory staging in a K loop becomes a ring of
    #    stages fed by cp.async copies issued num_stages-1 steps ahead, one wait and one barrier per step; it
    #    needs select's explicit shared traffic, and the planner needs its rings.
    pipeline,
    # 5. Plan shared memory once every buffer and access exists: offsets from lifetimes (buffers never live
    #    together share bytes), a swizzle per buffer from the accesses' bank wavefronts, the budget, static
    #    or dynamic shared memory.  It needs the final vector widths and access layouts, so it follows
    #    selection and pipelining, and the lowering follows it.
    plan_shared,
    # 6. Lowering last: it consumes every VM op and leaves per-thread SIMT code; nothing tile-level can run
    #    after it, and it decides nothing.
    lower_simt,
)

#: The layout verifier's stage after each VM -> VM pass (None: layouts are not required yet).
_STAGE = {specialize: None, infer_layouts: "inferred", select_instructions: "selected", pipeline: "selected",
          plan_shared: "selected"}


def lower_vm(prog: Program, opts: Options) -> Program:
    """Run the VM -> VM prefix of the pipeline (everything before ``lower_simt``)."""
    for p in PIPELINE[:-1]:
        prog = p.run(prog, opts)
        if opts.verify:
            verify_vm(prog)
            stage = _STAGE[p]
            if stage is not None:
                verify_layouts.verify(prog, stage, opts.arch, opts.tensor_cores)
    return prog


def lower(prog: Program, opts: Options | None = None) -> Kernel:
    """The whole pipeline: a VM program -> a verified SIMT kernel."""
    opts = opts or Options()
    return PIPELINE[-1].run(lower_vm(prog, opts), opts)
