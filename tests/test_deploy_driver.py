"""The board-side driver without a hardware build: the DMA stream packing of
build_flows/deploy/board/driver.py against a reference written here from the
spec (plain Python ints) and against the repo's own word packing; the
Accelerator's batching, shape check and class rule over an in-test loopback
transport; the PYNQ transport (bitfile hash, clock, DMA deadline) over a fake
`pynq` module; validate.py's CIFAR-10 readers and its errors."""

import ast
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from build_flows.deploy.board import driver
from build_flows.deploy.board import validate

BOARD = Path(driver.__file__).resolve().parent


# --------------------------------------------------------------------------- the reference

def ref_slot_bytes(word_bits, bus_bits):
    """The slot rule, written out: power-of-two slots inside a bus word,
    whole bus words beyond."""
    need = (word_bits + 7) // 8
    bus_bytes = bus_bits // 8
    size = 1
    while size < need:
        size *= 2
    if size <= bus_bytes:
        return size
    words = (need + bus_bytes - 1) // bus_bytes
    return words * bus_bytes


def make_side(elem_bits, lanes, word_bits, words, bus_bits, signed=False):
    slot = ref_slot_bytes(word_bits, bus_bits)
    bus_bytes = bus_bits // 8
    return {"elem_bits": elem_bits, "signed": signed, "lanes": lanes, "word_bits": word_bits,
            "words_per_frame": words, "slot_bytes": slot,
            "bus_words_per_frame": (words * slot + bus_bytes - 1) // bus_bytes}


def ref_pack(frames, side, bus_bits, junk=None):
    """Frames (lists of ints) -> the DMA buffer (bytes), one bit field at a
    time. junk: a random.Random that fills the bits the receiver ignores
    (slot bits above the word, frame padding) with noise instead of 0."""
    eb, lanes, wb = side["elem_bits"], side["lanes"], side["word_bits"]
    slot, bus_bytes = side["slot_bytes"], bus_bits // 8
    frame_bytes = side["bus_words_per_frame"] * bus_bytes
    out = b""
    for frame in frames:
        region = 0
        for k in range(side["words_per_frame"]):
            word = 0
            for i in range(lanes):
                j = k * lanes + i
                value = frame[j] if j < len(frame) else 0
                word |= (value % (1 << eb)) << (i * eb)  # % : two's complement of negatives
            region |= word << (8 * slot * k)
        if junk is not None:
            for bit in range(8 * frame_bytes):
                k, off = divmod(bit, 8 * slot)
                if (k >= side["words_per_frame"] or off >= wb) and junk.random() < 0.5:
                    region |= 1 << bit
        out += region.to_bytes(frame_bytes, "little")
    return out


def ref_unpack(buf, n_frames, side, bus_bits, numel):
    eb, lanes, slot = side["elem_bits"], side["lanes"], side["slot_bytes"]
    frame_bytes = side["bus_words_per_frame"] * bus_bits // 8
    frames = []
    for f in range(n_frames):
        region = int.from_bytes(buf[f * frame_bytes:(f + 1) * frame_bytes], "little")
        values = []
        for j in range(numel):
            k, i = divmod(j, lanes)
            v = (region >> (8 * slot * k + i * eb)) & ((1 << eb) - 1)
            if side["signed"] and v >= 1 << (eb - 1):
                v -= 1 << eb
            values.append(v)
        frames.append(values)
    return frames


def random_elements(rng, n, numel, eb, signed):
    lo, hi = (-(1 << (eb - 1)), 1 << (eb - 1)) if signed else (0, 1 << eb)
    return rng.integers(lo, hi, size=(n, numel), dtype=np.int64)


# (elem_bits, lanes, word_bits, words_per_frame, bus_bits, signed): 1/2/8/16-bit
# elements, 1/3/64 lanes, words of 1..1024 bits, split and collect slots, frames
# whose last bus word is partly filled, unused word bits above the lanes
CONFIGS = [
    (1, 1, 1, 5, 64, False),
    (1, 1, 1, 200, 128, False),
    (1, 64, 64, 3, 64, False),
    (1, 200, 200, 2, 64, False),
    (2, 3, 8, 9, 64, False),
    (2, 12, 24, 5, 128, True),
    (2, 36, 72, 3, 64, False),
    (2, 100, 200, 3, 128, False),
    (8, 1, 8, 11, 64, False),
    (8, 3, 24, 7, 64, False),
    (8, 3, 24, 6, 128, False),
    (8, 9, 72, 2, 128, True),
    (8, 25, 200, 1, 64, False),
    (8, 64, 512, 2, 64, False),
    (16, 1, 16, 10, 128, True),
    (16, 3, 48, 5, 128, True),
    (16, 3, 200, 3, 64, True),
    (16, 64, 1024, 1, 128, True),
]


def config_id(c):
    return f"e{c[0]}xl{c[1]}-w{c[2]}-n{c[3]}-bus{c[4]}{'-s' if c[5] else ''}"


def test_slot_rule_matches_the_spec_and_the_builds():
    from build_flows.ops.dma import bus_words_per_frame, slot_bytes
    for bus in (8, 16, 32, 64, 128, 256):
        for wb in range(1, 600):
            s = ref_slot_bytes(wb, bus)
            assert driver.slot_bytes(wb, bus) == s == slot_bytes(wb, bus)
            assert driver.bus_words_per_frame(7, s, bus) == bus_words_per_frame(7, s, bus)
    assert [driver.slot_bytes(w, 64) for w in (1, 8, 9, 24, 64, 72, 200)] == [1, 1, 2, 4, 8, 16, 32]
    assert [driver.slot_bytes(w, 128) for w in (72, 128, 129, 200)] == [16, 16, 32, 32]


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
def test_packing_round_trips_against_the_reference(cfg):
    eb, lanes, wb, words, bus, signed = cfg
    side = make_side(eb, lanes, wb, words, bus, signed)
    rng = np.random.default_rng(CONFIGS.index(cfg))
    n = 3
    for numel in sorted({words * lanes, max(1, words * lanes - lanes - 1)}):  # full / short frames
        el = random_elements(rng, n, numel, eb, signed)
        ref = ref_pack(el.tolist(), side, bus)
        got = driver.words_to_bus_bytes(driver.pack_words(el, side), side, bus)
        assert got.dtype == np.uint8 and got.size == n * side["bus_words_per_frame"] * bus // 8
        assert got.tobytes() == ref
        back = driver.unpack_words(driver.bus_bytes_to_words(got, n, side, bus), side, numel)
        assert back.dtype == np.int64 and back.tolist() == el.tolist()
        # the receiver ignores the slot bits above the word and the frame padding
        import random
        noisy = ref_pack(el.tolist(), side, bus, junk=random.Random(1))
        assert ref_unpack(noisy, n, side, bus, numel) == el.tolist()
        words_bits = driver.bus_bytes_to_words(np.frombuffer(noisy, np.uint8), n, side, bus)
        assert driver.unpack_words(words_bits, side, numel).tolist() == el.tolist()


def test_elements_are_masked_to_their_bits_on_input():
    side = make_side(2, 3, 8, 2, 64)
    el = np.array([[5, -1, 3, 4, 7, 2]])  # 5 -> 1, -1 -> 3, 4 -> 0, 7 -> 3
    got = driver.words_to_bus_bytes(driver.pack_words(el, side), side, 64)
    assert got.tobytes() == ref_pack([[1, 3, 3, 0, 3, 2]], side, 64)
    assert got.tobytes()[:2] == bytes([0b111101, 0b101100])


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c[1] * c[0] == c[2]], ids=config_id)
def test_word_packing_equals_the_repos_pack_stream(cfg):
    """The accelerator words: the driver's bit-level numpy and rtl/stream.py's
    packing (what the build's simulations feed the accelerator)."""
    from build_flows.ops.dma import DMAInConfig, frames_to_bus_words
    from build_flows.rtl.stream import pack_stream, unpack_stream
    eb, lanes, wb, words, bus, signed = cfg
    side = make_side(eb, lanes, wb, words, bus, signed)
    rng = np.random.default_rng(7)
    el = random_elements(rng, 4, words * lanes, eb, signed)
    word_ints = driver.words_to_ints(driver.pack_words(el, side))
    assert word_ints == pack_stream(el, wb, eb)
    bus_words = frames_to_bus_words(word_ints, DMAInConfig(bus, wb, side["slot_bytes"], words))
    buf = driver.words_to_bus_bytes(driver.pack_words(el, side), side, bus)
    assert driver.bytes_to_bus_words(buf, bus) == bus_words
    assert driver.bus_words_to_bytes(bus_words, bus).tobytes() == buf.tobytes()
    back = driver.unpack_words(driver.bus_bytes_to_words(buf, 4, side, bus), side)
    assert back.tolist() == unpack_stream(word_ints, wb, eb, 4, signed).tolist()


