"""What every layer kind provides, and the helpers they share.

A layer kind (one file in ops/, one OpKind subclass, registered in
ops/__init__.py) holds the whole Python story of one kind of FINN HW node:
its support check, folding rule and cycle formula, divisibility check, RTL
stage, golden model (its config dataclass) and FINN estimate. The flow never
switches on op_type: it looks the kind up in the registry.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from build_flows.errors import FoldingError
from build_flows.rtl.graph import Stage

REPO = Path(__file__).resolve().parent.parent.parent
HW_DIR = REPO / "hw"


class RTLParamError(ValueError):
    """A parameter combination the RTL cannot implement (message names the fix)."""


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_positive(module: str, **values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise RTLParamError(f"{module}: {name}={v!r} must be a positive integer")


def check_divides(module: str, fold: str, fold_v: int, total: str, total_v: int) -> None:
    """The one divisibility rule: fold must divide total (message lists the choices)."""
    if total_v % fold_v:
        raise RTLParamError(f"{module}: {fold}={fold_v} does not divide {total}={total_v}; "
                            f"choose {fold} from {divisors(total_v)}")


def first_meeting(node, attr: str, choices, meets) -> bool:
    """Set attr to the first of `choices` for which meets() holds (a folding
    rule: the smallest folding that meets the target); True if one did, else
    the last choice stays set."""
    inst = getCustomOp(node)
    for value in choices:
        inst.set_nodeattr(attr, value)
        if meets():
            return True
    return False


def folding_error(node, e: RTLParamError) -> FoldingError:
    """An RTL parameter error of a layer's folding, named by the layer."""
    return FoldingError(f"layer {node.name}: {str(e).split(': ', 1)[1]}")


def describe(node) -> str:
    return f"{node.name} ({node.op_type})"


def nodeattr(node, name: str):
    return getCustomOp(node).get_nodeattr(name)


def producer_swg(model: ModelWrapper, node):
    """The sliding window feeding node, or None."""
    prod = model.find_producer(node.input[0])
    if prod is not None and prod.op_type.startswith("ConvolutionInputGenerator"):
        return prod
    return None


def can_go_parallel(swg) -> bool:
    """FINN's parallel sliding window (one whole K x K window of every channel
    a beat) is built for this window: a non-depthwise window larger than 1x1,
    stride 1 and no dilation, whose line buffers are at least 2 pixels long.
    FINN's swg_ram_buffer reads out of range at DEPTH 1 (its read address
    starts at 1), and a line buffer holds W - KW pixels: the fuzzer caught wrong
    pixels for a 5x5 window over a 6-wide map and a 2x2 window over a 3-wide
    one. Strided windows are left out too, as the first of those was strided."""
    if swg is None:
        return False
    inst = getCustomOp(swg)
    (kh, kw), (h, w) = inst.get_nodeattr("ConvKernelDim"), inst.get_nodeattr("IFMDim")
    line_buffers = kh > 1 and h > 1 and w > 1  # a 1D window (normalised to 1 x D) has none
    return (not inst.get_nodeattr("depthwise") and (kh, kw) != (1, 1)
            and list(inst.get_nodeattr("Stride")) == [1, 1]
            and list(inst.get_nodeattr("Dilation")) == [1, 1]
            and (not line_buffers or w - kw >= 2))


def finn_inst(node, impl: str):
    """A specialised copy of a HW node (`impl` "hls" or "rtl"), for FINN's
    estimate and code generation methods."""
    node = copy.deepcopy(node)
    node.domain = f"finn.custom_op.fpgadataflow.{impl}"
    node.op_type = node.op_type + "_" + impl
    return getCustomOp(node)


def finn_hls_estimate(node, part: str) -> dict:
    """FINN's analytic LUT/BRAM/DSP of a node's HLS variant (FINN has no FF model)."""
    inst = finn_inst(node, "hls")
    return {"LUT": int(inst.lut_estimation(part)), "FF": 0,
            "BRAM36": round(inst.bram_estimation(part) / 2, 1), "DSP": int(inst.dsp_estimation(part))}


