"""GPU side of the fidelity harness (issue 4 item 7): run bundled PTX on a real GPU and diff.

Needs only the standard library, numpy, ctypes and ``cuda.bindings`` (the GPU
image has no lark and none of the project's pins), so it imports nothing from
lowbit.  For every ``.npz`` written by ``bundle.py`` it loads the PTX with
``cuModuleLoadData`` (the driver JIT-compiles it for the GPU present),
copies the initial arguments to device buffers, launches with the recorded
grid/block/dynamic shared memory, copies the outputs back and compares them

* with the emulator's outputs (``gpu_vs_emu``: the fidelity verdict),
* with the numpy reference (``gpu_vs_ref``), and, always,
* emulator against reference (``emu_vs_ref``, also checked without a GPU),

under each output's rule: ``exact`` = raw bits equal (``nan_any``: any NaN
matches any NaN); ``close`` = ``|got - want| <= atol + rtol |want|``, or
``<= tol[i]`` where the bundle has a per-element ``tol<i>`` (GPU against the
emulator: twice the bound, both being within it of the reference); elements
where ``mask<i>`` is False are not compared (ISA-undefined).  A case whose
PTX ``.target`` the device cannot run (sm_89 FP8 on an sm_80, an ``sm_90a``
kernel elsewhere), or whose ``.version`` the driver's JIT does not know, is
reported as skipped, not failed.

Usage::

    python benchmarks/gpu_fidelity/run_gpu.py BUNDLE_DIR [--out-dir D] [--json F] [--md F]
                                              [--save-outputs F.npz] [--arch-check]
    python benchmarks/gpu_fidelity/run_gpu.py --check-only [BUNDLE_DIR]   # CPU: bundle consistency

``--arch-check`` loads (JITs) every module and reports what would be
skipped, without launching.  Exit status 0 when every non-skipped,
non-xfail comparison passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import re
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
# float format -> (bits, unsigned view) for ulp distances
_FMT_BITS = {"f16": 16, "bf16": 16, "f32": 32, "f64": 64}


# ----------------------------------------------------------------------------- comparison (pure numpy)


def _fmt_of(arr: np.ndarray, fmt: str) -> str:
    if fmt:
        return fmt
    return {"float16": "f16", "float32": "f32", "float64": "f64"}.get(arr.dtype.name, "")


def _as_f64(arr: np.ndarray, fmt: str) -> np.ndarray:
    """Values as float64, decoding bf16 stored as uint16."""
    if fmt == "bf16" and arr.dtype.itemsize == 2:
        return (arr.view(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    if fmt == "f16" and arr.dtype.itemsize == 2:
        return arr.view(np.float16).astype(np.float64)
    if fmt == "f32" and arr.dtype.itemsize == 4:
        return arr.view(np.float32).astype(np.float64)
    if fmt == "f64" and arr.dtype.itemsize == 8:
        return arr.view(np.float64)
    return arr.astype(np.float64)


def _ordered(bits: np.ndarray, nbits: int) -> np.ndarray:
    """Sign-magnitude float bits -> float64 numbers ordered like the values (+0 and -0 both 0)."""
    b = bits.astype(np.uint64)
    sign = np.uint64(1) << np.uint64(nbits - 1)
    mag = (b & (sign - np.uint64(1))).astype(np.float64)
    return np.where((b & sign) != 0, -mag, mag)


def compare(got: np.ndarray, want: np.ndarray, mode: str, rtol: float, atol: float, *,
            tol: np.ndarray | None = None, mask: np.ndarray | None = None, nan_any: bool = False,
            fmt: str = "") -> dict:
    """Compare two output arrays; ``{"ok", "bad", "total", "first", "first_index", "max_abs_err", "max_ulp"}``.

    ``"exact"``: raw bits equal (``nan_any``: NaN vs NaN of any payload is equal).  ``"close"``:
    ``|got-want| <= atol + rtol |want|`` (or ``<= tol`` per element), where a NaN in ``want``
    must be matched bit for bit (untouched sentinels) unless ``nan_any``.  ``mask``: compare only
    where True.  ``fmt`` names the float format when the dtype does not (bf16 as uint16).
    """
    got, want = np.asarray(got), np.asarray(want)
    res = {"ok": False, "bad": -1, "total": int(want.size), "first": None, "first_index": None,
           "max_abs_err": None, "max_ulp": None}
    if got.shape != want.shape or got.dtype != want.dtype:
        res["first"] = f"shape/dtype {got.dtype}{got.shape} vs {want.dtype}{want.shape}"
        return res
    gb = got.view(_UINT[got.dtype.itemsize]).ravel()
    wb = want.view(_UINT[want.dtype.itemsize]).ravel()
    fmt = _fmt_of(want, fmt)
    live = np.ones(gb.shape, bool) if mask is None else np.asarray(mask, bool).ravel()
    if fmt:
        g, w = _as_f64(got, fmt).ravel(), _as_f64(want, fmt).ravel()
        gnan, wnan = np.isnan(g), np.isnan(w)
    else:
        g = w = gnan = wnan = None
    if mode == "exact":
        bad = gb != wb
        if nan_any and fmt:
            bad &= ~(gnan & wnan)
    elif mode == "close":
        if not fmt:
            g, w = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
            gnan, wnan = np.isnan(g), np.isnan(w)
        bound = (atol + rtol * np.abs(w)) if tol is None else np.asarray(tol, np.float64).ravel()
        with np.errstate(invalid="ignore"):
            err = np.abs(g - w)
            nan_bad = ~gnan if nan_any else gb != wb
            bad = np.where(wnan, nan_bad, ~(err <= bound))
            inf = np.isinf(w)
            bad = np.where(inf & ~wnan, g != w, bad)
    else:
        raise ValueError(f"unknown compare mode {mode!r}")
    bad &= live
    if fmt:
        fin = live & np.isfinite(g) & np.isfinite(w)
        if fin.any():
            res["max_abs_err"] = float(np.abs(g[fin] - w[fin]).max())
            nb = _FMT_BITS[fmt]
            if got.dtype.itemsize * 8 == nb:
                d = np.abs(_ordered(gb[fin], nb) - _ordered(wb[fin], nb))
                res["max_ulp"] = int(d.max())
        else:
            res["max_abs_err"] = 0.0
    elif got.dtype.kind in "iu":
        if live.any():
            res["max_abs_err"] = float(np.abs(got.ravel()[live].astype(np.float64) - want.ravel()[live].astype(np.float64)).max())
    idx = np.flatnonzero(bad)
    if idx.size:
        i = int(idx[0])
        res["first_index"] = i
        res["first"] = (f"[{i}] got {got.ravel()[i]!r} (0x{int(gb[i]):x}) want {want.ravel()[i]!r} "
                        f"(0x{int(wb[i]):x})")
    res["ok"] = not idx.size
    res["bad"] = int(idx.size)
    res["total"] = int(live.sum())
    return res


def load_bundle(path: Path) -> dict:
    """Read a bundle into plain Python/numpy values (and check it is complete)."""
    with np.load(path, allow_pickle=False) as z:
        b = {k: z[k] for k in z.files}
    for key in ("ptx", "kernel", "grid", "block", "shared_bytes", "arg_kind", "arg_dtype", "out_index"):
        if key not in b:
            raise ValueError(f"{path}: {key} missing")
    nargs = len(b["arg_kind"])
    for i in range(nargs):
        if f"arg{i}" not in b:
            raise ValueError(f"{path}: arg{i} missing")
        if str(np.asarray(b[f"arg{i}"]).dtype.name) != str(b["arg_dtype"][i]):
            raise ValueError(f"{path}: arg{i} dtype {b[f'arg{i}'].dtype} != recorded {b['arg_dtype'][i]}")
    for i in b["out_index"]:
        i = int(i)
        if f"ref{i}" not in b:
            raise ValueError(f"{path}: ref{i} missing")
        if b[f"ref{i}"].shape != b[f"arg{i}"].shape or b[f"ref{i}"].dtype != b[f"arg{i}"].dtype:
            raise ValueError(f"{path}: ref{i} shape/dtype differs from arg{i}")
        if str(b["arg_kind"][i]) != "array":
            raise ValueError(f"{path}: output {i} is not an array parameter")
    entry = str(b["kernel"])
    if not re.search(r"\.entry\s+" + re.escape(entry) + r"\s*\(", str(b["ptx"])):
        raise ValueError(f"{path}: .entry {entry} not in the PTX")
    if len(b["grid"]) != 3 or len(b["block"]) != 3 or int(np.prod(b["block"])) > 1024:
        raise ValueError(f"{path}: bad launch geometry")
    return b


def _bget(b: dict, key: str, j: int, default):
    return b[key][j] if key in b else default


def ptx_target(ptx: str) -> tuple[int, bool]:
    """(compute capability as 10*major+minor, arch-specific 'a'/'f' suffix) of the PTX's ``.target``."""
    m = re.search(r"^\s*\.target\s+sm_(\d+)([af]?)", ptx, re.M)
    if not m:
        return 0, False
    return int(m.group(1)), bool(m.group(2))


