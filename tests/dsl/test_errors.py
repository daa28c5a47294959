"""User mistakes in kernels: each is a DSLError at the exact line:col, with a message, and no compiler frames.

Expected lines are found by a marker comment on the offending line (``# E:name``)
so the tests survive edits above them; columns are exact (1-based).
"""

from __future__ import annotations

import inspect
import traceback
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit.errors import DSLError, LaunchError
from tests.conftest import marker_line

THIS = Path(__file__).resolve()
LINES = THIS.read_text().splitlines()
LOWBIT_DIR = Path(lowbit.__file__).resolve().parent


def line_of(marker: str) -> int:
    return marker_line(LINES, marker)


def launch_error(kernel, *args, grid=1, **kwargs) -> Exception:
    x = np.zeros(16, dtype=np.float32)
    with pytest.raises((DSLError, LaunchError)) as info:
        kernel[grid](*(args or (x, 4)), **kwargs)
    return info.value


def check(err: Exception, marker: str, col: int, message: str) -> None:
    assert Path(err.filename).resolve() == THIS
    assert (err.line, err.col) == (line_of(marker), col), str(err)
    assert err.reason == message
    text = str(err)
    assert text.startswith(f"{err.filename}:{err.line}:{err.col}: {message}")
    # The source line and a caret under the column follow the message.
    src = LINES[err.line - 1]
    assert src.strip() in text
    caret_line = text.splitlines()[-1]
    assert caret_line.index("^") - 4 == (err.col - 1) - (len(src) - len(src.lstrip()))
    # No lowbit compiler frames: only the public launch entry point may appear, once.
    frames = [Path(f.filename).resolve() for f in traceback.extract_tb(err.__traceback__)]
    internal = [f for f in frames if LOWBIT_DIR in f.parents]
    assert all(f.name == "launch.py" for f in internal) and len(internal) <= 1, frames
    assert err.__cause__ is None and err.__suppress_context__


def test_unsupported_syntax() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        while n > 0:  # E:while
            pass

    check(launch_error(k), "while", 9, "unsupported syntax: while loop (use for ... in range(...))")


def test_undefined_name() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        y = n + undefined_thing  # E:undefined  # noqa: F821

    check(launch_error(k), "undefined", 17, "undefined name 'undefined_thing'")


def test_wrong_launch_arity() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32, BLOCK: lowbit.constexpr = 4):  # E:arity
        pass

    x = np.zeros(4, np.float32)
    err = launch_error(k, x)
    check(err, "arity", 5, "k takes 2 arguments (x_ptr, n); missing 'n'")
    assert isinstance(err, LaunchError)
    err = launch_error(k, x, 1, 2, 3)
    assert err.reason == "k takes 2 arguments (x_ptr, n) and constexprs (BLOCK), but 4 were given"


def test_dtype_mismatch_in_binary_op() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        a = lowbit.zeros((4,), lowbit.f16)
        b = lowbit.zeros((4,), lowbit.int32)
        c = a + b  # E:dtype

    check(launch_error(k), "dtype", 13, "'+': cannot combine f16 and int32 in arithmetic; cast one of them "
          "explicitly (integers never meet floats implicitly, and formats of at most 8 bits must be cast "
          "to f16/bf16/f32 first)")  # fmt: skip


def test_dot_shape_mismatch() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        a = lowbit.zeros((16, 8), lowbit.f16)
        b = lowbit.zeros((16, 8), lowbit.f16)
        c = lowbit.dot(a, b)  # E:dot

    check(launch_error(k), "dot", 13, "dot: shapes do not chain: a is [16, 8] but b is [16, 8] (8 != 16)")


def test_runtime_value_as_shape() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        t = lowbit.zeros((n, 16), lowbit.f32)  # E:shape

    check(launch_error(k), "shape", 13, "zeros shape must be a constexpr int, got a runtime int32 scalar 'n'")


def test_loop_carried_value_changes_type() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        acc = lowbit.zeros((8, 8), lowbit.f32)
        for i in range(n):  # E:carried
            acc = lowbit.cast(acc, lowbit.f16)

    check(launch_error(k), "carried", 9, "loop-carried value 'acc' changes type: a tile<f32, [8, 8]> before "
          "the loop body, a tile<f16, [8, 8]> after it")  # fmt: skip


