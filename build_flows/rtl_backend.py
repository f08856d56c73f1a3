"""HW graph -> RTL: one stage per layer, FIFOs between, one stitched top.

Mapping (the whole story of a layer: hw/<module>.sv, this table, tests/):
  MVAU                                 -> hw/mvtu.sv (XNOR or int x bipolar)
  ConvolutionInputGenerator + Pool     -> hw/maxpool_bin.sv (binary max-pool)
  ConvolutionInputGenerator (conv)     -> FINN's ConvolutionInputGenerator_rtl
  StreamingDataWidthConverter          -> FINN's StreamingDataWidthConverter_rtl
  LabelSelect                          -> hw/label_select.sv
  (between every two stages)           -> hw/axis_fifo.sv
FINN's generators run through their own generate_hdl; their wrappers have
ap_clk / ap_rst_n / in0_V / out0_V ports with byte-padded tdata.

Every stream is the flattened NHWC tensor of the HW graph, `lanes` elements of
`elem_bits` bits per beat, element 0 in the low bits.
"""

from __future__ import annotations

import copy
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from build_flows import rtl_params
from build_flows.build_errors import UnsupportedLayerError
from build_flows.folding import layer_cycles

REPO = Path(__file__).resolve().parent.parent
HW_DIR = REPO / "hw"
TOP_TEMPLATE = REPO / "templates" / "stitched_top.v.j2"
TOP = "sdbnn_top"


@dataclass
class Stage:
    """One module instance of the stitched chain."""

    name: str  # instance name (HW node name, or fifo_<i>)
    op: str  # FINN op type, "MaxPool" for SWG + Pool, "FIFO"
    module: str  # Verilog module
    params: dict  # module parameters
    sources: list[Path]  # RTL files (deduplicated by file name when stitched)
    in_width: int  # logical tdata bits of the input stream
    out_width: int  # logical tdata bits of the output stream
    style: str = "ours"  # "ours": clk/rst/s_axis/m_axis, "finn": ap_clk/ap_rst_n/in0_V/out0_V
    in_port: int = 0  # port width (FINN pads to bytes); 0 = in_width
    out_port: int = 0
    mem_files: dict[str, str] = field(default_factory=dict)
    in_tensor: str = ""  # HW-graph tensor streamed in (golden input)
    out_tensor: str = ""  # HW-graph tensor streamed out (golden output)
    in_elem_bits: int = 1
    out_elem_bits: int = 1
    pe: int = 0  # folding, for the report (0 = n/a)
    simd: int = 0
    expected_cycles: int = 0  # analytic cycles per frame
    depth: int = 0  # FIFO depth (FIFO stages only)
    finn_resources: dict = field(default_factory=dict)  # FINN's estimate (FINN generators)

    def __post_init__(self):
        self.in_port = self.in_port or self.in_width
        self.out_port = self.out_port or self.out_width


def _dtype_bits(dt: DataType) -> int:
    return dt.bitwidth()


def mvau_stage(model: ModelWrapper, node) -> Stage:
    inst = getCustomOp(node)
    mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
    idt, wdt = inst.get_input_datatype(0), inst.get_input_datatype(1)
    w = model.get_initializer(node.input[1]).T  # FINN (MW, MH) -> (MH, MW)
    no_act = inst.get_nodeattr("noActivation") == 1
    thr = None if no_act else model.get_initializer(node.input[2])
    if thr is not None and thr.shape[0] == 1 and mh > 1:
        thr = np.broadcast_to(thr, (mh, thr.shape[1]))
    xnor = inst.get_nodeattr("binaryXnorMode") == 1
    if not xnor and idt in (DataType["BINARY"], DataType["BIPOLAR"]):
        raise UnsupportedLayerError(f"layer {node.name} (MVAU): binary input without XNOR mode "
                                    "is not supported")
    if xnor:
        mode, w_width = "xnor", 1
    elif wdt == DataType["BIPOLAR"]:
        mode, w_width = "int_bipolar", 1
    elif wdt.is_integer() and wdt.signed() and 2 <= wdt.bitwidth() <= 8:
        mode, w_width = "int_int", wdt.bitwidth()  # few-bit first / last layers
    else:
        raise UnsupportedLayerError(f"layer {node.name} (MVAU): {wdt.name} weights on integer "
                                    "input; the MVTU takes bipolar or signed 2..8-bit weights")
    cfg = rtl_params.MVTUConfig(
        mw=mw, mh=mh, simd=inst.get_nodeattr("SIMD"), pe=inst.get_nodeattr("PE"),
        mode=mode, in_width=1 if xnor else _dtype_bits(idt),
        in_signed=False if xnor else idt.signed(), w_width=w_width,
        n_thres=0 if no_act else thr.shape[1]).validate()
    files = cfg.mem_files(w, thr)
    wname, tname = f"{node.name}_weights.mem", f"{node.name}_thresholds.mem"
    params = cfg.verilog_params()
    params.update(WEIGHT_FILE=wname, THRESH_FILE=tname)
    params.pop("OUT_WIDTH", None)
    return Stage(node.name, "MVAU", "mvtu", params,
                 [HW_DIR / "mvtu.sv", HW_DIR / "axis_skid.sv"],
                 cfg.in_beat_width, cfg.out_beat_width,
                 mem_files={wname: files["weights.mem"], tname: files["thresholds.mem"]},
                 in_tensor=node.input[0], out_tensor=node.output[0],
                 in_elem_bits=cfg.in_width, out_elem_bits=cfg.out_width,
                 pe=cfg.pe, simd=cfg.simd, expected_cycles=layer_cycles(model, node))


