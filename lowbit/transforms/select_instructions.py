"""Choose how each tile op is carried out, and write every data movement between threads out as VM ops.

Requires: every register tile carries a layout (``infer_layouts``).
Ensures:  each ``convert_layout`` has a route -- ``regs`` (every thread
          already holds what it needs: register moves) or ``shfl`` (all
          within warps, one shuffle per slot) -- or is replaced by the
          explicit shared-memory round trip (``alloc_shared``, ``barrier``,
          ``store_shared``, ``barrier``, ``load_shared``, ``free_shared``);
          ``dot`` is the per-thread FMA scheme written as VM ops (operands
          staged in shared memory, a K loop of column x row FMAs in the
          accumulator's layout); a ``reduce`` whose axis spans warps first
          converts its operand to a layout that keeps the axis inside warps;
          a ``slice`` that is not a register move goes through shared memory;
          global and shared loads and stores have their vector width
          (``vec``: elements per access, up to 16 bytes) where layout,
          alignment and divisibility facts allow it.
Preserves: the program's meaning; layouts (every new tile gets one).

After this pass no op lowers through a hidden shared-memory round trip:
what moves through shared memory is in the VM text, where the shared-memory
planner and barrier placement of later passes can see and cost it.
"""

from __future__ import annotations

from lowbit.dtypes import dtype
from lowbit.errors import CodegenError
from lowbit.ir import ops as O
from lowbit.ir.expr import Const, Var
from lowbit.ir.program import Program
from lowbit.ir.rewrite import Rewriter
from lowbit.ir.types import INT32, SharedType, TileType, Value, is_bool
from lowbit.layout import register as R
from lowbit.layout.construct import padded_extent, pow2_factor
from lowbit.layout.register import RegisterLayout
from lowbit.transforms._costs import best_round_trip
from lowbit.transforms._divisibility import Divisibility
from lowbit.transforms._layout_rules import Env, dot_plan
from lowbit.transforms._ldmatrix import ldmatrix_ok
from lowbit.transforms._layout_maps import local_table, register_map, shuffle_plan, spatial_table
from lowbit.transforms._select_memory import MemorySelect
from lowbit.transforms._shared_access import swizzle_of
from lowbit.transforms.options import Options

__all__ = ["reduce_layout", "run"]

F32 = dtype("f32")


def _layout(v: Value) -> RegisterLayout:
    lay = v.type.layout  # type: ignore[union-attr]
    if lay is None:
        raise CodegenError(f"select_instructions: {v} has no layout (run infer_layouts first)")
    return lay  # type: ignore[return-value]


def _tile(dt, shape, layout, hint: str = "") -> Value:  # noqa: ANN001
    return Value(TileType(dt, tuple(shape), layout), hint)


def _zeros(n: int) -> tuple[Const, ...]:
    return tuple(Const(0, INT32) for _ in range(n))


def cross_warp(layout: RegisterLayout, axis: int) -> bool:
    """Whether some thread digit along ``axis`` has a thread stride of 32 or more (it spans warps)."""
    stride = 1
    for e in reversed(layout.spatial):
        size = -e if e < 0 else layout.mode_sizes[e]
        if e >= 0 and size > 1 and layout._mode_dim[e][0] == axis and stride * size > 32:  # noqa: SLF001
            return True
        stride *= size
    return False


