"""Errors a user of the build flow can cause, each with one message naming the
culprit and the fix. build.py prints `error: <message>` and exits 2."""

from __future__ import annotations


class BuildError(Exception):
    """Base class: a build input or option that cannot produce a correct design."""


class ModelInputError(BuildError):
    """Missing/unreadable checkpoint or ONNX file, unknown model name."""


class InputShapeError(BuildError):
    """Inputs (dataset images) whose shape does not match the model."""


class UnsupportedLayerError(BuildError):
    """A layer the streaming backend has no hardware for."""


class NonBinaryActivationError(BuildError):
    """Something other than a binary activation between two layers."""


class FoldingError(BuildError):
    """A PE/SIMD that does not divide its dimension, or a folding JSON that
    names layers the design does not have."""


class DoesNotFitError(BuildError):
    """The design needs more resources than the board has."""


class SimulationMismatchError(BuildError):
    """The simulated hardware does not reproduce PyTorch bit for bit."""
