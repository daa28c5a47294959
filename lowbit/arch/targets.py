"""The table of GPU targets lowbit compiles for.

One frozen :class:`Target` per ``.target`` name.  Numbers come from the CUDA
C++ Programming Guide (tables "Technical Specifications per Compute
Capability") and from what llvmlite 0.50 / ptxas 13.0 were measured to do on
the build machine (``shared/design/TOOLCHAIN.md``): which mma / cvt forms a
target executes natively, which ptxas *emulates* with a sequence of other
instructions (legal but slow: the compiler should avoid them), and which are
not available at all.

Feature names are plain strings so that tables stay data:

* ``mma.<shape>.<operand type>``, e.g. ``mma.m16n8k16.f16``, ``mma.m16n8k64.s4``,
  ``mma.m16n8k256.b1.and``, ``mma.m16n8k32.e4m3``;
* ``cvt.<packed type>``, e.g. ``cvt.e4m3x2``, ``cvt.e2m1x2``, ``cvt.ue8m0x2``: both directions (to the packed
  type from f32/f16x2, and ``cvt.rn.f16x2.<packed>`` back).  Measured with ptxas 13.0: ``.f16x2.e4m3x2`` /
  ``.e5m2x2`` on sm_89 (PTX 8.1; 8.0 is refused) and sm_90/sm_90a (7.8); ``.f16x2.e2m1x2`` (a ``.b8``
  operand), ``.e2m3x2``, ``.e3m2x2`` (``.b16``) on sm_100a and sm_120a only (sm_90a refuses them); no
  ``.bf16x2`` destination from any of them on any target (``cvt.rn.bf16x2.e4m3x2`` is refused) -- only
  ``cvt.rn.bf16x2.ue8m0x2``;
* ``ldmatrix``, ``cp.async``, ``wgmma``, ``tcgen05``, ``mma.block_scale``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType

from lowbit.errors import ArchError


class Support(enum.Enum):
    """How a target executes a PTX feature."""

    NATIVE = "native"  # one hardware instruction (e.g. 1 HMMA per mma.sync)
    EMULATED = "emulated"  # ptxas accepts it but expands it (e.g. s4 mma on sm_90: 2 IMMA + ~90 LOP3)
    UNSUPPORTED = "unsupported"  # ptxas or LLVM rejects it for this target


@dataclass(frozen=True)
class Feature:
    support: Support
    min_ptx: tuple[int, int] = (7, 0)  # lowest PTX ISA version that has it for this target


@dataclass(frozen=True)
class Target:
    """A compilation target (``.target`` name) and the limits the compiler must respect."""

    name: str  # "sm_80", "sm_90a", ...
    compute_capability: tuple[int, int]
    arch_specific: bool  # the "a" suffix: PTX for it runs only on exactly that chip
    default_ptx: tuple[int, int]  # LLVM 22's default .version for this cpu
    max_ptx: tuple[int, int]  # highest PTX ISA version both LLVM 22 and ptxas 13.0 accept
    shared_per_sm: int  # bytes
    max_shared_per_block_optin: int  # bytes, with cudaFuncAttributeMaxDynamicSharedMemorySize
    max_threads_per_sm: int
    max_blocks_per_sm: int
    features: MappingProxyType = field(repr=False, compare=False)
    default_max_shared: int = 48 * 1024  # bytes a block may use without the opt-in attribute
    max_threads_per_block: int = 1024
    warp_size: int = 32
    registers_per_sm: int = 65536
    max_registers_per_thread: int = 255

    @property
    def sm(self) -> int:
        """The compute capability as one number: (9, 0) -> 90."""
        return self.compute_capability[0] * 10 + self.compute_capability[1]

    def feature(self, name: str) -> Feature:
        """How this target handles ``name``; unknown features are UNSUPPORTED."""
        return self.features.get(name, Feature(Support.UNSUPPORTED))

    def supports(self, name: str) -> bool:
        """True when ``name`` assembles for this target (native or emulated)."""
        return self.feature(name).support is not Support.UNSUPPORTED

    def is_native(self, name: str) -> bool:
        return self.feature(name).support is Support.NATIVE

    def can_run_ptx_for(self, ptx_target: str) -> bool:
        """Whether PTX written for ``.target ptx_target`` can be assembled for this chip.

        Plain ``sm_XY`` PTX is forward compatible; ``sm_XYa`` PTX only runs on that exact chip.
        """
        other = target(ptx_target)
        if other.arch_specific:
            return other.name == self.name
        return other.sm <= self.sm

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):
        # Targets are singletons from the table; pickle them by name (the
        # feature mapping is a read-only proxy, which pickle cannot copy).
        return (target, (self.name,))


N, E, U = Support.NATIVE, Support.EMULATED, Support.UNSUPPORTED


def _features(**overrides: tuple[Support, tuple[int, int]]) -> MappingProxyType:
    base = {
        "mma.m16n8k16.f16": (N, (7, 0)),
        "mma.m16n8k16.bf16": (N, (7, 0)),
        "mma.m16n8k8.tf32": (N, (7, 0)),
        "mma.m16n8k32.s8": (N, (7, 0)),
        "mma.m16n8k32.u8": (N, (7, 0)),
        "mma.m16n8k64.s4": (N, (7, 0)),
        "mma.m16n8k64.u4": (N, (7, 0)),
        "mma.m16n8k256.b1.and": (N, (7, 1)),
        "mma.m16n8k256.b1.xor": (N, (7, 0)),
        "ldmatrix": (N, (6, 5)),
        "cp.async": (N, (7, 0)),
        "cvt.f16x2": (N, (7, 0)),
        "cvt.bf16x2": (N, (7, 0)),
        # packed 16-bit float math (PTX ISA 9.7.4): add/sub/mul/fma .f16x2 from sm_53; fma.rn.bf16x2
        # from sm_80; add/sub/mul .bf16x2 only from sm_90 (the lowering writes them as fma below it)
        "f16x2.arith": (N, (7, 0)),
        "bf16x2.fma": (N, (7, 0)),
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return MappingProxyType({k: Feature(s, p) for k, (s, p) in base.items() if s is not U})


def _k(name: str) -> str:
    # keyword-argument spelling of a feature name: dots become double underscores
    return name.replace(".", "__")


_FP8 = ("mma.m16n8k32.e4m3", "mma.m16n8k32.e5m2")
_CVT_FP8 = ("cvt.e4m3x2", "cvt.e5m2x2")
_CVT_FP6_FP4 = ("cvt.e2m1x2", "cvt.e2m3x2", "cvt.e3m2x2", "cvt.ue8m0x2")

_SM89 = {_k(f): (N, (8, 4)) for f in _FP8} | {_k(f): (N, (8, 1)) for f in _CVT_FP8}
# Hopper: ptxas turns int4 / fp8 / xor-popc mma.sync into sequences (TOOLCHAIN.md's SASS table).
_SM90 = (
    {_k("mma.m16n8k64.s4"): (E, (7, 0)), _k("mma.m16n8k64.u4"): (E, (7, 0))}
    | {_k("mma.m16n8k256.b1.xor"): (E, (7, 0))}
    | {_k(f): (E, (8, 4)) for f in _FP8}
    | {_k(f): (N, (7, 8)) for f in _CVT_FP8}
    | {_k("bf16x2.arith"): (N, (7, 8))}
)
# Blackwell: everything int4/b1/fp8 through mma.sync is emulated on sm_100a; sm_120a has QMMA.
_SM100 = (
    {_k(f): (E, (7, 0)) for f in ("mma.m16n8k64.s4", "mma.m16n8k64.u4", "mma.m16n8k256.b1.xor")}
    | {_k("mma.m16n8k256.b1.and"): (E, (7, 1))}
    | {_k(f): (E, (8, 4)) for f in _FP8}
    | {_k(f): (N, (7, 8)) for f in _CVT_FP8}
    | {_k(f): (N, (8, 6)) for f in _CVT_FP6_FP4}
    | {_k("bf16x2.arith"): (N, (7, 8))}
)
_SM120 = _SM100 | {_k(f): (N, (8, 7)) for f in _FP8} | {
    _k("mma.kind_f8f6f4"): (N, (8, 7)),
    _k("mma.block_scale"): (N, (8, 7)),
}

_KIB = 1024
_TABLE = (
    Target("sm_80", (8, 0), False, (7, 0), (9, 0), 164 * _KIB, 163 * _KIB, 2048, 32, _features()),
    Target("sm_86", (8, 6), False, (7, 1), (9, 0), 100 * _KIB, 99 * _KIB, 1536, 16, _features()),
    Target("sm_89", (8, 9), False, (7, 8), (9, 0), 100 * _KIB, 99 * _KIB, 1536, 24, _features(**_SM89)),
    Target("sm_90", (9, 0), False, (7, 8), (9, 0), 228 * _KIB, 227 * _KIB, 2048, 32, _features(**_SM90)),
    Target(
        "sm_90a", (9, 0), True, (8, 0), (9, 0), 228 * _KIB, 227 * _KIB, 2048, 32,
        _features(**_SM90, wgmma=(N, (8, 0))),
    ),
    Target(
        "sm_100a", (10, 0), True, (8, 6), (9, 0), 228 * _KIB, 227 * _KIB, 2048, 32,
        _features(**_SM100, tcgen05=(N, (8, 6))),
    ),
    Target("sm_120a", (12, 0), True, (8, 7), (9, 0), 100 * _KIB, 99 * _KIB, 1536, 32, _features(**_SM120)),
)

TARGETS: MappingProxyType = MappingProxyType({t.name: t for t in _TABLE})
DEFAULT_TARGET = "sm_80"


def target(name: str | Target) -> Target:
    """Look up a target by name (``"sm_80"``, ``"80"``, ``"sm80"`` are accepted)."""
    if isinstance(name, Target):
        return name
    if not isinstance(name, str):
        raise ArchError(f"a target is named by a string such as 'sm_80', got {name!r}")
    key = name.strip().lower()
    if not key.startswith("sm"):
        key = "sm_" + key
    if not key.startswith("sm_"):
        key = "sm_" + key[2:]
    try:
        return TARGETS[key]
    except KeyError:
        raise ArchError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}") from None


__all__ = ["DEFAULT_TARGET", "Feature", "Support", "TARGETS", "Target", "target"]
