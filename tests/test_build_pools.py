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


@pytest.mark.parametrize("pool", [(3, 2, 0), (2, 1, 0), (3, 2, 1), (3, 3, 1)],
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


@pytest.mark.parametrize("seed", [0, 3, 5, 21])
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
