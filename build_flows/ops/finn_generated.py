"""Layers built by finn-plus' own RTL generators, through their generate_hdl:
the sliding window (ConvolutionInputGenerator_rtl) of a convolution and the
data width converter (StreamingDataWidthConverter_rtl) that we insert wherever
a producer's beat is not its consumer's. Their wrappers have ap_clk / ap_rst_n
/ in0_V / out0_V ports with byte-padded tdata; cycles and resources are
FINN's own formulas and estimates.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from onnx import helper
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import FoldingError, UnsupportedLayerError
from build_flows.ops.base import MapContext, OpKind, can_go_parallel, describe, finn_inst
from build_flows.rtl.graph import Stage, StageGraph, stream_stage


# the AXI-Lite inputs of FINN's wrappers (run-time parameters), unused here
AXILITE_TIES = {"s_axilite_AWVALID": "1'b0", "s_axilite_AWADDR": "'0", "s_axilite_WVALID": "1'b0",
                "s_axilite_WDATA": "'0", "s_axilite_WSTRB": "'0", "s_axilite_BREADY": "1'b0",
                "s_axilite_ARVALID": "1'b0", "s_axilite_ARADDR": "'0", "s_axilite_RREADY": "1'b0"}


def _pad(bits: int) -> int:
    return int(math.ceil(bits / 8) * 8)


def generated_stage(model, node, ctx: MapContext, op: str, cycles_of) -> Stage:
    """Run FINN's generator of `node` into ctx.gen_dir/<name>; the stage of its wrapper."""
    inst = finn_inst(node, "rtl")
    code_dir = ctx.gen_dir / node.name
    code_dir.mkdir(parents=True, exist_ok=True)
    inst.set_nodeattr("code_gen_dir_ipgen", str(code_dir))
    inst.generate_hdl(model, ctx.part, ctx.clk_ns)
    in_w, out_w = inst.get_instream_width(), inst.get_outstream_width()
    bits = inst.get_input_datatype().bitwidth()
    signed = inst.get_input_datatype().signed()
    res = {"LUT": int(inst.lut_estimation(ctx.part)), "FF": 0,
           "BRAM36": round(inst.bram_estimation(ctx.part) / 2, 1), "DSP": 0}
    simd = inst.get_nodeattr("SIMD") if "SIMD" in inst.get_nodeattr_types() else 0
    return stream_stage(node.name, op, inst.get_nodeattr("gen_top_module"), {},
                        [Path(p) for p in inst.get_rtl_file_list(abspath=True)], in_w, out_w,
                        bits, bits, node.input[0], node.output[0], style="finn",
                        in_padded=_pad(in_w), out_padded=_pad(out_w), in_signed=signed,
                        out_signed=signed, simd=simd,
                        expected_cycles=cycles_of(inst), finn_resources=res)


