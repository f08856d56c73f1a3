"""The shipped CIFAR-10 checkpoint (quant_models/checkpoints/cnv_cifar10.pt):
it loads without flags, its log and accuracy agree with a fresh evaluation, and
it builds for pynq-z2 and verifies on real CIFAR-10 test images (slow)."""
import csv
import json
from pathlib import Path

import pytest
import torch

from quant_models.checkpoint import load_checkpoint, read_checkpoint
from quant_models.data import load_dataset
from quant_models.train import evaluate

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "quant_models" / "checkpoints" / "cnv_cifar10.pt"
SAMPLE = REPO / "quant_models" / "samples" / "cifar10"
SHARED = REPO.parent / "shared" / "data"


def _loader(ds, batch=128):
    return [ds[list(range(i, min(len(ds), i + batch)))] for i in range(0, len(ds), batch)]


def test_checkpoint_is_the_logged_sd_cnv_and_learned():
    model = load_checkpoint(CKPT)
    assert model.config["name"] == "cnv" and model.config["wsd"] and model.config["asd"] == "static"
    extra = read_checkpoint(CKPT)["extra"]
    rows = list(csv.DictReader(open(CKPT.with_suffix(".log.csv"))))
    assert [float(r["test_acc"]) for r in rows] == pytest.approx([h["test_acc"] for h in extra["history"]])
    assert extra["args"]["dataset"] == "cifar10"
    sample = load_dataset("cifar10", SAMPLE, train=False)
    acc = evaluate(model, _loader(sample))["acc"]
    assert acc >= 0.4, f"{acc:.3f} on the 200-image sample: the checkpoint has not learned (chance: 0.1)"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "cifar10-jpeg-test.tar.gz").is_file(), reason="CIFAR-10 copy absent")
def test_logged_test_accuracy_is_reproduced_on_the_10000_images():
    torch.set_num_threads(2)
    model = load_checkpoint(CKPT)
    acc = evaluate(model, _loader(load_dataset("cifar10", SHARED, train=False)))["acc"]
    assert acc == read_checkpoint(CKPT)["extra"]["metrics"]["test_acc"]


@pytest.mark.slow
def test_cifar10_checkpoint_builds_and_verifies_on_the_sample(tmp_path):
    from build_flows.config import BuildConfig
    from build_flows.flow import run_build
    cfg = BuildConfig(board="pynq-z2", checkpoint=CKPT, dataset="cifar10", data_dir=SAMPLE,
                      target_fps=3050, verify_images=6, accuracy_images=-1, out=tmp_path / "b",
                      yosys=False)
    state = run_build(cfg)
    assert state.sim["mismatches"] == 0 and state.sim["differences"] == []
    assert state.sim["cycles_per_frame"] == state.sim["expected_cycles_per_frame"]
    acc = json.loads((tmp_path / "b" / "accuracy.json").read_text())
    assert acc["images"] == 200 and acc["differing_images"] == 0
