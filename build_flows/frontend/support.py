"""Support checks, each a BuildError that names the layer and the fix:
QONNX layers with no streaming hardware (before streamlining), the binary
structure of the streamlined graph, and the HW graph (a loop over the ops
registry: each layer kind checks its own nodes)."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper

from build_flows.errors import NonBinaryActivationError, UnsupportedLayerError
from build_flows.frontend.global_pool import is_global_mean
from build_flows.frontend.streamline import StructureError, check_binary_structure
from build_flows.ops import kind_of
from build_flows.ops.base import describe

# QONNX ops with no streaming hardware here, and what to do instead.
UNSUPPORTED_OPS = {
    "ReduceMean": "a mean over axes other than H and W (a mean over both, a global average "
                  "pool, is supported)",
    "AveragePool": "average pooling: use max-pooling",
    "Softmax": "softmax: export the logits (argmax is the same)",
}


def check_supported(model: ModelWrapper) -> None:
    """Refuse, by node name, a QONNX layer the backend has no hardware for:
    the ops above, and adds of two streams (residual shortcuts, e.g. resnet20)."""
    for node in model.graph.node:
        if node.op_type in UNSUPPORTED_OPS and not is_global_mean(model, node):
            raise UnsupportedLayerError(
                f"layer {node.name} ({node.op_type}) has no streaming hardware here: "
                f"{UNSUPPORTED_OPS[node.op_type]}")
        if node.op_type == "Quant" and _unsigned_one_bit(model, node):
            raise UnsupportedLayerError(
                f"layer {node.name} (Quant) quantises to unsigned 1 bit, {{0, 1}} (e.g. a 1-bit "
                "QuantReLU): binary layers here take bipolar {-1, +1} activations; use a "
                "sign activation (Brevitas QuantIdentity/BipolarQuant with bit_width=1)")
        if (node.op_type == "Add" and all(model.get_initializer(i) is None for i in node.input)
                and not any(_from_sigmoid(model, i) for i in node.input)):
            raise UnsupportedLayerError(
                f"layer {node.name} (Add of two streams, a residual shortcut) has no streaming "
                f"hardware yet: use a feed-forward model such as cnv, tfc or digits_cnv")


def _from_sigmoid(model: ModelWrapper, tensor: str) -> bool:
    """True if tensor is a quantised sigmoid, through scales and reshapes: the
    shift a dynamic ASD adds to the activation (frontend/dynamic_asd.py fuses
    that Add into its unit), not a residual shortcut."""
    node = model.find_producer(tensor)
    for _ in range(6):
        if node is None:
            return False
        if node.op_type == "Sigmoid":
            return True
        if node.op_type not in ("Mul", "Div", "Quant", "Reshape", "Flatten", "Unsqueeze"):
            return False
        node = model.find_producer(node.input[0])
    return False


def _unsigned_one_bit(model: ModelWrapper, node) -> bool:
    from qonnx.custom_op.registry import getCustomOp
    bits = model.get_initializer(node.input[3]) if len(node.input) > 3 else None
    return (bits is not None and float(bits.reshape(-1)[0]) == 1.0
            and getCustomOp(node).get_nodeattr("signed") == 0
            and model.get_initializer(node.input[0]) is None)  # an activation, not weights


def check_streamlined(model: ModelWrapper) -> None:
    """The lead's structure check, as a BuildError."""
    try:
        check_binary_structure(model)
    except StructureError as e:
        raise NonBinaryActivationError(f"{e}; use a W1A1 model (binary weights and activations)") from e


def check_board(model: ModelWrapper, board_name: str, board) -> None:
    """Layers that cannot fit the board at any folding, named (each kind checks its own)."""
    for node in model.graph.node:
        kind_of(node).check_board(model, node, board_name, board)


def check_hw_graph(model: ModelWrapper) -> None:
    """Raise a BuildError unless every node has a layer kind that accepts it
    and the nodes form one chain (the stage graph takes branches, but no
    layer kind makes them yet)."""
    nodes = list(model.graph.node)
    kinds = [kind_of(node) for node in nodes]
    for a, b in zip(nodes, nodes[1:]):
        if model.find_consumer(a.output[0]) is not b:
            raise UnsupportedLayerError(f"layer {describe(a)} does not feed {describe(b)}: "
                                        "only a single chain of layers (no branches) is supported")
    for kind in dict.fromkeys(kinds):
        mine = [n for n, k in zip(nodes, kinds) if k is kind]
        for i, node in enumerate(mine):
            kind.check(model, node, i, len(mine))
