"""The boards a deploy package targets: part, board part, and the facts of
their processing system the Vivado block design needs (templates/vivado/
build.tcl.j2, rendered by deploy/vivado.py).

Two families:
  zynq    Zynq-7000, processing_system7: 64-bit HP ports, GP0 master at 0x4000_0000
  zynqmp  Zynq UltraScale+, zynq_ultra_ps_e: 128-bit HP ports, HPM0_FPD at 0xA000_0000

The DMA's registers sit at the board's `periph_base` (the manifest's dma.base);
its two memory masters reach the DDR through `hp_port` (32-bit addresses, the
DDR below 2 GiB on UltraScale+)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeployBoard:
    name: str  # key of DEPLOY_BOARDS, as on the command line
    part: str  # FPGA part (Vivado spelling)
    board_part: str  # Vivado board part: vendor:board:part0:file_version
    family: str  # "zynq" | "zynqmp"
    bus_bits: int  # DMA data width: the HP port's width
    ps_ip: str  # processing system IP: processing_system7 | zynq_ultra_ps_e
    hp_port: str  # PS slave interface for the DMA's memory masters
    gp_port: str  # PS master interface for the DMA's AXI-Lite registers
    periph_base: int  # base of the PL peripherals behind gp_port: the DMA registers
    pl_clk_param: str  # PS parameter (without CONFIG.) that requests PL clock 0 in MHz
    board_files: str  # where to get the board files, for the "not installed" error
    # -- processing system details (same for every board of a family) --
    pl_clk_act_param: str  # read-only PS parameter: the PL clock 0 the PS really makes (MHz)
    pl_clk_pin: str  # PL clock 0 output pin
    pl_reset_pin: str  # PL reset 0 output pin (active low)
    gp_clk_pin: str  # clock input of gp_port
    hp_clk_pin: str  # clock input of hp_port
    hp_width_param: str  # PS parameter: data width of hp_port (set to bus_bits)
    ddr_segment: str  # slave segment of the DDR behind hp_port (<interface>/<segment>)
    ddr_range: str  # range of ddr_segment mapped for the DMA (from address 0)
    automation_config: str  # apply_bd_automation -config of the PS (board preset applied)
    ps_config: tuple[tuple[str, str], ...]  # CONFIG.<name> value pairs besides the clock

    @property
    def ps_cell(self) -> str:
        """Block-design name of the PS (Vivado's default for the IP)."""
        return f"{self.ps_ip}_0"

    @property
    def board_part_any_version(self) -> str:
        """get_board_parts pattern: this board in any file version."""
        return self.board_part.rsplit(":", 1)[0] + ":*"


def _zynq(name: str, board_part: str, board_files: str) -> DeployBoard:
    return DeployBoard(
        name=name, part="xc7z020clg400-1", board_part=board_part, family="zynq", bus_bits=64,
        ps_ip="processing_system7", hp_port="S_AXI_HP0", gp_port="M_AXI_GP0",
        periph_base=0x4000_0000, pl_clk_param="PCW_FPGA0_PERIPHERAL_FREQMHZ", board_files=board_files,
        pl_clk_act_param="PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ", pl_clk_pin="FCLK_CLK0",
        pl_reset_pin="FCLK_RESET0_N", gp_clk_pin="M_AXI_GP0_ACLK", hp_clk_pin="S_AXI_HP0_ACLK",
        hp_width_param="PCW_S_AXI_HP0_DATA_WIDTH",
        ddr_segment="S_AXI_HP0/HP0_DDR_LOWOCM", ddr_range="512M",  # the 512 MiB DDR of the board
        automation_config='make_external "FIXED_IO, DDR" apply_board_preset "1" '
                          'Master "Disable" Slave "Disable"',
        ps_config=(("PCW_USE_M_AXI_GP0", "1"), ("PCW_USE_S_AXI_HP0", "1"),
                   ("PCW_FPGA_FCLK0_ENABLE", "1"), ("PCW_EN_CLK0_PORT", "1"),
                   ("PCW_EN_RST0_PORT", "1")))


def _zynqmp(name: str, part: str, board_part: str, board_files: str) -> DeployBoard:
    return DeployBoard(
        name=name, part=part, board_part=board_part, family="zynqmp", bus_bits=128,
        ps_ip="zynq_ultra_ps_e", hp_port="S_AXI_HP0_FPD", gp_port="M_AXI_HPM0_FPD",
        periph_base=0xA000_0000, pl_clk_param="PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ",
        board_files=board_files, pl_clk_act_param="PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ",
        pl_clk_pin="pl_clk0", pl_reset_pin="pl_resetn0", gp_clk_pin="maxihpm0_fpd_aclk",
        hp_clk_pin="saxihp0_fpd_aclk", hp_width_param="PSU__SAXIGP2__DATA_WIDTH",
        ddr_segment="SAXIGP2/HP0_DDR_LOW", ddr_range="2G",  # all of DDR_LOW; the rest is excluded
        automation_config='apply_board_preset "1"',
        # HPM0_FPD (GP0) on, HPM1_FPD (GP1) and HPM0_LPD (GP2) off (a preset may enable
        # them, and an enabled master needs a clock); HP0_FPD (S_AXI_GP2) on
        ps_config=(("PSU__USE__M_AXI_GP0", "1"), ("PSU__USE__M_AXI_GP1", "0"),
                   ("PSU__USE__M_AXI_GP2", "0"), ("PSU__USE__S_AXI_GP2", "1"),
                   ("PSU__FPGA_PL0_ENABLE", "1")))


DEPLOY_BOARDS: dict[str, DeployBoard] = {b.name: b for b in (
    _zynq("pynq-z1", "www.digilentinc.com:pynq-z1:part0:1.0",
          "Digilent's vivado-boards (github.com/Digilent/vivado-boards, new/board_files/pynq-z1)"),
    _zynq("pynq-z2", "tul.com.tw:pynq-z2:part0:1.0",
          "the TUL PYNQ-Z2 board files (Xilinx XilinxBoardStore, github.com/Xilinx/XilinxBoardStore, "
          "boards/TUL/pynq-z2; or Vivado: Tools > Vivado Store > Boards)"),
    _zynqmp("ultra96-v2", "xczu3eg-sbva484-1-i", "avnet.com:ultra96v2:part0:1.2",
            "Avnet's board definition files (github.com/Avnet/bdf, ultra96v2)"),
    _zynqmp("zcu104", "xczu7ev-ffvc1156-2-e", "xilinx.com:zcu104:part0:1.1",
            "the Vivado installation (it ships them; reinstall with Zynq UltraScale+ MPSoC support)"),
    _zynqmp("kv260", "xck26-sfvc784-2LV-c", "xilinx.com:kv260_som:part0:1.3",
            "the Vivado installation or the Vivado board store (Tools > Vivado Store > Boards: "
            "Kria KV260 Vision AI Starter Kit)"),
)}


def deploy_board(name: str) -> DeployBoard:
    """The board called `name`; ValueError naming the known boards otherwise."""
    try:
        return DEPLOY_BOARDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown deploy board {name!r}; known boards: "
                         f"{', '.join(sorted(DEPLOY_BOARDS))}") from None
