// window_or: binary (bipolar) max over the windows of a depthwise sliding
// window, for max-pools of any kernel, stride and padding.
//
// Input: the stream of FINN's depthwise sliding window (ConvolutionInputGenerator
// with depthwise=1): for each output pixel, for each group of SIMD channels,
// the K2 = KH*KW window positions as K2 consecutive beats of SIMD bits (channel
// 0 in the low bits). Output: one beat of SIMD bits per K2 input beats, the OR
// of the K2 beats (bipolar max, bit 1 = +1): the pooled NHWC stream.
// One input beat per cycle; output through an axis_skid slice, so
// s_axis_tready does not depend on m_axis_tready.
`default_nettype none

module window_or #(
    // Channels per beat (>= 1).
    parameter int SIMD = 8,
    // Window positions per output (KH * KW, >= 1).
    parameter int K2 = 9
) (
    input  wire logic            clk,
    input  wire logic            rst,  // synchronous, active high

    input  wire logic [SIMD-1:0] s_axis_tdata,
    input  wire logic            s_axis_tvalid,
    output logic                 s_axis_tready,

    output logic      [SIMD-1:0] m_axis_tdata,
    output logic                 m_axis_tvalid,
    input  wire logic            m_axis_tready
);

  if (SIMD < 1 || K2 < 1) begin : g_bad_params
    $error("window_or %m: SIMD=%0d and K2=%0d must be >= 1", SIMD, K2);
  end

  localparam int KW_ = (K2 > 1) ? $clog2(K2) : 1;

  logic out_valid_reg, slice_ready;
  logic [SIMD-1:0] out_reg, acc_reg;
  logic [KW_-1:0] k_reg;

  // the pipeline register advances unless it holds a beat the slice cannot take
  wire en = !out_valid_reg || slice_ready;
  assign s_axis_tready = en;
  wire take = s_axis_tvalid && en;
  wire last = k_reg == KW_'(K2 - 1);
  wire [SIMD-1:0] so_far = (k_reg == '0) ? '0 : acc_reg;

  always_ff @(posedge clk) begin
    if (en) out_valid_reg <= take && last;
    if (take) begin
      if (last) begin
        out_reg <= so_far | s_axis_tdata;
        k_reg   <= '0;
      end else begin
        acc_reg <= so_far | s_axis_tdata;
        k_reg   <= k_reg + 1'b1;
      end
    end
    if (rst) begin
      out_valid_reg <= 1'b0;
      k_reg         <= '0;
    end
  end

  axis_skid #(.DATA_WIDTH(SIMD)) u_out_slice (
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
