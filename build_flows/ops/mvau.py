"""MVAU -> hw/mvtu.sv: the matrix-vector-threshold unit (XNOR-popcount,
integer x bipolar and integer x integer modes, FINN's MVAU folding).

MVTU matrices use the hardware orientation W[MH, MW], T[MH, n_thres] (FINN's
ONNX weight initializer is W.T, shape (MW, MH)). XNOR thresholds are in the
popcount domain, as produced by FINN's streamlining. The memory-word layout is
documented in hw/mvtu.sv.

Folding rule (ours, FINN-like): raise SIMD first, then PE, until the layer
meets the target; a convolution's SIMD must divide its input channels (the
sliding window streams SIMD channels per beat) and the window takes the
MVAU's SIMD. Cycles per frame: MH/PE * MW/SIMD per input vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import FoldingError, NonBinaryActivationError, UnsupportedLayerError
from build_flows.ops.base import (HW_DIR, MapContext, OpKind, RTLParamError, check_divides,
                                  check_positive, describe, divisors, finn_hls_estimate,
                                  first_meeting, folding_error, producer_swg)
from build_flows.rtl.graph import stream_stage
from build_flows.rtl.stream import mem_text, pack_lanes, unpack_lanes

BINARY = (DataType["BINARY"], DataType["BIPOLAR"])

MODES = {"xnor": 0, "int_bipolar": 1, "int_int": 2}
MEM_STYLES = ("auto", "block", "distributed")
# hw/mvtu.sv's "auto" memory rule: block RAM when depth > 128 words (FINN's
# calc_wmem() > 128 rule for embedded weights) and depth * width >= 4096 bits.
AUTO_BLOCK_MIN_DEPTH = 129
AUTO_BLOCK_MIN_BITS = 4096


def resolve_mem_style(style: str, depth: int, width: int) -> str:
    """"block" or "distributed": what hw/mvtu.sv builds for a memory of this shape."""
    if style != "auto":
        return style
    block = depth >= AUTO_BLOCK_MIN_DEPTH and depth * width >= AUTO_BLOCK_MIN_BITS
    return "block" if block else "distributed"


@dataclass
class MVTUConfig:
    """hw/mvtu.sv: see its header for the folding and the modes."""

    mw: int
    mh: int
    simd: int = 1
    pe: int = 1
    mode: str = "xnor"  # "xnor", "int_bipolar" or "int_int"
    in_width: int = 1
    in_signed: bool = False
    w_width: int = 1
    n_thres: int = 1  # 0: no activation
    acc_width: int | None = None  # None: smallest that holds every accumulator
    # weight / threshold memory: "auto", "block" (block RAM) or "distributed" (LUTs)
    mem_style: str = "auto"
    thres_mem_style: str = "auto"

    def validate(self) -> "MVTUConfig":
        check_positive("mvtu", MW=self.mw, MH=self.mh, SIMD=self.simd, PE=self.pe)
        check_divides("mvtu", "SIMD", self.simd, "MW", self.mw)
        check_divides("mvtu", "PE", self.pe, "MH", self.mh)
        if self.mode not in MODES:
            raise RTLParamError(f"mvtu: mode={self.mode!r} must be one of {list(MODES)}")
        if self.mode == "xnor" and (self.in_width != 1 or self.w_width != 1):
            raise RTLParamError("mvtu: xnor mode needs in_width=1 and w_width=1")
        if self.mode != "xnor" and not 1 <= self.in_width <= 32:
            raise RTLParamError(f"mvtu: in_width={self.in_width} must be in 1..32")
        if self.mode == "int_bipolar" and self.w_width != 1:
            raise RTLParamError("mvtu: int_bipolar mode needs w_width=1 (bipolar weights)")
        if self.mode == "int_int" and not 2 <= self.w_width <= 8:
            raise RTLParamError(f"mvtu: w_width={self.w_width} must be in 2..8 in int_int mode")
        if self.n_thres < 0:
            raise RTLParamError(f"mvtu: n_thres={self.n_thres} must be >= 0 (0 = no activation)")
        for name in ("mem_style", "thres_mem_style"):
            if getattr(self, name) not in MEM_STYLES:
                raise RTLParamError(f"mvtu: {name}={getattr(self, name)!r} must be one of "
                                    f"{list(MEM_STYLES)}")
        need = self.min_acc_width()
        if self.acc_width is not None and not need <= self.acc_width <= 64:
            raise RTLParamError(f"mvtu: acc_width={self.acc_width} too small or > 64; "
                                f"use {need}..64 (or None for {need})")
        if need > 64:
            raise RTLParamError(f"mvtu: accumulators need {need} bits > 64; reduce MW or widths")
        return self

    def acc_range(self) -> tuple[int, int]:
        """Smallest and largest possible accumulator value."""
        if self.mode == "xnor":
            return 0, self.mw
        xlo, xhi = ((-(1 << (self.in_width - 1)), (1 << (self.in_width - 1)) - 1)
                    if self.in_signed else (0, (1 << self.in_width) - 1))
        if self.mode == "int_bipolar":
            wlo, whi = -1, 1
        else:
            wlo, whi = -(1 << (self.w_width - 1)), (1 << (self.w_width - 1)) - 1
        prods = [a * b for a in (xlo, xhi) for b in (wlo, whi)]
        return self.mw * min(prods), self.mw * max(prods)

    def min_acc_width(self) -> int:
        lo, hi = self.acc_range()
        hi += 1  # thresholds are clipped to lo..hi+1
        if self.mode == "xnor":
            bits = hi.bit_length()
        else:
            bits = max(hi.bit_length(), (-lo - 1).bit_length()) + 1
        return max(bits, self.in_width + self.w_width + 1)

    @property
    def acc_bits(self) -> int:
        return self.acc_width if self.acc_width is not None else self.min_acc_width()

    @property
    def out_width(self) -> int:
        return math.ceil(math.log2(self.n_thres + 1)) if self.n_thres else self.acc_bits

    @property
    def in_beat_width(self) -> int:
        return self.simd * self.in_width

    @property
    def out_beat_width(self) -> int:
        return self.pe * self.out_width

    def cycles_per_vector(self) -> int:
        return (self.mh // self.pe) * (self.mw // self.simd)

    def weight_mem_style(self) -> str:
        """"block" or "distributed": the weight memory hw/mvtu.sv builds."""
        return resolve_mem_style(self.mem_style, self.cycles_per_vector(),
                                 self.pe * self.simd * self.w_width)

    def thres_mem_style_resolved(self) -> str | None:
        """"block" or "distributed" for the threshold memory; None without thresholds."""
        if not self.n_thres:
            return None
        return resolve_mem_style(self.thres_mem_style, self.mh // self.pe,
                                 self.pe * self.n_thres * self.acc_bits)

    def verilog_params(self) -> dict:
        self.validate()
        return {"MW": self.mw, "MH": self.mh, "SIMD": self.simd, "PE": self.pe,
                "MODE": MODES[self.mode], "IN_WIDTH": self.in_width,
                "IN_SIGNED": int(self.in_signed), "W_WIDTH": self.w_width,
                "ACC_WIDTH": self.acc_bits, "N_THRES": self.n_thres,
                "WEIGHT_FILE": "weights.mem", "THRESH_FILE": "thresholds.mem",
                "MEM_STYLE": self.mem_style, "THRES_MEM_STYLE": self.thres_mem_style}

    def check_weights(self, weights: np.ndarray) -> np.ndarray:
        """W[MH, MW] as int64; xnor mode takes binary {0,1} or bipolar {-1,+1}."""
        w = np.asarray(weights)
        if w.shape != (self.mh, self.mw):
            raise RTLParamError(f"mvtu: weights shape {w.shape} must be (MH, MW)="
                                f"{(self.mh, self.mw)} (FINN's initializer is (MW, MH): pass W.T)")
        w = w.astype(np.int64)
        if self.mode == "xnor" and np.isin(w, (-1, 1)).all():
            w = (w + 1) // 2
        if self.mode == "xnor" and not np.isin(w, (0, 1)).all():
            raise RTLParamError("mvtu: xnor weights must be binary {0,1} or bipolar {-1,+1}")
        if self.mode == "int_bipolar" and not np.isin(w, (-1, 1)).all():
            raise RTLParamError("mvtu: int_bipolar weights must be -1 or +1")
        lim = 1 << (self.w_width - 1)
        if self.mode == "int_int" and (w.min() < -lim or w.max() >= lim):
            raise RTLParamError(f"mvtu: weights exceed signed {self.w_width}-bit range")
        return w

    def hw_thresholds(self, thresholds: np.ndarray) -> np.ndarray:
        """T[MH, n_thres] as integers: ceil (acc is integer) and clip to lo..hi+1."""
        t = np.asarray(thresholds, dtype=np.float64)
        if t.shape != (self.mh, self.n_thres):
            raise RTLParamError(f"mvtu: thresholds shape {t.shape} must be (MH, n_thres)="
                                f"{(self.mh, self.n_thres)}")
        if (np.diff(t, axis=1) < 0).any():
            raise RTLParamError("mvtu: thresholds of each channel must be sorted ascending")
        lo, hi = self.acc_range()
        return np.clip(np.ceil(t), lo, hi + 1).astype(np.int64)

    def mem_files(self, weights: np.ndarray, thresholds: np.ndarray | None = None) -> dict:
        """{file name: $readmemh text} for verilog_params()' WEIGHT_FILE/THRESH_FILE."""
        self.validate()
        w = self.check_weights(weights)
        if self.mode == "int_bipolar":
            w = (w + 1) // 2  # bit 1 = +1, bit 0 = -1
        nf, sf = self.mh // self.pe, self.mw // self.simd
        # word nf*SF+sf, lane p*SIMD+i = W[nf*PE+p, sf*SIMD+i]
        wt = w.reshape(nf, self.pe, sf, self.simd).transpose(0, 2, 1, 3)
        files = {"weights.mem": mem_text(pack_lanes(wt, self.w_width, self.pe * self.simd),
                                         self.pe * self.simd * self.w_width)}
        if self.n_thres:
            t = self.hw_thresholds(thresholds)
            files["thresholds.mem"] = mem_text(
                pack_lanes(t, self.acc_bits, self.pe * self.n_thres),
                self.pe * self.n_thres * self.acc_bits)
        else:
            files["thresholds.mem"] = "0\n"
        return files

    def pack_input(self, x: np.ndarray) -> list[int]:
        """x[N, MW] (xnor: binary {0,1}) -> N * MW/SIMD input words."""
        return pack_lanes(np.asarray(x).reshape(-1, self.mw), self.in_width, self.simd)

    def unpack_output(self, words: list[int]) -> np.ndarray:
        signed = self.n_thres == 0 and self.mode != "xnor"
        return unpack_lanes(words, self.out_width, self.pe, signed).reshape(-1, self.mh)

    def golden(self, x: np.ndarray, weights: np.ndarray,
               thresholds: np.ndarray | None = None) -> np.ndarray:
        """Bit-exact output y[N, MH] for x[N, MW]."""
        x = np.asarray(x, dtype=np.int64).reshape(-1, self.mw)
        w = self.check_weights(weights)
        if self.mode == "xnor":
            acc = (x[:, None, :] == w[None, :, :]).sum(axis=2)
        else:
            acc = x @ w.T
        if not self.n_thres:
            return acc
        return (acc[:, :, None] >= np.asarray(thresholds)[None, :, :]).sum(axis=2)



