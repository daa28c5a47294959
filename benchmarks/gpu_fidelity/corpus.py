"""The GPU fidelity corpus: self-contained PTX launches with inputs, references and comparison rules.

A :class:`Case` is everything a GPU needs to run one kernel (PTX text,
``.entry`` name, grid, block, dynamic shared bytes, initial arguments) plus,
per compared output, an independent numpy reference and an :class:`Out`
rule:

* ``"exact"``  -- raw bits equal (integer, bit-manipulation and conversion
  kernels); ``nan_any=True`` lets any NaN match any NaN (used only where the
  ISA leaves the NaN payload open);
* ``"close"``  -- ``|got - want| <= atol + rtol |want|`` and, when ``tol``
  (a per-element float64 array) is given, ``|got - want| <= tol`` instead;
  GPU against the emulator uses twice the bound (both lie within it of the
  reference);
* ``mask`` (bool, same shape) -- elements where it is False are *not
  compared* (the ISA leaves them undefined, e.g. ``div.u32`` by zero).

Sources (modules beside this one):

* ``corpus_kernels``: the committed fixtures (``tests/emu/fixtures``), the
  compiled examples (``examples/0*.py``, sm_80 and sm_90), the hand-built SIMT
  kernels (``tests/codegen/simt_kernels.py``) and Triton's W4A16 baseline;
* ``corpus_isa``: instruction families in hand-written PTX (cvt, fma, integer
  corners, lop3/prmt/bfe/bfi, shfl, ldmatrix);
* ``corpus_mma``: every ``mma.sync`` shape/type the emulator implements.

``collect(tier)`` builds them: ``"default"`` is the quick set, ``"full"`` adds
the exhaustive sweeps (all 8-bit/16-bit inputs).  ``run_emulator(case)``
runs one on :func:`lowbit.emu.launch` and returns its outputs;
``check(case, outs)`` compares them with the references using the same rule
code as the GPU side (``run_gpu.compare``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run_gpu  # noqa: E402  (the GPU side's comparison rule, shared)


@dataclass
class Out:
    """One compared output: parameter index, reference and rule."""

    index: int
    ref: np.ndarray
    mode: str = "exact"  # "exact" | "close"
    rtol: float = 0.0
    atol: float = 0.0
    tol: np.ndarray | None = None  # per-element absolute bound (float64), "close" only
    mask: np.ndarray | None = None  # False: don't compare (ISA-undefined)
    nan_any: bool = False
    fmt: str = ""  # float format for ulp reporting: f16/bf16/f32/f64, "" = from dtype / integer
    name: str = ""


@dataclass
class Case:
    name: str
    ptx: str
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: list  # numpy arrays (device buffers) and numpy scalars (value params), initial values
    outs: list[Out]
    shared_bytes: int = 0
    source: str = ""  # fixture | example | simt | triton | isa | mma
    xfail: str = ""  # non-empty: the emulator is known to disagree with the reference (reason)
    note: str = ""
    checks: bool = True  # emulator checks (memcheck, racecheck, definedness); off only with a reason in `note`
    meta: dict = field(default_factory=dict)

    @property
    def target(self) -> str:
        return ptx_target(self.ptx)


def ptx_target(ptx: str) -> str:
    m = re.search(r"^\s*\.target\s+(sm_\w+)", ptx, re.M)
    return m.group(1) if m else "?"


def dim3(x) -> tuple[int, int, int]:
    t = tuple(int(v) for v in (x if isinstance(x, (tuple, list)) else (x,)))
    return (t + (1, 1, 1))[:3]  # type: ignore[return-value]


# ----------------------------------------------------------------------------- registry

_SOURCES: dict[str, Callable[[str], Iterator[Case]]] = {}


def source(name: str):
    def deco(fn):
        _SOURCES[name] = fn
        return fn

    return deco


def _load_sources() -> None:
    for mod in ("corpus_kernels", "corpus_isa", "corpus_mma"):
        if mod not in sys.modules:
            __import__(mod)


def source_names() -> list[str]:
    _load_sources()
    return list(_SOURCES)


def collect(tier: str = "default", sources: list[str] | None = None, only: str | None = None) -> Iterator[Case]:
    """Yield the corpus' cases (``tier`` "default" or "full"); ``only`` filters names by substring."""
    _load_sources()
    seen = set()
    for sname, fn in _SOURCES.items():
        if sources and sname not in sources:
            continue
        for case in fn(tier):
            if only and only not in case.name:
                continue
            if case.name in seen:
                raise ValueError(f"duplicate case name {case.name}")
            seen.add(case.name)
            if not case.source:
                case.source = sname
            yield case


# ----------------------------------------------------------------------------- running and checking


def copy_args(args: list) -> list:
    return [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]


def run_emulator(case: Case) -> dict[int, np.ndarray]:
    """Run ``case`` on the emulator (checks on); returns {param index: output array}."""
    from lowbit.emu import launch

    args = copy_args(case.args)
    kw = {}
    if case.shared_bytes > 48 * 1024:
        kw["max_dynamic_shared"] = case.shared_bytes
    launch(case.ptx, case.kernel, case.grid, case.block, args, shared_bytes=case.shared_bytes, checks=case.checks, **kw)
    return {o.index: args[o.index] for o in case.outs}


