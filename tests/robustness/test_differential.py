"""Issue 9 item 2, "one meaning": the interpreter and the compiled path agree bit for bit on the semantics table.

Every element-wise op of ``lowbit.ir.semantics.OPS`` x every dtype it is
defined on, and every cast between two kernel dtypes, runs as one kernel
through ``kernel.interpret[grid]`` and through ``kernel[grid]`` (DSL -> PTX
on the emulator) on edge values (signed zeros, min subnormals, maxima,
infinities, NaNs with several payloads and signs, rounding ties, wrap and
shift edges) plus random codes; the outputs' raw bits must be equal.  The
number of kernels is computed from the table and asserted, so a row cannot
drop out silently.

Default tier (about 70 s on 2 cores): every (op, dtype) kernel -- every op on
every accepted dtype -- and, for casts, every source to a rotating set of destinations that covers every (source class, destination
class) row of ``CASTS`` with every dtype as a source and as a destination.
``full``: every (source, destination) pair and more random values.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from lowbit.ir import semantics as sem
from tests.conftest import require_tool
from tests.robustness import differential as D

NAMES = [*sem.SWEEP_DTYPES, D.BOOL]
CLASSES = ("bool", "int", "float", "small_float", "codebook", "bipolar")


def _cls(name: str) -> str:
    return sem.dtype_class(D.dt_of(name))


#: The default tier runs every (op, dtype) kernel of the table: every accepted dtype, as issue 9 asks.
DEFAULT_OP_DTYPES = tuple(NAMES)


def default_cast_pairs() -> list[tuple[str, str]]:
    """Each source to f32 and to one dtype of each class (rotating with the source), so every dtype is a
    source and a destination and every (source class, destination class) row of CASTS is covered."""
    by_cls = {c: [n for n in NAMES if _cls(n) == c] for c in CLASSES}
    pairs = []
    for i, src in enumerate(NAMES):
        dsts = {"f32"} | {by_cls[c][(i + k) % len(by_cls[c])] for k, c in enumerate(CLASSES)}
        pairs += [(src, d) for d in sorted(dsts) if d != src]
    return pairs


def _in_default(c: D.Case) -> bool:
    if c.kind == "cast":
        return (c.dt, c.dst) in set(default_cast_pairs())
    return c.op == "where" or c.dt in DEFAULT_OP_DTYPES


def _expected(full: bool) -> int:
    """The number of kernels, from the table: every (op, dtype) it defines, every (source, destination)."""
    n_ops = sum(1 for r in sem.OPS for d in NAMES if sem.applies(r, D.dt_of(d)) and not (r.op == "where" and d == D.BOOL)
                and (full or r.op == "where" or d in DEFAULT_OP_DTYPES))  # fmt: skip
    return n_ops + (len(NAMES) * (len(NAMES) - 1) if full else len(default_cast_pairs()))


def _select(full: bool) -> list[D.Case]:
    cs = D.cases(full=full)
    return cs if full else [c for c in cs if _in_default(c)]


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The compile cache in a temporary directory: the sweep neither reads nor fills the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LOWBIT_CACHE_DIR", str(tmp_path_factory.mktemp("lowbit-differential-cache")))
    yield
    mp.undo()


def _sweep(full: bool, record: pytest.RecordProperty) -> None:
    require_tool("ptxas")
    cs = _select(full)
    assert len(cs) == _expected(full), "a row of the semantics table dropped out of the sweep"
    t0 = time.time()
    bad = [o for o in map(D.run, cs) if o.error or o.bad.size]
    n_values = sum(c.n for c in cs)
    n_ops = sum(1 for c in cs if c.kind != "cast")
    summary = (f"differential sweep ({'full' if full else 'default'}): {len(cs)} kernels "
               f"({n_ops} (op, dtype) + {len(cs) - n_ops} casts) over {len(NAMES)} dtypes, "
               f"{n_values} values, {time.time() - t0:.0f} s, {len(bad)} disagreements")  # fmt: skip
    print(summary)
    record("sweep", summary)
    assert not bad, "\n".join(o.describe() for o in bad[:25])


def test_sweep_size_is_computed_from_the_table() -> None:
    """The expected counts follow from OPS x SWEEP_DTYPES; every op and cast row is represented."""
    cs = D.cases()
    ops_seen = {c.op for c in cs if c.kind != "cast"}
    assert ops_seen == {r.op for r in sem.OPS}
    pairs = default_cast_pairs()
    assert {s for s, _ in pairs} == set(NAMES) and {d for _, d in pairs} == set(NAMES)
    assert _expected(True) == D.expected_kernels() == 2159  # 599 (op, dtype) + 40 * 39 casts
    assert _expected(False) == 863  # every (op, dtype) + 264 covering casts
    assert {r.op for r in sem.OPS} == {c.op for c in _select(False) if c.kind != "cast"}
    rows = {(_cls(s), _cls(d)) for s, d in pairs}
    assert rows == {(a, b) for a in CLASSES for b in CLASSES} - {("bool", "bool"), ("codebook", "codebook")}  # one member each
    assert len(cs) == D.expected_kernels()


def test_packing_roundtrip() -> None:
    rng = np.random.default_rng(1)
    for bits in (1, 3, 4, 6, 7, 8, 16, 32, 64):
        codes = D.random_codes(rng, bits, 300)
        assert np.array_equal(D.unpack(D.pack(codes, bits), bits, 300), codes)


def test_differential_default(private_cache: None, record_property: pytest.RecordProperty) -> None:
    _sweep(False, record_property)


@pytest.mark.full
def test_differential_full(private_cache: None, record_property: pytest.RecordProperty) -> None:
    _sweep(True, record_property)


def test_no_ftz_in_the_sweep_ptx(private_cache: None) -> None:
    """Subnormals are kept: no float instruction of a float op kernel flushes them (the table says so)."""
    require_tool("ptxas")
    from lowbit.compiler.driver import compile as compile_kernel  # noqa: PLC0415

    for op, kind in (("add", "binary"), ("min", "binary"), ("exp2", "unary"), ("sqrt", "unary"), ("fma", "ternary")):
        for t in ("f16", "bf16", "f32"):
            k = D.KERNELS[kind]
            ck = compile_kernel(k, arch="sm_80", OP=op, T=D.dt_of(t), **({"IS_BOOL": False} if kind == "binary" else {}))
            assert ".ftz" not in ck.ptx, f"{op} {t}: .ftz in the PTX"



def test_docs_state_the_table() -> None:
    """docs/dsl.md's "Semantics at the edges" section is the table's rendering (one place states it)."""
    from pathlib import Path  # noqa: PLC0415

    text = (Path(__file__).resolve().parents[2] / "docs" / "dsl.md").read_text()
    begin, end = "<!-- semantics:begin -->\n", "<!-- semantics:end -->\n"
    assert text[text.index(begin) + len(begin) : text.index(end)] == sem.markdown(), (
        "docs/dsl.md is out of date: regenerate the section from lowbit.ir.semantics.markdown()"
    )
