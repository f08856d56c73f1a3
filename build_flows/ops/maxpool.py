"""Max-pool: FINN's depthwise sliding window + Pool pair, binary (bipolar max = OR).

- Square kernel = stride, no padding: hw/maxpool_bin.sv takes the NHWC bits
  directly and replaces the window (the pair is one stage); cycles per frame
  H * W * C / PE.
- Any other kernel, stride or padding (3x3/2, 2x2/1, non-square, padded):
  FINN's RTL sliding window (depthwise) stays, and hw/window_or.sv ORs each
  window's K2 = KH*KW beats (the window streams, per output pixel and group of
  SIMD channels, the K2 positions one after another); cycles per frame: the
  window's OH * OW * C/PE * K2 beats. The padding in front pads bit 0 (= -1),
  the bipolar minimum, which is what a max-pool's padding means.

SIMD channels per beat = the Pool's PE. Folding rule: raise PE until the pool
meets the target; PE divides the channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import UnsupportedLayerError
from build_flows.ops.base import (HW_DIR, MapContext, OpKind, RTLParamError, check_divides,
                                  check_positive, finn_hls_estimate, finn_inst,
                                  producer_swg)
from build_flows.rtl.graph import stream_stage
from build_flows.rtl.stream import pack_lanes, unpack_lanes


@dataclass
class MaxPoolConfig:
    """hw/maxpool_bin.sv: K x K binary max-pool, stride K, over NHWC bits."""

    ifm_h: int
    ifm_w: int
    c: int
    simd: int
    k: int

    def validate(self) -> "MaxPoolConfig":
        check_positive("maxpool_bin", IFM_H=self.ifm_h, IFM_W=self.ifm_w, C=self.c,
                        SIMD=self.simd, K=self.k)
        check_divides("maxpool_bin", "SIMD", self.simd, "C", self.c)
        if self.k > min(self.ifm_h, self.ifm_w):
            raise RTLParamError(f"maxpool_bin: K={self.k} exceeds the feature map "
                                f"{self.ifm_h}x{self.ifm_w}; use K <= {min(self.ifm_h, self.ifm_w)}")
        return self

    def verilog_params(self) -> dict:
        self.validate()
        return {"IFM_H": self.ifm_h, "IFM_W": self.ifm_w, "C": self.c,
                "SIMD": self.simd, "K": self.k}

    def pack_input(self, x: np.ndarray) -> list[int]:
        """x[N, H, W, C] binary -> words of SIMD channels."""
        return pack_lanes(np.asarray(x), 1, self.simd)

    def unpack_output(self, words: list[int]) -> np.ndarray:
        return unpack_lanes(words, 1, self.simd).reshape(
            -1, self.ifm_h // self.k, self.ifm_w // self.k, self.c)

    def out_words_per_image(self) -> int:
        return (self.ifm_h // self.k) * (self.ifm_w // self.k) * self.c // self.simd

    def in_words_per_image(self) -> int:
        return self.ifm_h * self.ifm_w * self.c // self.simd

    def golden(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).reshape(-1, self.ifm_h, self.ifm_w, self.c)
        oh, ow, k = self.ifm_h // self.k, self.ifm_w // self.k, self.k
        win = x[:, : oh * k, : ow * k, :].reshape(-1, oh, k, ow, k, self.c)
        return win.max(axis=(2, 4))



@dataclass
class WindowOrConfig:
    """hw/window_or.sv: the OR of each window of a depthwise sliding window."""

    oh: int
    ow: int
    c: int
    simd: int
    k2: int  # window positions, KH * KW

    def validate(self) -> "WindowOrConfig":
        check_positive("window_or", OH=self.oh, OW=self.ow, C=self.c, SIMD=self.simd, K2=self.k2)
        check_divides("window_or", "SIMD", self.simd, "C", self.c)
        return self

    def verilog_params(self) -> dict:
        self.validate()
        return {"SIMD": self.simd, "K2": self.k2}

    def stream_order(self, x: np.ndarray) -> np.ndarray:
        """FINN's tensor (N, OH, OW, K2 * C) -> the depthwise window's beat order
        (N, OH, OW, C/SIMD, K2, SIMD)."""
        x = np.asarray(x).reshape(-1, self.oh, self.ow, self.k2, self.c // self.simd, self.simd)
        return x.transpose(0, 1, 2, 4, 3, 5)

    def pack_input(self, x: np.ndarray) -> list[int]:
        return pack_lanes(self.stream_order(x), 1, self.simd)

    def unpack_output(self, words: list[int]) -> np.ndarray:
        return unpack_lanes(words, 1, self.simd).reshape(-1, self.oh, self.ow, self.c)

    def in_words_per_image(self) -> int:
        return self.oh * self.ow * self.k2 * self.c // self.simd

    def out_words_per_image(self) -> int:
        return self.oh * self.ow * self.c // self.simd

    def golden(self, x: np.ndarray) -> np.ndarray:
        """(N, OH, OW, K2 * C) in FINN's order (positions outer) -> (N, OH, OW, C)."""
        return np.asarray(x).reshape(-1, self.oh, self.ow, self.k2, self.c).max(axis=3)


