"""What layout-driven lowering changed, read from the examples' PTX at sm_80, and that it still computes right.

``BEFORE`` is the main-loop instruction count of each example on the first
lowering (one fixed flat distribution, a shared-memory round trip hidden in
every dot/view/broadcast/reduce), measured on the commit before Compiler II-a
with the same configurations and aligned arguments; ``AFTER`` is what the
layout-driven lowering must not exceed with tensor cores off
(``tensor_cores=False``: every ``dot`` the FMA scheme, as Compiler II-a left
it -- the tensor-core lowering is measured in ``test_tensor_cores.py``).
The hidden round trips are gone: the two barriers left in the matmul loops
are the explicit shared staging of the FMA ``dot`` (visible in the selected
VM text), scalar global loads of the A/W tiles became 16-byte vector loads,
and the dequantisation is ``f16x2``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit.compiler import compile_program
from lowbit.ir import ops as O
from lowbit.ir.rewrite import walk
from lowbit.transforms import Options, lower_vm
from tests.conftest import require_tool
from tests.transforms.ptx_loops import counts, instructions, main_loop, mix

ROOT = Path(__file__).resolve().parents[2]
NO_MMA = Options(tensor_cores=False)


def _example(name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


CONFIG = {
    "01_vector_add": {},
    "02_uint4_cast": {},
    "03_matmul_f16": {"BM": 64, "BN": 64, "BK": 32},
    "04_w4a16_matmul": {"BM": 16, "BN": 128, "BK": 128},
}
# main loop (the whole kernel for 01/02, which have none): bar.sync, ld.shared, st.shared, scalar ld.global
BEFORE = {
    "01_vector_add": (0, 0, 0, 2),
    "02_uint4_cast": (2, 8, 1, 1),
    "03_matmul_f16": (2, 33, 32, 32),
    "04_w4a16_matmul": (8, 35, 162, 34),
}
AFTER = {
    "01_vector_add": (0, 0, 0, 2),
    "02_uint4_cast": (0, 0, 0, 1),
    "03_matmul_f16": (2, 5, 4, 0),
    "04_w4a16_matmul": (2, 3, 99, 1),  # the 1: the group's eight zero points, one 32-bit load
}


def _aligned(prog):  # noqa: ANN001, ANN202
    """The program specialised as a launch with aligned pointers and multiple-of-16 sizes (not M) would run it."""
    facts = {p.name: 16 for p in prog.params if p.name != "M" and (not hasattr(p.value, "dtype") or p.value.dtype.is_int)}
    return prog.with_facts(facts)


def _kernel(name: str) -> lowbit.Kernel:
    return next(v for v in vars(_example(name)).values() if isinstance(v, lowbit.Kernel))


@pytest.mark.parametrize("name", list(CONFIG))
def test_main_loop_counts_before_and_after(name: str) -> None:
    require_tool("ptxas")
    prog = _aligned(_kernel(name).specialize(**CONFIG[name]))
    ck = compile_program(prog, "sm_80", tensor_cores=False)
    body = main_loop(ck.ptx) or instructions(ck.ptx)
    c = counts(body)
    got = (c["bar.sync"], c["ld.shared"], c["st.shared"], c["ld.global.scalar"])
    assert got == AFTER[name], (name, c)
    b = BEFORE[name]
    assert got[0] <= b[0] and got[1] <= b[1] and got[2] <= b[2] and got[3] <= b[3]
    assert ck.resources.spill_stores == 0 and ck.resources.spill_loads == 0


def _loop_loads(prog) -> list[O.LoadGlobal]:  # noqa: ANN001
    loop = next(op for op in prog.body if isinstance(op, O.For))
    return [op for op in walk(loop.body) if isinstance(op, O.LoadGlobal)]


def test_w4a16_loads_are_16_bytes_and_dequantisation_is_f16x2() -> None:
    prog = _aligned(_kernel("04_w4a16_matmul").specialize(**CONFIG["04_w4a16_matmul"]))
    sel = lower_vm(prog, NO_MMA)
    a_load, w_load = _loop_loads(sel)[:2]
    assert a_load.vec * 16 == 128 and w_load.vec * 32 == 128  # every A/W access is 16 bytes
    body = main_loop(compile_program(prog, "sm_80", tensor_cores=False).ptx)
    m = mix(body)
    # A: 16x128 f16 over 128 threads, W: 16x128 words (its loads carry an L2 evict_first hint)
    assert sum(n for k, n in m.items() if k.startswith("ld.global") and ".v4." in k) == 2 + 4
    # 128 codes per thread, two per instruction: the dequant rule fused cast, - zero and * scale into one fma
    # (magic number minus 1024 + z) and one mul per pair; the zero's constant is made once per zero register
    assert m["fma.rn.f16x2"] == 64 and m["mul.rn.f16x2"] == 64 and m.get("sub.rn.f16x2", 0) <= 4
    scalar_f16 = [x for x in body if re.match(r"(add|sub|mul|fma)(\.rn)?\.f16\s", x)]
    assert scalar_f16 == []


def test_matmul_loads_are_16_bytes() -> None:
    prog = _aligned(_kernel("03_matmul_f16").specialize(**CONFIG["03_matmul_f16"]))
    assert [op.vec for op in _loop_loads(lower_vm(prog, NO_MMA))] == [8, 8]
    m = mix(main_loop(compile_program(prog, "sm_80", tensor_cores=False).ptx))
    assert m["ld.global.v4.b32"] == 4 and not any(k.startswith("ld.global") and ".v4" not in k for k in m)


def test_unaligned_programs_keep_scalar_loads() -> None:
    """Without the facts nothing is provably aligned: the same loads stay per element (and correct)."""
    prog = _kernel("04_w4a16_matmul").specialize(**CONFIG["04_w4a16_matmul"])
    assert all(op.vec == 1 for op in _loop_loads(lower_vm(prog, NO_MMA)))


def _matmul_inputs(m: int, n: int, k: int, seed: int):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)


@pytest.mark.parametrize("m, n, k, facts", [
    (1, 100, 136, {"a_ptr", "b_ptr", "c_ptr"}),
    (37, 100, 136, {"a_ptr", "b_ptr", "c_ptr"}),
    (37, 384, 1024, {"a_ptr", "b_ptr", "c_ptr", "N", "K"}),
])  # fmt: skip
def test_matmul_emulator_equals_interpreter(m: int, n: int, k: int, facts: set[str]) -> None:
    kern = _kernel("03_matmul_f16")
    a, b = _matmul_inputs(m, n, k, m + n + k)
    cx = CONFIG["03_matmul_f16"]
    grid = (-(-m // cx["BM"]), -(-n // cx["BN"]))
    c_int, c_emu = np.full((m, n), np.nan, np.float32), np.full((m, n), np.nan, np.float32)
    kern.interpret[grid](a, b, c_int, m, n, k, **cx)
    kern[grid](a, b, c_emu, m, n, k, **cx)
    assert kern.last_launch.backend == "emulator" and set(kern.last_launch.facts) == facts
    # the FMA order differs from numpy's: bound by K roundings of f32 on the magnitudes
    bound = 2 * k * 2.0**-24 * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))) + 1e-30
    assert np.all(np.abs(c_emu.astype(np.float64) - c_int) <= bound)


@pytest.mark.parametrize("m, n, k, facts", [
    (1, 100, 136, {"a_ptr", "w_ptr", "s_ptr", "z_ptr", "c_ptr"}),
    (37, 100, 136, {"a_ptr", "w_ptr", "s_ptr", "z_ptr", "c_ptr"}),
    (37, 384, 1024, {"a_ptr", "w_ptr", "s_ptr", "z_ptr", "c_ptr", "N", "K"}),
])  # fmt: skip
def test_w4a16_emulator_equals_interpreter(m: int, n: int, k: int, facts: set[str]) -> None:
    ex = _example("04_w4a16_matmul")
    kern = ex.w4a16_matmul
    rng = np.random.default_rng(m * 7 + k)
    a = rng.standard_normal((m, k)).astype(np.float16)
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    words = lowbit.pack(q.codes, 4, axis=0)
    scales = np.array(q.scales, dtype=np.float16)  # writable copies (quantize returns read-only arrays)
    zeros = np.array(q.zeros, dtype=np.uint8)
    cx = CONFIG["04_w4a16_matmul"]
    grid = (-(-m // cx["BM"]), -(-n // cx["BN"]))
    c_int, c_emu = np.full((m, n), np.nan, np.float16), np.full((m, n), np.nan, np.float16)
    kern.interpret[grid](a, words, scales, zeros, c_int, m, n, k, **cx)
    kern[grid](a, words, scales, zeros, c_emu, m, n, k, **cx)
    assert kern.last_launch.backend == "emulator" and set(kern.last_launch.facts) == facts
    ref, mag = ex.reference(a, q)
    tol = ex.tolerance(ref, mag, k)
    assert np.all(np.abs(c_emu.astype(np.float64) - ref) <= tol)
    assert np.all(np.abs(c_int.astype(np.float64) - ref) <= tol)
    # the dequantised weights are bit-identical on both paths; only the f32 sums' order differs
    assert np.all(np.abs(c_emu.astype(np.float64) - c_int.astype(np.float64)) <= 2 * tol)


_ROW = lowbit.layout.spatial(4, 8)
_COL = lowbit.layout.column_spatial(4, 8)
_WIDE = lowbit.layout.product(lowbit.layout.spatial(4, 8), lowbit.layout.local(1, 2))
_WIDE2 = lowbit.layout.product(lowbit.layout.column_spatial(4, 8), lowbit.layout.local(1, 2))


@lowbit.kernel(num_warps=1)
def _routes(x_ptr: lowbit.ptr("f32"), b_ptr: lowbit.ptr("int32"), o_ptr: lowbit.ptr("f32"), q_ptr: lowbit.ptr("int32")):
    x = lowbit.load(lowbit.global_view(x_ptr, (4, 8)), (0, 0), (4, 8), layout=_ROW)
    y = lowbit.convert_layout(x, _COL)  # every element to another lane: shuffles
    lowbit.store(lowbit.global_view(o_ptr, (4, 16)), y, (0, 0))
    w = lowbit.load(lowbit.global_view(b_ptr, (4, 16)), (0, 0), (4, 16), layout=_WIDE)
    p = lowbit.convert_layout(w > 3, _WIDE2)  # bool tiles shuffle too
    lowbit.store(lowbit.global_view(q_ptr, (4, 16)), lowbit.cast(p, lowbit.int32), (0, 0))


def test_conversion_routes_compute_right() -> None:
    sel = lower_vm(_routes.specialize(), Options())
    assert [op.route for op in walk(sel.body) if isinstance(op, O.ConvertLayout)] == ["shfl", "shfl"]
    rng = np.random.default_rng(9)
    x, b = rng.standard_normal((4, 8)).astype(np.float32), rng.integers(0, 8, (4, 16)).astype(np.int32)
    for run in (_routes.interpret, _routes):
        o, q = np.full((4, 16), np.nan, np.float32), np.full((4, 16), -1, np.int32)
        run[(1,)](x, b, o, q)
        np.testing.assert_array_equal(o[:, :8], x)
        np.testing.assert_array_equal(q, (b > 3).astype(np.int32))
