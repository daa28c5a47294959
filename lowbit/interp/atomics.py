"""The interpreter's meaning of ``atomic``: element-wise read-modify-write of global memory, in a fixed order.

Blocks run one after another and a tile's elements are applied in
row-major order, so the interpreter's order is one legal serialisation of
the GPU's unordered atomics.  Elements that share an address (a stride-0
view) see each other's updates, like separate atomics would.  f32 ``add``
flushes subnormal inputs and results to sign-preserving zero as
``atom.add.f32`` on global memory does (PTX ISA 9.7.13.5); f16 ``add`` is
``.noftz`` (no flush), rounding each sum to f16.
"""

from __future__ import annotations

import numpy as np

from lowbit.dtypes import DType
from lowbit.interp import values as V
from lowbit.interp.memory import GlobalViewValue, gather, scatter, tile_indices

__all__ = ["atomic"]

_TINY_F32 = np.float32(2.0**-126)


def _ftz(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < _TINY_F32, np.copysign(np.float32(0), x), x).astype(np.float32)


def _apply(kind: str, dt: DType, old: np.ndarray, x: np.ndarray, cmp: np.ndarray | None) -> np.ndarray:
    if kind == "add":
        if dt.name == "f32":
            return _ftz(_ftz(old) + _ftz(x))
        if dt.name == "f16":
            return (old.astype(np.float16) + x.astype(np.float16)).astype(np.float16)
        return V.wrap(old.astype(np.int64) + x.astype(np.int64), dt)
    if kind == "max":
        return np.maximum(old, x)
    if kind == "min":
        return np.minimum(old, x)
    assert cmp is not None  # noqa: S101 - cas has a compare tile (checked by the op)
    return np.where(old == cmp, x, old)


def atomic(view: GlobalViewValue, offsets: tuple[int, ...], kind: str, value: np.ndarray, ok: np.ndarray,
           cmp: np.ndarray | None, where: str) -> np.ndarray:  # fmt: skip
    """Apply the atomics of one tile; returns the old values (0 where an element is off)."""
    dt = view.dtype
    lin, inb = tile_indices(view, offsets, value.shape)
    ok = ok & inb
    store = V.storage_dtype(dt)
    old_all = np.zeros(value.shape, store)
    flat = np.flatnonzero(ok.reshape(-1))
    lin_f, val_f = lin.reshape(-1), value.reshape(-1)
    cmp_f = cmp.reshape(-1) if cmp is not None else None
    done = np.zeros(flat.size, bool)
    # one round per multiplicity of an address: within a round every address is distinct
    while not done.all():
        todo = flat[~done]
        _, first = np.unique(lin_f[todo], return_index=True)
        sel = todo[np.sort(first)]
        one = np.ones(sel.size, bool)
        old = V.from_codes(gather(view, lin_f[sel], one, where), dt)
        new = _apply(kind, dt, old, val_f[sel].astype(store), None if cmp_f is None else cmp_f[sel].astype(store))
        scatter(view, lin_f[sel], one, V.to_codes(np.asarray(new, store), dt), where)
        old_all.reshape(-1)[sel] = old
        done[np.isin(flat, sel)] = True
    return old_all
