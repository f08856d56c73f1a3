"""QONNX -> folded FINN HW graph (MVAU / ConvolutionInputGenerator / Pool /
LabelSelect), the graph that our RTL backend maps module by module.

    model = prepare_pixel_input(qonnx_model)   # accelerator takes UINT8 pixels
    model = streamline_for_hw(model)           # lead's streamline + layout passes
    model = convert_to_hw(model)               # FINN convert_to_hw passes
    check_hw_graph(model)                      # supported, binary between layers
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.insert_topk import InsertTopK

from build_flows.build_errors import NonBinaryActivationError, UnsupportedLayerError
from build_flows.streamline import StructureError, check_binary_structure, streamline, tidy_up


def init_finn_settings() -> None:
    """FINN passes need a build directory: FINN_BUILD_DIR or a fresh temp dir."""
    from finn.util import settings

    if not os.environ.get("FINN_BUILD_DIR"):
        os.environ["FINN_BUILD_DIR"] = tempfile.mkdtemp(prefix="sdbnn-finn-")
    Path(os.environ["FINN_BUILD_DIR"]).mkdir(parents=True, exist_ok=True)
    settings._SETTINGS = None
    settings.initialize_dummy_settings()


# ---------------------------------------------------------------------------
# supported layers

# QONNX ops with no streaming hardware here, and what to do instead.
UNSUPPORTED_OPS = {
    "ReduceMean": "dynamic ASD or global average pooling: train with --asd static",
    "GlobalAveragePool": "global average pooling: use a max-pool/flatten topology such as cnv",
    "AveragePool": "average pooling: use max-pooling",
    "Sigmoid": "dynamic ASD (squeeze-and-excitation shift): train with --asd static",
    "Softmax": "softmax: export the logits (argmax is the same)",
}


def check_supported(model: ModelWrapper) -> None:
    """Refuse, by node name, a QONNX layer the backend has no hardware for:
    the ops above, and adds of two streams (residual shortcuts, e.g. resnet20)."""
    for node in model.graph.node:
        if node.op_type in UNSUPPORTED_OPS:
            raise UnsupportedLayerError(
                f"layer {node.name} ({node.op_type}) has no streaming hardware here: "
                f"{UNSUPPORTED_OPS[node.op_type]}")
        if node.op_type == "Add" and all(model.get_initializer(i) is None for i in node.input):
            raise UnsupportedLayerError(
                f"layer {node.name} (Add of two streams, a residual shortcut) has no streaming "
                f"hardware yet: use a feed-forward model such as cnv, tfc or digits_cnv")


# ---------------------------------------------------------------------------
# input: integer pixels


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


def streamline_for_hw(model: ModelWrapper) -> ModelWrapper:
    """TopK at the end, the shared streamline, then fold the pixel requantiser
    and the output scale into the TopK."""
    import finn.transformation.streamline.absorb as absorb

    model = model.transform(InsertTopK(k=1))
    model = streamline(model)
    for t in (absorb.AbsorbScalarMulAddIntoTopK(), absorb.AbsorbScalarMulAddIntoTopK(),
              RemoveIdentityThresholds()):
        model = tidy_up(model.transform(t))
    return model


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


# ---------------------------------------------------------------------------
# HW layers

SUPPORTED_HW = {"MVAU", "ConvolutionInputGenerator", "Pool", "LabelSelect"}


def convert_to_hw(model: ModelWrapper) -> ModelWrapper:
    """FINN's convert_to_hw passes (InferPool before InferConvInpGen), then the
    flatten between conv and FC folded into the FC weights."""
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
        InferBinaryMatrixVectorActivation)
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation)
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    import finn.transformation.streamline.absorb as absorb

    for t in (InferBinaryMatrixVectorActivation(), InferQuantizedMatrixVectorActivation(),
              InferThresholdingLayer(), InferPool(), InferConvInpGen(), InferLabelSelectLayer(),
              RemoveCNVtoFCFlatten(), absorb.AbsorbConsecutiveTransposes(), InferDataLayouts()):
        model = model.transform(t)
    return tidy_up(model)


def partition_dataflow(model: ModelWrapper, out_dir: Path) -> tuple[ModelWrapper, str]:
    """FINN's CreateDataflowPartition; returns the accelerator graph and the
    layout in which the host streams the pixels: "NHWC" after a leading
    Transpose NCHW -> NHWC, "NCHW" after a leading flatten (Reshape/Flatten)
    or when nothing precedes the first HW layer."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition

    nodes = list(model.graph.node)
    lead = 0
    while lead < len(nodes) and nodes[lead].op_type in HOST_OPS:
        lead += 1
    for node in nodes[lead:]:
        if node.op_type not in SUPPORTED_HW:
            raise UnsupportedLayerError(_unsupported_message(node))
    layout = "NCHW"
    for node in nodes[:lead]:
        if node.op_type == "Transpose":
            perm = [list(a.ints) for a in node.attribute if a.name == "perm"][0]
            if perm != [0, 2, 3, 1] or layout != "NCHW":
                raise UnsupportedLayerError(f"unsupported input layout change {describe(node)} "
                                            f"(perm {perm}): only NCHW -> NHWC in front")
            layout = "NHWC"
    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(out_dir)))
    sdps = [n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition"]
    if len(sdps) != 1:
        raise UnsupportedLayerError("the hardware layers do not form one dataflow partition")
    inner = ModelWrapper(getCustomOp(sdps[0]).get_nodeattr("model"))
    return inner, layout


HOST_OPS = {"Transpose", "Reshape", "Flatten"}


def _unsupported_message(node) -> str:
    hint = ("a float or non-binary activation that FINN could not turn into thresholds"
            if node.op_type in ("MultiThreshold", "Thresholding", "Mul", "Add")
            else "no streaming hardware exists for it")
    return (f"unsupported layer {describe(node)}: {hint}; supported after conversion are "
            f"{sorted(SUPPORTED_HW)} (binary conv/FC with BN + sign, max-pool, "
            f"top-1 label select)")


def describe(node) -> str:
    return f"{node.name} ({node.op_type})"


def check_hw_graph(model: ModelWrapper) -> None:
    """Raise a BuildError unless the graph is one chain of supported HW layers
    with binary activations between the MVAUs (integer pixels in, class out)."""
    nodes = list(model.graph.node)
    for node in nodes:
        if node.op_type not in SUPPORTED_HW:
            raise UnsupportedLayerError(_unsupported_message(node))
    for a, b in zip(nodes, nodes[1:]):
        if model.find_consumer(a.output[0]) is not b:
            raise UnsupportedLayerError(f"layer {describe(a)} does not feed {describe(b)}: "
                                        "only a single chain of layers (no branches) is supported")
    mvaus = [n for n in nodes if n.op_type == "MVAU"]
    for i, node in enumerate(mvaus):
        inst = getCustomOp(node)
        idt, wdt, odt = (inst.get_input_datatype(0), inst.get_input_datatype(1),
                         inst.get_output_datatype())
        few_bit_first = i == 0 and wdt.is_integer() and wdt.signed() and 2 <= wdt.bitwidth() <= 8
        if wdt not in (DataType["BINARY"], DataType["BIPOLAR"]) and not few_bit_first:
            raise UnsupportedLayerError(
                f"layer {describe(node)} has {wdt.name} weights: only the first layer may have "
                "signed 2..8-bit weights, the others need bipolar weights (last_bits=1)")
        if i > 0 and idt not in (DataType["BINARY"], DataType["BIPOLAR"]):
            raise NonBinaryActivationError(
                f"layer {describe(node)} takes {idt.name} activations from the layer before: "
                "only binary (sign) activations are supported between layers; use a W1A1 model")
        if i == 0 and not (idt.is_integer() and idt.bitwidth() <= 8):
            raise UnsupportedLayerError(f"first layer {describe(node)} takes {idt.name} input: "
                                        "the accelerator needs integer pixels of at most 8 bits")
        last = i == len(mvaus) - 1
        if not last and odt not in (DataType["BINARY"], DataType["BIPOLAR"]):
            raise NonBinaryActivationError(
                f"layer {describe(node)} outputs {odt.name}: only binary activations (1 threshold) "
                "are supported between layers; use a W1A1 model")


def check_streamlined(model: ModelWrapper) -> None:
    """The lead's structure check, as a BuildError."""
    try:
        check_binary_structure(model)
    except StructureError as e:
        raise NonBinaryActivationError(f"{e}; use a W1A1 model (binary weights and activations)") from e
