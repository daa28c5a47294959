"""The one argument binder: launch arguments checked and converted, for every backend.

A :class:`Binder` is built once per specialised :class:`~lowbit.ir.program.Program`
(:meth:`Binder.of` memoises it on the program) from the kernel's signature and
the program's global views -- never by parsing text.  The interpreter, the PTX
emulator and the GPU runtime all call :meth:`Binder.bind`, so a bad argument
gets the same :class:`~lowbit.errors.LaunchError` on every backend, raised
before anything runs, and inputs are never modified by a failed bind.

What is checked, per pointer parameter (in this order; the message names the
argument):

1. **kind**: a numpy array, a torch tensor (CPU or CUDA, read through its
   attributes: torch is never imported here) or any object with
   ``__cuda_array_interface__`` (lowbit's own :class:`lowbit.runtime.DeviceArray`,
   CuPy, Numba; a DeviceArray also carries ``__lowbit_array__``, the same facts
   as one precomputed tuple, so it skips building the interface dict);
2. **device**: every array argument on one device (``"host"`` or ``"cuda:N"``);
3. **dtype**: the array's elements hold the pointer's lowbit dtype (same width;
   floats only from floats or raw unsigned bits; sub-byte codes in any integer
   words);
4. **layout**: C-contiguous (a strided tensor is refused, never copied);
5. **writable**: a read-only numpy array only for a pointer the kernel never
   stores through (the program says which: ``StoreGlobal`` on one of its views);
6. **size where known**: every ``global_view`` of the pointer whose shape and
   strides are expressions of scalar parameters only is evaluated with this
   launch's scalars; the array must hold that view's last element (a GPU has
   no memcheck: this is what stands between a wrong ``N`` and corrupted memory);
7. **alignment**: a pointer the program was specialised on (``div(16)``) must
   be 16-byte aligned.

Scalars: ints in range for their dtype, floats rounded to the parameter's
format (the VM's cast rules), bools; numpy scalars are accepted, tensors are
not (reading a CUDA scalar would synchronise the host).  Integer scalars the
program was specialised on must be multiples of the fact.

:meth:`Binder.bind` also *detects* the facts a launch could be specialised on
(:data:`~lowbit.ir.program.SPECIALIZED_DIVISIBILITY`), so one bind serves both
"which variant" and "is this call valid".
"""

from __future__ import annotations

import math
import operator
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import ml_dtypes
import numpy as np

from lowbit.dtypes import DType
from lowbit.errors import LaunchError
from lowbit.ir import ops as O
from lowbit.ir.expr import Expr, Var, convert, evaluate, free_vars
from lowbit.ir.program import SPECIALIZED_DIVISIBILITY, Program
from lowbit.ir.types import PointerType, is_bool

__all__ = ["HOST", "Binder", "Bound", "device_of", "torch_numpy_dtype"]

HOST = "host"
_EXTENT_CACHE_SIZE = 256


# ----------------------------------------------------------------------------- array kinds


_TORCH: list[object] = []  # (torch.Tensor, torch.strided) once torch has been seen imported


def _torch_tensor_type() -> type | None:
    """``torch.Tensor`` if torch is already imported (a tensor argument implies it is), else None."""
    if _TORCH:
        return _TORCH[0]  # type: ignore[return-value]
    torch = sys.modules.get("torch")
    tt = getattr(torch, "Tensor", None) if torch is not None else None
    if tt is not None and hasattr(torch, "strided"):  # a fully imported torch: remember it
        _TORCH[:] = [tt, torch.strided]
    return tt


_TORCH_TO_NUMPY: dict[object, np.dtype] = {}


def _torch_dtypes() -> tuple[object, ...]:
    """The torch dtypes :func:`torch_numpy_dtype` maps."""
    torch_numpy_dtype(None)
    return tuple(_TORCH_TO_NUMPY)


def torch_numpy_dtype(tdtype: object) -> np.dtype | None:
    """The numpy dtype with the same elements as a torch dtype (ml_dtypes for bf16 / fp8), or None."""
    if not _TORCH_TO_NUMPY:
        torch = sys.modules["torch"]
        names = {
            "float16": np.float16, "float32": np.float32, "float64": np.float64, "bfloat16": ml_dtypes.bfloat16,
            "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
            "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "bool": np.bool_,
            "float8_e4m3fn": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2,
        }  # fmt: skip
        for name, npt in names.items():
            if hasattr(torch, name):
                _TORCH_TO_NUMPY[getattr(torch, name)] = np.dtype(npt)
    return _TORCH_TO_NUMPY.get(tdtype)


