"""Training on the embedded digits: it learns, logs, checkpoints, sets EDE per
epoch, resumes exactly, and runs distributed under torchrun."""
import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import quant_models.train as train_mod
from quant_models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from quant_models.data import get_loaders
from quant_models.layers import EDEBinaryQuant, ede_schedule

EPOCHS = 3
REPO = Path(__file__).resolve().parents[1]


def cli(out, *extra, epochs=EPOCHS):
    """Command line of a small digits run into ``out``."""
    return ["--model", "digits_cnv", "--dataset", "digits", "--epochs", str(epochs), "--batch-size", "32",
            "--lr", "0.05", "--seed", "1", "--out", str(out), *extra]
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One uninterrupted run: (out folder, returned metrics)."""
    out = tmp_path_factory.mktemp("run")
    return out, train_mod.main(cli(out))


def test_short_training_learns_and_writes_logs_and_checkpoints(run):
    out, metrics = run
    assert metrics["epoch"] == EPOCHS - 1 and metrics["test_acc"] > 0.5  # chance: 0.1
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    rows = list(csv.DictReader(open(out / "log.csv")))
    log = json.loads((out / "log.json").read_text())
    assert [int(r["epoch"]) for r in rows] == [h["epoch"] for h in log] == list(range(EPOCHS))
    assert set(rows[0]) == set(train_mod.LOG_FIELDS)
    assert log[-1]["test_acc"] == metrics["test_acc"]
    assert [h["lr"] for h in log][0] == 0.05 and log[1]["lr"] < 0.05  # cosine annealing
    best = read_checkpoint(out / "best.pt")
    assert best["extra"]["metrics"]["test_acc"] == metrics["best_test_acc"]
    assert best["epoch"] == metrics["best_epoch"]


def test_loaded_checkpoint_gives_the_logged_accuracy(run):
    out, metrics = run
    _, test_loader = get_loaders("digits", batch_size=32)
    for name, acc in (("last.pt", metrics["test_acc"]), ("best.pt", metrics["best_test_acc"])):
        model = load_checkpoint(out / name)
        assert train_mod.evaluate(model, test_loader)["acc"] == acc


def _ede_t(model):
    """The set of EDE t values in the model's binary quantisers (float32 buffers)."""
    return {m.ede_t.item() for m in model.modules() if isinstance(m, EDEBinaryQuant)}


def test_ede_is_set_every_epoch(run, tmp_path, monkeypatch):
    seen = []
    evaluate = train_mod.evaluate

    def recording_evaluate(model, loader, device=None):
        seen.append(_ede_t(model))
        return evaluate(model, loader, device)

    monkeypatch.setattr(train_mod, "evaluate", recording_evaluate)
    train_mod.main(cli(tmp_path))
    expected = [{torch.tensor(ede_schedule(e, EPOCHS)[1]).item()} for e in range(EPOCHS)]
    assert seen == expected
    log = json.loads((tmp_path / "log.json").read_text())
    assert [(h["k"], h["t"]) for h in log] == [ede_schedule(e, EPOCHS) for e in range(EPOCHS)]


@pytest.mark.parametrize("asd", ["static", "dynamic"])  # dynamic: Brevitas stats still collecting
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, monkeypatch, asd):
    full_out, part_out = tmp_path / "full", tmp_path / "part"
    metrics = train_mod.main(cli(full_out, "--asd", asd, epochs=2))
    calls = []
    evaluate = train_mod.evaluate

    def interrupting_evaluate(model, loader, device=None):
        calls.append(1)
        if len(calls) == 2:  # during epoch 1, after its training steps, before saving
            raise KeyboardInterrupt
        return evaluate(model, loader, device)

    monkeypatch.setattr(train_mod, "evaluate", interrupting_evaluate)
    with pytest.raises(KeyboardInterrupt):
        train_mod.main(cli(part_out, "--asd", asd, epochs=2))
    assert read_checkpoint(part_out / "last.pt")["epoch"] == 0
    monkeypatch.setattr(train_mod, "evaluate", evaluate)
    resumed = train_mod.main(cli(part_out, "--asd", asd, "--resume", epochs=2))

    full, part = read_checkpoint(full_out / "last.pt"), read_checkpoint(part_out / "last.pt")
    assert full["state_dict"].keys() == part["state_dict"].keys()
    for key, value in full["state_dict"].items():
        assert torch.equal(value, part["state_dict"][key]), key
    drop = lambda h: {k: v for k, v in h.items() if k not in ("seconds", "out")}  # noqa: E731
    assert [drop(h) for h in json.loads((part_out / "log.json").read_text())] == [
        drop(h) for h in json.loads((full_out / "log.json").read_text())
    ]
    assert drop(resumed) == drop(metrics)


