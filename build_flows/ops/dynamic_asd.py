"""DynamicASD -> hw/dynamic_asd.sv: SD-BNN's dynamic activation
self-distribution (per-frame channel means -> squeeze-and-excitation MLP ->
per-channel shift -> sign), on the integer tables that
build_flows/frontend/dynamic_asd.py computes.

Maths per frame (x[p][c] unsigned qw-bit counts, hw/dynamic_asd.sv's header):
    sum[c]  = sum_p x[p][c]
    g[c]    = #{k : sum[c] >= gt[k]}        (no gt: g = sum)
    acc1[j] = sum_c w1[j][c] * g[c]
    h[j]    = #{k : acc1[j] >= ht[j][k]}
    acc2[c] = sum_j w2[c][j] * h[j]
    s[c]    = #{k : acc2[c] >= st[k]}
    out     = x[p][c] >= rt[c][s[c]]

Cycles per frame (steady state): max(F, M), F = pixels * C / PE beats, M =
2 C + B + 3 MLP cycles (B = ceil(log2(GN + 1)) search stages, 0 without gt);
F == M costs half a cycle more on average (cycles() rounds it up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import DoesNotFitError, UnsupportedLayerError
from build_flows.ops.base import (HW_DIR, MapContext, OpKind, RTLParamError, check_divides,
                                  check_positive, describe)
from build_flows.rtl.graph import stream_stage
from build_flows.rtl.stream import mem_text, pack_lanes, unpack_lanes

MODULE = "dynamic_asd"
# hw/dynamic_asd.sv's memory rule (mvtu.sv's "auto"): block RAM when
# depth > 128 words and depth * width >= 4096 bits
AUTO_BLOCK_MIN_DEPTH = 129
AUTO_BLOCK_MIN_BITS = 4096
TABLES = ("gt", "w1", "ht", "w2", "st", "rt")


def _signed_bits(*values: int) -> int:
    """Smallest two's complement width (>= 2) that holds every value."""
    bits = 2
    for v in values:
        v = int(v)
        bits = max(bits, (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1)
    return bits


def _count_ge(v: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """#{k : v >= thresholds[..., k]} (thresholds broadcast against v[..., None])."""
    return (np.asarray(v)[..., None] >= thresholds).sum(axis=-1)


@dataclass(eq=False)
class DynamicASDConfig:
    """hw/dynamic_asd.sv: c channels, pe per beat, `pixels` pixels of qw-bit
    counts per frame, and the tables (int arrays or nested tuples):
    gt (GN,), w1 (HID, C), ht (HID, HN), w2 (C, HID), st (SN,), rt (C, SN+1)."""

    c: int
    pe: int
    pixels: int
    qw: int
    gt: np.ndarray | tuple
    w1: np.ndarray | tuple
    ht: np.ndarray | tuple
    w2: np.ndarray | tuple
    st: np.ndarray | tuple
    rt: np.ndarray | tuple
    w_bits: int = 4

    # ---- tables and shapes ----
    def table(self, name: str) -> np.ndarray:
        """A table as an int64 array (1-D gt / st, 2-D otherwise)."""
        t = np.asarray(getattr(self, name))
        if t.size == 0 and t.ndim <= 1:
            t = t.reshape(0)
        if not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.bool_)):
            if not np.issubdtype(t.dtype, np.number) or not np.array_equal(t, np.rint(t)):
                raise RTLParamError(f"{MODULE}: table {name} must hold integers")
        return t.astype(np.int64)

    @property
    def gn(self) -> int:
        return int(self.table("gt").size)

    @property
    def hid(self) -> int:
        return int(self.table("w1").shape[0])

    @property
    def hn(self) -> int:
        ht = self.table("ht")
        return int(ht.shape[1]) if ht.ndim == 2 else 0

    @property
    def sn(self) -> int:
        return int(self.table("st").size)

    @property
    def folds(self) -> int:
        return self.c // self.pe

    @property
    def search_stages(self) -> int:
        """B: the binary search's pipeline stages for g (0 without gt)."""
        return self.gn.bit_length() if self.gn else 0

    def validate(self) -> "DynamicASDConfig":
        check_positive(MODULE, C=self.c, PE=self.pe, PIXELS=self.pixels, QW=self.qw)
        check_divides(MODULE, "PE", self.pe, "C", self.c)
        if self.qw > 16:
            raise RTLParamError(f"{MODULE}: QW={self.qw} must be in 1..16")
        if not 2 <= self.w_bits <= 8:
            raise RTLParamError(f"{MODULE}: W_BITS={self.w_bits} must be in 2..8")
        t = {name: self.table(name) for name in TABLES}
        if t["gt"].ndim != 1 or t["st"].ndim != 1:
            raise RTLParamError(f"{MODULE}: gt and st must be 1-D, got shapes "
                                f"{t['gt'].shape} and {t['st'].shape}")
        if t["gt"].size > 65535:
            raise RTLParamError(f"{MODULE}: GN={t['gt'].size} gap thresholds; at most 65535")
        if t["w1"].ndim != 2 or t["w1"].shape[0] < 1 or t["w1"].shape[1] != self.c:
            raise RTLParamError(f"{MODULE}: w1 shape {t['w1'].shape} must be (HID, C) with "
                                f"HID >= 1, C={self.c}")
        hid = t["w1"].shape[0]
        if t["ht"].ndim != 2 or t["ht"].shape[0] != hid or t["ht"].shape[1] < 1:
            raise RTLParamError(f"{MODULE}: ht shape {t['ht'].shape} must be (HID, HN) with "
                                f"HID={hid}, HN >= 1")
        if t["w2"].shape != (self.c, hid):
            raise RTLParamError(f"{MODULE}: w2 shape {t['w2'].shape} must be (C, HID)="
                                f"{(self.c, hid)}")
        if t["st"].size < 1:
            raise RTLParamError(f"{MODULE}: SN=0 shift thresholds; st needs at least one")
        if t["rt"].shape != (self.c, t["st"].size + 1):
            raise RTLParamError(f"{MODULE}: rt shape {t['rt'].shape} must be (C, SN+1)="
                                f"{(self.c, t['st'].size + 1)}")
        for name in ("gt", "ht", "st"):
            if (np.diff(t[name], axis=-1) < 0).any():
                raise RTLParamError(f"{MODULE}: thresholds {name} must be sorted ascending"
                                    + (" in each row" if name == "ht" else ""))
        lim = 1 << (self.w_bits - 1)
        for name in ("w1", "w2"):
            if t[name].size and (t[name].min() < -lim or t[name].max() >= lim):
                raise RTLParamError(f"{MODULE}: weights {name} must be in {-lim}..{lim - 1} "
                                    f"(signed W_BITS={self.w_bits}); raise w_bits")
        if t["rt"].min() < 0 or t["rt"].max() > 1 << self.qw:
            raise RTLParamError(f"{MODULE}: replay thresholds rt must be in 0..{1 << self.qw} "
                                f"(2**QW, QW={self.qw})")
        for name, bits in (("SUM_W", self.sum_w), ("ACC1_W", self.acc1_w),
                           ("ACC2_W", self.acc2_w)):
            if bits > 64:
                raise RTLParamError(f"{MODULE}: {name}={bits} bits > 64; shrink the tables")
        return self

    # ---- ranges, hardware tables and widths ----
    @property
    def sum_max(self) -> int:
        return self.pixels * ((1 << self.qw) - 1)

    def _ranges(self) -> dict:
        """The reachable range of every intermediate and the thresholds the
        hardware holds: each clipped into lo..hi+1 of the value it is compared
        with (clipping changes no comparison)."""
        t = {name: self.table(name) for name in TABLES}
        smax = self.sum_max
        gt = np.clip(t["gt"], 0, smax + 1)
        if t["gt"].size:
            glo, ghi = int((gt <= 0).sum()), int((gt <= smax).sum())
        else:
            glo, ghi = 0, smax
        w1 = t["w1"]
        lo1 = np.minimum(w1 * glo, w1 * ghi).sum(axis=1)  # per j
        hi1 = np.maximum(w1 * glo, w1 * ghi).sum(axis=1)
        ht = np.clip(t["ht"], lo1[:, None], hi1[:, None] + 1)
        hlo = (ht <= lo1[:, None]).sum(axis=1)
        hhi = (ht <= hi1[:, None]).sum(axis=1)
        w2 = t["w2"]
        lo2 = np.minimum(w2 * hlo, w2 * hhi).sum(axis=1)  # per c
        hi2 = np.maximum(w2 * hlo, w2 * hhi).sum(axis=1)
        st = np.clip(t["st"], lo2.min(), hi2.max() + 1)
        return {"gt": gt, "ht": ht, "st": st, "lo1": lo1, "hi1": hi1, "lo2": lo2, "hi2": hi2}

    @property
    def sum_w(self) -> int:
        r = self._ranges()
        return max(self.qw, max([self.sum_max, *r["gt"].tolist()]).bit_length())

    @property
    def g_w(self) -> int:
        """Bits of g: the search's count (GN > 0) or the sum itself."""
        return self.gn.bit_length() if self.gn else self.sum_w

    @property
    def acc1_w(self) -> int:
        r = self._ranges()
        return _signed_bits(r["lo1"].min(), r["hi1"].max(), *r["ht"].reshape(-1).tolist())

    @property
    def acc2_w(self) -> int:
        r = self._ranges()
        return _signed_bits(r["lo2"].min(), r["hi2"].max(), *r["st"].tolist())

    # ---- RTL ----
    @staticmethod
    def file_names(prefix: str = "dasd") -> dict:
        return {f"{name.upper()}_FILE": f"{prefix}_{name}.mem" for name in TABLES}

    def verilog_params(self, prefix: str = "dasd") -> dict:
        self.validate()
        return {"C": self.c, "PE": self.pe, "PIXELS": self.pixels, "QW": self.qw,
                "SUM_W": self.sum_w, "GN": self.gn, "HID": self.hid, "W_BITS": self.w_bits,
                "ACC1_W": self.acc1_w, "HN": self.hn, "ACC2_W": self.acc2_w, "SN": self.sn,
                **self.file_names(prefix)}

    def mem_files(self, prefix: str = "dasd") -> dict:
        """{file name: $readmemh text} (layout in hw/dynamic_asd.sv's header)."""
        self.validate()
        r = self._ranges()
        names = self.file_names(prefix)
        sw, a1, a2, wb, rw = self.sum_w, self.acc1_w, self.acc2_w, self.w_bits, self.qw + 1
        w1, w2, rt = self.table("w1"), self.table("w2"), self.table("rt")
        return {
            names["GT_FILE"]: mem_text(pack_lanes(r["gt"], sw, 1), sw) if self.gn else "0\n",
            names["W1_FILE"]: mem_text(pack_lanes(w1.T, wb, self.hid), self.hid * wb),
            names["HT_FILE"]: mem_text(pack_lanes(r["ht"], a1, self.hn), self.hn * a1),
            names["W2_FILE"]: mem_text(pack_lanes(w2, wb, self.hid), self.hid * wb),
            names["ST_FILE"]: mem_text(pack_lanes(r["st"], a2, 1), a2),
            names["RT_FILE"]: mem_text(pack_lanes(rt, rw, self.sn + 1), (self.sn + 1) * rw),
        }

    def pack_input(self, x: np.ndarray) -> list[int]:
        """x (N, pixels, C) (or any shape ending in pixels, C) -> words of PE lanes."""
        return pack_lanes(np.asarray(x).reshape(-1, self.pixels, self.c), self.qw, self.pe)

    def unpack_output(self, words: list[int]) -> np.ndarray:
        """Output words -> (N, pixels, C) bits (uint8)."""
        return unpack_lanes(words, 1, self.pe).reshape(-1, self.pixels, self.c).astype(np.uint8)

    def in_words_per_image(self) -> int:
        return self.pixels * self.folds

    def out_words_per_image(self) -> int:
        return self.pixels * self.folds

    def mlp_cycles(self) -> int:
        """M: the MLP's cycles per frame, 2 C + B + 3."""
        return 2 * self.c + self.search_stages + 3

    def cycles(self) -> int:
        """Steady-state cycles per frame: max(F, M); F == M alternates M and
        M + 1 (mean M + 1/2), given as M + 1."""
        f, m = self.in_words_per_image(), self.mlp_cycles()
        return max(f, m) + (f == m)

    def buffer_bits(self) -> int:
        """The frame buffer ring: 2 frames of F words of PE * QW bits."""
        return 2 * self.in_words_per_image() * self.pe * self.qw

    def buffer_mem_style(self) -> str:
        """"block" or "distributed": the frame buffer hw/dynamic_asd.sv builds."""
        depth = 2 * self.in_words_per_image()
        block = depth >= AUTO_BLOCK_MIN_DEPTH and self.buffer_bits() >= AUTO_BLOCK_MIN_BITS
        return "block" if block else "distributed"

    # ---- golden model ----
    def stages(self, x: np.ndarray) -> dict:
        """Every intermediate of the maths for x (N, pixels, C): sum, g, acc1,
        h, acc2, s, sel (N, ...) and out (N, pixels, C); int64, from the
        tables as given (not clipped)."""
        t = {name: self.table(name) for name in TABLES}
        x = np.asarray(x, dtype=np.int64).reshape(-1, self.pixels, self.c)
        sums = x.sum(axis=1)  # (N, C)
        g = _count_ge(sums, t["gt"]) if t["gt"].size else sums
        acc1 = np.einsum("jc,nc->nj", t["w1"], g)  # (N, HID)
        h = _count_ge(acc1, t["ht"][None])  # (N, HID): row j against ht[j]
        acc2 = np.einsum("cj,nj->nc", t["w2"], h)  # (N, C)
        s = _count_ge(acc2, t["st"])
        sel = t["rt"][np.arange(self.c)[None, :], s]  # (N, C): rt[c][s[n, c]]
        out = (x >= sel[:, None, :]).astype(np.int64)
        return {"sum": sums, "g": g, "acc1": acc1, "h": h, "acc2": acc2, "s": s, "sel": sel,
                "out": out}

    def golden(self, x: np.ndarray) -> np.ndarray:
        """x (N, pixels, C) counts -> (N, pixels, C) uint8 bits."""
        return self.stages(x)["out"].astype(np.uint8)