def absorbs_window(model, node) -> bool:
    """True if the Pool's stage replaces its sliding window (maxpool_bin):
    square kernel = stride and no padding in front."""
    swg = producer_swg(model, node)
    if swg is None:
        return False
    inst = getCustomOp(swg)
    k, s = list(inst.get_nodeattr("ConvKernelDim")), list(inst.get_nodeattr("Stride"))
    before = model.find_producer(swg.input[0])
    padded = before is not None and before.op_type == "FMPadding"
    return k[0] == k[1] and k == s and list(inst.get_nodeattr("Dilation")) == [1, 1] and not padded


def window_or_config(model, node) -> WindowOrConfig:
    swg, pool = getCustomOp(producer_swg(model, node)), getCustomOp(node)
    oh, ow = swg.get_nodeattr("OFMDim")
    kh, kw = swg.get_nodeattr("ConvKernelDim")
    return WindowOrConfig(oh=oh, ow=ow, c=swg.get_nodeattr("IFMChannels"),
                          simd=pool.get_nodeattr("PE"), k2=kh * kw)


def maxpool_config(model, node) -> MaxPoolConfig:
    """The maxpool_bin configuration of a Pool node and its window (not validated)."""
    swg, pool = getCustomOp(producer_swg(model, node)), getCustomOp(node)
    h, w = swg.get_nodeattr("IFMDim")
    return MaxPoolConfig(ifm_h=h, ifm_w=w, c=swg.get_nodeattr("IFMChannels"),
                         simd=pool.get_nodeattr("PE"), k=swg.get_nodeattr("ConvKernelDim")[0])


class MaxPool(OpKind):
    name = "MaxPool"
    hw_ops = ("Pool",)
    fold_attrs = {"Pool": ("PE",)}
    pe_divides = ("Channels", "channels", "maxpool_bin")

    def check(self, model, node, index, count):
        swg_node = producer_swg(model, node)
        if swg_node is None:
            raise UnsupportedLayerError(f"layer {node.name} (Pool) has no sliding window in front")
        swg, pool = getCustomOp(swg_node), getCustomOp(node)
        k, s = list(swg.get_nodeattr("ConvKernelDim")), list(swg.get_nodeattr("Stride"))
        dt = pool.get_input_datatype()
        if pool.get_nodeattr("Function") != "MaxPool" or dt.bitwidth() != 1:
            raise UnsupportedLayerError(
                f"layer {node.name} ({pool.get_nodeattr('Function')} over {dt.name} values, "
                f"kernel {k}, stride {s}): only max-pools of binary activations are supported "
                "(a pool of multi-bit values, or an average pool, has no hardware here)")

    def cycles(self, model, node):
        if not absorbs_window(model, node):
            return window_or_config(model, node).in_words_per_image()
        return maxpool_config(model, node).in_words_per_image()

    def sync(self, model, node):
        getCustomOp(producer_swg(model, node)).set_nodeattr("SIMD", getCustomOp(node).get_nodeattr("PE"))

    def stage(self, model, node, ctx: MapContext):
        self.check(model, node, 0, 1)
        if not absorbs_window(model, node):
            cfg = window_or_config(model, node).validate()
            return stream_stage(node.name, self.name, "window_or", cfg.verilog_params(),
                                [HW_DIR / "window_or.sv", HW_DIR / "axis_skid.sv"], cfg.simd,
                                cfg.simd, in_tensor=node.input[0], out_tensor=node.output[0],
                                simd=cfg.simd, expected_cycles=self.cycles(model, node))
        cfg = maxpool_config(model, node).validate()
        return stream_stage(node.name, self.name, "maxpool_bin", cfg.verilog_params(),
                            [HW_DIR / "maxpool_bin.sv", HW_DIR / "axis_skid.sv"], cfg.simd, cfg.simd,
                            in_tensor=producer_swg(model, node).input[0], out_tensor=node.output[0],
                            simd=cfg.simd, expected_cycles=self.cycles(model, node))

    def execute(self, model, node, x):
        """x is the window's output (N, OH, OW, K*K*C): the max over each window."""
        inst = getCustomOp(node)
        k = inst.get_nodeattr("KernelSize")
        if inst.get_nodeattr("Function") != "MaxPool":
            raise NotImplementedError(f"{node.name}: {inst.get_nodeattr('Function')}")
        return x.reshape(*x.shape[:-1], k[0] * k[1], inst.get_nodeattr("Channels")).max(axis=-2)

    def finn_estimate(self, model, stage, part):
        node = model.get_node_from_name(stage.name)
        res = finn_hls_estimate(node, part)
        if not absorbs_window(model, node):
            return res  # the window is a stage of its own
        swg = finn_inst(producer_swg(model, node), "rtl")  # the window is part of this stage
        res["LUT"] += int(swg.lut_estimation(part))
        res["BRAM36"] = round(res["BRAM36"] + swg.bram_estimation(part) / 2, 1)
        return res