def reduce_layout(shape: tuple[int, ...], axis: int, threads: int) -> RegisterLayout:
    """A layout whose thread digits along ``axis`` are the lowest lane bits (at most 32 threads along it).

    The other dimensions take the remaining thread digits (innermost first),
    whatever is left replicates, and every dimension keeps the rest of its
    extent in slots -- so a reduction along ``axis`` never leaves a warp.
    Extents are padded (phantom elements) where that spreads threads better.
    """
    order = [d for d in range(len(shape)) if d != axis] + [axis]
    p = [shape[d] for d in order]
    tg = [1] * len(p)
    p[-1], tg[-1] = padded_extent(p[-1], min(32, threads))
    left = threads // tg[-1]
    for i in reversed(range(len(p) - 1)):
        p[i], tg[i] = padded_extent(p[i], left)
        left //= tg[i]
    reps = [n // t for n, t in zip(p, tg)]
    parts = []
    if left > 1:
        parts.append(R.replicate(left, len(p)))
    if any(r > 1 for r in reps):
        parts.append(R.local(*reps))
    parts.append(R.spatial(*tg))
    lay = R.product(*parts) if len(parts) > 1 else parts[0]
    return R.permute(lay, tuple(_inverse(order)))


def _inverse(order: list[int]) -> list[int]:
    inv = [0] * len(order)
    for i, d in enumerate(order):
        inv[d] = i
    return inv


class _Select(MemorySelect, Rewriter):
    def __init__(self, prog: Program, opts: Options) -> None:
        super().__init__()
        self.init_memory(prog)
        self.prog, self.opts = prog, opts
        self.T = prog.num_warps * 32
        self.div = Divisibility(prog)
        self.ptr_div = {id(p.value): p.divisibility for p in prog.params if isinstance(p.value, Value)}
        self.views: dict[int, O.GlobalView] = {}

    # ------------------------------------------------------------------ dispatch
    def visit(self, op: O.Op) -> None:
        fn = getattr(self, f"_{type(op).__name__}", None)
        self.loop_depth += isinstance(op, O.For)  # (the epilogue rule acts outside loops only)
        try:
            new = self.copy(op)
        finally:
            self.loop_depth -= isinstance(op, O.For)
        if fn is None:
            self.emit(new)
        else:
            fn(new)

    # ------------------------------------------------------------------ layout conversions
    def _ConvertLayout(self, op: O.ConvertLayout) -> None:
        src, dst = _layout(op.x), _layout(op.result)
        if register_map(src, dst) is not None:
            self.emit(op.replace(route="regs"))
        elif op.x.type.dtype.bits <= 32 and shuffle_plan(src, dst) is not None:  # type: ignore[union-attr]
            # (bool tiles shuffle as 0/1 words; 64-bit elements would need two shuffles per slot)
            self.emit(op.replace(route="shfl"))
        else:
            self.bind(op.result, self.through_shared(op.x, dst, op.loc, hint="convert"))

    def through_shared(self, x: Value, layout: RegisterLayout, loc: O.Loc | None, hint: str) -> Value:
        """``x`` in ``layout`` via an explicit shared-memory round trip; returns the loaded tile.

        The read is ``ldmatrix`` when the destination is a fragment layout it
        delivers (``.trans`` for 16-bit elements whose registers run down
        the columns); an 8-bit fragment whose registers run down the columns
        has no transposing ``ldmatrix`` before sm_100a, so its tile is stored
        transposed (a [C, R] buffer) and read with plain ``ldmatrix``.
        """
        t = x.type
        bits = t.dtype.bits  # type: ignore[union-attr]
        two_d = len(t.shape) == 2 and tuple(layout.shape) == tuple(t.shape)  # type: ignore[union-attr]
        unpadded = two_d and tuple(_layout(x).shape) == tuple(t.shape)  # type: ignore[union-attr]
        flip = bits == 8 and not ldmatrix_ok(layout, bits, False) and ldmatrix_ok(R.permute(layout, (1, 0)), bits, False)
        if unpadded and not flip and not self.ldmatrix_via(layout, t):  # type: ignore[arg-type]
            flip = best_round_trip(_layout(x), layout, bits)[1]  # a transposed buffer reads (or writes) wider
        if unpadded and flip:  # fmt: skip
            xt = _tile(t.dtype, t.shape[::-1], R.permute(_layout(x), (1, 0)), x.hint)  # type: ignore[union-attr]
            self.emit(O.Permute(result=xt, x=x, order=(1, 0), loc=loc))
            rt = self.through_shared(xt, R.permute(layout, (1, 0)), loc, hint)
            r = _tile(t.dtype, t.shape, layout, x.hint)  # type: ignore[union-attr]
            self.emit(O.Permute(result=r, x=rt, order=(1, 0), loc=loc))
            return r
        buf = Value(SharedType(t.dtype, t.shape), hint)  # type: ignore[union-attr]
        zero = _zeros(len(t.shape))  # type: ignore[union-attr]
        self.emit(O.AllocShared(result=buf, loc=loc))
        self.emit(O.Barrier(loc=loc))  # an earlier use of this buffer (a previous loop iteration) has been read
        self.emit(self.vectorize_shared(O.StoreShared(dst=buf, value=x, offsets=zero, loc=loc)))
        self.emit(O.Barrier(loc=loc))
        r = _tile(t.dtype, t.shape, layout, x.hint)  # type: ignore[union-attr]
        load = O.LoadShared(result=r, src=buf, offsets=zero, loc=loc)
        via = self.ldmatrix_via(layout, t) if two_d else ""  # type: ignore[arg-type]
        self.emit(load.replace(via=via) if via else self.vectorize_shared(load))
        self.emit(O.FreeShared(buf=buf, loc=loc))
        return r

    def ldmatrix_via(self, layout: RegisterLayout, t: TileType) -> str:
        """``ldmatrix`` / ``ldmatrix.trans`` when the target has it and the layout is what it delivers; else ""."""
        from lowbit.arch import target  # noqa: PLC0415

        bits = t.dtype.bits
        if not target(self.opts.arch).supports("ldmatrix") or bits > 16 or (t.shape[1] * bits) % 128:
            return ""  # (the buffer's rows must keep every 16-byte matrix row aligned)
        if ldmatrix_ok(layout, bits, False):
            return "ldmatrix"
        if ldmatrix_ok(layout, bits, True):
            return "ldmatrix.trans"
        return ""

    def _Slice(self, op: O.Slice) -> None:
        src, dst = _layout(op.x), _layout(op.result)
        if register_map(src, dst, None, op.starts) is not None:
            self.emit(op)
            return
        t = op.x.type
        buf = Value(SharedType(t.dtype, t.shape), "slice")  # type: ignore[union-attr]
        loc = op.loc
        self.emit(O.AllocShared(result=buf, loc=loc))
        self.emit(O.Barrier(loc=loc))
        self.emit(self.vectorize_shared(O.StoreShared(dst=buf, value=op.x, offsets=_zeros(len(t.shape)), loc=loc)))  # type: ignore[union-attr]
        self.emit(O.Barrier(loc=loc))
        r = _tile(t.dtype, op.result.type.shape, dst, op.result.hint)  # type: ignore[union-attr]
        offs = tuple(Const(s, INT32) for s in op.starts)
        self.emit(self.vectorize_shared(O.LoadShared(result=r, src=buf, offsets=offs, loc=loc)))
        self.emit(O.FreeShared(buf=buf, loc=loc))
        self.bind(op.result, r)

    # ------------------------------------------------------------------ reduce
    def _Reduce(self, op: O.Reduce) -> None:
        lay = _layout(op.x)
        if not cross_warp(lay, op.axis):
            self.emit(op)
            return
        t = op.x.type
        inner = reduce_layout(t.shape, op.axis, self.T)  # type: ignore[union-attr]
        y = self.convert(op.x, inner, op.loc)
        r = _tile(t.dtype, op.result.type.shape, R.reduce_dim(inner, op.axis), op.result.hint)  # type: ignore[union-attr]
        self.emit(O.Reduce(result=r, x=y, kind=op.kind, axis=op.axis, loc=op.loc))
        self.bind(op.result, self.convert(r, _layout(op.result), op.loc))

    def convert(self, x: Value, layout: RegisterLayout, loc: O.Loc | None) -> Value:
        if _layout(x) == layout:
            return x
        r = _tile(x.type.dtype, x.type.shape, layout, x.hint)  # type: ignore[union-attr]
        self._ConvertLayout(O.ConvertLayout(result=r, x=x, loc=loc))
        return self.value(r)

    # ------------------------------------------------------------------ dot: tensor cores, or the FMA scheme
    def _Dot(self, op: O.Dot) -> None:
        p = dot_plan(op, Env(self.T, self.opts.arch, self.opts.tensor_cores))
        if p is not None and _layout(op.a) == p.a and _layout(op.b) == p.b and _layout(op.c) == p.c:
            self.mma(op, p)
        else:
            self.fma_dot(op)

    def mma(self, op: O.Dot, p) -> None:  # noqa: ANN001 - an MmaPlan
        """The ``dot`` stays, with its instruction; operands the instruction reads in another dtype are cast
        first (exactly: 4-bit to 8-bit integers, e4m3/e5m2 to f16), an accumulator too (f16 -> f32 for bf16)."""
        loc = op.loc

        def as_(x: Value, dt) -> Value:  # noqa: ANN001
            if x.type.dtype == dt:  # type: ignore[union-attr]
                return x
            y = _tile(dt, x.type.shape, _layout(x), x.hint)  # type: ignore[union-attr]
            self.emit(O.Cast(result=y, x=x, loc=loc))
            return y

        a, b, c = as_(op.a, p.ab), as_(op.b, p.ab), as_(op.c, p.acc)
        if c is op.c:
            self.emit(O.Dot(result=op.result, a=a, b=b, c=c, inst=p.inst, interleave=op.interleave, loc=loc))
            return
        acc = _tile(p.acc, op.result.type.shape, _layout(op.result), op.result.hint)  # type: ignore[union-attr]
        self.emit(O.Dot(result=acc, a=a, b=b, c=c, inst=p.inst, interleave=op.interleave, loc=loc))
        out = _tile(op.result.type.dtype, op.result.type.shape, _layout(op.result), op.result.hint)  # type: ignore[union-attr]
        self.emit(O.Cast(result=out, x=acc, loc=loc))
        self.bind(op.result, out)

    def fma_dot(self, op: O.Dot) -> None:
        a, b, c = op.a, op.b, op.c
        M, K = a.type.shape  # type: ignore[union-attr]
        N = b.type.shape[1]  # type: ignore[union-attr]
        C = _layout(op.result)
        loc = op.loc
        is_float = a.type.dtype.is_float  # type: ignore[union-attr]
        acc_dt = F32 if is_float else c.type.dtype  # type: ignore[union-attr]
        sa = Value(SharedType(a.type.dtype, (M, K)), "dot_a")  # type: ignore[union-attr]
        sb = Value(SharedType(b.type.dtype, (K, N)), "dot_b")  # type: ignore[union-attr]
        for buf in (sa, sb):
            self.emit(O.AllocShared(result=buf, loc=loc))
        self.emit(O.Barrier(loc=loc))
        self.emit(self.vectorize_shared(O.StoreShared(dst=sa, value=a, offsets=_zeros(2), loc=loc)))
        self.emit(self.vectorize_shared(O.StoreShared(dst=sb, value=b, offsets=_zeros(2), loc=loc)))
        self.emit(O.Barrier(loc=loc))
        acc0 = c
        if c.type.dtype != acc_dt:  # type: ignore[union-attr]
            acc0 = _tile(acc_dt, (M, N), C, "acc")
            self.emit(O.Cast(result=acc0, x=c, loc=loc))
        k = Var("k", INT32)
        arg = _tile(acc_dt, (M, N), C, "acc")
        col_l, row_l = R.reduce_dim(C, 1), R.reduce_dim(C, 0)
        body: list[O.Op] = []
        col = _tile(a.type.dtype, (M, 1), col_l, "a_col")  # type: ignore[union-attr]
        row = _tile(b.type.dtype, (1, N), row_l, "b_row")  # type: ignore[union-attr]
        body.append(self.vectorize_shared(O.LoadShared(result=col, src=sa, offsets=(Const(0, INT32), k), loc=loc)))
        body.append(self.vectorize_shared(O.LoadShared(result=row, src=sb, offsets=(k, Const(0, INT32)), loc=loc)))
        wide = []
        for x, lay in ((col, col_l), (row, row_l)):
            if x.type.dtype != acc_dt:  # type: ignore[union-attr]
                y = _tile(acc_dt, x.type.shape, lay, x.hint)  # type: ignore[union-attr]
                body.append(O.Cast(result=y, x=x, loc=loc))
                x = y
            z = _tile(acc_dt, (M, N), C, x.hint)
            body.append(O.Broadcast(result=z, x=x, loc=loc))
            wide.append(z)
        new = _tile(acc_dt, (M, N), C, "acc")
        if is_float:
            body.append(O.Fma(result=new, a=wide[0], b=wide[1], c=arg, loc=loc))
        else:
            prod = _tile(acc_dt, (M, N), C, "prod")
            body.append(O.ElementwiseBinary(result=prod, op="mul", a=wide[0], b=wide[1], loc=loc))
            body.append(O.ElementwiseBinary(result=new, op="add", a=arg, b=prod, loc=loc))
        res = _tile(acc_dt, (M, N), C, "acc")
        self.emit(O.For(var=k, start=Const(0, INT32), stop=Const(K, INT32), step=Const(1, INT32), inits=(acc0,),
                        args=(arg,), body=tuple(body), yields=(new,), results=(res,), loc=loc))  # fmt: skip
        out = res
        if res.type.dtype != op.result.type.dtype:  # type: ignore[union-attr]
            out = _tile(op.result.type.dtype, (M, N), C, op.result.hint)  # type: ignore[union-attr]
            self.emit(O.Cast(result=out, x=res, loc=loc))
        for buf in (sa, sb):
            self.emit(O.FreeShared(buf=buf, loc=loc))
        self.bind(op.result, out)

    # ------------------------------------------------------------------ vector widths
    def _GlobalView(self, op: O.GlobalView) -> None:
        self.views[id(op.result)] = op
        self.emit(op)

    def _LoadGlobal(self, op: O.LoadGlobal) -> None:
        self.emit(op.replace(vec=self.global_vec(op.src, op.result, op.offsets, op.mask)))

    def _StoreGlobal(self, op: O.StoreGlobal) -> None:
        self.emit(self.wide_store(op, self.global_vec(op.dst, op.value, op.offsets, op.mask)))

    def _LoadShared(self, op: O.LoadShared) -> None:
        self.emit(self.vectorize_shared(op))

    def _CopyAsync(self, op: O.CopyAsync) -> None:
        self.emit(self.vectorize_copy(op))

    def vectorize_copy(self, op: O.CopyAsync) -> O.CopyAsync:
        """The copy with its run (:meth:`copy_vec`) and, when the view's last extent is a multiple of it,
        ``whole``: then no run straddles a row's end, and each is copied all or nothing."""
        vec = self.copy_vec(op)
        gv = self.views.get(id(op.src))
        whole = vec > 1 and gv is not None and self.div(gv.shape[-1]) % vec == 0
        return op.replace(vec=vec, whole=whole)

    def copy_vec(self, op: O.CopyAsync) -> int:
        """The run a ``copy_async`` issues as one ``cp.async`` when its alignment is provable, else 1."""
        from lowbit.transforms._shared_access import copy_run  # noqa: PLC0415

        _, run = copy_run(op, self.T)
        bits = op.dst.type.dtype.bits  # type: ignore[union-attr]
        gv = self.views.get(id(op.src))
        if run == 1 or op.mask is not None or bits % 8 or gv is None:
            return 1
        last = gv.strides[-1]
        if not (isinstance(last, Const) and last.value == 1):
            return 1
        ok = self.ptr_div.get(id(gv.ptr), 1) % (run * bits // 8) == 0 and self.div(op.offsets[-1]) % run == 0
        return run if ok and all(self.div(s) % run == 0 for s in gv.strides[:-1]) else 1

    def _StoreShared(self, op: O.StoreShared) -> None:
        self.emit(self.vectorize_shared(op))

    def _run_width(self, lay: RegisterLayout, bits: int, shape: tuple[int, ...]) -> int:
        """The widest power-of-two run (<= 16 bytes) of consecutive last-dim elements whose starts are aligned to it
        (and, in a layout padded along the last dimension, that never mixes real and phantom elements)."""
        w = pow2_factor(lay.contiguous_run(-1), max(1, 128 // bits))
        if lay.shape[-1] != shape[-1]:
            w = pow2_factor(shape[-1], w)
        if w == 1:
            return 1
        starts = local_table(lay)[::w, -1]
        while w > 1 and (any(int(s) % w for s in starts) or any(int(s) % w for s in spatial_table(lay)[:, -1])):
            w //= 2
            starts = local_table(lay)[::w, -1]
        return w

    def global_vec(self, view: Value, tile: Value, offsets: tuple, mask: Value | None) -> int:
        """Elements per access for a global load/store (1 unless provably aligned and uniformly in bounds)."""
        t = tile.type
        bits = t.dtype.bits  # type: ignore[union-attr]
        if mask is not None or is_bool(t.dtype) or bits > 32 and bits % 32:  # type: ignore[union-attr]
            return 1
        gv = self.views.get(id(view))
        if gv is None:
            return 1
        last = gv.strides[-1]
        if not (isinstance(last, Const) and last.value == 1):
            return 1
        w = self._run_width(_layout(tile), bits, t.shape)  # type: ignore[union-attr]
        if w * bits < 8:
            return 1
        ptr_bytes = self.ptr_div.get(id(gv.ptr), 1)
        # byte alignment of the pointer must cover the access; every term of the element offset must be a
        # multiple of w (the last dimension's offset and extent; the other dimensions' strides)
        while w > 1:
            nbytes = max(1, w * bits // 8)
            ok = ptr_bytes % nbytes == 0 and self.div(offsets[-1]) % w == 0 and self.div(gv.shape[-1]) % w == 0
            ok = ok and all(self.div(s) % w == 0 for s in gv.strides[:-1])
            if ok and w * bits in (8, 16, 32, 64, 128):  # one whole access (3-bit codes: no 12-bit loads)
                return w
            w //= 2
        return 1

    def vectorize_shared(self, op: O.LoadShared | O.StoreShared) -> O.Op:
        """Shared buffers are 16-byte aligned, dense, row-major and packed (sub-byte elements share bytes): a run
        of whole bytes is aligned when its offsets are -- and, in a stage view, when the view's size is a multiple
        of it; a swizzle's chunk (``2**base`` bytes) bounds the access."""
        tile = op.result if isinstance(op, O.LoadShared) else op.value
        buf = op.src if isinstance(op, O.LoadShared) else op.dst
        t, s = tile.type, buf.type
        bits = t.dtype.bits  # type: ignore[union-attr]
        if is_bool(t.dtype) or bits > 32:  # type: ignore[union-attr]
            return op
        w = self._run_width(_layout(tile), bits, t.shape)  # type: ignore[union-attr]
        sw = swizzle_of(s)  # type: ignore[arg-type]
        while w > 1 and sw is not None and w * bits > 8 << sw.base:
            w //= 2
        row = 1
        strides = []
        for n in reversed(s.shape):  # type: ignore[union-attr]
            strides.append(row)
            row *= n
        strides.reverse()
        view = id(buf) in self.stage_views
        while w > 1 and w * bits >= 8:
            ok = self.div(op.offsets[-1]) % w == 0 and all(st % w == 0 for st in strides[:-1])
            ok = ok and (not view or row % w == 0) and w * bits in (8, 16, 32, 64, 128)
            if ok:
                return op.replace(vec=w)
            w //= 2
        return op


def run(prog: Program, opts: Options) -> Program:
    from lowbit.transforms import _fuse_dequant  # noqa: PLC0415

    prog = _fuse_dequant.run(prog, opts.codebook)  # the dequantisation rule first: it needs the chain as the program wrote it
    return _Select(prog, opts).run(prog)

