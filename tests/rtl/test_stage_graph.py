"""The stage graph takes branches: a fan-out and a join, stitched into one top
and simulated under stalls. The duplicate and the add are stubs written here
(no layer kind makes them yet); the branch between them is our axis_skid."""

from pathlib import Path

import numpy as np
import pytest

from build_flows.errors import ToolError
from build_flows.ops.base import HW_DIR
from build_flows.rtl.graph import Port, Stage, StageGraph, stream_stage
from build_flows.rtl.stitch import render_top, write_rtl_dir
from build_flows.sim.stitched import run_design, run_graph, size_fifos

DUP = """`default_nettype none
// test stub: every input word to both outputs (a fork with per-output flags)
module stub_dup #(parameter int W = 8) (
    input wire logic clk, input wire logic rst,
    input wire logic [W-1:0] s_axis_tdata, input wire logic s_axis_tvalid, output logic s_axis_tready,
    output logic [W-1:0] m0_axis_tdata, output logic m0_axis_tvalid, input wire logic m0_axis_tready,
    output logic [W-1:0] m1_axis_tdata, output logic m1_axis_tvalid, input wire logic m1_axis_tready);
  logic sent0, sent1;
  assign m0_axis_tdata = s_axis_tdata;
  assign m1_axis_tdata = s_axis_tdata;
  assign m0_axis_tvalid = s_axis_tvalid && !sent0;
  assign m1_axis_tvalid = s_axis_tvalid && !sent1;
  assign s_axis_tready = (sent0 || m0_axis_tready) && (sent1 || m1_axis_tready);
  always_ff @(posedge clk) begin
    if (rst || (s_axis_tvalid && s_axis_tready)) begin
      sent0 <= 1'b0;
      sent1 <= 1'b0;
    end else begin
      if (m0_axis_tvalid && m0_axis_tready) sent0 <= 1'b1;
      if (m1_axis_tvalid && m1_axis_tready) sent1 <= 1'b1;
    end
  end
endmodule
`default_nettype wire
"""

ADD = """`default_nettype none
// test stub: the sum (mod 2^W) of one word from each input
module stub_add #(parameter int W = 8) (
    input wire logic clk, input wire logic rst,
    input wire logic [W-1:0] s0_axis_tdata, input wire logic s0_axis_tvalid, output logic s0_axis_tready,
    input wire logic [W-1:0] s1_axis_tdata, input wire logic s1_axis_tvalid, output logic s1_axis_tready,
    output logic [W-1:0] m_axis_tdata, output logic m_axis_tvalid, input wire logic m_axis_tready);
  assign m_axis_tdata = s0_axis_tdata + s1_axis_tdata;
  assign m_axis_tvalid = s0_axis_tvalid && s1_axis_tvalid;
  assign s0_axis_tready = m_axis_tvalid && m_axis_tready;
  assign s1_axis_tready = m_axis_tvalid && m_axis_tready;
  wire unused = &{1'b0, clk, rst};
endmodule
`default_nettype wire
"""

W, NUMEL = 8, 16


def branching_graph(tmp_path: Path) -> StageGraph:
    """in -> dup -> (skid -> add.0, add.1) -> out: FIFOs on all four inner edges."""
    (tmp_path / "stub_dup.sv").write_text(DUP)
    (tmp_path / "stub_add.sv").write_text(ADD)
    dup = Stage("dup", "Duplicate", "stub_dup", {"W": W}, [tmp_path / "stub_dup.sv"],
                [Port("s_axis", W, W)], [Port("m0_axis", W, W), Port("m1_axis", W, W)])
    add = Stage("add", "Add", "stub_add", {"W": W}, [tmp_path / "stub_add.sv"],
                [Port("s0_axis", W, W), Port("s1_axis", W, W)], [Port("m_axis", W, W)])
    skid = stream_stage("skid", "Skid", "axis_skid", {"DATA_WIDTH": W}, [HW_DIR / "axis_skid.sv"],
                        W, W, W, W)
    g = StageGraph()
    for st in (dup, skid, add):
        g.add(st)
    g.connect(None, "dup", NUMEL)
    g.connect("dup", "skid", NUMEL, src_port=0)
    g.connect("skid", "add", NUMEL, dst_port=0)
    g.connect("dup", "add", NUMEL, src_port=1, dst_port=1)
    g.connect("add", None, NUMEL)
    return g


def test_branching_graph_streams_under_stalls(tmp_path):
    graph = branching_graph(tmp_path)
    assert [st.name for st in graph.layers()] == ["dup", "skid", "add"]
    assert [e.name for e in graph.internal_edges()] == ["fifo_0", "fifo_1", "fifo_2"]
    graph = graph.with_depths({"fifo_0": 4, "fifo_1": 2, "fifo_2": 8})
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (12, NUMEL))
    for stall in (0.0, 0.4):
        run = run_graph(graph, frames, stall_prob=stall, seed=3)
        assert run.outputs.shape == frames.shape
        assert (run.outputs == (2 * frames) % 256).all()
    rtl = write_rtl_dir(graph, tmp_path / "rtl")
    assert (rtl.path / "filelist.f").read_text().split()[-1] == "sdbnn_top.sv"
    assert {"stub_dup.sv", "stub_add.sv", "axis_skid.sv", "axis_fifo.sv"} <= {p.name for p in rtl.sources}
    top = render_top(graph)
    assert top.count("axis_fifo #(") == 3 and "u_dup" in top and "u_add" in top


def test_fifo_sizing_on_a_branching_graph(tmp_path):
    """The occupancy monitor works per edge of a graph; sized FIFOs still stream."""
    graph = branching_graph(tmp_path)
    frames = np.random.default_rng(1).integers(0, 256, (6, NUMEL))
    depths = size_fifos(graph, tmp_path / "sizing", frames, margin=2, seed=0)
    assert set(depths) == {"fifo_0", "fifo_1", "fifo_2"} and min(depths.values()) >= 2
    sized = graph.with_depths(depths)
    rtl = write_rtl_dir(sized, tmp_path / "rtl")
    run = run_design(sized, rtl, frames, stall_prob=0.3, seed=5)
    assert (run.outputs == (2 * frames) % 256).all()


def test_unjoined_port_is_refused(tmp_path):
    graph = branching_graph(tmp_path)
    graph.edges = [e for e in graph.edges if not (e.src == "dup" and e.src_port == 1)]
    with pytest.raises(ToolError, match="output port 1 of dup is joined 0 times"):
        graph.validate()
