"""The register budget, checked before lowering: a tile too big for one block fails fast, at the user's line.

Every register tile is spread over the block's ``32 * num_warps`` threads,
so one tile of ``n`` elements of ``b`` bits costs each thread about
``ceil(n * b / 32 / threads)`` 32-bit registers.  A thread has at most 255
registers (PTX ISA, "Maximum number of registers per thread"); past that
ptxas spills to local memory, and far past it the lowering itself -- which
unrolls per-thread code for every element a thread owns -- would run for
minutes (a ``zeros((1 << 18,), f32)`` tile) or never end.  So a tile whose
per-thread cost exceeds :data:`lowbit.config.MAX_TILE_REGISTERS_PER_THREAD`
is a :class:`~lowbit.errors.CompileError` naming the tile, its cost and the
op's DSL line, raised before any pass runs.  The budget is generous (four
times the hardware's register file per thread): it exists to stop runaway
tiles, not to second-guess ptxas' register allocation, and every kernel,
example and test in the repository stays well inside it.

Shared memory has its own budget, planned and checked by
:mod:`lowbit.transforms.plan_shared`.
"""

from __future__ import annotations

import math

from lowbit import config
from lowbit.errors import CompileError
from lowbit.ir.program import Program
from lowbit.ir.rewrite import walk
from lowbit.ir.types import TileType

__all__ = ["check_tile_budget", "tile_registers"]


def tile_registers(t: TileType, threads: int) -> int:
    """32-bit registers per thread that one register tile of type ``t`` costs over ``threads`` threads."""
    return math.ceil(math.prod(t.shape) * max(1, t.dtype.bits) / 32 / threads)


def check_tile_budget(prog: Program) -> None:
    """Raise :class:`CompileError` at the first op whose result tile exceeds the per-thread register budget."""
    threads = 32 * prog.num_warps
    limit = config.MAX_TILE_REGISTERS_PER_THREAD
    for op in walk(prog.body):
        for v in op.defs():
            t = getattr(v, "type", None)
            if not isinstance(t, TileType):
                continue
            need = tile_registers(t, threads)
            if need > limit:
                where = f"{op.loc}: " if op.loc is not None else f"{prog.name}: "
                shape = "x".join(map(str, t.shape))
                raise CompileError(
                    f"{where}the {shape} {t.dtype.name} tile ({math.prod(t.shape)} elements) needs {need} registers "
                    f"per thread over {threads} threads ({prog.num_warps} warps), above the budget of {limit} "
                    f"(lowbit.config.MAX_TILE_REGISTERS_PER_THREAD; a thread has at most 255): use smaller tiles "
                    "(loop over the data) or more warps"
                )  # fmt: skip
