"""build_flows/build.py end to end (digits_cnv, tfc) and every user error."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from build_flows.build import main
from helpers import assert_ii_at_analytic
from build_flows.flow import run_build
from build_flows.config import DEFAULT_CHECKPOINT, BuildConfig
from build_flows.errors import (DoesNotFitError, FoldingError, InputShapeError,
                                      ModelInputError, NonBinaryActivationError,
                                      UnsupportedLayerError)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def digits_ckpt() -> Path:
    """The embedded default checkpoint."""
    assert DEFAULT_CHECKPOINT.exists(), DEFAULT_CHECKPOINT
    return DEFAULT_CHECKPOINT


def untrained(tmp_path: Path, name: str, seed: int = 0, **cfg) -> Path:
    """An untrained registry model (weights from a seeded generator) as a checkpoint."""
    import torch
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    path = tmp_path / f"{name}.pt"
    torch.manual_seed(seed)
    save_checkpoint(path, get_model(name, **cfg))
    return path


@pytest.fixture(scope="module")
def digits_build(digits_ckpt, tmp_path_factory):
    """The default build (40 images verified, accuracy on all 360 test images),
    run once through the CLI: (out dir, stdout)."""
    out = tmp_path_factory.mktemp("digits") / "b"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["--board", "pynq-z2", "--checkpoint", str(digits_ckpt), "--verify-images", "40",
                   "--accuracy-images", "all", "--out", str(out)])
    assert rc == 0
    return out, buf.getvalue()


def test_default_digits_build_bit_exact(digits_build):
    out, stdout = digits_build
    r = json.loads((out / "report.json").read_text())
    assert {"board", "clock_mhz", "fits_board", "resources", "sim", "layers"} <= set(r)
    assert r["board"] == "pynq-z2" and r["fits_board"] is True
    assert set(r["resources"]) == {"LUT", "FF", "BRAM36", "DSP"}
    sim = r["sim"]
    assert sim["frames"] == 40
    assert sim["mismatches"] == 0 and sim["mismatches_back_pressure"] == 0
    assert_ii_at_analytic(sim)  # README: II = analytic (FINN's window: at most its estimate)
    # no --target-fps: the fastest folding that fits, and the build says what it chose
    choice = r["folding_choice"]
    assert choice["fits"] is True and choice["cycles"] == sim["expected_cycles_per_frame"]
    assert all(choice["estimate"][k] <= 0.7 * v for k, v in
               {"LUT": 53_200, "BRAM36": 140, "DSP": 220}.items())
    assert f"the fastest that fits pynq-z2: {choice['fps']:,.0f} FPS" in stdout
    assert sim["latency_cycles"] > 0 and sim["fps_at_clock"] > 0
    checked = sim["checked"]
    assert checked["layer_frames"] == 40 and checked["links"] == len(r["layers"]) + 1
    assert checked["accumulators"] == "PyTorch's logits" and sim["differences"] == []
    # every internal link stalled in the back-pressure run
    assert len(sim["links_stalled"]) == len(r["fifos"]) and min(sim["links_stalled"].values()) > 0
    for layer in r["layers"]:
        assert {"name", "op", "PE", "SIMD", "expected_cycles", "resources"} <= set(layer)
    folding = json.loads((out / "folding_config.json").read_text())
    assert "Defaults" in folding and any(k.startswith("MVAU") for k in folding)
    assert "<svg" in (out / "report.html").read_text()
    assert "0 class mismatches" in stdout and "verified   : every beat of" in stdout


def test_default_digits_build_writes_the_deploy_package(digits_build):
    """The package step of the default build: deploy/ (driver, validate.py,
    notebook, README, io.json, manifest), deploy.zip and vivado/build.tcl."""
    out, stdout = digits_build
    files = {p.name for p in (out / "deploy").iterdir()}
    assert {"driver.py", "validate.py", "demo.ipynb", "README.md", "io.json", "manifest.json"} <= files
    assert (out / "deploy.zip").is_file() and (out / "vivado" / "build.tcl").is_file()
    io_spec = json.loads((out / "deploy" / "io.json").read_text())
    assert io_spec["bus_bits"] == 64 and io_spec["input"]["shape"] == [1, 8, 8]
    report = json.loads((out / "report.json").read_text())
    assert report["deploy"]["frames_per_packet"] == io_spec["frames_per_packet"]
    assert "[package]" in stdout


def test_build_folder_has_finn_style_files(digits_build):
    """FINN-named per-layer reports agree with report.json; every step's model
    is kept; rtl/ holds every source its filelist names and every memory file."""
    out, _ = digits_build
    r = json.loads((out / "report.json").read_text())
    cycles = json.loads((out / "estimate_layer_cycles.json").read_text())
    assert cycles == {layer["name"]: layer["expected_cycles"] for layer in r["layers"]}
    res = json.loads((out / "estimate_layer_resources.json").read_text())
    assert set(res) == {layer["name"] for layer in r["layers"]} | {f["name"] for f in r["fifos"]}
    assert sum(v["LUT"] for v in res.values()) == r["resources"]["LUT"]
    assert all(v["BRAM_18K"] == 2 * v["BRAM36"] for v in res.values())
    perf = json.loads((out / "rtlsim_performance.json").read_text())
    assert perf["N"] == 40 and perf["latency_cycles"] == r["sim"]["latency_cycles"]
    assert perf["stable_throughput[images/s]"] == r["sim"]["fps_at_clock"]
    net = json.loads((out / "estimate_network_performance.json").read_text())
    assert net["max_cycles"] == r["sim"]["expected_cycles_per_frame"]
    assert sorted(p.name for p in (out / "intermediate_models").iterdir()) == \
        ["export.onnx", "streamline.onnx", "to_hw.onnx"]
    names = (out / "rtl" / "filelist.f").read_text().split()
    assert names[-1] == "sdbnn_top.sv" and all((out / "rtl" / n).is_file() for n in names)
    mvaus = [layer["name"] for layer in r["layers"] if layer["op"] == "MVAU"]
    assert {f"{m}_weights.mem" for m in mvaus} <= {p.name for p in (out / "rtl").glob("*.mem")}
    top = (out / "rtl" / "sdbnn_top.sv").read_text()
    assert str(out) not in top and "/" not in "".join(names)  # no build-specific paths
    config = json.loads((out / "build_config.json").read_text())
    assert config["board"] == "pynq-z2" and config["verify_images"] == 40


def test_rerun_from_a_step_keeps_nothing_stale(digits_build):
    """--config OUT/build_config.json --from-step simulate reruns the last steps
    from the saved state: the same report, and an earlier build's waveforms
    (an artefact of the simulate step) are gone."""
    out, _ = digits_build
    before = json.loads((out / "report.json").read_text())
    (out / "waves").mkdir(exist_ok=True)
    (out / "waves" / "stale.vcd").write_text("old")
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["--config", str(out / "build_config.json"), "--from-step", "simulate"])
    assert rc == 0
    after = json.loads((out / "report.json").read_text())
    assert not (out / "waves").exists()
    assert set(after.pop("step_seconds")) == set(before.pop("step_seconds"))
    for r in (before, after):  # the accuracy step's timing
        r["accuracy"].pop("seconds"), r["accuracy"].pop("images_per_s")
    assert after == before


def test_sim_jobs_split_the_frames_and_verify_the_same(digits_build, tmp_path, monkeypatch):
    """--sim-jobs 3: each verification run simulates three shares of the 40
    frames from reset (the 20 link-checked frames straddle a share boundary);
    the joined result passes every check, as the one-process run did."""
    from build_flows.flow.state import BuildState
    from build_flows.sim import verify
    joined = []
    real = verify.merge_runs
    monkeypatch.setattr(verify, "merge_runs", lambda runs: joined.append(
        [len(r.outputs) for r in runs]) or real(runs))
    out, _ = digits_build
    state = BuildState.load(out / "intermediate_state" / "size_fifos.pkl")
    cfg = BuildConfig.from_json(out / "build_config.json", out=tmp_path / "b", sim_jobs=3,
                                layer_check_frames=20, accuracy_images=0)
    state = run_build(cfg, from_step="simulate", to_step="simulate", state=state)
    sim, before = state.sim, json.loads((out / "report.json").read_text())["sim"]
    assert sim["sim_jobs"] == 3 and sim["differences"] == [] and sim["mismatches"] == 0
    assert sim["checked"]["layer_frames"] == 20 and sim["frames"] == 40
    assert_ii_at_analytic(sim)
    assert sim["cycles_per_frame"] == before["cycles_per_frame"]
    assert min(sim["links_stalled"].values()) > 0
    assert joined == [[13, 14, 13], [13, 14, 13]]  # both runs, three shares each


def test_shares_cover_the_frames_in_order():
    from build_flows.sim.stitched import shares
    for n, jobs in ((40, 3), (5, 3), (1, 4), (2, 2), (100, 16)):
        parts = shares(n, jobs)
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        assert len(parts) == max(1, min(jobs, n // 2)) and (n < 2 or parts[0][1] >= 2)


def test_to_step_stops_early(digits_ckpt, tmp_path):
    out = tmp_path / "b"
    state = run_build(BuildConfig(board="pynq-z2", checkpoint=digits_ckpt, verify_images=4, out=out),
                      to_step="to_hw")
    assert state.hw is not None and state.graph is None
    assert (out / "model_hw.onnx").is_file() and (out / "intermediate_state" / "to_hw.pkl").is_file()
    assert not (out / "rtl").exists() and not (out / "report.json").exists()


@pytest.mark.parametrize("content, message", [
    ({"board": "pynq-z2", "speed": 3}, r"unknown field\(s\) \['speed'\]"),
    ({"board": "pynq-z9"}, r"unknown board 'pynq-z9'"),
    ("{not json", r"is not valid JSON"),
], ids=["unknown-field", "unknown-board", "not-json"])
def test_bad_config_file(tmp_path, capsys, content, message):
    path = tmp_path / "cfg.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["--config", str(path)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: config file")
    assert re.search(message, errors[0])


def test_from_step_without_saved_state(tmp_path, capsys):
    assert main(["--board", "pynq-z2", "--out", str(tmp_path / "empty"), "--from-step", "rtl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no saved state of step to_hw") and "--to-step to_hw" in err


def test_internal_failure_is_one_line_and_a_log(tmp_path, capsys, monkeypatch):
    """An exception inside a step (here a crash injected into the support
    check) is no traceback on the terminal: one `error: internal:` line naming
    the step, exit 2, and the traceback in OUT/error.log."""
    from build_flows.frontend import support

    def crash(model):
        raise RuntimeError("injected crash")
    monkeypatch.setattr(support, "check_supported", crash)
    out = tmp_path / "b"
    assert main(["--board", "pynq-z2", "--verify-images", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: internal: step streamline failed: RuntimeError: injected crash")
    assert "Traceback" in (out / "error.log").read_text()


def test_folding_json_round_trip(digits_ckpt, tmp_path):
    """A FINN-format folding JSON is applied as given and written back as
    folding_config.json (the hardware at other foldings is checked by
    tests/ops and the other builds)."""
    folding = {"Defaults": {}, "MVAU_0": {"PE": 32, "SIMD": 1}, "MVAU_1": {"PE": 4, "SIMD": 32},
               "MVAU_2": {"PE": 2, "SIMD": 64}, "MVAU_3": {"PE": 2, "SIMD": 8},
               "Pool_0": {"PE": 4}, "LabelSelect_0": {"PE": 2}}
    path = tmp_path / "fold.json"
    path.write_text(json.dumps(folding))
    cfg = BuildConfig(board="pynq-z2", checkpoint=digits_ckpt, folding=path, verify_images=4,
                      out=tmp_path / "b", yosys=False)
    state = run_build(cfg, to_step="to_hw")
    written = json.loads((tmp_path / "b" / "folding_config.json").read_text())
    for name, attrs in folding.items():
        for k, v in attrs.items():
            assert written[name][k] == v
    # the sliding window in front of each MVAU / Pool follows its consumer's SIMD / PE
    assert written["ConvolutionInputGenerator_1"]["SIMD"] == 32
    assert written["ConvolutionInputGenerator_2"]["SIMD"] == 4
    assert state.hw.get_node_from_name("MVAU_1") is not None


# 4: integer x 4-bit first layer (MVTU int_int); 1 (integer x bipolar, as the
# default digits build) is a slow test
@pytest.mark.parametrize("first_bits", [pytest.param(1, marks=pytest.mark.slow), 4])
def test_tfc_end_to_end(tmp_path, first_bits):
    cfg = BuildConfig(board="pynq-z2", model="tfc",
                      checkpoint=untrained(tmp_path, "tfc", first_bits=first_bits),
                      verify_images=20, dataset="random", out=tmp_path / "b", yosys=False,
                      target_fps=100_000)
    state = run_build(cfg)
    first = next(st for st in state.graph.layers() if st.op == "MVAU")
    assert first.params["MODE"] == (1 if first_bits == 1 else 2)
    assert first.params["W_WIDTH"] == first_bits
    assert state.sim["mismatches"] == 0 and state.sim["differences"] == []
    assert state.sim["bottleneck"]["exact"]  # no sliding window: our MVTU is the slowest
    assert_ii_at_analytic(state.sim)
    assert min(state.sim["links_stalled"].values()) > 0


# ---------------------------------------------------------------------------
# user errors: one clear message, no traceback, exit status 2


def test_cli_missing_checkpoint_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "build_flows" / "build.py"), "--board", "pynq-z2",
                           "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "b")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nope.pt" in errors[0] and "not found" in errors[0]


def test_cli_help():
    proc = subprocess.run([sys.executable, str(REPO / "build_flows" / "build.py"), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "--target-fps" in proc.stdout and "--folding" in proc.stdout


def test_missing_onnx(tmp_path):
    with pytest.raises(ModelInputError, match="missing.onnx"):
        run_build(BuildConfig(board="pynq-z2", onnx=tmp_path / "missing.onnx", out=tmp_path / "b"))


def test_wrong_input_shape(tmp_path):
    cfg = BuildConfig(board="pynq-z2", model="tfc", checkpoint=untrained(tmp_path, "tfc"),
                      dataset="digits", out=tmp_path / "b")
    with pytest.raises(InputShapeError, match=r"\(1, 8, 8\).*\(1, 28, 28\)"):
        run_build(cfg)


@pytest.mark.parametrize("folding, message", [
    ({"Defaults": {}, "MVAU_1": {"PE": 5, "SIMD": 32}}, r"MVAU_1: PE=5 does not divide MH=32"),
    ({"MVAU_1": {"PE": 1, "SIMD": 24}}, r"MVAU_1: SIMD=24 does not divide its 32 input channels"),
    ({"Defaults": {}, "MVAU_9": {"PE": 1, "SIMD": 1}}, r"unknown layer\(s\) \['MVAU_9'\]"),
    ({"MVAU_1": {"PE": 8, "SIMD": 32, "ram_style": "block"}},
     r"MVAU_1.ram_style='block' is not implemented: synthesis infers .* use 'auto', or drop"),
    ({"MVAU_1": {"PE": 8, "SIMD": 32, "resType": "dsp"}}, r"MVAU_1.resType='dsp' is not implemented"),
    ({"MVAU_1": {"PE": 8, "SIMD": 32, "mem_mode": "external"}}, r"mem_mode='external' is not implemented"),
    ({"ConvolutionInputGenerator_1": {"SIMD": 32, "parallel_window": 1},
      "MVAU_1": {"PE": 8, "SIMD": 32}},
     r"ConvolutionInputGenerator_1.parallel_window=1 conflicts with its consumer MVAU_1, which "
     r"needs parallel_window=0"),
    ({"ConvolutionInputGenerator_2": {"SIMD": 32, "parallel_window": 1}},
     r"ConvolutionInputGenerator_2: parallel_window=1 is built only for a convolution's window"),
    ({"ConvolutionInputGenerator_1": {"SIMD": 32, "parallel_window": 2}},
     r"ConvolutionInputGenerator_1.parallel_window=2 must be 0 or 1"),
    ({"ConvolutionInputGenerator_1": {"SIMD": 8}, "MVAU_1": {"PE": 8, "SIMD": 32}},
     r"ConvolutionInputGenerator_1.SIMD=8 conflicts with its consumer MVAU_1, which needs SIMD=32"),
], ids=["pe-not-dividing", "simd-not-dividing-channels", "unknown-layer", "ram-style", "res-type",
        "mem-mode", "parallel-window-conflict", "parallel-window-pool", "parallel-window-value", "window-simd-conflict"])
def test_bad_folding_json(digits_ckpt, tmp_path, folding, message):
    path = tmp_path / "fold.json"
    path.write_text(json.dumps(folding))
    cfg = BuildConfig(board="pynq-z2", checkpoint=digits_ckpt, folding=path, out=tmp_path / "b")
    with pytest.raises(FoldingError, match=message):
        run_build(cfg)


def test_folding_json_implementation_attributes_we_implement(digits_ckpt, tmp_path, capsys):
    """Values our hardware implements are accepted; FIFO depths are not used, and the build says so."""
    folding = {"MVAU_1": {"PE": 8, "SIMD": 32, "ram_style": "auto", "resType": "lut",
                          "mem_mode": "internal_embedded", "inFIFODepths": [2]},
               "ConvolutionInputGenerator_1": {"SIMD": 32, "parallel_window": 0}}
    path = tmp_path / "fold.json"
    path.write_text(json.dumps(folding))
    cfg = BuildConfig(board="pynq-z2", checkpoint=digits_ckpt, folding=path, verify_images=4,
                      out=tmp_path / "b")
    run_build(cfg, to_step="to_hw")
    out = capsys.readouterr().out
    assert "note: FIFO depths in fold.json (inFIFODepths) are not used" in out


def test_design_too_big(tmp_path):
    cfg = BuildConfig(board="pynq-z2", model="tfc", checkpoint=untrained(tmp_path, "tfc"),
                      target_fps=1e9, dataset="random", verify_images=4, out=tmp_path / "b")
    with pytest.raises(DoesNotFitError, match=r"does not fit pynq-z2.*lower --target-fps"):
        run_build(cfg)


@pytest.mark.parametrize("name, cfg, culprit", [
    ("resnet20", dict(image_size=8, in_channels=1, first_bits=1, last_bits=1),
     r"\(Add of two streams, a residual shortcut\)"),
])
def test_unsupported_layer_is_named(tmp_path, name, cfg, culprit):
    ckpt = untrained(tmp_path, name, **cfg)
    build_cfg = BuildConfig(board="pynq-z2", model=name, checkpoint=ckpt,
                            dataset="random", verify_images=4, out=tmp_path / "b")
    with pytest.raises(UnsupportedLayerError, match=r"layer \S+ " + culprit):
        run_build(build_cfg)


def test_few_bit_weights_after_binary_activations_are_refused(tmp_path):
    cfg = BuildConfig(board="pynq-z2", model="tfc", checkpoint=untrained(tmp_path, "tfc", last_bits=4),
                      dataset="random", verify_images=4, out=tmp_path / "b")
    with pytest.raises(UnsupportedLayerError, match=r"INT4 weights: only the first layer"):
        run_build(cfg)


def test_non_binary_activations(tmp_path):
    """A 2-bit activation between two layers (QONNX Quant edited into the graph)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from quant_models import get_model
    from quant_models.export import export_qonnx
    model = export_qonnx(get_model("tfc").eval(), tmp_path / "tfc.onnx")
    model = _make_activation_2bit(model)
    model.save(str(tmp_path / "tfc_a2.onnx"))
    cfg = BuildConfig(board="pynq-z2", onnx=tmp_path / "tfc_a2.onnx", dataset="random",
                      verify_images=2, out=tmp_path / "b")
    with pytest.raises(NonBinaryActivationError, match="binary"):
        run_build(cfg)
    assert isinstance(model, ModelWrapper)


