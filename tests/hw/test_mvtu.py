"""hw/mvtu.sv against the NumPy golden model (and the golden model against FINN)."""

import numpy as np
import pytest

from build_flows.ops.mvau import MVTUConfig, RTLParamError
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources, steady_cycles

slow = pytest.mark.slow
CONFIGS = [
    pytest.param(MVTUConfig(16, 8, simd=4, pe=2), id="xnor-16x8-s4p2"),
    pytest.param(MVTUConfig(12, 10, simd=3, pe=5, mode="int_bipolar", in_width=8, n_thres=4),
                 id="u8bip-12x10-s3p5-t4"),
    pytest.param(MVTUConfig(9, 6, simd=1, pe=1), id="xnor-9x6-s1p1"),
    pytest.param(MVTUConfig(32, 12, simd=32, pe=12, n_thres=3), id="xnor-32x12-sMWpMH-t3"),
    pytest.param(MVTUConfig(20, 6, simd=5, pe=3, mode="int_int", in_width=4, in_signed=True,
                            w_width=8, n_thres=0), id="s4w8-20x6-s5p3-noact"),
    pytest.param(MVTUConfig(64, 16, simd=64, pe=4, n_thres=0), id="xnor-64x16-noact"),
    pytest.param(MVTUConfig(8, 8, simd=8, pe=1, mode="int_int", in_width=8, in_signed=True,
                            w_width=2, n_thres=7), id="s8w2-8x8-t7"),
    pytest.param(MVTUConfig(4, 4, simd=2, pe=4, mode="int_bipolar", in_width=32,
                            in_signed=True, n_thres=0), id="s32bip-4x4-noact"),
    pytest.param(MVTUConfig(512, 32, simd=256, pe=16, n_thres=1), id="xnor-512x32-wide",
                 marks=slow),
]
N_VECTORS = 6


def random_problem(cfg: MVTUConfig, rng, n=N_VECTORS):
    """Random inputs, weights and sorted thresholds covering the accumulator range."""
    if cfg.mode == "xnor":
        x = rng.integers(0, 2, (n, cfg.mw))
        w = rng.integers(0, 2, (cfg.mh, cfg.mw))
    else:
        lo = -(1 << (cfg.in_width - 1)) if cfg.in_signed else 0
        x = rng.integers(lo, lo + (1 << cfg.in_width), (n, cfg.mw), dtype=np.int64)
        if cfg.mode == "int_bipolar":
            w = rng.choice([-1, 1], (cfg.mh, cfg.mw))
        else:
            wl = 1 << (cfg.w_width - 1)
            w = rng.integers(-wl, wl, (cfg.mh, cfg.mw))
    acc = cfg.golden(x, w, None) if cfg.n_thres == 0 else None
    t = None
    if cfg.n_thres:
        acc = MVTUConfig(**{**cfg.__dict__, "n_thres": 0}).golden(x, w)
        lo, hi = int(acc.min()) - 2, int(acc.max()) + 2
        t = np.sort(rng.integers(lo, hi + 1, cfg.thres_shape()), axis=-1)
    return x, w, t, acc


@pytest.mark.parametrize("cfg", [pytest.param(*c.values, id=c.id) for c in CONFIGS[:-1]]
                         + [CONFIGS[-1]])
