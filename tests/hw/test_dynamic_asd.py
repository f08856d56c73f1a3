"""hw/dynamic_asd.sv (SD-BNN's dynamic ASD: frame sums -> SE MLP -> per-channel
shift -> sign) against DynamicASDConfig.golden, under the four stream
patterns, with several frames so the frame ring and the parity banks wrap;
the steady-state cycles per frame against cycles()."""

import numpy as np
import pytest

from build_flows.estimate.yosys import YosysError, elaborate
from build_flows.ops.base import RTLParamError
from build_flows.ops.dynamic_asd import DynamicASDConfig
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources, steady_cycles

N_FRAMES = 6


def _frames(rng, pixels, c, qw, n=N_FRAMES):
    """n frames: all at the maximum, all 0, then frames whose channels have
    random levels (so the sums, and everything after them, differ)."""
    top = (1 << qw) - 1
    x = np.empty((n, pixels, c), dtype=np.int64)
    x[0], x[1] = top, 0
    for i in range(2, n):
        levels = rng.integers(0, top + 1, c)
        x[i] = rng.integers(0, levels + 1, (pixels, c))
    return x


def _spread(rng, values, n, lo_out=None, hi_out=None):
    """n ascending thresholds drawn inside the range of the observed values,
    the first / last optionally replaced by an out-of-range one (clipping)."""
    v = np.asarray(values).reshape(-1)
    t = np.sort(rng.integers(v.min(), v.max() + 2, n))
    if lo_out is not None and n > 2:
        t[0] = lo_out
    if hi_out is not None and n > 2:
        t[-1] = hi_out
    return np.sort(t)


def make_case(seed, c, pe, pixels, qw, gn, hid, hn, sn, w_bits=4, clip=False):
    """(config, frames): random valid tables, drawn from the frames' own
    intermediates so that every stage's counts take several values."""
    rng = np.random.default_rng(seed)
    x = _frames(rng, pixels, c, qw)
    lim = 1 << (w_bits - 1)
    smax = pixels * ((1 << qw) - 1)
    sums = x.sum(axis=1)
    gt = (_spread(rng, sums, gn, -5 if clip else None, smax + 9 if clip else None)
          if gn else np.zeros(0, np.int64))
    g = (sums[..., None] >= gt).sum(-1) if gn else sums
    w1 = rng.integers(-lim, lim, (hid, c))
    acc1 = g @ w1.T
    ht = np.stack([_spread(rng, acc1[:, j], hn, acc1[:, j].min() - 1000 if clip else None,
                           acc1[:, j].max() + 1000 if clip else None) for j in range(hid)])
    h = (acc1[..., None] >= ht[None]).sum(-1)
    w2 = rng.integers(-lim, lim, (c, hid))
    acc2 = h @ w2.T
    st = _spread(rng, acc2, sn, acc2.min() - 77 if clip else None, acc2.max() + 77 if clip else None)
    rt = rng.integers(0, (1 << qw) + 1, (c, sn + 1))
    rt[rng.random((c, sn + 1)) < 0.1] = 0  # always 1
    rt[rng.random((c, sn + 1)) < 0.1] = 1 << qw  # always 0
    cfg = DynamicASDConfig(c=c, pe=pe, pixels=pixels, qw=qw, gt=gt, w1=w1, ht=ht, w2=w2, st=st,
                           rt=rt, w_bits=w_bits)
    return cfg.validate(), x


# (id, make_case arguments); F = pixels * c / pe beats, M = 2c + B + 3 MLP cycles
CASES = [
    ("c5-pe1-px4-gn7", dict(seed=1, c=5, pe=1, pixels=4, qw=4, gn=7, hid=1, hn=1, sn=1)),
    ("c32-pe32-px1-gn255", dict(seed=2, c=32, pe=32, pixels=1, qw=8, gn=255, hid=3, hn=15,
                                sn=15, clip=True)),
    ("c12-pe4-px36-gn255", dict(seed=3, c=12, pe=4, pixels=36, qw=8, gn=255, hid=3, hn=15, sn=15)),
    ("c7-pe7-px4-gn0", dict(seed=4, c=7, pe=7, pixels=4, qw=8, gn=0, hid=2, hn=15, sn=15,
                            clip=True)),
    ("c9-pe3-px4-gn7", dict(seed=5, c=9, pe=3, pixels=4, qw=3, gn=7, hid=2, hn=1, sn=15)),
    # F == M: the frame ring's loop makes frames alternate M and M + 1 cycles
    ("c6-pe2-px5-gn0-equal", dict(seed=8, c=6, pe=2, pixels=5, qw=4, gn=0, hid=1, hn=1, sn=1)),
]


