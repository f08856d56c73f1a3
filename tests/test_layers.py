"""SD-BNN layers against hand computations (numbers worked out in the comments)."""
import math

import pytest
import torch

from quant_models.layers import (
    BinaryAct,
    DynamicASD,
    StaticASD,
    WSDQuantConv2d,
    WSDQuantLinear,
    ede_schedule,
    ede_sign,
    make_asd,
    set_ede,
)


def test_sign_maps_zero_to_plus_one():
    x = torch.tensor([-2.0, -1e-7, 0.0, 1e-7, 3.0])
    assert ede_sign(x, 1.0, 1.0).tolist() == [-1, -1, 1, 1, 1]
    assert BinaryAct()(x.view(1, -1)).view(-1).tolist() == [-1, -1, 1, 1, 1]


def test_ede_backward_matches_hand_values():
    # k = 1.5, t = 2: grad = 1.5 * 2 * (1 - tanh(2 x)^2)
    # x = 0.5 -> 3 * (1 - tanh(1)^2) = 3 * (1 - 0.761594^2) = 1.259870
    # x = 0   -> 3
    # x = -2  -> 3 * (1 - tanh(-4)^2) = 3 * 0.00134095 = 0.00402285
    x = torch.tensor([0.5, 0.0, -2.0], requires_grad=True)
    ede_sign(x, 1.5, 2.0).backward(torch.tensor([1.0, 1.0, 2.0]))
    assert x.grad.tolist() == pytest.approx([1.259870, 3.0, 2 * 0.00402285], rel=1e-4)


def test_ede_schedule_endpoints_and_middle():
    # t = 10^(-3 + 4 e / E), k = max(1/t, 1)
    assert ede_schedule(0, 10) == pytest.approx((1000.0, 1e-3))
    assert ede_schedule(5, 10) == pytest.approx((10.0, 0.1))
    assert ede_schedule(10, 10) == pytest.approx((1.0, 10.0))
    k, t = ede_schedule(3, 4)  # t = 10^(-3 + 3) = 1 -> k = 1
    assert (k, t) == pytest.approx((1.0, 1.0))
    with pytest.raises(ValueError, match="epochs"):
        ede_schedule(0, 0)


def test_set_ede_reaches_weight_and_activation_quantisers():
    layer = torch.nn.Sequential(WSDQuantLinear(3, 2), BinaryAct())
    set_ede(layer, 4.0, 0.25)
    x = torch.zeros(1, 3, requires_grad=True)
    act = layer[1]
    y = act(x)
    y.sum().backward()
    # at x = 0: k * t * (1 - 0) = 4 * 0.25 = 1
    assert x.grad.tolist() == [[1.0, 1.0, 1.0]]


def test_wsd_flips_a_small_negative_weight():
    # row [-1e-5, 0.3, 0.3]: mean = 0.19999667, alpha = 0 -> sigmoid = 0.5,
    # shift = 0.5 * 0.01 * 0.19999667 = 0.00099998, so -1e-5 + shift > 0 -> +1.
    # Row [1e-5, -0.3, -0.3] mirrors it: 1e-5 - 0.00099998 < 0 -> -1.
    w = torch.tensor([[-1e-5, 0.3, 0.3], [1e-5, -0.3, -0.3]])
    on, off = WSDQuantLinear(3, 2, wsd=True), WSDQuantLinear(3, 2, wsd=False)
    for layer in (on, off):
        with torch.no_grad():
            layer.weight.copy_(w)
    assert on.quant_weight().value.tolist() == [[1, 1, 1], [-1, -1, -1]]
    assert off.quant_weight().value.tolist() == [[-1, 1, 1], [1, -1, -1]]
    assert not hasattr(off, "alpha") and on.alpha.shape == (2,)


def test_wsd_alpha_scales_the_shift_and_mean_is_detached():
    # alpha = ln(3) -> sigmoid = 0.75; w = [[0.2, 0.4]]: mean 0.3,
    # shifted = w + 0.75 * 0.01 * 0.3 = w + 0.00225.
    layer = WSDQuantLinear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.2, 0.4]]))
        layer.alpha.fill_(math.log(3.0))
    shifted = layer.shifted_weight()
    assert shifted.tolist()[0] == pytest.approx([0.20225, 0.40225])
    shifted.sum().backward()
    # mean detached: d(sum)/dw = 1 for each weight (not 1 + 0.75 * 0.01 / 2)
    assert layer.weight.grad.tolist() == [[1.0, 1.0]]
    # d(sum)/d(alpha) = 2 * sigmoid'(alpha) * 0.01 * 0.3 = 2 * 0.1875 * 0.003 = 0.001125
    assert layer.alpha.grad.item() == pytest.approx(0.001125)


def test_wsd_conv_has_per_output_channel_alpha_and_few_bit_layers_have_none():
    conv = WSDQuantConv2d(3, 5, 3)
    assert conv.alpha.shape == (5,)
    assert not hasattr(WSDQuantConv2d(3, 5, 3, weight_bits=4), "alpha")


def test_static_asd_shift_and_sign():
    # beta = [0, ln 3] -> shifts [0.5, 0.75]
    asd = StaticASD(2)
    with torch.no_grad():
        asd.beta.copy_(torch.tensor([0.0, math.log(3.0)]))
    a = torch.tensor([[-0.3, -0.7], [-0.6, -0.8]]).view(2, 2, 1, 1)
    shifted = asd(a).view(2, 2)
    assert shifted.tolist()[0] == pytest.approx([0.2, 0.05], abs=1e-6)
    assert shifted.tolist()[1] == pytest.approx([-0.1, -0.05], abs=1e-6)
    assert BinaryAct()(asd(a)).view(2, 2).tolist() == [[1, 1], [-1, -1]]


def test_dynamic_asd_shift_is_quantised_in_unit_interval_and_input_dependent():
    torch.manual_seed(0)
    asd = DynamicASD(32).eval()
    # per-channel means of several sizes (means near 0 leave every hidden unit at 0)
    a = torch.randn(4, 32, 5, 5) * torch.arange(1, 5).view(4, 1, 1, 1) + torch.randn(4, 32, 1, 1) * 3
    q = asd.in_quant(a)
    shift = asd(a) - q  # per sample and channel, constant over H and W
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift))
    s = shift[:, :, 0, 0]
    assert s.min() >= 0 and s.max() <= 15 / 16
    steps = s * 16  # 4-bit shift: integer multiples of 1/16, exact in float32
    assert torch.equal(steps, steps.round())
    # sigmoid(0) = 1/2 is a level: an SE accumulator of 0 (all hidden units 0) gives 8/16
    assert asd.shift_quant(torch.full((1, 2), 0.5)).tolist() == [[0.5, 0.5]]
    assert not torch.equal(s[0], s[3])
    assert asd.fc1.out_features == 2  # reduction 16


def test_make_asd_refuses_unknown_kind():
    with pytest.raises(ValueError, match="asd must be"):
        make_asd("sometimes", 4)


def test_dynamic_asd_on_fc_activations_is_per_sample_without_pooling():
    torch.manual_seed(0)
    asd = DynamicASD(32, spatial=False).eval()
    assert asd.gap_quant is None
    a = torch.randn(3, 32) * torch.tensor([[1.0], [2.0], [3.0]])
    shift = asd(a) - asd.in_quant(a)
    assert shift.shape == (3, 32) and not torch.equal(shift[0], shift[2])
