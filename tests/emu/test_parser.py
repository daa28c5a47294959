"""Tests of the PTX parser (lowbit.emu.parser) on hand-written snippets and the fixture corpus."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowbit.emu import ptx_ast as A
from lowbit.emu.parser import PTXSyntaxError, parse, parse_int, strip_debug
from lowbit.errors import EmulatorError, UnsupportedPTXError

HEADER = ".version 8.0\n.target sm_80\n.address_size 64\n"


def kernel(body: str, params: str = ".param .u64 k_param_0", decls: str = "", name: str = "k") -> str:
    return HEADER + decls + f".visible .entry {name}({params})\n{{\n{body}\n}}\n"


def only_entry(text: str) -> A.Function:
    m = parse(text)
    (e,) = m.entries
    return e


# ----------------------------------------------------------------------------- module structure


def test_module_header_params_and_directives():
    text = HEADER + """
.visible .entry add(
    .param .u64 .ptr .global .align 16 add_param_0,
    .param .u32 add_param_1,
    .param .align 8 .b8 add_param_2[16]
)
.reqntid 128
.maxnreg 64
{
    .reg .b32 %r<3>;
    .reg .pred %p1, %p2;
    ret;
}
"""
    m = parse(text)
    assert m.version == (8, 0) and m.target == "sm_80" and m.address_size == 64 and m.sm == 80
    e = m.entry("add")
    assert e.is_entry and e.linkage == "visible"
    p0, p1, p2 = e.params
    assert (p0.name, p0.type, p0.ptr_space, p0.ptr_align, p0.align, p0.size) == ("add_param_0", "u64", "global", 16, None, 8)
    assert (p1.type, p1.ptr_space, p1.size) == ("u32", None, 4)
    assert (p2.type, p2.align, p2.dims, p2.size) == ("b8", 8, (16,), 16)
    assert e.reqntid == (128, 1, 1) and e.maxntid is None and e.directives["maxnreg"] == (64,)
    assert sorted(e.registers) == ["%p1", "%p2", "%r0", "%r1", "%r2"]
    assert e.registers["%r2"].type == "b32" and e.registers["%p1"].type == "pred"
    assert [i.opcode for i in e.body] == ["ret"]
    with pytest.raises(KeyError, match="add"):
        m.entry("nope")


def test_target_options_and_version_minor():
    m = parse(".version 7.10\n.target sm_90a, debug\n.address_size 64\n")
    assert m.version == (7, 10) and m.target == "sm_90a" and m.target_options == ("debug",) and m.sm == 90


def test_module_variables_and_initializers():
    decls = """
