"""Bad DSL programs beyond tests/dsl/test_errors.py: each a DSLError at its exact file:line:col with its message.

Generated once from a compact table (then kept as code); each kernel marks its offending line with
``# E:name``.  ``specialize()`` builds the VM program only, so nothing here compiles to PTX.  The
annotation cases at the end check ``lowbit.ptr("f17")`` and friends: Python evaluates annotations when
the ``def`` runs, and that must not raise without a kernel line.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
import pytest

import lowbit
from lowbit.errors import DSLError
from tests.conftest import marker_line

THIS = Path(__file__).resolve()
LINES = THIS.read_text().splitlines()
LOWBIT_DIR = Path(lowbit.__file__).resolve().parent


def line_of(marker: str) -> int:
    return marker_line(LINES, marker)


@lowbit.func
def recursive(v):
    return recursive(v)  # E:recursion


@lowbit.kernel
def k_try_stmt(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    try:  # E:try_stmt
        pass
    except Exception:
        pass


@lowbit.kernel
def k_with_stmt(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    with open('f'):  # E:with_stmt
        pass


@lowbit.kernel
def k_lambda_expr(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    f = lambda a: a + 1  # E:lambda_expr


@lowbit.kernel
def k_nested_def(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    def inner(a):  # E:nested_def
        return a


@lowbit.kernel
def k_list_comprehension(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = [i for i in range(4)]  # E:list_comprehension


@lowbit.kernel
def k_global_stmt(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    global SOMETHING  # E:global_stmt


@lowbit.kernel
def k_yield_expr(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    yield n  # E:yield_expr


@lowbit.kernel
def k_del_stmt(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    del n  # E:del_stmt


@lowbit.kernel
def k_assert_stmt(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    assert n > 0  # E:assert_stmt


@lowbit.kernel
def k_raise_stmt(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    raise ValueError('no')  # E:raise_stmt


@lowbit.kernel
def k_break_stmt(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    for i in range(n):
        break  # E:break_stmt


@lowbit.kernel
def k_for_else(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    for i in range(n):  # E:for_else
        pass
    else:
        pass


@lowbit.kernel
def k_chained_compare(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = 0 < n < 4  # E:chained_compare


@lowbit.kernel
def k_star_args(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros(*(4,))  # E:star_args


@lowbit.kernel
def k_walrus(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    if (y := n) > 0:  # E:walrus
        pass


@lowbit.kernel
def k_fstring(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = f'{n}'  # E:fstring


@lowbit.kernel
def k_recursion(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = recursive(n)


@lowbit.kernel
def k_arange_runtime_stop(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.arange(0, n)  # E:arange_runtime_stop


@lowbit.kernel
def k_arange_empty(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.arange(4, 4)  # E:arange_empty


@lowbit.kernel
def k_zeros_without_shape(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros()  # E:zeros_without_shape


@lowbit.kernel
def k_zeros_negative_shape(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((-4,), lowbit.f32)  # E:zeros_negative_shape


@lowbit.kernel
def k_zeros_empty_shape(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((0, 4), lowbit.f32)  # E:zeros_empty_shape


@lowbit.kernel
def k_zeros_unknown_dtype(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), 'f17')  # E:zeros_unknown_dtype


@lowbit.kernel
def k_zeros_float_shape(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4.5,), lowbit.f32)  # E:zeros_float_shape


@lowbit.kernel
def k_tiles_of_different_shapes(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((4,), lowbit.f32)
    b = lowbit.zeros((8,), lowbit.f32)
    c = a + b  # E:tiles_of_different_shapes


@lowbit.kernel
def k_transposed_shapes(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((4, 8), lowbit.f32)
    b = lowbit.zeros((8, 4), lowbit.f32)
    c = a * b  # E:transposed_shapes


@lowbit.kernel
def k_dot_mixed_dtypes(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((16, 16), lowbit.f16)
    b = lowbit.zeros((16, 16), lowbit.int8)
    c = lowbit.dot(a, b)  # E:dot_mixed_dtypes


@lowbit.kernel
def k_dot_of_vectors(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((16,), lowbit.f16)
    c = lowbit.dot(a, a)  # E:dot_of_vectors


@lowbit.kernel
def k_dot_accumulator_shape(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((16, 16), lowbit.f16)
    acc = lowbit.zeros((8, 8), lowbit.f32)
    c = lowbit.dot(a, a, acc)  # E:dot_accumulator_shape


@lowbit.kernel
def k_dot_one_operand(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((16, 16), lowbit.f16)
    c = lowbit.dot(a)  # E:dot_one_operand


@lowbit.kernel
def k_cast_to_a_number(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((16,), lowbit.f16)
    c = lowbit.cast(a, 3)  # E:cast_to_a_number


@lowbit.kernel
def k_cast_to_a_runtime_value(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((16,), lowbit.f16)
    c = lowbit.cast(a, n)  # E:cast_to_a_runtime_value


@lowbit.kernel
def k_cast_to_unknown_dtype(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((16,), lowbit.f16)
    c = lowbit.cast(a, 'e9m9')  # E:cast_to_unknown_dtype


@lowbit.kernel
def k_view_without_dtype(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((4, 2), lowbit.uint32)
    c = lowbit.view(a)  # E:view_without_dtype


@lowbit.kernel
def k_reduce_axis_out_of_range(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((4, 2), lowbit.f32)
    c = lowbit.reduce(a, 5, 'sum')  # E:reduce_axis_out_of_range


@lowbit.kernel
def k_reduce_unknown_op(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((4, 2), lowbit.f32)
    c = lowbit.reduce(a, 0, 'median')  # E:reduce_unknown_op


@lowbit.kernel
def k_reduce_runtime_axis(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    a = lowbit.zeros((4, 2), lowbit.f32)
    c = lowbit.reduce(a, n, 'sum')  # E:reduce_runtime_axis


@lowbit.kernel
def k_program_id_axis_3(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    p = lowbit.program_id(3)  # E:program_id_axis_3


@lowbit.kernel
def k_program_id_runtime_axis(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    p = lowbit.program_id(n)  # E:program_id_runtime_axis


@lowbit.kernel
def k_load_offsets_rank(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    v = lowbit.global_view(x, (n, n))
    t = lowbit.load(v, (0,), (4, 4))  # E:load_offsets_rank


@lowbit.kernel
def k_load_runtime_shape(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    v = lowbit.global_view(x, (n,))
    t = lowbit.load(v, (0,), (n,))  # E:load_runtime_shape


@lowbit.kernel
def k_load_from_a_scalar(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.load(n, (0,), (4,))  # E:load_from_a_scalar


@lowbit.kernel
def k_store_int_into_float_view(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    v = lowbit.global_view(x, (n,))
    lowbit.store(v, lowbit.zeros((4,), lowbit.int32), (0,))  # E:store_int_into_float_view


@lowbit.kernel
def k_store_to_a_raw_pointer(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    lowbit.store(x, lowbit.zeros((4,), lowbit.f32), (0,))  # E:store_to_a_raw_pointer


@lowbit.kernel
def k_global_view_of_a_scalar(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    v = lowbit.global_view(n, (n,))  # E:global_view_of_a_scalar


@lowbit.kernel
def k_global_view_stride_count(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    v = lowbit.global_view(x, (n, n), strides=(1,))  # E:global_view_stride_count


@lowbit.kernel
def k_where_shapes(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    c = lowbit.arange(0, 4) < 2
    t = lowbit.where(c, lowbit.zeros((8,), lowbit.f32), lowbit.zeros((8,), lowbit.f32))  # E:where_shapes


@lowbit.kernel
def k_where_float_condition(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    z = lowbit.zeros((4,), lowbit.f32)
    t = lowbit.where(z, z, z)  # E:where_float_condition


@lowbit.kernel
def k_static_range_runtime_bound(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    for i in lowbit.static_range(n):  # E:static_range_runtime_bound
        pass


@lowbit.kernel
def k_for_over_a_list(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    for i in [1, 2]:  # E:for_over_a_list
        pass


@lowbit.kernel
def k_range_zero_step(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    for i in range(0, n, 0):  # E:range_zero_step
        pass


@lowbit.kernel
def k_range_float_bound(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    for i in range(0, 4.5):  # E:range_float_bound
        pass


@lowbit.kernel
def k_tile_element_index(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.f32)
    y = t[2]  # E:tile_element_index


@lowbit.kernel
def k_tile_item_assignment(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.f32)
    t[0] = 1.0  # E:tile_item_assignment


@lowbit.kernel
def k_unknown_tile_attribute(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.f32)
    y = t.foo  # E:unknown_tile_attribute


@lowbit.kernel
def k_unknown_builtin(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = lowbit.frobnicate(n)  # E:unknown_builtin


@lowbit.kernel
def k_shift_of_a_float_tile(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.f32)
    y = t << 2  # E:shift_of_a_float_tile


@lowbit.kernel
def k_and_on_tiles(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = (lowbit.arange(0, 4) < 2) and (n > 1)  # E:and_on_tiles


@lowbit.kernel
def k_string_operand(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = n + 'a'  # E:string_operand


@lowbit.kernel
def k_shared_unknown_dtype(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    s = lowbit.shared('f17', (4,))  # E:shared_unknown_dtype


@lowbit.kernel
def k_shared_runtime_shape(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    s = lowbit.shared(lowbit.f32, (n,))  # E:shared_runtime_shape


@lowbit.kernel
def k_reshape_element_count(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.reshape(lowbit.zeros((4, 4), lowbit.f32), (3, 5))  # E:reshape_element_count


@lowbit.kernel
def k_permute_repeated_axis(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.permute(lowbit.zeros((4, 4), lowbit.f32), (0, 0))  # E:permute_repeated_axis


@lowbit.kernel
def k_broadcast_incompatible(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.broadcast(lowbit.zeros((4,), lowbit.f32), (3,))  # E:broadcast_incompatible


@lowbit.kernel
def k_expand_dims_axis(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.expand_dims(lowbit.zeros((4,), lowbit.f32), 5)  # E:expand_dims_axis


@lowbit.kernel
def k_lookup_float_index(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    z = lowbit.zeros((4,), lowbit.f32)
    t = lowbit.lookup(z, z)  # E:lookup_float_index


@lowbit.kernel
def k_atomic_into_a_scalar(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    lowbit.atomic_add(n, lowbit.zeros((4,), lowbit.f32), (0,))  # E:atomic_into_a_scalar


@lowbit.kernel
def k_fma_two_operands(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    z = lowbit.zeros((4,), lowbit.f32)
    t = lowbit.fma(z, z)  # E:fma_two_operands


@lowbit.kernel
def k_sqrt_of_integers(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.sqrt(lowbit.zeros((4,), lowbit.int32))  # E:sqrt_of_integers


@lowbit.kernel
def k_static_assert_runtime(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    lowbit.static_assert(n > 0, 'positive')  # E:static_assert_runtime


@lowbit.kernel
def k_constant_too_wide_for_int32(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = n + (1 << 40)  # E:constant_too_wide_for_int32


@lowbit.kernel
def k_constant_too_wide_for_uint4_tile(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.uint4)
    y = t + 20  # E:constant_too_wide_for_uint4_tile


@lowbit.kernel
def k_fill_value_out_of_range(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.full((4,), 300, lowbit.uint8)  # E:fill_value_out_of_range


@lowbit.kernel
def k_float_constant_with_int_tile(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.int32)
    y = t * 0.5  # E:float_constant_with_int_tile


@lowbit.kernel
def k_augmented_assignment_dtype(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.f32)
    t += lowbit.zeros((4,), lowbit.int32)  # E:augmented_assignment_dtype


@lowbit.kernel
def k_constexpr_division_by_zero(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = B // 0  # E:constexpr_division_by_zero


@lowbit.kernel
def k_integer_true_division(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    y = n / 2  # E:integer_true_division


@lowbit.kernel
def k_float_floor_division(x: lowbit.ptr("f32"), n: lowbit.int32, B: lowbit.constexpr = 4):
    t = lowbit.zeros((4,), lowbit.f32)
    y = t // 2.0  # E:float_floor_division


CASES = [
    (k_try_stmt, 'try_stmt', 5, 'unsupported syntax: try statement'),
    (k_with_stmt, 'with_stmt', 5, 'unsupported syntax: with statement'),
    (k_lambda_expr, 'lambda_expr', 9, 'unsupported syntax: lambda'),
    (k_nested_def, 'nested_def', 5, 'unsupported syntax: nested function definition'),
    (k_list_comprehension, 'list_comprehension', 9, 'unsupported syntax: list comprehension'),
    (k_global_stmt, 'global_stmt', 5, 'unsupported syntax: global statement'),
    (k_yield_expr, 'yield_expr', 5, 'unsupported syntax: yield'),
    (k_del_stmt, 'del_stmt', 5, 'unsupported syntax: del statement'),
    (k_assert_stmt, 'assert_stmt', 5, 'unsupported syntax: assert statement (use lowbit.static_assert)'),
    (k_raise_stmt, 'raise_stmt', 5, 'unsupported syntax: raise statement'),
    (k_break_stmt, 'break_stmt', 9, 'unsupported syntax: break'),
    (k_for_else, 'for_else', 5, 'unsupported syntax: for ... else'),
    (k_chained_compare, 'chained_compare', 9, 'unsupported syntax: chained comparison'),
    (k_star_args, 'star_args', 9, 'unsupported syntax: *args / **kwargs in a call'),
    (k_walrus, 'walrus', 9, 'unsupported syntax: assignment expression'),
    (k_fstring, 'fstring', 9, 'unsupported syntax: f-string'),
    (k_recursion, 'recursion', 12, '@lowbit.func calls nest more than 32 deep (recursion?)'),
    (k_arange_runtime_stop, 'arange_runtime_stop', 9, "arange stop must be a constexpr int, got a runtime int32 scalar 'n'"),
    (k_arange_empty, 'arange_empty', 9, 'arange: empty range [4, 4)'),
    (k_zeros_without_shape, 'zeros_without_shape', 9, "lowbit.zeros(): missing a required argument: 'shape'"),
    (k_zeros_negative_shape, 'zeros_negative_shape', 9, 'zeros shape must be positive constexpr ints, got [-4]'),
    (k_zeros_empty_shape, 'zeros_empty_shape', 9, 'zeros shape must be positive constexpr ints, got [0, 4]'),
    (k_zeros_unknown_dtype, 'zeros_unknown_dtype', 9, "zeros dtype: unknown dtype 'f17': did you mean 'f16'?"),
    (k_zeros_float_shape, 'zeros_float_shape', 9, 'zeros shape must be an int, got the constant 4.5'),
    (k_tiles_of_different_shapes, 'tiles_of_different_shapes', 9, 'shapes [4] and [8] do not broadcast'),
    (k_transposed_shapes, 'transposed_shapes', 9, 'shapes [4, 8] and [8, 4] do not broadcast'),
    (k_dot_mixed_dtypes, 'dot_mixed_dtypes', 9, 'dot: a is f16 but b is int8; cast one of them'),
    (k_dot_of_vectors, 'dot_of_vectors', 9, 'dot: operands must be 2-D tiles, got [16] and [16]'),
    (k_dot_accumulator_shape, 'dot_accumulator_shape', 9, 'dot: accumulator is [8, 8] but a @ b is [16, 16]'),
    (k_dot_one_operand, 'dot_one_operand', 9, "lowbit.dot(): missing a required argument: 'b'"),
    (k_cast_to_a_number, 'cast_to_a_number', 9, 'cast dtype must be a dtype, got the constant 3'),
    (k_cast_to_a_runtime_value, 'cast_to_a_runtime_value', 9, "cast dtype must be a dtype, got a runtime int32 scalar 'n'"),
    (k_cast_to_unknown_dtype, 'cast_to_unknown_dtype', 9, "cast dtype: unknown dtype 'e9m9'"),
    (k_view_without_dtype, 'view_without_dtype', 9, "lowbit.view(): missing a required argument: 'dtype'"),
    (k_reduce_axis_out_of_range, 'reduce_axis_out_of_range', 9, 'reduce: axis 5 is out of range for a rank-2 tile'),
    (k_reduce_unknown_op, 'reduce_unknown_op', 9, "reduce: op must be one of sum, max, min, got 'median'"),
    (k_reduce_runtime_axis, 'reduce_runtime_axis', 9, "reduce axis must be a constexpr int, got a runtime int32 scalar 'n'"),
    (k_program_id_axis_3, 'program_id_axis_3', 9, 'axis must be 0, 1 or 2 and the result int32 (axis=3)'),
    (k_program_id_runtime_axis, 'program_id_runtime_axis', 9, "axis must be a constexpr int, got a runtime int32 scalar 'n'"),
    (k_load_offsets_rank, 'load_offsets_rank', 9, 'load: 1 offsets for a rank-2 tensor'),
    (k_load_runtime_shape, 'load_runtime_shape', 9, "load shape must be a constexpr int, got a runtime int32 scalar 'n'"),
    (k_load_from_a_scalar, 'load_from_a_scalar', 9, "load: the source must be a global view or a shared buffer, got a runtime int32 scalar 'n'"),
    (k_store_int_into_float_view, 'store_int_into_float_view', 5, 'store: a int32 tile into global<f32, 1>; use lowbit.cast(x, f32)'),
    (k_store_to_a_raw_pointer, 'store_to_a_raw_pointer', 5, 'store: the destination must be a global view or a shared buffer, got a ptr<f32>'),
    (k_global_view_of_a_scalar, 'global_view_of_a_scalar', 9, "global_view: the base must be a pointer parameter, got a runtime int32 scalar 'n'"),
    (k_global_view_stride_count, 'global_view_stride_count', 9, 'global_view: 2 extents but 1 strides'),
    (k_where_shapes, 'where_shapes', 9, 'shapes [4] and [8] do not broadcast'),
    (k_where_float_condition, 'where_float_condition', 9, 'where: the condition must be a bool tile, got a tile<f32, [4]>'),
    (k_static_range_runtime_bound, 'static_range_runtime_bound', 5, "static_range bound must be a constexpr int, got a runtime int32 scalar 'n'"),
    (k_for_over_a_list, 'for_over_a_list', 5, 'for loops iterate over range(...) or lowbit.static_range(...)'),
    (k_range_zero_step, 'range_zero_step', 5, 'range step must be positive, got 0'),
    (k_range_float_bound, 'range_float_bound', 5, 'range bound must be an int32/int64 scalar, got the constant 4.5'),
    (k_tile_element_index, 'tile_element_index', 9, 'tiles are indexed with constexpr slices (x[0:16, :]) and None, not single positions'),
    (k_tile_item_assignment, 'tile_item_assignment', 5, 'cannot assign to a subscript; assign to a name'),
    (k_unknown_tile_attribute, 'unknown_tile_attribute', 9, "a tile<f32, [4]> has no attribute 'foo' (tiles have .shape, .ndim and .dtype)"),
    (k_unknown_builtin, 'unknown_builtin', 9, "lowbit has no attribute 'frobnicate'"),
    (k_shift_of_a_float_tile, 'shift_of_a_float_tile', 9, 'shl is not defined on f32'),
    (k_and_on_tiles, 'and_on_tiles', 9, "'and'/'or' on tiles; use '&' and '|'"),
    (k_string_operand, 'string_operand', 9, "operand must be a scalar, got the constant 'a'"),
    (k_shared_unknown_dtype, 'shared_unknown_dtype', 9, "shared dtype: unknown dtype 'f17': did you mean 'f16'?"),
    (k_shared_runtime_shape, 'shared_runtime_shape', 9, "shared shape must be a constexpr int, got a runtime int32 scalar 'n'"),
    (k_reshape_element_count, 'reshape_element_count', 9, 'reshape: cannot reshape [4, 4] to [3, 5]'),
    (k_permute_repeated_axis, 'permute_repeated_axis', 9, 'permute: [0, 0] is not a permutation of the 2 axes of a tile<f32, [4, 4]>'),
    (k_broadcast_incompatible, 'broadcast_incompatible', 9, 'shapes [4] and [3] do not broadcast'),
    (k_expand_dims_axis, 'expand_dims_axis', 9, 'expand_dims: axis 5 is out of range'),
    (k_lookup_float_index, 'lookup_float_index', 9, 'lookup: the index must be an integer tile, got a tile<f32, [4]>'),
    (k_atomic_into_a_scalar, 'atomic_into_a_scalar', 5, "atomic_add: the destination must be a global view, got a runtime int32 scalar 'n'"),
    (k_fma_two_operands, 'fma_two_operands', 9, "lowbit.fma(): missing a required argument: 'c'"),
    (k_sqrt_of_integers, 'sqrt_of_integers', 9, 'sqrt: expected a float tile, got a tile<int32, [4]>'),
    (k_static_assert_runtime, 'static_assert_runtime', 5, 'static_assert: the condition must be a constexpr, got a runtime bool scalar'),
    (k_constant_too_wide_for_int32, 'constant_too_wide_for_int32', 9, "'+': the constant 1099511627776 does not fit int32 (32 bits: -2147483648..4294967295)"),
    (k_constant_too_wide_for_uint4_tile, 'constant_too_wide_for_uint4_tile', 9, "'+': the constant 20 does not fit uint4 (4 bits: -8..15)"),
    (k_fill_value_out_of_range, 'fill_value_out_of_range', 9, 'fill value: the constant 300 does not fit uint8 (8 bits: -128..255)'),
    (k_float_constant_with_int_tile, 'float_constant_with_int_tile', 9, "'*': float constant 0.5 with an integer tile of int32; cast the tile first"),
    (k_augmented_assignment_dtype, 'augmented_assignment_dtype', 5, "'+': cannot combine f32 and int32 in arithmetic"),
    (k_constexpr_division_by_zero, 'constexpr_division_by_zero', 9, 'integer division by zero in a constant expression'),
    (k_integer_true_division, 'integer_true_division', 9, "'/' on integers; use '//' (which truncates toward zero, as C does)"),
    (k_float_floor_division, 'float_floor_division', 9, "'//' on float tiles is not supported; use '/' and lowbit.round"),
]


@pytest.mark.parametrize(("kernel", "marker", "col", "message"), CASES, ids=[c[1] for c in CASES])
def test_bad_program_is_a_located_dsl_error(kernel, marker: str, col: int, message: str) -> None:
    with pytest.raises(DSLError) as info:
        kernel.specialize()
    err = info.value
    assert Path(err.filename).resolve() == THIS
    assert (err.line, err.col) == (line_of(marker), col), str(err)
    assert err.reason.startswith(message), err.reason
    assert str(err).startswith(f"{err.filename}:{err.line}:{err.col}: {err.reason}")


def test_case_count() -> None:
    assert len(CASES) >= 70 and len({c[1] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [CASES[0], CASES[24], CASES[-9]], ids=lambda c: c[1])
def test_a_launch_shows_no_compiler_frames(case) -> None:
    kernel, marker = case[0], case[1]
    x = np.zeros(16, np.float32)
    before = x.copy()
    with pytest.raises(DSLError) as info:
        kernel[1](x, 4)
    assert info.value.line == line_of(marker)
    frames = [Path(f.filename).resolve() for f in traceback.extract_tb(info.value.__traceback__)]
    internal = [f for f in frames if LOWBIT_DIR in f.parents]
    assert all(f.name == "launch.py" for f in internal) and len(internal) <= 1, frames
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------ bad annotations (evaluated at def time)

@lowbit.kernel
def k_ptr_unknown_dtype(x: lowbit.ptr("f17"), n: lowbit.int32):  # E:ptr_f17
    pass


@lowbit.kernel
def k_ptr_of_a_number(x: lowbit.ptr(3), n: lowbit.int32):  # E:ptr_3
    pass


@lowbit.kernel
def k_python_type_annotation(x: lowbit.ptr("f32"), n: int):  # E:pyint
    pass


@lowbit.kernel
def k_string_annotation(x: lowbit.ptr("f32"), n: "int32"):  # E:strannot
    pass


@lowbit.kernel
def k_subbyte_scalar(x: lowbit.ptr("f32"), n: lowbit.uint4):  # E:uint4scalar
    pass


@lowbit.kernel
def k_ptr_of_constexpr_non_dtype(x: lowbit.ptr(T), n: lowbit.int32, T: lowbit.constexpr = 7):  # E:ptrT  # noqa: F821
    pass


ANNOTATIONS = [
    (k_ptr_unknown_dtype, "ptr_f17", 28, "parameter 'x': lowbit.ptr('f17'): unknown dtype 'f17': did you mean 'f16'?"),
    (k_ptr_of_a_number, "ptr_3", 26, "parameter 'x': lowbit.ptr() takes a dtype or a dtype name, got int 3"),
    (k_python_type_annotation, "pyint", 55, "parameter 'n': the constant <class 'int'> is not a parameter type"),
    (k_string_annotation, "strannot", 50, "parameter 'n': the constant 'int32' is not a parameter type"),
    (k_subbyte_scalar, "uint4scalar", 47, "parameter 'n': the dtype uint4 is not a parameter type"),
    (k_ptr_of_constexpr_non_dtype, "ptrT", 37, "parameter 'x': lowbit.ptr() takes a dtype or a dtype name, got int 7"),
]


@pytest.mark.parametrize(("kernel", "marker", "col", "message"), ANNOTATIONS, ids=[a[1] for a in ANNOTATIONS])
def test_bad_annotation_is_located_at_the_parameter(kernel, marker: str, col: int, message: str) -> None:
    """Decoration succeeded (the module imported); the first specialisation or launch names the line."""
    for trigger in (kernel.specialize, lambda: kernel[1](np.zeros(4, np.float32), 1)):
        with pytest.raises(DSLError) as info:
            trigger()
        err = info.value
        assert (Path(err.filename).resolve(), err.line, err.col) == (THIS, line_of(marker), col), str(err)
        assert err.reason.startswith(message), err.reason