class SlidingWindow(OpKind):
    """A convolution's sliding window; a depthwise window in front of a Pool
    is part of the max-pool stage (ops/maxpool.py). Its SIMD is set by the
    MVAU it feeds."""

    finn_impl = "rtl"
    name = "ConvolutionInputGenerator"
    hw_ops = ("ConvolutionInputGenerator",)
    fold_attrs = {"ConvolutionInputGenerator": ("SIMD", "parallel_window")}

    def absorbed(self, model, node):
        from build_flows.ops.maxpool import absorbs_window
        nxt = model.find_consumer(node.output[0])
        return nxt is not None and nxt.op_type == "Pool" and absorbs_window(model, nxt)

    def check(self, model, node, index, count):
        inst = getCustomOp(node)
        # FINN's RTL window for 1x1 kernels (its "parallel" style) fails to generate
        # ("math domain error") or streams wrong pixels (a fuzzer find) when a
        # strided 1x1 window leaves one output row or column
        if (list(inst.get_nodeattr("ConvKernelDim")) == [1, 1]
                and list(inst.get_nodeattr("Stride")) != [1, 1]
                and 1 in list(inst.get_nodeattr("OFMDim"))):
            h, w = inst.get_nodeattr("IFMDim")
            oh, ow = inst.get_nodeattr("OFMDim")
            raise UnsupportedLayerError(
                f"layer {describe(node)}: a strided 1x1 convolution that leaves {oh}x{ow} output "
                f"pixels of its {h}x{w} feature map (one row or column): FINN's RTL sliding window "
                "cannot generate it; use stride 1 there")
        nxt = model.find_consumer(node.output[0])
        if inst.get_nodeattr("depthwise") and (nxt is None or nxt.op_type != "Pool"):
            raise UnsupportedLayerError(
                f"layer {node.name}: a depthwise convolution ({nxt.name if nxt is not None else 'none'} "
                "after this window) is not supported; only max-pools use a depthwise window")

    def cycles(self, model, node):
        # FINN's estimate for its RTL window (the stage's expected cycles too): the
        # folding search and the throughput cap count the window like any layer
        if self.absorbed(model, node):
            return 0  # the max-pool stage's cycles cover it
        return int(finn_inst(node, "rtl").get_exp_cycles())

    def cap_reason(self, model, node):
        inst = getCustomOp(node)
        simd, ch = inst.get_nodeattr("SIMD"), inst.get_nodeattr("IFMChannels")
        if inst.get_nodeattr("parallel_window"):
            return ("the parallel window, one window a beat: it reads one pixel of its "
                    f"{ch} channel(s) a cycle")
        if simd >= ch and not can_go_parallel(node):
            return (f"SIMD={simd} of its {ch} input channel(s): the window streams at most one "
                    "pixel's channels per beat, and the parallel form is built only for stride-1 "
                    "windows larger than 1x1")
        return f"SIMD={simd} of {ch} input channels, set by the layer it feeds"

    def check_folding(self, model, node):
        inst = getCustomOp(node)
        if inst.get_nodeattr("parallel_window"):
            if self.absorbed(model, node) or not can_go_parallel(node):
                raise FoldingError(
                    f"layer {node.name}: parallel_window=1 is built only for a convolution's "
                    "window larger than 1x1 with stride 1 and no dilation (not a max-pool's, a "
                    "1x1 or a strided one); set it to 0")
            if inst.get_nodeattr("SIMD") != inst.get_nodeattr("IFMChannels"):
                raise FoldingError(
                    f"layer {node.name}: parallel_window=1 needs SIMD = its "
                    f"{inst.get_nodeattr('IFMChannels')} input channels, not "
                    f"SIMD={inst.get_nodeattr('SIMD')}")

    def stage(self, model, node, ctx):
        st = generated_stage(model, node, ctx, self.name, lambda inst: int(inst.get_exp_cycles()))
        inst = getCustomOp(node)
        if inst.get_nodeattr("depthwise"):
            # beats in (C/SIMD, KH*KW, SIMD) order per pixel, FINN's tensor in (KH*KW, C)
            kh, kw = inst.get_nodeattr("ConvKernelDim")
            c, simd = inst.get_nodeattr("IFMChannels"), inst.get_nodeattr("SIMD")
            st.outputs[0].reorder = ((kh * kw, c // simd, simd), (1, 0, 2))
        return st

    def execute(self, model, node, x):
        from build_flows.sim.executor import im2col
        inst = getCustomOp(node)
        return im2col(x, inst.get_nodeattr("ConvKernelDim"), inst.get_nodeattr("Stride"),
                      inst.get_nodeattr("Dilation"))


def _dwc_cycles(inst) -> int:
    return max(int(np.prod(inst.get_folded_input_shape()[:-1])),
               int(np.prod(inst.get_folded_output_shape()[:-1])))


class WidthConverter(OpKind):
    """FINN's InsertDWC fails on un-specialised sliding windows in finn-plus
    1.6.1, so converters are inserted here, on the stage graph."""

    finn_impl = "rtl"
    name = "StreamingDataWidthConverter"
    hw_ops = ("StreamingDataWidthConverter",)

    def stage(self, model, node, ctx):
        return generated_stage(model, node, ctx, self.name, _dwc_cycles)

    def execute(self, model, node, x):
        return x  # it only regroups the stream

    def insert(self, graph: StageGraph, model, ctx: MapContext) -> None:
        """A converter on every internal edge whose two ends have different
        beats; two in a row where one would regroup more than MAX_RATIO
        elements (Verilator 5.48 fails on FINN's converter beyond 256)."""
        for edge in list(graph.internal_edges()):
            a, b = graph.src_port(edge), graph.dst_port(edge)
            if a.width == b.width:
                continue
            widths = [a.width, *self._intermediate(a.width, b.width), b.width]
            base = f"DWC_{edge.src}"
            for k, (w_in, w_out) in enumerate(zip(widths, widths[1:])):
                name = base + (f"_{k}" if len(widths) > 2 else "")
                dwc = self._converter(model, ctx, name, a, edge.numel, w_in, w_out)
                graph.insert_after(edge, dwc)
                edge = graph.out_edge(dwc.name)

    MAX_RATIO = 256

    def _intermediate(self, w_in: int, w_out: int) -> list[int]:
        """A middle width that splits a too large regrouping into two, or []."""
        small, big = sorted((w_in, w_out))
        if big // math.gcd(small, big) <= self.MAX_RATIO or big % small:
            return []
        ratio = big // small
        d = next((d for d in range(2, ratio) if ratio % d == 0 and d <= self.MAX_RATIO
                  and ratio // d <= self.MAX_RATIO), None)
        return [] if d is None else [small * d if w_in < w_out else big // d]

    def _converter(self, model, ctx, name: str, port, numel: int, w_in: int, w_out: int):
        bits = port.elem_bits
        node = helper.make_node(
            "StreamingDataWidthConverter", [port.tensor], [port.tensor + "_dwc"],
            domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
            name=name, inShape=[1, numel], outShape=[1, numel], inWidth=w_in, outWidth=w_out,
            dataType="BINARY" if bits == 1 else f"UINT{bits}")
        dwc = self.stage(model, node, ctx)
        for p in (*dwc.inputs, *dwc.outputs):
            p.tensor, p.elem_bits, p.signed = port.tensor, bits, port.signed
        return dwc
