"""The FIFO on a stage-graph edge -> hw/axis_fifo.sv. Depths come from the
FIFO-sizing simulation (sim/fifo_sizing.py); FINN-style estimate: LUT RAM of
depth x width bits, nothing below 64 bits."""

from __future__ import annotations

from dataclasses import dataclass

from build_flows.ops.base import HW_DIR, OpKind, RTLParamError, check_positive
from build_flows.rtl.graph import Port, Stage, stream_stage


@dataclass
class FIFOConfig:
    """hw/axis_fifo.sv."""

    data_width: int
    depth: int

    def validate(self) -> "FIFOConfig":
        check_positive("axis_fifo", DATA_WIDTH=self.data_width, DEPTH=self.depth)
        if self.depth < 2:
            raise RTLParamError(f"axis_fifo: DEPTH={self.depth} must be >= 2")
        return self

    def verilog_params(self) -> dict:
        self.validate()
        return {"DATA_WIDTH": self.data_width, "DEPTH": self.depth}


def fifo_stage(name: str, port: Port, depth: int) -> Stage:
    """An axis_fifo of `depth` words (at least 2) for a stream like `port`."""
    cfg = FIFOConfig(data_width=port.width, depth=max(2, depth)).validate()
    return stream_stage(name, FIFO.name, "axis_fifo", cfg.verilog_params(), [HW_DIR / "axis_fifo.sv"],
                        port.width, port.width, port.elem_bits, port.elem_bits,
                        port.tensor, port.tensor, in_signed=port.signed, out_signed=port.signed,
                        depth=cfg.depth)


class FIFO(OpKind):
    name = "FIFO"

    def finn_estimate(self, model, stage, part):
        bits = stage.depth * stage.in_width
        return {"LUT": 0 if bits <= 64 else -(-bits // 64), "FF": 0, "BRAM36": 0, "DSP": 0}