def compare_out(o: Out, got: np.ndarray, want: np.ndarray | None = None, scale: float = 1.0) -> dict:
    want = o.ref if want is None else want
    tol = None if o.tol is None else o.tol * scale
    return run_gpu.compare(got, want, o.mode, o.rtol * scale, o.atol * scale, tol=tol, mask=o.mask,
                           nan_any=o.nan_any, fmt=o.fmt)


def check(case: Case, outs: dict[int, np.ndarray]) -> list[str]:
    """Mismatch descriptions of emulator outputs against the references (empty: all pass)."""
    bad = []
    for o in case.outs:
        r = compare_out(o, outs[o.index])
        if not r["ok"]:
            bad.append(f"{case.name} out {o.name or o.index}: {r['bad']}/{r['total']} bad, first {r['first']}")
    return bad


# ----------------------------------------------------------------------------- PTX helpers

HEADER = ".version {version}\n.target {target}\n.address_size 64\n"

_REGS = """
    .reg .pred %p<8>;
    .reg .b16 %h<32>;
    .reg .b32 %r<64>;
    .reg .b64 %rd<64>;
    .reg .f32 %f<32>;
    .reg .f64 %fd<16>;
"""

_WIDTH = {1: "b8", 2: "b16", 4: "b32", 8: "b64"}


def elementwise(name: str, body: str, ins: list[int], outs: list[int], *, target: str = "sm_80",
                version: str = "8.0") -> str:
    """PTX of an element-wise kernel ``name(in0.., out0.., n)``: thread i < n loads ``ins[k]``-byte
    word i of input k into ``%a{k}`` (a ``.b{8*w}`` register; 1-byte inputs are loaded as
    ``ld.global.u8`` into ``%a{k}`` of type .b16), runs ``body`` and stores ``%d{k}`` (``outs[k]``
    bytes) to word i of output k.  Body registers: ``%p %h %r %rd %f %fd`` and ``%t<k>`` (b32)."""
    params = [f".param .u64 in{k}" for k in range(len(ins))] + [f".param .u64 out{k}" for k in range(len(outs))]
    params.append(".param .u32 n")
    decl = []
    for k, w in enumerate(ins):
        decl.append(f"    .reg .{_WIDTH[max(w, 2)]} %a{k};")
    for k, w in enumerate(outs):
        decl.append(f"    .reg .{_WIDTH[max(w, 2)]} %d{k};")
    decl.append("    .reg .b32 %t<32>;\n    .reg .b64 %q<8>;")
    lines = [
        "    mov.u32 %r60, %ctaid.x;", "    mov.u32 %r61, %ntid.x;", "    mov.u32 %r62, %tid.x;",
        "    mad.lo.s32 %r63, %r60, %r61, %r62;", "    ld.param.u32 %r59, [n];",
        "    setp.ge.u32 %p7, %r63, %r59;", "    @%p7 bra DONE;", "    cvt.u64.u32 %rd63, %r63;",
    ]
    for k, w in enumerate(ins):
        lines += [f"    ld.param.u64 %rd{k}, [in{k}];", f"    cvta.to.global.u64 %rd{k}, %rd{k};",
                  f"    mad.lo.s64 %rd{k}, %rd63, {w}, %rd{k};"]
        lines.append(f"    ld.global.u8 %a{k}, [%rd{k}];" if w == 1 else f"    ld.global.b{8 * w} %a{k}, [%rd{k}];")
    lines.append(body)
    for k, w in enumerate(outs):
        j = 20 + k
        lines += [f"    ld.param.u64 %rd{j}, [out{k}];", f"    cvta.to.global.u64 %rd{j}, %rd{j};",
                  f"    mad.lo.s64 %rd{j}, %rd63, {w}, %rd{j};"]
        lines.append(f"    st.global.u8 [%rd{j}], %d{k};" if w == 1 else f"    st.global.b{8 * w} [%rd{j}], %d{k};")
    lines.append("DONE:\n    ret;")
    return (HEADER.format(version=version, target=target) + f"\n.visible .entry {name}(\n    "
            + ",\n    ".join(params) + "\n)\n{\n" + _REGS + "\n".join(decl) + "\n" + "\n".join(lines) + "\n}\n")


def elementwise_case(name: str, body: str, inputs: list[np.ndarray], refs: list[np.ndarray], *,
                     target: str = "sm_80", version: str = "8.0", block: int = 128, rules: list[dict] | None = None,
                     **kw) -> Case:
    """A :class:`Case` for :func:`elementwise`: inputs and references are 1-d arrays of equal length."""
    n = len(inputs[0])
    ptx = elementwise(name, body, [a.dtype.itemsize for a in inputs], [r.dtype.itemsize for r in refs],
                      target=target, version=version)
    outs_init = [np.full(n, 0xA5, np.uint8).view(np.uint8).repeat(r.dtype.itemsize).view(r.dtype) for r in refs]
    args = [np.ascontiguousarray(a) for a in inputs] + outs_init + [np.uint32(n)]
    rules = rules or [{} for _ in refs]
    outs = [Out(index=len(inputs) + k, ref=np.ascontiguousarray(r), name=f"d{k}", **rules[k]) for k, r in enumerate(refs)]
    return Case(name=name, ptx=ptx, kernel=name, grid=(max(1, -(-n // block)), 1, 1), block=(block, 1, 1),
                args=args, outs=outs, **kw)


def load_module(path: Path, name: str):
    """Import a file (an example) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod
