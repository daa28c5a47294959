"""launch() validates like the driver: parameters by width and kind, block limits, shared memory limits."""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.errors import LaunchError
from tests.emu.ptxkit import kernel, run

STORE = """
    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [n];
    ld.param.f32 %f1, [scale];
    cvt.rn.f32.u32 %f2, %r1;
    mul.f32 %f3, %f2, %f1;
    st.global.f32 [%rd1], %f3;
    ret;
"""
PARAMS = ".param .u64 out, .param .u32 n, .param .f32 scale"


def test_scalars_of_the_right_kind_run():
    out = np.zeros(1, np.float32)
    run(kernel(STORE, PARAMS), 1, 1, [out, np.uint32(7), np.float32(1.5)])
    assert out[0] == np.float32(10.5)
    run(kernel(STORE, PARAMS), 1, 1, [out, np.int32(3), np.float32(2)])
    assert out[0] == 6


@pytest.mark.parametrize("bad, name", [
    ([np.zeros(1, np.float32), np.int64(7), np.float32(1)], "parameter n is .u32: pass np.int32 or np.uint32, got np.int64"),
    ([np.zeros(1, np.float32), np.int32(7), np.float64(1)], "parameter scale is .f32: pass np.float32, got np.float64"),
    ([np.zeros(1, np.float32), 7, np.float32(1)], "parameter n (.u32) needs a numpy scalar"),
    ([np.int32(5), np.int32(7), np.float32(1)], "parameter out is .u64: pass np.int64 or np.uint64, got np.int32"),
    ([np.zeros(1, np.float32), np.int32(7)], "takes 3 arguments (out, n, scale), got 2"),
])
def test_bad_scalars_name_the_parameter(bad, name):
    with pytest.raises(LaunchError) as e:
        run(kernel(STORE, PARAMS), 1, 1, bad)
    assert name in str(e.value)


def test_block_limits_and_reqntid():
    body = "ret;"
    with pytest.raises(LaunchError, match="1024"):
        run(kernel(body), 1, (64, 32), [])
    with pytest.raises(LaunchError, match="limits"):
        run(kernel(body), 1, (1, 1, 128), [])
    ptx = kernel(body, directives=".reqntid 128")
    run(ptx, 2, 128, [])
    with pytest.raises(LaunchError, match=r"\.reqntid \(128, 1, 1\)"):
        run(ptx, 2, 96, [])


DYN = """
    mov.u32 %r1, dyn;
    st.shared.u32 [%r1], %r1;
    ret;
"""


def test_dynamic_shared_memory_limits_follow_the_target():
    ptx = kernel(DYN, shared=".extern .shared .align 16 .b8 dyn[];")
    run(ptx, 1, 1, [], shared_bytes=48 * 1024)
    with pytest.raises(LaunchError, match="exceeds the limit 49152 B .pass max_dynamic_shared="):
        run(ptx, 1, 1, [], shared_bytes=64 * 1024)
    run(ptx, 1, 1, [], shared_bytes=64 * 1024, max_dynamic_shared=100 * 1024)
    with pytest.raises(LaunchError, match="sm_80 opt-in limit"):
        run(ptx, 1, 1, [], shared_bytes=64 * 1024, max_dynamic_shared=200 * 1024)
    ptx89 = kernel(DYN, shared=".extern .shared .align 16 .b8 dyn[];", target="sm_89")
    with pytest.raises(LaunchError, match="sm_89 opt-in limit"):
        run(ptx89, 1, 1, [], shared_bytes=64 * 1024, max_dynamic_shared=120 * 1024)


def test_arrays_are_updated_in_place_and_aliases_share_memory():
    body = """
    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd2, [b];
    ld.global.u32 %r1, [%rd1];
    add.s32 %r2, %r1, 1;
    st.global.u32 [%rd2], %r2;
    ld.global.u32 %r3, [%rd1];
    st.global.u32 [%rd2+4], %r3;
    ret;
"""
    x = np.array([41, 0], np.uint32)
    run(kernel(body, ".param .u64 a, .param .u64 b"), 1, 1, [x, x])
    assert x.tolist() == [42, 42]  # the second load sees the first store: one buffer, not two copies


def test_unknown_kernel_name():
    from lowbit import emu

    with pytest.raises(LaunchError, match="no .entry 'nope'"):
        emu.launch(kernel("ret;"), "nope", 1, 1, [])
