from __future__ import annotations

import pickle

import pytest

from lowbit.arch import TARGETS, Support, target
from lowbit.errors import ArchError


def test_every_target_named_by_the_foundation_issue_exists() -> None:
    assert set(TARGETS) == {"sm_80", "sm_86", "sm_89", "sm_90", "sm_90a", "sm_100a", "sm_120a"}


@pytest.mark.parametrize("name", list(TARGETS))
def test_limits_are_consistent(name: str) -> None:
    t = target(name)
    assert t.default_max_shared == 48 * 1024 <= t.max_shared_per_block_optin
    # the guide's per-block opt-in maximum is the per-SM capacity minus the 1 KiB system reservation
    assert t.shared_per_sm - t.max_shared_per_block_optin == 1024
    assert t.default_ptx <= t.max_ptx == (9, 0)
    assert t.max_threads_per_block == 1024 and t.warp_size == 32
    assert pickle.loads(pickle.dumps(t)) is t
    assert str(t) == name


def test_lookup_spellings_and_errors() -> None:
    assert target("80") is target("sm80") is target("SM_80") is TARGETS["sm_80"]
    with pytest.raises(ArchError, match="unknown target 'sm_75'"):
        target("sm_75")
    with pytest.raises(ArchError):
        target(80)  # type: ignore[arg-type]


def test_ptxas_emulation_table_from_toolchain_facts() -> None:
    # TOOLCHAIN.md: int4 mma is 1 IMMA.16864 on sm_80/86/89, emulated on Hopper and Blackwell
    for name in ("sm_80", "sm_86", "sm_89"):
        assert target(name).feature("mma.m16n8k64.s4").support is Support.NATIVE
    for name in ("sm_90", "sm_90a", "sm_100a", "sm_120a"):
        assert target(name).feature("mma.m16n8k64.s4").support is Support.EMULATED
    # e4m3 mma: QMMA on sm_89 and sm_120a, 12 F2FP + 2 HMMA on sm_90, absent before sm_89
    assert not target("sm_80").supports("mma.m16n8k32.e4m3")
    assert target("sm_89").is_native("mma.m16n8k32.e4m3")
    assert target("sm_90").feature("mma.m16n8k32.e4m3").support is Support.EMULATED
    assert target("sm_120a").is_native("mma.m16n8k32.e4m3")
    assert target("sm_89").feature("mma.m16n8k32.e4m3").min_ptx == (8, 4)
    # FP6/FP4 conversions exist only on the Blackwell "a" targets
    assert [n for n, t in TARGETS.items() if t.supports("cvt.e2m1x2")] == ["sm_100a", "sm_120a"]
    assert [n for n, t in TARGETS.items() if t.supports("wgmma")] == ["sm_90a"]
    # and.popc on sm_80 needs PTX 7.1
    assert target("sm_80").feature("mma.m16n8k256.b1.and").min_ptx == (7, 1)


def test_ptx_compatibility() -> None:
    assert target("sm_90").can_run_ptx_for("sm_80")
    assert not target("sm_80").can_run_ptx_for("sm_90")
    assert target("sm_90a").can_run_ptx_for("sm_90a")
    assert not target("sm_90").can_run_ptx_for("sm_90a")
    assert not target("sm_100a").can_run_ptx_for("sm_90a")
