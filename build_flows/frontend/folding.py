"""PE/SIMD folding of the HW graph, from a cycles-per-frame target or from a
FINN-format folding JSON ({"Defaults": {}, "<node name>": {"PE": .., "SIMD": ..}}).
Each layer kind (ops/) holds its own rule, cycle formula and divisibility
check; this file only loops over the graph."""

from __future__ import annotations

from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from build_flows.config import read_json_object
from build_flows.errors import FoldingError
from build_flows.ops import REGISTRY, kind_of

# FINN implementation attributes a folding JSON may carry: our RTL chooses its own
IGNORED_ATTRS = ("ram_style", "resType", "mem_mode", "impl_style", "parallel_window",
                 "runtime_writeable_weights", "depth", "inFIFODepths", "outFIFODepths")


def _sync(model: ModelWrapper) -> None:
    for node in model.graph.node:
        kind_of(node).sync(model, node)


def fold_for_target(model: ModelWrapper, target_cycles: int) -> ModelWrapper:
    """Smallest folding per layer that meets target_cycles per frame (or the
    fastest the layer can go)."""
    for node in model.graph.node:
        kind_of(node).fold(model, node, target_cycles)
    _sync(model)
    return model


def apply_folding_json(model: ModelWrapper, path: Path) -> ModelWrapper:
    """Set PE/SIMD from a FINN-format folding JSON; unknown layer names or
    attributes raise FoldingError. Sliding windows follow their consumer."""
    cfg = read_json_object(path, "folding file", FoldingError)
    names = {n.name: n for n in model.graph.node}
    unknown = sorted(k for k in cfg if k != "Defaults" and k not in names)
    if unknown:
        raise FoldingError(f"folding file {path} names unknown layer(s) {unknown}; the design's "
                           f"layers are {sorted(names)} (see folding_config.json of a build)")
    for name, attrs in cfg.items():
        if name == "Defaults":
            continue
        node = names[name]
        allowed = kind_of(node).fold_attrs.get(node.op_type, ())
        if not isinstance(attrs, dict):
            raise FoldingError(f"folding file {path}: {name} must map to an object of attributes")
        inst = getCustomOp(node)
        for key, value in attrs.items():
            if key not in allowed:
                if key in IGNORED_ATTRS:
                    continue
                raise FoldingError(f"folding file {path}: layer {name} ({node.op_type}) has no "
                                   f"attribute {key!r}; use {list(allowed)}")
            if not isinstance(value, int) or value < 1:
                raise FoldingError(f"folding file {path}: {name}.{key}={value!r} must be a positive integer")
            inst.set_nodeattr(key, value)
    _sync(model)
    check_folding(model)
    return model


def check_folding(model: ModelWrapper) -> None:
    """Raise FoldingError naming the layer, its PE/SIMD and MH/MW if a folding
    does not divide."""
    for node in model.graph.node:
        kind_of(node).check_folding(model, node)


def folding_dict(model: ModelWrapper) -> dict:
    """The folding as FINN-format JSON data."""
    cfg: dict = {"Defaults": {}}
    for node in model.graph.node:
        attrs = REGISTRY[node.op_type].fold_attrs.get(node.op_type, ())
        if attrs:
            inst = getCustomOp(node)
            cfg[node.name] = {a: int(inst.get_nodeattr(a)) for a in attrs}
    return cfg
