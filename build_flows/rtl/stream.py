"""AXI-Stream word packing shared by every module, the harness and the
stitched design: `lanes` elements of `elem_bits` bits per word, element 0 in
the low bits; $readmemh text for memory files."""

from __future__ import annotations

import numpy as np


def pack_lanes(values: np.ndarray, width: int, lanes: int) -> list[int]:
    """Pack a flat sequence of values into words of `lanes` lanes of `width` bits."""
    flat = np.asarray(values).reshape(-1, lanes).astype(object)
    mask = (1 << width) - 1
    return [sum((int(v) & mask) << (i * width) for i, v in enumerate(row)) for row in flat]


def unpack_lanes(words: list[int], width: int, lanes: int, signed: bool = False) -> np.ndarray:
    """Inverse of pack_lanes: a flat int64 array of len(words) * lanes values."""
    mask = (1 << width) - 1
    out = [(w >> (i * width)) & mask for w in words for i in range(lanes)]
    if signed:
        out = [v - (1 << width) if v >> (width - 1) else v for v in out]
    return np.array(out, dtype=np.int64)


def mem_text(words: list[int], width: int) -> str:
    """$readmemh text: one hex word per line."""
    digits = (width + 3) // 4
    return "".join(f"{w:0{digits}x}\n" for w in words)


def lanes(width: int, elem_bits: int) -> int:
    return width // elem_bits


def pack_stream(tensors: np.ndarray, width: int, elem_bits: int) -> list[int]:
    """Frames (N, ...) -> words of width/elem_bits elements (element 0 low)."""
    return pack_lanes(np.asarray(tensors).astype(np.int64).reshape(-1), elem_bits,
                      lanes(width, elem_bits))


def unpack_stream(words: list[int], width: int, elem_bits: int, n_frames: int,
                  signed: bool = False) -> np.ndarray:
    """Words -> (n_frames, elements); signed: two's complement elements."""
    return unpack_lanes(words, elem_bits, lanes(width, elem_bits), signed).reshape(n_frames, -1)


def words_per_frame(numel: int, width: int, elem_bits: int) -> int:
    return numel // lanes(width, elem_bits)
