"""Shared helpers of the one-node op tests: build a tiny FINN HW graph (or a
QONNX graph that FINN's own convert_to_hw passes turn into one), execute it
with FINN's Python execution (qonnx execute_onnx, the reference), map it to
RTL with our ops registry and simulate the stitched design with Verilator.

Imported rootdir-style (`from opgraph import ...`) like tests/hw/hwsim.py:
pytest puts each test folder on sys.path, so this folder has no __init__.py
(its test files have names unique across tests/ for the same reason)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.basic import qonnx_make_model

from build_flows.frontend.finn_settings import finn_build_dir
from build_flows.rtl.graph import StageGraph
from build_flows.rtl.mapping import map_to_stages
from build_flows.sim.executor import execute
from build_flows.sim.stitched import deep_depths, run_graph

PART = "xc7z020clg400-1"  # pynq-z1 (build_flows/config.py)
CLK_NS = 10.0
HW_DOMAIN = "finn.custom_op.fpgadataflow"
# (name, input gap probability, output stall probability), as tests/hw/hwsim.py
PATTERNS = [("full", 0.0, 0.0), ("gaps", 0.4, 0.0), ("stall", 0.0, 0.4), ("both", 0.3, 0.3)]


def hw_node(op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs):
    """An un-specialised FINN HW node (domain finn.custom_op.fpgadataflow)."""
    return helper.make_node(op_type, inputs, outputs, domain=HW_DOMAIN, backend="fpgadataflow",
                            name=name, **attrs)


def make_model(nodes, tensors: dict[str, tuple[list[int], str]],
               inits: dict[str, tuple[np.ndarray, str]] | None = None) -> ModelWrapper:
    """A graph of `nodes`; tensors: name -> (shape, FINN datatype) of every
    activation tensor, the first one the graph input and the last one the
    graph output; inits: name -> (value, datatype) of the initializers."""
    names = list(tensors)
    vi = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s))
          for n, (s, _) in tensors.items()}
    graph = helper.make_graph(list(nodes), "op_test", [vi[names[0]]], [vi[names[-1]]],
                              value_info=[vi[n] for n in names[1:-1]])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="sdbnn-op-test"))
    for name, (_, dt) in tensors.items():
        model.set_tensor_datatype(name, DataType[dt])
    for name, (value, dt) in (inits or {}).items():
        model.set_initializer(name, np.asarray(value, dtype=np.float32))
        model.set_tensor_datatype(name, DataType[dt])
    return model


def mvau_node(name, inp, out, mw, mh, simd, pe, idt, wdt, odt, weights, thresholds=None,
              xnor=True, vectors=(1,)):
    """One MVAU node `inp` -> `out` and its initializers ({name: (value,
    datatype)}, as make_model takes them); weights (MW, MH) as FINN stores
    them; thresholds (MH, n), or None for noActivation=1. ActVal=0: what
    FINN's Infer*MatrixVectorActivation set for a BINARY or BIPOLAR output."""
    wname, tname = f"{name}_weights", f"{name}_thresh"
    ins = [inp, wname] + ([] if thresholds is None else [tname])
    node = hw_node("MVAU", ins, [out], name, MW=mw, MH=mh, SIMD=simd, PE=pe,
                   inputDataType=idt, weightDataType=wdt, outputDataType=odt, ActVal=0,
                   binaryXnorMode=int(xnor), noActivation=int(thresholds is None),
                   numInputVectors=list(vectors))
    inits = {wname: (weights, wdt)}
    if thresholds is not None:
        inits[tname] = (thresholds, "INT32")
    return node, inits


def mvau_model(mw, mh, simd, pe, idt, wdt, odt, weights, thresholds=None, xnor=True,
               vectors=(1,)) -> ModelWrapper:
    """A graph of one MVAU (mvau_node), input (*vectors, MW), output (*vectors, MH)."""
    node, inits = mvau_node("MVAU_0", "inp", "out", mw, mh, simd, pe, idt, wdt, odt, weights,
                            thresholds, xnor, vectors)
    return make_model([node], {"inp": ([*vectors, mw], idt), "out": ([*vectors, mh], odt)}, inits)


def finn_outputs(model: ModelWrapper, frames: np.ndarray) -> np.ndarray:
    """FINN's Python execution of `model`, one frame at a time (the HW nodes
    take batch 1): (N, elements per frame) int64 of the graph output."""
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    ishape = model.get_tensor_shape(iname)
    outs = []
    for frame in frames:
        res = execute_onnx(model, {iname: np.asarray(frame, dtype=np.float32).reshape(ishape)})
        out = res[oname]
        assert (out == np.round(out)).all(), "FINN's output is not integer"
        outs.append(out.astype(np.int64).reshape(-1))
    want = np.stack(outs)
    # our fast executor (sim/executor.py) must compute the same, on the whole batch
    fast = execute(model, np.asarray(frames), [oname])[oname].reshape(len(frames), -1)
    assert (fast == want).all(), f"fast executor differs from FINN: {fast[fast != want][:5]}"
    return want


def map_graph(model: ModelWrapper, tmp_path: Path) -> StageGraph:
    """Our mapping of the HW graph (FINN's generators need FINN_BUILD_DIR);
    deep FIFOs on the internal edges, if any."""
    with finn_build_dir(tmp_path / "finn_build"):
        graph = map_to_stages(model, tmp_path / "gen", PART, CLK_NS)
    if graph.internal_edges():
        graph = graph.with_depths(deep_depths(graph))
    return graph


def assert_bit_exact(graph: StageGraph, frames: np.ndarray, want: np.ndarray,
                     decode=None) -> None:
    """Simulate under the four stream patterns of tests/hw (free, input gaps,
    output back-pressure, both); every output element must equal `want` (N, elements).
    decode: maps the output elements to FINN's values first (e.g. bits to +-1)."""
    frames = np.asarray(frames, dtype=np.int64).reshape(len(frames), -1)
    for i, (name, gap, stall) in enumerate(PATTERNS):
        run = run_graph(graph, frames, stall_prob=stall, gap_prob=gap, seed=11 + i)
        got = run.outputs if decode is None else decode(run.outputs)
        assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
        bad = [tuple(int(i) for i in ix) for ix in np.argwhere(got != want)]
        assert not bad, (f"{name}: {len(bad)} elements differ, first at (frame, element) "
                         f"{bad[0]}: hardware {got[bad[0]]}, FINN {want[bad[0]]}")


def assert_varied(want: np.ndarray) -> None:
    """The reference is not trivial: not one value everywhere, and the frames differ."""
    assert len(np.unique(want)) > 1, "FINN's output is one value everywhere"
    assert len({row.tobytes() for row in want}) > 1, "every frame gives the same output"


def check_stages(graph: StageGraph, ops: list[str]) -> None:
    """The stage kinds, in stream order, and a positive cycle estimate for each."""
    layers = graph.layers()
    assert [st.op for st in layers] == ops
    for st in layers:
        assert st.expected_cycles > 0, f"{st.name}: expected_cycles {st.expected_cycles}"
