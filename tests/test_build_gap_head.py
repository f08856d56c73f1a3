"""Global average pooling end to end (ResNet-style heads): PyTorch's
AdaptiveAvgPool2d(1) exports as ReduceMean over H, W; the flow makes it
FINN's GlobalAccPool (hw/global_acc_pool.sv, a sum of the sign bits) and
folds 1/(H*W) and the bipolar correction into the next layer's thresholds
(frontend/global_pool.py). Verified as every build is: every beat of every
link = the HW graph, the last layer's integers = the QONNX model's, random
stalls on every stream."""

import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from build_flows.config import BuildConfig
from build_flows.errors import SimulationMismatchError, UnsupportedLayerError
from build_flows.flow import run_build

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz_networks as fuzz  # noqa: E402


def gap_net(path, convs, fcs, seed=1, h=8, w=7, first_bits=1):
    from quant_models.export import export_qonnx
    spec = fuzz.NetSpec(seed=seed, in_channels=2, height=h, width=w, in_bits=8, first_bits=first_bits,
                        convs=list(convs), fcs=list(fcs), classes=5, gap=True)
    export_qonnx(fuzz.torch_model(spec), path)
    return path


def test_gap_head_builds_and_verifies(tmp_path):
    """conv (padded) -> conv -> GAP over 6x5 pixels -> FC + BN + sign -> FC."""
    onnx = gap_net(tmp_path / "g.onnx", [fuzz.ConvSpec(7, 3, 1, 1, True, None),
                                         fuzz.ConvSpec(5, 3, 0, 1, True, None)], [6])
    state = run_build(BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=6,
                                  target_fps=100_000, out=tmp_path / "b", yosys=False))
    sim = state.sim
    assert sim["mismatches"] == 0 and sim["differences"] == []
    assert sim["checked"]["accumulators"] == "the QONNX execution's logits"
    layers = state.graph.layers()
    ops = [st.op for st in layers]
    assert ops.count("GlobalAccPool") == 1
    pool = layers[ops.index("GlobalAccPool")]
    assert pool.params["PIXELS"] == 30 and pool.params["IN_W"] == 1 and pool.params["ACC_W"] == 5
    # the slowest stage is FINN's window, whose analytic count is an upper bound
    assert 518 <= sim["cycles_per_frame"] <= sim["expected_cycles_per_frame"] == 525
    assert sim["mismatches_back_pressure"] == 0


def test_pool_then_gap_into_the_last_layer(tmp_path):
    """A max-pool, then GAP straight into the classifier (its integer input
    is the sum), with 4-bit first-layer weights, at a random folding."""
    net = fuzz.NetSpec(seed=4, in_channels=1, height=9, width=10, in_bits=6, first_bits=4,
                       convs=[fuzz.ConvSpec(6, 3, 0, 1, True, (2, 2, 0)),
                              fuzz.ConvSpec(9, 2, 1, 1, True, None)], fcs=[], classes=7, gap=True)
    rec = fuzz.run_one(net, tmp_path / "net")
    assert rec["outcome"] == "ok", rec.get("error")
    assert rec["cycles"] <= rec["expected"]


