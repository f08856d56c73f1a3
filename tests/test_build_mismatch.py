"""A wrong layer in the hardware is found and named, not just reported as "wrong"."""
import pytest

from build_flows.config import DEFAULT_CHECKPOINT, BuildConfig
from build_flows.errors import SimulationMismatchError
from build_flows.flow import run_build


def _invert_hex(text: str) -> str:
    """Every bit of every $readmemh word flipped (same width)."""
    return "".join(f"{int(w, 16) ^ ((1 << 4 * len(w)) - 1):0{len(w)}x}\n" for w in text.split())


def test_corrupted_layer_is_named(tmp_path):
    cfg = BuildConfig(board="pynq-z2", checkpoint=DEFAULT_CHECKPOINT, verify_images=8,
                      out=tmp_path / "b", yosys=False)
    state = run_build(cfg, to_step="rtl")
    victim = state.graph.stages["MVAU_2"]
    weights = next(name for name in victim.mem_files if name.endswith("weights.mem"))
    victim.mem_files[weights] = _invert_hex(victim.mem_files[weights])
    # size_fifos rewrites OUT/rtl/ from the (corrupted) stage graph
    with pytest.raises(SimulationMismatchError, match=r"first differing layer: MVAU_2 \(mvtu\)"):
        run_build(cfg, from_step="size_fifos", to_step="simulate", state=state)