_CUDA_NAMES: dict[int, str] = {}


def _cuda_name(ordinal: int) -> str:
    name = _CUDA_NAMES.get(ordinal)
    if name is None:
        name = _CUDA_NAMES[ordinal] = f"cuda:{ordinal}"
    return name


def _torch_strided() -> object:
    return _TORCH[1] if _TORCH else sys.modules["torch"].strided


def _dtype_text(value: object) -> str:
    """How an array argument's dtype is named in messages (torch's own name for tensors)."""
    dt = getattr(value, "dtype", None)
    if dt is None and hasattr(value, "__cuda_array_interface__"):
        return str(value.__cuda_array_interface__.get("typestr"))  # type: ignore[attr-defined]
    return str(dt)


def device_of(value: object) -> str | None:
    """``"host"``, ``"cuda:N"`` for an array argument, None for anything else (a scalar, a bad type)."""
    if isinstance(value, np.ndarray):
        return HOST
    tt = _torch_tensor_type()
    if tt is not None and isinstance(value, tt):
        if value.is_cuda:
            return f"cuda:{value.get_device()}"
        return HOST if value.device.type == "cpu" else str(value.device)
    if hasattr(value, "__cuda_array_interface__"):
        return f"cuda:{getattr(value, 'device_ordinal', 0)}"
    return None


@dataclass(frozen=True)
class _ArrayInfo:
    """What the checks need to know about an array argument, whatever its kind."""

    device: str
    dtype: np.dtype | None
    nbytes: int
    contiguous: bool
    writable: bool
    address: int
    host: np.ndarray | None  # the numpy array the host backends run on (None for device arrays)


def _c_contiguous(shape: Sequence[int], strides: Sequence[int] | None, itemsize: int) -> bool:
    if strides is None:
        return True
    expect = itemsize
    for n, s in zip(reversed(tuple(shape)), reversed(tuple(strides))):
        if n != 1 and s != expect:
            return False
        expect *= n
    return True


def _torch_info(name: str, t: object) -> _ArrayInfo:
    if t.layout is not sys.modules["torch"].strided:  # type: ignore[attr-defined]
        raise LaunchError(f"argument '{name}': a {t.layout} tensor; pass a dense (strided) tensor")  # type: ignore[attr-defined]
    if t.device.type == "meta":  # type: ignore[attr-defined]
        raise LaunchError(f"argument '{name}': a meta tensor has no data to launch on")
    if t.is_conj() or t.is_neg():  # type: ignore[attr-defined]
        raise LaunchError(f"argument '{name}': the tensor has a lazy conj/neg bit; call .resolve_conj().resolve_neg()")
    npd = torch_numpy_dtype(t.dtype)  # type: ignore[attr-defined]
    device = device_of(t) or "?"
    contiguous = bool(t.is_contiguous())  # type: ignore[attr-defined]
    host = None
    if device == HOST and contiguous and npd is not None:
        d = t.detach()  # type: ignore[attr-defined]
        host = d.numpy() if npd.kind in "biuf" else None
        if host is None:  # bf16 / fp8: reinterpret the bytes (numpy has no such torch dtype)
            torch = sys.modules["torch"]
            raw = d.view({1: torch.uint8, 2: torch.int16}[npd.itemsize])
            host = raw.numpy().view(npd)
    return _ArrayInfo(device, npd, int(t.numel()) * int(t.element_size()), contiguous,  # type: ignore[attr-defined]
                      True, int(t.data_ptr()), host)  # type: ignore[attr-defined]


def _cai_info(name: str, obj: object) -> _ArrayInfo:
    cai = obj.__cuda_array_interface__  # type: ignore[attr-defined]
    try:
        own = getattr(obj, "dtype", None)  # DeviceArray / CuPy carry a numpy dtype (bf16 has no typestr of its own)
        dt = own if isinstance(own, np.dtype) else np.dtype(cai["typestr"])
        shape = tuple(int(n) for n in cai["shape"])
        addr, readonly = cai["data"]
    except (KeyError, TypeError, ValueError) as exc:
        raise LaunchError(f"argument '{name}': a malformed __cuda_array_interface__ ({exc})") from None
    if cai.get("mask") is not None:
        raise LaunchError(f"argument '{name}': masked device arrays are not supported")
    nbytes = math.prod(shape) * dt.itemsize
    return _ArrayInfo(_cuda_name(getattr(obj, "device_ordinal", 0)), dt, nbytes, _c_contiguous(shape, cai.get("strides"), dt.itemsize),
                      not readonly, int(addr or 0), None)  # fmt: skip


