"""LabelSelect -> hw/label_select.sv: top-K indices over a stream of the last
layer's accumulators, PE values per beat; ties go to the lower index.

Folding rule: raise PE until the layer meets the target; PE divides the
labels. Cycles per frame: max(labels / PE, K + 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from build_flows.ops.base import (HW_DIR, MapContext, OpKind, RTLParamError, check_divides,
                                  check_positive, finn_hls_estimate)
from build_flows.rtl.graph import stream_stage
from build_flows.rtl.stream import pack_lanes


@dataclass
class LabelSelectConfig:
    """hw/label_select.sv: top-K indices of MH values, PE values per beat."""

    mh: int
    pe: int = 1
    val_width: int = 16
    signed: bool = True
    k: int = 1

    def validate(self) -> "LabelSelectConfig":
        check_positive("label_select", MH=self.mh, PE=self.pe, VAL_WIDTH=self.val_width,
                        K=self.k)
        check_divides("label_select", "PE", self.pe, "MH", self.mh)
        if self.k > self.mh:
            raise RTLParamError(f"label_select: K={self.k} exceeds MH={self.mh}; use K <= MH")
        if self.val_width > 64:
            raise RTLParamError(f"label_select: VAL_WIDTH={self.val_width} must be <= 64")
        return self

    @property
    def idx_width(self) -> int:
        return max(1, math.ceil(math.log2(self.mh)))

    def verilog_params(self) -> dict:
        self.validate()
        return {"MH": self.mh, "PE": self.pe, "VAL_WIDTH": self.val_width,
                "SIGNED": int(self.signed), "K": self.k}

    def cycles_per_vector(self) -> int:
        return max(self.mh // self.pe, self.k + 1)

    def pack_input(self, x: np.ndarray) -> list[int]:
        return pack_lanes(np.asarray(x).reshape(-1, self.mh), self.val_width, self.pe)

    def unpack_output(self, words: list[int]) -> np.ndarray:
        return np.array(words, dtype=np.int64).reshape(-1, self.k)

    def golden(self, x: np.ndarray) -> np.ndarray:
        """Stable descending order (numpy argsort(-x, kind="stable")), exact for 64 bits."""
        rows = np.asarray(x, dtype=object).reshape(-1, self.mh)
        return np.array([sorted(range(self.mh), key=lambda i: -int(row[i]))[: self.k]
                         for row in rows], dtype=np.int64)



def label_select_config(node, val_width: int = 16) -> LabelSelectConfig:
    inst = getCustomOp(node)
    return LabelSelectConfig(mh=inst.get_nodeattr("Labels"), pe=inst.get_nodeattr("PE"),
                             val_width=val_width, signed=inst.get_input_datatype().signed(),
                             k=inst.get_nodeattr("K"))


class LabelSelect(OpKind):
    name = "LabelSelect"
    hw_ops = ("LabelSelect",)
    fold_attrs = {"LabelSelect": ("PE",)}
    pe_divides = ("Labels", "MH", "label_select")

    def cycles(self, model, node):
        return label_select_config(node).cycles_per_vector()

    def stage(self, model, node, ctx: MapContext):
        # the values are as wide as the producing stage's elements (our MVTU's
        # accumulators need not be as wide as FINN's datatype); alone, the datatype's
        producer = ctx.stage_of_tensor.get(node.input[0])
        idt = getCustomOp(node).get_input_datatype()
        val_width = producer.out_elem_bits if producer is not None else idt.bitwidth()
        cfg = label_select_config(node, val_width).validate()
        return stream_stage(node.name, self.name, "label_select", cfg.verilog_params(),
                            [HW_DIR / "label_select.sv"], cfg.pe * val_width, cfg.idx_width,
                            val_width, cfg.idx_width, node.input[0], node.output[0],
                            in_signed=cfg.signed, pe=cfg.pe, expected_cycles=self.cycles(model, node))

    def execute(self, model, node, x):
        """The K largest in descending order, ties to the lower index."""
        k = getCustomOp(node).get_nodeattr("K")
        flat = x.reshape(len(x), -1)
        return np.argsort(-flat, axis=1, kind="stable")[:, :k]

    def finn_estimate(self, model, stage, part):
        return finn_hls_estimate(model.get_node_from_name(stage.name), part)
