"""The package step end to end: OUT/deploy/ and OUT/vivado/ of real builds,
the driver's data path through the Verilator model of the deploy top (DMA
boundary RTL + the verified accelerator), validate.py on CIFAR-10 pickles the
test writes, and the deploy package's errors."""

import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from build_flows.config import BuildConfig
from build_flows.flow import run_build
from helpers import randomise_sd_parameters

DEPLOY_FILES = {"driver.py", "validate.py", "demo.ipynb", "README.md", "io.json", "manifest.json"}


def checkpoint(path, name, seed=0, **cfg):
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    torch.manual_seed(seed)
    model = randomise_sd_parameters(get_model(name, **cfg))
    save_checkpoint(path, model)
    return path, model


@pytest.fixture(scope="module")
def cifar_build(tmp_path_factory):
    """A 1/16-width CNV (random SD-BNN weights, randomised BN) for pynq-z2 on
    CIFAR-size input; with its PyTorch model."""
    tmp = tmp_path_factory.mktemp("cnv16")
    ckpt, model = checkpoint(tmp / "cnv16.pt", "cnv", width=0.0625)
    cfg = BuildConfig(board="pynq-z2", checkpoint=ckpt, model="cnv", dataset="random",
                      verify_images=4, out=tmp / "b", yosys=False, target_fps=20_000, dma_frames=4)
    return run_build(cfg), cfg, model.eval()


@pytest.fixture(scope="module")
def ultra96_build(tmp_path_factory):
    """The embedded digits_cnv for ultra96-v2: a 128-bit DMA bus."""
    from build_flows.config import DEFAULT_CHECKPOINT
    out = tmp_path_factory.mktemp("u96") / "b"
    cfg = BuildConfig(board="ultra96-v2", checkpoint=DEFAULT_CHECKPOINT, verify_images=6, out=out,
                      yosys=False, target_fps=100_000)
    return run_build(cfg), cfg


def test_package_writes_the_deploy_bundle(cifar_build):
    state, cfg, _ = cifar_build
    deploy = cfg.out / "deploy"
    assert DEPLOY_FILES <= {p.name for p in deploy.iterdir()}
    with zipfile.ZipFile(cfg.out / "deploy.zip") as z:
        assert {f"deploy/{n}" for n in DEPLOY_FILES} <= set(z.namelist())
    man = json.loads((deploy / "manifest.json").read_text())
    assert man["board"] == "pynq-z2" and man["part"] == "xc7z020clg400-1"
    assert man["clock_mhz"] == cfg.clock_mhz and man["bitfile"] is None
    assert man["verified"] == {"frames": 4, "mismatches": 0}
    io = json.loads((deploy / "io.json").read_text())
    graph = state.graph
    assert io["bus_bits"] == 64 and io["frames_per_packet"] == 4
    assert io["input"]["shape"] == [3, 32, 32] and io["input"]["layout"] == state.layout
    assert io["input"]["word_bits"] == graph.width(graph.input_edge)
    assert io["output"]["word_bits"] == graph.width(graph.output_edge)
    assert io["output"]["kind"] == "class"  # the registry CNV ends in LabelSelect
    vivado = cfg.out / "vivado"
    for name in ("build.tcl", "sdbnn_deploy_top.v", "dma_to_stream.sv", "stream_to_dma.sv"):
        assert (vivado / name).is_file(), name
    # the deploy top's parameters are io.json's
    top = (vivado / "sdbnn_deploy_top.v").read_text()
    assert f".WORD_W({io['input']['word_bits']})" in top
    assert f".FRAMES_PER_PACKET({io['frames_per_packet']})" in top


