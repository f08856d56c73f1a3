"""The registry of layer kinds: FINN HW op type -> its OpKind (ops/<kind>.py).

Adding a layer kind = one file here with an OpKind subclass, one line in
KINDS, its RTL in hw/ (if ours) and its tests.
"""

from __future__ import annotations

from build_flows.errors import UnsupportedLayerError
from build_flows.ops.base import MapContext, OpKind, RTLParamError, describe
from build_flows.ops.dynamic_asd import DynamicASDKind
from build_flows.ops.fifo import FIFO
from build_flows.ops.finn_generated import SlidingWindow, WidthConverter
from build_flows.ops.global_acc_pool import GlobalAccPool
from build_flows.ops.label_select import LabelSelect
from build_flows.ops.maxpool import MaxPool
from build_flows.ops.mvau import MVAU
from build_flows.ops.padding import Padding
from build_flows.ops.thresholding import Thresholding

KINDS: list[OpKind] = [MVAU(), MaxPool(), GlobalAccPool(), LabelSelect(), Thresholding(), Padding(),
                       DynamicASDKind(), SlidingWindow(), WidthConverter(), FIFO()]

REGISTRY: dict[str, OpKind] = {op: kind for kind in KINDS for op in kind.hw_ops}  # by FINN op type
BY_NAME: dict[str, OpKind] = {kind.name: kind for kind in KINDS}  # by Stage.op

# what the accelerator graph may hold (a DWC only once we insert it)
SUPPORTED_HW = sorted(op for op in REGISTRY if op != "StreamingDataWidthConverter")


def kind_of(node) -> OpKind:
    """The layer kind of a HW node, or UnsupportedLayerError naming it."""
    kind = REGISTRY.get(node.op_type)
    if kind is None or node.op_type not in SUPPORTED_HW:
        raise UnsupportedLayerError(unsupported_message(node))
    return kind


def unsupported_message(node) -> str:
    if node.op_type in ("MaxPool", "MaxPoolNHWC"):
        return (f"unsupported layer {describe(node)}: a max-pool FINN's InferPool leaves as it is "
                "(its stride is larger than its kernel, or its input is not integer); use a "
                "stride <= kernel (any kernel, stride and padding with stride <= kernel build)")
    hint = ("a float or non-binary activation that FINN could not turn into thresholds"
            if node.op_type in ("MultiThreshold", "Thresholding", "Mul", "Add")
            else "no streaming hardware exists for it")
    return (f"unsupported layer {describe(node)}: {hint}; supported after conversion are "
            f"{SUPPORTED_HW} (binary conv/FC with BN + sign, max-pool, global average pool, "
            f"standalone thresholds, padding, dynamic ASD, top-1 label select)")


__all__ = ["BY_NAME", "KINDS", "MapContext", "OpKind", "REGISTRY", "RTLParamError", "SUPPORTED_HW",
           "kind_of", "unsupported_message"]
