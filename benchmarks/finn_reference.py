"""FINN's own W1A1 reference topologies (brevitas_examples.bnn_pynq: CNV-W1A1,
TFC-W1A1, SFC-W1A1, LFC-W1A1, untrained unless a state dict is given) exported to QONNX
for `build_flows/build.py --onnx`.

    python benchmarks/finn_reference.py cnv /tmp/cnv_1w1a.onnx
    python build_flows/build.py --board pynq-z2 --onnx /tmp/cnv_1w1a.onnx --dataset random \
        --target-fps 3050 --verify-images 3

Input pre-processing: FINN's models take float pixels in [0, 1]; CNV computes
2x - 1 inside its forward() and quantises that to 8-bit signed Q1.7, the FC
models quantise x directly. The export keeps these operations, so the file
takes [0, 1] pixels like our own models, and the build puts its usual 1/255
scale in front (the accelerator takes UINT8 pixels k = 255 x). For CNV the
8-bit requantiser of 2k/255 - 1 is not the identity on k, so the build moves it
to the host as a 256-entry table per channel (build_flows/frontend/pixels.py,
split_host_table) and the first layer takes INT8 values.
Untrained models get random BatchNorm statistics so that their thresholds are
not all alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = {"cnv": ("cnv_1w1a", (1, 3, 32, 32)), "tfc": ("tfc_1w1a", (1, 1, 28, 28)),
          "sfc": ("sfc_1w1a", (1, 1, 28, 28)), "lfc": ("lfc_1w1a", (1, 1, 28, 28))}


def finn_model(name: str, seed: int = 0, state_dict: str | None = None) -> torch.nn.Module:
    from brevitas_examples.bnn_pynq import models
    arch, _ = MODELS[name]
    torch.manual_seed(seed)
    model = getattr(models, arch)(pretrained=False)
    if state_dict:
        model.load_state_dict(torch.load(state_dict, map_location="cpu"))
    else:  # random BN statistics and affine parameters, as after training
        gen = torch.Generator().manual_seed(seed)
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 4)
                m.running_var.copy_(torch.rand(n, generator=gen) * 20 + 1)
                m.weight.data.copy_(torch.randn(n, generator=gen))
                m.bias.data.copy_(torch.randn(n, generator=gen))
    return model.eval()


def export_finn_reference(name: str, path, seed: int = 0, state_dict: str | None = None) -> Path:
    """QONNX file of FINN's `name` (cnv, tfc, lfc) W1A1 model at path."""
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model
    _, shape = MODELS[name]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = finn_model(name, seed, state_dict)
    with torch.no_grad():
        export_qonnx(model, torch.rand(shape), str(path))
    cleanup_model(ModelWrapper(str(path))).save(str(path))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in MODELS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(MODELS)}}} OUT.onnx")
    print(export_finn_reference(sys.argv[1], sys.argv[2]))