.extern .shared .align 16 .b8 global_smem[];
.global .align 4 .u32 tbl[4] = {1, 2, 0x10, -1};
.const .align 4 .f32 one = 0f3F800000;
.const .f64 half = 0.5;
.global .align 1 .b8 $str[4] = {72, 105, 0};
.visible .global .align 8 .u64 counter;
"""
    m = parse(kernel("ret;", decls=decls))
    smem = m.variable("global_smem")
    assert (smem.space, smem.extern, smem.dims, smem.align, smem.size) == ("shared", True, (None,), 16, None)
    tbl = m.variable("tbl")
    assert tbl.init == struct.pack("<4I", 1, 2, 16, 0xFFFFFFFF) and tbl.size == 16
    assert m.variable("one").init == struct.pack("<f", 1.0)
    assert m.variable("half").init == struct.pack("<d", 0.5)
    assert m.variable("$str").init == b"Hi\0\0"  # zero-padded to the declared size
    counter = m.variable("counter")
    assert (counter.linkage, counter.extern, counter.init, counter.size) == ("visible", False, None, 8)


def test_function_scope_shared_and_local():
    e = only_entry(kernel("""
    .local .align 4 .b8 __local_depot0[8];
    .shared .align 4 .b8 smem[4096];
    .reg .b64 %rd<2>;
    mov.u64 %rd1, smem;
    ret;"""))
    (sh,) = e.shared
    (lo,) = e.local
    assert (sh.name, sh.size, sh.space) == ("smem", 4096, "shared")
    assert (lo.name, lo.size, lo.space) == ("__local_depot0", 8, "local")
    assert e.body[0].operands[1] == A.Symbol("smem")


# ----------------------------------------------------------------------------- instructions and operands


def test_opcode_modifiers_in_source_order():
    e = only_entry(kernel("""
    .reg .b32 %r<30>;
    mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%r1, %r2, %r3, %r4}, {%r5, %r6, %r7, %r8}, {%r9, %r10}, {%r11, %r12, %r13, %r14};
    ld.global.L1::evict_last.v2.b32 {%r15, _}, [%r16+8];
    cp.async.cg.shared.global.L2::128B [%r17], [%r18], 16, %r19;
    """))
    mma, ld, cp = e.body
    assert mma.opcode == "mma"
    assert mma.modifiers == ("sync", "aligned", "m16n8k16", "row", "col", "f32", "f16", "f16", "f32")
    assert mma.full_opcode == "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"
    assert [len(o.elements) for o in mma.operands] == [4, 4, 2, 4]
    assert ld.modifiers == ("global", "L1::evict_last", "v2", "b32") and ld.has("v2", "global")
    assert ld.operands[0] == A.Vector((A.Register("%r15"), A.Sink()))
    assert ld.operands[1] == A.Address(A.Register("%r16"), 8)
    assert cp.modifiers[-1] == "L2::128B" and cp.operands[2] == A.Immediate(16)


@pytest.mark.parametrize(
    ("literal", "value"),
    [("0", 0), ("42", 42), ("-1", -1), ("0x7fffffff", 0x7FFFFFFF), ("0XFFFFFFFF", 0xFFFFFFFF),
     ("0xffU", 255), ("017", 15), ("0b1011", 11), ("-0x10", -16), ("4294967295U", 4294967295)],
)
def test_integer_literals(literal, value):
    e = only_entry(kernel(f".reg .b32 %r<2>;\nmov.b32 %r1, {literal};"))
    assert e.body[0].operands[1] == A.Immediate(value)


@pytest.mark.parametrize(
    ("literal", "bits", "width"),
    [("0f3F800000", 0x3F800000, 32), ("0F7F800000", 0x7F800000, 32), ("0fFFC00000", 0xFFC00000, 32),
     ("0d3FF0000000000000", 0x3FF0000000000000, 64),
     ("1.5", struct.unpack("<Q", struct.pack("<d", 1.5))[0], 64),
     ("-2.5e-3", struct.unpack("<Q", struct.pack("<d", -2.5e-3))[0], 64),
     ("1e10", struct.unpack("<Q", struct.pack("<d", 1e10))[0], 64)],
)
def test_float_literals(literal, bits, width):
    e = only_entry(kernel(f".reg .f32 %f<2>;\nmov.f32 %f1, {literal};"))
    assert e.body[0].operands[1] == A.FloatImmediate(bits, width)


def test_address_forms():
    e = only_entry(kernel("""
    .reg .b64 %rd<3>;
    .reg .b32 %r<3>;
    .shared .align 4 .b8 smem[64];
    ld.param.u64 %rd1, [k_param_0];
    ld.shared.b32 %r1, [smem+16];
    ld.global.b32 %r1, [%rd1+-4];
    ld.global.b32 %r1, [%rd1-8];
    ld.global.b32 %r1, [ %rd1 + 0 ];
    ld.shared.b32 %r2, [1024];
    mov.u64 %rd2, smem+32;
    """))
    addrs = [i.operands[1] for i in e.body]
    assert addrs[:6] == [
        A.Address(A.Symbol("k_param_0"), 0),
        A.Address(A.Symbol("smem"), 16),
        A.Address(A.Register("%rd1"), -4),
        A.Address(A.Register("%rd1"), -8),
        A.Address(A.Register("%rd1"), 0),
        A.Address(None, 1024),
    ]
    assert addrs[6] == A.SymbolOffset(A.Symbol("smem"), 32)


def test_special_registers_and_predicates():
    e = only_entry(kernel("""
    .reg .b32 %r<8>;
    .reg .pred %p<4>;
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.y;
    mov.u32 %r3, %laneid;
    mov.u64 %rd9, %clock64;
    setp.lt.and.s32 %p1|%p2, %r1, %r2, !%p3;
    @!%p1 bra $L_end;
    @%p2 shfl.sync.bfly.b32 %r4|%p3, %r3, 16, 31, -1;