def test_driver_packing_equals_the_builds_stream(cifar_build):
    """Two packers written apart: the driver's (numpy, from io.json) and the
    build's (rtl/stream.py words, ops/dma.py's host packing of them)."""
    from build_flows.ops.dma import DMAInConfig, frames_to_bus_words
    from build_flows.rtl.stream import pack_stream
    state, cfg, _ = cifar_build
    sys.path.insert(0, str(cfg.out / "deploy"))
    try:
        import driver
    finally:
        sys.path.pop(0)
    io = json.loads((cfg.out / "deploy" / "io.json").read_text())
    graph = state.graph
    i = io["input"]
    words = pack_stream(state.frames(), graph.width(graph.input_edge), graph.elem_bits(graph.input_edge))
    bus = frames_to_bus_words(words, DMAInConfig(io["bus_bits"], i["word_bits"], i["slot_bytes"],
                                                 i["words_per_frame"]))
    expected = b"".join(w.to_bytes(io["bus_bits"] // 8, "little") for w in bus)
    got = driver.pack_input(np.asarray(state.pixels, np.uint8), io)
    assert got.dtype == np.uint8 and got.tobytes() == expected


@pytest.mark.parametrize("stall_prob", [0.0, 0.3])
def test_driver_through_the_simulated_dma_equals_pytorch(cifar_build, stall_prob):
    from build_flows.deploy.board.driver import Accelerator
    state, cfg, model = cifar_build
    acc = Accelerator(cfg.out / "deploy", transport="sim", stall_prob=stall_prob, seed=3)
    pixels = np.asarray(state.pixels, np.uint8)
    classes, outputs = acc.execute(pixels[:3], scores=True)  # 3 frames: one packet of 4, padded
    assert classes.tolist() == state.ref_classes[:3].tolist()
    with torch.no_grad():
        torch_classes = model(torch.from_numpy(state.images[:3])).argmax(1).numpy()
    assert classes.tolist() == torch_classes.tolist()


def test_a_dma_that_never_completes_times_out_with_a_register_dump(cifar_build):
    from build_flows.deploy.board.driver import Accelerator, DmaTimeout
    state, cfg, _ = cifar_build
    acc = Accelerator(cfg.out / "deploy", transport="sim", stall=True)
    with pytest.raises(DmaTimeout) as e:
        acc.execute(np.asarray(state.pixels[:1], np.uint8))
    assert "S2MM" in str(e.value)


def write_cifar_pickles(folder, pixels, labels):
    folder.mkdir(parents=True)
    batch = {b"data": pixels.reshape(len(pixels), -1).astype(np.uint8),
             b"labels": [int(v) for v in labels], b"batch_label": b"testing batch 1 of 1"}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    return folder


def test_validate_sim_on_cifar_pickles_reports_pytorchs_accuracy(cifar_build, tmp_path):
    """validate.py --transport sim on 10 real CIFAR-10 test pictures (the JPEG
    sample in the repo) written as the official pickle: the image count and the
    accuracy PyTorch gets on the same pixels."""
    from build_flows.config import REPO
    from quant_models.data import load_dataset
    state, cfg, model = cifar_build
    ds = load_dataset("cifar10", data_dir=REPO / "quant_models/samples/cifar10/cifar10-test-sample.tar.gz",
                      train=False)
    picks = range(0, len(ds), max(1, len(ds) // 10))
    images = torch.stack([ds[i][0] for i in picks])[:10]
    labels = np.array([int(ds[i][1]) for i in picks])[:10]
    pixels = np.clip(np.round(images.numpy() * 255), 0, 255).astype(np.uint8)
    data = write_cifar_pickles(tmp_path / "cifar-10-batches-py", pixels, labels)
    with torch.no_grad():
        torch_classes = model(torch.from_numpy(pixels.astype(np.float32) / 255.0)).argmax(1).numpy()
    expected = float((torch_classes == labels).mean())
    out = tmp_path / "validate.json"
    proc = subprocess.run([sys.executable, str(cfg.out / "deploy" / "validate.py"), "--transport", "sim",
                           "--data-dir", str(data), "--n", "10", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["images"] == 10 and report["transport"] == "sim"
    assert report["accuracy"] == pytest.approx(expected, abs=1e-12)
    assert report["clock_mhz"] == cfg.clock_mhz and report["fps"] > 0


def test_validate_refuses_a_folder_without_cifar(cifar_build, tmp_path):
    _, cfg, _ = cifar_build
    proc = subprocess.run([sys.executable, str(cfg.out / "deploy" / "validate.py"), "--transport", "sim",
                           "--data-dir", str(tmp_path), "--n", "4"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(tmp_path) in errors[0]


def test_a_bitfile_that_does_not_match_the_manifest_is_refused(cifar_build, tmp_path):
    from build_flows.deploy.board import driver
    _, cfg, _ = cifar_build
    man = json.loads((cfg.out / "deploy" / "manifest.json").read_text())
    (tmp_path / "sdbnn.bit").write_bytes(b"a bitfile of another build")
    man["bitfile"] = {"name": "sdbnn.bit", "sha256": "0" * 64}
    with pytest.raises(driver.BitfileMismatch, match="0000000000000000"):
        driver.check_bitfile(tmp_path, man)


def test_ultra96_bus_is_128_bits_and_the_driver_equals_the_reference(ultra96_build):
    from build_flows.deploy.board.driver import Accelerator
    state, cfg = ultra96_build
    io = json.loads((cfg.out / "deploy" / "io.json").read_text())
    man = json.loads((cfg.out / "deploy" / "manifest.json").read_text())
    assert io["bus_bits"] == 128 and man["part"] == "xczu3eg-sbva484-1-i"
    top = (cfg.out / "vivado" / "sdbnn_deploy_top.v").read_text()
    assert "input  wire [127:0]  s_axis_tdata" in top
    acc = Accelerator(cfg.out / "deploy", transport="sim")
    classes, outputs = acc.execute(np.asarray(state.pixels, np.uint8), scores=True)
    assert classes.tolist() == state.ref_classes.tolist()


def test_vivado_flag_without_vivado_is_one_clear_error(cifar_build, monkeypatch, capsys):
    from build_flows.build import main
    _, cfg, _ = cifar_build
    monkeypatch.setenv("PATH", "/nonexistent")
    rc = main(["--config", str(cfg.out / "build_config.json"), "--from-step", "package",
               "--to-step", "package", "--vivado"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.startswith("error: --vivado: no `vivado` on PATH")


def test_vivado_run_hashes_the_bitfile_into_the_manifest(cifar_build, tmp_path, monkeypatch):
    """A stand-in `vivado` that writes the two files Vivado would: the step
    puts their hashes in the manifest and the zip (the plumbing, not Vivado)."""
    import hashlib
    from build_flows.deploy.package import run_vivado
    state, cfg, _ = cifar_build
    fake = tmp_path / "bin" / "vivado"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nprintf 'BIT' > ../deploy/sdbnn.bit\nprintf 'HWH' > ../deploy/sdbnn.hwh\n"
                    "echo 'INFO: [sdbnn] done'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    try:
        man = run_vivado(state, cfg, say=lambda *_: None)
        assert man["bitfile"]["sha256"] == hashlib.sha256(b"BIT").hexdigest()
        assert man["hwh"]["sha256"] == hashlib.sha256(b"HWH").hexdigest()
        with zipfile.ZipFile(cfg.out / "deploy.zip") as z:
            assert "deploy/sdbnn.bit" in z.namelist()
            assert json.loads(z.read("deploy/manifest.json"))["bitfile"] == man["bitfile"]
    finally:  # leave the module's build as it was
        for name in ("sdbnn.bit", "sdbnn.hwh"):
            (cfg.out / "deploy" / name).unlink(missing_ok=True)