def skip_reason(ptx: str, cc: int) -> str | None:
    """Why a device of compute capability ``cc`` cannot run this PTX (None: it can)."""
    want, specific = ptx_target(ptx)
    if want > cc:
        return f".target sm_{want} needs compute capability >= {want // 10}.{want % 10}, device is {cc // 10}.{cc % 10}"
    if specific and want != cc:
        return f".target sm_{want}a runs only on compute capability {want // 10}.{want % 10}"
    return None


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
        v = self._check(driver.cuDriverGetVersion(), "cuDriverGetVersion")
        self.driver_version = f"{v // 1000}.{(v % 1000) // 10}"
        try:
            import cuda.bindings as cb

            self.bindings_version = getattr(cb, "__version__", "?")
        except Exception:  # noqa: BLE001
            self.bindings_version = "?"

    def _err_name(self, err) -> str:
        _, name = self.d.cuGetErrorName(err)
        return name.decode() if name else str(err)

    def _check(self, result, what: str):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, msg = self.d.cuGetErrorString(err)
            raise CudaError(f"{what} failed: {self._err_name(err)} ({msg.decode() if msg else ''})", self._err_name(err))
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    def load(self, ptx: str):
        """cuModuleLoadData with the JIT's error log captured; returns the module."""
        d = self.d
        image = np.frombuffer(ptx.encode() + b"\0", np.uint8).copy()  # NUL-terminated text
        log = bytearray(8192)  # cuda-bindings take the JIT's char* log buffer as a bytes-like object, not an address
        opts = [d.CUjit_option.CU_JIT_ERROR_LOG_BUFFER, d.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]
        try:
            return self._check(d.cuModuleLoadDataEx(image.ctypes.data, len(opts), opts, [log, len(log)]),
                               "cuModuleLoadDataEx")
        except CudaError as exc:
            text = bytes(log).split(b"\0", 1)[0].decode(errors="replace").strip()
            raise CudaError(f"{exc} {text[:400]}", exc.code) from None
        except Exception:  # noqa: BLE001 - option marshalling differs between binding versions
            return self._check(d.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData")

    def run(self, b: dict, launch: bool = True) -> tuple[dict[int, np.ndarray], float]:
        """Launch one bundle; returns {param index: output array} and the kernel's wall time in seconds."""
        d = self.d
        module = self.load(str(b["ptx"]))
        buffers: list = []
        try:
            fn = self._check(d.cuModuleGetFunction(module, str(b["kernel"]).encode()), "cuModuleGetFunction")
            if not launch:
                return {}, 0.0
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


class CudaError(RuntimeError):
    def __init__(self, msg: str, code: str = "") -> None:
        super().__init__(msg)
        self.code = code


# ----------------------------------------------------------------------------- main


def _bundle_paths(items: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in items or [str(Path(__file__).with_name("bundles"))]:
        p = Path(item)
        paths.extend(sorted(p.rglob("*.npz")) if p.is_dir() else [p])
    return paths


def check_bundle(b: dict, gpu_out: dict[int, np.ndarray] | None) -> dict:
    """All comparisons for one bundle: gpu vs emulator, gpu vs reference, emulator vs reference."""
    rows = {}
    for j, i in enumerate(int(x) for x in b["out_index"]):
        name = str(b["out_name"][j]) if "out_name" in b else str(i)
        mode, rtol, atol = str(b["out_compare"][j]), float(b["out_rtol"][j]), float(b["out_atol"][j])
        nan_any = bool(_bget(b, "out_nan_any", j, False))
        fmt = str(_bget(b, "out_fmt", j, ""))
        tol, mask = b.get(f"tol{i}"), b.get(f"mask{i}")
        row = {"compare": mode, "rtol": rtol, "atol": atol, "per_element_tol": tol is not None,
               "masked": 0 if mask is None else int((~mask.astype(bool)).sum()), "nan_any": nan_any}

        def cmp(got, want, scale=1.0):
            return compare(got, want, mode, rtol * scale, atol * scale, tol=None if tol is None else tol * scale,
                           mask=mask, nan_any=nan_any, fmt=fmt)

        ref = b[f"ref{i}"]
        emu = b.get(f"emu{i}")
        if emu is not None:
            row["emu_vs_ref"] = cmp(emu, ref)
        if gpu_out is not None:
            row["gpu_vs_ref"] = cmp(gpu_out[i], ref)
            if emu is not None:
                row["gpu_vs_emu"] = cmp(gpu_out[i], emu, 2.0 if mode == "close" else 1.0)
        rows[name] = row
    return rows


def _verdict(entry: dict) -> str:
    if entry.get("skipped"):
        return "skip"
    if entry.get("gpu_error") or entry.get("emulator") not in ("ok", "not run"):
        return "error"
    cs = [c for row in entry["outputs"].values() for k, c in row.items() if isinstance(c, dict)]
    ok = all(c["ok"] for c in cs)
    return "pass" if ok else "fail"


def _summ(rows: dict, key: str) -> tuple[bool | None, float | None, int | None, str | None]:
    oks, errs, ulps, first = [], [], [], None
    for name, row in rows.items():
        c = row.get(key)
        if c is None:
            continue
        oks.append(c["ok"])
        if c["max_abs_err"] is not None:
            errs.append(c["max_abs_err"])
        if c["max_ulp"] is not None:
            ulps.append(c["max_ulp"])
        if not c["ok"] and first is None:
            first = f"{name}{c['first']}"
    return (all(oks) if oks else None), (max(errs) if errs else None), (max(ulps) if ulps else None), first


def write_markdown(report: dict, path: Path) -> None:
    lines = [f"# GPU fidelity: {report['device'] or 'no GPU (check-only)'}", ""]
    for k in ("date", "cc", "driver", "cuda_bindings", "bundles", "manifest"):
        if report.get(k) is not None:
            lines.append(f"- {k}: {report[k]}")
    c = report["counts"]
    lines += [f"- result: {c}", "", "Rules: `exact` = bit-identical (`nan_any`: any NaN matches any NaN); "
              "`close` = within the stated tolerance (`tol`: per-element bound from the reference's error "
              "analysis; GPU vs emulator uses twice it); masked elements (ISA-undefined) are not compared.", "",
              "| case | target | rule | verdict | gpu vs emu | gpu vs ref | emu vs ref | max abs err | max ulp | first mismatch / note |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in report["kernels"].items():
        rows = e["outputs"]
        rules = sorted({(r["compare"] + ("/tol" if r["per_element_tol"] else "") + ("/mask" if r["masked"] else ""))
                        for r in rows.values()})
        ge, gerr, gulp, gfirst = _summ(rows, "gpu_vs_emu")
        gr, *_ = _summ(rows, "gpu_vs_ref")
        er, eerr, eulp, efirst = _summ(rows, "emu_vs_ref")
        fmt = {None: "-", True: "ok", False: "BAD"}
        note = e.get("skipped") or e.get("gpu_error") or gfirst or efirst or (("xfail: " + e["xfail"]) if e.get("xfail") else "")
        note = str(note).replace("|", "\\|")[:160]
        err = gerr if gerr is not None else eerr
        ulp = gulp if gulp is not None else eulp
        lines.append(f"| {name} | {e.get('target', '')} | {', '.join(rules)} | {e['verdict']} | {fmt[ge]} | {fmt[gr]} | "
                     f"{fmt[er]} | {'-' if err is None else f'{err:.3g}'} | {'-' if ulp is None else ulp} | {note} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="run bundled PTX on the GPU and diff with the emulator")
    ap.add_argument("bundles", nargs="*", help="bundle files or directories (default: ./bundles)")
    ap.add_argument("--json", type=Path, help="write the JSON report here")
    ap.add_argument("--md", type=Path, help="write the markdown report here")
    ap.add_argument("--out-dir", type=Path, help="write gpu_fidelity_<device>_<date>.{json,md} here")
    ap.add_argument("--save-outputs", type=Path, help="write the GPU outputs (one .npz) here")
    ap.add_argument("--check-only", action="store_true", help="no GPU: validate bundles, compare emulator vs reference")
    ap.add_argument("--arch-check", action="store_true", help="JIT every module, launch nothing: what runs, what is skipped")
    ap.add_argument("--only", help="only bundles whose name contains this")
    a = ap.parse_args(argv)
    driver = None if a.check_only else Driver()
    date = datetime.date.today().isoformat()
    report = {"device": None if driver is None else driver.name, "cc": None if driver is None else driver.cc,
              "driver": None if driver is None else driver.driver_version,
              "cuda_bindings": None if driver is None else driver.bindings_version, "date": date,
              "bundles": [str(p) for p in a.bundles] or None, "counts": {}, "kernels": {}}
    paths = _bundle_paths(a.bundles)
    if a.only:
        paths = [p for p in paths if a.only in p.stem]
    manifest = next((p.parent / "manifest.json" for p in paths if (p.parent / "manifest.json").exists()), None)
    if manifest is not None:
        report["manifest"] = str(manifest)
    saved: dict[str, np.ndarray] = {}
    all_ok = True
    if not paths:
        print("no bundles found", file=sys.stderr)
        return 1
    for path in paths:
        try:
            b = load_bundle(path)
        except ValueError as exc:
            entry = {"emulator": "?", "outputs": {}, "gpu_error": f"bad bundle: {exc}", "verdict": "error"}
            report["kernels"][path.stem] = entry
            all_ok = False
            print(f"{path.stem:40s} ERROR  {exc}")
            continue
        name = str(b["name"]) if "name" in b else path.stem
        target, _ = ptx_target(str(b["ptx"]))
        entry = {"emulator": str(b["emu_status"]), "target": f"sm_{target}", "xfail": str(b.get("xfail", "")),
                 "source": str(b.get("source", ""))}
        gpu_out = None
        if driver is not None:
            why = skip_reason(str(b["ptx"]), driver.cc)
            if why:
                entry["skipped"] = why
            else:
                try:
                    gpu_out, seconds = driver.run(b, launch=not a.arch_check)
                    entry["gpu_seconds"] = seconds
                    if a.arch_check:
                        gpu_out = None
                        entry["jit"] = "ok"
                except CudaError as exc:
                    if exc.code in ("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "CUDA_ERROR_NO_BINARY_FOR_GPU"):
                        entry["skipped"] = str(exc)
                    else:
                        entry["gpu_error"] = str(exc)
                        if "ILLEGAL" in exc.code or "LAUNCH" in exc.code or "MISALIGNED" in exc.code:
                            # a sticky error: the context is unusable from here on
                            entry["gpu_error"] += " (sticky: later cases not run)"
                            report["kernels"][name] = {**entry, "outputs": {}, "verdict": "error"}
                            all_ok = False
                            print(f"{name:40s} ERROR  {entry['gpu_error']}")
                            break
        entry["outputs"] = check_bundle(b, gpu_out)
        entry["verdict"] = _verdict(entry)
        if a.arch_check and entry["verdict"] == "pass":
            entry["verdict"] = "jit-ok" if entry.get("jit") else entry["verdict"]
        if gpu_out is not None and a.save_outputs:
            for i, v in gpu_out.items():
                saved[f"{name}.{i}"] = v
        counted_bad = entry["verdict"] in ("fail", "error") and not entry["xfail"]
        all_ok &= not counted_bad
        report["kernels"][name] = entry
        summary = "; ".join(
            f"{oname}: " + ", ".join(f"{k}={'ok' if c['ok'] else 'BAD %d/%d %s' % (c['bad'], c['total'], c['first'])}"
                                    for k, c in row.items() if isinstance(c, dict))
            for oname, row in entry["outputs"].items())
        extra = entry.get("skipped") or entry.get("gpu_error") or ""
        tag = entry["verdict"].upper() + (" (xfail)" if entry["xfail"] and entry["verdict"] != "pass" else "")
        print(f"{name:40s} {tag:6s} {extra}{summary[:300]}")
    counts: dict[str, int] = {}
    for e in report["kernels"].values():
        counts[e["verdict"]] = counts.get(e["verdict"], 0) + 1
    report["counts"] = counts
    dev = re.sub(r"[^A-Za-z0-9]+", "_", report["device"] or "cpu").strip("_").lower()
    targets = []
    if a.json:
        targets.append(("json", a.json))
    if a.md:
        targets.append(("md", a.md))
    if a.out_dir:
        targets += [("json", a.out_dir / f"gpu_fidelity_{dev}_{date}.json"), ("md", a.out_dir / f"gpu_fidelity_{dev}_{date}.md")]
    for kind, p in targets:
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "json":
            p.write_text(json.dumps(report, indent=1, default=str) + "\n")
        else:
            write_markdown(report, p)
    if saved and a.save_outputs:
        a.save_outputs.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(a.save_outputs, **saved)
    print(("ALL PASS" if all_ok else "FAILURES"), counts, "on", report["device"] or "no GPU (check-only)",
          f"cc {report['cc']} driver {report['driver']}" if driver else "")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
