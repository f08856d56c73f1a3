"""QONNX -> streamlined FINN-ONNX: the pass list the build flow and the tests share.

After :func:`streamline`, a W1A1-style network is only MultiThreshold,
XnorPopcountMatMul / MatMul, Im2Col, MaxPoolNHWC, reshapes and a final Mul/Add:
BN, the static ASD shift and the sign are folded into integer thresholds and WSD
is already inside the bipolar weights.
"""
from __future__ import annotations

import numpy as np

from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
import finn.transformation.streamline.absorb as absorb
from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
from finn.transformation.streamline import Streamline
from finn.transformation.streamline.reorder import MakeMaxPoolNHWC, MoveScalarLinearPastInvariants
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.double_to_single_float import DoubleToSingleFloat
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
    SortGraph,
)
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

from build_flows.frontend.dynamic_asd import FuseDynamicASD
from build_flows.frontend.global_pool import GlobalAveragePoolToAccPool, ReduceMeanToGlobalAveragePool


def tidy_up(model: ModelWrapper) -> ModelWrapper:
    """Shapes, constants, names and datatypes: run between every group of passes."""
    for t in (InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(),
              InferDataTypes(), RemoveStaticGraphInputs(), RemoveUnusedTensors(), SortGraph()):
        model = model.transform(t)
    return model


def padded_binary_thresholds(model: ModelWrapper) -> list[str]:
    """Threshold tensors of MultiThresholds after an XNOR convolution whose
    Im2Col pads binary activations."""
    names = []
    for node in model.graph.node:
        if node.op_type != "MultiThreshold":
            continue
        mm = model.find_producer(node.input[0])
        if mm is None or mm.op_type != "XnorPopcountMatMul":
            continue
        im2col = model.find_producer(mm.input[0])
        if (im2col is not None and im2col.op_type == "Im2Col"
                and model.get_tensor_datatype(im2col.input[0]) in (DataType["BINARY"], DataType["BIPOLAR"])
                and any(p > 0 for a in im2col.attribute if a.name == "pad_amount" for p in a.ints)):
            names.append(node.input[1])
    return names


class RoundThresholdsKeepingBorders(Transformation):
    """FINN's RoundAndClipThresholds, except for the thresholds after a
    padded binary convolution, which stay as they are: the hardware corrects
    the border there (ops/mvau.py, border()), where the accumulator of the
    model's zero-padded window is a half-integer in the popcount domain, so
    rounding the threshold up to an integer would change the layer's result."""

    def apply(self, model: ModelWrapper):
        keep = {t: (model.get_initializer(t), model.get_tensor_datatype(t))
                for t in padded_binary_thresholds(model)}
        model = model.transform(RoundAndClipThresholds())
        for t, (v, dt) in keep.items():
            model.set_initializer(t, v)
            model.set_tensor_datatype(t, dt)  # float, as before the rounding
        return model, False


class MoveScalarAffinePastMaxPoolNHWC(Transformation):
    """x -> Mul(c) -> Add(b) -> MaxPoolNHWC becomes x -> MaxPoolNHWC -> Mul(c)
    -> Add(b) for scalars c > 0 and b: max(c x + b) = c max(x) + b. The XNOR
    conversion leaves such a pair (dot = 2 popcount - MW) in front of a pool
    that comes before BN (VGG-Small's conv -> pool -> BN order); moved past the
    pool, the pair folds into the thresholds like the BN after it."""

    def apply(self, model: ModelWrapper):
        for pool in list(model.graph.node):
            if pool.op_type != "MaxPoolNHWC":
                continue
            add = model.find_producer(pool.input[0])
            mul = model.find_producer(add.input[0]) if add is not None and add.op_type == "Add" else None
            if mul is None or mul.op_type != "Mul" or model.is_fork_node(mul) or model.is_fork_node(add):
                continue
            c, b = model.get_initializer(mul.input[1]), model.get_initializer(add.input[1])
            if c is None or b is None or c.size != 1 or b.size != 1 or float(c.reshape(-1)[0]) <= 0:
                continue
            x, y = mul.input[0], pool.output[0]
            pooled, scaled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            pool.input[0], pool.output[0] = x, pooled
            mul.input[0], mul.output[0] = pooled, scaled
            add.input[0], add.output[0] = scaled, y
            for t in (pooled, scaled):
                model.set_tensor_shape(t, model.get_tensor_shape(y))
            model.set_tensor_datatype(pooled, model.get_tensor_datatype(x))
            return model.transform(SortGraph()), True
        return model, False


