"""Parameters, memory files, stream packing and NumPy golden models for hw/.

One small config dataclass per RTL module. `validate()` raises RTLParamError
(a ValueError naming the parameter and the fix) before any tool runs;
`verilog_params()` gives the module parameters; `pack_input` / `unpack_output`
convert NumPy arrays to and from AXI-Stream words (lane 0 in the low bits);
`golden()` is the bit-exact NumPy model.

MVTU matrices use the hardware orientation W[MH, MW], T[MH, n_thres] (FINN's
ONNX weight initializer is W.T, shape (MW, MH)). XNOR thresholds are in the
popcount domain, as produced by FINN's streamlining. The memory-word layout is
documented in hw/mvtu.sv.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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


class RTLParamError(ValueError):
    """A parameter combination the RTL cannot implement (message names the fix)."""


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_positive(module: str, **values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise RTLParamError(f"{module}: {name}={v!r} must be a positive integer")


def _check_divides(module: str, fold: str, fold_v: int, total: str, total_v: int) -> None:
    if total_v % fold_v:
        raise RTLParamError(f"{module}: {fold}={fold_v} does not divide {total}={total_v}; "
                            f"choose {fold} from {_divisors(total_v)}")


def pack_lanes(values: np.ndarray, width: int, lanes: int) -> list[int]:
    """Pack a flat sequence of values into words of `lanes` lanes of `width` bits."""
    flat = np.asarray(values).reshape(-1, lanes).astype(object)
    mask = (1 << width) - 1
    return [sum((int(v) & mask) << (i * width) for i, v in enumerate(row)) for row in flat]


def unpack_lanes(words: list[int], width: int, lanes: int, signed: bool = False) -> np.ndarray:
    """Inverse of pack_lanes: a flat int64 array of len(words) * lanes values."""
    mask = (1 << width) - 1
    out = [(w >> (i * width)) & mask for w in words for i in range(lanes)]
    if signed:
        out = [v - (1 << width) if v >> (width - 1) else v for v in out]
    return np.array(out, dtype=np.int64)


def mem_text(words: list[int], width: int) -> str:
    """$readmemh text: one hex word per line."""
    digits = (width + 3) // 4
    return "".join(f"{w:0{digits}x}\n" for w in words)


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
        _check_positive("mvtu", MW=self.mw, MH=self.mh, SIMD=self.simd, PE=self.pe)
        _check_divides("mvtu", "SIMD", self.simd, "MW", self.mw)
        _check_divides("mvtu", "PE", self.pe, "MH", self.mh)
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


@dataclass
class MaxPoolConfig:
    """hw/maxpool_bin.sv: K x K binary max-pool, stride K, over NHWC bits."""

    ifm_h: int
    ifm_w: int
    c: int
    simd: int
    k: int

    def validate(self) -> "MaxPoolConfig":
        _check_positive("maxpool_bin", IFM_H=self.ifm_h, IFM_W=self.ifm_w, C=self.c,
                        SIMD=self.simd, K=self.k)
        _check_divides("maxpool_bin", "SIMD", self.simd, "C", self.c)
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
class LabelSelectConfig:
    """hw/label_select.sv: top-K indices of MH values, PE values per beat."""

    mh: int
    pe: int = 1
    val_width: int = 16
    signed: bool = True
    k: int = 1

    def validate(self) -> "LabelSelectConfig":
        _check_positive("label_select", MH=self.mh, PE=self.pe, VAL_WIDTH=self.val_width,
                        K=self.k)
        _check_divides("label_select", "PE", self.pe, "MH", self.mh)
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


@dataclass
class FIFOConfig:
    """hw/axis_fifo.sv."""

    data_width: int
    depth: int

    def validate(self) -> "FIFOConfig":
        _check_positive("axis_fifo", DATA_WIDTH=self.data_width, DEPTH=self.depth)
        if self.depth < 2:
            raise RTLParamError(f"axis_fifo: DEPTH={self.depth} must be >= 2")
        return self

    def verilog_params(self) -> dict:
        self.validate()
        return {"DATA_WIDTH": self.data_width, "DEPTH": self.depth}