def maxpool_stage(model: ModelWrapper, swg_node, pool_node) -> Stage:
    swg, pool = getCustomOp(swg_node), getCustomOp(pool_node)
    k, s = list(swg.get_nodeattr("ConvKernelDim")), list(swg.get_nodeattr("Stride"))
    dt = pool.get_input_datatype()
    if pool.get_nodeattr("Function") != "MaxPool" or k[0] != k[1] or k != s or dt.bitwidth() != 1:
        raise UnsupportedLayerError(
            f"layer {pool_node.name} (Pool {pool.get_nodeattr('Function')}, kernel {k}, stride {s}, "
            f"{dt.name}): only binary max-pool with square kernel = stride is supported")
    h, w = swg.get_nodeattr("IFMDim")
    cfg = rtl_params.MaxPoolConfig(ifm_h=h, ifm_w=w, c=swg.get_nodeattr("IFMChannels"),
                                   simd=pool.get_nodeattr("PE"), k=k[0]).validate()
    return Stage(pool_node.name, "MaxPool", "maxpool_bin", cfg.verilog_params(),
                 [HW_DIR / "maxpool_bin.sv", HW_DIR / "axis_skid.sv"], cfg.simd, cfg.simd,
                 in_tensor=swg_node.input[0], out_tensor=pool_node.output[0],
                 simd=cfg.simd, expected_cycles=layer_cycles(model, pool_node))


def labelselect_stage(model: ModelWrapper, node, val_width: int) -> Stage:
    inst = getCustomOp(node)
    idt = inst.get_input_datatype()
    cfg = rtl_params.LabelSelectConfig(mh=inst.get_nodeattr("Labels"), pe=inst.get_nodeattr("PE"),
                                       val_width=val_width, signed=idt.signed(),
                                       k=inst.get_nodeattr("K")).validate()
    return Stage(node.name, "LabelSelect", "label_select", cfg.verilog_params(),
                 [HW_DIR / "label_select.sv"], cfg.pe * val_width, cfg.idx_width,
                 in_tensor=node.input[0], out_tensor=node.output[0],
                 in_elem_bits=val_width, out_elem_bits=cfg.idx_width, pe=cfg.pe,
                 expected_cycles=layer_cycles(model, node))


def finn_rtl_stage(model: ModelWrapper, node, gen_dir: Path, fpgapart: str, clk_ns: float) -> Stage:
    """A node implemented by FINN's own RTL generator (sliding window, DWC)."""
    rtl = copy.deepcopy(node)
    rtl.domain = "finn.custom_op.fpgadataflow.rtl"
    rtl.op_type = node.op_type + "_rtl"
    inst = getCustomOp(rtl)
    code_dir = gen_dir / node.name
    code_dir.mkdir(parents=True, exist_ok=True)
    inst.set_nodeattr("code_gen_dir_ipgen", str(code_dir))
    inst.generate_hdl(model, fpgapart, clk_ns)
    in_w, out_w = inst.get_instream_width(), inst.get_outstream_width()
    pad = lambda b: int(math.ceil(b / 8) * 8)  # noqa: E731
    if node.op_type == "StreamingDataWidthConverter":
        in_port, out_port, simd = pad(in_w), pad(out_w), 0
        cycles = max(int(np.prod(inst.get_folded_input_shape()[:-1])),
                     int(np.prod(inst.get_folded_output_shape()[:-1])))
    else:
        in_port, out_port, simd = pad(in_w), pad(out_w), inst.get_nodeattr("SIMD")
        cycles = int(inst.get_exp_cycles())
    bits = inst.get_input_datatype().bitwidth()
    res = {"LUT": int(inst.lut_estimation(fpgapart)), "FF": 0,
           "BRAM36": round(inst.bram_estimation(fpgapart) / 2, 1), "DSP": 0}
    return Stage(node.name, node.op_type, inst.get_nodeattr("gen_top_module"), {},
                 [Path(p) for p in inst.get_rtl_file_list(abspath=True)], in_w, out_w,
                 style="finn", in_port=in_port, out_port=out_port,
                 in_tensor=node.input[0], out_tensor=node.output[0],
                 in_elem_bits=bits, out_elem_bits=bits, simd=simd, expected_cycles=cycles,
                 finn_resources=res)


