"""hw/dma_to_stream.sv and hw/stream_to_dma.sv (the DMA boundary of the deploy
top) against the golden models of build_flows/ops/dma.py, under the four
stream patterns, at full rate; TLAST checked word by word."""

import numpy as np
import pytest

from build_flows.ops.base import RTLParamError
from build_flows.ops.dma import (DMAInConfig, DMAOutConfig, bus_words_per_frame,
                                 frames_to_bus_words, golden_to_dma, golden_to_stream, slot_bytes)
from build_flows.sim.verilator import SimCompileError, lint
from hwsim import run_patterns, sources


def _in(bus, word, words_per_frame):
    return DMAInConfig(bus, word, slot_bytes(word, bus), words_per_frame)


def _out(bus, word, words_per_frame, frames_per_packet):
    return DMAOutConfig(bus, word, slot_bytes(word, bus), words_per_frame, frames_per_packet)


# one compiled model each; together they cover split (partly filled / exactly
# filled last bus word, one slot per bus word) and collect mode on both buses
IN_CONFIGS = [
    pytest.param(_in(64, 1, 13), id="b64-w1-n13"),  # 8 slots a bus word, last one 5
    pytest.param(_in(64, 24, 5), id="b64-w24-n5"),  # slot 4: 2 a bus word, last one 1
    pytest.param(_in(64, 72, 3), id="b64-w72-n3"),  # slot 16: collect 2 bus words
    pytest.param(_in(128, 32, 8), id="b128-w32-n8"),  # slot 4: 4 a bus word, exact
    pytest.param(_in(128, 100, 3), id="b128-w100-n3"),  # slot 16 = the bus word
    pytest.param(_in(128, 200, 2), id="b128-w200-n2"),  # slot 32: collect 2
]
OUT_CONFIGS = [
    pytest.param(_out(64, 8, 16, 3), id="b64-w8-n16-p3"),  # 8 slots a bus word, exact
    pytest.param(_out(64, 24, 5, 3), id="b64-w24-n5-p3"),  # slot 4, last bus word half filled
    pytest.param(_out(64, 64, 3, 1), id="b64-w64-n3-p1"),  # slot 8 = the bus word
    pytest.param(_out(64, 200, 2, 3), id="b64-w200-n2-p3"),  # slot 32: collect 4
    pytest.param(_out(128, 32, 6, 1), id="b128-w32-n6-p1"),  # 4 slots a bus word, last one 2
    pytest.param(_out(128, 256, 1, 3), id="b128-w256-n1-p3"),  # slot 32: collect 2
]
N_FRAMES = 7  # TLAST repeats; with 3 frames a packet the 7th frame has none


