"""Random programs (every op class) run in the interpreter without crashing, deterministically.

The only refusal allowed is a defined run-time fault (integer division by zero,
which the random element-wise ops can produce).
"""

from __future__ import annotations

import numpy as np

from lowbit import interp
from lowbit.interp import InterpError
from tests.ir.random_programs import random_program


def _run(seed: int) -> tuple[str, np.ndarray, np.ndarray]:
    prog, _ = random_program(seed)
    a = (np.arange(1 << 16) % 2048).astype(np.float16)
    b = np.arange(1 << 15, dtype=np.uint32) * np.uint32(2654435761)
    lines: list[str] = []
    try:
        interp.run(prog, (2, 1), dict(a=a, b=b, n=5, alpha=0.75), printer=lines.append)
    except InterpError as exc:
        assert "division by zero" in str(exc), str(exc)
        return "fault", a, b
    return "\n".join(lines), a, b


def test_random_programs_run_deterministically() -> None:
    ok = 0
    for seed in range(60):
        first = _run(seed)
        if first[0] != "fault":
            ok += 1
        again = _run(seed)
        assert first[0] == again[0]
        np.testing.assert_array_equal(first[1].view(np.uint16), again[1].view(np.uint16))
        np.testing.assert_array_equal(first[2], again[2])
    assert ok >= 50