def _make_activation_2bit(model):
    """Replace the second BipolarQuant on activations by a signed 2-bit Quant."""
    import numpy as np
    from onnx import helper
    acts = [n for n in model.graph.node if n.op_type == "BipolarQuant"
            and model.get_initializer(n.input[0]) is None]
    node = acts[1]
    idx = list(model.graph.node).index(node)
    names = [node.input[1] + "_zp", node.input[1] + "_bw"]
    model.set_initializer(names[0], np.array(0.0, dtype=np.float32))
    model.set_initializer(names[1], np.array(2.0, dtype=np.float32))
    quant = helper.make_node("Quant", [node.input[0], node.input[1], *names], list(node.output),
                             domain="qonnx.custom_op.general", name=node.name + "_a2",
                             signed=1, narrow=0, rounding_mode="ROUND")
    model.graph.node.remove(node)
    model.graph.node.insert(idx, quant)
    return model


@pytest.mark.parametrize("args, message", [
    (["--clock-mhz", "0"], r"--clock-mhz 0.0 must be a positive number"),
    (["--clock-mhz", "-5"], r"--clock-mhz -5.0 must be a positive number"),
    (["--target-fps", "nan"], r"--target-fps nan must be a positive number"),
    (["--target-fps", "0"], r"--target-fps 0.0 must be a positive number"),
    (["--sim-threads", "0"], r"--sim-threads 0 must be an integer >= 1"),
    (["--sim-jobs", "0"], r"--sim-jobs 0 must be an integer >= 1"),
    (["--verify-images", "1"], r"--verify-images 1 must be an integer >= 2"),
    (["--layer-check-frames", "0"], r"--layer-check-frames 0 must be an integer >= 1"),
    (["--data-dir", "/tmp"], r"--data-dir /tmp needs --dataset mnist, cifar10 or imagefolder"),
    (["--model", "tfc"], r"--model tfc needs --checkpoint"),
], ids=["clock-0", "clock-negative", "fps-nan", "fps-0", "threads-0", "jobs-0", "images-1", "layer-frames-0",
        "data-dir-alone", "model-without-checkpoint"])
