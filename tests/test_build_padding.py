"""Padded convolutions end to end: a padded first layer on pixels builds and
verifies (the model's 0.0 is pixel 0); padding of binary activations is
refused by name, because the model pads {-1, +1} with 0 and FINN's graph
would pad with -1 (the verification showed the difference: see ops/padding.py)."""

import pytest
import torch

from build_flows.config import BuildConfig
from build_flows.errors import UnsupportedLayerError
from build_flows.flow import run_build
from helpers import randomise_sd_parameters


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
                      out=tmp_path / "b", yosys=False)
    state = run_build(cfg)
    sim = state.sim
    assert sim["mismatches"] == 0 and sim["differences"] == []
    assert [st.op for st in state.graph.layers()][0] == "FMPadding"
    assert min(sim["links_stalled"].values()) > 0
    assert sim["cycles_per_frame"] <= sim["expected_cycles_per_frame"]


def test_padding_of_binary_activations_is_refused(tmp_path):
    onnx = padded_net(tmp_path / "pad_all.onnx", [8, "P", 16])
    cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=2,
                      out=tmp_path / "b", yosys=False)
    with pytest.raises(UnsupportedLayerError,
                       match=r"layer FMPadding_1 \(FMPadding\) pads the binary input of "
                             r"ConvolutionInputGenerator_\d: the model pads .* with 0"):
        run_build(cfg)
