"""Streamlined QONNX -> the FINN HW graph that the ops registry maps.

    model = streamline_for_hw(prepare_pixel_input(qonnx))  # shared pass list + TopK
    model = convert_to_hw(model)                           # FINN convert_to_hw passes
    model, layout = partition_dataflow(model, out_dir)     # the accelerator's graph
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.insert_topk import InsertTopK

from build_flows.errors import UnsupportedLayerError
from build_flows.frontend.pixels import RemoveIdentityThresholds
from build_flows.frontend.streamline import streamline, tidy_up
from build_flows.ops import kind_of
from build_flows.ops.base import describe

# ops the host runs in front of the accelerator (they only reorder the pixels)
HOST_OPS = {"Transpose", "Reshape", "Flatten"}


def streamline_for_hw(model: ModelWrapper) -> tuple[ModelWrapper, tuple[np.ndarray, np.ndarray]]:
    """TopK at the end, the shared streamline, then fold the pixel requantiser
    and the output scale into the TopK. Returns the graph and the affine map
    (a, b) of the output scale it folded: the model's logits are
    a * accumulator + b, per class (output_affine)."""
    import finn.transformation.streamline.absorb as absorb

    model = model.transform(InsertTopK(k=1))
    model = streamline(model)
    affine = output_affine(model)
    for t in (absorb.AbsorbScalarMulAddIntoTopK(), absorb.AbsorbScalarMulAddIntoTopK(),
              RemoveIdentityThresholds()):
        model = tidy_up(model.transform(t))
    return tidy_up(cut_host_tail(model)), affine


def cut_host_tail(model: ModelWrapper) -> ModelWrapper:
    """What the dataflow cannot hold runs on the host, as FINN's parent graph
    does: when a per-class scale or bias (or a negative scale) stands between
    the last layer and the TopK, so that the top-1 of the last layer's
    integers is not the model's class, the TopK and those Mul/Add nodes are
    cut off. The accelerator then streams the last layer's integers, and the
    host computes logits = a * integer + b (output_affine) and their argmax
    (host_classes). Otherwise the model is returned unchanged."""
    topk = next((n for n in model.graph.node if n.op_type == "TopK"), None)
    if topk is None:
        return model
    tail, tensor = [topk], topk.input[0]
    while True:
        node = model.find_producer(tensor)
        if node is None or node.op_type not in ("Mul", "Add") or model.get_initializer(node.input[1]) is None:
            break
        tail.append(node)
        tensor = node.input[0]
    if len(tail) == 1:
        return model
    from onnx import TensorProto, helper
    for node in tail:
        model.graph.node.remove(node)
    while len(model.graph.output):
        model.graph.output.pop()
    for vi in [vi for vi in model.graph.value_info if vi.name == tensor]:
        model.graph.value_info.remove(vi)
    model.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT,
                                                            model.get_tensor_shape(tensor)))
    return model


def has_host_tail(model: ModelWrapper) -> bool:
    """True if the graph ends in the last layer's integers (cut_host_tail cut the class off)."""
    return not any(n.op_type == "TopK" for n in model.graph.node)


def host_classes(integers: np.ndarray, affine) -> np.ndarray:
    """The host's top-1 class of each frame: argmax of a * integer + b (float64,
    ties to the lower index), the model's logits."""
    a, b = affine
    x = np.asarray(integers, dtype=np.float64).reshape(len(integers), -1)
    return np.argmax(a * x + b, axis=1)


def output_affine(model: ModelWrapper) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) such that the tensor in front of the TopK is a * x + b, x the
    integer output of the last layer: the constant Mul / Add nodes between them."""
    topk = next(n for n in model.graph.node if n.op_type == "TopK")
    a, b = np.float64(1.0), np.float64(0.0)
    tensor = topk.input[0]
    while True:
        node = model.find_producer(tensor)
        if node is None or node.op_type not in ("Mul", "Add"):
            break
        const = model.get_initializer(node.input[1])
        if const is None:
            break
        const = np.asarray(const, dtype=np.float64).reshape(-1)
        # walking backwards: y = a t + b with t = c x (Mul) or t = x + c (Add)
        if node.op_type == "Mul":
            a = a * const
        else:
            b = b + a * const
        tensor = node.input[0]
    return a, b


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
    return tidy_up(drop_identity_windows(single_window_strides(model)))


def single_window_strides(model: ModelWrapper) -> ModelWrapper:
    """A sliding window with one output row (or column) has no second window
    for its stride to reach; FINN's RTL window refuses a stride larger than
    the feature map (a 1x1 stride-2 conv on a 1x1 map), so such a stride
    becomes ifm - kernel + 1, which gives the same single window."""
    from qonnx.custom_op.registry import getCustomOp
    for node in model.graph.node:
        if node.op_type.startswith("ConvolutionInputGenerator"):
            inst = getCustomOp(node)
            stride = list(inst.get_nodeattr("Stride"))
            ofm, ifm = list(inst.get_nodeattr("OFMDim")), list(inst.get_nodeattr("IFMDim"))
            k = list(inst.get_nodeattr("ConvKernelDim"))
            # one window: any stride > ifm - k gives it; the smallest such is ifm - k + 1
            new = [ifm[a] - k[a] + 1 if ofm[a] == 1 and stride[a] > ifm[a] else stride[a]
                   for a in range(2)]
            if new != stride:
                inst.set_nodeattr("Stride", new)
    return model


def drop_identity_windows(model: ModelWrapper) -> ModelWrapper:
    """A 1x1 window of stride 1 without padding in front passes its stream
    through unchanged: it is removed and its consumer reads the stream
    (FINN's RTL generator fails on one over a 1x1 map, "math domain error")."""
    from qonnx.custom_op.registry import getCustomOp
    for node in list(model.graph.node):
        if not node.op_type.startswith("ConvolutionInputGenerator"):
            continue
        inst = getCustomOp(node)
        prod = model.find_producer(node.input[0])
        if (list(inst.get_nodeattr("ConvKernelDim")) == [1, 1]
                and list(inst.get_nodeattr("Stride")) == [1, 1]
                and not inst.get_nodeattr("depthwise")
                and list(inst.get_nodeattr("IFMDim")) == list(inst.get_nodeattr("OFMDim"))
                and (prod is None or prod.op_type != "FMPadding")):
            for consumer in model.find_consumers(node.output[0]) or []:
                for i, t in enumerate(consumer.input):
                    if t == node.output[0]:
                        consumer.input[i] = node.input[0]
            model.graph.node.remove(node)
    return model


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
        kind_of(node)  # an unsupported layer is named before FINN partitions the graph
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
