"""Specialisation facts (pointer alignment, integer divisibility) and num_warps as a launch option."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit.errors import DSLError, IRError, LaunchError
from lowbit.ir.parser import parse
from lowbit.ir.printer import print_program
from lowbit.launch import specialization_facts

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _aligned(n: int, dtype: object, offset_bytes: int = 0) -> np.ndarray:
    """A C-contiguous array of ``n`` elements whose address is ``offset_bytes`` past a 64-byte boundary."""
    dt = np.dtype(dtype)
    raw = np.zeros(n * dt.itemsize + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset_bytes
    return raw[start:start + n * dt.itemsize].view(dt)


def test_facts_print_parse_and_stay_out_of_the_body() -> None:
    prog = _example("04_w4a16_matmul").w4a16_matmul.specialize()
    spec = prog.with_facts({"a_ptr": 16, "K": 16})
    text = print_program(spec)
    assert "%a_ptr: ptr<f16> div(16)" in text and "%K: int32 div(16)" in text and "%N: int32," in text
    assert print_program(parse(text)) == text
    assert spec.facts == {"a_ptr": 16, "K": 16} and prog.facts == {}
    assert spec.body is prog.body  # cheap: only the header changes
    assert print_program(prog) != text  # so it is a different cache key


@pytest.mark.parametrize("facts, message", [
    ({"nope": 16}, "no parameter 'nope'"),
    ({"K": 12}, "power of two"),
])  # fmt: skip
def test_bad_facts_are_ir_errors(facts: dict, message: str) -> None:
    prog = _example("04_w4a16_matmul").w4a16_matmul.specialize()
    with pytest.raises(IRError, match=message):
        prog.with_facts(facts)


def test_facts_detected_at_launch() -> None:
    ex = _example("01_vector_add")
    prog = ex.vector_add.specialize()
    x, y, out = _aligned(64, np.float32), _aligned(64, np.float32, 4), _aligned(64, np.float32, 16)
    assert specialization_facts(prog, {"x_ptr": x, "y_ptr": y, "out_ptr": out, "n": 48}) == {
        "x_ptr": 16, "out_ptr": 16, "n": 16}  # fmt: skip
    assert specialization_facts(prog, {"x_ptr": y, "y_ptr": y, "out_ptr": y, "n": 47}) == {}


def test_each_specialisation_runs_and_is_recorded() -> None:
    ex = _example("01_vector_add")
    k = ex.vector_add
    rng = np.random.default_rng(5)
    for n, off in ((96, 0), (96, 4), (77, 0)):
        x, y = _aligned(n, np.float32, off), _aligned(n, np.float32, off)
        x[:], y[:] = rng.standard_normal(n), rng.standard_normal(n)
        out = _aligned(n, np.float32, off)
        out[:] = np.nan
        k[(-(-n // 128),)](x, y, out, n)
        np.testing.assert_array_equal(out, x + y)
        want = {"x_ptr": 16, "y_ptr": 16, "out_ptr": 16} if off == 0 else {}
        if n % 16 == 0:
            want["n"] = 16
        assert k.last_launch.backend == "emulator" and k.last_launch.facts == want


def test_a_specialised_program_refuses_arguments_without_its_facts() -> None:
    ex = _example("01_vector_add")
    prog = ex.vector_add.specialize().with_facts({"x_ptr": 16, "n": 16})
    x, y, out = _aligned(32, np.float32, 4), np.zeros(32, np.float32), np.zeros(32, np.float32)
    with pytest.raises(LaunchError, match="argument 'x_ptr': the kernel was specialised on a 16-byte aligned"):
        lowbit.interp.run(prog, (1,), {"x_ptr": x, "y_ptr": y, "out_ptr": out, "n": 32})
    with pytest.raises(LaunchError, match="argument 'n': the kernel was specialised on a multiple of 16, got 31"):
        lowbit.interp.run(prog, (1,), {"x_ptr": _aligned(32, np.float32), "y_ptr": y, "out_ptr": out, "n": 31})


def test_num_warps_is_a_launch_option_and_part_of_the_key() -> None:
    ex = _example("01_vector_add")
    k = ex.vector_add
    n = 300
    x, y = np.arange(n, dtype=np.float32), np.ones(n, np.float32)
    for nw in (1, 4, 8):
        out = np.full(n, np.nan, np.float32)
        k[(-(-n // 128),)](x, y, out, n, num_warps=nw)
        np.testing.assert_array_equal(out, x + 1)
        assert k.last_launch.num_warps == nw
    texts = {print_program(k.specialize(num_warps=nw)) for nw in (1, 4, 8)}
    assert len(texts) == 3
    c1, c8 = lowbit.compile(k, num_warps=1), lowbit.compile(k, num_warps=8)
    assert (c1.threads_per_block, c8.threads_per_block) == (32, 256)
    with pytest.raises(LaunchError, match="num_warps must be a power of two"):
        k[(1,)](x, y, x, n, num_warps=3)


def test_launch_option_names_are_reserved() -> None:
    with pytest.raises(DSLError, match="'num_warps' is a launch option"):
        @lowbit.kernel
        def bad(x: lowbit.ptr("f32"), num_warps: lowbit.constexpr = 4):
            pass
