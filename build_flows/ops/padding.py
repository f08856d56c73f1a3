"""FMPadding -> FINN's RTL padding unit (FMPadding_rtl): a padded
convolution's border, streamed in front of its sliding window. It pads with
0 of the stream's datatype, as FINN's graph does.

That equals the model only on integer streams (a padded first layer: pixel 0
is the model's 0.0). On a binary stream FINN's graph pads with bit 0, i.e. -1,
while the exported model pads its {-1, +1} activations with 0.0, which no bit
encodes: the hardware would equal FINN's graph and differ from the model at
every border (the verification's check of the last layer's integers against
the model's logits shows it). So padding of binary activations is refused by
name until the MVTU corrects border pixels.

Folding: SIMD = the channels (FINN's default from InferConvInpGen), so the
unit is never the bottleneck; a width converter adapts it to the sliding
window's SIMD. Cycles per frame: FINN's formula, padded H x W x C / SIMD.
Its AXI-Lite port (run-time padding) is tied off.
"""

from __future__ import annotations

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import UnsupportedLayerError
from build_flows.ops.base import MapContext, OpKind, describe
from build_flows.ops.finn_generated import AXILITE_TIES, generated_stage


class Padding(OpKind):
    name = "FMPadding"
    hw_ops = ("FMPadding",)
    fold_attrs = {"FMPadding": ("SIMD",)}

    def check(self, model, node, index, count):
        inst = getCustomOp(node)
        if inst.get_input_datatype().bitwidth() == 1:
            conv = model.find_consumer(node.output[0])
            raise UnsupportedLayerError(
                f"layer {describe(node)} pads the binary input of "
                f"{conv.name if conv is not None else 'a convolution'}: the model pads its "
                "{-1, +1} activations with 0, which no bit encodes (FINN's graph would pad with "
                "-1 and differ from the model at every border); use padding=0 after the first "
                "layer (a padded first layer on pixels is supported)")
        if inst.get_nodeattr("NumChannels") % inst.get_nodeattr("SIMD"):
            raise UnsupportedLayerError(f"layer {describe(node)}: SIMD does not divide its channels")

    def cycles(self, model, node):
        inst = getCustomOp(node)
        h, w = inst.get_padded_odim()
        return h * w * inst.get_nodeattr("NumChannels") // inst.get_nodeattr("SIMD")

    def execute(self, model, node, x):
        top, left, bottom, right = getCustomOp(node).get_nodeattr("Padding")
        return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))

    def stage(self, model, node, ctx: MapContext):
        st = generated_stage(model, node, ctx, self.name, lambda inst: self.cycles(model, node))
        st.ties = dict(AXILITE_TIES)
        return st
