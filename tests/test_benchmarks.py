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


@pytest.mark.slow  # about 40 s: the flow up to the RTL of the full-size network
def test_vgg_small_resources_counts_every_weight(tmp_path, capsys):
    """The script's weight total equals the network's own count: 3x3 convs
    3-128-128-256-256-512-512 (the first with 8-bit weights) and FC 512*4*4 -> 10,
    all others bipolar; the pynq-z2 line says it does not fit."""
    import vgg_small_resources
    assert vgg_small_resources.main(["--board", "zcu104", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    chans = [3, 128, 128, 256, 256, 512, 512]
    bits = 9 * chans[0] * chans[1] * 8 + sum(9 * a * b for a, b in zip(chans[1:], chans[2:]))
    bits += 512 * 4 * 4 * 10
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert f"{bits:,d}" in total.split()
    assert "pynq-z2" in out and "does not fit" in out.split("pynq-z2")[1].splitlines()[0]
