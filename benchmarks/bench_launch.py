"""Host overhead of the launch path, measured without a GPU (issue 14; issue 15 targets <= 15 us per op call).

What can be measured here: the binder (numpy arrays, device arrays by ``__cuda_array_interface__``, torch CPU
tensors read through the same attributes a CUDA tensor is), and a whole ``GPUKernel`` call -- bind, pack, stream,
the driver call -- on a stand-in driver whose ``cuLaunchKernel`` returns at once.  The real cuda-bindings call
(its argument marshalling, ~a few us) and torch's CUDA tensor attributes are not measured here; gpu_check's
``overhead`` section measures the whole thing on a GPU.

    .venv/bin/python benchmarks/bench_launch.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lowbit  # noqa: E402
from lowbit import runtime  # noqa: E402
from lowbit.binder import Binder  # noqa: E402
from lowbit.runtime.driver import use_driver  # noqa: E402
from tests.runtime.fake_driver import FakeDriver  # noqa: E402
from tests.runtime.gpu_plan import kernel_of, load_example  # noqa: E402


def per_call_us(fn, calls: int = 5000, reps: int = 7) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return float(np.median(times))


class CAI:
    def __init__(self, n: int, address: int) -> None:
        self.dtype = np.dtype(np.float32)
        self.__cuda_array_interface__ = {"shape": (n,), "typestr": "<f4", "data": (address, False), "version": 3,
                                         "strides": None}


def main() -> None:
    w4 = kernel_of(load_example("04_w4a16_matmul"))
    vadd = kernel_of(load_example("01_vector_add"))
    n = 4096
    rows = []
    b = Binder.of(vadd.specialize())
    x, y, o = (np.zeros(n, np.float32) for _ in range(3))
    rows.append(("Binder.bind_values, vector_add, 3 numpy arrays", per_call_us(lambda: b.bind_values((x, y, o, n)))))
    dev = [CAI(n, (1 << 40) + i * 65536) for i in range(3)]
    rows.append(("Binder.bind_values, vector_add, 3 device arrays (CAI)", per_call_us(lambda: b.bind_values((*dev, n)))))
    bw = Binder.of(w4.specialize())
    m, nn, k = 37, 100, 136
    wargs = (np.zeros((m, k), np.float16), np.zeros((k // 8, nn), np.uint32), np.zeros((2, nn), np.float16),
             np.zeros((2, nn), np.uint8), np.zeros((m, nn), np.float16), m, nn, k)
    rows.append(("Binder.bind_values, w4a16 (5 arrays, 3 ints, 4 views sized)", per_call_us(lambda: bw.bind_values(wargs))))
    try:
        import torch

        tx, ty, to = (torch.zeros(n) for _ in range(3))
        rows.append(("Binder.bind_values, vector_add, 3 torch CPU tensors", per_call_us(lambda: b.bind_values((tx, ty, to, n)))))
        t = tx
        rows.append(("torch attribute reads a CUDA tensor costs (is_cuda, dtype, is_contiguous, data_ptr, numel, "
                     "element_size), one tensor", per_call_us(lambda: (t.is_cuda, t.dtype, t.is_contiguous(), t.data_ptr(),
                                                                       t.numel(), t.element_size()))))
    except ImportError:
        pass
    with use_driver(FakeDriver(cc=(9, 0), run=False, record=False)):
        ck = lowbit.compile(vadd, arch="sm_90")
        gk = runtime.load(ck)
        rows.append(("GPUKernel(grid, 3 device arrays, n) on a no-op driver", per_call_us(lambda: gk((32,), *dev, n))))
        da = [runtime.DeviceArray.empty(n, np.float32) for _ in range(3)]
        rows.append(("kernel[grid](3 DeviceArrays, n) on a no-op driver", per_call_us(lambda: vadd[(32,)](*da, n), 2000)))
    width = max(len(r[0]) for r in rows)
    for name, us in rows:
        print(f"{name:{width}s} {us:7.2f} us")


if __name__ == "__main__":
    main()