def _mode(node, idt, wdt, xnor: bool) -> tuple[str, int]:
    """(MVTU mode, weight bits) of an MVAU node, or UnsupportedLayerError."""
    if not xnor and idt in BINARY:
        raise UnsupportedLayerError(f"layer {node.name} (MVAU): binary input without XNOR mode "
                                    "is not supported")
    if xnor:
        return "xnor", 1
    if wdt == DataType["BIPOLAR"]:
        return "int_bipolar", 1
    if wdt.is_integer() and wdt.signed() and 2 <= wdt.bitwidth() <= 8:
        return "int_int", wdt.bitwidth()  # few-bit first / last layers
    raise UnsupportedLayerError(f"layer {node.name} (MVAU): {wdt.name} weights on integer "
                                "input; the MVTU takes bipolar or signed 2..8-bit weights")


def _thresholds(model, node, inst):
    if inst.get_nodeattr("noActivation") == 1:
        return None
    thr = model.get_initializer(node.input[2])
    mh = inst.get_nodeattr("MH")
    if thr.shape[0] == 1 and mh > 1:
        thr = np.broadcast_to(thr, (mh, thr.shape[1]))
    return thr


def _vectors(inst) -> int:
    return int(np.prod(inst.get_nodeattr("numInputVectors")))


def mvtu_config(model, node) -> MVTUConfig:
    """The MVTU configuration of an MVAU node at its current folding (not validated)."""
    inst = getCustomOp(node)
    idt, wdt = inst.get_input_datatype(0), inst.get_input_datatype(1)
    xnor = inst.get_nodeattr("binaryXnorMode") == 1
    mode, w_width = _mode(node, idt, wdt, xnor)
    thr = _thresholds(model, node, inst)
    return MVTUConfig(mw=inst.get_nodeattr("MW"), mh=inst.get_nodeattr("MH"),
                      simd=inst.get_nodeattr("SIMD"), pe=inst.get_nodeattr("PE"), mode=mode,
                      in_width=1 if xnor else idt.bitwidth(),
                      in_signed=False if xnor else idt.signed(), w_width=w_width,
                      n_thres=0 if thr is None else thr.shape[1])


