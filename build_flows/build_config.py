"""The one configuration of a build, and the boards it can target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "digits_cnv"
DEFAULT_CHECKPOINT = REPO / "quant_models" / "checkpoints" / "digits_cnv.pt"


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


@dataclass
class BuildConfig:
    board: str  # key of BOARDS
    model: str | None = None  # registry model name (with checkpoint), default digits_cnv
    checkpoint: Path | None = None  # SD-BNN checkpoint; default DEFAULT_CHECKPOINT
    onnx: Path | None = None  # any QONNX W1A1 model instead of model/checkpoint
    target_fps: float | None = None  # folding target (frames/s at clock_mhz)
    folding: Path | None = None  # FINN-format folding JSON instead of target_fps
    clock_mhz: float = 100.0  # target clock
    verify_images: int = 100  # images simulated and compared bit for bit
    dataset: str | None = None  # digits / mnist / cifar10 / random; default from input shape
    data_dir: Path | None = None  # dataset folder (mnist, cifar10)
    out: Path | None = None  # artefact directory; default build/<model name>
    waves: bool = False  # VCD waveforms of the verification runs in out/waves; mismatch not fatal
    fifo_margin: int = 2  # words added to each FIFO's measured maximum occupancy
    stall_prob: float = 0.3  # back-pressure / input-gap probability of the stressed run
    seed: int = 0  # verification image order and stall pattern
    yosys: bool = True  # synthesise our RTL with Yosys (else analytic estimates only)
    sim_threads: int = 1  # Verilator model threads of the verification runs

    @property
    def board_info(self) -> Board:
        return BOARDS[self.board]

    @property
    def target_cycles(self) -> int | None:
        if self.target_fps is None:
            return None
        return max(1, int(self.clock_mhz * 1e6 / self.target_fps))


DEFAULT_TARGET_FPS = 100_000  # at 100 MHz: 1000 cycles per frame
