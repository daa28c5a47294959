"""SIMT IR -> LLVM IR (llvmlite) -> PTX -> cubin.

So far: the guarded LLVM driver (:mod:`lowbit.codegen.llvm`), the intrinsic
table (:mod:`lowbit.codegen.intrinsics`) and the ptxas wrapper
(:mod:`lowbit.codegen.ptxas`).  The SIMT-to-LLVM translator arrives with the
compiler issue.
"""
