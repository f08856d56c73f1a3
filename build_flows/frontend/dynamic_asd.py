"""Dynamic ASD (SD-BNN's input-adaptive shift) as one HW node.

What Brevitas exports for quant_models.layers.DynamicASD, once streamlined
(frontend/streamline.py), per binarised layer:

    acc -> MultiThreshold A (8-bit q, NHWC) -> [Transpose to NCHW] -> Mul(c_in) = q
    q -> GlobalAveragePool -> Reshape -> MultiThreshold B (8-bit mean)      (conv layers only;
                                                   a 1x1 map has no GAP left, as CNV's last conv)
      -> MatMul(W1, 4-bit) -> MultiThreshold C (4-bit ReLU)
      -> MatMul(W2, 4-bit) -> [Mul(c_sig)] -> Sigmoid -> MultiThreshold D (4-bit shift)
      -> [Reshape] -> Mul(c_s) = s
    q + s -> MultiThreshold E (the sign, BINARY after the XNOR conversion)

:class:`FuseDynamicASD`, a streamline pass, replaces everything after A
by one ``DynamicASD`` node (this file's custom op, FINN's HWCustomOp style)
that reads A's unsigned counts in NHWC and writes E's bits in NHWC. A itself
stays and becomes the MVAU's 8-bit output (its bias -128 moves into the
tables). Every float step becomes an integer table, computed in exact
rational arithmetic (fractions.Fraction of the graph's float32 constants):

    sum[c]  = sum over pixels of the counts               (the GAP, times H*W)
    g[c]    = #{k : sum[c] >= GT[k]}                      (B on the mean; none for FC layers)
    h[j]    = #{k : sum_c W1[j][c] g[c] >= HT[j][k]}      (C, with B's and A's biases folded in)
    s[c]    = #{k : sum_j W2[c][j] h[j] >= ST[k]}         (D o sigmoid: x >= logit(t) / c_sig)
    out     = count >= RT[c][s[c]]                        (E on q + s, evaluated in float32)

RT is evaluated with the graph's own float32 operations (Mul, Add, compare), so
it is exact; GT, HT and ST are exact rational (and float64 for the logit) where
the graph computes in float32: they differ only where a float32 rounding
crosses a threshold, which the build's verification against PyTorch would
report. ``execute_node`` is the NumPy model (ops/dynamic_asd.py's golden) that
FINN's execute_onnx runs; tests/test_dynamic_asd_graph.py checks it against the
unfused graph.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from onnx import AttributeProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp

DOMAIN = "build_flows.frontend.dynamic_asd"


class FuseError(ValueError):
    """A dynamic-ASD pattern whose tables the unit cannot hold (message names the layer)."""


class DynamicASD(HWCustomOp):
    """Per-frame channel shifts from the frame's own means, then the sign.

    Input (N, H, W, C) or (N, C): unsigned counts (`qw` bits) of the layer's
    8-bit activation; output: the same shape, BINARY. Tables as flat ints."""

    def get_nodeattr_types(self):
        attrs = {
            "NumChannels": ("i", True, 0),
            "PE": ("i", True, 1),
            "numInputVectors": ("ints", True, [1]),  # [N, H, W] or [N]
            "inputDataType": ("s", True, "UINT8"),
            "hidden": ("i", True, 1),
            "w_bits": ("i", True, 4),
            "gap_thresholds": ("ints", False, []),  # GN, on the per-channel sum
            "w1": ("ints", True, []),  # hidden x C
            "hid_thresholds": ("ints", True, []),  # hidden x HN
            "w2": ("ints", True, []),  # C x hidden
            "shift_thresholds": ("ints", True, []),  # SN
            "replay_thresholds": ("ints", True, []),  # C x (SN + 1)
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    # shapes and types
    def get_normal_input_shape(self, ind=0):
        return tuple(self.get_nodeattr("numInputVectors")) + (self.get_nodeattr("NumChannels"),)

    def get_normal_output_shape(self, ind=0):
        return self.get_normal_input_shape()

    def get_folded_input_shape(self, ind=0):
        c, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        return tuple(self.get_nodeattr("numInputVectors")) + (c // pe, pe)

    def get_folded_output_shape(self, ind=0):
        return self.get_folded_input_shape()

    def get_input_datatype(self, ind=0):
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind=0):
        return DataType["BINARY"]

    def get_instream_width(self, ind=0):
        return self.get_nodeattr("PE") * self.get_input_datatype().bitwidth()

    def get_outstream_width(self, ind=0):
        return self.get_nodeattr("PE")

    def get_number_output_values(self):
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["BINARY"])

    def verify_node(self):
        return []

    def tables(self) -> dict:
        """The tables as int64 arrays in their shapes."""
        c, hid = self.get_nodeattr("NumChannels"), self.get_nodeattr("hidden")
        st = np.asarray(self.get_nodeattr("shift_thresholds"), dtype=np.int64)
        return {
            "gt": np.asarray(self.get_nodeattr("gap_thresholds"), dtype=np.int64),
            "w1": np.asarray(self.get_nodeattr("w1"), dtype=np.int64).reshape(hid, c),
            "ht": np.asarray(self.get_nodeattr("hid_thresholds"), dtype=np.int64).reshape(hid, -1),
            "w2": np.asarray(self.get_nodeattr("w2"), dtype=np.int64).reshape(c, hid),
            "st": st,
            "rt": np.asarray(self.get_nodeattr("replay_thresholds"), dtype=np.int64).reshape(c, len(st) + 1),
        }

    def execute_node(self, context, graph):
        x = context[self.onnx_node.input[0]]
        context[self.onnx_node.output[0]] = execute_tables(self.tables(), x).astype(np.float32)


def execute_tables(t: dict, x: np.ndarray) -> np.ndarray:
    """The unit's maths on x (N, ..., C) counts -> bits of the same shape:
    ops/dynamic_asd.py's golden model, the one the hardware is tested against."""
    from build_flows.ops.dynamic_asd import DynamicASDConfig
    x = np.asarray(np.rint(x), dtype=np.int64)
    c = x.shape[-1]
    pixels = int(np.prod(x.shape[1:-1])) if x.ndim > 2 else 1
    cfg = DynamicASDConfig(c=c, pe=1, pixels=pixels, qw=8, **{k: t[k] for k in
                                                               ("gt", "w1", "ht", "w2", "st", "rt")})
    return cfg.golden(x).astype(np.int64).reshape(x.shape)


