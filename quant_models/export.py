"""QONNX export of SD-BNN models.

``export_qonnx(model, path, input_shape)`` writes a QONNX file in which every
quantiser is a standard ``Quant`` / ``BipolarQuant`` node; the WSD shift is a
constant subgraph on the weights that QONNX's cleanup folds, so the file holds the
plain (already shifted) weights in front of BipolarQuant: the export works on a
copy whose WSD shift is baked into the weights.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch import nn

from brevitas.export import export_qonnx as _brevitas_export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from .layers import _WSDMixin


class ExportError(ValueError):
    """A model or input shape that cannot be exported."""


def export_qonnx(model: nn.Module, path: str | os.PathLike, input_shape=None) -> ModelWrapper:
    """Export ``model`` (in eval mode) to a cleaned-up QONNX file at ``path``.

    ``input_shape`` is (N, C, H, W) or (C, H, W) (batch 1 is added); it defaults to
    ``model.input_shape``. Returns the cleaned model as a qonnx ModelWrapper.
    """
    expected = tuple(getattr(model, "input_shape", ()))
    shape = tuple(input_shape) if input_shape is not None else (1,) + expected
    if len(shape) == len(expected):
        shape = (1,) + shape
    if expected and shape[1:] != expected:
        raise ExportError(
            f"input shape {shape} does not match the model's input {expected} "
            f"(config {getattr(model, 'config', {}).get('name', type(model).__name__)}); "
            f"pass input_shape=(1, {', '.join(map(str, expected))}) or rebuild the model with "
            f"matching in_channels / image_size"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, _WSDMixin):
            m.bake_wsd()
    with torch.no_grad():
        _brevitas_export_qonnx(model, torch.rand(shape), str(path))
    cleaned = cleanup_model(ModelWrapper(str(path)))
    cleaned.save(str(path))
    return cleaned
