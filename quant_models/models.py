"""SD-BNN models, all reached through :func:`get_model`.

Every model takes float pixels in [0, 1] (N, C, H, W), quantises them to
``in_bits`` unsigned integers, and returns logits (N, num_classes). Hidden layers
have bipolar weights (with WSD when ``wsd``) and bipolar activations (with a static
or dynamic ASD shift before the sign when ``asd`` is not "none"); the first and
last layers have ``first_bits`` / ``last_bits`` weights (1 = bipolar).

``model.config`` holds the resolved configuration and ``get_model(**model.config)``
rebuilds the same architecture; ``model.input_shape`` is the (C, H, W) of one input.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

import brevitas.nn as qnn

from .layers import BinaryAct, WSDQuantConv2d, WSDQuantLinear, input_quant, make_asd


class UnknownModelError(ValueError):
    """A model name that the registry does not know."""


@dataclass
class ModelConfig:
    wsd: bool = True  # weight self-distribution on bipolar-weight layers
    asd: str = "static"  # activation self-distribution: "none", "static", "dynamic"
    num_classes: int = 10
    in_channels: int = 3
    in_bits: int = 8  # unsigned input pixel bits
    first_bits: int = 1  # first layer's weight bits (1 = bipolar)
    last_bits: int = 1  # last layer's weight bits (1 = bipolar)
    image_size: int = 32  # input height = width
    width: float = 1.0  # channel multiplier of every hidden layer (0.25: a quarter-width network)


class BinaryActivation(nn.Sequential):
    """Optional ASD shift, then the bipolar sign."""

    def __init__(self, channels: int, asd: str, spatial: bool = True):
        super().__init__(make_asd(asd, channels, spatial), BinaryAct())


class OutputScale(nn.Module):
    """Multiplies the last layer's integer accumulators by one learnable positive
    scalar: it sets the softmax temperature for training and leaves argmax alone."""

    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(-2.0))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.exp(self.log_scale)


class SDBNN(nn.Module):
    """Input quantiser -> features -> flatten -> classifier -> output scale."""

    def __init__(self, name: str, cfg: ModelConfig, features: nn.Module, classifier: nn.Module):
        super().__init__()
        self.config = {"name": name, **asdict(cfg)}
        self.input_shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
        self.input_quant = qnn.QuantIdentity(act_quant=input_quant(cfg.in_bits), return_quant_tensor=False)
        self.features = features
        self.classifier = classifier
        self.output_scale = OutputScale()

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(self.input_quant(x))
        return self.output_scale(self.classifier(torch.flatten(x, 1)))


def _conv_net(name, cfg, convs, fcs, padding=0, pool_first=False):
    """A plain convolutional BNN: ``convs`` lists output channels or "P" (2x2
    max-pool); ``fcs`` the hidden widths. Each layer: conv/linear, BN, activation;
    with ``pool_first`` (VGG-Small's order) a pool comes between conv and BN."""
    layers, ch, size, first = [], cfg.in_channels, cfg.image_size, True
    specs = [s if s == "P" else _scaled(s, cfg) for s in convs]
    fcs = [_scaled(h, cfg) for h in fcs]
    i = 0
    while i < len(specs):
        out = specs[i]
        conv = WSDQuantConv2d(ch, out, 3, padding=padding, wsd=cfg.wsd,
                              weight_bits=cfg.first_bits if first else 1)
        layers.append(conv)
        size = size - 2 + 2 * padding
        pooled = i + 1 < len(specs) and specs[i + 1] == "P"
        if pooled and pool_first:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.BatchNorm2d(out), BinaryActivation(out, cfg.asd)]
        if pooled and not pool_first:
            layers.append(nn.MaxPool2d(2))
        if pooled:
            size //= 2
            i += 1
        ch, first, i = out, False, i + 1
    if size < 1:
        raise ValueError(f"{name}: image_size {cfg.image_size} is too small for its convolutions")
    classifier, width = [], ch * size * size
    for h in fcs:
        classifier += [WSDQuantLinear(width, h, wsd=cfg.wsd), nn.BatchNorm1d(h), BinaryActivation(h, cfg.asd, spatial=False)]
        width = h
    classifier.append(WSDQuantLinear(width, cfg.num_classes, wsd=cfg.wsd, weight_bits=cfg.last_bits))
    return SDBNN(name, cfg, nn.Sequential(*layers), nn.Sequential(*classifier))


