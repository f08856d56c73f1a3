"""report.json (stable keys), report.html (templates/report/report.html.j2)
and the per-layer files FINN users look for in a build folder:

  estimate_layer_cycles.json        {layer: analytic cycles per frame} (FINN's format)
  estimate_layer_resources.json     {stage: {LUT, FF, BRAM36, BRAM_18K, DSP, source}}: FINN's
                                    file has BRAM_18K/LUT/URAM/DSP; ours adds FF and says
                                    where each figure comes from (yosys, finn, or analytic:
                                    our own model of a layer FINN has none for)
  estimate_network_performance.json critical_path_cycles, max_cycles, max_cycles_node_name,
                                    estimated_throughput_fps (FINN's keys, from the analytic
                                    cycles) and the measured II
  rtlsim_performance.json           written by the simulate step (FINN's keys, from the
                                    free-running Verilator run)
"""

from __future__ import annotations

import json

import numpy as np

from build_flows.templating import render



def report_dict(state, cfg) -> dict:
    layers = []
    for st in state.graph.layers():
        layers.append({"name": st.name, "op": st.op, "module": st.module, "PE": st.pe, "SIMD": st.simd,
                       "expected_cycles": int(st.expected_cycles),
                       "resources": state.layer_resources.get(st.name, {})})
    fifos = [{"name": n, "depth": d, "resources": state.layer_resources.get(n, {})}
             for n, d in state.graph.depths().items()]
    b = cfg.board_info
    return {
        "board": cfg.board,
        "part": b.part,
        "model": state.name,
        "clock_mhz": cfg.clock_mhz,
        "fits_board": all(state.resources[k] <= getattr(b, k) for k in ("LUT", "FF", "BRAM36", "DSP")),
        "resources": {k: state.resources[k] for k in ("LUT", "FF", "BRAM36", "DSP")},
        "board_resources": {"LUT": b.LUT, "FF": b.FF, "BRAM36": b.BRAM36, "DSP": b.DSP},
        "sim": state.sim,
        "accuracy": state.accuracy or None,
        "deploy": getattr(state, "deploy", None) or None,
        "target_not_met": getattr(state, "fold_cap", None) or None,  # absent in older saved states
        "host_tail": _host_tail(state),
        "folding_choice": getattr(state, "folding_choice", None) or None,
        "layers": layers,
        "fifos": fifos,
        "step_seconds": state.timings,
    }


def _host_tail(state) -> dict | None:
    """What the host computes after the accelerator (None: the accelerator outputs the class)."""
    if not getattr(state, "host_tail", False):
        return None
    a, b = (np.ravel(np.asarray(v, dtype=np.float64)).tolist() for v in state.output_affine)
    return {"computes": "logits = a * integer + b per class, then their argmax (ties: lower index)",
            "a": a, "b": b}


def _bars(values: list[float], labels: list[str], width: int = 640, bar_h: int = 18) -> str:
    """A horizontal bar chart as inline SVG."""
    top = max(values + [1])
    rows = []
    for i, (v, lab) in enumerate(zip(values, labels)):
        w = int((width - 260) * v / top)
        y = i * (bar_h + 4)
        rows.append(f'<text x="0" y="{y + 13}" font-size="12">{lab}</text>'
                    f'<rect x="200" y="{y}" width="{w}" height="{bar_h}" fill="#4a7ab5"/>'
                    f'<text x="{205 + w}" y="{y + 13}" font-size="12">{v:,.0f}</text>')
    h = len(values) * (bar_h + 4)
    return f'<svg width="{width}" height="{h}" xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>'


def finn_files(state, cfg) -> dict[str, dict]:
    """The FINN-named per-layer report files (see the module doc)."""
    layers = state.graph.layers()
    cycles = {st.name: int(st.expected_cycles) for st in layers}
    slowest = max(layers, key=lambda st: st.expected_cycles)
    resources = {name: {**res, "BRAM_18K": 2 * res["BRAM36"]}
                 for name, res in state.layer_resources.items()}
    network = {"critical_path_cycles": int(sum(cycles.values())),
               "max_cycles": int(slowest.expected_cycles), "max_cycles_node_name": slowest.name,
               "estimated_throughput_fps": round(cfg.clock_mhz * 1e6 / slowest.expected_cycles, 1),
               "measured_cycles_per_frame": state.sim.get("cycles_per_frame")}
    return {"estimate_layer_cycles.json": cycles, "estimate_layer_resources.json": resources,
            "estimate_network_performance.json": network}


def write(state, cfg) -> dict:
    for name, content in finn_files(state, cfg).items():
        (cfg.out / name).write_text(json.dumps(content, indent=2) + "\n")
    data = report_dict(state, cfg)
    data["step_seconds"]["report"] = 0.0
    (cfg.out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    names = [layer["name"] for layer in data["layers"]]
    html = render(
        "report/report.html.j2", html=True, r=data, cycles_svg=_bars([layer["expected_cycles"] for layer in data["layers"]], names),
        lut_svg=_bars([layer["resources"].get("LUT", 0) for layer in data["layers"]], names))
    (cfg.out / "report.html").write_text(html)
    return data
