"""Run one kernel on the interpreter and, compiled, on the PTX emulator; compare the outputs.

Inputs are copied for each side; outputs must be poisoned by the caller
(NaN or a sentinel) so an element a side forgets to write shows up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lowbit.compiler.cache import CompileCache
from lowbit.compiler.driver import CompiledKernel, compile, run_on_emulator
from tests.conftest import require_tool


def compiled(kernel: object, cache: CompileCache, arch: str | None = "sm_80", **cx: object) -> CompiledKernel:
    require_tool("ptxas")
    ck = compile(kernel, arch=arch, cache=cache, **cx)
    assert ck.cubin is not None and ck.resources is not None
    r = ck.resources
    assert r.spill_stores == 0 and r.spill_loads == 0, r
    return ck


def both(kernel: object, cache: CompileCache, grid: object, args: Sequence[object], outputs: Sequence[int],
         exact: bool = True, rtol: float = 0.0, atol: float = 0.0, **cx: object) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interpreter and emulator outputs (pairs), asserted equal (bit-exact or within rtol/atol)."""
    ck = compiled(kernel, cache, **cx)
    a_int = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    a_emu = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    kernel.interpret[grid](*a_int, **cx)  # type: ignore[attr-defined]
    run_on_emulator(ck, grid, a_emu)
    out = []
    for i in outputs:
        want, got = a_int[i], a_emu[i]
        if exact:
            assert want.dtype == got.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"output {i} differs")  # NaN == NaN here
        else:
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)
        out.append((want, got))
    return out
