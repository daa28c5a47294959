"""Robustness: no stale state (issue 9, item 3).

A module global (or closure variable) a kernel reads is part of its specialisation key when it holds an
int, float, bool, string, dtype or a tuple of them: change it between launches and the next launch uses
the new value, on the interpreter and on the compiled path alike (docs/dsl.md, "Module globals").
"""

from __future__ import annotations

import numpy as np
import pytest

import lowbit

SCALE = 2.0
OFFSET = 1
NEGATE = False
MODE = "add"
ELEM = lowbit.dtype("f16")
SHAPE = (128,)

PATHS = ["interpreter", "emulator"]


@lowbit.func
def shift(v):
    return v + OFFSET


@lowbit.kernel
def uses_globals(x: lowbit.ptr("f32")):
    v = lowbit.load(lowbit.global_view(x, SHAPE), (0,), SHAPE)
    r = shift(v * SCALE)
    if NEGATE:
        r = -r
    if MODE == "sub":
        r = r - 100.0
    r = lowbit.cast(lowbit.cast(r, ELEM), lowbit.float32)
    lowbit.store(lowbit.global_view(x, SHAPE), r, (0,))


def _expected(x: np.ndarray) -> np.ndarray:
    r = x * np.float32(SCALE) + np.float32(OFFSET)
    if NEGATE:
        r = -r
    if MODE == "sub":
        r = r - np.float32(100.0)
    to = {"f16": np.float16, "f32": np.float32, "bf16": None}[ELEM.name]
    return r.astype(to).astype(np.float32) if to is not None else r


def _launch(path: str, x: np.ndarray) -> None:
    (uses_globals.interpret if path == "interpreter" else uses_globals)[(1,)](x)


@pytest.fixture
def restore_globals():
    saved = {k: globals()[k] for k in ("SCALE", "OFFSET", "NEGATE", "MODE", "ELEM")}
    yield
    globals().update(saved)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("SCALE", [2.0, 3.5, -0.25]),
        ("OFFSET", [1, 7, -3]),
        ("NEGATE", [False, True, False]),
        ("MODE", ["add", "sub"]),
        ("ELEM", [lowbit.dtype("f16"), lowbit.dtype("f32")]),
    ],
)
def test_a_changed_global_is_used_by_the_next_launch(path: str, name: str, values: list, restore_globals) -> None:
    for value in values:
        globals()[name] = value
        x = np.linspace(-3, 3, 128, dtype=np.float32) + np.float32(1 / 3)
        want = _expected(x.copy())
        _launch(path, x)
        assert np.array_equal(x, want), (name, value)


def test_both_paths_agree_after_each_change(restore_globals) -> None:
    global SCALE, OFFSET
    for s, o in ((2.0, 1), (5.0, 1), (5.0, -4)):
        SCALE, OFFSET = s, o
        a, b = np.arange(128, dtype=np.float32), np.arange(128, dtype=np.float32)
        _launch("interpreter", a)
        _launch("emulator", b)
        assert np.array_equal(a, b) and a[3] == np.float16(3 * s + o)


def test_an_unchanged_global_reuses_the_program(restore_globals) -> None:
    global SCALE
    first = uses_globals.specialize()
    assert uses_globals.specialize() is first
    SCALE = 9.0
    other = uses_globals.specialize()
    assert other is not first
    SCALE = 2.0
    assert uses_globals.specialize() is first  # the old value's program is still cached


def test_the_compiled_key_follows_the_global(restore_globals) -> None:
    global OFFSET
    k1 = lowbit.compile(uses_globals).key
    OFFSET = 12
    k2 = lowbit.compile(uses_globals).key
    assert k1 != k2


def test_a_nan_global_does_not_recompile_every_launch(restore_globals) -> None:
    global SCALE
    SCALE = float("nan")
    assert uses_globals.specialize() is uses_globals.specialize()


def test_a_closure_variable_is_tracked_too() -> None:
    def make():
        factor = 3

        @lowbit.kernel
        def scaled(x: lowbit.ptr("int32")):
            v = lowbit.load(lowbit.global_view(x, (128,)), (0,), (128,))
            lowbit.store(lowbit.global_view(x, (128,)), v * factor, (0,))

        def set_factor(f: int) -> None:
            nonlocal factor
            factor = f

        return scaled, set_factor

    scaled, set_factor = make()
    for path in PATHS:
        for f in (3, 5, -2):
            set_factor(f)
            x = np.arange(128, dtype=np.int32)
            (scaled.interpret if path == "interpreter" else scaled)[(1,)](x)
            assert np.array_equal(x, np.arange(128, dtype=np.int32) * f), (path, f)


def test_a_tuple_global_shapes_the_tile(restore_globals, monkeypatch: pytest.MonkeyPatch) -> None:
    global SHAPE
    saved = SHAPE
    try:
        for shape in ((128,), (256,)):
            SHAPE = shape
            x = np.ones(256, np.float32)
            _launch("emulator", x)
            n = shape[0]
            assert np.all(x[:n] == np.float16(3.0)) and np.all(x[n:] == 1.0)
    finally:
        SHAPE = saved
