"""OUT/vivado/build.tcl (deploy/vivado.py, templates/vivado/build.tcl.j2) without
Vivado: tclint, and a run in tkinter.Tcl() against the recording Vivado stub
(tests/vivado_stub.py) in a temporary OUT/ tree."""

from __future__ import annotations

import re
import subprocess
import sys
import tkinter
from pathlib import Path

import pytest

from build_flows.config import BOARDS
from build_flows.deploy.boards import DEPLOY_BOARDS, deploy_board
from build_flows.deploy.vivado import DEPLOY_NAME, render_vivado_tcl, write_vivado_dir
from build_flows.templating import render
from vivado_stub import VivadoStub, parse_size, verilog_ports

REPO = Path(__file__).resolve().parent.parent
LINT_DIR = REPO / ".venv" / "lint"  # tclint, installed apart from the project's packages
BOARD_NAMES = sorted(DEPLOY_BOARDS)
CLOCKS = {"pynq-z1": 100.0, "pynq-z2": 100.0, "ultra96-v2": 142.857, "zcu104": 187.5, "kv260": 250.0}
RTL_FILES = {  # OUT/rtl/filelist.f: a package, SystemVerilog and Verilog, the stitched top last
    "swg_pkg.sv": "package swg_pkg;\nendpackage\n",
    "mvtu.sv": "module mvtu (input logic clk);\nendmodule\n",
    "DWC_MVAU_1.v": "module DWC_MVAU_1 (input wire ap_clk);\nendmodule\n",
    "sdbnn_top.sv": "module sdbnn_top (input logic clk, input logic rst);\nendmodule\n",
}
MEM_FILES = ("MVAU_0_weights.mem", "MVAU_0_thresholds.mem", "memblock_0.dat")


def make_out(tmp_path: Path, board: str, clock_mhz: float | None = None) -> Path:
    """OUT/ as the build leaves it before Vivado: rtl/ (filelist.f, sources, memory
    files) and vivado/ (the deploy top, the DMA boundary modules, filelist.f, build.tcl)."""
    b = deploy_board(board)
    out = tmp_path / "OUT"
    rtl, viv = out / "rtl", out / "vivado"
    rtl.mkdir(parents=True)
    viv.mkdir()
    for name, text in RTL_FILES.items():
        (rtl / name).write_text(text)
    (rtl / "filelist.f").write_text("".join(f"{n}\n" for n in RTL_FILES))
    for name in MEM_FILES:
        (rtl / name).write_text("00\nff\n")
    (viv / "sdbnn_deploy_top.v").write_text(render(
        "rtl/deploy_top.v.j2", top="sdbnn_deploy_top", inner="sdbnn_top", bus_bits=b.bus_bits,
        in_width=24, in_slot_bytes=4, in_words=64, in_bus_words=64 * 4 * 8 // b.bus_bits,
        out_width=4, out_slot_bytes=1, out_words=1, out_bus_words=1, frames_per_packet=8))
    for name in ("dma_to_stream.sv", "stream_to_dma.sv"):
        (viv / name).write_text(f"module {name[:-3]} (input logic clk);\nendmodule\n")
    (viv / "filelist.f").write_text("dma_to_stream.sv\nstream_to_dma.sv\nsdbnn_deploy_top.v\n")
    write_vivado_dir(viv, board, CLOCKS[board] if clock_mhz is None else clock_mhz, b.bus_bits)
    return out


def run_stub(out: Path, **stub_options) -> VivadoStub:
    stub = VivadoStub(**stub_options)
    stub.source(out / "vivado" / "build.tcl")
    assert stub.unknown == [], f"commands the stub does not know: {stub.unknown}"
    return stub


def dict_of(stub, command, obj) -> dict:
    """Every -dict of `command` (set_property) on `obj`, merged in call order."""
    out = {}
    for args in stub.calls_of(command):
        if args[0] == "-dict" and stub.split(args[2]) == [obj]:
            items = stub.split(args[1])
            out.update(zip(items[::2], items[1::2]))
    return out


# -- tclint -------------------------------------------------------------------------------------

