// axis_skid: two-entry AXI-Stream register slice with registered s_axis_tready.
//
// Cuts every combinational path between the two sides (data, valid and ready)
// at full throughput: one beat per cycle in steady state, latency one cycle.
`default_nettype none

module axis_skid #(
    // Width of tdata in bits (>= 1).
    parameter int DATA_WIDTH = 8
) (
    input  wire logic                  clk,
    input  wire logic                  rst,  // synchronous, active high

    input  wire logic [DATA_WIDTH-1:0] s_axis_tdata,
    input  wire logic                  s_axis_tvalid,
    output logic                       s_axis_tready,

    output logic      [DATA_WIDTH-1:0] m_axis_tdata,
    output logic                       m_axis_tvalid,
    input  wire logic                  m_axis_tready
);

  if (DATA_WIDTH < 1) begin : g_bad_width
    $error("axis_skid %m: DATA_WIDTH=%0d must be >= 1", DATA_WIDTH);
  end

  logic [DATA_WIDTH-1:0] data_reg, skid_reg;
  logic valid_reg, skid_valid_reg;

  // The output register may load when it is empty or being emptied.
  wire load_out = !valid_reg || m_axis_tready;

  assign s_axis_tready = !skid_valid_reg;
  assign m_axis_tdata  = data_reg;
  assign m_axis_tvalid = valid_reg;

  always_ff @(posedge clk) begin
    if (load_out) begin
      if (skid_valid_reg) begin
        data_reg       <= skid_reg;
        valid_reg      <= 1'b1;
        skid_valid_reg <= 1'b0;
      end else begin
        data_reg  <= s_axis_tdata;
        valid_reg <= s_axis_tvalid;
      end
    end else if (s_axis_tvalid && !skid_valid_reg) begin
      skid_reg       <= s_axis_tdata;
      skid_valid_reg <= 1'b1;
    end
    if (rst) begin
      valid_reg      <= 1'b0;
      skid_valid_reg <= 1'b0;
    end
  end

endmodule

`default_nettype wire
