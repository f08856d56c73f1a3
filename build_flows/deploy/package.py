"""The `package` step: what a board needs, from a verified build.

    OUT/vivado/  sdbnn_deploy_top.v (the accelerator between the DMA's streams),
                 the DMA boundary modules, build.tcl (Vivado project to bitfile)
    OUT/deploy/  driver.py, validate.py, demo.ipynb, README.md, io.json (the
                 stream format), manifest.json (what the driver checks)
    OUT/deploy.zip  the deploy folder, to copy to the board

The stream format lives in io.json only: the driver packs from it on the board
and in the simulator alike, and the deploy top is rendered from the same values.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np

from build_flows.errors import ConfigError, VivadoError
from build_flows.ops.base import HW_DIR
from build_flows.templating import render

DEPLOY_TOP = "sdbnn_deploy_top"
BOARD_FILES = Path(__file__).resolve().parent / "board"
PACKET_INPUT_BYTES = 64 * 1024  # default DMA packet: about this much input...
PACKET_MAX_FRAMES = 256  # ...and at most this many frames
DMA_SOURCES = ("dma_to_stream.sv", "stream_to_dma.sv")
DMA_SUPPORT = ("axis_skid.sv",)  # used by the DMA modules; added unless the accelerator's rtl/ has it
BITFILE, HWH = "sdbnn.bit", "sdbnn.hwh"


def default_packet_frames(in_bytes_per_frame: int) -> int:
    return max(1, min(PACKET_MAX_FRAMES, PACKET_INPUT_BYTES // max(1, in_bytes_per_frame)))


def _side(graph, edge, bus_bits: int) -> dict:
    from build_flows.ops.dma import bus_words_per_frame, slot_bytes
    port = graph.src_port(edge)
    words = graph.words_per_frame(edge)
    slot = slot_bytes(port.width, bus_bits)
    return {"elem_bits": port.elem_bits, "signed": bool(port.signed),
            "lanes": port.width // port.elem_bits, "word_bits": port.width,
            "words_per_frame": words, "slot_bytes": slot,
            "bus_words_per_frame": bus_words_per_frame(words, slot, bus_bits)}


def io_spec(state, bus_bits: int, frames_per_packet: int | None = None) -> dict:
    """io.json: the DMA stream format of the build (see README, On the board)."""
    graph = state.graph
    src, dst = graph.input_edge, graph.output_edge
    inp = {"shape": [int(d) for d in state.pixels.shape[1:]], "layout": state.layout,
           "host_table": None if state.host_table is None else np.asarray(state.host_table).tolist(),
           **_side(graph, src, bus_bits)}
    classes = int(np.asarray(state.ref_acc).reshape(len(state.ref_acc), -1).shape[1])
    last = graph.layers()[-1].op
    out = {"kind": "class" if last == "LabelSelect" else "integers", "numel": int(dst.numel),
           "classes": classes, **_side(graph, dst, bus_bits), "affine": None}
    if out["kind"] == "integers" and state.host_tail and state.output_affine is not None:
        a, b = state.output_affine
        out["affine"] = {"a": np.broadcast_to(np.asarray(a, np.float64).reshape(-1), (classes,)).tolist(),
                         "b": np.broadcast_to(np.asarray(b, np.float64).reshape(-1), (classes,)).tolist()}
    if frames_per_packet is None:
        frames_per_packet = default_packet_frames(inp["bus_words_per_frame"] * bus_bits // 8)
    return {"format": 1, "bus_bits": bus_bits, "frames_per_packet": int(frames_per_packet),
            "input": inp, "output": out}


def render_deploy_top(io: dict, inner: str = "sdbnn_top") -> str:
    from build_flows.ops.dma import DMAInConfig, DMAOutConfig
    i, o, bus = io["input"], io["output"], io["bus_bits"]
    DMAInConfig(bus, i["word_bits"], i["slot_bytes"], i["words_per_frame"]).validate()
    DMAOutConfig(bus, o["word_bits"], o["slot_bytes"], o["words_per_frame"],
                 io["frames_per_packet"]).validate()
    return render("rtl/deploy_top.v.j2", top=DEPLOY_TOP, inner=inner, bus_bits=bus,
                  in_width=i["word_bits"], in_slot_bytes=i["slot_bytes"], in_words=i["words_per_frame"],
                  in_bus_words=i["bus_words_per_frame"], out_width=o["word_bits"],
                  out_slot_bytes=o["slot_bytes"], out_words=o["words_per_frame"],
                  out_bus_words=o["bus_words_per_frame"], frames_per_packet=io["frames_per_packet"])


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _tools() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from build_flows.sim import verilator
    tools = {"verilator": verilator.version()}
    for name in ("finn-plus", "qonnx", "brevitas", "torch", "numpy"):
        try:
            tools[name] = version(name)
        except PackageNotFoundError:
            pass
    return tools


def manifest(state, cfg, board, io: dict) -> dict:
    deploy = cfg.out / "deploy"
    files = {}
    for key, name in (("bitfile", BITFILE), ("hwh", HWH)):
        files[key] = {"name": name, "sha256": sha256(deploy / name)} if (deploy / name).is_file() else None
    cycles = state.sim.get("cycles_per_frame")
    return {
        "format": 1, "design": state.name, "board": cfg.board, "part": board.part,
        "clock_mhz": cfg.clock_mhz, **files,
        "dma": {"name": "axi_dma_0", "base": board.periph_base}, "io": "io.json",
        "rtl_dir": "../rtl", "vivado_dir": "../vivado",
        "expected": {"cycles_per_frame": cycles,
                     "fps": cfg.clock_mhz * 1e6 / cycles if cycles else None},
        "verified": {"frames": state.sim.get("frames"), "mismatches": state.sim.get("mismatches")},
        "build_config": json.loads(cfg.to_json()), "tools": _tools(),
    }


def write_package(state, cfg) -> dict:
    """OUT/vivado/ and OUT/deploy/ (+ deploy.zip); returns io.json's content."""
    from build_flows.deploy.boards import deploy_board
    from build_flows.deploy.vivado import write_vivado_dir
    try:
        board = deploy_board(cfg.board)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    io = io_spec(state, board.bus_bits, cfg.dma_frames)
    vivado = cfg.out / "vivado"
    vivado.mkdir(parents=True, exist_ok=True)
    (vivado / f"{DEPLOY_TOP}.v").write_text(render_deploy_top(io))
    from build_flows.rtl.stitch import FILELIST
    in_rtl = set((cfg.out / "rtl" / FILELIST).read_text().split())
    names = [n for n in DMA_SUPPORT if n not in in_rtl] + list(DMA_SOURCES)
    for name in names:
        shutil.copyfile(HW_DIR / name, vivado / name)
    # the deploy's own sources, after OUT/rtl/filelist.f's (build.tcl and the sim transport)
    (vivado / "filelist.f").write_text("".join(f"{n}\n" for n in (*names, f"{DEPLOY_TOP}.v")))
    write_vivado_dir(vivado, cfg.board, cfg.clock_mhz, board.bus_bits)
    deploy = cfg.out / "deploy"
    deploy.mkdir(parents=True, exist_ok=True)
    for name in ("driver.py", "validate.py", "demo.ipynb"):
        shutil.copyfile(BOARD_FILES / name, deploy / name)
    (deploy / "io.json").write_text(json.dumps(io, indent=1) + "\n")
    man = manifest(state, cfg, board, io)
    (deploy / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    (deploy / "README.md").write_text(render(
        "deploy/README.md.j2", design=state.name, board=cfg.board,
        clock_mhz=cfg.clock_mhz, part=board.part, frames_per_packet=io["frames_per_packet"],
        has_bitfile=man["bitfile"] is not None))
    zip_deploy(cfg.out)
    return io


def zip_deploy(out: Path) -> Path:
    """OUT/deploy.zip: every file of OUT/deploy/ under deploy/ (fixed timestamps)."""
    target = out / "deploy.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted((out / "deploy").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(str(Path("deploy") / path.relative_to(out / "deploy")),
                                       date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())
    return target