def _scaled(channels: int, cfg: ModelConfig) -> int:
    return max(1, int(round(channels * cfg.width)))


def _mlp(name, cfg, hidden, layers=3):
    """A binary MLP with ``layers`` hidden layers of ``hidden`` units."""
    hidden = _scaled(hidden, cfg)
    body, width = [], cfg.in_channels * cfg.image_size * cfg.image_size
    for i in range(layers):
        bits = cfg.first_bits if i == 0 else 1
        body += [WSDQuantLinear(width, hidden, wsd=cfg.wsd, weight_bits=bits), nn.BatchNorm1d(hidden),
                 BinaryActivation(hidden, cfg.asd, spatial=False)]
        width = hidden
    body.append(WSDQuantLinear(width, cfg.num_classes, wsd=cfg.wsd, weight_bits=cfg.last_bits))
    return SDBNN(name, cfg, nn.Identity(), nn.Sequential(*body))


class BasicBlock(nn.Module):
    """SD-BNN ResNet basic block: binary convs with real BN and a real shortcut
    (option A: stride-2 subsampling and zero-padded channels)."""

    def __init__(self, cin: int, cout: int, stride: int, cfg: ModelConfig):
        super().__init__()
        self.act1 = BinaryActivation(cin, cfg.asd)
        self.conv1 = WSDQuantConv2d(cin, cout, 3, stride=stride, padding=1, wsd=cfg.wsd)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act2 = BinaryActivation(cout, cfg.asd)
        self.conv2 = WSDQuantConv2d(cout, cout, 3, padding=1, wsd=cfg.wsd)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = nn.functional.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        y = nn.functional.hardtanh(self.bn1(self.conv1(self.act1(x))))
        y = self.bn2(self.conv2(self.act2(y)))
        return nn.functional.hardtanh(y + self.shortcut(x))


def _resnet20(name, cfg):
    if cfg.width != 1.0:
        raise ValueError(f"{name}: width {cfg.width} is not supported (ResNet-20 keeps 16/32/64 channels)")
    stem = [WSDQuantConv2d(cfg.in_channels, 16, 3, padding=1, wsd=cfg.wsd, weight_bits=cfg.first_bits),
            nn.BatchNorm2d(16), nn.Hardtanh()]
    blocks, cin = [], 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for b in range(3):
            blocks.append(BasicBlock(cin, cout, stride if b == 0 else 1, cfg))
            cin = cout
    features = nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1))
    head = WSDQuantLinear(64, cfg.num_classes, wsd=cfg.wsd, weight_bits=cfg.last_bits)
    return SDBNN(name, cfg, features, nn.Sequential(head))


# name -> (builder, defaults that differ from ModelConfig's)
_REGISTRY = {
    "digits_cnv": (lambda n, c: _conv_net(n, c, [32, 32, "P"], [64]),
                   dict(in_channels=1, image_size=8)),
    "cnv": (lambda n, c: _conv_net(n, c, [64, 64, "P", 128, 128, "P", 256, 256], [512, 512]), {}),
    "tfc": (lambda n, c: _mlp(n, c, 64), dict(in_channels=1, image_size=28)),
    "sfc": (lambda n, c: _mlp(n, c, 256), dict(in_channels=1, image_size=28)),
    "lfc": (lambda n, c: _mlp(n, c, 1024), dict(in_channels=1, image_size=28)),
    "vgg_small": (lambda n, c: _conv_net(n, c, [128, 128, "P", 256, 256, "P", 512, 512, "P"], [],
                                         padding=1, pool_first=True),
                  dict(first_bits=8, last_bits=8)),
    "resnet20": (_resnet20, dict(first_bits=8, last_bits=8)),
}


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def get_model(name: str, **cfg) -> SDBNN:
    """Build the registry model ``name``; ``cfg`` overrides ModelConfig fields."""
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(model_names())}")
    builder, defaults = _REGISTRY[name]
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"{name}: unknown config key(s) {unknown}; known: {sorted(known)}")
    config = ModelConfig(**{**defaults, **cfg})
    if not (isinstance(config.width, (int, float)) and 0 < config.width <= 16):
        raise ValueError(f"width must be a number in (0, 16], got {config.width!r}")
    if config.asd not in ("none", "static", "dynamic"):
        raise ValueError(f"asd must be 'none', 'static' or 'dynamic', got {config.asd!r}")
    return builder(name, config)
