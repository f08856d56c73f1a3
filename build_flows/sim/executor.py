"""A fast, bit-exact executor of the folded HW graph: NumPy over a whole batch
of frames at once, each layer kind's `execute` (ops/) on integer tensors
(channels last, as the streams carry them). It computes what FINN's Python
execution of the same graph computes (`execute_onnx`, one frame at a time)
and is checked against it: in tests/ops for every layer kind, and on every
build on the first frames (hw_reference), before it serves as the per-link
reference of the verification on all the others.

    tensors = execute(hw_model, frames)   # {tensor: (N, ...) int8/16/32/64}
"""

from __future__ import annotations

import copy

import numpy as np

from build_flows.errors import ToolError


class ExecutorError(ToolError):
    """The fast executor and FINN's execution disagree (a bug of ours)."""

    tool = "fast executor"


def execute(model, frames: np.ndarray, tensors: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every tensor of the HW graph (or those in `tensors`) for a batch of
    frames (N, input elements or input shape without the batch), as integer
    arrays of the narrowest type that holds them (compact()) with a leading
    batch axis, values as FINN's execution gives them (BIPOLAR as -1/+1)."""
    from build_flows.ops import REGISTRY
    iname = model.graph.input[0].name
    frames = np.asarray(frames)
    ctx = {iname: compact(frames.reshape(len(frames), *_frame_shape(model, iname)))}
    nodes = list(model.graph.node)
    last_use = {t: i for i, node in enumerate(nodes) for t in node.input}
    for i, node in enumerate(nodes):
        out = REGISTRY[node.op_type].execute(model, node, ctx[node.input[0]])
        ctx[node.output[0]] = compact(out).reshape(len(frames), *_frame_shape(model, node.output[0]))
        t = node.input[0]
        if tensors is not None and t not in tensors and last_use.get(t) == i:
            del ctx[t]  # only asked-for tensors are kept: a big batch fits in memory
    return ctx if tensors is None else {t: ctx[t] for t in tensors}


def compact(x) -> np.ndarray:
    """An integer-valued tensor in the narrowest integer type that holds it
    (bipolar and binary streams as int8): the next layer reads less memory."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        x = np.round(x)
    if x.size == 0:
        return x.astype(np.int64)
    lo, hi = x.min(), x.max()
    for t in (np.int8, np.int16, np.int32):
        if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return x.astype(t, copy=False)
    return x.astype(np.int64, copy=False)


def _frame_shape(model, tensor: str) -> list[int]:
    """A tensor's shape for one frame: without its batch axis of 1 (a graph
    without a batch axis, as some one-node test graphs are, keeps its shape)."""
    shape = list(model.get_tensor_shape(tensor))
    return shape[1:] if shape and shape[0] == 1 else shape


def int_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w for integer-valued x (..., K) and w (K, M), exactly, as int32
    (or int64 where a sum could leave int32).

    Where x fits int8 (or uint8, taken as x - 128 plus 128 * the column sums)
    and w fits int8, torch's int8 GEMM does the work: it accumulates in int32,
    exact for every K, and uses the CPU's int8 dot-product units (VNNI, AMX)
    where it has them: about 3-6x float32 BLAS on our machines, and OpenMP
    rather than OpenBLAS' spinning threads, which slow down 10x on a busy
    machine. Other ranges use float32 BLAS where every partial sum stays
    below 2**24, else float64 (exact below 2**53)."""
    x, w = np.asarray(x), np.asarray(w)
    if w.dtype.kind == "f" and (w != np.round(w)).any():
        raise ExecutorError("int_matmul: weights that are not integers (a HW graph's MVAU has integer weights)")
    lead, k = x.shape[:-1], x.shape[-1]
    x2 = x.reshape(-1, k)
    x_lo, x_hi = (int(x2.min()), int(x2.max())) if x2.size else (0, 0)
    w_lo, w_hi = (int(w.min()), int(w.max())) if w.size else (0, 0)
    bound = k * max(abs(x_lo), abs(x_hi), 1) * max(abs(w_lo), abs(w_hi), 1)
    out_t = np.int32 if bound < 2 ** 31 else np.int64
    if -128 <= w_lo and w_hi <= 127 and bound < 2 ** 31 and (
            (-128 <= x_lo and x_hi <= 127) or (0 <= x_lo and x_hi <= 255)):
        import torch
        shift = 128 if x_hi > 127 else 0
        # v - 128 as int8 is v ^ 0x80 as uint8, read as int8
        xi = (x2.astype(np.uint8) ^ np.uint8(0x80)).view(np.int8) if shift else x2.astype(np.int8)
        acc = torch._int_mm(torch.from_numpy(np.ascontiguousarray(xi)),
                            torch.from_numpy(np.ascontiguousarray(w.astype(np.int8)))).numpy()
        if shift:
            acc += shift * w.astype(np.int32).sum(axis=0, dtype=np.int32)
        return acc.reshape(*lead, w.shape[-1])
    ft = np.float32 if bound < 2 ** 24 else np.float64
    return np.rint(x2.astype(ft) @ w.astype(ft)).astype(out_t).reshape(*lead, w.shape[-1])


