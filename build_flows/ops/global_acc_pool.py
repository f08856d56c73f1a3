"""GlobalAccPool -> hw/global_acc_pool.sv: the per-channel sum over every
pixel of a feature map (FINN's GlobalAccPool semantics: sum, not mean; the
1/(H*W) of a global average pool is a scalar the streamline folds into the
next layer's thresholds, frontend/global_pool.py).

Folding rule: raise PE until the layer meets the target; PE divides the
channels. Cycles per frame: H * W * C / PE (the sums leave during the last
pixel's beats, so they add no cycles of their own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import UnsupportedLayerError
from build_flows.ops.base import (HW_DIR, MapContext, OpKind, RTLParamError, check_divides,
                                  check_positive, describe, finn_hls_estimate)
from build_flows.rtl.graph import stream_stage
from build_flows.rtl.stream import pack_lanes, unpack_lanes


@dataclass
class GlobalAccPoolConfig:
    """hw/global_acc_pool.sv: sums of C channels over `pixels` pixels, PE lanes per beat."""

    pixels: int
    c: int
    pe: int
    in_width: int = 1
    in_signed: bool = False
    acc_width: int | None = None  # None: the smallest that holds every sum

    def min_acc_width(self) -> int:
        lo, hi = ((-(1 << (self.in_width - 1)), (1 << (self.in_width - 1)) - 1) if self.in_signed
                  else (0, (1 << self.in_width) - 1))
        lo, hi = lo * self.pixels, hi * self.pixels
        if self.in_signed:
            return max(max(-lo - 1, hi).bit_length() + 1, self.in_width)
        return max(hi.bit_length(), self.in_width)

    @property
    def out_width(self) -> int:
        return self.acc_width if self.acc_width is not None else self.min_acc_width()

    def validate(self) -> "GlobalAccPoolConfig":
        check_positive("global_acc_pool", PIXELS=self.pixels, C=self.c, PE=self.pe,
                       IN_W=self.in_width)
        check_divides("global_acc_pool", "PE", self.pe, "C", self.c)
        if self.in_width > 32:
            raise RTLParamError(f"global_acc_pool: IN_W={self.in_width} must be <= 32")
        need = self.min_acc_width()
        if not need <= self.out_width <= 64:
            raise RTLParamError(f"global_acc_pool: ACC_W={self.out_width} cannot hold the sums "
                                f"or is > 64; use {need}..64")
        return self

    def verilog_params(self) -> dict:
        self.validate()
        return {"PE": self.pe, "FOLDS": self.c // self.pe, "PIXELS": self.pixels,
                "IN_W": self.in_width, "IN_SIGNED": int(self.in_signed), "ACC_W": self.out_width}

    def pack_input(self, x: np.ndarray) -> list[int]:
        """x[N, pixels, C] (any shape whose last axes are pixels, C) -> words of PE lanes."""
        return pack_lanes(np.asarray(x), self.in_width, self.pe)

    def unpack_output(self, words: list[int]) -> np.ndarray:
        return unpack_lanes(words, self.out_width, self.pe, self.in_signed).reshape(-1, self.c)

    def in_words_per_image(self) -> int:
        return self.pixels * self.c // self.pe

    def out_words_per_image(self) -> int:
        return self.c // self.pe

    def golden(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.int64).reshape(-1, self.pixels, self.c).sum(axis=1)


def global_acc_pool_config(node) -> GlobalAccPoolConfig:
    inst = getCustomOp(node)
    idt = inst.get_input_datatype()
    vecs = list(inst.get_nodeattr("numInputVectors"))
    return GlobalAccPoolConfig(pixels=int(np.prod(vecs[1:])), c=inst.get_nodeattr("NumChannels"),
                               pe=inst.get_nodeattr("PE"), in_width=idt.bitwidth(),
                               in_signed=idt.signed(),
                               acc_width=inst.get_output_datatype().bitwidth())


class GlobalAccPool(OpKind):
    name = "GlobalAccPool"
    hw_ops = ("GlobalAccPool",)
    fold_attrs = {"GlobalAccPool": ("PE",)}
    pe_divides = ("NumChannels", "channels", "global_acc_pool")

    def check(self, model, node, index, count):
        inst = getCustomOp(node)
        idt = inst.get_input_datatype()
        if not idt.is_integer() or idt.name == "BIPOLAR" or idt.bitwidth() > 32:
            raise UnsupportedLayerError(
                f"layer {describe(node)} sums {idt.name} values: the global pool takes binary "
                "or integer activations of at most 32 bits (bipolar ones are streamed as BINARY "
                "by frontend/global_pool.py)")
        cfg = global_acc_pool_config(node)
        if cfg.out_width < cfg.min_acc_width():
            raise UnsupportedLayerError(
                f"layer {describe(node)}: its output type {inst.get_output_datatype().name} cannot "
                f"hold a sum of {cfg.pixels} {idt.name} values ({cfg.min_acc_width()} bits needed)")

    def cycles(self, model, node):
        return global_acc_pool_config(node).in_words_per_image()

    def stage(self, model, node, ctx: MapContext):
        self.check(model, node, 0, 1)
        cfg = global_acc_pool_config(node).validate()
        return stream_stage(node.name, self.name, "global_acc_pool", cfg.verilog_params(),
                            [HW_DIR / "global_acc_pool.sv", HW_DIR / "axis_skid.sv"],
                            cfg.pe * cfg.in_width, cfg.pe * cfg.out_width, cfg.in_width,
                            cfg.out_width, node.input[0], node.output[0], in_signed=cfg.in_signed,
                            out_signed=cfg.in_signed, pe=cfg.pe,
                            expected_cycles=self.cycles(model, node))

    def execute(self, model, node, x):
        """x (N, H, W, C) -> (N, 1, 1, C), the sums."""
        return x.sum(axis=(1, 2), keepdims=True)

    def finn_estimate(self, model, stage, part):
        return finn_hls_estimate(model.get_node_from_name(stage.name), part)
