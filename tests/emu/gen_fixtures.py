"""Regenerate the PTX fixtures under ``tests/emu/fixtures/`` (issue 4: "the generated PTX is
also committed as fixtures, with the script that regenerates it").

Two sources:

* **Triton** kernels from ``tests/emu/triton_kernels.py`` compiled on the CPU
  (``triton.compile(ASTSource(...), target=GPUTarget("cuda", 80|89, 32))``,
  TOOLCHAIN.md) -- vector add, row softmax, fp16 ``tl.dot`` matmul with a
  3-stage cp.async pipeline, FP8 e4m3 ``tl.dot`` for sm_89;
* **llvmlite**: the hand-written ``fixtures/*.ll`` kernels optimised at O3 and
  emitted by LLVM's NVPTX backend for sm_80 (vector add, a loop with a
  branch, shared memory + bar.sync, inline-asm lop3/prmt/mma).

Each fixture is ``<name>.ptx`` plus ``<name>.json`` (format described in
``fixtures/README.md``): grid, block, dynamic shared bytes, every argument
with its dtype/shape/initialiser, and the name of its numpy reference in
``fixtures/recipes.py``.

Usage: ``python -m tests.emu.gen_fixtures [--out DIR] [NAME ...]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

FIXTURES = Path(__file__).with_name("fixtures")
FORMAT = 1

# --------------------------------------------------------------------------- case table


def _arr(name, dtype, shape, init, output=None):
    d = {"name": name, "kind": "array", "dtype": dtype, "shape": list(shape), "init": init}
    if output is not None:
        d["output"] = output
    return d


def _scalar(name, dtype, value):
    return {"name": name, "kind": "scalar", "dtype": dtype, "value": value}


_U = lambda lo, hi, seed: {"kind": "uniform", "low": lo, "high": hi, "seed": seed}  # noqa: E731
_I = lambda lo, hi, seed: {"kind": "randint", "low": lo, "high": hi, "seed": seed}  # noqa: E731
_SENTINEL32 = {"kind": "bits", "value": 0x7FC0DEAD}  # a NaN nobody computes: untouched slots stay it
_EXACT = {"compare": "exact"}


def _close(rtol, atol):
    return {"compare": "close", "rtol": rtol, "atol": atol}


#: name -> case (everything but what the compiler decides: kernel name, block, shared bytes).
CASES: dict[str, dict] = {
    "triton_vector_add": {
        "source": {"kind": "triton", "spec": "triton_vector_add"},
        "grid": [4, 1, 1],
        "args": [
            _arr("x", "float32", [1000], _U(-10, 10, 1)),
            _arr("y", "float32", [1000], _U(-10, 10, 2)),
            _arr("out", "float32", [1000], _SENTINEL32, _EXACT),
            _scalar("n", "int32", 1000),
        ],
        "reference": "vector_add",
    },
    "triton_row_softmax": {
        "source": {"kind": "triton", "spec": "triton_row_softmax"},
        "grid": [5, 1, 1],
        "args": [
            _arr("x", "float32", [5 * 112], _U(-4, 4, 3)),
            _arr("out", "float32", [5 * 112], _SENTINEL32, _close(2e-6, 1e-7)),
            _scalar("n_cols", "int32", 100),
            _scalar("x_stride", "int32", 112),
            _scalar("out_stride", "int32", 112),
        ],
        "reference": "row_softmax",
    },
    "triton_matmul_f16": {
        "source": {"kind": "triton", "spec": "triton_matmul_f16"},
        "grid": [2, 2, 1],
        "args": [
            _arr("a", "float16", [100 * 48], _U(-1, 1, 4)),
            _arr("b", "float16", [48 * 80], _U(-1, 1, 5)),
            _arr("c", "float32", [100 * 80], _SENTINEL32, _close(1e-5, 1e-5)),
            _scalar("M", "int32", 100), _scalar("N", "int32", 80), _scalar("K", "int32", 48),
            _scalar("stride_am", "int32", 48), _scalar("stride_bk", "int32", 80),
            _scalar("stride_cm", "int32", 80),
        ],
        "reference": "matmul",
    },
    "triton_matmul_fp8": {
        "source": {"kind": "triton", "spec": "triton_matmul_fp8"},
        "grid": [2, 2, 1],
        "args": [
            _arr("a", "uint8", [100 * 80], {"kind": "e4m3", "low": -2, "high": 2, "seed": 6}),
            _arr("b", "uint8", [80 * 80], {"kind": "e4m3", "low": -2, "high": 2, "seed": 7}),
            _arr("c", "float32", [100 * 80], _SENTINEL32, _close(1e-4, 1e-4)),
            _scalar("M", "int32", 100), _scalar("N", "int32", 80), _scalar("K", "int32", 80),
            _scalar("stride_am", "int32", 80), _scalar("stride_bk", "int32", 80),
            _scalar("stride_cm", "int32", 80),
        ],
        "reference": "matmul_fp8",
    },
    "llvm_vector_add": {
        "source": {"kind": "llvmlite", "ll": "llvm_vector_add.ll", "cpu": "sm_80", "features": "+ptx70"},
        "grid": [8, 1, 1],
        "block": [128, 1, 1],
        "args": [
            _arr("a", "int32", [1000], _I(-(2**31), 2**31, 8)),
            _arr("b", "int32", [1000], _I(-(2**31), 2**31, 9)),
            _arr("out", "int32", [1000], {"kind": "bits", "value": 0x5EADBEEF}, _EXACT),
            _scalar("n", "int32", 1000),
        ],
        "reference": "vector_add",
    },
    "llvm_loop_branch": {
        "source": {"kind": "llvmlite", "ll": "llvm_loop_branch.ll", "cpu": "sm_80", "features": "+ptx70"},
        "grid": [5, 1, 1],
        "block": [64, 1, 1],
        "args": [
            _arr("x", "uint32", [300], _I(1, 2000, 10)),
            _arr("tbl", "uint32", [16], _I(0, 3, 11)),
            _arr("out", "int32", [300], {"kind": "bits", "value": 0x5EADBEEF}, _EXACT),
            _scalar("n", "int32", 300),
            _scalar("limit", "int32", 150),
        ],
        "reference": "collatz",
    },
    "llvm_shared_reduce": {
        "source": {"kind": "llvmlite", "ll": "llvm_shared_reduce.ll", "cpu": "sm_80", "features": "+ptx70"},
        "grid": [8, 1, 1],
        "block": [128, 1, 1],
        "args": [
            _arr("a", "int32", [1000], _I(-(2**31), 2**31, 12)),
            _arr("out", "int32", [8], {"kind": "bits", "value": 0x5EADBEEF}, _EXACT),
            _scalar("n", "int32", 1000),
        ],
        "reference": "block_sum",
    },
    "llvm_device_calls": {
        "source": {"kind": "llvmlite", "ll": "llvm_device_calls.ll", "cpu": "sm_80", "features": "+ptx70"},
        "grid": [3, 1, 1],
        "block": [96, 1, 1],
        "args": [
            _arr("out", "uint32", [250], {"kind": "bits", "value": 0x5EADBEEF}, _EXACT),
            _arr("fout", "float32", [250], _SENTINEL32, _EXACT),
            _scalar("n", "int32", 250),
        ],
        "reference": "device_calls",
    },
    "llvm_inline_asm": {
        "source": {"kind": "llvmlite", "ll": "llvm_inline_asm.ll", "cpu": "sm_80", "features": "+ptx70"},
        "grid": [2, 1, 1],
        "block": [64, 1, 1],
        "args": [
            _arr("a", "uint32", [128], _I(0, 2**32, 13)),
            _arr("b", "uint32", [128], _I(0, 2**32, 14)),
            _arr("c", "uint32", [128], _I(0, 2**32, 15)),
            _arr("x3", "uint32", [128], {"kind": "bits", "value": 0x5EADBEEF}, _EXACT),
            _arr("maj", "uint32", [128], {"kind": "bits", "value": 0x5EADBEEF}, _EXACT),
            _arr("perm", "uint32", [128], {"kind": "bits", "value": 0x5EADBEEF}, _EXACT),
            _arr("fa", "float16", [128 * 8], _U(-1, 1, 16)),
            _arr("fb", "float16", [128 * 4], _U(-1, 1, 17)),
            _arr("fc", "float32", [128 * 4], _U(-1, 1, 18)),
            _arr("fd", "float32", [128 * 4], _SENTINEL32, _close(1e-5, 1e-5)),
        ],
        "reference": "bit_and_mma",
    },
}

# --------------------------------------------------------------------------- compilers


def _compile_triton(spec_name: str) -> tuple[str, dict]:
    from tests.emu import triton_kernels

    compiled = triton_kernels.compile_spec(spec_name)
    md = compiled.metadata
    ptx = compiled.asm["ptx"]
    spec = triton_kernels.SPECS[spec_name]
    if spec["kernel"] == "matmul":
        # Issue 4: the fp16/fp8 matmuls must exercise the cp.async pipeline and tensor cores.
        for needle in ("cp.async", "ldmatrix", "mma.sync"):
            if needle not in ptx:
                raise RuntimeError(f"{spec_name}: Triton's PTX has no {needle}; the fixture would not test it")
    info = {
        "kernel": md.name,
        "block": [32 * md.num_warps, 1, 1],
        "shared_bytes": md.shared,
        # Triton appends two pointer params (global and profile scratch).
        "extra_args": [
            _arr("global_scratch", "uint8", [max(1, md.global_scratch_size)], {"kind": "zeros"}),
            _arr("profile_scratch", "uint8", [max(1, md.profile_scratch_size)], {"kind": "zeros"}),
        ],
        "triton_version": md.triton_version,
    }
    return ptx, info


def _compile_llvm(source: dict, directory: Path) -> tuple[str, dict]:
    import llvmlite.binding as llvm

    ll_text = (directory / source["ll"]).read_text()
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    target = llvm.Target.from_triple("nvptx64-nvidia-cuda")
    tm = target.create_target_machine(cpu=source["cpu"], features=source["features"], opt=3)
    module = llvm.parse_assembly(ll_text)
    module.verify()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
    pb.getModulePassManager().run(module, pb)
    ptx = tm.emit_assembly(module)
    kernel = re.search(r"define ptx_kernel void @(\w+)", ll_text).group(1)  # type: ignore[union-attr]
    return ptx, {"kernel": kernel, "shared_bytes": 0, "extra_args": []}


def build_case(name: str, source_dir: Path = FIXTURES) -> tuple[str, dict]:
    """Compile fixture ``name``; returns (PTX text, sidecar dict)."""
    case = CASES[name]
    src = case["source"]
    if src["kind"] == "triton":
        ptx, info = _compile_triton(src["spec"])
    else:
        ptx, info = _compile_llvm(src, source_dir)
    target = re.search(r"^\.target\s+(\w+)", ptx, re.M).group(1)  # type: ignore[union-attr]
    sidecar = {
        "format": FORMAT,
        "name": name,
        "ptx": f"{name}.ptx",
        "kernel": info["kernel"],
        "source": src,
        "target": target,
        "grid": case["grid"],
        "block": case.get("block", info.get("block")),
        "shared_bytes": info["shared_bytes"],
        "args": case["args"] + info["extra_args"],
        "reference": case["reference"],
    }
    if "triton_version" in info:
        sidecar["triton_version"] = info["triton_version"]
    return ptx, sidecar


def write_case(name: str, out: Path) -> None:
    ptx, sidecar = build_case(name)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.ptx").write_text(ptx)
    (out / f"{name}.json").write_text(json.dumps(sidecar, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="fixtures to regenerate (default: all)")
    ap.add_argument("--out", type=Path, default=FIXTURES, help="output directory")
    args = ap.parse_args(argv)
    for name in args.names or list(CASES):
        write_case(name, args.out)
        print(f"wrote {args.out / name}.ptx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
