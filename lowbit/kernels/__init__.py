"""lowbit's kernel library, written in the DSL as an ordinary user of the public API.

* :mod:`lowbit.kernels.wx_matmul` -- the generic weight-only GEMM (every weight format, one signature).
"""
