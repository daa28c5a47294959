"""The DSL's compile-time behaviour: constexpr specialisation, folding, unrolling, inlining, launch binding."""

from __future__ import annotations

import numpy as np
import pytest

import lowbit
from lowbit.errors import LaunchError
from lowbit.ir import ops as O
from lowbit.ir.printer import print_program


def _ops(prog) -> list[type]:
    out = []

    def walk(body):
        for op in body:
            out.append(type(op))
            if isinstance(op, O.For):
                walk(op.body)
            if isinstance(op, O.If):
                walk(op.then_body)
                walk(op.else_body)

    walk(prog.body)
    return out


@lowbit.kernel
def decode_words(w_ptr: lowbit.ptr("uint32"), out_ptr: lowbit.ptr("f32"), R: lowbit.int32,
                 WT: lowbit.constexpr = lowbit.uint4, BR: lowbit.constexpr = 8, WORDS: lowbit.constexpr = 2):  # fmt: skip
    """One kernel for every format: the element type is a constexpr."""
    per_word = 32 // WT.bits
    r0 = lowbit.program_id(0) * BR
    words = lowbit.load(lowbit.global_view(w_ptr, (R, WORDS)), (r0, 0), (BR, WORDS))
    codes = lowbit.view(words, WT)
    out = lowbit.global_view(out_ptr, (R, WORDS * per_word))
    lowbit.store(out, lowbit.cast(codes, lowbit.f32), (r0, 0))


