"""Stitching: a StageGraph -> one top module (templates/rtl/stitched_top.v.j2)
and a self-contained RTL folder that Verilator, Yosys and Vivado read:

    rtl/
      filelist.f        every source in compile order (packages first, the top last)
      *.sv *.v          our hw/ modules and FINN's generated ones, copied
      sdbnn_top.sv      the stitched top
      *.mem *.dat       every $readmemh file (plain names, read from the run folder)

Each edge is a stream e<i> from its producer; an edge with a FIFO has an
axis_fifo from e<i> to e<i>q, which its consumer reads. Probes add what only
simulation needs (written to files in the simulator's run folder): FIFO
occupancy monitors (OCCUPANCY_FILE), a record of every beat of every edge with
protocol checks and back-pressure counts (LINKS_FILE), and a random throttle
on the producer side of each internal edge (e<i> -> axis_throttle -> e<i>t).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from build_flows.templating import render

from build_flows.rtl.graph import STYLES, Stage, StageGraph

TOP = "sdbnn_top"
OCCUPANCY_FILE = "fifo_occupancy.txt"
LINKS_FILE = "links.txt"
FILELIST = "filelist.f"


def _instance(st: Stage, ins: list[str], outs: list[str], padded: list, assigns: list) -> dict:
    """Template data of one instance: its port connections to the edge wires."""
    style = STYLES[st.style]
    rst = "!rst" if st.style == "finn" else "rst"
    conns = [(style["clk"], "clk"), (style["rst"], rst)]
    for port, wire in zip(st.inputs, ins):
        data = f"{wire}_tdata"
        if port.padded > port.width:
            data = f"{{{port.padded - port.width}'b0, {wire}_tdata}}"
        conns += [(st.signal(port, 0), data), (st.signal(port, 1), f"{wire}_tvalid"),
                  (st.signal(port, 2), f"{wire}_tready")]
    for port, wire in zip(st.outputs, outs):
        data = f"{wire}_tdata"
        if port.padded > port.width:
            data = f"{st.name}_{port.name}_padded"
            padded.append({"name": data, "width": port.padded})
            assigns.append((f"{wire}_tdata", f"{data}[{port.width - 1}:0]"))
        conns += [(st.signal(port, 0), data), (st.signal(port, 1), f"{wire}_tvalid"),
                  (st.signal(port, 2), f"{wire}_tready")]
    conns += list(st.ties.items())
    return {"name": st.name, "op": st.op, "module": st.module, "params": st.params,
            "conns": conns, "fifo_in": ins[0] if ins else "", "fifo_out": outs[0] if outs else ""}


@dataclass
class Probes:
    """Simulation-only additions to a stitched top, never part of a deployed rtl/."""

    occupancy: bool = False  # largest occupancy of each FIFO -> OCCUPANCY_FILE
    # edge index -> its words per frame: every beat of those edges on the first
    # +link_frames=N frames (a run-time argument, so one compiled model serves
    # every share of the frames) goes to LINKS_FILE, with an AXI-Stream protocol
    # check and a count of the back-pressure cycles of every edge
    link_words: dict[int, int] | None = None
    throttles: dict[int, Stage] = field(default_factory=dict)  # edge index -> axis_throttle

    def stages(self) -> list[Stage]:
        return list(self.throttles.values())


def render_top(graph: StageGraph, probes: Probes | None = None) -> str:
    """The stitched top of the graph (FIFOs from each edge's fifo_depth)."""
    graph.validate()
    probes = probes or Probes()
    wires, padded, assigns, instances = [], [], [], []
    src_wire, dst_wire = {}, {}  # edge index -> wire driven by its producer / read by its consumer
    fifos = {st.name: st for st in graph.fifo_stages()}
    for i, e in enumerate(graph.edges):
        w = graph.width(e)
        wires.append({"name": f"e{i}", "width": w})
        src_wire[i] = dst_wire[i] = f"e{i}"
        if i in probes.throttles:
            wires.append({"name": f"e{i}t", "width": w})
            dst_wire[i] = f"e{i}t"
        if e.name in fifos:
            wires.append({"name": f"e{i}q", "width": w})
            dst_wire[i] = f"e{i}q"
    for i, e in enumerate(graph.edges):
        if e.src is None:
            assigns += [(f"e{i}_tdata", "s_axis_tdata"), (f"e{i}_tvalid", "s_axis_tvalid"),
                        ("s_axis_tready", f"e{i}_tready")]
        if e.dst is None:
            assigns += [("m_axis_tdata", f"e{i}_tdata"), ("m_axis_tvalid", f"e{i}_tvalid"),
                        (f"e{i}_tready", "m_axis_tready")]
    for st in graph.layers():
        ins = [dst_wire[graph.edges.index(graph.in_edge(st.name, p))] for p in range(len(st.inputs))]
        outs = [src_wire[graph.edges.index(graph.out_edge(st.name, p))] for p in range(len(st.outputs))]
        instances.append(_instance(st, ins, outs, padded, assigns))
        for p in range(len(st.outputs)):
            e = graph.out_edge(st.name, p)
            i = graph.edges.index(e)
            fifo_in = f"e{i}"
            if i in probes.throttles:
                instances.append(_instance(probes.throttles[i], [f"e{i}"], [f"e{i}t"], padded, assigns))
                fifo_in = f"e{i}t"
            if e.name in fifos:
                instances.append(_instance(fifos[e.name], [fifo_in], [f"e{i}q"], padded, assigns))
    links = [{"i": i, "width": graph.width(graph.edges[i]), "words": n}
             for i, n in sorted((probes.link_words or {}).items())]
    return render(
        "rtl/stitched_top.v.j2", trim=True, top=TOP, instances=instances, wires=wires,
        padded=padded, assigns=assigns, in_width=graph.width(graph.input_edge),
        out_width=graph.width(graph.output_edge), monitor=probes.occupancy,
        occupancy_file=OCCUPANCY_FILE, links=links, links_file=LINKS_FILE)


@dataclass
class RtlDir:
    """A written RTL folder: its path, the sources in compile order (the top
    last) and its memory files."""

    path: Path
    sources: list[Path]
    mem_files: list[Path]

    @classmethod
    def read(cls, path: Path) -> "RtlDir":
        path = Path(path)
        names = (path / FILELIST).read_text().split()
        return cls(path, [path / n for n in names], sorted([*path.glob("*.mem"), *path.glob("*.dat")]))

    def mem_texts(self) -> dict[str, str]:
        return {p.name: p.read_text() for p in self.mem_files}


def all_stages(graph: StageGraph) -> list[Stage]:
    return [*graph.layers(), *graph.fifo_stages()]


def write_rtl_dir(graph: StageGraph, rtl_dir: Path, probes: Probes | None = None,
                  sources_from: Path | None = None) -> RtlDir:
    """Write the self-contained RTL folder of the graph (an old one is replaced).
    sources_from: take every source and memory file from that RTL folder (an
    earlier build's rtl/, perhaps edited by hand) instead of the stages'."""
    rtl_dir = Path(rtl_dir)
    top_text = render_top(graph, probes)
    shutil.rmtree(rtl_dir, ignore_errors=True)
    rtl_dir.mkdir(parents=True)
    seen: dict[str, Path] = {}
    mems: dict[str, str] = {}
    for st in [*all_stages(graph), *(probes.stages() if probes else [])]:
        for src in st.sources:
            if src.name not in seen:
                origin = Path(sources_from) / src.name if sources_from else src
                if not origin.exists():  # a verification-only module, not in the build's rtl/
                    origin = src
                shutil.copyfile(origin, rtl_dir / src.name)
                seen[src.name] = rtl_dir / src.name
        mems.update(st.mem_files)
    if sources_from:
        mems.update(RtlDir.read(sources_from).mem_texts())
    top = rtl_dir / f"{TOP}.sv"
    top.write_text(top_text)
    files = sorted(seen.values(), key=lambda p: (not p.name.endswith("_pkg.sv"), p.name)) + [top]
    (rtl_dir / FILELIST).write_text("".join(f"{p.name}\n" for p in files))
    for name, text in mems.items():
        (rtl_dir / name).write_text(text)
    return RtlDir.read(rtl_dir)
