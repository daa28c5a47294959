"""Casts that once broke the semantics table."""

import ml_dtypes
import numpy as np

from lowbit.dtypes import dtype
from lowbit.interp.values import cast


def test_bf16_to_int_truncates_and_clips() -> None:
    # bfloat16 arrays have numpy kind 'V', which once sent them down the integer wrap path (inf -> 0)
    x = np.array([np.inf, -np.inf, 3e38, -3e38, 2.75, -2.75, np.nan, 100.5], dtype=ml_dtypes.bfloat16)
    got = cast(x, dtype("bf16"), dtype("int32"))
    want = [2**31 - 1, -(2**31), 2**31 - 1, -(2**31), 2, -2, 0, 100]
    assert [int(v) for v in got] == want
    got8 = cast(x, dtype("bf16"), dtype("uint8"))
    assert [int(v) for v in got8] == [255, 0, 255, 0, 2, 0, 0, 100]
