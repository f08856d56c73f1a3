"""Padded convolutions end to end: a padded first layer on pixels (the model's
0.0 is pixel 0), and padded binary convolutions, where the model pads {-1, +1}
with 0.0 and the MVTU corrects the border (see ops/padding.py)."""

import pytest
import torch

from build_flows.config import BuildConfig
from build_flows.flow import run_build
from helpers import randomise_sd_parameters

# a fixed folding target: the default (fastest that fits) makes designs that
# take minutes longer to compile and say nothing more about padding
PINNED_FPS = 100_000


def padded_net(path, convs):
    from quant_models.export import export_qonnx
    from quant_models.models import ModelConfig, _conv_net
    torch.manual_seed(0)
    model = _conv_net("padded", ModelConfig(in_channels=1, image_size=8), convs, [32], padding=1)
    export_qonnx(randomise_sd_parameters(model), path)
    return path


def test_padded_first_layer_builds_and_verifies(tmp_path):
    onnx = padded_net(tmp_path / "pad_first.onnx", [8, "P"])
    cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=6,
                      out=tmp_path / "b", yosys=False, target_fps=PINNED_FPS)
    state = run_build(cfg)
    sim = state.sim
    assert sim["mismatches"] == 0 and sim["differences"] == []
    assert [st.op for st in state.graph.layers()][0] == "FMPadding"
    assert min(sim["links_stalled"].values()) > 0
    assert sim["cycles_per_frame"] <= sim["expected_cycles_per_frame"]


@pytest.mark.parametrize("convs, image", [
    ([8, "P", 16], 8),     # pad 1 on a 4x4 map after a pool: 3 x 3 border classes
    ([6, 7, "P", 5], 7),   # odd channels, 7x7 then 3x3 maps: every output pixel on a border
], ids=["8x8-pool-pad", "7x7-odd"])
def test_padded_binary_convolutions_build_and_equal_the_model(tmp_path, convs, image):
    """The model pads {-1, +1} with 0.0; the stream pads with bit 0 (-1) and
    the MVTU's border threshold sets correct it. The last layer's integers
    must equal the model's on every frame (the verification raises otherwise)."""
    from quant_models.export import export_qonnx
    from quant_models.models import ModelConfig, _conv_net
    torch.manual_seed(1)
    model = _conv_net("padded", ModelConfig(in_channels=1, image_size=image), convs, [32], padding=1)
    export_qonnx(randomise_sd_parameters(model), tmp_path / "m.onnx")
    cfg = BuildConfig(board="pynq-z2", onnx=tmp_path / "m.onnx", dataset="random",
                      verify_images=8, out=tmp_path / "b", yosys=False, target_fps=PINNED_FPS)
    state = run_build(cfg)
    sim = state.sim
    assert sim["mismatches"] == 0 and sim["differences"] == []
    ops = [st.op for st in state.graph.layers()]
    assert ops.count("FMPadding") == len([c for c in convs if c != "P"])
    assert min(sim["links_stalled"].values()) > 0
    assert sim["cycles_per_frame"] <= sim["expected_cycles_per_frame"]


def test_the_border_correction_is_needed(tmp_path, monkeypatch):
    """Without the correction (FINN's graph: padded -1 counted) the build's
    comparison with the model fails: the check can fail, and padding matters."""
    from build_flows.errors import SimulationMismatchError
    from build_flows.ops import mvau
    monkeypatch.setattr(mvau, "border", lambda model, node: None)
    monkeypatch.setattr(mvau.MVAU, "finn_reference", lambda self, model, node: None)
    onnx = padded_net(tmp_path / "pad_all.onnx", [8, "P", 16])
    cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=8,
                      out=tmp_path / "b", yosys=False, target_fps=PINNED_FPS)
    with pytest.raises(SimulationMismatchError):
        run_build(cfg)
