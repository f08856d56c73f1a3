"""QONNX export equals PyTorch; FINN's streamlining leaves only thresholds and
XNOR-popcount between binary layers."""
import numpy as np
import pytest
import torch

from build_flows.frontend.streamline import StructureError, check_binary_structure, streamline
from quant_models import get_model, model_names
from quant_models.export import ExportError, export_qonnx
from helpers import randomise_sd_parameters, run_onnx

HEAVY = {"cnv"}  # the slowest export: a slow test


def _exported(name, tmp_path, **cfg):
    model = randomise_sd_parameters(get_model(name, **cfg))
    onnx_model = export_qonnx(model, tmp_path / f"{name}.onnx")
    return model, onnx_model


def _inputs(model, n=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand((1,) + model.input_shape, generator=gen) for _ in range(n)]


def _assert_integer_outputs_equal(model, got, want):
    """Bipolar-last models output integer accumulators times the output scale:
    both sides must give the same integers."""
    scale = torch.exp(model.output_scale.log_scale).item()
    g, w = got / scale, want / scale
    assert np.allclose(w, np.round(w), atol=1e-3), "reference is not integer accumulators"
    np.testing.assert_array_equal(np.round(g), np.round(w))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in model_names()]
)
def test_qonnx_execution_equals_pytorch(name, tmp_path):
    model, onnx_model = _exported(name, tmp_path)
    ops = {n.op_type for n in onnx_model.graph.node}
    assert "BipolarQuant" in ops and "Quant" in ops
    for x in _inputs(model):
        want = model(x).detach().numpy()
        got = run_onnx(onnx_model, x.numpy())
        if model.config["last_bits"] == 1:
            _assert_integer_outputs_equal(model, got, want)
        else:  # few-bit last layer after real-valued residuals: float output
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["digits_cnv", pytest.param("resnet20", marks=pytest.mark.slow)])
def test_dynamic_asd_exports_and_equals_pytorch(name, tmp_path):
    model, onnx_model = _exported(name, tmp_path, asd="dynamic")
    assert {"Sigmoid", "ReduceMean"} <= {n.op_type for n in onnx_model.graph.node}
    for x in _inputs(model):
        want = model(x).detach().numpy()
        np.testing.assert_allclose(run_onnx(onnx_model, x.numpy()), want, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "name,cfg",
    [
        ("digits_cnv", dict(wsd=True, asd="static")),
        ("digits_cnv", dict(wsd=False, asd="none")),
        ("tfc", dict(wsd=True, asd="static")),
        pytest.param("cnv", dict(wsd=True, asd="static"), marks=pytest.mark.slow),
    ],
)
def test_streamlined_graph_equals_pytorch_and_is_pure_binary(name, cfg, tmp_path):
    model, onnx_model = _exported(name, tmp_path, **cfg)
    finn_model = streamline(onnx_model)
    check_binary_structure(finn_model)
    ops = [n.op_type for n in finn_model.graph.node]
    assert ops.count("XnorPopcountMatMul") == sum(
        isinstance(m, torch.nn.Linear | torch.nn.Conv2d) for m in model.modules()) - 1
    assert not {"BatchNormalization", "Add", "Sigmoid", "Conv", "Gemm"} & set(ops[:-2])
    for x in _inputs(model):
        _assert_integer_outputs_equal(model, run_onnx(finn_model, x.numpy()), model(x).detach().numpy())


def test_structure_check_names_a_leftover_node(tmp_path):
    model, onnx_model = _exported("tfc", tmp_path)
    with pytest.raises(StructureError, match="BatchNormalization"):
        check_binary_structure(onnx_model.transform(_GemmToMatMul()))


def test_export_wrong_input_shape(tmp_path):
    model = get_model("digits_cnv")
    with pytest.raises(ExportError, match=r"does not match the model's input \(1, 8, 8\)"):
        export_qonnx(model, tmp_path / "x.onnx", (1, 3, 8, 8))


class _GemmToMatMul:
    """Stand-in pass for the structure test: renames Gemm nodes to MatMul, so the
    un-streamlined graph has products with BN and quantisers between them."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type == "Gemm":
                node.op_type = "MatMul"
        return model, False
