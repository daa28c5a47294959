"""Per-pass before/after text cases, and the verifiers clean after every pass.

The expected texts are reviewed snapshots: a change to a pass shows up here as a diff.
"""

from __future__ import annotations

import pytest

from lowbit.errors import CodegenError
from lowbit.ir import parse, print_program, verify
from lowbit.ir.simt import parse_kernel, print_kernel
from lowbit.ir.simt import verify as verify_simt
from lowbit.transforms import PIPELINE, Options, assign_layouts, lower, lower_simt
from lowbit.transforms.assign_layouts import flat_layout
from tests.transforms.test_examples_emu import EXAMPLES, load

BEFORE = """kernel @k(%x_ptr: ptr<f32>, %n: int32) num_warps=4 {
  %0 = program_id() {axis=0} : int32
  %1 = global_view(%x_ptr, [%n], [1]) : global<f32, 1>
  %2 = load_global(%1, [(%0 * 32)]) {other=0} : tile<f32, [32]>
  %3 = full(2.0:f32) : tile<f32, [32]>
  %4 = mul(%2, %3) : tile<f32, [32]>
  store_global(%1, %4, [(%0 * 32)])
}
"""

AFTER_LAYOUTS = """kernel @k(%x_ptr: ptr<f32>, %n: int32) num_warps=4 {
  %0 = program_id() {axis=0} : int32
  %1 = global_view(%x_ptr, [%n], [1]) : global<f32, 1>
  %2 = load_global(%1, [(%0 * 32)]) {other=0} : tile<f32, [32], `R[32|t=r4.m0|l=]`>
  %3 = full(2.0:f32) : tile<f32, [32], `R[32|t=r4.m0|l=]`>
  %4 = mul(%2, %3) : tile<f32, [32], `R[32|t=r4.m0|l=]`>
  store_global(%1, %4, [(%0 * 32)])
}
"""

AFTER_LOWERING = """kernel @k(%x_ptr: ptr.global[f32], %n: i32) threads 128 {
  %tid_x: i32 = sreg tid.x
  %ctaid_x: i32 = sreg ctaid.x
  %e: i32 = urem %tid_x, 32:i32
  %r: i32 = mul %ctaid_x, 32:i32
  %idx: i32 = add %r, %e
  %p: pred = icmp sge %idx, 0:i32
  %p.1: pred = icmp slt %idx, %n
  %r.1: pred = and %p, %p.1
  %r.2: i64 = sext %idx
  %off: i64 = mul %r.2, 1:i64
  %addr: ptr.global = gep f32 %x_ptr, %off
  %ld: f32 = load %addr align 4 mask %r.1 else 0.0:f32
  %r.3: f32 = fmul %ld, 2.0:f32
  %idx.1: i32 = add %r, %e
  %p.2: pred = icmp sge %idx.1, 0:i32
  %p.3: pred = icmp slt %idx.1, %n
  %r.4: pred = and %p.2, %p.3
  %r.5: i64 = sext %idx.1
  %off.1: i64 = mul %r.5, 1:i64
  %own: pred = icmp ult %tid_x, 32:i32
  %r.6: pred = and %r.4, %own
  %addr.1: ptr.global = gep f32 %x_ptr, %off.1
  store %addr.1, %r.3 align 4 mask %r.6
}
"""


def test_assign_layouts_before_after() -> None:
    prog = parse(BEFORE)
    after = assign_layouts.run(prog, Options())
    assert print_program(after) == AFTER_LAYOUTS
    verify(after)
    assert print_program(parse(AFTER_LAYOUTS)) == AFTER_LAYOUTS  # the recorded layouts parse back


def test_lower_simt_before_after() -> None:
    kernel = lower_simt.run(parse(AFTER_LAYOUTS), Options())
    assert print_kernel(kernel) == AFTER_LOWERING
    assert print_kernel(parse_kernel(AFTER_LOWERING)) == AFTER_LOWERING
    verify_simt(kernel)


@pytest.mark.parametrize("shape", [(32, 32), (16, 64), (4, 32), (1, 32), (128,), (2, 4, 64), (1,)])
def test_flat_layout_is_the_distribution_the_lowering_uses(shape: tuple[int, ...]) -> None:
    """Slot j of thread t holds row-major element (j*T + t) mod n: the law, checked at every (thread, slot)."""
    T = 128
    lay = flat_layout(shape, T)
    assert lay is not None and lay.shape == shape and lay.num_threads == T
    n = 1
    for s in shape:
        n *= s
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    for t in range(T):
        for j in range(lay.local_size):
            e = sum(c * s for c, s in zip(lay.coords(t, j), strides))
            assert e == (j * T + t) % n


def test_sizes_without_a_layout_stay_unannotated() -> None:
    assert flat_layout((100,), 128) is None and flat_layout((3, 100), 128) is None
    assert flat_layout((2, 3, 64), 128) is None  # 128 threads would split the extent-3 axis


@pytest.mark.parametrize("name", EXAMPLES)
def test_verifiers_clean_after_every_pass(name: str) -> None:
    prog = load(name)[1].specialize()
    opts = Options()
    for p in PIPELINE[:-1]:
        prog = p.run(prog, opts)
        verify(prog)
        assert print_program(parse(print_program(prog))) == print_program(prog)
    kernel = PIPELINE[-1].run(prog, opts)
    verify_simt(kernel)
    assert print_kernel(parse_kernel(print_kernel(kernel))) == print_kernel(kernel)


def test_a_foreign_layout_is_a_codegen_error() -> None:
    text = AFTER_LAYOUTS.replace("`R[32|t=r4.m0|l=]`", "`R[32|t=m0.r4|l=]`")
    with pytest.raises(CodegenError, match="layout"):
        lower(parse(text))


def test_assign_layouts_keeps_the_meaning_on_random_inputs() -> None:
    """Example 04 (W4A16: views, casts, loads with bounds, dot in a loop) interprets bit-identically after the pass."""
    import numpy as np

    import lowbit
    from lowbit import interp

    prog = load("04_w4a16_matmul")[1].specialize()
    after = assign_layouts.run(prog, Options())
    assert print_program(after) != print_program(prog)  # the pass did annotate something
    rng = np.random.default_rng(7)
    m, n, k = 37, 100, 136
    q = lowbit.quantize(rng.standard_normal((k, n)), "uint4", group_size=128, symmetric=False, zero="int")
    base = {"a_ptr": rng.standard_normal((m, k)).astype(np.float16), "w_ptr": lowbit.pack(q.codes, 4, axis=0),
            "s_ptr": np.array(q.scales, np.float16), "z_ptr": np.array(q.zeros, np.uint8),
            "c_ptr": np.full((m, n), np.nan, np.float16), "M": m, "N": n, "K": k}  # fmt: skip
    outs = []
    for p in (prog, after):
        args = {key: v.copy() if isinstance(v, np.ndarray) else v for key, v in base.items()}
        interp.run(p, (3, 4), args)
        outs.append(args["c_ptr"])
    assert not np.isnan(outs[0]).any()
    np.testing.assert_array_equal(outs[0], outs[1])
