"""The two kinds of failure of a build.

BuildError: something the user can fix (an input, an option, a model the
backend has no hardware for). Its message names the culprit and the fix;
build.py prints it as one `error: ...` line and exits 2.

ToolError: a tool of the flow failed where it should not have (Verilator
does not compile generated RTL, Yosys crashes, a FINN pass raises). Its
message names the tool and where its log is; build.py prints one
`error: internal: ...` line and exits 3. Neither ever shows a traceback.
"""

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


class ConfigError(BuildError):
    """A build config file or step name that cannot be used."""


class VivadoError(BuildError):
    """Vivado (run by --vivado) failed or wrote no bitfile: the user's tool, not ours."""


class ToolError(RuntimeError):
    """An internal failure of one tool (`tool` names it)."""

    tool = "tool"

    def __init__(self, message: str, tool: str | None = None):
        super().__init__(message)
        if tool is not None:
            self.tool = tool
