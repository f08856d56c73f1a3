// stream_to_dma_tap: test-only wrapper of hw/stream_to_dma.sv for the
// one-in/one-out Verilator harness, which reads m_axis_tdata alone: the
// output word is {m_axis_tlast, m_axis_tdata} (BUS_W+1 bits, TLAST on top).
// Never part of a deployed design.
`default_nettype none

module stream_to_dma_tap #(
    parameter int BUS_W = 64,
    parameter int WORD_W = 8,
    parameter int SLOT_BYTES = 1,
    parameter int WORDS_PER_FRAME = 1,
    parameter int FRAMES_PER_PACKET = 1
) (
    input  wire logic              clk,
    input  wire logic              rst,  // synchronous, active high

    input  wire logic [WORD_W-1:0] s_axis_tdata,
    input  wire logic              s_axis_tvalid,
    output logic                   s_axis_tready,

    output logic      [BUS_W:0]    m_axis_tdata,  // {tlast, tdata}
    output logic                   m_axis_tvalid,
    input  wire logic              m_axis_tready
);

  stream_to_dma #(
      .BUS_W(BUS_W),
      .WORD_W(WORD_W),
      .SLOT_BYTES(SLOT_BYTES),
      .WORDS_PER_FRAME(WORDS_PER_FRAME),
      .FRAMES_PER_PACKET(FRAMES_PER_PACKET)
  ) u_dut (
      .clk(clk),
      .rst(rst),
      .s_axis_tdata(s_axis_tdata),
      .s_axis_tvalid(s_axis_tvalid),
      .s_axis_tready(s_axis_tready),
      .m_axis_tdata(m_axis_tdata[BUS_W-1:0]),
      .m_axis_tvalid(m_axis_tvalid),
      .m_axis_tready(m_axis_tready),
      .m_axis_tlast(m_axis_tdata[BUS_W])
  );

endmodule

`default_nettype wire