def test_lint():
    for _, case in CASES:
        lint("dynamic_asd", sources("dynamic_asd"), make_case(**case)[0].verilog_params())


@pytest.mark.parametrize("case", [pytest.param(a, id=i) for i, a in CASES])
def test_dynamic_asd_matches_golden(case):
    cfg, x = make_case(**case)
    st = cfg.stages(x)
    want = cfg.golden(x)
    assert 0 < want.mean() < 1, "outputs all 0 or all 1"
    assert len(np.unique(st["s"])) >= min(3, cfg.sn + 1), "s takes too few values"
    results = run_patterns("dynamic_asd", cfg.verilog_params(), cfg.pack_input(x), cfg.pe * cfg.qw,
                           cfg.pe, len(x) * cfg.out_words_per_image(),
                           mem_files=cfg.mem_files())
    for name, res in results.items():
        np.testing.assert_array_equal(cfg.unpack_output(res.out_words), want, err_msg=name)
    f, m = cfg.in_words_per_image(), cfg.mlp_cycles()
    measured = _steady(results["full"], f)
    if f != m:
        assert measured == cfg.cycles() == max(f, m)
    else:  # frames alternate M and M + 1 cycles; cycles() rounds the mean up
        assert cfg.cycles() == m + 1
        starts = results["full"].in_cycles[::f]
        assert set(np.diff(starts[2:]).tolist()) <= {m, m + 1}
        assert m < measured < m + 1


def _steady(res, f):
    """Cycles per frame between the first input handshakes of frames 2..N-1
    (steady_cycles from frame 2 on: frames 0 and 1 enter an empty ring, so
    in the MLP-bound case frame 2 starts one cycle late once)."""
    later = steady_cycles(type(res)(res.out_words, res.in_cycles[f:], res.out_cycles, -1), f)
    outs = res.out_cycles[::f]  # the output frames leave at the same rate
    assert np.diff(outs).max() - np.diff(outs).min() <= 1
    assert abs((outs[-1] - outs[2]) / (len(outs) - 3) - later) < 0.5
    return later


def test_both_bounds_covered():
    """The configurations include MLP-bound (F < M), input-bound (F > M) and
    equal-rate ones."""
    rates = [(c.in_words_per_image(), c.mlp_cycles()) for c in (make_case(**a)[0] for _, a in CASES)]
    assert any(f < m for f, m in rates) and any(f > m for f, m in rates)
    assert any(f == m for f, m in rates)


def test_golden_by_hand():
    """golden() against plain loops over the formulas, on a tiny config."""
    cfg = DynamicASDConfig(c=3, pe=1, pixels=2, qw=2, gt=(1, 3, 5), w1=((1, -2, 3), (-1, 0, 2)),
                           ht=((-2, 4), (0, 3)), w2=((2, -1), (-3, 1), (1, 1)), st=(-2, 1, 3),
                           rt=((0, 1, 2, 3), (4, 3, 2, 1), (2, 2, 1, 0))).validate()
    x = np.array([[[3, 0, 1], [2, 1, 3]], [[0, 0, 0], [1, 0, 2]], [[3, 3, 3], [3, 3, 3]]])
    hand = np.zeros_like(x)
    for n in range(len(x)):
        s_sum = [sum(int(x[n, p, c]) for p in range(2)) for c in range(3)]
        g = [sum(1 for t in cfg.gt if s_sum[c] >= t) for c in range(3)]
        acc1 = [sum(cfg.w1[j][c] * g[c] for c in range(3)) for j in range(2)]
        h = [sum(1 for t in cfg.ht[j] if acc1[j] >= t) for j in range(2)]
        acc2 = [sum(cfg.w2[c][j] * h[j] for j in range(2)) for c in range(3)]
        s = [sum(1 for t in cfg.st if acc2[c] >= t) for c in range(3)]
        for p in range(2):
            for c in range(3):
                hand[n, p, c] = int(x[n, p, c] >= cfg.rt[c][s[c]])
    np.testing.assert_array_equal(cfg.golden(x), hand)
    # frame 0 by hand: sums (5, 1, 4) -> g (3, 1, 2) -> acc1 (7, 1) -> h (2, 1)
    # -> acc2 (3, -5, 3) -> s (3, 0, 3) -> sel (3, 4, 0)
    np.testing.assert_array_equal(cfg.stages(x)["sel"][0], [3, 4, 0])
    np.testing.assert_array_equal(hand[0], [[1, 0, 1], [0, 0, 1]])


