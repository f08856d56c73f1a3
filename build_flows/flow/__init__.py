"""The build: a plain list of steps, run by run_build(cfg, from_step, to_step).

Each step names the artefacts it writes under OUT. A run from step k first
removes the artefacts of steps k.. of an earlier build in the same OUT (a
reused --out keeps nothing stale) and starts from the state saved after step
k-1 (OUT/intermediate_state/<step>.pkl); every step's model, where it has
one, is also saved as OUT/intermediate_models/<step>.onnx (FINN's habit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from build_flows.config import BuildConfig
from build_flows.errors import BuildError, ConfigError, ToolError
from build_flows.flow import steps as S
from build_flows.flow.state import BuildState
from build_flows.frontend.finn_settings import finn_build_dir

STATE_DIR = "intermediate_state"
MODELS_DIR = "intermediate_models"


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[BuildState, BuildConfig], BuildState]
    artefacts: tuple[str, ...]  # files and folders under OUT that this step writes
    model: str | None = None  # the BuildState field holding the step's model


STEPS = [
    Step("load", S.step_load, ()),
    Step("export", S.step_export, ("model_qonnx.onnx", "model_qonnx.onnx.data"), "qonnx"),
    Step("streamline", S.step_streamline, ("model_streamlined.onnx",), "streamlined"),
    Step("to_hw", S.step_to_hw, ("partitions", "folding_config.json", "model_hw.onnx"), "hw"),
    Step("rtl", S.step_rtl, ("finn_gen", "rtl")),
    Step("size_fifos", S.step_size_fifos, ("fifo_sizing",)),
    Step("simulate", S.step_simulate, ("verify", "waves", "rtlsim_performance.json")),
    Step("accuracy", S.step_accuracy, ("accuracy.json",)),
    Step("estimate", S.step_estimate, ("synth",)),
    Step("package", S.step_package, ("deploy", "deploy.zip", "vivado")),
    Step("report", S.step_report, ("report.json", "report.html", "estimate_layer_cycles.json",
                                   "estimate_layer_resources.json",
                                   "estimate_network_performance.json")),
]
STEP_NAMES = [s.name for s in STEPS]
WHOLE_BUILD = ("finn_build", "build_config.json")  # written by every run from the first step


def step_index(name: str | None, default: int) -> int:
    if name is None:
        return default
    key = name.replace("-", "_")
    if key not in STEP_NAMES:
        raise ConfigError(f"unknown step {name!r}; the steps are {STEP_NAMES}")
    return STEP_NAMES.index(key)


def run_build(cfg: BuildConfig, from_step: str | None = None, to_step: str | None = None,
              state: BuildState | None = None) -> BuildState:
    """Run steps from_step..to_step (default: cfg's, else all); returns the
    state. A later start takes `state`, or else the one saved in OUT after
    the step before it."""
    cfg = cfg.resolved()
    first = step_index(from_step or cfg.from_step, 0)
    last = step_index(to_step or cfg.to_step, len(STEPS) - 1)
    if last < first:
        raise ConfigError(f"to-step {STEP_NAMES[last]} comes before from-step {STEP_NAMES[first]}")
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    if state is None and first > 0:
        saved = out / STATE_DIR / f"{STEP_NAMES[first - 1]}.pkl"
        if not saved.exists():
            raise ConfigError(f"no saved state of step {STEP_NAMES[first - 1]} in {out}; run the "
                              f"build up to it first (--to-step {STEP_NAMES[first - 1]})")
        state = BuildState.load(saved)
    state = state or BuildState()
    later = STEPS[first:]
    S.clear([out / a for s in later for a in s.artefacts]
            + [out / STATE_DIR / f"{s.name}.pkl" for s in later]
            + [out / MODELS_DIR / f"{s.name}.onnx" for s in later]
            + [out / "error.log"] + ([out / a for a in WHOLE_BUILD] if first == 0 else []))
    (out / "build_config.json").write_text(cfg.to_json())
    with finn_build_dir(out / "finn_build"):
        for step in STEPS[first:last + 1]:
            t = time.time()
            try:
                state = step.run(state, cfg)
            except (BuildError, ToolError):
                raise
            except Exception as e:  # a bug or a FINN/QONNX failure: named by its step
                raise ToolError(f"{type(e).__name__}: {e}", tool=f"step {step.name}") from e
            state.timings[step.name] = round(time.time() - t, 2)
            if step.model:
                (out / MODELS_DIR).mkdir(exist_ok=True)
                getattr(state, step.model).save(str(out / MODELS_DIR / f"{step.name}.onnx"))
            state.save(out / STATE_DIR / f"{step.name}.pkl")
    return state


__all__ = ["STEPS", "STEP_NAMES", "BuildState", "Step", "run_build"]