@pytest.mark.parametrize("name", ["uint4", "int4", "e2m1", "nf4", "uint2", "int8", "e4m3fn", "e5m2"])
def test_one_kernel_serves_every_format(name: str) -> None:
    dt = lowbit.dtype(name)
    rng = np.random.default_rng(1)
    rows, per = 13, 32 // dt.bits
    codes = rng.integers(0, 1 << dt.bits, size=(rows, 2 * per)).astype(np.uint8)
    if name == "e4m3fn":
        codes[codes & 0x7F == 0x7F] = 0  # keep NaN codes out: NaN != NaN in the comparison
    if name == "e5m2":
        codes[(codes & 0x7C) == 0x7C] = 0
    words = lowbit.pack(codes, dt.bits, axis=1)
    out = np.full((rows, 2 * per), np.nan, np.float32)
    decode_words.interpret[(-(-rows // 8),)](words, out, rows, WT=dt)
    np.testing.assert_array_equal(out, dt.decode(codes).astype(np.float32))


def test_specialisation_is_cached_per_constexpr_set() -> None:
    p1 = decode_words.specialize(WT=lowbit.uint4)
    assert decode_words.specialize() is p1  # the default is uint4
    p2 = decode_words.specialize(WT=lowbit.int4)
    assert p2 is not p1
    assert 'WT="uint4"' in print_program(p1) and 'WT="int4"' in print_program(p2)
    # Runtime sizes stay runtime: R is a parameter of the program, not a constant.
    assert [p.name for p in p1.params] == ["w_ptr", "out_ptr", "R"]


@lowbit.kernel(num_warps=8)
def folding(x_ptr: lowbit.ptr("f32"), n: lowbit.int32, MODE: lowbit.constexpr = "double", UNROLL: lowbit.constexpr = 3):
    x = lowbit.global_view(x_ptr, (n,))
    t = lowbit.load(x, (0,), (8,))
    if MODE == "double":
        t = t * 2.0
    else:
        t = t + 100.0
    for i in lowbit.static_range(UNROLL):
        t = t + 1.0
    lowbit.store(x, t, (0,))


def test_constexpr_if_folds_and_static_range_unrolls() -> None:
    prog = folding.specialize()
    kinds = _ops(prog)
    assert O.If not in kinds and O.For not in kinds
    assert kinds.count(O.ElementwiseBinary) == 4  # one multiply + three unrolled adds
    assert prog.num_warps == 8
    x = np.arange(8, dtype=np.float32)
    folding.interpret[1](x, 8)
    np.testing.assert_array_equal(x, np.arange(8) * 2.0 + 3.0)
    y = np.arange(8, dtype=np.float32)
    folding.interpret[1](y, 8, MODE="add", UNROLL=1)
    np.testing.assert_array_equal(y, np.arange(8) + 101.0)


@lowbit.func
def scale_and_shift(t, s, shift=1.0):
    u = t * s
    return u + shift


@lowbit.kernel
def uses_func(x_ptr: lowbit.ptr("f32"), n: lowbit.int32, s: lowbit.f32):
    x = lowbit.global_view(x_ptr, (n,))
    lowbit.store(x, scale_and_shift(lowbit.load(x, (0,), (16,)), s, shift=0.5), (0,))


def test_func_is_inlined() -> None:
    assert O.Print not in _ops(uses_func.specialize())
    x = np.linspace(-1, 1, 16).astype(np.float32)
    want = x * np.float32(3.0) + np.float32(0.5)
    uses_func.interpret[1](x, 16, 3.0)
    np.testing.assert_array_equal(x, want)


@lowbit.kernel
def runtime_control(x_ptr: lowbit.ptr("int32"), n: lowbit.int32, flag: lowbit.int32):
    x = lowbit.global_view(x_ptr, (n,))
    k = 0
    acc = lowbit.zeros((4,), lowbit.int32)
    for i in range(1, n, 2):
        k += i
        acc = acc + i
    if flag > 0:
        acc = acc * 10
        k = k - 1
    else:
        k = k + 1
    lowbit.store(x, acc + k, (0,))


@pytest.mark.parametrize("n, flag", [(9, 1), (9, 0), (1, 1), (6, -3)])
def test_runtime_loops_and_ifs(n: int, flag: int) -> None:
    kinds = _ops(runtime_control.specialize())
    assert O.For in kinds and O.If in kinds
    x = np.full(9, -7, np.int32)
    runtime_control.interpret[1](x, 4, flag) if n < 4 else runtime_control.interpret[1](x, n, flag)
    nn = max(n, 4)
    k = sum(range(1, nn, 2))
    acc = k
    if flag > 0:
        acc, k = acc * 10, k - 1
    else:
        k = k + 1
    np.testing.assert_array_equal(x[:4], np.full(4, acc + k))
    assert (x[4:] == -7).all()


@lowbit.kernel
def printer(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
    t = lowbit.load(lowbit.global_view(x_ptr, (n,)), (0,), (2,))
    lowbit.print("tile:", t, n)


def test_print_runs_in_the_interpreter(capsys) -> None:
    printer.interpret[(1, 2)](np.array([1.5, 2.5], np.float32), 2)
    out = capsys.readouterr().out.splitlines()
    assert out == ["[pid 0,0,0] tile: [1.5 2.5] 2", "[pid 0,1,0] tile: [1.5 2.5] 2"]


def test_launch_rules() -> None:
    x = np.zeros(8, np.float32)
    with pytest.raises(LaunchError, match=r"launch printer with a grid: printer\[grid\]"):
        printer(x, 8)
    with pytest.raises(LaunchError, match="the grid must be a positive int"):
        printer[(0,)](x, 8)
    with pytest.raises(LaunchError, match="argument 'x_ptr': array dtype float64 does not hold f32"):
        printer[1](np.zeros(8), 8)
    with pytest.raises(LaunchError, match="argument 'n': 2147483648 does not fit in int32"):
        printer[1](x, 2**31)
    with pytest.raises(LaunchError, match="has no parameter 'm'"):
        printer[1](x, n=8, m=3)
    with pytest.raises(LaunchError, match="constexpr 'B' has no value and no default"):

        @lowbit.kernel
        def needs_b(x_ptr: lowbit.ptr("f32"), B: lowbit.constexpr):
            pass

        needs_b[1](x)


def test_callable_grid_and_interpret_function() -> None:
    @lowbit.kernel
    def fill(x_ptr: lowbit.ptr("int32"), n: lowbit.int32, BLOCK: lowbit.constexpr = 4):
        pid = lowbit.program_id(0)
        x = lowbit.global_view(x_ptr, (n,))
        lowbit.store(x, lowbit.full((BLOCK,), pid, lowbit.int32), (pid * BLOCK,))

    x = np.full(10, -1, np.int32)
    fill[lambda meta: (-(-meta["n"] // meta["BLOCK"]),)](x, 10)
    np.testing.assert_array_equal(x, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    y = np.full(10, -1, np.int32)
    lowbit.interpret(fill, 5, y, 10, BLOCK=2)
    np.testing.assert_array_equal(y, np.arange(10) // 2)


def test_pointer_dtype_from_a_constexpr() -> None:
    @lowbit.kernel
    def twice(x_ptr: lowbit.ptr(T), n: lowbit.int32, T: lowbit.constexpr = lowbit.f32):  # noqa: F821
        x = lowbit.global_view(x_ptr, (n,))
        t = lowbit.load(x, (0,), (8,))
        lowbit.store(x, t + t, (0,))

    for dt, np_dt in ((lowbit.f32, np.float32), (lowbit.f16, np.float16), (lowbit.int32, np.int32)):
        x = np.arange(5).astype(np_dt)
        twice[1](x, 5, T=dt)
        np.testing.assert_array_equal(x, (np.arange(5) * 2).astype(np_dt))


def test_closure_variables_are_visible() -> None:
    block = 4
    offset = 2.5

    @lowbit.kernel
    def shifted(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        x = lowbit.global_view(x_ptr, (n,))
        lowbit.store(x, lowbit.load(x, (0,), (block,)) + offset, (0,))

    x = np.zeros(3, np.float32)
    shifted[1](x, 3)
    np.testing.assert_array_equal(x, [2.5, 2.5, 2.5])


def test_layouts_can_be_given_and_travel_through_the_text_form() -> None:
    from lowbit.ir.parser import parse
    from lowbit.layout import local, product, row_major, spatial

    reg = product(local(2, 1), spatial(8, 16))  # 128 threads, 2 rows each: covers [16, 16]
    smem = row_major(16, 32)

    @lowbit.kernel
    def given(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        x = lowbit.global_view(x_ptr, (n, n))
        t = lowbit.load(x, (0, 0), (16, 16), layout=reg)
        buf = lowbit.shared(lowbit.f32, (16, 32), layout=smem)
        u = lowbit.load(x, (0, 0), (16, 16))  # left for inference
        lowbit.store(x, t + u, (0, 0))
        lowbit.free(buf)

    prog = given.specialize()
    text = print_program(prog)
    assert f"tile<f32, [16, 16], `{reg.to_text()}`>" in text and f"shared<f32, [16, 32], `{smem.to_text()}`>" in text
    assert text.count("`") == 4  # only the two given layouts are printed
    again = parse(text)
    assert print_program(again) == text
    loads = [op for op in again.body if isinstance(op, O.LoadGlobal)]
    assert loads[0].result.type.layout == reg and loads[1].result.type.layout is None
    x = np.arange(256, dtype=np.float32).reshape(16, 16)
    want = 2 * x
    given.interpret[1](x, 16)
    np.testing.assert_array_equal(x, want)  # a layout changes where data lives, never what it means
