"""Host driver of an SD-BNN streaming accelerator behind a Xilinx AXI DMA.

    from driver import Accelerator
    acc = Accelerator(".")                  # this folder: manifest.json, io.json, sdbnn.bit/.hwh
    classes = acc.execute(pixels)           # pixels: uint8 (N, C, H, W) -> (N,) int64
    classes, outputs = acc.execute(pixels, scores=True)
    acc.throughput_test(n_frames=4096)      # {"fps", "latency_ms", "clock_mhz", ...}

Written by the SD-BNN build (build_flows/deploy/board/driver.py, copied into
OUT/deploy/). On the board it needs only Python 3, numpy and PYNQ (imported
when the "pynq" transport starts); transport="sim" runs the build's Verilator
model of the same hardware on the workstation (it needs the sdbnn repository).

The stream format, all from io.json:
  pixels (N, C, H, W) uint8 -> host_table[c][pixel] per channel (if given)
  -> the frame in io.json's layout (NHWC: H, W, C), flattened C-order
  -> accelerator words of `lanes` elements of `elem_bits` bits, element 0 low
  -> every word in the low bits of a slot of `slot_bytes` bytes, slot k of a
     frame at byte k*slot_bytes, every frame starting at a new bus word
  -> bus words of `bus_bits` bits, little-endian in memory.
The output is the inverse; one DMA transfer is one packet of
`frames_per_packet` frames (TLAST on its last bus word).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

FORMAT = 1  # io.json / manifest.json format this driver reads
LAYOUTS = ("NCHW", "NHWC")
KINDS = ("class", "integers")


# --------------------------------------------------------------------------- errors

class DriverError(Exception):
    """Anything the driver refuses or cannot do; the message is one clear line
    (subclasses may add detail lines after it)."""


class BitfileMismatch(DriverError):
    """The bitfile (or hwh) in the folder is not the one the manifest was written for."""


class DmaError(DriverError):
    """The DMA reported an error; the message carries the register dump."""

    def __init__(self, message: str, registers: dict | None = None):
        self.registers = dict(registers or {})
        dump = format_registers(self.registers)
        super().__init__(message + ("\n" + dump if dump else ""))


class DmaTimeout(DmaError):
    """A DMA transfer did not complete before its deadline; the message carries
    the register dump."""


# AXI DMA (simple mode) register offsets and status / control bits (PG021)
DMA_REGISTERS = {"MM2S_DMACR": 0x00, "MM2S_DMASR": 0x04, "S2MM_DMACR": 0x30,
                 "S2MM_DMASR": 0x34, "S2MM_LENGTH": 0x58}
DMASR_BITS = {0: "Halted", 1: "Idle", 3: "SGIncld", 4: "DMAIntErr", 5: "DMASlvErr",
              6: "DMADecErr", 8: "SGIntErr", 9: "SGSlvErr", 10: "SGDecErr",
              12: "IOC_Irq", 13: "Dly_Irq", 14: "Err_Irq"}
DMACR_BITS = {0: "RS", 2: "Reset", 3: "Keyhole", 4: "Cyclic", 12: "IOC_IrqEn",
              13: "Dly_IrqEn", 14: "Err_IrqEn"}
DMASR_ERRORS = 0x770  # DMAIntErr, DMASlvErr, DMADecErr, SGIntErr, SGSlvErr, SGDecErr


def decode_bits(value: int, bits: dict) -> list[str]:
    """Names of the set bits of a register value."""
    return [name for bit, name in sorted(bits.items()) if (int(value) >> bit) & 1]


def format_registers(regs: dict) -> str:
    """The register dump of an error: one line per register, status and
    control registers decoded; other entries (a simulation's counters) as they are."""
    lines = []
    for name, value in regs.items():
        if name in DMA_REGISTERS and isinstance(value, (int, np.integer)):
            off = DMA_REGISTERS[name]
            bits = (DMASR_BITS if name.endswith("SR") else DMACR_BITS if name.endswith("CR")
                    else None)
            decoded = f" [{', '.join(decode_bits(value, bits)) or '-'}]" if bits else ""
            lines.append(f"  {name:12s} (0x{off:02x}) = 0x{int(value):08x}{decoded}")
        else:
            lines.append(f"  {name} = {value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the format

def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def slot_bytes(word_bits: int, bus_bits: int) -> int:
    """Bytes of the slot of one accelerator word: the smallest power of two >=
    ceil(word_bits/8) if that fits in a bus word, else ceil(word_bits/8)
    rounded up to whole bus words."""
    nbytes, bus_bytes = _ceil_div(int(word_bits), 8), int(bus_bits) // 8
    pow2 = 1 << (nbytes - 1).bit_length()
    return pow2 if pow2 <= bus_bytes else _ceil_div(nbytes, bus_bytes) * bus_bytes


def bus_words_per_frame(words_per_frame: int, slot: int, bus_bits: int) -> int:
    """Bus words of one frame: ceil(words_per_frame * slot / (bus_bits/8))."""
    return _ceil_div(int(words_per_frame) * int(slot), int(bus_bits) // 8)


def frame_bytes(side: dict, bus_bits: int) -> int:
    """Bytes of one frame in a DMA buffer (whole bus words)."""
    return int(side["bus_words_per_frame"]) * int(bus_bits) // 8


def _io_error(msg: str) -> DriverError:
    return DriverError(f"io.json: {msg}")


def check_io(io: dict) -> dict:
    """Check io.json's internal consistency (the slot rule, element counts,
    table and affine sizes); returns io. DriverError naming the field."""
    try:
        if io.get("format") != FORMAT:
            raise _io_error(f"format {io.get('format')!r}, this driver reads format {FORMAT}")
        bus = int(io["bus_bits"])
        if bus < 8 or bus % 8 or (bus // 8) & (bus // 8 - 1):
            raise _io_error(f"bus_bits={bus} must be 8 times a power of two")
        if int(io["frames_per_packet"]) < 1:
            raise _io_error(f"frames_per_packet={io['frames_per_packet']} must be >= 1")
        for name in ("input", "output"):
            side = io[name]
            eb, lanes, wb = int(side["elem_bits"]), int(side["lanes"]), int(side["word_bits"])
            wpf = int(side["words_per_frame"])
            if not 1 <= eb <= 64 or lanes < 1 or wpf < 1:
                raise _io_error(f"{name}: elem_bits={eb} (1..64), lanes={lanes}, "
                                f"words_per_frame={wpf} must be >= 1")
            if lanes * eb > wb:
                raise _io_error(f"{name}: lanes*elem_bits={lanes * eb} exceeds word_bits={wb}")
            rule = slot_bytes(wb, bus)
            if int(side["slot_bytes"]) != rule:
                raise _io_error(f"{name}: slot_bytes={side['slot_bytes']}, the slot rule gives "
                                f"{rule} for word_bits={wb} on a {bus}-bit bus")
            bw = bus_words_per_frame(wpf, rule, bus)
            if int(side["bus_words_per_frame"]) != bw:
                raise _io_error(f"{name}: bus_words_per_frame={side['bus_words_per_frame']}, "
                                f"expected {bw}")
        inp, out = io["input"], io["output"]
        shape = [int(d) for d in inp["shape"]]
        if not shape or min(shape) < 1:
            raise _io_error(f"input: shape {shape} must be non-empty, all sizes >= 1")
        numel = int(np.prod(shape))
        if numel > int(inp["words_per_frame"]) * int(inp["lanes"]):
            raise _io_error(f"input: {numel} elements of shape {shape} do not fit in "
                            f"{inp['words_per_frame']} words of {inp['lanes']} lanes")
        if inp["layout"] not in LAYOUTS:
            raise _io_error(f"input: layout {inp['layout']!r}, expected one of {LAYOUTS}")
        if inp.get("host_table") is not None:
            t = np.asarray(inp["host_table"])
            if t.shape != (shape[0], 256):
                raise _io_error(f"input: host_table has shape {t.shape}, expected "
                                f"({shape[0]}, 256): one 256-entry table per channel")
        if out["kind"] not in KINDS:
            raise _io_error(f"output: kind {out['kind']!r}, expected one of {KINDS}")
        if int(out["numel"]) > int(out["words_per_frame"]) * int(out["lanes"]):
            raise _io_error(f"output: numel={out['numel']} does not fit in "
                            f"{out['words_per_frame']} words of {out['lanes']} lanes")
        if out.get("affine") is not None:
            for key in ("a", "b"):
                n = np.asarray(out["affine"][key], np.float64).size
                if n not in (1, int(out["numel"])):
                    raise _io_error(f"output: affine {key} has {n} values, expected 1 or "
                                    f"numel={out['numel']}")
    except (KeyError, TypeError, ValueError) as e:
        raise _io_error(f"missing or malformed field ({type(e).__name__}: {e})") from None
    return io


def _uint_dtype(bits: int) -> np.dtype:
    for n in (8, 16, 32, 64):
        if bits <= n:
            return np.dtype(f"<u{n // 8}")
    raise DriverError(f"elements of {bits} bits: at most 64 bits are supported")


def elements_to_bits(values, elem_bits: int) -> np.ndarray:
    """Integers (..., E) -> their two's complement low elem_bits bits, uint8
    0/1 (..., E*elem_bits), element 0's bit 0 first."""
    v = np.asarray(values)
    dt = _uint_dtype(elem_bits)
    if v.dtype == dt:
        u = v
    else:
        if v.dtype.kind not in "iub":
            raise DriverError(f"elements must be integers, not {v.dtype}")
        u = v.astype(np.int64).view(np.uint64).astype(dt)  # wraps: two's complement bits
    u = np.ascontiguousarray(u)
    raw = u.view(np.uint8).reshape(*u.shape, dt.itemsize)
    bits = np.unpackbits(raw, axis=-1, bitorder="little")
    if elem_bits != dt.itemsize * 8:
        bits = bits[..., :elem_bits]
    return bits.reshape(*u.shape[:-1], u.shape[-1] * elem_bits)


def bits_to_elements(bits: np.ndarray, elem_bits: int, signed: bool = False) -> np.ndarray:
    """Inverse of elements_to_bits: 0/1 bits (..., E*elem_bits) -> int64 (..., E),
    sign-extended when signed."""
    bits = np.asarray(bits, np.uint8)
    lead, n = bits.shape[:-1], bits.shape[-1]
    if n % elem_bits:
        raise DriverError(f"{n} bits are not whole elements of {elem_bits} bits")
    dt = _uint_dtype(elem_bits)
    b = bits.reshape(*lead, n // elem_bits, elem_bits)
    if elem_bits != dt.itemsize * 8:
        full = np.zeros((*b.shape[:-1], dt.itemsize * 8), np.uint8)
        full[..., :elem_bits] = b
        b = full
    raw = np.ascontiguousarray(np.packbits(b, axis=-1, bitorder="little"))
    vals = raw.view(dt)[..., 0]
    if dt.itemsize == 8:
        vals = vals.view(np.int64)  # 64-bit elements: two's complement as is
        return vals if signed else vals.copy()
    vals = vals.astype(np.int64)
    if signed:
        vals -= (vals >> (elem_bits - 1) & 1) << elem_bits
    return vals


def pack_words(elements, side: dict) -> np.ndarray:
    """Frames of elements (N, E) -> their accelerator words as bits (N,
    words_per_frame, word_bits): word j holds elements j*lanes .. j*lanes+lanes-1,
    element 0 in the low bits, bits above lanes*elem_bits 0. A frame of fewer
    than words_per_frame*lanes elements is padded with 0 elements."""
    el = np.asarray(elements)
    if el.ndim != 2:
        raise DriverError(f"pack_words takes (frames, elements), not shape {el.shape}")
    n, e = el.shape
    eb, lanes, wb = int(side["elem_bits"]), int(side["lanes"]), int(side["word_bits"])
    wpf = int(side["words_per_frame"])
    if e > wpf * lanes:
        raise DriverError(f"{e} elements per frame do not fit in {wpf} words of {lanes} lanes")
    if e < wpf * lanes:
        el = np.concatenate([el, np.zeros((n, wpf * lanes - e), el.dtype)], axis=1)
    bits = elements_to_bits(el, eb).reshape(n, wpf, lanes * eb)
    if wb > lanes * eb:
        bits = np.concatenate([bits, np.zeros((n, wpf, wb - lanes * eb), np.uint8)], axis=2)
    return bits


def unpack_words(word_bits: np.ndarray, side: dict, numel: int | None = None) -> np.ndarray:
    """Inverse of pack_words: (N, words_per_frame, word_bits) bits -> (N, numel)
    int64 elements (numel: the frame's elements, default all the lanes)."""
    eb, lanes = int(side["elem_bits"]), int(side["lanes"])
    n, wpf = word_bits.shape[:2]
    el = bits_to_elements(word_bits[:, :, :lanes * eb].reshape(n, wpf * lanes * eb), eb,
                          bool(side.get("signed", False)))
    return el if numel is None else el[:, :numel]


def words_to_ints(word_bits: np.ndarray) -> list[int]:
    """Accelerator words as bits (..., word_bits) -> Python ints, in order."""
    wb = word_bits.shape[-1]
    flat = word_bits.reshape(-1, wb)
    raw = np.packbits(flat, axis=-1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in raw]


def words_to_bus_bytes(word_bits: np.ndarray, side: dict, bus_bits: int) -> np.ndarray:
    """Accelerator words (N, words_per_frame, word_bits) -> the DMA buffer: uint8,
    N * bus_words_per_frame * bus_bits/8 bytes (slot and frame padding 0)."""
    n, wpf, wb = word_bits.shape
    s = int(side["slot_bytes"])
    fbytes = frame_bytes(side, bus_bits)
    region = np.zeros((n, fbytes * 8), np.uint8)
    region[:, :wpf * s * 8].reshape(n, wpf, s * 8)[:, :, :wb] = word_bits
    return np.packbits(region, axis=-1, bitorder="little").reshape(-1)


def bus_bytes_to_words(buf, n_frames: int, side: dict, bus_bits: int) -> np.ndarray:
    """The words of a DMA buffer: uint8 bytes -> (n_frames, words_per_frame,
    word_bits) bits (slot bits above the word and frame padding dropped)."""
    buf = np.asarray(buf, np.uint8).reshape(-1)
    fbytes = frame_bytes(side, bus_bits)
    if buf.size != n_frames * fbytes:
        raise DriverError(f"buffer of {buf.size} bytes, expected {n_frames} frames of "
                          f"{fbytes} bytes = {n_frames * fbytes}")
    wpf, s, wb = int(side["words_per_frame"]), int(side["slot_bytes"]), int(side["word_bits"])
    slots = buf.reshape(n_frames, fbytes)[:, :wpf * s].reshape(n_frames, wpf, s)
    return np.unpackbits(slots, axis=-1, bitorder="little")[:, :, :wb]


def check_pixels(pixels, io: dict) -> np.ndarray:
    """pixels as a uint8 (N, *shape) array; DriverError naming the expected and
    the given shape (or the values) otherwise."""
    shape = tuple(int(d) for d in io["input"]["shape"])
    px = np.asarray(pixels)
    if px.ndim != len(shape) + 1 or px.shape[1:] != shape:
        hint = ""
        if px.ndim == len(shape) + 1 and sorted(px.shape[1:]) == sorted(shape):
            hint = "; give NCHW pixels (e.g. images.transpose(0, 3, 1, 2) for NHWC images)"
        elif px.shape == shape:
            hint = "; one image needs a leading batch axis: pixels[None]"
        raise DriverError(f"input shape {tuple(px.shape)} does not match the design's "
                          f"(N, {', '.join(map(str, shape))}) (io.json input.shape){hint}")
    if px.dtype == np.uint8:
        return px
    if px.dtype.kind not in "iub":
        raise DriverError(f"pixels must be uint8 (0..255), not {px.dtype}")
    if px.size and (px.min() < 0 or px.max() > 255):
        raise DriverError(f"pixels must be 0..255, got values {px.min()}..{px.max()}")
    return px.astype(np.uint8)


def input_elements(pixels, io: dict) -> np.ndarray:
    """uint8 pixels (N, C, H, W) -> the frames' input elements (N, C*H*W) in
    stream order: host_table[c][pixel] if io.json gives a table, the
    accelerator's layout, flattened C-order (not yet masked to elem_bits)."""
    inp = io["input"]
    px = check_pixels(pixels, io)
    table = inp.get("host_table")
    if table is not None:
        t = np.asarray(table, np.int64)
        c = np.arange(px.shape[1]).reshape(1, -1, *([1] * (px.ndim - 2)))
        vals = t[c, px]
    else:
        vals = px
    if inp["layout"] == "NHWC" and vals.ndim > 2:
        vals = np.moveaxis(vals, 1, -1)
    return vals.reshape(len(px), -1)


def pack_input(pixels, io: dict) -> np.ndarray:
    """uint8 pixels (N, C, H, W) -> the MM2S buffer of the N frames: uint8,
    N * input.bus_words_per_frame * bus_bits/8 bytes."""
    side = io["input"]
    return words_to_bus_bytes(pack_words(input_elements(pixels, io), side), side,
                              int(io["bus_bits"]))


def unpack_output(buf, n_frames: int, io: dict) -> np.ndarray:
    """The S2MM buffer of n_frames frames -> (n_frames, output.numel) int64
    elements (sign-extended when output.signed)."""
    side = io["output"]
    words = bus_bytes_to_words(buf, n_frames, side, int(io["bus_bits"]))
    return unpack_words(words, side, int(side["numel"]))


def classify(outputs: np.ndarray, io: dict) -> np.ndarray:
    """(N,) int64 top-1 classes from unpack_output's elements: kind "class"
    is the class itself; kind "integers" is argmax(a * x + b) in float64
    (argmax(x) without an affine), ties to the lowest index."""
    out = io["output"]
    x = np.asarray(outputs)
    if out["kind"] == "class":
        return x[:, 0].astype(np.int64)
    xf = x.astype(np.float64)
    if out.get("affine") is not None:
        a = np.asarray(out["affine"]["a"], np.float64).reshape(-1)
        b = np.asarray(out["affine"]["b"], np.float64).reshape(-1)
        xf = a * xf + b
    return np.argmax(xf, axis=1).astype(np.int64)


def bytes_to_bus_words(buf, bus_bits: int) -> list[int]:
    """A DMA buffer -> its bus words as Python ints (little-endian)."""
    b = np.asarray(buf, np.uint8).tobytes()
    n = int(bus_bits) // 8
    if len(b) % n:
        raise DriverError(f"{len(b)} bytes are not whole {bus_bits}-bit bus words")
    return [int.from_bytes(b[i:i + n], "little") for i in range(0, len(b), n)]


def bus_words_to_bytes(words, bus_bits: int) -> np.ndarray:
    """Bus words (ints) -> the DMA buffer's bytes (uint8)."""
    n = int(bus_bits) // 8
    return np.frombuffer(b"".join(int(w).to_bytes(n, "little") for w in words),
                         np.uint8).copy()


# --------------------------------------------------------------------------- transports

class Transport(ABC):
    """One way to move a packet through the accelerator."""

    name = "transport"
    simulated = False  # True: last_transfer_s is simulated time, not wall time

    @abstractmethod
    def transfer(self, in_bytes: np.ndarray, out_nbytes: int, timeout_s: float) -> np.ndarray:
        """Send in_bytes (one MM2S transfer) and receive one packet of
        out_nbytes bytes (one S2MM transfer); return them (uint8)."""

    @property
    @abstractmethod
    def clock_mhz(self) -> float:
        """The accelerator clock the transport runs at."""

    def registers(self) -> dict:
        """A dump of the DMA's state (register name -> value)."""
        return {}

    @property
    def last_transfer_s(self) -> float | None:
        """Seconds the last transfer took on the accelerator's clock when the
        transport knows it (a simulation); None: measure wall time."""
        return None

    def close(self) -> None:
        pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_bitfile(deploy_dir, manifest: dict) -> Path:
    """The bitfile of the folder, checked against the manifest's sha256 (and
    the hwh's, which PYNQ reads next to it). Returns the bitfile's path."""
    deploy_dir = Path(deploy_dir)
    entry = manifest.get("bitfile")
    if not entry or not entry.get("sha256"):
        raise DriverError("this build has no bitfile yet (manifest.json bitfile is null): "
                          "run build.py --vivado on the workstation, then copy the deploy "
                          "folder again")
    for key in ("bitfile", "hwh"):
        entry = manifest.get(key)
        if not entry or not entry.get("sha256"):
            continue
        path = deploy_dir / entry["name"]
        if not path.is_file():
            raise DriverError(f"{path} is missing: copy {entry['name']} from the same build's "
                              "deploy folder (PYNQ needs the .bit and the .hwh)")
        got = sha256_file(path)
        if got != entry["sha256"]:
            raise BitfileMismatch(
                f"{path} has sha256 {got}, manifest.json expects {entry['sha256']}: copy "
                f"{entry['name']} from the same build as manifest.json and io.json")
    return deploy_dir / manifest["bitfile"]["name"]


class PynqTransport(Transport):
    """The AXI DMA of the loaded overlay (PYNQ on a Zynq-7000 / Zynq UltraScale+ board)."""

    name = "pynq"

    def __init__(self, deploy_dir, manifest: dict, clock_mhz: float | None = None):
        bitfile = check_bitfile(deploy_dir, manifest)
        try:
            import pynq
        except ImportError as e:
            raise DriverError(f"the pynq transport needs the pynq package ({e}); on a PYNQ "
                              "board run as root in PYNQ's venv: sudo -i; source "
                              "/etc/profile.d/pynq_venv.sh") from None
        self._pynq = pynq
        self.overlay = pynq.Overlay(str(bitfile))
        name = manifest.get("dma", {}).get("name", "axi_dma_0")
        try:
            self.dma = getattr(self.overlay, name)
        except AttributeError:
            ips = sorted(getattr(self.overlay, "ip_dict", {}))
            raise DriverError(f"the overlay has no DMA named {name!r} (its IPs: "
                              f"{', '.join(ips) or 'none'})") from None
        want = float(clock_mhz if clock_mhz is not None else manifest["clock_mhz"])
        pynq.Clocks.fclk0_mhz = want
        got = float(pynq.Clocks.fclk0_mhz)
        if abs(got - want) > 0.01 * want:
            raise DriverError(f"PL clock fclk0 is {got:.3f} MHz after setting {want:.3f} MHz "
                              "(more than 1 % off); the design was built for "
                              f"{manifest['clock_mhz']} MHz")
        self._clock = got
        self._buffers: dict[str, object] = {}

    @property
    def clock_mhz(self) -> float:
        return self._clock

    def _buffer(self, key: str, nbytes: int):
        buf = self._buffers.get(key)
        if buf is None or buf.shape[0] != nbytes:
            if buf is not None:
                buf.freebuffer()
            buf = self._pynq.allocate(shape=(nbytes,), dtype=np.uint8)
            self._buffers[key] = buf
        return buf

    def registers(self) -> dict:
        regs = {}
        for name, off in DMA_REGISTERS.items():
            try:
                regs[name] = int(self.dma.read(off))
            except Exception as e:  # a dump must not hide the error it explains
                regs[name] = f"unreadable ({e})"
        return regs

    def _status_error(self) -> str | None:
        regs = self.registers()
        for ch in ("MM2S", "S2MM"):
            sr = regs.get(f"{ch}_DMASR")
            if isinstance(sr, int) and sr & DMASR_ERRORS:
                return f"{ch} reports {', '.join(decode_bits(sr & DMASR_ERRORS, DMASR_BITS))}"
        return None

    def transfer(self, in_bytes: np.ndarray, out_nbytes: int, timeout_s: float) -> np.ndarray:
        src = self._buffer("in", int(in_bytes.size))
        dst = self._buffer("out", int(out_nbytes))
        src[:] = in_bytes
        src.flush()
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        recv.transfer(dst)  # S2MM first: the output has somewhere to go
        send.transfer(src)
        deadline = time.monotonic() + float(timeout_s)
        for ch, channel in (("MM2S", send), ("S2MM", recv)):
            while not channel.idle:
                err = self._status_error()
                if err:
                    raise DmaError(f"DMA error during the transfer: {err}", self.registers())
                if time.monotonic() > deadline:
                    raise DmaTimeout(
                        f"DMA {ch} transfer did not complete within {timeout_s:g} s "
                        f"({in_bytes.size} bytes sent, {out_nbytes} expected back); the "
                        "accelerator stalled or the bitfile does not match io.json; "
                        "reload the overlay (a new Accelerator) before retrying",
                        self.registers())
                time.sleep(0.0001)
        got = int(self.dma.read(DMA_REGISTERS["S2MM_LENGTH"]))
        if got != out_nbytes:
            raise DmaError(f"S2MM received {got} bytes, expected {out_nbytes} (TLAST at the "
                           "wrong place: io.json's frames_per_packet or format does not match "
                           "the bitfile)", self.registers())
        dst.invalidate()
        return np.array(dst, dtype=np.uint8, copy=True)

    def close(self) -> None:
        for buf in self._buffers.values():
            buf.freebuffer()
        self._buffers.clear()


# --------------------------------------------------------------------------- accelerator

def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DriverError(f"{path} not found: {what}") from None
    except (OSError, ValueError) as e:
        raise DriverError(f"{path} is not readable JSON ({e})") from None


class Accelerator:
    """The accelerator of a deploy folder (manifest.json, io.json, bitfile).

    transport: "pynq" (the board), "sim" (the build's Verilator model; the
    workstation with the sdbnn repository) or a Transport instance. Extra
    keyword options go to the transport (pynq: clock_mhz; sim: stall,
    stall_prob, seed, timeout_cycles). timeout_s: the deadline of one packet's
    DMA transfer."""

    def __init__(self, deploy_dir=".", transport="pynq", timeout_s: float = 10.0, **options):
        self.deploy_dir = Path(deploy_dir)
        self.manifest = _read_json(self.deploy_dir / "manifest.json",
                                   "run this in (or point deploy_dir at) a build's deploy folder")
        if self.manifest.get("format") != FORMAT:
            raise DriverError(f"manifest.json format {self.manifest.get('format')!r}, this "
                              f"driver reads format {FORMAT}")
        self.io = check_io(_read_json(self.deploy_dir / self.manifest.get("io", "io.json"),
                                      "the deploy folder is incomplete"))
        self.timeout_s = float(timeout_s)
        self.frames_per_packet = int(self.io["frames_per_packet"])
        self.stats: dict = {}
        if isinstance(transport, Transport):
            if options:
                raise DriverError(f"options {sorted(options)} are for a named transport, not "
                                  "a Transport instance")
            self.transport = transport
        elif transport == "pynq":
            self.transport = PynqTransport(self.deploy_dir, self.manifest, **options)
        elif transport == "sim":
            try:
                from build_flows.deploy.sim_transport import SimTransport
            except ImportError as e:
                raise DriverError(f"transport 'sim' needs the sdbnn repository (build_flows "
                                  f"importable: run with the repo's .venv python): {e}") from None
            self.transport = SimTransport(self.deploy_dir, self.manifest, self.io,
                                          driver_module=sys.modules[__name__], **options)
        else:
            raise DriverError(f"unknown transport {transport!r}: 'pynq', 'sim' or a Transport")

    @property
    def clock_mhz(self) -> float:
        return self.transport.clock_mhz

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self.io["input"]["shape"])

    def _packet_bytes(self) -> tuple[int, int]:
        bus, fpp = int(self.io["bus_bits"]), self.frames_per_packet
        return fpp * frame_bytes(self.io["input"], bus), fpp * frame_bytes(self.io["output"], bus)

    def _run_packet(self, in_bytes: np.ndarray) -> tuple[np.ndarray, float]:
        _, out_nbytes = self._packet_bytes()
        t0 = time.perf_counter()
        out = self.transport.transfer(in_bytes, out_nbytes, self.timeout_s)
        wall = time.perf_counter() - t0
        out = np.asarray(out, np.uint8).reshape(-1)
        if out.size != out_nbytes:
            raise DriverError(f"transport returned {out.size} bytes, expected {out_nbytes}")
        sim = self.transport.last_transfer_s
        return out, (wall if sim is None else float(sim))

    def execute(self, pixels, scores: bool = False):
        """Classify uint8 pixels (N, C, H, W): (N,) int64 classes; scores=True:
        (classes, outputs), outputs the last layer's integers (N, numel) for
        kind "integers", the classes for kind "class". Frames go in whole
        packets; the last one is padded with zero images whose results are
        dropped. self.stats: frames, packets, transfer seconds, wall seconds."""
        px = check_pixels(pixels, self.io)
        n, fpp = len(px), self.frames_per_packet
        numel = int(self.io["output"]["numel"])
        in_nbytes, _ = self._packet_bytes()
        chunk = fpp * max(1, 4096 // fpp)  # frames packed at a time (memory bound)
        outs, transfer_s, packets = [], 0.0, 0
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            part = px[start:start + chunk]
            pad = -len(part) % fpp
            if pad:
                part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), np.uint8)])
            buf = pack_input(part, self.io)
            for p in range(len(part) // fpp):
                out, secs = self._run_packet(buf[p * in_nbytes:(p + 1) * in_nbytes])
                outs.append(unpack_output(out, fpp, self.io))
                transfer_s += secs
                packets += 1
        outputs = (np.concatenate(outs)[:n] if outs else np.zeros((0, numel), np.int64))
        self.stats = {"frames": n, "packets": packets, "transfer_s": transfer_s,
                      "wall_s": time.perf_counter() - t0, "simulated": self.transport.simulated}
        classes = classify(outputs, self.io)
        if not scores:
            return classes
        return classes, (classes if self.io["output"]["kind"] == "class" else outputs)

    def throughput_test(self, n_frames: int | None = None, seed: int = 0,
                        verbose: bool = True) -> dict:
        """Send n_frames random images (rounded up to whole packets; default 8
        packets) and time the DMA round trips (packing excluded). fps: frames
        per second of transfer time; latency_ms: one packet's round trip (the
        median); with a simulated transport both are simulated time at the
        design clock."""
        fpp = self.frames_per_packet
        n_packets = max(1, _ceil_div(int(n_frames), fpp)) if n_frames else 8
        rng = np.random.default_rng(seed)
        px = rng.integers(0, 256, size=(fpp, *self.input_shape), dtype=np.uint8)
        buf = pack_input(px, self.io)
        times = [self._run_packet(buf)[1] for _ in range(n_packets)]
        frames = n_packets * fpp
        kind = self.transport.name + (" (simulated)" if self.transport.simulated else "")
        result = {"fps": frames / sum(times) if sum(times) > 0 else float("inf"),
                  "latency_ms": float(np.median(times)) * 1e3, "clock_mhz": self.clock_mhz,
                  "frames": frames, "transport": kind}
        if verbose:
            print(f"throughput_test: {frames} frames in {n_packets} packets of {fpp} at "
                  f"{self.clock_mhz:g} MHz ({kind}): {result['fps']:.1f} FPS, "
                  f"{result['latency_ms']:.4g} ms per packet")
        return result

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Accelerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
