"""A recording stand-in for Vivado's Tcl commands, for running generated Vivado
scripts (templates/vivado/build.tcl.j2) in a plain tkinter.Tcl() interpreter.

Every Vivado command the stub knows is recorded with its arguments (`calls`)
and answers like Vivado would, from a small model of the project, the block
design (cells, their pins from their configuration, nets, address spaces and
segments) and the runs. It is strict where Vivado is strict, and stricter where
Vivado would only warn, so a script that passes it calls what it should:

- a command the stub does not know fails (Tcl `unknown`), and is listed in
  `unknown`; so do the Tcl 8.6-only commands Vivado's Tcl 8.5 lacks (lmap, try..);
- unknown options, IP parameters, properties, objects and files fail;
- nets need exactly one driver; interface nets a master and a slave of one protocol;
- validate_bd_design fails on unconnected clocks/resets/interfaces, stream
  width or FREQ_HZ mismatches, and address segments neither assigned nor excluded;
- a module reference needs its module in an added Verilog (not SystemVerilog)
  file; its pins and s_axis/m_axis interfaces come from that file's ports.

Vivado's side effects on disk are mimicked: the project folder, the block design
file, the wrapper, the .hwh (generate_target), the .bit (impl_1 to
write_bitstream), and the reports. Options simulate a missing board file
(`board_parts=[]`), another installed version, a failing run and negative slack.
"""

from __future__ import annotations

import fnmatch
import re
import tkinter
from pathlib import Path

VIVADO_VERSION = "2024.2"
PARTS = {"xc7z020clg400-1", "xczu3eg-sbva484-1-i", "xczu7ev-ffvc1156-2-e", "xck26-sfvc784-2LV-c"}
DEFAULT_BOARD_PARTS = ("www.digilentinc.com:pynq-z1:part0:1.0", "tul.com.tw:pynq-z2:part0:1.0",
                       "avnet.com:ultra96v2:part0:1.2", "xilinx.com:zcu104:part0:1.1",
                       "xilinx.com:kv260_som:part0:1.3")
TCL86_ONLY = ("lmap", "try", "throw", "tailcall", "coroutine", "yield", "zlib")
K, M, G = 1 << 10, 1 << 20, 1 << 30


class StubError(Exception):
    """Becomes a Tcl error of the command that raised it."""


def parse_size(text: str) -> int:
    """A Vivado range/offset: 64K, 512M, 2G, 0x1000, 4096."""
    t = text.strip().upper()
    m = re.fullmatch(r"(\d+)([KMGT]?)", t)
    if m:
        return int(m.group(1)) * {"": 1, "K": K, "M": M, "G": G, "T": 1 << 40}[m.group(2)]
    if re.fullmatch(r"0X[0-9A-F_]+", t):
        return int(t, 16)
    raise StubError(f"not an address or range: {text!r}")


def verilog_ports(text: str) -> dict[str, tuple[str, int]]:
    """ANSI port declarations: name -> (direction, width)."""
    ports = {}
    for m in re.finditer(r"\b(input|output|inout)\s+(?:wire\s+|reg\s+|logic\s+)?"
                         r"(?:\[\s*(\d+)\s*:\s*0\s*\]\s*)?(\w+)", text):
        ports[m.group(3)] = (m.group(1), int(m.group(2)) + 1 if m.group(2) else 1)
    return ports


# -- the IP the stub knows: parameters (default, check) ----------------------------------------

def _bool(v):
    return v in ("0", "1")


def _int_in(lo, hi):
    return lambda v: v.isdigit() and lo <= int(v) <= hi


def _one_of(*vals):
    return lambda v: v in vals


def _mhz(v):
    try:
        return 0 < float(v) <= 1000
    except ValueError:
        return False


WIDTHS = ("8", "16", "32", "64", "128", "256", "512", "1024")
IP_PARAMS = {
    "processing_system7": {
        "PCW_FPGA0_PERIPHERAL_FREQMHZ": ("50", _mhz), "PCW_USE_M_AXI_GP0": ("1", _bool),
        "PCW_USE_S_AXI_HP0": ("0", _bool), "PCW_S_AXI_HP0_DATA_WIDTH": ("64", _one_of("32", "64")),
        "PCW_FPGA_FCLK0_ENABLE": ("1", _bool), "PCW_EN_CLK0_PORT": ("1", _bool),
        "PCW_EN_RST0_PORT": ("1", _bool), "PCW_USE_FABRIC_INTERRUPT": ("0", _bool),
        "PCW_IRQ_F2P_INTR": ("0", _bool),
    },
    "zynq_ultra_ps_e": {
        "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": ("100", _mhz), "PSU__USE__M_AXI_GP0": ("1", _bool),
        "PSU__USE__M_AXI_GP1": ("0", _bool), "PSU__USE__M_AXI_GP2": ("0", _bool),
        "PSU__USE__S_AXI_GP2": ("0", _bool),
        "PSU__SAXIGP2__DATA_WIDTH": ("128", _one_of("32", "64", "128")),
        "PSU__MAXIGP0__DATA_WIDTH": ("128", _one_of("32", "64", "128")),
        "PSU__FPGA_PL0_ENABLE": ("1", _bool), "PSU__USE__IRQ0": ("0", _bool),
    },
    "axi_dma": {
        "c_include_sg": ("1", _bool), "c_sg_include_stscntrl_strm": ("1", _bool),
        "c_sg_length_width": ("14", _int_in(8, 26)), "c_addr_width": ("32", _int_in(32, 64)),
        "c_include_mm2s": ("1", _bool), "c_include_s2mm": ("1", _bool),
        "c_m_axi_mm2s_data_width": ("32", _one_of(*WIDTHS[2:])),
        "c_m_axis_mm2s_tdata_width": ("32", _one_of(*WIDTHS)),
        "c_m_axi_s2mm_data_width": ("32", _one_of(*WIDTHS[2:])),
        "c_s_axis_s2mm_tdata_width": ("32", _one_of(*WIDTHS)),
        "c_mm2s_burst_size": ("16", _one_of("2", "4", "8", "16", "32", "64", "128", "256")),
        "c_s2mm_burst_size": ("16", _one_of("2", "4", "8", "16", "32", "64", "128", "256")),
        "c_include_mm2s_dre": ("0", _bool), "c_include_s2mm_dre": ("0", _bool),
    },
    "smartconnect": {"NUM_SI": ("1", _int_in(1, 16)), "NUM_MI": ("2", _int_in(1, 16)),
                     "NUM_CLKS": ("1", _int_in(1, 1))},
    "proc_sys_reset": {"C_EXT_RST_WIDTH": ("4", _int_in(1, 16)), "C_AUX_RST_WIDTH": ("4", _int_in(1, 16))},
}
READ_ONLY = {"processing_system7": "PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ",
             "zynq_ultra_ps_e": "PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ"}
