"""The LLVM worker process: reads LLVM IR requests on stdin, answers PTX on stdout.

Run as ``python -m lowbit.codegen.llvm_server``.  It exists because LLVM
reports some errors by ending the process (an intrinsic the target cannot
select is ``LLVM ERROR`` + SIGABRT; a PTX version below the target's minimum
exits inside ``create_target_machine``).  In a separate process such an abort
costs a restart of the worker, never the user's Python interpreter.  The
worker stays alive between compiles, so llvmlite's import and target
initialisation are paid once, not per kernel.

Protocol (binary-safe, one request at a time): each message is a 4-byte
little-endian length followed by that many bytes of UTF-8 JSON.

    request  {"llvm_ir": str, "cpu": "sm_80", "ptx": [7, 0], "opt": 3}
    response {"ok": true, "ptx": str, "optimized_ir": str}
           | {"ok": false, "error": str}

Only llvmlite and the standard library are imported here.
"""

from __future__ import annotations

import json
import struct
import sys


def _read(stream) -> dict | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack("<I", head)
    return json.loads(stream.read(size).decode("utf-8"))


def _write(stream, message: dict) -> None:
    data = json.dumps(message).encode("utf-8")
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


class _Compiler:
    def __init__(self) -> None:
        import llvmlite.binding as llvm

        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        # Vector widths are lowbit's choice (instruction selection, visible in the SIMT program); NVPTX's
        # load/store vectorizer would merge a thread's other adjacent accesses too -- and may widen the last
        # ones of a buffer into its padding, reading bytes nothing wrote.
        llvm.set_option("lowbit", "-disable-nvptx-load-store-vectorizer")
        # ... and VectorCombine would split the other way: a vector load whose lanes are only extracted becomes
        # one scalar load per lane (scalarizeLoadExtract), turning a 16-byte ld.shared.v4 into four ld.shared.b32
        llvm.set_option("lowbit", "-disable-vector-combine")
        self.llvm = llvm
        self.target = llvm.Target.from_triple("nvptx64-nvidia-cuda")
        self.machines: dict[tuple[str, str, int], object] = {}

    def machine(self, cpu: str, ptx: tuple[int, int], opt: int):
        features = f"+ptx{ptx[0]}{ptx[1]}"
        key = (cpu, features, opt)
        if key not in self.machines:
            self.machines[key] = self.target.create_target_machine(cpu=cpu, features=features, opt=opt)
        return self.machines[key]

    def compile(self, request: dict) -> dict:
        llvm = self.llvm
        module = llvm.parse_assembly(request["llvm_ir"])
        module.verify()
        tm = self.machine(request["cpu"], tuple(request["ptx"]), int(request["opt"]))
        if int(request["opt"]) > 0:
            pto = llvm.create_pipeline_tuning_options(speed_level=int(request["opt"]))
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(module, pb)
        return {"ok": True, "ptx": tm.emit_assembly(module), "optimized_ir": str(module)}


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # anything LLVM or Python prints must not corrupt the protocol stream
    sys.stdout = sys.stderr
    compiler = _Compiler()
    _write(stdout, {"ok": True, "ready": True})
    while True:
        request = _read(stdin)
        if request is None:
            return 0
        try:
            reply = compiler.compile(request)
        except Exception as exc:  # llvmlite raises RuntimeError for parse/verify errors
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _write(stdout, reply)


if __name__ == "__main__":
    sys.exit(main())
