"""Shared test helpers."""
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
