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

# FINN implementation attributes a folding JSON may carry: the values our
# hardware implements are accepted, any other is refused by name, never ignored
IMPLEMENTED = {
    "ram_style": (("auto",), "synthesis infers our MVTU's weight and threshold memories"),
    "resType": (("auto", "lut"), "our MVTU computes in LUTs (XNOR-popcount), no DSPs"),
    "mem_mode": (("internal_embedded", "const"), "our MVTU holds its weights inside the layer"),
    "impl_style": (("rtl",), "every stage is RTL"),
    "runtime_writeable_weights": ((0,), "weights are fixed at build time"),
}
# FIFO depths: the size-fifos step measures them, the file's are not used (and the build says so)
FIFO_ATTRS = ("depth", "inFIFODepths", "outFIFODepths")


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


# share of the board's LUT / BRAM36 / DSP that the layers' analytic estimate may use
# when the build picks the folding itself: the rest is room for FIFOs, width
# converters, the estimate's error and the shell (DMA, interconnect)
FIT_SHARE = 0.7


def estimate_total(model: ModelWrapper, part: str) -> dict:
    """FINN's analytic LUT / BRAM36 / DSP of the layers at their present
    folding (each layer kind's node_estimate), summed."""
    total = {"LUT": 0, "FF": 0, "BRAM36": 0.0, "DSP": 0}
    for node in model.graph.node:
        for k, v in kind_of(node).node_estimate(model, node, part).items():
            total[k] += v
    total["BRAM36"] = round(total["BRAM36"], 1)
    return total


def fits(total: dict, board, share: float = FIT_SHARE) -> bool:
    return all(total[k] <= share * getattr(board, k) for k in ("LUT", "BRAM36", "DSP"))


def bottleneck_cycles(model: ModelWrapper) -> int:
    return max(kind_of(n).cycles(model, n) for n in model.graph.node)


def fold_fastest_fitting(model: ModelWrapper, board, share: float = FIT_SHARE) -> tuple[ModelWrapper, dict]:
    """The fastest folding whose analytic estimate fits `share` of the board:
    fold_for_target at the smallest cycles-per-frame target that fits (a
    bisection over targets between the fastest folding the layers allow and
    the most folded one; the estimate grows as the target shrinks). Returns
    the model and {"target_cycles", "cycles", "estimate", "fits"}; fits is
    False when even the most folded design exceeds the share (the build's
    board check then names what is over)."""
    lo = bottleneck_cycles(fold_for_target(model, 1))  # the fastest any folding goes
    fold_for_target(model, lo)  # the smallest folding that goes as fast
    est = estimate_total(model, board.part)
    if fits(est, board, share):
        return model, {"target_cycles": lo, "cycles": lo, "estimate": est, "fits": True}
    hi = bottleneck_cycles(fold_for_target(model, 1 << 62))  # the most folded
    est = estimate_total(model, board.part)
    if not fits(est, board, share):
        return model, {"target_cycles": hi, "cycles": hi, "estimate": est, "fits": False}
    while hi > lo + max(1, lo // 100):  # to 1 %: finer steps change no layer's folding
        mid = (lo + hi) // 2
        fold_for_target(model, mid)
        if fits(estimate_total(model, board.part), board, share):
            hi = mid
        else:
            lo = mid
    fold_for_target(model, hi)
    return model, {"target_cycles": hi, "cycles": bottleneck_cycles(model),
                   "estimate": estimate_total(model, board.part), "fits": True}


def throughput_cap(model: ModelWrapper, target_cycles: int) -> dict | None:
    """None if every layer meets target_cycles per frame; else the layer
    that caps the throughput (the one with the most cycles), its cycles and
    why it cannot go faster."""
    cycles = {n.name: kind_of(n).cycles(model, n) for n in model.graph.node}
    name = max(cycles, key=cycles.get)
    if cycles[name] <= target_cycles:
        return None
    node = model.get_node_from_name(name)
    return {"target_cycles": target_cycles, "layer": name, "cycles": cycles[name],
            "why": kind_of(node).cap_reason(model, node)}


def apply_folding_json(model: ModelWrapper, path: Path, notes: list | None = None) -> ModelWrapper:
    """Set PE/SIMD from a FINN-format folding JSON; unknown layer names or
    attributes, implementation attributes with values our hardware does not
    implement and a sliding-window SIMD that differs from its consumer's raise
    FoldingError. FIFO depths in the file are not used: `notes` gets a line
    saying so."""
    cfg = read_json_object(path, "folding file", FoldingError)
    names = {n.name: n for n in model.graph.node}
    unknown = sorted(k for k in cfg if k != "Defaults" and k not in names)
    if unknown:
        raise FoldingError(f"folding file {path} names unknown layer(s) {unknown}; the design's "
                           f"layers are {sorted(names)} (see folding_config.json of a build)")
    given, fifo_keys = {}, set()
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
                if key in IMPLEMENTED:
                    values, why = IMPLEMENTED[key]
                    if value not in values:
                        raise FoldingError(
                            f"folding file {path}: {name}.{key}={value!r} is not implemented: {why}; "
                            f"use {' or '.join(map(repr, values))}, or drop the key")
                    continue
                if key in FIFO_ATTRS:
                    fifo_keys.add(key)
                    continue
                raise FoldingError(f"folding file {path}: layer {name} ({node.op_type}) has no "
                                   f"attribute {key!r}; use {list(allowed)}")
            if key == "parallel_window":
                if value not in (0, 1) or isinstance(value, bool):
                    raise FoldingError(f"folding file {path}: {name}.{key}={value!r} must be 0 or 1")
            elif not isinstance(value, int) or value < 1:
                raise FoldingError(f"folding file {path}: {name}.{key}={value!r} must be a positive integer")
            inst.set_nodeattr(key, value)
            given[(name, key)] = value
    _sync(model)
    for (name, key), value in given.items():  # a window's SIMD and parallel_window follow its consumer's
        now = getCustomOp(names[name]).get_nodeattr(key)
        if now != value:
            consumer = model.find_consumer(names[name].output[0])
            raise FoldingError(
                f"folding file {path}: {name}.{key}={value} conflicts with its consumer "
                f"{consumer.name if consumer is not None else '?'}, which needs {key}={now} (a "
                "sliding window streams its consumer's SIMD channels per beat, or, for a SIMD "
                "above the channels, one whole window a beat with parallel_window=1); drop "
                f"{name} from the file or make the two agree")
    check_folding(model)
    if fifo_keys and notes is not None:
        notes.append(f"FIFO depths in {path.name} ({', '.join(sorted(fifo_keys))}) are not used: "
                     "the size-fifos step measures every FIFO's depth")
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
