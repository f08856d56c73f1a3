"""benchmarks/fault_injection.py on a small sample: every single fault whose
effect is visible on the verified frames is caught and named at the right
layer, and no invisible fault is reported as a difference."""

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import fault_injection as FI  # noqa: E402


def test_single_faults_are_caught_and_localised(tmp_path):
    state, cfg = FI.build("digits", 6, tmp_path)
    faults = FI.draw_faults(state.hw, 10, np.random.default_rng(3))
    assert {f.kind for f in faults} == {"weight", "threshold"}
    outcomes = FI.inject(state, cfg, faults, tmp_path, say=lambda *_: None)
    visible = [o for o in outcomes if o.visible]
    assert len(visible) >= 5  # the sample exercises the check
    for o in visible:
        assert o.caught and o.named == o.expected, o
    assert not any(o.caught for o in outcomes if not o.visible)
    table = FI.table(outcomes, "digits", 6)
    assert table.splitlines()[-1].startswith(f"| all | 10 | {len(visible)} | {len(visible)} |")
