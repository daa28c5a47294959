"""Shared test configuration.

* Hypothesis: the ``ci`` profile (derandomized, no deadline) is loaded under
  ``CI=true`` so CI never turns red by chance; ``dev`` (the default elsewhere)
  is also deadline-free because the machines are shared and slow.
* ``require_tool(name)``: a test that needs ptxas, nvdisasm, Triton or torch
  skips when the tool is missing on a developer machine, but *fails* under
  ``CI=true`` -- a skip there would hide a broken install step.
* ``gpu_available()``: a usable CUDA device through torch (tests marked
  ``gpu`` skip cleanly without one).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Triton 3.9 warns on every compile until this is set; 1 keeps its current (fused) default.
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("full", parent=settings.get_profile("ci"), max_examples=1000)
settings.load_profile(os.environ.get("LOWBIT_HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))


def marker_line(lines: list[str], marker: str) -> int:
    """The 1-based line of ``lines`` holding the comment ``# E:<marker>`` (exactly one): where an error is expected."""
    import re  # noqa: PLC0415

    hits = [i + 1 for i, text in enumerate(lines) if re.search(rf"# E:{re.escape(marker)}(\s|$)", text)]
    assert len(hits) == 1, marker
    return hits[0]


def require_tool(name: str) -> str:
    """Return the path of an external tool, or skip (fail under CI=true) when it is missing.

    ``name`` is ``"ptxas"``, ``"nvdisasm"``, ``"triton"`` or ``"torch"``.
    """
    if name in ("triton", "torch"):
        try:
            __import__(name)
        except ImportError as exc:  # pragma: no cover - depends on the machine
            _missing(f"{name} is not importable ({exc}); install the extra: pip install -e '.[test,torch]'")
        return name
    from lowbit import toolchain  # noqa: PLC0415

    path = toolchain.find_tool(name)
    if path is None:
        _missing(f"{name} not found (PATH, CUDA_HOME, nvidia-cuda-* wheels); run `lowbit install-tools`")
    return path


def require_module(name: str) -> object:
    """Import an optional dependency (torch, cuda.bindings): skip without it, but fail under ``CI=true``."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        _missing(f"{name} is not importable ({exc}); install the project's extras")


def gpu_available() -> bool:
    """A CUDA device usable through torch (False without torch, a driver or a device)."""
    try:
        import torch
    except ImportError:
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        return False


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and a required tool is missing: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def ptxas_path() -> str:
    return require_tool("ptxas")


@pytest.fixture
def nvdisasm_path() -> str:
    return require_tool("nvdisasm")


@pytest.fixture
def triton_available() -> str:
    return require_tool("triton")
