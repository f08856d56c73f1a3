"""Resource estimates per stage: Yosys (estimate/yosys.py) for our RTL, each
stage in a one-stage top, and FINN's analytic models (each layer kind's
finn_estimate) for FINN's generators, for stages Yosys did not finish within
its limit, and for the early check before simulation. Totals are checked
against the board."""

from __future__ import annotations

import copy
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from build_flows.errors import DoesNotFitError
from build_flows.estimate.yosys import KEYS, YosysTimeout, synth
from build_flows.ops import BY_NAME
from build_flows.rtl.graph import Stage, StageGraph
from build_flows.rtl.stitch import TOP, all_stages, render_top

YOSYS_TIMEOUT = 120  # seconds per stage; larger stages fall back to FINN's models
_DEFAULT_MEM = re.compile(r'parameter\s+(?:string\s+)?\w+\s*=\s*"([\w.]+\.mem)"')


def finn_estimate(model, stage: Stage, part: str) -> dict:
    return BY_NAME[stage.op].finn_estimate(model, stage, part)


def _anonymous(stage: Stage) -> Stage:
    """The stage named X (its memory files too), so that equal designs share
    one synthesis result."""
    st = copy.copy(stage)
    st.name = "X"
    st.params = {k: (v.replace(stage.name, "X") if isinstance(v, str) else v)
                 for k, v in stage.params.items()}
    st.mem_files = {k.replace(stage.name, "X"): v for k, v in stage.mem_files.items()}
    return st


def _design_key(stage: Stage) -> tuple:
    st = _anonymous(stage)
    return (st.module, tuple(sorted(st.params.items())), tuple(map(str, st.sources)),
            tuple(sorted(st.mem_files.items())))


def yosys_stage(stage: Stage, work: Path) -> dict:
    """Yosys resources of one stage of ours, in a one-stage top."""
    st = _anonymous(stage)
    graph = StageGraph.chain([st], [1], 1)
    files = dict(st.mem_files)
    for src in st.sources:  # Yosys also opens a module's default memory files
        for default in _DEFAULT_MEM.findall(src.read_text()):
            files.setdefault(default, next((t for n, t in st.mem_files.items()
                                            if n.endswith("_" + default)), ""))
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.sv").write_text(render_top(graph))
    return synth(TOP, [*st.sources, work / "top.sv"], files=files, timeout=YOSYS_TIMEOUT,
                 work=work)


def estimate(graph: StageGraph, model, part: str, out: Path, yosys: bool = True,
             say=print) -> tuple[dict, dict]:
    """{stage name: resources + source} for every stage (FIFOs included) and the totals."""
    stages = all_stages(graph)
    ours = [st for st in stages if st.style == "ours"] if yosys else []

    def run(st):
        try:
            return yosys_stage(st, out / "synth" / st.name)
        except YosysTimeout:
            say(f"[estimate] {st.name}: Yosys took over {YOSYS_TIMEOUT} s, FINN's estimate used")
            return None

    unique = {_design_key(st): st for st in ours}  # equal FIFOs are synthesised once
    with ThreadPoolExecutor(max_workers=2) as pool:
        by_key = dict(zip(unique, pool.map(run, unique.values())))
    results = {st.name: by_key[_design_key(st)] for st in ours}
    per: dict[str, dict] = {}
    for st in stages:
        res = results.get(st.name)
        if res is not None:
            per[st.name] = {**res, "source": "yosys"}
        else:
            per[st.name] = {**finn_estimate(model, st, part), "source": BY_NAME[st.op].estimate_source}
    return per, totals(per.values())


def totals(resources) -> dict:
    total = {k: 0 for k in KEYS}
    for res in resources:
        for k in KEYS:
            total[k] += res[k]
    total["BRAM36"] = round(total["BRAM36"], 1)
    return total


def analytic_total(model, graph: StageGraph, part: str) -> dict:
    """FINN's analytic totals of the layers alone: the early check before any
    simulation, so a design far too big is refused in seconds."""
    return totals(finn_estimate(model, st, part) for st in graph.layers())


def check_fits(total: dict, board_name: str, board, clock_mhz: float, bottleneck_cycles: int) -> None:
    over = [f"{k} {total[k]:,} > {getattr(board, k):,}" for k in KEYS if total[k] > getattr(board, k)]
    if over:
        fps = clock_mhz * 1e6 / bottleneck_cycles
        ratio = max(total[k] / max(getattr(board, k), 1) for k in KEYS)
        raise DoesNotFitError(
            f"design does not fit {board_name} ({board.part}): {', '.join(over)}; lower --target-fps "
            f"(this folding reaches {fps:,.0f} FPS; try about {fps / (1.5 * ratio):,.0f}) "
            f"or pick a larger board")
