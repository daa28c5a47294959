"""GPU side of the fidelity harness (issue 4 item 7): run bundled PTX on a real GPU and diff.

Needs only numpy and ``cuda.bindings`` (the GPU image has no lark and none of
the project's pins), so it imports nothing from lowbit.  For every ``.npz``
written by ``bundle.py`` it loads the PTX with ``cuModuleLoadData`` (the
driver JIT-compiles it for the GPU present), copies the initial arguments to
device buffers, launches with the recorded grid/block/dynamic shared memory,
copies the outputs back and compares them

* with the emulator's outputs -- bit-exact for outputs marked ``"exact"``
  (integer and conversion kernels), within ``rtol``/``atol`` for ``"close"``
  (float mma, approximate transcendentals), and
* with the numpy reference, under the same rule.

Usage::

    python benchmarks/gpu_fidelity/run_gpu.py [BUNDLE_DIR_OR_FILES ...] [--json OUT.json]
    python benchmarks/gpu_fidelity/run_gpu.py --check-only    # validate bundles, no GPU

Exit status 0 when every comparison passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path

import numpy as np

_CTYPES = {
    "int8": ctypes.c_int8, "uint8": ctypes.c_uint8, "int16": ctypes.c_int16, "uint16": ctypes.c_uint16,
    "int32": ctypes.c_int32, "uint32": ctypes.c_uint32, "int64": ctypes.c_int64, "uint64": ctypes.c_uint64,
    "float16": ctypes.c_uint16, "float32": ctypes.c_float, "float64": ctypes.c_double,
}
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


# ----------------------------------------------------------------------------- comparison (pure numpy)


def compare(got: np.ndarray, want: np.ndarray, mode: str, rtol: float, atol: float) -> dict:
    """Compare two output arrays; ``{"ok", "bad", "total", "first", "max_abs_err"}``.

    ``"exact"``: raw bits equal.  ``"close"``: ``|got-want| <= atol + rtol |want|``,
    where a NaN in ``want`` must be matched bit for bit (untouched sentinels).
    """
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return {"ok": False, "bad": -1, "total": int(want.size), "first": f"shape/dtype {got.dtype}{got.shape} vs {want.dtype}{want.shape}",
                "max_abs_err": None}
    gb, wb = got.view(_UINT[got.dtype.itemsize]), want.view(_UINT[want.dtype.itemsize])
    max_err = None
    if mode == "exact":
        bad = gb != wb
    else:
        g, w = got.astype(np.float64), want.astype(np.float64)
        nan = np.isnan(w)
        with np.errstate(invalid="ignore"):
            err = np.abs(g - w)
            bad = np.where(nan, gb != wb, ~(err <= atol + rtol * np.abs(w)))
        finite = ~nan & np.isfinite(err)
        max_err = float(err[finite].max()) if finite.any() else 0.0
    idx = np.flatnonzero(bad)
    first = None
    if idx.size:
        i = int(idx[0])
        first = f"[{i}] got {got.flat[i]!r} (0x{int(gb.flat[i]):x}) want {want.flat[i]!r} (0x{int(wb.flat[i]):x})"
    return {"ok": not idx.size, "bad": int(idx.size), "total": int(want.size), "first": first, "max_abs_err": max_err}


def load_bundle(path: Path) -> dict:
    """Read a bundle into plain Python/numpy values (and check it is complete)."""
    with np.load(path, allow_pickle=False) as z:
        b = {k: z[k] for k in z.files}
    nargs = len(b["arg_kind"])
    for i in range(nargs):
        if f"arg{i}" not in b:
            raise ValueError(f"{path}: arg{i} missing")
    for i in b["out_index"]:
        if f"ref{int(i)}" not in b:
            raise ValueError(f"{path}: ref{int(i)} missing")
    return b


# ----------------------------------------------------------------------------- CUDA driver


class Driver:
    """The few driver calls we need, with errors turned into exceptions."""

    def __init__(self) -> None:
        from cuda.bindings import driver

        self.d = driver
        self._check(driver.cuInit(0), "cuInit")
        self.dev = self._check(driver.cuDeviceGet(0), "cuDeviceGet")
        self.ctx = self._check(driver.cuDevicePrimaryCtxRetain(self.dev), "cuDevicePrimaryCtxRetain")
        self._check(driver.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        name = self._check(driver.cuDeviceGetName(256, self.dev), "cuDeviceGetName")
        self.name = name.split(b"\0", 1)[0].decode()
        attr = driver.CUdevice_attribute
        major = self._check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.dev), "cc")
        minor = self._check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.dev), "cc")
        self.cc = major * 10 + minor

    def _check(self, result, what: str):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, name = self.d.cuGetErrorName(err)
            _, msg = self.d.cuGetErrorString(err)
            raise RuntimeError(f"{what} failed: {name.decode() if name else err} ({msg.decode() if msg else ''})")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    def run(self, b: dict) -> tuple[dict[int, np.ndarray], float]:
        """Launch one bundle; returns {param index: output array} and the kernel's wall time in seconds."""
        d = self.d
        image = np.frombuffer(str(b["ptx"]).encode() + b"\0", np.uint8).copy()  # NUL-terminated text
        module = self._check(d.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData")
        buffers: list = []
        try:
            fn = self._check(d.cuModuleGetFunction(module, str(b["kernel"]).encode()), "cuModuleGetFunction")
            shared = int(b["shared_bytes"])
            if shared > 48 * 1024:
                self._check(d.cuFuncSetAttribute(
                    fn, d.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared), "cuFuncSetAttribute")
            values, types, device_of = [], [], {}
            for i, kind in enumerate(b["arg_kind"]):
                host = np.ascontiguousarray(b[f"arg{i}"])
                if kind == "array":
                    nbytes = max(1, host.nbytes)
                    ptr = self._check(d.cuMemAlloc(nbytes), "cuMemAlloc")
                    buffers.append(ptr)
                    if host.nbytes:
                        self._check(d.cuMemcpyHtoD(ptr, host.ctypes.data, host.nbytes), "cuMemcpyHtoD")
                    device_of[i] = ptr
                    values.append(int(ptr))
                    types.append(ctypes.c_void_p)
                else:
                    ct = _CTYPES[host.dtype.name]
                    raw = host.view(np.uint16) if host.dtype.name == "float16" else host
                    values.append(raw.item())
                    types.append(ct)
            grid, block = [int(x) for x in b["grid"]], [int(x) for x in b["block"]]
            self._check(d.cuCtxSynchronize(), "cuCtxSynchronize")
            t0 = time.perf_counter()
            self._check(d.cuLaunchKernel(fn, *grid, *block, shared, 0, (tuple(values), tuple(types)), 0), "cuLaunchKernel")
            self._check(d.cuCtxSynchronize(), "kernel execution (cuCtxSynchronize)")
            seconds = time.perf_counter() - t0
            outs = {}
            for i in (int(x) for x in b["out_index"]):
                host = np.empty_like(b[f"arg{i}"])
                self._check(d.cuMemcpyDtoH(host.ctypes.data, device_of[i], host.nbytes), "cuMemcpyDtoH")
                outs[i] = host
            return outs, seconds
        finally:
            for ptr in buffers:
                d.cuMemFree(ptr)
            d.cuModuleUnload(module)


# ----------------------------------------------------------------------------- main


def _bundle_paths(items: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in items or [str(Path(__file__).with_name("bundles"))]:
        p = Path(item)
        paths.extend(sorted(p.glob("*.npz")) if p.is_dir() else [p])
    return paths


def check_bundle(b: dict, gpu_out: dict[int, np.ndarray] | None) -> dict:
    """All comparisons for one bundle: gpu vs emulator, gpu vs numpy, emulator vs numpy."""
    rows = {}
    for j, i in enumerate(int(x) for x in b["out_index"]):
        name = str(b["out_name"][j])
        mode, rtol, atol = str(b["out_compare"][j]), float(b["out_rtol"][j]), float(b["out_atol"][j])
        row = {"compare": mode, "rtol": rtol, "atol": atol}
        ref = b[f"ref{i}"]
        emu = b.get(f"emu{i}")
        if emu is not None:
            row["emu_vs_numpy"] = compare(emu, ref, mode, rtol, atol)
        if gpu_out is not None:
            row["gpu_vs_numpy"] = compare(gpu_out[i], ref, mode, rtol, atol)
            if emu is not None:
                row["gpu_vs_emu"] = compare(gpu_out[i], emu, mode, rtol, atol)
        rows[name] = row
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="run bundled PTX on the GPU and diff with the emulator")
    ap.add_argument("bundles", nargs="*", help="bundle files or directories (default: ./bundles)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--check-only", action="store_true", help="no GPU: validate bundles, compare emulator vs numpy")
    a = ap.parse_args(argv)
    driver = None if a.check_only else Driver()
    report = {"device": None if driver is None else driver.name, "cc": None if driver is None else driver.cc,
              "kernels": {}}
    all_ok = True
    for path in _bundle_paths(a.bundles):
        b = load_bundle(path)
        entry = {"emulator": str(b["emu_status"])}
        gpu_out = None
        if driver is not None:
            try:
                gpu_out, seconds = driver.run(b)
                entry["gpu_seconds"] = seconds
            except RuntimeError as exc:
                entry["gpu_error"] = str(exc)
                all_ok = False
        entry["outputs"] = check_bundle(b, gpu_out)
        ok = all(c["ok"] for row in entry["outputs"].values() for k, c in row.items() if isinstance(c, dict))
        all_ok &= ok and entry["emulator"] in ("ok", "not run")
        report["kernels"][path.stem] = entry
        summary = "; ".join(
            f"{name}: " + ", ".join(f"{k}={'ok' if c['ok'] else 'BAD %d/%d %s' % (c['bad'], c['total'], c['first'])}"
                                   for k, c in row.items() if isinstance(c, dict))
            for name, row in entry["outputs"].items())
        print(f"{path.stem:24s} {'PASS' if ok else 'FAIL'}  {entry.get('gpu_error', '')}{summary}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(report, indent=1) + "\n")
    print("ALL PASS" if all_ok else "FAILURES", "on", report["device"] or "no GPU (check-only)")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
