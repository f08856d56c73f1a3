"""report.json (stable keys) and report.html (templates/report.html.j2)."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "templates" / "report.html.j2"


def report_dict(state, cfg) -> dict:
    layers = []
    for st in state.layers:
        layers.append({"name": st.name, "op": st.op, "module": st.module, "PE": st.pe, "SIMD": st.simd,
                       "expected_cycles": int(st.expected_cycles),
                       "resources": state.layer_resources.get(st.name, {})})
    fifos = [{"name": n, "depth": d, "resources": state.layer_resources.get(n, {})}
             for n, d in zip([f"fifo_{i}" for i in range(len(state.fifo_depths))], state.fifo_depths)]
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
        "layers": layers,
        "fifos": fifos,
        "step_seconds": state.timings,
    }


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


def write(state, cfg) -> dict:
    data = report_dict(state, cfg)
    data["step_seconds"]["report"] = 0.0
    (cfg.out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    names = [layer["name"] for layer in data["layers"]]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    html = env.from_string(TEMPLATE.read_text()).render(
        r=data, cycles_svg=_bars([layer["expected_cycles"] for layer in data["layers"]], names),
        lut_svg=_bars([layer["resources"].get("LUT", 0) for layer in data["layers"]], names))
    (cfg.out / "report.html").write_text(html)
    return data
