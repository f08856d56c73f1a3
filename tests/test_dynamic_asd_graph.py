"""FuseDynamicASD (frontend/dynamic_asd.py): every dynamic-ASD block of a
streamlined graph becomes one DynamicASD node whose integer tables give
exactly the signs the float graph gives, and the whole streamlined graph
still equals PyTorch; blocks the unit cannot hold are refused by name."""
import copy

import numpy as np
import pytest
import torch
from onnx import helper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.double_to_single_float import DoubleToSingleFloat

from build_flows.frontend.dynamic_asd import (FuseDynamicASD, FuseError, Pattern, execute_tables,
                                              has_dynamic_asd)
from build_flows.ops.dynamic_asd import dynamic_asd_config
from build_flows.frontend.streamline import STREAMLINE_PASSES, tidy_up
from helpers import randomise_sd_parameters
from quant_models import get_model
from quant_models.export import export_qonnx

# (model, config, frames): a conv model (GAP -> MLP) and an FC one (no GAP)
CASES = [("digits_cnv", {}, 16), ("tfc", {}, 8)]


def _model(name, seed=0, **cfg):
    torch.manual_seed(seed)
    return randomise_sd_parameters(get_model(name, asd="dynamic", **cfg), seed=seed)


def _before_fuse(onnx_model):
    """The streamline passes up to (not including) FuseDynamicASD."""
    model = tidy_up(onnx_model.transform(DoubleToSingleFloat()))
    for cls, _why in STREAMLINE_PASSES:
        if cls is FuseDynamicASD:
            return model
        model = tidy_up(model.transform(cls()))
    raise AssertionError("FuseDynamicASD is not a streamline pass")


def _patterns(model):
    """Every dynamic-ASD block, found from its sign."""
    out = []
    for node in model.graph.node:
        if node.op_type == "MultiThreshold":
            try:
                out.append(Pattern(model, node))
            except LookupError:
                pass
    return out


def _counts(model, node, v):
    """A MultiThreshold's output values -> its threshold counts."""
    inst = getCustomOp(node)
    return np.rint((v - inst.get_nodeattr("out_bias")) / inst.get_nodeattr("out_scale")).reshape(1, -1)


def _intermediates(model, pat, ctx):
    """The float graph's g (the mean's counts; None for FC), h and s of one block."""
    g = None if pat.b is None else _counts(model, pat.b, ctx[pat.b.output[0]])
    return g, _counts(model, pat.c, ctx[pat.c.output[0]]), _counts(model, pat.d, ctx[pat.d.output[0]])


def _run(model, x):
    return execute_onnx(model, {model.graph.input[0].name: x}, return_full_exec_context=True)


