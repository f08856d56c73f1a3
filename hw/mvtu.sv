// mvtu: streaming matrix-vector-threshold unit (FINN MVAU folding), AXI-Stream.
//
// Computes y = act(W x) for a MH x MW weight matrix W, one input vector after
// another. Folding (as FINN's MVAU): an input vector of MW elements arrives as
// SF = MW/SIMD beats of SIMD elements (element 0 in the low bits); an output
// vector of MH results leaves as NF = MH/PE beats of PE results (channel 0 in
// the low bits). The input vector is buffered during neuron fold 0 and re-read
// for folds 1..NF-1, so a vector takes NF*SF cycles, one beat per cycle.
//
// Modes (MODE):
//   0 XNOR: bipolar inputs and weights (bit 1 = +1, bit 0 = -1); the
//     accumulator is popcount(xnor(x, w)) in 0..MW (unsigned).
//   1 integer inputs (IN_WIDTH bits, IN_SIGNED) x bipolar weights: sum(+-x).
//   2 integer inputs x signed integer weights (W_WIDTH bits): sum(x * w).
// Activation: N_THRES > 0: output = number of thresholds t of the channel
// with acc >= t (unsigned, $clog2(N_THRES+1) bits; thresholds ascending);
// N_THRES = 0: output = accumulator (ACC_WIDTH bits, two's complement).
//
// Memory files ($readmemh, one hex word per line):
//   WEIGHT_FILE: NF*SF words of PE*SIMD*W_WIDTH bits; word nf*SF+sf holds
//     W[nf*PE+p][sf*SIMD+i] at bits [(p*SIMD+i)*W_WIDTH +: W_WIDTH].
//   THRESH_FILE: NF words of PE*N_THRES*ACC_WIDTH bits; word nf holds
//     T[nf*PE+p][t] at bits [(p*N_THRES+t)*ACC_WIDTH +: ACC_WIDTH].
//   With border classes (N_RC * N_CC > 1, below): NCLS*NF words; word
//     cls*NF+nf holds class cls's T[cls][nf*PE+p][t] the same way.
//   RCLASS_FILE / CCLASS_FILE (only read when N_RC > 1 / N_CC > 1): OH / OW
//     words, the row / column class of each output row / column.
// build_flows/ops/mvau.py (MVTUConfig.mem_files) writes them from FINN-layout
// matrices.
//
// Border classes (a padded binary convolution): the input vectors of a frame
// are the OH x OW windows of a sliding window, row-major. The window of output
// pixel (r, c) uses thresholds set cls = RCLASS[r] * N_CC + CCLASS[c]. A padded
// binary input arrives as bit 0 (-1) where the model pads with 0, so each set
// of padded kernel positions (one per class) shifts the thresholds by the
// padded weights' sum; the flow computes the sets. N_RC = N_CC = 1: one set.
//
// Memory style (MEM_STYLE for the weights, THRES_MEM_STYLE for the thresholds):
//   "block": block RAM; "distributed": LUTs (LUT ROM / LUT RAM); "auto": block
//   RAM when the memory is deep and big enough to be worth one, LUTs otherwise:
//     block  <=>  depth > 128 words  and  depth * width >= 4096 bits
//   (depth > 128 is FINN's own rule for embedded MVAU weights, calc_wmem() > 128;
//   the size bound keeps narrow memories, whose LUT ROM costs only a few LUTs,
//   out of an 18 Kbit RAMB18). The choice is a (* ram_style / rom_style *)
//   attribute on the memory array, honoured by Yosys and Vivado. Both memories
//   are read synchronously (registered address: waddr_reg / ta2_reg; registered
//   output with clock enable: w1_reg / thr3_reg), so the block-RAM output latch
//   is the pipeline register and the timing is the same in every style.
// Pipeline: issue, weight read, dot product, accumulate, threshold, then an
// axis_skid output slice, so s_axis_tready does not depend on m_axis_tready.
`default_nettype none

module mvtu #(
    // Input vector length (elements), a multiple of SIMD.
    parameter int MW = 16,
    // Output channels (rows of W), a multiple of PE.
    parameter int MH = 16,
    // Input elements per beat (synapse parallelism), divides MW.
    parameter int SIMD = 4,
    // Output channels per beat (neuron parallelism), divides MH.
    parameter int PE = 4,
    // 0 XNOR (bipolar x bipolar), 1 integer x bipolar, 2 integer x integer.
    parameter int MODE = 0,
    // Bits per input element (1 in MODE 0, 1..32 otherwise).
    parameter int IN_WIDTH = 1,
    // 1: input elements are signed (two's complement), 0: unsigned. MODE 1/2.
    parameter bit IN_SIGNED = 1'b0,
    // Bits per weight (1 in MODE 0/1, 2..8 signed in MODE 2).
    parameter int W_WIDTH = 1,
    // Accumulator and threshold width (>= 2, large enough for the dot product).
    parameter int ACC_WIDTH = 16,
    // Thresholds per channel; 0 = no activation (emit accumulators).
    parameter int N_THRES = 1,
    // $readmemh file with the weights (layout above).
    parameter WEIGHT_FILE = "weights.mem",
    // $readmemh file with the thresholds (layout above), unused if N_THRES=0.
    parameter THRESH_FILE = "thresholds.mem",
    // Weight memory: "auto", "block" (block RAM) or "distributed" (LUTs).
    parameter MEM_STYLE = "auto",
    // Threshold memory: "auto", "block" or "distributed" (unused if N_THRES=0).
    parameter THRES_MEM_STYLE = "auto",
    // Border classes (see above): output rows / columns per frame and the
    // number of row / column classes; 1 x 1 classes = no border logic.
    parameter int OH = 1,
    parameter int OW = 1,
    parameter int N_RC = 1,
    parameter int N_CC = 1,
    // $readmemh files with the row / column classes (layout above).
    parameter RCLASS_FILE = "rclass.mem",
    parameter CCLASS_FILE = "cclass.mem",
    // Derived: bits per output lane; do not override.
    parameter int OUT_WIDTH = (N_THRES > 0) ? $clog2(N_THRES + 1) : ACC_WIDTH
) (
    input  wire logic                      clk,
    input  wire logic                      rst,  // synchronous, active high

    input  wire logic [SIMD*IN_WIDTH-1:0]  s_axis_tdata,
    input  wire logic                      s_axis_tvalid,
    output logic                           s_axis_tready,

    output logic      [PE*OUT_WIDTH-1:0]   m_axis_tdata,
    output logic                           m_axis_tvalid,
    input  wire logic                      m_axis_tready
);

  // ---- elaboration checks ----
  if (MW < 1 || MH < 1 || SIMD < 1 || PE < 1) begin : g_bad_dims
    $error("mvtu %m: MW=%0d MH=%0d SIMD=%0d PE=%0d must all be >= 1", MW, MH, SIMD, PE);
  end
  if (MW % SIMD != 0) begin : g_bad_simd
    $error("mvtu %m: SIMD=%0d must divide MW=%0d", SIMD, MW);
  end
  if (MH % PE != 0) begin : g_bad_pe
    $error("mvtu %m: PE=%0d must divide MH=%0d", PE, MH);
  end
  if (MODE < 0 || MODE > 2) begin : g_bad_mode
    $error("mvtu %m: MODE=%0d must be 0 (XNOR), 1 (int x bipolar) or 2 (int x int)", MODE);
  end
  if ((MODE == 0 && IN_WIDTH != 1) || IN_WIDTH < 1 || IN_WIDTH > 32) begin : g_bad_in
    $error("mvtu %m: IN_WIDTH=%0d invalid for MODE=%0d (1 in MODE 0, else 1..32)", IN_WIDTH, MODE);
  end
  if ((MODE < 2 && W_WIDTH != 1) || (MODE == 2 && (W_WIDTH < 2 || W_WIDTH > 8))) begin : g_bad_w
    $error("mvtu %m: W_WIDTH=%0d invalid for MODE=%0d (1 in MODE 0/1, 2..8 in MODE 2)", W_WIDTH, MODE);
  end
  if (ACC_WIDTH < IN_WIDTH + W_WIDTH + 1 || ACC_WIDTH > 64) begin : g_bad_acc
    $error("mvtu %m: ACC_WIDTH=%0d must be in %0d..64", ACC_WIDTH, IN_WIDTH + W_WIDTH + 1);
  end
  if (N_THRES < 0) begin : g_bad_thres
    $error("mvtu %m: N_THRES=%0d must be >= 0", N_THRES);
  end
  if (OH < 1 || OW < 1 || N_RC < 1 || N_CC < 1 || N_RC > OH || N_CC > OW) begin : g_bad_cls
    $error("mvtu %m: OH=%0d OW=%0d N_RC=%0d N_CC=%0d: need 1 <= N_RC <= OH, 1 <= N_CC <= OW",
           OH, OW, N_RC, N_CC);
  end
  if (N_RC * N_CC > 1 && N_THRES == 0) begin : g_bad_cls_noact
    $error("mvtu %m: border classes need thresholds (N_THRES > 0)");
  end
  if (OUT_WIDTH != ((N_THRES > 0) ? $clog2(N_THRES + 1) : ACC_WIDTH)) begin : g_bad_out
    $error("mvtu %m: OUT_WIDTH=%0d is derived, do not override it", OUT_WIDTH);
  end
  // Style strings compared at a common width (16 characters) to keep the
  // comparisons width-clean for any string length.
  localparam logic [127:0] MEM_S = 128'(MEM_STYLE);
  localparam logic [127:0] TMEM_S = 128'(THRES_MEM_STYLE);
  localparam logic [127:0] S_AUTO = 128'("auto");
  localparam logic [127:0] S_BLOCK = 128'("block");
  localparam logic [127:0] S_DIST = 128'("distributed");
  if (MEM_S != S_AUTO && MEM_S != S_BLOCK && MEM_S != S_DIST) begin : g_bad_mem_style
    $error("mvtu %m: MEM_STYLE=\"%0s\" must be \"auto\", \"block\" or \"distributed\"",
           MEM_STYLE);
  end
  if (TMEM_S != S_AUTO && TMEM_S != S_BLOCK && TMEM_S != S_DIST) begin : g_bad_tmem_style
    $error("mvtu %m: THRES_MEM_STYLE=\"%0s\" must be \"auto\", \"block\" or \"distributed\"",
           THRES_MEM_STYLE);
  end

  localparam int SF = MW / SIMD;  // synapse folds (beats per input vector)
  localparam int NF = MH / PE;    // neuron folds (beats per output vector)
  localparam int XW = SIMD * IN_WIDTH;
  localparam int WW = PE * SIMD * W_WIDTH;
  localparam int TW = (N_THRES > 0) ? PE * N_THRES * ACC_WIDTH : 1;
  localparam int SF_W = (SF > 1) ? $clog2(SF) : 1;
  localparam int NF_W = (NF > 1) ? $clog2(NF) : 1;
  localparam int WA_W = (SF * NF > 1) ? $clog2(SF * NF) : 1;
  localparam int NCLS = N_RC * N_CC;  // threshold sets
  localparam int TDEPTH = NF * NCLS;  // threshold memory words
  localparam int TA_W = (TDEPTH > 1) ? $clog2(TDEPTH) : 1;
  localparam int SIMD_P2 = 1 << $clog2(SIMD);  // adder-tree leaves
  // Memory style resolution (rule in the header): 1 = block RAM, 0 = LUTs.
  localparam bit W_BLOCK = (MEM_S == S_BLOCK) ||
      (MEM_S == S_AUTO && SF * NF > 128 && SF * NF * WW >= 4096);
  localparam bit T_BLOCK = (TMEM_S == S_BLOCK) ||
      (TMEM_S == S_AUTO && TDEPTH > 128 && TDEPTH * TW >= 4096);

  // Global pipeline enable: every stage advances unless the output holds a
  // result that the output slice cannot take.
  logic out_valid_reg, slice_ready;
  wire en = !out_valid_reg || slice_ready;

  // ---- stage 0: fold counters, input buffer, issue ----
  logic [SF_W-1:0] sf_reg;
  logic [NF_W-1:0] nf_reg;
  logic [WA_W-1:0] waddr_reg;
  logic [XW-1:0] x_issue;

  wire fold0 = nf_reg == '0;
  wire issue = en && (!fold0 || s_axis_tvalid);
  assign s_axis_tready = en && fold0;

  if (NF > 1) begin : g_ibuf
    logic [XW-1:0] ibuf[SF];
    always_ff @(posedge clk) if (issue && fold0) ibuf[sf_reg] <= s_axis_tdata;
    assign x_issue = fold0 ? s_axis_tdata : ibuf[sf_reg];
  end else begin : g_no_ibuf
    assign x_issue = s_axis_tdata;
  end

  always_ff @(posedge clk) begin
    if (issue) begin
      sf_reg    <= (sf_reg == SF_W'(SF - 1)) ? '0 : sf_reg + 1'b1;
      waddr_reg <= (waddr_reg == WA_W'(SF * NF - 1)) ? '0 : waddr_reg + 1'b1;
      if (sf_reg == SF_W'(SF - 1)) nf_reg <= (nf_reg == NF_W'(NF - 1)) ? '0 : nf_reg + 1'b1;
    end
    if (rst) begin
      sf_reg    <= '0;
      nf_reg    <= '0;
      waddr_reg <= '0;
    end
  end

  // Threshold address of the issued beat: class * NF + neuron fold.
  logic [TA_W-1:0] taddr0;
  if (NCLS > 1) begin : g_classes
    localparam int OH_W = (OH > 1) ? $clog2(OH) : 1;
    localparam int OW_W = (OW > 1) ? $clog2(OW) : 1;
    localparam int RC_W = (N_RC > 1) ? $clog2(N_RC) : 1;
    localparam int CC_W = (N_CC > 1) ? $clog2(N_CC) : 1;
    logic [OH_W-1:0] oh_reg;
    logic [OW_W-1:0] ow_reg;
    logic [RC_W-1:0] rc;
    logic [CC_W-1:0] cc;
    // the last beat of a vector moves to the next output pixel
    wire vec_end = issue && sf_reg == SF_W'(SF - 1) && nf_reg == NF_W'(NF - 1);
    always_ff @(posedge clk) begin
      if (vec_end) begin
        ow_reg <= (ow_reg == OW_W'(OW - 1)) ? '0 : ow_reg + 1'b1;
        if (ow_reg == OW_W'(OW - 1)) oh_reg <= (oh_reg == OH_W'(OH - 1)) ? '0 : oh_reg + 1'b1;
      end
      if (rst) begin
        oh_reg <= '0;
        ow_reg <= '0;
      end
    end
    if (N_RC > 1) begin : g_rclass
      (* rom_style = "distributed" *)
      logic [RC_W-1:0] rclass[OH];
      initial $readmemh(RCLASS_FILE, rclass);
      assign rc = rclass[oh_reg];
    end else begin : g_no_rclass
      assign rc = '0;
    end
    if (N_CC > 1) begin : g_cclass
      (* rom_style = "distributed" *)
      logic [CC_W-1:0] cclass[OW];
      initial $readmemh(CCLASS_FILE, cclass);
      assign cc = cclass[ow_reg];
    end else begin : g_no_cclass
      assign cc = '0;
    end
    assign taddr0 = TA_W'((32'(rc) * N_CC + 32'(cc)) * NF + 32'(nf_reg));
  end else begin : g_one_class
    assign taddr0 = TA_W'(nf_reg);
  end

  // ---- stage 1: weight memory read ----
  // Synchronous read: registered address waddr_reg, output register w1_reg
  // with clock enable en (the block-RAM output latch when W_BLOCK).
  logic [XW-1:0] x1_reg;
  logic [WW-1:0] w1_reg;
  if (W_BLOCK) begin : g_wmem_block
    (* ram_style = "block", rom_style = "block" *)
    logic [WW-1:0] wmem[SF*NF];
    initial $readmemh(WEIGHT_FILE, wmem);
    always_ff @(posedge clk) if (en) w1_reg <= wmem[waddr_reg];
  end else begin : g_wmem_lut
    (* ram_style = "registers", rom_style = "distributed" *)
    logic [WW-1:0] wmem[SF*NF];
    initial $readmemh(WEIGHT_FILE, wmem);
    always_ff @(posedge clk) if (en) w1_reg <= wmem[waddr_reg];
  end

  logic v1_reg, first1_reg, last1_reg;
  logic [TA_W-1:0] ta1_reg;
  always_ff @(posedge clk) begin
    if (en) begin
      v1_reg     <= issue;
      x1_reg     <= x_issue;
      first1_reg <= sf_reg == '0;
      last1_reg  <= sf_reg == SF_W'(SF - 1);
      ta1_reg    <= taddr0;
    end
    if (rst) v1_reg <= 1'b0;
  end

  // ---- stage 2: per-PE dot product of SIMD elements ----
  logic signed [ACC_WIDTH-1:0] dot[PE];

  if (MODE == 0) begin : g_xnor
    // XNOR-popcount: one $countones over the SIMD lanes of a PE. Verilator
    // evaluates it word by word (a lane-by-lane adder tree cost about 70 % of
    // a CNV simulation), and Yosys builds the same LUT count as the tree.
    // The count is PC_W bits wide, so the bits above it are constant zeros.
    localparam int PC_W = $clog2(SIMD + 1);
    for (genvar p = 0; p < PE; p++) begin : g_pe_pc
      wire logic [PC_W-1:0] ones = PC_W'($countones(~(x1_reg ^ w1_reg[p*SIMD +: SIMD])));
      assign dot[p] = ACC_WIDTH'(ones);
    end
  end else begin : g_int
    // integer lanes: a balanced adder tree of the SIMD products
    logic signed [ACC_WIDTH-1:0] term[PE][SIMD_P2];
    for (genvar p = 0; p < PE; p++) begin : g_pe_terms
      for (genvar i = 0; i < SIMD_P2; i++) begin : g_simd
        if (i >= SIMD) begin : g_pad
          assign term[p][i] = '0;
        end else begin : g_lane
          wire logic [IN_WIDTH-1:0] x = x1_reg[i*IN_WIDTH +: IN_WIDTH];
          wire logic [W_WIDTH-1:0] w = w1_reg[(p*SIMD+i)*W_WIDTH +: W_WIDTH];
          // x extended to a signed value one bit wider than IN_WIDTH
          wire logic signed [IN_WIDTH:0] xs = {IN_SIGNED & x[IN_WIDTH-1], x};
          if (MODE == 1) begin : g_bip
            assign term[p][i] = w[0] ? ACC_WIDTH'(xs) : -(ACC_WIDTH'(xs));  // Yosys reads -N'(x) as (-N)'(x)
          end else begin : g_mul
            wire logic signed [IN_WIDTH+W_WIDTH:0] prod = xs * $signed(w);
            assign term[p][i] = ACC_WIDTH'(prod);
          end
        end
      end
    end

    for (genvar p = 0; p < PE; p++) begin : g_pe_tree
      logic signed [ACC_WIDTH-1:0] node[SIMD_P2];
      always_comb begin
        for (int i = 0; i < SIMD_P2; i++) node[i] = term[p][i];
        for (int n = SIMD_P2 / 2; n >= 1; n = n / 2)
          for (int i = 0; i < n; i++) node[i] = node[2*i] + node[2*i+1];
        dot[p] = node[0];
      end
    end
  end

  logic signed [ACC_WIDTH-1:0] dot2_reg[PE];
  logic v2_reg, first2_reg, last2_reg;
  // ta2_reg only addresses the threshold memory: unused when N_THRES = 0
  /* verilator lint_off UNUSEDSIGNAL */
  logic [TA_W-1:0] ta2_reg;
  /* verilator lint_on UNUSEDSIGNAL */
  always_ff @(posedge clk) begin
    if (en) begin
      v2_reg     <= v1_reg;
      dot2_reg   <= dot;
      first2_reg <= first1_reg;
      last2_reg  <= last1_reg;
      ta2_reg    <= ta1_reg;
    end
    if (rst) v2_reg <= 1'b0;
  end

  // ---- stage 3: accumulate; threshold memory read ----
  logic signed [ACC_WIDTH-1:0] acc_reg[PE];
  logic v3_reg;
  // thr3_reg is a constant placeholder when N_THRES = 0
  /* verilator lint_off UNUSEDSIGNAL */
  logic [TW-1:0] thr3_reg;
  /* verilator lint_on UNUSEDSIGNAL */
  always_ff @(posedge clk) begin
    if (en) begin
      v3_reg <= v2_reg && last2_reg;
      if (v2_reg)
        for (int p = 0; p < PE; p++) acc_reg[p] <= (first2_reg ? '0 : acc_reg[p]) + dot2_reg[p];
    end
    if (rst) v3_reg <= 1'b0;
  end

  // Synchronous read like the weights: address ta2_reg, output thr3_reg.
  if (N_THRES > 0 && T_BLOCK) begin : g_tmem_block
    (* ram_style = "block", rom_style = "block" *)
    logic [TW-1:0] tmem[TDEPTH];
    initial $readmemh(THRESH_FILE, tmem);
    always_ff @(posedge clk) if (en) thr3_reg <= tmem[ta2_reg];
  end else if (N_THRES > 0) begin : g_tmem
    (* ram_style = "registers", rom_style = "distributed" *)
    logic [TW-1:0] tmem[TDEPTH];
    initial $readmemh(THRESH_FILE, tmem);
    always_ff @(posedge clk) if (en) thr3_reg <= tmem[ta2_reg];
  end else begin : g_no_tmem
    assign thr3_reg = '0;
  end

  // ---- stage 4: activation ----
  logic [PE*OUT_WIDTH-1:0] out_reg;
  logic [PE*OUT_WIDTH-1:0] act;
  for (genvar p = 0; p < PE; p++) begin : g_act
    if (N_THRES > 0) begin : g_thres
      logic [OUT_WIDTH-1:0] count;
      always_comb begin
        count = '0;
        for (int t = 0; t < N_THRES; t++) begin
          // MODE 0 accumulators and thresholds are unsigned popcounts
          if (MODE == 0) count = count + OUT_WIDTH'($unsigned(acc_reg[p]) >=
                                 thr3_reg[(p*N_THRES+t)*ACC_WIDTH +: ACC_WIDTH]);
          else count = count + OUT_WIDTH'(acc_reg[p] >=
                       $signed(thr3_reg[(p*N_THRES+t)*ACC_WIDTH +: ACC_WIDTH]));
        end
      end
      assign act[p*OUT_WIDTH +: OUT_WIDTH] = count;
    end else begin : g_noact
      assign act[p*OUT_WIDTH +: OUT_WIDTH] = acc_reg[p];
    end
  end

  always_ff @(posedge clk) begin
    if (en) begin
      out_valid_reg <= v3_reg;
      out_reg       <= act;
    end
    if (rst) out_valid_reg <= 1'b0;
  end

  axis_skid #(.DATA_WIDTH(PE * OUT_WIDTH)) u_out_slice (
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
