// axis_throttle: verification-only AXI-Stream stage that stalls a link at random.
//
// Put between two stages of a stitched design in simulation, it refuses input
// (s_axis_tready low) and withholds output (m_axis_tvalid low) on seeded
// pseudo-random cycles, so every internal link sees back-pressure and gaps.
// It keeps the AXI-Stream rules on both sides: once m_axis_tvalid is high it
// stays high, with the same data, until the handshake. One buffer register;
// with STALL_PROB = 0 it passes one beat per cycle (latency one cycle). While
// m_axis_tvalid is low, m_axis_tdata carries pseudo-random junk. With
// STALL_PROB > 0 the first beat offered after reset is always refused for a
// cycle, so even a link with a handful of beats is stalled at least once.
// Never part of a deployed design.
`default_nettype none

module axis_throttle #(
    // Width of tdata in bits (>= 1).
    parameter int DATA_WIDTH = 8,
    // Stall probability of each side per cycle, in 1/256 (0..255).
    parameter int STALL_PROB = 64,
    // Seed of the xorshift32 pattern (any value; 0 is mapped to 1).
    parameter int unsigned SEED = 1
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
    $error("axis_throttle %m: DATA_WIDTH=%0d must be >= 1", DATA_WIDTH);
  end
  if (STALL_PROB < 0 || STALL_PROB > 255) begin : g_bad_prob
    $error("axis_throttle %m: STALL_PROB=%0d must be in 0..255", STALL_PROB);
  end

  logic [31:0] lfsr_reg;
  logic [DATA_WIDTH-1:0] data_reg;
  logic full_reg, shown_reg;
  logic offered_reg;  // s_axis_tvalid was high on an earlier cycle since reset

  wire stall_in  = {24'd0, lfsr_reg[7:0]} < 32'(STALL_PROB);
  wire stall_out = {24'd0, lfsr_reg[15:8]} < 32'(STALL_PROB);
  wire take_out  = m_axis_tvalid && m_axis_tready;

  // junk on tdata while tvalid is low: a consumer that samples it is caught
  assign m_axis_tdata  = m_axis_tvalid ? data_reg : DATA_WIDTH'({(DATA_WIDTH + 31) / 32{lfsr_reg}});
  assign m_axis_tvalid = full_reg && (shown_reg || !stall_out);
  assign s_axis_tready = (!full_reg || take_out) && !stall_in && (offered_reg || STALL_PROB == 0);

  // xorshift32 step
  wire [31:0] x13 = lfsr_reg ^ (lfsr_reg << 13);
  wire [31:0] x17 = x13 ^ (x13 >> 17);
  wire [31:0] lfsr_next = x17 ^ (x17 << 5);

  always_ff @(posedge clk) begin
    if (s_axis_tvalid && s_axis_tready) data_reg <= s_axis_tdata;
    if (rst) begin
      lfsr_reg  <= (SEED == 0) ? 32'd1 : 32'(SEED);
      full_reg  <= 1'b0;
      shown_reg <= 1'b0;
      offered_reg <= 1'b0;
    end else begin
      if (s_axis_tvalid) offered_reg <= 1'b1;
      lfsr_reg  <= lfsr_next;
      if (s_axis_tvalid && s_axis_tready) full_reg <= 1'b1;
      else if (take_out) full_reg <= 1'b0;
      shown_reg <= m_axis_tvalid && !m_axis_tready;
    end
  end

endmodule

`default_nettype wire
