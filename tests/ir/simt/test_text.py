"""SIMT text form: exact round trips, every op class printable and parseable, errors with line numbers."""

from __future__ import annotations

import pytest

from lowbit.errors import IRError
from lowbit.ir.simt import I32, PTR_GLOBAL, Builder, parse_kernel, print_kernel
from lowbit.ir.simt import ops as O
from lowbit.ir.simt.control import For, If
from tests.codegen.simt_kernels import CASES

# every op class at least once (test_every_op_class_is_covered holds this to the op list)
KITCHEN_SINK = """\
kernel @sink(%x: ptr.global[f32], %w: ptr.global[uint4], %n: i32, %big: i64, %s: f32) threads 96 {
  shared @buf size 512 align 16
  shared @dyn dynamic align 128
  %tid: i32 = sreg tid.x
  %lane: i32 = sreg laneid
  %i: i32 = mulhi.u %tid, -7:i32
  %j: i32 = smax %i, %n
  %k: i32 = popc %j
  %ok: pred = icmp ule %k, %n
  %px: ptr.global = gep f32 %x, %big
  %a: f32 = load %px align 4 mask %ok else nan:f32
  %b: f32 = fma %a, %s, -inf:f32
  %c: f32 = exp2.approx %b
  %d: f32 = select %ok, %c, 6.103515625e-05:f32
  %e: pred = fcmp uno %d, %a
  %h: f16 = fptrunc %d
  %hb: bf16 = fptrunc %a
  %q: i64 = fptosi.sat %d
  %v: f16x2 = pack %h, 0.5:f16
  %v1: f16 = extract %v, 1
  %vi: i32 = bitcast %v
  %pk: f16x2 = cvt_pack.f16x2.rn %a, %b
  %e8: i16 = cvt_pack.e4m3x2.rn %a, %b
  %un: f16x2 = cvt_unpack.e4m3x2.f16x2 %e8
  %l3: i32 = lop3 %vi, %tid, 0xF0F0F0F0:i32, 0x96
  %pm: i32 = prmt %l3, %vi, 0x5410:i32
  %sh: ptr.shared = shared_addr @buf
  %sp: ptr.shared = gep i32x4 %sh, %lane
  store %sp, %pm align 4 mask %e
  %old: i32 = atomic_add %sp, 1:i32
  %oa: i32 = atomic_and %px, -16:i32
  %pa: i64 = ptrtoint %px
  %oo: i64 = atomic_or %sp, %big
  cp_async.ca.8 %sp, %px
  cp_async.cg.16 %sp, %px src_size 0:i32
  %pol: i64 = createpolicy.evict_first
  %hl: f32 = load.evict_first %px align 4 mask %ok else 0.0:f32 policy %pol prefetch 128
  %hv: i32x4 = load.no_allocate %px align 16
  cp_async.cg.16 %sp, %px src_size 16:i32 policy %pol prefetch 256
  cp_async.cg.16 %sp, %px ignore_src %e
  cp_async.ca.8 %sp, %px ignore_src %ok policy %pol
  %ad: f32 = atom.add.f32 %px, %hl
  %a2: i32 = atom.add.f16x2 %px, %vi
  %mx: i32 = atom.max.s32 %px, %tid
  %cs: i32 = atom.cas.b32 %px, %tid, %mx
  cp_async_commit
  cp_async_wait 1
  barrier
  trap_if %e, 1000
  %bf: f32 = shfl.idx %a, 0:i32, 31:i32, -1:i32
  %bal: i32 = vote.ballot %ok, -1:i32
  %all: pred = vote.all %e, %bal
  %r0: i32, %r1: i32, %r2: i32, %r3: i32 = call @llvm.nvvm.ldmatrix.sync.aligned.m8n8.x4.b16(%sh)
  %sum: f32, %cnt: i64 = for %it: i64 = 0:i64 to %big step 2:i64 iter(%acc: f32 = 0.0:f32, %m: i64 = %big) {
    %acc2: f32 = fadd %acc, %bf
    %m2: i64 = add %m, %it
    %inner: f32 = if %all {
      %neg: f32 = fneg %acc2
      yield %neg
    } else {
      yield %acc2
    }
    yield %inner, %m2
  }
  if %ok {
    %dyn.p: ptr.shared = shared_addr @dyn
    store %dyn.p, %sum align 4
  }
}
"""


@pytest.mark.parametrize("text", [KITCHEN_SINK] + [c.text for c in CASES], ids=["sink"] + [c.name for c in CASES])
def test_print_parse_round_trip(text: str) -> None:
    k = parse_kernel(text)
    printed = print_kernel(k)
    assert print_kernel(parse_kernel(printed)) == printed
    if text is KITCHEN_SINK:  # hex constants print in decimal
        return
    # the hand-written texts are already canonical apart from comments
    assert printed == "\n".join(line for line in text.splitlines() if not line.startswith("//")) + "\n"


def _walk(ops):
    for op in ops:
        yield op
        if isinstance(op, (For, If)):
            for _, body, _ in op.regions:
                yield from _walk(body)


def test_a_dynamic_buffer_keeps_its_launch_size() -> None:
    text = "kernel @k() threads 32 {\n  shared @smem dynamic size 98304 align 128\n}\n"
    k = parse_kernel(text)
    assert k.dynamic_shared is not None and k.dynamic_shared.size == 98304 and print_kernel(k) == text


