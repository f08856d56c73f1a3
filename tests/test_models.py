import pytest
import torch

import quant_models
from quant_models import UnknownModelError, get_model, model_names
from quant_models.layers import DynamicASD, StaticASD

FINN_TOPOLOGIES = {"cnv", "tfc", "sfc", "lfc"}


def test_registry_names():
    assert {"cnv", "tfc", "sfc", "lfc", "vgg_small", "resnet20", "digits_cnv"} <= set(model_names())


def test_unknown_model_name_lists_known_names():
    with pytest.raises(UnknownModelError, match="unknown model 'cvn'.*digits_cnv"):
        get_model("cvn")


def test_unknown_config_key_is_refused():
    with pytest.raises(ValueError, match="unknown config key.*'wds'"):
        get_model("tfc", wds=True)


@pytest.mark.parametrize("name", sorted(set(model_names()) - {"lfc", "vgg_small"}))
@pytest.mark.parametrize("asd", ["none", "static", "dynamic"])
def test_forward_shape_and_sd_parts(name, asd):
    model = get_model(name, asd=asd, wsd=asd != "none").eval()
    y = model(torch.rand((3,) + model.input_shape))
    assert y.shape == (3, 10)
    mods = list(model.modules())
    assert any(isinstance(m, StaticASD) for m in mods) == (asd == "static")
    assert any(isinstance(m, DynamicASD) for m in mods) == (asd == "dynamic")
    has_alpha = any(n.endswith("alpha") for n, _ in model.named_parameters())
    assert has_alpha == (asd != "none")


def test_plain_bnn_has_no_sd_parameters_and_same_topology():
    plain = get_model("cnv", wsd=False, asd="none")
    sd = get_model("cnv", wsd=True, asd="static")
    extra = {n for n, _ in sd.named_parameters()} - {n for n, _ in plain.named_parameters()}
    assert extra and all(n.endswith(("alpha", "beta")) for n in extra)
    shapes = lambda m: [tuple(p.shape) for n, p in m.named_parameters() if not n.endswith(("alpha", "beta"))]
    assert shapes(plain) == shapes(sd)


def test_config_round_trip_rebuilds_the_same_architecture():
    model = get_model("digits_cnv", asd="dynamic", first_bits=4)
    again = get_model(**model.config)
    assert again.config == model.config
    assert [tuple(p.shape) for p in again.parameters()] == [tuple(p.shape) for p in model.parameters()]
    assert model.config["in_bits"] == 8 and model.input_shape == (1, 8, 8)


def test_cnv_matches_finn_topology():
    model = get_model("cnv")
    convs = [m.out_channels for m in model.features if isinstance(m, torch.nn.Conv2d)]
    fcs = [m.out_features for m in model.classifier if isinstance(m, torch.nn.Linear)]
    assert convs == [64, 64, 128, 128, 256, 256] and fcs == [512, 512, 10]
    assert all(m.padding == (0, 0) and m.kernel_size == (3, 3) for m in model.features
               if isinstance(m, torch.nn.Conv2d))


def test_width_multiplier_scales_hidden_layers_only():
    model = get_model("cnv", width=0.25)
    convs = [m.out_channels for m in model.features if isinstance(m, torch.nn.Conv2d)]
    fcs = [m.out_features for m in model.classifier if isinstance(m, torch.nn.Linear)]
    assert convs == [16, 16, 32, 32, 64, 64] and fcs == [128, 128, 10]
    assert get_model(**model.config).config == model.config
    assert [m.out_features for m in get_model("tfc", width=2).classifier
            if isinstance(m, torch.nn.Linear)] == [128] * 3 + [10]
    with pytest.raises(ValueError, match="width must be a number"):
        get_model("cnv", width=0)
    with pytest.raises(ValueError, match="width 0.5 is not supported"):
        get_model("resnet20", width=0.5)


def test_mlp_widths():
    for name, width in (("tfc", 64), ("sfc", 256), ("lfc", 1024)):
        fcs = [m.out_features for m in get_model(name).classifier if isinstance(m, torch.nn.Linear)]
        assert fcs == [width] * 3 + [10]


def test_first_and_last_layer_bits_are_configurable():
    model = get_model("tfc", first_bits=4, last_bits=2)
    linears = [m for m in model.classifier if isinstance(m, torch.nn.Linear)]
    assert linears[0].quant_weight().bit_width.item() == 4
    assert linears[-1].quant_weight().bit_width.item() == 2
    assert linears[1].quant_weight().bit_width.item() == 1
    with pytest.raises(ValueError, match="weight bits"):
        get_model("tfc", first_bits=12)


def test_package_exports():
    assert quant_models.get_model is get_model