# -- the pattern ------------------------------------------------------------

def _producer(model, tensor, op=None):
    p = model.find_producer(tensor)
    return p if p is not None and (op is None or p.op_type == op) else None


def _scalar(model, node) -> float | None:
    """The scalar constant of a Mul/Add (None if it is not one)."""
    for t in node.input[1:]:
        v = model.get_initializer(t)
        if v is not None:
            v = np.asarray(v)
            return float(v.reshape(-1)[0]) if v.size == 1 or np.all(v == v.reshape(-1)[0]) else None
    return None


def _mt(model, node):
    """(thresholds float32 (rows, n), out_scale, out_bias) of a MultiThreshold."""
    inst = getCustomOp(node)
    return (np.asarray(model.get_initializer(node.input[1]), dtype=np.float32),
            inst.get_nodeattr("out_scale"), inst.get_nodeattr("out_bias"))


def _skip(model, tensor, ops=("Reshape", "Transpose", "Flatten")):
    """The producer of tensor, walking back through reshapes; (node, path)."""
    path, p = [], model.find_producer(tensor)
    while p is not None and p.op_type in ops:
        path.append(p)
        p = model.find_producer(p.input[0])
    return p, path


def _at_least(t: Fraction, upper: int) -> int:
    """The integer threshold on an integer x for "x rounds up past t", where t
    is the midpoint below the quantiser's value `upper`: x >= t, except that a
    tie (x = t exactly) rounds half to even, as Brevitas (torch.round) and
    QONNX's Quant do; FINN's MultiThreshold rounds every tie up."""
    if t.denominator == 1:
        return int(t) if upper % 2 == 0 else int(t) + 1
    return math.ceil(t)