def test_every_op_class_is_covered() -> None:
    classes = {c for c in vars(O).values() if isinstance(c, type) and issubclass(c, O.Op) and c is not O.Op}
    classes |= {For, If}
    seen = {type(op) for op in _walk(parse_kernel(KITCHEN_SINK).body)}
    assert classes - seen == set()


def test_constants_are_canonical() -> None:
    k = parse_kernel(KITCHEN_SINK)
    text = print_kernel(k)
    assert "-252645136:i32" in text  # 0xF0F0F0F0 is stored signed
    assert "0x96" in text and "21520:i32" in text and "nan:f32" in text and "6.103515625e-05:f32" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("%a: i32 = add %n, 1.5:f32", r"line 3: simt binary: operands: i32 and f32 differ"),
        ("%a: f32 = add %n, %n", r"simt binary: result: f32 and i32 differ"),
        ("%a: i32 = fadd %n, %n", r"fadd needs float operands"),
        ("%a: i32 = add %zz, %n", r"line 3: register %zz is not defined"),
        ("%a: i64 = trunc %n", r"trunc cannot convert i32 to i64"),
        ("%a: i32 = lop3 %n, %n, %n, 256", r"lut must be an int in 0\.\.255"),
        ("%a: f32 = load %x align 3", r"align must be a power of two"),
        ("%p: ptr.global = gep pred %x, %n", r"element type must be a non-predicate"),
        ("cp_async.cg.8 %x, %x", r"dst must be a shared pointer"),
        ("%s: ptr.shared = shared_addr @b\n  %q: pred = icmp eq %n, 0:i32\n  cp_async.cg.16 %s, %x src_size 16:i32 "
         "ignore_src %q", r"line 5: .*ignore_src and src_size exclude each other"),
        ("%s: ptr.shared = shared_addr @b\n  cp_async.cg.16 %s, %x ignore_src %n", r"ignore_src must be a predicate"),
        ("%a: i32 = frobnicate %n", r"unknown SIMT op 'frobnicate'"),
        ("%a: i32 = add %n, 4294967296:i32", r"4294967296 does not fit in i32"),
        ("%a: f16 = fptrunc 0.1:f16", r"0\.1 is not exactly representable as f16"),
        ("%a: i32 = add %n %n", r"simt parse error at line 3"),
        ("%n: i32 = add %n, %n", r"register %n is defined twice"),
    ],
)
def test_op_errors_name_the_op_and_line(body: str, message: str) -> None:
    text = f"kernel @k(%x: ptr.global[f32], %n: i32) threads 32 {{\n  %t: i32 = sreg tid.x\n  {body}\n}}\n"
    with pytest.raises(IRError, match=message):
        parse_kernel(text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "%r: i32 = for %i: i32 = 0:i32 to %n step 1:i32 iter(%a: i32 = 0:i32) {\n    %b: i32 = add %a, %i\n"
            "    yield %b\n  }\n  %c: i32 = add %b, %r",
            r"verifier: `%c: i32 = add %b, %r`: operand %b is not defined before this point",
        ),
        ("%s: ptr.shared = shared_addr @nope", r"verifier: `%s: ptr.shared = shared_addr @nope`: no shared buffer @nope"),
        (
            "%r: i32 = if %p {\n    yield %n\n  }",
            r"simt if: 1 results need 1 yields on each side \(then 1, else 0\)",
        ),
        (
            "%r: i32 = for %i: i32 = 0:i32 to %n step 0:i32 iter(%a: i32 = 0:i32) {\n    yield %a\n  }",
            r"step must be positive",
        ),
    ],
)
def test_verifier_and_region_errors(body: str, message: str) -> None:
    text = (
        "kernel @k(%x: ptr.global[f32], %n: i32) threads 32 {\n  %p: pred = icmp eq %n, 0:i32\n"
        f"  {body}\n}}\n"
    )
    with pytest.raises(IRError, match=message):
        parse_kernel(text)


def test_kernel_level_errors() -> None:
    with pytest.raises(IRError, match="threads per block must be 1..1024"):
        parse_kernel("kernel @k() threads 2048 {\n}\n")
    with pytest.raises(IRError, match="declared twice"):
        parse_kernel("kernel @k() threads 32 {\n  shared @a size 4 align 4\n  shared @a size 4 align 4\n}\n")
    with pytest.raises(IRError, match="exceeds 49152 B"):
        parse_kernel("kernel @k() threads 32 {\n  shared @a size 49153 align 4\n}\n")
    with pytest.raises(IRError, match="unknown format name 'i33'"):
        parse_kernel("kernel @k(%x: ptr.global[i33]) threads 32 {\n}\n")


def test_builder_makes_unique_names_and_verified_kernels() -> None:
    b = Builder("tri", threads=32)
    out, n = b.param("out", PTR_GLOBAL, elem="int32"), b.param("n", I32)
    tid = b.sreg("tid.x")
    with b.for_(b.i32(0), tid, b.i32(1), inits=[b.i32(0)]) as loop:
        loop.yield_(b.binary("add", loop.carried[0], loop.iv, hint="acc"))
    ok = b.cmp("slt", tid, n)
    with b.if_(ok) as br:
        br.yield_(loop.results[0])
        b.else_(br)
        br.yield_(b.i32(-1))
    b.store(b.gep(out, tid, I32), br.results[0], 4)
    k = b.finish()
    text = print_kernel(k)
    assert print_kernel(parse_kernel(text)) == text
    assert "%acc: i32 = add %carry, %i" in text and "%sel: i32 = if %p {" in text
