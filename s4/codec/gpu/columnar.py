"""Does a frame look like a column of integers? Bitcomp's element type is chosen from the answer.

Bitcomp packs the bits that integers actually use, so it shines on columns of small
or slowly varying integers (ids, counts, timestamps, offsets) and does nothing for
text. A cheap look at the first few KiB decides: if nearly every element of some width
differs from the one before it by less than half its bits, the frame is an integer
column of that width. Widest first, so a column of 64-bit values is not mistaken for
32-bit pairs; text fails at every width because neighbouring bytes differ in their
high bits.
"""

from __future__ import annotations

import sys

from s4.codec.buffer import Buffer
from s4.codec.format.fcg1 import BitcompDataType

SAMPLE_BYTES = 4096
MIN_ELEMENTS = 16
MIN_FRACTION = 0.9

_WIDTHS = (
    (8, "Q", BitcompDataType.I64, BitcompDataType.U64),
    (4, "I", BitcompDataType.I32, BitcompDataType.U32),
    (2, "H", BitcompDataType.I16, BitcompDataType.U16),
)


def integer_column_type(frame: Buffer, sample_bytes: int = SAMPLE_BYTES) -> BitcompDataType | None:
    """The integer element type the frame's first ``sample_bytes`` look like, or None."""
    if sys.byteorder != "little":  # the casts below read native order; the data is little-endian
        return None
    sample = memoryview(frame).cast("B")[:sample_bytes]
    for width, code, signed, unsigned in _WIDTHS:
        count = len(sample) // width
        if count < MIN_ELEMENTS:
            continue
        values = sample[: count * width].cast(code)
        half = 1 << (4 * width)
        mask = (1 << (8 * width)) - 1
        sign = 1 << (8 * width - 1)
        close = 0
        negative = nonzero = False
        previous = 0
        for v in values:
            step = (v - previous) & mask
            if step < half or step > mask - half:
                close += 1
            negative = negative or v >= sign
            nonzero = nonzero or v != 0
            previous = v
        if nonzero and close >= MIN_FRACTION * count:
            return signed if negative else unsigned
    return None


def bitcomp_data_type(frame: Buffer) -> int:
    """The element type to compress ``frame`` with: a detected integer type whose size divides
    the frame (nvCOMP refuses a buffer that is not whole elements), else plain bytes."""
    detected = integer_column_type(frame)
    if detected is not None and len(memoryview(frame).cast("B")) % _size(detected) == 0:
        return int(detected)
    return int(BitcompDataType.CHAR)


def _size(data_type: BitcompDataType) -> int:
    return next(w for w, _, s, u in _WIDTHS if data_type in (s, u))