def io_config(shape=(3, 4, 5), layout="NHWC", table=None, in_side=None, out=None, bus=64, fpp=4):
    numel = int(np.prod(shape))
    in_side = in_side or make_side(8, 3, 24, -(-numel // 3), bus)
    out = out or {"kind": "integers", "numel": 10, "classes": 10,
                  **make_side(16, 5, 80, 2, bus, True), "affine": None}
    return {"format": 1, "bus_bits": bus, "frames_per_packet": fpp,
            "input": {"shape": list(shape), "layout": layout, "host_table": table, **in_side},
            "output": out}


def ref_input_elements(pixels, io):
    """Per pixel in Python: the table, the layout's element order."""
    inp = io["input"]
    n, c, h, w = pixels.shape
    frames = []
    for f in range(n):
        def value(ci, y, x):
            p = int(pixels[f, ci, y, x])
            return inp["host_table"][ci][p] if inp["host_table"] is not None else p
        if inp["layout"] == "NHWC":
            frames.append([value(ci, y, x) for y in range(h) for x in range(w) for ci in range(c)])
        else:
            frames.append([value(ci, y, x) for ci in range(c) for y in range(h) for x in range(w)])
    return frames


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("with_table", [False, True])
@pytest.mark.parametrize("bus", [64, 128])
def test_pack_input_applies_table_and_layout(layout, with_table, bus):
    rng = np.random.default_rng(11)
    shape = (3, 4, 5)
    table = rng.integers(-2, 2, size=(3, 256)).tolist() if with_table else None
    # a table of 2-bit signed values: 2-bit elements, 4 lanes, 7 words... and 8-bit pixels
    in_side = make_side(2, 4, 8, 15, bus, True) if with_table else make_side(8, 3, 24, 20, bus)
    io = driver.check_io(io_config(shape, layout, table, in_side, bus=bus))
    pixels = rng.integers(0, 256, size=(5, *shape), dtype=np.uint8)
    got = driver.pack_input(pixels, io)
    assert got.tobytes() == ref_pack(ref_input_elements(pixels, io), io["input"], bus)


def test_unpack_output_sign_extends():
    side = make_side(16, 5, 80, 2, 64, True)
    io = io_config(out={"kind": "integers", "numel": 10, "classes": 10, **side, "affine": None})
    values = [[-32768, -1, 0, 1, 32767, -2, 5, -300, 12, 0]]
    buf = np.frombuffer(ref_pack(values, side, 64), np.uint8)
    assert driver.unpack_output(buf, 1, io).tolist() == values


def test_cifar_batch_packs_in_well_under_a_second():
    import time
    io = driver.check_io(io_config((3, 32, 32), "NHWC", None, make_side(8, 3, 24, 1024, 64)))
    pixels = np.random.default_rng(0).integers(0, 256, size=(1000, 3, 32, 32), dtype=np.uint8)
    t0 = time.perf_counter()
    buf = driver.pack_input(pixels, io)
    assert time.perf_counter() - t0 < 0.8
    assert buf.size == 1000 * 1024 * 4
    # the first frame, spot-checked: pixel (c, y, x) at element (y*32 + x)*3 + c, slot of 4 bytes
    assert buf[:8].tolist() == [*pixels[0, :, 0, 0], 0, *pixels[0, :, 0, 1], 0]


def test_check_io_names_the_inconsistent_field():
    io = io_config()
    io["input"]["slot_bytes"] = 3
    with pytest.raises(driver.DriverError, match="input: slot_bytes=3"):
        driver.check_io(io)
    io = io_config()
    io["output"]["bus_words_per_frame"] += 1
    with pytest.raises(driver.DriverError, match="output: bus_words_per_frame"):
        driver.check_io(io)
    io = io_config()
    del io["input"]["layout"]
    with pytest.raises(driver.DriverError, match="io.json"):
        driver.check_io(io)


# --------------------------------------------------------------------------- the Accelerator

class Loopback(driver.Transport):
    """A trivial design, modelled from the spec with the reference packer: the
    output integers of a frame are its first `numel` input elements minus 100
    (kind "integers"), or element 0 mod classes (kind "class")."""

    name = "loopback"

    def __init__(self, io):
        self.io, self.sent = io, []

    @property
    def clock_mhz(self):
        return 123.0

    def transfer(self, in_bytes, out_nbytes, timeout_s):
        io, bus = self.io, self.io["bus_bits"]
        inp, out = io["input"], io["output"]
        assert isinstance(in_bytes, np.ndarray) and in_bytes.dtype == np.uint8
        self.sent.append(in_bytes.tobytes())
        n = io["frames_per_packet"]
        frames = ref_unpack(in_bytes.tobytes(), n, {**inp, "signed": False}, bus,
                            inp["words_per_frame"] * inp["lanes"])
        if out["kind"] == "class":
            results = [[f[0] % out["classes"]] for f in frames]
        else:
            results = [[v - 100 for v in f[:out["numel"]]] for f in frames]
        buf = ref_pack(results, out, bus)
        assert len(buf) == out_nbytes
        return np.frombuffer(buf, np.uint8)


def deploy_folder(path, io, manifest=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "io.json").write_text(json.dumps(io))
    man = {"format": 1, "design": "toy", "board": "pynq-z2", "part": "xc7z020clg400-1",
           "clock_mhz": 100.0, "bitfile": None, "hwh": None,
           "dma": {"name": "axi_dma_0", "base": 0x40400000}, "io": "io.json",
           "rtl_dir": "../rtl", "vivado_dir": "../vivado",
           "expected": {"fps": None, "cycles_per_frame": None}}
    man.update(manifest or {})
    (path / "manifest.json").write_text(json.dumps(man))
    return path


def toy_io(kind="integers", affine=None, fpp=4):
    shape = (2, 3, 2)  # 12 pixels: 12 elements of 8 bits, 4 words of 3 lanes
    if kind == "class":
        out = {"kind": "class", "numel": 1, "classes": 10, **make_side(8, 1, 8, 1, 64),
               "affine": None}
    else:
        out = {"kind": "integers", "numel": 10, "classes": 10, **make_side(16, 5, 80, 2, 64, True),
               "affine": affine}
    return io_config(shape, "NCHW", None, make_side(8, 3, 24, 4, 64), out, fpp=fpp)


def test_execute_batches_whole_packets_and_drops_the_padding(tmp_path):
    io = toy_io()
    deploy = deploy_folder(tmp_path / "deploy", io)
    loop = Loopback(io)
    acc = driver.Accelerator(deploy, transport=loop)
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(13, 2, 3, 2), dtype=np.uint8)
    classes, outputs = acc.execute(pixels, scores=True)
    assert len(loop.sent) == 4  # 13 frames in packets of 4: 3 full + one padded
    frame_bytes = io["input"]["bus_words_per_frame"] * 8
    assert {len(b) for b in loop.sent} == {4 * frame_bytes}
    assert loop.sent[-1][frame_bytes:] == bytes(3 * frame_bytes)  # zero images
    flat = pixels.reshape(13, -1).astype(np.int64)
    assert outputs.shape == (13, 10) and outputs.dtype == np.int64
    assert outputs.tolist() == (flat[:, :10] - 100).tolist()
    assert classes.dtype == np.int64
    assert classes.tolist() == [int(np.argmax(f[:10])) for f in flat]
    assert acc.execute(pixels[:4]).tolist() == classes[:4].tolist()
    assert len(loop.sent) == 5  # exactly one packet, no padding
    assert acc.stats["frames"] == 4 and acc.stats["packets"] == 1
    empty_classes, empty_out = acc.execute(pixels[:0], scores=True)
    assert empty_classes.shape == (0,) and empty_out.shape == (0, 10)


def test_execute_refuses_a_wrong_input_shape(tmp_path):
    io = toy_io()
    acc = driver.Accelerator(deploy_folder(tmp_path / "d", io), transport=Loopback(io))
    with pytest.raises(driver.DriverError) as e:
        acc.execute(np.zeros((3, 3, 2, 2), np.uint8))
    msg = str(e.value)
    assert "(3, 3, 2, 2)" in msg and "(N, 2, 3, 2)" in msg and "\n" not in msg
    with pytest.raises(driver.DriverError, match="batch axis"):
        acc.execute(np.zeros((2, 3, 2), np.uint8))
    with pytest.raises(driver.DriverError, match="0..255"):
        acc.execute(np.full((1, 2, 3, 2), 256))
    with pytest.raises(driver.DriverError, match="uint8"):
        acc.execute(np.zeros((1, 2, 3, 2), np.float32))
    # integer pixels in range are taken
    assert acc.execute(np.full((1, 2, 3, 2), 7, np.int64)).tolist() == [0]


def test_affine_class_rule_with_ties(tmp_path):
    """class = argmax(a * x + b) in float64, a and b per class or one value,
    ties to the lowest index."""
    a = [1.0, -1.0, 0.5, 2.0, 1.0, 1.0, 1.0, 2.0, 0.0, 1.0]
    b = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 150.0, 0.0]
    io = toy_io(affine={"a": a, "b": b})
    acc = driver.Accelerator(deploy_folder(tmp_path / "d", io), transport=Loopback(io))
    px = np.zeros((4, 2, 3, 2), np.uint8)
    flat = px.reshape(4, -1)
    flat[0, :10] = [100, 100, 100, 200, 100, 100, 100, 200, 100, 100]  # x = px - 100: 3 and 7 tie
    flat[1, :10] = 100  # x = 0: every score is 0 except class 8's 150
    # scores 50, 100, 75, 0, 20, 50, 30, 160, 150, 50
    flat[2, :10] = [150, 0, 250, 100, 120, 150, 130, 180, 0, 150]
    flat[3, :10] = 0  # x = -100: class 1's 100 < class 8's 150
    classes, outputs = acc.execute(px, scores=True)

    def ref(x):
        scores = [a[k] * x[k] + b[k] for k in range(10)]
        return max(range(10), key=lambda k: (scores[k], -k))
    assert classes.tolist() == [ref(x) for x in outputs.tolist()] == [3, 8, 7, 8]
    # one value for all classes: argmax of x itself, ties to the lowest index
    io1 = toy_io(affine={"a": [-2.0], "b": [1.0]})
    acc1 = driver.Accelerator(deploy_folder(tmp_path / "e", io1), transport=Loopback(io1))
    assert acc1.execute(px).tolist() == [0, 0, 1, 0]
    assert driver.classify(np.array([[3, 3, 1]]), {"output": {"kind": "integers",
                                                              "affine": None}}).tolist() == [0]