$L_end:
    ret;
    """.replace("mov.u64 %rd9, %clock64;\n", "")))
    mov1, mov2, mov3, setp, bra, shfl, ret = e.body
    assert mov1.operands[1] == A.SpecialRegister("%tid", "x")
    assert mov2.operands[1] == A.SpecialRegister("%ctaid", "y")
    assert mov3.operands[1] == A.SpecialRegister("%laneid", None)
    assert setp.operands[0] == A.PredicatePair(A.Register("%p1"), A.Register("%p2"))
    assert setp.operands[3] == A.Negated(A.Register("%p3"))
    assert bra.guard == A.Guard("%p1", negated=True) and bra.operands == (A.LabelRef("$L_end", 6),)
    assert shfl.guard == A.Guard("%p2", negated=False) and shfl.operands[4] == A.Immediate(-1)
    assert ret.guard is None


def test_labels_forward_backward_and_at_end():
    e = only_entry(kernel("""
    .reg .pred %p<2>;
$L_top:
    @%p1 bra $L_top;
    bra.uni $L_mid;
$L_mid:
$L_mid2:
    @%p1 bra $L_end;
$L_end:
    """))
    assert e.labels == {"$L_top": 0, "$L_mid": 2, "$L_mid2": 2, "$L_end": 3}
    assert [i.operands[0] for i in e.body] == [A.LabelRef("$L_top", 0), A.LabelRef("$L_mid", 2), A.LabelRef("$L_end", 3)]
    assert len(e.body) == 3  # a label after the last instruction targets len(body)


def test_inline_asm_scopes_rename_registers_and_labels():
    e = only_entry(kernel("""
    .reg .b32 %r<4>;
    .reg .pred %p<2>;
    {
    .reg .pred p;
    .reg .b32 %r1;
    setp.ne.b32 p, %r2, 0;
    @p mov.b32 %r1, 7;
    LOOP:
    @!p bra LOOP;
    }
    {
    .reg .pred p;
    setp.eq.b32 p, %r1, 0;
    selp.b32 %r3, 1, 0, p;
    LOOP:
    @p bra LOOP;
    }
    mov.b32 %r0, %r1;
    """))
    s1, m1, b1, s2, sel, b2, mov = e.body
    p_a, p_b = s1.operands[0], s2.operands[0]
    assert isinstance(p_a, A.Register) and isinstance(p_b, A.Register) and p_a != p_b
    assert p_a.name.startswith("p@") and p_b.name.startswith("p@")
    assert m1.guard == A.Guard(p_a.name) and sel.operands[3] == p_b
    inner_r1 = m1.operands[0]
    assert inner_r1.name.startswith("%r1@")  # shadows the outer %r1 inside the scope
    assert s1.operands[1] == A.Register("%r2")  # outer register seen from inside
    assert s2.operands[1] == A.Register("%r1") and mov.operands[1] == A.Register("%r1")
    assert b1.operands[0].target == 2 and b2.operands[0].target == 5
    assert b1.operands[0].name != b2.operands[0].name
    for name in (p_a.name, p_b.name, inner_r1.name):
        assert name in e.registers


def test_call_sequence_params_are_scoped():
    text = HEADER + """
.func (.param .b32 func_retval0) twice(.param .b32 twice_param_0)
{
    .reg .b32 %r<3>;
    ld.param.b32 %r1, [twice_param_0];
    shl.b32 %r2, %r1, 1;
    st.param.b32 [func_retval0], %r2;
    ret;
}
.visible .entry k(.param .u32 k_param_0)
{
    .reg .b32 %r<4>;
    ld.param.u32 %r1, [k_param_0];
    { // callseq 0
    .param .b32 param0;
    st.param.b32 [param0], %r1;
    .param .b32 retval0;
    call.uni (retval0), twice, (param0);
    ld.param.b32 %r2, [retval0];
    }
    { // callseq 1
    .param .b32 param0;
    st.param.b32 [param0], %r2;
    .param .b32 retval0;
    call.uni (retval0), twice, (param0);
    ld.param.b32 %r3, [retval0];
    }
    ret;
}
"""
    m = parse(text)
    f = m.functions["twice"]
    assert f.kind == "func" and [p.name for p in f.returns] == ["func_retval0"] and f.params[0].type == "b32"
    k = m.entry("k")
    calls = [i for i in k.body if i.opcode == "call"]
    assert [c.modifiers for c in calls] == [("uni",), ("uni",)]
    ret0, callee, args0 = calls[0].operands
    assert isinstance(ret0, A.CallArgs) and callee == A.Symbol("twice")
    assert args0.elements[0] != calls[1].operands[2].elements[0]  # param0 of each call sequence is distinct
    assert {v.name for v in k.local} == {e.name for c in calls for e in (c.operands[0].elements[0], c.operands[2].elements[0])}
    assert all(v.space == "param" for v in k.local)


def test_instruction_line_and_text():
    text = kernel("""
    .reg .b32 %r<4>;
    .reg .pred %p<2>;
    add.s32   %r1,
              %r2, 5;   // a comment
    @%p1  mul.lo.s32 %r3, %r1, %r1;""")
    e = only_entry(text)
    add, mul = e.body
    lines = text.splitlines()
    assert "add.s32" in lines[add.line - 1] and "mul.lo.s32" in lines[mul.line - 1]
    assert add.text == "add.s32 %r1, %r2, 5;"
    assert mul.text == "@%p1 mul.lo.s32 %r3, %r1, %r1;"


def test_debug_directives_are_ignored_and_lines_kept():
    text = HEADER + """
