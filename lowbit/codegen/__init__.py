"""SIMT IR -> LLVM IR (llvmlite) -> PTX -> cubin.

* :mod:`lowbit.codegen.emit` (+ ``emit_ops``, ``llvm_types``): translate a
  SIMT kernel op by op into ``llvmlite.ir`` (every choice was already made by
  a transform; this only translates);
* :mod:`lowbit.codegen.llvm`: the guarded LLVM driver (persistent worker
  process, PTX-version and intrinsic checks before LLVM runs);
* :mod:`lowbit.codegen.intrinsics`: the NVVM intrinsics lowbit may emit, per target;
* :mod:`lowbit.codegen.ptxas`: assemble to a cubin and parse the resource report.
"""