def test_kind_class_returns_the_class_as_outputs(tmp_path):
    io = toy_io("class", fpp=3)
    loop = Loopback(io)
    acc = driver.Accelerator(deploy_folder(tmp_path / "d", io), transport=loop)
    px = np.zeros((5, 2, 3, 2), np.uint8)
    px[:, 0, 0, 0] = [3, 17, 250, 9, 0]
    classes, outputs = acc.execute(px, scores=True)
    assert classes.tolist() == outputs.tolist() == [3, 7, 0, 9, 0]
    assert len(loop.sent) == 2


def test_throughput_test_reports_the_transports_clock(tmp_path, capsys):
    io = toy_io()
    acc = driver.Accelerator(deploy_folder(tmp_path / "d", io), transport=Loopback(io))
    res = acc.throughput_test(n_frames=10)
    assert set(res) >= {"fps", "latency_ms", "clock_mhz", "frames", "transport"}
    assert res["frames"] == 12 and res["clock_mhz"] == 123.0 and res["fps"] > 0
    assert res["transport"] == "loopback" and res["latency_ms"] > 0
    assert "123 MHz" in capsys.readouterr().out


def test_accelerator_errors_are_one_line(tmp_path):
    with pytest.raises(driver.DriverError, match="manifest.json not found"):
        driver.Accelerator(tmp_path, transport="sim")
    io = toy_io()
    deploy = deploy_folder(tmp_path / "d", io)
    with pytest.raises(driver.DriverError, match="unknown transport 'usb'"):
        driver.Accelerator(deploy, transport="usb")
    with pytest.raises(driver.DriverError, match="no bitfile yet.*--vivado"):
        driver.Accelerator(deploy, transport="pynq")


