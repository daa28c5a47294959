"""lowbit.emu: run PTX kernels on the CPU, exactly, and catch the bugs a GPU would punish.

``launch(ptx, kernel, grid, block, args, shared_bytes=0, max_dynamic_shared=None,
trace=None, checks=True) -> Stats`` parses the PTX (:mod:`lowbit.emu.parser`),
validates the launch like the driver (:mod:`lowbit.emu.launch`) and runs it on
the numpy SIMT machine (:mod:`lowbit.emu.machine`).  numpy arrays in ``args``
are device buffers, updated in place.
"""

from lowbit.emu.launch import launch
from lowbit.emu.stats import Stats

__all__ = ["Stats", "launch"]