def test_bad_options_are_one_error_line(tmp_path, capsys, args, message):
    assert main(["--board", "pynq-z2", "--out", str(tmp_path / "b"), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(message, lines[0])
    assert not (tmp_path / "b").exists()  # refused before anything ran


def test_unusable_out_folder(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, message in ((afile, "is a file; pass a folder"),
                         (afile / "sub", f"{afile} is a file, so the folder cannot be created")):
        assert main(["--board", "pynq-z2", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize("kind, message", [
    ("empty", r"is not a readable ONNX model|has no graph"),
    ("batch4", r"has batch 4 .*one frame at a time"),
    ("no-shape", r"has no fixed shape"),
])
def test_bad_onnx_files(tmp_path, capsys, kind, message):
    from onnx import TensorProto, helper, save
    path = tmp_path / f"{kind}.onnx"
    if kind == "empty":
        path.write_bytes(b"")
    else:
        shape = [4, 1, 8, 8] if kind == "batch4" else None
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
        save(helper.make_model(graph), str(path))
    assert main(["--board", "pynq-z2", "--onnx", str(path), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(message, err[0])
    assert "internal" not in err[0]


def test_unsigned_one_bit_activations_are_named(tmp_path):
    """A 1-bit unsigned Quant ({0,1}, e.g. a 1-bit QuantReLU) between layers:
    refused by name before streamlining (where FINN would assert)."""
    import numpy as np
    from onnx import helper
    from quant_models import get_model
    from quant_models.export import export_qonnx
    model = export_qonnx(get_model("tfc").eval(), tmp_path / "tfc.onnx")
    acts = [n for n in model.graph.node if n.op_type == "BipolarQuant"
            and model.get_initializer(n.input[0]) is None]
    node = acts[1]
    idx = list(model.graph.node).index(node)
    zp, bw = node.input[1] + "_zp", node.input[1] + "_bw"
    model.set_initializer(zp, np.array(0.0, dtype=np.float32))
    model.set_initializer(bw, np.array(1.0, dtype=np.float32))
    quant = helper.make_node("Quant", [node.input[0], node.input[1], zp, bw], list(node.output),
                             domain="qonnx.custom_op.general", name="ReLU1bit", signed=0, narrow=0,
                             rounding_mode="ROUND")
    model.graph.node.remove(node)
    model.graph.node.insert(idx, quant)
    model.save(str(tmp_path / "relu1.onnx"))
    cfg = BuildConfig(board="pynq-z2", onnx=tmp_path / "relu1.onnx", dataset="random",
                      verify_images=2, out=tmp_path / "b")
    with pytest.raises(UnsupportedLayerError, match=r"layer ReLU1bit \(Quant\) quantises to unsigned 1 bit"):
        run_build(cfg)


# ---------------------------------------------------------------- the accuracy step


def test_hardware_accuracy_on_the_whole_digits_test_split(digits_build):
    """Every one of the 360 test images equal in every last-layer integer, and
    the accuracy equal to PyTorch's own evaluation of the checkpoint."""
    from quant_models.checkpoint import load_checkpoint
    from quant_models.data import get_loaders
    from quant_models.train import evaluate
    out, stdout = digits_build
    acc = json.loads((out / "accuracy.json").read_text())
    assert acc["images"] == 360 and acc["dataset"] == "digits" and acc["differing_images"] == 0
    _, test_loader = get_loaders("digits", batch_size=64)
    pytorch = evaluate(load_checkpoint(DEFAULT_CHECKPOINT), test_loader)["acc"]
    assert acc["hardware_accuracy"] == pytest.approx(pytorch, abs=1e-12)
    assert acc["reference_accuracy"] == pytest.approx(pytorch, abs=1e-12)
    assert json.loads((out / "report.json").read_text())["accuracy"] == acc
    assert "accuracy   : 360 digits test images: hardware" in stdout


def test_a_wrong_weight_in_the_hw_graph_is_caught(digits_build, tmp_path):
    """One class's weights of the last layer negated: every image differs."""
    import numpy as np
    from build_flows.errors import SimulationMismatchError
    from build_flows.flow.state import BuildState
    out, _ = digits_build
    bad = BuildState.load(out / "intermediate_state" / "simulate.pkl")
    cfg = BuildConfig.from_json(out / "build_config.json", out=tmp_path / "b")
    last = [n for n in bad.hw.graph.node if n.op_type == "MVAU"][-1]
    w = bad.hw.get_initializer(last.input[1]).copy()
    w[:, 3] = 1 - w[:, 3] if set(np.unique(w)) <= {0, 1} else -w[:, 3]
    bad.hw.set_initializer(last.input[1], w)
    with pytest.raises(SimulationMismatchError, match=r"differs from PyTorch on \d+ of 360 test images"):
        run_build(cfg, from_step="accuracy", to_step="accuracy", state=bad)


def test_accuracy_of_random_images_is_refused_before_the_build(tmp_path, capsys):
    rc = main(["--board", "pynq-z2", "--dataset", "random", "--accuracy-images", "all",
               "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert "--accuracy-images needs a labelled data set" in err[0]
    assert not (tmp_path / "b" / "model_qonnx.onnx").exists()  # refused at the load step


@pytest.mark.parametrize("value", ["-2", "some"])
def test_bad_accuracy_images_value(tmp_path, capsys, value):
    with pytest.raises(SystemExit) if value == "some" else _no_raise():
        rc = main(["--board", "pynq-z2", "--accuracy-images", value, "--out", str(tmp_path / "b")])
        assert rc == 2
    err = capsys.readouterr().err
    assert "--accuracy-images" in err and "Traceback" not in err


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_an_unmet_target_fps_names_the_layer_that_caps_it(digits_ckpt, tmp_path, capsys):
    """digits_cnv's first conv has 1 input channel: its SIMD can pass 1 only with
    FINN's parallel window (one 3x3 window a beat), which then reads one pixel a
    cycle: 64 pixels + 2 = 66 cycles by FINN's estimate, so 10^7 FPS is out of
    reach and the build says which layer caps it and why."""
    from qonnx.custom_op.registry import getCustomOp
    cfg = BuildConfig(board="pynq-z2", checkpoint=digits_ckpt, dataset="random", verify_images=2,
                      target_fps=1e7, out=tmp_path / "b", yosys=False)
    state = run_build(cfg, to_step="to_hw")
    out = capsys.readouterr().out
    cap = state.fold_cap
    assert cap["layer"] == "ConvolutionInputGenerator_0" and cap["target_fps"] == 1e7
    assert cap["cycles"] == 66
    assert ("note: the target of 10,000,000 FPS is not met: layer ConvolutionInputGenerator_0 "
            "needs 66 cycles a frame") in out
    assert "the parallel window, one window a beat: it reads one pixel" in out
    mvau = getCustomOp(state.hw.get_node_from_name("MVAU_0"))
    swg = getCustomOp(state.hw.get_node_from_name("ConvolutionInputGenerator_0"))
    assert (mvau.get_nodeattr("SIMD"), mvau.get_nodeattr("PE")) == (9, 32)  # MW, MH: its fastest
    assert (swg.get_nodeattr("SIMD"), swg.get_nodeattr("parallel_window")) == (1, 1)
    assert "ConvolutionInputGenerator_0      SIMD=1 parallel_window=1" in out
    # a reachable target gives no note
    state = run_build(BuildConfig(board="pynq-z2", checkpoint=digits_ckpt, dataset="random",
                                  verify_images=2, target_fps=1000, out=tmp_path / "c",
                                  yosys=False), to_step="to_hw")
    assert state.fold_cap == {} and "is not met" not in capsys.readouterr().out