def test_register_dump_decodes_status_bits():
    text = driver.format_registers({"MM2S_DMACR": 0x1, "MM2S_DMASR": 0x2, "S2MM_DMACR": 0x1,
                                    "S2MM_DMASR": 0x71, "S2MM_LENGTH": 64})
    assert "MM2S_DMASR   (0x04) = 0x00000002 [Idle]" in text
    assert "S2MM_DMASR   (0x34) = 0x00000071 [Halted, DMAIntErr, DMASlvErr, DMADecErr]" in text
    assert "S2MM_DMACR   (0x30) = 0x00000001 [RS]" in text
    assert "S2MM_LENGTH  (0x58) = 0x00000040" in text
    err = driver.DmaTimeout("DMA S2MM transfer did not complete", {"S2MM_DMASR": 0x1})
    assert str(err).splitlines()[0] == "DMA S2MM transfer did not complete"
    assert "[Halted]" in str(err) and err.registers == {"S2MM_DMASR": 1}


# --------------------------------------------------------------------------- the PYNQ transport

FAKE_PYNQ = r'''
"""A stand-in for pynq (tests/test_deploy_driver.py): an overlay whose AXI
DMA loops frames back as a toy design: class = byte 0 of the input frame mod
10 (io.json of the test's CIFAR-size deploy folder). FAKE_PYNQ_MODE: ok,
stuck (S2MM never idle), error (S2MM reports DMASlvErr), short (S2MM gets
fewer bytes), clock (the PLL gives 90 % of the asked clock)."""
import json
import os
from pathlib import Path

import numpy as np

MODE = os.environ.get("FAKE_PYNQ_MODE", "ok")
loaded = []


class PynqBuffer(np.ndarray):
    def flush(self):
        pass

    def invalidate(self):
        pass

    def freebuffer(self):
        pass


def allocate(shape, dtype):
    return np.zeros(shape, dtype).view(PynqBuffer)


class _Clocks:
    def __init__(self):
        self._mhz = 50.0

    @property
    def fclk0_mhz(self):
        return self._mhz

    @fclk0_mhz.setter
    def fclk0_mhz(self, value):
        self._mhz = value * (0.9 if MODE == "clock" else 1.0)


Clocks = _Clocks()


class _Channel:
    def __init__(self, dma, s2mm):
        self.dma, self.s2mm, self.buf, self.idle = dma, s2mm, None, True

    def transfer(self, buf):
        self.buf, self.idle = buf, False
        if not self.s2mm:
            self.dma.run()


class _DMA:
    def __init__(self, io):
        self.io = io
        self.regs = {0x00: 1, 0x04: 2, 0x30: 1, 0x34: 2, 0x58: 0}
        self.sendchannel, self.recvchannel = _Channel(self, False), _Channel(self, True)

    def read(self, offset):
        return self.regs[offset]

    def run(self):
        src, dst = self.sendchannel.buf, self.recvchannel.buf
        bus = self.io["bus_bits"] // 8
        fin = self.io["input"]["bus_words_per_frame"] * bus
        fout = self.io["output"]["bus_words_per_frame"] * bus
        self.sendchannel.idle = True
        if MODE == "stuck":
            self.regs[0x34] = 0
            return
        if MODE == "error":
            self.regs[0x34] = 0x21
            return
        for f in range(len(src) // fin):
            dst[f * fout:(f + 1) * fout] = 0
            dst[f * fout] = src[f * fin] % 10
        self.regs[0x58] = len(dst) - (bus if MODE == "short" else 0)
        self.recvchannel.idle = True


class Overlay:
    def __init__(self, bitfile):
        folder = Path(bitfile).parent
        assert (folder / (Path(bitfile).stem + ".hwh")).is_file()
        loaded.append(str(bitfile))
        self.axi_dma_0 = _DMA(json.loads((folder / "io.json").read_text()))
        self.ip_dict = {"axi_dma_0": {}}
'''