def test_gap_into_the_classifier_leaves_a_host_tail(tmp_path):
    """GAP straight into the last FC: the bipolar correction (-1 per value)
    becomes a per-class bias after it, so the class is the host's argmax of
    a * integer + b; the accelerator streams the integers, every one compared
    with the model's."""
    import json
    onnx = gap_net(tmp_path / "g.onnx", [fuzz.ConvSpec(4, 3, 0, 1, True, None)], [], h=6, w=5)
    state = run_build(BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=8,
                                  out=tmp_path / "b", yosys=False))
    assert state.host_tail
    ops = [st.op for st in state.graph.layers()]
    assert "LabelSelect" not in ops and ops[-1] == "MVAU"
    assert state.sim["mismatches"] == 0 and state.sim["differences"] == []
    a, b = (np.ravel(v) for v in state.output_affine)
    assert len(set(np.round(b, 6))) > 1  # a per-class bias: the integers' argmax is not the class
    tail = json.loads((tmp_path / "b" / "report.json").read_text())["host_tail"]
    assert len(tail["b"]) == 5 and tail["computes"].startswith("logits = a * integer + b")
    # the classes the build compared are the host's, from the model's integers
    from build_flows.frontend.convert import host_classes
    np.testing.assert_array_equal(state.ref_classes, np.argmax(a * state.ref_acc + b, axis=1))
    np.testing.assert_array_equal(state.ref_classes, host_classes(state.ref_acc, state.output_affine))
    np.testing.assert_array_equal(state.ref_classes, np.argmax(state.ref_logits, axis=1))  # the model's
    # the deploy driver through the simulated DMA: every integer, and the host's class from
    # io.json's affine (a design without LabelSelect streams kind "integers")
    from build_flows.deploy.board.driver import Accelerator
    io_spec = json.loads((tmp_path / "b" / "deploy" / "io.json").read_text())
    assert io_spec["output"]["kind"] == "integers" and len(io_spec["output"]["affine"]["b"]) == 5
    classes, outputs = Accelerator(tmp_path / "b" / "deploy", transport="sim", stall_prob=0.3).execute(
        np.asarray(state.pixels, np.uint8), scores=True)
    np.testing.assert_array_equal(outputs, np.asarray(state.ref_acc).reshape(len(outputs), -1))
    np.testing.assert_array_equal(classes, state.ref_classes)


def test_a_wrong_pool_length_is_caught(tmp_path, monkeypatch):
    """The check can fail: a pool that sums one pixel too few per frame."""
    from build_flows.ops import global_acc_pool as gap
    orig = gap.GlobalAccPoolConfig.verilog_params

    def short(self):
        params = orig(self)
        return {**params, "PIXELS": params["PIXELS"] - 1}

    monkeypatch.setattr(gap.GlobalAccPoolConfig, "verilog_params", short)
    onnx = gap_net(tmp_path / "g.onnx", [fuzz.ConvSpec(4, 3, 0, 1, True, None)], [], h=6, w=5)
    with pytest.raises(SimulationMismatchError):
        run_build(BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=3,
                              out=tmp_path / "b", yosys=False))


def _mean_model(axes, keepdims):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model
    out_shape = [1, 3, 1, 1] if keepdims else [1, 3]
    if axes != [2, 3]:
        out_shape = [1, 1, 4, 5] if keepdims else [1, 4, 5]
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=keepdims, name="ReduceMean_0")
    graph = helper.make_graph([node], "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [helper.make_tensor("axes", TensorProto.INT64, [len(axes)], axes)])
    return ModelWrapper(qonnx_make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


@pytest.mark.parametrize("axes, keepdims", [([2, 3], 1), ([2, 3], 0), ([-1, -2], 0)])
def test_a_mean_over_h_and_w_becomes_a_global_pool(axes, keepdims):
    from qonnx.core.onnx_exec import execute_onnx
    from build_flows.frontend.global_pool import ReduceMeanToGlobalAveragePool
    model = _mean_model(axes, keepdims)
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 5)).astype(np.float32)
    new = model.transform(ReduceMeanToGlobalAveragePool())
    assert [n.op_type for n in new.graph.node] == ["GlobalAveragePool"] + ["Reshape"] * (1 - keepdims)
    got = execute_onnx(new, {"x": x})["y"]
    np.testing.assert_allclose(got.reshape(-1), x.mean(axis=(2, 3)).reshape(-1), rtol=1e-6)


def test_a_mean_over_channels_is_refused_by_name():
    from build_flows.frontend.support import check_supported
    with pytest.raises(UnsupportedLayerError, match=r"layer ReduceMean_0 \(ReduceMean\) has no streaming "
                                                    r"hardware here: a mean over axes other than H and W"):
        check_supported(_mean_model([1], 1))
