"""Mutation testing of the verification: inject single faults into a built
design and count how many the verification catches, and at which layer.

    python benchmarks/fault_injection.py                      # digits, 60 faults
    python benchmarks/fault_injection.py --model cnv_reduced --faults 40 --frames 4

A fault is one flipped weight (a binary weight inverted, an integer weight's
lowest bit toggled) or one threshold moved by +-1, in one MVAU, chosen at
random (seeded). It is applied to the HW graph (FINN's execution of the faulty
graph is the ground truth: is the fault visible on any link of the verified
frames, and which layer's output is the first to change?) and to the RTL's
memory files (a copy of the build's rtl/ with that layer's .mem files
regenerated). The faulty RTL is then verified as the build verifies a design
(sim/verify.py, free-running run: every beat of every link against the
original HW graph, the last layer's integers, the classes). A visible fault
counts as caught when the verification reports a difference, and as
localised when the difference names the layer the ground truth names. An
invisible fault (no link changes on the verified frames) is reported as such,
never counted as caught. The "top-1 only" column counts the faults that the
old check (the class of each frame) would have caught.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from build_flows.config import DEFAULT_CHECKPOINT, BuildConfig  # noqa: E402
from build_flows.flow import run_build  # noqa: E402
from build_flows.ops import REGISTRY, MapContext  # noqa: E402
from build_flows.sim import verify as V  # noqa: E402


@dataclass
class Fault:
    layer: str  # MVAU node / stage name
    kind: str  # "weight" or "threshold"
    where: tuple[int, int]  # (MW index, MH index) of a weight, (channel, threshold) of a threshold
    delta: int = 0  # threshold change


@dataclass
class Outcome:
    fault: Fault
    visible: bool
    expected: str | None  # the layer whose output the fault changes first (ground truth)
    caught: bool
    named: str | None  # the layer the verification named
    top1: bool  # a frame's class changed


def build(model: str, frames: int, work: Path):
    """The design up to FIFO sizing (the faults go into its rtl/)."""
    if model == "digits":
        # the folding the README's figures were measured at (the build's default is
        # now the fastest that fits, a different design)
        cfg = BuildConfig(board="pynq-z2", checkpoint=DEFAULT_CHECKPOINT, verify_images=frames,
                          target_fps=100_000, out=work / "digits", yosys=False)
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from helpers import reduced_cnv_onnx
        onnx = reduced_cnv_onnx(work / "cnv_reduced.onnx")
        cfg = BuildConfig(board="pynq-z2", onnx=onnx, dataset="random", verify_images=frames,
                          target_fps=25_000, out=work / "cnv_reduced", yosys=False)
    return run_build(cfg, to_step="size_fifos"), cfg


def draw_faults(hw, n: int, rng) -> list[Fault]:
    mvaus = [node for node in hw.graph.node if node.op_type == "MVAU"]
    faults = []
    for _ in range(n):
        node = mvaus[rng.integers(len(mvaus))]
        w = hw.get_initializer(node.input[1])
        has_thr = len(node.input) > 2 and hw.get_initializer(node.input[2]) is not None
        if has_thr and rng.random() < 0.5:
            t = hw.get_initializer(node.input[2])
            mh = w.shape[1]
            faults.append(Fault(node.name, "threshold", (int(rng.integers(mh)), int(rng.integers(t.shape[1]))),
                                int(rng.choice([-1, 1]))))
        else:
            faults.append(Fault(node.name, "weight", (int(rng.integers(w.shape[0])),
                                                      int(rng.integers(w.shape[1])))))
    return faults


def apply(hw, fault: Fault):
    """A copy of the HW graph with the fault."""
    from qonnx.core.datatype import DataType
    model = copy.deepcopy(hw)
    node = model.get_node_from_name(fault.layer)
    if fault.kind == "weight":
        w = model.get_initializer(node.input[1]).copy()
        dt = model.get_tensor_datatype(node.input[1])
        i, j = fault.where
        if dt == DataType["BINARY"]:
            w[i, j] = 1 - w[i, j]
        elif dt == DataType["BIPOLAR"]:
            w[i, j] = -w[i, j]
        else:
            w[i, j] = int(w[i, j]) ^ 1
        model.set_initializer(node.input[1], w)
    else:
        t = model.get_initializer(node.input[2])
        mh = model.get_initializer(node.input[1]).shape[1]
        t = np.array(np.broadcast_to(t, (mh, t.shape[1])))
        c, k = fault.where
        t[c, k] += fault.delta
        t[c] = np.sort(t[c])
        model.set_initializer(node.input[2], t)
    return model


def first_changed(graph, ref, faulty_ref) -> str | None:
    for e in V.link_order(graph):
        tensor = graph.src_port(e).tensor
        if (ref[tensor] != faulty_ref[tensor]).any():
            return e.src
    return None


def inject(state, cfg, faults: list[Fault], work: Path, say=print) -> list[Outcome]:
    graph, hw = state.graph, state.hw
    frames = state.frames()
    n = len(frames)
    tensors = sorted({graph.src_port(e).tensor for e in V.link_order(graph)})
    quiet = lambda *_: None  # noqa: E731
    ref = V.hw_reference(hw, frames, tensors, say=quiet)
    ctx = MapContext(work / "gen", cfg.board_info.part, cfg.clk_ns)
    timeout = V.watchdog_cycles(graph)
    outcomes = []
    for k, fault in enumerate(faults):
        faulty = apply(hw, fault)
        faulty_ref = V.hw_reference(faulty, frames, tensors, say=quiet)
        expected = first_changed(graph, ref, faulty_ref)
        stage = REGISTRY["MVAU"].stage(faulty, faulty.get_node_from_name(fault.layer), ctx)
        rtl = work / "faulty_rtl"
        shutil.rmtree(rtl, ignore_errors=True)
        shutil.copytree(state.rtl.path, rtl)
        for name, text in stage.mem_files.items():
            (rtl / name).write_text(text)
        run = V.run_verification(graph, rtl, work / "verify", frames, n, False, 0.0, cfg.seed, timeout)
        diff = V.compare_links(graph, run, "free_running", ref, n)
        named = diff.what.split()[1] if diff is not None and diff.what.startswith("layer ") else None
        top1 = bool((run.outputs[:, 0] != state.ref_classes).any())
        outcomes.append(Outcome(fault, expected is not None, expected, diff is not None, named, top1))
        if (k + 1) % max(1, len(faults) // 10) == 0:
            say(f"  {k + 1} of {len(faults)} faults injected")
    return outcomes


def table(outcomes: list[Outcome], model: str, frames: int) -> str:
    layers = sorted({o.fault.layer for o in outcomes}, key=lambda s: (len(s), s))
    head = (f"| {model}: layer | faults | visible on {frames} frames | caught | localised | "
            "invisible | caught by top-1 only |")
    lines = [head, "|" + "---|" * 7]
    rows = [(layer, [o for o in outcomes if o.fault.layer == layer]) for layer in layers]
    rows.append(("all", outcomes))
    for layer, os_ in rows:
        vis = [o for o in os_ if o.visible]
        lines.append(f"| {layer} | {len(os_)} | {len(vis)} | {sum(o.caught for o in vis)} | "
                     f"{sum(o.caught and o.named == o.expected for o in vis)} | "
                     f"{len(os_) - len(vis)} | {sum(o.top1 for o in vis)} |")
    false = [o for o in outcomes if not o.visible and o.caught]
    if false:
        lines.append(f"({len(false)} invisible faults were reported as differences: a bug)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["digits", "cnv_reduced"], default="digits")
    p.add_argument("--faults", type=int, default=60)
    p.add_argument("--frames", type=int, default=20, help="verified frames (default 20)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sdbnn-faults-") as tmp:
        work = Path(tmp)
        state, cfg = build(a.model, a.frames, work)
        faults = draw_faults(state.hw, a.faults, np.random.default_rng(a.seed))
        print(f"injecting {len(faults)} single faults into {state.name} ({a.frames} frames)")
        outcomes = inject(state, cfg, faults, work)
    print(table(outcomes, a.model, a.frames))
    vis = [o for o in outcomes if o.visible]
    ok = all(o.caught and o.named == o.expected for o in vis) and not any(
        o.caught for o in outcomes if not o.visible)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
