"""Integer pixels in: the accelerator takes UINT8 pixels k (float pixel k/255).

    model = prepare_pixel_input(qonnx_model)   # a 1/255 scale in front, folded by streamlining
    model, table = split_host_table(model)     # a non-identity pixel requantiser -> host table
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from build_flows.frontend.streamline import tidy_up


def prepare_pixel_input(model: ModelWrapper) -> ModelWrapper:
    """Make the graph take UINT8 pixels k (float pixel k/255): a Mul(1/255) in
    front of the original input, which streamlining folds into the input
    quantiser's thresholds (FINN's ToTensor pre-processing does the same)."""
    model = copy.deepcopy(model)
    iname = model.graph.input[0].name
    scaled = model.make_new_valueinfo_name()
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == iname:
                node.input[i] = scaled
    scale = model.make_new_valueinfo_name()
    model.graph.node.insert(0, helper.make_node("Mul", [iname, scale], [scaled], name="PixelScale"))
    model.set_initializer(scale, np.array(1.0 / 255.0, dtype=np.float32))
    model.set_tensor_datatype(iname, DataType["UINT8"])
    return model


class RemoveIdentityThresholds(Transformation):
    """Drop a MultiThreshold on an integer tensor whose thresholds are exactly
    lo+1..hi of the input's range (x -> x): the requantiser of UINT8 pixels
    once the 1/255 scale is folded into it."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "MultiThreshold":
                continue
            idt = model.get_tensor_datatype(node.input[0])
            odt = model.get_tensor_datatype(node.output[0])
            thr = model.get_initializer(node.input[1])
            if not idt.is_integer() or thr is None or odt != idt:
                continue
            inst = getCustomOp(node)
            if inst.get_nodeattr("out_scale") != 1.0 or inst.get_nodeattr("out_bias") != idt.min():
                continue
            want = np.arange(idt.min() + 1, idt.max() + 1)
            if thr.shape[-1] != len(want) or not (np.ceil(thr) == want[None, :]).all():
                continue
            consumers = model.find_consumers(node.output[0]) or []
            for c in consumers:
                for i, name in enumerate(c.input):
                    if name == node.output[0]:
                        c.input[i] = node.input[0]
            if not consumers:
                continue
            model.graph.node.remove(node)
            return model, True
        return model, False


def split_host_table(model: ModelWrapper) -> tuple[ModelWrapper, np.ndarray | None]:
    """A MultiThreshold right on the integer pixel input that is not the
    identity (e.g. FINN's CNV: 8-bit Q1.7 quantiser of 2k/255 - 1) becomes a
    host-side table: returns the graph without it (taking the table's output
    type) and table[c, k - min] = value of pixel k on channel c; None (graph
    unchanged) when there is no such node. FINN leaves this quantiser to the
    host's pre-processing as well."""
    from qonnx.custom_op.general.multithreshold import multithreshold

    iname = model.graph.input[0].name
    node = model.find_consumer(iname)
    idt = model.get_tensor_datatype(iname)
    if node is None or node.op_type != "MultiThreshold" or not idt.is_integer() or idt.bitwidth() > 8:
        return model, None
    inst = getCustomOp(node)
    odt = model.get_tensor_datatype(node.output[0])
    thr = model.get_initializer(node.input[1])
    bias = inst.get_nodeattr("out_bias")
    if (thr is None or inst.get_nodeattr("out_scale") != 1.0 or bias != int(bias)
            or not odt.is_integer() or odt.bitwidth() > 8
            or inst.get_nodeattr("data_layout") != "NCHW"):
        return model, None
    channels = model.get_tensor_shape(iname)[1]
    levels = np.arange(idt.min(), idt.max() + 1, dtype=np.float32)
    table = multithreshold(np.tile(levels, (1, channels, 1)), thr, 1.0, bias)[0]
    if not (table == np.round(table)).all() or table.min() < odt.min() or table.max() > odt.max():
        return model, None
    model = copy.deepcopy(model)
    node = model.find_consumer(iname)
    for c in model.find_consumers(node.output[0]) or []:
        for i, name in enumerate(c.input):
            if name == node.output[0]:
                c.input[i] = iname
    model.graph.node.remove(node)
    model.set_tensor_datatype(iname, odt)
    return tidy_up(model), table.astype(np.int64)


def apply_host_table(pixels: np.ndarray, table: np.ndarray, lo: int = 0) -> np.ndarray:
    """The host's pre-processing: pixels (N, C, H, W) through table[c, k - lo]."""
    c = np.arange(pixels.shape[1]).reshape(1, -1, 1, 1)
    return table[c, pixels - lo]
