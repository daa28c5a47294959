"""The runtime on a real GPU (skipped without one): torch's stream, CUDA graphs, cubin and PTX images, device checks.

Run by ``benchmarks/gpu_check.py`` on a GPU machine against the carried cache (every variant launched here is
listed in tests/runtime/gpu_plan.py).  NOT YET RUN ON HARDWARE: no GPU was lent to the session that wrote it.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowbit import runtime
from lowbit.errors import LaunchError
from tests.runtime.gpu_plan import JIT_TARGET, TEST_SIZES, kernel_of, load_example

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not runtime.status().available,
                                                  reason=f"needs a GPU: {runtime.status().reason}")]
VADD = kernel_of(load_example("01_vector_add"))


def _torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)


def test_torch_tensors_on_a_side_stream() -> None:
    torch = _torch()
    from lowbit.binder import Binder
    from lowbit.runtime.launcher import _stream_handle

    n = TEST_SIZES[0]
    x, y = _inputs(n)
    tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    out = torch.full((n,), float("nan"), device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        bound = Binder.of(VADD.specialize()).bind_values([tx, ty, out, n])
        assert bound.torch and _stream_handle(None, bound, 0) == s.cuda_stream
        VADD[(-(-n // 128),)](tx, ty, out, n)
    s.synchronize()
    assert VADD.last_launch.backend == "gpu"
    np.testing.assert_array_equal(out.cpu().numpy(), x + y)  # one f32 add: exact


def test_device_arrays_and_a_size_specialised_on_div16() -> None:
    n = TEST_SIZES[1]
    x, y = _inputs(n, 1)
    dx, dy = runtime.DeviceArray.from_numpy(x), runtime.DeviceArray.from_numpy(y)
    dout = runtime.DeviceArray.from_numpy(np.full(n, np.nan, np.float32))
    VADD[(n // 128,)](dx, dy, dout, n)
    assert VADD.last_launch.facts == {"x_ptr": 16, "y_ptr": 16, "out_ptr": 16, "n": 16}
    np.testing.assert_array_equal(dout.numpy(), x + y)


def test_cuda_graph_capture_replays_the_launch() -> None:
    torch = _torch()
    n = TEST_SIZES[0]
    x, y = _inputs(n, 2)
    tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    out = torch.empty(n, device="cuda")
    VADD[(8,)](tx, ty, out, n)  # load the module before capturing
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        VADD[(8,)](tx, ty, out, n)
    x2 = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    tx.copy_(torch.from_numpy(x2))
    out.fill_(float("nan"))
    g.replay()
    torch.cuda.synchronize()
    np.testing.assert_array_equal(out.cpu().numpy(), x2 + y)


def test_bad_device_arguments_are_refused_before_any_launch() -> None:
    torch = _torch()
    n = TEST_SIZES[0]
    tx, ty = torch.ones(2 * n, device="cuda"), torch.ones(n, device="cuda")
    out = torch.full((n,), 5.0, device="cuda")
    with pytest.raises(LaunchError, match="argument 'x_ptr': the array must be C-contiguous"):
        VADD[(8,)](tx[::2], ty, out, n)
    with pytest.raises(LaunchError, match="argument 'out_ptr': the kernel views it as f32\\[1000\\]"):
        VADD[(8,)](ty, ty, out[:-1], n)
    with pytest.raises(LaunchError, match="argument 'y_ptr' is on host but 'x_ptr' is on cuda:0"):
        VADD[(8,)](ty, torch.ones(n), out, n)
    torch.cuda.synchronize()
    assert bool((out == 5.0).all())


def test_cubin_for_the_device_and_ptx_jit_for_an_older_target() -> None:
    from lowbit.runtime import images
    from lowbit.runtime.launcher import MODULES

    sm = runtime.status().devices[0].sm
    n = TEST_SIZES[0]
    x, y = _inputs(n, 4)
    dx, dy = runtime.DeviceArray.from_numpy(x), runtime.DeviceArray.from_numpy(y)
    for target in (None, JIT_TARGET):
        dout = runtime.DeviceArray.empty(n, np.float32)
        (VADD.on(target) if target else VADD)[(8,)](dx, dy, dout, n)
        np.testing.assert_array_equal(dout.numpy(), x + y)
        prog = VADD.last_launch.program
        ck = VADD.compiled(prog, target or runtime.device_for(0).target_for(prog))
        k = MODULES[(ck.key, 0)]
        want = "cubin" if ck.cubin is not None and images.runs_on("cubin", ck.arch, sm) else "ptx"
        assert k.image == want, (k, k.image_errors)