@pytest.mark.parametrize("board", BOARD_NAMES)
def test_tclint_clean(tmp_path, board):
    if not (LINT_DIR / "tclint").is_dir():
        pytest.skip(f"tclint is not installed in {LINT_DIR} (pip install --target {LINT_DIR} tclint)")
    b = deploy_board(board)
    script = tmp_path / "build.tcl"
    script.write_text(render_vivado_tcl(board, clock_mhz=CLOCKS[board], bus_bits=b.bus_bits))
    proc = subprocess.run([sys.executable, "-m", "tclint", str(script)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(LINT_DIR), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the full script against the stub ----------------------------------------------------------

@pytest.mark.parametrize("board", BOARD_NAMES)
def test_build_tcl_under_stub(tmp_path, board):
    b = deploy_board(board)
    out = make_out(tmp_path, board)
    stub = run_stub(out)
    viv, rtl = out / "vivado", out / "rtl"

    # the project: part, board part, in OUT/vivado/project
    assert stub.project["part"] == b.part == BOARDS[board].part
    assert stub.project["props"]["board_part"] == b.board_part
    assert stub.project["dir"] == viv / "project"

    # every file given to add_files / read_* exists; the sources are all of them, once each
    added = stub.file_args()
    assert added and all(p.is_file() for p in added), [p for p in added if not p.is_file()]
    expected = {rtl / n for n in (*RTL_FILES, *MEM_FILES)} | {
        viv / n for n in ("dma_to_stream.sv", "stream_to_dma.sv", "sdbnn_deploy_top.v")}
    assert expected <= set(added)
    names = [p.name for p in added]
    assert len(names) == len(set(names)), names
    for p in added:
        ftype = stub.files[str(p)]["props"]["file_type"]
        want = {".sv": "SystemVerilog", ".v": "Verilog", ".mem": "Memory File", ".dat": "Memory File"}[p.suffix]
        assert ftype == want, (p, ftype)

    # the PS: board preset, PL clock 0 at clock_mhz, HP0 and GP0 on at bus_bits
    ps = stub.cell_of_ip(b.ps_ip)
    assert ps.automated and ps.name == b.ps_cell
    assert float(ps.config[b.pl_clk_param]) == CLOCKS[board]
    assert float(dict_of(stub, "set_property", ps.path)[f"CONFIG.{b.pl_clk_param}"]) == CLOCKS[board]
    assert int(ps.config[b.hp_width_param]) == b.bus_bits
    assert b.hp_port in ps.intf_pins() and b.gp_port in ps.intf_pins()

    # the DMA: simple mode, widths = bus_bits = the deploy top's stream widths
    dma = stub.cell_of_ip("axi_dma")
    assert dma.name == "axi_dma_0"
    cfg = dma.config
    assert cfg["c_include_sg"] == "0" and cfg["c_sg_length_width"] == "26"
    ports = verilog_ports((viv / "sdbnn_deploy_top.v").read_text())
    assert ports["s_axis_tdata"] == ("input", b.bus_bits) and ports["m_axis_tdata"] == ("output", b.bus_bits)
    assert ports["m_axis_tlast"] == ("output", 1)
    for key in ("c_m_axis_mm2s_tdata_width", "c_s_axis_s2mm_tdata_width",
                "c_m_axi_mm2s_data_width", "c_m_axi_s2mm_data_width"):
        assert int(cfg[key]) == b.bus_bits == ports["s_axis_tdata"][1] == ports["m_axis_tdata"][1], key

    # the accelerator is the deploy top, between the DMA's streams; S2MM gets TLAST from m_axis
    accel = stub.cell_of_ip("module")
    assert accel.module == "sdbnn_deploy_top" and Path(accel.hdl_file) == viv / "sdbnn_deploy_top.v"
    assert stub.intf_peer("/axi_dma_0/M_AXIS_MM2S") == f"/{accel.name}/s_axis"
    assert stub.intf_peer("/axi_dma_0/S_AXIS_S2MM") == f"/{accel.name}/m_axis"
    m_axis = stub.intf_pin(f"/{accel.name}/m_axis")
    assert {"TDATA", "TVALID", "TREADY", "TLAST", "TKEEP"} <= m_axis.signals and m_axis.width == b.bus_bits

    # clocks and resets: all from PL clock 0 and the reset block
    clk_net = stub.net_of(f"/{ps.name}/{b.pl_clk_pin}")
    assert {f"/{accel.name}/ap_clk", "/axi_dma_0/s_axi_lite_aclk", "/axi_dma_0/m_axi_mm2s_aclk",
            "/axi_dma_0/m_axi_s2mm_aclk", f"/{ps.name}/{b.gp_clk_pin}", f"/{ps.name}/{b.hp_clk_pin}"} <= clk_net
    rst = stub.cell_of_ip("proc_sys_reset")
    assert f"/{rst.name}/slowest_sync_clk" in clk_net
    assert f"/{rst.name}/ext_reset_in" in stub.net_of(f"/{ps.name}/{b.pl_reset_pin}")
    assert {f"/{accel.name}/ap_rst_n", "/axi_dma_0/axi_resetn"} <= stub.net_of(f"/{rst.name}/peripheral_aresetn")
    hz = stub.tcl.eval(f"get_property CONFIG.FREQ_HZ [get_bd_pins {ps.name}/{b.pl_clk_pin}]")
    assert accel.pin_props == {"ap_clk": hz, "s_axis": hz, "m_axis": hz}

    # the address map: DMA registers at periph_base (64K), DDR from 0 for both masters, no overlaps
    ps_data = f"/{ps.name}/Data"
    assert stub.assigned[(ps_data, "/axi_dma_0/S_AXI_LITE/Reg")] == (b.periph_base, 64 * 1024)
    ddr = f"/{ps.name}/{b.ddr_segment}"
    for space in ("/axi_dma_0/Data_MM2S", "/axi_dma_0/Data_S2MM"):
        assert stub.assigned[(space, ddr)] == (0, parse_size(b.ddr_range))
    spaces = {sp for sp, _ in stub.assigned}
    assert spaces == {ps_data, "/axi_dma_0/Data_MM2S", "/axi_dma_0/Data_S2MM"}
    for space in spaces:
        ranges = sorted(v for (sp, _), v in stub.assigned.items() if sp == space)
        for (o1, r1), (o2, _) in zip(ranges, ranges[1:]):
            assert o1 + r1 <= o2, (space, ranges)
    assert stub.bd["validated"] and stub.fileset_props["sources_1"]["top"] == f"{stub.bd['name']}_wrapper"

    # runs, reports, and the overlay copied under one base name
    assert [a[0] for a in stub.calls_of("launch_runs")] == ["synth_1", "impl_1"]
    impl = stub.calls_of("launch_runs")[1]
    assert impl[impl.index("-to_step") + 1] == "write_bitstream"
    assert [a[0] for a in stub.calls_of("wait_on_run")] == ["synth_1", "impl_1"]
    assert (viv / "timing.rpt").is_file() and (viv / "utilization.rpt").is_file()
    bit, hwh = out / "deploy" / f"{DEPLOY_NAME}.bit", out / "deploy" / f"{DEPLOY_NAME}.hwh"
    assert bit.read_bytes() == next((viv / "project").rglob("*_wrapper.bit")).read_bytes()
    assert hwh.read_text() == next((viv / "project").rglob(f"hw_handoff/{stub.bd['name']}.hwh")).read_text()
    assert stub.messages[-1] == f"INFO: [sdbnn] bitfile {bit} hwh {hwh}"


def test_deploy_name_is_the_package_one():
    from build_flows.deploy.package import BITFILE, DEPLOY_TOP, HWH
    assert (f"{DEPLOY_NAME}.bit", f"{DEPLOY_NAME}.hwh") == (BITFILE, HWH)
    assert "set top {%s}" % DEPLOY_TOP in render_vivado_tcl("pynq-z2", clock_mhz=100, bus_bits=64)


# -- failures the script reports -----------------------------------------------------------------

@pytest.mark.parametrize("board", ["pynq-z2", "ultra96-v2"])
def test_missing_board_file(tmp_path, board):
    b = deploy_board(board)
    out = make_out(tmp_path, board)
    stub = VivadoStub(board_parts=[])
    with pytest.raises(tkinter.TclError) as e:
        stub.source(out / "vivado" / "build.tcl")
    msg = str(e.value)
    assert b.board_part in msg and "board.repoPaths" in msg and b.board_files in msg
    assert "\n" not in msg and "  " not in msg
    assert not stub.calls_of("create_project") and stub.unknown == []


def test_other_board_version_is_used(tmp_path):
    out = make_out(tmp_path, "kv260")
    stub = run_stub(out, board_parts=["xilinx.com:kv260_som:part0:1.2", "xilinx.com:kv260_som:part0:1.4"])
    assert stub.project["props"]["board_part"] == "xilinx.com:kv260_som:part0:1.4"
    assert any("not installed; using xilinx.com:kv260_som:part0:1.4" in m for m in stub.messages)


def test_board_repo_from_environment(tmp_path, monkeypatch):
    repo = tmp_path / "boards"
    repo.mkdir()
    monkeypatch.setenv("SDBNN_BOARD_REPO", str(repo))
    out = make_out(tmp_path, "ultra96-v2")
    stub = run_stub(out)
    assert stub.calls_of("set_param") == [["board.repoPaths", str(repo)]]
    assert stub.calls.index(("set_param", ["board.repoPaths", str(repo)])) < \
        next(i for i, (n, _) in enumerate(stub.calls) if n == "get_board_parts")


@pytest.mark.parametrize("board", ["pynq-z2", "ultra96-v2"])
def test_negative_slack_fails(tmp_path, board):
    out = make_out(tmp_path, board)
    stub = VivadoStub(wns=-0.412)
    with pytest.raises(tkinter.TclError) as e:
        stub.source(out / "vivado" / "build.tcl")
    msg = str(e.value)
    clock = "clk_fpga_0" if deploy_board(board).family == "zynq" else "clk_pl_0"
    assert "WNS -0.412" in msg and clock in msg and "--clock-mhz" in msg
    lower = int(re.search(r"--clock-mhz \(e\.g\. (\d+)\)", msg).group(1))
    assert lower < CLOCKS[board]
    assert (out / "vivado" / "timing.rpt").is_file() and not (out / "deploy").exists()
    assert stub.unknown == []


def test_negative_hold_slack_fails(tmp_path):
    out = make_out(tmp_path, "pynq-z2")
    with pytest.raises(tkinter.TclError, match="WHS.*-0.020"):
        VivadoStub(whs=-0.02).source(out / "vivado" / "build.tcl")


@pytest.mark.parametrize("run", ["synth_1", "impl_1"])
def test_failed_run_fails(tmp_path, run):
    out = make_out(tmp_path, "pynq-z2")
    stub = VivadoStub(failing_run=run)
    with pytest.raises(tkinter.TclError, match=f"run {run} did not complete.*ERROR"):
        stub.source(out / "vivado" / "build.tcl")
    assert not stub.calls_of("open_run")


def test_missing_source_is_named(tmp_path):
    out = make_out(tmp_path, "pynq-z2")
    (out / "rtl" / "mvtu.sv").unlink()
    with pytest.raises(tkinter.TclError, match=r"filelist\.f names mvtu\.sv, but there is no .*mvtu\.sv"):
        VivadoStub().source(out / "vivado" / "build.tcl")


def test_script_runs_from_anywhere(tmp_path, monkeypatch):
    """Paths come from the script's folder, not the working directory."""
    out = make_out(tmp_path, "pynq-z2")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run_stub(out)
    assert (out / "deploy" / "sdbnn.bit").is_file() and list(elsewhere.iterdir()) == []


# -- the stub is honest --------------------------------------------------------------------------

def test_stub_rejects_what_vivado_would_not_run(tmp_path):
    stub = VivadoStub()
    with pytest.raises(tkinter.TclError, match="unknown command 'launch_everything'"):
        stub.tcl.eval("launch_everything -now")
    assert stub.unknown == ["launch_everything"]
    with pytest.raises(tkinter.TclError, match="unknown command 'lmap'"):
        stub.tcl.eval("lmap x {1 2} {set x}")  # Tcl 8.6: not in Vivado's Tcl
    stub.tcl.eval(f"create_project p {{{tmp_path / 'p'}}} -part xc7z020clg400-1; create_bd_design d")
    stub.tcl.eval("create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma axi_dma_0")
    with pytest.raises(tkinter.TclError, match="has no parameter c_include_sgg"):
        stub.tcl.eval("set_property -dict [list CONFIG.c_include_sgg {0}] [get_bd_cells axi_dma_0]")
    with pytest.raises(tkinter.TclError, match="unknown option -bogus"):
        stub.tcl.eval("get_bd_cells -bogus axi_dma_0")
    with pytest.raises(tkinter.TclError, match="has no pin m_axi_sg_clk"):
        stub.tcl.eval("get_bd_pins axi_dma_0/m_axi_sg_clk")
    with pytest.raises(tkinter.TclError, match="m_axi_sg_aclk is not connected"):
        stub.tcl.eval("validate_bd_design")  # scatter-gather on (the default): its clock is open
    with pytest.raises(tkinter.TclError, match="does not exist"):
        stub.tcl.eval(f"add_files {{{tmp_path / 'nothing.v'}}}")


# -- the Python side -----------------------------------------------------------------------------

def test_unknown_board():
    with pytest.raises(ValueError, match="unknown deploy board 'zedboard'; known boards: kv260, pynq-z1"):
        render_vivado_tcl("zedboard", clock_mhz=100, bus_bits=64)
    with pytest.raises(ValueError, match="known boards: .*ultra96-v2"):
        deploy_board("zedboard")


@pytest.mark.parametrize("board, bus_bits", [("pynq-z2", 128), ("ultra96-v2", 64), ("kv260", 32)])
def test_bus_bits_must_match_the_board(board, bus_bits):
    with pytest.raises(ValueError, match=f"bus_bits {bus_bits} does not match {board}"):
        render_vivado_tcl(board, clock_mhz=100, bus_bits=bus_bits)


@pytest.mark.parametrize("kwargs, match", [
    ({"clock_mhz": 0}, "clock_mhz"), ({"clock_mhz": float("nan")}, "clock_mhz"),
    ({"clock_mhz": "100"}, "clock_mhz"), ({"dma_buffer_bits": 27}, "dma_buffer_bits"),
    ({"dma_buffer_bits": 7}, "dma_buffer_bits"), ({"top": "my top"}, "top"),
    ({"project": "a{b}"}, "project"),
])
def test_bad_options(kwargs, match):
    args = {"clock_mhz": 100, **kwargs}
    with pytest.raises(ValueError, match=match):
        render_vivado_tcl("pynq-z2", bus_bits=64, **args)


def test_dma_buffer_bits_and_names_reach_the_design(tmp_path):
    b = deploy_board("pynq-z2")
    out = make_out(tmp_path, "pynq-z2")
    (out / "vivado" / "build.tcl").write_text(render_vivado_tcl(
        "pynq-z2", clock_mhz=125, bus_bits=64, project="overlay", dma_buffer_bits=23))
    stub = run_stub(out)
    assert stub.cell_of_ip("axi_dma").config["c_sg_length_width"] == "23"
    assert stub.project["name"] == stub.bd["name"] == "overlay"
    assert float(stub.cell_of_ip(b.ps_ip).config[b.pl_clk_param]) == 125
    assert (out / "deploy" / "sdbnn.bit").is_file() and (out / "deploy" / "sdbnn.hwh").is_file()


def test_boards_table():
    assert set(DEPLOY_BOARDS) == set(BOARDS)
    for name, b in DEPLOY_BOARDS.items():
        assert b.name == name and b.part == BOARDS[name].part
        assert (b.family, b.bus_bits, b.ps_ip, b.periph_base) in {
            ("zynq", 64, "processing_system7", 0x4000_0000), ("zynqmp", 128, "zynq_ultra_ps_e", 0xA000_0000)}
        assert b.board_part.count(":") == 3 and b.board_part_any_version.endswith(":part0:*")
    with pytest.raises(AttributeError):
        DEPLOY_BOARDS["pynq-z2"].part = "x"


def test_write_vivado_dir(tmp_path):
    path = write_vivado_dir(tmp_path / "v", "zcu104", 200, 128)
    assert path == tmp_path / "v" / "build.tcl"
    assert path.read_text() == render_vivado_tcl("zcu104", clock_mhz=200, bus_bits=128)
