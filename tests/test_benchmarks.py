"""Smoke test of benchmarks/sim_speed.py: its table has figures only when the
Verilator run (whole and split over 2 jobs), FINN's execution and the fast
executor agree on every frame (the executor on every tensor)."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import sim_speed  # noqa: E402


@pytest.mark.slow  # about 50 s with a warm simulator cache, 100 s cold: make test-all
def test_sim_speed_smoke(tmp_path, capsys):
    rc = sim_speed.main(["--models", "digits_cnv", "--frames", "4", "--sim-threads", "1",
                         "--work", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    row = next(line for line in out.splitlines() if line.startswith("digits_cnv"))
    assert "outputs agree" in row and "no figures" not in row and "jobs: 2 processes" in row
    assert "executor FPS" in out
