from lowbit.codegen.ptxas import parse_report

REPORT = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'matmul' for 'sm_80'
ptxas info    : Function properties for matmul
    16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 16384 bytes smem, 400 bytes cmem[0], 8 bytes cmem[2]
ptxas info    : Compiling entry function 'tiny' for 'sm_80'
ptxas info    : Function properties for tiny
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 6 registers, 360 bytes cmem[0]
"""


def test_parse_report_two_kernels() -> None:
    res = parse_report(REPORT)
    assert set(res) == {"matmul", "tiny"}
    m = res["matmul"]
    assert (m.registers, m.barriers, m.shared_bytes) == (128, 1, 16384)
    assert (m.stack_frame, m.spill_stores, m.spill_loads, m.spills) == (16, 8, 12, 20)
    assert m.cmem == ((0, 400), (2, 8))
    t = res["tiny"]
    assert (t.registers, t.barriers, t.shared_bytes, t.spills) == (6, 0, 0, 0)
    assert "128 registers" in str(m)
