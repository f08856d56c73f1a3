// maxpool_bin: streaming binary (bipolar) max-pool, K x K window, stride K.
//
// Input: NHWC bit stream, one image after another: for each row h, column w,
// C channels as C/SIMD beats of SIMD bits (channel 0 in the low bits).
// Output: the pooled NHWC stream of OH = IFM_H/K rows and OW = IFM_W/K columns
// (floor: trailing rows/columns that do not fill a window are consumed and
// dropped), same beat format. Bipolar max (bit 1 = +1) is a bitwise OR.
// One input beat per cycle; a row buffer of OW*C/SIMD beats holds the partial
// ORs of the current window row. Output through an axis_skid slice.
`default_nettype none

module maxpool_bin #(
    // Input feature map height (>= K).
    parameter int IFM_H = 4,
    // Input feature map width (>= K).
    parameter int IFM_W = 4,
    // Channels, a multiple of SIMD.
    parameter int C = 8,
    // Channels per beat, divides C.
    parameter int SIMD = 8,
    // Pooling window size and stride (>= 1).
    parameter int K = 2
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

  if (K < 1 || IFM_H < K || IFM_W < K) begin : g_bad_k
    $error("maxpool_bin %m: need 1 <= K=%0d <= IFM_H=%0d and IFM_W=%0d", K, IFM_H, IFM_W);
  end
  if (SIMD < 1 || C < 1 || C % SIMD != 0) begin : g_bad_simd
    $error("maxpool_bin %m: SIMD=%0d must divide C=%0d (both >= 1)", SIMD, C);
  end

  localparam int CF = C / SIMD;          // beats per pixel
  localparam int OH = IFM_H / K;
  localparam int OW = IFM_W / K;
  localparam int CF_W = (CF > 1) ? $clog2(CF) : 1;
  localparam int W_W = $clog2(IFM_W + 1);
  localparam int H_W = $clog2(IFM_H + 1);
  localparam int K_W = (K > 1) ? $clog2(K) : 1;
  localparam int B_W = (OW * CF > 1) ? $clog2(OW * CF) : 1;

  logic out_valid_reg, slice_ready;
  logic [SIMD-1:0] out_reg;
  wire en = !out_valid_reg || slice_ready;
  wire take = en && s_axis_tvalid;
  assign s_axis_tready = en;

  // position of the current beat: channel fold, column (and within window),
  // row (and within window), row-buffer address
  logic [CF_W-1:0] cf_reg;
  logic [W_W-1:0] w_reg;
  logic [H_W-1:0] h_reg;
  logic [K_W-1:0] kw_reg, kh_reg;
  logic [B_W-1:0] addr_reg;

  wire in_window = (w_reg < W_W'(OW * K)) && (h_reg < H_W'(OH * K));
  wire last_cf = cf_reg == CF_W'(CF - 1);
  wire last_w = w_reg == W_W'(IFM_W - 1);
  wire last_kw = kw_reg == K_W'(K - 1);
  wire last_kh = kh_reg == K_W'(K - 1);
  wire first_px = kw_reg == '0 && kh_reg == '0;

  logic [SIMD-1:0] rowbuf[OW*CF];
  wire logic [SIMD-1:0] merged = first_px ? s_axis_tdata : (rowbuf[addr_reg] | s_axis_tdata);

  always_ff @(posedge clk) begin
    if (take && in_window) rowbuf[addr_reg] <= merged;
    if (en) begin
      out_valid_reg <= take && in_window && last_kw && last_kh;
      out_reg       <= merged;
    end
    if (take) begin
      cf_reg <= last_cf ? '0 : cf_reg + 1'b1;
      // the buffer address walks the CF beats of a window column K times
      if (in_window) begin
        if (!last_cf) addr_reg <= addr_reg + 1'b1;
        else if (!last_kw) addr_reg <= addr_reg - B_W'(CF - 1);
        else addr_reg <= addr_reg + 1'b1;
      end
      if (last_cf) begin
        w_reg  <= last_w ? '0 : w_reg + 1'b1;
        kw_reg <= (last_kw || last_w) ? '0 : kw_reg + 1'b1;
        if (last_w) begin
          addr_reg <= '0;
          h_reg  <= (h_reg == H_W'(IFM_H - 1)) ? '0 : h_reg + 1'b1;
          kh_reg <= (last_kh || h_reg == H_W'(IFM_H - 1)) ? '0 : kh_reg + 1'b1;
        end
      end
    end
    if (rst) begin
      out_valid_reg <= 1'b0;
      cf_reg <= '0;
      w_reg  <= '0;
      h_reg  <= '0;
      kw_reg <= '0;
      kh_reg <= '0;
      addr_reg <= '0;
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
