// axis_fifo: synchronous AXI-Stream FIFO of DEPTH words (for stitching layers).
//
// Full throughput (one beat per cycle in and out), first-word fall-through:
// a word written in cycle n can leave in cycle n+1. Storage is a plain array
// with asynchronous read (maps to LUT RAM / registers).
`default_nettype none

module axis_fifo #(
    // Width of tdata in bits (>= 1).
    parameter int DATA_WIDTH = 8,
    // Number of words the FIFO holds (>= 2, any value, not only powers of two).
    parameter int DEPTH = 16
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
    $error("axis_fifo %m: DATA_WIDTH=%0d must be >= 1", DATA_WIDTH);
  end
  if (DEPTH < 2) begin : g_bad_depth
    $error("axis_fifo %m: DEPTH=%0d must be >= 2", DEPTH);
  end

  localparam int PTR_WIDTH = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam int CNT_WIDTH = $clog2(DEPTH + 1);
  localparam logic [PTR_WIDTH-1:0] LAST_PTR = PTR_WIDTH'(DEPTH - 1);

  logic [DATA_WIDTH-1:0] mem[DEPTH];
  logic [PTR_WIDTH-1:0] wr_ptr_reg, rd_ptr_reg;
  logic [CNT_WIDTH-1:0] count_reg;

  wire do_write = s_axis_tvalid && s_axis_tready;
  wire do_read  = m_axis_tvalid && m_axis_tready;

  assign s_axis_tready = count_reg != CNT_WIDTH'(DEPTH);
  assign m_axis_tvalid = count_reg != '0;
  assign m_axis_tdata  = mem[rd_ptr_reg];

  always_ff @(posedge clk) begin
    if (do_write) begin
      mem[wr_ptr_reg] <= s_axis_tdata;
      wr_ptr_reg <= (wr_ptr_reg == LAST_PTR) ? '0 : wr_ptr_reg + 1'b1;
    end
    if (do_read) rd_ptr_reg <= (rd_ptr_reg == LAST_PTR) ? '0 : rd_ptr_reg + 1'b1;
    if (do_write && !do_read) count_reg <= count_reg + 1'b1;
    else if (do_read && !do_write) count_reg <= count_reg - 1'b1;
    if (rst) begin
      wr_ptr_reg <= '0;
      rd_ptr_reg <= '0;
      count_reg  <= '0;
    end
  end

endmodule

`default_nettype wire
