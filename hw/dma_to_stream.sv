// dma_to_stream: AXI DMA MM2S bus words -> accelerator words (the input side
// of the deploy top, sdbnn_deploy_top).
//
// Stream format (build_flows/ops/dma.py, OUT/deploy/io.json): every
// accelerator word of WORD_W bits sits in the low bits of a slot of
// SLOT_BYTES bytes; slot k of a frame is at byte k*SLOT_BYTES of the frame's
// region, every frame starts at a new bus word, and bus words are
// little-endian (byte 0 of the buffer is bits 7:0 of the first bus word).
// Ignored on input: the slot bits above WORD_W, the padding after a frame's
// last slot, and MM2S TLAST (no port).
//
// Split mode (SLOT_BYTES <= BUS_W/8): a bus word holds K = BUS_W/8/SLOT_BYTES
// slots, the last bus word of a frame the remaining ones; one word leaves per
// cycle, and the next bus word is taken in the cycle its predecessor's last
// slot leaves. Collect mode (SLOT_BYTES > BUS_W/8): a word spans
// R = SLOT_BYTES*8/BUS_W bus words (frames then have no padding); one bus
// word is taken per cycle and the R-th goes into the output slice together
// with the R-1 held ones. Output through an axis_skid slice, so
// s_axis_tready does not depend on m_axis_tready.
`default_nettype none

module dma_to_stream #(
    // DMA bus width in bits (a multiple of 8, >= 8).
    parameter int BUS_W = 64,
    // Accelerator word width in bits (1..SLOT_BYTES*8).
    parameter int WORD_W = 8,
    // Bytes per slot: slot_bytes(WORD_W, BUS_W) of build_flows/ops/dma.py.
    parameter int SLOT_BYTES = 1,
    // Accelerator words per frame (>= 1).
    parameter int WORDS_PER_FRAME = 1
) (
    input  wire logic              clk,
    input  wire logic              rst,  // synchronous, active high

    // slot bits above WORD_W and frame padding are ignored
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire logic [BUS_W-1:0]  s_axis_tdata,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire logic              s_axis_tvalid,
    output logic                   s_axis_tready,

    output logic      [WORD_W-1:0] m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  wire logic              m_axis_tready
);

  // the slot rule (build_flows/ops/dma.py slot_bytes), guarded against bad widths
  localparam int BUS_BYTES = (BUS_W >= 8) ? BUS_W / 8 : 1;
  localparam int WORD_BYTES = (WORD_W >= 1) ? (WORD_W + 7) / 8 : 1;
  localparam int POW2_BYTES = 1 << $clog2(WORD_BYTES);
  localparam int RULE_BYTES = (POW2_BYTES <= BUS_BYTES) ? POW2_BYTES
                              : (WORD_BYTES + BUS_BYTES - 1) / BUS_BYTES * BUS_BYTES;
  localparam bit SPLIT = SLOT_BYTES <= BUS_BYTES;

  localparam bit BAD_BUS = BUS_W < 8 || BUS_W % 8 != 0;
  localparam bit BAD_WORD = WORD_W < 1;
  localparam bit BAD_FIT = WORD_W > SLOT_BYTES * 8;
  localparam bit BAD_SLOT = SLOT_BYTES != RULE_BYTES;
  localparam bit BAD_DIV = SPLIT && SLOT_BYTES >= 1 && BUS_BYTES % SLOT_BYTES != 0;
  localparam bit BAD_WPF = WORDS_PER_FRAME < 1;

  if (BAD_BUS) begin : g_bad_bus
    $error("dma_to_stream %m: BUS_W=%0d must be a multiple of 8 and >= 8", BUS_W);
  end
  if (BAD_WORD) begin : g_bad_word
    $error("dma_to_stream %m: WORD_W=%0d must be >= 1", WORD_W);
  end
  if (BAD_FIT) begin : g_bad_fit
    $error("dma_to_stream %m: WORD_W=%0d must be <= SLOT_BYTES*8=%0d", WORD_W, SLOT_BYTES * 8);
  end
  if (!BAD_BUS && !BAD_WORD && BAD_SLOT) begin : g_bad_slot
    $error("dma_to_stream %m: SLOT_BYTES=%0d must be %0d = slot_bytes(WORD_W=%0d, BUS_W=%0d)",
           SLOT_BYTES, RULE_BYTES, WORD_W, BUS_W);
  end
  if (!BAD_BUS && BAD_DIV) begin : g_bad_div
    $error("dma_to_stream %m: SLOT_BYTES=%0d does not divide BUS_W/8=%0d; use a power-of-two bus width",
           SLOT_BYTES, BUS_BYTES);
  end
  if (BAD_WPF) begin : g_bad_wpf
    $error("dma_to_stream %m: WORDS_PER_FRAME=%0d must be >= 1", WORDS_PER_FRAME);
  end

  localparam bit OK = !(BAD_BUS || BAD_WORD || BAD_FIT || BAD_SLOT || BAD_DIV || BAD_WPF);
  localparam int SLOT_W = SLOT_BYTES * 8;

  // the word stream into the output slice
  logic [WORD_W-1:0] word;
  logic word_valid, word_ready;

  if (!OK) begin : g_none  // refused above; outputs tied off
    wire unused_inputs = ^{s_axis_tvalid, word_ready};
    assign s_axis_tready = 1'b0;
    assign word = '0;
    assign word_valid = 1'b0;
  end else if (SPLIT) begin : g_split
    localparam int K = BUS_BYTES / SLOT_BYTES;          // slots per bus word
    localparam int M = (WORDS_PER_FRAME + K - 1) / K;   // bus words per frame
    localparam int L = WORDS_PER_FRAME - (M - 1) * K;   // slots in a frame's last bus word
    localparam int KW = (K > 1) ? $clog2(K) : 1;
    localparam int MW = (M > 1) ? $clog2(M) : 1;

    logic [WORD_W-1:0] slot_reg[K];  // the slots of the held bus word
    logic full_reg;
    logic [KW-1:0] k_reg;  // next slot to leave
    logic [MW-1:0] b_reg;  // bus word within the frame

    wire last_bus = b_reg == MW'(M - 1);
    wire last_slot = k_reg == KW'(K - 1) || (last_bus && k_reg == KW'(L - 1));
    wire emit = full_reg && word_ready;
    assign s_axis_tready = !full_reg || (word_ready && last_slot);
    wire load = s_axis_tvalid && s_axis_tready;
    assign word = slot_reg[k_reg];
    assign word_valid = full_reg;

    always_ff @(posedge clk) begin
      if (load)
        for (int j = 0; j < K; j++) slot_reg[j] <= s_axis_tdata[j*SLOT_W +: WORD_W];
      if (emit) begin
        if (last_slot) begin
          k_reg <= '0;
          b_reg <= last_bus ? '0 : b_reg + 1'b1;
        end else begin
          k_reg <= k_reg + 1'b1;
        end
      end
      if (load) full_reg <= 1'b1;
      else if (emit && last_slot) full_reg <= 1'b0;
      if (rst) begin
        full_reg <= 1'b0;
        k_reg    <= '0;
        b_reg    <= '0;
      end
    end
  end else begin : g_collect
    localparam int R = SLOT_BYTES / BUS_BYTES;  // bus words per word (>= 2)
    localparam int RW = $clog2(R);
    localparam int PW = (R - 1) * BUS_W;

    logic [PW-1:0] part_reg;  // bus words 0..R-2 of the word, word 0 lowest
    logic [RW-1:0] r_reg;     // next bus word of the word

    wire last_r = r_reg == RW'(R - 1);
    assign s_axis_tready = !last_r || word_ready;
    wire take = s_axis_tvalid && s_axis_tready;
    assign word = WORD_W'({s_axis_tdata, part_reg});
    assign word_valid = s_axis_tvalid && last_r;

    always_ff @(posedge clk) begin
      if (take) begin
        r_reg <= last_r ? '0 : r_reg + 1'b1;
        if (!last_r) part_reg <= PW'({s_axis_tdata, part_reg} >> BUS_W);
      end
      if (rst) r_reg <= '0;
    end
  end

  axis_skid #(.DATA_WIDTH(WORD_W)) u_out_slice (
      .clk(clk),
      .rst(rst),
      .s_axis_tdata(word),
      .s_axis_tvalid(word_valid),
      .s_axis_tready(word_ready),
      .m_axis_tdata(m_axis_tdata),
      .m_axis_tvalid(m_axis_tvalid),
      .m_axis_tready(m_axis_tready)
  );

endmodule

`default_nettype wire
