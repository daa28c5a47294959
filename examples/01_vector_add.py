"""01 -- vector add: one block adds one BLOCK-long slice of two vectors.

The idea: a kernel is written for ONE block on whole tiles.  ``global_view``
wraps a pointer with its runtime length ``n``; loads and stores outside it
are masked automatically, so n need not be a multiple of BLOCK.

    python examples/01_vector_add.py   # the interpreter, then the compiled PTX on the emulator
"""

import sys

import numpy as np

import lowbit


@lowbit.kernel
def vector_add(
    x_ptr: lowbit.ptr("f32"),
    y_ptr: lowbit.ptr("f32"),
    out_ptr: lowbit.ptr("f32"),
    n: lowbit.int32,
    BLOCK: lowbit.constexpr = 128,
):
    start = lowbit.program_id(0) * BLOCK
    x = lowbit.load(lowbit.global_view(x_ptr, (n,)), (start,), (BLOCK,))
    y = lowbit.load(lowbit.global_view(y_ptr, (n,)), (start,), (BLOCK,))
    lowbit.store(lowbit.global_view(out_ptr, (n,)), x + y, (start,))


def _launcher(kernel, backend: str):
    """``kernel[grid]`` compiles to PTX and runs it on lowbit's emulator; ``.interpret`` is the numpy reference."""
    return kernel.interpret if backend == "interpreter" else kernel


def run(n: int = 1000, block: int = 128, seed: int = 0, backend: str = "emulator") -> bool:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, dtype=np.float32)  # poisoned: every element must be written
    _launcher(vector_add, backend)[(-(-n // block),)](x, y, out, n, BLOCK=block)
    # One f32 addition is correctly rounded: exactly the float64 sum rounded to f32.
    expected = (x.astype(np.float64) + y.astype(np.float64)).astype(np.float32)
    return bool(np.array_equal(out, expected))


if __name__ == "__main__":
    ok_ref = run(backend="interpreter")
    print(f"vector_add on the reference interpreter matches numpy: {ok_ref}")
    ok = run()
    print(f"vector_add as PTX on the emulator matches numpy: {ok}")
    sys.exit(0 if ok and ok_ref else 1)
