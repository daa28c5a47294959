"""The paired magic-number conversion of integer codes to f16: bit-identical to the interpreter for every code.

Words hold every code of the type in every position (so each byte position,
each code position inside a byte and both halves of every pair are covered),
viewed along the words' rows (the codes of a thread sit in its words, in
``lowbit.pack`` order) and along columns, cast to f16 and stored; the PTX
must use the paired form (``prmt`` + ``fma.rn.f16x2``), not ``cvt`` per code.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.compiler import compile_program

TYPES = ["uint1", "int1", "uint2", "int2", "uint4", "int4", "uint8", "int8"]


@lowbit.kernel(num_warps=4)
def unpack_rows(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("f16"), T: lowbit.constexpr = lowbit.uint4):
    per = 32 // T.bits
    w = lowbit.load(lowbit.global_view(w_ptr, (32, 8)), (0, 0), (32, 8))
    lowbit.store(lowbit.global_view(o_ptr, (32, 8 * per)), lowbit.cast(lowbit.view(w, T, axis=1), lowbit.f16), (0, 0))


@lowbit.kernel(num_warps=4)
def unpack_cols(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("f16"), T: lowbit.constexpr = lowbit.uint4):
    per = 32 // T.bits
    w = lowbit.load(lowbit.global_view(w_ptr, (4, 64)), (0, 0), (4, 64))
    lowbit.store(lowbit.global_view(o_ptr, (4 * per, 64)), lowbit.cast(lowbit.view(w, T, axis=0), lowbit.f16), (0, 0))


def _words(t: str, n: int) -> np.ndarray:
    dt = lowbit.dtype(t)
    codes = np.arange(n * (32 // dt.bits)) % (1 << dt.bits)
    codes = (codes + np.arange(codes.size) // (1 << dt.bits)) % (1 << dt.bits)  # shift the cycle: every code everywhere
    return lowbit.pack(codes.astype(np.uint8), dt.bits, axis=-1).reshape(-1)


@pytest.mark.parametrize("t", TYPES)
@pytest.mark.parametrize("kernel, shape, out", [(unpack_rows, (32, 8), (32, 8)), (unpack_cols, (4, 64), (4, 64))],
                         ids=["rows", "cols"])  # fmt: skip
def test_every_code_bit_identical(t: str, kernel, shape, out) -> None:  # noqa: ANN001
    dt = lowbit.dtype(t)
    per = 32 // dt.bits
    w = _words(t, shape[0] * shape[1]).reshape(shape)
    oshape = (out[0], out[1] * per) if kernel is unpack_rows else (out[0] * per, out[1])
    o1, o2 = np.full(oshape, np.nan, np.float16), np.full(oshape, np.nan, np.float16)
    kernel.interpret[(1,)](w, o1, T=dt)
    kernel[(1,)](w, o2, T=dt)
    np.testing.assert_array_equal(o2.view(np.uint16), o1.view(np.uint16))
    vals = np.asarray(dt.decode(np.arange(1 << dt.bits, dtype=np.uint64)), dtype=np.float64)
    assert set(np.unique(o1.astype(np.float64))) == set(vals)  # every code was there
    ptx = compile_program(kernel.specialize(T=dt), "sm_80").ptx
    assert "prmt.b32" in ptx and any(f"{op}.rn.f16x2" in ptx for op in ("fma", "sub", "add"))
    assert "cvt.rn.f16.u32" not in ptx and "cvt.rn.f16.s32" not in ptx