class Pattern:
    """The nodes of one dynamic-ASD block, found from its sign (MT E)."""

    def __init__(self, model: ModelWrapper, sign):
        self.sign, self.nodes = sign, []
        add = _producer(model, sign.input[0], "Add")
        if add is None or any(model.get_initializer(i) is not None for i in add.input):
            raise LookupError
        # one input of the Add is q = Mul(c_in)(A's counts), the other the shift
        qmul = None
        for i, t in enumerate(add.input):
            m = _producer(model, t, "Mul")
            if m is not None and model.is_fork_node(m):
                qmul, s_tensor = m, add.input[1 - i]
        if qmul is None:
            raise LookupError
        a, pre = _skip(model, qmul.input[0], ("Transpose",))
        if a is None or a.op_type != "MultiThreshold" or model.is_fork_node(a):
            raise LookupError
        self.a, self.qmul, self.add, self.pre = a, qmul, add, pre
        # the shift path, backwards from the Add
        smul = _producer(model, s_tensor, "Mul")
        if smul is None:
            raise LookupError
        d, p1 = _skip(model, smul.input[0])
        if d is None or d.op_type != "MultiThreshold":
            raise LookupError
        sig = _producer(model, d.input[0], "Sigmoid")
        if sig is None:
            raise LookupError
        sigmul = _producer(model, sig.input[0], "Mul")
        mm2 = _producer(model, (sigmul or sig).input[0], "MatMul")
        if mm2 is None:
            raise LookupError
        c = _producer(model, mm2.input[0], "MultiThreshold")
        mm1 = _producer(model, c.input[0], "MatMul") if c is not None else None
        if mm1 is None:
            raise LookupError
        self.smul, self.d, self.sig, self.sigmul, self.mm2, self.c, self.mm1 = (
            smul, d, sig, sigmul, mm2, c, mm1)
        self.b = self.gap = None
        p2 = []
        if mm1.input[0] != qmul.output[0]:  # a conv layer: GAP -> Reshape -> MT B
            b = _producer(model, mm1.input[0], "MultiThreshold")
            src, p2 = _skip(model, b.input[0]) if b is not None else (None, [])
            if src is not None and src.name == qmul.name:  # a 1x1 map: its GAP was an identity
                gap = None
            elif (src is not None and src.op_type == "GlobalAveragePool"
                  and src.input[0] == qmul.output[0]):
                gap = src
            else:
                raise LookupError
            self.b, self.gap = b, gap
        self.nodes = [n for n in [*pre, qmul, self.gap, *p2, self.b, mm1, c, mm2, sigmul, sig, d,
                                  *p1, smul, add, sign] if n is not None]
        inside = {n.name for n in self.nodes}
        for n in self.nodes[:-1]:
            if any(x.name not in inside for x in model.find_consumers(n.output[0]) or []):
                raise FuseError(f"layer {sign.name}: the tensor {n.output[0]} inside its dynamic-ASD "
                                "block feeds another layer too; the unit cannot expose it")

    def tables(self, model: ModelWrapper) -> dict:
        name = self.sign.name
        ta, sa, ba = _mt(model, self.a)
        if sa != 1.0:
            raise FuseError(f"layer {self.a.name}: activation scale {sa} in front of the dynamic ASD")
        n_a = ta.shape[-1]
        c = model.get_tensor_shape(self.a.output[0])[-1]
        c_in = _scalar(model, self.qmul)
        if c_in is None or c_in <= 0:
            raise FuseError(f"layer {name}: the 8-bit activation's scale is not a positive scalar")
        fin, fba = Fraction(c_in), Fraction(ba)
        shape = model.get_tensor_shape(self.a.output[0])
        pixels = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        # g: the counts of B on the mean, as thresholds on the sum of A's counts
        if self.b is not None:
            tb, sb, bb = _mt(model, self.b)
            if sb != 1.0 or not np.all(tb == tb[0]):
                raise FuseError(f"layer {self.b.name}: the mean's quantiser must be one per-tensor "
                                "8-bit scale")
            top = pixels * n_a + 1  # a sum never reaches it
            gt = [min(max(_at_least(Fraction(float(t)) * pixels / fin - pixels * fba, int(bb) + k + 1),
                          0), top) for k, t in enumerate(tb[0])]
            g_bias, g_scale = Fraction(bb), 1  # g's value in the graph: g + bb
        else:
            gt, g_bias, g_scale = [], fba, fin  # g = A's count; its value c_in (g + ba)
        w1 = np.asarray(model.get_initializer(self.mm1.input[1]), dtype=np.float64)  # (C, HID)
        w2 = np.asarray(model.get_initializer(self.mm2.input[1]), dtype=np.float64)  # (HID, C)
        for w, mm in ((w1, self.mm1), (w2, self.mm2)):
            if not np.all(w == np.rint(w)) or np.abs(w).max(initial=0) > 127:
                raise FuseError(f"layer {mm.name}: the SE weights are not small integers")
        w1, w2 = w1.astype(np.int64), w2.astype(np.int64)
        hid = w1.shape[1]
        # h: C's counts on acc1 = g_scale * sum_c W1 (g + g_bias)
        tc, sc, bc = _mt(model, self.c)
        if sc != 1.0 or bc != 0:
            raise FuseError(f"layer {self.c.name}: the hidden activation must be unsigned counts "
                            f"(scale {sc}, bias {bc})")
        tc = np.broadcast_to(tc, (hid, tc.shape[-1]))
        wsum = w1.sum(axis=0)
        ht = [[_at_least(Fraction(float(t)) / g_scale - g_bias * int(wsum[j]), int(bc) + k + 1)
               for k, t in enumerate(tc[j])] for j in range(hid)]
        # s: D o sigmoid on acc2 = sum_j W2 (h + bc), times c_sig
        c_sig = 1.0 if self.sigmul is None else _scalar(model, self.sigmul)
        if c_sig is None or c_sig == 0:
            raise FuseError(f"layer {name}: the sigmoid's input scale is not a non-zero scalar")
        td, sd, bd = _mt(model, self.d)
        if not np.all(td == td[0]):
            raise FuseError(f"layer {self.d.name}: the shift quantiser must be per tensor")
        if c_sig < 0:  # sigmoid(c x) = sigmoid(|c| (-x)): thresholds ascending on -acc2
            w2, c_sig = -w2, -c_sig
        amax = int(np.abs(w2).sum(axis=0).max(initial=0)) * tc.shape[-1]  # |acc2| <= this
        st = []
        for t in td[0].astype(np.float64):
            if t <= 0:
                st.append(-amax)
            elif t >= 1:
                st.append(amax + 1)
            else:
                st.append(min(max(math.ceil(math.log(t / (1 - t)) / c_sig), -amax), amax + 1))
        # RT: E on c_in (count + ba) + c_s (sd s + bd), in the graph's float32
        te, se, be = _mt(model, self.sign)
        c_s = _scalar(model, self.smul)
        if c_s is None or se != 1.0 or be != 0.0 or te.shape[-1] != 1:
            raise FuseError(f"layer {name}: the sign after the dynamic ASD must be one threshold "
                            "to BINARY")
        te = np.broadcast_to(te[:, 0], (c,)).astype(np.float32)
        counts = np.arange(n_a + 1, dtype=np.float32)
        q = np.float32(c_in) * (counts + np.float32(ba))  # (n_a + 1,)
        sn = td.shape[-1]
        sv = np.float32(c_s) * (np.float32(sd) * np.arange(sn + 1, dtype=np.float32) + np.float32(bd))
        total = q[None, :] + sv[:, None]  # (SN+1, counts)
        ok = total[None] >= te[:, None, None]  # (C, SN+1, counts)
        rt = np.where(ok.any(-1), ok.argmax(-1), n_a + 1)
        # E is >=: a larger total passes too, so the first passing count is the threshold
        if not np.all(ok == (counts[None, None] >= rt[..., None])):
            raise FuseError(f"layer {name}: the sign is not monotone in the activation")
        return {"gt": np.asarray(gt, dtype=np.int64), "w1": w1.T.copy(),
                "ht": np.asarray(ht, dtype=np.int64), "w2": w2.T.copy(),
                "st": np.asarray(st, dtype=np.int64), "rt": rt.astype(np.int64),
                "n_a": n_a, "pixels": pixels, "c": c, "hid": hid, "shape": shape}


