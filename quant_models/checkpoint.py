"""Checkpoints that rebuild their own model.

A checkpoint is a plain dict saved with ``torch.save``::

    {"format": "sdbnn-checkpoint", "version": 1,
     "config": model.config,           # get_model(**config) rebuilds the model
     "state_dict": ..., "optimizer": ..., "scheduler": ...,  # the last two may be None
     "epoch": index of the last completed epoch (or None),
     "runtime_stats": {...},           # Brevitas scales still collecting statistics
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
        "runtime_stats": runtime_stats_state(model),
        "extra": extra or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def _collecting_scales(model: nn.Module):
    """(name, module) of Brevitas scales still initialising from runtime statistics."""
    for name, m in unwrap(model).named_modules():
        if hasattr(m, "collect_stats_steps") and m.counter <= m.collect_stats_steps:
            yield name, m


def runtime_stats_state(model: nn.Module) -> dict:
    """Counter, running buffer and raw value of every still-collecting Brevitas scale.

    Brevitas' state dict drops the counter and buffer (loading it ends the
    collection), so exact resumption needs them separately.
    """
    return {
        name: {"counter": m.counter, "buffer": m.buffer.detach().clone(), "value": m.value.detach().clone()}
        for name, m in _collecting_scales(model)
    }


def restore_runtime_stats(model: nn.Module, stats: dict) -> None:
    """Put back what :func:`runtime_stats_state` saved, after the state dict is loaded."""
    modules = dict(unwrap(model).named_modules())
    with torch.no_grad():
        for name, s in stats.items():
            m = modules[name]
            m.counter = s["counter"]
            m.buffer.copy_(s["buffer"])
            m.value.copy_(s["value"])


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
    load_state_dict_checked(model, ckpt["state_dict"], path)
    return model


def load_state_dict_checked(model: nn.Module, state: dict, path="checkpoint") -> None:
    """Load ``state`` into ``model`` strictly; on any mismatch raise CheckpointError
    naming the first missing, unexpected or mis-shaped tensors.

    Brevitas scales initialised from runtime statistics only enter the state dict
    once training has started, so keys absent from a fresh model's own state dict
    may be present in ``state`` (they are loaded) or absent (they stay fresh).
    """
    name = getattr(model, "config", {}).get("name")
    expected = model.state_dict()
    wrong = [
        f"{k}: checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and tuple(getattr(v, "shape", ())) != tuple(expected[k].shape)
    ]
    missing, unexpected = [], []
    if not wrong:
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # a mis-shaped key that a fresh model does not list
            raise CheckpointError(f"{path}: state dict does not fit model {name!r}: {e}") from e
        missing = [k for k in result.missing_keys if k in expected]
        unexpected = result.unexpected_keys
    problems = [
        f"{what} {keys[:5]}"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", wrong))
        if keys
    ]
    if problems:
        raise CheckpointError(f"{path}: state dict does not fit model {name!r}: " + "; ".join(problems))


def load_checkpoint(path, map_location="cpu") -> nn.Module:
    """The model stored at ``path``, rebuilt with get_model, weights loaded, in eval mode."""
    model = model_from_checkpoint(read_checkpoint(path, map_location), path)
    return model.eval()