def run_vivado(state, cfg, say=print) -> dict:
    """OUT/vivado/build.tcl with the vivado on PATH, then the bitfile's and
    hwh's hashes into the manifest and a new deploy.zip."""
    exe = shutil.which("vivado")
    if exe is None:
        raise ConfigError("--vivado: no `vivado` on PATH; source Vivado's settings64.sh first, "
                          "or run the build in the docker image (docker/run.sh, README: On the board)")
    vivado = cfg.out / "vivado"
    log = vivado / "vivado.log"
    say(f"[vivado] {exe} -mode batch -source {vivado / 'build.tcl'} (log: {log}); synthesis, "
        "implementation and bitstream take tens of minutes")
    with open(log, "w") as fh:
        proc = subprocess.Popen([exe, "-mode", "batch", "-nojournal", "-notrace", "-log",
                                 str(vivado / "vivado.run.log"), "-source", str(vivado / "build.tcl")],
                                cwd=vivado, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            fh.write(line)
            if line.startswith(("INFO: [sdbnn]", "ERROR:", "CRITICAL WARNING:")) or "Launched" in line:
                say(f"[vivado] {line.rstrip()}")
        rc = proc.wait()
    if rc != 0:
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("ERROR")]
        raise VivadoError(f"Vivado failed (exit {rc}): {lines[-1] if lines else 'no ERROR line'}; "
                          f"full log {log}")
    deploy = cfg.out / "deploy"
    missing = [n for n in (BITFILE, HWH) if not (deploy / n).is_file()]
    if missing:
        raise VivadoError(f"Vivado finished but wrote no {', '.join(missing)} in {deploy}; see {log}")
    from build_flows.deploy.boards import deploy_board
    board = deploy_board(cfg.board)
    io = json.loads((deploy / "io.json").read_text())
    man = manifest(state, cfg, board, io)
    (deploy / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    zip_deploy(cfg.out)
    say(f"[vivado] bitfile {deploy / BITFILE} (sha256 {man['bitfile']['sha256'][:16]}...)")
    return man