class MoveMaxPoolNHWCPastMultiThreshold(Transformation):
    """x -> MaxPoolNHWC -> MultiThreshold becomes x -> MultiThreshold ->
    MaxPoolNHWC: a MultiThreshold with out_scale >= 0 is non-decreasing per
    channel, so it commutes with a max. Then the thresholds fold into the
    XNOR layer before them and the pool is a binary one (FINN's own pass of
    this kind handles the NCHW MaxPool only)."""

    def apply(self, model: ModelWrapper):
        from qonnx.custom_op.registry import getCustomOp
        for pool in list(model.graph.node):
            if pool.op_type != "MaxPoolNHWC" or model.is_fork_node(pool):
                continue
            mt = model.find_consumer(pool.output[0])
            if mt is None or mt.op_type != "MultiThreshold":
                continue
            inst = getCustomOp(mt)
            pads = [a for a in pool.attribute if a.name == "pads"]
            if inst.get_nodeattr("out_scale") < 0 or (pads and any(pads[0].ints)):
                continue
            x, y = pool.input[0], mt.output[0]
            binary = model.make_new_valueinfo_name()
            mt.input[0], mt.output[0] = x, binary
            pool.input[0], pool.output[0] = binary, y
            model.set_tensor_shape(binary, model.get_tensor_shape(x))
            model.set_tensor_datatype(binary, model.get_tensor_datatype(y))
            return model.transform(SortGraph()), True
        return model, False


# (pass, one-line why), in order; the build flow reuses this list.
STREAMLINE_PASSES = [
    (ReduceMeanToGlobalAveragePool, "a mean over H and W is a global average pool"),
    (ConvertQONNXtoFINN, "Quant/BipolarQuant -> MultiThreshold, quantised weights -> integer initializers"),
    (absorb.AbsorbScalarBiasIntoMultiThreshold, "absorb the input quantiser's scalar bias"),
    (MoveScalarLinearPastInvariants, "move scalar Mul/Add past reshapes and pools"),
    (Streamline, "BN, ASD shift and scales into thresholds"),
    (LowerConvsToMatMul, "Conv -> Im2Col + MatMul (NHWC)"),
    (MakeMaxPoolNHWC, "MaxPool in the NHWC layout"),
    (absorb.AbsorbTransposeIntoMultiThreshold, "thresholds in NHWC"),
    (MakeMaxPoolNHWC, "again: a pool right after a threshold is NHWC only now"),
    (absorb.AbsorbConsecutiveTransposes, "drop transpose pairs"),
    (GlobalAveragePoolToAccPool, "global average pool -> GlobalAccPool (a sum of BINARY bits) + scalars"),
    (ConvertBipolarMatMulToXnorPopcount, "bipolar x bipolar MatMul -> XnorPopcountMatMul"),
    (MoveScalarAffinePastMaxPoolNHWC, "the XNOR affine past a pool that comes before BN"),
    (Streamline, "fold the XNOR conversion's affine into thresholds"),
    (MoveMaxPoolNHWCPastMultiThreshold, "a pool before BN + sign: thresholds first, then a binary pool"),
    (FuseDynamicASD, "a dynamic-ASD block (mean, SE MLP, sigmoid, shift, sign) -> one DynamicASD "
                     "node (before the rounding: its ties round half to even, as Brevitas does)"),
    (MakeMaxPoolNHWC, "a pool after a dynamic-ASD node in the NHWC layout"),
    (absorb.AbsorbConsecutiveTransposes, "drop the transpose pairs around dynamic-ASD nodes"),
    (RoundThresholdsKeepingBorders, "integer thresholds within the input's range (not after a "
                                    "padded binary conv: half-integer accumulators at its border)"),
]


