"""The typed state the steps hand on, and the model source chosen once.

Each field is written by one step (named in its comment) and only read
after. The state is saved after every step (OUT/intermediate_state/<step>.pkl)
so that a later run can start from any step (`--from-step`).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from build_flows.errors import InputShapeError, ModelInputError


class CheckpointSource:
    """An SD-BNN checkpoint: PyTorch is the reference."""

    kind = "checkpoint"

    def __init__(self, path: Path, expect_model: str | None = None):
        from quant_models.checkpoint import CheckpointError, load_checkpoint
        self.path = Path(path)
        try:
            self._model = load_checkpoint(self.path)
        except CheckpointError as e:
            raise ModelInputError(str(e)) from e
        self.name = self._model.config["name"]
        if expect_model and expect_model != self.name:
            raise ModelInputError(f"checkpoint {self.path} holds model {self.name!r}, not --model "
                                  f"{expect_model!r}; pass the matching checkpoint or drop --model")
        self.input_shape = tuple(self._model.input_shape)

    @property
    def torch_model(self):
        if self._model is None:  # after unpickling
            from quant_models.checkpoint import load_checkpoint
            self._model = load_checkpoint(self.path)
        return self._model

    def __getstate__(self):
        return {**self.__dict__, "_model": None}

    def describe(self) -> str:
        return f"{self.path}: model {self.name}, input {self.input_shape}"

    def reference(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(UINT8 pixels the accelerator takes, PyTorch logits) of float images."""
        import torch
        with torch.no_grad():
            x = torch.from_numpy(images)
            q = self.torch_model.input_quant(x).numpy()
            logits = self.torch_model(x).numpy().astype(np.float64)
        return np.clip(np.round(q * 255.0), 0, 255).astype(np.int64), logits

    def to_qonnx(self, path: Path):
        import contextlib
        import io
        import logging

        import torch  # noqa: F401 - sets up its loggers, which are quieted below
        from quant_models.export import ExportError, export_qonnx
        # torch.onnx's progress lines and its "torchvision is not installed" notes
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return export_qonnx(self.torch_model, path)
        except ExportError as e:
            raise InputShapeError(str(e)) from e


class OnnxSource:
    """Any QONNX file: its QONNX execution is the reference (export step)."""

    kind = "onnx"

    def __init__(self, path: Path):
        from qonnx.core.modelwrapper import ModelWrapper
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelInputError(f"ONNX file {self.path} not found; pass an existing QONNX file")
        hint = "export it with brevitas.export.export_qonnx (batch 1)"
        try:
            model = ModelWrapper(str(self.path))
            inputs = list(model.graph.input)
            shape = model.get_tensor_shape(inputs[0].name) if inputs else None
        except Exception as e:
            raise ModelInputError(f"{self.path} is not a readable ONNX model ({e}); {hint}") from e
        if not inputs or not model.graph.node:
            raise ModelInputError(f"{self.path} has no graph (no input or no nodes); {hint}")
        if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
            raise ModelInputError(f"{self.path}: input {inputs[0].name} has no fixed shape "
                                  f"({shape}); {hint}")
        if shape[0] != 1:
            raise ModelInputError(f"{self.path}: input {inputs[0].name} has batch {shape[0]} "
                                  f"(shape {tuple(shape)}); the accelerator takes one frame at a "
                                  f"time: {hint}")
        self.name = self.path.stem
        self.input_shape = tuple(shape)[1:]

    def describe(self) -> str:
        return f"{self.path}: QONNX, input {self.input_shape}"

    def reference(self, images: np.ndarray) -> tuple[np.ndarray, None]:
        """(UINT8 pixels, None): the logits come from QONNX execution (export step)."""
        return np.clip(np.round(images * 255.0), 0, 255).astype(np.int64), None

    def to_qonnx(self, path: Path):
        from qonnx.core.modelwrapper import ModelWrapper
        return ModelWrapper(str(self.path))


@dataclass
class BuildState:
    """Everything the steps hand on to each other."""

    name: str = ""  # load: model name for messages
    source: CheckpointSource | OnnxSource | None = None  # load
    images: np.ndarray | None = None  # load: float pixels in [0, 1], (N, C, H, W)
    labels: np.ndarray | None = None  # load: dataset labels (-1: none)
    dataset: str = ""  # load: the data set's name (random: no labels)
    pixels: np.ndarray | None = None  # load: UINT8 pixels, (N, C, H, W)
    ref_logits: np.ndarray | None = None  # load (PyTorch) or export (QONNX for --onnx): (N, classes)
    qonnx: object = None  # export: QONNX ModelWrapper
    qonnx_logits: np.ndarray | None = None  # export: QONNX execution, every image
    streamlined: object = None  # streamline: FINN-ONNX graph
    host_table: np.ndarray | None = None  # streamline: host pixel table [c, k], or None
    ref_acc: np.ndarray | None = None  # streamline: the reference logits as the last layer's integers
    output_affine: tuple | None = None  # streamline: (a, b), logits = a * last layer's integer + b
    host_tail: bool = False  # streamline: the host computes the logits and the class (no LabelSelect)
    hw: object = None  # to_hw: folded FINN HW graph (dataflow partition)
    layout: str = "NHWC"  # to_hw: order in which the host streams the pixels
    fold_cap: dict = field(default_factory=dict)  # to_hw: the layer capping an unmet target FPS
    folding_choice: dict = field(default_factory=dict)  # to_hw: the fastest-fitting folding chosen
    graph: object = None  # rtl: StageGraph; size_fifos sets its FIFO depths
    rtl: object = None  # rtl / size_fifos: the written RtlDir
    sim: dict = field(default_factory=dict)  # simulate
    accuracy: dict = field(default_factory=dict)  # accuracy (with --accuracy-images)
    layer_resources: dict = field(default_factory=dict)  # estimate: per stage
    resources: dict = field(default_factory=dict)  # estimate: totals
    deploy: dict = field(default_factory=dict)  # package: OUT/deploy/ summary
    timings: dict = field(default_factory=dict)  # run_build: seconds per step

    @property
    def accel_pixels(self) -> np.ndarray:
        """The values the accelerator takes (host table applied), (N, C, H, W)."""
        from build_flows.frontend.pixels import apply_host_table
        return self.pixels if self.host_table is None else apply_host_table(self.pixels, self.host_table)

    def frames(self, n: int | None = None) -> np.ndarray:
        """Accelerator input as the host streams it (NHWC or flattened NCHW)."""
        px = self.accel_pixels if n is None else self.accel_pixels[:n]
        return px.transpose(0, 2, 3, 1) if self.layout == "NHWC" else px

    def host_frames(self, pixels: np.ndarray) -> np.ndarray:
        """What the host streams for other UINT8 pixels (N, C, H, W): the host
        table applied, then the accelerator's layout."""
        from build_flows.frontend.pixels import apply_host_table
        px = pixels if self.host_table is None else apply_host_table(pixels, self.host_table)
        return px.transpose(0, 2, 3, 1) if self.layout == "NHWC" else px

    @property
    def ref_classes(self) -> np.ndarray:
        """Top-1 class of every image, from the reference's integers (ties:
        lowest index); with a host tail, of a * integer + b, as the host computes it."""
        if getattr(self, "host_tail", False):
            from build_flows.frontend.convert import host_classes
            return host_classes(self.ref_acc, self.output_affine)
        return np.argmax(self.ref_acc, axis=1)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(self))
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> "BuildState":
        return pickle.loads(Path(path).read_bytes())