def test_resume_refuses_a_different_run(run, tmp_path):
    out, _ = run
    with pytest.raises(CheckpointError, match="epochs=3"):
        train_mod.main(cli(out, "--resume", epochs=5))
    with pytest.raises(CheckpointError, match="asd"):
        train_mod.main(cli(tmp_path, "--asd", "none", "--resume", str(out / "last.pt")))
    with pytest.raises(FileExistsError, match="--resume"):
        train_mod.main(cli(out))


def test_resume_of_a_checkpoint_older_than_a_config_key(run, tmp_path):
    """A checkpoint written before a config key existed (here: width) resumes:
    the missing key takes its default."""
    import shutil
    out, _ = run
    old = tmp_path / "old"
    shutil.copytree(out, old)
    ckpt = torch.load(old / "last.pt", weights_only=False)
    del ckpt["config"]["width"]
    ckpt["extra"]["args"]["epochs"] = EPOCHS + 1
    torch.save(ckpt, old / "last.pt")
    metrics = train_mod.main(cli(old, "--resume", epochs=EPOCHS + 1))
    assert metrics["epoch"] == EPOCHS


def test_adam_runs_and_a_resume_must_keep_the_optimizer(tmp_path):
    metrics = train_mod.main(cli(tmp_path, "--optimizer", "adam", "--lr", "0.005", epochs=1))
    assert metrics["train_acc"] > 0.3  # one epoch of Adam on digits learns
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert ckpt["extra"]["args"]["optimizer"] == "adam"
    assert "exp_avg" in str(ckpt["optimizer"]["state"][0].keys())
    with pytest.raises(CheckpointError, match="optimizer='adam', now 'sgd'"):
        train_mod.main(cli(tmp_path, "--resume", epochs=1))


def test_dataset_classes_must_match_the_model(tmp_path):
    import numpy as np
    from PIL import Image
    for split in ("train", "test"):
        for c in ("a", "b", "c"):
            (tmp_path / "d" / split / c).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "d" / split / c / "0.png")
    with pytest.raises(ValueError, match=r"3 classes but model 'digits_cnv' has 10 outputs; pass --cfg num_classes=3"):
        train_mod.train(model="digits_cnv", dataset="imagefolder", data_dir=tmp_path / "d", epochs=1,
                        out=tmp_path / "o")


def test_model_and_dataset_shapes_must_match(tmp_path):
    with pytest.raises(ValueError, match=r"takes inputs \(1, 28, 28\) .* gives \(1, 8, 8\)"):
        train_mod.train(model="tfc", dataset="digits", epochs=1, out=tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_two_processes(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(_free_port()), "-m", "quant_models.train",
           *cli(tmp_path, "--device", "cpu", epochs=2)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 1:") == 1  # only rank 0 reports
    log = json.loads((tmp_path / "log.json").read_text())
    assert [h["epoch"] for h in log] == [0, 1]
    model = load_checkpoint(tmp_path / "last.pt")
    _, test_loader = get_loaders("digits", batch_size=32)
    assert train_mod.evaluate(model, test_loader)["acc"] == log[-1]["test_acc"]


def test_bf16_mixed_precision_runs_the_forward_in_bf16_and_learns(tmp_path):
    """--amp bf16 on a CPU: convolutions compute in bfloat16 under autocast, the
    weights stay float32, and one epoch still learns."""
    from quant_models.models import get_model
    torch.manual_seed(0)
    net = get_model("digits_cnv")
    seen = []
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    loader, _ = get_loaders("digits", batch_size=32)
    loader.sampler.set_epoch(0)
    opt = torch.optim.Adam(net.parameters(), lr=0.005)
    precision = train_mod._MixedPrecision("bf16", torch.device("cpu"))
    tr = train_mod.train_one_epoch(net, loader, opt, torch.device("cpu"), show=False, precision=precision)
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert tr["acc"] > 0.3 and tr["loss"] == tr["loss"]  # chance 0.1; not NaN
    metrics = train_mod.main(cli(tmp_path, "--amp", "bf16", "--optimizer", "adam", "--lr", "0.005", epochs=1))
    assert read_checkpoint(tmp_path / "last.pt")["extra"]["args"]["amp"] == "bf16"
    assert metrics["test_acc"] > 0.3


def test_fp16_without_cuda_is_a_named_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "quant_models.train",
                        *cli(tmp_path, "--amp", "fp16", "--device", "cpu", epochs=1)],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --amp fp16 needs a CUDA device") and "--amp bf16" in last
    assert "Traceback" not in r.stderr