def streamline(model: ModelWrapper) -> ModelWrapper:
    """Apply :data:`STREAMLINE_PASSES` with tidy-ups in between."""
    model = tidy_up(model.transform(DoubleToSingleFloat()))
    for cls, _why in STREAMLINE_PASSES:
        model = tidy_up(model.transform(cls()))
    return model


class StructureError(ValueError):
    """A streamlined graph with something other than thresholds and XNOR-popcount
    between its binary layers."""


# What may stand between the first and the last matrix product once streamlined.
BETWEEN_BINARY_LAYERS = {
    "MultiThreshold", "XnorPopcountMatMul", "Im2Col", "MaxPoolNHWC", "MaxPool",
    "Transpose", "Reshape", "Flatten", "GlobalAccPool", "DynamicASD",
}


def fed_by_global_pool(model: ModelWrapper, node) -> bool:
    """True if node's input is a GlobalAccPool's sums (through reshapes)."""
    prod = model.find_producer(node.input[0])
    while prod is not None and prod.op_type in ("Transpose", "Reshape", "Flatten"):
        prod = model.find_producer(prod.input[0])
    return prod is not None and prod.op_type == "GlobalAccPool"


def _what_is_left(model: ModelWrapper, node) -> str:
    """The leftover node in a user's words."""
    prod = model.find_producer(node.input[0])
    while prod is not None and prod.op_type in ("Transpose", "Reshape"):
        prod = model.find_producer(prod.input[0])
    if node.op_type in ("Mul", "Add") and prod is not None and prod.op_type.startswith("MaxPool"):
        v = model.get_initializer(node.input[1])
        neg = [] if v is None else [int(i) for i in np.flatnonzero(np.asarray(v).reshape(-1) < 0)]
        if node.op_type == "Mul" and neg:
            return (f"a BatchNorm with a negative scale after the max-pool {prod.name} (conv -> pool "
                    f"-> BN order), in channel(s) {neg[:8]}{' ...' if len(neg) > 8 else ''}: a max "
                    "does not commute with a negative scale (it would need a min-pool there); "
                    "put BN before the pool (conv -> BN -> sign -> pool) or keep BN scales positive")
        return (f"a scale or bias after the max-pool {prod.name} that could not be folded into "
                "the thresholds")
    if node.op_type in ("Sigmoid", "GlobalAveragePool") or (
            node.op_type in ("Mul", "Add", "MatMul")
            and any(n.op_type == "Sigmoid" for n in model.graph.node)):
        return ("part of a dynamic-ASD block (mean, SE MLP, sigmoid, shift, sign) that is not "
                "the pattern quant_models.layers.DynamicASD exports (one 8-bit activation, "
                "4-bit SE weights and ReLU, a sigmoid, a 4-bit shift, then the sign)")
    if node.op_type in ("Mul", "Add"):
        return ("a scale or bias that could not be folded into thresholds: a multi-bit activation, "
                "or an operation between layers that is neither BN nor a sign")
    return f"only {sorted(BETWEEN_BINARY_LAYERS)} may remain between binary layers after streamlining"


def check_binary_structure(model: ModelWrapper) -> None:
    """Raise StructureError unless every node between the first and the last
    MatMul-like node is a threshold, an XNOR-popcount product, a pool or a reshape
    (so BN, ASD shifts and scales were all folded into thresholds)."""
    ops = [n.op_type for n in model.graph.node]
    products = [i for i, op in enumerate(ops) if op in ("MatMul", "XnorPopcountMatMul")]
    if not products:
        raise StructureError("no MatMul or XnorPopcountMatMul in the graph")
    first, last = products[0], products[-1]
    for node in model.graph.node[first + 1:last]:
        gap_head = node.op_type == "MatMul" and fed_by_global_pool(model, node)
        if node.op_type not in BETWEEN_BINARY_LAYERS and not gap_head:
            raise StructureError(f"node {node.name} ({node.op_type}) between binary layers: "
                                 f"{_what_is_left(model, node)}")
    inner = [model.graph.node[i] for i in products[1:-1]]
    for node in inner:
        if node.op_type != "XnorPopcountMatMul" and not fed_by_global_pool(model, node):
            raise StructureError(f"hidden layer {node.name} is a {node.op_type}, not XnorPopcountMatMul")
