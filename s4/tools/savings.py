"""``s4 savings``: the savings ledger of every bucket (s4.store.compressing.ledger), as a table, JSON or a chart.

Read straight from the store the gateway writes to (an upstream S3 endpoint, or the embedded store's
data directory): the ledger lives there, so this needs no running gateway.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from s4.store.base import ObjectStore
from s4.store.compressing.ledger import LedgerTotals, read_ledger
from s4.store.compressing.ledger import recount as recount_ledger


async def gather(store: ObjectStore, buckets: Iterable[str] = (), *, recount: bool = False) -> dict[str, LedgerTotals]:
    """The named buckets' ledgers, or every bucket's; ``recount``: counted afresh from what the store
    holds and kept as their ledgers (s4.store.compressing.ledger.recount)."""
    wanted = list(buckets) or [b.name for b in await store.list_buckets()]
    if recount:
        return {b: await recount_ledger(store, b) for b in wanted}
    return {b: await read_ledger(store, b) for b in wanted}


def to_dict(ledgers: Mapping[str, LedgerTotals]) -> dict:
    """``--json``: per bucket its counters, ``stored_bytes`` and ``ratio``; the totals of all."""
    total = LedgerTotals()
    rows = {}
    for bucket, totals in sorted(ledgers.items()):
        total.add(totals)
        rows[bucket] = totals.to_dict() | {"stored_bytes": totals.stored_bytes, "ratio": _ratio(totals)}
    return {"buckets": rows, "total": total.to_dict() | {"stored_bytes": total.stored_bytes, "ratio": _ratio(total)}}


def _ratio(totals: LedgerTotals) -> float | None:
    return round(totals.original_bytes / totals.stored_bytes, 4) if totals.stored_bytes else None


def format_table(ledgers: Mapping[str, LedgerTotals]) -> str:
    header = ("bucket", "objects", "original", "stored", "data", "sidecars", "staging", "ratio", "saved")
    lines = [header]
    total = LedgerTotals()
    for bucket, t in sorted(ledgers.items()):
        total.add(t)
        lines.append(_row(bucket, t))
    lines.append(_row("TOTAL", total))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def _row(name: str, t: LedgerTotals) -> tuple[str, ...]:
    ratio = _ratio(t)
    saved = t.original_bytes - t.stored_bytes
    return (
        name,
        str(t.objects),
        _size(t.original_bytes),
        _size(t.stored_bytes),
        _size(t.data_bytes),
        _size(t.sidecar_bytes),
        _size(t.staging_bytes),
        "-" if ratio is None else f"{ratio:.2f}x",
        _size(saved),
    )


def _size(n: int) -> str:
    sign, n = ("-" if n < 0 else ""), abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    return f"{sign}{n}"


ORIGINAL_COLOUR = (0x4C, 0x72, 0xB0)
STORED_COLOUR = (0xDD, 0x84, 0x52)
TEXT_COLOUR = (0x20, 0x20, 0x20)
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001010010",
    "8": "111101111101111", "9": "111101111001111", "a": "010101111101101", "b": "110101110101110",
    "c": "011100100100011", "d": "110101101101110", "e": "111100110100111", "f": "111100110100100",
    "g": "011100101101011", "h": "101101111101101", "i": "111010010010111", "j": "001001001101010",
    "k": "101101110101101", "l": "100100100100111", "m": "101111111101101", "n": "110101101101101",
    "o": "010101101101010", "p": "110101110100100", "q": "010101101110011", "r": "110101110101101",
    "s": "011100010001110", "t": "111010010010010", "u": "101101101101111", "v": "101101101101010",
    "w": "101101111111101", "x": "101101010101101", "y": "101101010010010", "z": "111001010100111",
    "-": "000000111000000", ".": "000000000000010", "_": "000000000000111", " ": "000000000000000",
}  # fmt: skip
"""A 3x5 pixel font of what bucket names are made of (drawn twice the size)."""
SCALE = 2
CHAR_WIDTH = 4 * SCALE


def write_chart(ledgers: Mapping[str, LedgerTotals], path: Path) -> None:
    """A bar chart per bucket: original bytes (blue) beside stored bytes (orange), the ratio above each
    pair, the bucket's name below it, in name order.

    Written as a PNG with the standard library alone (zlib, and a 3x5 pixel font for the names): the
    gateway's dependencies hold no plotting library, and matplotlib (the ``bench`` extra) is tens of MB
    for two bars a bucket.
    """
    buckets = sorted(ledgers)
    bar, gap, height, margin = 24, 16, 240, 10
    label_h = 5 * SCALE + 6
    widths = [max(2 * bar, CHAR_WIDTH * len(b[:24])) + gap for b in buckets]
    width = max(2 * margin + sum(widths), 2 * margin + CHAR_WIDTH * 20)
    top = max([max(t.original_bytes, t.stored_bytes) for t in ledgers.values()] + [1])
    base = margin + label_h * 2 + height  # the axis: legend and ratios above, names below
    pixels = [[(255, 255, 255)] * width for _ in range(base + label_h + margin)]
    _square(pixels, margin, margin, ORIGINAL_COLOUR)
    _text(pixels, margin + 14, margin, "original")
    _square(pixels, margin + 14 + CHAR_WIDTH * 9, margin, STORED_COLOUR)
    _text(pixels, margin + 28 + CHAR_WIDTH * 9, margin, "stored")
    x = margin
    for bucket, slot in zip(buckets, widths, strict=True):
        t = ledgers[bucket]
        heights = [round(height * max(v, 0) / top) for v in (t.original_bytes, t.stored_bytes)]
        for offset, h, colour in ((0, heights[0], ORIGINAL_COLOUR), (bar, heights[1], STORED_COLOUR)):
            for y in range(base - h, base):
                pixels[y][x + offset : x + offset + bar - 2] = [colour] * (bar - 2)
        if t.stored_bytes:
            _text(pixels, x, base - max(heights) - label_h + 4, f"{t.original_bytes / t.stored_bytes:.1f}x")
        _text(pixels, x, base + 4, bucket[:24])
        x += slot
    for column in range(width):
        pixels[base][column] = (0, 0, 0)
    path.write_bytes(_png(pixels))


def _square(pixels: list[list[tuple[int, int, int]]], x: int, y: int, colour: tuple[int, int, int]) -> None:
    for row in range(y, y + 5 * SCALE):
        pixels[row][x : x + 5 * SCALE] = [colour] * (5 * SCALE)


def _text(pixels: list[list[tuple[int, int, int]]], x: int, y: int, text: str) -> None:
    for i, char in enumerate(text.lower()):
        glyph = _GLYPHS.get(char, _GLYPHS["_"])
        for bit, on in enumerate(glyph):
            if on == "1":
                gx, gy = x + i * CHAR_WIDTH + (bit % 3) * SCALE, y + (bit // 3) * SCALE
                for dy in range(SCALE):
                    row = pixels[gy + dy]
                    row[gx : gx + SCALE] = [TEXT_COLOUR] * SCALE


def _png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
