"""build_flows/verilator_sim.py: watchdog, compile errors, cache reuse and races."""

import threading
import time

import pytest

from build_flows import verilator_sim
from build_flows.verilator_sim import (SimCompileError, SimStallError, build, render_harness,
                                       simulate)
from hwsim import sources

FIFO = {"DATA_WIDTH": 8, "DEPTH": 4}


def test_watchdog_names_stalled_output():
    """The DUT cannot produce more words than it got: m_axis stalls."""
    with pytest.raises(SimStallError, match="output stream m_axis stalled: DUT produced 3 of 5"):
        simulate("axis_fifo", sources("axis_fifo"), FIFO, [1, 2, 3], 8, 8, n_out=5,
                 timeout_cycles=200)


def test_watchdog_names_stalled_input():
    """A sink that never takes a word fills the FIFO: s_axis stalls."""
    with pytest.raises(SimStallError, match="input stream s_axis stalled.*after 4 of 10"):
        simulate("axis_fifo", sources("axis_fifo"), FIFO, list(range(10)), 8, 8, n_out=10,
                 out_stall_prob=1.0, timeout_cycles=200)


def test_extra_output_words_are_reported():
    res = simulate("axis_fifo", sources("axis_fifo"), FIFO, [5, 6, 7], 8, 8, n_out=2)
    assert res.out_words == [5, 6, 7]  # the third word is caught while draining


def test_compile_error_carries_verilator_output(tmp_path, monkeypatch):
    monkeypatch.setenv("SDBNN_SIM_CACHE", str(tmp_path))
    bad = tmp_path / "broken.sv"
    bad.write_text("module broken(input wire clk); assign nope = 1; endmodule\n")
    with pytest.raises(SimCompileError, match="nope"):
        build("broken", [bad], {}, render_harness("broken", 8, 8))


def test_cache_is_reused_and_race_safe(tmp_path, monkeypatch):
    """Two concurrent builds of one key both succeed; a third call is a cache hit."""
    monkeypatch.setenv("SDBNN_SIM_CACHE", str(tmp_path))
    harness = render_harness("axis_skid", 4, 4)
    exes = []

    def worker():
        exes.append(build("axis_skid", sources("axis_skid"), {"DATA_WIDTH": 4}, harness))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(exes) == 2 and exes[0] == exes[1] and exes[0].exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    start = time.monotonic()
    assert build("axis_skid", sources("axis_skid"), {"DATA_WIDTH": 4}, harness) == exes[0]
    assert time.monotonic() - start < 1.0
    res = simulate("axis_skid", sources("axis_skid"), {"DATA_WIDTH": 4}, [1, 2, 3], 4, 4, 3)
    assert res.out_words == [1, 2, 3] and len(list(tmp_path.iterdir())) == 1


def test_template_is_strict():
    with pytest.raises(Exception, match="undefined"):
        verilator_sim.jinja2.Environment(undefined=verilator_sim.jinja2.StrictUndefined
                                         ).from_string("{{ x }}").render()
