"""Layouts: which thread holds which element, in which register and bits, and where a tile sits in memory.

* :mod:`~lowbit.layout.register` -- register layouts (thread, slot) -> coordinates,
  their hierarchical ``product`` and ``divide``;
* :mod:`~lowbit.layout.fragments` -- mma.sync / ldmatrix fragments as register layouts;
* :mod:`~lowbit.layout.construct` -- the compiler's default (blocked, coalesced, optionally padded) layouts;
* :mod:`~lowbit.layout.strided` -- CuTe-style shape:stride layouts (``compose`` is
  function composition), :mod:`~lowbit.layout.swizzle` -- XOR swizzles;
* :mod:`~lowbit.layout.subbyte` -- registers/bits of b-bit slots, memory bit addresses;
* :mod:`~lowbit.layout.banks` -- bank wavefronts and ldmatrix addressing;
* :mod:`~lowbit.layout.text` -- the compact text form and its parser.

The register and strided algebras are separate namespaces that share no
function names; both are re-exported here.
"""

from lowbit.layout.banks import LdmatrixPlan, access_wavefronts, ldmatrix_plan, warp_accesses
from lowbit.layout.construct import blocked, padded_extent
from lowbit.layout.fragments import MMA_SHAPES, block_fragment, ldmatrix_fragment, mma_fragment
from lowbit.layout.register import (
    RegisterLayout,
    column_local,
    column_spatial,
    divide,
    divide_outer,
    local,
    permute,
    product,
    reduce_dim,
    replicate,
    reshape,
    spatial,
)
from lowbit.layout.strided import (
    Layout,
    coalesce,
    complement,
    compose,
    left_inverse,
    logical_divide,
    logical_product,
    make_layout,
    right_inverse,
    row_major,
)
from lowbit.layout.subbyte import MemoryLayout, RegisterPacking, bits_of
from lowbit.layout.swizzle import Swizzle, SwizzledLayout
from lowbit.layout.text import parse, to_text

__all__ = [
    "MMA_SHAPES",
    "Layout",
    "LdmatrixPlan",
    "MemoryLayout",
    "RegisterLayout",
    "RegisterPacking",
    "Swizzle",
    "SwizzledLayout",
    "access_wavefronts",
    "bits_of",
    "block_fragment",
    "blocked",
    "coalesce",
    "column_local",
    "column_spatial",
    "complement",
    "compose",
    "divide",
    "divide_outer",
    "ldmatrix_fragment",
    "ldmatrix_plan",
    "left_inverse",
    "local",
    "logical_divide",
    "logical_product",
    "make_layout",
    "mma_fragment",
    "padded_extent",
    "parse",
    "permute",
    "product",
    "reduce_dim",
    "replicate",
    "reshape",
    "right_inverse",
    "row_major",
    "spatial",
    "to_text",
    "warp_accesses",
]
