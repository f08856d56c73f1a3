"""SD-BNN layers, models, data, training and QONNX export in Brevitas."""
from .models import ModelConfig, UnknownModelError, get_model, model_names

__all__ = ["ModelConfig", "UnknownModelError", "get_model", "model_names"]