class MVAU(OpKind):
    name = "MVAU"
    hw_ops = ("MVAU",)
    fold_attrs = {"MVAU": ("PE", "SIMD")}

    def check(self, model, node, index, count):
        inst = getCustomOp(node)
        idt, wdt, odt = (inst.get_input_datatype(0), inst.get_input_datatype(1),
                         inst.get_output_datatype())
        few_bit_first = index == 0 and wdt.is_integer() and wdt.signed() and 2 <= wdt.bitwidth() <= 8
        if wdt not in BINARY and not few_bit_first:
            raise UnsupportedLayerError(
                f"layer {describe(node)} has {wdt.name} weights: only the first layer may have "
                "signed 2..8-bit weights, the others need bipolar weights (last_bits=1)")
        if index > 0 and idt not in BINARY:
            raise NonBinaryActivationError(
                f"layer {describe(node)} takes {idt.name} activations from the layer before: "
                "only binary (sign) activations are supported between layers; use a W1A1 model")
        if index == 0 and not (idt.is_integer() and idt.bitwidth() <= 8):
            raise UnsupportedLayerError(f"first layer {describe(node)} takes {idt.name} input: "
                                        "the accelerator needs integer pixels of at most 8 bits")
        if index < count - 1 and odt not in BINARY:
            raise NonBinaryActivationError(
                f"layer {describe(node)} outputs {odt.name}: only binary activations (1 threshold) "
                "are supported between layers; use a W1A1 model")

    def cycles(self, model, node):
        inst = getCustomOp(node)
        mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
        return (mh // inst.get_nodeattr("PE")) * (mw // inst.get_nodeattr("SIMD")) * _vectors(inst)

    def fold(self, model, node, target_cycles):
        inst = getCustomOp(node)
        swg = producer_swg(model, node)
        simd_max = getCustomOp(swg).get_nodeattr("IFMChannels") if swg is not None else inst.get_nodeattr("MW")
        meets = lambda: self.cycles(model, node) <= target_cycles  # noqa: E731
        inst.set_nodeattr("PE", 1)
        if not first_meeting(node, "SIMD", divisors(simd_max), meets):
            first_meeting(node, "PE", divisors(inst.get_nodeattr("MH")), meets)

    def sync(self, model, node):
        swg = producer_swg(model, node)  # the window streams SIMD channels per beat
        if swg is not None:
            getCustomOp(swg).set_nodeattr("SIMD", getCustomOp(node).get_nodeattr("SIMD"))

    def check_folding(self, model, node):
        cfg = mvtu_config(model, node)
        for fold, fold_v, total, total_v in (("PE", cfg.pe, "MH", cfg.mh),
                                             ("SIMD", cfg.simd, "MW", cfg.mw)):
            try:
                check_divides("mvtu", fold, fold_v, total, total_v)
            except RTLParamError as e:
                raise folding_error(node, e) from e
        swg = producer_swg(model, node)
        if swg is not None:
            ch = getCustomOp(swg).get_nodeattr("IFMChannels")
            if ch % cfg.simd:
                raise FoldingError(
                    f"layer {node.name}: SIMD={cfg.simd} does not divide its {ch} input channels "
                    f"(MW={cfg.mw} = kernel x channels; the sliding window {swg.name} streams "
                    f"SIMD channels per beat); choose SIMD from {divisors(ch)}")

    def stage(self, model, node, ctx: MapContext):
        cfg = mvtu_config(model, node).validate()
        w = model.get_initializer(node.input[1]).T  # FINN (MW, MH) -> (MH, MW)
        files = cfg.mem_files(w, _thresholds(model, node, getCustomOp(node)))
        wname, tname = f"{node.name}_weights.mem", f"{node.name}_thresholds.mem"
        params = cfg.verilog_params()
        params.update(WEIGHT_FILE=wname, THRESH_FILE=tname)
        return stream_stage(node.name, self.name, "mvtu", params,
                            [HW_DIR / "mvtu.sv", HW_DIR / "axis_skid.sv"],
                            cfg.in_beat_width, cfg.out_beat_width, cfg.in_width, cfg.out_width,
                            node.input[0], node.output[0], in_signed=cfg.in_signed,
                            out_signed=cfg.n_thres == 0 and cfg.mode != "xnor",
                            mem_files={wname: files["weights.mem"], tname: files["thresholds.mem"]},
                            pe=cfg.pe, simd=cfg.simd, expected_cycles=self.cycles(model, node))

    def execute(self, model, node, x):
        from build_flows.sim.executor import compact, multithreshold
        inst = getCustomOp(node)
        mw = inst.get_nodeattr("MW")
        w = model.get_initializer(node.input[1])  # (MW, MH)
        x = x.reshape(len(x), -1, mw)
        # float32 BLAS is exact while every partial sum stays below 2**24
        x_abs = max(1, -int(x.min(initial=0)), int(x.max(initial=0)))  # no abs(): int8 -128 wraps
        bound = mw * max(1, int(np.abs(w).max())) * x_abs
        ft = np.float32 if bound < 2 ** 24 else np.float64
        xf = x.astype(ft)
        if inst.get_nodeattr("binaryXnorMode"):
            # popcount(xnor(x, w)) over x, w in {0, 1} = x . (2w - 1) + (MW - sum w)
            acc = xf @ (2 * w.astype(ft) - 1)
            acc += (mw - w.sum(axis=0)).astype(ft)
        elif inst.get_nodeattr("inputDataType") == inst.get_nodeattr("weightDataType") == "BIPOLAR":
            acc = (xf @ w.astype(ft) + mw) / 2
        else:
            acc = xf @ w.astype(ft)
        if inst.get_nodeattr("noActivation") == 0:
            bipolar = inst.get_nodeattr("outputDataType") == "BIPOLAR"
            acc = multithreshold(acc, model.get_initializer(node.input[2]), 2 if bipolar else 1,
                                 -1 if bipolar else inst.get_nodeattr("ActVal"))
        return compact(acc)

    def finn_estimate(self, model, stage, part):
        return finn_hls_estimate(model.get_node_from_name(stage.name), part)
