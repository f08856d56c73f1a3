"""HW graph -> stage graph: each node's layer kind (ops registry) makes its
stage; nodes that another stage implements (a max-pool's window) are
skipped; width converters go on edges whose two ends differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from build_flows.ops import REGISTRY, MapContext, kind_of
from build_flows.rtl.graph import StageGraph


def _numel(model: ModelWrapper, tensor: str) -> int:
    return int(np.prod(model.get_tensor_shape(tensor)))


def map_to_stages(model: ModelWrapper, gen_dir: Path, part: str, clk_ns: float) -> StageGraph:
    """The stage graph of a (folded) chain-shaped HW graph, FIFOs not yet sized."""
    ctx = MapContext(Path(gen_dir), part, clk_ns)
    stages = []
    for node in model.graph.node:
        kind = kind_of(node)
        if kind.absorbed(model, node):
            continue
        st = kind.stage(model, node, ctx)
        ctx.stage_of_tensor[st.out_tensor] = st
        stages.append(st)
    graph = StageGraph.chain(stages, [_numel(model, st.out_tensor) for st in stages],
                             _numel(model, stages[0].in_tensor))
    REGISTRY["StreamingDataWidthConverter"].insert(graph, model, ctx)
    graph.validate()
    return graph
