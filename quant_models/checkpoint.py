"""Checkpoints that rebuild their own model.

A checkpoint is a plain dict saved with ``torch.save``::

    {"format": "sdbnn-checkpoint", "version": 1,
     "config": model.config,           # get_model(**config) rebuilds the model
     "state_dict": ..., "optimizer": ..., "scheduler": ...,  # the last two may be None
     "epoch": index of the last completed epoch (or None),
     "extra": {...}}                   # e.g. metrics, history, training arguments

It holds only tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(weights_only=True)``: no code is executed on load.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .models import UnknownModelError, get_model

FORMAT = "sdbnn-checkpoint"
VERSION = 1
TRAIN_HINT = "train one with `python -m quant_models.train --model MODEL --dataset DATASET --out DIR`"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit its model."""


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / DataParallel wrapper."""
    return getattr(model, "module", model)


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=None, extra=None) -> None:
    """Write ``model`` (its config and weights) and the training state to ``path``.

    The file is written to a temporary name first and then renamed, so an
    interrupted save never leaves a half-written checkpoint behind.
    """
    model = unwrap(model)
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "config": dict(model.config),
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "extra": extra or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def read_checkpoint(path, map_location="cpu") -> dict:
    """The checkpoint dict stored at ``path``, after checking that it is ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; {TRAIN_HINT}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign files
        # Keep the cause, not torch's advice to retry with weights_only=False.
        detail = (str(e).split("WeightsUnpickler error:")[-1].strip() or type(e).__name__).splitlines()[0]
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (corrupt, truncated, or holding "
            f"more than tensors and plain data): {detail}"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path} is not an SD-BNN checkpoint (format {found!r}, expected {FORMAT!r}); {TRAIN_HINT}"
        )
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')!r}, expected {VERSION}")
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path} has no {key!r} dict")
    return ckpt


def model_from_checkpoint(ckpt: dict, path="checkpoint") -> nn.Module:
    """Rebuild the model of ``ckpt`` with get_model and load its weights strictly."""
    config = dict(ckpt["config"])
    try:
        model = get_model(**config)
    except (UnknownModelError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: cannot rebuild model {config.get('name')!r} from its config: {e}") from e
    check_state_dict(model, ckpt["state_dict"], path)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model


def check_state_dict(model: nn.Module, state: dict, path="checkpoint") -> None:
    """Raise CheckpointError naming the first missing, unexpected or mis-shaped tensors."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:5]}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:5]}")
    if wrong:
        problems.append(f"shape mismatch {wrong[:5]}")
    if problems:
        name = getattr(model, "config", {}).get("name")
        raise CheckpointError(f"{path}: state dict does not fit model {name!r}: " + "; ".join(problems))


def load_checkpoint(path, map_location="cpu") -> nn.Module:
    """The model stored at ``path``, rebuilt with get_model, weights loaded, in eval mode."""
    model = model_from_checkpoint(read_checkpoint(path, map_location), path)
    return model.eval()