def random_words(width, n, rng):
    return [int.from_bytes(rng.bytes((width + 7) // 8), "little") % (1 << width) for _ in range(n)]


def frame_words(cfg, rng):
    """N_FRAMES frames of random words, the first one all ones."""
    n = cfg.words_per_frame
    return [(1 << cfg.word_bits) - 1] * n + random_words(cfg.word_bits, (N_FRAMES - 1) * n, rng)


def spans(cfg, bus_in):
    """(input, output) cycles from the first to the last handshake at full
    rate: one accelerator word a cycle where a slot is at most a bus word (the
    bus side waits for a bus word's last slot), else one bus word a cycle."""
    n = N_FRAMES * cfg.words_per_frame
    bus_bytes = cfg.bus_bits // 8
    if cfg.slot_bytes > bus_bytes:
        r = cfg.slot_bytes // bus_bytes
        bus, word = n * r - 1, (n - 1) * r
    else:
        k = bus_bytes // cfg.slot_bytes
        first = min(k, cfg.words_per_frame)  # slots in a frame's first / last bus word
        last = cfg.words_per_frame - (cfg.bus_words_per_frame - 1) * k
        bus, word = n - (last if bus_in else first), n - 1
    return (bus, word) if bus_in else (word, bus)


@pytest.mark.parametrize("cfg", [pytest.param(*c.values, id=c.id) for c in IN_CONFIGS + OUT_CONFIGS])
def test_lint(cfg):
    """Both modules lint clean on every configuration (and the test tap)."""
    p = {**cfg.verilog_params(), "FRAMES_PER_PACKET": getattr(cfg, "frames_per_packet", 2)}
    lint("stream_to_dma", sources("stream_to_dma"), p)
    lint("stream_to_dma_tap", sources("stream_to_dma_tap"), p)
    del p["FRAMES_PER_PACKET"]
    lint("dma_to_stream", sources("dma_to_stream"), p)


@pytest.mark.parametrize("cfg", IN_CONFIGS)
def test_dma_to_stream(cfg):
    rng = np.random.default_rng(11)
    words = frame_words(cfg, rng)
    bus = frames_to_bus_words(words, cfg)
    # junk in every bit no slot's word uses: slot bits above the word, frame padding
    used = frames_to_bus_words([(1 << cfg.word_bits) - 1] * len(words), cfg)
    junk = random_words(cfg.bus_bits, len(bus), rng)
    bus = [b | (j & ~u) for b, j, u in zip(bus, junk, used)]
    if any(u != (1 << cfg.bus_bits) - 1 for u in used):
        assert bus != frames_to_bus_words(words, cfg)  # the junk is there
    assert golden_to_stream(bus, cfg) == words
    results = run_patterns("dma_to_stream", cfg.verilog_params(), bus, cfg.bus_bits,
                           cfg.word_bits, len(words), seed=20)
    for name, res in results.items():
        assert res.out_words == words, name
    full = results["full"]
    in_span, out_span = spans(cfg, bus_in=True)
    assert full.in_cycles[-1] - full.in_cycles[0] == in_span
    assert full.out_cycles[-1] - full.out_cycles[0] == out_span


@pytest.mark.parametrize("cfg", OUT_CONFIGS)
def test_stream_to_dma(cfg):
    words = frame_words(cfg, np.random.default_rng(12))
    want = golden_to_dma(words, cfg)
    assert len(want) == N_FRAMES * cfg.bus_words_per_frame
    results = run_patterns("stream_to_dma_tap", cfg.verilog_params(), words, cfg.word_bits,
                           cfg.bus_bits + 1, len(want), seed=30)
    mask = (1 << cfg.bus_bits) - 1
    for name, res in results.items():
        got = [(w & mask, bool(w >> cfg.bus_bits)) for w in res.out_words]
        assert len(got) == len(want), name
        for i, (g, w) in enumerate(zip(got, want)):
            assert g == w, f"{name}: bus word {i}: got {g[0]:#x} tlast={g[1]}, " \
                           f"want {w[0]:#x} tlast={w[1]}"
    full = results["full"]
    in_span, out_span = spans(cfg, bus_in=False)
    assert full.in_cycles[-1] - full.in_cycles[0] == in_span
    assert full.out_cycles[-1] - full.out_cycles[0] == out_span


def test_slot_bytes_rule():
    table = {(1, 64): 1, (8, 64): 1, (9, 64): 2, (24, 64): 4, (33, 64): 8, (64, 64): 8,
             (65, 64): 16, (72, 64): 16, (200, 64): 32, (32, 128): 4, (100, 128): 16,
             (128, 128): 16, (129, 128): 32, (200, 128): 32, (256, 128): 32, (264, 128): 48}
    assert {k: slot_bytes(*k) for k in table} == table
    assert bus_words_per_frame(5, 4, 64) == 3
    assert bus_words_per_frame(16, 1, 64) == 2
    assert bus_words_per_frame(3, 16, 64) == 6


def test_golden_by_hand():
    cfg = _out(64, 24, 5, 2)
    words = [0x111111, 0x222222, 0x333333, 0x444444, 0x555555] * 2
    frame = [0x00222222_00111111, 0x00444444_00333333, 0x00000000_00555555]
    assert golden_to_dma(words, cfg) == [(b, False) for b in frame] + \
        [(b, i == 2) for i, b in enumerate(frame)]
    cfg = _out(64, 72, 1, 1)  # slot 16: two bus words, low bits first
    assert golden_to_dma([0xAB_0123456789ABCDEF], cfg) == [(0x0123456789ABCDEF, False), (0xAB, True)]
    # input: slot bits above the word and the frame padding are ignored
    cfg = _in(64, 4, 3)
    assert golden_to_stream([0xFFFF_FFFF_FF_A5_C3_F2], cfg) == [0x2, 0x3, 0x5]


def test_golden_round_trip():
    """frames_to_bus_words then golden_to_stream gives the words back, and
    golden_to_dma packs the same bus words, with one TLAST per packet."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        bus = int(rng.choice([32, 64, 128, 256]))
        word = int(rng.integers(1, 3 * bus))
        n, frames, fpp = (int(v) for v in rng.integers(1, 9, 3))
        words = random_words(word, n * frames, rng)
        cin, cout = _in(bus, word, n), _out(bus, word, n, fpp)
        packed = frames_to_bus_words(words, cin)
        assert len(packed) == frames * cin.bus_words_per_frame
        assert golden_to_stream(packed, cin) == words
        out = golden_to_dma(words, cout)
        assert [b for b, _ in out] == packed
        m = cout.bus_words_per_frame
        assert [i for i, (_, last) in enumerate(out) if last] == \
            [(f + 1) * m - 1 for f in range(frames) if (f + 1) % fpp == 0]


BAD = [  # (parameters, message); the rest as in GOOD
    ({"BUS_W": 60}, "BUS_W=60 must be a multiple of 8 and >= 8"),
    ({"BUS_W": 0}, "BUS_W=0 must be a multiple of 8 and >= 8"),
    ({"WORD_W": 40, "SLOT_BYTES": 4}, r"WORD_W=40 must be <= SLOT_BYTES\*8=32"),
    ({"SLOT_BYTES": 2}, r"SLOT_BYTES=2 must be 1 = slot_bytes\(WORD_W=8, BUS_W=64\)"),
    ({"WORD_W": 72, "SLOT_BYTES": 9}, r"SLOT_BYTES=9 must be 16 = slot_bytes\(WORD_W=72, BUS_W=64\)"),
    ({"BUS_W": 24, "WORD_W": 16, "SLOT_BYTES": 2}, "SLOT_BYTES=2 does not divide BUS_W/8=3"),
    ({"WORDS_PER_FRAME": 0}, "WORDS_PER_FRAME=0 must be >= 1"),
    ({"FRAMES_PER_PACKET": 0}, "FRAMES_PER_PACKET=0 must be >= 1"),
]
GOOD = {"BUS_W": 64, "WORD_W": 8, "SLOT_BYTES": 1, "WORDS_PER_FRAME": 4, "FRAMES_PER_PACKET": 2}


@pytest.mark.parametrize("bad, message", BAD, ids=["-".join(f"{k}{v}" for k, v in b.items()) for b, _ in BAD])
def test_bad_params(bad, message):
    """The Python configs and the RTL elaboration refuse the same parameters."""
    p = {**GOOD, **bad}
    args = (p["BUS_W"], p["WORD_W"], p["SLOT_BYTES"], p["WORDS_PER_FRAME"])
    with pytest.raises(RTLParamError, match=f"stream_to_dma: {message}"):
        DMAOutConfig(*args, p["FRAMES_PER_PACKET"]).validate()
    with pytest.raises(SimCompileError, match=message):
        lint("stream_to_dma", sources("stream_to_dma"), p)
    if "FRAMES_PER_PACKET" in bad:
        DMAInConfig(*args).validate()  # dma_to_stream has no packets
        return
    del p["FRAMES_PER_PACKET"]
    with pytest.raises(RTLParamError, match=f"dma_to_stream: {message}"):
        DMAInConfig(*args).validate()
    with pytest.raises(SimCompileError, match=message):
        lint("dma_to_stream", sources("dma_to_stream"), p)