AUTOMATION = {"processing_system7", "zynq_ultra_ps_e"}
# slave segments behind the PS's HP0 port: name -> (fixed offset, largest range)
HP0_SEGS = {
    "processing_system7": {"S_AXI_HP0/HP0_DDR_LOWOCM": (0, 512 * M)},
    "zynq_ultra_ps_e": {"SAXIGP2/HP0_DDR_LOW": (0, 2 * G), "SAXIGP2/HP0_DDR_HIGH": (0x8_0000_0000, 32 * G),
                        "SAXIGP2/HP0_LPS_OCM": (0xFF00_0000, 16 * M), "SAXIGP2/HP0_QSPI": (0xC000_0000, 512 * M),
                        "SAXIGP2/HP0_PCIE_LOW": (0xE000_0000, 256 * M)},
}
AXIS_SIGNALS = {"TDATA", "TKEEP", "TLAST", "TVALID", "TREADY"}


class Pin:
    def __init__(self, name, direction, kind="data", required=False, width=1):
        self.name, self.dir, self.kind, self.required, self.width = name, direction, kind, required, width


class IntfPin:
    def __init__(self, name, mode, protocol, *, width=None, signals=None, space=None, segs=None):
        self.name, self.mode, self.protocol = name, mode, protocol
        self.width = width  # AXI-Stream TDATA bits
        self.signals = set(signals or ())  # AXI-Stream signals present
        self.space = space  # master: its address space
        self.segs = segs or {}  # slave: segment -> (offset or None, largest range)


class Cell:
    def __init__(self, name, ip, *, module=None, ports=None, hdl_file=None):
        self.name, self.ip, self.module, self.ports, self.hdl_file = name, ip, module, ports, hdl_file
        self.config = {k: d for k, (d, _) in IP_PARAMS.get(ip, {}).items()}
        self.automated = False
        self.pin_props = {}  # module reference: pin or interface -> FREQ_HZ

    @property
    def path(self):
        return "/" + self.name

    def pins(self) -> dict[str, Pin]:
        on = lambda k: self.config.get(k) == "1"  # noqa: E731
        p = []
        if self.ip == "processing_system7":
            if on("PCW_EN_CLK0_PORT") and on("PCW_FPGA_FCLK0_ENABLE"):
                p.append(Pin("FCLK_CLK0", "O", "clk"))
            if on("PCW_EN_RST0_PORT"):
                p.append(Pin("FCLK_RESET0_N", "O", "rst"))
            if on("PCW_USE_M_AXI_GP0"):
                p.append(Pin("M_AXI_GP0_ACLK", "I", "clk", True))
            if on("PCW_USE_S_AXI_HP0"):
                p.append(Pin("S_AXI_HP0_ACLK", "I", "clk", True))
            if on("PCW_USE_FABRIC_INTERRUPT") and on("PCW_IRQ_F2P_INTR"):
                p.append(Pin("IRQ_F2P", "I", "intr"))
        elif self.ip == "zynq_ultra_ps_e":
            if on("PSU__FPGA_PL0_ENABLE"):
                p.append(Pin("pl_clk0", "O", "clk"))
            p.append(Pin("pl_resetn0", "O", "rst"))
            for key, pin in (("PSU__USE__M_AXI_GP0", "maxihpm0_fpd_aclk"),
                             ("PSU__USE__M_AXI_GP1", "maxihpm1_fpd_aclk"),
                             ("PSU__USE__M_AXI_GP2", "maxihpm0_lpd_aclk"),
                             ("PSU__USE__S_AXI_GP2", "saxihp0_fpd_aclk")):
                if on(key):
                    p.append(Pin(pin, "I", "clk", True))
            if on("PSU__USE__IRQ0"):
                p.append(Pin("pl_ps_irq0", "I", "intr"))
        elif self.ip == "axi_dma":
            p += [Pin("s_axi_lite_aclk", "I", "clk", True), Pin("axi_resetn", "I", "rst", True)]
            if on("c_include_mm2s"):
                p += [Pin("m_axi_mm2s_aclk", "I", "clk", True), Pin("mm2s_introut", "O", "intr")]
            if on("c_include_s2mm"):
                p += [Pin("m_axi_s2mm_aclk", "I", "clk", True), Pin("s2mm_introut", "O", "intr")]
            if on("c_include_sg"):
                p.append(Pin("m_axi_sg_aclk", "I", "clk", True))
        elif self.ip == "smartconnect":
            p += [Pin("aclk", "I", "clk", True), Pin("aresetn", "I", "rst", True)]
        elif self.ip == "proc_sys_reset":
            p += [Pin("slowest_sync_clk", "I", "clk", True), Pin("ext_reset_in", "I", "rst", True),
                  Pin("aux_reset_in", "I", "rst"), Pin("mb_debug_sys_rst", "I", "rst"),
                  Pin("dcm_locked", "I"), Pin("mb_reset", "O", "rst"), Pin("bus_struct_reset", "O", "rst"),
                  Pin("peripheral_reset", "O", "rst"), Pin("interconnect_aresetn", "O", "rst"),
                  Pin("peripheral_aresetn", "O", "rst")]
        elif self.ip == "module":
            for name, (direction, width) in self.ports.items():
                if name.startswith(("s_axis_", "m_axis_")):
                    continue
                kind = "clk" if name.endswith("clk") else "rst" if re.search(r"rst_?n$|resetn$", name) else "data"
                p.append(Pin(name, "I" if direction == "input" else "O", kind, direction == "input", width))
        return {x.name: x for x in p}

    def intf_pins(self) -> dict[str, IntfPin]:
        on = lambda k: self.config.get(k) == "1"  # noqa: E731
        p = []
        if self.ip == "processing_system7":
            p += [IntfPin("DDR", "Master", "ddr"), IntfPin("FIXED_IO", "Master", "fixed_io")]
            if on("PCW_USE_M_AXI_GP0"):
                p.append(IntfPin("M_AXI_GP0", "Master", "aximm", space="Data"))
            if on("PCW_USE_S_AXI_HP0"):
                p.append(IntfPin("S_AXI_HP0", "Slave", "aximm", segs=HP0_SEGS[self.ip]))
        elif self.ip == "zynq_ultra_ps_e":
            for key, name in (("PSU__USE__M_AXI_GP0", "M_AXI_HPM0_FPD"), ("PSU__USE__M_AXI_GP1", "M_AXI_HPM1_FPD"),
                              ("PSU__USE__M_AXI_GP2", "M_AXI_HPM0_LPD")):
                if on(key):
                    p.append(IntfPin(name, "Master", "aximm", space="Data"))
            if on("PSU__USE__S_AXI_GP2"):
                p.append(IntfPin("S_AXI_HP0_FPD", "Slave", "aximm", segs=HP0_SEGS[self.ip]))
        elif self.ip == "axi_dma":
            p.append(IntfPin("S_AXI_LITE", "Slave", "aximm", segs={"S_AXI_LITE/Reg": (None, 64 * K)}))
            if on("c_include_mm2s"):
                p += [IntfPin("M_AXI_MM2S", "Master", "aximm", space="Data_MM2S"),
                      IntfPin("M_AXIS_MM2S", "Master", "axis", width=int(self.config["c_m_axis_mm2s_tdata_width"]),
                              signals=AXIS_SIGNALS)]
            if on("c_include_s2mm"):
                p += [IntfPin("M_AXI_S2MM", "Master", "aximm", space="Data_S2MM"),
                      IntfPin("S_AXIS_S2MM", "Slave", "axis", width=int(self.config["c_s_axis_s2mm_tdata_width"]),
                              signals=AXIS_SIGNALS)]
            if on("c_include_sg"):
                p.append(IntfPin("M_AXI_SG", "Master", "aximm", space="Data_SG"))
                if on("c_sg_include_stscntrl_strm"):
                    p += [IntfPin("M_AXIS_CNTRL", "Master", "axis", width=32, signals=AXIS_SIGNALS),
                          IntfPin("S_AXIS_STS", "Slave", "axis", width=32, signals=AXIS_SIGNALS)]
        elif self.ip == "smartconnect":
            p += [IntfPin(f"S{i:02d}_AXI", "Slave", "aximm") for i in range(int(self.config["NUM_SI"]))]
            p += [IntfPin(f"M{i:02d}_AXI", "Master", "aximm") for i in range(int(self.config["NUM_MI"]))]
        elif self.ip == "module":
            for prefix, mode in (("s_axis", "Slave"), ("m_axis", "Master")):
                sigs = {n[len(prefix) + 1:].upper(): w for n, (_, w) in self.ports.items()
                        if n.startswith(prefix + "_")}
                if sigs:
                    p.append(IntfPin(prefix, mode, "axis", width=sigs.get("TDATA"), signals=set(sigs)))
        return {x.name: x for x in p}

    def spaces(self) -> dict[str, list[str]]:
        """Master address spaces -> their master interfaces."""
        out = {}
        for ip in self.intf_pins().values():
            if ip.mode == "Master" and ip.space:
                out.setdefault(ip.space, []).append(ip.name)
        return out


