"""The layout verifier: the conditions the passes after layout inference rely on, checked between passes.

``problems(prog, stage)`` lists every violation (op, location, message):

* ``"inferred"`` (after ``infer_layouts``): every register tile -- results,
  operands, loop block arguments -- carries a register layout spanning the
  block's ``32 * num_warps`` threads, and every op's tiles satisfy its
  layout rule (what it requires of its operands, what it produces);
  carried values keep one layout through a loop or an ``if``;
* ``"selected"`` (after ``select_instructions``): all of that, and no
  ``dot`` is left, every ``convert_layout`` has a route, and no ``reduce``
  axis spans warps.

:func:`verify` raises :class:`~lowbit.errors.CodegenError` listing them.
"""

from __future__ import annotations

from lowbit.errors import CodegenError
from lowbit.ir import ops as O
from lowbit.ir.program import Program
from lowbit.ir.rewrite import walk
from lowbit.ir.types import TileType, Value
from lowbit.layout.register import RegisterLayout
from lowbit.layout import register as R
from lowbit.transforms._layout_maps import register_map
from lowbit.transforms._layout_rules import Env, reshape_layout, rule, tile_operands, tile_results, view_gather_source, view_result_layout

__all__ = ["problems", "verify"]


def _lay(v: Value) -> RegisterLayout | None:
    return getattr(v.type, "layout", None)


def problems(prog: Program, stage: str = "inferred", arch: str = "sm_80", tensor_cores: bool = True) -> list[str]:
    from lowbit.transforms.select_instructions import cross_warp  # noqa: PLC0415 - select imports this module's peers

    T = prog.num_warps * 32
    env = Env(T, arch, tensor_cores)
    out: list[str] = []

    def report(op: O.Op, msg: str) -> None:
        out.append(f"{op.opname}{f' at {op.loc}' if op.loc is not None else ''}: {msg}")

    for op in walk(prog.body):
        tiles = tile_operands(op) + tile_results(op)
        if isinstance(op, O.For):
            tiles += [a for a in op.args if isinstance(a, Value) and isinstance(a.type, TileType)]
        for v in tiles:
            lay = _lay(v)
            if not isinstance(lay, RegisterLayout):
                report(op, f"tile {v.hint or v.type} has no register layout")
            elif lay.num_threads != T:
                report(op, f"tile {v.hint or v.type} has a layout over {lay.num_threads} threads, not {T}")
        if any(not isinstance(_lay(v), RegisterLayout) for v in tiles):
            continue
        r = rule(op)
        for v, want in r.requires(op, _lay, env).items():
            if _lay(v) != want:
                report(op, f"operand {v.hint or v.type} is in {_lay(v)}, the op needs {want}")
        for v, want in r.produces(op, _lay, env).items():
            if _lay(v) != want:
                report(op, f"result {v.hint or v.type} is in {_lay(v)}, the op makes {want}")
        if isinstance(op, O.View):
            ax = op.axis % len(op.x.type.shape)  # type: ignore[union-attr]
            args = (ax, op.x.type.dtype.bits, op.result.type.dtype.bits)  # type: ignore[union-attr]
            made = view_result_layout(_lay(op.x), *args)  # type: ignore[arg-type]
            if made != _lay(op.result) and view_gather_source(_lay(op.result), *args) != _lay(op.x):  # type: ignore
                report(op, f"the view of {_lay(op.x)} is {made}, not the result's {_lay(op.result)}")
        if isinstance(op, O.Reshape):
            made = reshape_layout(_lay(op.x), op.x.type.shape, op.result.type.shape)  # type: ignore
            if made != _lay(op.result):
                report(op, f"the reshape of {_lay(op.x)} is {made}, not the result's {_lay(op.result)}")
        if isinstance(op, O.Permute) and R.permute(_lay(op.x), op.order) != _lay(op.result):  # type: ignore[arg-type]
            report(op, f"the permutation of {_lay(op.x)} is not the result's {_lay(op.result)}")
        if isinstance(op, O.Broadcast):
            dims = tuple(None if a == 1 and b > 1 else d
                         for d, (a, b) in enumerate(zip(op.x.type.shape, op.result.type.shape)))  # type: ignore  # fmt: skip
            if register_map(_lay(op.x), _lay(op.result), dims) is None:  # type: ignore[arg-type]
                report(op, f"broadcasting {_lay(op.x)} to {_lay(op.result)} moves data between threads")
        if isinstance(op, O.For):
            for group in zip(op.inits, op.args, op.yields, op.results):
                lays = {str(_lay(x)) for x in group if isinstance(x, Value) and isinstance(x.type, TileType)}
                if len(lays) > 1:
                    report(op, f"a carried tile changes layout: {sorted(lays)}")
        if isinstance(op, O.If):
            for group in zip(op.then_yields, op.else_yields, op.results):
                lays = {str(_lay(x)) for x in group if isinstance(x, Value) and isinstance(x.type, TileType)}
                if len(lays) > 1:
                    report(op, f"an if result changes layout: {sorted(lays)}")
        if stage == "selected":
            if isinstance(op, O.Dot) and not op.inst:
                report(op, "dot was not selected")
            elif isinstance(op, O.ConvertLayout) and not op.route:
                report(op, "no route selected")
            elif isinstance(op, O.Reduce) and cross_warp(_lay(op.x), op.axis):  # type: ignore[arg-type]
                report(op, "the reduced axis spans warps")
    return out


def verify(prog: Program, stage: str = "inferred", arch: str = "sm_80", tensor_cores: bool = True) -> Program:
    found = problems(prog, stage, arch, tensor_cores)
    if found:
        raise CodegenError(f"kernel {prog.name}: layouts do not verify ({stage}):\n  " + "\n  ".join(found))
    return prog