@dataclass
class MapContext:
    """What mapping a node to a stage may need besides the node."""

    gen_dir: Path  # where FINN's generators write their RTL
    part: str  # FPGA part
    clk_ns: float
    stage_of_tensor: dict[str, Stage] = field(default_factory=dict)  # producer stage of a tensor


class OpKind:
    """One layer kind. `hw_ops`: the FINN HW op types it maps; `fold_attrs`:
    the folding-JSON attributes of each of them."""

    name = ""
    hw_ops: tuple[str, ...] = ()
    fold_attrs: dict[str, tuple[str, ...]] = {}
    # kinds folded by PE alone: (node attribute PE divides, its name in messages, RTL module);
    # fold() and check_folding() below then implement the rule
    pe_divides: tuple[str, str, str] | None = None
    # FINN's variant whose analytic model stands for the layer before any RTL
    # exists (node_estimate): "hls" for our RTL kinds, "rtl" for FINN's generators
    finn_impl = "hls"
    # what finn_estimate reports: "finn" (FINN's analytic model) or "analytic" (our own)
    estimate_source = "finn"

    def check(self, model: ModelWrapper, node, index: int, count: int) -> None:
        """Raise a BuildError if the node cannot be built (index/count: its
        place among the nodes of this kind)."""

    def check_board(self, model: ModelWrapper, node, board_name: str, board) -> None:
        """Raise DoesNotFitError if the node alone cannot fit the board,
        whatever its folding (a buffer larger than the board's BRAM)."""

    def absorbed(self, model: ModelWrapper, node) -> bool:
        """True if another node's stage implements this node too."""
        return False

    def fold(self, model: ModelWrapper, node, target_cycles: int) -> None:
        """Smallest folding that meets target_cycles per frame (or the fastest);
        for pe_divides kinds: the smallest PE dividing the attribute."""
        if self.pe_divides:
            total = getCustomOp(node).get_nodeattr(self.pe_divides[0])
            first_meeting(node, "PE", divisors(total), lambda: self.cycles(model, node) <= target_cycles)

    def sync(self, model: ModelWrapper, node) -> None:
        """After folding: set what follows from this node's folding elsewhere."""

    def check_folding(self, model: ModelWrapper, node) -> None:
        """Raise FoldingError naming the layer if its folding does not divide."""
        if self.pe_divides:
            attr, label, module = self.pe_divides
            inst = getCustomOp(node)
            try:
                check_divides(module, "PE", inst.get_nodeattr("PE"), label, inst.get_nodeattr(attr))
            except RTLParamError as e:
                raise folding_error(node, e) from e

    def cycles(self, model: ModelWrapper, node) -> int:
        """Analytic cycles per frame."""
        return 0

    def cap_reason(self, model: ModelWrapper, node) -> str:
        """Why the node cannot go faster than its folding allows (for the
        note of a target FPS that is not met)."""
        return "its fastest folding"

    def stage(self, model: ModelWrapper, node, ctx: MapContext) -> Stage:
        raise NotImplementedError(self.name)

    def execute(self, model: ModelWrapper, node, x: np.ndarray) -> np.ndarray:
        """The node's output for a batch x (N, ...) of integer inputs, channels
        last, exactly as FINN's execution computes it (sim/executor.py)."""
        raise NotImplementedError(f"{self.name}: no fast execution")

    def finn_reference(self, model: ModelWrapper, node) -> None:
        """Rewrite `model` (a copy of the HW graph) in place so that FINN's
        execute_onnx computes what this node's hardware computes, where FINN's
        node alone does not (a padded binary convolution's border). Default: nothing."""

    def node_estimate(self, model: ModelWrapper, node, part: str) -> dict:
        """FINN's analytic LUT/BRAM36/DSP of the node at its folding, from the
        node alone (the folding search runs it for every candidate folding)."""
        inst = finn_inst(node, self.finn_impl)
        return {"LUT": int(inst.lut_estimation(part)), "FF": 0,
                "BRAM36": round(inst.bram_estimation(part) / 2, 1),
                "DSP": int(inst.dsp_estimation(part)) if self.finn_impl == "hls" else 0}

    def finn_estimate(self, model: ModelWrapper, stage: Stage, part: str) -> dict:
        """FINN's analytic resources for the stage (LUT, FF, BRAM36, DSP)."""
        return dict(stage.finn_resources)
