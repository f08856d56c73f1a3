// stream_to_dma: accelerator words -> AXI DMA S2MM bus words with TLAST (the
// output side of the deploy top, sdbnn_deploy_top).
//
// Stream format (build_flows/ops/dma.py, OUT/deploy/io.json): every
// accelerator word of WORD_W bits sits in the low bits of a slot of
// SLOT_BYTES bytes; slot k of a frame is at byte k*SLOT_BYTES of the frame's
// region, every frame starts at a new bus word, and bus words are
// little-endian (byte 0 of the buffer is bits 7:0 of the first bus word).
// The slot bits above WORD_W and the padding after a frame's last slot are 0.
// m_axis_tlast is high on the last bus word of every FRAMES_PER_PACKET-th
// frame (one S2MM packet = FRAMES_PER_PACKET frames), low everywhere else.
//
// Split mode (SLOT_BYTES <= BUS_W/8): K = BUS_W/8/SLOT_BYTES words fill a bus
// word (the remaining ones a frame's last bus word); one word is taken per
// cycle, K-1 are held and the word completing a bus word goes into the output
// slice with them. Collect mode (SLOT_BYTES > BUS_W/8): a word leaves as
// R = SLOT_BYTES*8/BUS_W bus words, one per cycle, low bits first; the next
// word is taken in the cycle the last of them leaves. Output through an
// axis_skid slice, so s_axis_tready does not depend on m_axis_tready.
`default_nettype none

module stream_to_dma #(
    // DMA bus width in bits (a multiple of 8, >= 8).
    parameter int BUS_W = 64,
    // Accelerator word width in bits (1..SLOT_BYTES*8).
    parameter int WORD_W = 8,
    // Bytes per slot: slot_bytes(WORD_W, BUS_W) of build_flows/ops/dma.py.
    parameter int SLOT_BYTES = 1,
    // Accelerator words per frame (>= 1).
    parameter int WORDS_PER_FRAME = 1,
    // Frames per S2MM packet, i.e. between TLASTs (>= 1).
    parameter int FRAMES_PER_PACKET = 1
) (
    input  wire logic              clk,
    input  wire logic              rst,  // synchronous, active high

    input  wire logic [WORD_W-1:0] s_axis_tdata,
    input  wire logic              s_axis_tvalid,
    output logic                   s_axis_tready,

    output logic      [BUS_W-1:0]  m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  wire logic              m_axis_tready,
    output logic                   m_axis_tlast
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
  localparam bit BAD_FPP = FRAMES_PER_PACKET < 1;

  if (BAD_BUS) begin : g_bad_bus
    $error("stream_to_dma %m: BUS_W=%0d must be a multiple of 8 and >= 8", BUS_W);
  end
  if (BAD_WORD) begin : g_bad_word
    $error("stream_to_dma %m: WORD_W=%0d must be >= 1", WORD_W);
  end
  if (BAD_FIT) begin : g_bad_fit
    $error("stream_to_dma %m: WORD_W=%0d must be <= SLOT_BYTES*8=%0d", WORD_W, SLOT_BYTES * 8);
  end
  if (!BAD_BUS && !BAD_WORD && BAD_SLOT) begin : g_bad_slot
    $error("stream_to_dma %m: SLOT_BYTES=%0d must be %0d = slot_bytes(WORD_W=%0d, BUS_W=%0d)",
           SLOT_BYTES, RULE_BYTES, WORD_W, BUS_W);
  end
  if (!BAD_BUS && BAD_DIV) begin : g_bad_div
    $error("stream_to_dma %m: SLOT_BYTES=%0d does not divide BUS_W/8=%0d; use a power-of-two bus width",
           SLOT_BYTES, BUS_BYTES);
  end
  if (BAD_WPF) begin : g_bad_wpf
    $error("stream_to_dma %m: WORDS_PER_FRAME=%0d must be >= 1", WORDS_PER_FRAME);
  end
  if (BAD_FPP) begin : g_bad_fpp
    $error("stream_to_dma %m: FRAMES_PER_PACKET=%0d must be >= 1", FRAMES_PER_PACKET);
  end

  localparam bit OK = !(BAD_BUS || BAD_WORD || BAD_FIT || BAD_SLOT || BAD_DIV || BAD_WPF
                        || BAD_FPP);
  localparam int SLOT_W = SLOT_BYTES * 8;
  localparam int FW = (FRAMES_PER_PACKET > 1) ? $clog2(FRAMES_PER_PACKET) : 1;

  // the bus-word stream into the output slice: {tlast, tdata}
  logic [BUS_W-1:0] bus;
  logic bus_last, bus_valid, bus_ready;

  if (!OK) begin : g_none  // refused above; outputs tied off
    wire unused_inputs = ^{s_axis_tdata, s_axis_tvalid, bus_ready};
    assign s_axis_tready = 1'b0;
    assign bus = '0;
    assign bus_last = 1'b0;
    assign bus_valid = 1'b0;
  end else if (SPLIT) begin : g_split
    localparam int K = BUS_BYTES / SLOT_BYTES;          // slots per bus word
    localparam int M = (WORDS_PER_FRAME + K - 1) / K;   // bus words per frame
    localparam int L = WORDS_PER_FRAME - (M - 1) * K;   // slots in a frame's last bus word
    localparam int KW = (K > 1) ? $clog2(K) : 1;
    localparam int MW = (M > 1) ? $clog2(M) : 1;

    logic [KW-1:0] k_reg;  // slot of the next word
    logic [MW-1:0] b_reg;  // bus word within the frame
    logic [FW-1:0] f_reg;  // frame within the packet

    wire last_bus = b_reg == MW'(M - 1);
    wire last_word = last_bus && k_reg == KW'(L - 1);
    wire complete = k_reg == KW'(K - 1) || last_word;
    assign s_axis_tready = !complete || bus_ready;
    wire take = s_axis_tvalid && s_axis_tready;
    assign bus_valid = s_axis_tvalid && complete;
    assign bus_last = last_word && f_reg == FW'(FRAMES_PER_PACKET - 1);

    // slots below k_reg: the held words; slot k_reg: the input; above: 0
    for (genvar j = 0; j < K; j++) begin : g_slot
      if (j < K - 1) begin : g_held
        logic [WORD_W-1:0] held_reg;
        always_ff @(posedge clk)
          if (take && !complete && k_reg == KW'(j)) held_reg <= s_axis_tdata;
        assign bus[j*SLOT_W +: SLOT_W] = (k_reg == KW'(j)) ? SLOT_W'(s_axis_tdata)
                                         : (k_reg > KW'(j)) ? SLOT_W'(held_reg) : '0;
      end else begin : g_top
        assign bus[j*SLOT_W +: SLOT_W] = (k_reg == KW'(j)) ? SLOT_W'(s_axis_tdata) : '0;
      end
    end

    always_ff @(posedge clk) begin
      if (take) begin
        k_reg <= complete ? '0 : k_reg + 1'b1;
        if (complete) b_reg <= last_bus ? '0 : b_reg + 1'b1;
        if (last_word) f_reg <= (f_reg == FW'(FRAMES_PER_PACKET - 1)) ? '0 : f_reg + 1'b1;
      end
      if (rst) begin
        k_reg <= '0;
        b_reg <= '0;
        f_reg <= '0;
      end
    end
  end else begin : g_collect
    localparam int R = SLOT_BYTES / BUS_BYTES;  // bus words per word (>= 2)
    localparam int RW = $clog2(R);
    localparam int NW = (WORDS_PER_FRAME > 1) ? $clog2(WORDS_PER_FRAME) : 1;

    logic [R*BUS_W-1:0] shift_reg;  // the word's slot, the next bus word lowest
    logic full_reg;
    logic [RW-1:0] r_reg;  // bus word of the word
    logic [NW-1:0] n_reg;  // word within the frame
    logic [FW-1:0] f_reg;  // frame within the packet

    wire last_r = r_reg == RW'(R - 1);
    wire last_word = n_reg == NW'(WORDS_PER_FRAME - 1);
    wire last_frame = f_reg == FW'(FRAMES_PER_PACKET - 1);
    wire emit = full_reg && bus_ready;
    assign s_axis_tready = !full_reg || (last_r && bus_ready);
    wire load = s_axis_tvalid && s_axis_tready;
    assign bus = shift_reg[BUS_W-1:0];
    assign bus_valid = full_reg;
    assign bus_last = last_r && last_word && last_frame;

    always_ff @(posedge clk) begin
      if (load) shift_reg <= (R*BUS_W)'(s_axis_tdata);
      else if (emit) shift_reg <= shift_reg >> BUS_W;
      if (emit) begin
        r_reg <= last_r ? '0 : r_reg + 1'b1;
        if (last_r) n_reg <= last_word ? '0 : n_reg + 1'b1;
        if (last_r && last_word) f_reg <= last_frame ? '0 : f_reg + 1'b1;
      end
      if (load) full_reg <= 1'b1;
      else if (emit && last_r) full_reg <= 1'b0;
      if (rst) begin
        full_reg <= 1'b0;
        r_reg    <= '0;
        n_reg    <= '0;
        f_reg    <= '0;
      end
    end
  end

  axis_skid #(.DATA_WIDTH(BUS_W + 1)) u_out_slice (
      .clk(clk),
      .rst(rst),
      .s_axis_tdata({bus_last, bus}),
      .s_axis_tvalid(bus_valid),
      .s_axis_tready(bus_ready),
      .m_axis_tdata({m_axis_tlast, m_axis_tdata}),
      .m_axis_tvalid(m_axis_tvalid),
      .m_axis_tready(m_axis_tready)
  );

endmodule

`default_nettype wire