class FuseDynamicASD(Transformation):
    """Every dynamic-ASD block -> A (now unsigned counts) -> DynamicASD ->
    [Transpose to NCHW] -> what the sign fed."""

    def apply(self, model: ModelWrapper):
        for sign in list(model.graph.node):
            if sign.op_type != "MultiThreshold":
                continue
            try:
                pat = Pattern(model, sign)
            except LookupError:
                continue
            t = pat.tables(model)
            a_inst = getCustomOp(pat.a)
            a_inst.set_nodeattr("out_bias", 0.0)
            qw = max(1, math.ceil(math.log2(t["n_a"] + 1)))
            a_inst.set_nodeattr("out_dtype", f"UINT{qw}")
            model.set_tensor_datatype(pat.a.output[0], DataType[f"UINT{qw}"])
            shape = t["shape"]
            out = model.make_new_valueinfo_name()
            model.set_tensor_shape(out, shape)
            node = helper.make_node(
                "DynamicASD", [pat.a.output[0]], [out], domain=DOMAIN, name="DynamicASD_" + sign.name,
                backend="fpgadataflow", NumChannels=t["c"], PE=1,
                numInputVectors=list(shape[:-1]), inputDataType=f"UINT{qw}", hidden=t["hid"],
                w_bits=4)
            for attr, key in (("gap_thresholds", "gt"), ("w1", "w1"), ("hid_thresholds", "ht"),
                              ("w2", "w2"), ("shift_thresholds", "st"), ("replay_thresholds", "rt")):
                node.attribute.append(helper.make_attribute(
                    attr, [int(v) for v in t[key].reshape(-1)], attr_type=AttributeProto.INTS))
            final = sign.output[0]
            if not pat.pre:  # the sign was channels-last already
                node.output[0] = final
            model.set_tensor_datatype(node.output[0], DataType["BINARY"])
            idx = list(model.graph.node).index(pat.a) + 1
            model.graph.node.insert(idx, node)  # (a copy: node is final here)
            if pat.pre:  # the sign was NCHW: transpose the NHWC bits back
                model.graph.node.insert(idx + 1, helper.make_node(
                    "Transpose", [out], [final], perm=[0, 3, 1, 2]))
            for n in pat.nodes:
                model.graph.node.remove(n)
            return model, True
        return model, False


def has_dynamic_asd(model: ModelWrapper) -> bool:
    return any(n.op_type == "DynamicASD" for n in model.graph.node)


__all__ = ["DynamicASD", "FuseDynamicASD", "FuseError", "execute_tables", "has_dynamic_asd"]
