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
                                  can_go_parallel, first_meeting, folding_error, producer_swg)
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
    # border classes of a padded binary convolution (hw/mvtu.sv's header): the
    # class of each output row / column of the frame's OH x OW input vectors;
    # () and () = one threshold set. Thresholds then have shape (classes, MH, n_thres).
    row_class: tuple[int, ...] = ()
    col_class: tuple[int, ...] = ()

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
        if bool(self.row_class) != bool(self.col_class):
            raise RTLParamError("mvtu: row_class and col_class go together (both or neither)")
        for name in ("row_class", "col_class"):
            cls = getattr(self, name)
            if cls and sorted(set(cls)) != list(range(max(cls) + 1)):
                raise RTLParamError(f"mvtu: {name} must number its classes 0..n-1, got {cls}")
        if self.n_classes > 1 and not self.n_thres:
            raise RTLParamError("mvtu: border classes need thresholds (n_thres > 0)")
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
    def n_rc(self) -> int:
        return max(self.row_class, default=0) + 1

    @property
    def n_cc(self) -> int:
        return max(self.col_class, default=0) + 1

    @property
    def n_classes(self) -> int:
        return self.n_rc * self.n_cc

    def vector_classes(self, n: int) -> np.ndarray:
        """The threshold set of each of n input vectors (frames of OH x OW, row-major)."""
        if self.n_classes == 1:
            return np.zeros(n, dtype=np.int64)
        oh, ow = len(self.row_class), len(self.col_class)
        v = np.arange(n) % (oh * ow)
        return (np.asarray(self.row_class)[v // ow] * self.n_cc
                + np.asarray(self.col_class)[v % ow])

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
        return resolve_mem_style(self.thres_mem_style, self.n_classes * self.mh // self.pe,
                                 self.pe * self.n_thres * self.acc_bits)

    def verilog_params(self) -> dict:
        self.validate()
        return {"MW": self.mw, "MH": self.mh, "SIMD": self.simd, "PE": self.pe,
                "MODE": MODES[self.mode], "IN_WIDTH": self.in_width,
                "IN_SIGNED": int(self.in_signed), "W_WIDTH": self.w_width,
                "ACC_WIDTH": self.acc_bits, "N_THRES": self.n_thres,
                "WEIGHT_FILE": "weights.mem", "THRESH_FILE": "thresholds.mem",
                "MEM_STYLE": self.mem_style, "THRES_MEM_STYLE": self.thres_mem_style,
                "OH": max(1, len(self.row_class)), "OW": max(1, len(self.col_class)),
                "N_RC": self.n_rc, "N_CC": self.n_cc,
                "RCLASS_FILE": "rclass.mem", "CCLASS_FILE": "cclass.mem"}

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

    def thres_shape(self) -> tuple[int, ...]:
        base = (self.mh, self.n_thres)
        return base if self.n_classes == 1 else (self.n_classes, *base)

    def hw_thresholds(self, thresholds: np.ndarray) -> np.ndarray:
        """T[MH, n_thres] (with classes: T[class, MH, n_thres]) as integers:
        ceil (acc is integer) and clip to lo..hi+1."""
        t = np.asarray(thresholds, dtype=np.float64)
        if t.shape != self.thres_shape():
            raise RTLParamError(f"mvtu: thresholds shape {t.shape} must be "
                                f"{'(classes, MH, n_thres)' if self.n_classes > 1 else '(MH, n_thres)'}"
                                f"={self.thres_shape()}")
        if (np.diff(t, axis=-1) < 0).any():
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
            # word cls*NF+nf, lane p*n_thres+t = T[cls][nf*PE+p][t]
            t = self.hw_thresholds(thresholds).reshape(-1, self.n_thres)
            files["thresholds.mem"] = mem_text(
                pack_lanes(t, self.acc_bits, self.pe * self.n_thres),
                self.pe * self.n_thres * self.acc_bits)
        else:
            files["thresholds.mem"] = "0\n"
        for name, cls, n in (("rclass.mem", self.row_class, self.n_rc),
                             ("cclass.mem", self.col_class, self.n_cc)):
            files[name] = mem_text(list(cls), max(1, (n - 1).bit_length())) if n > 1 else "0\n"
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
        t = self.hw_thresholds(thresholds)
        if self.n_classes > 1:
            t = t[self.vector_classes(len(x))]  # (N, MH, n_thres)
        return (acc[:, :, None] >= t).sum(axis=2)



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


def padding_feeding(model, node):
    """The FMPadding whose stream reaches node's sliding window, or None."""
    swg = producer_swg(model, node)
    prod = model.find_producer(swg.input[0]) if swg is not None else None
    while prod is not None and prod.op_type == "StreamingDataWidthConverter":
        prod = model.find_producer(prod.input[0])
    return prod if prod is not None and prod.op_type == "FMPadding" else None


def _pad_patterns(out_n, stride, k, dil, before, size):
    """Per output row (or column): which kernel rows read the border; the
    distinct patterns in order of first use, and each row's pattern index."""
    pats = [tuple(not 0 <= o * stride + i * dil - before < size for i in range(k))
            for o in range(out_n)]
    distinct = list(dict.fromkeys(pats))
    return distinct, [distinct.index(p) for p in pats]


def border(model, node):
    """A padded binary convolution's border correction, or None.

    The FMPadding in front streams bit 0 (= -1) where the model pads its
    {-1, +1} activations with 0.0, so a window with padded positions P
    computes dot_hw = dot - sum_P(w) (bipolar weights). In the popcount
    domain acc = (dot + MW) / 2, the layer's test acc_true >= T becomes
    acc_hw >= T - sum_P(w) / 2. One threshold set per distinct P: P is the
    union of the padded kernel rows of the output row and the padded kernel
    columns of the output column, so the sets are (row pattern, column
    pattern) pairs. Returns (row_class, col_class, thresholds): thresholds
    (classes, MH, n_thres) float, or (MH, n_thres) with () classes when one
    set serves every pixel."""
    pad = padding_feeding(model, node)
    inst = getCustomOp(node)
    if pad is None or inst.get_nodeattr("binaryXnorMode") != 1:
        return None
    swg = getCustomOp(producer_swg(model, node))
    top, left, _bottom, _right = getCustomOp(pad).get_nodeattr("Padding")
    ih, iw = getCustomOp(pad).get_nodeattr("ImgDim")
    (kh, kw), (sh, sw) = swg.get_nodeattr("ConvKernelDim"), swg.get_nodeattr("Stride")
    dh, dw = swg.get_nodeattr("Dilation")
    oh, ow = swg.get_nodeattr("OFMDim")
    c = swg.get_nodeattr("IFMChannels")
    rows, row_class = _pad_patterns(oh, sh, kh, dh, top, ih)
    cols, col_class = _pad_patterns(ow, sw, kw, dw, left, iw)
    wb = 2 * model.get_initializer(node.input[1]).astype(np.int64) - 1  # (MW, MH) bipolar
    wsum = wb.reshape(kh, kw, c, -1).sum(axis=2)  # (KH, KW, MH): per kernel position
    t = _thresholds(model, node, inst).astype(np.float64)
    sets = []
    for rp in rows:
        for cp in cols:
            padded = np.array(rp)[:, None] | np.array(cp)[None, :]
            sets.append(t - wsum[padded].sum(axis=0)[:, None] / 2)
    if len(sets) == 1:
        return (), (), sets[0]
    return tuple(row_class), tuple(col_class), np.stack(sets)


def _vectors(inst) -> int:
    return int(np.prod(inst.get_nodeattr("numInputVectors")))


def mvtu_config(model, node) -> MVTUConfig:
    """The MVTU configuration of an MVAU node at its current folding (not validated)."""
    inst = getCustomOp(node)
    idt, wdt = inst.get_input_datatype(0), inst.get_input_datatype(1)
    xnor = inst.get_nodeattr("binaryXnorMode") == 1
    mode, w_width = _mode(node, idt, wdt, xnor)
    thr = _thresholds(model, node, inst)
    bd = border(model, node) if thr is not None else None
    return MVTUConfig(mw=inst.get_nodeattr("MW"), mh=inst.get_nodeattr("MH"),
                      simd=inst.get_nodeattr("SIMD"), pe=inst.get_nodeattr("PE"), mode=mode,
                      in_width=1 if xnor else idt.bitwidth(),
                      in_signed=False if xnor else idt.signed(), w_width=w_width,
                      n_thres=0 if thr is None else thr.shape[1],
                      row_class=bd[0] if bd else (), col_class=bd[1] if bd else ())


def layer_thresholds(model, node):
    """The thresholds the MVTU holds: FINN's, or the border-corrected sets."""
    bd = border(model, node)
    return bd[2] if bd is not None else _thresholds(model, node, getCustomOp(node))


def _after_global_pool(model, node) -> bool:
    """True if a GlobalAccPool's integer sums feed the layer (a GAP head)."""
    prod = model.find_producer(node.input[0])
    return prod is not None and prod.op_type == "GlobalAccPool"


def _feeds_dynamic_asd(model, node) -> bool:
    """True if the layer's multi-bit activation goes to a dynamic-ASD unit
    (frontend/dynamic_asd.py), which binarises it."""
    cons = model.find_consumer(node.output[0])
    return cons is not None and cons.op_type == "DynamicASD"


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
        if index > 0 and idt not in BINARY and not _after_global_pool(model, node):
            raise NonBinaryActivationError(
                f"layer {describe(node)} takes {idt.name} activations from the layer before: "
                "only binary (sign) activations are supported between layers; use a W1A1 model")
        if index == 0 and not (idt.is_integer() and idt.bitwidth() <= 8):
            raise UnsupportedLayerError(f"first layer {describe(node)} takes {idt.name} input: "
                                        "the accelerator needs integer pixels of at most 8 bits")
        if (padding_feeding(model, node) is not None and idt in BINARY
                and inst.get_nodeattr("noActivation") == 1):
            raise UnsupportedLayerError(
                f"layer {describe(node)}: a convolution on padded binary activations must end in "
                "BN + sign (thresholds); one without an activation is not supported")
        if index < count - 1 and odt not in BINARY and not _feeds_dynamic_asd(model, node):
            raise NonBinaryActivationError(
                f"layer {describe(node)} outputs {odt.name}: only binary activations (1 threshold) "
                "are supported between layers; use a W1A1 model")

    def cycles(self, model, node):
        inst = getCustomOp(node)
        mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
        return (mh // inst.get_nodeattr("PE")) * (mw // inst.get_nodeattr("SIMD")) * _vectors(inst)

    def fold(self, model, node, target_cycles):
        """SIMD up to the input channels, then PE; a convolution that still
        misses the target takes SIMD above its channels (a divisor of MW), which
        puts FINN's parallel sliding window in front (one whole window a beat)."""
        inst = getCustomOp(node)
        swg = producer_swg(model, node)
        mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
        ch = getCustomOp(swg).get_nodeattr("IFMChannels") if swg is not None else mw
        meets = lambda: self.cycles(model, node) <= target_cycles  # noqa: E731
        inst.set_nodeattr("PE", 1)
        if first_meeting(node, "SIMD", divisors(ch), meets):
            return
        if first_meeting(node, "PE", divisors(mh), meets) or not can_go_parallel(swg):
            return
        for simd in (d for d in divisors(mw) if d > ch):
            inst.set_nodeattr("SIMD", simd)
            if first_meeting(node, "PE", divisors(mh), meets):
                return

    def cap_reason(self, model, node):
        inst = getCustomOp(node)
        swg = producer_swg(model, node)
        ch = getCustomOp(swg).get_nodeattr("IFMChannels") if swg is not None else None
        if ch is not None and ch < inst.get_nodeattr("MW") and not can_go_parallel(swg):
            return (f"PE={inst.get_nodeattr('PE')} of MH={inst.get_nodeattr('MH')} and SIMD="
                    f"{inst.get_nodeattr('SIMD')}: a convolution's SIMD is capped at its {ch} input "
                    "channel(s), since its sliding window cannot go parallel here")
        return (f"PE={inst.get_nodeattr('PE')} of MH={inst.get_nodeattr('MH')}, SIMD="
                f"{inst.get_nodeattr('SIMD')} of MW={inst.get_nodeattr('MW')}")

    def sync(self, model, node):
        swg = producer_swg(model, node)
        if swg is not None:
            # SIMD up to the channels: the window streams SIMD channels per beat;
            # above them: the parallel window, all channels of the whole window a beat
            win, simd = getCustomOp(swg), getCustomOp(node).get_nodeattr("SIMD")
            ch = win.get_nodeattr("IFMChannels")
            win.set_nodeattr("parallel_window", int(simd > ch))
            win.set_nodeattr("SIMD", min(simd, ch))

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
            if cfg.simd > ch and not can_go_parallel(swg):
                raise FoldingError(
                    f"layer {node.name}: SIMD={cfg.simd} is above its {ch} input channels, which "
                    f"needs FINN's parallel sliding window, which is built only for stride-1 windows "
                    f"larger than 1x1 ({swg.name} is not one); choose SIMD from {divisors(ch)}")
            if cfg.simd <= ch and ch % cfg.simd:
                raise FoldingError(
                    f"layer {node.name}: SIMD={cfg.simd} does not divide its {ch} input channels "
                    f"(MW={cfg.mw} = kernel x channels; the sliding window {swg.name} streams "
                    f"SIMD channels per beat); choose SIMD from {divisors(ch)}, or a divisor of "
                    f"MW above {ch} (FINN's parallel window)")

    def stage(self, model, node, ctx: MapContext):
        cfg = mvtu_config(model, node).validate()
        w = model.get_initializer(node.input[1]).T  # FINN (MW, MH) -> (MH, MW)
        files = cfg.mem_files(w, layer_thresholds(model, node))
        wname, tname = f"{node.name}_weights.mem", f"{node.name}_thresholds.mem"
        params = cfg.verilog_params()
        params.update(WEIGHT_FILE=wname, THRESH_FILE=tname)
        extra = {}
        if cfg.n_classes > 1:  # border classes: the row / column class files
            extra = {f"{node.name}_rclass.mem": files["rclass.mem"],
                     f"{node.name}_cclass.mem": files["cclass.mem"]}
            params.update(RCLASS_FILE=f"{node.name}_rclass.mem",
                          CCLASS_FILE=f"{node.name}_cclass.mem")
        return stream_stage(node.name, self.name, "mvtu", params,
                            [HW_DIR / "mvtu.sv", HW_DIR / "axis_skid.sv"],
                            cfg.in_beat_width, cfg.out_beat_width, cfg.in_width, cfg.out_width,
                            node.input[0], node.output[0], in_signed=cfg.in_signed,
                            out_signed=cfg.n_thres == 0 and cfg.mode != "xnor",
                            mem_files={wname: files["weights.mem"], tname: files["thresholds.mem"],
                                       **extra},
                            pe=cfg.pe, simd=cfg.simd, expected_cycles=self.cycles(model, node))

    def execute(self, model, node, x):
        from build_flows.sim.executor import compact, int_matmul, multithreshold
        inst = getCustomOp(node)
        mw = inst.get_nodeattr("MW")
        w = model.get_initializer(node.input[1])  # (MW, MH)
        x = x.reshape(len(x), -1, mw)
        if inst.get_nodeattr("binaryXnorMode"):
            # popcount(xnor(x, w)) over x, w in {0, 1} = x . (2w - 1) + (MW - sum w)
            acc = int_matmul(x, 2 * w - 1)
            acc += (mw - w.sum(axis=0)).astype(acc.dtype)
        elif inst.get_nodeattr("inputDataType") == inst.get_nodeattr("weightDataType") == "BIPOLAR":
            acc = (int_matmul(x, w) + mw) // 2  # x . w + MW is even for x, w in {-1, +1}
        else:
            acc = int_matmul(x, w)
        bd = border(model, node) if inst.get_nodeattr("binaryXnorMode") else None
        if bd is not None and inst.get_nodeattr("noActivation") == 0:
            cfg = mvtu_config(model, node)
            t = cfg.hw_thresholds(bd[2]).astype(np.int64)  # integers
            if cfg.n_classes > 1:
                t = t[cfg.vector_classes(acc.shape[1])]  # (V, MH, n_thres), per window
            counts = (acc[..., None] >= t).sum(axis=-1, dtype=np.int32)
            bipolar = inst.get_nodeattr("outputDataType") == "BIPOLAR"
            return compact(2 * counts - 1 if bipolar else counts + inst.get_nodeattr("ActVal"))
        if inst.get_nodeattr("noActivation") == 0:
            bipolar = inst.get_nodeattr("outputDataType") == "BIPOLAR"
            acc = multithreshold(acc, model.get_initializer(node.input[2]), 2 if bipolar else 1,
                                 -1 if bipolar else inst.get_nodeattr("ActVal"))
        return compact(acc)

    def finn_reference(self, model, node):
        """A padded binary convolution as FINN nodes: the MVAU without its
        activation (the accumulators of the -1-padded windows), an Add of each
        pixel's correction sum_P(w) / 2 (from an explicit per-pixel padding
        mask, not from border()'s classes), then FINN's MultiThreshold with the
        layer's own thresholds; the output keeps the MVAU's tensor name."""
        from onnx import TensorProto, helper
        inst = getCustomOp(node)
        pad = padding_feeding(model, node)
        if pad is None or inst.get_nodeattr("binaryXnorMode") != 1 or inst.get_nodeattr("noActivation"):
            return
        swg = getCustomOp(producer_swg(model, node))
        top, left, _b, _r = getCustomOp(pad).get_nodeattr("Padding")
        ih, iw = getCustomOp(pad).get_nodeattr("ImgDim")
        (kh, kw), (sh, sw) = swg.get_nodeattr("ConvKernelDim"), swg.get_nodeattr("Stride")
        (dh, dw), (oh, ow) = swg.get_nodeattr("Dilation"), swg.get_nodeattr("OFMDim")
        r = np.arange(oh)[:, None, None, None] * sh + np.arange(kh)[None, None, :, None] * dh - top
        c = np.arange(ow)[None, :, None, None] * sw + np.arange(kw)[None, None, None, :] * dw - left
        mask = (r < 0) | (r >= ih) | (c < 0) | (c >= iw)  # (OH, OW, KH, KW): reads the border
        wb = 2 * model.get_initializer(node.input[1]).astype(np.int64) - 1
        wb = wb.reshape(kh, kw, swg.get_nodeattr("IFMChannels"), -1)
        corr = np.einsum("abij,ijcm->abm", mask.astype(np.int64), wb) / 2  # (OH, OW, MH)
        out, out_dt = node.output[0], inst.get_nodeattr("outputDataType")
        acc, shifted = f"{node.name}_acc", f"{node.name}_corrected"
        thres, corr_name = f"{node.name}_ref_thresholds", f"{node.name}_border"
        shape = model.get_tensor_shape(out)
        thr = _thresholds(model, node, inst).astype(np.float32)
        inst.set_nodeattr("noActivation", 1)
        inst.set_nodeattr("outputDataType", "UINT32")
        node.output[0] = acc
        i = list(model.graph.node).index(node)
        model.graph.node.insert(i + 1, helper.make_node("Add", [acc, corr_name], [shifted]))
        bipolar = out_dt == "BIPOLAR"
        model.graph.node.insert(i + 2, helper.make_node(
            "MultiThreshold", [shifted, thres], [out], domain="qonnx.custom_op.general",
            out_dtype=out_dt, out_scale=2.0 if bipolar else 1.0,
            out_bias=-1.0 if bipolar else float(inst.get_nodeattr("ActVal")), data_layout="NHWC"))
        for t in (acc, shifted):
            model.graph.value_info.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, shape))
        model.set_initializer(corr_name, corr.reshape(1, oh, ow, -1).astype(np.float32))
        model.set_initializer(thres, thr)

    def finn_estimate(self, model, stage, part):
        return finn_hls_estimate(model.get_node_from_name(stage.name), part)
