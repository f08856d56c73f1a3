"""FMPadding -> FINN's RTL padding unit (FMPadding_rtl): a padded
convolution's border, streamed in front of its sliding window. It pads with
0 of the stream's datatype, as FINN's graph does.

On integer streams that is the model's padding (a padded first layer: pixel
0 is the model's 0.0). On a binary stream bit 0 means -1, while the exported
model (QONNX Conv with pads) pads its {-1, +1} activations with 0.0, which no
bit encodes: FINN's own graph therefore differs from the model at every
border. The XNOR MVAU after the window corrects it: one threshold set per
pattern of padded kernel positions (ops/mvau.py, border(); hw/mvtu.sv's
border classes), so hardware equals the model. In front of a max-pool's
window bit 0 (-1, the bipolar minimum) is the max-pool's own padding. Binary
padding in front of anything else is refused by name.

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


def _window_consumer(model, node):
    """What the sliding window after the padding feeds (or the direct consumer)."""
    nxt = model.find_consumer(node.output[0])
    if nxt is not None and nxt.op_type.startswith("ConvolutionInputGenerator"):
        nxt = model.find_consumer(nxt.output[0])
    return nxt


def _binary_padding_is_exact(model, node) -> bool:
    """True if padding with bit 0 gives the model's result: the window feeds
    an XNOR MVAU, which corrects the border (ops/mvau.py, border()), or a
    max-pool, for which bit 0 (-1, the bipolar minimum) is the right padding."""
    nxt = _window_consumer(model, node)
    if nxt is not None and nxt.op_type == "Pool":
        return getCustomOp(nxt).get_nodeattr("Function") == "MaxPool"
    return (nxt is not None and nxt.op_type == "MVAU"
            and getCustomOp(nxt).get_nodeattr("binaryXnorMode") == 1)


class Padding(OpKind):
    finn_impl = "rtl"
    name = "FMPadding"
    hw_ops = ("FMPadding",)
    fold_attrs = {"FMPadding": ("SIMD",)}

    def check(self, model, node, index, count):
        inst = getCustomOp(node)
        if inst.get_input_datatype().bitwidth() == 1 and not _binary_padding_is_exact(model, node):
            nxt = _window_consumer(model, node)
            raise UnsupportedLayerError(
                f"layer {describe(node)} pads binary activations for "
                f"{describe(nxt) if nxt is not None else 'no convolution'}: padding of binary "
                "activations is supported in front of a binary convolution (XNOR) or a max-pool, not "
                "of a multi-bit layer; use padding=0 there")
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