def cifar_io(fpp=8):
    out = {"kind": "class", "numel": 1, "classes": 10, **make_side(8, 1, 8, 1, 64), "affine": None}
    return io_config((3, 32, 32), "NCHW", None, make_side(8, 3, 24, 1024, 64), out, fpp=fpp)


def board_folder(path, bit=b"the bitstream", hwh=b"<hwh/>", manifest=None):
    """A deploy folder as copied to the board: the board files, io.json,
    manifest.json with the hashes of sdbnn.bit and sdbnn.hwh."""
    path.mkdir(parents=True)
    (path / "sdbnn.bit").write_bytes(bit)
    (path / "sdbnn.hwh").write_bytes(hwh)
    man = {"bitfile": {"name": "sdbnn.bit", "sha256": hashlib.sha256(bit).hexdigest()},
           "hwh": {"name": "sdbnn.hwh", "sha256": hashlib.sha256(hwh).hexdigest()}}
    deploy_folder(path, cifar_io(), {**man, **(manifest or {})})
    for name in ("driver.py", "validate.py"):
        shutil.copyfile(BOARD / name, path / name)
    return path


@pytest.fixture
def fake_pynq(tmp_path, monkeypatch):
    folder = tmp_path / "fakepynq"
    folder.mkdir()
    (folder / "pynq.py").write_text(FAKE_PYNQ)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "pynq", raising=False)

    def use(mode="ok"):
        monkeypatch.setenv("FAKE_PYNQ_MODE", mode)
        sys.modules.pop("pynq", None)
        import pynq
        return pynq
    yield use
    sys.modules.pop("pynq", None)


def test_bitfile_hash_mismatch_names_both_hashes(tmp_path):
    deploy = board_folder(tmp_path / "d")
    man = json.loads((deploy / "manifest.json").read_text())
    assert driver.check_bitfile(deploy, man) == deploy / "sdbnn.bit"
    (deploy / "sdbnn.bit").write_bytes(b"the bitstream of another build")
    got = hashlib.sha256(b"the bitstream of another build").hexdigest()
    with pytest.raises(driver.BitfileMismatch) as e:
        driver.check_bitfile(deploy, man)
    msg = str(e.value)
    assert got in msg and man["bitfile"]["sha256"] in msg and "same build" in msg
    assert "\n" not in msg
    # the transport checks before it touches pynq (none is installed here)
    with pytest.raises(driver.BitfileMismatch):
        driver.PynqTransport(deploy, man)
    with pytest.raises(driver.BitfileMismatch):
        driver.Accelerator(deploy, transport="pynq")
    (deploy / "sdbnn.bit").write_bytes(b"the bitstream")
    (deploy / "sdbnn.hwh").write_bytes(b"<other/>")
    with pytest.raises(driver.BitfileMismatch, match="sdbnn.hwh"):
        driver.check_bitfile(deploy, man)
    (deploy / "sdbnn.hwh").unlink()
    with pytest.raises(driver.DriverError, match="sdbnn.hwh is missing"):
        driver.check_bitfile(deploy, man)
    with pytest.raises(driver.DriverError, match="no bitfile yet"):
        driver.check_bitfile(deploy, {**man, "bitfile": None})


def test_pynq_transport_without_pynq_says_so(tmp_path, monkeypatch):
    deploy = board_folder(tmp_path / "d")
    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq -> ImportError
    with pytest.raises(driver.DriverError, match="needs the pynq package.*pynq_venv"):
        driver.Accelerator(deploy, transport="pynq")


def test_pynq_transport_loads_sets_the_clock_and_transfers(tmp_path, fake_pynq, capsys):
    pynq = fake_pynq("ok")
    deploy = board_folder(tmp_path / "d")
    acc = driver.Accelerator(deploy, transport="pynq")
    assert pynq.loaded == [str(deploy / "sdbnn.bit")]
    assert acc.clock_mhz == pynq.Clocks.fclk0_mhz == 100.0
    px = np.zeros((11, 3, 32, 32), np.uint8)
    px[:, 0, 0, 0] = np.arange(11) * 7
    assert acc.execute(px).tolist() == [(7 * k) % 10 for k in range(11)]
    assert acc.stats["packets"] == 2
    res = acc.throughput_test(n_frames=16)
    assert res["transport"] == "pynq" and res["frames"] == 16 and res["clock_mhz"] == 100.0
    assert "100 MHz" in capsys.readouterr().out
    acc.close()