def _info(name: str, value: object, ptr_dtype: DType) -> _ArrayInfo:
    if isinstance(value, np.ndarray):
        return _ArrayInfo(HOST, value.dtype, value.nbytes, bool(value.flags.c_contiguous),
                          bool(value.flags.writeable), int(value.__array_interface__["data"][0]), value)  # fmt: skip
    tt = _torch_tensor_type()
    if tt is not None and isinstance(value, tt):
        return _torch_info(name, value)
    if hasattr(value, "__cuda_array_interface__"):
        return _cai_info(name, value)
    raise LaunchError(f"argument '{name}': expected an array for ptr<{ptr_dtype.name}> (a numpy array, a torch tensor "
                      f"or a device array), got {type(value).__name__}")  # fmt: skip


# ----------------------------------------------------------------------------- per-parameter slots


def element_dtype(dt: DType) -> np.dtype | None:
    """The numpy dtype of ``dt``'s elements when it is a whole number of bytes (None: packed sub-byte codes)."""
    if is_bool(dt):
        return np.dtype(np.bool_)
    if dt.bits % 8 or dt.bits < 8:
        return None
    floats = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "f32": np.float32, "f64": np.float64,
              "e4m3fn": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}  # fmt: skip
    if dt.name in floats:
        return np.dtype(floats[dt.name])
    if dt.is_int:
        return np.dtype(f"{'int' if dt.is_signed else 'uint'}{dt.bits}")
    return np.dtype(f"uint{dt.bits}")  # another byte-wide format (e8m0, a codebook...): its raw codes


def holds(dt: DType, arr_dtype: np.dtype | None) -> bool:
    """Whether an array of ``arr_dtype`` holds ``dt`` elements (the rule every backend applies)."""
    if arr_dtype is None:
        return False
    sd = element_dtype(dt)
    if sd is None:  # packed sub-byte codes: any integer words
        return arr_dtype.kind in "iu"
    if arr_dtype.itemsize != sd.itemsize:
        return False
    if arr_dtype == sd or arr_dtype.kind == "u":  # the type itself, or its raw bits
        return True
    return dt.is_int and arr_dtype.kind == "i"


@dataclass(frozen=True)
class ViewExtent:
    """One ``global_view`` of a pointer whose shape and strides depend on scalar parameters only."""

    bits: int
    shape: tuple[Expr, ...]
    strides: tuple[Expr, ...]
    dtype_name: str


@dataclass(frozen=True)
class PointerSlot:
    name: str
    dtype: DType
    written: bool
    divisibility: int
    views: tuple[ViewExtent, ...]


@dataclass(frozen=True)
class ScalarSlot:
    name: str
    var: Var
    divisibility: int


class Bound(NamedTuple):
    """A checked launch (a named tuple: built on every launch, so it costs half a frozen dataclass).

    ``values[i]`` is, per parameter in order: a host ``np.ndarray`` (host
    launches), an ``int`` device address (GPU launches), or the scalar as a
    Python value already in the parameter's format.  ``facts`` are the
    divisibility facts these arguments allow; ``torch`` says whether a torch
    CUDA tensor is among them (the GPU runtime then launches on torch's
    current stream).
    """

    device: str
    values: tuple[object, ...]
    facts: dict[str, int]
    torch: bool = False


def _walk(ops: Sequence[O.Op]):
    for op in ops:
        yield op
        for attr in ("body", "then_body", "else_body"):
            inner = getattr(op, attr, None)
            if isinstance(inner, tuple):
                yield from _walk(inner)


