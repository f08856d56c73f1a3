"""Shared test helpers."""
from pathlib import Path

import numpy as np
import torch

from qonnx.core.onnx_exec import execute_onnx


def randomise_sd_parameters(model, seed=0, calibration_batches=2):
    """Give alpha/beta/BN non-trivial values (as after training) and eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.copy_(torch.randn(p.shape, generator=gen) * 2)
            elif name.endswith("log_scale"):
                p.fill_(-1.5)
        model.train()
        for _ in range(calibration_batches):
            model(torch.rand((8,) + tuple(model.input_shape), generator=gen))
    return model.eval()


def run_onnx(model, x: np.ndarray) -> np.ndarray:
    """Execute a (Q)ONNX ModelWrapper on one input batch (fed by its real input name)."""
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    return execute_onnx(model, {inp: x.astype(np.float32)})[out]


def reduced_cnv_onnx(path: Path, seed: int = 0) -> Path:
    """CNV's structure (3x3 valid convs, 2x2 max-pools, two hidden FC layers,
    SD-BNN BN + static ASD + sign) with 1/8 of its channels, as QONNX. The
    registry's cnv has no channel option and needs image_size 32, so the
    reduced model is built from the same builder and exported directly."""
    import torch
    from quant_models.export import export_qonnx
    from quant_models.models import ModelConfig, _conv_net
    torch.manual_seed(seed)
    model = _conv_net("cnv_reduced", ModelConfig(), [8, 8, "P", 16, 16, "P", 32, 32], [64, 64])
    randomise_sd_parameters(model, seed=seed)
    export_qonnx(model, path)
    return path


def assert_ii_at_analytic(sim: dict) -> None:
    """The measured II against the analytic bottleneck: equal when the slowest
    layer is one of our modules (exact cycle models); when it is a FINN-generated
    one (whose cycles are FINN's estimate, an upper bound), at most that estimate
    and at least the slowest of our modules."""
    ii, expected, b = sim["cycles_per_frame"], sim["expected_cycles_per_frame"], sim["bottleneck"]
    if b["exact"]:
        assert ii == expected, (ii, expected, b)
    else:
        assert b["ours_cycles"] <= ii <= expected, (ii, expected, b)
