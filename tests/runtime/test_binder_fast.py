"""The binder's straight-line torch-CUDA path accepts exactly what the generic path accepts, with the same result.

No GPU here: CPU tensors are made to say ``cuda:N`` for the test (as in
``benchmarks/bench_dispatch.py``); the binder reads only attributes, so what it
decides is the same as for real CUDA tensors.  Each case runs the generated
function and the generic one on the same arguments: the generated one must
either answer what the generic one answers (device, values, facts and their
order -- the variant key) or decline (None), and a case the generic path
refuses must never be accepted by the generated one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from lowbit.binder import Binder
from lowbit.errors import LaunchError
from tests.conftest import require_module

ROOT = Path(__file__).resolve().parents[2]
M, N, K = 37, 100, 144


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"binder_fast_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def _cuda_tensors(torch, ordinal_of: Callable[[object], int] = lambda t: 0) -> Iterator[None]:
    torch.Tensor.is_cuda = property(lambda self: True)
    torch.Tensor.get_device = lambda self: ordinal_of(self)
    try:
        yield
    finally:
        del torch.Tensor.is_cuda, torch.Tensor.get_device


def _aligned(torch, shape: tuple[int, ...], dtype, offset_bytes: int = 0):
    """A tensor whose data starts ``offset_bytes`` past a 16-byte boundary (random contents)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    n = int(np.prod(shape))
    raw = torch.zeros(n * itemsize + 64, dtype=torch.uint8)
    start = (-raw.data_ptr()) % 16 + offset_bytes
    buf = raw[start : start + n * itemsize]
    t = buf.view(dtype).view(shape)
    if dtype.is_floating_point:
        t.copy_(torch.randn(shape).to(dtype))
    else:
        t.copy_(torch.randint(0, 100, shape, dtype=torch.int64).to(dtype))
    return t


def _w4_case(torch, **change: object) -> list[object]:
    a = [_aligned(torch, (M, K), torch.float16), _aligned(torch, (K // 8, N), torch.int32),
         _aligned(torch, (2, N), torch.float16), _aligned(torch, (2, N), torch.uint8),
         _aligned(torch, (M, N), torch.float16), M, N, K]
    names = ["a", "w", "s", "z", "c", "m", "n", "k"]
    for key, value in change.items():
        a[names.index(key)] = value(a) if callable(value) else value
    return a


def _cases(torch) -> dict[str, list[object]]:
    f16 = torch.float16
    return {
        "aligned": _w4_case(torch),
        "odd offset": _w4_case(torch, a=lambda a: _aligned(torch, (M, K), f16, 2)),
        "aliased output": _w4_case(torch, z=lambda a: _aligned(torch, (2, N), torch.uint8), c=lambda a: a[0][:, :N].contiguous()),
        "same tensor twice": _w4_case(torch, s=lambda a: a[4][:2].contiguous(), c=lambda a: a[4]),
        "multiple-of-16 sizes": _w4_case(torch, m=32, a=lambda a: _aligned(torch, (32, K), f16),
                                         c=lambda a: _aligned(torch, (32, N), f16)),
        "uint8 codes as int8": _w4_case(torch, z=lambda a: _aligned(torch, (2, N), torch.int8)),
        "bf16 activations": _w4_case(torch, a=lambda a: _aligned(torch, (M, K), torch.bfloat16)),
        "float scales for f16": _w4_case(torch, s=lambda a: _aligned(torch, (2, N), torch.float32)),
        "transposed": _w4_case(torch, a=lambda a: _aligned(torch, (K, M), f16).t()),
        "too short": _w4_case(torch, c=lambda a: _aligned(torch, (M - 1, N), f16)),
        "int scalar too big": _w4_case(torch, m=2**31),
        "bool scalar": _w4_case(torch, m=True),
        "numpy int scalar": _w4_case(torch, m=np.int32(M)),
        "numpy array": _w4_case(torch, a=lambda a: np.zeros((M, K), np.float16)),
        "parameter subclass": _w4_case(torch, s=lambda a: torch.nn.Parameter(a[2], requires_grad=False)),
        "neg bit": _w4_case(torch, s=lambda a: torch._neg_view(a[2])),
        "negative size": _w4_case(torch, k=-8),
    }


def _generic(binder: Binder, args: list[object]) -> object:
    try:
        return binder._bind_values(tuple(args))
    except LaunchError as exc:
        return exc


@pytest.mark.parametrize("case", ["aligned", "odd offset", "aliased output", "same tensor twice",
                                  "multiple-of-16 sizes", "uint8 codes as int8", "bf16 activations",
                                  "float scales for f16", "transposed", "too short", "int scalar too big",
                                  "bool scalar", "numpy int scalar", "numpy array", "parameter subclass", "neg bit",
                                  "negative size"])  # fmt: skip
def test_the_generated_binder_agrees_with_the_generic_one(case: str) -> None:
    torch = require_module("torch")
    w4 = _example("04_w4a16_matmul").w4a16_matmul
    for facts in ({}, {"a_ptr": 16, "c_ptr": 16, "K": 16}):
        prog = w4.specialize()
        prog = prog.with_facts(facts) if facts else prog
        binder = Binder(prog)
        with _cuda_tensors(torch):
            args = _cases(torch)[case]
            binder._bind_values(tuple(_cases(torch)["aligned"]))  # torch seen: the generated path can be built
            fast = binder._cuda_fast()(tuple(args))
            want = _generic(binder, args)
            got = binder.bind_values(tuple(args)) if not isinstance(want, LaunchError) else None
        if fast is None:
            assert case not in ("aligned", "aliased output", "same tensor twice", "multiple-of-16 sizes",
                                "uint8 codes as int8") or facts, f"{case}: the common call fell off the fast path"  # fmt: skip
            continue
        assert not isinstance(want, LaunchError), f"{case}: accepted what the generic binder refuses: {want}"
        assert fast == want == got, case
        assert tuple(fast.facts) == tuple(want.facts), case  # the variant key: facts in the same order


def test_mixed_ordinals_and_scalar_kinds_decline_to_the_generic_path() -> None:
    torch = require_module("torch")
    w4 = _example("04_w4a16_matmul").w4a16_matmul
    binder = Binder(w4.specialize())
    args = _cases(torch)["aligned"]
    second = args[3]
    with _cuda_tensors(torch, lambda t: 1 if t is second else 0):
        binder._bind_values(tuple(_cases(torch)["aligned"]))
        assert binder._cuda_fast()(tuple(args)) is None
        with pytest.raises(LaunchError, match="argument 'z_ptr' is on cuda:1 but 'a_ptr' is on cuda:0"):
            binder.bind_values(tuple(args))
    vadd = _example("01_vector_add").vector_add
    vb = Binder(vadd.specialize())
    with _cuda_tensors(torch):
        args = (torch.randn(300), torch.randn(300), torch.randn(300), 300)
        vb._bind_values(args)
        fast = vb._cuda_fast()
        bound = vb.bind_values(args)
        assert fast(args) == bound == vb._bind_values(args) and bound.device == "cuda:0" and bound.torch
        assert bound.values[:3] == tuple(t.data_ptr() for t in args[:3])
        assert fast(args[:3]) is None  # wrong arity: the generic path names it
        with pytest.raises(LaunchError, match="takes 4 arguments"):
            vb.bind_values(args[:3])
