"""The one configuration of a build, and the boards it can target.

A BuildConfig is frozen: run_build resolves it once (default output folder,
absolute paths) and every step reads the same values. `--config FILE.json`
holds the same fields as the command line (see BuildConfig.from_json), like
FINN's build_dataflow config; every build writes the one it ran as
OUT/build_config.json, which `--config` takes back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from build_flows.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "digits_cnv"
DEFAULT_CHECKPOINT = REPO / "quant_models" / "checkpoints" / "digits_cnv.pt"


def _check_writable(out: Path) -> None:
    """ConfigError unless `out` is (or can be made) a writable folder."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder (it is created if missing)")
    parent = next((p for p in [out, *out.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"--out {out}: {parent} is a file, so the folder cannot be created")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: {parent} is not writable; pass a folder you can write")


def read_json_object(path: Path, what: str, error: type[Exception]) -> dict:
    """The JSON object in a user's file, or `error` naming the file and the fix."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise error(f"{what} {path} not found; pass an existing JSON file") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{what} {path} is not valid JSON ({e}); fix the file") from e
    if not isinstance(data, dict):
        raise error(f"{what} {path} must hold a JSON object")
    return data


@dataclass(frozen=True)
class Board:
    part: str  # FPGA part number (Vivado spelling)
    LUT: int
    FF: int
    BRAM36: float
    DSP: int


BOARDS = {
    "pynq-z1": Board("xc7z020clg400-1", 53_200, 106_400, 140, 220),
    "pynq-z2": Board("xc7z020clg400-1", 53_200, 106_400, 140, 220),
    "ultra96-v2": Board("xczu3eg-sbva484-1-i", 70_560, 141_120, 216, 360),
    "zcu104": Board("xczu7ev-ffvc1156-2-e", 230_400, 460_800, 312, 1_728),
    "kv260": Board("xck26-sfvc784-2LV-c", 117_120, 234_240, 144, 1_248),
}

_PATHS = ("checkpoint", "onnx", "folding", "data_dir", "out")


@dataclass(frozen=True)
class BuildConfig:
    board: str  # key of BOARDS
    model: str | None = None  # registry model name (with checkpoint), default digits_cnv
    checkpoint: Path | None = None  # SD-BNN checkpoint; default DEFAULT_CHECKPOINT
    onnx: Path | None = None  # any QONNX W1A1 model instead of model/checkpoint
    target_fps: float | None = None  # folding target (frames/s at clock_mhz); None: the fastest that fits
    folding: Path | None = None  # FINN-format folding JSON instead of target_fps
    clock_mhz: float = 100.0  # target clock
    verify_images: int = 100  # images simulated and compared bit for bit
    dataset: str | None = None  # digits / mnist / cifar10 / imagefolder / random; default from input shape
    data_dir: Path | None = None  # dataset folder (mnist, cifar10, imagefolder)
    out: Path | None = None  # artefact directory; default build/<model name>
    waves: bool = False  # VCD waveforms of the verification runs in out/waves; mismatch not fatal
    fifo_margin: int = 2  # words added to each FIFO's measured maximum occupancy
    stall_prob: float = 0.3  # back-pressure / input-gap probability of the stressed run
    seed: int = 0  # verification image order and stall pattern
    yosys: bool = True  # synthesise our RTL with Yosys (else analytic estimates only)
    sim_threads: int = 1  # Verilator model threads of the verification runs
    sim_jobs: int = 1  # processes per verification run, each simulating a share of the frames
    layer_check_frames: int = 200  # frames whose every link is compared (the rest: classes)
    accuracy_images: int = 0  # test images run through the HW graph for accuracy (-1: all, 0: none)
    dma_frames: int | None = None  # frames per DMA packet (TLAST) of the deploy package; None: chosen
    vivado: bool = False  # run the generated Vivado Tcl to a bitfile (needs vivado on PATH)
    from_step: str | None = None  # first step to run (earlier ones from OUT's saved state)
    to_step: str | None = None  # last step to run

    @property
    def board_info(self) -> Board:
        return BOARDS[self.board]

    @property
    def clk_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    def resolved(self) -> "BuildConfig":
        """Checked values, default output folder (build/<model>), absolute output path."""
        out = self.out
        if out is None:
            out = Path("build") / (self.model or (Path(self.onnx).stem if self.onnx else DEFAULT_MODEL))
        cfg = dataclasses.replace(self, out=Path(out).resolve())
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """ConfigError naming the option for a value no build can use (before
        any slow import), including an output folder that cannot be written."""
        if self.board not in BOARDS:
            raise ConfigError(f"unknown board {self.board!r}; use one of {sorted(BOARDS)}")
        for name, value in (("--clock-mhz", self.clock_mhz), ("--target-fps", self.target_fps)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                          and value > 0):
                raise ConfigError(f"{name} {value!r} must be a positive number")
        if not (isinstance(self.stall_prob, (int, float)) and 0 <= self.stall_prob < 1):
            raise ConfigError(f"stall_prob {self.stall_prob!r} must be in [0, 1)")
        for name, value, low in (("--verify-images", self.verify_images, 2),
                                 ("--sim-threads", self.sim_threads, 1),
                                 ("--sim-jobs", self.sim_jobs, 1),
                                 ("--layer-check-frames", self.layer_check_frames, 1),
                                 ("fifo_margin", self.fifo_margin, 0),
                                 ("--dma-frames", 1 if self.dma_frames is None else self.dma_frames, 1)):
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} {value!r} must be an integer >= {low}"
                                  + (" (the II is measured between frames)" if low == 2 else ""))
        if not isinstance(self.accuracy_images, int) or self.accuracy_images < -1:
            raise ConfigError(f"--accuracy-images {self.accuracy_images!r} must be 'all' or an "
                              "integer >= 0")
        if self.data_dir is not None and self.dataset in (None, "digits", "random"):
            raise ConfigError(f"--data-dir {self.data_dir} needs --dataset mnist, cifar10 or imagefolder "
                              "(digits is embedded, random needs no files)")
        if self.onnx is not None and (self.model or self.checkpoint):
            raise ConfigError("--onnx excludes --model and --checkpoint")
        if self.out is not None:
            _check_writable(Path(self.out))

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, path: Path, **overrides) -> "BuildConfig":
        """The config in a JSON file (the fields above; unknown keys are refused),
        with `overrides` (non-None values) on top."""
        data = read_json_object(path, "config file", ConfigError)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"config file {path} has unknown field(s) {unknown}; "
                              f"the fields are {sorted(fields)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        if "board" not in data:
            raise ConfigError(f"config file {path} has no 'board'; add one of {sorted(BOARDS)}")
        if data["board"] not in BOARDS:
            raise ConfigError(f"config file {path}: unknown board {data['board']!r}; "
                              f"use one of {sorted(BOARDS)}")
        for key in _PATHS:
            if data.get(key) is not None:
                data[key] = Path(data[key])
        return cls(**data)
