"""Max-pools of any kernel, stride and padding end to end (FINN's depthwise
window + hw/window_or.sv), and a sample of the random-network fuzzer: each
network builds at a random folding and verifies (every beat of every link =
the HW graph, the last layer's integers = the QONNX model's, random stalls),
or is refused by name."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz_networks as fuzz  # noqa: E402

slow = pytest.mark.slow


def spec(convs, fcs=(8,), c=2, h=9, w=8, seed=0, first_bits=1):
    return fuzz.NetSpec(seed=seed, in_channels=c, height=h, width=w, in_bits=8,
                        first_bits=first_bits, convs=list(convs), fcs=list(fcs), classes=5)


@pytest.mark.parametrize("pool", [(3, 2, 0), (2, 1, 0), (3, 2, 1), pytest.param((3, 3, 1), marks=slow)],
                         ids=["3x3s2", "2x2s1", "3x3s2p1", "3x3s3p1"])
def test_pools_build_and_verify(tmp_path, pool):
    net = spec([fuzz.ConvSpec(7, 3, 1, 1, True, pool), fuzz.ConvSpec(5, 2, 0, 1, True, None)])
    rec = fuzz.run_one(net, tmp_path / "net")
    assert rec["outcome"] == "ok", rec.get("error")
    assert rec["cycles"] <= rec["expected"]


def test_stride_larger_than_kernel_is_refused_by_name(tmp_path):
    net = spec([fuzz.ConvSpec(7, 3, 1, 1, True, (2, 3, 0)), fuzz.ConvSpec(5, 2, 0, 1, True, None)])
    rec = fuzz.run_one(net, tmp_path / "net")
    assert rec["outcome"] == "refused"
    assert rec["error"].startswith("unsupported layer MaxPoolNHWC_0 (MaxPoolNHWC): a max-pool FINN")
    assert "use a stride <= kernel" in rec["error"]


# 3 and 21 are slow tests (make test-all): each build is a minute of the suite
@pytest.mark.parametrize("seed", [0, pytest.param(3, marks=slow), 5, pytest.param(21, marks=slow)])
def test_fuzz_sample(tmp_path, seed):
    """Seeds that found bugs: 3 (a stride beyond a 1x1 map, a 1x1 window over
    a 1x1 map), 5 (the link recorder stopped before a pool's dropped row had
    streamed), 21 (FINN's window generator fails on a 1x1 conv with one output
    pixel: now a named refusal); 0 draws padded and strided convs without BN."""
    rec = fuzz.run_one(fuzz.draw(seed), tmp_path / "net")
    assert rec["outcome"] in ("ok", "refused"), rec.get("error")
    if rec["outcome"] == "refused":
        assert rec["error"] and "Traceback" not in rec["error"]


@slow
def test_fuzz_run(tmp_path):
    records = [fuzz.run_one(fuzz.draw(s), tmp_path / f"n{s}") for s in range(100, 112)]
    bugs = [r for r in records if r["outcome"] == "bug"]
    assert not bugs, bugs


def test_reduced_vgg_small_builds_and_verifies(tmp_path):
    """The registry's vgg_small (1/8 width, 16x16, W1A1 last layer): padded
    binary convs and its conv -> pool -> BN -> sign order, where the XNOR
    affine and the thresholds move past the pools (frontend/streamline.py)."""
    import torch
    from build_flows.config import BuildConfig
    from build_flows.flow import run_build
    from helpers import randomise_sd_parameters
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    torch.manual_seed(0)
    model = randomise_sd_parameters(get_model("vgg_small", width=0.125, last_bits=1, image_size=16))
    save_checkpoint(tmp_path / "v.pt", model)
    state = run_build(BuildConfig(board="pynq-z2", checkpoint=tmp_path / "v.pt", dataset="random",
                                  verify_images=2, out=tmp_path / "b", yosys=False,
                                  target_fps=20_000))
    assert state.sim["mismatches"] == 0 and state.sim["differences"] == []
    ops = [st.op for st in state.graph.layers()]
    assert ops.count("FMPadding") == 6 and ops.count("MaxPool") == 3
    assert state.sim["cycles_per_frame"] <= state.sim["expected_cycles_per_frame"]


@slow
def test_full_vgg_small_builds_on_zcu104_and_verifies(tmp_path):
    """The paper's full-size VGG-Small (128-128-P-256-256-P-512-512-P, 32x32,
    W1A1 last layer), at the fastest folding that fits zcu104 (its BRAM36 need
    is over pynq-z2's 140 at every folding: README, benchmarks/
    vgg_small_resources.py). About 4 minutes."""
    import torch
    from build_flows.config import BuildConfig
    from build_flows.flow import run_build
    from helpers import randomise_sd_parameters
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "v.pt", randomise_sd_parameters(get_model("vgg_small", last_bits=1)))
    state = run_build(BuildConfig(board="zcu104", checkpoint=tmp_path / "v.pt", dataset="random",
                                  verify_images=3, out=tmp_path / "b", yosys=False))
    assert state.sim["mismatches"] == 0 and state.sim["differences"] == []
    assert state.sim["cycles_per_frame"] == state.sim["expected_cycles_per_frame"]
    mvaus = [st for st in state.graph.layers() if st.op == "MVAU"]
    assert [st.params["MH"] for st in mvaus] == [128, 128, 256, 256, 512, 512, 10]


def test_negative_bn_scale_after_a_pool_is_refused_in_words(tmp_path):
    """conv -> pool -> BN with a negative scale: max and a negative scale do
    not commute, so the build names the BN, the pool and the channel."""
    import torch
    from build_flows.config import BuildConfig
    from build_flows.errors import NonBinaryActivationError
    from build_flows.flow import run_build
    from helpers import randomise_sd_parameters
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    torch.manual_seed(0)
    model = randomise_sd_parameters(get_model("vgg_small", width=0.125, last_bits=1, image_size=16))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        bns[1].weight[3] = -1.0  # the BN after the first pool, channel 3
    save_checkpoint(tmp_path / "v.pt", model)
    cfg = BuildConfig(board="pynq-z2", checkpoint=tmp_path / "v.pt", dataset="random",
                      verify_images=2, out=tmp_path / "b", yosys=False)
    with pytest.raises(NonBinaryActivationError,
                       match=r"a BatchNorm with a negative scale after the max-pool MaxPoolNHWC_0 "
                             r"\(conv -> pool -> BN order\), in channel\(s\) \[3\]"):
        run_build(cfg, to_step="streamline")