def test_widths():
    cfg = DynamicASDConfig(c=3, pe=1, pixels=2, qw=2, gt=(1, 3, 5), w1=((1, -2, 3), (-1, 0, 2)),
                           ht=((-2, 4), (0, 3)), w2=((2, -1), (-3, 1), (1, 1)), st=(-2, 1, 3),
                           rt=((0, 1, 2, 3), (4, 3, 2, 1), (2, 2, 1, 0)))
    assert cfg.sum_w == 3  # sums 0..6, gt 1..5
    assert cfg.g_w == 2  # g 0..3
    # acc1[0] in -6..12, acc1[1] in -3..6: signed 5 bits; h in 0..2
    assert cfg.acc1_w == 5
    # acc2 in -6..4 (row 1: -3*2 .. 1*2), st within: signed 4 bits
    assert cfg.acc2_w == 4
    assert cfg.mlp_cycles() == 2 * 3 + 2 + 3
    assert cfg.buffer_bits() == 2 * 6 * 2


def _small(**kw):
    a = dict(c=4, pe=2, pixels=2, qw=2, gt=(1, 2), w1=((1, 1, 1, 1),), ht=((0,),),
             w2=((1,),) * 4, st=(1,), rt=((1, 2),) * 4)
    a.update(kw)
    return DynamicASDConfig(**a)


@pytest.mark.parametrize("kw, match", [
    (dict(pe=3), "PE=3 does not divide C=4"),
    (dict(qw=17), "QW=17"),
    (dict(w_bits=1), "W_BITS=1"),
    (dict(gt=(2, 1)), "gt must be sorted ascending"),
    (dict(ht=((1, 0),)), "ht must be sorted ascending"),
    (dict(st=(3, 1), rt=((1, 2, 3),) * 4), "st must be sorted ascending"),
    (dict(w1=((8, 1, 1, 1),)), "w1 must be in -8..7"),
    (dict(w2=((-9,),) * 4), "w2 must be in -8..7"),
    (dict(rt=((1, 5),) * 4), "rt must be in 0..4"),
    (dict(rt=((1, 2, 3),) * 4), r"rt shape \(4, 3\) must be \(C, SN\+1\)"),
    (dict(w1=((1, 1, 1),)), r"w1 shape \(1, 3\) must be \(HID, C\)"),
    (dict(ht=((0,), (1,))), r"ht shape"),
    (dict(ht=np.zeros((1, 0), int)), "HN >= 1"),
    (dict(w2=((1, 1),) * 4), r"w2 shape"),
    (dict(st=(), rt=((1,),) * 4), "SN=0"),
    (dict(gt=(0.5, 1)), "gt must hold integers"),
])
def test_bad_params_python(kw, match):
    with pytest.raises(RTLParamError, match=match):
        _small(**kw).validate()


GOOD_RTL = {"C": 4, "PE": 2, "PIXELS": 2, "QW": 2, "SUM_W": 3, "GN": 2, "HID": 1, "W_BITS": 4,
            "ACC1_W": 4, "HN": 1, "ACC2_W": 3, "SN": 1}


@pytest.mark.parametrize("bad, match", [
    (dict(PE=3), "PE=3 must divide C=4"),
    (dict(PIXELS=0), "must all be >= 1"),
    (dict(SUM_W=2, PIXELS=3), "SUM_W=2 must be in QW=2..64"),
    (dict(HN=0), "HN=0 must be >= 1"),
    (dict(SN=0), "SN=0 must be >= 1"),
    (dict(W_BITS=9), "W_BITS=9 must be in 2..8"),
    (dict(ACC1_W=65), "ACC1_W=65 must be in 2..64"),
])
def test_bad_params_rtl(bad, match):
    with pytest.raises(SimCompileError, match=match):
        lint("dynamic_asd", sources("dynamic_asd"), {**GOOD_RTL, **bad})


def test_yosys_elaborates_and_refuses():
    """Yosys' SystemVerilog front end takes the unit (and its parameter checks)."""
    cfg, _ = make_case(**CASES[4][1])
    elaborate("dynamic_asd", sources("dynamic_asd"), cfg.verilog_params(), cfg.mem_files())
    with pytest.raises(YosysError, match="PE=%0d must divide C"):  # Yosys prints the format
        elaborate("dynamic_asd", sources("dynamic_asd"),
                  {**GOOD_RTL, **DynamicASDConfig.file_names(), "PE": 3}, _small().mem_files())
