"""SD-BNN layers, models, data, training and QONNX export in Brevitas."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DatasetError, get_loaders, load_dataset
from .export import ExportError, export_qonnx
from .models import ModelConfig, UnknownModelError, get_model, model_names

__all__ = [
    "CheckpointError", "DatasetError", "ExportError", "ModelConfig", "UnknownModelError",
    "export_qonnx", "get_loaders", "get_model", "load_checkpoint", "load_dataset",
    "model_names", "save_checkpoint",
]
