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


def write_chart(ledgers: Mapping[str, LedgerTotals], path: Path) -> None:
    """A bar chart per bucket: original bytes (blue) beside stored bytes (orange), buckets in name order.

    Written as a PNG with the standard library alone (zlib): the gateway's dependencies hold no
    plotting library, and matplotlib (the ``bench`` extra) is tens of MB for two bars a bucket. The
    chart has no text; the table (printed beside it) names the buckets in the same order.
    """
    buckets = sorted(ledgers)
    bar, gap, height, margin = 24, 16, 240, 10
    width = max(2 * margin + len(buckets) * (2 * bar + gap), 64)
    top = max([max(t.original_bytes, t.stored_bytes) for t in ledgers.values()] + [1])
    pixels = [[(255, 255, 255)] * width for _ in range(height + 2 * margin)]
    for i, bucket in enumerate(buckets):
        t = ledgers[bucket]
        x = margin + i * (2 * bar + gap)
        for offset, value, colour in ((0, t.original_bytes, ORIGINAL_COLOUR), (bar, t.stored_bytes, STORED_COLOUR)):
            h = round(height * max(value, 0) / top)
            for y in range(margin + height - h, margin + height):
                pixels[y][x + offset : x + offset + bar - 2] = [colour] * (bar - 2)
    for x in range(width):  # the axis
        pixels[margin + height][x] = (0, 0, 0)
    path.write_bytes(_png(pixels))


def _png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
