"""Global average pooling -> FINN's GlobalAccPool (a sum) and a scale that
folds into the next layer's thresholds.

Two passes of the streamline list (frontend/streamline.py):

- :class:`ReduceMeanToGlobalAveragePool`, before anything else: PyTorch's
  `AdaptiveAvgPool2d(1)` / `x.mean((2, 3))` exports as ReduceMean over the
  two spatial axes of an NCHW tensor; it becomes the GlobalAveragePool it is
  (with a Reshape when keepdims=0). A ReduceMean over other axes stays, and
  the support check refuses it by name.
- :class:`GlobalAveragePoolToAccPool`, once the thresholds are NHWC: the
  pool becomes FINN's GlobalAccPool (InferGlobalAccPoolLayer: the sum over
  H x W, then Mul(1/(H*W))); a pool over a 1x1 map is the identity and is
  removed. When the pool averages the bipolar output of a
  sign (a MultiThreshold to {-1, +1}, maybe through max-pools and
  reshapes), that threshold outputs BINARY {0, 1} instead, and Mul(2) -> Add(-1) after the pool restore the value:
  mean(2 b - 1) = 2 mean(b) - 1. The stream is then one bit per value, and
  the sum of H*W bits, 0..H*W, fits the unsigned type FINN gives it (FINN
  sizes the sum of bipolar values by H*W * min = -H*W alone, a type one
  value too narrow for +H*W). The following Streamline moves the scalars
  past the next MatMul into its thresholds (or, for the last layer, into
  the output affine the host applies).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation


def _spatial_axes(model: ModelWrapper, node) -> list[int] | None:
    """The ReduceMean's axes, normalised to >= 0 (attribute, or input from opset 18)."""
    axes = [list(a.ints) for a in node.attribute if a.name == "axes"]
    if axes:
        axes = axes[0]
    elif len(node.input) > 1 and node.input[1]:
        init = model.get_initializer(node.input[1])
        if init is None:
            return None
        axes = [int(a) for a in np.asarray(init).reshape(-1)]
    else:
        return None
    rank = len(model.get_tensor_shape(node.input[0]) or [])
    return sorted(a % rank for a in axes) if rank else None


def is_global_mean(model: ModelWrapper, node) -> bool:
    """True for a ReduceMean over H and W of a 4-D (NCHW) tensor."""
    shape = model.get_tensor_shape(node.input[0])
    return (node.op_type == "ReduceMean" and shape is not None and len(shape) == 4
            and _spatial_axes(model, node) == [2, 3])


class ReduceMeanToGlobalAveragePool(Transformation):
    def apply(self, model: ModelWrapper):
        for node in list(model.graph.node):
            if not is_global_mean(model, node):
                continue
            keep = [a.i for a in node.attribute if a.name == "keepdims"]
            keepdims = keep[0] if keep else 1
            n, c = model.get_tensor_shape(node.input[0])[:2]
            out = node.output[0]
            pooled = out if keepdims else model.make_new_valueinfo_name()
            gap = helper.make_node("GlobalAveragePool", [node.input[0]], [pooled],
                                   name=node.name + "_gap")
            idx = list(model.graph.node).index(node)
            model.graph.node.insert(idx, gap)
            if not keepdims:
                model.set_tensor_shape(pooled, [n, c, 1, 1])
                shape = model.make_new_valueinfo_name()
                model.set_initializer(shape, np.array([n, c], dtype=np.int64))
                model.graph.node.insert(idx + 1, helper.make_node("Reshape", [pooled, shape], [out]))
            model.graph.node.remove(node)
            return model, True
        return model, False


# between a sign and its pool: nodes that keep bipolar values bipolar and, applied
# to the {0, 1} bits instead, give the bits of the same result (a max is monotone)
KEEP_ORDER = ("Transpose", "Reshape", "MaxPoolNHWC", "MaxPool")


def _bipolar_sign_before(model: ModelWrapper, node):
    """The MultiThreshold to BIPOLAR that feeds node (directly or through
    KEEP_ORDER nodes), if every node on the way feeds nothing else."""
    prod = model.find_producer(node.input[0])
    while prod is not None and prod.op_type in KEEP_ORDER and not model.is_fork_node(prod):
        prod = model.find_producer(prod.input[0])
    if (prod is None or prod.op_type != "MultiThreshold" or model.is_fork_node(prod)
            or model.get_tensor_datatype(prod.output[0]) != DataType["BIPOLAR"]):
        return None
    return prod


def _scalar_after(model: ModelWrapper, tensor: str, op: str, value: float) -> str:
    """Insert `tensor -> op(value)` in front of tensor's consumers; the new output."""
    out, const = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
    model.set_initializer(const, np.array(value, dtype=np.float32))
    model.set_tensor_shape(out, model.get_tensor_shape(tensor))
    for consumer in model.find_consumers(tensor) or []:
        for i, t in enumerate(consumer.input):
            if t == tensor:
                consumer.input[i] = out
    for o in model.graph.output:
        if o.name == tensor:
            raise ValueError("a global pool at the graph output")  # never: a classifier follows
    prod = model.find_producer(tensor)
    idx = list(model.graph.node).index(prod) + 1
    model.graph.node.insert(idx, helper.make_node(op, [tensor, const], [out]))
    return out


class GlobalAveragePoolToAccPool(Transformation):
    def apply(self, model: ModelWrapper):
        from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import (
            InferGlobalAccPoolLayer)
        from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes
        from qonnx.transformation.infer_data_layouts import InferDataLayouts
        from qonnx.transformation.infer_datatypes import InferDataTypes

        pools = [n for n in model.graph.node if n.op_type == "GlobalAveragePool"]
        if not pools:
            return model, False
        for pool in list(pools):  # over one pixel the mean is the value: no pool
            shape = model.get_tensor_shape(pool.input[0])
            if shape is not None and len(shape) == 4 and shape[2] * shape[3] == 1:
                for consumer in model.find_consumers(pool.output[0]) or []:
                    for i, t in enumerate(consumer.input):
                        if t == pool.output[0]:
                            consumer.input[i] = pool.input[0]
                model.graph.node.remove(pool)
                pools.remove(pool)
        for pool in pools:
            sign = _bipolar_sign_before(model, pool)
            if sign is None:
                continue
            inst = getCustomOp(sign)
            inst.set_nodeattr("out_dtype", "BINARY")
            inst.set_nodeattr("out_scale", 1.0)
            inst.set_nodeattr("out_bias", 0.0)
            model.set_tensor_datatype(sign.output[0], DataType["BINARY"])
            t = pool.input[0]
            while model.find_producer(t) is not sign:  # the nodes on the way carry the new type
                model.set_tensor_datatype(t, DataType["BINARY"])
                t = model.find_producer(t).input[0]
            scaled = _scalar_after(model, pool.output[0], "Mul", 2.0)
            _scalar_after(model, scaled, "Add", -1.0)
        model = model.transform(InferDataTypes()).transform(InferDataLayouts())
        model = model.transform(InferGlobalAccPoolLayer())
        model = model.transform(AbsorbConsecutiveTransposes())
        return model, False


__all__ = ["GlobalAveragePoolToAccPool", "ReduceMeanToGlobalAveragePool", "is_global_mean"]