def multithreshold(x: np.ndarray, thresholds: np.ndarray, scale: int = 1, bias: int = 0) -> np.ndarray:
    """FINN's MultiThreshold with channels last: scale * #(x >= T[c, :]) + bias.

    x holds integers (of any dtype): x >= t is then x >= ceil(t), which lets x
    be compared in its own type (an integer type, or float32) without an
    upcast of the whole tensor."""
    t = np.asarray(thresholds, dtype=np.float64)
    t = np.broadcast_to(t, (x.shape[-1], t.shape[-1])) if t.shape[0] == 1 else t
    x = np.asarray(x)
    if x.dtype == np.float32:
        t = np.clip(np.ceil(t), -2.0 ** 24, 2.0 ** 24).astype(np.float32)
    elif x.dtype.kind in "iu" and x.size:
        # clipped to [min(x), max(x) + 1], a threshold compares the same with
        # every x there, and x and thresholds share one narrow integer type
        lo, hi = int(x.min()), int(x.max())
        t = compact(np.clip(np.ceil(t), lo, hi + 1))
        x = x.astype(np.promote_types(x.dtype, t.dtype), copy=False)
        t = t.astype(x.dtype, copy=False)
    if t.shape[-1] == 1:  # one threshold: a compare
        counts = (x >= t[:, 0]).astype(np.int8)
    else:
        counts = (x[..., None] >= t).sum(axis=-1, dtype=np.int32)
    if scale == 1 and bias == 0:
        return counts
    return compact(scale * counts.astype(np.int32) + bias)


def im2col(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, KH * KW * C), kernel positions outer and
    channels inner (FINN's Im2Col order), no padding."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    v = np.lib.stride_tricks.sliding_window_view(x, span, axis=(1, 2))  # (N, H', W', C, span)
    v = v[:, ::sh, ::sw, :, ::dh, ::dw]
    return np.ascontiguousarray(v.transpose(0, 1, 2, 4, 5, 3)).reshape(*v.shape[:3], -1)


def check_against_finn(model, frames: np.ndarray, fast: dict[str, np.ndarray],
                       tensors: list[str]) -> None:
    """FINN's execute_onnx on `frames` (one at a time) must give every tensor
    in `tensors` exactly as `fast` (the executor on the same frames) does."""
    from qonnx.core.onnx_exec import execute_onnx
    model = finn_reference_graph(model)
    iname = model.graph.input[0].name
    shape = model.get_tensor_shape(iname)
    for k, frame in enumerate(frames):
        ctx = execute_onnx(model, {iname: np.asarray(frame, dtype=np.float32).reshape(shape)},
                           return_full_exec_context=True)
        for t in tensors:
            want = np.asarray(ctx[t]).reshape(-1)
            got = fast[t][k].reshape(-1)
            if got.shape != want.shape or (got != want).any():
                i = int(np.argmax(got != want)) if got.shape == want.shape else 0
                raise ExecutorError(f"the fast executor differs from FINN's execution at tensor {t}, "
                                    f"frame {k}, element {i}: {got[i] if got.size > i else '-'} vs "
                                    f"{want[i] if want.size > i else '-'}")


def finn_reference_graph(model):
    """A copy of the HW graph that FINN's execute_onnx runs as the hardware
    computes: each layer kind's finn_reference() rewrite (only a padded binary
    convolution has one: its border correction as explicit FINN/ONNX nodes)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from build_flows.ops import REGISTRY
    ref = ModelWrapper(copy.deepcopy(model.model))
    for node in list(ref.graph.node):
        kind = REGISTRY.get(node.op_type)
        if kind is not None:
            kind.finn_reference(ref, node)
    return ref
