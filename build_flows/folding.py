"""PE/SIMD folding of the HW graph: from a cycles-per-frame target or from a
FINN-format folding JSON ({"Defaults": {}, "<node name>": {"PE": .., "SIMD": ..}}),
checked against what our RTL and FINN's sliding window can implement.

Rules (ours, FINN-like): an MVAU raises SIMD first, then PE, until it meets the
target; a convolution's SIMD must divide its input channels (the sliding
window emits SIMD channels per beat) and the sliding window takes the SIMD of
the MVAU it feeds; a max-pool's SIMD (FINN: Pool PE, and the SIMD of its
depthwise window) divides the channels; LabelSelect raises PE.
"""

from __future__ import annotations

import json
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from build_flows.build_errors import FoldingError


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _producer_swg(model: ModelWrapper, node):
    prod = model.find_producer(node.input[0])
    if prod is not None and prod.op_type.startswith("ConvolutionInputGenerator"):
        return prod
    return None


def mvau_cycles(inst) -> int:
    """Cycles per frame of an MVAU on our mvtu: MH/PE * MW/SIMD per vector."""
    mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
    vecs = 1
    for d in inst.get_nodeattr("numInputVectors"):
        vecs *= d
    return (mh // inst.get_nodeattr("PE")) * (mw // inst.get_nodeattr("SIMD")) * vecs


def pool_cycles(model: ModelWrapper, node) -> int:
    """Cycles per frame of the binary max-pool that replaces SWG + Pool: one
    input beat of SIMD channels per cycle."""
    swg = getCustomOp(_producer_swg(model, node))
    h, w = swg.get_nodeattr("IFMDim")
    return h * w * swg.get_nodeattr("IFMChannels") // getCustomOp(node).get_nodeattr("PE")


def labelselect_cycles(inst) -> int:
    return max(inst.get_nodeattr("Labels") // inst.get_nodeattr("PE"), inst.get_nodeattr("K") + 1)


def layer_cycles(model: ModelWrapper, node) -> int:
    inst = getCustomOp(node)
    if node.op_type == "MVAU":
        return mvau_cycles(inst)
    if node.op_type == "Pool":
        return pool_cycles(model, node)
    if node.op_type == "LabelSelect":
        return labelselect_cycles(inst)
    return 0


def _set_mvau(model, node, target: int) -> None:
    inst = getCustomOp(node)
    swg = _producer_swg(model, node)
    simd_max = getCustomOp(swg).get_nodeattr("IFMChannels") if swg is not None else inst.get_nodeattr("MW")
    inst.set_nodeattr("PE", 1)
    for simd in divisors(simd_max):
        inst.set_nodeattr("SIMD", simd)
        if mvau_cycles(inst) <= target:
            return
    for pe in divisors(inst.get_nodeattr("MH")):
        inst.set_nodeattr("PE", pe)
        if mvau_cycles(inst) <= target:
            return


def fold_for_target(model: ModelWrapper, target_cycles: int) -> ModelWrapper:
    """Smallest folding per layer that meets target_cycles per frame (or the
    fastest the layer can go)."""
    for node in model.graph.node:
        inst = getCustomOp(node)
        if node.op_type == "MVAU":
            _set_mvau(model, node, target_cycles)
        elif node.op_type == "Pool":
            for pe in divisors(inst.get_nodeattr("Channels")):
                inst.set_nodeattr("PE", pe)
                if pool_cycles(model, node) <= target_cycles:
                    break
        elif node.op_type == "LabelSelect":
            for pe in divisors(inst.get_nodeattr("Labels")):
                inst.set_nodeattr("PE", pe)
                if labelselect_cycles(inst) <= target_cycles:
                    break
    sync_windows(model)
    return model


def sync_windows(model: ModelWrapper) -> None:
    """A sliding window takes the SIMD of the MVAU or Pool (PE) it feeds."""
    for node in model.graph.node:
        if node.op_type in ("MVAU", "Pool"):
            swg = _producer_swg(model, node)
            if swg is not None:
                attr = "SIMD" if node.op_type == "MVAU" else "PE"
                getCustomOp(swg).set_nodeattr("SIMD", getCustomOp(node).get_nodeattr(attr))


FOLD_ATTRS = {"MVAU": ("PE", "SIMD"), "Pool": ("PE",), "LabelSelect": ("PE",),
              "ConvolutionInputGenerator": ("SIMD",)}


def apply_folding_json(model: ModelWrapper, path: Path) -> ModelWrapper:
    """Set PE/SIMD from a FINN-format folding JSON; unknown layer names or
    attributes raise FoldingError. Sliding windows follow their consumer."""
    try:
        cfg = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise FoldingError(f"folding file {path} not found; pass an existing FINN-format JSON") from e
    except json.JSONDecodeError as e:
        raise FoldingError(f"folding file {path} is not valid JSON ({e}); fix the file") from e
    if not isinstance(cfg, dict):
        raise FoldingError(f"folding file {path} must hold a JSON object of layer name -> attributes")
    names = {n.name: n for n in model.graph.node}
    unknown = sorted(k for k in cfg if k != "Defaults" and k not in names)
    if unknown:
        raise FoldingError(f"folding file {path} names unknown layer(s) {unknown}; the design's "
                           f"layers are {sorted(names)} (see folding_config.json of a build)")
    for name, attrs in cfg.items():
        if name == "Defaults":
            continue
        node = names[name]
        allowed = FOLD_ATTRS.get(node.op_type, ())
        inst = getCustomOp(node)
        for key, value in attrs.items():
            if key not in allowed:
                if key in ("ram_style", "resType", "mem_mode", "impl_style", "parallel_window",
                           "runtime_writeable_weights", "depth", "inFIFODepths", "outFIFODepths"):
                    continue  # FINN implementation attributes: our RTL chooses its own
                raise FoldingError(f"folding file {path}: layer {name} ({node.op_type}) has no "
                                   f"attribute {key!r}; use {list(allowed)}")
            if not isinstance(value, int) or value < 1:
                raise FoldingError(f"folding file {path}: {name}.{key}={value!r} must be a positive integer")
            inst.set_nodeattr(key, value)
    sync_windows(model)
    check_folding(model)
    return model


def check_folding(model: ModelWrapper) -> None:
    """Raise FoldingError naming the layer, its PE/SIMD and MH/MW if a folding
    does not divide."""
    for node in model.graph.node:
        inst = getCustomOp(node)
        if node.op_type == "MVAU":
            mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
            pe, simd = inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")
            if mh % pe:
                raise FoldingError(f"layer {node.name}: PE={pe} does not divide MH={mh}; "
                                   f"choose PE from {divisors(mh)}")
            if mw % simd:
                raise FoldingError(f"layer {node.name}: SIMD={simd} does not divide MW={mw}; "
                                   f"choose SIMD from {divisors(mw)}")
            swg = _producer_swg(model, node)
            if swg is not None:
                ch = getCustomOp(swg).get_nodeattr("IFMChannels")
                if ch % simd:
                    raise FoldingError(
                        f"layer {node.name}: SIMD={simd} does not divide its {ch} input channels "
                        f"(MW={mw} = kernel x channels; the sliding window {swg.name} streams "
                        f"SIMD channels per beat); choose SIMD from {divisors(ch)}")
        elif node.op_type in ("Pool", "LabelSelect"):
            total = inst.get_nodeattr("Channels" if node.op_type == "Pool" else "Labels")
            pe = inst.get_nodeattr("PE")
            what = "channels" if node.op_type == "Pool" else "labels (MH)"
            if total % pe:
                raise FoldingError(f"layer {node.name}: PE={pe} does not divide its {total} {what}; "
                                   f"choose PE from {divisors(total)}")


def folding_dict(model: ModelWrapper) -> dict:
    """The folding as FINN-format JSON data."""
    cfg: dict = {"Defaults": {}}
    for node in model.graph.node:
        attrs = FOLD_ATTRS.get(node.op_type)
        if attrs:
            inst = getCustomOp(node)
            cfg[node.name] = {a: int(inst.get_nodeattr(a)) for a in attrs}
    return cfg
