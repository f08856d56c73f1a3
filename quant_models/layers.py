"""SD-BNN building blocks as Brevitas modules.

- EDE binarisation (IR-Net's error decay estimator): forward sign with 0 -> +1,
  backward ``k * t * (1 - tanh(t x)^2)``; (k, t) live in each quantiser and are set
  for a whole model with :func:`set_ede`.
- WSD layers: :class:`WSDQuantConv2d` / :class:`WSDQuantLinear` shift each output
  channel's weights by ``sigmoid(alpha_c) * 0.01 * mean_c(w)`` (mean detached)
  before binarisation.
- ASD: :class:`StaticASD` (``a + sigmoid(beta_c)``) and :class:`DynamicASD`
  (squeeze-and-excitation shift built from Brevitas quant layers).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import brevitas.nn as qnn
from brevitas.core.bit_width import BitWidthConst
from brevitas.core.utils import StatelessBuffer
from brevitas.inject.enum import ScalingImplType
from brevitas.quant import (
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)


class EDESign(torch.autograd.Function):
    """sign(x) with sign(0) = +1; gradient k * t * (1 - tanh(t x)^2)."""

    @staticmethod
    def forward(ctx, x: Tensor, k: Tensor, t: Tensor) -> Tensor:
        ctx.save_for_backward(x, k, t)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, k, t = ctx.saved_tensors
        grad_in = k * t * (1 - torch.tanh(t * x) ** 2) * grad_out
        return grad_in, None, None


def ede_sign(x: Tensor, k: Tensor | float, t: Tensor | float) -> Tensor:
    k = torch.as_tensor(k, dtype=x.dtype, device=x.device)
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return EDESign.apply(x, k, t)


def ede_schedule(epoch: int, epochs: int, t_min: float = 1e-3, t_max: float = 10.0):
    """IR-Net's (k, t) for ``epoch`` of ``epochs`` (0-based), as the method defines it."""
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    lo, hi = math.log10(t_min), math.log10(t_max)
    t = 10 ** (lo + (hi - lo) * epoch / epochs)
    k = max(1.0 / t, 1.0)
    return k, t


class EDEBinaryQuant(nn.Module):
    """Brevitas tensor quantiser: scale * sign(x), EDE backward.

    Returns the (value, scale, zero_point, bit_width) tuple Brevitas expects, so the
    proxy exports it as an ordinary BipolarQuant node.
    """

    def __init__(self, scaling_impl: nn.Module):
        super().__init__()
        self.scaling_impl = scaling_impl
        self.bit_width = BitWidthConst(1)
        self.zero_point = StatelessBuffer(torch.tensor(0.0))
        # Not part of the state dict: the trainer sets them every epoch.
        self.register_buffer("ede_k", torch.tensor(1.0), persistent=False)
        self.register_buffer("ede_t", torch.tensor(1.0), persistent=False)

    def forward(self, x: Tensor):
        scale = self.scaling_impl(x)
        y = EDESign.apply(x, self.ede_k.to(x.dtype), self.ede_t.to(x.dtype)) * scale
        return y, scale, self.zero_point(), self.bit_width()


class BipolarWeightEDE(SignedBinaryWeightPerTensorConst):
    """Bipolar weights {-1, +1} (scale 1), EDE backward."""

    tensor_quant = EDEBinaryQuant
    scaling_const = 1.0


class BipolarActEDE(SignedBinaryActPerTensorConst):
    """Bipolar activations {-1, +1} (scale 1), EDE backward."""

    tensor_quant = EDEBinaryQuant
    scaling_const = 1.0


def set_ede(model: nn.Module, k: float, t: float) -> None:
    """Set the EDE (k, t) of every binary quantiser in ``model``."""
    for m in model.modules():
        if isinstance(m, EDEBinaryQuant):
            m.ede_k.fill_(k)
            m.ede_t.fill_(t)


def int_weight_quant(bits: int):
    """Signed ``bits``-bit per-tensor weights with a float scale (bits == 1: bipolar)."""
    if bits == 1:
        return BipolarWeightEDE
    if not 2 <= bits <= 8:
        raise ValueError(f"weight bits must be 1 (bipolar) or 2..8, got {bits}")
    return Int8WeightPerTensorFloat.let(bit_width=bits)


def input_quant(bits: int):
    """Unsigned ``bits``-bit input pixels in [0, 1]: value = integer / (2**bits - 1)."""
    if not 1 <= bits <= 8:
        raise ValueError(f"input bits must be 1..8, got {bits}")

    class UintInput(Uint8ActPerTensorFloat):
        bit_width = bits
        scaling_impl_type = ScalingImplType.CONST
        scaling_const = 1.0
        max_val = 1.0

    return UintInput


def _wsd_weight(weight: Tensor, alpha: Tensor) -> Tensor:
    """``w + sigmoid(alpha_c) * 0.01 * mean_c(w)``, mean over fan-in, detached."""
    dims = tuple(range(1, weight.dim()))
    mean = weight.detach().mean(dim=dims, keepdim=True)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight + torch.sigmoid(alpha).view(shape) * 0.01 * mean


