"""A wrong layer in the hardware is found and named, not just reported as "wrong"."""
import pytest

from build_flows import build
from build_flows.build_config import DEFAULT_CHECKPOINT, BuildConfig
from build_flows.build_errors import SimulationMismatchError


def _invert_hex(text: str) -> str:
    """Every bit of every $readmemh word flipped (same width)."""
    return "".join(f"{int(w, 16) ^ ((1 << 4 * len(w)) - 1):0{len(w)}x}\n" for w in text.split())


def test_corrupted_layer_is_named(tmp_path):
    cfg = BuildConfig(board="pynq-z2", checkpoint=DEFAULT_CHECKPOINT, verify_images=8,
                      out=tmp_path / "b", yosys=False)
    cfg.out.mkdir(parents=True)
    state = build.BuildState()
    for step in build.STEPS[: build.STEPS.index(build.step_rtl) + 1]:
        state = step(state, cfg)
    victim = next(st for st in state.layers if st.name == "MVAU_2")
    weights = next(name for name in victim.mem_files if name.endswith("weights.mem"))
    victim.mem_files[weights] = _invert_hex(victim.mem_files[weights])
    state = build.step_size_fifos(state, cfg)
    with pytest.raises(SimulationMismatchError, match=r"first differing layer: MVAU_2 \(mvtu\)"):
        build.step_simulate(state, cfg)
