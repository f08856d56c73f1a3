// global_acc_pool: global accumulation pool, the sum over all pixels of a
// feature map per channel (FINN's GlobalAccPool; the 1/(H*W) of an average
// pool is a scale the flow folds into the next layer's thresholds).
//
// Input: the NHWC stream, per pixel FOLDS = C/PE beats of PE lanes of IN_W
// bits (channel f*PE + i in lane i of beat f, lane 0 in the low bits),
// unsigned or, with IN_SIGNED, two's complement. Output: after the last of
// PIXELS pixels, FOLDS beats of PE sums of ACC_W bits (two's complement when
// IN_SIGNED), one per input beat of the last pixel, so the output needs no
// cycles of its own: one frame takes PIXELS * FOLDS cycles.
// The running sums live in a FOLDS-entry memory (read and written at the
// same address each beat: distributed RAM); output through an axis_skid
// slice, so s_axis_tready does not depend on m_axis_tready.
`default_nettype none

module global_acc_pool #(
    parameter int PE = 1,         // lanes per beat (>= 1)
    parameter int FOLDS = 1,      // C / PE beats per pixel (>= 1)
    parameter int PIXELS = 4,     // H * W pixels per frame (>= 1)
    parameter int IN_W = 1,       // bits per input lane (1..32)
    parameter int IN_SIGNED = 0,  // 1: input lanes are two's complement
    parameter int ACC_W = 3       // bits per output lane (must hold PIXELS times the input range)
) (
    input  wire logic                  clk,
    input  wire logic                  rst,  // synchronous, active high

    input  wire logic [PE*IN_W-1:0]    s_axis_tdata,
    input  wire logic                  s_axis_tvalid,
    output logic                       s_axis_tready,

    output logic      [PE*ACC_W-1:0]   m_axis_tdata,
    output logic                       m_axis_tvalid,
    input  wire logic                  m_axis_tready
);

  if (PE < 1 || FOLDS < 1 || PIXELS < 1 || IN_W < 1 || IN_W > 32 || ACC_W < IN_W || ACC_W > 64)
  begin : g_bad_params
    $error("global_acc_pool %m: PE=%0d FOLDS=%0d PIXELS=%0d must be >= 1, IN_W=%0d in 1..32, ACC_W=%0d in IN_W..64",
           PE, FOLDS, PIXELS, IN_W, ACC_W);
  end

  localparam int FW = (FOLDS > 1) ? $clog2(FOLDS) : 1;
  localparam int PW = (PIXELS > 1) ? $clog2(PIXELS) : 1;

  logic [PE*ACC_W-1:0] sums [FOLDS];
  logic [PE*ACC_W-1:0] out_reg, partial;
  logic out_valid_reg, slice_ready;
  logic [FW-1:0] f_reg;
  logic [PW-1:0] p_reg;

  // the pipeline register advances unless it holds a beat the slice cannot take
  wire en = !out_valid_reg || slice_ready;
  assign s_axis_tready = en;
  wire take = s_axis_tvalid && en;
  wire first_pixel = p_reg == '0;
  wire last_pixel = p_reg == PW'(PIXELS - 1);
  wire last_fold = f_reg == FW'(FOLDS - 1);

  // lane i: the stored sum (0 at the first pixel) plus the input, sign- or zero-extended
  always_comb begin
    for (int i = 0; i < PE; i++) begin
      logic [IN_W-1:0] x;
      logic [ACC_W-1:0] ext, acc;
      x = s_axis_tdata[i*IN_W +: IN_W];
      ext = (IN_SIGNED != 0) ? ACC_W'($signed(x)) : ACC_W'(x);
      acc = first_pixel ? '0 : sums[f_reg][i*ACC_W +: ACC_W];
      partial[i*ACC_W +: ACC_W] = acc + ext;
    end
  end

  always_ff @(posedge clk) begin
    if (en) out_valid_reg <= take && last_pixel;
    if (take) begin
      if (last_pixel) out_reg <= partial;
      else sums[f_reg] <= partial;
      f_reg <= last_fold ? '0 : f_reg + 1'b1;
      if (last_fold) p_reg <= last_pixel ? '0 : p_reg + 1'b1;
    end
    if (rst) begin
      out_valid_reg <= 1'b0;
      f_reg         <= '0;
      p_reg         <= '0;
    end
  end

  axis_skid #(.DATA_WIDTH(PE*ACC_W)) u_out_slice (
      .clk(clk),
      .rst(rst),
      .s_axis_tdata(out_reg),
      .s_axis_tvalid(out_valid_reg),
      .s_axis_tready(slice_ready),
      .m_axis_tdata(m_axis_tdata),
      .m_axis_tvalid(m_axis_tvalid),
      .m_axis_tready(m_axis_tready)
  );

endmodule

`default_nettype wire
