// dynamic_asd: SD-BNN's dynamic activation self-distribution, AXI-Stream.
//
// Before a layer binarises its feature map, every channel c gets a shift s[c]
// from the mean of that channel over the whole frame, through a small
// squeeze-and-excitation MLP; the graph side (build_flows/frontend/
// dynamic_asd.py) reduces the float maths to integer tables, so the unit only
// counts, sums, multiplies small integers and compares.
//
// Stream: a frame is PIXELS pixels of C channels, NHWC. Input: per pixel
// FOLDS = C/PE beats of PE lanes of QW bits (unsigned), channel f*PE+i in lane
// i of beat f, lane 0 in the low bits: F = PIXELS*FOLDS beats per frame.
// Output: the same F beats in the same order, PE lanes of 1 bit (bit i =
// channel f*PE+i).
//
// Maths per frame (x[p][c] the input values):
//   1. sum[c]  = sum over p of x[p][c]                       (unsigned, SUM_W bits)
//   2. g[c]    = #{k < GN : sum[c] >= GT[k]}; GN = 0: g[c] = sum[c]   (G_W bits)
//   3. acc1[j] = sum over c of W1[j][c] * g[c], j < HID       (signed, ACC1_W bits)
//   4. h[j]    = #{k < HN : acc1[j] >= HT[j][k]}              (H_W bits)
//   5. acc2[c] = sum over j of W2[c][j] * h[j]                (signed, ACC2_W bits)
//   6. s[c]    = #{k < SN : acc2[c] >= ST[k]}                 (S_W bits)
//   7. out[p][c] = x[p][c] >= RT[c][s[c]]   (RT in 0..2**QW: 0 = always 1, 2**QW = always 0)
// Thresholds (GT, HT[j], ST) ascending. The adders wrap at their width, so
// the results are exact when ACC1_W / ACC2_W hold every final acc1 / acc2 and
// every threshold (build_flows/ops/dynamic_asd.py computes the widths and
// clips the thresholds into the reachable range).
//
// Memory files ($readmemh, one hex word per line, lane 0 in the low bits,
// signed values in two's complement); DynamicASDConfig.mem_files writes them:
//   GT_FILE: GN words of SUM_W bits, word k = GT[k] (not read when GN = 0).
//   W1_FILE: C words of HID*W_BITS bits, word c lane j = W1[j][c].
//   HT_FILE: HID words of HN*ACC1_W bits, word j lane k = HT[j][k].
//   W2_FILE: C words of HID*W_BITS bits, word c lane j = W2[c][j].
//   ST_FILE: SN words of ACC2_W bits, word k = ST[k].
//   RT_FILE: C words of (SN+1)*(QW+1) bits, word c lane k = RT[c][k].
//
// Schedule. The input writes each beat into a frame buffer ring and adds it
// into the frame's sums (the first pixel of a channel writes, later pixels
// add). After the frame's last beat the MLP runs on the sums while the next
// frame streams in, then the frame is replayed from the ring, one beat per
// cycle, each lane compared with sel[channel] = RT[c][s[c]].
//   MLP, M cycles per frame, cycle m counted from its start (m = 0):
//     m = 0 .. C-1      pass 1 issues channel m: its sum is read (registered),
//                       then B = (GN > 0 ? $clog2(GN+1) : 0) binary-search stages
//                       give g (GT in one ROM, one read per stage), then all HID
//                       acc1 multiply-accumulate in parallel with the channel's
//                       W1 word (read one cycle ahead of the MAC);
//     m = C+B+1         h[j] for every j (HID x HN comparators) is registered;
//     m = C+B+1 .. 2C+B pass 2 issues channel m-(C+B+1): W2 and RT read, then
//                       the HID products and their sum (acc2, registered), then
//                       SN comparators, the RT lane select, and the write of
//                       sel[c] into the frame's select table (PE lanes a word);
//     m = 2C+B+2        last select-table write; the table is ready.
//   so   M = 2*C + B + 3   cycles, and the next frame's MLP may start at m = M.
//   The MLP starts one cycle after the frame's last input handshake (when the
//   MLP is free), and the replay issues the frame's first word M cycles after
//   the MLP start (one read a cycle, a select-table read with each).
//   Steady state with no stalls (the free-running pattern), cycles per frame:
//     II = max(F, M)          when F != M;
//     F == M: the ring (2 frames) closes a loop of F + M + 1 cycles over two
//     frames, so frames alternate M and M + 1 cycles (mean M + 1/2);
//     DynamicASDConfig.cycles() gives max(F, M) + (F == M).
//   (After reset, frames 0 and 1 enter an empty ring; in the MLP-bound case
//   frame 2 then starts once M + 1 cycles after frame 1, and from there on
//   every frame M cycles after the previous.)
//   Latency: the first output beat of a frame leaves M + 4 cycles after its
//   last input beat (MLP start, M MLP cycles, ring read, compare register,
//   output slice), when the output is free.
//
// Double buffering. The frame buffer is a ring of 2*F words (frame n in the
// half n % 2): the input writes a word only when the ring holds fewer than
// 2*F words, so frame n+2 streams in while frame n is replayed, reading ahead
// of it. Sums and select tables have one bank per frame parity. Guards (both
// also implied by the ring's occupancy, so they never cost a cycle):
//   sums_pending[b]: bank b of the sums holds a finished frame whose MLP has
//     not finished; the input does not write bank b meanwhile (frame n+2's
//     sums never overwrite frame n's before the MLP has read them);
//   sel_valid[b]: select table b holds a frame whose replay has not issued its
//     last read; the MLP of the next frame of parity b does not start meanwhile
//     (frame n+1's MLP never overwrites the table frame n-1 is replayed with).
// s_axis_tready is a function of registers only; the output leaves through an
// axis_skid slice, so nothing combinational runs from m_axis_tready to
// s_axis_tready, and any valid/ready pattern gives the same output.
//
// Memories: the frame buffer is read synchronously; (* ram_style = "block" *)
// when 2*F*PE*QW >= 4096 bits and 2*F > 128 (mvtu.sv's "auto" rule), else
// "distributed". The W1, W2 and RT ROMs (read synchronously) and the select
// tables take the same rule on their own shape; the sums (read-modify-write
// each beat) and the small GT/HT/ST tables are LUTs.
`default_nettype none

module dynamic_asd #(
    // Channels (>= 1), a multiple of PE.
    parameter int C = 4,
    // Channels per beat (lanes), divides C.
    parameter int PE = 1,
    // Pixels per frame (H * W; 1 for a fully connected layer), >= 1.
    parameter int PIXELS = 4,
    // Bits per input value (unsigned), 1..16.
    parameter int QW = 8,
    // Bits of a channel sum and of GT, QW..64, must hold PIXELS * (2**QW - 1).
    parameter int SUM_W = 10,
    // Number of GT thresholds (0..65535; 0: g = sum, no search).
    parameter int GN = 1,
    // Hidden units of the MLP, >= 1.
    parameter int HID = 1,
    // Bits per W1 / W2 weight (signed), 2..8.
    parameter int W_BITS = 4,
    // Bits of acc1 and HT (signed), 2..64.
    parameter int ACC1_W = 16,
    // Thresholds per hidden unit (HT), >= 1.
    parameter int HN = 1,
    // Bits of acc2 and ST (signed), 2..64.
    parameter int ACC2_W = 16,
    // Shift thresholds (ST), >= 1; RT has SN + 1 values per channel.
    parameter int SN = 1,
    // $readmemh files (layout above); the defaults are DynamicASDConfig's
    // default names (Yosys elaborates the defaults first).
    parameter GT_FILE = "dasd_gt.mem",
    parameter W1_FILE = "dasd_w1.mem",
    parameter HT_FILE = "dasd_ht.mem",
    parameter W2_FILE = "dasd_w2.mem",
    parameter ST_FILE = "dasd_st.mem",
    parameter RT_FILE = "dasd_rt.mem"
) (
    input  wire logic               clk,
    input  wire logic               rst,  // synchronous, active high

    input  wire logic [PE*QW-1:0]   s_axis_tdata,
    input  wire logic               s_axis_tvalid,
    output logic                    s_axis_tready,

    output logic      [PE-1:0]      m_axis_tdata,
    output logic                    m_axis_tvalid,
    input  wire logic               m_axis_tready
);

  // ---- elaboration checks ----
  if (C < 1 || PE < 1 || PIXELS < 1) begin : g_bad_dims
    $error("dynamic_asd %m: C=%0d PE=%0d PIXELS=%0d must all be >= 1", C, PE, PIXELS);
  end
  if (PE >= 1 && C % PE != 0) begin : g_bad_pe
    $error("dynamic_asd %m: PE=%0d must divide C=%0d", PE, C);
  end
  if (QW < 1 || QW > 16) begin : g_bad_qw
    $error("dynamic_asd %m: QW=%0d must be in 1..16", QW);
  end
  // the largest sum, PIXELS * (2**QW - 1), at a width that cannot overflow
  localparam logic [127:0] SUM_MAX = 128'(PIXELS) * ((128'(1) << QW) - 128'(1));
  if (SUM_W < QW || SUM_W > 64 || (SUM_MAX >> SUM_W) != 128'(0)) begin : g_bad_sum_w
    $error("dynamic_asd %m: SUM_W=%0d must be in QW=%0d..64 and hold PIXELS*(2**QW-1) (PIXELS=%0d)",
           SUM_W, QW, PIXELS);
  end
  if (GN < 0 || GN > 65535) begin : g_bad_gn
    $error("dynamic_asd %m: GN=%0d must be in 0..65535", GN);
  end
  if (HID < 1) begin : g_bad_hid
    $error("dynamic_asd %m: HID=%0d must be >= 1", HID);
  end
  if (W_BITS < 2 || W_BITS > 8) begin : g_bad_w_bits
    $error("dynamic_asd %m: W_BITS=%0d must be in 2..8", W_BITS);
  end
  if (ACC1_W < 2 || ACC1_W > 64) begin : g_bad_acc1_w
    $error("dynamic_asd %m: ACC1_W=%0d must be in 2..64", ACC1_W);
  end
  if (ACC2_W < 2 || ACC2_W > 64) begin : g_bad_acc2_w
    $error("dynamic_asd %m: ACC2_W=%0d must be in 2..64", ACC2_W);
  end
  if (HN < 1) begin : g_bad_hn
    $error("dynamic_asd %m: HN=%0d must be >= 1", HN);
  end
  if (SN < 1) begin : g_bad_sn
    $error("dynamic_asd %m: SN=%0d must be >= 1", SN);
  end

  // ---- derived sizes ----
  localparam int FOLDS = C / PE;                          // beats per pixel
  localparam int F = PIXELS * FOLDS;                      // beats per frame
  localparam int B = (GN > 0) ? $clog2(GN + 1) : 0;       // search stages
  localparam int G_W = (GN > 0) ? B : SUM_W;              // bits of g
  localparam int H_W = $clog2(HN + 1);                    // bits of h
  localparam int S_W = $clog2(SN + 1);                    // bits of s
  localparam int RW = QW + 1;                             // bits of an RT / sel value
  localparam int M = 2 * C + B + 3;                       // MLP cycles per frame
  localparam int RING = 2 * F;                            // frame buffer words
  localparam int RA_W = $clog2(RING);                     // RING >= 2
  localparam int CNT_W = $clog2(RING + 1);
  localparam int BK_W = $clog2(2 * FOLDS);                // sums / sel bank address
  localparam int FW = (FOLDS > 1) ? $clog2(FOLDS) : 1;
  localparam int LW = (PE > 1) ? $clog2(PE) : 1;
  localparam int PW = (PIXELS > 1) ? $clog2(PIXELS) : 1;
  localparam int CW = (C > 1) ? $clog2(C) : 1;
  localparam int MW_ = $clog2(M + 1);
  localparam int GA_W = (GN > 1) ? $clog2(GN) : 1;
  localparam int WW = HID * W_BITS;                       // W1 / W2 word
  localparam int RTW = (SN + 1) * RW;                     // RT word
  localparam int P1_W = W_BITS + G_W + 1;                 // W1 x g product
  localparam int P2_W = W_BITS + H_W + 1;                 // W2 x h product
  // memory style (header): 1 = block RAM
  localparam bit FB_BLOCK = RING > 128 && RING * PE * QW >= 4096;
  localparam bit W_BLOCK = C > 128 && C * WW >= 4096;
  localparam bit RT_BLOCK = C > 128 && C * RTW >= 4096;
  localparam bit SEL_BLOCK = 2 * FOLDS > 128 && 2 * FOLDS * PE * RW >= 4096;

  // ---- output pipeline enable (replay side) ----
  logic out_valid_reg, slice_ready;
  wire en = !out_valid_reg || slice_ready;

  // ---- bank guards ----
  logic sums_pending[2];
  logic sel_valid[2];
  logic in_par, mlp_par, rp_par;

  // ==== input: frame buffer ring and sums ====
  logic [RA_W-1:0] wr_ptr, rd_ptr;
  logic [CNT_W-1:0] held;
  logic [FW-1:0] in_f;
  logic [PW-1:0] in_p;

  assign s_axis_tready = held != CNT_W'(RING) && !sums_pending[in_par];
  wire take = s_axis_tvalid && s_axis_tready;
  wire in_last_fold = in_f == FW'(FOLDS - 1);
  wire in_last = in_last_fold && in_p == PW'(PIXELS - 1);
  wire [BK_W-1:0] in_bank = BK_W'(32'(in_par) * FOLDS + 32'(in_f));

  logic [PE*QW-1:0] fb_q;
  if (FB_BLOCK) begin : g_fb_block
    (* ram_style = "block" *)
    logic [PE*QW-1:0] fb[RING];
    always_ff @(posedge clk) if (take) fb[wr_ptr] <= s_axis_tdata;
    always_ff @(posedge clk) if (en) fb_q <= fb[rd_ptr];
  end else begin : g_fb_dist
    (* ram_style = "distributed" *)
    logic [PE*QW-1:0] fb[RING];
    always_ff @(posedge clk) if (take) fb[wr_ptr] <= s_axis_tdata;
    always_ff @(posedge clk) if (en) fb_q <= fb[rd_ptr];
  end

  // sums: bank b = frame parity, word b*FOLDS + f, lane i = channel f*PE+i
  (* ram_style = "distributed" *)
  logic [PE*SUM_W-1:0] sums[2*FOLDS];
  logic [PE*SUM_W-1:0] sum_next;
  always_comb begin
    for (int i = 0; i < PE; i++) begin
      logic [SUM_W-1:0] acc;
      acc = (in_p == '0) ? '0 : sums[in_bank][i*SUM_W +: SUM_W];
      sum_next[i*SUM_W +: SUM_W] = acc + SUM_W'(s_axis_tdata[i*QW +: QW]);
    end
  end
  always_ff @(posedge clk) if (take) sums[in_bank] <= sum_next;

  always_ff @(posedge clk) begin
    if (take) begin
      wr_ptr <= (wr_ptr == RA_W'(RING - 1)) ? '0 : wr_ptr + 1'b1;
      in_f <= in_last_fold ? '0 : in_f + 1'b1;
      if (in_last_fold) in_p <= (in_p == PW'(PIXELS - 1)) ? '0 : in_p + 1'b1;
      if (in_last) in_par <= !in_par;
    end
    if (rst) begin
      wr_ptr <= '0;
      in_f   <= '0;
      in_p   <= '0;
      in_par <= 1'b0;
    end
  end

  // ==== MLP sequencer ====
  logic busy;
  logic [MW_-1:0] m_reg;
  wire start = !busy && sums_pending[mlp_par] && !sel_valid[mlp_par];
  wire act = busy || start;
  wire [MW_-1:0] m_now = busy ? m_reg : '0;
  wire p1_issue = act && m_now < MW_'(C);
  wire h_load = act && m_now == MW_'(C + B + 1);
  wire p2_issue = act && m_now >= MW_'(C + B + 1) && m_now < MW_'(2 * C + B + 1);
  wire mlp_done = act && m_now == MW_'(M - 1);

  always_ff @(posedge clk) begin
    if (act) begin
      m_reg <= m_now + 1'b1;
      busy  <= !mlp_done;
    end
    if (mlp_done) mlp_par <= !mlp_par;
    if (rst) begin
      busy    <= 1'b0;
      m_reg   <= '0;
      mlp_par <= 1'b0;
    end
  end

  // ---- pass 1: sums -> g (search) -> acc1 ----
  // channel counters: 0 while the MLP is idle, channel m during pass 1
  logic [FW-1:0] f1;
  logic [LW-1:0] i1;
  logic [CW-1:0] c1;
  always_ff @(posedge clk) begin
    if (p1_issue) begin
      c1 <= (c1 == CW'(C - 1)) ? '0 : c1 + 1'b1;
      i1 <= (i1 == LW'(PE - 1)) ? '0 : i1 + 1'b1;
      if (i1 == LW'(PE - 1)) f1 <= (f1 == FW'(FOLDS - 1)) ? '0 : f1 + 1'b1;
    end
    if (rst) begin
      c1 <= '0;
      i1 <= '0;
      f1 <= '0;
    end
  end
  wire [BK_W-1:0] mlp_bank = BK_W'(32'(mlp_par) * FOLDS + 32'(f1));

  // lane i1 of the sums word (asynchronous read, as the input's)
  logic [SUM_W-1:0] sum_lane;
  always_comb begin
    sum_lane = sums[mlp_bank][SUM_W-1:0];
    for (int i = 1; i < PE; i++)
      if (i1 == LW'(i)) sum_lane = sums[mlp_bank][i*SUM_W +: SUM_W];
  end

  // search pipeline: index 0 = the issued channel's registers, index b+1 =
  // after search stage b; stage b tests GT[pos + 2**(B-1-b) - 1] (binary
  // search for the number of thresholds <= sum: GT ascending)
  logic v_s[B+1];
  logic first_s[B+1];
  /* verilator lint_off UNUSEDSIGNAL */
  logic [CW-1:0] c_s[B+1];  // the last stage's tag is not read
  logic [B:0] hit;          // hit[B] is a constant 0
  /* verilator lint_on UNUSEDSIGNAL */
  logic [SUM_W-1:0] val_s[B+1];
  logic [G_W-1:0] pos_s[B+1];

  always_ff @(posedge clk) begin
    v_s[0]     <= p1_issue;
    first_s[0] <= c1 == '0;
    c_s[0]     <= c1;
    val_s[0]   <= sum_lane;
    pos_s[0]   <= '0;
    for (int b = 0; b < B; b++) begin
      v_s[b+1]     <= v_s[b];
      first_s[b+1] <= first_s[b];
      c_s[b+1]     <= c_s[b];
      val_s[b+1]   <= val_s[b];
      pos_s[b+1]   <= hit[b] ? pos_s[b] + G_W'(1 << (B - 1 - b)) : pos_s[b];
    end
    if (rst) for (int b = 0; b <= B; b++) v_s[b] <= 1'b0;
  end

  logic [G_W-1:0] g;
  assign hit[B] = 1'b0;
  if (GN > 0) begin : g_search
    logic [SUM_W-1:0] gt_rom[GN];
    initial $readmemh(GT_FILE, gt_rom);
    for (genvar b = 0; b < B; b++) begin : g_stage
      wire [G_W:0] idx = {1'b0, pos_s[b]} + (G_W + 1)'((1 << (B - 1 - b)) - 1);
      wire in_range = idx < (G_W + 1)'(GN);
      wire [GA_W-1:0] addr = in_range ? GA_W'(idx) : '0;
      assign hit[b] = in_range && val_s[b] >= gt_rom[addr];
    end
    assign g = pos_s[B];
  end else begin : g_no_search
    assign g = val_s[0];
  end

  // W1 word of the channel entering the MAC, read one cycle ahead
  logic [CW-1:0] w1_addr;
  logic [WW-1:0] w1_q;
  if (B == 0) begin : g_w1_addr_issue
    assign w1_addr = c1;
  end else begin : g_w1_addr_stage
    assign w1_addr = c_s[B-1];
  end
  if (W_BLOCK) begin : g_w1_block
    (* ram_style = "block", rom_style = "block" *)
    logic [WW-1:0] w1_rom[C];
    initial $readmemh(W1_FILE, w1_rom);
    always_ff @(posedge clk) w1_q <= w1_rom[w1_addr];
  end else begin : g_w1_dist
    (* ram_style = "registers", rom_style = "distributed" *)
    logic [WW-1:0] w1_rom[C];
    initial $readmemh(W1_FILE, w1_rom);
    always_ff @(posedge clk) w1_q <= w1_rom[w1_addr];
  end

  // w (signed W_BITS) x x (unsigned) as shifts and adds, so that synthesis
  // builds the small products in LUTs (a DSP slice per 4-bit product would
  // run a CNV-sized design out of DSPs)
  localparam int XMAX = (G_W > H_W) ? G_W : H_W;
  localparam int PMAX = W_BITS + XMAX + 1;
  function automatic logic signed [PMAX-1:0] shift_add_mul(input logic [W_BITS-1:0] w,
                                                            input logic [XMAX-1:0] x);
    logic signed [PMAX-1:0] p, xs;
    xs = PMAX'($signed({1'b0, x}));
    p = '0;
    for (int k = 0; k < W_BITS - 1; k++) if (w[k]) p = p + (xs <<< k);
    if (w[W_BITS-1]) p = p - (xs <<< (W_BITS - 1));
    shift_add_mul = p;
  endfunction

  logic signed [ACC1_W-1:0] acc1[HID];
  always_ff @(posedge clk) begin
    if (v_s[B])
      for (int j = 0; j < HID; j++) begin
        /* verilator lint_off UNUSEDSIGNAL */  // high bits: the sum wraps at its width
        logic signed [P1_W-1:0] prod;
        /* verilator lint_on UNUSEDSIGNAL */
        prod = P1_W'(shift_add_mul(w1_q[j*W_BITS +: W_BITS], XMAX'(g)));
        acc1[j] <= (first_s[B] ? ACC1_W'(0) : acc1[j]) + ACC1_W'(prod);
      end
  end

  // ---- step 4: h[j], all j in parallel ----
  logic [HN*ACC1_W-1:0] ht_rom[HID];
  initial $readmemh(HT_FILE, ht_rom);
  logic [H_W-1:0] h_reg[HID];
  always_ff @(posedge clk) begin
    if (h_load)
      for (int j = 0; j < HID; j++) begin
        logic [H_W-1:0] cnt;
        cnt = '0;
        for (int k = 0; k < HN; k++)
          cnt = cnt + H_W'(acc1[j] >= $signed(ht_rom[j][k*ACC1_W +: ACC1_W]));
        h_reg[j] <= cnt;
      end
  end

  // ---- pass 2: h -> acc2 -> s -> sel[c] ----
  logic [CW-1:0] c2;
  always_ff @(posedge clk) begin
    if (p2_issue) c2 <= (c2 == CW'(C - 1)) ? '0 : c2 + 1'b1;
    if (rst) c2 <= '0;
  end

  logic [WW-1:0] w2_q;
  logic [RTW-1:0] rt_q, rt_a;
  if (W_BLOCK) begin : g_w2_block
    (* ram_style = "block", rom_style = "block" *)
    logic [WW-1:0] w2_rom[C];
    initial $readmemh(W2_FILE, w2_rom);
    always_ff @(posedge clk) w2_q <= w2_rom[c2];
  end else begin : g_w2_dist
    (* ram_style = "registers", rom_style = "distributed" *)
    logic [WW-1:0] w2_rom[C];
    initial $readmemh(W2_FILE, w2_rom);
    always_ff @(posedge clk) w2_q <= w2_rom[c2];
  end
  if (RT_BLOCK) begin : g_rt_block
    (* ram_style = "block", rom_style = "block" *)
    logic [RTW-1:0] rt_rom[C];
    initial $readmemh(RT_FILE, rt_rom);
    always_ff @(posedge clk) rt_q <= rt_rom[c2];
  end else begin : g_rt_dist
    (* ram_style = "registers", rom_style = "distributed" *)
    logic [RTW-1:0] rt_rom[C];
    initial $readmemh(RT_FILE, rt_rom);
    always_ff @(posedge clk) rt_q <= rt_rom[c2];
  end

  logic v2_r, v2_a;
  logic signed [ACC2_W-1:0] acc2_a;
  always_ff @(posedge clk) begin
    v2_r <= p2_issue;
    v2_a <= v2_r;
    if (v2_r) begin
      logic signed [ACC2_W-1:0] sum;
      sum = '0;
      for (int j = 0; j < HID; j++) begin
        /* verilator lint_off UNUSEDSIGNAL */  // high bits: the sum wraps at its width
        logic signed [P2_W-1:0] prod;
        /* verilator lint_on UNUSEDSIGNAL */
        prod = P2_W'(shift_add_mul(w2_q[j*W_BITS +: W_BITS], XMAX'(h_reg[j])));
        sum = sum + ACC2_W'(prod);
      end
      acc2_a <= sum;
      rt_a   <= rt_q;
    end
    if (rst) begin
      v2_r <= 1'b0;
      v2_a <= 1'b0;
    end
  end

  logic [ACC2_W-1:0] st_rom[SN];
  initial $readmemh(ST_FILE, st_rom);
  logic [S_W-1:0] s_val;
  logic [RW-1:0] sel_val;
  always_comb begin
    s_val = '0;
    for (int k = 0; k < SN; k++) s_val = s_val + S_W'(acc2_a >= $signed(st_rom[k]));
    sel_val = rt_a[RW-1:0];
    for (int k = 1; k <= SN; k++)
      if (s_val == S_W'(k)) sel_val = rt_a[k*RW +: RW];
  end

  // select tables: bank b word b*FOLDS + f, lane i = sel of channel f*PE+i;
  // pass 2 fills a word lane by lane (word_buf) and writes it with its last lane
  logic [FW-1:0] f2;
  logic [LW-1:0] i2;
  logic [PE*RW-1:0] word_buf, word_next;
  always_comb begin
    word_next = word_buf;
    for (int i = 0; i < PE; i++)
      if (i2 == LW'(i)) word_next[i*RW +: RW] = sel_val;
  end
  wire sel_we = v2_a && i2 == LW'(PE - 1);
  wire [BK_W-1:0] sel_wbank = BK_W'(32'(mlp_par) * FOLDS + 32'(f2));
  always_ff @(posedge clk) begin
    if (v2_a) begin
      word_buf <= word_next;
      i2 <= (i2 == LW'(PE - 1)) ? '0 : i2 + 1'b1;
      if (i2 == LW'(PE - 1)) f2 <= (f2 == FW'(FOLDS - 1)) ? '0 : f2 + 1'b1;
    end
    if (rst) begin
      i2 <= '0;
      f2 <= '0;
    end
  end

  // ==== replay ====
  logic [FW-1:0] rp_f;
  logic [PW-1:0] rp_p;
  wire rp_issue = en && sel_valid[rp_par];
  wire rp_last_fold = rp_f == FW'(FOLDS - 1);
  wire rp_last = rp_last_fold && rp_p == PW'(PIXELS - 1);
  wire [BK_W-1:0] rp_bank = BK_W'(32'(rp_par) * FOLDS + 32'(rp_f));

  logic [PE*RW-1:0] sel_q;
  if (SEL_BLOCK) begin : g_sel_block
    (* ram_style = "block" *)
    logic [PE*RW-1:0] sel_mem[2*FOLDS];
    always_ff @(posedge clk) if (sel_we) sel_mem[sel_wbank] <= word_next;
    always_ff @(posedge clk) if (en) sel_q <= sel_mem[rp_bank];
  end else begin : g_sel_dist
    (* ram_style = "distributed" *)
    logic [PE*RW-1:0] sel_mem[2*FOLDS];
    always_ff @(posedge clk) if (sel_we) sel_mem[sel_wbank] <= word_next;
    always_ff @(posedge clk) if (en) sel_q <= sel_mem[rp_bank];
  end

  always_ff @(posedge clk) begin
    if (rp_issue) begin
      rd_ptr <= (rd_ptr == RA_W'(RING - 1)) ? '0 : rd_ptr + 1'b1;
      rp_f <= rp_last_fold ? '0 : rp_f + 1'b1;
      if (rp_last_fold) rp_p <= (rp_p == PW'(PIXELS - 1)) ? '0 : rp_p + 1'b1;
      if (rp_last) rp_par <= !rp_par;
    end
    held <= held + CNT_W'(take) - CNT_W'(rp_issue);
    if (rst) begin
      rd_ptr <= '0;
      rp_f   <= '0;
      rp_p   <= '0;
      rp_par <= 1'b0;
      held   <= '0;
    end
  end

  // bank flags: clear before set (the two never meet on one bank in a cycle)
  always_ff @(posedge clk) begin
    for (int b = 0; b < 2; b++) begin
      if (mlp_done && mlp_par == 1'(b)) begin
        sums_pending[b] <= 1'b0;
        sel_valid[b]    <= 1'b1;
      end
      if (take && in_last && in_par == 1'(b)) sums_pending[b] <= 1'b1;
      if (rp_issue && rp_last && rp_par == 1'(b)) sel_valid[b] <= 1'b0;
      if (rst) begin
        sums_pending[b] <= 1'b0;
        sel_valid[b]    <= 1'b0;
      end
    end
  end

  // compare stage
  logic v1_reg;
  logic [PE-1:0] out_reg;
  always_ff @(posedge clk) begin
    if (en) begin
      v1_reg        <= rp_issue;
      out_valid_reg <= v1_reg;
      for (int i = 0; i < PE; i++)
        out_reg[i] <= {1'b0, fb_q[i*QW +: QW]} >= sel_q[i*RW +: RW];
    end
    if (rst) begin
      v1_reg        <= 1'b0;
      out_valid_reg <= 1'b0;
    end
  end

  axis_skid #(.DATA_WIDTH(PE)) u_out_slice (
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
