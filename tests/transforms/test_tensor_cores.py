"""Tensor cores in the examples, read from PTX and SASS at sm_80 (aligned arguments, the issue's configurations).

Example 03 (64x64x32, 4 warps): 2 x 2 warps of 32 x 32, so each warp issues
2 (M) x 4 (N) x 2 (K) = 16 ``mma.m16n8k16`` per K step -- 64 for the block;
A and B reach them only through ``ldmatrix`` (B with ``.trans``: it is
N-contiguous).  Example 04 (16x128x128): 1 x 4 warps, each 1 x 4 x 8 = 32
mma per K step, 128 for the block; the dequantised weights are computed in
registers in the B-fragment layout (no shared memory on their way).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import lowbit
from lowbit.compiler import compile_program
from lowbit.ir import ops as O
from lowbit.ir.rewrite import walk
from lowbit.transforms import Options, lower_vm
from tests.conftest import require_tool
from tests.transforms.ptx_loops import main_loop, mix

ROOT = Path(__file__).resolve().parents[2]

def _sass_stats() -> Path:
    """``shared/tools/sass_loop_stats.py`` beside the checkout (CI: ``../shared``)."""
    for up in (ROOT.parent, ROOT.parent.parent):
        f = up / "shared" / "tools" / "sass_loop_stats.py"
        if f.exists():
            return f
    from tests.conftest import _missing

    _missing("shared/tools/sass_loop_stats.py is not beside the checkout")
    raise AssertionError("unreachable")


def _kernel(name: str) -> lowbit.Kernel:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return next(v for v in vars(m).values() if isinstance(v, lowbit.Kernel))


def _aligned(prog):  # noqa: ANN001, ANN202
    facts = {p.name: 16 for p in prog.params if p.name != "M" and (not hasattr(p.value, "dtype") or p.value.dtype.is_int)}
    return prog.with_facts(facts)


def _sass(cubin: bytes, tmp_path: Path, threads: int, weights: int) -> dict:
    require_tool("nvdisasm")
    from lowbit import toolchain

    f = tmp_path / "k.cubin"
    f.write_bytes(cubin)
    env = {"NVDISASM": str(toolchain.find_tool("nvdisasm")), "PATH": ""}
    out = subprocess.run([sys.executable, str(_sass_stats()), str(f), "--threads", str(threads), "--weights-per-iter",
                          str(weights), "--json"], capture_output=True, text=True, check=True, env=env)  # fmt: skip
    (row,) = json.loads(out.stdout)
    return row


def test_matmul_f16_on_tensor_cores(tmp_path: Path) -> None:
    require_tool("ptxas")
    prog = _aligned(_kernel("03_matmul_f16").specialize(BM=64, BN=64, BK=32))
    ck = compile_program(prog, "sm_80")
    body = main_loop(ck.ptx)
    m = mix(body)
    assert m["mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"] == 16  # per warp; x 4 warps = 64 per K step
    assert m["ldmatrix.sync.aligned.m8n8.x4.shared.b16"] == 4  # A: 32 rows x 32 k per warp = 4 x4 matrices
    assert m["ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"] == 4  # B: 32 k x 32 n per warp
    assert not [x for x in body if re.match(r"ld\.shared\.(b|u|s|f)(8|16)\b", x)]  # nothing narrower than 32 bits
    assert not [x for x in m if x.startswith("ld.shared")]  # mma operands come only through ldmatrix
    assert "fma.rn.f32" not in m and not any(k.startswith("cvt.f32.f16") for k in m)
    sass = _sass(ck.cubin, tmp_path, 128, 64 * 64 * 32 // 64)  # (not per weight here: a count of HMMA)
    assert sass["inner_loops"] == 0
    assert sass["loop_ops"]["HMMA"] == 16


def test_w4a16_on_tensor_cores_with_weights_from_registers(tmp_path: Path) -> None:
    require_tool("ptxas")
    prog = _aligned(_kernel("04_w4a16_matmul").specialize(BM=16, BN=128, BK=128))
    sel = lower_vm(prog, Options())
    dot = next(op for op in walk(sel.body) if isinstance(op, O.Dot))
    assert dot.inst == "mma.m16n8k16.f32.f16"
    # the B operand is the dequantisation itself (the dequant rule's one op over the gathering view), in registers; the
    # dot interleaves N, so each thread's words of a row are adjacent and load 16 bytes at a time straight into
    # the registers the view reads: only A (f16) passes through shared memory, and C stores from the accumulator
    assert dot.interleave
    dq = next(op for op in walk(sel.body) if getattr(op, "result", None) is dot.b)
    assert isinstance(dq, O.Dequant) and dq.zero is not None and dq.scale is not None
    assert dq.codes.type.dtype.name == "uint4" and dq.zero.type.dtype.name == "uint8"
    loop = next(op for op in sel.body if isinstance(op, O.For))
    shared_tiles = sorted((v.type.dtype.name, v.type.shape) for v in
                          (op.value for op in walk(loop.body) if isinstance(op, O.StoreShared)))  # fmt: skip
    assert shared_tiles == [("f16", (16, 128))]
    words = [op for op in walk(loop.body) if isinstance(op, O.LoadGlobal) and op.result.type.dtype.name == "uint32"]
    assert len(words) == 1 and words[0].vec == 4
    assert not [op for op in sel.body if isinstance(op, O.StoreShared)]  # the epilogue stores C directly
    ck = compile_program(prog, "sm_80")
    m = mix(main_loop(ck.ptx))
    # A: 32 bytes a thread (to shared); the words: 64 a thread, with their L2 evict_first hint
    assert m["ld.global.v4.b32"] == 2 and m["ld.global.L2::cache_hint.v4.u32"] == 16
    assert m["mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"] == 32  # per warp; x 4 warps = 128 per K step
    assert m["fma.rn.f16x2"] == 64 and m["mul.rn.f16x2"] == 64  # in the B-fragment pairs (magic - (1024 + z), * s)
    sass = _sass(ck.cubin, tmp_path, 128, 128 * 128)
    assert sass["inner_loops"] == 0 and sass["loop_ops"]["HMMA"] == 32
    assert ck.resources.spill_stores == 0


def test_compile_report_states_the_instruction() -> None:
    ck = compile_program(_kernel("03_matmul_f16").specialize(BM=64, BN=64, BK=32), "sm_80")
    assert 'inst="mma.m16n8k16.f32.f16"' in lower_vm_text(ck)


def lower_vm_text(ck) -> str:  # noqa: ANN001
    from lowbit.ir.printer import print_program

    return print_program(lower_vm(ck.program, Options(arch=ck.arch)))
