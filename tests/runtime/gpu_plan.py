"""What the GPU half launches, so ``benchmarks/gpu_check.py --prepare`` can compile every variant into the carried
cache (a GPU machine cannot compile: no lark, another llvmlite).

A launch on device buffers (torch's caching allocator, ``cuMemAlloc``: 256-byte aligned) is specialised on
``div(16)`` for every pointer and for every integer argument that is a multiple of 16, so the variants are
known here from the sizes alone (:func:`device_facts`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: the example runs of gpu_check's ``examples`` section: defines (scalars and constexprs) and the grid
EXAMPLES = {
    "01_vector_add": ({"n": 1000}, "cdiv(n, BLOCK)"),
    "02_uint4_cast": ({"R": 37, "C": 100}, "cdiv(R, BR), cdiv(C, BC)"),
    "03_matmul_f16": ({"M": 37, "N": 100, "K": 136}, "cdiv(M, BM), cdiv(N, BN)"),
    "04_w4a16_matmul": ({"M": 37, "N": 100, "K": 136}, "cdiv(M, BM), cdiv(N, BN)"),
}
#: tests/runtime/test_gpu.py's vector_add sizes (4096: n itself is specialised on div(16))
TEST_SIZES = (1000, 4096)
#: an extra target whose cubin an sm_90 device cannot run, to exercise the PTX JIT path
JIT_TARGET = "sm_80"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_plan_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernel_of(module: object):
    import lowbit

    (k,) = [v for v in vars(module).values() if isinstance(v, lowbit.Kernel)]
    return k


def device_facts(prog: object, scalars: dict[str, object]) -> dict[str, int]:
    facts = {}
    for p in prog.params:  # type: ignore[attr-defined]
        value = scalars.get(p.name)
        if p.name not in scalars:
            facts[p.name] = 16  # a pointer
        elif isinstance(value, int) and not isinstance(value, bool) and value % 16 == 0:
            facts[p.name] = 16
    return facts


@dataclass(frozen=True)
class Variant:
    example: str
    constexprs: dict[str, object]
    facts: dict[str, int]
    arch: str


def variants(archs: tuple[str, ...]) -> list[Variant]:
    """Every (example, constexprs, facts, target) the GPU half will launch."""
    from lowbit.binder import Binder, ScalarSlot

    out: list[Variant] = []
    runs = [(name, d) for name, (d, _) in EXAMPLES.items()] + [("01_vector_add", {"n": n}) for n in TEST_SIZES]
    for arch in (*archs, JIT_TARGET):
        for name, defines in runs if arch in archs else [("01_vector_add", {"n": 1000})]:
            k = kernel_of(load_example(name))
            cx = {c: v for c, v in defines.items() if c in {p.name for p in k.compiler.params if p.is_constexpr}}
            prog = k.specialize(**cx)
            scalars = {s.name: defines.get(s.name, 1.0) for s in Binder.of(prog).slots if isinstance(s, ScalarSlot)}
            v = Variant(name, cx, device_facts(prog, scalars), arch)
            if v not in out:
                out.append(v)
    return out