class VivadoStub:
    """Install into a Tcl interpreter, then `source(script)`; inspect `calls` and the model."""

    COMMANDS = (
        "version", "set_param", "get_param", "get_board_parts", "create_project", "current_project",
        "set_property", "get_property", "add_files", "get_files", "get_filesets", "update_compile_order",
        "create_bd_design", "create_bd_cell", "apply_bd_automation", "get_bd_cells", "get_bd_pins",
        "get_bd_intf_pins", "connect_bd_net", "connect_bd_intf_net", "get_bd_addr_spaces",
        "get_bd_addr_segs", "assign_bd_address", "exclude_bd_addr_seg", "validate_bd_design",
        "save_bd_design", "generate_target", "make_wrapper", "launch_runs", "wait_on_run", "get_runs",
        "open_run", "report_timing_summary", "report_utilization", "get_timing_paths",
    )

    def __init__(self, *, board_parts=DEFAULT_BOARD_PARTS, wns: float = 0.412, whs: float = 0.031,
                 failing_run: str | None = None, tcl=None):
        self.board_parts = list(board_parts)
        self.wns, self.whs, self.failing_run = wns, whs, failing_run
        self.tcl = tcl or tkinter.Tcl()
        self.calls: list[tuple[str, list[str]]] = []
        self.unknown: list[str] = []
        self.messages: list[str] = []
        self.params = {"board.repoPaths": "", "general.maxThreads": "8"}
        self.project = None  # {"name", "dir", "part", "props"}
        self.files: dict[str, dict] = {}  # path -> {"fileset", "props"}
        self.fileset_props = {"sources_1": {}, "constrs_1": {}, "sim_1": {}}
        self.bd = None  # {"name", "file", "validated", "saved", "generated": [paths]}
        self.cells: dict[str, Cell] = {}
        self.nets: list[set[str]] = []  # of "/cell/pin"
        self.intf_nets: list[tuple[str, str]] = []  # ("/cell/master", "/cell/slave")
        self.assigned: dict[tuple[str, str], tuple[int, int]] = {}  # (space, slave seg) -> (offset, range)
        self.excluded: set[tuple[str, str]] = set()
        self.runs: dict[str, dict] = {}
        self.open_design = None
        self._install()

    # -- plumbing ------------------------------------------------------------------------------
    def _install(self):
        t = self.tcl
        t.createcommand("::_vivado_stub", self._dispatch)
        t.createcommand("::_vivado_stub_unknown", self._unknown)
        t.createcommand("::_vivado_stub_puts", self._puts)
        for name in self.COMMANDS:
            t.eval(f"proc ::{name} {{args}} {{\n"
                   f"    set r [::_vivado_stub {name} {{*}}$args]\n"
                   "    if {[lindex $r 0] eq \"error\"} {return -code error [lindex $r 1]}\n"
                   "    return [lindex $r 1]\n}")
        for name in TCL86_ONLY:
            if t.eval(f"info commands ::{name}"):
                t.eval(f"rename ::{name} {{}}")
        t.eval("proc ::unknown {args} {\n"
               "    ::_vivado_stub_unknown [lindex $args 0]\n"
               "    return -code error \"vivado stub: unknown command '[lindex $args 0]'\"\n}")
        t.eval("rename ::puts ::_vivado_stub_real_puts\n"
               "proc ::puts {args} {\n"
               "    if {[llength $args] == 1} {::_vivado_stub_puts [lindex $args 0]; return}\n"
               "    ::_vivado_stub_real_puts {*}$args\n}")

    def _unknown(self, name):
        self.unknown.append(name)
        return ""

    def _puts(self, msg):
        self.messages.append(msg)
        return ""

    def _dispatch(self, name, *args):
        args = list(args)
        self.calls.append((name, args))
        try:
            result = getattr(self, "_cmd_" + name)(args)
        except StubError as e:
            return ("error", f"{name}: {e}")
        if isinstance(result, (list, tuple)):
            return ("ok", tuple(str(x) for x in result))
        return ("ok", "" if result is None else str(result))

    def source(self, script: Path):
        """Run a script like `vivado -source`; a Tcl error raises tkinter.TclError."""
        return self.tcl.eval(f"source {{{Path(script)}}}")

    def split(self, arg: str) -> list[str]:
        return [str(x) for x in self.tcl.splitlist(arg)]

    @staticmethod
    def _opts(args, flags=(), valued=()):
        opts, pos, i = {}, [], 0
        while i < len(args):
            a = args[i]
            if a in flags:
                opts[a] = True
            elif a in valued:
                if i + 1 >= len(args):
                    raise StubError(f"option {a} needs a value")
                opts[a] = args[i + 1]
                i += 1
            elif a.startswith("-") and not re.fullmatch(r"-?\d.*", a):
                raise StubError(f"unknown option {a}")
            else:
                pos.append(a)
            i += 1
        return opts, pos

    def calls_of(self, name):
        return [args for n, args in self.calls if n == name]

    def file_args(self) -> list[Path]:
        """Every file named to add_files or read_* (options and their values left out)."""
        out = []
        for name, args in self.calls:
            if name == "add_files" or name.startswith("read_"):
                _, pos = self._opts(args, flags=("-norecurse", "-quiet", "-sv"),
                                    valued=("-fileset", "-library"))
                out += [Path(p) for a in pos for p in self.split(a)]
        return out

    # -- queries for tests ---------------------------------------------------------------------
    def cell_of_ip(self, ip) -> Cell:
        found = [c for c in self.cells.values() if c.ip == ip]
        assert len(found) == 1, f"{len(found)} cells of {ip}"
        return found[0]

    def net_of(self, pin: str) -> set[str]:
        pin = self._abs(pin)
        return next((n for n in self.nets if pin in n), set())

    def intf_peer(self, intf: str) -> str | None:
        intf = self._abs(intf)
        for a, b in self.intf_nets:
            if intf in (a, b):
                return b if intf == a else a
        return None

    def intf_pin(self, path: str) -> IntfPin:
        cell, name = self._split_obj(path)
        return self._cell(cell).intf_pins()[name]

    # -- model helpers -------------------------------------------------------------------------
    @staticmethod
    def _abs(name: str) -> str:
        return name if name.startswith("/") else "/" + name

    def _split_obj(self, path):
        path = self._abs(path).strip("/")
        cell, _, rest = path.partition("/")
        if not rest:
            raise StubError(f"not a pin or interface: /{path}")
        return cell, rest

    def _cell(self, name) -> Cell:
        if name not in self.cells:
            raise StubError(f"no block design cell {name}")
        return self.cells[name]

    def _need_project(self):
        if self.project is None:
            raise StubError("no open project")

    def _need_bd(self):
        if self.bd is None:
            raise StubError("no open block design")

    def _pin(self, path) -> tuple[Cell, Pin]:
        cell, name = self._split_obj(path)
        c = self._cell(cell)
        pins = c.pins()
        if name not in pins:
            raise StubError(f"cell /{cell} ({c.ip}) has no pin {name}; pins: {sorted(pins)}")
        return c, pins[name]

    def _intf(self, path) -> tuple[Cell, IntfPin]:
        cell, name = self._split_obj(path)
        c = self._cell(cell)
        pins = c.intf_pins()
        if name not in pins:
            raise StubError(f"cell /{cell} ({c.ip}) has no interface {name}; interfaces: {sorted(pins)}")
        return c, pins[name]

    def _all_slave_segs(self) -> dict[str, tuple]:
        out = {}
        for c in self.cells.values():
            for ip in c.intf_pins().values():
                for seg, info in ip.segs.items():
                    out[f"/{c.name}/{seg}"] = (c, ip, info)
        return out

    def _space_masters(self, space) -> list[str]:
        cell, name = self._split_obj(space)
        spaces = self._cell(cell).spaces()
        if name not in spaces:
            raise StubError(f"no address space {space}")
        return [f"/{cell}/{m}" for m in spaces[name]]

    def _reachable(self, space) -> list[str]:
        """Slave segments the master interfaces of `space` reach through nets and smartconnects."""
        todo, seen, segs = list(self._space_masters(space)), set(), []
        while todo:
            master = todo.pop()
            if master in seen:
                continue
            seen.add(master)
            slave = self.intf_peer(master)
            if slave is None:
                continue
            c, ip = self._intf(slave)
            if c.ip == "smartconnect":
                todo += [f"/{c.name}/{n}" for n, p in c.intf_pins().items() if p.mode == "Master"]
            else:
                segs += [f"/{c.name}/{s}" for s in ip.segs]
        return sorted(set(segs))

    def _spaces(self) -> list[str]:
        return [f"/{c.name}/{s}" for c in self.cells.values() for s in c.spaces()]

    def _act_mhz(self, cell: Cell) -> float:
        if cell.ip == "processing_system7":
            req, pll = float(cell.config["PCW_FPGA0_PERIPHERAL_FREQMHZ"]), 1000.0
        else:
            req, pll = float(cell.config["PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"]), 1499.985
        return pll / max(1, round(pll / req))

    def _ps(self) -> Cell:
        ps = [c for c in self.cells.values() if c.ip in AUTOMATION]
        if len(ps) != 1:
            raise StubError("the stub models one processing system")
        return ps[0]

    def _ps_hz(self) -> str:
        return str(round(self._act_mhz(self._ps()) * 1e6))

    def _object_kind(self, obj: str) -> str:
        if self.project is not None and obj == self.project["name"]:
            return "project"
        if obj in self.fileset_props:
            return "fileset"
        if obj in self.runs:
            return "run"
        if obj in self.files:
            return "file"
        if obj.startswith("/") and obj.strip("/") in self.cells:
            return "cell"
        if obj.startswith("/"):
            cell, name = self._split_obj(obj)
            c = self._cell(cell)
            if name in c.pins():
                return "pin"
            if name in c.intf_pins():
                return "intf_pin"
        if obj.startswith("timing_path_"):
            return "timing_path"
        raise StubError(f"no object {obj!r}")

    # -- project and files ---------------------------------------------------------------------
    def _cmd_version(self, args):
        opts, _ = self._opts(args, flags=("-short",))
        return VIVADO_VERSION if "-short" in opts else f"Vivado v{VIVADO_VERSION} (stub)"

    def _cmd_set_param(self, args):
        _, pos = self._opts(args)
        if len(pos) != 2 or pos[0] not in self.params:
            raise StubError(f"unknown parameter or bad arguments {pos}")
        self.params[pos[0]] = pos[1]

    def _cmd_get_param(self, args):
        _, pos = self._opts(args)
        if len(pos) != 1 or pos[0] not in self.params:
            raise StubError(f"unknown parameter {pos}")
        return self.params[pos[0]]

    def _cmd_get_board_parts(self, args):
        opts, pos = self._opts(args, flags=("-quiet", "-latest_file_version", "-latest_hw_revision"))
        pats = [p for a in pos for p in self.split(a)] or ["*"]
        found = [b for b in self.board_parts if any(fnmatch.fnmatchcase(b, p) for p in pats)]
        if "-latest_file_version" in opts:
            latest = {}
            for b in sorted(found, key=lambda b: [int(x) for x in b.rsplit(":", 1)[1].split(".")]):
                latest[b.rsplit(":", 1)[0]] = b
            found = list(latest.values())
        return found

    def _cmd_create_project(self, args):
        opts, pos = self._opts(args, flags=("-force", "-in_memory"), valued=("-part",))
        if len(pos) != 2:
            raise StubError("needs a name and a folder")
        if opts.get("-part") not in PARTS:
            raise StubError(f"part {opts.get('-part')!r} is not installed")
        name, folder = pos
        path = Path(folder)
        if (path / f"{name}.xpr").exists() and "-force" not in opts:
            raise StubError(f"project {path / name}.xpr exists")
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{name}.xpr").write_text("stub project\n")
        self.project = {"name": name, "dir": path, "part": opts["-part"], "props": {}}
        self.runs = {r: {"launched": False, "status": "Not started", "progress": "0%",
                         "dir": path / f"{name}.runs" / r} for r in ("synth_1", "impl_1")}
        return name

    def _cmd_current_project(self, args):
        self._opts(args)
        self._need_project()
        return self.project["name"]

    def _cmd_get_filesets(self, args):
        _, pos = self._opts(args, flags=("-quiet",))
        names = [p for a in pos for p in self.split(a)]
        for n in names:
            if n not in self.fileset_props:
                raise StubError(f"no fileset {n}")
        return names

    def _cmd_add_files(self, args):
        self._need_project()
        opts, pos = self._opts(args, flags=("-norecurse", "-quiet"), valued=("-fileset",))
        fileset = opts.get("-fileset", "sources_1")
        if fileset not in self.fileset_props:
            raise StubError(f"no fileset {fileset}")
        paths = [p for a in pos for p in self.split(a)]
        if not paths:
            raise StubError("no files given")
        for p in paths:
            path = Path(p)
            if not path.is_absolute() or not path.is_file():
                raise StubError(f"file {p} does not exist (or is not an absolute path)")
            if p in self.files:
                raise StubError(f"file {p} is already in the project")
            ftype = {".sv": "SystemVerilog", ".v": "Verilog", ".vh": "Verilog Header", ".mem": "Memory File",
                     ".xdc": "XDC"}.get(path.suffix, "Data Files")
            self.files[p] = {"fileset": fileset, "props": {"file_type": ftype}}
        return paths

    def _cmd_get_files(self, args):
        opts, pos = self._opts(args, flags=("-all", "-quiet", "-compile_order", "-used_in"),
                               valued=("-of_objects", "-filter"))
        pats = [p for a in pos for p in self.split(a)] or ["*"]
        pool = dict(self.files)
        if "-of_objects" in opts:
            objs = self.split(opts["-of_objects"])
            pool = {}
            for o in objs:
                if o in self.fileset_props:
                    pool.update({f: v for f, v in self.files.items() if v["fileset"] == o})
                elif self.bd is not None and o == str(self.bd["file"]):
                    if "-all" in opts:
                        pool.update({str(g): {} for g in self.bd["generated"]})
                else:
                    raise StubError(f"-of_objects {o}: not a fileset or block design file")
        found = [f for f in pool if any(fnmatch.fnmatchcase(f, p) or f == p or Path(f).name == p
                                        for p in pats)]
        if not found and "-quiet" not in opts:
            raise StubError(f"no files match {pats}")
        return found

    def _cmd_update_compile_order(self, args):
        opts, _ = self._opts(args, valued=("-fileset",))
        if opts.get("-fileset", "sources_1") not in self.fileset_props:
            raise StubError("no such fileset")

    # -- properties ----------------------------------------------------------------------------
    def _cmd_set_property(self, args):
        opts, pos = self._opts(args, valued=("-dict",))
        if "-dict" in opts:
            if len(pos) != 1:
                raise StubError("set_property -dict <list> <objects>")
            items = self.split(opts["-dict"])
            if len(items) % 2:
                raise StubError("-dict needs name value pairs")
            pairs = list(zip(items[::2], items[1::2]))
            objs = self.split(pos[0])
        else:
            if len(pos) != 3:
                raise StubError("set_property <name> <value> <objects>")
            pairs, objs = [(pos[0], pos[1])], self.split(pos[2])
        if not objs:
            raise StubError("no objects")
        for obj in objs:
            for key, value in pairs:
                self._set_one(obj, key, value)

    def _set_one(self, obj, key, value):
        kind = self._object_kind(obj)
        if kind == "project":
            if key == "board_part":
                if value not in self.board_parts:
                    raise StubError(f"board part {value} is not installed")
            elif key == "target_language":
                if value not in ("Verilog", "VHDL"):
                    raise StubError(f"target_language {value}")
            else:
                raise StubError(f"project property {key} unknown to the stub")
            self.project["props"][key] = value
        elif kind == "fileset":
            if key != "top":
                raise StubError(f"fileset property {key} unknown to the stub")
            self.fileset_props[obj][key] = value
        elif kind == "file":
            if key != "file_type" or value not in ("SystemVerilog", "Verilog", "Memory File", "Verilog Header"):
                raise StubError(f"file property {key}={value} unknown to the stub")
            self.files[obj]["props"][key] = value
        elif kind == "cell":
            c = self.cells[obj.strip("/")]
            if not key.startswith("CONFIG."):
                raise StubError(f"cell property {key} unknown to the stub")
            name = key[len("CONFIG."):]
            if name == READ_ONLY.get(c.ip):
                raise StubError(f"parameter {name} of {obj} is read-only")
            table = IP_PARAMS.get(c.ip, {})
            if name not in table:
                raise StubError(f"[BD 41-1276] {obj} ({c.ip}) has no parameter {name}")
            if not table[name][1](value):
                raise StubError(f"{obj}: {name}={value!r} is not a valid value")
            c.config[name] = value  # cross-parameter rules: at validation (a -dict sets in any order)
        elif kind in ("pin", "intf_pin"):
            cell, name = self._split_obj(obj)
            c = self.cells[cell]
            if c.ip != "module" or key != "CONFIG.FREQ_HZ" or not value.isdigit():
                raise StubError(f"{obj}: property {key} is not settable here")
            c.pin_props[name] = value
        else:
            raise StubError(f"cannot set {key} on {obj}")

    def _cmd_get_property(self, args):
        opts, pos = self._opts(args, flags=("-quiet",))
        if len(pos) != 2:
            raise StubError("get_property <name> <object>")
        key, objs = pos[0], self.split(pos[1])
        if len(objs) != 1:
            raise StubError(f"get_property needs one object, got {objs}")
        obj = objs[0]
        kind = self._object_kind(obj)
        if kind == "run":
            run = self.runs[obj]
            table = {"STATUS": run["status"], "PROGRESS": run["progress"], "DIRECTORY": str(run["dir"])}
        elif kind == "cell":
            c = self.cells[obj.strip("/")]
            table = {f"CONFIG.{k}": v for k, v in c.config.items()}
            if c.ip in READ_ONLY:
                table[f"CONFIG.{READ_ONLY[c.ip]}"] = f"{self._act_mhz(c):.6f}"
            table["VLNV"] = f"xilinx.com:ip:{c.ip}:1.0"
        elif kind == "pin":
            c, p = self._pin(obj)
            table = {"DIR": p.dir, "TYPE": p.kind}
            if p.kind == "clk" and c.ip in AUTOMATION and p.dir == "O":
                table["CONFIG.FREQ_HZ"] = self._ps_hz()
            elif c.ip == "module" and p.kind == "clk":
                table["CONFIG.FREQ_HZ"] = c.pin_props.get(p.name, "100000000")
        elif kind == "intf_pin":
            c, ip = self._intf(obj)
            table = {"MODE": ip.mode}
        elif kind == "file":
            table = dict(self.files[obj]["props"])
        elif kind == "project":
            table = {"PART": self.project["part"], **self.project["props"]}
        elif kind == "fileset":
            table = dict(self.fileset_props[obj])
        elif kind == "timing_path":
            if self.open_design is None:
                raise StubError("no open design")
            slack = self.wns if obj.endswith("setup") else self.whs
            clock = "clk_fpga_0" if self._ps().ip == "processing_system7" else "clk_pl_0"
            table = {"SLACK": f"{slack:.3f}", "ENDPOINT_CLOCK": clock, "STARTPOINT_CLOCK": clock}
        else:
            table = {}
        if key not in table:
            if "-quiet" in opts:
                return ""
            raise StubError(f"{obj} ({kind}) has no property {key} in the stub")
        return table[key]

    # -- block design --------------------------------------------------------------------------
    def _cmd_create_bd_design(self, args):
        self._need_project()
        _, pos = self._opts(args)
        if len(pos) != 1:
            raise StubError("create_bd_design <name>")
        name = pos[0]
        p = self.project
        bd_file = p["dir"] / f"{p['name']}.srcs" / "sources_1" / "bd" / name / f"{name}.bd"
        bd_file.parent.mkdir(parents=True, exist_ok=True)
        bd_file.write_text("{}\n")
        self.files[str(bd_file)] = {"fileset": "sources_1", "props": {"file_type": "Block Designs"}}
        self.bd = {"name": name, "file": bd_file, "validated": False, "saved": False, "generated": []}
        return name

    def _cmd_create_bd_cell(self, args):
        self._need_bd()
        opts, pos = self._opts(args, valued=("-type", "-vlnv", "-reference"))
        if len(pos) != 1:
            raise StubError("create_bd_cell needs one cell name")
        name = pos[0].strip("/")
        if name in self.cells:
            raise StubError(f"cell {name} exists")
        if opts.get("-type") == "ip":
            m = re.fullmatch(r"xilinx\.com:ip:(\w+)(?::[\d.]+)?", opts.get("-vlnv", ""))
            if not m or (m.group(1) not in IP_PARAMS):
                raise StubError(f"IP {opts.get('-vlnv')!r} is not in the (stub) catalog")
            self.cells[name] = Cell(name, m.group(1))
        elif opts.get("-type") == "module":
            module = opts.get("-reference")
            hdl = [f for f, v in self.files.items() if v["fileset"] == "sources_1"
                   and Path(f).suffix in (".v", ".sv")
                   and re.search(rf"^\s*module\s+{re.escape(module or '')}\b", Path(f).read_text(), re.M)]
            if len(hdl) != 1:
                raise StubError(f"module {module!r} is defined in {len(hdl)} project source files")
            if self.files[hdl[0]]["props"]["file_type"] != "Verilog":
                raise StubError(f"module reference top {module} is in {hdl[0]}: not a Verilog file")
            text = Path(hdl[0]).read_text()
            body = text[re.search(rf"^\s*module\s+{re.escape(module)}\b", text, re.M).start():]
            body = body[:body.find(");") + 2]
            self.cells[name] = Cell(name, "module", module=module, ports=verilog_ports(body), hdl_file=hdl[0])
        else:
            raise StubError(f"-type {opts.get('-type')!r}")
        self.bd["validated"] = False
        return "/" + name

    def _cmd_apply_bd_automation(self, args):
        opts, pos = self._opts(args, valued=("-rule", "-config"))
        cells = [p for a in pos for p in self.split(a)]
        if len(cells) != 1:
            raise StubError("one cell")
        c = self._cell(cells[0].strip("/"))
        if opts.get("-rule") != f"xilinx.com:bd_rule:{c.ip}":
            raise StubError(f"rule {opts.get('-rule')} does not apply to {c.ip}")
        cfg = self.split(opts.get("-config", ""))
        cfg = dict(zip(cfg[::2], cfg[1::2]))
        if cfg.get("apply_board_preset") != "1":
            raise StubError("the stub expects apply_board_preset 1")
        if c.ip == "processing_system7":
            ext = {x.strip() for x in cfg.get("make_external", "").split(",")}
            if ext != {"FIXED_IO", "DDR"}:
                raise StubError(f"make_external {cfg.get('make_external')!r}: DDR and FIXED_IO must be made external")
            c.config.update({"PCW_FPGA0_PERIPHERAL_FREQMHZ": "100", "PCW_USE_M_AXI_GP0": "1"})
        else:  # a preset that turns on every PS master: the script has to turn off what it leaves unused
            c.config.update({"PSU__USE__M_AXI_GP0": "1", "PSU__USE__M_AXI_GP1": "1", "PSU__USE__M_AXI_GP2": "1"})
        c.automated = True

    def _cmd_get_bd_cells(self, args):
        opts, pos = self._opts(args, flags=("-quiet",), valued=("-filter",))
        names = [p for a in pos for p in self.split(a)]
        out = []
        for n in names:
            if n.strip("/") in self.cells:
                out.append("/" + n.strip("/"))
            elif "-quiet" not in opts:
                raise StubError(f"no cell {n}")
        return out

    def _get_pins(self, args, intf):
        opts, pos = self._opts(args, flags=("-quiet",), valued=("-of_objects",))
        names = [p for a in pos for p in self.split(a)]
        out = []
        for n in names:
            try:
                (self._intf if intf else self._pin)(n)
                out.append(self._abs(n))
            except StubError:
                if "-quiet" not in opts:
                    raise
        return out

    def _cmd_get_bd_pins(self, args):
        return self._get_pins(args, False)

    def _cmd_get_bd_intf_pins(self, args):
        return self._get_pins(args, True)

    def _cmd_connect_bd_net(self, args):
        self._need_bd()
        _, pos = self._opts(args, valued=("-net",))
        pins = [p for a in pos for p in self.split(a)]
        if len(pins) < 2:
            raise StubError(f"a net needs two or more pins, got {pins}")
        merged = set()
        for p in pins:
            self._pin(p)
            merged |= self.net_of(p) or {self._abs(p)}
        self.nets = [n for n in self.nets if not (n & merged)]
        drivers = [p for p in merged if self._pin(p)[1].dir == "O"]
        if len(drivers) != 1:
            raise StubError(f"a net needs exactly one driver; {sorted(merged)} has {sorted(drivers)}")
        self.nets.append(merged)
        self.bd["validated"] = False

    def _cmd_connect_bd_intf_net(self, args):
        self._need_bd()
        _, pos = self._opts(args, flags=("-boundary_type",))
        pins = [p for a in pos for p in self.split(a)]
        if len(pins) != 2:
            raise StubError(f"an interface net joins two interfaces, got {pins}")
        a, b = self._intf(pins[0])[1], self._intf(pins[1])[1]
        if {a.mode, b.mode} != {"Master", "Slave"}:
            raise StubError(f"{pins}: needs a master and a slave ({a.mode}, {b.mode})")
        if a.protocol != b.protocol:
            raise StubError(f"{pins}: {a.protocol} vs {b.protocol}")
        for p in pins:
            if self.intf_peer(p) is not None:
                raise StubError(f"{p} is already connected")
        m, s = (pins[0], pins[1]) if a.mode == "Master" else (pins[1], pins[0])
        self.intf_nets.append((self._abs(m), self._abs(s)))
        self.bd["validated"] = False

    def _cmd_get_bd_addr_spaces(self, args):
        opts, pos = self._opts(args, flags=("-quiet",), valued=("-of_objects",))
        names = [p for a in pos for p in self.split(a)]
        out = []
        for n in names:
            if self._abs(n) in self._spaces():
                out.append(self._abs(n))
            elif "-quiet" not in opts:
                raise StubError(f"no address space {n}")
        return out

    def _cmd_get_bd_addr_segs(self, args):
        opts, pos = self._opts(args, flags=("-quiet", "-addressables", "-excluded"), valued=("-of_objects",))
        if "-addressables" in opts:
            spaces = self.split(opts.get("-of_objects", ""))
            if len(spaces) != 1 or self._abs(spaces[0]) not in self._spaces():
                raise StubError("-addressables -of_objects <one address space>")
            return self._reachable(self._abs(spaces[0]))
        if "-of_objects" in opts:
            raise StubError("the stub knows -of_objects only with -addressables")
        segs = self._all_slave_segs()
        out = []
        for n in [p for a in pos for p in self.split(a)]:
            if self._abs(n) in segs:
                out.append(self._abs(n))
            elif "-quiet" not in opts:
                raise StubError(f"no address segment {n}")
        return out

    def _cmd_assign_bd_address(self, args):
        self._need_bd()
        opts, pos = self._opts(args, flags=("-force", "-quiet", "-export_to_file"),
                               valued=("-offset", "-range", "-target_address_space"))
        segs = [p for a in pos for p in self.split(a)]
        if not segs or "-target_address_space" not in opts:
            raise StubError("the stub wants explicit assignments: -target_address_space <space> <segment>")
        space = self._abs(opts["-target_address_space"])
        all_segs = self._all_slave_segs()
        for seg in segs:
            seg = self._abs(seg)
            if seg not in all_segs:
                raise StubError(f"no slave segment {seg}")
            if seg not in self._reachable(space):
                raise StubError(f"{seg} is not addressable from {space}")
            fixed, largest = all_segs[seg][2]
            offset = parse_size(opts["-offset"]) if "-offset" in opts else (fixed or 0)
            rng = parse_size(opts["-range"]) if "-range" in opts else largest
            if rng & (rng - 1) or rng < 4 * K or rng > largest:
                raise StubError(f"{seg}: range {rng:#x} (power of two, 4K .. {largest:#x})")
            if offset % rng:
                raise StubError(f"{seg}: offset {offset:#x} is not aligned to its range {rng:#x}")
            if fixed is not None and offset != fixed:
                raise StubError(f"{seg} is at {fixed:#x}, not {offset:#x}")
            for (sp, other), (o, r) in self.assigned.items():
                if sp == space and other != seg and offset < o + r and o < offset + rng:
                    raise StubError(f"{seg} at {offset:#x}+{rng:#x} overlaps {other} in {space}")
            if (space, seg) in self.assigned and "-force" not in opts:
                raise StubError(f"{seg} is already assigned in {space}")
            self.assigned[(space, seg)] = (offset, rng)
            self.excluded.discard((space, seg))

    def _cmd_exclude_bd_addr_seg(self, args):
        self._need_bd()
        opts, pos = self._opts(args, valued=("-target_address_space", "-offset", "-range"))
        if "-target_address_space" not in opts or len(pos) != 1:
            raise StubError("exclude_bd_addr_seg -target_address_space <space> <slave segment>")
        space, seg = self._abs(opts["-target_address_space"]), self._abs(pos[0])
        if seg not in self._reachable(space):
            raise StubError(f"{seg} is not addressable from {space}")
        self.assigned.pop((space, seg), None)
        self.excluded.add((space, seg))

    def _cmd_validate_bd_design(self, args):
        self._need_bd()
        self._opts(args, flags=("-force",))
        problems = []
        connected = set().union(*self.nets) if self.nets else set()
        intf_connected = {p for net in self.intf_nets for p in net}
        for c in self.cells.values():
            for p in c.pins().values():
                if p.required and f"/{c.name}/{p.name}" not in connected:
                    problems.append(f"input pin /{c.name}/{p.name} is not connected")
            for ip in c.intf_pins().values():
                path = f"/{c.name}/{ip.name}"
                if c.ip in ("smartconnect", "module") and path not in intf_connected:
                    problems.append(f"interface {path} is not connected")
            if c.ip == "processing_system7" and not c.automated:
                problems.append(f"/{c.name}: DDR and FIXED_IO are not external (no PS automation)")
            if c.ip == "axi_dma":
                for mm, st in (("c_m_axi_mm2s_data_width", "c_m_axis_mm2s_tdata_width"),
                               ("c_m_axi_s2mm_data_width", "c_s_axis_s2mm_tdata_width")):
                    if int(c.config[st]) > int(c.config[mm]):
                        problems.append(f"/{c.name}: {st} {c.config[st]} > {mm} {c.config[mm]}")
        ps_hz = self._ps_hz() if any(c.ip in AUTOMATION for c in self.cells.values()) else None
        for m, s in self.intf_nets:
            (cm, im), (cs, is_) = self._intf(m), self._intf(s)
            if im.protocol == "axis" and im.width != is_.width:
                problems.append(f"AXI-Stream width {m} ({im.width}) != {s} ({is_.width})")
            for c, ip in ((cm, im), (cs, is_)):
                if c.ip == "module" and c.pin_props.get(ip.name, "100000000") != ps_hz:
                    problems.append(f"[BD 41-237] FREQ_HZ of /{c.name}/{ip.name} "
                                    f"({c.pin_props.get(ip.name, '100000000')}) != {ps_hz}")
        for net in self.nets:
            driver = next(p for p in net if self._pin(p)[1].dir == "O")
            dc, dp = self._pin(driver)
            for p in net:
                c, pin = self._pin(p)
                if c.ip == "module" and pin.kind == "clk" and dc.ip in AUTOMATION and dp.kind == "clk":
                    if c.pin_props.get(pin.name, "100000000") != ps_hz:
                        problems.append(f"[BD 41-238] FREQ_HZ of {p} != {ps_hz}")
        for space in self._spaces():
            for seg in self._reachable(space):
                if (space, seg) not in self.assigned and (space, seg) not in self.excluded:
                    problems.append(f"{seg} is neither assigned into nor excluded from {space}")
        if problems:
            raise StubError("; ".join(problems))
        self.bd["validated"] = True

    def _cmd_save_bd_design(self, args):
        self._need_bd()
        self._opts(args)
        self.bd["saved"] = True

    def _bd_gen_dir(self) -> Path:
        p = self.project
        return p["dir"] / f"{p['name']}.gen" / "sources_1" / "bd" / self.bd["name"]

    def _need_bd_file(self, name):
        self._need_bd()
        if self.split(name) != [str(self.bd["file"])]:
            raise StubError(f"{name} is not the block design file {self.bd['file']}")
        if not (self.bd["validated"] and self.bd["saved"]):
            raise StubError("the block design is not validated and saved")

    def _cmd_generate_target(self, args):
        _, pos = self._opts(args)
        if len(pos) != 2 or pos[0] not in ("all", "synthesis", "implementation"):
            raise StubError("generate_target all <bd file>")
        self._need_bd_file(pos[1])
        hwh = self._bd_gen_dir() / "hw_handoff" / f"{self.bd['name']}.hwh"
        hwh.parent.mkdir(parents=True, exist_ok=True)
        hwh.write_text(f"<hwh stub of {self.bd['name']} for {self.project['part']}/>\n")
        self.bd["generated"].append(hwh)

    def _cmd_make_wrapper(self, args):
        opts, pos = self._opts(args, flags=("-top", "-import", "-force"), valued=("-files", "-fileset"))
        if pos or "-files" not in opts:
            raise StubError("make_wrapper -files <bd file> -top")
        self._need_bd_file(opts["-files"])
        wrapper = self._bd_gen_dir() / "hdl" / f"{self.bd['name']}_wrapper.v"
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(f"module {self.bd['name']}_wrapper ();\nendmodule\n")
        self.bd["generated"].append(wrapper)
        return str(wrapper)

    # -- runs and timing -----------------------------------------------------------------------
    def _cmd_get_runs(self, args):
        opts, pos = self._opts(args, flags=("-quiet",))
        names = [p for a in pos for p in self.split(a)]
        for n in names:
            if n not in self.runs:
                raise StubError(f"no run {n}")
        return names

    def _cmd_launch_runs(self, args):
        self._need_project()
        opts, pos = self._opts(args, flags=("-force",), valued=("-jobs", "-to_step", "-next_step"))
        if len(pos) != 1 or pos[0] not in self.runs:
            raise StubError(f"launch_runs <run>, got {pos}")
        if not opts.get("-jobs", "1").isdigit():
            raise StubError("-jobs needs a number")
        run = pos[0]
        top = self.fileset_props["sources_1"].get("top")
        tops = [f for f, v in self.files.items() if v["fileset"] == "sources_1" and Path(f).suffix in (".v", ".sv")
                and re.search(rf"^\s*module\s+{re.escape(top or '')}\b", Path(f).read_text(), re.M)]
        if not top or len(tops) != 1:
            raise StubError(f"the top {top!r} is not a module of one source file")
        if run == "impl_1" and self.runs["synth_1"]["progress"] != "100%":
            raise StubError("synth_1 has not completed")
        step = opts.get("-to_step", "route_design")
        if run == "impl_1" and step not in ("route_design", "write_bitstream"):
            raise StubError(f"-to_step {step}")
        state = self.runs[run]
        state["launched"] = True
        state["dir"].mkdir(parents=True, exist_ok=True)
        if run == self.failing_run:
            state.update(status=("synth_design" if run == "synth_1" else "place_design") + " ERROR",
                         progress="33%")
        elif run == "synth_1":
            state.update(status="synth_design Complete!", progress="100%")
        else:
            state.update(status=f"{step} Complete!", progress="100%")
            if step == "write_bitstream":
                (state["dir"] / f"{top}.bit").write_bytes(f"stub bitstream of {top}\n".encode())

    def _cmd_wait_on_run(self, args):
        _, pos = self._opts(args, valued=("-timeout",))
        if len(pos) != 1 or pos[0] not in self.runs or not self.runs[pos[0]]["launched"]:
            raise StubError(f"{pos}: not a launched run")

    def _cmd_open_run(self, args):
        _, pos = self._opts(args, valued=("-name",))
        if len(pos) != 1 or pos[0] not in self.runs:
            raise StubError(f"open_run <run>, got {pos}")
        if self.runs[pos[0]]["progress"] != "100%":
            raise StubError(f"run {pos[0]} has not completed")
        self.open_design = pos[0]
        return pos[0]

    def _report(self, args, flags, valued, what):
        if self.open_design != "impl_1":
            raise StubError("no implemented design open")
        opts, pos = self._opts(args, flags=flags, valued=valued + ("-file",))
        if pos or "-file" not in opts:
            raise StubError(f"{what} -file <path>, got {pos}")
        path = Path(opts["-file"])
        if not path.is_absolute() or not path.parent.is_dir():
            raise StubError(f"-file {path}: not an absolute path in an existing folder")
        path.write_text(f"stub {what} of {self.project['name']}: WNS {self.wns:.3f}\n")

    def _cmd_report_timing_summary(self, args):
        self._report(args, ("-report_unconstrained", "-warn_on_violation"),
                     ("-delay_type", "-max_paths"), "report_timing_summary")

    def _cmd_report_utilization(self, args):
        self._report(args, ("-hierarchical",), (), "report_utilization")

    def _cmd_get_timing_paths(self, args):
        if self.open_design is None:
            raise StubError("no open design")
        opts, pos = self._opts(args, flags=("-setup", "-hold"), valued=("-max_paths", "-nworst", "-delay_type"))
        if pos or ("-setup" in opts) == ("-hold" in opts):
            raise StubError("the stub wants exactly one of -setup, -hold")
        return ["timing_path_setup" if "-setup" in opts else "timing_path_hold"]