def map_to_rtl(model: ModelWrapper, gen_dir: Path, fpgapart: str, clk_ns: float) -> list[Stage]:
    """One Stage per layer of the (folded, DWC-inserted) HW graph, in order."""
    stages: list[Stage] = []
    nodes = list(model.graph.node)
    for i, node in enumerate(nodes):
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        if node.op_type == "ConvolutionInputGenerator":
            if nxt is not None and nxt.op_type == "Pool":
                continue  # mapped together with its Pool
            if getCustomOp(node).get_nodeattr("depthwise"):
                raise UnsupportedLayerError(f"layer {node.name}: depthwise window without a Pool")
            stages.append(finn_rtl_stage(model, node, gen_dir, fpgapart, clk_ns))
        elif node.op_type == "StreamingDataWidthConverter":
            stages.append(finn_rtl_stage(model, node, gen_dir, fpgapart, clk_ns))
        elif node.op_type == "Pool":
            stages.append(maxpool_stage(model, nodes[i - 1], node))
        elif node.op_type == "MVAU":
            stages.append(mvau_stage(model, node))
        elif node.op_type == "LabelSelect":
            prev = stages[-1]
            stages.append(labelselect_stage(model, node, prev.out_elem_bits))
        else:
            raise UnsupportedLayerError(f"unsupported layer {node.name} ({node.op_type}): no RTL")
    return insert_dwcs(stages, model, gen_dir, fpgapart, clk_ns)


def insert_dwcs(stages: list[Stage], model: ModelWrapper, gen_dir: Path, fpgapart: str,
                clk_ns: float) -> list[Stage]:
    """A FINN StreamingDataWidthConverter_rtl wherever a producer's beat width
    differs from its consumer's (FINN's InsertDWC fails on un-specialised
    sliding windows in finn-plus 1.6.1, so we insert them here)."""
    from onnx import helper

    out = [stages[0]]
    for b in stages[1:]:
        a = out[-1]
        if a.out_width != b.in_width:
            bits = a.out_elem_bits
            numel = int(np.prod(model.get_tensor_shape(a.out_tensor)))
            node = helper.make_node(
                "StreamingDataWidthConverter", [a.out_tensor], [a.out_tensor + "_dwc"],
                domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
                name=f"DWC_{a.name}", inShape=[1, numel], outShape=[1, numel],
                inWidth=a.out_width, outWidth=b.in_width,
                dataType="BINARY" if bits == 1 else f"UINT{bits}")
            dwc = finn_rtl_stage(model, node, gen_dir, fpgapart, clk_ns)
            dwc.in_tensor = dwc.out_tensor = a.out_tensor
            dwc.in_elem_bits = dwc.out_elem_bits = bits
            out.append(dwc)
        out.append(b)
    return out


def with_fifos(layers: list[Stage], depths: list[int]) -> list[Stage]:
    """layers with an axis_fifo of depths[i] between layer i and i+1."""
    chain = [layers[0]]
    for i, (layer, depth) in enumerate(zip(layers[1:], depths)):
        w = chain[-1].out_width
        cfg = rtl_params.FIFOConfig(data_width=w, depth=max(2, depth)).validate()
        chain.append(Stage(f"fifo_{i}", "FIFO", "axis_fifo", cfg.verilog_params(),
                           [HW_DIR / "axis_fifo.sv"], w, w, depth=cfg.depth,
                           in_tensor=chain[-1].out_tensor, out_tensor=chain[-1].out_tensor,
                           in_elem_bits=chain[-1].out_elem_bits,
                           out_elem_bits=chain[-1].out_elem_bits))
        chain.append(layer)
    return chain


def render_top(chain: list[Stage], occupancy_file: str | None = None) -> str:
    """The stitched top (templates/stitched_top.v.j2). With occupancy_file, it
    also tracks the largest occupancy of every FIFO and writes them there at
    the end of simulation (one "name max" line per FIFO)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    return env.from_string(TOP_TEMPLATE.read_text()).render(
        top=TOP, stages=chain, in_width=chain[0].in_width, out_width=chain[-1].out_width,
        occupancy_file=occupancy_file)


def collect_sources(chain: list[Stage], rtl_dir: Path, top_text: str) -> list[Path]:
    """Copy every source and the top into rtl_dir; packages first."""
    rtl_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    for st in chain:
        for src in st.sources:
            if src.name not in seen:
                dst = rtl_dir / src.name
                if src.resolve() != dst.resolve():
                    shutil.copyfile(src, dst)
                seen[src.name] = dst
    top = rtl_dir / f"{TOP}.sv"
    top.write_text(top_text)
    files = sorted(seen.values(), key=lambda p: (not p.name.endswith("_pkg.sv"), p.name))
    return files + [top]


def mem_files(chain: list[Stage]) -> dict[str, str]:
    out: dict[str, str] = {}
    for st in chain:
        out.update(st.mem_files)
    return out