def test_pynq_clock_more_than_one_percent_off_is_an_error(tmp_path, fake_pynq):
    fake_pynq("clock")
    deploy = board_folder(tmp_path / "d")
    with pytest.raises(driver.DriverError, match=r"90\.000 MHz after setting 100\.000 MHz"):
        driver.Accelerator(deploy, transport="pynq")


def test_a_dma_that_never_completes_times_out_with_decoded_registers(tmp_path, fake_pynq):
    fake_pynq("stuck")
    deploy = board_folder(tmp_path / "d")
    acc = driver.Accelerator(deploy, transport="pynq", timeout_s=0.05)
    with pytest.raises(driver.DmaTimeout) as e:
        acc.execute(np.zeros((1, 3, 32, 32), np.uint8))
    msg = str(e.value)
    assert msg.splitlines()[0].startswith("DMA S2MM transfer did not complete within 0.05 s")
    for reg in ("MM2S_DMACR", "MM2S_DMASR", "S2MM_DMACR", "S2MM_DMASR", "S2MM_LENGTH"):
        assert reg in msg
    assert "(0x04) = 0x00000002 [Idle]" in msg and "(0x34) = 0x00000000 [-]" in msg


def test_dma_error_bits_and_a_short_packet_are_errors(tmp_path, fake_pynq):
    fake_pynq("error")
    acc = driver.Accelerator(board_folder(tmp_path / "d"), transport="pynq", timeout_s=5)
    with pytest.raises(driver.DmaError, match="S2MM reports DMASlvErr") as e:
        acc.execute(np.zeros((1, 3, 32, 32), np.uint8))
    assert not isinstance(e.value, driver.DmaTimeout)
    fake_pynq("short")
    acc = driver.Accelerator(board_folder(tmp_path / "e"), transport="pynq", timeout_s=5)
    with pytest.raises(driver.DmaError, match="S2MM received 56 bytes, expected 64"):
        acc.execute(np.zeros((1, 3, 32, 32), np.uint8))


# --------------------------------------------------------------------------- validate.py

def write_pickle_folder(folder, pixels, labels):
    folder.mkdir(parents=True)
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [int(v) for v in labels],
             b"data": pixels.reshape(len(pixels), -1), b"filenames": [b"x.png"] * len(labels)}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    return folder


def cifar_sample(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
            rng.integers(0, 10, size=n))


def test_validate_reads_the_cifar_pickle_folder_or_its_parent(tmp_path):
    pixels, labels = cifar_sample(12)
    folder = write_pickle_folder(tmp_path / "cifar-10-batches-py", pixels, labels)
    for d in (folder, tmp_path):
        got, lab = validate.load(d, 5, (3, 32, 32))
        assert got.dtype == np.uint8 and np.array_equal(got, pixels[:5])
        assert lab.tolist() == labels[:5].tolist()
    got, _ = validate.load(tmp_path, None, (3, 32, 32))
    assert len(got) == 12
    with pytest.raises(validate.ValidateError, match=r"3x32x32 .*design takes 1x28x28"):
        validate.load(tmp_path, 5, (1, 28, 28))


def write_image_tree(root, per_class, seed=0, classes=None):
    from PIL import Image
    rng = np.random.default_rng(seed)
    written = {}
    for name in classes or validate.CLASSES:
        (root / "test" / name).mkdir(parents=True)
        for k in range(per_class):
            img = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / "test" / name / f"{k:04d}.png")
            written[(name, k)] = img
    return written


def test_validate_reads_an_image_folder_class_by_class(tmp_path):
    from PIL import Image
    written = write_image_tree(tmp_path, 2)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "test" / "cat" / "z.jpg")
    (tmp_path / "test" / "cat" / "notes.txt").write_text("not a picture")
    pixels, labels = validate.load(tmp_path, 12, (3, 32, 32))
    assert labels.tolist() == list(range(10)) + [0, 1]  # round robin over the classes
    assert np.array_equal(pixels[0], written[("airplane", 0)].transpose(2, 0, 1))
    assert np.array_equal(pixels[9], written[("truck", 0)].transpose(2, 0, 1))
    assert np.array_equal(pixels[11], written[("automobile", 1)].transpose(2, 0, 1))
    pixels, labels = validate.load(tmp_path, None, (3, 32, 32))
    assert len(pixels) == 21 and int((labels == 3).sum()) == 3  # the .jpg counts, the .txt not
    with pytest.raises(validate.ValidateError,
                       match=r"0000.png is 32x32 pixels, the design takes 28x28"):
        validate.load(tmp_path, 3, (3, 28, 28))


def test_validate_refuses_an_unknown_class_folder(tmp_path):
    write_image_tree(tmp_path, 1, classes=["airplane", "cat", "kangaroo"])
    with pytest.raises(validate.ValidateError, match="unknown class folder 'kangaroo'"):
        validate.load(tmp_path, 3, (3, 32, 32))
    proc = run_validate(["--transport", "pynq", "--data-dir", str(tmp_path), "--n", "3"])
    assert_one_error(proc, "unknown class folder 'kangaroo'")


def run_validate(args, cwd=None, env=None, script=BOARD / "validate.py"):
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=300)


def assert_one_error(proc, text):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], proc.stderr


def test_validate_refuses_a_folder_with_neither_layout(tmp_path):
    (tmp_path / "train").mkdir()
    proc = run_validate(["--transport", "sim", "--data-dir", str(tmp_path), "--n", "4"])
    assert_one_error(proc, str(tmp_path))
    assert "cifar-10-batches-py/test_batch" in proc.stderr and "test/<class>" in proc.stderr
    proc = run_validate(["--transport", "sim", "--data-dir", str(tmp_path / "nope")])
    assert_one_error(proc, "is not a folder")
    proc = run_validate(["--transport", "fpga", "--data-dir", str(tmp_path)])
    assert_one_error(proc, "invalid choice")