def test_store_through_a_non_pointer() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        t = lowbit.zeros((4,), lowbit.f32)
        lowbit.store(n, t, (0,))  # E:store

    check(launch_error(k), "store", 9, "store: the destination must be a global view or a shared buffer, "
          "got a runtime int32 scalar 'n'")  # fmt: skip


def test_mask_shape_mismatch() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        x = lowbit.global_view(x_ptr, (n, n))
        m = lowbit.arange(0, 3) < n
        t = lowbit.load(x, (0, 0), (4, 4), mask=m)  # E:mask

    check(launch_error(k), "mask", 13, "load: mask shape [3] does not match the tile shape [4, 4]")


def helper(v):
    return v + 1


def test_calling_a_plain_python_function() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        m = helper(n)  # E:plainfn

    check(launch_error(k), "plainfn", 13, "calling a plain Python function 'helper'; decorate it with "
          "@lowbit.func to inline it into kernels")  # fmt: skip


def test_return_of_a_value() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        return n  # E:return

    check(launch_error(k), "return", 9, "a kernel cannot return a value; store results through a pointer "
          "with lowbit.store")  # fmt: skip


def test_view_to_incompatible_bit_count() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        w = lowbit.zeros((4, 1), lowbit.uint32)
        v = lowbit.view(w, lowbit.uint3)  # E:view

    check(launch_error(k), "view", 13, "view: 1 x uint32 (32 bits along axis 1) is not a whole number of "
          "uint3 (3-bit) elements")  # fmt: skip


def test_static_assert_failure() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32, BK: lowbit.constexpr = 12):
        lowbit.static_assert(BK % 8 == 0, "BK must cover whole words")  # E:static

    check(launch_error(k), "static", 9, "static_assert failed: BK must cover whole words")


def test_if_on_a_tile() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        t = lowbit.arange(0, 4) < 2
        if t:  # E:iftile
            pass

    check(launch_error(k), "iftile", 9, "if condition must be a scalar, got a tile<bool, [4]>; use "
          "lowbit.where on tiles")  # fmt: skip


@lowbit.func
def bad_helper(t):
    return lowbit.cast(t, "no_such_type")  # E:infunc


def test_error_inside_a_func_points_into_the_func() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        y = bad_helper(lowbit.zeros((4,), lowbit.f32))

    err = launch_error(k)
    assert err.line == line_of("infunc") and err.col == 12
    assert err.reason.startswith("cast dtype: unknown dtype 'no_such_type'")


@lowbit.func
def two_args(a, b):
    return a + b


def test_func_called_with_wrong_arity() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        y = two_args(n)  # E:funcarity

    check(launch_error(k), "funcarity", 13, "two_args(): missing a required argument: 'b'")


def test_parameter_without_annotation() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n):  # E:annot
        pass

    check(launch_error(k), "annot", 37, "parameter 'n' needs an annotation: lowbit.ptr(dtype), a scalar "
          "dtype such as lowbit.int32, or lowbit.constexpr")  # fmt: skip


def test_builtin_called_with_unknown_keyword() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        t = lowbit.zeros((4,), lowbit.f32, colour=3)  # E:kw

    check(launch_error(k), "kw", 13, "lowbit.zeros(): got an unexpected keyword argument 'colour'")


def test_loop_local_name_used_after_the_loop() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        for i in range(n):
            inner = i * 2
        y = inner + 1  # E:local

    check(launch_error(k), "local", 13, "'inner' is defined only inside a loop or one branch of an if")


def test_errors_are_raised_also_by_specialize_and_interpret() -> None:
    @lowbit.kernel
    def k(x_ptr: lowbit.ptr("f32"), n: lowbit.int32):
        y = n + undefined_thing  # E:undefined2  # noqa: F821

    with pytest.raises(DSLError) as info:
        k.specialize()
    assert info.value.line == line_of("undefined2")
    with pytest.raises(DSLError):
        lowbit.interpret(k, 1, np.zeros(4, np.float32), 3)
    assert inspect.isfunction(helper)
