"""Hold the code to ARCHITECTURE.md's allowed-imports table: arrows point one way.

Every ``import`` / ``from ... import`` in every lowbit module (including ones
inside functions: a lazy import is still a dependency) is checked against the
table below.  Third-party modules are checked too, so that e.g. ``emu`` never
starts depending on llvmlite.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lowbit"

STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# package -> lowbit packages and third-party modules it may import (besides the standard library)
LEAF = {"errors", "config"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": set(),
    "arch": {"errors"},
    "toolchain": {"errors", "config", "nvidia", "cuda"},
    "dtypes": {"errors", "numpy", "ml_dtypes"},
    "packing": {"errors", "dtypes", "numpy"},
    "quant": {"errors", "dtypes", "packing", "numpy", "ml_dtypes"},
    "layout": {"errors", "arch", "dtypes"},
    "ir": {"errors", "arch", "dtypes", "layout", "lark", "numpy"},
    # config: a leaf (stdlib only) naming the watchdog's default budgets
    "emu": {"errors", "config", "arch", "dtypes", "numpy", "lark"},
    # the one argument binder (issue 14): reads a program's signature, used by interp, emulator and GPU runtime
    "binder": {"errors", "dtypes", "ir", "numpy", "ml_dtypes"},
}
_BELOW_IR = {"errors", "config", "arch", "dtypes", "packing", "quant", "layout", "ir", "binder", "numpy", "ml_dtypes",
             "lark"}
ALLOWED["dsl"] = _BELOW_IR
ALLOWED["interp"] = _BELOW_IR
ALLOWED["transforms"] = {"ir", "layout", "dtypes", "arch", "errors", "numpy"}
ALLOWED["codegen"] = {"ir", "dtypes", "arch", "errors", "config", "toolchain", "llvmlite"}
_COMPILER = _BELOW_IR | {"dsl", "interp", "transforms", "codegen", "emu", "toolchain", "compiler", "launch", "api"}
ALLOWED["compiler"] = _COMPILER | {"llvmlite"}  # llvmlite only to read its version for cache keys
# launch picks the backend, the GPU runtime among them; the runtime never imports launch (arrows one way)
ALLOWED["launch"] = _COMPILER | {"runtime"}
ALLOWED["api"] = _COMPILER
ALLOWED["runtime"] = (_COMPILER - {"launch", "api"}) | {"runtime", "cuda", "torch"}
# the CLI and the package root are users of everything
ALLOWED["cli"] = None  # type: ignore[assignment]
ALLOWED["__main__"] = {"cli"}  # `python -m lowbit`: the command line and nothing else
ALLOWED["__init__"] = None  # type: ignore[assignment]
ALLOWED["tune"] = None  # type: ignore[assignment]
# the library in the DSL and the operator layers are ordinary users of the public API: `import lowbit`
# (the package root, lowbit.errors), plus each other in one direction (kernels <- ops <- nn)
_PUBLIC = {"__init__", "errors"}
ALLOWED["kernels"] = _PUBLIC | {"numpy"}
# ops launches on the GPU through the runtime and its argument binder (docs/runtime.md, "For lowbit.ops")
ALLOWED["ops"] = _PUBLIC | {"kernels", "runtime", "binder", "numpy", "ml_dtypes", "torch"}
ALLOWED["nn"] = _PUBLIC | {"ops", "numpy", "torch"}


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the module's own package
                base = list(path.relative_to(ROOT.parent).with_suffix("").parts)
                base = base[: len(base) - node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "lowbit":  # `from lowbit import config`: the names are the packages
                found += [(node.lineno, f"lowbit.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, name))
    return found


def _target(name: str) -> str | None:
    """What an import refers to: a lowbit package, a third-party top-level module, or None for stdlib."""
    parts = name.split(".")
    if parts[0] == "lowbit":
        return parts[1] if len(parts) > 1 else "__init__"
    if parts[0] in STDLIB:
        return None
    return parts[0]


MODULES = sorted(p for p in ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_architecture_table(path: Path) -> None:
    package = _package_of(path)
    assert package in ALLOWED, f"{package} is a new top-level lowbit module: add it to the table in {__file__}"
    allowed = ALLOWED[package]
    if allowed is None:
        return
    bad = []
    for line, name in _imports(path):
        target = _target(name)
        if target is None or target == package:
            continue
        if target not in allowed:
            bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    assert not bad, "imports against ARCHITECTURE.md's table:\n" + "\n".join(bad)


def test_the_table_sees_every_module() -> None:
    assert len(MODULES) >= 5
    assert any(p.name == "banks.py" for p in MODULES)
    assert any(p.parts[-2:] == ("kernels", "wx_matmul.py") for p in MODULES)

