"""Verification of a stitched design: every beat of every link, on every
checked frame, against FINN's execution of the HW graph; the last layer's
integers against the model's logits; the classes against the reference;
the AXI-Stream protocol on every link; and every internal link stalled.

Two runs, each of a verification copy of the design (OUT/verify/<run>/rtl:
the build's own sources and memory files from OUT/rtl, a top with probes):

  free_running   no stall anywhere (the II and the latency are measured here)
  back_pressure  random input gaps and output stalls at the top, and a seeded
                 axis_throttle on the producer side of every internal link

A link is the stream out of a stage (or into the first one); it is compared
with the HW-graph tensor its producer computes, in stream order (flattened
NHWC), element by element. The HW graph's tensors come from the fast
executor (sim/executor.py) on every frame, which must first equal FINN's own
Python execution on every tensor of the first frames. The first link that
differs, in stream order, names the layer that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from build_flows.ops.base import HW_DIR
from build_flows.rtl.graph import Edge, Stage, StageGraph, stream_stage
from build_flows.rtl.stitch import Probes, write_rtl_dir
from build_flows.rtl.stream import unpack_stream
from build_flows.sim.stitched import StitchedRun, compile_design, merge_runs, run_design, shares

THROTTLE_PROB = 64  # per side and cycle, in 1/256: each internal link stalls about 25 % of cycles
FINN_ANCHOR_FRAMES = 2  # frames on which FINN's own execution checks the fast executor


@dataclass
class Difference:
    """The first element where the hardware and a reference disagree."""

    run: str  # free_running / back_pressure
    what: str  # e.g. "layer MVAU_2 (mvtu)" or "class (top output)"
    frame: int
    element: int
    numel: int
    hardware: int | str
    reference: int | str
    against: str  # the reference: "the HW graph", "PyTorch's logits", ...

    def __str__(self) -> str:
        return (f"{self.what} differs from {self.against} in the {self.run} run: frame "
                f"{self.frame}, element {self.element} of {self.numel}: hardware {self.hardware}, "
                f"{self.against} {self.reference}")


@dataclass
class Checked:
    """What one verification compared (report.json's sim.checked)."""

    frames: int = 0  # frames whose class was compared
    layer_frames: int = 0  # frames whose every link was compared
    links: int = 0  # links compared per frame
    elements_per_frame: int = 0  # elements compared per frame, over all links
    accumulators: str = ""  # what the last layer's integers were compared with
    links_stalled: dict[str, int] = field(default_factory=dict)  # link -> back-pressure cycles
    differences: list[Difference] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # protocol errors, named

    def summary(self) -> dict:
        return {"frames": self.frames, "layer_frames": self.layer_frames,
                "finn_frames": min(self.layer_frames, FINN_ANCHOR_FRAMES), "links": self.links,
                "elements_per_frame": self.elements_per_frame, "accumulators": self.accumulators,
                "protocol_checked": True, "internal_stalls": bool(self.links_stalled)}


def link_order(graph: StageGraph) -> list[Edge]:
    """Every edge, in stream order: the top input, then each stage's outputs."""
    order = [graph.input_edge]
    for st in graph.layers():
        order += [graph.out_edge(st.name, p) for p in range(len(st.outputs))]
    return order


def link_name(graph: StageGraph, edge: Edge) -> str:
    src = edge.src or "input"
    dst = edge.dst or "output"
    return f"{src}->{dst}"


def _what(graph: StageGraph, edge: Edge) -> str:
    if edge.src is None:
        return "the input stream (harness)"
    st = graph.stages[edge.src]
    return f"layer {st.name} ({st.module})"


def throttles(graph: StageGraph, seed: int) -> dict[int, Stage]:
    """A seeded axis_throttle for every internal edge."""
    out = {}
    for i, e in enumerate(graph.edges):
        if e.src is not None and e.dst is not None:
            port = graph.src_port(e)
            out[i] = stream_stage(f"throttle_e{i}", "Throttle", "axis_throttle",
                                  {"DATA_WIDTH": port.width, "STALL_PROB": THROTTLE_PROB,
                                   "SEED": (seed * 7919 + i * 104729 + 1) % (1 << 31)},
                                  [HW_DIR / "axis_throttle.sv"], port.width, port.width)
    return out


def probes_for(graph: StageGraph, stressed: bool, seed: int) -> Probes:
    words = {graph.edges.index(e): graph.words_per_frame(e) for e in graph.edges}
    return Probes(link_words=words, throttles=throttles(graph, seed) if stressed else {})


def write_verification_rtl(graph: StageGraph, build_rtl: Path, work: Path, stressed: bool,
                           seed: int):
    """The verification copy of the design in work/rtl (sources and memory
    files taken from the build's rtl/), and its probes."""
    probes = probes_for(graph, stressed, seed)
    return write_rtl_dir(graph, Path(work) / "rtl", probes, sources_from=build_rtl), probes


def run_verification(graph: StageGraph, build_rtl: Path, work: Path, frames: np.ndarray,
                     layer_frames: int, stressed: bool, stall_prob: float, seed: int,
                     timeout_cycles: int, trace: Path | None = None, threads: int = 1,
                     jobs: int = 1) -> StitchedRun:
    """One verification run over all frames; with jobs > 1 the frames are
    split into consecutive shares simulated from reset in that many
    processes at once (one compiled model), and the results joined in order.
    Every beat of every link is recorded on the first layer_frames frames."""
    from concurrent.futures import ThreadPoolExecutor
    rtl, probes = write_verification_rtl(graph, build_rtl, work, stressed, seed)
    parts = shares(len(frames), 1 if trace is not None else jobs)

    def run(k: int, start: int, stop: int) -> StitchedRun:
        return run_design(graph, rtl, frames[start:stop], stall_prob if stressed else 0.0,
                          seed + 7919 * k, probes, timeout_cycles=timeout_cycles, trace=trace,
                          threads=threads, link_frames=max(0, min(stop, layer_frames) - start))
    if len(parts) == 1:
        return run(0, 0, len(frames))
    compile_design(graph, rtl, threads)  # once: every share takes it from the cache
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        return merge_runs(list(pool.map(lambda a: run(*a), [(k, *p) for k, p in enumerate(parts)])))


def compare_links(graph: StageGraph, run: StitchedRun, name: str, ref: dict[str, np.ndarray],
                  layer_frames: int) -> Difference | None:
    """The first link (stream order) whose recorded beats differ from the
    reference tensors ref[tensor] (frames, numel) on the first layer_frames frames."""
    for e in link_order(graph):
        i = graph.edges.index(e)
        port = graph.src_port(e)
        want = ref[port.tensor][:layer_frames]
        if port.reorder is not None:  # the tensor in the stream's beat order
            shape, axes = port.reorder
            want = want.reshape(-1, *shape).transpose(0, *(a + 1 for a in axes))
        want = want.reshape(-1)
        words = run.links.get(i, [])
        got = unpack_stream(words, port.width, port.elem_bits, 1, port.signed).reshape(-1)
        bad = np.flatnonzero(got[: want.size] != want[: got.size])
        if bad.size or got.size != want.size:
            k = int(bad[0]) if bad.size else min(got.size, want.size)
            hw = int(got[k]) if k < got.size else "missing"
            return Difference(name, _what(graph, e), k // e.numel, k % e.numel, e.numel, hw,
                              int(want[k]) if k < want.size else "none (extra beat)",
                              "the HW graph")
    return None


def compare_values(name: str, what: str, against: str, got: np.ndarray,
                   want: np.ndarray) -> Difference | None:
    """The first differing element of two (frames, elements) arrays."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return Difference(name, what, 0, 0, int(want.size), f"shape {got.shape}",
                          f"shape {want.shape}", against)
    bad = np.argwhere(got != want)
    if not bad.size:
        return None
    f, k = (int(v) for v in bad[0])
    return Difference(name, what, f, k, int(want.shape[1]), int(got[f, k]), int(want[f, k]), against)


def protocol_errors(graph: StageGraph, run: StitchedRun, name: str) -> list[str]:
    return [f"{name} run: link {link_name(graph, graph.edges[i])} dropped tvalid or changed "
            f"tdata while stalled at cycle {cycle}" for i, cycle in run.violations]


def stalled_links(graph: StageGraph, run: StitchedRun) -> dict[str, int]:
    """Back-pressure cycles of every internal link in a run."""
    return {link_name(graph, e): run.stalls.get(graph.edges.index(e), 0)
            for e in graph.internal_edges()}


def check_runs(graph: StageGraph, runs: dict[str, StitchedRun], ref: dict[str, np.ndarray],
               layer_frames: int, ref_acc: np.ndarray, ref_classes: np.ndarray,
               acc_reference: str, host_classes: dict[str, np.ndarray] | None = None) -> Checked:
    """Every comparison on every run: the links against the HW graph, the last
    layer's integers (the stream into LabelSelect) against ref_acc (the
    model's logits as integers, named acc_reference), the classes, the
    protocol, extra words; and the back-pressure of every internal link in the
    back_pressure run. The first difference of each kind per run is kept.
    host_classes (a design with a host tail, no LabelSelect): the class of
    each run as the host computes it from the streamed integers, which are
    then the design's output and are compared with ref_acc on every frame."""
    links = link_order(graph)
    checked = Checked(frames=len(ref_classes), layer_frames=layer_frames, links=len(links),
                      elements_per_frame=sum(e.numel for e in links), accumulators=acc_reference)
    acc_edge = next((graph.in_edge(st.name) for st in graph.layers() if st.op == "LabelSelect"), None)
    if acc_edge is None and host_classes is None:
        checked.accumulators = "nothing (the design has no LabelSelect)"
    want_acc = ref_acc[:layer_frames]
    for name, run in runs.items():
        diffs = [compare_links(graph, run, name, ref, layer_frames)]
        if acc_edge is not None:
            port = graph.src_port(acc_edge)
            words = run.links.get(graph.edges.index(acc_edge), [])
            got = unpack_stream(words, port.width, port.elem_bits, 1, port.signed).reshape(-1)
            got = got[:want_acc.size].reshape(want_acc.shape) if got.size >= want_acc.size else got[None]
            diffs.append(compare_values(name, "the last layer's integers", acc_reference, got, want_acc))
        elif host_classes is not None:  # the output stream is the last layer's integers
            diffs.append(compare_values(name, "the last layer's integers (the output)", acc_reference,
                                        run.outputs, ref_acc))
        got_cls = run.outputs[:, :1] if host_classes is None else host_classes[name][:, None]
        diffs.append(compare_values(name, "the class (top output)" if host_classes is None
                                    else "the host's class", "the reference class",
                                    got_cls, ref_classes[:, None]))
        checked.differences += [d for d in diffs if d is not None]
        checked.violations += protocol_errors(graph, run, name)
        if run.extra_words:
            checked.violations.append(f"{name} run: {run.extra_words} output words beyond the "
                                      f"{len(run.outputs)} frames' words")
    checked.links_stalled = stalled_links(graph, runs["back_pressure"])
    return checked


def hw_reference(hw, frames: np.ndarray, tensors: list[str], say=print) -> dict[str, np.ndarray]:
    """The HW graph's tensors on every frame, {tensor: (frames, numel) int64}
    in the streams' encoding (BIPOLAR as bit 1 = +1, 0 = -1): the fast
    executor on all frames, checked first against FINN's Python execution
    (execute_onnx) on the first FINN_ANCHOR_FRAMES frames, every tensor."""
    from qonnx.core.datatype import DataType
    from build_flows.sim.executor import check_against_finn, execute
    fast = execute(hw, frames, tensors)
    check_against_finn(hw, frames[:FINN_ANCHOR_FRAMES], fast, tensors)
    out = {}
    for t in tensors:
        v = fast[t].reshape(len(frames), -1)
        out[t] = (v + 1) // 2 if hw.get_tensor_datatype(t) == DataType["BIPOLAR"] else v
    return out


def watchdog_cycles(graph: StageGraph) -> int:
    """Cycles without any handshake after which a run counts as stalled: far
    more than a frame's worth of every stage's work, even under stalls."""
    return max(200_000, 8 * sum(st.expected_cycles for st in graph.layers()))
