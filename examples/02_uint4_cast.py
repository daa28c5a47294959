"""02 -- uint4 -> f16: read packed 4-bit codes, unpack them with a view, convert with a cast.

The idea: low-bit data travels as uint32 words (``lowbit.pack`` puts code i
in bits [4i, 4i+4) of the word stream, LSB first).  Inside the kernel a
[BR, BC/8] uint32 tile *viewed* as uint4 along its last axis is the
[BR, BC] tile of codes -- a reinterpretation, not a computation -- and
``cast`` turns codes into f16 values.  Here out = (code - 8) * scale.

    python examples/02_uint4_cast.py
"""

import sys

import numpy as np

import lowbit


@lowbit.kernel
def uint4_to_f16(
    words_ptr: lowbit.ptr("uint32"),
    out_ptr: lowbit.ptr("f16"),
    R: lowbit.int32,
    C: lowbit.int32,
    scale: lowbit.f32,
    BR: lowbit.constexpr = 16,
    BC: lowbit.constexpr = 64,
):
    lowbit.static_assert(BC % 8 == 0, "BC must be a multiple of 8 (codes per word)")
    r0 = lowbit.program_id(0) * BR
    c0 = lowbit.program_id(1) * BC
    words = lowbit.global_view(words_ptr, (R, lowbit.cdiv(C, 8)))
    out = lowbit.global_view(out_ptr, (R, C))
    w = lowbit.load(words, (r0, c0 // 8), (BR, BC // 8))
    codes = lowbit.view(w, lowbit.uint4)  # [BR, BC], along the last axis
    values = (lowbit.cast(codes, lowbit.f32) - 8.0) * scale  # f32 tile: the runtime scale is f32
    lowbit.store(out, lowbit.cast(values, lowbit.f16), (r0, c0))


def _launcher(kernel, backend: str):
    """``kernel[grid]`` compiles to PTX and runs it on lowbit's emulator; ``.interpret`` is the numpy reference."""
    return kernel.interpret if backend == "interpreter" else kernel


def run(rows: int = 37, cols: int = 100, br: int = 16, bc: int = 64, seed: int = 1, backend: str = "emulator") -> bool:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 16, size=(rows, cols), dtype=np.uint8)
    words = lowbit.pack(codes, 4, axis=-1)  # (rows, ceil(cols / 8)) uint32
    out = np.full((rows, cols), np.nan, dtype=np.float16)
    scale = 0.25
    grid = (-(-rows // br), -(-cols // bc))
    _launcher(uint4_to_f16, backend)[grid](words, out, rows, cols, scale, BR=br, BC=bc)
    expected = (codes.astype(np.float64) - 8.0) * scale  # exact in f16: an integer path
    return bool(np.array_equal(out.astype(np.float64), expected))


if __name__ == "__main__":
    ok_ref = run(backend="interpreter")
    print(f"uint4_to_f16 on the reference interpreter matches numpy exactly: {ok_ref}")
    ok = run()
    print(f"uint4_to_f16 as PTX on the emulator matches numpy exactly: {ok}")
    sys.exit(0 if ok and ok_ref else 1)
