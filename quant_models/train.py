"""Train an SD-BNN with the paper's recipe.

    python -m quant_models.train --model digits_cnv --dataset digits --epochs 30 --out runs/x

SGD (momentum 0.9; ``--optimizer adam`` for Adam) with cosine annealing to 0
stepped per epoch, cross-entropy,
and IR-Net's EDE: ``set_ede(model, *ede_schedule(epoch, epochs))`` at the start of
every epoch. Each epoch is evaluated on the test split and logged to
``OUT/log.csv`` and ``OUT/log.json``; ``OUT/last.pt`` is written every epoch and
``OUT/best.pt`` whenever the test accuracy improves.

Resuming (``--resume``) is exact: the checkpoint holds weights, optimizer,
scheduler, epoch and the state of Brevitas scales still collecting statistics,
and all randomness of an epoch (shuffling, augmentation, DataLoader workers) is
seeded from (seed, epoch, rank) instead of carried over, so a resumed run ends
with the same weights as an uninterrupted one (on CPU; GPU kernels may not be
deterministic).

Under ``torchrun`` (RANK / WORLD_SIZE set) it trains with DistributedDataParallel
(gloo on CPU, nccl on CUDA), each rank on its share of the training set; every
rank evaluates the whole test set and only rank 0 writes files.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .checkpoint import (
    CheckpointError,
    load_state_dict_checked,
    read_checkpoint,
    restore_runtime_stats,
    save_checkpoint,
    unwrap,
)
from .data import DATASETS, DatasetError, get_loaders
from .layers import ede_schedule, set_ede
from .models import UnknownModelError, get_model

class TrainConfigError(ValueError):
    """Options that do not fit together (model vs data set, epochs)."""


AMP_MODES = ("none", "bf16", "fp16")


class _MixedPrecision:
    """torch.autocast around the forward pass and, for fp16, a GradScaler around
    the backward pass and the optimiser step; a no-op for ``mode="none"``."""

    def __init__(self, mode: str, device: torch.device):
        if mode not in AMP_MODES:
            raise TrainConfigError(f"--amp {mode!r}: choose one of {', '.join(AMP_MODES)}")
        if mode == "fp16" and device.type != "cuda":
            raise TrainConfigError(f"--amp fp16 needs a CUDA device (this run is on {device.type}); "
                                   "use --amp bf16 on a CPU")
        self.mode, self.device = mode, device
        self.scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None

    def autocast(self):
        if self.mode == "none":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.mode == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def step(self, loss, optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()


LOG_FIELDS = ("epoch", "lr", "k", "t", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")


def parse_args(argv=None) -> argparse.Namespace:
    """The command line options (see ``--help``)."""
    p = argparse.ArgumentParser(prog="python -m quant_models.train", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="registry name, e.g. digits_cnv, cnv, vgg_small, resnet20")
    p.add_argument("--dataset", required=True, choices=DATASETS,
                   help="imagefolder: any train/<class>/, test/<class>/ image tree (--data-dir)")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $SDBNN_DATA/<dataset> or data/<dataset>)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128, help="per process")
    p.add_argument("--lr", type=float, default=0.1, help="initial lr (paper: 0.1; VGG-Small 0.08, ResNet-20 0.11)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (the paper's, with --momentum) or adam (the usual choice for plain BNNs)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default: runs/<model>-<dataset>)")
    p.add_argument("--wsd", action=argparse.BooleanOptionalAction, default=None,
                   help="weight self-distribution (default: the model's)")
    p.add_argument("--asd", choices=("none", "static", "dynamic"), default=None,
                   help="activation self-distribution (default: the model's)")
    p.add_argument("--cfg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model config, VALUE parsed as JSON if possible (repeatable)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                   help="continue from PATH (default: OUT/last.pt)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--amp", choices=AMP_MODES, default="none",
                   help="mixed precision for the training step: bf16 (CPU or CUDA) or fp16 "
                        "(CUDA, with gradient scaling); evaluation stays in float32")
    args = p.parse_args(argv)
    args.cfg = dict(_parse_key_value(kv) for kv in args.cfg)
    return args


def _parse_key_value(text: str):
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--cfg expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv=None) -> dict:
    """Command line entry point; returns the final metrics (see :func:`train`)."""
    return train(**vars(parse_args(argv)))


def train(
    model: str,
    dataset: str,
    data_dir=None,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 0.1,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    seed: int = 0,
    out=None,
    wsd: bool | None = None,
    asd: str | None = None,
    cfg: dict | None = None,
    resume=None,
    workers: int = 0,
    device: str | None = None,
    amp: str = "none",
) -> dict:
    """Train ``model`` on ``dataset`` and return the last epoch's log row plus
    ``best_test_acc``, ``best_epoch`` and ``out``.

    ``cfg`` holds extra get_model arguments; ``wsd`` / ``asd`` override the
    model's defaults when not None. ``resume`` is True (``out/last.pt``), a
    checkpoint path, or None for a fresh run.
    """
    out = Path(out) if out is not None else Path("runs") / f"{model}-{dataset}"
    args = dict(model=model, dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr,
                momentum=momentum, weight_decay=weight_decay, seed=seed)
    if optimizer != "sgd":  # older checkpoints have no key: they are SGD runs
        args["optimizer"] = optimizer
    if amp != "none":
        args["amp"] = amp
    model_cfg = dict(cfg or {})
    model_cfg.update({k: v for k, v in (("wsd", wsd), ("asd", asd)) if v is not None})
    rank, world, device = _init_distributed(device)
    try:
        precision = _MixedPrecision(amp, device)
        torch.manual_seed(seed)
        net = get_model(model, **model_cfg).to(device)
        train_loader, test_loader = get_loaders(
            dataset, data_dir, batch_size, workers, seed=seed, world_size=world, rank=rank,
            pin_memory=device.type == "cuda",
        )
        _check_input_shape(net, train_loader.dataset, dataset)
        optimizer = _optimizer(optimizer, net, lr, momentum, weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
        history, start = [], 0
        if resume:
            path = out / "last.pt" if resume is True else Path(resume)
            history = _resume(path, net, optimizer, scheduler, args)
            start = len(history)
        elif (out / "last.pt").exists():
            raise FileExistsError(f"{out / 'last.pt'} exists: pass --resume to continue it, or another --out")
        if world > 1:
            net = nn.parallel.DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)

        for epoch in range(start, epochs):
            t0 = time.time()
            k, t = ede_schedule(epoch, epochs)
            set_ede(net, k, t)
            torch.manual_seed(_epoch_seed(seed, epoch, rank))
            train_loader.sampler.set_epoch(epoch)
            lr_now = optimizer.param_groups[0]["lr"]
            tr = train_one_epoch(net, train_loader, optimizer, device, desc=f"epoch {epoch}",
                                 show=rank == 0, precision=precision)
            scheduler.step()
            te = evaluate(unwrap(net), test_loader, device)
            row = dict(epoch=epoch, lr=lr_now, k=k, t=t, train_loss=tr["loss"], train_acc=tr["acc"],
                       test_loss=te["loss"], test_acc=te["acc"], seconds=time.time() - t0)
            history.append(row)
            if rank == 0:
                _save_epoch(out, history, net, optimizer, scheduler, args)
        if not history:
            raise TrainConfigError(f"nothing to train: epochs={epochs}")
        best = max(history, key=lambda h: h["test_acc"])
        return {**history[-1], "best_test_acc": best["test_acc"], "best_epoch": best["epoch"], "out": str(out)}
    finally:
        if world > 1:
            dist.destroy_process_group()


def train_one_epoch(net, loader, optimizer, device, desc="train", show=True, precision=None) -> dict:
    """One pass of SGD over ``loader``; mean loss and accuracy over all ranks.
    ``precision`` (a ``_MixedPrecision``) wraps the step; None trains in float32."""
    precision = precision or _MixedPrecision("none", device)
    net.train()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    progress = Progress(desc, len(getattr(loader, "sampler", [])) or None, show)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with precision.autocast():
            logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        precision.step(loss, optimizer)
        correct = (logits.argmax(1) == y).sum()
        totals += torch.stack([loss.detach().double() * len(y), correct.double(), totals.new_tensor(len(y))])
        progress.update(len(y), loss)
    progress.close()
    if dist.is_initialized():
        dist.all_reduce(totals)
    loss_sum, correct, count = totals.tolist()
    return {"loss": loss_sum / count, "acc": correct / count}


class Progress:
    """Images/s and the epoch's ETA: a tqdm bar on a terminal, else one line
    every ``every_s`` seconds (none for an epoch shorter than that)."""

    def __init__(self, desc: str, total: int | None, show: bool = True, every_s: float = 30.0):
        self.desc, self.total, self.every_s = desc, total, every_s
        self.done, self.t0 = 0, time.time()
        self.last = self.t0
        self.bar = None
        self.show = show
        if show and sys.stderr.isatty():
            self.bar = tqdm(total=total, desc=desc, unit="img", unit_scale=True, leave=False)

    def update(self, n: int, loss) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        elif self.show and time.time() - self.last >= self.every_s:
            self.last = time.time()
            rate = self.done / (self.last - self.t0)
            left = f", ETA {(self.total - self.done) / rate / 60:.1f} min" if self.total else ""
            share = f"{self.done}/{self.total}" if self.total else str(self.done)
            print(f"{self.desc}: {share} images, {rate:.0f} img/s{left}, loss {loss.item():.3f}",
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@torch.no_grad()
def evaluate(model: nn.Module, loader, device=None) -> dict:
    """Mean cross-entropy ``loss`` and accuracy ``acc`` of ``model`` on ``loader``.

    Runs in eval mode on ``device`` (default: the model's), then restores the
    model's previous train/eval mode.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    model.train(was_training)
    return {"loss": loss_sum / count, "acc": correct / count}


def _init_distributed(device: str | None):
    """(rank, world_size, device); joins the process group when run by torchrun."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if world == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A seed for all randomness of one epoch on one rank."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def _check_input_shape(net, dataset, name: str) -> None:
    have, want = tuple(dataset.sample_shape), tuple(net.input_shape)
    if have != want and not (len(want) == 1 and math.prod(have) == want[0]):
        raise TrainConfigError(
            f"model {net.config['name']!r} takes inputs {want} but dataset {name!r} gives {have}; "
            f"pick a matching model or set its in_channels / image_size with --cfg"
        )
    classes = getattr(dataset, "num_classes", net.config["num_classes"])
    if classes != net.config["num_classes"]:
        raise TrainConfigError(
            f"dataset {name!r} has {classes} classes but model {net.config['name']!r} has "
            f"{net.config['num_classes']} outputs; pass --cfg num_classes={classes}"
        )


def _resume(path: Path, net, optimizer, scheduler, args: dict) -> list:
    """Load the training state of ``path`` into net/optimizer/scheduler; its log history."""
    ckpt = read_checkpoint(path)
    saved_config = {**net.config, **_defaults_of(net.config["name"]), **ckpt["config"]}
    if saved_config != net.config:  # keys newer than the checkpoint take their defaults
        diff = {k: (saved_config.get(k), v) for k, v in net.config.items() if saved_config.get(k) != v}
        raise CheckpointError(f"{path} holds a different model: (checkpoint, now) = {diff}")
    saved = ckpt["extra"].get("args", {})
    for key in ("dataset", "epochs", "optimizer"):
        default = "sgd" if key == "optimizer" else None  # runs before --optimizer were SGD runs
        was, now = saved.get(key, default), args.get(key, default)
        if was != now:
            raise CheckpointError(f"{path} was trained with {key}={was!r}, now {now!r}")
    if ckpt["optimizer"] is None or ckpt["scheduler"] is None:
        raise CheckpointError(f"{path} has no optimizer/scheduler state to resume from")
    load_state_dict_checked(net, ckpt["state_dict"], path)
    restore_runtime_stats(net, ckpt.get("runtime_stats", {}))
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    return list(ckpt["extra"]["history"])


def _optimizer(name: str, net, lr: float, momentum: float, weight_decay: float):
    if name == "adam":
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def _defaults_of(name: str) -> dict:
    """The config a model of registry ``name`` has with no overrides."""
    return get_model(name).config


def _save_epoch(out: Path, history: list, net, optimizer, scheduler, args: dict) -> None:
    """Write the logs and last.pt, and best.pt if this epoch beat all earlier ones."""
    row = history[-1]
    _write_logs(out, history)
    extra = dict(args=args, history=history, metrics=row)
    save_checkpoint(out / "last.pt", net, optimizer, scheduler, row["epoch"], extra)
    if all(row["test_acc"] > h["test_acc"] for h in history[:-1]):
        save_checkpoint(out / "best.pt", net, optimizer, scheduler, row["epoch"], extra)
    print(_format_row(row), flush=True)


def _write_logs(out: Path, history: list) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "log.json").write_text(json.dumps(history, indent=1) + "\n")
    with open(out / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(history)


def _format_row(row: dict) -> str:
    return (f"epoch {row['epoch']}: lr {row['lr']:.4g} t {row['t']:.3g} "
            f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
            f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.4f} | {row['seconds']:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except (DatasetError, CheckpointError, UnknownModelError, FileExistsError, TrainConfigError) as e:
        sys.exit(f"error: {e}")  # a user's mistake: the message, not a traceback