def test_lint(cfg):
    """Every set is linted in the default run except the wide one (16 s of elaboration)."""
    lint("mvtu", sources("mvtu"), cfg.verilog_params())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_mvtu_matches_golden(cfg):
    rng = np.random.default_rng(1)
    x, w, t, _ = random_problem(cfg, rng)
    results = run_patterns("mvtu", cfg.verilog_params(), cfg.pack_input(x), cfg.in_beat_width,
                           cfg.out_beat_width, N_VECTORS * cfg.mh // cfg.pe,
                           mem_files=cfg.mem_files(w, t))
    want = cfg.golden(x, w, t)
    for name, res in results.items():
        np.testing.assert_array_equal(cfg.unpack_output(res.out_words), want, err_msg=name)
    steady = steady_cycles(results["full"], cfg.mw // cfg.simd)
    assert cfg.cycles_per_vector() <= steady <= cfg.cycles_per_vector() + 0.5


def test_python_refuses_bad_params():
    with pytest.raises(RTLParamError, match="PE=3 does not divide MH=16"):
        MVTUConfig(16, 16, simd=4, pe=3).validate()
    with pytest.raises(RTLParamError, match="SIMD=5 does not divide MW=16"):
        MVTUConfig(16, 16, simd=5, pe=4).verilog_params()
    with pytest.raises(RTLParamError, match="MW=0"):
        MVTUConfig(0, 16).validate()
    with pytest.raises(RTLParamError, match="w_width"):
        MVTUConfig(16, 16, mode="int_int", in_width=4, w_width=9).validate()
    with pytest.raises(RTLParamError, match="acc_width"):
        MVTUConfig(64, 16, acc_width=4).validate()
    with pytest.raises(RTLParamError, match="sorted"):
        MVTUConfig(4, 1, n_thres=2).mem_files(np.ones((1, 4)), np.array([[3, 1]]))


@pytest.mark.parametrize("bad, message", [
    ({"PE": 3}, "PE=3 must divide MH=16"),
    ({"SIMD": 5}, "SIMD=5 must divide MW=16"),
    ({"ACC_WIDTH": 2}, "ACC_WIDTH=2 must be in"),
    ({"MODE": 3}, "MODE=3"),
])
def test_verilog_elaboration_errors(bad, message):
    params = {"MW": 16, "MH": 16, "SIMD": 4, "PE": 4, **bad}
    with pytest.raises(SimCompileError, match=message):
        lint("mvtu", sources("mvtu"), params)


def finn_mvau_execute(x, w_onnx, thresholds, no_act):
    """Run x through a one-node FINN MVAU graph (binaryXnorMode) in Python."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw, mh = w_onnx.shape
    inputs = ["inp", "weights"] + ([] if no_act else ["thresh"])
    node = helper.make_node(
        "MVAU", inputs, ["outp"], domain="finn.custom_op.fpgadataflow",
        backend="fpgadataflow", MW=mw, MH=mh, SIMD=mw, PE=mh,
        inputDataType="BINARY", weightDataType="BINARY",
        outputDataType="UINT32" if no_act else "BINARY",
        binaryXnorMode=1, noActivation=int(no_act), ActVal=0, numInputVectors=[1])
    graph = helper.make_graph(
        [node], "mvau", [helper.make_tensor_value_info("inp", TensorProto.FLOAT, [1, mw])],
        [helper.make_tensor_value_info("outp", TensorProto.FLOAT, [1, mh])])
    model = ModelWrapper(helper.make_model(graph))
    model.set_tensor_datatype("inp", DataType["BINARY"])
    model.set_tensor_datatype("weights", DataType["BINARY"])
    model.set_initializer("weights", w_onnx.astype(np.float32))
    if not no_act:
        model.set_initializer("thresh", thresholds.astype(np.float32))
    outs = [execute_onnx(model, {model.graph.input[0].name: v[None].astype(np.float32)})["outp"]
            for v in x]
    return np.concatenate(outs).astype(np.int64)


@pytest.mark.parametrize("no_act", [False, True], ids=["thres", "noact"])
def test_golden_matches_finn_mvau(no_act):
    cfg = MVTUConfig(24, 10, simd=4, pe=2, n_thres=0 if no_act else 1)
    rng = np.random.default_rng(7)
    x, w, _, acc = random_problem(cfg, rng, n=4)
    t = None if no_act else rng.integers(8, 17, (cfg.mh, 1))
    finn = finn_mvau_execute(x, w.T, t, no_act)
    np.testing.assert_array_equal(cfg.golden(x, w, t), finn)


# MEM_STYLE / THRES_MEM_STYLE only choose block RAM or LUTs (synthesis
# attributes); the read is synchronous in every style, so the streams must be
# bit-exact and cycle-identical. The deep set resolves "auto" to block RAM.
MEM_STYLE_SETS = [
    pytest.param(MVTUConfig(16, 8, simd=4, pe=2, n_thres=3), id="xnor-16x8-s4p2-t3"),
    pytest.param(MVTUConfig(64, 64, simd=2, pe=4, n_thres=1), id="xnor-64x64-s2p4-deep",
                 marks=slow),
]


@pytest.mark.parametrize("cfg", MEM_STYLE_SETS)
def test_mem_styles_bit_exact_same_cycles(cfg):
    rng = np.random.default_rng(3)
    x, w, t, _ = random_problem(cfg, rng)
    want = cfg.golden(x, w, t)
    runs = {}
    for style in ("auto", "block", "distributed"):
        c = MVTUConfig(**{**cfg.__dict__, "mem_style": style, "thres_mem_style": style})
        lint("mvtu", sources("mvtu"), c.verilog_params())
        runs[style] = run_patterns("mvtu", c.verilog_params(), c.pack_input(x), c.in_beat_width,
                                   c.out_beat_width, N_VECTORS * c.mh // c.pe,
                                   mem_files=c.mem_files(w, t))
        for name, res in runs[style].items():
            np.testing.assert_array_equal(c.unpack_output(res.out_words), want,
                                          err_msg=f"{style} {name}")
        steady = steady_cycles(runs[style]["full"], c.mw // c.simd)
        assert c.cycles_per_vector() <= steady <= c.cycles_per_vector() + 0.5
    for style in ("block", "distributed"):
        for name, res in runs[style].items():
            ref = runs["auto"][name]
            assert (res.in_cycles, res.out_cycles) == (ref.in_cycles, ref.out_cycles), \
                f"{style} {name}: cycle timing differs from auto"


def test_mem_style_rule_and_validation():
    # auto: block RAM iff depth > 128 and depth * width >= 4096 bits (as hw/mvtu.sv)
    assert MVTUConfig(64, 64, simd=1, pe=1).weight_mem_style() == "block"      # 4096 x 1
    assert MVTUConfig(64, 64, simd=4, pe=4).weight_mem_style() == "block"      # 256 x 16
    assert MVTUConfig(64, 64, simd=16, pe=4).weight_mem_style() == "distributed"  # 64 deep
    assert MVTUConfig(256, 4, simd=1, pe=1).weight_mem_style() == "distributed"  # 1024 bits
    assert MVTUConfig(64, 64, simd=16, pe=4, mem_style="block").weight_mem_style() == "block"
    assert MVTUConfig(64, 64, n_thres=0).thres_mem_style_resolved() is None
    assert MVTUConfig(64, 64).thres_mem_style_resolved() == "distributed"  # 64 x 7
    params = MVTUConfig(16, 16, mem_style="block").verilog_params()
    assert params["MEM_STYLE"] == "block" and params["THRES_MEM_STYLE"] == "auto"
    with pytest.raises(RTLParamError, match="mem_style='bram' must be one of"):
        MVTUConfig(16, 16, mem_style="bram").validate()
    with pytest.raises(RTLParamError, match="thres_mem_style='ultra'"):
        MVTUConfig(16, 16, thres_mem_style="ultra").verilog_params()


@pytest.mark.parametrize("bad, message", [
    ({"MEM_STYLE": "bram"}, 'MEM_STYLE="bram" must be'),
    ({"THRES_MEM_STYLE": "ultra"}, 'THRES_MEM_STYLE="ultra" must be'),
])
def test_verilog_mem_style_errors(bad, message):
    with pytest.raises(SimCompileError, match=message):
        lint("mvtu", sources("mvtu"), {"MW": 16, "MH": 16, "SIMD": 4, "PE": 4, **bad})


# Border classes (a padded binary convolution's threshold sets): each output
# pixel (r, c) of an OH x OW frame uses set row_class[r] * n_cc + col_class[c].
BORDER_SETS = [
    pytest.param(MVTUConfig(18, 8, simd=2, pe=4, row_class=(0, 1, 1, 2), col_class=(0, 1, 2)),
                 id="xnor-18x8-4x3-3x3cls"),
    pytest.param(MVTUConfig(9, 6, simd=9, pe=1, n_thres=2, row_class=(0, 1, 1, 1, 2),
                            col_class=(0, 0)), id="xnor-9x6-5x2-rowsonly-t2"),
    pytest.param(MVTUConfig(8, 4, simd=1, pe=4, row_class=(0,), col_class=(0, 1, 2, 3, 4, 4)),
                 id="xnor-8x4-1x6-colsonly"),
]


@pytest.mark.parametrize("cfg", BORDER_SETS)
def test_border_classes_match_golden(cfg):
    rng = np.random.default_rng(5)
    frames = 2
    n = frames * len(cfg.row_class) * len(cfg.col_class)
    x, w, t, _ = random_problem(cfg, rng, n=n)
    lint("mvtu", sources("mvtu"), cfg.verilog_params())
    want = cfg.golden(x, w, t)
    # the golden model itself: vector v uses its pixel's set
    acc = MVTUConfig(cfg.mw, cfg.mh, n_thres=0).golden(x, w)
    cls = cfg.vector_classes(n)
    hand = np.array([[(acc[v, m] >= t[cls[v], m]).sum() for m in range(cfg.mh)] for v in range(n)])
    np.testing.assert_array_equal(want, hand)
    assert len(set(cls.tolist())) == cfg.n_classes  # every set is used
    results = run_patterns("mvtu", cfg.verilog_params(), cfg.pack_input(x), cfg.in_beat_width,
                           cfg.out_beat_width, n * cfg.mh // cfg.pe, mem_files=cfg.mem_files(w, t))
    for name, res in results.items():
        np.testing.assert_array_equal(cfg.unpack_output(res.out_words), want, err_msg=name)
    steady = steady_cycles(results["full"], cfg.mw // cfg.simd)
    assert cfg.cycles_per_vector() <= steady <= cfg.cycles_per_vector() + 0.5


def test_border_class_validation():
    with pytest.raises(RTLParamError, match="both or neither"):
        MVTUConfig(8, 4, row_class=(0, 1)).validate()
    with pytest.raises(RTLParamError, match="0..n-1"):
        MVTUConfig(8, 4, row_class=(0, 2), col_class=(0,)).validate()
    with pytest.raises(RTLParamError, match="need thresholds"):
        MVTUConfig(8, 4, n_thres=0, row_class=(0, 1), col_class=(0,)).validate()
    with pytest.raises(RTLParamError, match=r"\(classes, MH, n_thres\)=\(2, 4, 1\)"):
        MVTUConfig(8, 4, row_class=(0, 1), col_class=(0,)).hw_thresholds(np.zeros((4, 1)))
    with pytest.raises(SimCompileError, match="border classes need thresholds"):
        lint("mvtu", sources("mvtu"), {"MW": 8, "MH": 4, "SIMD": 8, "PE": 4, "N_THRES": 0,
                                       "OH": 2, "OW": 1, "N_RC": 2, "N_CC": 1})
