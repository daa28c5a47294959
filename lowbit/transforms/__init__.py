"""VM -> SIMT passes, one a file, run in the order of :data:`PIPELINE`.

Each pass is ``run(prog, opts)``; every one but the last maps a VM
:class:`~lowbit.ir.program.Program` to a VM program, the last
(``lower_simt``) maps it to a SIMT :class:`~lowbit.ir.simt.Kernel`.
:func:`lower` runs them all, verifying between passes when
``opts.verify`` is set (the default: tests and the driver both do).
"""

from __future__ import annotations

from lowbit.ir.program import Program
from lowbit.ir.simt import Kernel
from lowbit.ir.verifier import verify as verify_vm
from lowbit.transforms import assign_layouts, lower_simt
from lowbit.transforms.options import Options

__all__ = ["PIPELINE", "Options", "lower", "lower_vm"]

#: The passes in order, each with the reason it sits where it does.
PIPELINE = (
    # 1. Layouts first: the lowering reads each tile's distribution from its type,
    #    so every tile must carry one (or be left to the lowering's flat default)
    #    before any per-thread code is written.
    assign_layouts,
    # 2. Lowering last: it consumes every VM op and leaves per-thread SIMT code;
    #    nothing tile-level can run after it.
    lower_simt,
)


def lower_vm(prog: Program, opts: Options) -> Program:
    """Run the VM -> VM prefix of the pipeline (everything before ``lower_simt``)."""
    for p in PIPELINE[:-1]:
        prog = p.run(prog, opts)
        if opts.verify:
            verify_vm(prog)
    return prog


def lower(prog: Program, opts: Options | None = None) -> Kernel:
    """The whole pipeline: a VM program -> a verified SIMT kernel."""
    opts = opts or Options()
    return PIPELINE[-1].run(lower_vm(prog, opts), opts)
