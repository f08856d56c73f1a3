// label_select: top-K indices of a stream of MH values (top-1 with K = 1).
//
// Input: one vector of MH values after another, PE values per beat (value 0
// in the low bits), each VAL_WIDTH bits, signed if SIGNED. Output: per vector
// K beats, each one index (IDX_WIDTH bits), largest value first; equal values
// give the lower index first (numpy argsort(-x, kind="stable")).
// The PE values of a beat are inserted one after another into a sorted list of
// K (value, index) pairs in one cycle (a chain of PE insertions of K compares).
// A finished list is copied to an output shift register, so the next vector
// streams in while the indices leave: max(MH/PE, K + 1) cycles per vector.
`default_nettype none

module label_select #(
    // Values per vector (labels), a multiple of PE.
    parameter int MH = 10,
    // Values per input beat, divides MH.
    parameter int PE = 1,
    // Bits per value (1..64).
    parameter int VAL_WIDTH = 16,
    // 1: values are signed (two's complement), 0: unsigned.
    parameter bit SIGNED = 1'b1,
    // Number of indices output per vector, 1..MH.
    parameter int K = 1,
    // Derived: bits per output index; do not override.
    parameter int IDX_WIDTH = (MH > 1) ? $clog2(MH) : 1
) (
    input  wire logic                    clk,
    input  wire logic                    rst,  // synchronous, active high

    input  wire logic [PE*VAL_WIDTH-1:0] s_axis_tdata,
    input  wire logic                    s_axis_tvalid,
    output logic                         s_axis_tready,

    output logic      [IDX_WIDTH-1:0]    m_axis_tdata,
    output logic                         m_axis_tvalid,
    input  wire logic                    m_axis_tready
);

  if (MH < 1 || PE < 1 || MH % PE != 0) begin : g_bad_pe
    $error("label_select %m: PE=%0d must divide MH=%0d (both >= 1)", PE, MH);
  end
  if (K < 1 || K > MH) begin : g_bad_k
    $error("label_select %m: K=%0d must be in 1..MH=%0d", K, MH);
  end
  if (VAL_WIDTH < 1 || VAL_WIDTH > 64) begin : g_bad_width
    $error("label_select %m: VAL_WIDTH=%0d must be in 1..64", VAL_WIDTH);
  end
  if (IDX_WIDTH != ((MH > 1) ? $clog2(MH) : 1)) begin : g_bad_idx
    $error("label_select %m: IDX_WIDTH=%0d is derived, do not override it", IDX_WIDTH);
  end

  localparam int NB = MH / PE;  // beats per vector
  localparam int NB_W = (NB > 1) ? $clog2(NB) : 1;
  localparam int CNT_W = $clog2(K + 1);
  // flipping the sign bit turns a signed compare into an unsigned one
  localparam logic [VAL_WIDTH-1:0] FLIP = VAL_WIDTH'(SIGNED) << (VAL_WIDTH - 1);

  // sorted list of the vector being read, as (valid, key, index) arrays;
  // stage p of the *_n arrays is the list after inserting p values of a beat
  logic valid_reg[K];
  logic [VAL_WIDTH-1:0] key_reg[K];
  logic [IDX_WIDTH-1:0] idx_reg[K];
  logic valid_n[PE+1][K];
  logic [VAL_WIDTH-1:0] key_n[PE+1][K];
  logic [IDX_WIDTH-1:0] idx_n[PE+1][K];
  logic ahead[PE][K];  // entries that stay in front of the value inserted
  logic [NB_W-1:0] beat_reg;
  logic [IDX_WIDTH-1:0] out_idx_reg[K];
  logic [CNT_W-1:0] out_count_reg;

  wire last_beat = beat_reg == NB_W'(NB - 1);
  // the final beat of a vector waits until the previous indices have left
  assign s_axis_tready = !(last_beat && out_count_reg != '0);
  wire take = s_axis_tvalid && s_axis_tready;

  always_comb begin
    for (int j = 0; j < K; j++) begin
      valid_n[0][j] = valid_reg[j] && beat_reg != '0;
      key_n[0][j] = key_reg[j];
      idx_n[0][j] = idx_reg[j];
    end
    for (int p = 0; p < PE; p++) begin
      for (int j = 0; j < K; j++)
        ahead[p][j] = valid_n[p][j] && key_n[p][j] >= (s_axis_tdata[p*VAL_WIDTH +: VAL_WIDTH] ^ FLIP);
      for (int j = 0; j < K; j++) begin
        if (ahead[p][j]) begin
          valid_n[p+1][j] = valid_n[p][j];
          key_n[p+1][j] = key_n[p][j];
          idx_n[p+1][j] = idx_n[p][j];
        end else if (j == 0 || ahead[p][(j == 0) ? 0 : j-1]) begin
          valid_n[p+1][j] = 1'b1;
          key_n[p+1][j] = s_axis_tdata[p*VAL_WIDTH +: VAL_WIDTH] ^ FLIP;
          idx_n[p+1][j] = IDX_WIDTH'(beat_reg * PE + p);
        end else begin
          valid_n[p+1][j] = valid_n[p][(j == 0) ? 0 : j-1];
          key_n[p+1][j] = key_n[p][(j == 0) ? 0 : j-1];
          idx_n[p+1][j] = idx_n[p][(j == 0) ? 0 : j-1];
        end
      end
    end
  end

  assign m_axis_tvalid = out_count_reg != '0;
  assign m_axis_tdata = out_idx_reg[0];

  always_ff @(posedge clk) begin
    if (m_axis_tvalid && m_axis_tready) begin
      for (int j = 0; j + 1 < K; j++) out_idx_reg[j] <= out_idx_reg[j+1];
      out_count_reg <= out_count_reg - 1'b1;
    end
    if (take) begin
      for (int j = 0; j < K; j++) begin
        valid_reg[j] <= valid_n[PE][j];
        key_reg[j] <= key_n[PE][j];
        idx_reg[j] <= idx_n[PE][j];
      end
      beat_reg <= last_beat ? '0 : beat_reg + 1'b1;
      if (last_beat) begin
        for (int j = 0; j < K; j++) out_idx_reg[j] <= idx_n[PE][j];
        out_count_reg <= CNT_W'(K);
      end
    end
    if (rst) begin
      beat_reg <= '0;
      out_count_reg <= '0;
    end
  end

endmodule

`default_nettype wire
