"""LLVM IR text -> PTX, through a persistent llvmlite worker process.

:func:`emit_ptx` is the one entry point codegen uses.  Before LLVM sees a
module, lowbit checks in-process what is known to kill LLVM or to produce PTX
that ptxas rejects (``shared/design/TOOLCHAIN.md``, "Hazards"):

* the PTX version must be at least the target's default and at most the
  highest version LLVM 22 / ptxas 13.0 accept (below the minimum LLVM exits
  inside ``create_target_machine``);
* every ``llvm.nvvm.*`` intrinsic the module declares must be in
  :mod:`lowbit.codegen.intrinsics`' table for this (target, PTX version): an
  unselectable intrinsic aborts LLVM, a misspelt one silently becomes an
  ``.extern .func`` that only ptxas notices.

Whatever still goes wrong inside LLVM ends only the worker: the caller gets a
:class:`~lowbit.errors.CodegenError` with LLVM's own message, and the next
request starts a fresh worker.  The emitted PTX is checked once more for
``.extern .func llvm.`` declarations.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from lowbit import config
from lowbit.arch import Target, target as get_target
from lowbit.codegen import intrinsics
from lowbit.errors import CodegenError

#: The worker's command line (a test may point it at a stand-in that never answers).
WORKER_COMMAND = (sys.executable, "-m", "lowbit.codegen.llvm_server")


class _Timeout(Exception):
    pass


@dataclass(frozen=True)
class PTXResult:
    ptx: str
    optimized_ir: str


class LLVMWorker:
    """A persistent ``python -m lowbit.codegen.llvm_server`` process (restarted after a crash or a timeout).

    Every exchange is bounded: the worker must start and answer each request within ``timeout`` seconds
    (default :data:`lowbit.config.LLVM_TIMEOUT_S`); one that does not is killed, and the request is a
    :class:`~lowbit.errors.CodegenError` naming the worker and the timeout.
    """

    def __init__(self, timeout: float | None = None, command: tuple[str, ...] | None = None) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.timeout = timeout
        self.command = command

    @property
    def limit(self) -> float:
        return config.LLVM_TIMEOUT_S if self.timeout is None else self.timeout

    def _timed_out(self, proc: subprocess.Popen, what: str) -> CodegenError:
        proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass
        self._proc = None
        return CodegenError(f"the LLVM worker ({' '.join(self.command or WORKER_COMMAND)}) did not {what} within "
                            f"{self.limit:g} s and was killed (lowbit.config.LLVM_TIMEOUT_S)")

    def _start(self) -> subprocess.Popen:
        try:
            proc = subprocess.Popen(
                list(self.command or WORKER_COMMAND),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise CodegenError(f"the LLVM worker could not be started: {exc.strerror or exc}") from None
        try:
            hello = self._read(proc, time.monotonic() + self.limit)
        except _Timeout:
            raise self._timed_out(proc, "start") from None
        if hello is None or not hello.get("ready"):
            raise CodegenError(f"the LLVM worker did not start: {self._stderr_of(proc)}")
        return proc

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise _Timeout
            chunk = os.read(fd, n - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    @classmethod
    def _read(cls, proc: subprocess.Popen, deadline: float) -> dict | None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        head = cls._read_exact(fd, 4, deadline)
        if len(head) < 4:
            return None
        (size,) = struct.unpack("<I", head)
        body = cls._read_exact(fd, size, deadline)
        if len(body) < size:
            return None
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            return None

    @staticmethod
    def _stderr_of(proc: subprocess.Popen) -> str:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert proc.stderr is not None
        text = proc.stderr.read().decode("utf-8", errors="replace").strip()
        lines = [line for line in text.splitlines() if line.strip()]
        tail = "\n".join(lines[-6:]) or "(no message)"
        return f"worker exited with status {proc.returncode}: {tail}"

    def request(self, message: dict) -> dict:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            data = json.dumps(message).encode("utf-8")
            try:
                assert proc.stdin is not None
                proc.stdin.write(struct.pack("<I", len(data)) + data)
                proc.stdin.flush()
                reply = self._read(proc, time.monotonic() + self.limit)
            except _Timeout:
                raise self._timed_out(proc, f"answer a request for {message.get('cpu')}") from None
            except (BrokenPipeError, OSError):
                reply = None
            if reply is None:  # LLVM aborted the worker
                self._proc = None
                raise CodegenError(f"LLVM failed while compiling for {message.get('cpu')}: {self._stderr_of(proc)}")
            return reply

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
            self._proc = None


_DEFAULT_WORKER: LLVMWorker | None = None
_DEFAULT_LOCK = threading.Lock()


def default_worker() -> LLVMWorker:
    global _DEFAULT_WORKER
    with _DEFAULT_LOCK:
        if _DEFAULT_WORKER is None:
            _DEFAULT_WORKER = LLVMWorker()
        return _DEFAULT_WORKER


def check_ptx_version(tgt: Target, ptx: tuple[int, int]) -> None:
    if ptx < tgt.default_ptx:
        raise CodegenError(
            f"PTX ISA {ptx[0]}.{ptx[1]} is below {tgt.name}'s minimum {tgt.default_ptx[0]}.{tgt.default_ptx[1]}"
        )
    if ptx > tgt.max_ptx:
        raise CodegenError(
            f"PTX ISA {ptx[0]}.{ptx[1]} is above {tgt.max_ptx[0]}.{tgt.max_ptx[1]}, the highest LLVM 22 and "
            "ptxas 13.0 accept"
        )


def emit_ptx(
    llvm_ir: str,
    arch: str | Target,
    ptx_version: tuple[int, int] | None = None,
    opt_level: int = 3,
    worker: LLVMWorker | None = None,
) -> PTXResult:
    """Optimise ``llvm_ir`` and emit PTX for ``arch``.

    The PTX version defaults to the lowest the module can use: the target's
    minimum, raised to what its intrinsics need (FP8 ``mma`` needs 8.4 on
    sm_89, ``and.popc`` 7.1 on sm_80), never above the target's maximum.
    """
    tgt = get_target(arch)
    ptx = tuple(ptx_version) if ptx_version is not None else intrinsics.needed_ptx(llvm_ir, tgt)
    check_ptx_version(tgt, ptx)
    intrinsics.check_module(llvm_ir, tgt, ptx)
    reply = (worker or default_worker()).request(
        {"llvm_ir": llvm_ir, "cpu": tgt.name, "ptx": list(ptx), "opt": opt_level}
    )
    if not reply.get("ok"):
        raise CodegenError(f"LLVM rejected the module for {tgt.name}: {reply.get('error')}")
    text = reply["ptx"]
    for line in text.splitlines():
        if ".extern .func" in line and "llvm." in line:
            raise CodegenError(f"LLVM left an unresolved intrinsic call in the PTX: {line.strip()}")
    return PTXResult(text, reply["optimized_ir"])