.visible .entry k()
{
    .reg .b32 %r<2>;
    .loc 1 3 0                          // k.py:3:0
$L__func_begin0:
    .pragma "nounroll";
    /* a block
       comment */
    mov.b32 %r1, 1;
    .loc 1 4 0, function_name $L__info_string0, inlined_at 1 2 3
    ret;
$L__func_end0:
}
    .file 1 "/tmp//x.py"
    .section .debug_abbrev
    {
.b8 1                                   // Abbreviation Code
.b8 17                                  // DW_TAG_compile_unit {
    }
    .section .debug_macinfo { }
"""
    e = only_entry(text)
    mov, ret = e.body
    assert text.splitlines()[mov.line - 1].strip() == "mov.b32 %r1, 1;"
    assert text.splitlines()[ret.line - 1].strip() == "ret;"
    assert strip_debug(text).count("\n") == text.count("\n")
    assert ".loc" not in strip_debug(text) and "debug_abbrev" not in strip_debug(text)


def test_prototype_and_definition():
    text = HEADER + """
.extern .func (.param .b32 func_retval0) vprintf(.param .b64 vprintf_param_0, .param .b64 vprintf_param_1);
.visible .entry k() { ret; }
"""
    m = parse(text)
    assert m.functions["vprintf"].body is None and m.functions["vprintf"].linkage == "extern"
    assert [f.name for f in m.entries] == ["k"]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("wgmma.fence.sync.aligned;", "wgmma"),
        ("mbarrier.init.shared.b64 [%rd1], 1;", "mbarrier"),
        ("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%rd1], [%rd1, {%r1, %r1}], [%rd1];",
         "cp.async.bulk"),
        ("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%rd1], [%rd1], 16, [%rd1];", "cp.async.bulk"),
        ("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%rd1], [%rd1], 16;", "cp.reduce.async.bulk"),
        ("tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32 [%rd1], 32;", "tcgen05"),
        ("prefetch.tensormap [%rd1];", "prefetch.tensormap"),
    ],
)
def test_hopper_blackwell_families_are_rejected_by_name_and_line(line, what):
    text = kernel(".reg .b64 %rd<2>;\n.reg .b32 %r<2>;\n" + line)
    lineno = text.splitlines().index(line) + 1
    with pytest.raises(UnsupportedPTXError, match=rf"line {lineno}: {what}") as info:
        parse(text)
    assert isinstance(info.value, EmulatorError)


def test_syntax_error_names_line():
    text = kernel(".reg .b32 %r<2>;\nadd.s32 %r1, %r1 %r1;")
    with pytest.raises(PTXSyntaxError, match=r"line 7") as info:
        parse(text)
    assert "add.s32" in str(info.value)


def test_undeclared_register_is_an_error():
    with pytest.raises(PTXSyntaxError, match=r"%r9 is not declared"):
        parse(kernel(".reg .b32 %r<2>;\nmov.b32 %r1, %r9;"))


def test_special_vector_register_needs_component():
    with pytest.raises(PTXSyntaxError, match=r"%tid needs a component"):
        parse(kernel(".reg .b32 %r<2>;\nmov.u32 %r1, %tid;"))


def test_missing_version_or_target():
    with pytest.raises(PTXSyntaxError, match=r"\.version"):
        parse(".target sm_80\n")
    with pytest.raises(PTXSyntaxError, match=r"\.target"):
        parse(".version 8.0\n")


# ----------------------------------------------------------------------------- literal properties


@given(st.integers(min_value=0, max_value=2**64 - 1), st.sampled_from(["dec", "hex", "oct", "bin"]), st.booleans())
def test_parse_int_round_trips(value, base, negative):
    text = {"dec": str(value), "hex": hex(value), "oct": "0" + format(value, "o"), "bin": bin(value)}[base]
    text = ("-" + text) if negative else text
    assert parse_int(text) == (-value if negative else value)


@given(st.floats(allow_nan=False, width=32))
def test_f32_hex_literal_is_bit_exact(x):
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    e = only_entry(kernel(f".reg .f32 %f<2>;\nmov.f32 %f1, 0f{bits:08X};"))
    assert e.body[0].operands[1] == A.FloatImmediate(bits, 32)


# ----------------------------------------------------------------------------- speed


def test_triton_matmul_parses_well_under_a_second():
    from tests.emu.fixtures import recipes

    text = (recipes.HERE / "triton_matmul_fp8.ptx").read_text()
    parse(text)  # builds the cached lark parser
    best = min(_timed(parse, text) for _ in range(3))
    assert text.count("\n") > 1000
    assert best < 0.5, f"parsing {text.count(chr(10))} lines took {best:.3f}s"


def _timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


# ----------------------------------------------------------------------------- fixture corpus


def _fixture_names():
    from tests.emu.fixtures import recipes

    return recipes.names()


@pytest.mark.parametrize("name", _fixture_names())
def test_every_fixture_parses_and_matches_its_sidecar(name):
    from tests.emu.fixtures import recipes

    case = recipes.load(name)
    m = parse(case.ptx)
    e = m.entry(case.kernel)
    assert m.target == case.meta["target"]
    # the sidecar describes exactly the PTX signature, in order
    assert len(e.params) == len(case.meta["args"])
    for p, a in zip(e.params, case.meta["args"]):
        assert (p.ptr_space == "global" or p.type in ("u64", "b64")) == (a["kind"] == "array"), (p, a)
        if a["kind"] == "scalar":
            assert p.size == recipes.np.dtype(a["dtype"]).itemsize
    if e.reqntid is not None:
        assert tuple(case.block) == e.reqntid
    for ins in e.body:
        for op in ins.operands:
            if isinstance(op, A.LabelRef):
                assert 0 <= op.target <= len(e.body)
    # the references run and produce one array per declared output
    expected = case.expected()
    assert set(expected) == set(case.outputs)


def test_fixture_corpus_covers_what_issue_4_asks():
    from tests.emu.fixtures import recipes

    ops = {}
    for name in recipes.names():
        case = recipes.load(name)
        ops[name] = {i.full_opcode for i in parse(case.ptx).entry(case.kernel).body}
    f16 = ops["triton_matmul_f16"]
    assert any(o.startswith("cp.async.cg") for o in f16) and "cp.async.commit_group" in f16
    assert any(o.startswith("cp.async.wait_group") for o in f16)
    assert any(o.startswith("ldmatrix") for o in f16)
    assert "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32" in f16
    assert "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32" in ops["triton_matmul_fp8"]
    assert recipes.load("triton_matmul_fp8").meta["target"] == "sm_89"
    assert "bar.sync" in ops["llvm_shared_reduce"] and "shfl.sync.bfly.b32" in ops["triton_row_softmax"]
    assert {"lop3.b32", "prmt.b32"} <= ops["llvm_inline_asm"]


def _normalise(ptx: str) -> list[str]:
    """PTX without comments/debug directives/blank lines (Triton's .file holds absolute paths)."""
    return [ln.rstrip() for ln in strip_debug(ptx).splitlines() if ln.strip()]


def test_regenerating_fixtures_gives_identical_ptx(tmp_path):
    from tests.conftest import require_tool

    require_tool("triton")
    import json

    from tests.emu import gen_fixtures
    from tests.emu.fixtures import recipes

    for name in gen_fixtures.CASES:
        ptx, sidecar = gen_fixtures.build_case(name)
        committed = recipes.load(name)
        assert _normalise(ptx) == _normalise(committed.ptx), f"{name}: regenerated PTX differs"
        assert json.loads(json.dumps(sidecar)) == committed.meta, f"{name}: regenerated sidecar differs"


def test_func_with_register_params():
    text = HEADER + """
.func (.reg .b32 %res) inc(.reg .b32 %a)
{
    add.s32 %res, %a, 1;
    ret;
}
"""
    f = parse(text).functions["inc"]
    assert [p.name for p in f.params] == ["%a"] and [p.name for p in f.returns] == ["%res"]
    assert f.body[0].operands == (A.Register("%res"), A.Register("%a"), A.Immediate(1))
    assert f.registers["%a"].type == "b32"
