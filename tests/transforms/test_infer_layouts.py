"""Layout inference: before/after text, how many conversions programs need, user layouts honoured or refused.

The expected texts are reviewed snapshots of ``specialize`` + ``infer_layouts``;
the conversion counts are what inference must not exceed (every one is a data
movement between threads, made explicit where a producer's and a consumer's
layouts really differ).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import lowbit
from lowbit.errors import CodegenError
from lowbit.ir import ops as O
from lowbit.ir import parse, print_program
from lowbit.ir.rewrite import walk
from lowbit.layout import register as R
from lowbit.transforms import Options, infer_layouts, lower_vm, select_instructions, specialize, verify_layouts

ROOT = Path(__file__).resolve().parents[2]


def _example(name: str) -> lowbit.Kernel:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return next(v for v in vars(m).values() if isinstance(v, lowbit.Kernel))


def _infer(prog):  # noqa: ANN001, ANN202
    out = infer_layouts.run(specialize.run(prog, Options()), Options())
    verify_layouts.verify(out, "inferred")
    return out


def _count(prog, cls) -> int:  # noqa: ANN001
    return sum(isinstance(op, cls) for op in walk(prog.body))


BEFORE = """kernel @k(%x_ptr: ptr<f32>, %y_ptr: ptr<f32>, %n: int32) num_warps=4 {
  %0 = program_id() {axis=0} : int32
  %1 = global_view(%x_ptr, [%n, 64], [64, 1]) : global<f32, 2>
  %2 = load_global(%1, [(%0 * 16), 0]) : tile<f32, [16, 64]>
  %3 = reduce(%2) {kind="max", axis=1} : tile<f32, [16, 1]>
  %4 = broadcast(%3) : tile<f32, [16, 64]>
  %5 = sub(%2, %4) : tile<f32, [16, 64]>
  %6 = global_view(%y_ptr, [%n, 64], [64, 1]) : global<f32, 2>
  store_global(%6, %5, [(%0 * 16), 0])
}
"""

# each thread holds 4 contiguous floats of 2 rows (16 threads per row, 8 row groups); the row max lands
# replicated over the row's 16 threads, so the broadcast back and the subtraction need no conversion: one
# layout carries the whole program
AFTER = """kernel @k(%x_ptr: ptr<f32>, %y_ptr: ptr<f32>, %n: int32) num_warps=4 {
  %0 = program_id() {axis=0} : int32
  %1 = global_view(%x_ptr, [%n, 64], [64, 1]) : global<f32, 2>
  %2 = load_global(%1, [(%0 * 16), 0]) : tile<f32, [16, 64], `R[2.8,16.4|t=m1.m2|l=m0.m3]`>
  %3 = reduce(%2) {kind="max", axis=1} : tile<f32, [16, 1], `R[2.8,1|t=m1.r16|l=m0]`>
  %4 = broadcast(%3) : tile<f32, [16, 64], `R[2.8,16.4|t=m1.m2|l=m0.m3]`>
  %5 = sub(%2, %4) : tile<f32, [16, 64], `R[2.8,16.4|t=m1.m2|l=m0.m3]`>
  %6 = global_view(%y_ptr, [%n, 64], [64, 1]) : global<f32, 2>
  store_global(%6, %5, [(%0 * 16), 0])
}
"""


def test_before_after_row_softmax_shift() -> None:
    after = _infer(parse(BEFORE))
    assert print_program(after) == AFTER
    assert print_program(parse(AFTER)) == AFTER  # the layouts parse back
    assert _count(after, O.ConvertLayout) == 0


@lowbit.kernel
def _two_user_layouts(x_ptr: lowbit.ptr("f32"), y_ptr: lowbit.ptr("f32")):
    a = lowbit.load(lowbit.global_view(x_ptr, (16, 32)), (0, 0), (16, 32), layout=R.product(R.spatial(16, 8), R.local(1, 4)))
    b = lowbit.load(lowbit.global_view(y_ptr, (16, 32)), (0, 0), (16, 32))  # left to inference
    lowbit.store(lowbit.global_view(y_ptr, (16, 32)), a + b, (0, 0))


@lowbit.kernel
def _conflicting_user_layouts(x_ptr: lowbit.ptr("f32"), y_ptr: lowbit.ptr("f32")):
    a = lowbit.load(lowbit.global_view(x_ptr, (16, 32)), (0, 0), (16, 32), layout=R.product(R.spatial(16, 8), R.local(1, 4)))
    b = lowbit.load(lowbit.global_view(y_ptr, (16, 32)), (0, 0), (16, 32), layout=R.product(R.spatial(8, 16), R.local(2, 2)))
    lowbit.store(lowbit.global_view(y_ptr, (16, 32)), a + b, (0, 0))  # E:conflict


@lowbit.kernel
def _wrong_threads(x_ptr: lowbit.ptr("f32")):
    a = lowbit.load(lowbit.global_view(x_ptr, (16, 32)), (0, 0), (16, 32), layout=R.product(R.spatial(8, 8), R.local(2, 4)))  # E:threads
    lowbit.store(lowbit.global_view(x_ptr, (16, 32)), a, (0, 0))


@lowbit.kernel
def _transpose_slice(x_ptr: lowbit.ptr("f32"), y_ptr: lowbit.ptr("f32")):
    x = lowbit.load(lowbit.global_view(x_ptr, (16, 32)), (0, 0), (16, 32))
    lowbit.store(lowbit.global_view(y_ptr, (8, 8)), lowbit.transpose(x)[4:12, 2:10], (0, 0))


@lowbit.kernel
def _column_sums(x_ptr: lowbit.ptr("f32"), y_ptr: lowbit.ptr("f32")):
    x = lowbit.load(lowbit.global_view(x_ptr, (64, 32)), (0, 0), (64, 32))
    lowbit.store(lowbit.global_view(y_ptr, (1, 32)), lowbit.reduce(x, 0, "sum", keepdims=True), (0, 0))


@lowbit.kernel
def _uint3_words(w_ptr: lowbit.ptr("uint32"), o_ptr: lowbit.ptr("int32")):
    w = lowbit.load(lowbit.global_view(w_ptr, (3, 16)), (0, 0), (3, 16))
    lowbit.store(lowbit.global_view(o_ptr, (32, 16)), lowbit.cast(lowbit.view(w, lowbit.uint3, axis=0), lowbit.int32), (0, 0))


def _line_of(fn, tag: str) -> int:  # noqa: ANN001
    import inspect

    lines, first = inspect.getsourcelines(fn.__wrapped__)
    return first + next(i for i, text in enumerate(lines) if f"# E:{tag}" in text)


# (program, convert_layout ops after inference, after instruction selection -- where shared routes are
# written out as VM ops, so the count is of the conversions that stay register or shuffle moves)
COUNTS = [
    (lambda: _example("01_vector_add").specialize(), 0, 0),
    (lambda: _example("02_uint4_cast").specialize(), 0, 0),
    # on tensor cores: A and B loaded coalesced and converted to their mma fragments (through shared memory,
    # read with ldmatrix); the W4A16 dot interleaves N (its B is unpacked in registers), so each thread's words
    # of a row are adjacent: they load, gathered, straight into registers 16 bytes at a time, and C stores
    # straight from the accumulator
    (lambda: _example("03_matmul_f16").specialize(BM=64, BN=64, BK=32), 2, 0),
    (lambda: _example("04_w4a16_matmul").specialize(BM=16, BN=128, BK=128), 1, 0),
    (lambda: parse(BEFORE), 0, 0),
    (lambda: _two_user_layouts.specialize(), 0, 0),  # b is free: it loads straight into the user's layout of a
    (lambda: _transpose_slice.specialize(), 0, 0),  # the slice is not register-local: explicit shared ops
    (lambda: _column_sums.specialize(), 0, 1),  # the sum axis spans warps: converted to keep it in warps
    (lambda: _uint3_words.specialize(), 0, 0),  # words load in whole groups of 3 per thread
]  # fmt: skip


@pytest.mark.parametrize("i", range(len(COUNTS)))
def test_conversion_counts(i: int) -> None:
    make, n_infer, n_select = COUNTS[i]
    prog = make()
    inferred = _infer(prog)
    assert _count(inferred, O.ConvertLayout) == n_infer, print_program(inferred)
    selected = select_instructions.run(inferred, Options())
    verify_layouts.verify(selected, "selected")
    got = _count(selected, O.ConvertLayout)
    assert got <= n_select, print_program(selected)
    assert all(op.route for op in walk(selected.body) if isinstance(op, O.ConvertLayout))


def test_inference_is_deterministic() -> None:
    prog = _example("04_w4a16_matmul").specialize(BM=16, BN=128, BK=128)
    assert print_program(lower_vm(prog, Options())) == print_program(lower_vm(prog, Options()))


def test_a_conflicting_user_layout_is_an_error_at_its_line() -> None:
    with pytest.raises(CodegenError) as exc:
        lowbit.compile(_conflicting_user_layouts)
    msg = str(exc.value)
    assert f":{_line_of(_conflicting_user_layouts, 'conflict')}:" in msg, msg
    assert "explicitly with lowbit.convert_layout" in msg


def test_a_user_layout_for_the_wrong_block_is_an_error_at_its_line() -> None:
    with pytest.raises(CodegenError) as exc:
        lowbit.compile(_wrong_threads)
    msg = str(exc.value)
    assert f":{_line_of(_wrong_threads, 'threads')}:" in msg and "128 threads (num_warps=4)" in msg, msg
    lowbit.compile(_wrong_threads, num_warps=2)  # 64 threads: the same layout is right there


def test_user_layouts_are_honoured() -> None:
    lay = R.product(R.spatial(16, 8), R.local(1, 4))
    out = _infer(_two_user_layouts.specialize())
    loads = [op for op in walk(out.body) if isinstance(op, O.LoadGlobal)]
    assert loads[0].result.type.layout == lay and loads[1].result.type.layout == lay
    add = next(op for op in walk(out.body) if isinstance(op, O.ElementwiseBinary))
    assert add.a.type.layout == add.b.type.layout == lay