def _inputs(model, n, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n,) + tuple(model.input_shape), generator=gen)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{name: (seeded torch model, its graph streamlined up to the fusion)}, made once."""
    cache = {}

    def get(name, cfg):
        if name not in cache:
            torch_model = _model(name, **cfg)
            path = tmp_path_factory.mktemp(name) / "m.onnx"
            cache[name] = (torch_model, _before_fuse(export_qonnx(torch_model, path)))
        return cache[name][0], copy.deepcopy(cache[name][1])
    return get


@pytest.mark.parametrize("name, cfg, frames", CASES)
def test_fused_signs_equal_the_float_graph_and_pytorch(exported, name, cfg, frames):
    torch_model, pre = exported(name, cfg)
    pats = _patterns(pre)
    n_blocks = sum(1 for n in pre.graph.node if n.op_type == "Sigmoid")
    assert n_blocks >= 2 and len(pats) == n_blocks
    fused = pre.transform(FuseDynamicASD())
    units = {n.input[0]: n for n in fused.graph.node if n.op_type == "DynamicASD"}
    assert len(units) == n_blocks and has_dynamic_asd(fused)
    assert not any(n.op_type in ("Sigmoid", "GlobalAveragePool") for n in fused.graph.node)
    for node in units.values():  # the unit reads the 8-bit activation's unsigned counts
        assert fused.get_tensor_datatype(node.input[0]).name == "UINT8"
        assert getCustomOp(fused.find_producer(node.input[0])).get_nodeattr("out_bias") == 0.0
    x = _inputs(torch_model, frames)
    scale = torch.exp(torch_model.output_scale.log_scale).item()
    varied = {"g": set(), "h": set(), "s": set()}
    for i in range(frames):  # the graph executes one frame at a time
        xi = x[i:i + 1].numpy()
        want, got = _run(pre, xi), _run(fused, xi)
        for pat in pats:
            sign = pat.sign.output[0]
            w = want[sign]
            assert set(np.unique(w)) <= {0.0, 1.0}
            np.testing.assert_array_equal(got[sign], w, err_msg=f"frame {i}, sign {sign}")
            # every intermediate of the unit's integer maths against the float graph's
            node = units[pat.a.output[0]]
            inst = getCustomOp(node)
            counts = got[node.input[0]].reshape(1, -1, inst.get_nodeattr("NumChannels"))
            st = dynamic_asd_config(node).stages(counts)
            g, h, s = _intermediates(pre, pat, want)
            for key, mine, theirs in (("g", st["g"], g), ("h", st["h"], h), ("s", st["s"], s)):
                if theirs is not None:
                    np.testing.assert_array_equal(mine, theirs, err_msg=f"frame {i}, {sign}: {key}")
                    varied[key].add(tuple(theirs.reshape(-1)))
        logits = torch_model(x[i:i + 1]).detach().numpy()  # last layer: integers times the scale
        assert np.allclose(logits / scale, np.round(logits / scale), atol=1e-3)
        np.testing.assert_array_equal(np.round(got[fused.graph.output[0].name] / scale),
                                      np.round(logits / scale))
    # the frames exercise the tables: the shifts differ between frames
    assert len(varied["s"]) > 1 and len(varied["h"]) > 1


def test_execute_tables_by_hand():
    """Two channels, two pixels, one hidden unit: the maths worked out by hand."""
    t = {"gt": np.array([2, 5]), "w1": np.array([[1, -1]]), "ht": np.array([[0, 1]]),
         "w2": np.array([[1], [-1]]), "st": np.array([1]), "rt": np.array([[3, 1], [2, 0]])}
    x = np.array([[[1, 0], [4, 2]]])  # sums (5, 2) -> g (2, 1) -> acc1 1 -> h 2
    # acc2 = (2, -2) -> s = (1, 0) -> thresholds (rt[0][1], rt[1][0]) = (1, 2)
    np.testing.assert_array_equal(execute_tables(t, x), [[[1, 0], [1, 1]]])


def test_a_tensor_inside_the_block_that_feeds_elsewhere_is_refused(exported):
    _, model = exported("digits_cnv", {})
    sig = next(n for n in model.graph.node if n.op_type == "Sigmoid")
    # a second consumer of the sigmoid's output: the unit cannot expose it
    model.graph.node.append(helper.make_node("Identity", [sig.output[0]], ["extra"], name="Tap"))
    with pytest.raises(FuseError, match=r"inside its dynamic-ASD block feeds another layer"):
        model.transform(FuseDynamicASD())


def test_non_integer_se_weights_are_refused(exported):
    _, model = exported("digits_cnv", {})
    sig = next(n for n in model.graph.node if n.op_type == "Sigmoid")
    mm = model.find_producer(sig.input[0])
    if mm.op_type == "Mul":  # the sigmoid's input scale
        mm = model.find_producer(mm.input[0])
    assert mm.op_type == "MatMul"
    w = model.get_initializer(mm.input[1]).copy()
    w.flat[0] += 0.5
    model.set_initializer(mm.input[1], w)
    with pytest.raises(FuseError, match=rf"layer {mm.name}: the SE weights are not small integers"):
        model.transform(FuseDynamicASD())
