"""The embedded default checkpoint: loads without flags and reaches >= 90 % on digits."""
from pathlib import Path

from quant_models.checkpoint import load_checkpoint
from quant_models.data import get_loaders
from quant_models.train import evaluate

DEFAULT = Path(__file__).resolve().parents[1] / "quant_models" / "checkpoints" / "digits_cnv.pt"


def test_default_checkpoint_accuracy():
    model = load_checkpoint(DEFAULT)
    assert model.config["name"] == "digits_cnv"
    assert model.config["wsd"] and model.config["asd"] == "static"
    _, test_loader = get_loaders("digits", batch_size=256)
    acc = evaluate(model, test_loader)["acc"]
    assert acc >= 0.90, f"default checkpoint test accuracy {acc:.4f} < 0.90"
