"""OUT/vivado/build.tcl: the Vivado batch script from the build's RTL to a PYNQ
overlay (templates/vivado/build.tcl.j2).

    vivado -mode batch -source OUT/vivado/build.tcl

It checks the board files, creates OUT/vivado/project/ for the board, adds
OUT/rtl/ (filelist.f, memory files), OUT/vivado/filelist.f and the deploy top,
builds the block design (PS, AXI DMA in simple mode, the deploy top as a module
reference between the DMA's streams), runs synthesis, implementation and the
bitstream, fails on negative slack, and copies the bitstream and the hardware
handoff to OUT/deploy/sdbnn.bit and sdbnn.hwh. Nothing here runs Vivado
(package.run_vivado does, with --vivado)."""

from __future__ import annotations

import math
import textwrap
import re
from pathlib import Path

from build_flows.deploy.boards import deploy_board
from build_flows.templating import render

TEMPLATE = "vivado/build.tcl.j2"
SCRIPT = "build.tcl"
DEPLOY_NAME = "sdbnn"  # OUT/deploy/sdbnn.bit and sdbnn.hwh: PYNQ wants one base name
DMA_BUFFER_BITS = (8, 26)  # the AXI DMA's buffer length register: 8 .. 26 bits
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _brace(value, width: int = 72) -> str:
    """`value` as one Tcl word, braced (no substitution inside); a long one over
    lines joined by backslash-newlines, which Tcl reads as one space each."""
    text = str(value)
    if any(c in text for c in "{}\\\n") or not text:
        raise ValueError(f"{text!r} cannot be written into the Vivado Tcl")
    if len(text) > width and "  " not in text:
        text = "\\\n    ".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))
    return "{" + text + "}"


def _mhz(clock_mhz) -> str:
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) \
            or not math.isfinite(clock_mhz) or not 0 < clock_mhz <= 1000:
        raise ValueError(f"clock_mhz {clock_mhz!r} must be a number of MHz in (0, 1000]")
    return format(float(clock_mhz), ".10g")


def render_vivado_tcl(board: str, *, clock_mhz: float, bus_bits: int, top: str = "sdbnn_deploy_top",
                      project: str = "sdbnn", dma_buffer_bits: int = 26) -> str:
    """build.tcl for `board` (a key of boards.DEPLOY_BOARDS) with PL clock 0 at
    clock_mhz and the DMA at bus_bits (must be the board's HP port width);
    `top`: the deploy top module in OUT/vivado/<top>.v; `project`: the Vivado
    project and block design name; dma_buffer_bits: width of the DMA's buffer
    length register (largest transfer 2**bits - 1 bytes)."""
    b = deploy_board(board)
    if bus_bits != b.bus_bits:
        raise ValueError(f"bus_bits {bus_bits} does not match {b.name}: its DMA bus ({b.hp_port}) "
                         f"is {b.bus_bits} bits")
    lo, hi = DMA_BUFFER_BITS
    if isinstance(dma_buffer_bits, bool) or not isinstance(dma_buffer_bits, int) \
            or not lo <= dma_buffer_bits <= hi:
        raise ValueError(f"dma_buffer_bits {dma_buffer_bits!r} must be an integer in {lo}..{hi}")
    for what, name in (("top", top), ("project", project)):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{what} {name!r} must be a Verilog/Vivado identifier")
    mhz = _mhz(clock_mhz)
    q = {k: _brace(v) for k, v in {
        "board": b.name, "part": b.part, "board_part": b.board_part,
        "board_part_any": b.board_part_any_version, "board_files": b.board_files,
        "project": project, "top": top, "deploy_name": DEPLOY_NAME, "clock_mhz": mhz,
        "ps_ip": b.ps_ip, "ps_cell": b.ps_cell, "automation_config": b.automation_config,
        "pl_clk_param": b.pl_clk_param, "pl_clk_act_param": b.pl_clk_act_param,
        "pl_clk_pin": b.pl_clk_pin, "pl_reset_pin": b.pl_reset_pin, "gp_port": b.gp_port,
        "gp_clk_pin": b.gp_clk_pin, "hp_port": b.hp_port, "hp_clk_pin": b.hp_clk_pin,
        "hp_width_param": b.hp_width_param, "ddr_segment": b.ddr_segment, "ddr_range": b.ddr_range,
    }.items()}
    for name, value in b.ps_config:
        _brace(name), _brace(value)
    return render(TEMPLATE, trim=True, board=b, q=q, clock_mhz=mhz, bus_bits=b.bus_bits,
                  dma_buffer_bits=dma_buffer_bits, periph_base=f"0x{b.periph_base:08X}",
                  top=top, deploy_name=DEPLOY_NAME)


def write_vivado_dir(vivado_dir: Path, board: str, clock_mhz: float, bus_bits: int) -> Path:
    """vivado_dir/build.tcl (the folder is created); returns its path."""
    text = render_vivado_tcl(board, clock_mhz=clock_mhz, bus_bits=bus_bits)
    vivado_dir = Path(vivado_dir)
    vivado_dir.mkdir(parents=True, exist_ok=True)
    path = vivado_dir / SCRIPT
    path.write_text(text)
    return path
