"""Options that travel through the pass pipeline as one frozen value.

Every pass receives the same :class:`Options`; its fields are the only
knobs a pass may read (no environment variables, no globals), and the
compile driver puts them into the cache key.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.arch import target as get_target
from lowbit.errors import ArchError

__all__ = ["Options"]


@dataclass(frozen=True)
class Options:
    """``arch``: the target (``sm_80``...); ``verify``: run the verifiers after every pass;
    ``tensor_cores``: let ``dot`` use ``mma.sync`` (off: the FMA scheme everywhere);
    ``codebook``: how codebook codes are looked up -- ``"auto"`` (the cost model of
    :mod:`lowbit.transforms._lower_codebook`) or a form it must take where that form is exact:
    ``"reg"``, ``"half"``, ``"single"`` (``"half:16"``: 16 copies), ``"chain"``."""

    arch: str = "sm_80"
    verify: bool = True
    tensor_cores: bool = True
    codebook: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str):
            raise ArchError(f"arch must be a target name such as 'sm_80', got {type(self.arch).__name__} {self.arch!r}")
        get_target(self.arch)  # an ArchError naming the target and listing the known ones
        if self.codebook != "auto":
            from lowbit.transforms._lower_codebook import parse_form  # noqa: PLC0415

            parse_form(self.codebook)  # an IRError naming the forms

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"arch": self.arch, "verify": self.verify}
        if not self.tensor_cores:  # (only when off, so the keys of every existing entry stay what they were)
            out["tensor_cores"] = False
        if self.codebook != "auto":
            out["codebook"] = self.codebook
        return out
