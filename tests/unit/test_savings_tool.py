"""``s4 savings`` output: the table, the JSON totals and the PNG chart (drawn with zlib alone)."""

from __future__ import annotations

import struct
import zlib

from s4.store.compressing.ledger import LedgerTotals
from s4.tools.savings import format_table, to_dict, write_chart


def ledgers() -> dict[str, LedgerTotals]:
    return {
        "logs": LedgerTotals(objects=3, original_bytes=10 * 1024**2, data_bytes=1024**2, sidecar_bytes=300),
        "media": LedgerTotals(objects=1, original_bytes=5000, data_bytes=5000, staging_bytes=700, staging_objects=2),
    }


def test_json_rows_and_totals() -> None:
    out = to_dict(ledgers())
    assert out["buckets"]["logs"]["stored_bytes"] == 1024**2 + 300
    assert out["buckets"]["logs"]["ratio"] == round(10 * 1024**2 / (1024**2 + 300), 4)
    assert out["total"]["objects"] == 4
    assert out["total"]["stored_bytes"] == 1024**2 + 300 + 5700
    assert to_dict({"empty": LedgerTotals()})["buckets"]["empty"]["ratio"] is None


def test_table_has_a_row_per_bucket_and_a_total() -> None:
    lines = format_table(ledgers()).splitlines()
    assert [line.split()[0] for line in lines] == ["bucket", "logs", "media", "TOTAL"]
    assert "10.0 MiB" in lines[1] and "x" in lines[1]


def test_chart_is_a_png_with_two_bars_a_bucket(tmp_path) -> None:
    path = tmp_path / "chart.png"
    write_chart(ledgers(), path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == height * (1 + 3 * width)
    blue, orange = bytes((0x4C, 0x72, 0xB0)), bytes((0xDD, 0x84, 0x52))
    assert blue in raw and orange in raw
