"""wx_matmul's PTX assembles with ptxas for the GPU targets, for every family of weight format.

The emulator tests run this PTX on the CPU; these check that the same
specialisations are accepted by ptxas (the GPU path will load its cubins)
and that the constexpr guards refuse what the kernel cannot read.
"""

from __future__ import annotations

import pytest

import lowbit
from lowbit.errors import DSLError, LaunchError
from lowbit.kernels.wx_matmul import tile_config, wx_matmul
from lowbit.ops import _launch

PLANS = [
    ("uint4", 128, "int", "f16", "f16"),
    ("uint3", 128, "int", "f16", "bf16"),
    ("int8", -1, "none", "bf16", "bf16"),
    ("e2m1", 128, "none", "f16", "f16"),
    ("e4m3fn", 64, "none", "f16", "f16"),
    ("nf4", 128, "none", "f16", "f16"),
    ("uint4", 32, "float", "f16", "f16"),
    ("mxfp4", 32, "none", "f16", "f16"),
    ("nvfp4", 16, "none", "f16", "bf16"),
    # layout 2 (bit planes): one load per plane, the code composed in registers
    ("uint3", 128, "int", "f16", "f16", 2),
    ("int6", 128, "none", "bf16", "bf16", 2),
    ("e3m2", 128, "none", "f16", "f16", 2),
    ("uint7", 32, "int", "f16", "f16", 2),
]


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p[0]}-g{p[1]}-{p[2]}-{p[4]}" + (f"-v{p[5]}" if p[5:] else ""))
def test_ptxas_accepts_the_kernel(plan: tuple, arch: str, ptxas_path: str) -> None:
    name, group, zero, scale, act, *layout = plan
    p = _launch.plan(lowbit.dtype(name), group, zero, scale, act, True, layout[0] if layout else 1, True)
    compiled = lowbit.compile(wx_matmul, arch=arch, **p.kwargs())
    assert compiled.cubin is not None and compiled.resources is not None, compiled.ptxas_log
    assert compiled.threads_per_block == 128 and ".entry wx_matmul" in compiled.ptx


def test_tile_config_covers_words_and_nests_with_groups() -> None:
    for bits in range(1, 9):
        for group in (-1, 16, 32, 48, 64, 100, 128):
            bm, bn, bk = tile_config(bits, group, 1)
            assert bk * bits % 32 == 0 and bk >= min(32, group if group > 0 else 32)
            assert group == -1 or group % bk == 0 or bk % group == 0
            assert (bm, bn) == (16, 32)
    assert tile_config(4, 128, 17)[0] == 32
    with pytest.raises(LaunchError, match="no K step"):
        tile_config(3, 1021, 1)


def test_constexpr_guards_name_the_problem() -> None:
    with pytest.raises(DSLError, match=r"layout versions 1 \(lsb\), 2 \(planes\) and 3 \(kernel\)"):
        wx_matmul.specialize(LAYOUT=4)
    with pytest.raises(DSLError, match="layout 3 \\(kernel order\\) needs K steps of 128-row chunks"):
        wx_matmul.specialize(LAYOUT=3, BK=64)
    with pytest.raises(DSLError, match="FOLD applies to float formats without zeros"):
        wx_matmul.specialize(FOLD=True)  # uint4 with integer zeros: (v 2**-F - z)(s 2**F) would be wrong
    with pytest.raises(DSLError, match="f16 or bf16"):
        wx_matmul.specialize(A=lowbit.f32)
    with pytest.raises(DSLError, match="whole uint32 words"):
        wx_matmul.specialize(W=lowbit.uint3, BK=16)
    with pytest.raises(DSLError, match="must nest"):
        wx_matmul.specialize(GROUP=48, BK=32)