def test_validate_errors_of_the_driver_are_one_line(tmp_path):
    """A deploy folder without a bitfile (a build without --vivado): the
    driver's DriverError, as one error line."""
    pixels, labels = cifar_sample(4)
    data = write_pickle_folder(tmp_path / "cifar-10-batches-py", pixels, labels)
    deploy = board_folder(tmp_path / "deploy", manifest={"bitfile": None})
    proc = run_validate(["--transport", "pynq", "--data-dir", str(data)],
                        script=deploy / "validate.py")
    assert_one_error(proc, "no bitfile yet")


def test_validate_on_the_board_with_a_fake_pynq(tmp_path):
    """The deploy folder as on the board (driver.py and validate.py copied),
    the fake pynq's toy design (class = pixel (0, 0, 0) mod 10): validate.py
    reports the accuracy the labels give and writes validate.json."""
    (tmp_path / "fakepynq").mkdir()
    (tmp_path / "fakepynq" / "pynq.py").write_text(FAKE_PYNQ)
    deploy = board_folder(tmp_path / "deploy")
    pixels, labels = cifar_sample(21, seed=5)
    pixels[:, 0, 0, 0] = labels + 10 * (np.arange(21) % 2)  # the toy design's class: right...
    pixels[::3, 0, 0, 0] = (labels[::3] + 1) % 10  # ...but every third picture
    data = write_pickle_folder(tmp_path / "data" / "cifar-10-batches-py", pixels, labels)
    proc = run_validate(["--transport", "pynq", "--data-dir", str(tmp_path / "data"), "--n", "20"],
                        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "fakepynq")},
                        script=deploy / "validate.py")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "validate.json").read_text())
    expected = float(np.mean(pixels[:20, 0, 0, 0] % 10 == labels[:20]))
    assert report["images"] == 20 and report["accuracy"] == pytest.approx(expected)
    assert report["transport"] == "pynq" and report["clock_mhz"] == 100.0 and report["fps"] > 0
    assert f"accuracy {expected:.2%}" in proc.stdout
    # a DMA that never completes: one error line, then the register dump
    proc = run_validate(["--transport", "pynq", "--data-dir", str(data), "--n", "2",
                         "--timeout", "0.05", "--out", str(tmp_path / "v2.json")],
                        env={"PYTHONPATH": str(tmp_path / "fakepynq"), "FAKE_PYNQ_MODE": "stuck"},
                        script=deploy / "validate.py")
    assert_one_error(proc, "DMA S2MM transfer did not complete")
    assert "S2MM_DMASR" in proc.stderr


# --------------------------------------------------------------------------- the board files

BOARD_IMPORTS = {"__future__", "abc", "hashlib", "json", "pathlib", "sys", "time", "numpy"}
LAZY_IMPORTS = {"pynq", "build_flows.deploy.sim_transport"}
VALIDATE_IMPORTS = {"__future__", "argparse", "json", "pickle", "sys", "time", "pathlib", "numpy",
                    "driver", "PIL"}


def imports(path):
    tree = ast.parse(path.read_text())
    top, nested = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            (top if node in tree.body else nested).update(names)
    return top, nested


def test_board_files_import_only_the_standard_library_numpy_and_pynq():
    top, nested = imports(BOARD / "driver.py")
    assert top <= BOARD_IMPORTS and nested <= LAZY_IMPORTS, (top, nested)
    top, nested = imports(BOARD / "validate.py")
    assert top | nested <= VALIDATE_IMPORTS


def test_demo_notebook_is_valid_nbformat_4():
    nb = json.loads((BOARD / "demo.ipynb").read_text())
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code") and "id" in cell
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and "execution_count" in cell
    for text in code:
        compile(text, "demo.ipynb", "exec")
    joined = "\n".join(code)
    for needle in ('transport="pynq"', "acc.execute(", "throughput_test(", "imshow", "CLASSES["):
        assert needle in joined


def test_readme_template_renders_with_and_without_a_bitfile():
    from build_flows.templating import render
    values = dict(design="cnv", board="pynq-z2", clock_mhz=100.0, part="xc7z020clg400-1",
                  frames_per_packet=16)
    with_bit = render("deploy/README.md.j2", has_bitfile=True, **values)
    without = render("deploy/README.md.j2", has_bitfile=False, **values)
    assert "no bitfile yet" in without and "no bitfile yet" not in with_bit
    for text in (with_bit, without):
        for needle in ("v3.0.1", "scp -r", "sudo -i", "source /etc/profile.d/pynq_venv.sh",
                       "validate.py --transport pynq --data-dir", "sha256", "100.0 MHz",
                       "DmaTimeout", "xc7z020clg400-1"):
            assert needle in text
        assert "\n\n\n" not in text


# --------------------------------------------------------------------------- the sim transport

TOY_TOP = r"""// A toy accelerator for the sim transport's tests: each 3 x 8-bit input word
// becomes one 16-bit word, the lanes' sum minus the offset in offset.mem.
`default_nettype none
module sdbnn_top (
    input  wire logic        clk,
    input  wire logic        rst,
    input  wire logic [23:0] s_axis_tdata,
    input  wire logic        s_axis_tvalid,
    output logic             s_axis_tready,
    output logic      [15:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  wire logic        m_axis_tready
);
  logic [15:0] offset [0:0];
  initial $readmemh("offset.mem", offset);
  assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
  always_ff @(posedge clk) begin
    if (rst) begin
      m_axis_tvalid <= 1'b0;
    end else if (s_axis_tready) begin
      m_axis_tvalid <= s_axis_tvalid;
      if (s_axis_tvalid)
        m_axis_tdata <= 16'(s_axis_tdata[7:0]) + 16'(s_axis_tdata[15:8])
                        + 16'(s_axis_tdata[23:16]) - offset[0];
    end
  end
endmodule
`default_nettype wire
"""


def toy_sim_io(fpp=3):
    # (3, 5, 1) NHWC: 15 elements, 5 words of 3 lanes in 4-byte slots: 20 bytes,
    # 3 bus words (the last one half filled); out: 5 signed 16-bit words, 2 bus words
    out = {"kind": "integers", "numel": 5, "classes": 5, **make_side(16, 1, 16, 5, 64, True),
           "affine": None}
    return io_config((3, 5, 1), "NHWC", None, make_side(8, 3, 24, 5, 64), out, fpp=fpp)


