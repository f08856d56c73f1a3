"""Checkpoints: a round trip rebuilds the model, every failure is a CheckpointError
that names its culprit."""
import pytest
import torch

from quant_models import get_model
from quant_models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = get_model("digits_cnv", asd="static")
    with torch.no_grad():  # make buffers and extra parameters non-trivial
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        net(torch.rand(16, 1, 8, 8))
    return net.eval()


@pytest.fixture
def saved(tmp_path, model):
    path = tmp_path / "ckpt.pt"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    save_checkpoint(path, model, optimizer, scheduler, epoch=2, extra={"metrics": {"test_acc": 0.5}})
    return path


def test_roundtrip_rebuilds_the_same_model(saved, model):
    loaded = load_checkpoint(saved)
    assert not loaded.training
    assert loaded.config == model.config
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
    ckpt = read_checkpoint(saved)
    assert ckpt["epoch"] == 2 and ckpt["extra"]["metrics"]["test_acc"] == 0.5
    assert ckpt["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert ckpt["scheduler"]["T_max"] == 5


@pytest.mark.parametrize("steps", [0, 3])
def test_dynamic_asd_roundtrip_while_brevitas_collects_statistics(tmp_path, steps):
    """Brevitas adds runtime-statistics scales to the state dict only once trained."""
    torch.manual_seed(0)
    net = get_model("digits_cnv", asd="dynamic")
    for _ in range(steps):
        net(torch.rand(16, 1, 8, 8))
    save_checkpoint(tmp_path / "dyn.pt", net)
    stats = read_checkpoint(tmp_path / "dyn.pt")["runtime_stats"]
    assert max(s["counter"] for s in stats.values()) == steps
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(load_checkpoint(tmp_path / "dyn.pt")(x), net.eval()(x))


def test_missing_file_says_how_to_get_one(tmp_path):
    with pytest.raises(CheckpointError, match="python -m quant_models.train") as err:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(tmp_path / "nope.pt") in str(err.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_file(saved, damage):
    data = b"definitely not a torch file" if damage == "garbage" else saved.read_bytes()[:500]
    saved.write_bytes(data)
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint") as err:
        load_checkpoint(saved)
    assert str(saved) in str(err.value)


@pytest.mark.parametrize(
    "content, found",
    [({"weights": torch.zeros(2)}, "None"), ([1, 2], "list"), ({"format": "other"}, "'other'")],
)
def test_not_our_format(tmp_path, content, found):
    path = tmp_path / "foreign.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match="not an SD-BNN checkpoint") as err:
        load_checkpoint(path)
    assert found in str(err.value) and str(path) in str(err.value)


def test_plain_state_dict_is_not_our_format(tmp_path, model):
    path = tmp_path / "sd.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not an SD-BNN checkpoint"):
        load_checkpoint(path)


def _edit(path, change):
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)


def test_unknown_model_in_config(saved):
    _edit(saved, lambda c: c["config"].update(name="no_such_net"))
    with pytest.raises(CheckpointError, match="no_such_net"):
        load_checkpoint(saved)


def test_bad_config_key(saved):
    _edit(saved, lambda c: c["config"].update(width_mult=2))
    with pytest.raises(CheckpointError, match="width_mult"):
        load_checkpoint(saved)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sd: sd.pop("features.0.weight"), r"missing keys \['features.0.weight'\]"),
        (lambda sd: sd.update(extra_tensor=torch.zeros(1)), r"unexpected keys \['extra_tensor'\]"),
        (lambda sd: sd.update({"features.1.bias": torch.zeros(3)}), r"features.1.bias: checkpoint \(3,\)"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_state_dict_mismatch_names_the_key(saved, change, message):
    _edit(saved, lambda c: change(c["state_dict"]))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(saved)


def test_config_that_changes_the_architecture(saved):
    _edit(saved, lambda c: c["config"].update(asd="none"))
    with pytest.raises(CheckpointError, match=r"unexpected keys \[.*beta"):
        load_checkpoint(saved)
