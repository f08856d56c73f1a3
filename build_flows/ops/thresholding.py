"""Thresholding -> FINN's RTL thresholding unit (Thresholding_rtl, a binary
search over the sorted thresholds of each channel), for a MultiThreshold that
does not fuse into an MVAU: the input binarisation of FINN's TFC/SFC/LFC
(UINT8 pixels -> BINARY), and any standalone requantiser between layers.

FINN's generator writes the wrapper and one `<node>_threshs_<pe>_<step>.dat`
file per PE lane and threshold bit, which the wrapper reads by a relative
path (the simulator's run folder, like our .mem files). Its AXI-Lite port
(runtime-writeable thresholds) and its second stream (threshold sets) are
tied off: thresholds are fixed at build time.

Folding rule: raise PE until the layer meets the target; PE divides the
channels. Cycles per frame: channels / PE per input vector (FINN's formula).
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import UnsupportedLayerError
from build_flows.ops.base import (MapContext, OpKind, describe)
from build_flows.ops.finn_generated import AXILITE_TIES, generated_stage

# inputs of FINN's wrapper that a build-time threshold unit does not use
TIES = {**AXILITE_TIES, "in1_V_TVALID": "1'b0", "in1_V_TDATA": "'0"}


class Thresholding(OpKind):
    finn_impl = "rtl"
    name = "Thresholding"
    hw_ops = ("Thresholding",)
    fold_attrs = {"Thresholding": ("PE",)}
    pe_divides = ("NumChannels", "NumChannels", "thresholding")

    def check(self, model, node, index, count):
        inst = getCustomOp(node)
        idt, odt = inst.get_input_datatype(0), inst.get_output_datatype()
        if not idt.is_integer() or idt.bitwidth() > 32:
            raise UnsupportedLayerError(f"layer {describe(node)} thresholds {idt.name} values: the "
                                        "threshold unit takes integers of at most 32 bits")
        if odt == DataType["BIPOLAR"] or not odt.is_integer():
            raise UnsupportedLayerError(f"layer {describe(node)} outputs {odt.name}: a standalone "
                                        "threshold unit here outputs BINARY or integer levels")
        thr = model.get_initializer(node.input[1])
        if thr is None or not (thr == np.round(thr)).all():
            raise UnsupportedLayerError(f"layer {describe(node)} has non-integer thresholds on "
                                        f"{idt.name} input: they cannot be compared exactly")

    def cycles(self, model, node):
        inst = getCustomOp(node)
        return (inst.get_nodeattr("NumChannels") // inst.get_nodeattr("PE")
                * int(np.prod(inst.get_nodeattr("numInputVectors"))))

    def execute(self, model, node, x):
        from build_flows.sim.executor import multithreshold
        inst = getCustomOp(node)
        bipolar = inst.get_output_datatype() == DataType["BIPOLAR"]
        return multithreshold(x, model.get_initializer(node.input[1]), 2 if bipolar else 1,
                              -1 if bipolar else inst.get_nodeattr("ActVal"))

    def stage(self, model, node, ctx: MapContext):
        st = generated_stage(model, node, ctx, self.name, lambda inst: self.cycles(model, node))
        inst = getCustomOp(node)
        out_bits = inst.get_output_datatype().bitwidth()
        st.outputs[0].elem_bits = out_bits
        st.outputs[0].width = inst.get_nodeattr("PE") * out_bits
        st.outputs[0].signed = inst.get_output_datatype().signed()
        st.pe = inst.get_nodeattr("PE")
        code_dir = ctx.gen_dir / node.name
        st.mem_files = {p.name: p.read_text() for p in sorted(code_dir.glob(f"{node.name}_threshs_*.dat"))}
        st.ties = dict(TIES)
        return st