def toy_reference(pixels):
    x = pixels.transpose(0, 2, 3, 1).reshape(len(pixels), 5, 3).astype(np.int64)
    return x.sum(axis=2) - 300


@pytest.fixture(scope="module")
def toy_build(tmp_path_factory):
    """OUT/{rtl,vivado,deploy} of the toy accelerator: the deploy top rendered
    by the package step with the DMA boundary modules of hw/."""
    from build_flows.deploy.package import render_deploy_top
    out = tmp_path_factory.mktemp("toy") / "OUT"
    rtl = out / "rtl"
    rtl.mkdir(parents=True)
    (rtl / "sdbnn_top.sv").write_text(TOY_TOP)
    (rtl / "filelist.f").write_text("sdbnn_top.sv\n")
    (rtl / "offset.mem").write_text("012c\n")
    (out / "vivado").mkdir()
    io = toy_sim_io()
    (out / "vivado" / "sdbnn_deploy_top.v").write_text(render_deploy_top(io))
    deploy = deploy_folder(out / "deploy", io, {"clock_mhz": 150.0})
    return deploy


def test_sim_transport_equals_the_toy_model_with_and_without_stalls(toy_build):
    pixels = np.random.default_rng(4).integers(0, 256, size=(7, 3, 5, 1), dtype=np.uint8)
    expected = toy_reference(pixels)
    for kw in ({}, {"stall_prob": 0.4, "seed": 2}):
        acc = driver.Accelerator(toy_build, transport="sim", **kw)
        classes, outputs = acc.execute(pixels, scores=True)  # 7 frames: 3 packets of 3
        assert outputs.tolist() == expected.tolist()
        assert classes.tolist() == np.argmax(expected, axis=1).tolist()
        assert acc.stats["packets"] == 3 and acc.stats["simulated"]
        regs = acc.transport.registers()
        assert regs["MM2S words sent"] == 9 and regs["S2MM words received"] == 6
        acc.close()
    res = driver.Accelerator(toy_build, transport="sim").throughput_test(n_frames=3)
    assert res["transport"] == "sim (simulated)" and res["clock_mhz"] == 150.0
    assert 0 < res["fps"] < 150e6 / 5  # at most one frame per 5 cycles (5 words)


def test_sim_transport_takes_the_vivado_filelist(toy_build):
    """With OUT/vivado/filelist.f (the package step's), its copies are used."""
    from build_flows.deploy.sim_transport import deploy_sources
    from build_flows.ops.base import HW_DIR
    vivado = toy_build.parent / "vivado"
    man = json.loads((toy_build / "manifest.json").read_text())
    sources, mems = deploy_sources(toy_build, man)
    assert [p.name for p in sources] == ["sdbnn_top.sv", "axis_skid.sv", "dma_to_stream.sv",
                                         "stream_to_dma.sv", "sdbnn_deploy_top.v"]
    assert sources[1].parent == HW_DIR and mems == {"offset.mem": "012c\n"}
    try:
        for name in ("axis_skid.sv", "dma_to_stream.sv", "stream_to_dma.sv"):
            shutil.copyfile(HW_DIR / name, vivado / name)
        (vivado / "filelist.f").write_text("axis_skid.sv\ndma_to_stream.sv\nstream_to_dma.sv\n"
                                           "sdbnn_deploy_top.v\n")
        sources, _ = deploy_sources(toy_build, man)
        assert all(p.parent == vivado for p in sources[1:])
        pixels = np.random.default_rng(5).integers(0, 256, size=(2, 3, 5, 1), dtype=np.uint8)
        acc = driver.Accelerator(toy_build, transport="sim")
        assert acc.execute(pixels, scores=True)[1].tolist() == toy_reference(pixels).tolist()
    finally:
        for name in ("axis_skid.sv", "dma_to_stream.sv", "stream_to_dma.sv", "filelist.f"):
            (vivado / name).unlink(missing_ok=True)


def test_sim_stall_times_out_with_what_it_has(toy_build):
    acc = driver.Accelerator(toy_build, transport="sim", stall=True, timeout_cycles=500)
    with pytest.raises(driver.DmaTimeout) as e:
        acc.execute(np.zeros((1, 3, 5, 1), np.uint8))
    msg = str(e.value)
    assert msg.splitlines()[0].startswith("S2MM transfer did not complete")
    assert "MM2S words to send = 9" in msg and "S2MM words expected = 6" in msg
    assert "MM2S words sent = " in msg and "S2MM words received = 0" in msg and "cycles = " in msg


@pytest.mark.parametrize("fpp,error", [(2, "no TLAST on the packet's last bus word (4)"),
                                       (6, "TLAST on bus word 6 of the packet's 12")])
def test_sim_tlast_in_the_wrong_place_is_an_error(toy_build, tmp_path, fpp, error):
    """io.json's frames_per_packet differs from the hardware's (3): the S2MM
    would never complete, or end early."""
    deploy = tmp_path / "deploy"
    shutil.copytree(toy_build, deploy)
    man = json.loads((deploy / "manifest.json").read_text())
    man["rtl_dir"] = str(toy_build.parent / "rtl")  # absolute: the copy is elsewhere
    man["vivado_dir"] = str(toy_build.parent / "vivado")
    (deploy / "manifest.json").write_text(json.dumps(man))
    (deploy / "io.json").write_text(json.dumps(toy_sim_io(fpp)))
    acc = driver.Accelerator(deploy, transport="sim", timeout_cycles=2000)
    with pytest.raises(driver.DriverError, match=re_escape(error)) as e:
        acc.execute(np.zeros((fpp, 3, 5, 1), np.uint8))
    assert not isinstance(e.value, driver.DmaTimeout)


def re_escape(text):
    import re
    return re.escape(text)
