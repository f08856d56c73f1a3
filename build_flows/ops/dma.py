"""The DMA boundary of the deploy top: hw/dma_to_stream.sv (MM2S bus words ->
accelerator words) and hw/stream_to_dma.sv (accelerator words -> S2MM bus
words with TLAST), their parameter checks and golden models.

Format: each accelerator word sits in the low bits of a slot of slot_bytes()
bytes; slot k of a frame is at byte k*S of the frame's region; every frame
starts at a new bus word; bus words are little-endian (byte 0 of the buffer
is bits 7:0 of the first bus word). Slot bits above the word and the padding
after a frame's last slot are 0 on output and ignored on input. TLAST is high
on the last bus word of every frames_per_packet-th output frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from build_flows.ops.base import RTLParamError


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_int(module: str, name: str, value) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise RTLParamError(f"{module}: {name}={value!r} must be an integer")


def _check_bus(module: str, bus_bits) -> None:
    _check_int(module, "BUS_W", bus_bits)
    if bus_bits < 8 or bus_bits % 8:
        raise RTLParamError(f"{module}: BUS_W={bus_bits} must be a multiple of 8 and >= 8")


def slot_bytes(word_bits: int, bus_bits: int) -> int:
    """Bytes of the slot of a word_bits-bit word on a bus_bits-bit bus: the
    smallest power of two >= ceil(word_bits/8) if that is <= bus_bits/8, else
    ceil(word_bits/8) rounded up to a multiple of bus_bits/8."""
    _check_bus("slot_bytes", bus_bits)
    _check_int("slot_bytes", "WORD_W", word_bits)
    if word_bits < 1:
        raise RTLParamError(f"slot_bytes: WORD_W={word_bits} must be >= 1")
    nbytes, bus_bytes = _ceil_div(word_bits, 8), bus_bits // 8
    pow2 = 1 << (nbytes - 1).bit_length()
    return pow2 if pow2 <= bus_bytes else _ceil_div(nbytes, bus_bytes) * bus_bytes


def bus_words_per_frame(words_per_frame: int, slot_bytes: int, bus_bits: int) -> int:
    """Bus words of a frame of words_per_frame slots of slot_bytes bytes:
    ceil(words_per_frame * slot_bytes / (bus_bits/8))."""
    return _ceil_div(words_per_frame * slot_bytes, bus_bits // 8)


@dataclass
class _DMAConfig:
    bus_bits: int  # BUS_W
    word_bits: int  # WORD_W
    slot_bytes: int  # SLOT_BYTES, must equal slot_bytes(word_bits, bus_bits)
    words_per_frame: int  # WORDS_PER_FRAME

    module = ""

    def validate(self) -> "_DMAConfig":
        m = self.module
        _check_bus(m, self.bus_bits)
        for name, v in [("WORD_W", self.word_bits), ("SLOT_BYTES", self.slot_bytes),
                        ("WORDS_PER_FRAME", self.words_per_frame)]:
            _check_int(m, name, v)
        if self.word_bits < 1:
            raise RTLParamError(f"{m}: WORD_W={self.word_bits} must be >= 1")
        if self.word_bits > self.slot_bytes * 8:
            raise RTLParamError(f"{m}: WORD_W={self.word_bits} must be <= "
                                f"SLOT_BYTES*8={self.slot_bytes * 8}")
        rule = slot_bytes(self.word_bits, self.bus_bits)
        if self.slot_bytes != rule:
            raise RTLParamError(f"{m}: SLOT_BYTES={self.slot_bytes} must be {rule} = "
                                f"slot_bytes(WORD_W={self.word_bits}, BUS_W={self.bus_bits})")
        bus_bytes = self.bus_bits // 8
        if self.slot_bytes <= bus_bytes and bus_bytes % self.slot_bytes:
            raise RTLParamError(f"{m}: SLOT_BYTES={self.slot_bytes} does not divide "
                                f"BUS_W/8={bus_bytes}; use a power-of-two bus width")
        if self.words_per_frame < 1:
            raise RTLParamError(f"{m}: WORDS_PER_FRAME={self.words_per_frame} must be >= 1")
        return self

    def verilog_params(self) -> dict:
        self.validate()
        return {"BUS_W": self.bus_bits, "WORD_W": self.word_bits, "SLOT_BYTES": self.slot_bytes,
                "WORDS_PER_FRAME": self.words_per_frame}

    @property
    def bus_words_per_frame(self) -> int:
        return bus_words_per_frame(self.words_per_frame, self.slot_bytes, self.bus_bits)


@dataclass
class DMAInConfig(_DMAConfig):
    """hw/dma_to_stream.sv: MM2S bus words -> accelerator words."""

    module = "dma_to_stream"


@dataclass
class DMAOutConfig(_DMAConfig):
    """hw/stream_to_dma.sv: accelerator words -> S2MM bus words, TLAST every
    frames_per_packet frames."""

    frames_per_packet: int = 1  # FRAMES_PER_PACKET

    module = "stream_to_dma"

    def validate(self) -> "DMAOutConfig":
        super().validate()
        _check_int(self.module, "FRAMES_PER_PACKET", self.frames_per_packet)
        if self.frames_per_packet < 1:
            raise RTLParamError(f"{self.module}: FRAMES_PER_PACKET={self.frames_per_packet} "
                                "must be >= 1")
        return self

    def verilog_params(self) -> dict:
        return {**super().verilog_params(), "FRAMES_PER_PACKET": self.frames_per_packet}


def _frames(seq: list, per_frame: int, what: str) -> list[list]:
    if len(seq) % per_frame:
        raise ValueError(f"{len(seq)} {what} are not whole frames of {per_frame}")
    return [list(seq[i:i + per_frame]) for i in range(0, len(seq), per_frame)]


def _pack_frame(frame: list[int], cfg: _DMAConfig) -> list[int]:
    """The bus words of one frame of accelerator words (padding 0)."""
    region = 0
    for k, w in enumerate(frame):
        w = int(w)
        if not 0 <= w < 1 << cfg.word_bits:
            raise ValueError(f"word {w:#x} does not fit in {cfg.word_bits} bits")
        region |= w << (k * cfg.slot_bytes * 8)
    mask = (1 << cfg.bus_bits) - 1
    return [(region >> (i * cfg.bus_bits)) & mask for i in range(cfg.bus_words_per_frame)]


def frames_to_bus_words(words: list[int], cfg: _DMAConfig) -> list[int]:
    """The host's packing: whole frames of accelerator words -> the bus words
    of the MM2S buffer (slot and frame padding 0)."""
    cfg.validate()
    return [b for f in _frames(words, cfg.words_per_frame, "words") for b in _pack_frame(f, cfg)]


def golden_to_stream(bus_words: list[int], cfg: DMAInConfig) -> list[int]:
    """What dma_to_stream outputs for whole frames of MM2S bus words: the
    accelerator words, padding dropped."""
    cfg.validate()
    out = []
    for frame in _frames(bus_words, cfg.bus_words_per_frame, "bus words"):
        region = sum(int(b) << (i * cfg.bus_bits) for i, b in enumerate(frame))
        out += [(region >> (k * cfg.slot_bytes * 8)) & ((1 << cfg.word_bits) - 1)
                for k in range(cfg.words_per_frame)]
    return out


def golden_to_dma(words: list[int], cfg: DMAOutConfig) -> list[tuple[int, bool]]:
    """What stream_to_dma outputs for whole frames of accelerator words:
    (bus word, tlast) pairs, padding 0, tlast on the last bus word of every
    frames_per_packet-th frame."""
    cfg.validate()
    out = []
    for f, frame in enumerate(_frames(words, cfg.words_per_frame, "words")):
        bus = _pack_frame(frame, cfg)
        end_of_packet = (f + 1) % cfg.frames_per_packet == 0
        out += [(b, end_of_packet and i == len(bus) - 1) for i, b in enumerate(bus)]
    return out