class _WSDMixin:
    """Adds ``alpha`` and makes ``quant_weight()`` binarise the shifted weights."""

    def _init_wsd(self, enabled: bool) -> None:
        self.wsd = enabled
        if enabled:
            self.alpha = nn.Parameter(torch.zeros(self.weight.shape[0]))

    def shifted_weight(self) -> Tensor:
        return _wsd_weight(self.weight, self.alpha) if self.wsd else self.weight

    def bake_wsd(self) -> None:
        """Replace the weights by their WSD-shifted values and switch the shift off:
        the same binary weights, with no shift subgraph left for export."""
        if self.wsd:
            with torch.no_grad():
                self.weight.copy_(self.shifted_weight())
            self.wsd = False
            del self.alpha

    def quant_weight(self, quant_input=None, subtensor_slice_list=None):
        if subtensor_slice_list is not None:
            raise NotImplementedError("WSD layers do not support sub-tensor slicing")
        w = self.shifted_weight()
        if self.weight_quant.requires_quant_input:
            return self.weight_quant(w, quant_input)
        return self.weight_quant(w)


class WSDQuantConv2d(_WSDMixin, qnn.QuantConv2d):
    """QuantConv2d with WSD (when ``wsd``) and bipolar or few-bit weights."""

    def __init__(self, *args, wsd: bool = True, weight_bits: int = 1, **kwargs):
        kwargs.setdefault("bias", False)
        super().__init__(*args, weight_quant=int_weight_quant(weight_bits), **kwargs)
        self._init_wsd(wsd and weight_bits == 1)


class WSDQuantLinear(_WSDMixin, qnn.QuantLinear):
    """QuantLinear with WSD (when ``wsd``) and bipolar or few-bit weights."""

    def __init__(self, *args, wsd: bool = True, weight_bits: int = 1, **kwargs):
        kwargs.setdefault("bias", False)
        super().__init__(*args, weight_quant=int_weight_quant(weight_bits), **kwargs)
        self._init_wsd(wsd and weight_bits == 1)


def _channel_view(v: Tensor, like: Tensor) -> Tensor:
    return v.view((1, -1) + (1,) * (like.dim() - 2))


class StaticASD(nn.Module):
    """Static activation self-distribution: ``a + sigmoid(beta_c)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, a: Tensor) -> Tensor:
        return a + _channel_view(torch.sigmoid(self.beta), a)


class DynamicASD(nn.Module):
    """Dynamic ASD: ``a + sigmoid(W2 relu(W1 GAP(a)))``, built from quant layers.

    Every step has an integer meaning: the input is quantised to 8 bits, the mean
    over H x W is re-quantised to 8 bits, W1/W2 are 4-bit integers (no bias), the
    ReLU output is 4-bit unsigned and the shift after the sigmoid is quantised to
    ``bits`` bits in steps of 1 / 2**bits, on [0, 1 - 1 / 2**bits]. Steps of a
    power of two keep every shift exact in float32 and put sigmoid(0) = 1/2 on a
    level (8/16) instead of half-way between two (7.5/15): an SE accumulator of
    exactly 0, which a frame whose hidden units are all 0 gives, would otherwise
    round by PyTorch's float noise, and no integer hardware could follow it.
    """

    def __init__(self, channels: int, reduction: int = 16, bits: int = 4, spatial: bool = True):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.in_quant = qnn.QuantIdentity(return_quant_tensor=False)
        # (N, C) inputs of fully connected layers have nothing to pool.
        self.gap_quant = qnn.QuantIdentity(return_quant_tensor=False) if spatial else None
        self.fc1 = qnn.QuantLinear(channels, hidden, bias=False, weight_bit_width=bits)
        self.relu = qnn.QuantReLU(bit_width=bits)
        self.fc2 = qnn.QuantLinear(hidden, channels, bias=False, weight_bit_width=bits)
        self.shift_quant = qnn.QuantIdentity(
            act_quant=_ShiftQuant, bit_width=bits, return_quant_tensor=False,
            scaling_const=1.0 - 2.0 ** -bits, max_val=1.0 - 2.0 ** -bits,
        )

    def forward(self, a: Tensor) -> Tensor:
        q = self.in_quant(a)
        g = q if self.gap_quant is None else self.gap_quant(q.mean(dim=(2, 3)))
        s = self.shift_quant(torch.sigmoid(self.fc2(self.relu(self.fc1(g)))))
        return q + s.view(s.shape + (1,) * (q.dim() - 2))


class _ShiftQuant(Uint8ActPerTensorFloat):
    """Unsigned ``bit_width`` bits with a constant range: Brevitas divides the
    range by 2**bit_width - 1 to get the scale, so DynamicASD passes the range
    1 - 2**-bits for steps of 2**-bits."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0
    max_val = 1.0


class BinaryAct(qnn.QuantIdentity):
    """Bipolar activation (EDE backward); exports to a BipolarQuant node."""

    def __init__(self):
        super().__init__(act_quant=BipolarActEDE, return_quant_tensor=False)


def make_asd(kind: str, channels: int, spatial: bool = True) -> nn.Module:
    """The ASD module for ``kind`` in {"none", "static", "dynamic"}; ``spatial``
    is False for the (N, C) activations of fully connected layers."""
    if kind == "none":
        return nn.Identity()
    if kind == "static":
        return StaticASD(channels)
    if kind == "dynamic":
        return DynamicASD(channels, spatial=spatial)
    raise ValueError(f"asd must be 'none', 'static' or 'dynamic', got {kind!r}")