class Binder:
    """Checks and converts the arguments of one specialised program (see the module docstring)."""

    _memo: weakref.WeakKeyDictionary[Program, Binder] = weakref.WeakKeyDictionary()
    _memo_lock = threading.Lock()

    @classmethod
    def of(cls, prog: Program) -> Binder:
        """The binder of ``prog`` (built once per program object)."""
        got = cls._memo.get(prog)
        if got is None:
            with cls._memo_lock:
                got = cls._memo.get(prog)
                if got is None:
                    got = cls._memo[prog] = cls(prog)
        return got

    def __init__(self, prog: Program) -> None:
        self.kernel_name = prog.name
        self.names = tuple(p.name for p in prog.params)
        scalars = {p.value for p in prog.params if isinstance(p.value, Var)}
        written: set[int] = set()
        views: dict[int, list[ViewExtent]] = {}
        view_ptr: dict[int, int] = {}
        for op in _walk(prog.body):
            if isinstance(op, O.GlobalView):
                view_ptr[id(op.result)] = id(op.ptr)
                used = [v for e in op.shape + op.strides for v in free_vars(e)]
                if all(v in scalars for v in used):
                    dt = op.result.type.dtype  # type: ignore[union-attr]
                    views.setdefault(id(op.ptr), []).append(ViewExtent(dt.bits, op.shape, op.strides, dt.name))
            elif isinstance(op, O.StoreGlobal):
                if id(op.dst) in view_ptr:
                    written.add(view_ptr[id(op.dst)])
                else:  # a store this analysis cannot attribute: every pointer may be written
                    written.update(id(p.value) for p in prog.params)
        self.slots: tuple[PointerSlot | ScalarSlot, ...] = tuple(
            ScalarSlot(p.name, p.value, p.divisibility) if isinstance(p.value, Var)
            else PointerSlot(p.name, p.value.type.dtype, id(p.value) in written, p.divisibility,  # type: ignore[union-attr]
                             tuple(views.get(id(p.value), ())))
            for p in prog.params
        )  # fmt: skip
        self._extent_vars = tuple(sorted({v for s in self.slots if isinstance(s, PointerSlot) for ve in s.views
                                          for e in ve.shape + ve.strides for v in free_vars(e)},
                                         key=lambda v: self.names.index(v.name)))  # fmt: skip
        self._extent_index = tuple(self.names.index(v.name) for v in self._extent_vars)
        idx = self._extent_index  # the memo key of _extents_for: the scalars the views depend on, as a tuple
        self._extent_key = (operator.itemgetter(*idx) if len(idx) > 1 else
                            (lambda out, i=idx[0]: (out[i],)) if idx else (lambda out: ()))  # fmt: skip
        self._has_views = any(isinstance(s, PointerSlot) and s.views for s in self.slots)
        #: (index, slot, name, written, divisibility, {numpy dtype: holds?}, {torch dtype: holds?}) per pointer,
        #: unpacked once per launch; the dtype rule is evaluated once per dtype seen (torch dtypes keyed apart:
        #: no conversion to numpy on the hot path)
        self._pointers = tuple((i, s, s.name, s.written, s.divisibility, {}, {}) for i, s in enumerate(self.slots)
                               if isinstance(s, PointerSlot))  # fmt: skip
        #: (index, slot, integer (not bool)?, min, max) per scalar: an in-range Python int binds without a call
        self._scalars = tuple((i, s, s.var.dtype.is_int and not is_bool(s.var.dtype),
                               s.var.dtype.min if s.var.dtype.is_int else 0, s.var.dtype.max if s.var.dtype.is_int else 0)
                              for i, s in enumerate(self.slots) if isinstance(s, ScalarSlot))  # fmt: skip
        self._extents: dict[tuple[object, ...], tuple[tuple[int, str] | None, ...]] = {}
        #: the straight-line torch-CUDA binder (:meth:`_cuda_fast`), built on the first launch that sees torch
        self._fast: Callable[[Sequence[object]], Bound | None] | None = None

    @property
    def written(self) -> tuple[str, ...]:
        """The pointer parameters the kernel may store through."""
        return tuple(s.name for s in self.slots if isinstance(s, PointerSlot) and s.written)

    def required_bytes(self, scalars: Mapping[str, object]) -> dict[str, tuple[int, str] | None]:
        """Per pointer: (bytes its parameter-sized views need, the view) for these scalars, or None if unknown."""
        out: list[object] = [None] * len(self.slots)
        for i, slot in enumerate(self.slots):
            if isinstance(slot, ScalarSlot):
                if slot.name not in scalars:
                    raise LaunchError(f"missing argument '{slot.name}' of kernel {self.kernel_name}")
                out[i] = _bind_scalar(slot.name, slot.var, scalars[slot.name])
        ext = self._extents_for(out) if self._has_views else (None,) * len(self.slots)
        return {s.name: ext[i] if not isinstance(s, ScalarSlot) else None
                for i, s in enumerate(self.slots) if isinstance(s, PointerSlot)}  # fmt: skip

    # ------------------------------------------------------------------------ binding

    def bind(self, args: Mapping[str, object]) -> Bound:
        """Check ``args`` (by parameter name; every parameter present) and convert them."""
        missing = [n for n in self.names if n not in args]
        if missing:
            raise LaunchError(f"missing argument '{missing[0]}' of kernel {self.kernel_name}")
        return self.bind_values(tuple(args[n] for n in self.names))

    def bind_values(self, values: Sequence[object]) -> Bound:
        """Check ``values`` given in parameter order (the fast path of the GPU runtime)."""
        fast = self._fast
        if fast is None and _TORCH:
            fast = self._fast = self._cuda_fast()
        if fast is not None and (got := fast(values)) is not None:
            return got
        return self._bind_values(values)

    def _cuda_fast(self) -> Callable[[Sequence[object]], Bound | None]:
        """A function binding the common torch call -- plain CUDA tensors, in-range ints -- or answering None.

        Generated once per binder as straight-line code with each slot's
        constants in place: what :meth:`_bind_values` decides per argument
        through a loop, tuple unpacking and dict lookups costs the decode
        path most of its host time (``benchmarks/bench_dispatch.py``).  It
        accepts exactly what the generic path accepts, with the same result
        (tested side by side); anything else -- an error, a numpy array, a
        tensor subclass, a float scalar, a strided tensor -- answers None and
        the generic path binds it or raises its message.
        """
        tt, strided = _TORCH
        n = len(self.slots)
        env: dict[str, object] = {"Bound": Bound, "TT": tt, "STRIDED": strided, "EXT": self._extents,
                                  "extents_for": self._extents_for, "DIV": SPECIALIZED_DIVISIBILITY,
                                  "NAMES": _CUDA_NAMES, "cuda_name": _cuda_name}  # fmt: skip
        args = ", ".join(f"a{i}" for i in range(n)) + ("," if n == 1 else "")
        lines = ["def fast(values):", f"    if len(values) != {n}:", "        return None", f"    {args} = values",
                 "    facts = {}"]  # fmt: skip
        for i, slot, integer, lo, hi in self._scalars:
            if not integer:
                return lambda values: None  # float / bool scalars convert through the VM's rules: generic path
            lines += [f"    if type(a{i}) is not int or not {lo} <= a{i} <= {hi}:", "        return None"]
            if slot.divisibility > 1:
                lines += [f"    if a{i} % {slot.divisibility}:", "        return None"]
            lines += [f"    if a{i} % DIV == 0:", f"        facts[{slot.name!r}] = DIV"]
        if self._has_views:
            key = ", ".join(f"a{i}" for i in self._extent_index) + ("," if len(self._extent_index) == 1 else "")
            lines += [f"    ext = EXT.get(({key}))", "    if ext is None:", f"        o = [None] * {n}"]
            lines += [f"        o[{i}] = a{i}" for i, *_ in self._scalars]
            lines += ["        ext = extents_for(o)"]
        first = True
        for i, slot, name, _written, divisibility, _accepted, _taccepted in self._pointers:
            env[f"OK{i}"] = frozenset(t for t in _torch_dtypes() if holds(slot.dtype, torch_numpy_dtype(t)))
            lines += [f"    if type(a{i}) is not TT or not a{i}.is_cuda or a{i}.layout is not STRIDED or a{i}.is_neg() "
                      f"or a{i}.dtype not in OK{i} or not a{i}.is_contiguous():", "        return None"]  # fmt: skip
            if first:
                lines += [f"    dev = a{i}.get_device()"]
                first = False
            else:
                lines += [f"    if a{i}.get_device() != dev:", "        return None"]
            lines += [f"    p{i} = a{i}.data_ptr()"]
            if self._has_views and slot.views:
                lines += [f"    e = ext[{i}]", f"    if e is not None and e[0] > a{i}.nbytes:", "        return None"]
            if divisibility > 1:
                lines += [f"    if p{i} % {divisibility}:", "        return None"]
            lines += [f"    if p{i} % DIV == 0:", f"        facts[{name!r}] = DIV"]
        if first:  # no pointer at all: nothing torch about this launch
            return lambda values: None
        vals = ", ".join(f"p{i}" if isinstance(s, PointerSlot) else f"a{i}" for i, s in enumerate(self.slots))
        lines += ["    where = NAMES.get(dev) or cuda_name(dev)",
                  f"    return Bound(where, ({vals}{',' if n == 1 else ''}), facts, True)"]  # fmt: skip
        exec(compile("\n".join(lines), f"<lowbit binder of {self.kernel_name}>", "exec"), env)  # noqa: S102
        return env["fast"]  # type: ignore[return-value]

    def _bind_values(self, values: Sequence[object]) -> Bound:
        """The generic binder: every kind of argument, every check, every message."""
        if len(values) != len(self.slots):
            raise LaunchError(f"kernel {self.kernel_name} takes {len(self.slots)} arguments "
                              f"({', '.join(self.names)}), got {len(values)}")  # fmt: skip
        out: list[object] = [None] * len(values)
        facts: dict[str, int] = {}
        for i, slot, integer, lo, hi in self._scalars:
            v = values[i]
            if not (integer and type(v) is int and lo <= v <= hi):  # the common case needs no conversion
                out[i] = v = _bind_scalar(slot.name, slot.var, v)
            else:
                out[i] = v
            if integer:
                if v % SPECIALIZED_DIVISIBILITY == 0:  # type: ignore[operator]
                    facts[slot.name] = SPECIALIZED_DIVISIBILITY
                if slot.divisibility > 1 and v % slot.divisibility:  # type: ignore[operator]
                    raise LaunchError(f"argument '{slot.name}': the kernel was specialised on a multiple of "
                                      f"{slot.divisibility}, got {v}")  # fmt: skip
        extents = self._extents_for(out) if self._has_views else None
        device: str | None = None
        first: str | None = None
        uses_torch = False
        tt = _torch_tensor_type()
        strided = _torch_strided() if tt is not None else None
        for i, slot, name, written, divisibility, accepted, taccepted in self._pointers:
            value = values[i]
            ok = None
            if isinstance(value, np.ndarray):  # the common host case, without building an _ArrayInfo
                fl = value.flags
                where, dt, nbytes, contiguous, writable = HOST, value.dtype, value.nbytes, fl.c_contiguous, fl.writeable
                address, host = value.ctypes.data, value
            elif tt is not None and isinstance(value, tt) and value.is_cuda and value.layout is strided:
                # torch CUDA tensors off the generated path (:meth:`_cuda_fast`): a subclass, a mixed call
                if value.is_conj() or value.is_neg():
                    raise LaunchError(f"argument '{name}': the tensor has a lazy conj/neg bit; call "
                                      ".resolve_conj().resolve_neg()")  # fmt: skip
                tdt = value.dtype
                ok = taccepted.get(tdt)
                if ok is None:
                    ok = taccepted[tdt] = holds(slot.dtype, torch_numpy_dtype(tdt))
                ordinal = value.get_device()
                where = _CUDA_NAMES.get(ordinal) or _cuda_name(ordinal)
                nbytes, contiguous, writable = value.nbytes, value.is_contiguous(), True
                address, host = value.data_ptr(), None
                uses_torch = True
            elif (fast := getattr(value, "__lowbit_array__", None)) is not None:
                # lowbit.runtime.DeviceArray: (device, dtype, nbytes, address) precomputed at allocation
                where, dt, nbytes, address = fast
                contiguous, writable, host = True, True, None
            else:
                info = _info(name, value, slot.dtype)
                where, dt, nbytes, contiguous, writable = info.device, info.dtype, info.nbytes, info.contiguous, info.writable
                address, host = info.address, info.host
            if device is None:
                device, first = where, name
            elif where != device:
                raise LaunchError(f"argument '{name}' is on {where} but '{first}' is on {device}: "
                                  "every array argument must be on one device")  # fmt: skip
            if ok is None:
                ok = accepted.get(dt)
                if ok is None:
                    ok = accepted[dt] = holds(slot.dtype, dt)
            if not ok:
                sd = element_dtype(slot.dtype)
                want = f"{sd}" if sd is not None else "an integer array of packed codes"
                raise LaunchError(f"argument '{name}': array dtype {_dtype_text(value)} does not hold "
                                  f"{slot.dtype.name} elements (expected {want})")  # fmt: skip
            if not contiguous:
                raise LaunchError(f"argument '{name}': the array must be C-contiguous "
                                  "(np.ascontiguousarray / tensor.contiguous())")  # fmt: skip
            if written and not writable:
                raise LaunchError(f"argument '{name}': the array is read-only, but the kernel stores to it")
            if extents is not None and (ext := extents[i]) is not None:
                if ext[0] > nbytes:
                    raise LaunchError(f"argument '{name}': the kernel views it as {ext[1]}, which needs {ext[0]} "
                                      f"bytes, but the array has {nbytes}")  # fmt: skip
            if address % SPECIALIZED_DIVISIBILITY == 0:
                facts[name] = SPECIALIZED_DIVISIBILITY
            if divisibility > 1 and address % divisibility:
                raise LaunchError(f"argument '{name}': the kernel was specialised on a {divisibility}-byte "
                                  f"aligned address, but the array starts at {address:#x}")  # fmt: skip
            out[i] = host if device == HOST else address
        return Bound(device or HOST, tuple(out), facts, uses_torch)

    def _extents_for(self, out: list[object]) -> tuple[tuple[int, str] | None, ...]:
        """Bytes each pointer must hold for these scalars, with the view's text (memoised per scalar tuple)."""
        key = self._extent_key(out)
        got = self._extents.get(key)
        if got is None:
            env = dict(zip(self._extent_vars, key))
            got = tuple(self._extent(s, env) if isinstance(s, PointerSlot) else None for s in self.slots)
            if len(self._extents) >= _EXTENT_CACHE_SIZE:
                self._extents.clear()
            self._extents[key] = got
        return got

    def _extent(self, slot: PointerSlot, env: dict[Var, object]) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for ve in slot.views:
            shape = [int(evaluate(e, env)) for e in ve.shape]  # type: ignore[arg-type]
            strides = [int(evaluate(e, env)) for e in ve.strides]  # type: ignore[arg-type]
            if any(n <= 0 for n in shape):
                continue  # an empty view touches nothing
            lo = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
            hi = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides))
            what = f"{ve.dtype_name}{shape} with strides {strides}"
            if lo < 0:
                raise LaunchError(f"argument '{slot.name}': the kernel's view {what} reaches {-lo} elements before "
                                  "the pointer")  # fmt: skip
            need = -(-(hi + 1) * ve.bits // 8)
            if best is None or need > best[0]:
                best = (need, what)
        return best


def _bind_scalar(name: str, var: Var, value: object) -> int | float | bool:
    dt = var.dtype
    if isinstance(value, np.generic):
        value = value.item()
    elif not isinstance(value, int | float):
        tt = _torch_tensor_type()
        if tt is not None and isinstance(value, tt):
            raise LaunchError(f"argument '{name}': a tensor for the {dt.name} scalar; pass a Python number "
                              "(reading a device tensor would synchronise)")  # fmt: skip
    if is_bool(dt):
        if not isinstance(value, bool | int):
            raise LaunchError(f"argument '{name}': expected a bool, got {value!r}")
        return bool(value)
    if dt.is_int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise LaunchError(f"argument '{name}': expected an int for {dt.name}, got {value!r}")
        if not dt.min <= value <= dt.max:
            raise LaunchError(f"argument '{name}': {value} does not fit in {dt.name} (range {dt.min}..{dt.max})")
        return value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise LaunchError(f"argument '{name}': expected a number for {dt.name}, got {value!r}")
    try:
        x = float(value)
    except OverflowError:  # an int too large for any float
        x = None
    if x is not None:
        got = convert(x, dt)
        if not math.isinf(got) or not math.isfinite(x):  # in range, or an explicit inf / NaN: the value asked for
            return got
    top = _float_max(dt)
    shown = repr(value) if len(repr(value)) <= 32 else f"{str(value)[:12]}...({len(str(value))} digits)"
    raise LaunchError(f"argument '{name}': {shown} is outside the {dt.name} range (finite values of magnitude up "
                      f"to {top!r}); it would become {'-' if value < 0 else ''}inf")


def _float_max(dt: DType) -> float:
    top = getattr(dt, "max", None)
    if isinstance(top, float | int):
        return float(top)
    return float(np.finfo(np.float32).max)  # pragma: no cover - every float scalar dtype has a max


def require_host(bound: Bound, backend: str) -> None:
    """The interpreter and the emulator run on host arrays: a device launch there is an error."""
    if bound.device != HOST:
        raise LaunchError(f"the {backend} runs on host arrays (numpy or CPU tensors), but the arguments are on "
                          f"{bound.device}")  # fmt: skip