# ---- OpKind and graph glue below ----

def dynamic_asd_config(node) -> DynamicASDConfig:
    """The unit's config from a DynamicASD node (frontend/dynamic_asd.py)."""
    inst = getCustomOp(node)
    vecs = list(inst.get_nodeattr("numInputVectors"))
    return DynamicASDConfig(c=inst.get_nodeattr("NumChannels"), pe=inst.get_nodeattr("PE"),
                            pixels=int(np.prod(vecs[1:])) if len(vecs) > 1 else 1,
                            qw=inst.get_input_datatype().bitwidth(), w_bits=inst.get_nodeattr("w_bits"),
                            **inst.tables())


# the shapes (depth, width) of a BRAM36 and of a BRAM18 in simple dual-port mode
BRAM36_SHAPES = ((32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72))
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def ring_bram36(width: int, depth: int) -> float:
    """BRAM36 of a depth x width memory: the best tiling by BRAM36s or by
    BRAM18s (half a BRAM36 each)."""
    def tiles(shapes):
        return min(-(-width // w) * -(-depth // d) for d, w in shapes)
    return float(min(tiles(BRAM36_SHAPES), tiles(BRAM18_SHAPES) / 2))


def analytic_resources(cfg: DynamicASDConfig) -> dict:
    """Our own first-order LUT/FF/BRAM36/DSP model of hw/dynamic_asd.sv (FINN
    has no such layer), fitted to Yosys on digits_cnv's three units (within
    about 15 %): the frame ring (LUT RAM, or block RAM by the auto rule), the
    binary search of the mean's thresholds, the ReLU and shift comparators,
    the 2 HID shift-and-add products (LUTs, no DSP) and the replay compare.
    Used before any RTL exists and when Yosys times out; the build's estimate
    step synthesises the unit itself."""
    width, depth = cfg.pe * cfg.qw, 2 * cfg.in_words_per_image()
    if cfg.buffer_mem_style() == "block":
        bram, ring_lut = ring_bram36(width, depth), 0
    else:
        bram, ring_lut = 0, width * -(-depth // 32)
    b, a1, a2 = cfg.search_stages, cfg.acc1_w, cfg.acc2_w
    h_w = max(1, cfg.hn.bit_length())
    lut = (100 + cfg.hid * cfg.hn * a1 // 2 + cfg.sn * a2 // 2 + b * cfg.sum_w + ring_lut
           + cfg.pe * (cfg.qw + 1 + cfg.sum_w) + 3 * cfg.hid * cfg.w_bits * (cfg.g_w + h_w) // 2)
    ff = 60 + b * (cfg.sum_w + cfg.g_w) + cfg.hid * (a1 + a2 + 8) + 2 * width
    return {"LUT": int(lut), "FF": int(ff), "BRAM36": float(bram), "DSP": 0}


class DynamicASDKind(OpKind):
    """The dynamic ASD unit. Folding rule: raise PE (lanes per beat, dividing
    the channels) until the layer meets the target; the MLP's M = 2 C + B + 3
    cycles per frame do not shrink with PE, so the layer's cycles are
    max(pixels * C / PE, M) (+1 when equal)."""

    name = "DynamicASD"
    hw_ops = ("DynamicASD",)
    fold_attrs = {"DynamicASD": ("PE",)}
    pe_divides = ("NumChannels", "channels", MODULE)
    estimate_source = "analytic"

    def check(self, model, node, index, count):
        try:
            dynamic_asd_config(node).validate()
        except RTLParamError as e:
            raise UnsupportedLayerError(f"layer {describe(node)}: {str(e).split(': ', 1)[1]}") from e

    def check_board(self, model, node, board_name, board):
        cfg = dynamic_asd_config(node)
        need = ring_bram36(cfg.qw, 2 * cfg.pixels * cfg.c)  # the ring at any PE holds this
        if need > board.BRAM36:
            vecs = list(getCustomOp(node).get_nodeattr("numInputVectors"))[1:]
            shape = "x".join(str(v) for v in [*vecs, cfg.c])
            raise DoesNotFitError(
                f"layer {describe(node)} holds two frames of its {shape} {cfg.qw}-bit feature "
                f"map ({cfg.buffer_bits():,} bits, {need:g} BRAM36) and {board_name} has "
                f"{board.BRAM36:g} BRAM36: use fewer channels or a smaller map at that layer, "
                "static ASD there, or a larger board")

    def cycles(self, model, node):
        return dynamic_asd_config(node).cycles()

    def cap_reason(self, model, node):
        cfg = dynamic_asd_config(node)
        if cfg.mlp_cycles() >= cfg.in_words_per_image():
            return (f"its per-frame MLP ({cfg.mlp_cycles()} cycles = 2 x {cfg.c} channels + "
                    f"{cfg.search_stages + 3}), which no folding shortens")
        return f"PE={cfg.pe} of {cfg.c} channels"

    def stage(self, model, node, ctx: MapContext):
        cfg = dynamic_asd_config(node).validate()
        files = cfg.mem_files(prefix=node.name)
        return stream_stage(node.name, self.name, MODULE, cfg.verilog_params(prefix=node.name),
                            [HW_DIR / "dynamic_asd.sv", HW_DIR / "axis_skid.sv"],
                            cfg.pe * cfg.qw, cfg.pe, cfg.qw, 1, node.input[0], node.output[0],
                            mem_files=files, pe=cfg.pe, expected_cycles=cfg.cycles())

    def execute(self, model, node, x):
        """x (N, H, W, C) or (N, C) counts -> bits of the same shape."""
        return dynamic_asd_config(node).golden(x).reshape(x.shape)

    def node_estimate(self, model, node, part):
        return analytic_resources(dynamic_asd_config(node))

    def finn_estimate(self, model, stage, part):
        return analytic_resources(dynamic_asd_config(model.get_node_from_name(stage.name)))
