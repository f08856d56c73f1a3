"""The stage graph: module instances (stages) joined by AXI-Stream edges, one
optional FIFO on each edge. It is what the rtl step stitches, what the
simulator runs, what the estimate step synthesises and what the report lists.

A stage has numbered input and output ports; an edge joins one output port of
a stage to one input port of another, or the top's input (src None) to a
stage, or a stage to the top's output (dst None). Fan-out and join are stages
with several ports (a duplicate, an add); every port is joined exactly once.
Every stream is the flattened NHWC tensor of the HW graph, `width / elem_bits`
elements per beat, element 0 in the low bits.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from build_flows.errors import ToolError

STYLES = {  # port-name suffixes and clock / reset of each interface convention
    "ours": {"clk": "clk", "rst": "rst", "suffix": ("_tdata", "_tvalid", "_tready")},
    "finn": {"clk": "ap_clk", "rst": "ap_rst_n", "suffix": ("_TDATA", "_TVALID", "_TREADY")},
}


@dataclass
class Port:
    """One AXI-Stream port of a module."""

    name: str  # signal prefix in the module: s_axis, m_axis, in0_V, out0_V ...
    width: int  # logical tdata bits
    elem_bits: int = 1  # bits per element (lanes = width / elem_bits)
    tensor: str = ""  # HW-graph tensor it carries (golden data for localisation)
    padded: int = 0  # physical port width (FINN pads to bytes); 0 = width
    signed: bool = False  # elements are two's complement (e.g. accumulators of integer input)
    # beat order != the tensor's: (shape, axes) such that a pixel's elements in
    # tensor order, reshaped to shape and transposed by axes, are in beat order
    reorder: tuple | None = None

    def __post_init__(self):
        self.padded = self.padded or self.width


@dataclass
class Stage:
    """One module instance."""

    name: str  # instance name (HW node name, or the edge's fifo_<i>)
    op: str  # layer kind (ops registry key), e.g. "MVAU", "MaxPool", "FIFO"
    module: str  # Verilog module
    params: dict  # module parameters
    sources: list[Path]  # RTL files (deduplicated by file name when stitched)
    inputs: list[Port]
    outputs: list[Port]
    style: str = "ours"  # "ours": clk/rst, active-high reset; "finn": ap_clk/ap_rst_n
    mem_files: dict[str, str] = field(default_factory=dict)  # $readmemh name -> text
    pe: int = 0  # folding, for the report (0 = n/a)
    simd: int = 0
    expected_cycles: int = 0  # analytic cycles per frame
    depth: int = 0  # FIFO depth (FIFO stages only)
    finn_resources: dict = field(default_factory=dict)  # FINN's estimate (FINN generators)
    ties: dict[str, str] = field(default_factory=dict)  # unused input ports -> constant

    # the single-stream view most stages have
    @property
    def in_width(self) -> int:
        return self.inputs[0].width

    @property
    def out_width(self) -> int:
        return self.outputs[0].width

    @property
    def in_elem_bits(self) -> int:
        return self.inputs[0].elem_bits

    @property
    def out_elem_bits(self) -> int:
        return self.outputs[0].elem_bits

    @property
    def in_tensor(self) -> str:
        return self.inputs[0].tensor

    @property
    def out_tensor(self) -> str:
        return self.outputs[0].tensor

    def signal(self, port: Port, which: int) -> str:
        """Module port name: which 0 = tdata, 1 = tvalid, 2 = tready."""
        return port.name + STYLES[self.style]["suffix"][which]


def stream_stage(name: str, op: str, module: str, params: dict, sources: list[Path],
                 in_width: int, out_width: int, in_elem_bits: int = 1, out_elem_bits: int = 1,
                 in_tensor: str = "", out_tensor: str = "", style: str = "ours",
                 in_padded: int = 0, out_padded: int = 0, in_signed: bool = False,
                 out_signed: bool = False, **kw) -> Stage:
    """A one-input, one-output stage (s_axis/m_axis, or FINN's in0_V/out0_V)."""
    names = ("s_axis", "m_axis") if style == "ours" else ("in0_V", "out0_V")
    return Stage(name, op, module, params, sources,
                 [Port(names[0], in_width, in_elem_bits, in_tensor, in_padded, in_signed)],
                 [Port(names[1], out_width, out_elem_bits, out_tensor, out_padded, out_signed)],
                 style=style, **kw)


@dataclass
class Edge:
    """One stream: src.outputs[src_port] -> dst.inputs[dst_port]."""

    src: str | None  # producing stage; None: the top's input s_axis
    dst: str | None  # consuming stage; None: the top's output m_axis
    numel: int  # elements per frame
    src_port: int = 0
    dst_port: int = 0
    fifo_depth: int = 0  # words of the axis_fifo on this edge; 0: a plain wire
    name: str = ""  # fifo instance name (internal edges): fifo_<i>


class StageGraph:
    """Stages in insertion order (a topological order for the builders here)
    and the edges between them."""

    def __init__(self):
        self.stages: dict[str, Stage] = {}
        self.edges: list[Edge] = []

    # -- building
    def add(self, stage: Stage) -> Stage:
        if stage.name in self.stages:
            raise ToolError(f"stage graph: two stages named {stage.name}", "rtl")
        self.stages[stage.name] = stage
        return stage

    def connect(self, src: str | None, dst: str | None, numel: int, src_port: int = 0,
                dst_port: int = 0) -> Edge:
        edge = Edge(src, dst, int(numel), src_port, dst_port)
        self.edges.append(edge)
        self._name_fifos()
        return edge

    def insert_after(self, edge: Edge, stage: Stage) -> None:
        """Put a one-in/one-out stage on `edge` (same element count): src ->
        stage -> dst; the new edges take the old one's place in the order."""
        self.add(stage)
        i = self.edges.index(edge)
        first = Edge(edge.src, stage.name, edge.numel, edge.src_port, 0)
        second = Edge(stage.name, edge.dst, edge.numel, 0, edge.dst_port)
        self.edges[i:i + 1] = [first, second]
        self._name_fifos()

    @classmethod
    def chain(cls, stages: list[Stage], numels: list[int], in_numel: int) -> "StageGraph":
        """stages[0] -> stages[1] -> ...; numels[i]: elements per frame out of stage i."""
        g = cls()
        for st in stages:
            g.add(st)
        g.connect(None, stages[0].name, in_numel)
        for a, b, n in zip(stages, stages[1:], numels):
            g.connect(a.name, b.name, n)
        g.connect(stages[-1].name, None, numels[-1])
        return g

    def _name_fifos(self) -> None:
        for i, e in enumerate(self.internal_edges()):
            e.name = f"fifo_{i}"

    # -- queries
    def internal_edges(self) -> list[Edge]:
        return [e for e in self.edges if e.src is not None and e.dst is not None]

    @property
    def input_edge(self) -> Edge:
        return next(e for e in self.edges if e.src is None)

    @property
    def output_edge(self) -> Edge:
        return next(e for e in self.edges if e.dst is None)

    def src_port(self, edge: Edge) -> Port:
        """The port that drives the edge (the top's input: the first stage's input port)."""
        if edge.src is None:
            return self.stages[edge.dst].inputs[edge.dst_port]
        return self.stages[edge.src].outputs[edge.src_port]

    def dst_port(self, edge: Edge) -> Port:
        if edge.dst is None:
            return self.stages[edge.src].outputs[edge.src_port]
        return self.stages[edge.dst].inputs[edge.dst_port]

    def width(self, edge: Edge) -> int:
        return self.src_port(edge).width

    def elem_bits(self, edge: Edge) -> int:
        return self.src_port(edge).elem_bits

    def words_per_frame(self, edge: Edge) -> int:
        return edge.numel * self.elem_bits(edge) // self.width(edge)

    def layers(self) -> list[Stage]:
        """The stages in stream order (a topological order: producers first)."""
        pending = {name: 0 for name in self.stages}
        for e in self.internal_edges():
            pending[e.dst] += 1
        ready = [e.dst for e in self.edges if e.src is None]
        ready += [n for n, k in pending.items() if k == 0 and n not in ready]
        order: list[Stage] = []
        while ready:
            name = ready.pop(0)
            order.append(self.stages[name])
            for e in self.edges:
                if e.src == name and e.dst is not None:
                    pending[e.dst] -= 1
                    if pending[e.dst] == 0:
                        ready.append(e.dst)
        if len(order) != len(self.stages):
            raise ToolError("stage graph: it has a cycle", "rtl")
        return order

    def in_edge(self, stage: str, port: int = 0) -> Edge:
        return next(e for e in self.edges if e.dst == stage and e.dst_port == port)

    def out_edge(self, stage: str, port: int = 0) -> Edge:
        return next(e for e in self.edges if e.src == stage and e.src_port == port)

    def validate(self) -> None:
        """Every port joined exactly once, one top input and output, widths equal."""
        self.layers()  # no cycles
        seen: dict[tuple, int] = {}
        for e in self.edges:
            for key in (("out", e.src, e.src_port), ("in", e.dst, e.dst_port)):
                seen[key] = seen.get(key, 0) + 1
        for st in self.stages.values():
            for kind, ports in (("in", st.inputs), ("out", st.outputs)):
                for p in range(len(ports)):
                    if seen.get((kind, st.name, p), 0) != 1:
                        raise ToolError(f"stage graph: {kind}put port {p} of {st.name} is joined "
                                        f"{seen.get((kind, st.name, p), 0)} times, not once", "rtl")
        if seen.get(("out", None, 0)) != 1 or seen.get(("in", None, 0)) != 1:
            raise ToolError("stage graph: needs exactly one top input and one top output", "rtl")
        for e in self.internal_edges():
            a, b = self.src_port(e), self.dst_port(e)
            if a.width != b.width or a.elem_bits != b.elem_bits:
                raise ToolError(f"stage graph: {e.src} sends {a.width} b ({a.elem_bits} b elements) "
                                f"but {e.dst} takes {b.width} b ({b.elem_bits} b)", "rtl")

    # -- FIFOs
    def with_depths(self, depths: dict[str, int]) -> "StageGraph":
        """A copy with depths[edge name] words of FIFO on those edges."""
        g = copy.copy(self)
        g.edges = [copy.copy(e) for e in self.edges]
        for e in g.edges:
            if e.name in depths:
                e.fifo_depth = int(depths[e.name])
        return g

    def depths(self) -> dict[str, int]:
        return {e.name: e.fifo_depth for e in self.internal_edges()}

    def fifo_stages(self) -> list[Stage]:
        """One axis_fifo stage per edge with a FIFO, in edge order."""
        from build_flows.ops.fifo import fifo_stage
        return [fifo_stage(e.name, self.src_port(e), e.fifo_depth)
                for e in self.internal_edges() if e.fifo_depth]
